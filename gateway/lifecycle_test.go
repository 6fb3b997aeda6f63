package gateway_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
)

func TestNewValidatesConfig(t *testing.T) {
	dir := t.TempDir()
	good := func() gateway.Config {
		return gateway.Config{Database: filepath.Join(dir, "g.db"), AdmissionPolicy: policy.Default(), InsecurePlainHTTP: true}
	}
	tests := []struct {
		name    string
		edit    func(*gateway.Config)
		wantErr string
	}{
		{name: "no database", edit: func(c *gateway.Config) { c.Database = "" }, wantErr: "Database"},
		{name: "no TLS and not explicitly plain", edit: func(c *gateway.Config) { c.InsecurePlainHTTP = false }, wantErr: "TLSCertificate"},
		{name: "reattest slower than evidence expires", edit: func(c *gateway.Config) { c.ReattestInterval = time.Hour }, wantErr: "ReattestInterval"},
		{name: "negative evict after", edit: func(c *gateway.Config) { c.EvictAfter = -time.Second }, wantErr: "EvictAfter"},
		{name: "no policy", edit: func(c *gateway.Config) { c.AdmissionPolicy = nil }, wantErr: "AdmissionPolicy"},
		{name: "invalid policy", edit: func(c *gateway.Config) { c.AdmissionPolicy = &policy.Policy{} }, wantErr: "AdmissionPolicy"},
		{name: "negative ttl", edit: func(c *gateway.Config) { c.ChallengeTTL = -time.Second }, wantErr: "ChallengeTTL"},
		{name: "negative body limit", edit: func(c *gateway.Config) { c.MaxRequestBody = -1 }, wantErr: "MaxRequestBody"},
		{name: "db in a missing directory", edit: func(c *gateway.Config) { c.Database = filepath.Join(dir, "nope", "g.db") }, wantErr: "store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.edit(&cfg)
			gw, err := gateway.New(t.Context(), cfg)
			if err == nil {
				gw.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not name %q", err, tt.wantErr)
			}
		})
	}
	// The zero values of the optional fields are usable, and New does not
	// modify the caller's Config.
	cfg := good()
	before := cfg
	gw, err := gateway.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	if cfg.Logger != before.Logger || cfg.Now != nil || cfg.ChallengeTTL != 0 || cfg.WorkerTransport != nil || cfg.ReattestInterval != 0 {
		t.Fatal("New modified the caller's Config")
	}
}

func TestInsecurePolicyWarns(t *testing.T) {
	for _, tt := range []struct {
		policy   *policy.Policy
		wantWarn bool
	}{
		{policy.InsecureSimulated(), true},
		{policy.Default(), false},
	} {
		var logs bytes.Buffer
		cert, err := tlspin.SelfSigned(nil, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, anchor, _ := ed25519.GenerateKey(rand.Reader)
		gw, err := gateway.New(t.Context(), gateway.Config{
			Database: filepath.Join(t.TempDir(), "g.db"), AdmissionPolicy: tt.policy, TLSCertificate: &cert,
			AnchorKey: anchor, AdminCredentialHash: gateway.HashCredential(gateway.NewCredential(proto.CredentialAdmin)),
			Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		gw.Close()
		warned := strings.Contains(logs.String(), `"level":"WARN"`) && strings.Contains(logs.String(), "INSECURE")
		if warned != tt.wantWarn {
			t.Fatalf("policy %s: warned %v, want %v:\n%s", tt.policy.Name, warned, tt.wantWarn, logs.String())
		}
	}
}

func TestHealthAndUnknownRoutes(t *testing.T) {
	e := newEnv(t)
	resp, body := e.do(http.MethodGet, proto.PathHealth, "", nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Fatalf("health: found %d %s", resp.StatusCode, body)
	}
	resp, body = e.do(http.MethodGet, "/v1/nope", "", nil)
	if resp.StatusCode != http.StatusNotFound || errorCode(body) != "not_found" {
		t.Fatalf("unknown route: found %d %s, want 404 not_found", resp.StatusCode, body)
	}
}

// TestShutdownLetsStreamsFinish cancels Serve's context while a request is
// in flight: new connections are refused, the in-flight response
// completes, and Serve returns nil.
func TestShutdownLetsStreamsFinish(t *testing.T) {
	e := newEnv(t)
	w := newWorkerDouble(t, "w", e.clock)
	e.register(w, proto.TaskSummarize)
	done := e.relayInBackground(e.seal(proto.TaskSummarize, "hold", w.key()), "hold")
	<-w.held
	stopped := make(chan error, 1)
	stop := e.stop
	go func() { stopped <- stop() }()
	waitRefused(t, e.url)
	close(w.release)
	if err := <-done; err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestShutdownTimeout cuts off a stream that outlives the grace period.
func TestShutdownTimeout(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.ShutdownTimeout = 200 * time.Millisecond })
	w := newWorkerDouble(t, "w", e.clock)
	e.register(w, proto.TaskSummarize)
	req := e.seal(proto.TaskSummarize, "hold", w.key())
	hr, err := http.NewRequest(http.MethodPost, e.url+proto.PathRequests, bytes.NewReader(req.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", proto.MediaTypeRequest)
	hr.Header.Set("Authorization", "Bearer "+e.tenant)
	done := make(chan error, 1)
	go func() {
		resp, err := e.client.Do(hr)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			// The worker held its first byte, so the gateway may still
			// answer the cut-off request with a whole error response.
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		done <- err
	}()
	<-w.held
	start := time.Now()
	if err := e.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Serve took %v to return, want about the 200ms grace period", d)
	}
	if err := <-done; err == nil {
		t.Fatal("the cut-off request succeeded")
	}
}

func waitRefused(t *testing.T, url string) {
	t.Helper()
	addr := strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the gateway still accepts connections after shutdown began")
}

// TestServeLeaksNoGoroutines runs a gateway through registration and a
// relay, cancels Serve, and checks that every goroutine it started is gone.
func TestServeLeaksNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		c := newClock()
		w := newWorkerDouble(t, "w", c)
		defer w.close()
		e := &env{t: t, clock: c, logs: &syncBuffer{}, client: &http.Client{Transport: &http.Transport{}}}
		e.admin = gateway.NewCredential(proto.CredentialAdmin)
		e.cfg = gateway.Config{
			Database: filepath.Join(t.TempDir(), "g.db"), AdmissionPolicy: policy.InsecureSimulated(), Now: c.Now,
			InsecurePlainHTTP: true, InsecurePlainWorkers: true, AdminCredentialHash: gateway.HashCredential(e.admin),
		}
		e.start()
		e.provider = e.newProvider("p1")
		e.tenant = e.newTenant("t1", proto.NewAccount{})
		e.register(w, proto.TaskSummarize)
		e.relayOK(e.seal(proto.TaskSummarize, "hello", w.key()), "hello", w)
		if err := e.stop(); err != nil {
			t.Fatalf("Serve: %v", err)
		}
		e.client.CloseIdleConnections()
	}()
	var after int
	for range 100 {
		after = runtime.NumGoroutine()
		if after <= before {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("goroutines: %d before, %d after shutdown:\n%s", before, after, buf[:runtime.Stack(buf, true)])
}
