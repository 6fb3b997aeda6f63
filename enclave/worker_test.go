package enclave

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// testWorker is a Worker with one key generation installed directly, so
// its handler can be exercised without a gateway.
func testWorker(t *testing.T, cfg Config) (*Worker, *httptest.Server) {
	t.Helper()
	cfg.ID, cfg.GatewayURL = "w-test", "http://127.0.0.1:1"
	if cfg.Evidence == nil {
		cfg.Evidence = SimulatedEvidence{Device: sim.NewDevice(sim.DeviceConfig{})}
	}
	cfg.Credential, cfg.InsecurePlainHTTP = testCredential, true
	if cfg.ProviderKey == nil {
		_, cfg.ProviderKey = testProviderKey(t)
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := w.newGeneration(context.Background(), testAnchor(t))
	if err != nil {
		t.Fatal(err)
	}
	w.current = gen
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	return w, srv
}

// sealTo seals a task payload to the worker's current keys, as a client
// that verified its bundle would, and returns the request and the
// forwarded body for candidate 0.
func sealTo(t *testing.T, w *Worker, task string, payload []byte) (*seal.Request, []byte) {
	t.Helper()
	v, err := attestation.Verify(w.Bundle(), policy.InsecureSimulated(), attestation.Options{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := v.HPKEKey(proto.KEMMLKEM768X25519)
	req, err := seal.Seal(proto.SuiteMLKEM768X25519, []proto.HPKEKey{k}, task, payload, seal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := proto.ReadRequestPreamble(bytes.NewReader(req.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	chunks := req.Bytes()[8+len(p.HeaderBytes)+proto.WrapSize:]
	fwd := append(proto.AppendForwardPreamble(nil, p.HeaderBytes, 0, p.Wraps[0]), chunks...)
	return req, fwd
}

func post(t *testing.T, srv *httptest.Server, body []byte) *http.Response {
	t.Helper()
	resp, err := http.Post(srv.URL+proto.PathServe, proto.MediaTypeForward, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func events(t *testing.T, req *seal.Request, body io.Reader) []proto.Event {
	t.Helper()
	r, err := req.OpenResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	var out []proto.Event
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
}

func TestServeSummarize(t *testing.T) {
	w, srv := testWorker(t, Config{})
	text := "Sealed prompts stay private. The gateway only sees ciphertext. Workers decrypt inside the TEE. Clients verify evidence first."
	payload, _ := json.Marshal(proto.SummarizeRequest{Text: text, Sentences: 2})
	req, fwd := sealTo(t, w, proto.TaskSummarize, payload)
	resp := post(t, srv, fwd)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	evs := events(t, req, resp.Body)
	if len(evs) != 2 || evs[0].Type != proto.EventData || evs[1].Type != proto.EventEnd {
		t.Fatalf("events %v", evs)
	}
	summary := string(evs[0].Data)
	if n := strings.Count(summary, ". ") + 1; n != 2 {
		t.Fatalf("summary %q has %d sentences, want 2", summary, n)
	}
	var end proto.EndBody
	if err := json.Unmarshal(evs[1].Data, &end); err != nil || end.Backend != "builtin" || end.InputUnits != int64(len(text)) {
		t.Fatalf("end %+v %v", end, err)
	}

	// The same request again is a replay.
	if resp := post(t, srv, fwd); resp.StatusCode != http.StatusConflict {
		t.Fatalf("replay: status %d, want 409", resp.StatusCode)
	}
}

func TestServeTaskErrorsTravelSealed(t *testing.T) {
	w, srv := testWorker(t, Config{Backend: Builtin{MaxInputBytes: 64}})
	tests := []struct {
		name, task string
		payload    []byte
		wantCode   string
	}{
		{"bad json", proto.TaskSummarize, []byte(`{"text":`), "bad_request"},
		{"unknown field", proto.TaskSummarize, []byte(`{"text":"a","prompt":"b"}`), "bad_request"},
		{"empty text", proto.TaskSummarize, []byte(`{"text":"   "}`), "bad_request"},
		{"too long", proto.TaskSummarize, []byte(`{"text":"` + strings.Repeat("a", 65) + `"}`), "bad_request"},
		{"bad ratio", proto.TaskSummarize, []byte(`{"text":"One. Two.","ratio":3}`), "bad_request"},
		{"unknown task", "chat", []byte(`{}`), "unsupported_task"},
		{"bad language", proto.TaskTranslate, []byte(`{"text":"hi","from":"EN","to":"es"}`), "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, fwd := sealTo(t, w, tt.task, tt.payload)
			resp := post(t, srv, fwd)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			evs := events(t, req, resp.Body)
			last := evs[len(evs)-1]
			var body proto.ErrorBody
			if last.Type != proto.EventError || json.Unmarshal(last.Data, &body) != nil || body.Code != tt.wantCode {
				t.Fatalf("last event %v %s, want error %s", last.Type, last.Data, tt.wantCode)
			}
		})
	}
}

func TestServeRefusals(t *testing.T) {
	w, srv := testWorker(t, Config{})
	other, _ := testWorker(t, Config{})
	_, fwdOther := sealTo(t, other, proto.TaskSummarize, []byte(`{"text":"x"}`))
	_, fwd := sealTo(t, w, proto.TaskSummarize, []byte(`{"text":"x"}`))
	tampered := bytes.Clone(fwd)
	tampered[len(tampered)-1] ^= 1

	tests := []struct {
		name       string
		body       []byte
		wantStatus int
		wantCode   string
	}{
		{"sealed to another worker", fwdOther, http.StatusMisdirectedRequest, "unknown_key"},
		{"tampered chunk", tampered, http.StatusBadRequest, "authentication"},
		{"garbage", []byte("GET / HTTP/1.1"), http.StatusBadRequest, "bad_request"},
		{"empty", nil, http.StatusBadRequest, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, srv, tt.body)
			var e proto.ErrorResponse
			json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tt.wantStatus || e.Error.Code != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, e.Error.Code, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestServeAtCapacity(t *testing.T) {
	w, srv := testWorker(t, Config{MaxConcurrent: 1})
	w.sem <- struct{}{} // one request in flight
	defer func() { <-w.sem }()
	_, fwd := sealTo(t, w, proto.TaskSummarize, []byte(`{"text":"x"}`))
	resp := post(t, srv, fwd)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d retry-after %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestPreviousGenerationStillServes(t *testing.T) {
	w, srv := testWorker(t, Config{})
	req, fwd := sealTo(t, w, proto.TaskSummarize, []byte(`{"text":"Keys rotate. Old requests still open."}`))
	gen, err := w.newGeneration(context.Background(), testAnchor(t))
	if err != nil {
		t.Fatal(err)
	}
	w.prev, w.current = w.current, gen
	resp := post(t, srv, fwd)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if evs := events(t, req, resp.Body); evs[len(evs)-1].Type != proto.EventEnd {
		t.Fatalf("events %v", evs)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ev := SimulatedEvidence{Device: sim.NewDevice(sim.DeviceConfig{})}
	_, pk := testProviderKey(t)
	broken := bytes.Clone(pk)
	broken[63] ^= 1
	ok := func(f func(*Config)) Config {
		c := Config{ID: "w", GatewayURL: "https://gw.example", Credential: testCredential, ProviderKey: pk, Evidence: ev}
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no id", ok(func(c *Config) { c.ID = "" }), "ID: found 0 bytes"},
		{"id with a space", ok(func(c *Config) { c.ID = "w 1" }), "ID: found byte ' '"},
		{"bad url", ok(func(c *Config) { c.GatewayURL = "ftp://x" }), "GatewayURL"},
		{"http gateway", ok(func(c *Config) { c.GatewayURL = "http://gw.example" }), "want https"},
		{"no credential", ok(func(c *Config) { c.Credential = "" }), "Credential: found none"},
		{"tenant credential", ok(func(c *Config) { c.Credential = "sgt_" + testCredential[4:] }), "found a tenant key"},
		{"short credential", ok(func(c *Config) { c.Credential = testCredential[:20] }), "found 16 characters after"},
		{"no provider key", ok(func(c *Config) { c.ProviderKey = nil }), "ProviderKey: found 0 bytes"},
		{"broken provider key", ok(func(c *Config) { c.ProviderKey = broken }), "does not derive from its seed"},
		{"bad region", ok(func(c *Config) { c.Region = "EU West" }), "Region"},
		{"model with comma", ok(func(c *Config) { c.Models = []string{"a,b"} }), "Models: model 0"},
		{"duplicate model", ok(func(c *Config) { c.Models = []string{"a", "a"} }), "twice"},
		{"too many models", ok(func(c *Config) { c.Models = make([]string, proto.MaxModels+1) }), "Models: found"},
		{"http advertise", ok(func(c *Config) { c.AdvertiseURL = "http://127.0.0.1:9" }), "AdvertiseURL"},
		{"capacity", ok(func(c *Config) { c.MaxConcurrent = proto.MaxCapacity + 1 }), "MaxConcurrent"},
		{"client and tls", ok(func(c *Config) { c.HTTPClient, c.GatewayTLS = http.DefaultClient, &tls.Config{} }), "both HTTPClient and GatewayTLS"},
		{"no evidence", ok(func(c *Config) { c.Evidence = nil }), "Evidence"},
		{"negative", ok(func(c *Config) { c.MaxConcurrent = -1 }), "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			var ce *ConfigError
			if tt.name != "negative" && !errors.As(err, &ce) {
				t.Fatalf("err %v is not a *ConfigError", err)
			}
			if err != nil && strings.Contains(err.Error(), testCredential[4:12]) {
				t.Fatalf("error %q quotes the credential", err)
			}
		})
	}
	plain := ok(func(c *Config) {
		c.GatewayURL, c.AdvertiseURL, c.InsecurePlainHTTP = "http://127.0.0.1:1", "http://127.0.0.1:2", true
	})
	if _, err := New(plain); err != nil {
		t.Fatalf("insecure plain http: %v", err)
	}
}

// testAnchor signs a time anchor with a throwaway key, as a gateway would.
func testAnchor(t *testing.T) []byte {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	a, err := attestation.SignAnchor(key, [proto.NonceSize]byte{7}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// testCredential is a well-formed provider credential.
var testCredential = proto.CredentialProvider + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))

// testProviderKey makes a provider endorsement key.
func testProviderKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}
