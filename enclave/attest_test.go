package enclave

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/proto"
)

// challengeFor is an anchored challenge, as the gateway sends.
func challengeFor(t *testing.T) proto.Challenge {
	t.Helper()
	a := testAnchor(t)
	n := proto.AnchoredNonce(a)
	return proto.Challenge{Nonce: n[:], Anchor: a, ExpiresAt: time.Now().Add(time.Minute)}
}

func postRaw(t *testing.T, srv *httptest.Server, path, contentType string, body []byte) (*http.Response, proto.ErrorResponse) {
	t.Helper()
	resp, err := http.Post(srv.URL+path, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e proto.ErrorResponse
	if resp.StatusCode != http.StatusOK {
		json.NewDecoder(resp.Body).Decode(&e)
	}
	return resp, e
}

func TestAttestRotatesAndEndorses(t *testing.T) {
	pub, priv := testProviderKey(t)
	w, srv := testWorker(t, Config{ProviderKey: priv})
	before := w.Bundle()
	oldReq, oldFwd := sealTo(t, w, proto.TaskSummarize, []byte(`{"text":"Sealed before the rotation. Still served after it."}`))

	ch := challengeFor(t)
	var att proto.Attestation
	if resp := postJSONTo(t, srv.Client(), srv.URL+proto.PathAttest, ch, &att); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b, err := proto.ParseBundle(att.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Nonce[:], ch.Nonce) || !bytes.Equal(b.Anchor, ch.Anchor) {
		t.Fatal("the bundle does not bind the challenge")
	}
	if !ed25519.Verify(pub, proto.EndorsementMessage("w-test", b.KeysHash()), att.Endorsement) {
		t.Fatal("the endorsement does not verify under the provider key")
	}
	if _, err := attestation.Verify(att.Bundle, policy.InsecureSimulated(), attestation.Options{Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bundle(), att.Bundle) || bytes.Equal(before, att.Bundle) {
		t.Fatal("the attested bundle is not the current one")
	}
	select {
	case <-w.attested:
	default:
		t.Fatal("a successful challenge did not reach the watchdog")
	}

	// The previous generation keeps serving.
	resp := post(t, srv, oldFwd)
	if evs := events(t, oldReq, resp.Body); resp.StatusCode != http.StatusOK || evs[len(evs)-1].Type != proto.EventEnd {
		t.Fatalf("previous generation: status %d, events %v", resp.StatusCode, evs)
	}
}

func TestAttestRefusals(t *testing.T) {
	_, srv := testWorker(t, Config{})
	good := challengeFor(t)
	marshal := func(v any) []byte { b, _ := json.Marshal(v); return b }
	other := challengeFor(t)
	tests := []struct {
		name        string
		contentType string
		body        []byte
		wantStatus  int
		wantCode    string
	}{
		{"short nonce", "application/json", marshal(proto.Challenge{Nonce: good.Nonce[:31], Anchor: good.Anchor}), 400, "bad_challenge"},
		{"nonce of another anchor", "application/json", marshal(proto.Challenge{Nonce: other.Nonce, Anchor: good.Anchor}), 400, "bad_challenge"},
		{"truncated anchor", "application/json", marshal(proto.Challenge{Nonce: good.Nonce, Anchor: good.Anchor[:10]}), 400, "bad_challenge"},
		{"no anchor", "application/json", marshal(proto.Challenge{Nonce: good.Nonce}), 400, "bad_challenge"},
		{"unknown field", "application/json", []byte(`{"nonce":"AA==","anchor":"AA==","extra":1}`), 400, "bad_request"},
		{"trailing data", "application/json", append(marshal(good), []byte(` {}`)...), 400, "bad_request"},
		{"not json", "application/json", []byte("nonce=1"), 400, "bad_request"},
		{"wrong media type", "text/plain", marshal(good), 415, "bad_media_type"},
		{"too large", "application/json", []byte(`{"nonce":"` + strings.Repeat("A", maxChallengeBody) + `"}`), 413, "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, e := postRaw(t, srv, proto.PathAttest, tt.contentType, tt.body)
			if resp.StatusCode != tt.wantStatus || e.Error.Code != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, e.Error.Code, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestAttestOneAtATime(t *testing.T) {
	w, srv := testWorker(t, Config{})
	w.attestSem <- struct{}{} // an attestation in progress
	defer func() { <-w.attestSem }()
	body, _ := json.Marshal(challengeFor(t))
	resp, e := postRaw(t, srv, proto.PathAttest, "application/json", body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || e.Error.Code != "busy" {
		t.Fatalf("got %d %q retry-after %q, want 503 busy with Retry-After", resp.StatusCode, e.Error.Code, resp.Header.Get("Retry-After"))
	}
}

func TestQuoteBindsClientNonceToCurrentKeys(t *testing.T) {
	w, srv := testWorker(t, Config{})
	var n [proto.NonceSize]byte
	rand.Read(n[:])
	var ev proto.Evidence
	if resp := postJSONTo(t, srv.Client(), srv.URL+proto.PathQuote, proto.EvidenceRequest{Nonce: n[:]}, &ev); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	v, err := attestation.Verify(ev.Bundle, policy.InsecureSimulated(), attestation.Options{Now: time.Now(), Nonce: &n})
	if err != nil {
		t.Fatal(err)
	}
	if v.Nonce() != n {
		t.Fatal("verified nonce is not the client's")
	}
	quoted, _ := proto.ParseBundle(ev.Bundle)
	current, _ := proto.ParseBundle(w.Bundle())
	if quoted.KeysHash() != current.KeysHash() || len(quoted.Anchor) != 0 {
		t.Fatal("the quote does not bind the current keys, or carries an anchor")
	}
	other := n
	other[0] ^= 1
	if _, err := attestation.Verify(ev.Bundle, policy.InsecureSimulated(), attestation.Options{Now: time.Now(), Nonce: &other}); attestation.CodeOf(err) != attestation.CodeBinding {
		t.Fatalf("verified under another nonce: %v", err)
	}
}

// gpuSource records the nonce it was asked for GPU evidence under.
type gpuSource struct {
	SimulatedEvidence
	nonces chan [proto.NonceSize]byte
}

func (g gpuSource) GPUEvidence(_ context.Context, nonce [proto.NonceSize]byte) ([][]byte, error) {
	g.nonces <- nonce
	return [][]byte{[]byte("gpu report")}, nil
}

func TestQuoteAsksGPUsForTheClientNonce(t *testing.T) {
	src := gpuSource{SimulatedEvidence{Device: sim.NewDevice(sim.DeviceConfig{})}, make(chan [proto.NonceSize]byte, 4)}
	_, srv := testWorker(t, Config{Evidence: src})
	<-src.nonces // the first key generation's
	var n [proto.NonceSize]byte
	rand.Read(n[:])
	var ev proto.Evidence
	if resp := postJSONTo(t, srv.Client(), srv.URL+proto.PathQuote, proto.EvidenceRequest{Nonce: n[:]}, &ev); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := <-src.nonces; got != n {
		t.Fatal("GPU evidence was not made for the client's nonce")
	}
	if b, _ := proto.ParseBundle(ev.Bundle); len(b.GPU) != 1 {
		t.Fatal("the quote lacks the GPU evidence")
	}
}

func TestQuoteRefusals(t *testing.T) {
	w, srv := testWorker(t, Config{})
	for _, size := range []int{0, 1, proto.NonceSize - 1, proto.NonceSize + 1} {
		body, _ := json.Marshal(proto.EvidenceRequest{Nonce: make([]byte, size)})
		if resp, e := postRaw(t, srv, proto.PathQuote, "application/json", body); resp.StatusCode != 400 || e.Error.Code != "bad_nonce" {
			t.Fatalf("nonce of %d bytes: got %d %q, want 400 bad_nonce", size, resp.StatusCode, e.Error.Code)
		}
	}
	body, _ := json.Marshal(proto.EvidenceRequest{WorkerID: "someone-else", Nonce: make([]byte, proto.NonceSize)})
	if resp, _ := postRaw(t, srv, proto.PathQuote, "application/json", body); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("another worker's id: status %d, want 421", resp.StatusCode)
	}
	if resp, _ := postRaw(t, srv, proto.PathQuote, "application/json", []byte(`{"nonce":"","x":1}`)); resp.StatusCode != 400 {
		t.Fatalf("unknown field: status %d, want 400", resp.StatusCode)
	}

	// Two quotes in progress: a third is refused.
	good, _ := json.Marshal(proto.EvidenceRequest{Nonce: make([]byte, proto.NonceSize)})
	w.quoteSem <- struct{}{}
	w.quoteSem <- struct{}{}
	resp, e := postRaw(t, srv, proto.PathQuote, "application/json", good)
	<-w.quoteSem
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || e.Error.Code != "busy" {
		t.Fatalf("third quote: got %d %q retry-after %q, want 503 busy with Retry-After", resp.StatusCode, e.Error.Code, resp.Header.Get("Retry-After"))
	}
	// With one slot free again, it is answered.
	if resp, _ := postRaw(t, srv, proto.PathQuote, "application/json", good); resp.StatusCode != http.StatusOK {
		t.Fatalf("second quote: status %d", resp.StatusCode)
	}
	<-w.quoteSem

	// A worker without keys has nothing to quote.
	w.mu.Lock()
	w.current = nil
	w.mu.Unlock()
	if resp, e := postRaw(t, srv, proto.PathQuote, "application/json", good); resp.StatusCode != http.StatusServiceUnavailable || e.Error.Code != "not_ready" {
		t.Fatalf("no keys: got %d %q, want 503 not_ready", resp.StatusCode, e.Error.Code)
	}
}
