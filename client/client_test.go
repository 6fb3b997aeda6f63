package client

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// simBundle returns a valid simulated bundle with keys for the given KEMs.
func simBundle(t *testing.T, kems ...uint16) []byte {
	t.Helper()
	b := proto.Bundle{Kind: "sim"}
	rand.Read(b.Nonce[:])
	for _, kem := range kems {
		k, err := seal.GenerateKey(kem)
		if err != nil {
			t.Fatal(err)
		}
		b.Keys.HPKE = append(b.Keys.HPKE, k.Public())
	}
	b.Keys.Signing, _, _ = ed25519.GenerateKey(rand.Reader)
	b.Report = sim.NewDevice(sim.DeviceConfig{Now: func() time.Time { return t0 }}).Report(b.ReportData())
	enc, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func newTestClient(t *testing.T, p *policy.Policy, now *time.Time) *Client {
	t.Helper()
	c, err := New(Config{GatewayURL: "http://127.0.0.1:1", Policy: p, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func worker(t *testing.T, c *Client, bundle []byte) Worker {
	t.Helper()
	v, err := c.verify(bundle)
	if err != nil {
		t.Fatal(err)
	}
	return Worker{ID: "w", verified: v}
}

func TestChooseNeverSealsBelowMinimum(t *testing.T) {
	now := t0
	strict := newTestClient(t, policy.InsecureSimulated(), &now) // minimum: ML-KEM-768+X25519
	weak := worker(t, strict, simBundle(t, proto.KEMX25519))
	_, _, err := strict.choose([]Worker{weak}, nil)
	if !errors.Is(err, ErrNoCandidate) || !strings.Contains(err.Error(), "suite") {
		t.Fatalf("err = %v, want ErrNoCandidate naming the suite", err)
	}

	lenient := policy.InsecureSimulated()
	lenient.MinHPKESuite = proto.SuiteX25519.String()
	c := newTestClient(t, lenient, &now)
	both := worker(t, c, simBundle(t, proto.KEMMLKEM768X25519, proto.KEMX25519))
	weak = worker(t, c, simBundle(t, proto.KEMX25519))
	chosen, suite, err := c.choose([]Worker{weak, both}, nil)
	if err != nil || suite != proto.SuiteMLKEM768X25519 || len(chosen) != 1 {
		t.Fatalf("chose %d workers with %v (%v), want the strongest suite and only the worker offering it", len(chosen), suite, err)
	}
	chosen, suite, err = c.choose([]Worker{weak}, nil)
	if err != nil || suite != proto.SuiteX25519 || len(chosen) != 1 {
		t.Fatalf("chose %v (%v), want x25519 when the policy allows it", suite, err)
	}
}

func TestChooseCapsAtK(t *testing.T) {
	now := t0
	c := newTestClient(t, policy.InsecureSimulated(), &now)
	var ws []Worker
	for range 5 {
		ws = append(ws, worker(t, c, simBundle(t, proto.KEMMLKEM768X25519)))
	}
	chosen, _, err := c.choose(ws, nil)
	if err != nil || len(chosen) != 3 {
		t.Fatalf("chose %d (%v), want k=3", len(chosen), err)
	}
}

func TestVerdictCacheExpiresWithEvidence(t *testing.T) {
	now := t0.Add(time.Minute)
	c := newTestClient(t, policy.InsecureSimulated(), &now)
	b := simBundle(t, proto.KEMMLKEM768X25519)
	v1, err := c.verify(b)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := c.verify(b)
	if err != nil || v1 != v2 {
		t.Fatalf("second verification not served from the cache (%v)", err)
	}
	now = t0.Add(16 * time.Minute) // past the 15m freshness window
	if _, err := c.verify(b); attestation.CodeOf(err) != attestation.CodeStale {
		t.Fatalf("err = %v, want stale once the cached verdict expired", err)
	}
	// A different policy never reuses the verdict.
	now = t0.Add(time.Minute)
	c = newTestClient(t, policy.Default(), &now)
	if _, err := c.verify(b); attestation.CodeOf(err) != attestation.CodePolicy {
		t.Fatalf("err = %v, want a policy refusal under another policy", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no url", Config{}, "gateway url"},
		{"bad scheme", Config{GatewayURL: "ftp://x"}, "gateway url"},
		{"k too big", Config{GatewayURL: "http://x", K: 9}, "k: found 9"},
		{"bad policy", Config{GatewayURL: "http://x", Policy: &policy.Policy{Version: 1}}, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
