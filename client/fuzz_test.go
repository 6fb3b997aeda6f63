package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
	"github.com/sealgate/sealgate/translog"
)

// fuzzCredential is the tenant credential of the fuzzed client: a
// gateway knows it and may try to make the client print it.
var fuzzCredential = proto.CredentialTenant + strings.Repeat("Q", 43)

type answer func(*http.Request) (*http.Response, error)

func (a answer) RoundTrip(r *http.Request) (*http.Response, error) { return a(r) }

// fuzzListing is a listing of one simulated worker that passes the
// insecure-simulated policy at t0, endorsed by a fixed provider key.
func fuzzListing(f *testing.F) []byte {
	k, err := seal.GenerateKey(proto.KEMMLKEM768X25519)
	if err != nil {
		f.Fatal(err)
	}
	provider := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	b := proto.Bundle{Kind: "sim", Nonce: [proto.NonceSize]byte{1}, Keys: proto.WorkerKeys{
		HPKE: []proto.HPKEKey{k.Public()}, Signing: provider.Public().(ed25519.PublicKey),
	}}
	b.Report = sim.NewDevice(sim.DeviceConfig{Now: func() time.Time { return t0 }}).Report(b.ReportData())
	raw, err := b.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	list, _ := json.Marshal(proto.CandidateList{Candidates: []proto.CandidateInfo{{
		WorkerID: "w1", Tasks: []string{proto.TaskSummarize}, Bundle: raw, ProviderID: "p1",
		ProviderKey: provider.Public().(ed25519.PublicKey), Endorsement: ed25519.Sign(provider, proto.EndorsementMessage("w1", b.KeysHash())),
		Region: "eu", Capacity: 4,
	}, {WorkerID: "w2", Bundle: []byte("SGEB")}}})
	return list
}

// FuzzGatewayAnswers makes the gateway answer the client's listing and
// status calls with an arbitrary status, Retry-After and body. The
// client must never panic; it lists as verified only candidates whose
// bundle it verified, and refuses the rest, one by one; pinned to a
// transparency log, it verifies nobody without that log's signed
// checkpoint; and every error
// from the gateway's answer is typed, with the gateway's code and message
// printable, bounded and without the client's credential.
func FuzzGatewayAnswers(f *testing.F) {
	list := fuzzListing(f)
	seeds := [][]any{
		{uint16(200), "", list},
		{uint16(200), "", []byte(`{"candidates":[{"worker_id":"w","bundle":"AAAA","provider_key":"AAAA","endorsement":null}]}`)},
		{uint16(200), "", []byte(`{"pools":[{"id":"gold","tenant_id":"t1","slots":2,"capacity":6,"in_use":1}],"capacity":10,"in_use":3}`)},
		{uint16(401), "", []byte(`{"error":{"code":"unauthorized","message":"bad credential ` + fuzzCredential + `"}}`)},
		{uint16(403), "", []byte(`{"error":{"code":"for\x1b[31mbidden","message":"` + fuzzCredential[:20] + `\n` + fuzzCredential[20:] + `"}}`)},
		{uint16(503), "7", []byte(`{"error":{"code":"overloaded","message":"busy"}}`)},
		{uint16(429), "Wed, 01 Nov 2026 12:00:30 GMT", []byte(nil)},
		{uint16(500), "-1", []byte(`{"error":{"code":"internal","message":"` + strings.Repeat("é", 300) + `"}}`)},
		{uint16(302), "", []byte("<html>")},
	}
	for _, s := range seeds {
		fuzzseed.Add(f, s...)
	}
	// A log key whose signing key nobody keeps: no checkpoint can verify
	// under it.
	_, logKey, err := translog.GenerateKey("fuzz.sealgate.test/log")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status uint16, retry string, body []byte) {
		if status < 100 || status > 999 {
			status = 200
		}
		rt := answer(func(r *http.Request) (*http.Response, error) {
			h := http.Header{"Content-Type": {"application/json"}}
			if retry != "" {
				h.Set("Retry-After", retry)
			}
			return &http.Response{StatusCode: int(status), Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})
		c, err := New(Config{
			GatewayURL: "https://gateway.test", Credential: fuzzCredential, Policy: policy.InsecureSimulated(),
			HTTPClient: &http.Client{Transport: rt}, Now: func() time.Time { return t0 },
		})
		if err != nil {
			t.Fatal(err)
		}
		ws, refused, err := c.Workers(context.Background(), proto.TaskSummarize)
		if err != nil {
			checkGatewayError(t, int(status), err)
		} else {
			var l proto.CandidateList
			if json.NewDecoder(bytes.NewReader(body)).Decode(&l) != nil || len(ws)+len(refused) != len(l.Candidates) {
				t.Fatalf("%d verified and %d refused of a listing that does not list them", len(ws), len(refused))
			}
			for _, w := range ws {
				if w.verified == nil || w.Kind != policy.KindSim || len(w.ProviderKey) != ed25519.PublicKeySize {
					t.Fatalf("worker %q listed as verified: %+v", w.ID, w)
				}
			}
			for _, r := range refused {
				if r.Err == nil {
					t.Fatalf("candidate %q refused without a reason", r.WorkerID)
				}
			}
		}
		if _, err := c.Status(context.Background()); err != nil {
			checkGatewayError(t, int(status), err)
		}
		// Pinned to a log the gateway cannot sign for, the client
		// verifies nobody, whatever the listing says.
		logged, err := New(Config{
			GatewayURL: "https://gateway.test", Credential: fuzzCredential, Policy: policy.InsecureSimulated(),
			HTTPClient: &http.Client{Transport: rt}, Now: func() time.Time { return t0 }, LogKey: logKey,
		})
		if err != nil {
			t.Fatal(err)
		}
		ws, _, err = logged.Workers(context.Background(), proto.TaskSummarize)
		if err != nil {
			checkGatewayError(t, int(status), err)
		} else if len(ws) != 0 {
			t.Fatalf("%d workers verified without a checkpoint signed by the pinned log key", len(ws))
		}
	})
}

