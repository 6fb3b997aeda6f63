package client

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
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
	c, err := New(Config{GatewayURL: "http://127.0.0.1:1", InsecurePlainHTTP: true, Policy: p, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// worker returns a verified worker of bundle whose provider key is made
// of the byte provider, or is a key of its own without one.
func worker(t *testing.T, c *Client, bundle []byte, provider ...byte) Worker {
	t.Helper()
	vd, err := c.verify(bundle)
	if err != nil {
		t.Fatal(err)
	}
	pk := ed25519.PublicKey(vd.keysHash[:]) // a provider of its own
	if provider != nil {
		pk = bytes.Repeat(provider[:1], ed25519.PublicKeySize)
	}
	w := Worker{ID: "w", ProviderKey: pk, keysHash: vd.keysHash}
	w.setVerified(vd.v)
	return w
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

// Three workers of provider A listed before two of provider B: with k=2
// the client seals to one of each, not to the first two.
func TestChoosePrefersDistinctProviders(t *testing.T) {
	now := t0
	c := newTestClient(t, policy.InsecureSimulated(), &now)
	var ws []Worker
	for i, p := range []byte("AAABB") {
		w := worker(t, c, simBundle(t, proto.KEMMLKEM768X25519), p)
		w.ID, w.listed = fmt.Sprintf("%c%d", p, i), i
		ws = append(ws, w)
	}
	tests := []struct {
		k    int
		want string
	}{
		{1, "A0"},
		{2, "A0 B3"},
		{3, "A0 A1 B3"}, // one per provider, then filled in listing order
		{5, "A0 A1 A2 B3 B4"},
	}
	for _, tt := range tests {
		c.cfg.K = tt.k
		chosen, _, err := c.choose(ws, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, w := range chosen {
			ids = append(ids, w.ID)
		}
		if got := strings.Join(ids, " "); got != tt.want {
			t.Errorf("k=%d: chose %s, want %s", tt.k, got, tt.want)
		}
	}
}

// A worker listed twice (same keys, another name) is sealed to once.
func TestChooseSealsToKeysOnce(t *testing.T) {
	now := t0
	c := newTestClient(t, policy.InsecureSimulated(), &now)
	w := worker(t, c, simBundle(t, proto.KEMMLKEM768X25519))
	twin := w
	twin.ID = "twin"
	chosen, _, err := c.choose([]Worker{w, twin}, nil)
	if err != nil || len(chosen) != 1 {
		t.Fatalf("chose %d (%v), want the keys once", len(chosen), err)
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
	if err != nil || v1.v != v2.v {
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

const testCredential = "sgt_Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"

func TestNewRejectsBadConfig(t *testing.T) {
	local := "http://127.0.0.1:8080"
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no url", Config{}, "gateway url"},
		{"bad scheme", Config{GatewayURL: "ftp://x"}, "gateway url"},
		{"plain http without the flag", Config{GatewayURL: local}, "InsecurePlainHTTP"},
		{"plain http to a network host", Config{GatewayURL: "http://10.0.0.1:8080", InsecurePlainHTTP: true}, "not a loopback"},
		{"plain http to a name", Config{GatewayURL: "http://gateway.internal:8080", InsecurePlainHTTP: true}, "not a loopback"},
		{"plain http to a lookalike", Config{GatewayURL: "http://127.0.0.1.example:8080", InsecurePlainHTTP: true}, "not a loopback"},
		{"user info", Config{GatewayURL: "https://tenant:secret@gw.example"}, "Config.Credential"},
		{"query", Config{GatewayURL: "https://gw.example/?x=1"}, "query"},
		{"k too big", Config{GatewayURL: "https://x", K: 9}, "k: found 9"},
		{"bad policy", Config{GatewayURL: "https://x", Policy: &policy.Policy{Version: 1}}, "name"},
		{"admin credential", Config{GatewayURL: "https://x", Credential: "sga_" + testCredential[4:]}, "found an admin credential"},
		{"provider credential", Config{GatewayURL: "https://x", Credential: "sgp_" + testCredential[4:]}, "found a provider credential"},
		{"credential with a newline", Config{GatewayURL: "https://x", Credential: testCredential + "\n"}, "bearer token alphabet"},
		{"short trusted provider", Config{GatewayURL: "https://x", TrustedProviders: []ed25519.PublicKey{make([]byte, 31)}}, "trusted providers: key 1: found 31 bytes"},
		{"attestation nonce", Config{GatewayURL: "https://x", AttestationOptions: attestation.Options{Nonce: new([proto.NonceSize]byte)}}, "Strict"},
		{"ca and http client", Config{GatewayURL: "https://x", GatewayCA: []byte("x"), HTTPClient: http.DefaultClient}, "want one"},
		{"ca not pem", Config{GatewayURL: "https://x", GatewayCA: []byte("not a certificate")}, "found no PEM certificate"},
		{"ca is a key", Config{GatewayURL: "https://x", GatewayCA: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}, `found a "PRIVATE KEY" PEM block`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testCredential[4:]) || strings.Contains(err.Error(), "secret") {
				t.Fatalf("error %q quotes the credential", err)
			}
		})
	}
	for _, ok := range []Config{
		{GatewayURL: "https://gw.example"},
		{GatewayURL: "https://gw.example/base/", Credential: testCredential},
		{GatewayURL: local, InsecurePlainHTTP: true},
		{GatewayURL: "http://[::1]:8080", InsecurePlainHTTP: true},
		{GatewayURL: "http://127.0.0.2", InsecurePlainHTTP: true},
		{GatewayURL: "http://LocalHost:8080", InsecurePlainHTTP: true},
		{GatewayURL: "http://[::ffff:127.0.0.1]:8080", InsecurePlainHTTP: true},
	} {
		if _, err := New(ok); err != nil {
			t.Errorf("New(%v): %v", ok, err)
		}
	}
}

// Printing or logging a Config or a Client never shows the credential.
func TestCredentialNotPrinted(t *testing.T) {
	cfg := Config{GatewayURL: "https://gw.example", Credential: testCredential}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	log.Info("client", slog.Any("config", cfg), slog.Any("client", c))
	for _, s := range []string{
		fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg),
		fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), logged.String(),
	} {
		if strings.Contains(s, testCredential[4:]) {
			t.Fatalf("credential printed in %s", s)
		}
		if !strings.Contains(s, "credential_set") {
			t.Fatalf("%s does not say whether a credential is set", s)
		}
	}
}

func TestGatewayErrorMapping(t *testing.T) {
	c, err := New(Config{GatewayURL: "https://gw.example", Credential: testCredential, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	answer := func(status int, retryAfter, body string) error {
		rec := httptest.NewRecorder()
		if retryAfter != "" {
			rec.Header().Set("Retry-After", retryAfter)
		}
		rec.WriteHeader(status)
		rec.WriteString(body)
		return c.gatewayError(rec.Result())
	}
	echo := `{"error":{"code":"unauthorized","message":"bad key Bearer ` + testCredential + `\u001b[31m"}}`
	err = answer(401, "", echo)
	var ae *AuthError
	if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &ae) || ae.Status != 401 || ae.Code != "unauthorized" {
		t.Fatalf("401: %v", err)
	}
	if strings.Contains(err.Error(), testCredential) || strings.Contains(err.Error(), "\x1b") {
		t.Fatalf("error %q quotes the credential or a control character", err)
	}
	if err := answer(403, "", `{"error":{"code":"forbidden","message":"no"}}`); !errors.As(err, &ae) || ae.Status != 403 || !strings.Contains(err.Error(), "forbids") {
		t.Fatalf("403: %v", err)
	}
	var rl *RateLimitedError
	if err := answer(429, "7", ""); !errors.Is(err, ErrRateLimited) || !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Fatalf("429: %v", err)
	}
	if err := answer(429, t0.Add(90*time.Second).Format(http.TimeFormat), ""); !errors.As(err, &rl) || rl.RetryAfter != 90*time.Second {
		t.Fatalf("429 with a date: %v", err)
	}
	var ol *OverloadedError
	if err := answer(503, "3", ""); !errors.Is(err, ErrOverloaded) || !errors.As(err, &ol) || ol.RetryAfter != 3*time.Second {
		t.Fatalf("503: %v", err)
	}
	if err := answer(503, "soon", ""); !errors.As(err, &ol) || ol.RetryAfter != time.Second {
		t.Fatalf("503 with a bad Retry-After: %v", err)
	}
	var ge *GatewayError
	if err := answer(500, "", "oops"); !errors.As(err, &ge) || ge.Status != 500 || errors.Is(err, ErrUnauthorized) {
		t.Fatalf("500: %v", err)
	}
	long := `{"error":{"code":"x","message":"` + strings.Repeat("é", 1000) + `"}}`
	if err := answer(400, "", long); len(err.Error()) > 400 {
		t.Fatalf("400 with a long message: %d bytes of error", len(err.Error()))
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		h    string
		want time.Duration
	}{
		{"", time.Second}, {"0", 0}, {"120", 2 * time.Minute}, {"-1", time.Second}, {"1.5", time.Second},
		{t0.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(tt.h, t0); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestStrictEvidenceErrorUnwraps(t *testing.T) {
	inner := &attestation.Error{Code: attestation.CodeBinding, Field: "nonce"}
	err := error(&NoCandidateError{Refusals: []Refusal{{WorkerID: "w", Err: &StrictEvidenceError{Reason: "r", Err: inner}}}})
	var ae *attestation.Error
	if !errors.Is(err, ErrStrictEvidence) || !errors.As(err, &ae) || ae.Field != "nonce" {
		t.Fatalf("%v does not unwrap to the attestation error", err)
	}
}

// A stream that fails to authenticate, or is malformed, stays a forgery
// when the connection also broke: only a stream that merely ended early
// is a truncation.
func TestStreamErrorKeepsForgeries(t *testing.T) {
	broken := &recordingReader{err: errors.New("connection reset by peer")}
	for _, err := range []error{seal.ErrAuthentication, seal.ErrNotCandidate, seal.ErrTrailingData, fmt.Errorf("%w: chunk flag", proto.ErrMalformed)} {
		got := streamError(t.Context(), err, broken, "w1", 10)
		if !errors.Is(got, err) || errors.Is(got, ErrTruncated) {
			t.Fatalf("%v after a broken connection: got %v, want it kept, not a truncation", err, got)
		}
	}
	for _, err := range []error{seal.ErrTruncated, broken.err} {
		var te *TruncatedError
		if got := streamError(t.Context(), err, broken, "w1", 10); !errors.As(got, &te) || te.WorkerID != "w1" || te.Received != 10 {
			t.Fatalf("%v: got %v, want a *TruncatedError", err, got)
		}
	}
}
