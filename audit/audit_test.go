package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/audit"
	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
	"github.com/sealgate/sealgate/translog"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is the log's clock, moved by the tests.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

// testLog is a log kept in a real SQLite store, written directly as a
// gateway (honest or not) would.
type testLog struct {
	t        testing.TB
	clock    *fakeClock
	log      *translog.Log
	signer   *translog.Signer
	verifier *translog.Verifier
	provider ed25519.PrivateKey
	polHash  [32]byte
}

func newTestLog(t testing.TB, signer *translog.Signer) *testLog {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if signer == nil {
		skey, _, _ := translog.GenerateKey("audit.test/log")
		signer, _ = translog.NewSigner(skey)
	}
	c := &fakeClock{now: t0}
	l, err := translog.New(context.Background(), translog.Config{Storage: st.(translog.Storage), Signer: signer, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := translog.NewVerifier(signer.VerifierKey())
	_, prov, _ := ed25519.GenerateKey(rand.Reader)
	tl := &testLog{t: t, clock: c, log: l, signer: signer, verifier: v, provider: prov}
	pol, _ := json.Marshal(policy.InsecureSimulated())
	tl.polHash = translog.PolicyHashOf(pol)
	tl.append(translog.Pending{Entry: translog.NewPolicy(t0, pol)})
	return tl
}

func (l *testLog) append(p translog.Pending) {
	l.t.Helper()
	if _, err := l.log.Append(context.Background(), p); err != nil {
		l.t.Fatal(err)
	}
}

// bundle returns simulated evidence made at time at by dev.
func bundle(t testing.TB, dev sim.DeviceConfig, at time.Time) []byte {
	t.Helper()
	k, err := seal.GenerateKey(proto.KEMMLKEM768X25519)
	if err != nil {
		t.Fatal(err)
	}
	b := proto.Bundle{Kind: policy.KindSim, Keys: proto.WorkerKeys{HPKE: []proto.HPKEKey{k.Public()}, Signing: make([]byte, 32)}}
	rand.Read(b.Nonce[:])
	dev.Now = func() time.Time { return at }
	b.Report = sim.NewDevice(dev).Report(b.ReportData())
	raw, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// evidence logs an evidence entry for worker id at the clock's time;
// edit may spoil it first.
func (l *testLog) evidence(kind translog.Kind, id string, dev sim.DeviceConfig, edit func(*translog.Entry)) {
	l.t.Helper()
	l.append(l.pending(kind, id, dev, edit))
}

// pending is the entry evidence logs.
func (l *testLog) pending(kind translog.Kind, id string, dev sim.DeviceConfig, edit func(*translog.Entry)) translog.Pending {
	l.t.Helper()
	raw := bundle(l.t, dev, l.clock.now)
	b, _ := proto.ParseBundle(raw)
	end := ed25519.Sign(l.provider, proto.EndorsementMessage(id, b.KeysHash()))
	e, coll, err := translog.NewEvidence(kind, l.clock.now, id, "acme", l.provider.Public().(ed25519.PublicKey), end, l.polHash, raw)
	if err != nil {
		l.t.Fatal(err)
	}
	if edit != nil {
		edit(&e)
	}
	return translog.Pending{Entry: e, Collateral: coll}
}

// logSource serves a testLog as a Source, optionally rewriting entries.
type logSource struct {
	l       *testLog
	entries func([][]byte, uint64) [][]byte
}

func (s logSource) Checkpoint(ctx context.Context) ([]byte, error) {
	signed, _, err := s.l.log.Checkpoint(ctx)
	return signed, err
}

func (s logSource) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	_, cp, _ := s.l.log.Checkpoint(ctx)
	out, err := s.l.log.Entries(ctx, start, end, cp.Size)
	if err == nil && s.entries != nil {
		out = s.entries(out, start)
	}
	return out, err
}

func (s logSource) Collateral(ctx context.Context, hash [32]byte) ([]byte, error) {
	return s.l.log.Collateral(ctx, hash)
}

func replay(t *testing.T, l *testLog, src audit.Source, from []byte) ([]audit.Finding, audit.Summary, error) {
	t.Helper()
	var found []audit.Finding
	_, sum, err := audit.Replay(context.Background(), audit.Config{Source: src, Verifier: l.verifier, From: from,
		Finding: func(f audit.Finding) { found = append(found, f) }})
	return found, sum, err
}

func codes(fs []audit.Finding) string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%d:%s", f.Index, f.Code))
	}
	return fmt.Sprint(out)
}

