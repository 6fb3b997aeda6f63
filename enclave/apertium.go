package enclave

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Translation through Apertium (https://apertium.org), the rule-based
// translator Debian packages as apertium and apertium-<pair>.
//
// A language pair translates through a pipeline of a dozen programs
// (lt-proc, apertium-tagger, apertium-transfer...) that the pair's mode
// file, DataDir/modes/<pair>.mode, writes as a shell command. The
// apertium script starts all of them, and they load their transducers,
// for every text. An Apertium keeps up to PipelinesPerPair of those
// pipelines running per pair instead, started on first use, every
// program in null-flush mode (-z, the way `apertium -z` builds them
// through apertium-wblank-mode): a NUL byte ends a unit of text and
// makes every program flush it through. A translation deformats its text
// (apertium-destxt), writes it and a NUL to an idle pipeline, reads the
// output up to the NUL that comes out, and reformats that
// (apertium-retxt); the two format filters are small and run once per
// translation. BenchmarkTranslateProcess and BenchmarkTranslatePipeline
// compare the two ways: on a 2-CPU machine, Debian 12's eng-spa took a
// 700-byte paragraph in about 60 ms on a pipeline and 770 ms through the
// apertium command, 10 to 20 times longer.
//
// The text reaches the programs on their standard input only. A text
// holding a NUL byte is refused: the NUL would end the unit early.

// ApertiumConfig configures an Apertium. The zero value is ready to use.
type ApertiumConfig struct {
	// DataDir holds Apertium's language data: the pairs' mode files are
	// under DataDir/modes. Empty means /usr/share/apertium, where the
	// Debian packages put them.
	DataDir string
	// PipelinesPerPair bounds the pipelines running per language pair
	// (each is 13 to 17 processes and 200 to 300 MiB resident for
	// Debian's eng-spa and eng-cat). A translation waits for a free
	// pipeline until its context ends. Zero means 2.
	PipelinesPerPair int
	// IdleTimeout stops a pipeline that has not translated for this long;
	// the next translation starts a new one. Zero means 5 minutes;
	// negative keeps pipelines until Close.
	IdleTimeout time.Duration
	// Timeout bounds one translation, on top of its context's deadline: a
	// pipeline that takes longer is killed and replaced. Zero means 2
	// minutes.
	Timeout time.Duration
	// MaxInputBytes bounds a text to translate. Zero means 1 MiB. A
	// translation's output, and every intermediate form of it, is
	// bounded by 8 times its input plus 64 KiB.
	MaxInputBytes int
	// PerRequest runs the apertium command once per translation instead
	// of keeping pipelines: slower, kept for comparison. Without it,
	// translation falls back to a process per request only for a pair
	// whose pipeline cannot be built from its mode file, and logs so.
	PerRequest bool
	// Logger receives pipeline starts and stops, and the pair, path and
	// duration of each translation, never text. Nil discards them.
	Logger *slog.Logger
}

// Apertium translates with Apertium's language pairs. It is safe for
// concurrent use; Close stops its processes.
type Apertium struct {
	cfg ApertiumConfig // with defaults filled in
	log *slog.Logger
	// timers counts idle timers armed or running; Close waits for them.
	timers sync.WaitGroup

	mu     sync.Mutex           // guards pairs and closed
	pairs  map[string]*pairPool // by mode name, such as "eng-spa"
	closed bool
}

// Translation is a translated text and the Apertium mode that made it.
type Translation struct {
	Text string
	// Pair is the mode that translated, such as "eng-spa".
	Pair string
}

// NewApertium returns an Apertium that starts pipelines on first use.
func NewApertium(cfg ApertiumConfig) (*Apertium, error) {
	if cfg.PipelinesPerPair < 0 || cfg.Timeout < 0 || cfg.MaxInputBytes < 0 {
		return nil, fmt.Errorf("enclave: apertium: negative PipelinesPerPair, Timeout or MaxInputBytes (found %d, %s, %d)", cfg.PipelinesPerPair, cfg.Timeout, cfg.MaxInputBytes)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "/usr/share/apertium"
	}
	if cfg.PipelinesPerPair == 0 {
		cfg.PipelinesPerPair = 2
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.MaxInputBytes == 0 {
		cfg.MaxInputBytes = 1 << 20
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Apertium{cfg: cfg, log: log, pairs: map[string]*pairPool{}}, nil
}

// sharedApertium is the translator of a Builtin without one: started on
// first use, its pipelines stop after five idle minutes.
var sharedApertium = sync.OnceValue(func() *Apertium {
	a, _ := NewApertium(ApertiumConfig{}) // the zero config is valid
	return a
})

var (
	// errApertiumClosed: Close was called.
	errApertiumClosed = errors.New("apertium: closed")
	// errOutputTooLarge: a program wrote more than the translation's
	// output bound.
	errOutputTooLarge = errors.New("apertium: output too large")
	// errPipelineExited: a pipeline's output ended before the unit's NUL.
	errPipelineExited = errors.New("apertium: pipeline exited")
	// errFraming: a pipeline wrote bytes after the unit's NUL.
	errFraming = errors.New("apertium: output after the unit's NUL")
)

// Translate translates text from one language to another, each an ISO
// 639-1 or 639-3 code such as "en" or "eng". Its errors are *TaskError,
// safe to send to the client (they never quote the text), or the
// context's error.
func (a *Apertium) Translate(ctx context.Context, from, to, text string) (Translation, error) {
	if err := a.check(from, to, text); err != nil {
		return Translation{}, err
	}
	mode, modeFile, err := a.resolve(from, to)
	if err != nil {
		return Translation{}, err
	}
	tctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	start := time.Now()
	maxOut := 8*len(text) + 64<<10
	var out []byte
	path := "pipeline"
	if a.cfg.PerRequest {
		path = "process"
		out, err = a.process(tctx, mode, text, maxOut)
	} else if pp, perr := a.pool(mode, modeFile); perr != nil {
		err = perr
	} else if !pp.pipelined(tctx) {
		path = "process"
		out, err = a.process(tctx, mode, text, maxOut)
	} else {
		out, err = a.pipelined(tctx, pp, text, maxOut)
	}
	if err != nil {
		err = a.taskError(ctx, tctx, mode, err)
		outcome := "error"
		if te, ok := err.(*TaskError); ok {
			outcome = te.Code
		}
		a.log.LogAttrs(ctx, slog.LevelWarn, "apertium translation failed", slog.String("pair", mode), slog.String("path", path),
			slog.String("outcome", outcome), slog.Duration("duration", time.Since(start)))
		return Translation{}, err
	}
	a.log.LogAttrs(ctx, slog.LevelDebug, "apertium translated", slog.String("pair", mode), slog.String("path", path),
		slog.Duration("duration", time.Since(start)))
	return Translation{Text: string(out), Pair: mode}, nil
}

// check refuses what no pair could translate.
func (a *Apertium) check(from, to, text string) error {
	if !isLang(from) || !isLang(to) {
		return badRequest("language codes must be 2 or 3 lowercase letters (found from=%q to=%q)", clip(from), clip(to))
	}
	if iso6393(from) == iso6393(to) {
		return badRequest("from and to are the same language (%s)", from)
	}
	if len(text) > a.cfg.MaxInputBytes {
		return badRequest("text of %d bytes, want at most %d", len(text), a.cfg.MaxInputBytes)
	}
	if !utf8.ValidString(text) {
		return badRequest("text is not valid UTF-8")
	}
	if strings.IndexByte(text, 0) >= 0 {
		return badRequest("text contains a NUL byte (U+0000), which translate does not accept")
	}
	if strings.TrimSpace(text) == "" {
		return badRequest("text is empty")
	}
	return nil
}

// resolve finds the mode file of a pair: ISO 639-3 codes first (Debian's
// current packages), then the codes as given (older packages such as
// apertium-eo-en).
func (a *Apertium) resolve(from, to string) (mode, file string, err error) {
	names := []string{iso6393(from) + "-" + iso6393(to)}
	if given := from + "-" + to; given != names[0] {
		names = append(names, given)
	}
	for _, name := range names {
		f := filepath.Join(a.cfg.DataDir, "modes", name+".mode")
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			return name, f, nil
		}
	}
	pkg := debianPackage(iso6393(from), iso6393(to))
	if _, err := exec.LookPath("apertium"); err != nil {
		return "", "", &TaskError{Code: "backend_unavailable", Message: "translate needs Apertium: install the Debian packages apertium and " + pkg}
	}
	return "", "", &TaskError{Code: "backend_unavailable", Message: fmt.Sprintf("Apertium has no %s pair installed: install the Debian package %s", names[0], pkg)}
}

// pool returns the pool of a mode, made on first use.
func (a *Apertium) pool(mode, modeFile string) (*pairPool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errApertiumClosed
	}
	pp := a.pairs[mode]
	if pp == nil {
		pp = newPairPool(a, mode, modeFile)
		a.pairs[mode] = pp
	}
	return pp, nil
}

// pipelined runs a text through one of pp's pipelines, between the two
// format filters.
func (a *Apertium) pipelined(ctx context.Context, pp *pairPool, text string, maxOut int) ([]byte, error) {
	unit, err := a.filter(ctx, "apertium-destxt", []byte(text), maxOut)
	if err != nil {
		return nil, err
	}
	// The text holds no NUL (check) and the deformatter adds none; this
	// keeps the framing whatever it does.
	unit = append(bytes.ReplaceAll(unit, []byte{0}, nil), 0)
	out, err := pp.run(ctx, unit, maxOut)
	if err != nil {
		return nil, err
	}
	return a.filter(ctx, "apertium-retxt", out, maxOut)
}

// filter runs one of Apertium's format filters on in.
func (a *Apertium) filter(ctx context.Context, name string, in []byte, maxOut int) ([]byte, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, &TaskError{Code: "backend_unavailable", Message: "translate needs Apertium's " + name + ": install the Debian package apertium"}
	}
	return runBounded(ctx, exec.CommandContext(ctx, path), in, maxOut)
}

