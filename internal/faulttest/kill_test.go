package faulttest

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
)

// TestWorkerKilledBeforeFirstByte kills one of two worker processes and
// sends requests sealed to both. Until its breaker opens, the gateway
// still lists and routes to the dead worker; whenever it tries the dead
// one first, the connection is refused before any response byte and the
// gateway must send the same ciphertext to the live one. Every request
// must succeed there with the whole answer, and at least one failover
// must have happened (each request picks the dead worker first with
// probability 1/2, so the loop is bounded, not timed).
func TestWorkerKilledBeforeFirstByte(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := startGateway(t, "gateway", dir, "127.0.0.1:0", nil)
	pa := newProvider(t, g, g, dir, "provider-a")
	pb := newProvider(t, g, g, dir, "provider-b")
	tenant := newTenant(t, g, dir, "tenant")
	victim := startWorker(t, g, pa, "worker-a")
	startWorker(t, g, pb, "worker-b")
	g.waitActive(t, "worker-a", "worker-b")
	c := newClient(t, g, tenant, 2)
	ctx := t.Context()

	first, err := summarize(ctx, c)
	if err != nil {
		t.Fatalf("request before the kill: %v", err)
	}
	want := first.Text
	if err := checkSummary(want); err != nil {
		t.Fatalf("request before the kill: %v", err)
	}

	victim.kill()
	t.Logf("killed worker-a (SIGKILL): %v", victim.Err())
	failovers0 := g.metric(t, "failovers_total")
	ok0 := g.metric(t, "requests_total", `outcome="ok"`)

	// Rounds of concurrent requests until one round saw a failover.
	const rounds, perRound = 12, 4
	sent, sealedToDead := 0, 0
	for round := 0; round < rounds && g.metric(t, "failovers_total") == failovers0; round++ {
		type outcome struct {
			res *client.Result
			err error
		}
		results := make(chan outcome, perRound)
		for range perRound {
			go func() {
				res, err := summarize(ctx, c)
				results <- outcome{res, err}
			}()
		}
		for range perRound {
			o := <-results
			sent++
			if o.err != nil {
				t.Fatalf("request %d after worker-a was killed: %v", sent, o.err)
			}
			if o.res.Worker.ID != "worker-b" {
				t.Fatalf("request %d answered by %q, want worker-b", sent, o.res.Worker.ID)
			}
			if o.res.Text != want {
				t.Fatalf("request %d: summary %q, want %q", sent, o.res.Text, want)
			}
			if slices.ContainsFunc(o.res.Candidates, func(w client.Worker) bool { return w.ID == "worker-a" }) {
				sealedToDead++
			}
		}
	}
	failovers := g.metric(t, "failovers_total") - failovers0
	t.Logf("%d requests after the kill, %d sealed to the dead worker too, %v failovers", sent, sealedToDead, failovers)
	if sealedToDead == 0 {
		t.Fatal("no request was sealed to the dead worker: the test exercised no failover")
	}
	if failovers < 1 {
		t.Fatalf("failovers_total did not move in %d requests, %d of them sealed to the dead worker too", sent, sealedToDead)
	}
	if got := g.metric(t, "requests_total", `outcome="ok"`) - ok0; got != float64(sent) {
		t.Errorf("requests_total{outcome=ok} grew by %v, want %d: a request was lost", got, sent)
	}
	if got := g.metric(t, "requests_total", `outcome="upstream_failed"`); got != 0 {
		t.Errorf("requests_total{outcome=upstream_failed} = %v, want 0", got)
	}
	if rec := findRecord(g.out.String(), "worker failed before its first byte; trying the next candidate"); rec == nil || rec["worker"] != "worker-a" {
		t.Errorf("gateway log: first failover record %v, want one naming worker-a", rec)
	}
}

