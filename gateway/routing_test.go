package gateway_test

import (
	"net/http"
	"testing"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/breaker"
	"github.com/sealgate/sealgate/proto"
)

// breakerOnClock puts the workers' circuit breakers on the env's clock.
func breakerOnClock(c *gateway.Config) { c.Breaker.Now = c.Now }

func TestRoutingSkipsFullWorkers(t *testing.T) {
	e := newEnv(t)
	full := newWorkerDouble(t, "full", e.clock)
	full.capacity = 1
	free := newWorkerDouble(t, "free", e.clock)
	free.capacity = 1
	e.register(full, proto.TaskSummarize)
	e.register(free, proto.TaskSummarize)

	held := e.relayInBackground(e.seal(proto.TaskSummarize, "hold", full.key()), "hold")
	<-full.held
	hits := full.hits.Load()
	// Whatever the random pick, the full worker is never tried.
	for range 5 {
		e.relayOK(e.seal(proto.TaskSummarize, "hello", full.key(), free.key()), "hello", free)
	}
	if full.hits.Load() != hits {
		t.Fatalf("the full worker got %d requests, want none", full.hits.Load()-hits)
	}

	// With both full, the answer is 503 with Retry-After and nothing
	// reaches a worker.
	heldFree := e.relayInBackground(e.seal(proto.TaskSummarize, "hold", free.key()), "hold")
	<-free.held
	freeHits := free.hits.Load()
	status, code, ra := e.relayRefused(e.tenant, e.seal(proto.TaskSummarize, "hello", full.key(), free.key()))
	if status != http.StatusServiceUnavailable || code != "overloaded" || ra != "1" {
		t.Fatalf("all full: found %d %s (Retry-After %q), want 503 overloaded with Retry-After 1", status, code, ra)
	}
	if full.hits.Load() != hits || free.hits.Load() != freeHits {
		t.Fatal("a request refused for want of capacity reached a worker")
	}
	close(full.release)
	close(free.release)
	for _, ch := range []<-chan error{held, heldFree} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	e.relayOK(e.seal(proto.TaskSummarize, "later", full.key()), "later", full)
}

