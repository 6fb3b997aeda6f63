package tlspin

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testNow is the frozen clock of the tests. Handshakes with pin-only
// configurations do not read the clock; certificates made at testNow are
// checked against it through tls.Config.Time where dates matter.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newCert returns a fresh self-signed certificate for 127.0.0.1, ::1 and
// localhost.
func newCert(t *testing.T) tls.Certificate {
	t.Helper()
	c, err := SelfSigned(nil, testNow, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// outcome is what each side of one connection saw.
type outcome struct {
	client error // dial, handshake, or reading the server's first byte
	server error // handshake or writing the first byte
	// peerPin is the client's pin as the server saw it, if the handshake
	// completed on the server with a client certificate.
	peerPin Pin
}

// connect makes one connection over 127.0.0.1 between a server and a
// client config. The server completes its handshake and writes a byte; the
// client reads it. In TLS 1.3 the client's handshake ends before the
// server has checked the client's certificate, so a refusal of the client
// shows in that read.
func connect(t *testing.T, server, client *tls.Config) outcome {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type serverResult struct {
		err error
		pin Pin
	}
	done := make(chan serverResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- serverResult{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			done <- serverResult{err: err}
			return
		}
		cs := tc.ConnectionState()
		var pin Pin
		if len(cs.PeerCertificates) > 0 {
			pin = PinOf(cs.PeerCertificates[0])
		}
		_, err = tc.Write([]byte("k"))
		done <- serverResult{err: err, pin: pin}
	}()

	var out outcome
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: client}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		out.client = err
	} else {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, out.client = io.ReadFull(c, make([]byte, 1))
		c.Close()
	}
	r := <-done
	out.server, out.peerPin = r.err, r.pin
	return out
}

// pins returns a clientPins func for a fixed set.
func pins(ps ...Pin) func() []Pin { return func() []Pin { return ps } }

func wantErrContains(t *testing.T, side string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s error = %v, want it to contain %q", side, err, want)
	}
}

func wantNotPinned(t *testing.T, side string, err error, got Pin) {
	t.Helper()
	if !errors.Is(err, ErrNotPinned) {
		t.Errorf("%s error = %v, want ErrNotPinned", side, err)
		return
	}
	if !strings.Contains(err.Error(), got.String()) {
		t.Errorf("%s error = %v, want it to name the peer's pin %s", side, err, got)
	}
}

func TestPinnedGatewayCallsWorkerOverHTTP(t *testing.T) {
	gateway, worker := newCert(t), newCert(t)
	gatewayPin, workerPin := PinOf(gateway.Leaf), PinOf(worker.Leaf)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pin, err := PeerPin(r.TLS)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, pin.String())
	}))
	srv.TLS = ServerConfig(worker, pins(gatewayPin))
	srv.StartTLS()
	defer srv.Close()

	tr := &http.Transport{TLSClientConfig: ClientConfig(&gateway, workerPin)}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != gatewayPin.String() {
		t.Fatalf("worker answered %d %q, want 200 and the gateway's pin %s", resp.StatusCode, body, gatewayPin)
	}
	if got, err := PeerPin(resp.TLS); err != nil || got != workerPin {
		t.Fatalf("gateway saw worker pin %s, %v; want %s", got, err, workerPin)
	}
	if resp.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("TLS version %#x, want TLS 1.3", resp.TLS.Version)
	}
}

func TestServerAcceptsPinnedClient(t *testing.T) {
	gateway, worker, other := newCert(t), newCert(t), newCert(t)
	// Any of several pins is accepted.
	out := connect(t, ServerConfig(worker, pins(PinOf(other.Leaf), PinOf(gateway.Leaf))), ClientConfig(&gateway, PinOf(worker.Leaf)))
	if out.client != nil || out.server != nil {
		t.Fatalf("client error %v, server error %v; want none", out.client, out.server)
	}
	if out.peerPin != PinOf(gateway.Leaf) {
		t.Fatalf("server saw client pin %s, want %s", out.peerPin, PinOf(gateway.Leaf))
	}
}

func TestServerRefusesClientWithOtherKey(t *testing.T) {
	gateway, worker, intruder := newCert(t), newCert(t), newCert(t)
	out := connect(t, ServerConfig(worker, pins(PinOf(gateway.Leaf))), ClientConfig(&intruder, PinOf(worker.Leaf)))
	wantNotPinned(t, "server", out.server, PinOf(intruder.Leaf))
	wantErrContains(t, "client", out.client, "remote error: tls: bad certificate")
}

