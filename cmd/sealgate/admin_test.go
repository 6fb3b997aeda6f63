package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// Fixed credentials: each prefix and 43 base64url characters.
var (
	testAdminCred    = proto.CredentialAdmin + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	testProviderCred = proto.CredentialProvider + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	testTenantCred   = proto.CredentialTenant + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	newProviderCred  = proto.CredentialProvider + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{4}, 32))
	newTenantCred    = proto.CredentialTenant + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
)

// fakeGateway plays the gateway's admin and provider API: it records each
// request and answers the canned answer for its method and path.
type fakeGateway struct {
	srv    *httptest.Server
	url    string
	caFile string // PEM of the server's certificate; empty for plain http

	mu      sync.Mutex // guards reqs and answers
	reqs    []fakeRequest
	answers map[string]fakeAnswer // by "METHOD /path"
}

type fakeRequest struct {
	method, path, auth, contentType string
	body                            []byte
}

type fakeAnswer struct {
	status int
	header map[string]string
	body   string
	// block makes the handler wait until the client gives up.
	block bool
}

func newFakeGateway(t *testing.T, tlsOn bool) *fakeGateway {
	t.Helper()
	g := &fakeGateway{answers: defaultAnswers()}
	g.srv = httptest.NewUnstartedServer(http.HandlerFunc(g.serve))
	if tlsOn {
		g.srv.StartTLS()
		g.caFile = writeFile(t, "gateway-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.srv.Certificate().Raw}), 0o644)
	} else {
		g.srv.Start()
	}
	g.url = g.srv.URL
	t.Cleanup(g.srv.Close)
	return g
}

func defaultAnswers() map[string]fakeAnswer {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	gold := proto.PoolSpec{ID: "gold", TenantID: "bank", Workers: []string{"w1", "w2"}, Slots: 4, Lend: true}
	return map[string]fakeAnswer{
		"POST " + proto.PathAdminProviders:         {status: 201, body: js(proto.Account{Kind: "provider", ID: "acme", Name: "Acme GPUs", Credential: newProviderCred, CreatedAt: created})},
		"POST " + proto.PathAdminTenants:           {status: 201, body: js(proto.Account{Kind: "tenant", ID: "bank", Credential: newTenantCred, CreatedAt: created})},
		"POST " + proto.PathAdminRotate:            {status: 200, body: js(proto.Account{Kind: "tenant", ID: "bank", Credential: newTenantCred, CreatedAt: created})},
		"POST " + proto.PathAdminPools:             {status: 201, body: js(proto.PoolStatus{PoolSpec: gold, Capacity: 12, InUse: 1, WorkersAdmitted: 1})},
		"DELETE " + proto.PathAdminPools + "/gold": {status: 204},
		"GET " + proto.PathAdminStatus: {status: 200, body: js(proto.Status{
			Pools: []proto.PoolStatus{{PoolSpec: gold, Capacity: 12, InUse: 1, WorkersAdmitted: 1}},
			Workers: []proto.WorkerStatus{{WorkerID: "w1", ProviderID: "acme", Kind: "tdx", State: "active", Capacity: 8, Outstanding: 3,
				Breaker: "closed", ExpiresAt: time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)}},
			Capacity: 40, InUse: 5,
		})},
	}
}

func (g *fakeGateway) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	g.mu.Lock()
	g.reqs = append(g.reqs, fakeRequest{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body})
	a, ok := g.answers[r.Method+" "+r.URL.EscapedPath()]
	g.mu.Unlock()
	if r.Method == http.MethodPut && r.URL.Path == proto.PathProviderKey && !ok {
		a = fakeAnswer{status: 200, body: string(body)} // echo the key, as the gateway does
	} else if !ok {
		a = fakeAnswer{status: 404, body: `{"error":{"code":"not_found","message":"no such route"}}`}
	}
	if a.block {
		<-r.Context().Done()
		return
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	if a.body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

func (g *fakeGateway) answer(key string, a fakeAnswer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.answers[key] = a
}

func (g *fakeGateway) requests() []fakeRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]fakeRequest(nil), g.reqs...)
}

