package gateway_test

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
)

// noPlainWorkers is the production setting: workers must serve TLS.
func noPlainWorkers(c *gateway.Config) { c.InsecurePlainWorkers = false }

func TestMutualTLSWorker(t *testing.T) {
	e := newEnv(t, noPlainWorkers)
	w := newMTLSWorker(t, e, "tls-w", nil)
	if !strings.HasPrefix(w.url, "https://") || w.tlsPin == "" {
		t.Fatalf("the mTLS double serves %s with pin %q, want https and a pin", w.url, w.tlsPin)
	}
	e.register(w.workerDouble, proto.TaskSummarize)

	// Relays, re-attestation and strict-mode quotes all go over the
	// pinned, mutually authenticated connection.
	e.relayOK(e.seal(proto.TaskSummarize, "over mtls", w.key()), "over mtls", w.workerDouble)
	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())
	if ws, _ := e.workerStatus("tls-w"); ws.State != "active" || w.attests.Load() != 1 {
		t.Fatalf("after re-attestation over mTLS: %+v (%d attestations), want active after 1", ws, w.attests.Load())
	}
	e.relayOK(e.seal(proto.TaskSummarize, "new key", w.key()), "new key", w.workerDouble)
	var ev proto.Evidence
	if resp, body := e.doJSON(e.tenant, http.MethodPost, proto.PathEvidence, proto.EvidenceRequest{WorkerID: "tls-w", Nonce: make([]byte, proto.NonceSize)}, &ev); resp.StatusCode != http.StatusOK {
		t.Fatalf("strict-mode evidence over mTLS: %d %s", resp.StatusCode, body)
	}
	// And across a restart, from the stored pin.
	e.restart()
	e.relayOK(e.seal(proto.TaskSummarize, "after restart", w.key()), "after restart", w.workerDouble)

	// Nobody else gets served: not a client without a certificate, not
	// one with another certificate, whatever it trusts.
	hits := w.hits.Load()
	workerPin, err := tlspin.ParsePin(w.tlsPin)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := tlspin.SelfSigned(nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*tls.Config{
		"no certificate":      tlspin.ClientConfig(nil, workerPin),
		"another certificate": tlspin.ClientConfig(&stranger, workerPin),
	} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		req := e.seal(proto.TaskSummarize, "free inference?", w.key())
		hr, _ := http.NewRequest(http.MethodPost, w.url+proto.PathServe, bytes.NewReader(req.Bytes()))
		hr.Header.Set("Content-Type", proto.MediaTypeForward)
		resp, err := c.Do(hr)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: the worker answered %d, want a failed handshake", name, resp.StatusCode)
		}
		// In TLS 1.3 the client finishes its side of the handshake
		// before the server judges its certificate, so the refusal
		// reaches it as the server's alert or as the connection the
		// server closed, whichever its next read or write meets first.
		if msg := err.Error(); !strings.Contains(msg, "tls: ") && !strings.Contains(msg, "broken pipe") &&
			!strings.Contains(msg, "connection reset") && !strings.Contains(msg, "EOF") {
			t.Fatalf("%s: found %v, want a TLS alert or a connection the worker closed", name, err)
		}
		c.CloseIdleConnections()
	}
	if w.hits.Load() != hits {
		t.Fatal("a direct client reached the worker's handler")
	}
}

func TestMutualTLSWorkerWrongPin(t *testing.T) {
	e := newEnv(t, noPlainWorkers)
	w := newMTLSWorker(t, e, "tls-w", nil)
	// The registration pins another key than the one the worker serves
	// with: the gateway admits the evidence, but never talks to a server
	// with the wrong key.
	other, err := tlspin.SelfSigned(nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	w.tlsPin = tlspin.PinOf(other.Leaf).String()
	e.register(w.workerDouble, proto.TaskSummarize)
	status, code, _ := e.relayRefused(e.tenant, e.seal(proto.TaskSummarize, "x", w.key()))
	if status != http.StatusBadGateway || code != "upstream_failed" {
		t.Fatalf("relay to a worker serving an unpinned key: found %d %s, want 502 upstream_failed", status, code)
	}
	if w.hits.Load() != 0 {
		t.Fatal("the request reached a worker whose key is not the pinned one")
	}
	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())
	if ws, _ := e.workerStatus("tls-w"); ws.State != "draining" || w.attests.Load() != 0 {
		t.Fatalf("re-attestation of a worker serving an unpinned key: %+v (%d attestations), want drained without reaching it", ws, w.attests.Load())
	}
}

// TestMTLSWorkerRefusesAnotherGateway checks the worker's side of the
// pin: a gateway with another certificate is refused.
func TestMTLSWorkerRefusesAnotherGateway(t *testing.T) {
	e := newEnv(t, noPlainWorkers)
	w := newMTLSWorker(t, e, "tls-w", nil)
	// A second gateway, with its own certificate, on its own database.
	e2 := newEnv(t, noPlainWorkers)
	w.provider = e2.provider
	w.endorser = e2.provider
	e2.register(w.workerDouble, proto.TaskSummarize)
	status, code, _ := e2.relayRefused(e2.tenant, e2.seal(proto.TaskSummarize, "x", w.key()))
	if status != http.StatusBadGateway || code != "upstream_failed" {
		t.Fatalf("relay through a gateway the worker does not pin: found %d %s, want 502 upstream_failed", status, code)
	}
	if w.hits.Load() != 0 {
		t.Fatal("a gateway the worker does not pin reached its handler")
	}
}
