package gateway_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// t0 is the frozen start of every test's clock.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// suite is what the tests seal with: the default, post-quantum hybrid.
var suite = proto.SuiteMLKEM768X25519

// clock is a manual clock shared by the gateway, the worker doubles and
// the sealing client.
type clock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is one gateway under test, served on a real socket on 127.0.0.1
// with its registry in a SQLite file in t.TempDir().
//
// The gateway serves TLS with a self-signed certificate that the env's
// client pins. Its workers are test doubles on plain HTTP (the INSECURE
// setting Config.InsecurePlainWorkers) unless a test gives them TLS.
// newEnv creates, through the admin API, provider "p1" with an
// endorsement key and tenant "t1".
type env struct {
	t      *testing.T
	clock  *clock
	cfg    gateway.Config
	logs   *syncBuffer
	url    string
	client *http.Client
	cert   tls.Certificate

	admin    string // the admin credential
	provider *providerDouble
	tenant   string // t1's credential

	gw   *gateway.Gateway
	stop func() error // cancels Serve and waits for it; nil when stopped
}

// newEnv starts a gateway admitting simulated workers; edit adjusts its
// Config first.
func newEnv(t *testing.T, edit ...func(*gateway.Config)) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), logs: &syncBuffer{}}
	cert, err := tlspin.SelfSigned(nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.cert = cert
	e.admin = gateway.NewCredential(proto.CredentialAdmin)
	e.cfg = gateway.Config{
		Database:             filepath.Join(t.TempDir(), "gateway.db"),
		AdmissionPolicy:      policy.InsecureSimulated(),
		Logger:               slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:                  e.clock.Now,
		AdminCredentialHash:  gateway.HashCredential(e.admin),
		TLSCertificate:       &e.cert,
		InsecurePlainWorkers: true,
		// The background loops would run on the frozen clock; tests call
		// ReattestDue and Sync themselves.
		ReattestInterval: 3 * time.Minute,
		SyncInterval:     time.Hour,
	}
	for _, f := range edit {
		f(&e.cfg)
	}
	tc := tlspin.PinOnlyTrustConfig(tlspin.PinOf(cert.Leaf))
	e.client = &http.Client{Transport: &http.Transport{Proxy: nil, TLSClientConfig: tc}}
	e.start()
	if e.cfg.AdminCredentialHash == gateway.HashCredential(e.admin) {
		e.provider = e.newProvider("p1")
		e.tenant = e.newTenant("t1", proto.NewAccount{})
	}
	t.Cleanup(func() {
		if e.stop != nil {
			e.stop()
		}
		e.client.CloseIdleConnections()
	})
	return e
}

// start opens the gateway on e.cfg and serves it on a fresh port.
func (e *env) start() {
	e.t.Helper()
	gw, err := gateway.New(context.Background(), e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln) }()
	e.gw, e.url = gw, "https://"+ln.Addr().String()
	if e.cfg.TLSCertificate == nil {
		e.url = "http://" + ln.Addr().String()
	}
	e.stop = func() error {
		e.stop = nil
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			e.t.Fatal("Serve did not return after its context was cancelled")
			return nil
		}
	}
}

// restart stops the gateway and starts a new one on the same database.
func (e *env) restart() {
	e.t.Helper()
	if err := e.stop(); err != nil {
		e.t.Fatalf("Serve: %v", err)
	}
	e.client.CloseIdleConnections()
	e.start()
}

// do sends a request with the credential its path needs: the admin's
// for admin paths, p1's for provider paths, t1's for the rest.
func (e *env) do(method, path, contentType string, body io.Reader) (*http.Response, []byte) {
	e.t.Helper()
	cred := e.tenant
	switch {
	case strings.HasPrefix(path, "/v1/admin/"):
		cred = e.admin
	case path == proto.PathChallenge || path == proto.PathRegister || path == proto.PathProviderKey:
		if e.provider != nil {
			cred = e.provider.cred
		}
	}
	return e.doAs(cred, method, path, contentType, body)
}