// process translates with the apertium command, one process per text.
func (a *Apertium) process(ctx context.Context, mode, text string, maxOut int) ([]byte, error) {
	path, err := exec.LookPath("apertium")
	if err != nil {
		return nil, &TaskError{Code: "backend_unavailable", Message: "translate needs Apertium: install the Debian package apertium"}
	}
	// -u: no '*' marks on unknown words, like the pipelines' lt-proc -n.
	return runBounded(ctx, exec.CommandContext(ctx, path, "-d", a.cfg.DataDir, "-u", mode), []byte(text), maxOut)
}

// runBounded runs cmd with in on its standard input and returns its
// standard output, refusing more than maxOut bytes of it.
func runBounded(ctx context.Context, cmd *exec.Cmd, in []byte, maxOut int) ([]byte, error) {
	out := &boundedBuffer{max: maxOut}
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout = out
	// Stderr stays nil (/dev/null): the programs' messages may quote the
	// text. The apertium script's children may outlive it when the
	// context kills it; WaitDelay stops waiting for them.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if out.over {
		return nil, errOutputTooLarge
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("apertium: %s: %w", filepath.Base(cmd.Path), err)
	}
	return out.b, nil
}

// boundedBuffer collects up to max bytes and fails the write past them.
type boundedBuffer struct {
	b    []byte
	max  int
	over bool
}

