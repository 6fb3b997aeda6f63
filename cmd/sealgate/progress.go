package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sealgate/sealgate/proto"
)

const (
	// progressMinInput is the input size from which a terminal shows
	// progress without -progress.
	progressMinInput = 256 << 10
	// progressSlowRead is how long reading the input may take before a
	// terminal shows progress without -progress, when stdin is a pipe.
	progressSlowRead = time.Second
	// progressRedrawTTY and progressRedrawPlain space out the lines that
	// only update a byte count; a change of stage is shown at once.
	progressRedrawTTY   = 100 * time.Millisecond
	progressRedrawPlain = 2 * time.Second
)

// progressFlags are the task commands' -progress and -quiet.
type progressFlags struct {
	force, quiet bool
}

func (f *progressFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.force, "progress", false, "show progress on stderr whatever the input's size, as plain lines when stderr is not a terminal (default: on a terminal, for inputs over 256 KiB or slow to read)")
	fs.BoolVar(&f.quiet, "quiet", false, "show no progress on stderr")
}

// start returns the progress reporter of a task command writing to
// stderr and reading stdin, or nil, which reports nothing: with -quiet,
// or when stderr is not a terminal and -progress is not set.
func (f progressFlags) start(stderr, stdin *os.File) (*progress, error) {
	if f.force && f.quiet {
		return nil, &usageError{"-progress and -quiet are exclusive"}
	}
	tty := isTerminal(stderr)
	if f.quiet || !tty && !f.force {
		return nil, nil
	}
	return newProgress(progressConfig{W: stderr, TTY: tty, Always: f.force, SlowRead: !isTerminal(stdin), Now: time.Now}), nil
}

// isTerminal reports whether f is a character device, such as a terminal.
// /dev/null is one too, where progress lines are harmless.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressConfig configures a progress reporter.
type progressConfig struct {
	// W receives the lines.
	W io.Writer
	// TTY rewrites one line in place with carriage returns; false writes
	// a line per change.
	TTY bool
	// Always reports from the start; false waits until the input proves
	// large (progressMinInput) or, with SlowRead, slow to read.
	Always bool
	// SlowRead lets a slow read turn reporting on. False when stdin is a
	// terminal, where a person types and a status line would get in the
	// way.
	SlowRead bool
	// Now is the clock.
	Now func() time.Time
}

// stage is where a task command is. Stages only move forward.
type stage int

const (
	stageReading   stage = iota // reading the input; counts bytes
	stageListing                // asking the gateway for candidates
	stageVerifying              // the listing arrived: verifying it, choosing, sealing
	stageSending                // sending the sealed request; its size when known
	stageWaiting                // sent: waiting for the answer's first byte
	stageReceiving              // the sealed answer is arriving
	stageDone                   // the answer is complete; counts its bytes
)

// progress reports a task command's stages on stderr. It never shows the
// input or the output, only their sizes. A nil *progress reports nothing,
// and each of its methods does nothing.
type progress struct {
	cfg   progressConfig
	began time.Time

	mu sync.Mutex // guards the fields below: the HTTP transport calls the trace hooks from its own goroutines
	on bool       // lines are being written
	// stage and n are where the command is and that stage's byte count
	// (-1: unknown).
	stage stage
	n     int64
	// sealedType and length are what the request being written has shown
	// of its headers so far: a sealed request's media type, its length.
	sealedType bool
	length     int64
	shown      string    // the last line written
	width      int       // its width, to blank a shorter one on a terminal
	drawn      time.Time // when it was written
	pending    bool      // the count changed since
	ended      bool      // the last line is finished
}

func newProgress(cfg progressConfig) *progress {
	return &progress{cfg: cfg, began: cfg.Now(), on: cfg.Always, length: -1}
}

// reader returns r counting what is read from it as the input.
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &countingReader{r: r, p: p}
}

type countingReader struct {
	r io.Reader
	p *progress
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.p.read(c.n)
	return n, err
}

// read records that n bytes of input have been read, turning reporting on
// when the input proves large or slow.
func (p *progress) read(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stage != stageReading {
		return
	}
	p.n = n
	if !p.on && (n >= progressMinInput || p.cfg.SlowRead && p.cfg.Now().Sub(p.began) >= progressSlowRead) {
		p.on = true
		p.draw(true)
		return
	}
	p.draw(false)
}

