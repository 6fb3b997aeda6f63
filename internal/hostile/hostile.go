// Package hostile is a dishonest gateway for tests: a real HTTPS server on
// 127.0.0.1 that sits between a client and a real gateway, relays every
// call, and rewrites what an operator in control of the gateway could
// rewrite: the candidate listing, strict mode's fresh evidence, the sealed
// request on its way to the workers and the sealed response on its way
// back. It keeps every sealed request and response it relayed, so an
// attack can splice or replay them later, and every byte it saw, so a test
// can show the operator learned no prompt.
//
// Sealed messages are buffered whole (a real gateway streams them), so an
// attack can rewrite any chunk; that changes timing only, and the tests
// judge no timing.
//
// INSECURE: a test double of an attacker. Nothing here is for production.
package hostile

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/sealgate/sealgate/proto"
)

// Config configures a Gateway. Only Upstream is required; a nil hook
// relays that call unchanged.
type Config struct {
	// Upstream is the real gateway's base URL, plain http on loopback.
	Upstream string
	// Listing rewrites each candidate listing before the client gets it.
	Listing func(list *proto.CandidateList)
	// Evidence answers a strict-mode evidence request. relay asks the real
	// gateway for evidence (bound to whatever nonce it is given). An error
	// is answered as a 502.
	Evidence func(req proto.EvidenceRequest, relay func(proto.EvidenceRequest) (proto.Evidence, error)) (proto.Evidence, error)
	// Request returns the sealed request to forward in place of sent, the
	// client's (which it may modify: it is a copy).
	Request func(sent *Request) *Request
	// Response returns the sealed response to send the client for its
	// request sent, given the real one the gateway answered with (a copy
	// it may modify). It is called for 200 answers only; others are
	// relayed as they are.
	Response func(sent *Request, got *Response) *Response
}

// Gateway is a running hostile gateway.
type Gateway struct {
	// URL is the base URL clients use.
	URL string
	// CertPEM is its self-signed TLS certificate, for Config.GatewayCA.
	CertPEM []byte

	cfg  Config
	srv  *httptest.Server
	http *http.Client

	mu        sync.Mutex // guards the fields below
	calls     map[string]int
	requests  []*Request  // as the client sent them
	responses []*Response // as the real gateway answered (200 only)
	broken    int         // 200 answers that were not a whole sealed response
	seen      bytes.Buffer
}

// Start starts a hostile gateway in front of cfg.Upstream. Close stops it.
func Start(cfg Config) *Gateway {
	g := &Gateway{cfg: cfg, calls: make(map[string]int), http: &http.Client{Transport: &http.Transport{}}}
	g.srv = httptest.NewUnstartedServer(http.HandlerFunc(g.serve))
	g.srv.StartTLS()
	g.URL = g.srv.URL
	g.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.srv.Certificate().Raw})
	return g
}

// Close stops the server and its connections.
func (g *Gateway) Close() {
	g.srv.CloseClientConnections()
	g.srv.Close()
	g.http.CloseIdleConnections()
}

// Calls returns how many calls the client made to path.
func (g *Gateway) Calls(path string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[path]
}

// Requests returns the sealed requests the client sent, oldest first.
func (g *Gateway) Requests() []*Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Request, len(g.requests))
	for i, r := range g.requests {
		out[i] = r.Clone()
	}
	return out
}

// Responses returns the sealed responses the real gateway answered with,
// oldest first.
func (g *Gateway) Responses() []*Response {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Response, len(g.responses))
	for i, r := range g.responses {
		out[i] = r.Clone()
	}
	return out
}

// Broken returns how many of the real gateway's 200 answers to sealed
// requests were not a whole sealed response (the gateway or a worker cut
// them); those are relayed unchanged, without calling Config.Response.
func (g *Gateway) Broken() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.broken
}

// Seen returns every byte the gateway read or wrote on either side:
// what a dishonest operator could keep.
func (g *Gateway) Seen() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return bytes.Clone(g.seen.Bytes())
}

func (g *Gateway) record(bs ...[]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range bs {
		g.seen.Write(b)
	}
}

// maxBody bounds what the gateway buffers of any body.
const maxBody = 64 << 20

