package enclave

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// stageDoubleFlag makes the test binary a test double of an Apertium
// program in null-flush mode (see TestMain): it echoes each NUL-ended
// unit with its NUL, unless the unit asks otherwise.
const stageDoubleFlag = "-sealgate-apertium-stage-double"

func TestMain(m *testing.M) {
	if slices.Contains(os.Args[1:], stageDoubleFlag) {
		stageDouble(os.Stdin, os.Stdout)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// stageDouble serves units from r on w. A unit containing "stall" is
// never answered, "die" exits with status 3, "flood" is answered with
// 1 MiB, "frame" with bytes after its NUL; others are echoed.
func stageDouble(r io.Reader, w io.Writer) {
	br := bufio.NewReader(r)
	for {
		unit, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		switch {
		case bytes.Contains(unit, []byte("stall")):
			select {}
		case bytes.Contains(unit, []byte("die")):
			os.Exit(3)
		case bytes.Contains(unit, []byte("flood")):
			w.Write(append(bytes.Repeat([]byte("x"), 1<<20), 0))
		case bytes.Contains(unit, []byte("frame")):
			w.Write(append(unit, "extra"...))
		default:
			w.Write(unit)
		}
	}
}

// doublePool returns a pool of pipelines of n stage doubles.
func doublePool(t *testing.T, cfg ApertiumConfig, n int) (*Apertium, *pairPool) {
	t.Helper()
	a, err := NewApertium(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	pp, err := a.pool("dbl-dbl", "")
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		pp.stages = append(pp.stages, stage{path: os.Args[0], args: []string{stageDoubleFlag}})
	}
	if !pp.pipelined(t.Context()) {
		t.Fatal("the test pool has no pipeline")
	}
	return a, pp
}

// counts returns how many pipelines pp runs and how many are idle.
func counts(pp *pairPool) (live, idle int) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return len(pp.live), len(pp.idle)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func unit(s string) []byte { return append([]byte(s), 0) }

func TestPipelinePoolConcurrent(t *testing.T) {
	_, pp := doublePool(t, ApertiumConfig{PipelinesPerPair: 3}, 3)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				in := fmt.Sprintf("goroutine %d unit %d %s", g, i, strings.Repeat("y", g*i*100))
				out, err := pp.run(t.Context(), unit(in), 1<<20)
				if err != nil || string(out) != in {
					errs <- fmt.Errorf("goroutine %d unit %d: %d bytes, %v", g, i, len(out), err)
					return
				}
				if live, _ := counts(pp); live > 3 {
					errs <- fmt.Errorf("%d pipelines running, want at most 3", live)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if live, idle := counts(pp); live != idle || live == 0 || live > 3 {
		t.Errorf("after the runs: %d live, %d idle, want 1 to 3 of each", live, idle)
	}
}

// A unit larger than the pipes' buffers needs writing while reading.
func TestPipelinePoolLargeUnit(t *testing.T) {
	_, pp := doublePool(t, ApertiumConfig{}, 4)
	in := strings.Repeat("0123456789", 100_000)
	out, err := pp.run(t.Context(), unit(in), 2<<20)
	if err != nil || string(out) != in {
		t.Fatalf("%d bytes back, %v; want the %d sent", len(out), err, len(in))
	}
}

func TestPipelinePoolRestartsAfterKill(t *testing.T) {
	_, pp := doublePool(t, ApertiumConfig{PipelinesPerPair: 1}, 3)
	if _, err := pp.run(t.Context(), unit("first"), 1<<10); err != nil {
		t.Fatal(err)
	}
	pp.mu.Lock()
	first := pp.idle[0]
	pp.mu.Unlock()
	if err := first.cmds[1].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pipeline to notice its killed program", first.exited)
	out, err := pp.run(t.Context(), unit("second"), 1<<10)
	if err != nil || string(out) != "second" {
		t.Fatalf("after the kill: %q, %v", out, err)
	}
	pp.mu.Lock()
	second := pp.idle[0]
	_, firstLive := pp.live[first]
	pp.mu.Unlock()
	if second == first || firstLive {
		t.Fatal("the killed pipeline was reused")
	}
	for i, c := range first.cmds {
		if c.ProcessState == nil {
			t.Errorf("program %d of the killed pipeline was not waited for", i)
		}
	}
}

func TestPipelinePoolProgramDiesMidUnit(t *testing.T) {
	_, pp := doublePool(t, ApertiumConfig{PipelinesPerPair: 1}, 3)
	if _, err := pp.run(t.Context(), unit("die"), 1<<10); !errors.Is(err, errPipelineExited) {
		t.Fatalf("err %v, want errPipelineExited", err)
	}
	if live, _ := counts(pp); live != 0 {
		t.Fatalf("%d pipelines left running", live)
	}
	if out, err := pp.run(t.Context(), unit("next"), 1<<10); err != nil || string(out) != "next" {
		t.Fatalf("next run: %q, %v", out, err)
	}
}

// A stuck pipeline is killed at the deadline and does not hold its slot.
func TestPipelinePoolTimeout(t *testing.T) {
	_, pp := doublePool(t, ApertiumConfig{PipelinesPerPair: 1}, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := pp.run(ctx, unit("stall"), 1<<10)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the stalled run returned after %s", d)
	}
	if live, _ := counts(pp); live != 0 {
		t.Fatalf("%d pipelines left running", live)
	}
	// The only slot is free again, on a new pipeline.
	if out, err := pp.run(t.Context(), unit("after"), 1<<10); err != nil || string(out) != "after" {
		t.Fatalf("after the timeout: %q, %v", out, err)
	}
}

// A cancelled context, without a deadline, also unblocks a stuck run.
func TestPipelinePoolCancel(t *testing.T) {
	_, pp := doublePool(t, ApertiumConfig{PipelinesPerPair: 1}, 2)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := pp.run(ctx, unit("stall"), 1<<10); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	// A run waiting for the busy slot gives up at its deadline.
	_, hold := doublePool(t, ApertiumConfig{PipelinesPerPair: 1}, 1)
	busy, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		hold.run(busy, unit("stall"), 1<<10)
	}()
	waitFor(t, "the stalled run to hold the slot", func() bool { live, _ := counts(hold); return live == 1 })
	wctx, wcancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer wcancel()
	if _, err := hold.run(wctx, unit("waiting"), 1<<10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting run: %v, want the context's deadline", err)
	}
	stop()
	<-done
}

func TestPipelinePoolOutputBounds(t *testing.T) {
	_, pp := doublePool(t, ApertiumConfig{PipelinesPerPair: 1}, 1)
	if _, err := pp.run(t.Context(), unit("flood"), 1000); !errors.Is(err, errOutputTooLarge) {
		t.Fatalf("flood: %v, want errOutputTooLarge", err)
	}
	if _, err := pp.run(t.Context(), unit("frame"), 1000); !errors.Is(err, errFraming) {
		t.Fatalf("frame: %v, want errFraming", err)
	}
	if live, _ := counts(pp); live != 0 {
		t.Fatalf("%d pipelines left running", live)
	}
}

func TestPipelinePoolIdleTimeout(t *testing.T) {
	_, pp := doublePool(t, ApertiumConfig{IdleTimeout: 50 * time.Millisecond}, 1)
	if _, err := pp.run(t.Context(), unit("once"), 1<<10); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle pipeline to stop", func() bool { live, _ := counts(pp); return live == 0 })
}

func TestApertiumCloseStopsPipelines(t *testing.T) {
	a, pp := doublePool(t, ApertiumConfig{PipelinesPerPair: 2}, 2)
	done := make(chan error, 1)
	go func() {
		_, err := pp.run(t.Context(), unit("stall"), 1<<10)
		done <- err
	}()
	waitFor(t, "a lent pipeline", func() bool { live, _ := counts(pp); return live == 1 })
	if _, err := pp.run(t.Context(), unit("idle one"), 1<<10); err != nil {
		t.Fatal(err)
	}
	if live, idle := counts(pp); live != 2 || idle != 1 {
		t.Fatalf("%d live, %d idle, want a lent and an idle pipeline", live, idle)
	}
	var all []*pipeline
	pp.mu.Lock()
	for p := range pp.live {
		all = append(all, p)
	}
	pp.mu.Unlock()
	a.Close()
	if err := <-done; err == nil {
		t.Fatal("the stalled run succeeded after Close")
	}
	for _, p := range all {
		for i, c := range p.cmds {
			if c.ProcessState == nil {
				t.Errorf("program %d still running after Close", i)
			}
		}
	}
	if _, err := a.Translate(t.Context(), "en", "es", "After close."); err == nil {
		t.Fatal("Translate succeeded after Close")
	}
}

func TestApertiumRefusesBadInput(t *testing.T) {
	a, err := NewApertium(ApertiumConfig{DataDir: t.TempDir(), MaxInputBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const secret = "confidential-canary"
	tests := []struct {
		name, from, to, text, wantCode, wantMsg string
	}{
		{"nul", "en", "es", secret + "\x00more", "bad_request", "NUL byte"},
		{"too long", "en", "es", strings.Repeat(secret, 4), "bad_request", "at most 64"},
		{"empty", "en", "es", " \n\t", "bad_request", "empty"},
		{"bad utf-8", "en", "es", secret + "\xff", "bad_request", "UTF-8"},
		{"upper case", "EN", "es", secret, "bad_request", "lowercase"},
		{"long code", "english", "es", secret, "bad_request", "lowercase"},
		{"same", "en", "eng", secret, "bad_request", "same language"},
		{"missing pair", "en", "es", secret, "backend_unavailable", "apertium-eng-spa"},
		{"missing pair, reverse", "es", "en", secret, "backend_unavailable", "apertium-eng-spa"},
		{"missing pair, 3 letters", "cat", "eng", secret, "backend_unavailable", "apertium-eng-cat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Translate(t.Context(), tt.from, tt.to, tt.text)
			var te *TaskError
			if !errors.As(err, &te) || te.Code != tt.wantCode || !strings.Contains(te.Message, tt.wantMsg) {
				t.Fatalf("err %v, want %s naming %q", err, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(te.Message, "canary") {
				t.Fatalf("message %q quotes the text", te.Message)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	// apertium-wblank-mode -z's output for Debian 12's eng-spa.mode.
	const engSpa = `lt-proc -z '/usr/share/apertium/apertium-eng-spa/eng-spa.automorf.bin' | apertium-wblank-attach | apertium-tagger -z -g $2 '/usr/share/apertium/apertium-eng-spa/eng-spa.prob' | apertium-pretransfer -z | apertium-transfer -z -n '/usr/share/apertium/apertium-eng-spa/apertium-eng-spa.eng-spa.genitive.t1x' '/usr/share/apertium/apertium-eng-spa/eng-spa.genitive.bin' | lt-proc -z -b '/usr/share/apertium/apertium-eng-spa/eng-spa.autobil.bin' | lrx-proc -z -m '/usr/share/apertium/apertium-eng-spa/eng-spa.autolex.bin' | apertium-transfer -z -b '/usr/share/apertium/apertium-eng-spa/apertium-eng-spa.eng-spa.t1x' '/usr/share/apertium/apertium-eng-spa/eng-spa.t1x.bin' | apertium-interchunk -z '/usr/share/apertium/apertium-eng-spa/apertium-eng-spa.eng-spa.t2x' '/usr/share/apertium/apertium-eng-spa/eng-spa.t2x.bin' | apertium-postchunk -z '/usr/share/apertium/apertium-eng-spa/apertium-eng-spa.eng-spa.t3x' '/usr/share/apertium/apertium-eng-spa/eng-spa.t3x.bin' | apertium-wblank-detach | lt-proc -z $1 '/usr/share/apertium/apertium-eng-spa/eng-spa.autogen.bin' | lt-proc -z -p '/usr/share/apertium/apertium-eng-spa/eng-spa.autopgen.bin'` + "\n"
	stages, err := parseMode(engSpa, "-n", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != 13 {
		t.Fatalf("%d stages, want 13", len(stages))
	}
	want := []stage{
		{"lt-proc", []string{"-z", "/usr/share/apertium/apertium-eng-spa/eng-spa.automorf.bin"}},
		{"apertium-wblank-attach", []string{}},
		{"apertium-tagger", []string{"-z", "-g", "/usr/share/apertium/apertium-eng-spa/eng-spa.prob"}},
	}
	for i, w := range want {
		if stages[i].path != w.path || !slices.Equal(stages[i].args, w.args) {
			t.Errorf("stage %d: %+v, want %+v", i, stages[i], w)
		}
	}
	if got := stages[11].args; !slices.Equal(got, []string{"-z", "-n", "/usr/share/apertium/apertium-eng-spa/eng-spa.autogen.bin"}) {
		t.Errorf("generator args %q, want $1 as -n", got)
	}
	if stages, err := parseMode("a 'b c'd e=f | g", "", "x"); err != nil || len(stages) != 2 || !slices.Equal(stages[0].args, []string{"b cd", "e=f"}) {
		t.Errorf("quoting: %+v, %v", stages, err)
	}

	bad := []struct{ name, text, wantErr string }{
		{"semicolon", "lt-proc a; rm -rf x", "';'"},
		{"redirect", "lt-proc a > out", "'>'"},
		{"command substitution", "lt-proc $(cat x)", "expansion"},
		{"backquote", "lt-proc `x`", "'`'"},
		{"double quote", `lt-proc "a"`, `'"'`},
		{"other variable", "lt-proc $3", "expansion"},
		{"variable in a word", "lt-proc -x$1", "'$'"},
		{"variable prefix", "lt-proc $1x", "expansion"},
		{"two commands", "lt-proc a\nlt-proc b", "'\\n'"},
		{"unterminated quote", "lt-proc 'a", "unterminated"},
		{"empty stage", "lt-proc a || b", "empty program"},
		{"trailing pipe", "lt-proc a |", "empty program"},
		{"empty", " \n", "empty program"},
		{"glob", "lt-proc *.bin", "'*'"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseMode(tt.text, "-n", ""); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

// northWind is Aesop's "The North Wind and the Sun" in George Fyler
// Townsend's translation (1867), in the public domain.
const northWind = "The North Wind and the Sun disputed as to which was the most powerful, and agreed that he should be declared the victor who could first strip a wayfaring man of his clothes. The North Wind first tried his power and blew with all his might, but the keener became his blasts, the closer the Traveler wrapped his cloak around him, until at last, resigning all hope of victory, he called upon the Sun to see what he could do. The Sun suddenly shone out with all his warmth. The Traveler no sooner felt his genial rays than he took off one garment after another, and at last, fainting with heat, undressed and bathed in a stream that lay in his path. Persuasion is better than Force."

// needPair skips unless Apertium and the pair's mode are installed.
func needPair(tb testing.TB, mode string) {
	tb.Helper()
	if _, err := exec.LookPath("apertium"); err != nil {
		tb.Skip("Apertium is not installed: scripts/setup installs the Debian packages apertium and apertium-eng-spa")
	}
	if _, err := os.Stat("/usr/share/apertium/modes/" + mode + ".mode"); err != nil {
		tb.Skipf("Apertium's %s pair is not installed: scripts/setup installs the Debian package %s", mode, debianPackage(mode[:3], mode[4:]))
	}
}

// The pipelines translate exactly as the apertium command does.
func TestApertiumPipelineMatchesCommand(t *testing.T) {
	pipe, err := NewApertium(ApertiumConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	proc, err := NewApertium(ApertiumConfig{PerRequest: true})
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	const spanish = "El viento del norte y el sol discutían cuál era el más fuerte. La persuasión es mejor que la fuerza.\n"
	tests := []struct{ mode, from, to, text string }{
		{"eng-spa", "en", "es", northWind},
		{"eng-spa", "en", "es", "The house is red."},
		{"eng-spa", "eng", "spa", "Two paragraphs.\n\nThe second one [has] brackets ^and$ slashes / \\ <tags> {braces} @at *star here.\n"},
		{"spa-eng", "es", "en", spanish},
		{"eng-cat", "en", "ca", northWind},
		{"cat-eng", "ca", "en", "El vent del nord i el sol discutien quin era el més fort."},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			needPair(t, tt.mode)
			viaPipe, err := pipe.Translate(t.Context(), tt.from, tt.to, tt.text)
			if err != nil {
				t.Fatal(err)
			}
			viaProc, err := proc.Translate(t.Context(), tt.from, tt.to, tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if viaPipe != viaProc || viaPipe.Pair != tt.mode || strings.TrimSpace(viaPipe.Text) == "" {
				t.Errorf("pipeline gave %s\n%q\nthe apertium command %s\n%q", viaPipe.Pair, viaPipe.Text, viaProc.Pair, viaProc.Text)
			}
		})
	}
}

func TestApertiumRestartsKilledPipeline(t *testing.T) {
	needPair(t, "eng-spa")
	a, err := NewApertium(ApertiumConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	es, err := a.Translate(t.Context(), "en", "es", northWind)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"viento", "sol", "victoria", "calor", "persuasión", "mejor"} {
		if !strings.Contains(strings.ToLower(es.Text), w) {
			t.Errorf("Spanish %q lacks %q", es.Text, w)
		}
	}
	// Kill one program of the idle pipeline: the next translation runs on
	// a new one.
	pp, _ := a.pool("eng-spa", "")
	pp.mu.Lock()
	idle := slices.Clone(pp.idle)
	pp.mu.Unlock()
	if len(idle) != 1 {
		t.Fatalf("%d idle pipelines, want 1", len(idle))
	}
	if err := idle[0].cmds[len(idle[0].cmds)/2].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pipeline to notice its killed program", idle[0].exited)
	again, err := a.Translate(t.Context(), "en", "es", northWind)
	if err != nil || again != es {
		t.Fatalf("after a kill: %q, %v", again.Text, err)
	}
	if live, _ := counts(pp); live != 1 {
		t.Fatalf("%d pipelines running, want the new one", live)
	}
}

func TestApertiumConcurrent(t *testing.T) {
	needPair(t, "eng-spa")
	a, err := NewApertium(ApertiumConfig{PipelinesPerPair: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	texts := [][3]string{
		{"en", "es", "The house is red."},
		{"en", "es", "The dog sleeps in the garden."},
		{"es", "en", "La casa es roja."},
		{"es", "en", "El perro duerme en el jardín."},
	}
	want := make([]string, len(texts))
	for i, tt := range texts {
		tr, err := a.Translate(t.Context(), tt[0], tt[1], tt[2])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = tr.Text
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 6 {
				k := (g + i) % len(texts)
				tr, err := a.Translate(t.Context(), texts[k][0], texts[k][1], texts[k][2])
				if err != nil || tr.Text != want[k] {
					t.Errorf("goroutine %d: %q, %v; want %q", g, tr.Text, err, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
	for _, mode := range []string{"eng-spa", "spa-eng"} {
		pp, _ := a.pool(mode, "")
		if live, idle := counts(pp); live > 2 || live != idle {
			t.Errorf("%s: %d live, %d idle, want at most 2, all idle", mode, live, idle)
		}
	}
}

// A translation stuck in its pipeline ends at the worker's request
// timeout with a deadline error, and the worker serves the next one.
func TestWorkerSurvivesStuckTranslation(t *testing.T) {
	if _, err := exec.LookPath("apertium-destxt"); err != nil {
		t.Skip("Apertium's format filters are not installed: scripts/setup installs the Debian package apertium")
	}
	dir := t.TempDir()
	if err := os.Mkdir(dir+"/modes", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/modes/eng-spa.mode", []byte("unused: the pool runs stage doubles\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := NewApertium(ApertiumConfig{DataDir: dir, PipelinesPerPair: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pp, _ := a.pool("eng-spa", dir+"/modes/eng-spa.mode")
	pp.stages = []stage{{os.Args[0], []string{stageDoubleFlag}}, {os.Args[0], []string{stageDoubleFlag}}}
	w, srv := testWorker(t, Config{Backend: Builtin{Translator: a}, RequestTimeout: 500 * time.Millisecond})

	serve := func(text string) []proto.Event {
		req, fwd := sealTo(t, w, proto.TaskTranslate, fmt.Appendf(nil, `{"text":%q,"from":"en","to":"es"}`, text))
		resp := post(t, srv, fwd)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return events(t, req, resp.Body)
	}
	start := time.Now()
	evs := serve("Please stall here.")
	var body proto.ErrorBody
	if last := evs[len(evs)-1]; last.Type != proto.EventError || json.Unmarshal(last.Data, &body) != nil || body.Code != "deadline" {
		t.Fatalf("stuck translation ended with %v %s, want a deadline error", last.Type, last.Data)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stuck translation answered after %s", d)
	}
	if live, _ := counts(pp); live != 0 {
		t.Fatalf("%d pipelines left after the timeout, want the stuck one stopped", live)
	}
	evs = serve("Hello again.")
	if len(evs) != 2 || evs[0].Type != proto.EventData || string(evs[0].Data) != "Hello again." || evs[1].Type != proto.EventEnd {
		t.Fatalf("next translation: %+v", evs)
	}
}

func TestBuiltinTranslates(t *testing.T) {
	needPair(t, "eng-spa")
	a, err := NewApertium(ApertiumConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var got strings.Builder
	end, err := Builtin{Translator: a}.Serve(t.Context(), proto.TaskTranslate, []byte(`{"text":"The house is red.","from":"en","to":"es"}`), func(s string) error {
		got.WriteString(s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ToLower(got.String()), "casa") || end.Model != "apertium-eng-spa" || end.OutputUnits != int64(got.Len()) {
		t.Fatalf("output %q, end %+v", got.String(), end)
	}
}

func benchmarkTranslate(b *testing.B, cfg ApertiumConfig) {
	needPair(b, "eng-spa")
	a, err := NewApertium(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Translate(b.Context(), "en", "es", northWind); err != nil { // starts the pipeline
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := a.Translate(b.Context(), "en", "es", northWind); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTranslateProcess translates a paragraph with one apertium
// process per translation.
func BenchmarkTranslateProcess(b *testing.B) { benchmarkTranslate(b, ApertiumConfig{PerRequest: true}) }

// BenchmarkTranslatePipeline translates a paragraph on a long-lived
// null-flush pipeline.
func BenchmarkTranslatePipeline(b *testing.B) { benchmarkTranslate(b, ApertiumConfig{}) }
