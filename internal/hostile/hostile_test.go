package hostile_test

// The hostile-gateway suite: for each thing a dishonest gateway operator
// can do to a client's traffic, the client SDK must fail with an error a
// caller can branch on, return no answer, and let no prompt canary reach
// its error, its logs or the operator; and where the attack is on whom to
// seal to, it must send nothing to a worker it did not verify.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/internal/hostile"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// sentences is how many sentences each summary asks for: enough for
// several response chunks.
const sentences = 30

// scene is one attack's state.
type scene struct {
	e     *env
	g     *hostile.Gateway
	c     *client.Client
	armed atomic.Bool // the attack's hooks act; before, the gateway is honest
	// logsBefore is the length of the network's logs when the attack
	// was armed.
	logsBefore int

	mu       sync.Mutex       // guards evidence
	evidence []proto.Evidence // strict mode's answers relayed before arming

	other *hostile.Response // a response the attack's prep captured
}

// prepared returns the requests and responses relayed so far, oldest
// first: the prep's come first, the attacked exchange's last.
func (s *scene) prepared() ([]*hostile.Request, []*hostile.Response) {
	return s.g.Requests(), s.g.Responses()
}

type attack struct {
	name     string
	listing  func(s *scene, list *proto.CandidateList)
	evidence func(s *scene, req proto.EvidenceRequest, relay func(proto.EvidenceRequest) (proto.Evidence, error)) (proto.Evidence, error)
	request  func(s *scene, sent *hostile.Request) *hostile.Request
	response func(s *scene, sent *hostile.Request, got *hostile.Response) *hostile.Response
	// prep runs before the attack is armed (honest requests whose
	// traffic the attack reuses).
	prep func(t *testing.T, s *scene)
	// client edits the client's configuration: K 2, both devnet
	// providers trusted, the simulated policy.
	client func(*client.Config)
	// sent: the client sends its sealed request. When false, no sealed
	// request may leave the client and no worker may be reached.
	sent bool
	want func(t *testing.T, s *scene, err error)
}

func runAttacks(t *testing.T, attacks []attack) {
	for _, tt := range attacks {
		t.Run(tt.name, func(t *testing.T) {
			// The honest network cutting a stream before the attack
			// touched it is no outcome of the attack: run it once more.
			if !runAttack(t, tt, false) {
				runAttack(t, tt, true)
			}
		})
	}
}