func (g *Gateway) serve(rw http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.calls[r.URL.Path]++
	g.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		http.Error(rw, "reading the body failed", http.StatusBadRequest)
		return
	}
	g.record(body)
	switch {
	case r.URL.Path == proto.PathCandidates && g.cfg.Listing != nil:
		g.listing(rw, r)
	case r.URL.Path == proto.PathEvidence && g.cfg.Evidence != nil:
		g.evidence(rw, r, body)
	case r.URL.Path == proto.PathRequests:
		g.sealed(rw, r, body)
	default:
		g.relay(rw, r, body)
	}
}

// upstream sends r's method, path, query and credential with body to the
// real gateway and returns its answer, read whole.
func (g *Gateway) upstream(r *http.Request, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, strings.TrimSuffix(g.cfg.Upstream, "/")+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for _, h := range []string{proto.HeaderAuthorization, "Content-Type"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, err
	}
	g.record(out)
	return resp, out, nil
}

// answer writes status, the upstream's relevant headers and body.
func (g *Gateway) answer(rw http.ResponseWriter, resp *http.Response, body []byte) {
	for _, h := range []string{"Content-Type", "Retry-After", proto.HeaderWorker} {
		if v := resp.Header.Get(h); v != "" {
			rw.Header().Set(h, v)
		}
	}
	rw.WriteHeader(resp.StatusCode)
	rw.Write(body)
}

func (g *Gateway) relay(rw http.ResponseWriter, r *http.Request, body []byte) {
	resp, out, err := g.upstream(r, body)
	if err != nil {
		badGateway(rw, err)
		return
	}
	g.answer(rw, resp, out)
}

func badGateway(rw http.ResponseWriter, err error) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(http.StatusBadGateway)
	json.NewEncoder(rw).Encode(proto.ErrorResponse{Error: proto.ErrorBody{Code: "bad_gateway", Message: err.Error()}})
}

func (g *Gateway) listing(rw http.ResponseWriter, r *http.Request) {
	resp, out, err := g.upstream(r, nil)
	if err != nil {
		badGateway(rw, err)
		return
	}
	if resp.StatusCode != http.StatusOK {
		g.answer(rw, resp, out)
		return
	}
	var list proto.CandidateList
	if err := json.Unmarshal(out, &list); err != nil {
		badGateway(rw, err)
		return
	}
	g.cfg.Listing(&list)
	b, _ := json.Marshal(list)
	g.record(b)
	rw.Header().Set("Content-Type", "application/json")
	rw.Write(b)
}

func (g *Gateway) evidence(rw http.ResponseWriter, r *http.Request, body []byte) {
	var er proto.EvidenceRequest
	if err := json.Unmarshal(body, &er); err != nil {
		badGateway(rw, err)
		return
	}
	relay := func(er proto.EvidenceRequest) (proto.Evidence, error) {
		b, _ := json.Marshal(er)
		resp, out, err := g.upstream(r, b)
		if err != nil {
			return proto.Evidence{}, err
		}
		if resp.StatusCode != http.StatusOK {
			return proto.Evidence{}, fmt.Errorf("the gateway answered %d", resp.StatusCode)
		}
		var ev proto.Evidence
		return ev, json.Unmarshal(out, &ev)
	}
	ev, err := g.cfg.Evidence(er, relay)
	if err != nil {
		badGateway(rw, err)
		return
	}
	b, _ := json.Marshal(ev)
	g.record(b)
	rw.Header().Set("Content-Type", "application/json")
	rw.Write(b)
}

// sealed relays a sealed request and its response through the Request
// and Response hooks.
func (g *Gateway) sealed(rw http.ResponseWriter, r *http.Request, body []byte) {
	sent, err := ParseRequest(body)
	if err != nil { // not a sealed request: let the real gateway refuse it
		g.relay(rw, r, body)
		return
	}
	g.mu.Lock()
	g.requests = append(g.requests, sent.Clone())
	g.mu.Unlock()
	fwd := sent
	if g.cfg.Request != nil {
		fwd = g.cfg.Request(sent.Clone())
	}
	resp, out, err := g.upstream(r, fwd.Marshal())
	if err != nil {
		badGateway(rw, err)
		return
	}
	if resp.StatusCode != http.StatusOK {
		g.answer(rw, resp, out)
		return
	}
	got, err := ParseResponse(out)
	if err != nil { // a stream the worker or gateway cut: relay it as it is
		g.mu.Lock()
		g.broken++
		g.mu.Unlock()
		g.answer(rw, resp, out)
		return
	}
	g.mu.Lock()
	g.responses = append(g.responses, got.Clone())
	g.mu.Unlock()
	if g.cfg.Response != nil {
		got = g.cfg.Response(sent.Clone(), got.Clone())
		out = got.Marshal()
		g.record(out)
	}
	g.answer(rw, resp, out)
	if got.Abort {
		http.NewResponseController(rw).Flush()
		panic(http.ErrAbortHandler)
	}
}