// doAs sends a request with credential cred ("" for none).
func (e *env) doAs(cred, method, path, contentType string, body io.Reader) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// errorCode returns the code of a JSON error body, or "" if it is not one.
func errorCode(body []byte) string {
	var er proto.ErrorResponse
	if json.Unmarshal(body, &er) != nil {
		return ""
	}
	return er.Error.Code
}

func (e *env) challenge() [proto.NonceSize]byte {
	e.t.Helper()
	return e.challengeAs(e.provider)
}

func (e *env) challengeAs(p *providerDouble) [proto.NonceSize]byte {
	e.t.Helper()
	resp, body := e.doAs(p.cred, http.MethodPost, proto.PathChallenge, "", nil)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("challenge: status %d: %s", resp.StatusCode, body)
	}
	var ch proto.Challenge
	if err := json.Unmarshal(body, &ch); err != nil {
		e.t.Fatal(err)
	}
	var n [proto.NonceSize]byte
	if len(ch.Nonce) != len(n) {
		e.t.Fatalf("challenge nonce: found %d bytes, want %d", len(ch.Nonce), len(n))
	}
	copy(n[:], ch.Nonce)
	return n
}

// registration returns a valid registration of w for a fresh challenge.
func (e *env) registration(w *workerDouble, tasks ...string) proto.Registration {
	e.t.Helper()
	p := w.provider
	if p == nil {
		p = e.provider
	}
	b := w.bundle(e.challengeAs(p))
	return proto.Registration{
		WorkerID: w.id, URL: w.url, Tasks: tasks, Bundle: b, Endorsement: p.endorse(w.id, b),
		TLSPin: w.tlsPin, Capacity: w.capacity, Region: "test",
	}
}

func (e *env) postJSON(path string, v any) (*http.Response, []byte) {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(http.MethodPost, path, "application/json", bytes.NewReader(b))
}

func (e *env) postJSONAs(cred, path string, v any) (*http.Response, []byte) {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.doAs(cred, http.MethodPost, path, "application/json", bytes.NewReader(b))
}

// providerDouble is a provider account and its endorsement key.
type providerDouble struct {
	id   string
	cred string
	key  ed25519.PrivateKey
}

// endorse signs worker id's keys in bundle b.
func (p *providerDouble) endorse(id string, b []byte) []byte {
	pb, err := proto.ParseBundle(b)
	if err != nil {
		panic(err)
	}
	return ed25519.Sign(p.key, proto.EndorsementMessage(id, pb.KeysHash()))
}

// newProvider creates provider id through the admin API and registers a
// fresh endorsement key for it.
func (e *env) newProvider(id string) *providerDouble {
	e.t.Helper()
	resp, body := e.postJSON(proto.PathAdminProviders, proto.NewAccount{ID: id})
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("create provider %s: status %d: %s", id, resp.StatusCode, body)
	}
	var acct proto.Account
	if err := json.Unmarshal(body, &acct); err != nil {
		e.t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	b, _ := json.Marshal(proto.ProviderKey{PublicKey: pub})
	resp, body = e.doAs(acct.Credential, http.MethodPut, proto.PathProviderKey, "application/json", bytes.NewReader(b))
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("provider key %s: status %d: %s", id, resp.StatusCode, body)
	}
	return &providerDouble{id: id, cred: acct.Credential, key: key}
}

// newTenant creates tenant id with limits a through the admin API and
// returns its credential.
func (e *env) newTenant(id string, a proto.NewAccount) string {
	e.t.Helper()
	a.ID = id
	resp, body := e.postJSON(proto.PathAdminTenants, a)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("create tenant %s: status %d: %s", id, resp.StatusCode, body)
	}
	var acct proto.Account
	if err := json.Unmarshal(body, &acct); err != nil {
		e.t.Fatal(err)
	}
	return acct.Credential
}