// runAttack runs one attack and checks its outcome. Unless last, it
// returns false without checking when the real gateway answered a sealed
// request with a stream that was not whole.
func runAttack(t *testing.T, tt attack, last bool) bool {
	e := shared
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := &scene{e: e}
	cfg := hostile.Config{Upstream: e.network.GatewayURL}
	cfg.Listing = func(list *proto.CandidateList) {
		// The real gateway shuffles its listing; in worker order, a K=2
		// client always seals to workers 1 (provider a) and 2 (provider
		// b), so splices and replays meet the same candidates and worker
		// 3 is never one.
		slices.SortFunc(list.Candidates, func(a, b proto.CandidateInfo) int { return strings.Compare(a.WorkerID, b.WorkerID) })
		if s.armed.Load() && tt.listing != nil {
			tt.listing(s, list)
		}
	}
	cfg.Evidence = func(req proto.EvidenceRequest, relay func(proto.EvidenceRequest) (proto.Evidence, error)) (proto.Evidence, error) {
		if s.armed.Load() && tt.evidence != nil {
			return tt.evidence(s, req, relay)
		}
		ev, err := relay(req)
		s.mu.Lock()
		s.evidence = append(s.evidence, ev)
		s.mu.Unlock()
		return ev, err
	}
	if tt.request != nil {
		cfg.Request = func(sent *hostile.Request) *hostile.Request {
			if s.armed.Load() {
				return tt.request(s, sent)
			}
			return sent
		}
	}
	if tt.response != nil {
		cfg.Response = func(sent *hostile.Request, got *hostile.Response) *hostile.Response {
			if s.armed.Load() {
				return tt.response(s, sent, got)
			}
			return got
		}
	}
	s.g = hostile.Start(cfg)
	defer s.g.Close()
	cc := client.Config{
		GatewayURL: s.g.URL, GatewayCA: s.g.CertPEM, Credential: e.network.TenantCredential,
		Policy: policy.InsecureSimulated(), K: 2, TrustedProviders: e.trusted,
	}
	if tt.client != nil {
		tt.client(&cc)
	}
	c, err := client.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	s.c = c
	if tt.prep != nil {
		tt.prep(t, s)
	}

	// The application around the client logs everything the client
	// gives it, as a careless caller would; the client itself must not
	// log, so the default logger is captured too.
	var appLogs lockedBuffer
	app := slog.New(slog.NewJSONHandler(&appLogs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(app)

	doc, canaries := document()
	servedBefore, requestsBefore := e.served(), s.g.Calls(proto.PathRequests)
	s.logsBefore = len(e.logs.Bytes())
	s.armed.Store(true)
	res, err := c.Summarize(ctx, doc, client.SummarizeOptions{Sentences: sentences})
	s.armed.Store(false)
	app.ErrorContext(ctx, "summarize failed", slog.Any("err", err), slog.Any("result", res), slog.Any("client", c))

	if n := s.g.Broken(); n > 0 {
		if !last {
			t.Logf("the real gateway cut %d streams before the attack could touch them; network logs:\n%s", n, e.logs.Bytes()[s.logsBefore:])
			return false
		}
		t.Errorf("the real gateway cut %d streams before the attack could touch them", n)
	}
	if res != nil {
		t.Fatalf("the client returned an answer (%d bytes, from %s) through an attacked exchange", len(res.Text), res.Worker.ID)
	}
	if err == nil {
		t.Fatal("the attack went unnoticed")
	}
	defer func() {
		if t.Failed() {
			t.Logf("network logs during the attack:\n%s", e.logs.Bytes()[s.logsBefore:])
		}
	}()
	tt.want(t, s, err)

	assertNoCanary(t, "the client's error", []byte(fmt.Sprintf("%v %+v %#v", err, err, err)), canaries)
	assertNoCanary(t, "the client's logs", appLogs.Bytes(), canaries)
	assertNoCanary(t, "what the hostile gateway saw", s.g.Seen(), canaries)
	assertNoCanary(t, "the gateway's and workers' logs", e.logs.Bytes()[s.logsBefore:], canaries)

	sent := s.g.Calls(proto.PathRequests) - requestsBefore
	if tt.sent && sent == 0 {
		t.Error("the client sent no sealed request, want one: the attack is on its answer")
	}
	// Workers 1 and 2 are the only candidates any attacked request is
	// sealed to (see the listing hook), so worker 3 must never be
	// forwarded one.
	if after := e.served(); after[2] != servedBefore[2] {
		t.Errorf("worker 3, never a candidate, was forwarded %d requests", after[2]-servedBefore[2])
	}
	if !tt.sent {
		if sent != 0 {
			t.Errorf("the client sent %d sealed requests, want none", sent)
		}
		if after := e.served(); !slices.Equal(after, servedBefore) {
			t.Errorf("workers served %v sealed requests, before the attack %v: a request reached a worker", after, servedBefore)
		}
	}
	for _, r := range s.g.Requests() {
		for i, cand := range r.Header.Candidates {
			if _, ok := e.genuine[cand.KeyID]; !ok {
				t.Errorf("a request was sealed to a key (candidate %d, %x…) that is no genuine worker's", i, cand.KeyID[:8])
			}
		}
	}
	return true
}

// is wants an error matching target.
func is(target error) func(*testing.T, *scene, error) {
	return func(t *testing.T, _ *scene, err error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Fatalf("err = %v (%T), want %v", err, err, target)
		}
	}
}

// forged wants seal.ErrAuthentication and nothing milder: a forged or
// misplaced chunk is not a truncation.
func forged(t *testing.T, s *scene, err error) {
	t.Helper()
	is(seal.ErrAuthentication)(t, s, err)
	if errors.Is(err, client.ErrTruncated) {
		t.Fatalf("err = %v, a forgery reported as a truncation", err)
	}
}

// truncated wants a *client.TruncatedError over seal.ErrTruncated.
func truncated(t *testing.T, s *scene, err error) {
	t.Helper()
	var te *client.TruncatedError
	if !errors.As(err, &te) || !errors.Is(err, seal.ErrTruncated) {
		t.Fatalf("err = %v (%T), want a *client.TruncatedError", err, err)
	}
}

// workersRefused wants the honest gateway's 502 (every candidate refused
// the tampered request) as a *client.GatewayError, and the workers'
// logs to say they refused it for reason.
func workersRefused(reason string) func(*testing.T, *scene, error) {
	return func(t *testing.T, s *scene, err error) {
		t.Helper()
		var ge *client.GatewayError
		if !errors.As(err, &ge) || ge.Status != 502 || ge.Code != string(api.UpstreamFailed) {
			t.Fatalf("err = %v (%T), want the gateway's 502 %s", err, err, api.UpstreamFailed)
		}
		logs := s.e.logs.Bytes()[s.logsBefore:]
		if !bytes.Contains(logs, []byte(`"reason":"`+reason+`"`)) {
			t.Fatalf("no worker logged a refusal for %q:\n%s", reason, logs)
		}
	}
}

// --- response attacks --------------------------------------------------

// onResponse makes a response attack from an edit of the real response.
func onResponse(edit func(s *scene, sent *hostile.Request, got *hostile.Response)) func(*scene, *hostile.Request, *hostile.Response) *hostile.Response {
	return func(s *scene, sent *hostile.Request, got *hostile.Response) *hostile.Response {
		edit(s, sent, got)
		return got
	}
}

// honestRequest runs one request through the scene's gateway before the
// attack is armed, with a prompt of the same size as the attacked one.
func honestRequest(t *testing.T, s *scene) {
	t.Helper()
	doc, _ := document()
	if _, err := s.c.Summarize(context.Background(), doc, client.SummarizeOptions{Sentences: sentences}); err != nil {
		t.Fatalf("the honest request before the attack: %v", err)
	}
}

// otherCandidate returns the index of a candidate of sent other than the
// one that answered got.
func otherCandidate(sent *hostile.Request, got *hostile.Response) int {
	return (int(got.Header[6]) + 1) % len(sent.Header.Candidates)
}

func TestResponseAttacks(t *testing.T) {
	runAttacks(t, []attack{
		{name: "chunk altered", sent: true, want: forged, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Chunks[1].Ciphertext[100] ^= 1
		})},
		{name: "chunk tag altered", sent: true, want: forged, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			c := r.Chunks[0].Ciphertext
			c[len(c)-1] ^= 0x80
		})},
		{name: "chunk dropped", sent: true, want: forged, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Chunks = slices.Delete(r.Chunks, 1, 2)
		})},
		{name: "chunks reordered", sent: true, want: forged, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Chunks[1], r.Chunks[2] = r.Chunks[2], r.Chunks[1]
		})},
		{name: "first chunks reordered", sent: true, want: forged, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Chunks[0], r.Chunks[1] = r.Chunks[1], r.Chunks[0]
		})},
		{name: "chunk duplicated", sent: true, want: forged, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Chunks = slices.Insert(r.Chunks, 1, r.Chunks[0])
		})},
		{name: "final chunk duplicated", sent: true, want: is(seal.ErrTrailingData), response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Chunks = append(r.Chunks, r.Chunks[len(r.Chunks)-1])
		})},
		{name: "final flag moved to the chunk before", sent: true, want: forged, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Chunks = r.Chunks[:len(r.Chunks)-1]
			r.Chunks[len(r.Chunks)-1].Final = true
		})},
		{name: "final flag cleared", sent: true, want: forged, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Chunks[len(r.Chunks)-1].Final = false
		})},
		{name: "truncated: final chunk dropped", sent: true, want: truncated, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Chunks = r.Chunks[:len(r.Chunks)-1]
		})},
		{name: "truncated: inside a chunk", sent: true, want: truncated, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Cut = proto.ResponseHeaderSize + 2*(5+proto.ResponseChunkSize+proto.AEADOverhead) + 300
		})},
		{name: "truncated: inside the response header", sent: true, want: truncated, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Cut = 30
		})},
		{name: "truncated: nothing after the header", sent: true, want: truncated, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Chunks = nil
		})},
		{name: "chunk flag byte invalid", sent: true, want: is(proto.ErrMalformed), response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Trailer = proto.AppendChunk(nil, r.Chunks[1])
			r.Trailer[0] = 0x02
			r.Chunks = r.Chunks[:1]
		})},
		{name: "chunk length field altered", sent: true, want: is(proto.ErrMalformed), response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Trailer = proto.AppendChunk(nil, r.Chunks[1])
			r.Trailer[4]++ // ct_len, big-endian, in bytes 1 to 4
			r.Chunks = r.Chunks[:1]
		})},
		{name: "not a sealed response at all", sent: true, want: is(proto.ErrMalformed), response: func(*scene, *hostile.Request, *hostile.Response) *hostile.Response {
			return &hostile.Response{Header: []byte(`{"error":{"code":"ok","message":"nothing to see here, all fine, no need to check anything"}}`)}
		}},
		{name: "truncated: connection broken after three chunks", sent: true, want: truncated, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Chunks, r.Abort = r.Chunks[:3], true
		})},
		{name: "chunk altered, then the connection broken", sent: true, want: forged, response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Chunks[len(r.Chunks)-1].Ciphertext[9] ^= 1
			r.Abort = true
		})},
		{name: "bytes after the final chunk", sent: true, want: is(seal.ErrTrailingData), response: onResponse(func(_ *scene, _ *hostile.Request, r *hostile.Response) {
			r.Trailer = []byte{0x01}
		})},
		{name: "chunk spliced from another response", sent: true, want: forged, prep: honestRequest,
			response: onResponse(func(s *scene, _ *hostile.Request, r *hostile.Response) {
				_, earlier := s.prepared()
				r.Chunks[1] = earlier[0].Chunks[1]
			})},
		{name: "response header of another response", sent: true, want: forged, prep: honestRequest,
			response: onResponse(func(s *scene, _ *hostile.Request, r *hostile.Response) {
				_, earlier := s.prepared()
				r.Header = earlier[0].Header
			})},
		{name: "earlier response replayed to a new request", sent: true, want: forged, prep: honestRequest,
			response: func(s *scene, _ *hostile.Request, _ *hostile.Response) *hostile.Response {
				_, earlier := s.prepared()
				return earlier[0]
			}},
		{name: "answer of a worker that was not a candidate", sent: true, want: is(seal.ErrNotCandidate), prep: otherWorkersAnswer,
			response: func(s *scene, _ *hostile.Request, _ *hostile.Response) *hostile.Response { return s.other }},
		{name: "relabelled to another candidate's position", sent: true, want: is(seal.ErrNotCandidate),
			response: onResponse(func(_ *scene, sent *hostile.Request, r *hostile.Response) {
				r.Header[6] = byte(otherCandidate(sent, r))
			})},
		{name: "relabelled as another candidate", sent: true, want: forged,
			response: onResponse(func(_ *scene, sent *hostile.Request, r *hostile.Response) {
				i := otherCandidate(sent, r)
				r.Header[6] = byte(i)
				copy(r.Header[7:7+proto.KeyIDSize], sent.Header.Candidates[i].KeyID[:])
			})},
		{name: "relabelled past the candidates", sent: true, want: is(seal.ErrNotCandidate),
			response: onResponse(func(_ *scene, sent *hostile.Request, r *hostile.Response) {
				r.Header[6] = byte(len(sent.Header.Candidates))
			})},
	})
}

