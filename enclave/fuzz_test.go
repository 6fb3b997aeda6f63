package enclave

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/proto"
)

// FuzzGatewayCalls posts arbitrary JSON bodies to the worker's two JSON
// endpoints, which only the gateway (untrusted) calls: PathAttest (a
// re-attestation challenge) when attest is true, PathQuote (a client's
// nonce) otherwise. The worker must answer every body with a JSON error
// of a 4xx status or with evidence, and evidence only for what was asked:
// a new bundle bound to a nonce derived from a well-formed time anchor,
// or the current keys bound to the client's 32-byte nonce.
func FuzzGatewayCalls(f *testing.F) {
	anchorKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	anchor, err := attestation.SignAnchor(anchorKey, [proto.NonceSize]byte{7}, at)
	if err != nil {
		f.Fatal(err)
	}
	nonce := proto.AnchoredNonce(anchor)
	challenge, _ := json.Marshal(proto.Challenge{Nonce: nonce[:], Anchor: anchor, ExpiresAt: at.Add(time.Minute)})
	fuzzseed.Add(f, true, challenge)
	fuzzseed.Add(f, true, []byte(`{"nonce":"AA==","anchor":"AA==","expires_at":"2026-11-01T12:00:00Z"}`))
	fuzzseed.Add(f, true, append(bytes.Clone(challenge), " {}"...))
	fuzzseed.Add(f, false, []byte(`{"worker_id":"w-test","nonce":"`+"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="+`"}`))
	fuzzseed.Add(f, false, []byte(`{"worker_id":"other","nonce":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="}`))
	fuzzseed.Add(f, false, []byte(`{"nonce":null}`))

	_, provider, _ := ed25519.GenerateKey(bytes.NewReader(make([]byte, 64)))
	w, err := New(Config{
		ID: "w-test", GatewayURL: "http://127.0.0.1:1", Credential: testCredential, InsecurePlainHTTP: true,
		ProviderKey: provider, Evidence: SimulatedEvidence{Device: sim.NewDevice(sim.DeviceConfig{})},
	})
	if err != nil {
		f.Fatal(err)
	}
	gen, err := w.newGeneration(context.Background(), anchor)
	if err != nil {
		f.Fatal(err)
	}
	w.current = gen
	h := w.Handler()

	f.Fuzz(func(t *testing.T, attest bool, body []byte) {
		path := proto.PathQuote
		if attest {
			path = proto.PathAttest
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			var e proto.ErrorResponse
			if rec.Code < 400 || rec.Code >= 500 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error.Code == "" {
				t.Fatalf("status %d, body %q: want a 4xx JSON error", rec.Code, rec.Body.Bytes())
			}
			return
		}
		var ev struct {
			Bundle []byte `json:"bundle"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &ev); err != nil {
			t.Fatalf("answer is not JSON: %v", err)
		}
		b, err := proto.ParseBundle(ev.Bundle)
		if err != nil {
			t.Fatalf("answered bundle does not parse: %v", err)
		}
		if attest {
			var ch proto.Challenge
			if err := json.Unmarshal(body, &ch); err != nil {
				t.Fatalf("attested a body that is not a challenge: %v", err)
			}
			if _, err := proto.ParseAnchor(ch.Anchor); err != nil || b.Nonce != proto.AnchoredNonce(ch.Anchor) || !bytes.Equal(b.Anchor, ch.Anchor) {
				t.Fatalf("attested a challenge without a well-formed anchor binding its nonce (%v)", err)
			}
			return
		}
		var er proto.EvidenceRequest
		if err := json.Unmarshal(body, &er); err != nil || !bytes.Equal(er.Nonce, b.Nonce[:]) || len(b.Anchor) != 0 {
			t.Fatalf("quoted a nonce other than the client's (%v)", err)
		}
	})
}
