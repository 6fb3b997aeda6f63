// Package gatewaytest is a test double of the sealgate gateway, for the
// client's tests and examples. INSECURE: its workers are simulated-TEE
// workers that live in the same process, so nothing it serves is
// confidential.
//
// A Gateway serves, on 127.0.0.1 over https with a self-signed
// certificate (or plain http), the client half of the gateway API:
// proto.PathCandidates lists its workers with their bundles and provider
// endorsements, proto.PathRequests opens a sealed request with the first
// listed worker that holds one of its candidate keys and streams the
// sealed answer back (for chat, by default, an echo of the last user
// message, word by word), proto.PathEvidence has a worker make evidence bound
// to the client's nonce, and proto.PathStatus answers a fixed status.
// Every call must carry Config.Credential as a bearer token. Hooks let a
// test make it misbehave: fail with a status, list something else, answer
// strict-mode evidence with a different bundle, cut the response stream.
//
// It does no routing, metering, pooling or rate limiting of its own; it
// plays only what the client can observe.
package gatewaytest

import (
	"bytes"
	"cmp"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/enclave/builtin"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// Provider is a GPU owner with an endorsement key.
type Provider struct {
	ID  string
	Key ed25519.PrivateKey
}

// NewProvider returns a provider with a fresh key.
func NewProvider(id string) *Provider {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return &Provider{ID: id, Key: k}
}

// PublicKey returns the provider's endorsement public key.
func (p *Provider) PublicKey() ed25519.PublicKey { return p.Key.Public().(ed25519.PublicKey) }

// Endorse signs the endorsement of bundle's keys for workerID.
func (p *Provider) Endorse(workerID string, bundle []byte) ([]byte, error) {
	b, err := proto.ParseBundle(bundle)
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(p.Key, proto.EndorsementMessage(workerID, b.KeysHash())), nil
}

// Worker is a simulated-TEE worker endorsed by its provider.
type Worker struct {
	ID       string
	Provider *Provider
	// Bundle is the listed evidence, made when the worker was.
	Bundle []byte
	// Endorsement is Provider's endorsement of Bundle's keys.
	Endorsement []byte
	// Tasks are the tasks it is listed for. Nil means summarize and
	// translate.
	Tasks []string
	// Models are the models it is listed with. Nil lists none.
	Models []string

	keys    *seal.PrivateKey
	signing ed25519.PublicKey
	device  *sim.Device
	opener  *seal.Opener
	models  []proto.ModelDigest // bound in its evidence
}

// NewWorker makes a worker with fresh keys (ML-KEM-768+X25519) and a
// simulated-TEE bundle stamped now(), endorsed by p. Nil now means
// time.Now.
func NewWorker(id string, p *Provider, now func() time.Time) (*Worker, error) {
	if now == nil {
		now = time.Now
	}
	k, err := seal.GenerateKey(proto.KEMMLKEM768X25519)
	if err != nil {
		return nil, err
	}
	signing, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	opener, err := seal.NewOpener(seal.OpenerConfig{Keys: []*seal.PrivateKey{k}, Now: now})
	if err != nil {
		return nil, err
	}
	w := &Worker{ID: id, Provider: p, keys: k, signing: signing, device: sim.NewDevice(sim.DeviceConfig{Now: now}), opener: opener}
	var nonce [proto.NonceSize]byte
	rand.Read(nonce[:])
	if w.Bundle, err = w.Evidence(nonce); err != nil {
		return nil, err
	}
	if w.Endorsement, err = p.Endorse(id, w.Bundle); err != nil {
		return nil, err
	}
	return w, nil
}

// BindModels remakes the worker's evidence (and its endorsement) with
// its keys binding models, sorted by name, as a worker serving them does.
// Its answers then name the digest bound for the model they name, as the
// real worker sets proto.EndBody.ModelDigest; with Config.Reply, the end
// summary is sent exactly as Reply gives it, so a test can make it lie.
func (w *Worker) BindModels(models ...proto.ModelDigest) error {
	w.models = slices.SortedFunc(slices.Values(models), func(a, b proto.ModelDigest) int { return strings.Compare(a.Name, b.Name) })
	var nonce [proto.NonceSize]byte
	rand.Read(nonce[:])
	var err error
	if w.Bundle, err = w.Evidence(nonce); err != nil {
		return err
	}
	w.Endorsement, err = w.Provider.Endorse(w.ID, w.Bundle)
	return err
}

// Evidence returns a new simulated bundle of the worker's keys bound to
// nonce, as the worker makes for a strict-mode client.
func (w *Worker) Evidence(nonce [proto.NonceSize]byte) ([]byte, error) {
	return w.EvidenceOf(w.keys.Public(), nonce)
}

// EvidenceOf returns a simulated bundle binding key (which need not be
// the worker's) and nonce.
func (w *Worker) EvidenceOf(key proto.HPKEKey, nonce [proto.NonceSize]byte) ([]byte, error) {
	b := proto.Bundle{Kind: "sim", Nonce: nonce, Keys: proto.WorkerKeys{HPKE: []proto.HPKEKey{key}, Signing: w.signing, Models: w.models}}
	b.Report = w.device.Report(b.ReportData())
	return b.Marshal()
}

// Info returns the worker's listing entry.
func (w *Worker) Info() proto.CandidateInfo {
	tasks := w.Tasks
	if tasks == nil {
		tasks = []string{proto.TaskSummarize, proto.TaskTranslate}
	}
	return proto.CandidateInfo{
		WorkerID: w.ID, Tasks: tasks, Bundle: w.Bundle,
		ProviderID: w.Provider.ID, ProviderKey: w.Provider.PublicKey(), Endorsement: w.Endorsement,
		Region: "test", Capacity: 4, Models: w.Models,
	}
}

// Config configures a Gateway. Every field is optional.
type Config struct {
	// Credential is the bearer token every call must carry. Empty means
	// calls need none.
	Credential string
	// Workers are listed in order and serve requests.
	Workers []*Worker
	// Listing, when set, replaces the workers' own listing entries.
	Listing []proto.CandidateInfo
	// PlainHTTP serves plain http instead of https.
	PlainHTTP bool
	// Fail, when set, is asked first on every call; a non-zero status is
	// answered with a JSON error and, if not empty, Retry-After.
	Fail func(path string) (status int, retryAfter string)
	// Evidence, when set, answers strict-mode evidence requests instead of
	// the named worker.
	Evidence func(w *Worker, nonce [proto.NonceSize]byte) ([]byte, error)
	// Output computes a task's output. Nil means the builtin extractive
	// summarizer for summarize, EchoChat for chat, and an error for other
	// tasks.
	Output func(task string, payload []byte) (string, error)
	// Reply, when set, computes a task's output as the pieces a streaming
	// backend emits, one data event each, and the end event's summary,
	// instead of Output.
	Reply func(task string, payload []byte) (pieces []string, end proto.EndBody, err error)
	// CutAfter, when positive, sends only that many bytes of the sealed
	// response stream. The body then ends cleanly, or, with Abort, the
	// connection is reset.
	CutAfter int
	Abort    bool
	// Status is what proto.PathStatus answers.
	Status proto.Status
}

// EventSize is the most output one data event carries, as a streaming
// backend emits it piece by piece.
const EventSize = 512

// Gateway is a running test double.
type Gateway struct {
	// URL is its base URL.
	URL string
	// CertPEM is its self-signed TLS certificate, for Config.GatewayCA
	// (empty with PlainHTTP).
	CertPEM []byte

	cfg Config
	srv *httptest.Server

	mu     sync.Mutex // guards calls and auth
	calls  map[string]int
	auth   []string
	served []string
}

// Start starts a Gateway on 127.0.0.1. Close stops it.
func Start(cfg Config) *Gateway {
	g := &Gateway{cfg: cfg, calls: make(map[string]int)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+proto.PathCandidates, g.candidates)
	mux.HandleFunc("POST "+proto.PathRequests, g.requests)
	mux.HandleFunc("POST "+proto.PathEvidence, g.evidence)
	mux.HandleFunc("GET "+proto.PathStatus, g.status)
	h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.calls[r.URL.Path]++
		g.auth = append(g.auth, r.Header.Get(proto.HeaderAuthorization))
		g.mu.Unlock()
		if cfg.Credential != "" && r.Header.Get(proto.HeaderAuthorization) != "Bearer "+cfg.Credential {
			writeError(rw, http.StatusUnauthorized, "unauthorized", "missing or unknown credential")
			return
		}
		if cfg.Fail != nil {
			if status, ra := cfg.Fail(r.URL.Path); status != 0 {
				if ra != "" {
					rw.Header().Set("Retry-After", ra)
				}
				writeError(rw, status, "test_failure", "the test double was told to fail")
				return
			}
		}
		mux.ServeHTTP(rw, r)
	})
	if cfg.PlainHTTP {
		g.srv = httptest.NewServer(h)
	} else {
		cert, err := selfSigned()
		if err != nil {
			panic(err) // crypto/rand and crypto/x509 do not fail here
		}
		g.srv = httptest.NewUnstartedServer(h)
		g.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // clients refusing the certificate are expected
		g.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		g.srv.EnableHTTP2 = true
		g.srv.StartTLS()
		g.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	}
	g.URL = g.srv.URL
	return g
}

