package faulttest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/proto"
)

// TestGatewayKilledUnderLoad kills the gateway process with SIGKILL while
// clients send requests and while an account has just been created, then
// starts it again on the same address with the same files (SQLite, WAL).
// No enrollment, account or pool may be lost: every worker is listed
// again without enrolling anew, the tenant made just before the kill and
// the provider credentials work, and every client's requests succeed
// again after the restart without the client being rebuilt.
func TestGatewayKilledUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := startGateway(t, "gateway", dir, "127.0.0.1:0", nil)
	providers := []provider{newProvider(t, g, g, dir, "provider-a"), newProvider(t, g, g, dir, "provider-b")}
	tenant := newTenant(t, g, dir, "tenant")
	workers := []string{"worker-a1", "worker-a2", "worker-b1"}
	for i, id := range workers {
		startWorker(t, g, providers[min(i/2, 1)], id)
	}
	g.waitActive(t, workers...)
	g.adminCLI(t, "pool create", "-id", "pool-1", "-tenant", "tenant", "-workers", "worker-b1", "-slots", "1")
	ctx := t.Context()

	// Clients in a loop, each counting its successes; failures are
	// expected while the gateway is down, and logged once per class.
	const clients = 4
	var (
		oks      [clients]atomic.Int64
		failures sync.Map // error text -> count
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for i := range clients {
		c := newClient(t, g, tenant, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				res, err := c.Summarize(rctx, document, client.SummarizeOptions{Sentences: 2})
				cancel()
				switch {
				case err != nil:
					n, _ := failures.LoadOrStore(err.Error(), new(atomic.Int64))
					n.(*atomic.Int64).Add(1)
					time.Sleep(100 * time.Millisecond)
				case checkSummary(res.Text) != nil:
					t.Errorf("client %d: %v", i, checkSummary(res.Text))
				default:
					oks[i].Add(1)
				}
			}
		}()
	}
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})
	okCount := func() (n int64) {
		for i := range clients {
			n += oks[i].Load()
		}
		return n
	}
	eventually(t, stateTimeout, "requests succeeding under load", func() error {
		if n := okCount(); n < 3*clients {
			return fmt.Errorf("%d requests succeeded", n)
		}
		return nil
	})

	// An account created just before the crash: the CLI has its answer,
	// so the gateway has committed it.
	late := newTenant(t, g, dir, "tenant-late")
	g.signal(t, os.Kill)
	exit := g.wait(t, stateTimeout)
	before := okCount()
	t.Logf("killed the gateway (%v) after %d requests succeeded", exit, before)

	g = g.restart(t, "gateway-restarted")
	// Enrollments are back from the store at once, before any worker
	// could enroll anew: every worker is listed.
	st, err := g.status()
	if err != nil {
		t.Fatalf("admin status after the restart: %v", err)
	}
	for _, id := range workers {
		if _, ok := workerStatus(st, id); !ok {
			t.Errorf("after the restart: worker %s not listed in %+v", id, st.Workers)
		}
	}
	if err := checkPool(st, proto.PoolSpec{ID: "pool-1", TenantID: "tenant", Workers: []string{"worker-b1"}, Slots: 1}); err != nil {
		t.Errorf("after the restart: %v", err)
	}
	// The accounts' credentials work.
	if _, err := newClient(t, g, late, 2).Status(ctx); err != nil {
		t.Errorf("the tenant created just before the kill: %v", err)
	}
	for _, p := range providers {
		cli(t, "provider", "register-key", "-gateway", g.url, "-gateway-ca", g.ca, "-credential-file", p.cred, "-key-file", p.key)
	}
	// Every client succeeds again, and the workers are served as loaded,
	// none having enrolled again.
	afterRestart := [clients]int64{}
	for i := range clients {
		afterRestart[i] = oks[i].Load()
	}
	eventually(t, stateTimeout, "every client succeeding after the restart", func() error {
		for i := range clients {
			if oks[i].Load() <= afterRestart[i] {
				return fmt.Errorf("client %d: no success since the restart", i)
			}
		}
		return nil
	})
	g.waitActive(t, workers...)
	close(stop)
	wg.Wait()
	failures.Range(func(k, v any) bool {
		t.Logf("failed while the gateway was down or starting: %d × %q", v.(*atomic.Int64).Load(), k)
		return true
	})
	t.Logf("%d requests succeeded before the kill, %d in all", before, okCount())
	if rec := findRecord(g.out.String(), "worker admitted"); rec != nil {
		t.Logf("note: a worker enrolled again after the restart: %v", rec)
	}
}