// only returns the one request the gateway got, failing otherwise.
func (g *fakeGateway) only(t *testing.T) fakeRequest {
	t.Helper()
	reqs := g.requests()
	if len(reqs) != 1 {
		t.Fatalf("gateway got %d requests, want 1: %+v", len(reqs), reqs)
	}
	return reqs[0]
}

func writeFile(t *testing.T, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

type cliResult struct {
	code           int
	err            error
	stdout, stderr string
}

// errText is the message the CLI prints for the result's error.
func (r cliResult) errText() string {
	if r.err == nil {
		return ""
	}
	return r.err.Error()
}

// runCmd runs a command in process, as main does, with env as its
// environment, and returns its exit code and output.
func runCmd(t *testing.T, cmd func(context.Context, []string, stdio) error, env map[string]string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	err := cmd(context.Background(), args, stdio{&out, &errb, func(k string) string { return env[k] }})
	code := 0
	if err != nil {
		code = exitCode(err)
	}
	return cliResult{code, err, out.String(), errb.String()}
}

// adminCmd runs `sealgate admin args... -gateway g -gateway-ca ... -credential-file ...`.
func adminCmd(t *testing.T, g *fakeGateway, args ...string) cliResult {
	t.Helper()
	cred := writeFile(t, "admin.cred", []byte(testAdminCred+"\n"), 0o600)
	args = append(args, "-gateway", g.url, "-credential-file", cred)
	if g.caFile != "" {
		args = append(args, "-gateway-ca", g.caFile)
	}
	return runCmd(t, runAdmin, nil, args...)
}

func wantOK(t *testing.T, r cliResult) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d: %v\nstdout: %s\nstderr: %s", r.code, r.err, r.stdout, r.stderr)
	}
}

func wantFail(t *testing.T, r cliResult, code int, msg string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.errText(), msg) {
		t.Fatalf("exit %d, error %q; want exit %d and an error containing %q\nstdout: %s", r.code, r.errText(), code, msg, r.stdout)
	}
}

// wantJSON checks that got is the same JSON value as want.
func wantJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("body %s, want %s", got, want)
	}
}

func TestAdminProviderCreate(t *testing.T) {
	g := newFakeGateway(t, true)
	r := adminCmd(t, g, "provider", "create", "-id", "acme", "-name", "Acme GPUs")
	wantOK(t, r)
	req := g.only(t)
	if req.method != "POST" || req.path != proto.PathAdminProviders {
		t.Errorf("request %s %s, want POST %s", req.method, req.path, proto.PathAdminProviders)
	}
	if req.auth != "Bearer "+testAdminCred {
		t.Errorf("Authorization %q, want the admin credential", req.auth)
	}
	if req.contentType != "application/json" {
		t.Errorf("Content-Type %q", req.contentType)
	}
	wantJSON(t, req.body, `{"id":"acme","name":"Acme GPUs"}`)
	if strings.Count(r.stdout, newProviderCred) != 1 || !strings.Contains(r.stdout, "shown only once") || !strings.Contains(r.stdout, "created provider acme") {
		t.Errorf("stdout %q: want the credential once, a shown-only-once line and the provider id", r.stdout)
	}
}

func TestAdminTenantCreate(t *testing.T) {
	g := newFakeGateway(t, true)
	r := adminCmd(t, g, "tenant", "create", "-id", "bank", "-name", "Bank", "-rps", "2.5", "-burst", "5", "-bytes-per-second", "1000", "-burst-bytes", "4000")
	wantOK(t, r)
	req := g.only(t)
	if req.path != proto.PathAdminTenants || req.auth != "Bearer "+testAdminCred {
		t.Errorf("request %s with Authorization %q", req.path, req.auth)
	}
	wantJSON(t, req.body, `{"id":"bank","name":"Bank","requests_per_second":2.5,"burst_requests":5,"bytes_per_second":1000,"burst_bytes":4000}`)
	if strings.Count(r.stdout, newTenantCred) != 1 || !strings.Contains(r.stdout, "shown only once") {
		t.Errorf("stdout %q", r.stdout)
	}
}

