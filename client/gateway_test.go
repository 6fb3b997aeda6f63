package client

// Tests against gatewaytest, a test double of the gateway on 127.0.0.1
// serving simulated-TEE workers: the real gateway is tested in its own
// package and end to end in internal/devnet.

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client/internal/gatewaytest"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

const sample = "Hospitals hesitate to send records to cloud AI. " +
	"Confidential computing keeps records encrypted while a model processes them. " +
	"The weather was pleasant. " +
	"Attestation lets a hospital verify the code that will process its records."

// clock is the frozen time of the double's evidence and of the client.
func clock() time.Time { return t0.Add(time.Minute) }

// fleet makes workers named by their provider: "AAB" is two workers of
// provider A then one of B.
func fleet(t *testing.T, layout string) []*gatewaytest.Worker {
	t.Helper()
	providers := map[rune]*gatewaytest.Provider{}
	var ws []*gatewaytest.Worker
	for i, p := range layout {
		if providers[p] == nil {
			providers[p] = gatewaytest.NewProvider("provider-" + string(p))
		}
		w, err := gatewaytest.NewWorker(fmt.Sprintf("%c%d", p, i), providers[p], clock)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	return ws
}

func startDouble(t *testing.T, cfg gatewaytest.Config) *gatewaytest.Gateway {
	t.Helper()
	if cfg.Credential == "" {
		cfg.Credential = testCredential
	}
	g := gatewaytest.Start(cfg)
	t.Cleanup(g.Close)
	return g
}

// clientOf returns a client of g under the simulated policy, with edit
// applied to its config.
func clientOf(t *testing.T, g *gatewaytest.Gateway, edit func(*Config)) *Client {
	t.Helper()
	cfg := Config{GatewayURL: g.URL, GatewayCA: g.CertPEM, Credential: testCredential, Policy: policy.InsecureSimulated(), Now: clock}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ids(ws []Worker) string {
	var s []string
	for _, w := range ws {
		s = append(s, w.ID)
	}
	return strings.Join(s, " ")
}

func TestSummarizeThroughDouble(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: fleet(t, "AB")})
	c := clientOf(t, g, func(c *Config) { c.K = 2 })
	res, err := c.Summarize(context.Background(), sample, SummarizeOptions{Sentences: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Text, "Hospitals hesitate") || res.Worker.Kind != "sim" || res.Worker.Strict {
		t.Fatalf("result %+v", res)
	}
	if got := ids(res.Candidates); got != "A0 B1" {
		t.Fatalf("sealed to %s, want A0 B1", got)
	}
	if served := g.Served(); len(served) != 1 || served[0] != res.Worker.ID {
		t.Fatalf("the double says %v served, the client says %s", served, res.Worker.ID)
	}
	for _, w := range res.Candidates {
		if w.ProviderID != "provider-"+w.ID[:1] || len(w.ProviderKey) != ed25519.PublicKeySize {
			t.Fatalf("candidate %s names provider %q key %x", w.ID, w.ProviderID, w.ProviderKey)
		}
	}
}

// Every call to the gateway carries the credential, and only as a bearer
// token.
func TestCredentialOnEveryCall(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: fleet(t, "AB")})
	c := clientOf(t, g, func(c *Config) { c.Strict = true })
	if _, err := c.Summarize(context.Background(), sample, SummarizeOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	auth := g.Authorizations()
	if len(auth) != 5 { // candidates, two evidence requests, the request, status
		t.Fatalf("%d calls, want 5", len(auth))
	}
	for _, a := range auth {
		if a != "Bearer "+testCredential {
			t.Fatalf("authorization %q", a)
		}
	}
}

func TestUnauthorized(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: fleet(t, "A")})
	for name, cred := range map[string]string{"wrong": "sgt_" + strings.Repeat("x", 43), "none": ""} {
		c := clientOf(t, g, func(c *Config) { c.Credential = cred })
		_, err := c.Summarize(context.Background(), sample, SummarizeOptions{})
		var ae *AuthError
		if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
			t.Fatalf("%s credential: err = %v, want ErrUnauthorized with 401", name, err)
		}
		if cred != "" && strings.Contains(err.Error(), cred) {
			t.Fatalf("error %q quotes the credential", err)
		}
		if _, err := c.Status(context.Background()); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("status: err = %v, want ErrUnauthorized", err)
		}
	}
}

