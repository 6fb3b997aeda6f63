package gateway_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

func TestRelayEndToEnd(t *testing.T) {
	e := newEnv(t)
	a := newWorkerDouble(t, "a", e.clock)
	b := newWorkerDouble(t, "b", e.clock)
	e.register(a, proto.TaskSummarize)
	e.register(b, proto.TaskSummarize)

	// The client verifies the listed bundles and seals to their keys.
	listed := e.candidates(proto.TaskSummarize)
	if len(listed) != 2 {
		t.Fatalf("listed %d candidates, want 2", len(listed))
	}
	var keys []proto.HPKEKey
	for _, v := range listed {
		k, ok := v.HPKEKey(suite.KEM)
		if !ok {
			t.Fatal("listed worker has no key for the suite")
		}
		keys = append(keys, k)
	}
	const payload = "a confidential prompt that only the worker may read"
	req := e.seal(proto.TaskSummarize, payload, keys...)
	resp := e.relay(req)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	served := resp.Header.Get(proto.HeaderWorker)
	idx, events, err := openEvents(req, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, events, payload)
	// The authenticated answering candidate matches the informational
	// header.
	byID := map[string]*workerDouble{a.id: a, b.id: b}
	if w := byID[served]; w == nil || !w.holds(req.Header().Candidates[idx].KeyID) {
		t.Fatalf("header names %q but candidate %d answered", served, idx)
	}

	// The log names the request and the worker and holds nothing sealed.
	logs := e.logs.String()
	id := req.ID()
	if !strings.Contains(logs, hex.EncodeToString(id[:])) || !strings.Contains(logs, `"worker":"`+served+`"`) {
		t.Fatalf("log does not name the request id and worker:\n%s", logs)
	}
	for name, secret := range map[string][]byte{
		"payload":            []byte(payload),
		"encapsulation":      req.Header().Candidates[0].Enc[:16],
		"bundle":             listed[a.id].Bundle()[:64],
		"header commitment":  req.Header().Tag[:16],
		"request ciphertext": req.Bytes()[len(req.Bytes())-32:],
	} {
		for _, enc := range []string{string(secret), hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret)[:20]} {
			if strings.Contains(logs, enc) {
				t.Fatalf("log contains the %s", name)
			}
		}
	}
}

func TestRelayFailover(t *testing.T) {
	tests := []struct {
		name        string
		breakWorker func(*workerDouble)
	}{
		{name: "first worker down", breakWorker: (*workerDouble).close},
		{name: "first worker answers 500", breakWorker: func(w *workerDouble) { w.fail.Store(true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			good := newWorkerDouble(t, "good", e.clock)
			bad := newWorkerDouble(t, "bad", e.clock)
			e.register(good, proto.TaskSummarize)
			e.register(bad, proto.TaskSummarize)

			// Hold one request on the good worker so that the bad one,
			// with fewer outstanding requests, is tried first.
			holdDone := e.relayInBackground(e.seal(proto.TaskSummarize, "hold", good.key()), "hold")
			<-good.held
			tt.breakWorker(bad)

			req := e.seal(proto.TaskSummarize, "hello", bad.key(), good.key())
			e.relayOK(req, "hello", good)
			if tt.name == "first worker answers 500" && bad.hits.Load() != 1 {
				t.Fatalf("bad worker hits: found %d, want 1", bad.hits.Load())
			}
			if !strings.Contains(e.logs.String(), "worker failed before its first byte") {
				t.Fatal("the failover was not logged")
			}
			close(good.release)
			if err := <-holdDone; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRelayAllFail(t *testing.T) {
	e := newEnv(t)
	a := newWorkerDouble(t, "a", e.clock)
	b := newWorkerDouble(t, "b", e.clock)
	e.register(a, proto.TaskSummarize)
	e.register(b, proto.TaskSummarize)
	a.fail.Store(true)
	b.close()
	resp := e.relay(e.seal(proto.TaskSummarize, "hello", a.key(), b.key()))
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || errorCode(body) != "upstream_failed" {
		t.Fatalf("found %d %s, want 502 upstream_failed", resp.StatusCode, body)
	}
	if a.hits.Load() != 1 {
		t.Fatalf("worker a hits: found %d, want 1", a.hits.Load())
	}
	if strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), "500") {
		t.Fatalf("error body leaks upstream detail: %s", body)
	}
}

func TestRelayBrokenStream(t *testing.T) {
	e := newEnv(t)
	w := newWorkerDouble(t, "w", e.clock)
	e.register(w, proto.TaskSummarize)
	req := e.seal(proto.TaskSummarize, "break", w.key())
	resp := e.relay(req)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 (the first byte arrived)", resp.StatusCode)
	}
	if _, _, err := openEvents(req, resp.Body); !errors.Is(err, seal.ErrTruncated) {
		t.Fatalf("opening a broken stream: found %v, want %v", err, seal.ErrTruncated)
	}
	if w.hits.Load() != 1 {
		t.Fatalf("hits: found %d, want 1 (no retry after the first byte)", w.hits.Load())
	}
}

func TestRelayErrors(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.MaxRequestBody = 64 << 10 })
	w := newWorkerDouble(t, "w", e.clock)
	e.register(w, proto.TaskSummarize)
	good := e.seal(proto.TaskSummarize, "hello", w.key()).Bytes()
	stranger, err := seal.GenerateKey(suite.KEM)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		contentType string
		body        io.Reader
		wantStatus  int
		wantCode    string
	}{
		{name: "unknown candidate keys", body: bytes.NewReader(e.seal(proto.TaskSummarize, "hello", stranger.Public()).Bytes()),
			wantStatus: http.StatusUnprocessableEntity, wantCode: "unknown_candidates"},
		{name: "garbage", body: strings.NewReader("QZXW garbage"), wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "empty", body: strings.NewReader(""), wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "truncated chunks", body: bytes.NewReader(good[:len(good)-10]), wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "preamble only", body: bytes.NewReader(good[:8+100]), wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "data after the final chunk", body: bytes.NewReader(append(bytes.Clone(good), 0)), wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "wrong content type", contentType: "application/octet-stream", body: bytes.NewReader(good),
			wantStatus: http.StatusUnsupportedMediaType, wantCode: "unsupported_media_type"},
		{name: "too large", body: bytes.NewReader(e.seal(proto.TaskSummarize, strings.Repeat("x", 100<<10), w.key()).Bytes()),
			wantStatus: http.StatusRequestEntityTooLarge, wantCode: "too_large"},
		{name: "too large, chunked", body: struct{ io.Reader }{bytes.NewReader(e.seal(proto.TaskSummarize, strings.Repeat("x", 100<<10), w.key()).Bytes())},
			wantStatus: http.StatusRequestEntityTooLarge, wantCode: "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.contentType
			if ct == "" {
				ct = proto.MediaTypeRequest
			}
			resp, body := e.do(http.MethodPost, proto.PathRequests, ct, tt.body)
			if resp.StatusCode != tt.wantStatus || errorCode(body) != tt.wantCode {
				t.Fatalf("found %d %s, want %d %s", resp.StatusCode, body, tt.wantStatus, tt.wantCode)
			}
		})
	}
	if w.hits.Load() != 0 {
		t.Fatalf("worker hits: found %d, want 0", w.hits.Load())
	}
	if logs := e.logs.String(); strings.Contains(logs, "QZXW") {
		t.Fatalf("the log quotes a request body:\n%s", logs)
	}
	// The gateway still relays after all that.
	e.relayOK(e.seal(proto.TaskSummarize, "still here", w.key()), "still here", w)
}

