package main

import (
	"bytes"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sealgate/sealgate/proto"
)

// taskGateway is a test double of a gateway that answers every call with
// status (and Retry-After 3), recording the Authorization headers.
type taskGateway struct {
	*httptest.Server
	mu   sync.Mutex // guards auth
	auth []string
}

func startTaskGateway(t *testing.T, status int, tls bool) *taskGateway {
	t.Helper()
	g := &taskGateway{}
	h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.auth = append(g.auth, r.Header.Get(proto.HeaderAuthorization))
		g.mu.Unlock()
		rw.Header().Set("Retry-After", "3")
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(status)
		rw.Write([]byte(`{"error":{"code":"test","message":"the test double says no"}}`))
	})
	if tls {
		g.Server = httptest.NewUnstartedServer(h)
		g.Config.ErrorLog = log.New(io.Discard, "", 0) // a client refusing the certificate is expected
		g.StartTLS()
	} else {
		g.Server = httptest.NewServer(h)
	}
	t.Cleanup(g.Close)
	return g
}

func (g *taskGateway) authorizations() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.auth...)
}

const taskCredential = "sgt_dGVzdC1jcmVkZW50aWFsLW9mLTQzLWNoYXJhY3RlcnM"

// sealgateEnv runs the binary with extra environment variables.
func sealgateEnv(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func TestCLICredentialAndTLS(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	cred := write("tenant.key", taskCredential+"\n", 0o600)
	openCred := write("open.key", taskCredential+"\n", 0o644)
	emptyCred := write("empty.key", "\n", 0o600)
	adminCred := write("admin.key", "sga_"+taskCredential[4:], 0o600)

	unauthorized := startTaskGateway(t, http.StatusUnauthorized, false)
	limited := startTaskGateway(t, http.StatusTooManyRequests, false)
	tlsGateway := startTaskGateway(t, http.StatusUnauthorized, true)
	caFile := write("gateway.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsGateway.Certificate().Raw})), 0o644)
	plain := "-insecure-plain-http"

	tests := []struct {
		name       string
		env        []string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"unauthorized", nil, []string{"-gateway", unauthorized.URL, plain, "-credential-file", cred}, 7, "refused the credential"},
		{"unauthorized in strict mode", nil, []string{"-gateway", unauthorized.URL, plain, "-strict", "-credential-file", cred}, 7, "401"},
		{"credential file from the environment", []string{"SEALGATE_CREDENTIAL_FILE=" + cred}, []string{"-gateway", unauthorized.URL, plain}, 7, "refused the credential"},
		{"rate limited", nil, []string{"-gateway", limited.URL, plain, "-credential-file", cred}, 8, "retry after 3s"},
		{"plain http needs the flag", nil, []string{"-gateway", unauthorized.URL, "-credential-file", cred}, 2, "-insecure-plain-http"},
		{"plain http to a network host", nil, []string{"-gateway", "http://192.0.2.1:8080", plain, "-credential-file", cred}, 2, "only a loopback gateway"},
		{"credential file others can read", nil, []string{"-gateway", unauthorized.URL, plain, "-credential-file", openCred}, 1, "want 0600"},
		{"empty credential file", nil, []string{"-gateway", unauthorized.URL, plain, "-credential-file", emptyCred}, 1, "want a tenant credential"},
		{"admin credential", nil, []string{"-gateway", unauthorized.URL, plain, "-credential-file", adminCred}, 1, "holds an admin credential, want the tenant credential"},
		{"missing credential file", nil, []string{"-gateway", unauthorized.URL, plain, "-credential-file", filepath.Join(dir, "nope")}, 1, "no such file"},
		{"tls with the gateway's certificate", nil, []string{"-gateway", tlsGateway.URL, "-gateway-ca", caFile, "-credential-file", cred}, 7, "refused the credential"},
		{"tls without it", nil, []string{"-gateway", tlsGateway.URL, "-credential-file", cred}, 1, "certificate"},
		{"gateway ca not pem", nil, []string{"-gateway", tlsGateway.URL, "-gateway-ca", cred, "-credential-file", cred}, 1, "found no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"summarize", "-insecure-allow-simulated"}, tt.args...)
			r := sealgateEnv(t, tt.env, "Some text. More text.", args...)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantStderr) {
				t.Fatalf("exit %d, want %d; stderr %q, want %q", r.code, tt.wantCode, r.stderr, tt.wantStderr)
			}
			if strings.Contains(r.stderr+r.stdout, taskCredential[4:]) {
				t.Fatalf("the credential was printed: %s", r.stderr)
			}
		})
	}
	for _, g := range []*taskGateway{unauthorized, limited, tlsGateway} {
		for _, a := range g.authorizations() {
			if a != "Bearer "+taskCredential {
				t.Fatalf("the gateway got authorization %q, want the trimmed credential", a)
			}
		}
	}
	if len(tlsGateway.authorizations()) != 1 {
		t.Fatalf("the TLS gateway got %d calls, want 1 (none over an unverified connection)", len(tlsGateway.authorizations()))
	}
}

func TestCLIUsageNamesExitCodes(t *testing.T) {
	r := sealgate(t, "", "help")
	for _, want := range []string{"7 the gateway refused the credential", "8 rate limited"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("usage does not say %q", want)
		}
	}
	r = sealgate(t, "", "summarize", "-h")
	for _, flag := range []string{"-credential-file", "-gateway-ca", "-strict", "-insecure-plain-http", "SEALGATE_CREDENTIAL_FILE"} {
		if !strings.Contains(r.stderr, flag) {
			t.Errorf("summarize -h does not list %s", flag)
		}
	}
}