func TestServerRefusesClientReusingPinnedCertWithOtherKey(t *testing.T) {
	// The gateway's certificate, presented with another key: the TLS 1.3
	// CertificateVerify signature fails before any pin check.
	gateway, worker, intruder := newCert(t), newCert(t), newCert(t)
	forged := tls.Certificate{Certificate: gateway.Certificate, PrivateKey: intruder.PrivateKey}
	out := connect(t, ServerConfig(worker, pins(PinOf(gateway.Leaf))), ClientConfig(&forged, PinOf(worker.Leaf)))
	if out.server == nil || errors.Is(out.server, ErrNotPinned) {
		t.Fatalf("server error = %v, want a signature failure", out.server)
	}
	wantErrContains(t, "server", out.server, "invalid signature")
	if out.client == nil {
		t.Fatal("client succeeded with a certificate whose key it does not hold")
	}
}

func TestServerRefusesClientWithoutCertificate(t *testing.T) {
	gateway, worker := newCert(t), newCert(t)
	out := connect(t, ServerConfig(worker, pins(PinOf(gateway.Leaf))), ClientConfig(nil, PinOf(worker.Leaf)))
	wantErrContains(t, "server", out.server, "client didn't provide a certificate")
	wantErrContains(t, "client", out.client, "remote error: tls: certificate required")
}

func TestServerWithNoPinsRefusesEveryClient(t *testing.T) {
	gateway, worker := newCert(t), newCert(t)
	for name, clientPins := range map[string]func() []Pin{
		"nil func":    nil,
		"no pins":     pins(),
		"zero pin":    pins(Pin{}),
		"empty slice": func() []Pin { return []Pin{} },
	} {
		t.Run(name, func(t *testing.T) {
			out := connect(t, ServerConfig(worker, clientPins), ClientConfig(&gateway, PinOf(worker.Leaf)))
			wantNotPinned(t, "server", out.server, PinOf(gateway.Leaf))
			wantErrContains(t, "client", out.client, "remote error: tls: bad certificate")
		})
	}
}

func TestClientRefusesServerWithWrongPin(t *testing.T) {
	gateway, worker, impostor := newCert(t), newCert(t), newCert(t)
	for name, pin := range map[string]Pin{"other key": PinOf(impostor.Leaf), "zero pin": {}} {
		t.Run(name, func(t *testing.T) {
			out := connect(t, ServerConfig(worker, pins(PinOf(gateway.Leaf))), ClientConfig(&gateway, pin))
			wantNotPinned(t, "client", out.client, PinOf(worker.Leaf))
			wantErrContains(t, "server", out.server, "remote error: tls: bad certificate")
		})
	}
}

func TestServerPinsChangeAtRuntime(t *testing.T) {
	oldGateway, newGateway, worker := newCert(t), newCert(t), newCert(t)
	var current atomic.Pointer[[]Pin]
	current.Store(&[]Pin{PinOf(oldGateway.Leaf)})
	server := ServerConfig(worker, func() []Pin { return *current.Load() })
	// Both ends refuse to resume a session whose certificates have expired
	// by their clock: freeze it, so only the pins can stop a resumption.
	server.Time = func() time.Time { return testNow }

	// The old gateway keeps a session cache: a resumed session must not
	// outlive its pin.
	oldClient := ClientConfig(&oldGateway, PinOf(worker.Leaf))
	oldClient.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	oldClient.ServerName = "worker" // the session cache key; each connect has a new port
	oldClient.Time = server.Time
	newClient := ClientConfig(&newGateway, PinOf(worker.Leaf))

	if out := connect(t, server, oldClient); out.client != nil || out.server != nil {
		t.Fatalf("old gateway before re-enrollment: client %v, server %v; want success", out.client, out.server)
	}
	out := connect(t, server, newClient)
	wantNotPinned(t, "server (new gateway before re-enrollment)", out.server, PinOf(newGateway.Leaf))

	current.Store(&[]Pin{PinOf(newGateway.Leaf)}) // re-enrollment

	out = connect(t, server, oldClient)
	wantNotPinned(t, "server (old gateway after re-enrollment)", out.server, PinOf(oldGateway.Leaf))
	wantErrContains(t, "client (old gateway after re-enrollment)", out.client, "remote error: tls: bad certificate")
	if out := connect(t, server, newClient); out.client != nil || out.server != nil {
		t.Fatalf("new gateway after re-enrollment: client %v, server %v; want success", out.client, out.server)
	}
}

