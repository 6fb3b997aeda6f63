package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/proto"
)

// fakeService is a test double of the gateway domain: it answers with
// whatever its fields say and records the credential it was given.
type fakeService struct {
	err   error
	relay func(ctx context.Context, body io.Reader, sink api.Sink) error

	mu   sync.Mutex // guards cred
	cred string
}

func (f *fakeService) saw(cred string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cred = cred
}

func (f *fakeService) Challenge(_ context.Context, cred string) (proto.Challenge, error) {
	f.saw(cred)
	return proto.Challenge{Nonce: make([]byte, proto.NonceSize)}, f.err
}

func (f *fakeService) Register(_ context.Context, cred string, _ proto.Registration) (proto.Admission, error) {
	f.saw(cred)
	return proto.Admission{}, f.err
}

func (f *fakeService) SetProviderKey(_ context.Context, cred string, k proto.ProviderKey) (proto.ProviderKey, error) {
	f.saw(cred)
	return k, f.err
}

func (f *fakeService) Candidates(_ context.Context, cred, _ string, _ int) (proto.CandidateList, error) {
	f.saw(cred)
	return proto.CandidateList{Candidates: []proto.CandidateInfo{}}, f.err
}

func (f *fakeService) Relay(ctx context.Context, cred string, body io.Reader, sink api.Sink) error {
	f.saw(cred)
	if f.relay != nil {
		return f.relay(ctx, body, sink)
	}
	return f.err
}

func (f *fakeService) Evidence(_ context.Context, cred string, _ proto.EvidenceRequest) (proto.Evidence, error) {
	f.saw(cred)
	return proto.Evidence{}, f.err
}

func (f *fakeService) Status(_ context.Context, cred string) (proto.Status, error) {
	f.saw(cred)
	return proto.Status{}, f.err
}

func (f *fakeService) CreateAccount(_ context.Context, cred, kind string, a proto.NewAccount) (proto.Account, error) {
	f.saw(cred)
	return proto.Account{Kind: kind, ID: a.ID}, f.err
}

func (f *fakeService) RotateCredential(_ context.Context, cred string, r proto.RotateKey) (proto.Account, error) {
	f.saw(cred)
	return proto.Account{Kind: r.Kind, ID: r.ID}, f.err
}

func (f *fakeService) CreatePool(_ context.Context, cred string, spec proto.PoolSpec) (proto.PoolStatus, error) {
	f.saw(cred)
	return proto.PoolStatus{PoolSpec: spec}, f.err
}

func (f *fakeService) DeletePool(_ context.Context, cred, _ string) error {
	f.saw(cred)
	return f.err
}

func (f *fakeService) Ready(context.Context) error { return f.err }

// Authenticate accepts any credential as the role its prefix names, like
// the real service's format check; "" is refused.
func (f *fakeService) Authenticate(_ context.Context, cred string) (api.Principal, error) {
	f.saw(cred)
	switch {
	case strings.HasPrefix(cred, proto.CredentialAdmin):
		return api.Principal{Role: api.RoleAdmin}, nil
	case strings.HasPrefix(cred, proto.CredentialProvider):
		return api.Principal{Role: api.RoleProvider, ID: "p"}, nil
	case strings.HasPrefix(cred, proto.CredentialTenant):
		return api.Principal{Role: api.RoleTenant, ID: "t"}, nil
	}
	return api.Principal{}, api.New(api.Unauthorized, "unknown credential")
}

// testTenant is the credential serve adds to requests that carry none.
const testTenant = "sgt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// serve serves the handler on 127.0.0.1. Requests without an
// Authorization header get testTenant's, so that tests of other behaviour
// pass the credential check; serveRaw adds nothing.
func serve(t *testing.T, svc Service, readTimeout time.Duration) string {
	t.Helper()
	return serveWith(t, svc, readTimeout, true)
}

func serveRaw(t *testing.T, svc Service) string {
	t.Helper()
	return serveWith(t, svc, 0, false)
}

