package gateway_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// fuzzRoute is one request body the gateway parses, and who sends it.
type fuzzRoute struct {
	method, path, contentType, role string
	query                           bool // the input is the query string, not the body
	reachesWorker                   bool // the gateway calls a worker to answer it
}

var fuzzRoutes = []fuzzRoute{
	{http.MethodPost, proto.PathRegister, "application/json", "provider", false, false},
	{http.MethodPut, proto.PathProviderKey, "application/json", "provider", false, false},
	{http.MethodPost, proto.PathChallenge, "application/json", "provider", false, false},
	{http.MethodPost, proto.PathEvidence, "application/json", "tenant", false, true},
	{http.MethodPost, proto.PathRequests, proto.MediaTypeRequest, "tenant", false, true},
	{http.MethodGet, proto.PathCandidates, "", "tenant", true, false},
	{http.MethodPost, proto.PathAdminProviders, "application/json", "admin", false, false},
	{http.MethodPost, proto.PathAdminTenants, "application/json", "admin", false, false},
	{http.MethodPost, proto.PathAdminRotate, "application/json", "admin", false, false},
	{http.MethodPost, proto.PathAdminPools, "application/json", "admin", false, false},
}

// fuzzGateway is a gateway on SQLite in a temporary directory, called
// through its handler without a socket, with the credentials of its
// admin, one provider and one tenant.
type fuzzGateway struct {
	h                         http.Handler
	admin, provider, tenant   string
	providerID, tenantID      string
	clock                     *clock
	providerKey               ed25519.PrivateKey
	challengeNonce, challenge []byte
}