func TestAdminCredentialOut(t *testing.T) {
	g := newFakeGateway(t, true)
	out := filepath.Join(t.TempDir(), "acme.cred")
	r := adminCmd(t, g, "provider", "create", "-id", "acme", "-credential-out", out)
	wantOK(t, r)
	info, err := os.Stat(out)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v, mode %v; want mode 0600", err, info.Mode())
	}
	if data, _ := os.ReadFile(out); string(data) != newProviderCred+"\n" {
		t.Fatalf("credential file holds %q", data)
	}
	if strings.Contains(r.stdout+r.stderr, newProviderCred) || !strings.Contains(r.stdout, out) {
		t.Fatalf("stdout %q stderr %q: want the file named and no credential", r.stdout, r.stderr)
	}

	// An existing file stops the command before the gateway changes anything.
	r = adminCmd(t, g, "provider", "create", "-id", "acme", "-credential-out", out)
	wantFail(t, r, 1, out+" exists; refusing to overwrite it")
	if n := len(g.requests()); n != 1 {
		t.Fatalf("gateway got %d requests, want the first only", n)
	}
	if data, _ := os.ReadFile(out); string(data) != newProviderCred+"\n" {
		t.Fatalf("credential file overwritten with %q", data)
	}

	// A refused call leaves no file behind.
	g.answer("POST "+proto.PathAdminTenants, fakeAnswer{status: 409, body: `{"error":{"code":"exists","message":"an account with that id exists"}}`})
	out2 := filepath.Join(t.TempDir(), "bank.cred")
	r = adminCmd(t, g, "tenant", "create", "-id", "bank", "-credential-out", out2)
	wantFail(t, r, 4, "gateway refused: exists: an account with that id exists (HTTP 409)")
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Fatalf("credential file after a refusal: %v", err)
	}

	// -json with -credential-out prints the answer without the credential.
	out3 := filepath.Join(t.TempDir(), "rotated.cred")
	r = adminCmd(t, g, "rotate", "-kind", "tenant", "-id", "bank", "-credential-out", out3, "-json")
	wantOK(t, r)
	var acct proto.Account
	if err := json.Unmarshal([]byte(r.stdout), &acct); err != nil || acct.ID != "bank" || acct.Credential != "" {
		t.Fatalf("json %q (%v): want the account without its credential", r.stdout, err)
	}
	if data, _ := os.ReadFile(out3); string(data) != newTenantCred+"\n" {
		t.Fatalf("credential file holds %q", data)
	}
}

func TestAdminRotate(t *testing.T) {
	g := newFakeGateway(t, true)
	r := adminCmd(t, g, "rotate", "-kind", "tenant", "-id", "bank")
	wantOK(t, r)
	req := g.only(t)
	if req.path != proto.PathAdminRotate || req.auth != "Bearer "+testAdminCred {
		t.Errorf("request %s with Authorization %q", req.path, req.auth)
	}
	wantJSON(t, req.body, `{"kind":"tenant","id":"bank"}`)
	if strings.Count(r.stdout, newTenantCred) != 1 || !strings.Contains(r.stdout, "old one no longer works") || !strings.Contains(r.stdout, "shown only once") {
		t.Errorf("stdout %q", r.stdout)
	}

	// A credential of the wrong kind in the answer is refused.
	r = adminCmd(t, g, "rotate", "-kind", "provider", "-id", "bank")
	wantFail(t, r, 1, "credential is not a provider credential")
}

func TestAdminJSONShowsCredentialOnce(t *testing.T) {
	g := newFakeGateway(t, true)
	r := adminCmd(t, g, "provider", "create", "-id", "acme", "-json")
	wantOK(t, r)
	var acct proto.Account
	if err := json.Unmarshal([]byte(r.stdout), &acct); err != nil || acct.Credential != newProviderCred {
		t.Fatalf("json %q (%v)", r.stdout, err)
	}
	if !strings.Contains(r.stderr, "shown only once") {
		t.Fatalf("stderr %q lacks the shown-only-once line", r.stderr)
	}
}

