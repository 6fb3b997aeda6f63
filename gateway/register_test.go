package gateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/proto"
)

func TestRegister(t *testing.T) {
	// Each case prepares a registration body against a fresh gateway and
	// worker double.
	jsonBody := func(t *testing.T, v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withReg := func(edit func(*proto.Registration)) func(*env, *workerDouble) (string, []byte) {
		return func(e *env, w *workerDouble) (string, []byte) {
			reg := e.registration(w, proto.TaskSummarize)
			edit(&reg)
			return "application/json", jsonBody(e.t, reg)
		}
	}
	tests := []struct {
		name       string
		policy     *policy.Policy // nil means InsecureSimulated
		input      func(*env, *workerDouble) (contentType string, body []byte)
		wantStatus int
		wantCode   string
		// admitted says the worker ends up admitted despite the error
		// (by an earlier, good registration).
		admitted bool
	}{
		{name: "good", input: withReg(func(*proto.Registration) {}), wantStatus: http.StatusOK},
		{name: "good with trailing slash and both tasks", input: withReg(func(r *proto.Registration) {
			r.URL += "/"
			r.Tasks = []string{proto.TaskSummarize, proto.TaskTranslate}
		}), wantStatus: http.StatusOK},
		{name: "reused nonce", input: func(e *env, w *workerDouble) (string, []byte) {
			b := jsonBody(e.t, e.registration(w, proto.TaskSummarize))
			if resp, body := e.do(http.MethodPost, proto.PathRegister, "application/json", bytes.NewReader(b)); resp.StatusCode != http.StatusOK {
				e.t.Fatalf("first registration: %d %s", resp.StatusCode, body)
			}
			return "application/json", b
		}, wantStatus: http.StatusForbidden, wantCode: "bad_challenge", admitted: true},
		{name: "unknown nonce", input: func(e *env, w *workerDouble) (string, []byte) {
			b := w.bundle([proto.NonceSize]byte{1, 2, 3})
			reg := proto.Registration{WorkerID: w.id, URL: w.url, Tasks: []string{proto.TaskSummarize}, Bundle: b, Endorsement: e.provider.endorse(w.id, b), Capacity: 1}
			return "application/json", jsonBody(e.t, reg)
		}, wantStatus: http.StatusForbidden, wantCode: "bad_challenge"},
		{name: "expired nonce", input: func(e *env, w *workerDouble) (string, []byte) {
			nonce := e.challenge()
			e.clock.Advance(gateway.DefaultChallengeTTL + time.Second)
			b := w.bundle(nonce)
			reg := proto.Registration{WorkerID: w.id, URL: w.url, Tasks: []string{proto.TaskSummarize}, Bundle: b, Endorsement: e.provider.endorse(w.id, b), Capacity: 1}
			return "application/json", jsonBody(e.t, reg)
		}, wantStatus: http.StatusForbidden, wantCode: "bad_challenge"},
		{name: "simulated evidence under the default policy", policy: policy.Default(),
			input: withReg(func(*proto.Registration) {}), wantStatus: http.StatusForbidden, wantCode: "attestation_refused"},
		{name: "malformed bundle", input: withReg(func(r *proto.Registration) { r.Bundle = []byte("not a bundle") }),
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "missing bundle", input: withReg(func(r *proto.Registration) { r.Bundle = nil }),
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "empty worker id", input: withReg(func(r *proto.Registration) { r.WorkerID = "" }),
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "worker id with a space", input: withReg(func(r *proto.Registration) { r.WorkerID = "gpu 1" }),
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "worker id too long", input: withReg(func(r *proto.Registration) { r.WorkerID = strings.Repeat("a", proto.MaxWorkerIDLen+1) }),
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "url not http", input: withReg(func(r *proto.Registration) { r.URL = "ftp://127.0.0.1/" }),
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "url relative", input: withReg(func(r *proto.Registration) { r.URL = "/v1/serve" }),
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "url with credentials", input: withReg(func(r *proto.Registration) { r.URL = "http://user:pw@127.0.0.1/" }),
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "url with query", input: withReg(func(r *proto.Registration) { r.URL += "/?a=b" }),
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "url too long", input: withReg(func(r *proto.Registration) { r.URL = "http://h/" + strings.Repeat("a", proto.MaxWorkerURLLen) }),
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "no tasks", input: withReg(func(r *proto.Registration) { r.Tasks = nil }),
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "invalid task", input: withReg(func(r *proto.Registration) { r.Tasks = []string{"Summarize"} }),
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "duplicate task", input: withReg(func(r *proto.Registration) { r.Tasks = []string{"summarize", "summarize"} }),
			wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "nine tasks", input: withReg(func(r *proto.Registration) {
			r.Tasks = strings.Split("a,b,c,d,e,f,g,h,i", ",")
		}), wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "unknown json field", input: func(e *env, w *workerDouble) (string, []byte) {
			b := jsonBody(e.t, e.registration(w, proto.TaskSummarize))
			return "application/json", append([]byte(`{"pool":"x",`), b[1:]...)
		}, wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "data after the object", input: func(e *env, w *workerDouble) (string, []byte) {
			return "application/json", append(jsonBody(e.t, e.registration(w, proto.TaskSummarize)), "{}"...)
		}, wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "not json", input: func(*env, *workerDouble) (string, []byte) {
			return "application/json", []byte("worker_id=w")
		}, wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "wrong content type", input: func(e *env, w *workerDouble) (string, []byte) {
			return "text/plain", jsonBody(e.t, e.registration(w, proto.TaskSummarize))
		}, wantStatus: http.StatusUnsupportedMediaType, wantCode: "unsupported_media_type"},
		{name: "oversize body", input: func(*env, *workerDouble) (string, []byte) {
			return "application/json", append(append([]byte(`{"worker_id":"`), bytes.Repeat([]byte("a"), proto.MaxJSONBody)...), `"}`...)
		}, wantStatus: http.StatusRequestEntityTooLarge, wantCode: "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *gateway.Config) {
				if tt.policy != nil {
					c.AdmissionPolicy = tt.policy
				}
			})
			w := newWorkerDouble(t, "gpu-1.example_A", e.clock)
			ct, body := tt.input(e, w)
			resp, got := e.do(http.MethodPost, proto.PathRegister, ct, bytes.NewReader(body))
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status: found %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, got)
			}
			if tt.wantStatus != http.StatusOK {
				if code := errorCode(got); code != tt.wantCode {
					t.Fatalf("code: found %q, want %q (body %s)", code, tt.wantCode, got)
				}
				if _, listed := e.candidates(proto.TaskSummarize)[w.id]; listed != tt.admitted {
					t.Fatalf("listed: found %v, want %v", listed, tt.admitted)
				}
				return
			}
			var adm proto.Admission
			if err := json.Unmarshal(got, &adm); err != nil {
				t.Fatal(err)
			}
			want := proto.Admission{
				WorkerID: w.id, Kind: policy.KindSim, AdmittedAt: t0, ExpiresAt: t0.Add(15 * time.Minute),
				Policy: policy.InsecureSimulated().Name,
			}
			if adm.WorkerID != want.WorkerID || adm.Kind != want.Kind || !adm.AdmittedAt.Equal(want.AdmittedAt) ||
				!adm.ExpiresAt.Equal(want.ExpiresAt) || adm.Policy != want.Policy {
				t.Fatalf("admission: found %+v, want %+v", adm, want)
			}
			if _, ok := e.candidates(proto.TaskSummarize)[w.id]; !ok {
				t.Fatal("the admitted worker is not listed")
			}
		})
	}
}