func serveWith(t *testing.T, svc Service, readTimeout time.Duration, asTenant bool) string {
	t.Helper()
	h, err := New(Config{Service: svc, MaxRequestBody: 1 << 20, BodyReadTimeout: readTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if asTenant {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				r.Header.Set("Authorization", "Bearer "+testTenant)
			}
			inner.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name           string
		err            error
		wantStatus     int
		wantCode       string
		wantMessage    string
		wantRetryAfter string
	}{
		{name: "internal error text stays in the log", err: errors.New("sqlite /var/lib/secret.db: disk I/O error"),
			wantStatus: 500, wantCode: "internal", wantMessage: "internal error"},
		{name: "api error with an unmapped code", err: api.New("made_up", "made up"),
			wantStatus: 500, wantCode: "internal", wantMessage: "internal error"},
		{name: "wrapped api error", err: fmt.Errorf("registering: %w", api.Wrap(api.BadChallenge, "nonce expired", errors.New("detail"))),
			wantStatus: 403, wantCode: "bad_challenge", wantMessage: "nonce expired"},
		{name: "attestation refused", err: api.New(api.AttestationRefused, "evidence refused"), wantStatus: 403, wantCode: "attestation_refused"},
		{name: "bad request", err: api.New(api.BadRequest, "x"), wantStatus: 400, wantCode: "bad_request"},
		{name: "too large", err: api.New(api.TooLarge, "x"), wantStatus: 413, wantCode: "too_large"},
		{name: "key conflict", err: api.New(api.KeyConflict, "x"), wantStatus: 409, wantCode: "key_conflict"},
		{name: "unknown candidates", err: api.New(api.UnknownCandidates, "x"), wantStatus: 422, wantCode: "unknown_candidates"},
		{name: "upstream failed", err: api.New(api.UpstreamFailed, "x"), wantStatus: 502, wantCode: "upstream_failed"},
		{name: "overloaded, default retry", err: api.New(api.Overloaded, "x"), wantStatus: 503, wantCode: "overloaded", wantRetryAfter: "1"},
		{name: "overloaded, retry rounded up", err: &api.Error{Code: api.Overloaded, Message: "x", RetryAfter: 2500 * time.Millisecond},
			wantStatus: 503, wantCode: "overloaded", wantRetryAfter: "3"},
		{name: "unavailable", err: api.New(api.Unavailable, "x"), wantStatus: 503, wantCode: "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := serve(t, &fakeService{err: tt.err}, 0)
			resp, err := http.Get(url + proto.PathCandidates + "?task=summarize")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var body proto.ErrorResponse
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %s: %v", raw, err)
			}
			if resp.StatusCode != tt.wantStatus || body.Error.Code != tt.wantCode {
				t.Fatalf("found %d %s, want %d %s", resp.StatusCode, raw, tt.wantStatus, tt.wantCode)
			}
			if tt.wantMessage != "" && body.Error.Message != tt.wantMessage {
				t.Fatalf("message: found %q, want %q", body.Error.Message, tt.wantMessage)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Fatalf("Retry-After: found %q, want %q", got, tt.wantRetryAfter)
			}
			if strings.Contains(string(raw), "secret") || strings.Contains(string(raw), "detail") {
				t.Fatalf("body leaks the cause: %s", raw)
			}
		})
	}
}

func TestCodeIsError(t *testing.T) {
	err := fmt.Errorf("x: %w", api.New(api.BadChallenge, "m"))
	if !errors.Is(err, api.BadChallenge) || errors.Is(err, api.BadRequest) {
		t.Fatal("errors.Is does not match codes")
	}
	if api.CodeOf(err) != api.BadChallenge || api.CodeOf(errors.New("x")) != api.Internal {
		t.Fatal("CodeOf")
	}
}

func relayRequest(t *testing.T, url string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+proto.PathRequests, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", proto.MediaTypeRequest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestRelayStreamsUnbuffered proves each Write+Flush reaches the client
// before the next one is made.
func TestRelayStreamsUnbuffered(t *testing.T) {
	got := make(chan struct{})
	url := serve(t, &fakeService{relay: func(ctx context.Context, body io.Reader, sink api.Sink) error {
		if err := sink.Start("w-1"); err != nil {
			return err
		}
		for _, part := range []string{"first\n", "second\n"} {
			if _, err := sink.Write([]byte(part)); err != nil {
				return nil
			}
			if err := sink.Flush(); err != nil {
				return nil
			}
			select {
			case <-got:
			case <-time.After(5 * time.Second):
				return nil // the client never saw the part: not flushed
			case <-ctx.Done():
				return nil
			}
		}
		return nil
	}}, 0)
	resp := relayRequest(t, url, strings.NewReader("x"))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != proto.MediaTypeResponse || resp.Header.Get(proto.HeaderWorker) != "w-1" {
		t.Fatalf("found %d %v", resp.StatusCode, resp.Header)
	}
	r := bufio.NewReader(resp.Body)
	for _, want := range []string{"first\n", "second\n"} {
		line, err := r.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("read %q, %v, want %q", line, err, want)
		}
		got <- struct{}{}
	}
}

func TestRelayErrorAfterStartKeepsTheStream(t *testing.T) {
	url := serve(t, &fakeService{relay: func(ctx context.Context, body io.Reader, sink api.Sink) error {
		sink.Start("w")
		sink.Write([]byte("partial"))
		return api.New(api.UpstreamFailed, "too late to say")
	}}, 0)
	resp := relayRequest(t, url, strings.NewReader("x"))
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "partial" {
		t.Fatalf("found %d %q, want 200 \"partial\"", resp.StatusCode, b)
	}
}