// otherWorkersAnswer has worker 3, which the attacked client does not
// seal to (it takes one worker of each provider, in listing order),
// answer a request of its own, and keeps that answer.
func otherWorkersAnswer(t *testing.T, s *scene) {
	t.Helper()
	g := hostile.Start(hostile.Config{Upstream: s.e.network.GatewayURL, Listing: func(list *proto.CandidateList) {
		list.Candidates = slices.DeleteFunc(list.Candidates, func(ci proto.CandidateInfo) bool { return ci.WorkerID != workerID(2) })
	}})
	defer g.Close()
	c, err := client.New(client.Config{GatewayURL: g.URL, GatewayCA: g.CertPEM, Credential: s.e.network.TenantCredential, Policy: policy.InsecureSimulated(), K: 1})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := document()
	res, err := c.Summarize(context.Background(), doc, client.SummarizeOptions{Sentences: sentences})
	if err != nil || res.Worker.ID != workerID(2) {
		t.Fatalf("worker 3's own request: %v", err)
	}
	s.other = g.Responses()[0]
}

// --- request attacks ---------------------------------------------------

func TestRequestAttacks(t *testing.T) {
	edit := func(f func(r *hostile.Request)) func(*scene, *hostile.Request) *hostile.Request {
		return func(_ *scene, r *hostile.Request) *hostile.Request { f(r); return r }
	}
	runAttacks(t, []attack{
		{name: "chunk altered", sent: true, want: workersRefused("authentication"), request: edit(func(r *hostile.Request) {
			r.Chunks[2].Ciphertext[7] ^= 1
		})},
		{name: "chunk dropped", sent: true, want: workersRefused("authentication"), request: edit(func(r *hostile.Request) {
			r.Chunks = slices.Delete(r.Chunks, 1, 2)
		})},
		{name: "chunks reordered", sent: true, want: workersRefused("authentication"), request: edit(func(r *hostile.Request) {
			r.Chunks[0], r.Chunks[1] = r.Chunks[1], r.Chunks[0]
		})},
		{name: "chunk duplicated", sent: true, want: workersRefused("authentication"), request: edit(func(r *hostile.Request) {
			r.Chunks = slices.Insert(r.Chunks, 1, r.Chunks[1])
		})},
		{name: "truncated: final chunk dropped, the one before marked final", sent: true, want: workersRefused("authentication"), request: edit(func(r *hostile.Request) {
			r.Chunks = r.Chunks[:len(r.Chunks)-1]
			r.Chunks[len(r.Chunks)-1].Final = true
		})},
		{name: "wrap altered", sent: true, want: workersRefused("authentication"), request: edit(func(r *hostile.Request) {
			for i := range r.Wraps {
				r.Wraps[i][3] ^= 1
			}
		})},
		{name: "chunk spliced from another request", sent: true, want: workersRefused("authentication"), prep: honestRequest,
			request: func(s *scene, r *hostile.Request) *hostile.Request {
				earlier, _ := s.prepared()
				r.Chunks[1] = earlier[0].Chunks[1]
				return r
			}},
		{name: "suite downgraded to X25519", sent: true, want: workersRefused("authentication"), request: downgradeRequest},
		// The candidate that served the earlier request refuses it as a
		// replay; the other opens it, as failover allows, and answers the
		// earlier request, which the client does not take for its own.
		{name: "earlier request replayed in place of the new one", sent: true, want: forged, prep: honestRequest,
			request: func(s *scene, _ *hostile.Request) *hostile.Request {
				earlier, _ := s.prepared()
				return earlier[0]
			}},
	})
}