func TestRegisterRefusalNamesTheField(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.AdmissionPolicy = policy.Default() })
	w := newWorkerDouble(t, "w", e.clock)
	resp, body := e.postJSON(proto.PathRegister, e.registration(w, proto.TaskSummarize))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "allow_simulated") {
		t.Fatalf("found %d %s, want 403 naming allow_simulated", resp.StatusCode, body)
	}
}

func TestRegisterChunkedOversizeBody(t *testing.T) {
	e := newEnv(t)
	// No Content-Length: the limit is enforced while reading.
	r := struct{ *bytes.Reader }{bytes.NewReader(append([]byte(`{"worker_id":"`), bytes.Repeat([]byte("a"), proto.MaxJSONBody)...))}
	resp, body := e.do(http.MethodPost, proto.PathRegister, "application/json", r)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || errorCode(body) != "too_large" {
		t.Fatalf("found %d %s, want 413 too_large", resp.StatusCode, body)
	}
}

func TestKeyConflict(t *testing.T) {
	e := newEnv(t)
	a := newWorkerDouble(t, "a", e.clock)
	b := newWorkerDouble(t, "b", e.clock)
	e.register(a, proto.TaskSummarize)
	b.share(a)
	resp, body := e.postJSON(proto.PathRegister, e.registration(b, proto.TaskSummarize))
	if resp.StatusCode != http.StatusConflict || errorCode(body) != "key_conflict" {
		t.Fatalf("found %d %s, want 409 key_conflict", resp.StatusCode, body)
	}
	// Once a's evidence has expired, its key may move.
	e.clock.Advance(16 * time.Minute)
	e.register(b, proto.TaskSummarize)
}

func TestChallenge(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantCode    string
	}{
		{name: "empty body", wantStatus: http.StatusOK},
		{name: "empty object", contentType: "application/json", body: "{}", wantStatus: http.StatusOK},
		{name: "unknown field", contentType: "application/json", body: `{"x":1}`, wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "not json", contentType: "text/plain", body: "hi", wantStatus: http.StatusUnsupportedMediaType, wantCode: "unsupported_media_type"},
	}
	seen := make(map[string]bool)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(http.MethodPost, proto.PathChallenge, tt.contentType, strings.NewReader(tt.body))
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status: found %d, want %d (%s)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus != http.StatusOK {
				if code := errorCode(body); code != tt.wantCode {
					t.Fatalf("code: found %q, want %q", code, tt.wantCode)
				}
				return
			}
			var ch proto.Challenge
			if err := json.Unmarshal(body, &ch); err != nil {
				t.Fatal(err)
			}
			if len(ch.Nonce) != proto.NonceSize || !ch.ExpiresAt.Equal(t0.Add(gateway.DefaultChallengeTTL)) {
				t.Fatalf("challenge: found %d-byte nonce expiring %v, want %d bytes expiring %v", len(ch.Nonce), ch.ExpiresAt, proto.NonceSize, t0.Add(gateway.DefaultChallengeTTL))
			}
			if seen[string(ch.Nonce)] {
				t.Fatal("nonce issued twice")
			}
			seen[string(ch.Nonce)] = true
		})
	}
	if resp, body := e.do(http.MethodGet, proto.PathChallenge, "", nil); resp.StatusCode != http.StatusMethodNotAllowed || errorCode(body) != "method_not_allowed" {
		t.Fatalf("GET challenge: found %d %s, want 405 method_not_allowed", resp.StatusCode, body)
	}
}

func TestChallengeBackpressure(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.MaxPendingChallenges = 2 })
	e.challenge()
	e.challenge()
	resp, body := e.do(http.MethodPost, proto.PathChallenge, "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || errorCode(body) != "overloaded" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("found %d %s (Retry-After %q), want 503 overloaded with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	// Expired challenges make room.
	e.clock.Advance(gateway.DefaultChallengeTTL)
	e.challenge()
}
