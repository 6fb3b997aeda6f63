//go:build unix

package faulttest

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// TestGatewayRestart stops a gateway with SIGTERM and starts it again
// with the same flags and files (SQLite): no account, pool or worker may
// be lost, the tenant's credential and the provider's must still work,
// the gateway must re-attest the workers it loaded, and requests must be
// served again.
func TestGatewayRestart(t *testing.T) {
	t.Parallel()
	const reattest = "2s" // far below the simulated policy's max_evidence_age of 15m
	dir := t.TempDir()
	g := startGateway(t, "gateway", dir, "127.0.0.1:0", nil, "-reattest", reattest)
	pa := newProvider(t, g, g, dir, "provider-a")
	pb := newProvider(t, g, g, dir, "provider-b")
	tenant := newTenant(t, g, dir, "tenant")
	startWorker(t, g, pa, "worker-a", "-reattest", reattest)
	startWorker(t, g, pb, "worker-b", "-reattest", reattest)
	g.waitActive(t, "worker-a", "worker-b")
	g.adminCLI(t, "pool create", "-id", "pool-1", "-tenant", "tenant", "-workers", "worker-a", "-slots", "2")
	c := newClient(t, g, tenant, 2)
	ctx := t.Context()
	res, err := summarize(ctx, c)
	if err != nil {
		t.Fatalf("request before the restart: %v", err)
	}
	if err := checkSummary(res.Text); err != nil {
		t.Fatal(err)
	}

	g.signal(t, syscall.SIGTERM)
	if err := g.wait(t, stateTimeout); err != nil {
		t.Fatalf("gateway exited with %v after SIGTERM, want status 0", err)
	}
	stopped := time.Now()
	g = g.restart(t, "gateway-restarted")

	// What was stored is back at once: New loads it before serving.
	st, err := g.status()
	if err != nil {
		t.Fatalf("admin status after the restart (admin credential): %v", err)
	}
	if err := checkPool(st, proto.PoolSpec{ID: "pool-1", TenantID: "tenant", Workers: []string{"worker-a"}, Slots: 2}); err != nil {
		t.Errorf("after the restart: %v", err)
	}
	for _, id := range []string{"worker-a", "worker-b"} {
		if _, ok := workerStatus(st, id); !ok {
			t.Errorf("after the restart: worker %s not listed in %+v", id, st.Workers)
		}
	}
	// The tenant's credential works, and the tenant sees its pool.
	tst, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("tenant status after the restart: %v", err)
	}
	if err := checkPool(tst, proto.PoolSpec{ID: "pool-1", TenantID: "tenant", Workers: []string{"worker-a"}, Slots: 2}); err != nil {
		t.Errorf("tenant status after the restart: %v", err)
	}
	// The provider's credential works.
	cli(t, "provider", "register-key", "-gateway", g.url, "-gateway-ca", g.ca, "-credential-file", pa.cred, "-key-file", pa.key)

	// The gateway challenges the workers it loaded: their attestation
	// times move past the restart, and challenges (not only the workers'
	// own re-enrollment) succeeded.
	g.waitStatus(t, stateTimeout, "both workers re-attested after the restart", func(st proto.Status) error {
		for _, id := range []string{"worker-a", "worker-b"} {
			w, ok := workerStatus(st, id)
			switch {
			case !ok:
				return fmt.Errorf("worker %s not listed", id)
			case w.State != "active":
				return fmt.Errorf("worker %s is %s, want active", id, w.State)
			case !w.AttestedAt.After(stopped):
				return fmt.Errorf("worker %s attested at %v, before the restart at %v", id, w.AttestedAt, stopped)
			}
		}
		return nil
	})
	eventually(t, stateTimeout, "a successful re-attestation challenge", func() error {
		if n := g.metric(t, "reattestations_total", `result="ok"`); n < 1 {
			return fmt.Errorf("reattestations_total{result=ok} = %v, want >= 1", n)
		}
		return nil
	})

	// Requests are served again, the pool's worker listed first.
	ws, _, err := c.Workers(ctx, proto.TaskSummarize)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].ID != "worker-a" || ws[0].Pool != "pool-1" {
		t.Errorf("listing after the restart: %+v, want worker-a of pool-1 first, then worker-b", ws)
	}
	res, err = summarize(ctx, c)
	if err != nil {
		t.Fatalf("request after the restart: %v", err)
	}
	if err := checkSummary(res.Text); err != nil {
		t.Fatal(err)
	}
}

// checkPool checks that st lists a pool as want says.
func checkPool(st proto.Status, want proto.PoolSpec) error {
	i := slices.IndexFunc(st.Pools, func(p proto.PoolStatus) bool { return p.ID == want.ID })
	if i < 0 {
		return fmt.Errorf("pool %s not listed in %+v", want.ID, st.Pools)
	}
	p := st.Pools[i]
	if p.TenantID != want.TenantID || !slices.Equal(p.Workers, want.Workers) || p.Slots != want.Slots || p.Lend != want.Lend {
		return fmt.Errorf("pool %s: found %+v, want %+v", want.ID, p.PoolSpec, want)
	}
	return nil
}