// downgradeRequest re-encodes the header under the X25519 suite: each
// candidate's key id becomes its worker's X25519 key, and its
// encapsulation the X25519 part of the X-Wing one. The header is valid,
// the gateway routes it and the worker holds the keys, so only the
// cryptography can refuse it.
func downgradeRequest(s *scene, r *hostile.Request) *hostile.Request {
	h := *r.Header
	h.Suite = proto.SuiteX25519
	h.Candidates = nil
	for _, c := range r.Header.Candidates {
		id := s.e.genuine[c.KeyID]
		var x proto.KeyID
		for k, w := range s.e.genuine {
			if w == id && k != c.KeyID {
				x = k
			}
		}
		h.Candidates = append(h.Candidates, proto.Candidate{KeyID: x, Enc: c.Enc[len(c.Enc)-32:]})
	}
	hb, err := h.Marshal()
	if err != nil {
		panic(err)
	}
	r.Header, r.HeaderBytes = &h, hb
	return r
}

// --- listing attacks ---------------------------------------------------

// each applies f to every listed candidate.
func each(f func(s *scene, ci *proto.CandidateInfo)) func(*scene, *proto.CandidateList) {
	return func(s *scene, list *proto.CandidateList) {
		for i := range list.Candidates {
			f(s, &list.Candidates[i])
		}
	}
}

// rebundle parses a bundle, lets edit change it and encodes it again,
// leaving the report as it was.
func rebundle(raw []byte, edit func(b *proto.Bundle)) []byte {
	b, err := proto.ParseBundle(raw)
	if err != nil {
		panic(err)
	}
	edit(b)
	out, err := b.Marshal()
	if err != nil {
		panic(err)
	}
	return out
}