func TestGatewayRefusals(t *testing.T) {
	tests := []struct {
		path   string
		status int
		retry  string
		strict bool
		check  func(error) bool
	}{
		{proto.PathCandidates, 403, "", false, func(err error) bool { var ae *AuthError; return errors.As(err, &ae) && ae.Status == 403 }},
		{proto.PathCandidates, 429, "9", false, func(err error) bool {
			var re *RateLimitedError
			return errors.As(err, &re) && re.RetryAfter == 9*time.Second
		}},
		{proto.PathRequests, 429, "2", false, func(err error) bool { return errors.Is(err, ErrRateLimited) }},
		{proto.PathRequests, 503, "4", false, func(err error) bool {
			var oe *OverloadedError
			return errors.As(err, &oe) && oe.RetryAfter == 4*time.Second
		}},
		{proto.PathRequests, 502, "", false, func(err error) bool { var ge *GatewayError; return errors.As(err, &ge) && ge.Status == 502 }},
		// Strict mode: the relay of the client's nonce is rate-limited per
		// tenant; that fails the call, it does not refuse the workers.
		{proto.PathEvidence, 429, "5", true, func(err error) bool { return errors.Is(err, ErrRateLimited) && !errors.Is(err, ErrNoCandidate) }},
		{proto.PathEvidence, 401, "", true, func(err error) bool { return errors.Is(err, ErrUnauthorized) }},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %d", tt.path, tt.status), func(t *testing.T) {
			g := startDouble(t, gatewaytest.Config{Workers: fleet(t, "AB"), Fail: func(path string) (int, string) {
				if path == tt.path {
					return tt.status, tt.retry
				}
				return 0, ""
			}})
			c := clientOf(t, g, func(c *Config) { c.Strict = tt.strict })
			_, err := c.Summarize(context.Background(), sample, SummarizeOptions{})
			if !tt.check(err) {
				t.Fatalf("err = %v (%T)", err, err)
			}
			if tt.path != proto.PathRequests && g.Calls(proto.PathRequests) != 0 {
				t.Fatal("the client sent the request anyway")
			}
		})
	}
}

// Each way an endorsement can fail refuses the candidate, and the client
// seals to nobody when it is the only one.
func TestEndorsementRefusals(t *testing.T) {
	a := fleet(t, "A")[0]
	other := gatewaytest.NewProvider("provider-other")
	otherSig, err := other.Endorse(a.ID, a.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	renamedSig, err := a.Provider.Endorse("another-worker", a.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(*proto.CandidateInfo)
		trust   []ed25519.PublicKey
		field   string
		wantErr string
	}{
		{"bad signature", func(ci *proto.CandidateInfo) { ci.Endorsement[7] ^= 1 }, nil, "endorsement", "does not verify"},
		{"endorsement by another key", func(ci *proto.CandidateInfo) { ci.Endorsement = otherSig }, nil, "endorsement", "does not verify"},
		{"endorsement of another worker id", func(ci *proto.CandidateInfo) { ci.Endorsement = renamedSig }, nil, "endorsement", "does not verify"},
		{"another key listed for the endorsement", func(ci *proto.CandidateInfo) { ci.ProviderKey = other.PublicKey() }, nil, "endorsement", "does not verify"},
		{"missing endorsement", func(ci *proto.CandidateInfo) { ci.Endorsement = nil }, nil, "endorsement", "found none"},
		{"missing provider key", func(ci *proto.CandidateInfo) { ci.ProviderKey = nil }, nil, "provider key", "found none"},
		{"short provider key", func(ci *proto.CandidateInfo) { ci.ProviderKey = ci.ProviderKey[:16] }, nil, "provider key", "found 16 bytes"},
		{"untrusted provider", func(*proto.CandidateInfo) {}, []ed25519.PublicKey{other.PublicKey()}, "provider key", "Config.TrustedProviders"},
		{"untrusted provider, valid endorsement of its own", func(ci *proto.CandidateInfo) {
			ci.ProviderKey, ci.Endorsement = other.PublicKey(), otherSig
		}, []ed25519.PublicKey{a.Provider.PublicKey()}, "provider key", "Config.TrustedProviders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ci := a.Info()
			ci.Endorsement = slices.Clone(ci.Endorsement)
			tt.edit(&ci)
			g := startDouble(t, gatewaytest.Config{Workers: []*gatewaytest.Worker{a}, Listing: []proto.CandidateInfo{ci}})
			c := clientOf(t, g, func(c *Config) { c.TrustedProviders = tt.trust })

			ok, refused, err := c.Workers(context.Background(), proto.TaskSummarize)
			if err != nil || len(ok) != 0 || len(refused) != 1 {
				t.Fatalf("%d verified, %d refused (%v), want the one candidate refused", len(ok), len(refused), err)
			}
			var ee *EndorsementError
			if r := refused[0]; r.WorkerID != a.ID || r.ProviderID != a.Provider.ID || !errors.As(r.Err, &ee) || ee.Field != tt.field || !strings.Contains(r.Err.Error(), tt.wantErr) {
				t.Fatalf("refusal %+v, want field %q and %q", r, tt.field, tt.wantErr)
			}

			_, err = c.Summarize(context.Background(), sample, SummarizeOptions{})
			if !errors.Is(err, ErrNoCandidate) || !errors.Is(err, ErrEndorsement) {
				t.Fatalf("err = %v, want ErrNoCandidate for an endorsement", err)
			}
			if n := g.Calls(proto.PathRequests); n != 0 {
				t.Fatalf("the client sent %d requests sealed to a refused candidate", n)
			}
		})
	}
}