func (w *boundedBuffer) Write(p []byte) (int, error) {
	if len(w.b)+len(p) > w.max {
		w.over = true
		return 0, errOutputTooLarge
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

// taskError maps a translation's failure to what the client sees: the
// request context's error, which the worker reports as a deadline, or a
// *TaskError.
func (a *Apertium) taskError(ctx, tctx context.Context, mode string, err error) error {
	var te *TaskError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &te):
		return te
	case tctx.Err() != nil:
		return &TaskError{Code: "deadline", Message: fmt.Sprintf("translating %s took over %s", mode, a.cfg.Timeout)}
	case errors.Is(err, errOutputTooLarge):
		return &TaskError{Code: "too_large", Message: fmt.Sprintf("translating %s gave more output than the bound for this input", mode)}
	case errors.Is(err, errApertiumClosed):
		return &TaskError{Code: "backend_unavailable", Message: "the translator is shutting down"}
	}
	return &TaskError{Code: "backend_failed", Message: fmt.Sprintf("apertium failed translating %s", mode)}
}

// Close stops every pipeline, including those translating (their
// translations fail), and waits for their processes. Translate fails
// after it.
func (a *Apertium) Close() error {
	a.mu.Lock()
	a.closed = true
	pools := make([]*pairPool, 0, len(a.pairs))
	for _, pp := range a.pairs {
		pools = append(pools, pp)
	}
	a.mu.Unlock()
	for _, pp := range pools {
		pp.close()
	}
	a.timers.Wait()
	return nil
}