func TestReplayHonestLog(t *testing.T) {
	l := newTestLog(t, nil)
	l.evidence(translog.KindAdmission, "w1", sim.DeviceConfig{}, nil)
	l.clock.now = t0.Add(3 * time.Minute)
	l.evidence(translog.KindReattestation, "w1", sim.DeviceConfig{}, nil)
	l.clock.now = t0.Add(5 * time.Minute)
	l.append(translog.Pending{Entry: translog.NewStateChange(translog.KindDrain, l.clock.now, "w1", "re-attestation failed")})
	l.append(translog.Pending{Entry: translog.NewStateChange(translog.KindEviction, l.clock.now, "w1", "drained too long")})
	found, sum, err := replay(t, l, logSource{l: l}, nil)
	if err != nil || len(found) != 0 {
		t.Fatalf("findings %s, %v; want none", codes(found), err)
	}
	if sum.Size != 5 || sum.Admissions != 1 || sum.Reattestations != 1 || sum.Drains != 1 || sum.Evictions != 1 || sum.Policies != 1 {
		t.Fatalf("summary %+v", sum)
	}
}

func TestReplayFindsDishonestEntries(t *testing.T) {
	l := newTestLog(t, nil)
	_, otherRoot, _ := ed25519.GenerateKey(rand.Reader)
	l.evidence(translog.KindAdmission, "good", sim.DeviceConfig{}, nil)                        // 1
	l.evidence(translog.KindAdmission, "forged", sim.DeviceConfig{SigningKey: otherRoot}, nil) // 2: not the simulated TEE's root
	l.evidence(translog.KindAdmission, "debug", sim.DeviceConfig{Debug: true}, nil)            // 3: a debug guest
	l.evidence(translog.KindAdmission, "unendorsed", sim.DeviceConfig{}, func(e *translog.Entry) {
		e.Endorsement = make([]byte, 64) // 4
	})
	l.evidence(translog.KindAdmission, "nopolicy", sim.DeviceConfig{}, func(e *translog.Entry) {
		e.PolicyHash = [32]byte{1} // 5
	})
	l.append(translog.Pending{Entry: translog.NewStateChange(translog.KindDrain, l.clock.now, "ghost", "never admitted")}) // 6
	// "good" is kept without re-attestation until the checkpoint, an hour
	// later: past its 15-minute window.
	l.clock.now = t0.Add(time.Hour)
	l.append(translog.Pending{Entry: translog.NewStateChange(translog.KindEviction, l.clock.now, "forged", "evicted")}) // 7

	found, sum, err := replay(t, l, logSource{l: l}, nil)
	if err != nil {
		t.Fatal(err)
	}
	byWorker := map[string][]string{}
	for _, f := range found {
		byWorker[f.WorkerID] = append(byWorker[f.WorkerID], f.Code)
	}
	want := map[string]string{
		"forged":     audit.FindingRefused,
		"debug":      audit.FindingRefused,
		"unendorsed": audit.FindingEndorsement,
		"nopolicy":   audit.FindingUnknownPolicy,
		"ghost":      audit.FindingNotAdmitted,
		"good":       audit.FindingStale,
	}
	for w, code := range want {
		if len(byWorker[w]) == 0 || byWorker[w][0] != code {
			t.Errorf("worker %s: findings %v, want %s first", w, byWorker[w], code)
		}
	}
	if sum.Findings != len(found) {
		t.Fatalf("summary counts %d findings, %d reported", sum.Findings, len(found))
	}
}