// A refused candidate is left out; the others are sealed to.
func TestEndorsementRefusalLeavesOthers(t *testing.T) {
	ws := fleet(t, "AB")
	listing := []proto.CandidateInfo{ws[0].Info(), ws[1].Info()}
	listing[0].Endorsement = nil
	g := startDouble(t, gatewaytest.Config{Workers: ws, Listing: listing})
	res, err := clientOf(t, g, nil).Summarize(context.Background(), sample, SummarizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ids(res.Candidates) != "B1" || len(res.Refused) != 1 || res.Refused[0].WorkerID != "A0" || !errors.Is(res.Refused[0].Err, ErrEndorsement) {
		t.Fatalf("sealed to %s, refused %+v", ids(res.Candidates), res.Refused)
	}
}

func TestTrustedProvidersAccepts(t *testing.T) {
	ws := fleet(t, "AB")
	g := startDouble(t, gatewaytest.Config{Workers: ws})
	c := clientOf(t, g, func(c *Config) { c.TrustedProviders = []ed25519.PublicKey{ws[1].Provider.PublicKey()} })
	res, err := c.Summarize(context.Background(), sample, SummarizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ids(res.Candidates) != "B1" || len(res.Refused) != 1 {
		t.Fatalf("sealed to %s, refused %+v, want only the trusted provider's worker", ids(res.Candidates), res.Refused)
	}
}

// Three workers of provider A listed before two of B: k=2 seals to one of
// each.
func TestDiversityThroughDouble(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: fleet(t, "AAABB")})
	res, err := clientOf(t, g, func(c *Config) { c.K = 2 }).Summarize(context.Background(), sample, SummarizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res.Candidates); got != "A0 B3" {
		t.Fatalf("sealed to %s, want A0 B3", got)
	}
	if res.Candidates[0].ProviderKey.Equal(res.Candidates[1].ProviderKey) {
		t.Fatal("both candidates have the same provider key")
	}
}

func TestStrictMode(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: fleet(t, "AB")})
	c := clientOf(t, g, func(c *Config) { c.Strict = true; c.K = 2 })
	res, err := c.Summarize(context.Background(), sample, SummarizeOptions{Sentences: 1})
	if err != nil {
		t.Fatal(err)
	}
	if n := g.Calls(proto.PathEvidence); n != 2 {
		t.Fatalf("%d evidence requests, want one per candidate", n)
	}
	for _, w := range res.Candidates {
		if !w.Strict || !w.EvidenceTime.Equal(clock()) {
			t.Fatalf("candidate %s: strict %v evidence time %v, want fresh evidence", w.ID, w.Strict, w.EvidenceTime)
		}
	}
	if !res.Worker.Strict {
		t.Fatal("the answering worker is not marked strict")
	}
}

