// Package netproc runs a sealgate network as real processes on
// 127.0.0.1: the sealgate gateway and sealgate-worker binaries, built from
// this module, set up with the sealgate CLI (`sealgate admin ...`,
// `sealgate provider ...`), and started, signalled, killed and restarted
// one by one. The fault tests (internal/faulttest) and scripts/e2e use it.
//
// INSECURE: the gateways it starts admit workers on the simulated TEE
// (attestation/sim), and the workers it starts run on it. It is for tests
// and development only; nothing in the product imports it.
//
// Every call that waits takes a context, and every process it starts is
// the caller's to kill (Proc.Kill); on Linux the kernel also kills them
// if the process that started them dies.
package netproc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// PollEvery is how often the package's waits look again.
const PollEvery = 50 * time.Millisecond

// LogBuffer collects a process's output. It is safe for concurrent use.
type LogBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Proc is a running sealgate or sealgate-worker process, its output (both
// streams) collected in Out and, when Start's tee is not nil, copied
// there too.
type Proc struct {
	Name string
	Bin  string
	Args []string
	Env  []string // added to the environment by Start
	Cmd  *exec.Cmd
	Out  *LogBuffer
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result; read only after done is closed
}

// ChildEnv is this process's environment without the variables the
// commands read, so that the caller's own settings do not leak into the
// network, followed by extra.
func ChildEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SEALGATE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// HasEnv reports whether env sets name.
func HasEnv(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// Start starts bin with args, with ChildEnv(env...) as its environment.
// Its output goes to the Proc's Out and, when tee is not nil, to tee
// (whose errors are ignored).
func Start(name string, env []string, tee io.Writer, bin string, args ...string) (*Proc, error) {
	p := &Proc{Name: name, Bin: bin, Args: args, Env: env, Out: &LogBuffer{}}
	if err := p.start(tee); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Proc) start(tee io.Writer) error {
	p.Cmd = exec.Command(p.Bin, p.Args...)
	p.Cmd.Env = ChildEnv(p.Env...)
	if tee != nil {
		p.Cmd.Stdout = multiWriter{p.Out, tee}
	} else {
		p.Cmd.Stdout = p.Out
	}
	p.Cmd.Stderr = p.Cmd.Stdout
	setParentDeathSignal(p.Cmd)
	p.done = make(chan struct{})
	if err := p.Cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.Name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	return nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Kill ends the process with SIGKILL, which also ends a stopped one, and
// waits for it. It does nothing to a process that has exited.
func (p *Proc) Kill() {
	if !p.Exited() {
		p.Cmd.Process.Kill()
	}
	<-p.done
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process exited (exec.Cmd.Wait's error); nil while it
// runs.
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error {
	if err := p.Cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling %s with %v: %w", p.Name, sig, err)
	}
	return nil
}

// Wait waits for the process to exit and returns how it exited, or ctx's
// error first.
func (p *Proc) Wait(ctx context.Context) (exit error, err error) {
	select {
	case <-p.done:
		return p.err, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s did not exit: %w", p.Name, context.Cause(ctx))
	}
}

// Restart starts a process that has exited again, with the same command
// line, environment and output.
func (p *Proc) Restart(tee io.Writer) error {
	if !p.Exited() {
		return fmt.Errorf("restarting %s while it runs (pid %d)", p.Name, p.Pid())
	}
	return p.start(tee)
}

// WaitRecord waits for the process to log a JSON record whose msg is msg
// and returns the record. It fails when ctx ends first or the process
// exits without logging it.
func (p *Proc) WaitRecord(ctx context.Context, msg string) (map[string]any, error) {
	for {
		if rec := FindRecord(p.Out.String(), msg); rec != nil {
			return rec, nil
		}
		if p.Exited() {
			return nil, fmt.Errorf("%s exited (%v) before logging %q:\n%s", p.Name, p.err, msg, LastLines(p.Out.String(), 40))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s logging %q: %w", p.Name, msg, context.Cause(ctx))
		case <-time.After(PollEvery):
		}
	}
}

// FindRecord returns the first JSON log record in out whose msg is msg,
// or nil.
func FindRecord(out, msg string) map[string]any {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			return rec
		}
	}
	return nil
}

// LastLines returns the last n lines of s, saying how many it left out.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[%d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// Poll calls f until it returns nil, every PollEvery, and returns f's
// last error wrapped with what when ctx ends first.
func Poll(ctx context.Context, what string, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last: %v)", what, context.Cause(ctx), err)
		case <-time.After(PollEvery):
		}
	}
}

// multiWriter writes to each of its writers in turn, ignoring the
// second's errors: a closed log file must not stop the process.
type multiWriter [2]io.Writer

func (m multiWriter) Write(p []byte) (int, error) {
	n, err := m[0].Write(p)
	m[1].Write(p)
	return n, err
}

var errNoGoMod = errors.New("no go.mod above the working directory")