// TestBodyReadTimeout: a client that stalls its body is cut off, and the
// deadline is lifted once the body is read, so a slow first response byte
// is not.
func TestBodyReadTimeout(t *testing.T) {
	readErr := make(chan error, 1)
	url := serve(t, &fakeService{relay: func(ctx context.Context, body io.Reader, sink api.Sink) error {
		b, err := io.ReadAll(body)
		if err != nil {
			readErr <- err
			return api.Wrap(api.BadRequest, "reading failed", err)
		}
		time.Sleep(300 * time.Millisecond) // longer than the read timeout
		if ctx.Err() != nil {
			return api.New(api.Internal, "context cancelled after the body was read")
		}
		sink.Start("w")
		sink.Write(b)
		return nil
	}}, 100*time.Millisecond)

	resp := relayRequest(t, url, strings.NewReader("whole body"))
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "whole body" {
		t.Fatalf("found %d %q, want 200 with the body echoed", resp.StatusCode, b)
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("a stalled"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest(http.MethodPost, url+proto.PathRequests, pr)
		req.Header.Set("Content-Type", proto.MediaTypeRequest)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case err := <-readErr:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("stalled body: found %v, want a deadline error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a stalled body was not cut off")
	}
	pw.Close()
	<-done
}

func TestNewValidatesConfig(t *testing.T) {
	for _, cfg := range []Config{
		{MaxRequestBody: 1},
		{Service: &fakeService{}},
		{Service: &fakeService{}, MaxRequestBody: 1, BodyReadTimeout: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestCredentialIsReadFromTheBearerHeader(t *testing.T) {
	const cred = "sgt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	tests := []struct {
		name   string
		header []string
		want   string
	}{
		{"bearer", []string{"Bearer " + cred}, cred},
		{"lowercase scheme", []string{"bearer " + cred}, cred},
		{"none", nil, ""},
		{"basic scheme", []string{"Basic " + cred}, ""},
		{"no scheme", []string{cred}, ""},
		{"two headers", []string{"Bearer " + cred, "Bearer " + cred}, ""},
		{"oversize", []string{"Bearer " + strings.Repeat("a", 300)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &fakeService{}
			url := serveRaw(t, svc)
			req, _ := http.NewRequest(http.MethodGet, url+proto.PathCandidates+"?task=summarize", nil)
			for _, h := range tt.header {
				req.Header.Add("Authorization", h)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			svc.mu.Lock()
			defer svc.mu.Unlock()
			if svc.cred != tt.want {
				t.Fatalf("service saw credential %q, want %q", svc.cred, tt.want)
			}
		})
	}
}

func TestAuthErrorsMapToStatuses(t *testing.T) {
	tests := []struct {
		err        error
		wantStatus int
		wantHeader string
	}{
		{api.New(api.Unauthorized, "unknown credential"), http.StatusUnauthorized, "WWW-Authenticate"},
		{api.New(api.Forbidden, "wrong role"), http.StatusForbidden, ""},
		{api.New(api.RateLimited, "slow down"), http.StatusTooManyRequests, "Retry-After"},
		{api.New(api.Exists, "exists"), http.StatusConflict, ""},
		{api.New(api.EndorsementRefused, "bad endorsement"), http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		url := serve(t, &fakeService{err: tt.err}, 0)
		resp, err := http.Get(url + proto.PathStatus)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus {
			t.Fatalf("%v: status %d, want %d", tt.err, resp.StatusCode, tt.wantStatus)
		}
		if tt.wantHeader != "" && resp.Header.Get(tt.wantHeader) == "" {
			t.Fatalf("%v: no %s header", tt.err, tt.wantHeader)
		}
	}
}

func TestReadyz(t *testing.T) {
	url := serve(t, &fakeService{}, 0)
	resp, err := http.Get(url + proto.PathReady)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ready service: status %d", resp.StatusCode)
	}
	url = serve(t, &fakeService{err: api.New(api.Unavailable, "store down")}, 0)
	resp, err = http.Get(url + proto.PathReady)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("unready service: status %d, want 503", resp.StatusCode)
	}
}

func TestWrongRoleIsRefusedBeforeTheBody(t *testing.T) {
	svc := &fakeService{}
	url := serveRaw(t, svc)
	// A tenant on a provider route gets 403, and a caller without a
	// credential 401, even with a body the route would refuse as malformed.
	for _, tt := range []struct {
		cred string
		want int
	}{
		{"", http.StatusUnauthorized},
		{testTenant, http.StatusForbidden},
	} {
		req, _ := http.NewRequest(http.MethodPost, url+proto.PathRegister, strings.NewReader("not json"))
		req.Header.Set("Content-Type", "text/plain")
		if tt.cred != "" {
			req.Header.Set("Authorization", "Bearer "+tt.cred)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Fatalf("credential %q: status %d, want %d", tt.cred, resp.StatusCode, tt.want)
		}
	}
}