// The fresh evidence may be a different bundle of the same keys, but
// must be bound to the client's nonce and to the listed keys.
func TestStrictModeRefusals(t *testing.T) {
	tests := []struct {
		name     string
		evidence func(w *gatewaytest.Worker, nonce [proto.NonceSize]byte) ([]byte, error)
		check    func(t *testing.T, err error)
	}{
		{"nonce mismatch", func(w *gatewaytest.Worker, nonce [proto.NonceSize]byte) ([]byte, error) {
			nonce[0] ^= 1
			return w.Evidence(nonce)
		}, func(t *testing.T, err error) {
			var ae *attestation.Error
			if !errors.As(err, &ae) || ae.Code != attestation.CodeBinding || ae.Field != "nonce" {
				t.Fatalf("refusal %v, want a nonce binding error", err)
			}
		}},
		{"the listed bundle replayed", func(w *gatewaytest.Worker, _ [proto.NonceSize]byte) ([]byte, error) {
			return w.Bundle, nil
		}, func(t *testing.T, err error) {
			var ae *attestation.Error
			if !errors.As(err, &ae) || ae.Field != "nonce" {
				t.Fatalf("refusal %v, want a nonce binding error", err)
			}
		}},
		{"different keys", func(w *gatewaytest.Worker, nonce [proto.NonceSize]byte) ([]byte, error) {
			k, err := seal.GenerateKey(proto.KEMMLKEM768X25519)
			if err != nil {
				return nil, err
			}
			return w.EvidenceOf(k.Public(), nonce)
		}, func(t *testing.T, err error) {
			if !strings.Contains(err.Error(), "keys") || attestation.CodeOf(err) != "" {
				t.Fatalf("refusal %v, want the keys named", err)
			}
		}},
		{"not a bundle", func(*gatewaytest.Worker, [proto.NonceSize]byte) ([]byte, error) {
			return []byte("nothing"), nil
		}, func(t *testing.T, err error) {
			if attestation.CodeOf(err) != attestation.CodeMalformed {
				t.Fatalf("refusal %v, want malformed", err)
			}
		}},
		{"worker unreachable", func(*gatewaytest.Worker, [proto.NonceSize]byte) ([]byte, error) {
			return nil, errors.New("down")
		}, func(t *testing.T, err error) {
			var ge *GatewayError
			if !errors.As(err, &ge) || ge.Status != http.StatusBadGateway {
				t.Fatalf("refusal %v, want the gateway's 502", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Worker A0 misbehaves; A1 and B2 answer honestly.
			ws := fleet(t, "AAB")
			g := startDouble(t, gatewaytest.Config{Workers: ws, Evidence: func(w *gatewaytest.Worker, nonce [proto.NonceSize]byte) ([]byte, error) {
				if w == ws[0] {
					return tt.evidence(w, nonce)
				}
				return w.Evidence(nonce)
			}})

			alone := clientOf(t, g, func(c *Config) { c.Strict = true; c.K = 1 })
			_, err := alone.Summarize(context.Background(), sample, SummarizeOptions{})
			if err != nil {
				t.Fatal(err) // A0 refused, A1 taken instead
			}

			c := clientOf(t, g, func(c *Config) { c.Strict = true; c.K = 2 })
			res, err := c.Summarize(context.Background(), sample, SummarizeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(res.Candidates); got != "A1 B2" {
				t.Fatalf("sealed to %s, want A1 B2 (A0 refused)", got)
			}
			if len(res.Refused) != 1 || res.Refused[0].WorkerID != "A0" || !errors.Is(res.Refused[0].Err, ErrStrictEvidence) {
				t.Fatalf("refused %+v, want A0 for its fresh evidence", res.Refused)
			}
			tt.check(t, res.Refused[0].Err)

			// With only the misbehaving worker listed, nothing is sent.
			g1 := startDouble(t, gatewaytest.Config{Workers: ws[:1], Evidence: func(w *gatewaytest.Worker, nonce [proto.NonceSize]byte) ([]byte, error) {
				return tt.evidence(w, nonce)
			}})
			_, err = clientOf(t, g1, func(c *Config) { c.Strict = true }).Summarize(context.Background(), sample, SummarizeOptions{})
			if !errors.Is(err, ErrNoCandidate) || !errors.Is(err, ErrStrictEvidence) {
				t.Fatalf("err = %v, want ErrNoCandidate for strict evidence", err)
			}
			if g1.Calls(proto.PathRequests) != 0 {
				t.Fatal("the client sealed to a worker that failed strict mode")
			}
		})
	}
}

func TestStatus(t *testing.T) {
	want := proto.Status{Pools: []proto.PoolStatus{{PoolSpec: proto.PoolSpec{ID: "p1", TenantID: "t1", Slots: 4}, Capacity: 8, InUse: 2}}, Capacity: 64, InUse: 5}
	g := startDouble(t, gatewaytest.Config{Status: want})
	got, err := clientOf(t, g, nil).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Capacity != 64 || got.InUse != 5 || len(got.Pools) != 1 || got.Pools[0].ID != "p1" || got.Pools[0].Capacity != 8 {
		t.Fatalf("status %+v", got)
	}
}

// The gateway's certificate is trusted through GatewayCA only: not by
// the system roots, and not when GatewayCA holds another certificate.
func TestGatewayCA(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: fleet(t, "A")})
	other := startDouble(t, gatewaytest.Config{})
	for name, ca := range map[string][]byte{"system roots": nil, "another certificate": other.CertPEM} {
		c := clientOf(t, g, func(c *Config) { c.GatewayCA = ca })
		_, _, err := c.Workers(context.Background(), proto.TaskSummarize)
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("%s: err = %v, want a certificate error", name, err)
		}
	}
	if g.Calls(proto.PathCandidates) != 0 {
		t.Fatal("a request reached the gateway over an unverified connection")
	}
	// A caller's own HTTP client with the right roots works too, and is
	// not modified.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsTrusting(t, g.CertPEM)}}
	c := clientOf(t, g, func(c *Config) { c.GatewayCA, c.HTTPClient = nil, hc })
	if _, _, err := c.Workers(context.Background(), proto.TaskSummarize); err != nil {
		t.Fatal(err)
	}
	if hc.CheckRedirect != nil {
		t.Fatal("the caller's HTTP client was modified")
	}
}

