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