// pairPool runs one mode's pipelines.
type pairPool struct {
	a        *Apertium
	mode     string
	modeFile string

	specOnce sync.Once
	// stages is the pipeline, set once by pipelined; nil when it cannot
	// be built from the mode file.
	stages []stage

	// slots holds a token per pipeline lent to a translation.
	slots chan struct{}

	mu     sync.Mutex             // guards idle, live and closed
	idle   []*pipeline            // free pipelines, the most recently used last
	live   map[*pipeline]struct{} // started and not stopped: idle or lent
	closed bool
}

func newPairPool(a *Apertium, mode, modeFile string) *pairPool {
	return &pairPool{a: a, mode: mode, modeFile: modeFile, slots: make(chan struct{}, a.cfg.PipelinesPerPair), live: map[*pipeline]struct{}{}}
}

// pipelined reports whether the mode's pipeline could be built, building
// its description on first call.
func (pp *pairPool) pipelined(ctx context.Context) bool {
	pp.specOnce.Do(func() {
		if pp.stages != nil { // set by a test
			return
		}
		// The description does not depend on the request: build it
		// whatever the request's context does, within its own bound.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		stages, err := buildStages(bctx, pp.modeFile)
		if err != nil {
			pp.a.log.LogAttrs(ctx, slog.LevelWarn, "apertium pipeline unavailable, running a process per translation",
				slog.String("pair", pp.mode), slog.String("reason", err.Error()))
			return
		}
		pp.stages = stages
	})
	return pp.stages != nil
}

// run translates one NUL-terminated unit on a pipeline: an idle one, or
// a new one while fewer than PipelinesPerPair run. A pipeline that fails,
// times out or breaks the framing is stopped; the next run starts
// another.
func (pp *pairPool) run(ctx context.Context, unit []byte, maxOut int) ([]byte, error) {
	p, err := pp.acquire(ctx)
	if err != nil {
		return nil, err
	}
	out, healthy, err := p.translate(ctx, unit, maxOut)
	reason := "failed"
	if ctx.Err() != nil {
		reason = "timeout"
	}
	pp.release(ctx, p, healthy, reason)
	return out, err
}

func (pp *pairPool) acquire(ctx context.Context) (*pipeline, error) {
	select {
	case pp.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		pp.mu.Lock()
		if pp.closed {
			pp.mu.Unlock()
			<-pp.slots
			return nil, errApertiumClosed
		}
		n := len(pp.idle)
		if n == 0 {
			pp.mu.Unlock()
			break
		}
		p := pp.idle[n-1]
		pp.idle = pp.idle[:n-1]
		pp.disarm(p)
		if !p.exited() {
			pp.mu.Unlock()
			return p, nil
		}
		delete(pp.live, p)
		pp.mu.Unlock()
		pp.stop(ctx, p, "exited")
	}
	start := time.Now()
	p, err := startPipeline(pp.stages)
	if err != nil {
		<-pp.slots
		return nil, err
	}
	pp.mu.Lock()
	if pp.closed {
		pp.mu.Unlock()
		p.stop()
		<-pp.slots
		return nil, errApertiumClosed
	}
	pp.live[p] = struct{}{}
	pp.mu.Unlock()
	pp.a.log.LogAttrs(ctx, slog.LevelInfo, "apertium pipeline started", slog.String("pair", pp.mode),
		slog.Int("processes", len(pp.stages)), slog.Duration("duration", time.Since(start)))
	return p, nil
}