// forge re-signs a bundle's simulated report for its edited keys. The
// simulated TEE's root is public (which is why it is INSECURE), so a
// hostile gateway can make simulated evidence for any key it likes: only
// the provider's endorsement, and the client's trust in providers, stand
// in its way.
func forge(raw []byte, edit func(b *proto.Bundle)) []byte {
	return forgeAt(raw, time.Time{}, edit)
}

// forgeAt is forge with the report made at the time at; the zero time
// keeps the report's.
func forgeAt(raw []byte, at time.Time, edit func(b *proto.Bundle)) []byte {
	b, err := proto.ParseBundle(raw)
	if err != nil {
		panic(err)
	}
	r, err := sim.ParseReport(b.Report)
	if err != nil {
		panic(err)
	}
	if at.IsZero() {
		at = r.Timestamp
	}
	edit(b)
	b.Report = sim.NewDevice(sim.DeviceConfig{Measurement: r.Measurement, Now: func() time.Time { return at }}).Report(b.ReportData())
	out, err := b.Marshal()
	if err != nil {
		panic(err)
	}
	return out
}

// ownKeys gives the bundle the gateway's own HPKE keys (of the KEMs
// listed, in place of all the worker's).
func ownKeys(kems ...uint16) func(b *proto.Bundle) {
	return func(b *proto.Bundle) {
		b.Keys.HPKE = nil
		for _, kem := range kems {
			k, err := seal.GenerateKey(kem)
			if err != nil {
				panic(err)
			}
			b.Keys.HPKE = append(b.Keys.HPKE, k.Public())
		}
	}
}

// gatewayProvider is a provider key of the hostile gateway's own.
var gatewayProvider = func() ed25519.PrivateKey {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	return k
}()

// endorseAsGateway lists ci under the gateway's own provider key, with
// a valid endorsement of its (forged) keys.
func endorseAsGateway(ci *proto.CandidateInfo) {
	b, err := proto.ParseBundle(ci.Bundle)
	if err != nil {
		panic(err)
	}
	ci.ProviderKey = gatewayProvider.Public().(ed25519.PublicKey)
	ci.Endorsement = ed25519.Sign(gatewayProvider, proto.EndorsementMessage(ci.WorkerID, b.KeysHash()))
}

// refusedFor wants ErrNoCandidate and check to hold for every refusal.
func refusedFor(what string, check func(error) bool) func(*testing.T, *scene, error) {
	return func(t *testing.T, _ *scene, err error) {
		t.Helper()
		var nc *client.NoCandidateError
		if !errors.As(err, &nc) || len(nc.Refusals) == 0 {
			t.Fatalf("err = %v (%T), want a *client.NoCandidateError with refusals", err, err)
		}
		for _, r := range nc.Refusals {
			if !check(r.Err) {
				t.Fatalf("%s refused with %v (%T), want %s", r.WorkerID, r.Err, r.Err, what)
			}
		}
	}
}

func attestationError(code attestation.Code, field string) func(error) bool {
	return func(err error) bool {
		var ae *attestation.Error
		return errors.As(err, &ae) && ae.Code == code && (field == "" || ae.Field == field)
	}
}

func endorsementError(field, detail string) func(error) bool {
	return func(err error) bool {
		var ee *client.EndorsementError
		return errors.As(err, &ee) && errors.Is(err, client.ErrEndorsement) && ee.Field == field && strings.Contains(err.Error(), detail)
	}
}