// TestRoutingPrefersTheLessLoaded checks the two choices: with one worker
// at 2 of 4 and the other idle, every request goes to the idle one.
func TestRoutingPrefersTheLessLoaded(t *testing.T) {
	e := newEnv(t)
	busy := newWorkerDouble(t, "busy", e.clock)
	idle := newWorkerDouble(t, "idle", e.clock)
	e.register(busy, proto.TaskSummarize)
	e.register(idle, proto.TaskSummarize)
	var held []<-chan error
	for range 2 {
		held = append(held, e.relayInBackground(e.seal(proto.TaskSummarize, "hold", busy.key()), "hold"))
		<-busy.held
	}
	hits := busy.hits.Load()
	for range 8 {
		e.relayOK(e.seal(proto.TaskSummarize, "hello", busy.key(), idle.key()), "hello", idle)
	}
	if busy.hits.Load() != hits {
		t.Fatal("a request went to the busier worker")
	}
	close(busy.release)
	for _, ch := range held {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
}

func TestBreaker(t *testing.T) {
	e := newEnv(t, breakerOnClock)
	bad := newWorkerDouble(t, "bad", e.clock)
	good := newWorkerDouble(t, "good", e.clock)
	e.register(bad, proto.TaskSummarize)
	e.register(good, proto.TaskSummarize)
	bad.fail.Store(true)

	for i := range breaker.DefaultFailures {
		if ws, _ := e.workerStatus("bad"); ws.Breaker != "closed" {
			t.Fatalf("breaker after %d failures: %q, want closed", i, ws.Breaker)
		}
		status, code, _ := e.relayRefused(e.tenant, e.seal(proto.TaskSummarize, "x", bad.key()))
		if status != http.StatusBadGateway || code != "upstream_failed" {
			t.Fatalf("failure %d: found %d %s, want 502 upstream_failed", i+1, status, code)
		}
	}
	if got := bad.hits.Load(); got != breaker.DefaultFailures {
		t.Fatalf("bad worker hits: found %d, want %d", got, breaker.DefaultFailures)
	}
	if ws, _ := e.workerStatus("bad"); ws.Breaker != "open" || ws.State != "active" {
		t.Fatalf("bad worker after %d failures: %+v, want an active worker with an open breaker", breaker.DefaultFailures, ws)
	}
	if _, listed := e.candidates(proto.TaskSummarize)["bad"]; listed {
		t.Fatal("a worker with an open breaker is listed")
	}

	// Sealed only to it: 503 with Retry-After, and it is not called.
	status, code, ra := e.relayRefused(e.tenant, e.seal(proto.TaskSummarize, "x", bad.key()))
	if status != http.StatusServiceUnavailable || code != "overloaded" || ra == "" {
		t.Fatalf("only an open-breaker candidate: found %d %s (Retry-After %q), want 503 overloaded with Retry-After", status, code, ra)
	}
	// Sealed to it and a healthy one: the healthy one answers, and the
	// failing one is not touched.
	for range 5 {
		e.relayOK(e.seal(proto.TaskSummarize, "hello", bad.key(), good.key()), "hello", good)
	}
	if got := bad.hits.Load(); got != breaker.DefaultFailures {
		t.Fatalf("bad worker hits with its breaker open: found %d, want still %d", got, breaker.DefaultFailures)
	}

	// After the open interval one probe goes through; it fails, and the
	// breaker opens again for longer.
	e.clock.Advance(breaker.DefaultOpenFor)
	if status, code, _ := e.relayRefused(e.tenant, e.seal(proto.TaskSummarize, "x", bad.key())); status != http.StatusBadGateway || code != "upstream_failed" {
		t.Fatalf("failed probe: found %d %s, want 502 upstream_failed", status, code)
	}
	if got := bad.hits.Load(); got != breaker.DefaultFailures+1 {
		t.Fatalf("bad worker hits after the probe: found %d, want %d", got, breaker.DefaultFailures+1)
	}
	e.clock.Advance(breaker.DefaultOpenFor)
	if status, _, _ := e.relayRefused(e.tenant, e.seal(proto.TaskSummarize, "x", bad.key())); status != http.StatusServiceUnavailable {
		t.Fatalf("within the doubled interval: found %d, want 503", status)
	}

	// The worker recovers; the next probe succeeds and closes the
	// breaker, and the worker is listed again.
	bad.fail.Store(false)
	e.clock.Advance(breaker.DefaultOpenFor)
	e.relayOK(e.seal(proto.TaskSummarize, "probe", bad.key()), "probe", bad)
	if ws, _ := e.workerStatus("bad"); ws.Breaker != "closed" {
		t.Fatalf("breaker after a good probe: %q, want closed", ws.Breaker)
	}
	if _, listed := e.candidates(proto.TaskSummarize)["bad"]; !listed {
		t.Fatal("the recovered worker is not listed")
	}
}

// TestBreakerRecoversUnlisted checks that a worker whose breaker opened is
// not lost for good: clients no longer seal to it (it is not listed), so
// a passed re-attestation after the open interval is its probe.
func TestBreakerRecoversUnlisted(t *testing.T) {
	e := newEnv(t, breakerOnClock)
	w := newAttestingWorker(t, e, "w", nil)
	e.register(w.workerDouble, proto.TaskSummarize)
	w.fail.Store(true)
	for range breaker.DefaultFailures {
		e.relayRefused(e.tenant, e.seal(proto.TaskSummarize, "x", w.key()))
	}
	if ws, _ := e.workerStatus("w"); ws.Breaker != "open" {
		t.Fatalf("breaker: %q, want open", ws.Breaker)
	}
	w.fail.Store(false)
	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())
	if w.attests.Load() != 1 {
		t.Fatalf("attestations: found %d, want 1", w.attests.Load())
	}
	if ws, _ := e.workerStatus("w"); ws.Breaker != "closed" {
		t.Fatalf("breaker after a passed re-attestation past the open interval: %q, want closed", ws.Breaker)
	}
	if _, listed := e.candidates(proto.TaskSummarize)["w"]; !listed {
		t.Fatal("the worker is not listed after it recovered")
	}
	e.relayOK(e.seal(proto.TaskSummarize, "back", w.key()), "back", w.workerDouble)
}