// selfSigned makes a fresh self-signed certificate for 127.0.0.1, ::1 and
// localhost, as a development gateway does: every Gateway has its own, so
// one gateway's certificate does not vouch for another.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now() // certificate validity is checked against the wall clock by crypto/tls
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "sealgate gatewaytest"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Close stops the gateway and waits for its handlers.
func (g *Gateway) Close() { g.srv.Close() }

// Calls returns how many calls reached path.
func (g *Gateway) Calls(path string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[path]
}

// Authorizations returns the Authorization header of every call, in order.
func (g *Gateway) Authorizations() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.auth...)
}

// Served returns the ids of the workers that served requests, in order.
func (g *Gateway) Served() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.served...)
}

func (g *Gateway) candidates(rw http.ResponseWriter, r *http.Request) {
	list := proto.CandidateList{Candidates: g.cfg.Listing}
	if list.Candidates == nil {
		task := r.URL.Query().Get("task")
		for _, w := range g.cfg.Workers {
			if info := w.Info(); slices.Contains(info.Tasks, task) {
				list.Candidates = append(list.Candidates, info)
			}
		}
	}
	writeJSON(rw, list)
}

func (g *Gateway) status(rw http.ResponseWriter, r *http.Request) { writeJSON(rw, g.cfg.Status) }

