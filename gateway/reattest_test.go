package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/proto"
)

// listedKey returns the key of w's bundle as listed to t1, and whether w
// is listed.
func (e *env) listedKey(id string) (proto.KeyID, bool) {
	e.t.Helper()
	v, ok := e.candidates(proto.TaskSummarize)[id]
	if !ok {
		return proto.KeyID{}, false
	}
	k, ok := v.HPKEKey(suite.KEM)
	if !ok {
		e.t.Fatalf("listed worker %s has no key for the suite", id)
	}
	return k.ID(), true
}

func TestReattestationRotatesKeys(t *testing.T) {
	e := newEnv(t)
	w := newAttestingWorker(t, e, "w", nil)
	e.register(w.workerDouble, proto.TaskSummarize)
	oldKey := w.key()

	// Not due yet: nothing is sent.
	e.clock.Advance(e.cfg.ReattestInterval - time.Second)
	e.gw.ReattestDue(t.Context())
	if n := w.attests.Load(); n != 0 {
		t.Fatalf("attestations before the interval: found %d, want 0", n)
	}

	e.clock.Advance(time.Second)
	e.gw.ReattestDue(t.Context())
	if n := w.attests.Load(); n != 1 {
		t.Fatalf("attestations after the interval: found %d, want 1", n)
	}
	newKey := w.key()
	if newKey.ID() == oldKey.ID() {
		t.Fatal("the double did not rotate its key")
	}
	if got, ok := e.listedKey("w"); !ok || got != newKey.ID() {
		t.Fatal("the listing does not carry the re-attested bundle")
	}
	ws, _ := e.workerStatus("w")
	if ws.State != "active" || !ws.AttestedAt.Equal(e.clock.Now()) || !ws.ExpiresAt.Equal(e.clock.Now().Add(15*time.Minute)) {
		t.Fatalf("status after re-attestation: %+v, want active, attested now, expiring in 15m", ws)
	}
	// The new key routes, and so does the old one until its evidence
	// expires.
	e.relayOK(e.seal(proto.TaskSummarize, "new", newKey), "new", w.workerDouble)
	e.relayOK(e.seal(proto.TaskSummarize, "old", oldKey), "old", w.workerDouble)

	// The next round is due an interval after this one, not before.
	e.gw.ReattestDue(t.Context())
	if n := w.attests.Load(); n != 1 {
		t.Fatalf("attestations right after one: found %d, want 1", n)
	}
	// The re-attested worker survives a restart with its new key.
	e.restart()
	e.relayOK(e.seal(proto.TaskSummarize, "after restart", newKey), "after restart", w.workerDouble)
}

func TestReattestationFailureDrainsThenEvicts(t *testing.T) {
	e := newEnv(t)
	w := newAttestingWorker(t, e, "w", nil)
	other := newAttestingWorker(t, e, "other", nil)
	e.register(w.workerDouble, proto.TaskSummarize)
	e.register(other.workerDouble, proto.TaskSummarize)
	drains := func() float64 {
		v, _ := metricValue(e.metrics(), `sealgate_gateway_drains_total{reason="reattestation_failed"}`)
		return v
	}
	if d := drains(); d != 0 {
		t.Fatalf("drains before: %v, want 0", d)
	}

	// A request is in flight when the worker fails its challenge.
	held := e.relayInBackground(e.seal(proto.TaskSummarize, "hold", w.key()), "hold")
	<-w.held
	w.failAttest.Store(true)
	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())
	drainedAt := e.clock.Now()

	if ws, _ := e.workerStatus("w"); ws.State != "draining" || ws.Outstanding != 1 {
		t.Fatalf("status after a failed challenge: %+v, want draining with the request in flight", ws)
	}
	if ws, _ := e.workerStatus("other"); ws.State != "active" {
		t.Fatalf("the other worker: %+v, want active", ws)
	}
	if _, listed := e.candidates(proto.TaskSummarize)["w"]; listed {
		t.Fatal("a drained worker is listed")
	}
	if d := drains(); d != 1 {
		t.Fatalf("drains after a failed challenge: %v, want 1", d)
	}
	// No new request reaches it.
	hits := w.hits.Load()
	if status, code, _ := e.relayRefused(e.tenant, e.seal(proto.TaskSummarize, "x", w.key())); status != http.StatusUnprocessableEntity || code != "unknown_candidates" {
		t.Fatalf("relay to a drained worker: found %d %s, want 422 unknown_candidates", status, code)
	}
	e.relayOK(e.seal(proto.TaskSummarize, "elsewhere", w.key(), other.key()), "elsewhere", other.workerDouble)
	if w.hits.Load() != hits {
		t.Fatal("a new request reached the drained worker")
	}
	// The in-flight request finishes.
	close(w.release)
	if err := <-held; err != nil {
		t.Fatalf("the in-flight request on the drained worker: %v", err)
	}

	// Still failing later rounds: still drained, counted once, and the
	// drain survives a restart.
	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())
	if n := w.attests.Load(); n != 2 {
		t.Fatalf("attestations of the drained worker: found %d, want 2 (a drained worker is challenged again)", n)
	}
	if d := drains(); d != 1 {
		t.Fatalf("drains after a second failure: %v, want still 1", d)
	}
	e.restart()
	if ws, ok := e.workerStatus("w"); !ok || ws.State != "draining" {
		t.Fatalf("status after restart: %+v, want draining", ws)
	}
	if _, listed := e.candidates(proto.TaskSummarize)["w"]; listed {
		t.Fatal("a drained worker is listed after a restart")
	}

	// EvictAfter after the drain it is gone; other keeps passing.
	e.clock.Advance(drainedAt.Add(gateway.DefaultEvictAfter).Sub(e.clock.Now()) - time.Second)
	e.gw.ReattestDue(t.Context())
	if _, ok := e.workerStatus("w"); !ok {
		t.Fatal("evicted before EvictAfter")
	}
	e.clock.Advance(time.Second)
	e.gw.ReattestDue(t.Context())
	if _, ok := e.workerStatus("w"); ok {
		t.Fatal("still known after EvictAfter")
	}
	if ws, _ := e.workerStatus("other"); ws.State != "active" {
		t.Fatalf("the other worker: %+v, want active", ws)
	}
	if status, code, _ := e.relayRefused(e.tenant, e.seal(proto.TaskSummarize, "x", w.key())); status != http.StatusUnprocessableEntity || code != "unknown_candidates" {
		t.Fatalf("relay to an evicted worker: found %d %s, want 422 unknown_candidates", status, code)
	}

	// The evicted worker enrolls again, and a sync does not undo it.
	w.failAttest.Store(false)
	e.register(w.workerDouble, proto.TaskSummarize)
	if err := e.gw.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.relayOK(e.seal(proto.TaskSummarize, "back", w.key()), "back", w.workerDouble)
	if ws, _ := e.workerStatus("w"); ws.State != "active" {
		t.Fatalf("re-enrolled worker: %+v, want active", ws)
	}
}