func TestListingAttacks(t *testing.T) {
	untrusting := func(c *client.Config) { c.TrustedProviders = nil }
	runAttacks(t, []attack{
		{name: "the gateway's own key in a worker's bundle", want: refusedFor("a binding error", attestationError(attestation.CodeBinding, "")),
			listing: each(func(_ *scene, ci *proto.CandidateInfo) {
				ci.Bundle = rebundle(ci.Bundle, ownKeys(proto.KEMMLKEM768X25519, proto.KEMX25519))
			})},
		{name: "the gateway's own key with evidence forged for it", want: refusedFor("an endorsement that does not verify", endorsementError("endorsement", "does not verify")),
			listing: each(func(_ *scene, ci *proto.CandidateInfo) {
				ci.Bundle = forge(ci.Bundle, ownKeys(proto.KEMMLKEM768X25519, proto.KEMX25519))
			})},
		{name: "the gateway's own key, forged evidence, endorsed by the gateway", want: refusedFor("an untrusted provider key", endorsementError("provider key", "Config.TrustedProviders")),
			listing: each(func(_ *scene, ci *proto.CandidateInfo) {
				ci.Bundle = forge(ci.Bundle, ownKeys(proto.KEMMLKEM768X25519, proto.KEMX25519))
				endorseAsGateway(ci)
			})},
		{name: "another worker's key and evidence under each worker's name", want: refusedFor("an endorsement that does not verify", endorsementError("endorsement", "does not verify")),
			listing: func(s *scene, list *proto.CandidateList) {
				for i := range list.Candidates {
					other := s.e.entry((i + 1) % 3)
					list.Candidates[i].Bundle, list.Candidates[i].Endorsement = other.Bundle, other.Endorsement
				}
			}},
		{name: "another worker's key, forged evidence, the first worker's endorsement", want: refusedFor("an endorsement that does not verify", endorsementError("endorsement", "does not verify")),
			listing: func(s *scene, list *proto.CandidateList) {
				for i := range list.Candidates {
					other, _ := proto.ParseBundle(s.e.entry((i + 1) % 3).Bundle)
					list.Candidates[i].Bundle = forge(list.Candidates[i].Bundle, func(b *proto.Bundle) { b.Keys = other.Keys })
				}
			}},
		{name: "bundle moved to another nonce", want: refusedFor("a binding error", attestationError(attestation.CodeBinding, "")),
			listing: each(func(_ *scene, ci *proto.CandidateInfo) {
				ci.Bundle = rebundle(ci.Bundle, func(b *proto.Bundle) {
					rand.Read(b.Nonce[:])
					b.Anchor = nil
				})
			})},
		// An older bundle of the same keys, made before the policy's
		// freshness window (15 minutes): still endorsed, as the keys are
		// the same, and refused as stale. Older bundles within the
		// window are the freshness the policy accepts; strict mode
		// (below, and TestOlderKeyGeneration) refuses them.
		{name: "an older bundle of the same keys, past the freshness window", want: refusedFor("a stale error", attestationError(attestation.CodeStale, "")),
			listing: each(func(_ *scene, ci *proto.CandidateInfo) {
				ci.Bundle = forgeAt(ci.Bundle, time.Now().Add(-20*time.Minute), func(*proto.Bundle) {})
			})},
		// Suite downgrades. The bundle's keys are bound by the report, so
		// the ML-KEM key cannot be struck out unnoticed; forged simulated
		// evidence of an X25519 key alone, endorsed by a provider key the
		// client does not restrict, passes attestation and endorsement,
		// and the policy's minimum suite still refuses it.
		{name: "suite downgrade: ML-KEM key struck from the bundle", want: refusedFor("a binding error", attestationError(attestation.CodeBinding, "")),
			listing: each(func(_ *scene, ci *proto.CandidateInfo) {
				ci.Bundle = rebundle(ci.Bundle, func(b *proto.Bundle) {
					b.Keys.HPKE = slices.DeleteFunc(b.Keys.HPKE, func(k proto.HPKEKey) bool { return k.KEM != proto.KEMX25519 })
				})
			})},
		{name: "suite downgrade: forged X25519-only evidence, endorsed by the gateway", client: untrusting,
			want: func(t *testing.T, _ *scene, err error) {
				var nc *client.NoCandidateError
				if !errors.As(err, &nc) || len(nc.Refusals) != 0 || !strings.Contains(nc.Reason, "suite at least as strong as "+proto.SuiteMLKEM768X25519.String()) {
					t.Fatalf("err = %v (%T), want no candidate for the minimum suite", err, err)
				}
			},
			listing: each(func(_ *scene, ci *proto.CandidateInfo) {
				ci.Bundle = forge(ci.Bundle, ownKeys(proto.KEMX25519))
				endorseAsGateway(ci)
			})},
		{name: "suite downgrade: forged X25519-only evidence, with the worker's endorsement", want: refusedFor("an endorsement that does not verify", endorsementError("endorsement", "does not verify")),
			listing: each(func(_ *scene, ci *proto.CandidateInfo) {
				ci.Bundle = forge(ci.Bundle, ownKeys(proto.KEMX25519))
			})},
		{name: "a listing longer than the client asked for", want: func(t *testing.T, _ *scene, err error) {
			var ge *client.GatewayError
			if !errors.As(err, &ge) || ge.Code != "listing_too_long" {
				t.Fatalf("err = %v (%T), want a *client.GatewayError for the listing's length", err, err)
			}
		},
			listing: func(s *scene, list *proto.CandidateList) {
				for len(list.Candidates) <= proto.MaxListed {
					list.Candidates = append(list.Candidates, s.e.entry(len(list.Candidates)%3))
				}
			}},
		// Names the gateway could never have admitted, made to write
		// into the caller's terminal and logs through the client's
		// errors and results.
		{name: "worker ids carrying control characters, endorsed by the gateway", client: untrusting,
			want: func(t *testing.T, s *scene, err error) {
				refusedFor("a worker id refused", endorsementError("worker id", "[A-Za-z0-9._-]"))(t, s, err)
				printable(t, err)
			},
			listing: each(func(_ *scene, ci *proto.CandidateInfo) {
				ci.WorkerID += "\x1b[2J\n{\"level\":\"INFO\",\"msg\":\"all good\"}"
				endorseAsGateway(ci)
			})},
		{name: "provider ids carrying control characters", want: func(t *testing.T, s *scene, err error) {
			refusedFor("a provider id refused", endorsementError("provider id", "[A-Za-z0-9._-]"))(t, s, err)
			printable(t, err)
		},
			listing: each(func(_ *scene, ci *proto.CandidateInfo) { ci.ProviderID = "\r\x1b]0;pwned\x07" })},
		// Steering every request to one provider's workers.
		{name: "candidates stripped to one provider", client: func(c *client.Config) { c.MinProviders = 2 }, want: diversity(1, 2),
			listing: func(s *scene, list *proto.CandidateList) {
				list.Candidates = slices.DeleteFunc(list.Candidates, func(ci proto.CandidateInfo) bool { return ci.WorkerID == workerID(1) })
			}},
		{name: "candidates stripped to one worker, listed three times", client: func(c *client.Config) { c.MinProviders = 2 }, want: diversity(1, 2),
			listing: func(s *scene, list *proto.CandidateList) {
				one := s.e.entry(0)
				list.Candidates = []proto.CandidateInfo{one, one, one}
			}},
		{name: "other provider's workers spoiled, so they are refused", client: func(c *client.Config) { c.MinProviders = 2 },
			want: func(t *testing.T, s *scene, err error) {
				diversity(1, 2)(t, s, err)
				if !errors.Is(err, client.ErrEndorsement) {
					t.Fatalf("err = %v, want the spoiled worker's refusal inside", err)
				}
			},
			listing: each(func(_ *scene, ci *proto.CandidateInfo) {
				if ci.WorkerID == workerID(1) {
					ci.Endorsement[0] ^= 1
				}
			})},
		{name: "the gateway's own provider key endorsing a genuine worker, to fake diversity", client: func(c *client.Config) { c.MinProviders = 2 },
			want: func(t *testing.T, s *scene, err error) {
				diversity(1, 2)(t, s, err)
				if !errors.Is(err, client.ErrEndorsement) {
					t.Fatalf("err = %v, want the gateway-endorsed entry's refusal inside", err)
				}
			},
			listing: func(s *scene, list *proto.CandidateList) {
				fake := s.e.entry(0)
				fake.WorkerID, fake.ProviderID = "sim-worker-9", "independent-provider"
				endorseAsGateway(&fake)
				list.Candidates = []proto.CandidateInfo{s.e.entry(0), fake}
			}},
		{name: "three providers wanted, two listed", client: func(c *client.Config) { c.K, c.MinProviders = 3, 3 }, want: diversity(2, 3)},
	})
}

