package faulttest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/internal/pgtest"
	"github.com/sealgate/sealgate/proto"
)

// TestReplicasOnPostgres runs two gateway processes on one PostgreSQL
// database, sharing the anchor key, the admin credential and the
// development certificate (which workers pin). Accounts made through
// either replica work on the other, and a worker enrolled through one is
// listed and routed through the other.
func TestReplicasOnPostgres(t *testing.T) {
	t.Parallel()
	env := []string{"SEALGATE_DATABASE=" + pgtest.DSN(t)}
	dir := t.TempDir()
	a := startGateway(t, "gateway-a", dir, "127.0.0.1:0", env)
	b := startGateway(t, "gateway-b", dir, "127.0.0.1:0", env)
	if findRecord(b.out.String(), "admin credential created; it is shown nowhere else") != nil {
		t.Fatal("gateway-b created an admin credential, want gateway-a's")
	}
	ctx := t.Context()

	// Accounts through A; a worker enrolled through A.
	pa := newProvider(t, a, a, dir, "provider-a")
	tenant := newTenant(t, a, dir, "tenant")
	startWorker(t, a, pa, "worker-a")
	a.waitActive(t, "worker-a")

	// B lists it to A's tenant once it has synced, and serves through it.
	cb := newClient(t, b, tenant, 2)
	waitListed(t, cb, "worker-a")
	okA, okB := a.metric(t, "requests_total", `outcome="ok"`), b.metric(t, "requests_total", `outcome="ok"`)
	res, err := summarize(ctx, cb)
	if err != nil {
		t.Fatalf("request through gateway-b to the worker enrolled through gateway-a: %v", err)
	}
	if err := checkSummary(res.Text); err != nil {
		t.Fatal(err)
	}
	if res.Worker.ID != "worker-a" {
		t.Fatalf("answered by %s, want worker-a", res.Worker.ID)
	}
	if gotA, gotB := a.metric(t, "requests_total", `outcome="ok"`)-okA, b.metric(t, "requests_total", `outcome="ok"`)-okB; gotA != 0 || gotB != 1 {
		t.Errorf("requests relayed: %v by gateway-a and %v by gateway-b, want 0 and 1", gotA, gotB)
	}
	b.waitActive(t, "worker-a")

	// A provider created on B registers its key and enrolls a worker
	// through A; both replicas list both providers' workers.
	pb := newProvider(t, b, a, dir, "provider-b")
	startWorker(t, a, pb, "worker-b")
	a.waitActive(t, "worker-a", "worker-b")
	waitListed(t, cb, "worker-a", "worker-b")
	res, err = summarize(ctx, cb)
	if err != nil {
		t.Fatalf("request through gateway-b sealed to both workers: %v", err)
	}
	var providers []string
	for _, w := range res.Candidates {
		providers = append(providers, w.ProviderID)
	}
	slices.Sort(providers)
	if !slices.Equal(providers, []string{"provider-a", "provider-b"}) {
		t.Errorf("sealed to candidates of providers %v, want provider-a and provider-b", providers)
	}
	waitListed(t, newClient(t, a, tenant, 2), "worker-a", "worker-b")
}

// waitListed waits until the client is listed (at least) the workers ids,
// each verified.
func waitListed(t *testing.T, c *client.Client, ids ...string) {
	t.Helper()
	eventually(t, stateTimeout, fmt.Sprintf("workers %v listed", ids), func() error {
		got, err := listed(t.Context(), c, proto.TaskSummarize)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if !slices.Contains(got, id) {
				return fmt.Errorf("listed %v, want %s among them", got, id)
			}
		}
		return nil
	})
}

// TestReplicasInProcess is TestReplicasOnPostgres in one process, through
// the gateway package: a devnet network (replica A, its accounts and its
// workers) on a PostgreSQL database, and a second gateway.New on the same
// database and certificate (replica B), started before A's workers
// enroll. Each replica's Sync is called rather than waited for.
func TestReplicasInProcess(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// Replica B starts first, from A's configuration as devnet built it:
	// the same database, the certificate the workers pin and the admin
	// credential. It syncs only when told to.
	var (
		b    *gateway.Gateway
		bErr error
	)
	bctx, stopB := context.WithCancel(context.Background())
	t.Cleanup(stopB)
	network, err := devnet.Start(ctx, devnet.Config{
		Dir:      t.TempDir(),
		Database: pgtest.DSN(t),
		Gateway: func(c *gateway.Config) {
			cfgB := *c
			cfgB.Logger = slog.New(slog.DiscardHandler)
			cfgB.SyncInterval = time.Hour
			b, bErr = gateway.New(bctx, cfgB)
		},
	})
	if b != nil {
		t.Cleanup(func() { b.Close() }) // after Serve's own Close, if it ran: Close may be called again
	}
	if network != nil {
		t.Cleanup(func() {
			if err := network.Close(); err != nil {
				t.Errorf("closing the network: %v", err)
			}
		})
	}
	if err != nil || bErr != nil {
		t.Fatalf("starting replica A: %v; replica B: %v", err, bErr)
	}
	a := network.Gateway
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(bctx, ln) }()
	t.Cleanup(func() {
		stopB()
		if err := <-served; err != nil {
			t.Errorf("replica B: %v", err)
		}
	})
	cfg := network.ClientConfig(client.Config{Policy: policy.InsecureSimulated(), K: 2})
	cfg.GatewayURL = "https://" + ln.Addr().String()
	cb, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := listed(ctx, cb, proto.TaskSummarize); err != nil || len(ids) != 0 {
		t.Fatalf("replica B before its sync lists %v (%v), want nothing", ids, err)
	}

	// Workers enrolled through A (devnet's) are routed through B once
	// it has synced.
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ids, err := listed(ctx, cb, proto.TaskSummarize)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(network.Workers) {
		t.Fatalf("replica B lists %v, want the %d workers enrolled through A", ids, len(network.Workers))
	}
	res, err := summarize(ctx, cb)
	if err != nil {
		t.Fatalf("request through replica B: %v", err)
	}
	if err := checkSummary(res.Text); err != nil {
		t.Fatal(err)
	}
	if len(res.Candidates) != 2 {
		t.Errorf("sealed to %d candidates, want 2", len(res.Candidates))
	}

	// A tenant and a pool made on B work on A.
	acct, err := b.CreateAccount(ctx, network.AdminCredential, "tenant", proto.NewAccount{ID: "tenant-b"})
	if err != nil {
		t.Fatal(err)
	}
	pool := proto.PoolSpec{ID: "pool-b", TenantID: "tenant-b", Workers: []string{ids[0]}}
	if _, err := b.CreatePool(ctx, network.AdminCredential, pool); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cfg = network.ClientConfig(client.Config{Policy: policy.InsecureSimulated(), K: 2})
	cfg.Credential = acct.Credential
	ca, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ca.Status(ctx)
	if err != nil {
		t.Fatalf("status on A with a tenant made on B: %v", err)
	}
	if err := checkPool(st, pool); err != nil {
		t.Errorf("A after sync: %v", err)
	}
	ws, _, err := ca.Workers(ctx, proto.TaskSummarize)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) == 0 || ws[0].ID != ids[0] || ws[0].Pool != "pool-b" {
		t.Errorf("A lists %+v to tenant-b, want its pool's worker %s first", ws, ids[0])
	}
	if _, err := summarize(ctx, ca); err != nil {
		t.Fatalf("request on A with a tenant made on B: %v", err)
	}
}
