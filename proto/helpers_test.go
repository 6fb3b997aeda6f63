package proto_test

// Shared fixtures of package proto's tests: valid encodings taken from
// real sealed messages and a valid evidence bundle, to seed fuzz targets.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

var testNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testKey derives a deterministic recipient key.
func testKey(tb testing.TB, kem uint16, i int) *seal.PrivateKey {
	tb.Helper()
	ikm := sha256.Sum256(fmt.Appendf(nil, "sealgate proto test key %d", i))
	k, err := seal.DeriveKey(kem, ikm[:])
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// samples are real sealed messages: client messages, their forwards to
// every candidate, and a response to each.
type samples struct {
	requests  [][]byte
	forwards  [][]byte
	responses [][]byte
}

// sealedSamples seals requests under both suites to one and three
// candidates, with a short payload and one spanning two request chunks,
// and has the first candidate answer each.
func sealedSamples(tb testing.TB) *samples {
	tb.Helper()
	var s samples
	for _, suite := range proto.Suites() {
		keys := []*seal.PrivateKey{testKey(tb, suite.KEM, 0), testKey(tb, suite.KEM, 1), testKey(tb, suite.KEM, 2)}
		for _, n := range []int{1, 3} {
			var pubs []proto.HPKEKey
			for _, k := range keys[:n] {
				pubs = append(pubs, k.Public())
			}
			for _, size := range []int{100, 20000} {
				req, err := seal.Seal(suite, pubs, "summarize", bytes.Repeat([]byte("p"), size), seal.Options{Now: func() time.Time { return testNow }})
				if err != nil {
					tb.Fatal(err)
				}
				s.requests = append(s.requests, req.Bytes())
				r := bytes.NewReader(req.Bytes())
				p, err := proto.ReadRequestPreamble(r)
				if err != nil {
					tb.Fatal(err)
				}
				chunks := req.Bytes()[len(req.Bytes())-r.Len():]
				for i := range n {
					s.forwards = append(s.forwards, append(proto.AppendForwardPreamble(nil, p.HeaderBytes, i, p.Wraps[i]), chunks...))
				}
				s.responses = append(s.responses, respond(tb, keys[0], s.forwards[len(s.forwards)-n]))
			}
		}
	}
	return &s
}

// respond opens fwd with key and writes a response of three events.
func respond(tb testing.TB, key *seal.PrivateKey, fwd []byte) []byte {
	tb.Helper()
	op, err := seal.NewOpener(seal.OpenerConfig{Keys: []*seal.PrivateKey{key}, Now: func() time.Time { return testNow }})
	if err != nil {
		tb.Fatal(err)
	}
	opened, err := op.Open(bytes.NewReader(fwd))
	if err != nil {
		tb.Fatal(err)
	}
	var out bytes.Buffer
	w, err := opened.NewResponseWriter(&out, nil, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range testEvents()[:2] {
		if err := w.WriteEvent(e); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Finish(testEvents()[2]); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

func testEvents() []proto.Event {
	return []proto.Event{
		{Type: proto.EventData, Data: []byte("hello")},
		{Type: proto.EventData, Data: bytes.Repeat([]byte("w"), 1500)},
		{Type: proto.EventEnd, Data: []byte(`{"backend":"builtin","model":"test","input_units":1,"output_units":2}`)},
	}
}

// requestParts splits a client message into its header and the chunk
// stream after the preamble.
func requestParts(tb testing.TB, msg []byte) (header, chunks []byte) {
	tb.Helper()
	r := bytes.NewReader(msg)
	p, err := proto.ReadRequestPreamble(r)
	if err != nil {
		tb.Fatal(err)
	}
	return p.HeaderBytes, msg[len(msg)-r.Len():]
}

// validBundle is a bundle with every field set.
func validBundle(tb testing.TB) *proto.Bundle {
	tb.Helper()
	b := &proto.Bundle{
		Kind: "sim",
		Keys: proto.WorkerKeys{
			Signing: bytes.Repeat([]byte{0x5e}, proto.SigningKeySize),
			Models: []proto.ModelDigest{
				{Name: "llama3.1:8b", SHA256: [32]byte{0x11, 0x12}},
				{Name: "qwen/Qwen2.5-7B-Instruct", SHA256: [32]byte{0x21, 0x22}},
			},
		},
		Report:     []byte("simulated report"),
		Collateral: []byte("simulated collateral"),
		GPU:        [][]byte{[]byte("gpu 0 evidence"), []byte("gpu 1 evidence")},
	}
	anchor := testAnchor(tb)
	b.Anchor = anchor
	b.Nonce = proto.AnchoredNonce(anchor)
	for _, suite := range proto.Suites() {
		b.Keys.HPKE = append(b.Keys.HPKE, testKey(tb, suite.KEM, 0).Public())
	}
	return b
}

// addWithCorruptions seeds f with each valid encoding, prefixed by the
// given extra arguments, and with a few corruptions of it: cut short, first
// and middle byte flipped, a trailing byte.
func addWithCorruptions(f *testing.F, valid [][]byte, extra ...any) {
	add := func(b []byte) { fuzzseed.Add(f, append([]any{b}, extra...)...) }
	for _, v := range valid {
		add(v)
		add(v[:len(v)/2])
		add(v[:max(0, len(v)-1)])
		for _, i := range []int{0, len(v) / 2} {
			if i < len(v) {
				c := bytes.Clone(v)
				c[i] ^= 0xff
				add(c)
			}
		}
		add(append(bytes.Clone(v), 0))
	}
	add(nil)
}

// testAnchor returns an encoded anchor with a fixed challenge, time, key id
// and signature bytes (not a valid signature: proto does not verify them).
func testAnchor(tb testing.TB) []byte {
	tb.Helper()
	a := proto.Anchor{Time: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	copy(a.Challenge[:], "challenge challenge challenge 32")
	a.KeyID = proto.AnchorKeyID([]byte("anchor public key"))
	copy(a.Signature[:], bytes.Repeat([]byte{0x51}, 64))
	enc, err := a.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}