func TestAdminPool(t *testing.T) {
	g := newFakeGateway(t, true)
	r := adminCmd(t, g, "pool", "create", "-id", "gold", "-tenant", "bank", "-name", "Gold", "-workers", "w1, w2", "-slots", "4", "-lend")
	wantOK(t, r)
	req := g.only(t)
	if req.method != "POST" || req.path != proto.PathAdminPools || req.auth != "Bearer "+testAdminCred {
		t.Errorf("request %s %s with Authorization %q", req.method, req.path, req.auth)
	}
	wantJSON(t, req.body, `{"id":"gold","tenant_id":"bank","name":"Gold","workers":["w1","w2"],"slots":4,"lend":true}`)
	if want := "created pool gold for tenant bank: capacity 12, 1 in use, 1/2 workers admitted\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}

	r = adminCmd(t, g, "pool", "delete", "-id", "gold")
	wantOK(t, r)
	reqs := g.requests()
	if del := reqs[len(reqs)-1]; del.method != "DELETE" || del.path != proto.PathAdminPools+"/gold" || del.auth != "Bearer "+testAdminCred || len(del.body) != 0 {
		t.Errorf("delete request %+v", del)
	}
	if r.stdout != "deleted pool gold\n" {
		t.Errorf("stdout %q", r.stdout)
	}

	// An id is one path segment, escaped.
	r = adminCmd(t, g, "pool", "delete", "-id", "a/b")
	wantFail(t, r, 4, "gateway refused: not_found: no such route (HTTP 404)")
	reqs = g.requests()
	if p := reqs[len(reqs)-1].path; p != proto.PathAdminPools+"/a%2Fb" {
		t.Errorf("delete path %q", p)
	}
}

func TestAdminStatus(t *testing.T) {
	g := newFakeGateway(t, true)
	r := adminCmd(t, g, "status")
	wantOK(t, r)
	if req := g.only(t); req.method != "GET" || req.path != proto.PathAdminStatus || req.auth != "Bearer "+testAdminCred {
		t.Errorf("request %+v", req)
	}
	for _, want := range []string{
		"network: capacity 40, in use 5",
		"POOL  TENANT  CAPACITY  IN USE  WORKERS ADMITTED",
		"gold  bank    12        1       1/2",
		"WORKER  PROVIDER  KIND  STATE   CAPACITY  OUTSTANDING  BREAKER  EXPIRES",
		"w1      acme      tdx   active  8         3            closed   2026-01-02T04:00:00Z",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status table lacks %q:\n%s", want, r.stdout)
		}
	}

	r = adminCmd(t, g, "status", "-json")
	wantOK(t, r)
	var st proto.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Pools) != 1 || len(st.Workers) != 1 || st.Workers[0].Breaker != "closed" {
		t.Fatalf("json status %q (%v)", r.stdout, err)
	}
}

func TestAdminPlainHTTP(t *testing.T) {
	plain := newFakeGateway(t, false) // on 127.0.0.1
	cred := writeFile(t, "admin.cred", []byte(testAdminCred), 0o600)
	loopback := strings.Replace(plain.url, "127.0.0.1", "localhost", 1)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"http without the flag", []string{"-gateway", plain.url}, 2,
			"plain http would send the credential in clear; use https (or -insecure-plain-http for a gateway on this machine)"},
		{"http to another host", []string{"-gateway", "http://192.0.2.1:8080", "-insecure-plain-http"}, 2,
			`-insecure-plain-http allows only a loopback gateway (127.0.0.1, ::1 or localhost), found host "192.0.2.1"`},
		{"http to a name", []string{"-gateway", "http://gateway.example", "-insecure-plain-http"}, 2,
			`found host "gateway.example"`},
		{"ca with http", []string{"-gateway", plain.url, "-insecure-plain-http", "-gateway-ca", "ca.pem"}, 2,
			"-gateway-ca applies to an https gateway"},
		{"other scheme", []string{"-gateway", "ftp://127.0.0.1"}, 2, `-gateway: found scheme "ftp", want https`},
		{"user in url", []string{"-gateway", "https://me:pw@127.0.0.1"}, 2, "want a URL such as https://gateway.example:8443"},
		{"http to loopback with the flag", []string{"-gateway", plain.url, "-insecure-plain-http"}, 0, ""},
		{"http to localhost with the flag", []string{"-gateway", loopback, "-insecure-plain-http"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(plain.requests())
			r := runCmd(t, runAdmin, nil, append([]string{"status", "-credential-file", cred}, tt.args...)...)
			if tt.wantCode != 0 {
				wantFail(t, r, tt.wantCode, tt.wantErr)
				if n := len(plain.requests()); n != before {
					t.Fatalf("a refused URL reached the gateway")
				}
				return
			}
			wantOK(t, r)
			if !strings.Contains(r.stderr, "WARNING: INSECURE plain http") {
				t.Errorf("stderr %q lacks the warning", r.stderr)
			}
			if reqs := plain.requests(); reqs[len(reqs)-1].auth != "Bearer "+testAdminCred {
				t.Errorf("Authorization %q", reqs[len(reqs)-1].auth)
			}
		})
	}
}