// TestWorkerKilledMidStream cuts a worker's connections after the client
// has received the first bytes of its answer. The built-in backend answers
// at once, so the workers here run in this process, enrolled with a real
// gateway process, with a test double backend that streams a first part
// and then holds the response open. The client must get
// client.ErrTruncated, never the first part as if it were the answer, and
// the gateway must not retry on the other candidate.
func TestWorkerKilledMidStream(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := startGateway(t, "gateway", dir, "127.0.0.1:0", nil)
	pa := newProvider(t, g, g, dir, "provider-a")
	pb := newProvider(t, g, g, dir, "provider-b")
	tenant := newTenant(t, g, dir, "tenant")

	started := make(chan string, 16)
	release := make(chan struct{})
	backends := map[string]*stallingBackend{}
	listeners := map[string]*severableListener{}
	for id, p := range map[string]provider{"worker-a": pa, "worker-b": pb} {
		backends[id] = &stallingBackend{worker: id, started: started, release: release}
		listeners[id] = startInProcessWorker(t, g, p, id, backends[id])
	}
	g.waitActive(t, "worker-a", "worker-b")
	calls := func() int32 { return backends["worker-a"].calls.Load() + backends["worker-b"].calls.Load() }

	tap := &bodyTap{}
	c := newTappedClient(t, g, tenant, tap)
	ctx := t.Context()
	for _, cut := range []struct {
		name  string
		reset bool
	}{
		{"reset", true},   // RST, as when the kernel drops a connection with unread data
		{"closed", false}, // FIN without the final chunk, as when a process exits
	} {
		t.Run(cut.name, func(t *testing.T) {
			// Past the response header, the client has the sealed chunk
			// with the first part: the gateway is past its first byte.
			firstChunk := tap.arm(proto.ResponseHeaderSize)
			calls0 := calls()
			truncated0 := g.metric(t, "requests_total", `outcome="truncated"`)
			type outcome struct {
				res *client.Result
				err error
			}
			done := make(chan outcome, 1)
			go func() {
				res, err := summarize(ctx, c)
				done <- outcome{res, err}
			}()
			var victim string
			select {
			case victim = <-started:
			case o := <-done:
				t.Fatalf("request ended before a backend streamed: %v, %v", o.res, o.err)
			case <-time.After(startTimeout):
				t.Fatal("no backend started streaming")
			}
			select {
			case <-firstChunk:
			case <-time.After(startTimeout):
				t.Fatal("the client received no sealed chunk")
			}
			n := listeners[victim].sever(cut.reset)
			t.Logf("%s streaming; cut its %d connections", victim, n)

			var o outcome
			select {
			case o = <-done:
			case <-time.After(startTimeout):
				t.Fatal("the request did not end after the worker's connections were cut")
			}
			if o.err == nil {
				t.Fatalf("got an answer %q and no error, want client.ErrTruncated", o.res.Text)
			}
			if !errors.Is(o.err, client.ErrTruncated) {
				t.Fatalf("got error %v, want client.ErrTruncated", o.err)
			}
			if o.res != nil {
				t.Errorf("got a result %+v with the truncation error, want nil", o.res)
			}
			var te *client.TruncatedError
			if !errors.As(o.err, &te) {
				t.Fatalf("error %T does not unwrap to *client.TruncatedError", o.err)
			}
			if te.WorkerID != victim {
				t.Errorf("TruncatedError.WorkerID = %q, want %q", te.WorkerID, victim)
			}
			if te.Received != len(firstPart) {
				t.Errorf("TruncatedError.Received = %d, want the %d bytes of the first part", te.Received, len(firstPart))
			}
			if got := calls() - calls0; got != 1 {
				t.Errorf("backends served the request %d times, want 1: no retry after the first byte", got)
			}
			eventually(t, stateTimeout, "requests_total{outcome=truncated} counts the cut", func() error {
				if got := g.metric(t, "requests_total", `outcome="truncated"`) - truncated0; got != 1 {
					return fmt.Errorf("grew by %v, want 1", got)
				}
				return nil
			})
		})
	}

	// Both workers still serve whole answers once the backends stop
	// stalling.
	close(release)
	res, err := summarize(ctx, c)
	if err != nil {
		t.Fatalf("request after the cuts: %v", err)
	}
	if res.Text != firstPart+secondPart {
		t.Fatalf("request after the cuts: answer %q, want %q", res.Text, firstPart+secondPart)
	}
}

// The two parts of stallingBackend's answer.
const (
	firstPart  = "the first part of a long answer, "
	secondPart = "and the rest of it."
)

// stallingBackend is a test double of enclave.Backend standing in for a
// slow model: it streams firstPart, tells the test which worker it runs
// in, and holds the response open until release is closed (then streams
// secondPart) or the request ends.
type stallingBackend struct {
	worker  string
	started chan<- string
	release <-chan struct{}
	calls   atomic.Int32
}

var _ enclave.Backend = (*stallingBackend)(nil)

func (b *stallingBackend) Tasks() []string { return []string{proto.TaskSummarize} }