func TestPlainHTTPLoopback(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: fleet(t, "A"), PlainHTTP: true})
	if _, err := New(Config{GatewayURL: g.URL, Credential: testCredential}); err == nil || !strings.Contains(err.Error(), "InsecurePlainHTTP") {
		t.Fatalf("err = %v, want plain http refused without InsecurePlainHTTP", err)
	}
	c := clientOf(t, g, func(c *Config) { c.GatewayCA, c.InsecurePlainHTTP = nil, true })
	if _, err := c.Summarize(context.Background(), sample, SummarizeOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A redirect is never followed, so the credential goes nowhere else.
func TestRedirectRefused(t *testing.T) {
	var leaked []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		leaked = append(leaked, r.Header.Get(proto.HeaderAuthorization))
	}))
	defer elsewhere.Close()
	gw := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Redirect(rw, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer gw.Close()
	c, err := New(Config{GatewayURL: gw.URL, InsecurePlainHTTP: true, Credential: testCredential, Policy: policy.InsecureSimulated()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "redirects are refused") {
		t.Fatalf("err = %v, want the redirect refused", err)
	}
	if len(leaked) != 0 {
		t.Fatalf("the redirect target got %d requests", len(leaked))
	}
}

// A real server on 127.0.0.1 sends a valid sealed stream and cuts it:
// the client returns a typed truncation error and no partial text.
func TestTruncatedStream(t *testing.T) {
	long := strings.Repeat("0123456789abcdef", 400) // 6400 bytes: several response chunks
	output := func(string, []byte) (string, error) { return long, nil }
	header := proto.ResponseHeaderSize
	chunk := 5 + proto.ResponseChunkSize + proto.AEADOverhead
	// received is the output in the whole events of n chunks.
	received := func(n int) int {
		return n * proto.ResponseChunkData / (5 + gatewaytest.EventSize) * gatewaytest.EventSize
	}
	tests := []struct {
		name         string
		cut          int
		abort        bool
		wantWorker   bool
		wantReceived int
	}{
		{"inside the response header", header / 2, false, false, 0},
		{"inside the first chunk", header + chunk/2, false, false, 0},
		{"after three chunks", header + 3*chunk, false, true, received(3)},
		{"inside the fourth chunk", header + 3*chunk + 100, false, true, received(3)},
		{"connection reset after two chunks", header + 2*chunk + 10, true, true, received(2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startDouble(t, gatewaytest.Config{Workers: fleet(t, "A"), Output: output, CutAfter: tt.cut, Abort: tt.abort})
			res, err := clientOf(t, g, nil).Summarize(context.Background(), sample, SummarizeOptions{})
			if res != nil {
				t.Fatalf("got a result of %d bytes from a cut stream", len(res.Text))
			}
			var te *TruncatedError
			if !errors.Is(err, ErrTruncated) || !errors.As(err, &te) {
				t.Fatalf("err = %v (%T), want ErrTruncated", err, err)
			}
			if (te.WorkerID == "A0") != tt.wantWorker || te.Received != tt.wantReceived {
				t.Fatalf("truncation %+v, want worker known %v and %d bytes received", te, tt.wantWorker, tt.wantReceived)
			}
			if !tt.abort && !errors.Is(err, seal.ErrTruncated) {
				t.Fatalf("err = %v, want seal.ErrTruncated inside", err)
			}
		})
	}
	// Uncut, the same stream arrives whole.
	g := startDouble(t, gatewaytest.Config{Workers: fleet(t, "A"), Output: output})
	res, err := clientOf(t, g, nil).Summarize(context.Background(), sample, SummarizeOptions{})
	if err != nil || res.Text != long {
		t.Fatalf("uncut stream: %v", err)
	}
}

func TestCancelledIsNotTruncated(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: fleet(t, "A")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := clientOf(t, g, nil).Summarize(ctx, sample, SummarizeOptions{})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// tlsTrusting returns a TLS configuration trusting only the PEM
// certificates in ca.
func tlsTrusting(t *testing.T, ca []byte) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("no certificate in the PEM")
	}
	return &tls.Config{RootCAs: pool}
}