func TestReplayRejectsATamperedLog(t *testing.T) {
	l := newTestLog(t, nil)
	for i := range 5 {
		l.evidence(translog.KindAdmission, fmt.Sprintf("w%d", i), sim.DeviceConfig{}, nil)
	}
	saved, _, _ := l.log.Checkpoint(context.Background())

	t.Run("entry changed", func(t *testing.T) {
		changed := translog.NewStateChange(translog.KindDrain, t0, "w1", "rewritten")
		raw, _ := changed.Marshal()
		src := logSource{l: l, entries: func(es [][]byte, start uint64) [][]byte {
			if start <= 2 && 2 < start+uint64(len(es)) {
				es[2-start] = raw
			}
			return es
		}}
		if _, _, err := replay(t, l, src, nil); !errors.Is(err, audit.ErrLog) {
			t.Fatalf("got %v, want a LogError", err)
		}
	})
	t.Run("entry dropped", func(t *testing.T) {
		src := logSource{l: l, entries: func(es [][]byte, start uint64) [][]byte {
			if start == 0 {
				return append(es[:2:2], es[3:]...)
			}
			return es
		}}
		if _, _, err := replay(t, l, src, nil); err == nil {
			t.Fatal("a log with an entry dropped replayed")
		}
	})
	t.Run("fork from the saved checkpoint", func(t *testing.T) {
		other := newTestLog(t, l.signer) // same key, another history
		for i := range 5 {
			other.evidence(translog.KindAdmission, fmt.Sprintf("x%d", i), sim.DeviceConfig{}, nil)
		}
		var fe *translog.ForkError
		if _, _, err := replay(t, l, logSource{l: other}, saved); !errors.Is(err, audit.ErrLog) || !errors.As(err, &fe) {
			t.Fatalf("got %v, want a LogError with a ForkError", err)
		}
		// Grown further, it is still not consistent.
		other.evidence(translog.KindAdmission, "x5", sim.DeviceConfig{}, nil)
		if _, _, err := replay(t, l, logSource{l: other}, saved); !errors.As(err, &fe) {
			t.Fatalf("grown fork: got %v, want a ForkError", err)
		}
	})
	t.Run("honest growth from the saved checkpoint", func(t *testing.T) {
		l.evidence(translog.KindAdmission, "w5", sim.DeviceConfig{}, nil)
		if found, _, err := replay(t, l, logSource{l: l}, saved); err != nil || len(found) != 0 {
			t.Fatalf("findings %s, %v", codes(found), err)
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		skey, _, _ := translog.GenerateKey("audit.test/log")
		stranger, _ := translog.NewSigner(skey)
		impostor := newTestLog(t, stranger)
		if _, _, err := replay(t, l, logSource{l: impostor}, nil); !errors.Is(err, translog.ErrCheckpointSignature) {
			t.Fatalf("got %v, want ErrCheckpointSignature", err)
		}
	})
}

// TestReplayGatewayOverHTTP replays a running gateway's log through its
// public routes: the policy and both workers' admissions, no finding.
func TestReplayGatewayOverHTTP(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	network, err := devnet.Start(ctx, devnet.Config{Dir: t.TempDir(), InsecurePlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	v, err := translog.NewVerifier(network.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	var found []audit.Finding
	signed, sum, err := audit.Replay(ctx, audit.Config{Source: &audit.HTTPSource{Base: network.GatewayURL}, Verifier: v,
		Finding: func(f audit.Finding) { found = append(found, f) }})
	if err != nil || len(found) != 0 || signed == nil {
		t.Fatalf("findings %s, %v", codes(found), err)
	}
	if sum.Policies != 1 || sum.Admissions != len(network.Workers) {
		t.Fatalf("summary %+v", sum)
	}
}