// otherCertPEM is a self-signed certificate the test gateway does not use.
func otherCertPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "another gateway"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestAdminGatewayTrust(t *testing.T) {
	g := newFakeGateway(t, true)
	cred := writeFile(t, "admin.cred", []byte(testAdminCred), 0o600)
	other := writeFile(t, "other.pem", otherCertPEM(t), 0o644)
	notPEM := writeFile(t, "not.pem", []byte("not a certificate\n"), 0o644)
	base := []string{"status", "-gateway", g.url, "-credential-file", cred}

	r := runCmd(t, runAdmin, nil, append(base, "-gateway-ca", g.caFile)...)
	wantOK(t, r)

	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"system roots", nil, "certificate not trusted: x509: certificate signed by unknown authority (pass the gateway's CA or development certificate with -gateway-ca FILE)"},
		{"another certificate", []string{"-gateway-ca", other}, "certificate not trusted: x509: certificate signed by unknown authority"},
		{"not pem", []string{"-gateway-ca", notPEM}, "-gateway-ca " + notPEM + ": found no PEM CERTIFICATE block"},
		{"missing ca", []string{"-gateway-ca", "/nonexistent/ca.pem"}, "-gateway-ca: open /nonexistent/ca.pem: no such file or directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, runAdmin, nil, append(base, tt.args...)...)
			wantFail(t, r, 1, tt.wantErr)
		})
	}
	if n := len(g.requests()); n != 1 {
		t.Fatalf("gateway got %d requests, want only the trusted one", n)
	}
}

func TestAdminGatewayErrors(t *testing.T) {
	tests := []struct {
		name     string
		answer   fakeAnswer
		wantCode int
		wantErr  string
	}{
		{"unauthenticated", fakeAnswer{status: 401, body: `{"error":{"code":"unauthorized","message":"missing or unknown credential"}}`},
			4, "gateway refused: unauthorized: missing or unknown credential (HTTP 401)"},
		{"wrong role", fakeAnswer{status: 403, body: `{"error":{"code":"forbidden","message":"this endpoint is for the admin"}}`},
			4, "gateway refused: forbidden: this endpoint is for the admin (HTTP 403)"},
		{"bad input", fakeAnswer{status: 400, body: `{"error":{"code":"bad_request","message":"id: want 1 to 64 characters"}}`},
			4, "gateway refused: bad_request: id: want 1 to 64 characters (HTTP 400)"},
		{"rate limited", fakeAnswer{status: 429, header: map[string]string{"Retry-After": "7"}, body: `{"error":{"code":"rate_limited","message":"slow down"}}`},
			4, "gateway refused: rate_limited: slow down (HTTP 429); retry after 7s"},
		{"overloaded", fakeAnswer{status: 503, header: map[string]string{"Retry-After": "Fri, 02 Jan 2026 03:04:05 GMT"}, body: `{"error":{"code":"overloaded","message":"try later"}}`},
			4, "gateway refused: overloaded: try later (HTTP 503); retry after 2026-01-02T03:04:05Z"},
		{"not json", fakeAnswer{status: 502, body: "<html>bad gateway</html>"},
			4, "gateway refused: unknown: Bad Gateway (HTTP 502)"},
		{"control characters", fakeAnswer{status: 400, body: `{"error":{"code":"bad_request","message":"a\u001b[2Jb\nc"}}`},
			4, "gateway refused: bad_request: a?[2Jb?c (HTTP 400)"},
		{"redirect", fakeAnswer{status: 307, header: map[string]string{"Location": "http://127.0.0.1:1/v1/admin/status"}},
			1, "gateway redirected to http://127.0.0.1:1/v1/admin/status; sealgate sends credentials only to -gateway and follows no redirect"},
		{"too large", fakeAnswer{status: 200, body: `{"pools":[],"x":"` + strings.Repeat("x", maxResponse) + `"}`},
			1, "gateway answer to GET /v1/admin/status is larger than 1048576 bytes"},
		{"not json on success", fakeAnswer{status: 200, body: "ok"},
			1, "gateway answer to GET /v1/admin/status: invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newFakeGateway(t, true)
			g.answer("GET "+proto.PathAdminStatus, tt.answer)
			r := adminCmd(t, g, "status")
			wantFail(t, r, tt.wantCode, tt.wantErr)
		})
	}

	t.Run("timeout", func(t *testing.T) {
		g := newFakeGateway(t, true)
		g.answer("GET "+proto.PathAdminStatus, fakeAnswer{block: true})
		r := adminCmd(t, g, "status", "-timeout", "100ms")
		wantFail(t, r, 1, "GET /v1/admin/status: no answer from "+g.url+" within -timeout 100ms")
	})
	t.Run("unreachable", func(t *testing.T) {
		cred := writeFile(t, "admin.cred", []byte(testAdminCred), 0o600)
		r := runCmd(t, runAdmin, nil, "status", "-gateway", "https://127.0.0.1:1", "-credential-file", cred)
		wantFail(t, r, 1, "GET https://127.0.0.1:1/v1/admin/status: dial tcp 127.0.0.1:1: connect: connection refused")
	})
}