func newFuzzGateway(f *testing.F) *fuzzGateway {
	g := &fuzzGateway{clock: newClock(), admin: gateway.NewCredential(proto.CredentialAdmin), providerID: "p1", tenantID: "t1"}
	gw, err := gateway.New(context.Background(), gateway.Config{
		Database:             filepath.Join(f.TempDir(), "gateway.db"),
		AdmissionPolicy:      policy.InsecureSimulated(),
		Logger:               slog.New(slog.DiscardHandler),
		Now:                  g.clock.Now,
		AdminCredentialHash:  gateway.HashCredential(g.admin),
		InsecurePlainHTTP:    true,
		InsecurePlainWorkers: true,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { gw.Close() })
	g.h = gw.Handler()
	g.provider = g.mustAccount(f, proto.PathAdminProviders, g.providerID)
	g.tenant = g.mustAccount(f, proto.PathAdminTenants, g.tenantID)
	g.providerKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	key, _ := json.Marshal(proto.ProviderKey{PublicKey: g.providerKey.Public().(ed25519.PublicKey)})
	if code, body := g.call(fuzzRoutes[1], key); code != http.StatusOK {
		f.Fatalf("provider key: %d %s", code, body)
	}
	return g
}

func (g *fuzzGateway) mustAccount(f *testing.F, path, id string) string {
	body, _ := json.Marshal(proto.NewAccount{ID: id})
	code, out := g.call(fuzzRoute{http.MethodPost, path, "application/json", "admin", false, false}, body)
	var a proto.Account
	if code != http.StatusCreated || json.Unmarshal(out, &a) != nil {
		f.Fatalf("create %s: %d %s", id, code, out)
	}
	return a.Credential
}

// call sends in to r with its role's credential and returns the answer.
func (g *fuzzGateway) call(r fuzzRoute, in []byte) (int, []byte) {
	target, body := r.path, io.Reader(bytes.NewReader(in))
	if r.query {
		target, body = r.path+"?"+string(in), nil
	}
	req := httptest.NewRequest(r.method, "http://gateway.test/", body)
	req.URL.RawQuery = ""
	if u, err := req.URL.Parse(target); err == nil {
		req.URL = u
	} else {
		req.URL.Path = r.path
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	cred := map[string]string{"admin": g.admin, "provider": g.provider, "tenant": g.tenant}[r.role]
	req.Header.Set("Authorization", "Bearer "+cred)
	rec := httptest.NewRecorder()
	g.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// registration is a valid registration of a simulated worker for the
// challenge the gateway issues now.
func (g *fuzzGateway) registration(f *testing.F) []byte {
	code, out := g.call(fuzzRoutes[2], nil)
	var ch proto.Challenge
	if code != http.StatusOK || json.Unmarshal(out, &ch) != nil || len(ch.Nonce) != proto.NonceSize {
		f.Fatalf("challenge: %d %s", code, out)
	}
	k, err := seal.GenerateKey(proto.KEMX25519)
	if err != nil {
		f.Fatal(err)
	}
	b := proto.Bundle{Kind: policy.KindSim, Nonce: [proto.NonceSize]byte(ch.Nonce), Anchor: ch.Anchor,
		Keys: proto.WorkerKeys{HPKE: []proto.HPKEKey{k.Public()}, Signing: g.providerKey.Public().(ed25519.PublicKey)}}
	b.Report = sim.NewDevice(sim.DeviceConfig{Now: g.clock.Now}).Report(b.ReportData())
	raw, err := b.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	reg, _ := json.Marshal(proto.Registration{
		WorkerID: "fuzz-w", URL: "http://127.0.0.1:1", Tasks: []string{proto.TaskSummarize}, Bundle: raw,
		Endorsement: ed25519.Sign(g.providerKey, proto.EndorsementMessage("fuzz-w", b.KeysHash())), Capacity: 4,
		Region: "eu-west", Models: []string{"m@sha256:00"},
	})
	return reg
}

// FuzzRequestBodies sends arbitrary bodies (or, for the listing, query
// strings) to every gateway endpoint that parses one, with the credential
// of the role that may call it: registrations, provider keys, challenges,
// strict-mode evidence requests, sealed requests, listings, accounts,
// rotations and pools. Whatever the input, the gateway answers with a
// JSON error of a 4xx status, or 503 (nothing to route to), or 502 or 504
// where it calls a worker (whose address answers nothing here), or
// success with a JSON body; never a 500, a panic or a hang. A rotation of
// the fuzzer's own accounts is followed, so later inputs keep their
// credentials.
func FuzzRequestBodies(f *testing.F) {
	g := newFuzzGateway(f)
	seeds := [][]any{
		{uint8(0), g.registration(f)},
		{uint8(0), []byte(`{"worker_id":"w","url":"https://w.example:8443","tasks":["summarize"],"bundle":"U0dFQg==","endorsement":"AA==","tls_pin":"sha256/x","capacity":1}`)},
		{uint8(1), []byte(`{"public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`)},
		{uint8(2), []byte(`{}`)},
		{uint8(3), []byte(`{"worker_id":"fuzz-w","nonce":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="}`)},
		{uint8(4), []byte(proto.MagicRequest)},
		{uint8(5), []byte("task=summarize&max=3")},
		{uint8(5), []byte("task=summarize&task=chat&max=99")},
		{uint8(6), []byte(`{"id":"p2","name":"Provider Two"}`)},
		{uint8(7), []byte(`{"id":"t2","requests_per_second":1.5,"burst_requests":3,"bytes_per_second":1048576,"burst_bytes":16777216}`)},
		{uint8(7), []byte(`{"id":"t3","requests_per_second":-1}`)},
		{uint8(8), []byte(`{"kind":"tenant","id":"t1"}`)},
		{uint8(9), []byte(`{"id":"gold","tenant_id":"t1","workers":["fuzz-w","w2"],"slots":2,"lend":true}`)},
		{uint8(9), []byte(`{"id":"gold","tenant_id":"t1","workers":["w","w"]}`)},
	}
	for _, s := range seeds {
		fuzzseed.Add(f, s...)
	}
	f.Fuzz(func(t *testing.T, route uint8, in []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		code, out := g.call(r, in)
		switch {
		case code >= 200 && code < 300:
			if !json.Valid(out) {
				t.Fatalf("%s %s: %d with a body that is not JSON: %q", r.method, r.path, code, out)
			}
			if r.path == proto.PathAdminRotate {
				g.follow(out)
			}
			return
		case code == http.StatusServiceUnavailable || code >= 400 && code < 500:
		case (code == http.StatusBadGateway || code == http.StatusGatewayTimeout) && r.reachesWorker:
			// The registered worker's address answers nothing.
		default:
			t.Fatalf("%s %s: status %d for %q: %s", r.method, r.path, code, in, out)
		}
		var e proto.ErrorResponse
		if err := json.Unmarshal(out, &e); err != nil || e.Error.Code == "" {
			t.Fatalf("%s %s: %d without a JSON error: %q", r.method, r.path, code, out)
		}
	})
}

// follow takes the new credential of a rotated account of the fuzzer's.
func (g *fuzzGateway) follow(out []byte) {
	var a proto.Account
	if json.Unmarshal(out, &a) != nil {
		return
	}
	switch {
	case a.Kind == "tenant" && a.ID == g.tenantID:
		g.tenant = a.Credential
	case a.Kind == "provider" && a.ID == g.providerID:
		g.provider = a.Credential
	}
}
