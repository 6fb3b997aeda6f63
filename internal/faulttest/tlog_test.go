package faulttest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/audit"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/internal/pgtest"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
	"github.com/sealgate/sealgate/translog"
)

// TestLogSurvivesKill9 enrolls workers as fast as a few providers'
// goroutines can (each enrollment is a log append) against a real
// gateway process, kills the gateway with SIGKILL at a random moment,
// restarts it on the same files, and does this a few times. After every
// restart the log must replay cleanly (signature, tree, consistency with
// the last checkpoint served before the kill) and hold an admission for
// every enrollment the gateway acknowledged.
func TestLogSurvivesKill9(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := startGateway(t, "gateway", dir, "127.0.0.1:0", nil, "-insecure-plain-workers")
	p := newProvider(t, g, g, dir, "provider")
	cred, err := os.ReadFile(p.cred)
	if err != nil {
		t.Fatal(err)
	}
	key := readKey(t, p.key)
	skey, err := os.ReadFile(filepath.Join(dir, "sealgate-log.key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := translog.NewSigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	verifier, _ := translog.NewVerifier(signer.VerifierKey())

	var (
		mu    sync.Mutex // guards acked
		acked = map[string]bool{}
		seq   atomic.Int64
	)
	var saved []byte // the last checkpoint served before a kill
	const cycles, enrollers = 3, 4
	for cycle := range cycles {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range enrollers {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("w%d", seq.Add(1))
					if enroll(g, strings.TrimSpace(string(cred)), key, id) == nil {
						mu.Lock()
						acked[id] = true
						mu.Unlock()
					}
				}
			})
		}
		// Let appends run, keeping the latest checkpoint, then kill at a
		// random moment.
		deadline := time.Now().Add(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		for time.Now().Before(deadline) {
			var cp []byte
			if g.get(proto.PathLogCheckpoint, &cp) == nil {
				saved = cp
			}
			time.Sleep(50 * time.Millisecond)
		}
		g.kill()
		close(stop)
		wg.Wait()
		if err := g.wait(t, 10*time.Second); err == nil {
			t.Fatal("the gateway exited cleanly after SIGKILL")
		}
		g = g.restart(t, fmt.Sprintf("gateway-%d", cycle+1))

		var found []audit.Finding
		_, sum, err := audit.Replay(t.Context(), audit.Config{
			Source:   &audit.HTTPSource{Base: g.url, Client: g.http},
			Verifier: verifier, From: saved,
			Finding: func(f audit.Finding) { found = append(found, f) },
		})
		if err != nil {
			t.Fatalf("cycle %d: replay after SIGKILL: %v", cycle, err)
		}
		if len(found) != 0 {
			t.Fatalf("cycle %d: findings %+v", cycle, found)
		}
		admitted := map[string]bool{}
		entries := logEntries(t, g, sum.Size)
		for _, e := range entries {
			if e.Kind == translog.KindAdmission {
				admitted[e.WorkerID] = true
			}
		}
		mu.Lock()
		for id := range acked {
			if !admitted[id] {
				t.Errorf("cycle %d: enrollment of %s was acknowledged but is not in the log", cycle, id)
			}
		}
		n := len(acked)
		mu.Unlock()
		t.Logf("cycle %d: %d entries, %d enrollments acknowledged so far", cycle, sum.Size, n)
	}
	if len(acked) == 0 {
		t.Fatal("no enrollment was acknowledged")
	}
}

// enroll asks g for a challenge and registers worker id with simulated
// evidence bound to it, endorsed by key. A nil error means the gateway
// acknowledged the admission.
func enroll(g *gatewayProc, cred string, key ed25519.PrivateKey, id string) error {
	var ch proto.Challenge
	if err := post(g, cred, proto.PathChallenge, struct{}{}, &ch); err != nil {
		return err
	}
	k, err := seal.GenerateKey(proto.KEMMLKEM768X25519)
	if err != nil {
		return err
	}
	b := proto.Bundle{Kind: policy.KindSim, Anchor: ch.Anchor, Keys: proto.WorkerKeys{HPKE: []proto.HPKEKey{k.Public()}, Signing: make([]byte, 32)}}
	copy(b.Nonce[:], ch.Nonce)
	b.Report = sim.NewDevice(sim.DeviceConfig{}).Report(b.ReportData())
	raw, err := b.Marshal()
	if err != nil {
		return err
	}
	reg := proto.Registration{WorkerID: id, URL: "http://127.0.0.1:9/" + id, Tasks: []string{proto.TaskSummarize}, Capacity: 1,
		Bundle: raw, Endorsement: ed25519.Sign(key, proto.EndorsementMessage(id, b.KeysHash()))}
	return post(g, cred, proto.PathRegister, reg, nil)
}

