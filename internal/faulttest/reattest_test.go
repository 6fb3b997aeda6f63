//go:build unix

package faulttest

import (
	"fmt"
	"slices"
	"syscall"
	"testing"

	"github.com/sealgate/sealgate/proto"
)

// TestWorkerMissesReattestation stops a worker process (SIGSTOP) so that
// it misses its re-attestation challenges: the gateway must drain it (no
// longer listed to clients, which are served by the other worker), then
// evict it after -evict-after, while the other worker stays active. Once
// the worker runs again (SIGCONT) it enrolls again and is active.
func TestWorkerMissesReattestation(t *testing.T) {
	t.Parallel()
	const reattest = "2s"
	dir := t.TempDir()
	g := startGateway(t, "gateway", dir, "127.0.0.1:0", nil, "-reattest", reattest, "-evict-after", "3s")
	pa := newProvider(t, g, g, dir, "provider-a")
	pb := newProvider(t, g, g, dir, "provider-b")
	tenant := newTenant(t, g, dir, "tenant")
	stopped := startWorker(t, g, pa, "worker-a", "-reattest", reattest)
	startWorker(t, g, pb, "worker-b", "-reattest", reattest)
	enrolled := g.waitActive(t, "worker-a", "worker-b")
	// A worker stops in the middle of its life, after the gateway has
	// challenged it and holds a connection to it.
	first, _ := workerStatus(enrolled, "worker-a")
	g.waitStatus(t, stateTimeout, "worker-a re-attested once", func(st proto.Status) error {
		if w, _ := workerStatus(st, "worker-a"); !w.AttestedAt.After(first.AttestedAt) {
			return fmt.Errorf("worker-a attested at %v, as when it enrolled", w.AttestedAt)
		}
		if n := g.metric(t, "reattestations_total", `result="ok"`); n < 2 {
			return fmt.Errorf("reattestations_total{result=ok} = %v, want >= 2", n)
		}
		return nil
	})
	c := newClient(t, g, tenant, 2)
	ctx := t.Context()
	if ids, err := listed(ctx, c, proto.TaskSummarize); err != nil || len(ids) != 2 {
		t.Fatalf("listing before the stop: %v, %v; want both workers", ids, err)
	}

	stopped.signal(t, syscall.SIGSTOP)
	t.Cleanup(func() { stopped.Cmd.Process.Signal(syscall.SIGCONT) })

	g.waitStatus(t, stateTimeout, "worker-a draining", func(st proto.Status) error {
		if w, _ := workerStatus(st, "worker-a"); w.State != "draining" {
			return fmt.Errorf("worker-a: found %+v, want state draining", w)
		}
		return nil
	})
	// A draining worker is not listed; requests go to the other one.
	ids, err := listed(ctx, c, proto.TaskSummarize)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"worker-b"}) {
		t.Fatalf("listing while worker-a drains: %v, want [worker-b]", ids)
	}
	res, err := summarize(ctx, c)
	if err != nil {
		t.Fatalf("request while worker-a drains: %v", err)
	}
	if res.Worker.ID != "worker-b" || len(res.Candidates) != 1 {
		t.Fatalf("request while worker-a drains: answered by %s, sealed to %d candidates; want worker-b alone", res.Worker.ID, len(res.Candidates))
	}
	if n := g.metric(t, "drains_total", `reason="reattestation_failed"`); n < 1 {
		t.Errorf("drains_total{reason=reattestation_failed} = %v, want >= 1", n)
	}

	st := g.waitStatus(t, stateTimeout, "worker-a evicted", func(st proto.Status) error {
		if w, ok := workerStatus(st, "worker-a"); ok {
			return fmt.Errorf("worker-a still there: %+v", w)
		}
		return nil
	})
	if w, ok := workerStatus(st, "worker-b"); !ok || w.State != "active" {
		t.Errorf("worker-b after worker-a's eviction: %+v, want active", w)
	}
	if n := g.metric(t, "evictions_total"); n < 1 {
		t.Errorf("evictions_total = %v, want >= 1", n)
	}

	// Running again, the worker sees no challenge, enrolls again, and
	// is listed again.
	stopped.signal(t, syscall.SIGCONT)
	g.waitActive(t, "worker-a")
	eventually(t, stateTimeout, "worker-a listed again", func() error {
		ids, err := listed(ctx, c, proto.TaskSummarize)
		if err != nil {
			return err
		}
		if !slices.Contains(ids, "worker-a") {
			return fmt.Errorf("listed %v", ids)
		}
		return nil
	})
}
