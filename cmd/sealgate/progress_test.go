package main

import (
	"context"
	"errors"
	"io"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/proto"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// secret is the input of these tests: no progress line may quote it.
const secret = "SECRET-PATIENT-RECORD "

// readAll reads chunks of size bytes from p.reader over an input of total
// bytes, advancing clock by step before each read.
func readAll(t *testing.T, p *progress, clock *fakeClock, total, size int, step time.Duration) {
	t.Helper()
	input := strings.Repeat(secret, total/len(secret)+1)[:total]
	r := p.reader(strings.NewReader(input))
	buf := make([]byte, size)
	for {
		clock.advance(step)
		_, err := r.Read(buf)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// sealedExchange drives ctx's HTTP trace as the client's calls to the
// gateway do over HTTP/1: the listing, one strict-mode evidence request,
// then the sealed request of sealedLen bytes and its answer.
func sealedExchange(ctx context.Context, sealedLen string) {
	tr := httptrace.ContextClientTrace(ctx)
	request := func(contentType, length string) {
		tr.WroteHeaderField("Host", []string{"gateway.example"})
		if length != "" {
			tr.WroteHeaderField("Content-Length", []string{length})
		}
		if contentType != "" {
			tr.WroteHeaderField("Content-Type", []string{contentType})
		}
		tr.WroteHeaders()
		tr.WroteRequest(httptrace.WroteRequestInfo{})
		tr.GotFirstResponseByte()
	}
	request("", "")                            // GET the candidates
	request("application/json", "120")         // POST fresh evidence (strict mode)
	request(proto.MediaTypeRequest, sealedLen) // POST the sealed request
}

func TestProgressPlainLines(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var out strings.Builder
	p := newProgress(progressConfig{W: &out, Always: true, Now: clock.now})
	readAll(t, p, clock, 300<<10, 100<<10, time.Second) // reads at 1s, 2s, 3s, then EOF at 4s
	ctx := p.watch(context.Background())
	clock.advance(time.Second)
	sealedExchange(ctx, "307500")
	p.done(2048)
	p.close()
	want := []string{
		"sealgate: reading input: 100.0 KiB",
		"sealgate: reading input: 300.0 KiB", // 200 KiB came within the redraw interval
		"sealgate: listing candidates",
		"sealgate: verifying candidates and sealing",
		"sealgate: sending the sealed request: 300.3 KiB",
		"sealgate: waiting for the first byte",
		"sealgate: receiving",
		"sealgate: done in 5s: 2.0 KiB received",
	}
	if got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); !slices.Equal(got, want) {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(out.String(), "SECRET") || strings.Contains(out.String(), "\r") {
		t.Fatalf("plain lines quote the input or use carriage returns: %q", out.String())
	}
}

// TestProgressPlainFinalCount: a count that changed within the redraw
// interval is written before the next stage's line.
func TestProgressPlainFinalCount(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	var out strings.Builder
	p := newProgress(progressConfig{W: &out, Always: true, Now: clock.now})
	readAll(t, p, clock, 3000, 1000, 10*time.Millisecond)
	p.watch(context.Background())
	want := "sealgate: reading input: 1000 B\nsealgate: reading input: 2.9 KiB\nsealgate: listing candidates\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

func TestProgressTerminal(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	var out strings.Builder
	p := newProgress(progressConfig{W: &out, TTY: true, SlowRead: true, Now: clock.now})
	readAll(t, p, clock, 300<<10, 100<<10, time.Millisecond) // turns on at 300 KiB, past progressMinInput
	ctx := p.watch(context.Background())
	sealedExchange(ctx, "1048576")
	clock.advance(1500 * time.Millisecond)
	p.done(10)
	p.close()
	s := out.String()
	if !strings.HasPrefix(s, "\r") || !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 || strings.Contains(s, "SECRET") {
		t.Fatalf("want one line rewritten in place, ended once: %q", s)
	}
	var got []string
	width := 0
	for _, seg := range strings.Split(strings.TrimSuffix(s[1:], "\n"), "\r") {
		if len(seg) < width {
			t.Errorf("%q is shorter than the line before (%d): its tail stays on screen", seg, width)
		}
		width = len(strings.TrimRight(seg, " "))
		got = append(got, strings.TrimRight(seg, " "))
	}
	want := []string{
		"sealgate: reading input: 300.0 KiB",
		"sealgate: listing candidates",
		"sealgate: verifying candidates and sealing",
		"sealgate: sending the sealed request: 1.0 MiB",
		"sealgate: waiting for the first byte",
		"sealgate: receiving",
		"sealgate: done in 1.5s: 10 B received",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestProgressOff: without -progress, a small input read quickly shows
// nothing, nor does a slow one typed on a terminal.
func TestProgressOff(t *testing.T) {
	for _, tt := range []struct {
		name     string
		slowRead bool
		step     time.Duration
	}{
		{"small and fast", true, time.Millisecond},
		{"slow from a terminal", false, time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(0, 0)}
			var out strings.Builder
			p := newProgress(progressConfig{W: &out, TTY: true, SlowRead: tt.slowRead, Now: clock.now})
			readAll(t, p, clock, 4000, 1000, tt.step)
			sealedExchange(p.watch(context.Background()), "5000")
			p.done(100)
			p.close()
			if out.Len() != 0 {
				t.Fatalf("wrote %q, want nothing", out.String())
			}
		})
	}
}

// TestProgressSlowRead: a pipe that takes more than progressSlowRead
// turns progress on mid-read.
func TestProgressSlowRead(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	var out strings.Builder
	p := newProgress(progressConfig{W: &out, SlowRead: true, Now: clock.now})
	readAll(t, p, clock, 30, 10, 600*time.Millisecond) // 10 B at 0.6s, 20 B at 1.2s, 30 B at 1.8s
	p.watch(context.Background())
	if want := "sealgate: reading input: 20 B\nsealgate: reading input: 30 B\nsealgate: listing candidates\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

// TestProgressHTTP2Headers: HTTP/2 writes content-length after
// content-type, in lower case.
func TestProgressHTTP2Headers(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	var out strings.Builder
	p := newProgress(progressConfig{W: &out, Always: true, Now: clock.now})
	tr := httptrace.ContextClientTrace(p.watch(context.Background()))
	tr.GotFirstResponseByte()
	tr.WroteHeaderField("content-type", []string{proto.MediaTypeRequest})
	tr.WroteHeaderField("content-length", []string{"2048"})
	tr.WroteHeaders()
	tr.GotFirstResponseByte() // before WroteRequest: the answer may start before the body is all sent
	tr.WroteRequest(httptrace.WroteRequestInfo{})
	p.close()
	want := "sealgate: listing candidates\nsealgate: verifying candidates and sealing\nsealgate: sending the sealed request: 2.0 KiB\nsealgate: receiving\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

// TestProgressFailure: an error ends the terminal line, so the error
// message starts on its own line.
func TestProgressFailure(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	var out strings.Builder
	p := newProgress(progressConfig{W: &out, TTY: true, Always: true, Now: clock.now})
	p.watch(context.Background())
	p.close()
	p.close()
	p.done(5) // after close: nothing more
	if want := "\rsealgate: listing candidates\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

func TestProgressNil(t *testing.T) {
	var p *progress
	r := strings.NewReader("x")
	ctx := context.Background()
	if p.reader(r) != io.Reader(r) || p.watch(ctx) != ctx {
		t.Fatal("a nil progress changed the reader or the context")
	}
	p.done(1)
	p.close()
}

func TestProgressFlags(t *testing.T) {
	file := func() *os.File {
		f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	notTTY := file()
	if _, err := (progressFlags{force: true, quiet: true}).start(notTTY, notTTY); err == nil || exitCode(err) != 2 {
		t.Errorf("-progress -quiet: %v, want a usage error", err)
	}
	for _, tt := range []struct {
		name      string
		flags     progressFlags
		wantShown bool
	}{
		{"default on a file", progressFlags{}, false},
		{"quiet", progressFlags{quiet: true}, false},
		{"forced on a file", progressFlags{force: true}, true},
	} {
		p, err := tt.flags.start(notTTY, notTTY)
		if err != nil || (p != nil) != tt.wantShown || p != nil && (p.cfg.TTY || !p.cfg.Always) {
			t.Errorf("%s: %+v, %v; want shown %v, as plain lines", tt.name, p, err, tt.wantShown)
		}
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 8 << 20: "8.0 MiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestCLIProgress runs summarize with -progress through a devnet: the
// stages come in order on stderr, as plain lines since stderr is a pipe,
// and never quote the input or the summary; without -progress a pipe gets
// none, whatever the input's size.
func TestCLIProgress(t *testing.T) {
	network, err := devnet.Start(context.Background(), devnet.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	cred, ca := networkFiles(t, network)
	args := []string{"summarize", "-gateway", network.GatewayURL, "-credential-file", cred, "-gateway-ca", ca, "-insecure-allow-simulated", "-sentences", "2"}

	r := sealgate(t, devnet.SampleDocument, append(args, "-progress")...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var stages []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if s, ok := strings.CutPrefix(l, "sealgate: "); ok && !strings.HasPrefix(s, "WARNING") {
			stage, _, _ := strings.Cut(s, ":")
			if strings.HasPrefix(stage, "done in ") {
				stage = "done"
			}
			if len(stages) == 0 || stages[len(stages)-1] != stage {
				stages = append(stages, stage)
			}
		}
	}
	want := []string{"reading input", "listing candidates", "verifying candidates and sealing", "sending the sealed request", "waiting for the first byte", "receiving", "done"}
	if !slices.Equal(stages, want) {
		t.Fatalf("stages %q, want %q\n%s", stages, want, r.stderr)
	}
	summary := strings.TrimSpace(r.stdout)
	if summary == "" || strings.Contains(r.stderr, summary[:20]) || strings.Contains(r.stderr, devnet.SampleDocument[:20]) {
		t.Fatalf("stderr quotes the text or there is no summary:\n%s\n%s", r.stdout, r.stderr)
	}

	large := strings.Repeat(devnet.SampleDocument+"\n\n", (progressMinInput/len(devnet.SampleDocument))+1)
	for _, extra := range [][]string{nil, {"-quiet"}} {
		r := sealgate(t, large, append(args, extra...)...)
		if r.code != 0 || strings.Contains(r.stderr, "reading input") {
			t.Errorf("%q: exit %d, stderr %q: want no progress on a pipe", extra, r.code, r.stderr)
		}
	}
	if r := sealgate(t, "x", append(args, "-progress", "-quiet")...); r.code != 2 || !strings.Contains(r.stderr, "exclusive") {
		t.Errorf("-progress -quiet: exit %d, %s", r.code, r.stderr)
	}
}