// MinProviders: a listing with fewer distinct provider keys than asked
// for fails with a *DiversityError and sends nothing; so does one whose
// other providers' workers are refused, in strict mode too.
func TestMinProviders(t *testing.T) {
	tests := []struct {
		name      string
		layout    string
		k, min    int
		strict    bool
		refuseB   bool // B's fresh evidence (strict) is not relayed
		wantFound int  // 0: success
	}{
		{"one provider listed", "AAA", 3, 2, false, false, 1},
		{"two providers listed", "AAB", 2, 2, false, false, 0},
		{"three wanted, two listed", "AAB", 3, 3, false, false, 2},
		{"strict, the other provider fails", "AB", 2, 2, true, true, 1},
		{"strict, both pass", "AB", 2, 2, true, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := fleet(t, tt.layout)
			g := startDouble(t, gatewaytest.Config{Workers: ws, Evidence: func(w *gatewaytest.Worker, nonce [proto.NonceSize]byte) ([]byte, error) {
				if tt.refuseB && w.Provider.ID == "provider-B" {
					return nil, errors.New("down")
				}
				return w.Evidence(nonce)
			}})
			c := clientOf(t, g, func(c *Config) { c.K, c.MinProviders, c.Strict = tt.k, tt.min, tt.strict })
			res, err := c.Summarize(context.Background(), sample, SummarizeOptions{})
			if tt.wantFound == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if providers(res.Candidates) < tt.min {
					t.Fatalf("sealed to %s", ids(res.Candidates))
				}
				return
			}
			var de *DiversityError
			if !errors.Is(err, ErrDiversity) || !errors.As(err, &de) || de.Found != tt.wantFound || de.Want != tt.min || errors.Is(err, ErrNoCandidate) {
				t.Fatalf("err = %v, want a *DiversityError with %d of %d providers", err, tt.wantFound, tt.min)
			}
			if tt.refuseB && !errors.Is(err, ErrStrictEvidence) {
				t.Fatalf("err = %v, want B's strict refusal inside", err)
			}
			if n := g.Calls(proto.PathRequests); n != 0 {
				t.Fatalf("the client sent %d requests without the diversity asked for", n)
			}
		})
	}
	for _, m := range []int{-1, 4} {
		if _, err := New(Config{GatewayURL: "https://gateway.example", MinProviders: m}); err == nil || !strings.Contains(err.Error(), "min providers") {
			t.Fatalf("MinProviders %d: err = %v, want it refused", m, err)
		}
	}
}