// release takes back a lent pipeline: idle again if healthy, else
// stopped.
func (pp *pairPool) release(ctx context.Context, p *pipeline, healthy bool, reason string) {
	defer func() { <-pp.slots }()
	pp.mu.Lock()
	if healthy && !pp.closed && !p.exited() {
		pp.idle = append(pp.idle, p)
		pp.arm(p)
		pp.mu.Unlock()
		return
	}
	delete(pp.live, p)
	pp.mu.Unlock()
	pp.stop(ctx, p, reason)
}

func (pp *pairPool) stop(ctx context.Context, p *pipeline, reason string) {
	p.stop()
	pp.a.log.LogAttrs(ctx, slog.LevelInfo, "apertium pipeline stopped", slog.String("pair", pp.mode), slog.String("reason", reason))
}

// arm starts p's idle timer. pp.mu must be held.
func (pp *pairPool) arm(p *pipeline) {
	if pp.a.cfg.IdleTimeout < 0 {
		return
	}
	p.idleSeq++
	seq := p.idleSeq
	pp.a.timers.Add(1)
	p.idleTimer = time.AfterFunc(pp.a.cfg.IdleTimeout, func() {
		defer pp.a.timers.Done()
		pp.expire(p, seq)
	})
}

// disarm stops p's idle timer. pp.mu must be held.
func (pp *pairPool) disarm(p *pipeline) {
	if p.idleTimer != nil && p.idleTimer.Stop() {
		pp.a.timers.Done()
	}
	p.idleTimer = nil
}

// expire stops p if it is still idle since the timer numbered seq.
func (pp *pairPool) expire(p *pipeline, seq uint64) {
	pp.mu.Lock()
	i := slices.Index(pp.idle, p)
	if i < 0 || p.idleSeq != seq {
		pp.mu.Unlock()
		return
	}
	pp.idle = slices.Delete(pp.idle, i, i+1)
	p.idleTimer = nil
	delete(pp.live, p)
	pp.mu.Unlock()
	pp.stop(context.Background(), p, "idle")
}

// close stops every pipeline of pp and refuses new ones.
func (pp *pairPool) close() {
	pp.mu.Lock()
	pp.closed = true
	for _, p := range pp.idle {
		pp.disarm(p)
	}
	pp.idle = nil
	live := make([]*pipeline, 0, len(pp.live))
	for p := range pp.live {
		live = append(live, p)
	}
	clear(pp.live)
	pp.mu.Unlock()
	for _, p := range live {
		pp.stop(context.Background(), p, "closed")
	}
}

// stage is one program of a pipeline.
type stage struct {
	path string
	args []string
}

// buildStages describes the null-flush pipeline of a mode file, as
// apertium-wblank-mode -z writes it, with every program found on PATH.
func buildStages(ctx context.Context, modeFile string) ([]stage, error) {
	wb, err := exec.LookPath("apertium-wblank-mode")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, wb, "-z", modeFile)
	out, err := runBounded(ctx, cmd, nil, 64<<10)
	if err != nil {
		return nil, err
	}
	// $1 is the generator's option: -n leaves unknown words unmarked,
	// like `apertium -u`. $2 is the tagger's extra option: none.
	stages, err := parseMode(string(out), "-n", "")
	if err != nil {
		return nil, err
	}
	for i, s := range stages {
		if stages[i].path, err = exec.LookPath(s.path); err != nil {
			return nil, err
		}
	}
	return stages, nil
}