// checkGatewayError requires err to be typed by the status it answers,
// with the gateway's text fit to print.
func checkGatewayError(t *testing.T, status int, err error) {
	t.Helper()
	var (
		ge *GatewayError
		ae *AuthError
		oe *OverloadedError
		re *RateLimitedError
	)
	switch {
	case status == http.StatusOK:
		return // the body did not decode: an untyped decoding error
	case errors.As(err, &oe):
		if status != http.StatusServiceUnavailable || oe.RetryAfter < 0 {
			t.Fatalf("%d: %v", status, err)
		}
	case errors.As(err, &re):
		if status != http.StatusTooManyRequests || re.RetryAfter < 0 {
			t.Fatalf("%d: %v", status, err)
		}
	case errors.As(err, &ae):
		checkGatewayText(t, ae.Code, ae.Message)
	case errors.As(err, &ge):
		checkGatewayText(t, ge.Code, ge.Message)
	default:
		t.Fatalf("status %d: untyped error %v (%T)", status, err, err)
	}
	if strings.Contains(err.Error(), fuzzCredential) {
		t.Fatal("an error shows the credential")
	}
}

func checkGatewayText(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if len(s) > maxGatewayText+len("…") || strings.Contains(s, fuzzCredential) ||
			strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
			t.Fatalf("gateway text %s is not fit to print", strconv.Quote(s))
		}
	}
}

// FuzzGatewayCA feeds Config.GatewayCA (a file the user was given) to
// certPool: it never panics, refuses any PEM block but a certificate, and
// accepts only when it found one.
func FuzzGatewayCA(f *testing.F) {
	cert, err := tlspin.SelfSigned([]string{"gateway.test"}, t0, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Leaf.Raw})
	fuzzseed.Add(f, certPEM)
	fuzzseed.Add(f, append([]byte("subject=CN=gateway.test\n"), append(bytes.Clone(certPEM), certPEM...)...))
	fuzzseed.Add(f, append(bytes.Clone(certPEM), "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"...))
	fuzzseed.Add(f, []byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pool, err := certPool(data)
		if err != nil {
			if pool != nil {
				t.Fatal("a pool with an error")
			}
			return
		}
		blocks, rest := 0, data
		for {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				t.Fatalf("a %q block accepted", b.Type)
			}
			blocks++
		}
		if pool == nil || blocks == 0 {
			t.Fatal("accepted without a certificate")
		}
	})
}
