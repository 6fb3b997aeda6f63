package gateway_test

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/ratelimit"
	"github.com/sealgate/sealgate/proto"
)

func TestStrictEvidence(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.EvidenceLimit = ratelimit.Limit{PerSecond: 1, Burst: 3} })
	w := newAttestingWorker(t, e, "w", nil)
	e.register(w.workerDouble, proto.TaskSummarize)

	// The client's own nonce comes back bound into evidence of the
	// worker's current keys, which the client verifies itself.
	var nonce [proto.NonceSize]byte
	rand.Read(nonce[:])
	var ev proto.Evidence
	resp, body := e.doJSON(e.tenant, http.MethodPost, proto.PathEvidence, proto.EvidenceRequest{WorkerID: "w", Nonce: nonce[:]}, &ev)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("evidence: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control: found %q, want no-store", resp.Header.Get("Cache-Control"))
	}
	v, err := attestation.Verify(ev.Bundle, policy.InsecureSimulated(), attestation.Options{Now: e.clock.Now(), Nonce: &nonce})
	if err != nil {
		t.Fatalf("verifying the strict-mode evidence with the client's nonce: %v", err)
	}
	if k, ok := v.HPKEKey(suite.KEM); !ok || k.ID() != w.key().ID() {
		t.Fatal("the evidence does not bind the worker's current key")
	}
	if w.quotes.Load() != 1 {
		t.Fatalf("quotes: found %d, want 1", w.quotes.Load())
	}

	tests := []struct {
		name       string
		req        proto.EvidenceRequest
		wantStatus int
		wantCode   string
	}{
		{"nonce too short", proto.EvidenceRequest{WorkerID: "w", Nonce: nonce[:31]}, http.StatusBadRequest, "bad_request"},
		{"nonce too long", proto.EvidenceRequest{WorkerID: "w", Nonce: append(nonce[:], 0)}, http.StatusBadRequest, "bad_request"},
		{"no nonce", proto.EvidenceRequest{WorkerID: "w"}, http.StatusBadRequest, "bad_request"},
		{"bad worker id", proto.EvidenceRequest{WorkerID: "a b", Nonce: nonce[:]}, http.StatusBadRequest, "bad_request"},
		{"unknown worker", proto.EvidenceRequest{WorkerID: "nobody", Nonce: nonce[:]}, http.StatusNotFound, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.doJSON(e.tenant, http.MethodPost, proto.PathEvidence, tt.req, nil)
			wantError(t, "evidence", resp, body, tt.wantStatus, tt.wantCode)
		})
	}
	if w.quotes.Load() != 1 {
		t.Fatalf("quotes after the refused requests: found %d, want still 1", w.quotes.Load())
	}

	// The budget (burst 3, one spent by the good request and one by the
	// unknown worker) runs out: 429 with Retry-After, and the worker is
	// not asked.
	resp, body = e.doJSON(e.tenant, http.MethodPost, proto.PathEvidence, proto.EvidenceRequest{WorkerID: "w", Nonce: nonce[:]}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("evidence within the budget: %d %s", resp.StatusCode, body)
	}
	resp, body = e.doJSON(e.tenant, http.MethodPost, proto.PathEvidence, proto.EvidenceRequest{WorkerID: "w", Nonce: nonce[:]}, nil)
	wantError(t, "evidence over the budget", resp, body, http.StatusTooManyRequests, "rate_limited")
	if ra := resp.Header.Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After: found %q, want 1", ra)
	}
	if w.quotes.Load() != 2 {
		t.Fatalf("quotes: found %d, want 2", w.quotes.Load())
	}
	// The budget is per tenant: t2's is untouched.
	t2 := e.newTenant("t2", proto.NewAccount{})
	if resp, body := e.doJSON(t2, http.MethodPost, proto.PathEvidence, proto.EvidenceRequest{WorkerID: "w", Nonce: nonce[:]}, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("t2's evidence: %d %s", resp.StatusCode, body)
	}
	// It refills with time.
	e.clock.Advance(time.Second)
	if resp, body := e.doJSON(e.tenant, http.MethodPost, proto.PathEvidence, proto.EvidenceRequest{WorkerID: "w", Nonce: nonce[:]}, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("evidence after a second: %d %s", resp.StatusCode, body)
	}
}

// TestStrictEvidenceOnlyForUsableWorkers refuses evidence of a drained
// worker and of another tenant's reserved node.
func TestStrictEvidenceOnlyForUsableWorkers(t *testing.T) {
	e := newEnv(t)
	t2 := e.newTenant("t2", proto.NewAccount{})
	reserved := newAttestingWorker(t, e, "reserved", nil)
	drained := newAttestingWorker(t, e, "drained", nil)
	e.register(reserved.workerDouble, proto.TaskSummarize)
	e.register(drained.workerDouble, proto.TaskSummarize)
	e.createPool(proto.PoolSpec{ID: "t1-pool", TenantID: "t1", Workers: []string{"reserved"}})
	drained.failAttest.Store(true)
	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())

	nonce := make([]byte, proto.NonceSize)
	resp, body := e.doJSON(t2, http.MethodPost, proto.PathEvidence, proto.EvidenceRequest{WorkerID: "reserved", Nonce: nonce}, nil)
	wantError(t, "t2 asks for t1's reserved node", resp, body, http.StatusNotFound, "not_found")
	resp, body = e.doJSON(e.tenant, http.MethodPost, proto.PathEvidence, proto.EvidenceRequest{WorkerID: "drained", Nonce: nonce}, nil)
	wantError(t, "evidence of a drained worker", resp, body, http.StatusNotFound, "not_found")
	if reserved.quotes.Load() != 0 || drained.quotes.Load() != 0 {
		t.Fatal("a refused evidence request reached a worker")
	}
	var ev proto.Evidence
	if resp, body := e.doJSON(e.tenant, http.MethodPost, proto.PathEvidence, proto.EvidenceRequest{WorkerID: "reserved", Nonce: nonce}, &ev); resp.StatusCode != http.StatusOK {
		t.Fatalf("t1 asks for its own node: %d %s", resp.StatusCode, body)
	}
	if b, err := proto.ParseBundle(ev.Bundle); err != nil || !bytes.Equal(b.Nonce[:], nonce) {
		t.Fatalf("t1's evidence: %v, want a bundle bound to its nonce", err)
	}
}

// TestStrictEvidenceWorkerFails maps a worker's failure to 502.
func TestStrictEvidenceWorkerFails(t *testing.T) {
	e := newEnv(t)
	w := newAttestingWorker(t, e, "w", nil)
	e.register(w.workerDouble, proto.TaskSummarize)
	w.close()
	resp, body := e.doJSON(e.tenant, http.MethodPost, proto.PathEvidence, proto.EvidenceRequest{WorkerID: "w", Nonce: make([]byte, proto.NonceSize)}, nil)
	wantError(t, "evidence from a worker that is down", resp, body, http.StatusBadGateway, "upstream_failed")
}
