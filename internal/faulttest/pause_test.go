//go:build unix

package faulttest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sealgate/sealgate/client"
)

// TestWorkerPausedWhileServing stops a worker process (SIGSTOP) while it
// streams answers, as a hung host would: its sockets stay open and it
// says nothing more. Every request must end, the ones it was streaming
// and the ones sent while it is stopped, with the whole answer (from the
// other worker, by failover when needed), the caller's deadline or a
// typed error; none may hang past its deadline, and none may yield part
// of an answer as a result. Once the worker runs again (SIGCONT),
// requests succeed again.
func TestWorkerPausedWhileServing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Each answer streams for about two seconds.
	modelA, modelB := startSlowModel(t, 20, 100*time.Millisecond), startSlowModel(t, 20, 100*time.Millisecond)
	want := modelA.reply()
	g := startGateway(t, "gateway", dir, "127.0.0.1:0", nil)
	pa := newProvider(t, g, g, dir, "provider-a")
	pb := newProvider(t, g, g, dir, "provider-b")
	tenant := newTenant(t, g, dir, "tenant")
	paused := startWorker(t, g, pa, "worker-a", modelWorkerArgs(modelA, 16)...)
	startWorker(t, g, pb, "worker-b", modelWorkerArgs(modelB, 16)...)
	g.waitActive(t, "worker-a", "worker-b")
	c := newClient(t, g, tenant, 2)
	// The test's own bound: a request still running when it passes hangs.
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()

	// The caller's deadline of each request: longer than a stream, far
	// shorter than the test's bound.
	const deadline = 6 * time.Second
	type outcome struct {
		res *client.Result
		err error
	}
	send := func(n int) <-chan outcome {
		out := make(chan outcome, n)
		for range n {
			go func() {
				rctx, cancel := context.WithTimeout(ctx, deadline)
				defer cancel()
				res, err := c.Summarize(rctx, document, client.SummarizeOptions{Sentences: 2})
				out <- outcome{res, err}
			}()
		}
		return out
	}
	// check collects n outcomes, failing the test on a hang, a partial
	// answer or an untyped error; it returns how many succeeded.
	check := func(phase string, out <-chan outcome, n int) (ok int) {
		t.Helper()
		for i := range n {
			var o outcome
			select {
			case o = <-out:
			case <-ctx.Done():
				t.Fatalf("%s: request %d of %d still running when the test's bound passed: it hangs", phase, i+1, n)
			}
			switch {
			case o.err == nil && o.res.Text != want:
				t.Errorf("%s: answer %q from %s, want the whole answer %q", phase, o.res.Text, o.res.Worker.ID, want)
			case o.err == nil:
				ok++
			default:
				if err := typedError(o.err); err != nil {
					t.Errorf("%s: %v", phase, err)
				}
				t.Logf("%s: request failed: %v", phase, o.err)
			}
		}
		return ok
	}

	if ok := check("before the pause", send(2), 2); ok != 2 {
		t.Fatalf("before the pause: %d of 2 requests succeeded", ok)
	}

	// Requests until worker-a streams at least one of them, then stop it.
	const inFlight = 6
	out := send(inFlight)
	eventually(t, startTimeout, "worker-a streaming", func() error {
		if modelA.active.Load() == 0 {
			return fmt.Errorf("worker-a streams nothing (worker-b streams %d)", modelB.active.Load())
		}
		return nil
	})
	streaming := modelA.active.Load()
	if err := paused.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { paused.Continue() })
	t.Logf("stopped worker-a (SIGSTOP) while it streamed %d answers", streaming)
	okInFlight := check("in flight at the pause", out, inFlight)
	if okInFlight > inFlight-int(streaming) {
		t.Errorf("in flight at the pause: %d of %d requests succeeded, want the %d worker-a was streaming to fail", okInFlight, inFlight, streaming)
	}

	// While it is stopped, requests are still sealed to it; each ends.
	const during = 6
	okDuring := check("sent during the pause", send(during), during)
	t.Logf("in flight at the pause: %d of %d succeeded; sent during it: %d of %d", okInFlight, inFlight, okDuring, during)
	if err := g.get("/healthz", nil); err != nil {
		t.Errorf("gateway health during the pause: %v", err)
	}

	if err := paused.Continue(); err != nil {
		t.Fatal(err)
	}
	// Running again, worker-a answers again.
	eventually(t, stateTimeout, "worker-a answering after SIGCONT", func() error {
		o := <-send(1)
		switch {
		case o.err != nil:
			return o.err
		case o.res.Text != want:
			return fmt.Errorf("answer %q, want %q", o.res.Text, want)
		case o.res.Worker.ID != "worker-a":
			return fmt.Errorf("answered by %s", o.res.Worker.ID)
		}
		return nil
	})
}