// printable fails t if err's message holds a control character.
func printable(t *testing.T, err error) {
	t.Helper()
	if i := strings.IndexFunc(err.Error(), func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		t.Fatalf("err = %q holds a control character at %d", err, i)
	}
}

// diversity wants a *client.DiversityError with found of want providers.
func diversity(found, want int) func(*testing.T, *scene, error) {
	return func(t *testing.T, _ *scene, err error) {
		t.Helper()
		var de *client.DiversityError
		if !errors.As(err, &de) || !errors.Is(err, client.ErrDiversity) || de.Found != found || de.Want != want {
			t.Fatalf("err = %v (%T), want a *client.DiversityError with %d of %d providers", err, err, found, want)
		}
	}
}

// --- strict mode ------------------------------------------------------

func strictError(check func(error) bool) func(error) bool {
	return func(err error) bool {
		var se *client.StrictEvidenceError
		return errors.As(err, &se) && errors.Is(err, client.ErrStrictEvidence) && (check == nil || check(err))
	}
}

func TestStrictModeAttacks(t *testing.T) {
	strict := func(c *client.Config) { c.Strict = true }
	nonce := attestationError(attestation.CodeBinding, "nonce")
	otherKeys := func(err error) bool { return strings.Contains(err.Error(), "keys: the fresh evidence binds keys") }
	runAttacks(t, []attack{
		{name: "evidence bound to the gateway's own nonce", client: strict, want: refusedFor("a nonce binding error", strictError(nonce)),
			evidence: func(_ *scene, req proto.EvidenceRequest, relay func(proto.EvidenceRequest) (proto.Evidence, error)) (proto.Evidence, error) {
				req.Nonce = make([]byte, proto.NonceSize)
				rand.Read(req.Nonce)
				return relay(req)
			}},
		{name: "evidence of an earlier challenge replayed", client: strict, want: refusedFor("a nonce binding error", strictError(nonce)),
			prep: honestRequest,
			evidence: func(s *scene, req proto.EvidenceRequest, _ func(proto.EvidenceRequest) (proto.Evidence, error)) (proto.Evidence, error) {
				s.mu.Lock()
				defer s.mu.Unlock()
				return s.evidence[0], nil
			}},
		{name: "the listed bundle given as fresh evidence", client: strict, want: refusedFor("a nonce binding error", strictError(nonce)),
			evidence: func(s *scene, req proto.EvidenceRequest, _ func(proto.EvidenceRequest) (proto.Evidence, error)) (proto.Evidence, error) {
				for i := range 3 {
					if workerID(i) == req.WorkerID {
						return proto.Evidence{Bundle: s.e.entry(i).Bundle}, nil
					}
				}
				return proto.Evidence{}, errors.New("unknown worker")
			}},
		{name: "another worker's fresh evidence for the client's nonce", client: strict, want: refusedFor("other keys", strictError(otherKeys)),
			evidence: func(_ *scene, req proto.EvidenceRequest, relay func(proto.EvidenceRequest) (proto.Evidence, error)) (proto.Evidence, error) {
				for i := range 3 {
					if workerID(i) == req.WorkerID {
						req.WorkerID = workerID((i + 1) % 3)
						break
					}
				}
				return relay(req)
			}},
		{name: "fresh evidence forged for the gateway's own key", client: strict, want: refusedFor("other keys", strictError(otherKeys)),
			evidence: func(_ *scene, req proto.EvidenceRequest, relay func(proto.EvidenceRequest) (proto.Evidence, error)) (proto.Evidence, error) {
				ev, err := relay(req)
				if err == nil {
					ev.Bundle = forge(ev.Bundle, ownKeys(proto.KEMMLKEM768X25519, proto.KEMX25519))
				}
				return ev, err
			}},
		{name: "fresh evidence withheld", client: strict, want: refusedFor("no fresh evidence", strictError(nil)),
			evidence: func(*scene, proto.EvidenceRequest, func(proto.EvidenceRequest) (proto.Evidence, error)) (proto.Evidence, error) {
				return proto.Evidence{}, errors.New("withheld")
			}},
	})
}