func (g *Gateway) evidence(rw http.ResponseWriter, r *http.Request) {
	var req proto.EvidenceRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || len(req.Nonce) != proto.NonceSize {
		writeError(rw, http.StatusBadRequest, "bad_request", "want an EvidenceRequest with a 32-byte nonce")
		return
	}
	w := g.worker(req.WorkerID)
	if w == nil {
		writeError(rw, http.StatusNotFound, "unknown_worker", "no such worker")
		return
	}
	nonce := [proto.NonceSize]byte(req.Nonce)
	var bundle []byte
	var err error
	if g.cfg.Evidence != nil {
		bundle, err = g.cfg.Evidence(w, nonce)
	} else {
		bundle, err = w.Evidence(nonce)
	}
	if err != nil {
		writeError(rw, http.StatusBadGateway, "upstream_failed", "the worker made no evidence")
		return
	}
	writeJSON(rw, proto.Evidence{Bundle: bundle})
}

func (g *Gateway) worker(id string) *Worker {
	for _, w := range g.cfg.Workers {
		if w.ID == id {
			return w
		}
	}
	return nil
}

// requests forwards the sealed request, as the gateway does, to the first
// worker holding one of its candidate keys, and sends back its answer.
func (g *Gateway) requests(rw http.ResponseWriter, r *http.Request) {
	body := io.LimitReader(r.Body, proto.MaxRequestPlaintext+1<<20)
	pre, err := proto.ReadRequestPreamble(body)
	if err != nil {
		writeError(rw, http.StatusBadRequest, "bad_request", "malformed request preamble")
		return
	}
	chunks, err := io.ReadAll(body)
	if err != nil {
		writeError(rw, http.StatusBadRequest, "bad_request", "request body could not be read")
		return
	}
	for i, c := range pre.Header.Candidates {
		for _, w := range g.cfg.Workers {
			if w.keys.ID() != c.KeyID {
				continue
			}
			fwd := proto.AppendForwardPreamble(nil, pre.HeaderBytes, i, pre.Wraps[i])
			opened, err := w.opener.Open(io.MultiReader(bytes.NewReader(fwd), bytes.NewReader(chunks)))
			if err != nil {
				writeError(rw, http.StatusBadGateway, "upstream_failed", "the worker refused the request")
				return
			}
			g.mu.Lock()
			g.served = append(g.served, w.ID)
			g.mu.Unlock()
			g.answer(rw, opened, w)
			return
		}
	}
	writeError(rw, http.StatusNotFound, "unknown_candidates", "no candidate key belongs to a worker")
}