func post(g *gatewayProc, cred, path string, in, out any) error {
	body, _ := json.Marshal(in)
	req, err := http.NewRequest(http.MethodPost, g.url+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(proto.HeaderAuthorization, "Bearer "+cred)
	resp, err := g.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d: %s", path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// readKey reads the provider's PKCS#8 PEM endorsement key.
func readKey(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("provider key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
}

// logEntries reads the first size entries of g's log.
func logEntries(t *testing.T, g *gatewayProc, size uint64) []*translog.Entry {
	t.Helper()
	src := &audit.HTTPSource{Base: g.url, Client: g.http}
	var out []*translog.Entry
	for uint64(len(out)) < size {
		raws, err := src.Entries(context.Background(), uint64(len(out)), size)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range raws {
			e, err := translog.ParseEntry(raw)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
	}
	return out
}

// TestLogReplicasShareOneLog runs two gateways in one process on one
// PostgreSQL database, as replicas with the same log key: a worker
// enrolled through B is logged in the same log as A's, both serve the
// same checkpoint, and clients of either verify every candidate's
// inclusion against it.
func TestLogReplicasShareOneLog(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var (
		b    *gateway.Gateway
		bErr error
	)
	bctx, stopB := context.WithCancel(context.Background())
	t.Cleanup(stopB)
	network, err := devnet.Start(ctx, devnet.Config{
		Dir: t.TempDir(), Database: pgtest.DSN(t), InsecurePlainHTTP: true,
		Gateway: func(c *gateway.Config) {
			cfgB := *c
			cfgB.Logger = slog.New(slog.DiscardHandler)
			cfgB.SyncInterval = time.Hour
			b, bErr = gateway.New(bctx, cfgB)
		},
	})
	if b != nil {
		t.Cleanup(func() { b.Close() })
	}
	if network != nil {
		t.Cleanup(func() { network.Close() })
	}
	if err != nil || bErr != nil {
		t.Fatalf("starting replica A: %v; replica B: %v", err, bErr)
	}
	a := network.Gateway
	if a.LogPublicKey() != b.LogPublicKey() {
		t.Fatal("the replicas have different log keys")
	}

	// Enroll a worker through B, as its provider would.
	acct, err := b.CreateAccount(ctx, network.AdminCredential, "provider", proto.NewAccount{ID: "provider-b"})
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(nil)
	if _, err := b.SetProviderKey(ctx, acct.Credential, proto.ProviderKey{PublicKey: pub}); err != nil {
		t.Fatal(err)
	}
	ch, err := b.Challenge(ctx, acct.Credential)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := seal.GenerateKey(proto.KEMMLKEM768X25519)
	bundle := proto.Bundle{Kind: policy.KindSim, Anchor: ch.Anchor, Keys: proto.WorkerKeys{HPKE: []proto.HPKEKey{k.Public()}, Signing: make([]byte, 32)}}
	copy(bundle.Nonce[:], ch.Nonce)
	bundle.Report = sim.NewDevice(sim.DeviceConfig{}).Report(bundle.ReportData())
	raw, _ := bundle.Marshal()
	if _, err := b.Register(ctx, acct.Credential, proto.Registration{WorkerID: "via-b", URL: "http://127.0.0.1:9/", Tasks: []string{proto.TaskSummarize},
		Capacity: 1, Bundle: raw, Endorsement: ed25519.Sign(key, proto.EndorsementMessage("via-b", bundle.KeysHash()))}); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cpA, err := a.LogCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cpB, err := b.LogCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cpA, cpB) {
		t.Fatalf("the replicas serve different checkpoints:\n%s\n%s", cpA, cpB)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(bctx, ln) }()
	t.Cleanup(func() { stopB(); <-served })
	for name, url := range map[string]string{"A": network.GatewayURL, "B": "http://" + ln.Addr().String()} {
		cfg := network.ClientConfig(client.Config{Policy: policy.InsecureSimulated()})
		cfg.GatewayURL = url
		c, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ws, refused, err := c.Workers(ctx, proto.TaskSummarize)
		if err != nil || len(ws) != len(network.Workers)+1 {
			t.Fatalf("client of %s: %d verified, refused %+v, %v; want %d", name, len(ws), refused, err, len(network.Workers)+1)
		}
		if got, _ := c.LogCheckpoint(); got.Size != 1+uint64(len(network.Workers))+1 {
			t.Fatalf("client of %s: checkpoint of %d entries, want the policy and %d admissions", name, got.Size, len(network.Workers)+1)
		}
	}
}