func TestAdminUsage(t *testing.T) {
	g := newFakeGateway(t, true)
	adminFile := writeFile(t, "admin.cred", []byte(" "+testAdminCred+"\n\n"), 0o600)
	tenantFile := writeFile(t, "tenant.cred", []byte(testTenantCred), 0o600)
	junkFile := writeFile(t, "junk.cred", []byte("hunter2\n"), 0o600)
	conn := []string{"-gateway", g.url, "-gateway-ca", g.caFile}
	withCred := append([]string{"-credential-file", adminFile}, conn...)
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "no command", wantCode: 2, wantErr: "usage: sealgate admin <command>"},
		{name: "unknown command", args: []string{"frob"}, wantCode: 2, wantErr: `unknown admin command "frob": want provider, tenant, rotate, pool or status`},
		{name: "provider without verb", args: []string{"provider"}, wantCode: 2, wantErr: "admin provider needs a command: create"},
		{name: "unknown pool verb", args: []string{"pool", "drop"}, wantCode: 2, wantErr: `unknown admin pool command "drop": want create or delete`},
		{name: "no gateway", args: []string{"status", "-credential-file", adminFile}, wantCode: 2, wantErr: "-gateway is required"},
		{name: "no credential file", args: append([]string{"status"}, conn...), wantCode: 2, wantErr: "-credential-file (or SEALGATE_ADMIN_CREDENTIAL_FILE) is required"},
		{name: "credential file from env", env: map[string]string{"SEALGATE_ADMIN_CREDENTIAL_FILE": adminFile}, args: append([]string{"status"}, conn...)},
		{name: "tenant credential", args: append([]string{"status", "-credential-file", tenantFile}, conn...), wantCode: 1,
			wantErr: "credential file " + tenantFile + " holds a tenant credential, want the admin credential"},
		{name: "junk credential", args: append([]string{"status", "-credential-file", junkFile}, conn...), wantCode: 1,
			wantErr: "credential file " + junkFile + ": want an admin credential (sga_ and 43 base64url characters)"},
		{name: "missing credential file", args: append([]string{"status", "-credential-file", "/nonexistent/cred"}, conn...), wantCode: 1,
			wantErr: "credential file: open /nonexistent/cred: no such file or directory"},
		{name: "no id", args: append([]string{"provider", "create"}, withCred...), wantCode: 2, wantErr: "-id is required"},
		{name: "dot id", args: append([]string{"pool", "delete", "-id", ".."}, withCred...), wantCode: 2, wantErr: `-id: found "..", want an id`},
		{name: "tenant flag on provider", args: append([]string{"provider", "create", "-id", "acme", "-rps", "1"}, withCred...), wantCode: 2,
			wantErr: "flag provided but not defined: -rps"},
		{name: "negative rps", args: append([]string{"tenant", "create", "-id", "bank", "-rps", "-1"}, withCred...), wantCode: 2, wantErr: "-rps: found -1, want a finite number >= 0"},
		{name: "nan rps", args: append([]string{"tenant", "create", "-id", "bank", "-rps", "NaN"}, withCred...), wantCode: 2, wantErr: "-rps: found NaN"},
		{name: "negative burst bytes", args: append([]string{"tenant", "create", "-id", "bank", "-burst-bytes", "-5"}, withCred...), wantCode: 2, wantErr: "-burst-bytes: found -5, want >= 0"},
		{name: "bad kind", args: append([]string{"rotate", "-kind", "admin", "-id", "root"}, withCred...), wantCode: 2, wantErr: `-kind: found "admin", want provider or tenant`},
		{name: "pool without tenant", args: append([]string{"pool", "create", "-id", "gold", "-slots", "2"}, withCred...), wantCode: 2, wantErr: "-tenant is required"},
		{name: "empty pool", args: append([]string{"pool", "create", "-id", "gold", "-tenant", "bank"}, withCred...), wantCode: 2, wantErr: "a pool needs -workers, -slots or both"},
		{name: "empty worker", args: append([]string{"pool", "create", "-id", "gold", "-tenant", "bank", "-workers", "w1,,w2"}, withCred...), wantCode: 2,
			wantErr: `-workers: found "w1,,w2", want worker ids separated by single commas`},
		{name: "negative slots", args: append([]string{"pool", "create", "-id", "gold", "-tenant", "bank", "-slots", "-1"}, withCred...), wantCode: 2, wantErr: "-slots: found -1, want >= 0"},
		{name: "extra argument", args: append([]string{"status", "now"}, withCred...), wantCode: 2, wantErr: `sealgate admin status: unexpected argument "now"`},
		{name: "zero timeout", args: append([]string{"status", "-timeout", "0s"}, withCred...), wantCode: 2, wantErr: "-timeout: found 0s, want > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(g.requests())
			r := runCmd(t, runAdmin, tt.env, tt.args...)
			if tt.wantCode == 0 {
				wantOK(t, r)
				if reqs := g.requests(); len(reqs) != before+1 || reqs[before].auth != "Bearer "+testAdminCred {
					t.Fatalf("requests %+v: want one with the admin credential", reqs[before:])
				}
				return
			}
			wantFail(t, r, tt.wantCode, tt.wantErr)
			if strings.Contains(r.errText(), "hunter2") {
				t.Fatalf("error quotes the credential file: %q", r.errText())
			}
			if n := len(g.requests()); n != before {
				t.Fatalf("a refused command reached the gateway")
			}
		})
	}
}