// answer runs the task and sends the sealed stream, cut if told to.
func (g *Gateway) answer(rw http.ResponseWriter, opened *seal.Opened, w *Worker) {
	var stream bytes.Buffer
	resp, err := opened.NewResponseWriter(&stream, nil, time.Hour)
	if err != nil {
		writeError(rw, http.StatusInternalServerError, "internal", "response")
		return
	}
	pieces, end, err := g.reply(opened.Header.Task, opened.Payload)
	var final proto.Event
	if err != nil {
		data, _ := json.Marshal(proto.ErrorBody{Code: "bad_request", Message: err.Error()})
		final = proto.Event{Type: proto.EventError, Data: data}
	} else {
		for _, p := range pieces {
			if err := resp.WriteEvent(proto.Event{Type: proto.EventData, Data: []byte(p)}); err != nil {
				writeError(rw, http.StatusInternalServerError, "internal", "response")
				return
			}
		}
		if g.cfg.Reply == nil {
			for _, m := range w.models {
				if m.Name == end.Model {
					end.ModelDigest = proto.FormatModelDigest(m.SHA256)
				}
			}
		}
		data, _ := json.Marshal(end)
		final = proto.Event{Type: proto.EventEnd, Data: data}
	}
	if err := resp.Finish(final); err != nil {
		writeError(rw, http.StatusInternalServerError, "internal", "response")
		return
	}
	b := stream.Bytes()
	if g.cfg.CutAfter > 0 && g.cfg.CutAfter < len(b) {
		b = b[:g.cfg.CutAfter]
	} else if g.cfg.CutAfter > 0 {
		panic(fmt.Sprintf("gatewaytest: CutAfter %d is not below the stream's %d bytes", g.cfg.CutAfter, len(b)))
	}
	rw.Header().Set("Content-Type", proto.MediaTypeResponse)
	rw.WriteHeader(http.StatusOK)
	rw.Write(b)
	if g.cfg.CutAfter > 0 && g.cfg.Abort {
		http.NewResponseController(rw).Flush()
		panic(http.ErrAbortHandler) // reset the connection: no clean end of the body
	}
}

// reply computes a task's pieces and end summary: Config.Reply's, or
// output's cut into EventSize pieces.
func (g *Gateway) reply(task string, payload []byte) ([]string, proto.EndBody, error) {
	if g.cfg.Reply != nil {
		return g.cfg.Reply(task, payload)
	}
	if g.cfg.Output == nil && task == proto.TaskChat {
		return EchoChat(payload)
	}
	out, err := g.output(task, payload)
	if err != nil {
		return nil, proto.EndBody{}, err
	}
	var pieces []string
	for len(out) > 0 {
		n := min(len(out), EventSize)
		pieces = append(pieces, out[:n])
		out = out[n:]
	}
	return pieces, proto.EndBody{Backend: "gatewaytest", Model: "test-double"}, nil
}

// EchoChat is the double's chat: it answers "You said: " and the last
// user message, one word per piece, and names the requested model (or
// "echo-double") with the words in and out as its units.
func EchoChat(payload []byte) ([]string, proto.EndBody, error) {
	var req proto.ChatRequest
	if err := proto.DecodeTask(payload, &req); err != nil || len(req.Messages) == 0 {
		return nil, proto.EndBody{}, errors.New("chat payload does not decode")
	}
	var in int64
	for _, m := range req.Messages {
		in += int64(len(strings.Fields(m.Content)))
	}
	words := append([]string{"You", "said:"}, strings.Fields(req.Messages[len(req.Messages)-1].Content)...)
	pieces := make([]string, len(words))
	for i, w := range words {
		if i > 0 {
			w = " " + w
		}
		pieces[i] = w
	}
	return pieces, proto.EndBody{Backend: "gatewaytest", Model: cmp.Or(req.Model, "echo-double"), InputUnits: in, OutputUnits: int64(len(pieces))}, nil
}

func (g *Gateway) output(task string, payload []byte) (string, error) {
	if g.cfg.Output != nil {
		return g.cfg.Output(task, payload)
	}
	if task != proto.TaskSummarize {
		return "", fmt.Errorf("task %q is not served by the test double", task)
	}
	var req proto.SummarizeRequest
	if err := proto.DecodeTask(payload, &req); err != nil {
		return "", errors.New("summarize payload does not decode")
	}
	return builtin.Summarize(req.Text, builtin.SummarizeOptions{Sentences: req.Sentences, Ratio: req.Ratio})
}

func writeJSON(rw http.ResponseWriter, v any) {
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(v)
}

func writeError(rw http.ResponseWriter, status int, code, msg string) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	json.NewEncoder(rw).Encode(proto.ErrorResponse{Error: proto.ErrorBody{Code: code, Message: msg}})
}

// Credential returns a fresh tenant credential in the gateway's format.
func Credential() string {
	var b [32]byte
	rand.Read(b[:])
	return proto.CredentialTenant + base64.RawURLEncoding.EncodeToString(b[:])
}