// TestHonestControl runs the same exchange through the hostile gateway
// with every hook relaying honestly: it succeeds, with prompts and answers
// large enough for the attacks above (several chunks each way), and the
// operator sees no canary.
func TestHonestControl(t *testing.T) {
	e := shared
	g := hostile.Start(hostile.Config{Upstream: e.network.GatewayURL})
	defer g.Close()
	for _, strict := range []bool{false, true} {
		c, err := client.New(client.Config{GatewayURL: g.URL, GatewayCA: g.CertPEM, Credential: e.network.TenantCredential,
			Policy: policy.InsecureSimulated(), K: 2, TrustedProviders: e.trusted, MinProviders: 2, Strict: strict})
		if err != nil {
			t.Fatal(err)
		}
		doc, canaries := document()
		res, err := c.Summarize(context.Background(), doc, client.SummarizeOptions{Sentences: sentences})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.Text, "canary") || len(res.Candidates) != 2 || res.Candidates[0].ProviderKey.Equal(res.Candidates[1].ProviderKey) {
			t.Fatalf("result from %s, candidates %v", res.Worker.ID, res.Candidates)
		}
		assertNoCanary(t, "what the hostile gateway saw", g.Seen(), canaries)
	}
	reqs, resps := g.Requests(), g.Responses()
	if len(reqs) != 2 || len(resps) != 2 {
		t.Fatalf("%d requests and %d responses relayed, want 2 and 2", len(reqs), len(resps))
	}
	if n := len(reqs[0].Chunks); n < 3 {
		t.Fatalf("the request has %d chunks, want at least 3 for the request attacks", n)
	}
	if n := len(resps[0].Chunks); n < 3 {
		t.Fatalf("the response has %d chunks, want at least 3 for the response attacks", n)
	}
}

// TestOlderKeyGeneration lists each worker's genuine bundle of its
// previous key generation, after the gateway re-attested it: the
// evidence is still within the policy's window and still endorsed, so a
// client that trusts the listing's freshness seals to keys the worker is
// retiring; a strict client asks the worker for evidence of its current
// keys under its own nonce, finds other keys, and sends nothing. It runs
// its own network, whose gateway's clock the test moves past the
// re-attestation interval.
func TestOlderKeyGeneration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ahead atomic.Int64 // how far the gateway's clock runs ahead
	network, err := devnet.Start(ctx, devnet.Config{Dir: t.TempDir(), Workers: 2, InsecurePlainHTTP: true,
		Gateway: func(c *gateway.Config) {
			c.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()

	var mu sync.Mutex // guards older
	var older []proto.CandidateInfo
	g := hostile.Start(hostile.Config{Upstream: network.GatewayURL, Listing: func(list *proto.CandidateList) {
		mu.Lock()
		defer mu.Unlock()
		if older == nil {
			older = slices.Clone(list.Candidates)
			return
		}
		list.Candidates = older
	}})
	defer g.Close()
	newClient := func(strict bool) *client.Client {
		c, err := client.New(client.Config{GatewayURL: g.URL, GatewayCA: g.CertPEM, Credential: network.TenantCredential,
			Policy: policy.InsecureSimulated(), K: 2, Strict: strict})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if ws, _, err := newClient(false).Workers(ctx, proto.TaskSummarize); err != nil || len(ws) != 2 {
		t.Fatalf("listing the first key generation: %d workers, %v", len(ws), err)
	}
	first := [][]byte{network.Workers[0].Bundle(), network.Workers[1].Bundle()}

	ahead.Store(int64(gateway.DefaultReattestInterval + time.Minute))
	network.Gateway.ReattestDue(ctx)
	for i, w := range network.Workers {
		if bytes.Equal(w.Bundle(), first[i]) {
			t.Fatalf("worker %d was not re-attested", i+1)
		}
	}

	doc, canaries := document()
	res, err := newClient(true).Summarize(ctx, doc, client.SummarizeOptions{})
	if res != nil {
		t.Fatalf("a strict client got an answer from %s sealed to an older key generation", res.Worker.ID)
	}
	refusedFor("fresh evidence of other keys", strictError(func(err error) bool {
		return strings.Contains(err.Error(), "keys: the fresh evidence binds keys")
	}))(t, nil, err)
	if n := g.Calls(proto.PathRequests); n != 0 {
		t.Fatalf("the strict client sent %d sealed requests", n)
	}
	assertNoCanary(t, "the client's error", []byte(fmt.Sprintf("%v %+v", err, err)), canaries)
}