func TestProviderKeygenAndRegister(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "provider.pem")
	r := runCmd(t, runProvider, nil, "keygen", "-out", keyFile)
	wantOK(t, r)
	info, err := os.Stat(keyFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want mode 0600", err, info.Mode())
	}
	data, _ := os.ReadFile(keyFile)
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(rest) != 0 {
		t.Fatalf("key file %q: want one PEM PRIVATE KEY block", data)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	priv, ok := key.(ed25519.PrivateKey)
	if err != nil || !ok {
		t.Fatalf("key file holds %T (%v), want a PKCS#8 Ed25519 key", key, err)
	}
	pub := base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	if r.stdout != pub+"\n" {
		t.Fatalf("stdout %q, want the public key %q", r.stdout, pub)
	}

	r = runCmd(t, runProvider, nil, "keygen", "-out", keyFile)
	wantFail(t, r, 1, keyFile+" exists; refusing to overwrite it")
	if again, _ := os.ReadFile(keyFile); !bytes.Equal(again, data) {
		t.Fatal("keygen overwrote the key file")
	}

	g := newFakeGateway(t, true)
	cred := writeFile(t, "provider.cred", []byte(testProviderCred+"\n"), 0o600)
	register := []string{"register-key", "-gateway", g.url, "-gateway-ca", g.caFile, "-credential-file", cred, "-key-file", keyFile}
	r = runCmd(t, runProvider, nil, register...)
	wantOK(t, r)
	req := g.only(t)
	if req.method != "PUT" || req.path != proto.PathProviderKey || req.auth != "Bearer "+testProviderCred {
		t.Errorf("request %s %s with Authorization %q, want PUT %s with the provider credential", req.method, req.path, req.auth, proto.PathProviderKey)
	}
	wantJSON(t, req.body, `{"public_key":"`+pub+`"}`)
	if r.stdout != "registered endorsement key "+pub+"\n" {
		t.Errorf("stdout %q", r.stdout)
	}

	// The gateway answering another key is an error.
	g.answer("PUT "+proto.PathProviderKey, fakeAnswer{status: 200, body: `{"public_key":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`})
	r = runCmd(t, runProvider, nil, register...)
	wantFail(t, r, 1, "gateway answer to PUT /v1/provider/key: public key AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=, want the registered "+pub)
}