func TestDrainedWorkerRecovers(t *testing.T) {
	e := newEnv(t)
	w := newAttestingWorker(t, e, "w", nil)
	e.register(w.workerDouble, proto.TaskSummarize)
	w.failAttest.Store(true)
	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())
	if ws, _ := e.workerStatus("w"); ws.State != "draining" {
		t.Fatalf("after a failed challenge: %q, want draining", ws.State)
	}
	// The next challenge passes: active again, with new keys.
	w.failAttest.Store(false)
	e.clock.Advance(time.Minute)
	e.gw.ReattestDue(t.Context())
	if ws, _ := e.workerStatus("w"); ws.State != "active" {
		t.Fatalf("after a passed challenge: %q, want active", ws.State)
	}
	if got, ok := e.listedKey("w"); !ok || got != w.key().ID() {
		t.Fatal("the recovered worker is not listed with its new key")
	}
	e.relayOK(e.seal(proto.TaskSummarize, "back", w.key()), "back", w.workerDouble)
	// Past what would have been its eviction it is still there.
	e.clock.Advance(gateway.DefaultEvictAfter)
	e.gw.ReattestDue(t.Context())
	if ws, ok := e.workerStatus("w"); !ok || ws.State != "active" {
		t.Fatalf("long after recovering: %+v, want active", ws)
	}
}

func TestReattestationBoundToAnotherNonce(t *testing.T) {
	e := newEnv(t)
	w := newAttestingWorker(t, e, "w", nil)
	e.register(w.workerDouble, proto.TaskSummarize)
	oldKey := w.key()
	w.wrongNonce.Store(true)
	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())
	if n := w.attests.Load(); n != 1 {
		t.Fatalf("attestations: found %d, want 1", n)
	}
	if ws, _ := e.workerStatus("w"); ws.State != "draining" {
		t.Fatalf("after evidence bound to another nonce: %q, want draining", ws.State)
	}
	// The rotated key it announced is not routable.
	if status, code, _ := e.relayRefused(e.tenant, e.seal(proto.TaskSummarize, "x", w.key())); status != http.StatusUnprocessableEntity || code != "unknown_candidates" {
		t.Fatalf("relay to the unaccepted key: found %d %s, want 422 unknown_candidates", status, code)
	}
	if status, _, _ := e.relayRefused(e.tenant, e.seal(proto.TaskSummarize, "x", oldKey)); status != http.StatusUnprocessableEntity {
		t.Fatalf("relay to the drained worker's old key: found %d, want 422", status)
	}
}

// TestReattestationUnreachable drains a worker that does not answer at
// all.
func TestReattestationUnreachable(t *testing.T) {
	e := newEnv(t)
	w := newAttestingWorker(t, e, "w", nil)
	e.register(w.workerDouble, proto.TaskSummarize)
	w.close()
	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())
	if ws, _ := e.workerStatus("w"); ws.State != "draining" {
		t.Fatalf("an unreachable worker: %q, want draining", ws.State)
	}
}