// Request is a sealed request (proto.MagicRequest) taken apart. Its fields
// are not re-validated when it is marshalled, so an attack can put any
// bytes in them.
type Request struct {
	Header      *proto.Header // parsed from HeaderBytes
	HeaderBytes []byte
	Wraps       []proto.Wrap
	Chunks      []proto.Chunk
}

// ParseRequest takes a whole sealed request apart.
func ParseRequest(b []byte) (*Request, error) {
	rd := bytes.NewReader(b)
	pre, err := proto.ReadRequestPreamble(rd)
	if err != nil {
		return nil, err
	}
	req := &Request{Header: pre.Header, HeaderBytes: pre.HeaderBytes, Wraps: pre.Wraps}
	for {
		c, err := proto.ReadChunk(rd, proto.RequestChunk)
		if err != nil {
			return nil, err
		}
		req.Chunks = append(req.Chunks, c)
		if c.Final {
			break
		}
	}
	if rd.Len() != 0 {
		return nil, errors.New("hostile: data after the final request chunk")
	}
	return req, nil
}

// Marshal encodes r as the client would have.
func (r *Request) Marshal() []byte {
	b := proto.AppendRequestPreamble(nil, r.HeaderBytes, r.Wraps)
	for _, c := range r.Chunks {
		b = proto.AppendChunk(b, c)
	}
	return b
}

// Clone returns a deep copy of r.
func (r *Request) Clone() *Request {
	c, err := ParseRequest(r.Marshal())
	if err != nil { // an attack's own bytes: copy them field by field
		c = &Request{Header: r.Header, HeaderBytes: bytes.Clone(r.HeaderBytes), Wraps: append([]proto.Wrap(nil), r.Wraps...), Chunks: cloneChunks(r.Chunks)}
	}
	return c
}

// Response is a sealed response (proto.MagicResponse) taken apart.
type Response struct {
	// Header is the 71-byte response header, encoded.
	Header []byte
	Chunks []proto.Chunk
	// Trailer is anything after the final chunk (nothing, from an honest
	// worker).
	Trailer []byte
	// Cut, when positive, cuts the encoding to its first Cut bytes, as a
	// connection closed mid-stream would.
	Cut int
	// Abort breaks the connection after the encoding is sent, instead of
	// ending the HTTP response cleanly.
	Abort bool
}

// ParseResponse takes a whole sealed response apart.
func ParseResponse(b []byte) (*Response, error) {
	rd := bytes.NewReader(b)
	_, hb, err := proto.ReadResponseHeader(rd)
	if err != nil {
		return nil, err
	}
	resp := &Response{Header: hb}
	for {
		c, err := proto.ReadChunk(rd, proto.ResponseChunk)
		if err != nil {
			return nil, err
		}
		resp.Chunks = append(resp.Chunks, c)
		if c.Final {
			break
		}
	}
	resp.Trailer = b[len(b)-rd.Len():]
	return resp, nil
}

// Marshal encodes r.
func (r *Response) Marshal() []byte {
	b := bytes.Clone(r.Header)
	for _, c := range r.Chunks {
		b = proto.AppendChunk(b, c)
	}
	b = append(b, r.Trailer...)
	if r.Cut > 0 && r.Cut < len(b) {
		b = b[:r.Cut]
	}
	return b
}

// Clone returns a deep copy of r.
func (r *Response) Clone() *Response {
	return &Response{Header: bytes.Clone(r.Header), Chunks: cloneChunks(r.Chunks), Trailer: bytes.Clone(r.Trailer), Cut: r.Cut, Abort: r.Abort}
}

func cloneChunks(cs []proto.Chunk) []proto.Chunk {
	out := make([]proto.Chunk, len(cs))
	for i, c := range cs {
		out[i] = proto.Chunk{Final: c.Final, Ciphertext: bytes.Clone(c.Ciphertext)}
	}
	return out
}