func TestTLS12Refused(t *testing.T) {
	gateway, worker := newCert(t), newCert(t)

	t.Run("server", func(t *testing.T) {
		client := ClientConfig(&gateway, PinOf(worker.Leaf))
		client.MinVersion, client.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		out := connect(t, ServerConfig(worker, pins(PinOf(gateway.Leaf))), client)
		wantErrContains(t, "server", out.server, "client offered only unsupported versions")
		wantErrContains(t, "client", out.client, "remote error: tls: protocol version not supported")
	})
	t.Run("client", func(t *testing.T) {
		server := ServerConfig(worker, pins(PinOf(gateway.Leaf)))
		server.MinVersion, server.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		out := connect(t, server, ClientConfig(&gateway, PinOf(worker.Leaf)))
		wantErrContains(t, "server", out.server, "client offered only unsupported versions")
		wantErrContains(t, "client", out.client, "remote error: tls: protocol version not supported")
	})
	t.Run("pin-only trust", func(t *testing.T) {
		server := &tls.Config{Certificates: []tls.Certificate{worker}, MaxVersion: tls.VersionTLS12}
		out := connect(t, server, PinOnlyTrustConfig(PinOf(worker.Leaf)))
		wantErrContains(t, "server", out.server, "client offered only unsupported versions")
		wantErrContains(t, "client", out.client, "remote error: tls: protocol version not supported")
	})
}

func TestClientConfigKeepsCopyOfCertificate(t *testing.T) {
	gateway, worker, other := newCert(t), newCert(t), newCert(t)
	cert := gateway
	client := ClientConfig(&cert, PinOf(worker.Leaf))
	cert = other // the caller reuses its variable
	out := connect(t, ServerConfig(worker, pins(PinOf(gateway.Leaf))), client)
	if out.client != nil || out.server != nil || out.peerPin != PinOf(gateway.Leaf) {
		t.Fatalf("client %v, server %v, pin %s; want success as the gateway", out.client, out.server, out.peerPin)
	}
}

func TestPinOnlyTrustConfig(t *testing.T) {
	gateway, impostor := newCert(t), newCert(t)
	server := &tls.Config{Certificates: []tls.Certificate{gateway}}

	out := connect(t, server, PinOnlyTrustConfig(PinOf(gateway.Leaf)))
	if out.client != nil || out.server != nil {
		t.Fatalf("pinned dev gateway: client %v, server %v; want success", out.client, out.server)
	}
	out = connect(t, server, PinOnlyTrustConfig(PinOf(impostor.Leaf)))
	wantNotPinned(t, "client", out.client, PinOf(gateway.Leaf))
	wantErrContains(t, "server", out.server, "remote error: tls: bad certificate")
}

func TestTrustConfig(t *testing.T) {
	gateway := newCert(t)
	server := &tls.Config{Certificates: []tls.Certificate{gateway}}
	trusted := x509.NewCertPool()
	trusted.AddCert(gateway.Leaf)

	client := func(roots *x509.CertPool, name string) *tls.Config {
		c := TrustConfig(roots)
		c.ServerName = name
		c.Time = func() time.Time { return testNow }
		return c
	}

	t.Run("trusted root", func(t *testing.T) {
		out := connect(t, server, client(trusted, "localhost"))
		if out.client != nil || out.server != nil {
			t.Fatalf("client %v, server %v; want success", out.client, out.server)
		}
	})
	t.Run("TLS 1.2 accepted", func(t *testing.T) {
		old := server.Clone()
		old.MaxVersion = tls.VersionTLS12
		out := connect(t, old, client(trusted, "localhost"))
		if out.client != nil || out.server != nil {
			t.Fatalf("client %v, server %v; want success", out.client, out.server)
		}
	})
	t.Run("unknown root", func(t *testing.T) {
		out := connect(t, server, client(x509.NewCertPool(), "localhost"))
		var uae x509.UnknownAuthorityError
		if !errors.As(out.client, &uae) {
			t.Fatalf("client error = %v, want x509.UnknownAuthorityError", out.client)
		}
	})
	t.Run("system roots do not know a self-signed cert", func(t *testing.T) {
		out := connect(t, server, client(nil, "localhost"))
		var cve *tls.CertificateVerificationError
		if !errors.As(out.client, &cve) {
			t.Fatalf("client error = %v, want *tls.CertificateVerificationError", out.client)
		}
	})
	t.Run("wrong host name", func(t *testing.T) {
		out := connect(t, server, client(trusted, "gateway.example"))
		var he x509.HostnameError
		if !errors.As(out.client, &he) {
			t.Fatalf("client error = %v, want x509.HostnameError", out.client)
		}
	})
	t.Run("expired", func(t *testing.T) {
		c := client(trusted, "localhost")
		c.Time = func() time.Time { return testNow.Add(25 * time.Hour) }
		out := connect(t, server, c)
		var ie x509.CertificateInvalidError
		if !errors.As(out.client, &ie) || ie.Reason != x509.Expired {
			t.Fatalf("client error = %v, want x509.CertificateInvalidError{Reason: Expired}", out.client)
		}
	})
}