// parseMode splits a mode's shell command into its programs. It accepts
// the subset of shell the mode files use: words of plain characters and
// single-quoted strings, "|" between programs, and $1 and $2 as whole
// words, replaced by arg1 and arg2 (an empty one is dropped, as the
// shell drops an unquoted empty expansion). Anything else is an error,
// so that nothing is run that a shell would have run differently.
func parseMode(text, arg1, arg2 string) ([]stage, error) {
	text = strings.TrimSpace(text)
	var stages []stage
	var words []string
	endStage := func() error {
		if len(words) == 0 {
			return errors.New("mode: empty program in the pipeline")
		}
		stages = append(stages, stage{path: words[0], args: words[1:]})
		words = nil
		return nil
	}
	for i := 0; i < len(text); {
		switch c := text[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '|':
			if err := endStage(); err != nil {
				return nil, err
			}
			i++
		case c == '$':
			if i+2 < len(text) && !isModeBreak(text[i+2]) || i+1 == len(text) || text[i+1] != '1' && text[i+1] != '2' {
				return nil, fmt.Errorf("mode: unsupported expansion at byte %d", i)
			}
			v := arg1
			if text[i+1] == '2' {
				v = arg2
			}
			if v != "" {
				words = append(words, v)
			}
			i += 2
		default:
			var w strings.Builder
			for i < len(text) && !isModeBreak(text[i]) {
				switch c := text[i]; {
				case c == '\'':
					j := strings.IndexByte(text[i+1:], '\'')
					if j < 0 {
						return nil, fmt.Errorf("mode: unterminated quote at byte %d", i)
					}
					w.WriteString(text[i+1 : i+1+j])
					i += j + 2
				case isModeWordByte(c):
					w.WriteByte(c)
					i++
				default:
					return nil, fmt.Errorf("mode: unsupported character %q at byte %d", c, i)
				}
			}
			words = append(words, w.String())
		}
	}
	if err := endStage(); err != nil {
		return nil, err
	}
	return stages, nil
}

func isModeBreak(c byte) bool { return c == ' ' || c == '\t' || c == '|' }

// isModeWordByte reports whether c stands for itself in an unquoted
// shell word.
func isModeWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_./=+,:@%", c) >= 0
}

// pipeline is one running chain of a mode's programs, connected by pipes.
type pipeline struct {
	cmds []*exec.Cmd
	in   *os.File // the first program's standard input
	out  *os.File // the last program's standard output

	gone     chan struct{} // closed when the first program exits
	goneOnce sync.Once
	killOnce sync.Once
	waits    sync.WaitGroup // one goroutine per program, waiting for it

	// idleTimer and idleSeq are guarded by the owning pairPool's mu.
	idleTimer *time.Timer
	idleSeq   uint64
}

// startPipeline starts stages connected by pipes.
func startPipeline(stages []stage) (p *pipeline, err error) {
	if len(stages) == 0 {
		return nil, errors.New("apertium: no program in the pipeline")
	}
	p = &pipeline{gone: make(chan struct{})}
	// childEnds are the parent's copies of the ends the programs use;
	// closed once the programs have them, so that one's exit reaches its
	// neighbours as end of file or a broken pipe.
	var childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
		if err != nil {
			for _, c := range p.cmds {
				c.Process.Kill()
				c.Wait()
			}
			if p.in != nil {
				p.in.Close()
			}
			if p.out != nil {
				p.out.Close()
			}
		}
	}()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	childEnds = append(childEnds, r)
	p.in = w
	for _, s := range stages {
		cmd := exec.Command(s.path, s.args...)
		cmd.Stdin = r
		if r, w, err = os.Pipe(); err != nil {
			return nil, err
		}
		if p.out != nil {
			childEnds = append(childEnds, p.out)
		}
		p.out = r
		childEnds = append(childEnds, w)
		cmd.Stdout = w
		// Stderr stays nil (/dev/null): messages may quote the text.
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		p.cmds = append(p.cmds, cmd)
	}
	for _, c := range p.cmds {
		p.waits.Add(1)
		go func() {
			defer p.waits.Done()
			c.Wait()
			p.goneOnce.Do(func() { close(p.gone) })
		}()
	}
	return p, nil
}

// exited reports whether one of p's programs has exited.
func (p *pipeline) exited() bool {
	select {
	case <-p.gone:
		return true
	default:
		return false
	}
}

// kill kills p's programs and closes its pipes, without waiting.
func (p *pipeline) kill() {
	p.killOnce.Do(func() {
		for _, c := range p.cmds {
			c.Process.Kill()
		}
		p.in.Close()
		p.out.Close()
	})
}

// stop kills p's programs and waits for them.
func (p *pipeline) stop() {
	p.kill()
	p.waits.Wait()
}

// aLongTimeAgo is a deadline in the past: it makes pending I/O fail.
var aLongTimeAgo = time.Unix(1, 0)