// register admits w for tasks and fails the test if it is refused.
func (e *env) register(w *workerDouble, tasks ...string) proto.Admission {
	e.t.Helper()
	p := w.provider
	if p == nil {
		p = e.provider
	}
	resp, body := e.postJSONAs(p.cred, proto.PathRegister, e.registration(w, tasks...))
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("register %s: status %d: %s", w.id, resp.StatusCode, body)
	}
	var adm proto.Admission
	if err := json.Unmarshal(body, &adm); err != nil {
		e.t.Fatal(err)
	}
	return adm
}

// candidates lists the candidates for task, verifying each bundle as a
// client would, and returns them by worker id.
func (e *env) candidates(task string) map[string]*attestation.Verified {
	e.t.Helper()
	resp, body := e.do(http.MethodGet, proto.PathCandidates+"?task="+task, "", nil)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("candidates: status %d: %s", resp.StatusCode, body)
	}
	var list proto.CandidateList
	if err := json.Unmarshal(body, &list); err != nil {
		e.t.Fatal(err)
	}
	out := make(map[string]*attestation.Verified)
	for _, c := range list.Candidates {
		v, err := attestation.Verify(c.Bundle, policy.InsecureSimulated(), attestation.Options{Now: e.clock.Now()})
		if err != nil {
			e.t.Fatalf("candidate %s: %v", c.WorkerID, err)
		}
		out[c.WorkerID] = v
	}
	return out
}

