package seal

// Shared fixtures of package seal's tests, vectors, fuzz targets and
// benchmarks: deterministic keys and payloads, and helpers that split a
// sealed message at its unauthenticated framing and put it back together,
// so attack tests can change one thing and fix up every length and frame
// around it.

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// testNow is the fixed time of every test: 2026-01-01T00:00:00Z.
var testNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fixedClock returns a clock stopped at t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// testIKM is the key-derivation input of recipient i under seed.
func testIKM(seed uint64, i int) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "sealgate test recipient seed=%d index=%d", seed, i))
	return h[:]
}

// testKeys derives n recipient keys of kemID from seed with DeriveKey.
func testKeys(tb testing.TB, kemID uint16, seed uint64, n int) []*PrivateKey {
	tb.Helper()
	keys := make([]*PrivateKey, n)
	for i := range keys {
		k, err := DeriveKey(kemID, testIKM(seed, i))
		if err != nil {
			tb.Fatal(err)
		}
		keys[i] = k
	}
	return keys
}

// publics returns the public halves of keys.
func publics(keys []*PrivateKey) []proto.HPKEKey {
	out := make([]proto.HPKEKey, len(keys))
	for i, k := range keys {
		out[i] = k.Public()
	}
	return out
}

// testPayload returns n bytes of deterministic, readable text.
func testPayload(n int) []byte {
	const text = "The prompt is confidential: only an attested worker may read it. "
	return []byte(strings.Repeat(text, n/len(text)+1)[:n])
}

// sealTest seals payload to keys at testNow, failing the test on error.
func sealTest(tb testing.TB, suite proto.Suite, keys []*PrivateKey, payload []byte) *Request {
	tb.Helper()
	req, err := Seal(suite, publics(keys), "summarize", payload, Options{Now: fixedClock(testNow)})
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

// newTestOpener returns an Opener for keys whose clock is stopped at now.
// mods adjust the configuration first.
func newTestOpener(tb testing.TB, now time.Time, keys []*PrivateKey, mods ...func(*OpenerConfig)) *Opener {
	tb.Helper()
	cfg := OpenerConfig{Keys: keys, Now: fixedClock(now)}
	for _, m := range mods {
		m(&cfg)
	}
	o, err := NewOpener(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

// sealedRequest is a client message split at its framing. Every field is
// unauthenticated framing or an opaque authenticated blob; changing one and
// re-assembling leaves only the cryptography to notice.
type sealedRequest struct {
	header []byte // the encoded header (the AAD)
	wraps  []proto.Wrap
	chunks []proto.Chunk
}

// splitRequest parses a client message (SGRQ) into its parts.
func splitRequest(tb testing.TB, msg []byte) *sealedRequest {
	tb.Helper()
	r := bytes.NewReader(msg)
	p, err := proto.ReadRequestPreamble(r)
	if err != nil {
		tb.Fatal(err)
	}
	return &sealedRequest{header: p.HeaderBytes, wraps: p.Wraps, chunks: readChunks(tb, r, proto.RequestChunk)}
}

// readChunks reads framed chunks of kind until the end of r.
func readChunks(tb testing.TB, r io.Reader, kind proto.ChunkKind) []proto.Chunk {
	tb.Helper()
	var out []proto.Chunk
	for {
		c, err := proto.ReadChunk(r, kind)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, c)
	}
}

// clone returns a deep copy that can be changed freely.
func (s *sealedRequest) clone() *sealedRequest {
	return &sealedRequest{
		header: bytes.Clone(s.header),
		wraps:  append([]proto.Wrap(nil), s.wraps...),
		chunks: cloneChunks(s.chunks),
	}
}

func cloneChunks(cs []proto.Chunk) []proto.Chunk {
	out := make([]proto.Chunk, len(cs))
	for i, c := range cs {
		out[i] = proto.Chunk{Final: c.Final, Ciphertext: bytes.Clone(c.Ciphertext)}
	}
	return out
}

// parsedHeader parses s.header.
func (s *sealedRequest) parsedHeader(tb testing.TB) *proto.Header {
	tb.Helper()
	h, err := proto.ParseHeader(s.header)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// setHeader re-marshals h into s.header, keeping its tag as it is.
func (s *sealedRequest) setHeader(tb testing.TB, h *proto.Header) {
	tb.Helper()
	b, err := h.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	s.header = b
}

// client re-assembles the client message.
func (s *sealedRequest) client() []byte {
	return appendChunks(proto.AppendRequestPreamble(nil, s.header, s.wraps), s.chunks)
}

// forward assembles what the gateway sends candidate i.
func (s *sealedRequest) forward(i int) []byte {
	return appendChunks(proto.AppendForwardPreamble(nil, s.header, i, s.wraps[i]), s.chunks)
}

func appendChunks(dst []byte, cs []proto.Chunk) []byte {
	for _, c := range cs {
		dst = proto.AppendChunk(dst, c)
	}
	return dst
}

// forwardTo is splitRequest(req.Bytes()).forward(i).
func forwardTo(tb testing.TB, req *Request, i int) []byte {
	tb.Helper()
	return splitRequest(tb, req.Bytes()).forward(i)
}

// sealedResponse is a response message split at its framing.
type sealedResponse struct {
	header []byte // the encoded response header (the AAD)
	chunks []proto.Chunk
}

func splitResponse(tb testing.TB, msg []byte) *sealedResponse {
	tb.Helper()
	r := bytes.NewReader(msg)
	_, hb, err := proto.ReadResponseHeader(r)
	if err != nil {
		tb.Fatal(err)
	}
	return &sealedResponse{header: hb, chunks: readChunks(tb, r, proto.ResponseChunk)}
}

func (s *sealedResponse) clone() *sealedResponse {
	return &sealedResponse{header: bytes.Clone(s.header), chunks: cloneChunks(s.chunks)}
}

func (s *sealedResponse) bytes() []byte { return appendChunks(bytes.Clone(s.header), s.chunks) }

// testEvents is the fixed event sequence of test responses: a short data
// event, one that spans response chunks, and an end event.
func testEvents() []proto.Event {
	return []proto.Event{
		{Type: proto.EventData, Data: []byte("Summary: ")},
		{Type: proto.EventData, Data: testPayload(1500)},
		{Type: proto.EventEnd, Data: []byte(`{"backend":"builtin","model":"test","input_units":0,"output_units":1509}`)},
	}
}

// writeResponse seals events (the last one terminal) as opened's response.
// The flush timer is set far beyond the test's run time, so chunk
// boundaries depend only on sizes and the output is deterministic.
func writeResponse(tb testing.TB, opened *Opened, events []proto.Event) []byte {
	tb.Helper()
	var out bytes.Buffer
	w, err := opened.NewResponseWriter(&out, nil, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range events[:len(events)-1] {
		if err := w.WriteEvent(e); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Finish(events[len(events)-1]); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// readResponse opens msg as req's response and reads every event up to
// io.EOF. It returns the events read and the first error.
func readResponse(req *Request, msg []byte) (*Response, []proto.Event, error) {
	resp, err := req.OpenResponse(bytes.NewReader(msg))
	if err != nil {
		return nil, nil, err
	}
	var events []proto.Event
	for {
		e, err := resp.Next()
		if err == io.EOF {
			return resp, events, nil
		}
		if err != nil {
			return resp, events, err
		}
		events = append(events, e)
	}
}

// equalEvents reports whether two event sequences are the same.
func equalEvents(a, b []proto.Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}