func (b *stallingBackend) Serve(ctx context.Context, _ string, _ []byte, emit func(string) error) (proto.EndBody, error) {
	b.calls.Add(1)
	if err := emit(firstPart); err != nil {
		return proto.EndBody{}, err
	}
	select {
	case b.started <- b.worker:
	default:
	}
	select {
	case <-b.release:
	case <-ctx.Done():
		return proto.EndBody{}, ctx.Err()
	}
	if err := emit(secondPart); err != nil {
		return proto.EndBody{}, err
	}
	return proto.EndBody{Backend: "stalling-test-double"}, nil
}

// severableListener records the connections it accepts, so that the test
// can cut them all at once, as a crash of the worker's host would.
type severableListener struct {
	net.Listener
	mu    sync.Mutex // guards conns
	conns []net.Conn
}

func (l *severableListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// sever closes every connection accepted so far, with a TCP reset when
// reset is set, and returns how many there were.
func (l *severableListener) sever(reset bool) int {
	l.mu.Lock()
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok && reset {
			tc.SetLinger(0)
		}
		c.Close()
	}
	return len(conns)
}

// measureTestBinary is what the simulated TEE reports for in-process
// workers, as devnet does: the hash of the running (test) binary.
var measureTestBinary = sync.OnceValues(sim.MeasureExecutable)

// startInProcessWorker runs an enclave.Worker on the simulated TEE in this
// process, for provider p and with backend, enrolled with the gateway
// process g over mutual TLS. It returns the worker's listener.
func startInProcessWorker(t *testing.T, g *gatewayProc, p provider, id string, backend enclave.Backend) *severableListener {
	t.Helper()
	cred, err := os.ReadFile(p.cred)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(p.key)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatalf("%s: no PEM block", p.key)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	edKey, ok := key.(ed25519.PrivateKey)
	if !ok {
		t.Fatalf("%s: found a %T, want an Ed25519 key", p.key, key)
	}
	measurement, err := measureTestBinary()
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	w, err := enclave.New(enclave.Config{
		ID:          id,
		GatewayURL:  g.url,
		Credential:  strings.TrimSpace(string(cred)),
		ProviderKey: edKey,
		GatewayTLS:  tlspin.TrustConfig(g.http.Transport.(*http.Transport).TLSClientConfig.RootCAs),
		Evidence:    enclave.SimulatedEvidence{Device: sim.NewDevice(sim.DeviceConfig{Measurement: measurement})},
		Backend:     backend,
		Logger:      slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := &severableListener{Listener: ln}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, sl) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker %s: %v", id, err)
			}
		case <-time.After(startTimeout):
			t.Errorf("worker %s did not stop", id)
		}
		if t.Failed() {
			t.Logf("output of in-process worker %s:\n%s", id, lastLines(logs.String(), 40))
		}
	})
	return sl
}

// bodyTap watches the client's sealed-request responses and signals when
// one has yielded more than a given number of body bytes.
type bodyTap struct {
	mu        sync.Mutex    // guards the fields below
	got       chan struct{} // closed once seen > threshold; nil when not armed
	threshold int
	seen      int // body bytes of the current response
}

// arm returns a channel closed once the next response has yielded more
// than threshold body bytes.
func (b *bodyTap) arm(threshold int) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got, b.threshold, b.seen = make(chan struct{}), threshold, 0
	return b.got
}

func (b *bodyTap) add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seen += n
	if b.got != nil && b.seen > b.threshold {
		close(b.got)
		b.got = nil
	}
}

type tapTransport struct {
	base http.RoundTripper
	tap  *bodyTap
}

func (tt tapTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := tt.base.RoundTrip(req)
	if err == nil && req.URL.Path == proto.PathRequests {
		resp.Body = &tapBody{ReadCloser: resp.Body, tap: tt.tap}
	}
	return resp, err
}

type tapBody struct {
	io.ReadCloser
	tap *bodyTap
}

func (b *tapBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.tap.add(n)
	return n, err
}

// newTappedClient is newClient with a transport that reports response
// bytes to tap. It trusts the gateway's development certificate.
func newTappedClient(t *testing.T, g *gatewayProc, credFile string, tap *bodyTap) *client.Client {
	t.Helper()
	cred, err := os.ReadFile(credFile)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: g.http.Transport.(*http.Transport).TLSClientConfig.RootCAs, MinVersion: tls.VersionTLS12}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := client.New(client.Config{
		GatewayURL: g.url,
		Credential: strings.TrimSpace(string(cred)),
		Policy:     policy.InsecureSimulated(),
		K:          2,
		HTTPClient: &http.Client{Transport: tapTransport{base: tr, tap: tap}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