// seal seals payload for task to keys, at the env's clock.
func (e *env) seal(task, payload string, keys ...proto.HPKEKey) *seal.Request {
	e.t.Helper()
	req, err := seal.Seal(suite, keys, task, []byte(payload), seal.Options{Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return req
}

// relay sends a sealed request; the caller reads and closes the response.
func (e *env) relay(req *seal.Request) *http.Response {
	e.t.Helper()
	return e.relayAs(e.tenant, req)
}

func (e *env) relayAs(cred string, req *seal.Request) *http.Response {
	e.t.Helper()
	hr, err := http.NewRequest(http.MethodPost, e.url+proto.PathRequests, bytes.NewReader(req.Bytes()))
	if err != nil {
		e.t.Fatal(err)
	}
	hr.Header.Set("Content-Type", proto.MediaTypeRequest)
	hr.Header.Set("Authorization", "Bearer "+cred)
	resp, err := e.client.Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// events opens a sealed response and reads it to its end.
func openEvents(req *seal.Request, body io.Reader) (candidate int, events []proto.Event, err error) {
	resp, err := req.OpenResponse(body)
	if err != nil {
		return 0, nil, err
	}
	for {
		ev, err := resp.Next()
		if errors.Is(err, io.EOF) {
			return resp.Candidate(), events, nil
		}
		if err != nil {
			return resp.Candidate(), events, err
		}
		events = append(events, ev)
	}
}

// relayOK relays req and checks that the worker named want answered it
// in full with the double's echo.
func (e *env) relayOK(req *seal.Request, payload string, want *workerDouble) {
	e.t.Helper()
	resp := e.relay(req)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("relay: status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != proto.MediaTypeResponse {
		e.t.Fatalf("relay Content-Type: found %q, want %q", ct, proto.MediaTypeResponse)
	}
	if got := resp.Header.Get(proto.HeaderWorker); got != want.id {
		e.t.Fatalf("relay %s: found %q, want %q", proto.HeaderWorker, got, want.id)
	}
	idx, events, err := openEvents(req, resp.Body)
	if err != nil {
		e.t.Fatalf("opening the response: %v", err)
	}
	if kid := req.Header().Candidates[idx].KeyID; !want.holds(kid) {
		e.t.Fatalf("response from candidate %d, which is not a key of %s", idx, want.id)
	}
	checkEcho(e.t, events, payload)
}

func checkEcho(t *testing.T, events []proto.Event, payload string) {
	t.Helper()
	if len(events) != 2 || events[0].Type != proto.EventData || string(events[0].Data) != "echo: "+payload || events[1].Type != proto.EventEnd {
		t.Fatalf("events: found %v, want data %q then end", events, "echo: "+payload)
	}
	var end proto.EndBody
	if err := json.Unmarshal(events[1].Data, &end); err != nil || end.Backend != "test-double" {
		t.Fatalf("end event: found %s (%v), want backend test-double", events[1].Data, err)
	}
}

// workerDouble is a TEST DOUBLE of a worker, not the real enclave: a
// net/http server on 127.0.0.1 that opens forwarded requests with
// seal.NewOpener and answers through Opened.NewResponseWriter, with
// INSECURE simulated evidence from attestation/sim. It echoes the payload,
// except for these payloads:
//
//	"hold"  signals held, then waits for release before answering
//	"break" sends one chunk of the response and ends without the final one
type workerDouble struct {
	t       *testing.T
	id      string
	clock   *clock
	srv     *httptest.Server
	url     string
	signing ed25519.PublicKey
	// provider endorses the worker; nil means the env's p1. capacity is
	// what it advertises; tlsPin is its certificate's pin, "" on plain
	// HTTP.
	provider *providerDouble
	capacity int
	tlsPin   string

	mu     sync.Mutex // guards keys and opener
	keys   []*seal.PrivateKey
	opener *seal.Opener

	fail    atomic.Bool  // answer 500 without reading the request
	hits    atomic.Int32 // requests received on PathServe
	held    chan struct{}
	release chan struct{}
	closed  atomic.Bool
}

func newWorkerDouble(t *testing.T, id string, c *clock) *workerDouble {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w := &workerDouble{t: t, id: id, clock: c, signing: pub, capacity: 4, held: make(chan struct{}, 8), release: make(chan struct{})}
	w.rotate()
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	w.url = w.srv.URL
	t.Cleanup(w.close)
	return w
}

// rotate gives the worker a new key; requests sealed to earlier keys still
// open, as they do on a worker during its re-attestation overlap.
func (w *workerDouble) rotate() {
	w.t.Helper()
	k, err := seal.GenerateKey(suite.KEM)
	if err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.keys = append(w.keys, k)
	w.opener, err = seal.NewOpener(seal.OpenerConfig{Keys: w.keys, Now: w.clock.Now})
	if err != nil {
		w.t.Fatal(err)
	}
}

// share makes w hold other's current key too (and present it in bundles).
func (w *workerDouble) share(other *workerDouble) {
	other.mu.Lock()
	k := other.keys[len(other.keys)-1]
	other.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.keys = append(w.keys, k)
	var err error
	w.opener, err = seal.NewOpener(seal.OpenerConfig{Keys: w.keys, Now: w.clock.Now})
	if err != nil {
		w.t.Fatal(err)
	}
}

// key returns the worker's current public key.
func (w *workerDouble) key() proto.HPKEKey {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.keys[len(w.keys)-1].Public()
}

func (w *workerDouble) holds(id proto.KeyID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range w.keys {
		if k.ID() == id {
			return true
		}
	}
	return false
}

// bundle returns simulated evidence binding the current key and nonce,
// stamped by the shared clock.
func (w *workerDouble) bundle(nonce [proto.NonceSize]byte) []byte {
	w.t.Helper()
	b := proto.Bundle{Kind: policy.KindSim, Nonce: nonce, Keys: proto.WorkerKeys{HPKE: []proto.HPKEKey{w.key()}, Signing: w.signing}}
	b.Report = sim.NewDevice(sim.DeviceConfig{Now: w.clock.Now}).Report(b.ReportData())
	raw, err := b.Marshal()
	if err != nil {
		w.t.Fatal(err)
	}
	return raw
}

// close stops the double's server: later connections are refused.
func (w *workerDouble) close() {
	if w.closed.CompareAndSwap(false, true) {
		w.srv.Close()
	}
}

func (w *workerDouble) serve(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != proto.PathServe {
		http.Error(rw, "not found", http.StatusNotFound)
		return
	}
	w.hits.Add(1)
	if w.fail.Load() {
		http.Error(rw, "test double told to fail", http.StatusInternalServerError)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != proto.MediaTypeForward {
		http.Error(rw, "wrong content type", http.StatusUnsupportedMediaType)
		return
	}
	w.mu.Lock()
	op := w.opener
	w.mu.Unlock()
	opened, err := op.Open(r.Body)
	if err != nil {
		http.Error(rw, "cannot open", http.StatusBadRequest)
		return
	}
	payload := string(opened.Payload)
	if payload == "hold" {
		w.held <- struct{}{}
		select {
		case <-w.release:
		case <-r.Context().Done():
			return
		}
	}
	rw.Header().Set("Content-Type", proto.MediaTypeResponse)
	out, err := opened.NewResponseWriter(rw, http.NewResponseController(rw).Flush, 0)
	if err != nil {
		return
	}
	if payload == "break" {
		out.WriteEvent(proto.Event{Type: proto.EventData, Data: bytes.Repeat([]byte("x"), 2*proto.ResponseChunkData)})
		out.Abort()
		return
	}
	if err := out.WriteEvent(proto.Event{Type: proto.EventData, Data: []byte("echo: " + payload)}); err != nil {
		out.Abort()
		return
	}
	end, _ := json.Marshal(proto.EndBody{Backend: "test-double", Model: "echo"})
	out.Finish(proto.Event{Type: proto.EventEnd, Data: end})
}

// relayInBackground relays req from a goroutine and reports on the
// returned channel whether the response echoed payload in full. It does
// not call t.Fatal, which must not run outside the test's goroutine.
func (e *env) relayInBackground(req *seal.Request, payload string) <-chan error {
	hr, err := http.NewRequest(http.MethodPost, e.url+proto.PathRequests, bytes.NewReader(req.Bytes()))
	if err != nil {
		e.t.Fatal(err)
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
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Errorf("status %d", resp.StatusCode)
			return
		}
		_, events, err := openEvents(req, resp.Body)
		if err == nil && (len(events) != 2 || string(events[0].Data) != "echo: "+payload) {
			err = fmt.Errorf("events: found %v, want the echo of %q", events, payload)
		}
		done <- err
	}()
	return done
}

// attestingWorker is a workerDouble that also answers the gateway's
// re-attestation challenges (proto.PathAttest: it rotates its key and
// returns evidence bound to the challenge, endorsed by its provider) and
// strict-mode quotes (proto.PathQuote: evidence of its current keys bound
// to the client's nonce), as sealgate-worker does. Served with mutual TLS
// (newMTLSWorker), it presents its own self-signed certificate and serves
// only clients presenting the gateway's certificate.
type attestingWorker struct {
	*workerDouble
	endorser *providerDouble

	failAttest atomic.Bool  // answer PathAttest with 500
	wrongNonce atomic.Bool  // bind attestations to a nonce other than the challenge's
	attests    atomic.Int32 // PathAttest calls received
	quotes     atomic.Int32 // PathQuote calls received
}

// newAttestingWorker starts an attestingWorker on plain HTTP, endorsed by
// p (nil means the env's p1).
func newAttestingWorker(t *testing.T, e *env, id string, p *providerDouble) *attestingWorker {
	t.Helper()
	return e.startAttestingWorker(id, p, false)
}

// newMTLSWorker starts an attestingWorker that serves TLS and admits only
// clients whose certificate is the gateway's (e.cert), pinned as
// sealgate-worker pins it at enrollment. Its tlsPin and https URL go into
// its registration.
func newMTLSWorker(t *testing.T, e *env, id string, p *providerDouble) *attestingWorker {
	t.Helper()
	return e.startAttestingWorker(id, p, true)
}

func (e *env) startAttestingWorker(id string, p *providerDouble, mtls bool) *attestingWorker {
	t := e.t
	t.Helper()
	if p == nil {
		p = e.provider
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w := &workerDouble{
		t: t, id: id, clock: e.clock, signing: pub, capacity: 4, provider: p,
		held: make(chan struct{}, 8), release: make(chan struct{}),
	}
	w.rotate()
	a := &attestingWorker{workerDouble: w, endorser: p}
	w.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.route))
	if mtls {
		cert, err := tlspin.SelfSigned(nil, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		gatewayPin := tlspin.PinOf(e.cert.Leaf)
		w.srv.TLS = tlspin.ServerConfig(cert, func() []tlspin.Pin { return []tlspin.Pin{gatewayPin} })
		w.srv.StartTLS()
		w.tlsPin = tlspin.PinOf(cert.Leaf).String()
	} else {
		w.srv.Start()
	}
	w.url = w.srv.URL
	t.Cleanup(w.close)
	return a
}

func (a *attestingWorker) route(rw http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == proto.PathAttest:
		a.attest(rw, r)
	case r.Method == http.MethodPost && r.URL.Path == proto.PathQuote:
		a.quote(rw, r)
	default:
		a.serve(rw, r)
	}
}

// attest answers a re-attestation challenge. It runs on the server's
// goroutines, so it reports problems to the gateway, never to t.
func (a *attestingWorker) attest(rw http.ResponseWriter, r *http.Request) {
	a.attests.Add(1)
	if a.failAttest.Load() {
		http.Error(rw, "test double told to fail attestation", http.StatusInternalServerError)
		return
	}
	var ch proto.Challenge
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&ch); err != nil {
		http.Error(rw, "bad challenge", http.StatusBadRequest)
		return
	}
	if len(ch.Nonce) != proto.NonceSize || proto.AnchoredNonce(ch.Anchor) != [proto.NonceSize]byte(ch.Nonce) {
		http.Error(rw, "the challenge's nonce does not derive from its anchor", http.StatusBadRequest)
		return
	}
	if err := a.rotateKey(); err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	nonce, anchor := [proto.NonceSize]byte(ch.Nonce), ch.Anchor
	if a.wrongNonce.Load() {
		rand.Read(nonce[:])
		anchor = nil
	}
	b, err := a.makeBundle(nonce, anchor)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(proto.Attestation{Bundle: b, Endorsement: a.endorser.endorse(a.id, b)})
}

// quote answers a strict-mode evidence request with evidence of the
// current keys bound to the client's nonce.
func (a *attestingWorker) quote(rw http.ResponseWriter, r *http.Request) {
	a.quotes.Add(1)
	var req proto.EvidenceRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || len(req.Nonce) != proto.NonceSize {
		http.Error(rw, "bad evidence request", http.StatusBadRequest)
		return
	}
	b, err := a.makeBundle([proto.NonceSize]byte(req.Nonce), nil)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(proto.Evidence{Bundle: b})
}

// rotateKey is rotate without t: requests sealed to earlier keys still
// open.
func (a *attestingWorker) rotateKey() error {
	k, err := seal.GenerateKey(suite.KEM)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := append(a.keys[:len(a.keys):len(a.keys)], k) // a copy: the old slice may be in use
	op, err := seal.NewOpener(seal.OpenerConfig{Keys: keys, Now: a.clock.Now})
	if err != nil {
		return err
	}
	a.keys, a.opener = keys, op
	return nil
}

// makeBundle is bundle without t, with an optional time anchor.
func (a *attestingWorker) makeBundle(nonce [proto.NonceSize]byte, anchor []byte) ([]byte, error) {
	b := proto.Bundle{Kind: policy.KindSim, Nonce: nonce, Anchor: anchor, Keys: proto.WorkerKeys{HPKE: []proto.HPKEKey{a.key()}, Signing: a.signing}}
	b.Report = sim.NewDevice(sim.DeviceConfig{Now: a.clock.Now}).Report(b.ReportData())
	return b.Marshal()
}

// doJSON sends v as JSON with credential cred and decodes a 2xx answer
// into out (if not nil). It returns the response and its body.
func (e *env) doJSON(cred, method, path string, v, out any) (*http.Response, []byte) {
	e.t.Helper()
	var body io.Reader
	ct := ""
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			e.t.Fatal(err)
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, got := e.doAs(cred, method, path, ct, body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(got, out); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", method, path, got, err)
		}
	}
	return resp, got
}