func TestProviderUsage(t *testing.T) {
	g := newFakeGateway(t, true)
	keyFile := filepath.Join(t.TempDir(), "provider.pem")
	wantOK(t, runCmd(t, runProvider, nil, "keygen", "-out", keyFile))
	providerFile := writeFile(t, "provider.cred", []byte(testProviderCred), 0o600)
	adminFile := writeFile(t, "admin.cred", []byte(testAdminCred), 0o600)
	certFile := writeFile(t, "cert.pem", otherCertPEM(t), 0o600)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecFile := writeFile(t, "ec.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), 0o600)
	conn := []string{"-gateway", g.url, "-gateway-ca", g.caFile}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no command", nil, 2, "usage: sealgate provider <command>"},
		{"unknown command", []string{"frob"}, 2, `unknown provider command "frob": want keygen or register-key`},
		{"keygen without out", []string{"keygen"}, 2, "-out is required"},
		{"keygen into a missing directory", []string{"keygen", "-out", "/nonexistent/dir/k.pem"}, 1, "open /nonexistent/dir/k.pem: no such file or directory"},
		{"no key file", append([]string{"register-key", "-credential-file", providerFile}, conn...), 2, "-key-file is required"},
		{"no credential file", append([]string{"register-key", "-key-file", keyFile}, conn...), 2, "-credential-file is required"},
		{"admin credential", append([]string{"register-key", "-key-file", keyFile, "-credential-file", adminFile}, conn...), 1,
			"credential file " + adminFile + " holds an admin credential, want the provider credential"},
		{"certificate as key", append([]string{"register-key", "-key-file", certFile, "-credential-file", providerFile}, conn...), 1,
			"-key-file " + certFile + ": want one PEM PRIVATE KEY block, as 'sealgate provider keygen' writes"},
		{"ecdsa key", append([]string{"register-key", "-key-file", ecFile, "-credential-file", providerFile}, conn...), 1,
			"-key-file " + ecFile + ": found a *ecdsa.PrivateKey, want an Ed25519 key"},
		{"plain http", []string{"register-key", "-key-file", keyFile, "-credential-file", providerFile, "-gateway", "http://192.0.2.1"}, 2,
			"plain http would send the credential in clear"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, runProvider, nil, tt.args...)
			wantFail(t, r, tt.wantCode, tt.wantErr)
		})
	}
	if n := len(g.requests()); n != 0 {
		t.Fatalf("gateway got %d requests from refused commands", n)
	}
}

// TestCLIAdminDispatch checks that main routes the new commands.
func TestCLIAdminDispatch(t *testing.T) {
	for _, tt := range []struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{[]string{"admin"}, 2, "", "usage: sealgate admin <command>"},
		{[]string{"admin", "help"}, 0, "pool create     -id ID -tenant TENANT", ""},
		{[]string{"admin", "status", "-h"}, 0, "", "-insecure-plain-http"},
		{[]string{"provider", "frob"}, 2, "", `sealgate: unknown provider command "frob"`},
		{[]string{"help"}, 0, "admin      manage a gateway's providers", ""},
	} {
		r := sealgate(t, "", tt.args...)
		if r.code != tt.wantCode || !strings.Contains(r.stdout, tt.wantStdout) || !strings.Contains(r.stderr, tt.wantStderr) {
			t.Errorf("sealgate %v: exit %d, want %d\nstdout %q, want %q\nstderr %q, want %q", tt.args, r.code, tt.wantCode, r.stdout, tt.wantStdout, r.stderr, tt.wantStderr)
		}
	}
}