// watch ends the reading stage and returns ctx carrying an HTTP trace that
// follows the request through the client's calls to the gateway: the
// listing, the sealed request (recognized by its media type,
// proto.MediaTypeRequest), the wait and the answer.
func (p *progress) watch(ctx context.Context) context.Context {
	if p == nil {
		return ctx
	}
	p.mu.Lock()
	p.advance(stageListing, -1)
	p.mu.Unlock()
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteHeaderField:     p.wroteHeaderField,
		WroteHeaders:         p.wroteHeaders,
		WroteRequest:         func(httptrace.WroteRequestInfo) { p.wroteRequest() },
		GotFirstResponseByte: p.gotFirstResponseByte,
	})
}

// wroteHeaderField notes the headers that tell the sealed request apart
// and its length. HTTP/1 writes Content-Length before Content-Type and
// HTTP/2 after, so wroteHeaders acts once both are known. Requests other
// than the sealed one are written before it, never during.
func (p *progress) wroteHeaderField(key string, value []string) {
	if len(value) != 1 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case strings.EqualFold(key, "Content-Type"):
		p.sealedType = value[0] == proto.MediaTypeRequest
	case strings.EqualFold(key, "Content-Length"):
		if n, err := strconv.ParseInt(value[0], 10, 64); err == nil {
			p.length = n
		}
	}
}

func (p *progress) wroteHeaders() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sealedType {
		p.advance(stageSending, p.length)
	}
	p.sealedType, p.length = false, -1
}

func (p *progress) wroteRequest() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stage == stageSending {
		p.advance(stageWaiting, -1)
	}
}

func (p *progress) gotFirstResponseByte() {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.stage {
	case stageListing:
		p.advance(stageVerifying, -1)
	case stageSending, stageWaiting: // a gateway may answer before the body is all sent
		p.advance(stageReceiving, -1)
	}
}

// done reports the answer complete, with its size, and ends the line.
func (p *progress) done(received int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advance(stageDone, int64(received))
	p.end()
}

// close ends the line if done has not: before the command prints its
// error, or its output.
func (p *progress) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.end()
}

// advance moves to stage s with count n, unless the command is already
// there or past it. p.mu is held.
func (p *progress) advance(s stage, n int64) {
	if s <= p.stage || p.ended {
		return
	}
	if p.pending && !p.cfg.TTY {
		p.draw(true) // the previous stage's final count
	}
	p.stage, p.n = s, n
	p.draw(true)
}

// end finishes the line on a terminal. p.mu is held.
func (p *progress) end() {
	if p.on && p.cfg.TTY && !p.ended && p.shown != "" {
		io.WriteString(p.cfg.W, "\n")
	}
	p.ended = true
}

// draw writes the current line when reporting is on and, unless force,
// when the last one is old enough. p.mu is held.
func (p *progress) draw(force bool) {
	if !p.on || p.ended {
		return
	}
	now := p.cfg.Now()
	line := "sealgate: " + p.status(now)
	interval := progressRedrawPlain
	if p.cfg.TTY {
		interval = progressRedrawTTY
	}
	if line == p.shown || !force && now.Sub(p.drawn) < interval {
		p.pending = line != p.shown
		return
	}
	if p.cfg.TTY {
		w := utf8.RuneCountInString(line)
		fmt.Fprintf(p.cfg.W, "\r%s%s", line, strings.Repeat(" ", max(0, p.width-w)))
		p.width = w
	} else {
		fmt.Fprintln(p.cfg.W, line)
	}
	p.shown, p.drawn, p.pending = line, now, false
}

// status describes the current stage. p.mu is held.
func (p *progress) status(now time.Time) string {
	switch p.stage {
	case stageReading:
		return "reading input: " + byteSize(p.n)
	case stageListing:
		return "listing candidates"
	case stageVerifying:
		return "verifying candidates and sealing"
	case stageSending:
		if p.n >= 0 {
			return "sending the sealed request: " + byteSize(p.n)
		}
		return "sending the sealed request"
	case stageWaiting:
		return "waiting for the first byte"
	case stageReceiving:
		return "receiving"
	}
	took := now.Sub(p.began)
	if took < time.Second {
		took = took.Round(time.Millisecond)
	} else {
		took = took.Round(100 * time.Millisecond)
	}
	return fmt.Sprintf("done in %v: %s received", took, byteSize(p.n))
}

// byteSize formats n bytes for a person.
func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