// wantError checks that resp is an error with status and code.
func wantError(t *testing.T, what string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || errorCode(body) != code {
		t.Fatalf("%s: found %d %s, want %d %s", what, resp.StatusCode, body, status, code)
	}
}

// listing returns the candidates for task listed to the tenant with
// credential cred, as sent (max 0 means the gateway's default).
func (e *env) listing(cred, task string, max int) []proto.CandidateInfo {
	e.t.Helper()
	path := proto.PathCandidates + "?task=" + task
	if max > 0 {
		path += fmt.Sprintf("&max=%d", max)
	}
	var list proto.CandidateList
	resp, body := e.doJSON(cred, http.MethodGet, path, nil, &list)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("candidates: status %d: %s", resp.StatusCode, body)
	}
	return list.Candidates
}

// listedIDs returns the worker ids of cs, in order.
func listedIDs(cs []proto.CandidateInfo) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.WorkerID
	}
	return out
}

// status returns /v1/status for a tenant credential, or /v1/admin/status
// for the admin's.
func (e *env) status(cred string) proto.Status {
	e.t.Helper()
	path := proto.PathStatus
	if cred == e.admin {
		path = proto.PathAdminStatus
	}
	var st proto.Status
	resp, body := e.doJSON(cred, http.MethodGet, path, nil, &st)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("status: %d %s", resp.StatusCode, body)
	}
	return st
}