func TestRelayBackpressure(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.MaxInFlight = 1 })
	w := newWorkerDouble(t, "w", e.clock)
	e.register(w, proto.TaskSummarize)
	holdDone := e.relayInBackground(e.seal(proto.TaskSummarize, "hold", w.key()), "hold")
	<-w.held
	resp := e.relay(e.seal(proto.TaskSummarize, "hello", w.key()))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || errorCode(body) != "overloaded" || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("found %d %s (Retry-After %q), want 503 overloaded, Retry-After 1", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	close(w.release)
	if err := <-holdDone; err != nil {
		t.Fatal(err)
	}
	e.relayOK(e.seal(proto.TaskSummarize, "hello", w.key()), "hello", w)
}

func TestRestart(t *testing.T) {
	e := newEnv(t)
	w := newWorkerDouble(t, "w", e.clock)
	e.register(w, proto.TaskSummarize, proto.TaskTranslate)
	e.restart()
	if _, ok := e.candidates(proto.TaskTranslate)[w.id]; !ok {
		t.Fatal("worker not listed after a restart")
	}
	e.relayOK(e.seal(proto.TaskTranslate, "after restart", w.key()), "after restart", w)

	// Evidence that expired while the gateway was down is not restored.
	e.clock.Advance(16 * time.Minute)
	e.restart()
	if got := e.candidates(proto.TaskTranslate); len(got) != 0 {
		t.Fatalf("expired worker listed after a restart: %v", got)
	}
}

func TestRestartUnderStricterPolicy(t *testing.T) {
	e := newEnv(t)
	w := newWorkerDouble(t, "w", e.clock)
	e.register(w, proto.TaskSummarize)
	e.restart()
	req := e.seal(proto.TaskSummarize, "x", w.key())
	e.relayOK(req, "x", w)

	// The operator switches to the hardware-only policy: the simulated
	// worker's stored evidence no longer admits it.
	e.cfg.AdmissionPolicy = policy.Default()
	e.restart()
	resp := e.relay(e.seal(proto.TaskSummarize, "x", w.key()))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || errorCode(body) != "unknown_candidates" {
		t.Fatalf("found %d %s, want 422 unknown_candidates", resp.StatusCode, body)
	}
}

func TestReRegistrationRotatesKeys(t *testing.T) {
	e := newEnv(t)
	w := newWorkerDouble(t, "w", e.clock)
	e.register(w, proto.TaskSummarize) // evidence expires at t0+15m
	oldKey := w.key()

	e.clock.Advance(10 * time.Minute)
	w.rotate()
	newKey := w.key()
	adm := e.register(w, proto.TaskSummarize) // expires at t0+25m
	if !adm.ExpiresAt.Equal(t0.Add(25 * time.Minute)) {
		t.Fatalf("admission expires %v, want %v", adm.ExpiresAt, t0.Add(25*time.Minute))
	}
	if k, _ := e.candidates(proto.TaskSummarize)[w.id].HPKEKey(suite.KEM); k.ID() != newKey.ID() {
		t.Fatal("the listing does not carry the new bundle")
	}
	// Both generations route, also across a restart.
	e.relayOK(e.seal(proto.TaskSummarize, "old key", oldKey), "old key", w)
	e.restart()
	e.relayOK(e.seal(proto.TaskSummarize, "old key", oldKey), "old key", w)
	e.relayOK(e.seal(proto.TaskSummarize, "new key", newKey), "new key", w)

	// Past the old evidence's expiry only the new key routes.
	e.clock.Advance(5*time.Minute + time.Millisecond)
	resp := e.relay(e.seal(proto.TaskSummarize, "old key", oldKey))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || errorCode(body) != "unknown_candidates" {
		t.Fatalf("old key after expiry: found %d %s, want 422 unknown_candidates", resp.StatusCode, body)
	}
	e.relayOK(e.seal(proto.TaskSummarize, "new key", newKey), "new key", w)
}
