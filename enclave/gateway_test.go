package enclave

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
)

// wait bounds every wait for an event in these tests. Nothing asserts a
// duration: it only turns a hang into a failure.
const wait = 15 * time.Second

// fakeGateway is the gateway side of enrollment over real TLS on
// 127.0.0.1: it issues anchored challenges, checks the credential and the
// endorsement of each registration and hands registrations to the test. Its
// certificate can be replaced, as a restarted gateway's may be.
type fakeGateway struct {
	t        *testing.T
	srv      *httptest.Server
	cert     atomic.Pointer[tls.Certificate]
	anchor   ed25519.PrivateKey
	provider ed25519.PublicKey
	regs     chan proto.Registration // every admitted registration
	probes   chan struct{}           // every GET of PathHealth
	certs    []tls.Certificate       // the certificates rotateCert goes through
	next     atomic.Int32            // index of the next of certs
}

func newFakeGateway(t *testing.T, provider ed25519.PublicKey) *fakeGateway {
	t.Helper()
	_, anchor, _ := ed25519.GenerateKey(rand.Reader)
	g := &fakeGateway{t: t, anchor: anchor, provider: provider, regs: make(chan proto.Registration, 16), probes: make(chan struct{}, 16)}
	for range 3 {
		cert, err := tlspin.SelfSigned(nil, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		g.certs = append(g.certs, cert)
	}
	g.rotateCert()
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+proto.PathChallenge, func(rw http.ResponseWriter, r *http.Request) {
		if !g.authorized(rw, r) {
			return
		}
		writeJSON(rw, g.challenge())
	})
	mux.HandleFunc("POST "+proto.PathRegister, func(rw http.ResponseWriter, r *http.Request) {
		if !g.authorized(rw, r) {
			return
		}
		var reg proto.Registration
		if err := json.NewDecoder(r.Body).Decode(&reg); err != nil {
			writeError(rw, http.StatusBadRequest, "bad_request", "registration does not decode")
			return
		}
		b, err := proto.ParseBundle(reg.Bundle)
		if err != nil || !ed25519.Verify(g.provider, proto.EndorsementMessage(reg.WorkerID, b.KeysHash()), reg.Endorsement) {
			writeError(rw, http.StatusForbidden, "bad_endorsement", "endorsement does not verify")
			return
		}
		select {
		case g.regs <- reg:
		default: // a test that stopped counting
		}
		writeJSON(rw, proto.Admission{WorkerID: reg.WorkerID, Kind: b.Kind, AdmittedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Policy: "test"})
	})
	mux.HandleFunc("GET "+proto.PathHealth, func(rw http.ResponseWriter, r *http.Request) {
		if !g.authorized(rw, r) {
			return
		}
		select {
		case g.probes <- struct{}{}:
		default:
		}
		io.WriteString(rw, "ok\n")
	})
	g.srv = httptest.NewUnstartedServer(mux)
	g.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes the tests make fail on purpose
	g.srv.TLS = &tls.Config{
		// GetConfigForClient, unlike GetCertificate, is asked on every
		// handshake, with or without SNI.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return &tls.Config{Certificates: []tls.Certificate{*g.cert.Load()}}, nil
		},
	}
	g.srv.StartTLS()
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGateway) authorized(rw http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get(proto.HeaderAuthorization) != "Bearer "+testCredential {
		g.t.Errorf("%s %s: the worker sent another credential", r.Method, r.URL.Path)
		writeError(rw, http.StatusUnauthorized, "unauthorized", "credential missing or wrong")
		return false
	}
	return true
}

// challenge is a fresh anchored challenge.
func (g *fakeGateway) challenge() proto.Challenge {
	var c [proto.NonceSize]byte
	rand.Read(c[:])
	a, err := attestation.SignAnchor(g.anchor, c, time.Now())
	if err != nil {
		g.t.Error(err)
	}
	n := proto.AnchoredNonce(a)
	return proto.Challenge{Nonce: n[:], Anchor: a, ExpiresAt: time.Now().Add(time.Minute)}
}

// rotateCert makes the gateway present its next certificate from its
// next handshake on, and returns it: the gateway's client certificate
// toward workers as well. Workers trust every certificate the gateway
// will present.
func (g *fakeGateway) rotateCert() *tls.Certificate {
	c := &g.certs[g.next.Add(1)-1]
	g.cert.Store(c)
	return c
}

// trust is the worker's GatewayTLS: the gateway's self-signed
// certificates as roots, as -gateway-ca gives them.
func (g *fakeGateway) trust() *tls.Config {
	roots := x509.NewCertPool()
	for _, c := range g.certs {
		roots.AddCert(c.Leaf)
	}
	return &tls.Config{RootCAs: roots}
}

// nextRegistration waits for the next registration.
func (g *fakeGateway) nextRegistration(t *testing.T) proto.Registration {
	t.Helper()
	select {
	case r := <-g.regs:
		return r
	case <-time.After(wait):
		t.Fatal("no registration reached the gateway")
	}
	panic("unreachable")
}

// client calls a worker as the gateway does: presenting cert (none if
// nil) and trusting only the worker's pin.
func client(t *testing.T, cert *tls.Certificate, workerPin string) *http.Client {
	t.Helper()
	p, err := tlspin.ParsePin(workerPin)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: tlspin.ClientConfig(cert, p), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: wait}
}

// armed is one arming of a worker's watchdog.
type armed struct {
	d    time.Duration
	fire chan time.Time
}

// hookWatchdog makes w's watchdog fire only when the test sends on the
// channel of an arming it received from the result.
func hookWatchdog(w *Worker) <-chan armed {
	arms := make(chan armed, 64)
	w.watchdogTimer = func(d time.Duration) <-chan time.Time {
		a := armed{d: d, fire: make(chan time.Time)}
		arms <- a
		return a.fire
	}
	return arms
}

func nextArm(t *testing.T, arms <-chan armed) armed {
	t.Helper()
	select {
	case a := <-arms:
		return a
	case <-time.After(wait):
		t.Fatal("the watchdog was not armed")
	}
	panic("unreachable")
}

// fire fires an armed watchdog. The send completes only while the
// enrollment loop waits on it, so it also proves the loop had not left its
// wait (to enroll) before.
func (a armed) fireNow(t *testing.T) {
	t.Helper()
	select {
	case a.fire <- time.Now():
	case <-time.After(wait):
		t.Fatal("the enrollment loop is not waiting on this watchdog")
	}
}

// runWorker starts a worker on 127.0.0.1 that enrolls with g over TLS.
// hook, when not nil, runs between New and Run.
func runWorker(t *testing.T, g *fakeGateway, provider ed25519.PrivateKey, cfg Config, hook func(*Worker)) *Worker {
	t.Helper()
	cfg.ID = "w-tls"
	cfg.GatewayURL = g.srv.URL
	cfg.Credential = testCredential
	cfg.ProviderKey = provider
	cfg.GatewayTLS = g.trust()
	cfg.Evidence = SimulatedEvidence{Device: sim.NewDevice(sim.DeviceConfig{})}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(w)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		w.client.CloseIdleConnections()
	})
	return w
}

// postJSONTo posts v as JSON with c and decodes a 200 answer into out.
func postJSONTo(t *testing.T, c *http.Client, url string, v, out any) *http.Response {
	t.Helper()
	body, _ := json.Marshal(v)
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp
}

// logBuffer collects a worker's JSON logs.
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