// workerStatus returns worker id as the admin status shows it, and
// whether it is there.
func (e *env) workerStatus(id string) (proto.WorkerStatus, bool) {
	e.t.Helper()
	for _, ws := range e.status(e.admin).Workers {
		if ws.WorkerID == id {
			return ws, true
		}
	}
	return proto.WorkerStatus{}, false
}

// createPool creates a pool through the admin API.
func (e *env) createPool(spec proto.PoolSpec) proto.PoolStatus {
	e.t.Helper()
	var ps proto.PoolStatus
	resp, body := e.doJSON(e.admin, http.MethodPost, proto.PathAdminPools, spec, &ps)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("create pool %s: status %d: %s", spec.ID, resp.StatusCode, body)
	}
	return ps
}

// relayRefused relays req as the tenant with credential cred and returns
// the error status, code and Retry-After; it fails the test if the relay
// succeeds.
func (e *env) relayRefused(cred string, req *seal.Request) (status int, code, retryAfter string) {
	e.t.Helper()
	resp := e.relayAs(cred, req)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		e.t.Fatalf("relay: found 200, want a refusal")
	}
	return resp.StatusCode, errorCode(body), resp.Header.Get("Retry-After")
}

// relayOKAs is relayOK for the tenant with credential cred.
func (e *env) relayOKAs(cred string, req *seal.Request, payload string, want *workerDouble) {
	e.t.Helper()
	saved := e.tenant
	e.tenant = cred
	defer func() { e.tenant = saved }()
	e.relayOK(req, payload, want)
}

// relayInBackgroundAs is relayInBackground for the tenant with credential
// cred.
func (e *env) relayInBackgroundAs(cred string, req *seal.Request, payload string) <-chan error {
	saved := e.tenant
	e.tenant = cred
	defer func() { e.tenant = saved }()
	return e.relayInBackground(req, payload)
}

// metrics returns the gateway's /metrics page, fetched without a
// credential.
func (e *env) metrics() string {
	e.t.Helper()
	resp, body := e.doAs("", http.MethodGet, proto.PathMetrics, "", nil)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("metrics: status %d: %s", resp.StatusCode, body)
	}
	return string(body)
}

// metricValue returns the value of the sample of series (its name and
// labels exactly as exposed, such as `x_total{reason="y"}`) on page, and
// whether it is there.
func metricValue(page, series string) (float64, bool) {
	for _, line := range strings.Split(page, "\n") {
		rest, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(rest, &v); err != nil {
			return 0, false
		}
		return v, true
	}
	return 0, false
}