// translate writes unit (ending in NUL) and reads the output unit. It
// reports whether p can serve again: not after an error, nor when the
// context ended meanwhile.
func (p *pipeline) translate(ctx context.Context, unit []byte, maxOut int) (out []byte, healthy bool, err error) {
	if d, ok := ctx.Deadline(); ok {
		p.in.SetWriteDeadline(d)
		p.out.SetReadDeadline(d)
	}
	expire := context.AfterFunc(ctx, func() {
		p.in.SetWriteDeadline(aLongTimeAgo)
		p.out.SetReadDeadline(aLongTimeAgo)
	})
	// Write while reading: a unit larger than the pipes' buffers would
	// otherwise block both sides.
	written := make(chan error, 1)
	go func() {
		_, err := p.in.Write(unit)
		written <- err
	}()
	out, err = p.readUnit(maxOut)
	if err != nil {
		p.kill() // unblocks the writer
	}
	werr := <-written
	stopped := expire()
	if err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The pipes' deadlines are ctx's: its own timer fires
			// at the same time, if it has not already.
			<-ctx.Done()
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, false, err
	}
	if !stopped {
		return out, false, nil
	}
	p.in.SetWriteDeadline(time.Time{})
	p.out.SetReadDeadline(time.Time{})
	return out, true, nil
}

// readUnit reads up to the NUL that ends the output unit.
func (p *pipeline) readUnit(maxOut int) ([]byte, error) {
	buf := make([]byte, 0, 16<<10)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf))
		}
		n, err := p.out.Read(buf[len(buf):cap(buf)])
		if i := bytes.IndexByte(buf[len(buf):len(buf)+n], 0); i >= 0 {
			if i != n-1 {
				return nil, errFraming
			}
			buf = buf[:len(buf)+i]
			if len(buf) > maxOut {
				return nil, errOutputTooLarge
			}
			return buf, nil
		}
		buf = buf[:len(buf)+n]
		if len(buf) > maxOut {
			return nil, errOutputTooLarge
		}
		if errors.Is(err, io.EOF) {
			return nil, errPipelineExited
		}
		if err != nil {
			return nil, err
		}
	}
}

func isLang(s string) bool {
	if len(s) < 2 || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 8 {
		return s[:8] + "…"
	}
	return s
}

// iso6393 returns the ISO 639-3 code of an ISO 639-1 code Apertium has
// pairs for, and any other code unchanged.
func iso6393(code string) string {
	if c, ok := iso6391To3[code]; ok {
		return c
	}
	return code
}

var iso6391To3 = map[string]string{
	"af": "afr", "an": "arg", "be": "bel", "bg": "bul", "br": "bre", "ca": "cat", "da": "dan", "de": "deu",
	"en": "eng", "eo": "epo", "es": "spa", "eu": "eus", "fr": "fra", "gl": "glg", "hi": "hin", "id": "ind",
	"is": "isl", "it": "ita", "mk": "mkd", "ms": "zlm", "nb": "nob", "nl": "nld", "nn": "nno", "no": "nor",
	"oc": "oci", "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sc": "srd", "sl": "slv", "sv": "swe",
	"uk": "ukr", "ur": "urd",
}

// debianPackage names the Debian package holding the pair of two ISO
// 639-3 codes, in either direction.
func debianPackage(from, to string) string {
	for _, p := range []string{from + "-" + to, to + "-" + from} {
		if slices.Contains(debianPairs, p) {
			return "apertium-" + p
		}
	}
	return "apertium-" + from + "-" + to
}

// debianPairs are the pairs Debian 12 packages under 3-letter names.
var debianPairs = []string{
	"afr-nld", "arg-cat", "bel-rus", "cat-ita", "cat-srd", "dan-nor", "eng-cat", "eng-spa", "fra-cat", "fra-frp",
	"hbs-eng", "hbs-mkd", "hbs-slv", "ind-zlm", "isl-eng", "isl-swe", "mkd-bul", "mkd-eng", "nno-nob", "oci-fra",
	"pol-szl", "por-cat", "rus-ukr", "spa-arg", "spa-ast", "spa-cat", "spa-ita", "srd-ita", "swe-dan", "swe-nor",
	"urd-hin",
}