// A listing entry whose worker or provider id the gateway could not have
// admitted is refused even when its endorsement of that id verifies, and
// the refusal and the error carry the id quoted, never its control
// characters.
func TestListedIDsRefused(t *testing.T) {
	a := fleet(t, "A")[0]
	for _, tt := range []struct{ field, worker, provider string }{
		{"worker id", "A0\x1b[2J\n{\"level\":\"INFO\"}", a.Provider.ID},
		{"worker id", strings.Repeat("w", proto.MaxWorkerIDLen+1), a.Provider.ID},
		{"worker id", "", a.Provider.ID},
		{"provider id", a.ID, "provider-A\r\x1b]0;title\x07"},
		{"provider id", a.ID, ""},
	} {
		ci := a.Info()
		ci.WorkerID, ci.ProviderID = tt.worker, tt.provider
		sig, err := a.Provider.Endorse(ci.WorkerID, a.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		ci.Endorsement = sig
		g := startDouble(t, gatewaytest.Config{Workers: []*gatewaytest.Worker{a}, Listing: []proto.CandidateInfo{ci}})
		_, err = clientOf(t, g, nil).Summarize(context.Background(), sample, SummarizeOptions{})
		var ee *EndorsementError
		var nc *NoCandidateError
		if !errors.As(err, &ee) || ee.Field != tt.field || !errors.As(err, &nc) {
			t.Fatalf("%q/%q: err = %v, want the %s refused", tt.worker, tt.provider, err, tt.field)
		}
		if i := strings.IndexFunc(err.Error(), func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
			t.Fatalf("err = %q holds a control character", err)
		}
		if r := nc.Refusals[0]; tt.field == "worker id" && tt.worker != "" && r.WorkerID != strconv.QuoteToASCII(tt.worker[:min(len(tt.worker), proto.MaxWorkerIDLen)]) {
			t.Fatalf("refusal names worker %q", r.WorkerID)
		}
		if g.Calls(proto.PathRequests) != 0 {
			t.Fatal("the client sealed to a candidate with an id the gateway could not have admitted")
		}
	}
}

// A listing longer than the client asked for is refused before any of it
// is verified.
func TestListingTooLong(t *testing.T) {
	a := fleet(t, "A")[0]
	listing := make([]proto.CandidateInfo, proto.MaxListed+1)
	for i := range listing {
		listing[i] = a.Info()
	}
	g := startDouble(t, gatewaytest.Config{Workers: []*gatewaytest.Worker{a}, Listing: listing})
	c := clientOf(t, g, nil)
	if _, _, err := c.Workers(context.Background(), proto.TaskSummarize); err == nil {
		t.Fatal("a listing of 17 accepted")
	}
	_, err := c.Summarize(context.Background(), sample, SummarizeOptions{})
	var ge *GatewayError
	if !errors.As(err, &ge) || ge.Code != "listing_too_long" || g.Calls(proto.PathRequests) != 0 {
		t.Fatalf("err = %v, want the listing refused and nothing sent", err)
	}
	g16 := startDouble(t, gatewaytest.Config{Workers: []*gatewaytest.Worker{a}, Listing: listing[:proto.MaxListed]})
	if _, err := clientOf(t, g16, nil).Summarize(context.Background(), sample, SummarizeOptions{}); err != nil {
		t.Fatalf("a listing of %d: %v", proto.MaxListed, err)
	}
}
