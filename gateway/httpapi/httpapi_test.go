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
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/proto"
)

// fakeService answers with whatever its fields say.
type fakeService struct {
	err   error
	relay func(ctx context.Context, body io.Reader, sink api.Sink) error
}

func (f *fakeService) Challenge(context.Context) (proto.Challenge, error) {
	return proto.Challenge{Nonce: make([]byte, proto.NonceSize)}, f.err
}

func (f *fakeService) Register(context.Context, proto.Registration) (proto.Admission, error) {
	return proto.Admission{}, f.err
}

func (f *fakeService) Candidates(context.Context, string, int) (proto.CandidateList, error) {
	return proto.CandidateList{Candidates: []proto.CandidateInfo{}}, f.err
}

func (f *fakeService) Relay(ctx context.Context, body io.Reader, sink api.Sink) error {
	if f.relay != nil {
		return f.relay(ctx, body, sink)
	}
	return f.err
}

func serve(t *testing.T, svc Service, readTimeout time.Duration) string {
	t.Helper()
	h, err := New(Config{Service: svc, MaxRequestBody: 1 << 20, BodyReadTimeout: readTimeout})
	if err != nil {
		t.Fatal(err)
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
