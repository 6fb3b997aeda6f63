package seal

// Attack tests. Each attack changes a sealed message the way an on-path
// gateway (or a malicious client or candidate) could, then fixes up every
// unauthenticated field (lengths, framing, preambles) so only the
// cryptography can catch it, and asserts the precise sentinel.

import (
	"bytes"
	"crypto/hpke"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// attackPayload pads to 64 KiB: four full request chunks.
var attackPayload = testPayload(40 << 10)

// requestAttacks change a request sealed to three candidates that the
// gateway forwards to candidate 1. other is a second request sealed to the
// same keys. Each returns the forwarded bytes.
var requestAttacks = []struct {
	name   string
	attack func(t *testing.T, req, other *sealedRequest) []byte
	want   error // nil: the control, which must open
}{
	{"control", func(t *testing.T, r, _ *sealedRequest) []byte { return r.forward(1) }, nil},
	{"tampered chunk ciphertext", func(t *testing.T, r, _ *sealedRequest) []byte {
		r.chunks[2].Ciphertext[100] ^= 1
		return r.forward(1)
	}, ErrAuthentication},
	{"tampered chunk tag", func(t *testing.T, r, _ *sealedRequest) []byte {
		c := r.chunks[3].Ciphertext
		c[len(c)-1] ^= 0x80
		return r.forward(1)
	}, ErrAuthentication},
	{"reordered chunks", func(t *testing.T, r, _ *sealedRequest) []byte {
		r.chunks[1].Ciphertext, r.chunks[2].Ciphertext = r.chunks[2].Ciphertext, r.chunks[1].Ciphertext
		return r.forward(1)
	}, ErrAuthentication},
	{"chunk spliced from another request", func(t *testing.T, r, o *sealedRequest) []byte {
		r.chunks[1] = o.chunks[1]
		return r.forward(1)
	}, ErrAuthentication},
	{"chunks of another request", func(t *testing.T, r, o *sealedRequest) []byte {
		r.chunks = o.chunks
		return r.forward(1)
	}, ErrAuthentication},
	{"wrap of another request", func(t *testing.T, r, o *sealedRequest) []byte {
		r.wraps[1] = o.wraps[1]
		return r.forward(1)
	}, ErrAuthentication},
	{"tampered wrap", func(t *testing.T, r, _ *sealedRequest) []byte {
		r.wraps[1][5] ^= 1
		return r.forward(1)
	}, ErrAuthentication},
	{"swapped candidate order", func(t *testing.T, r, _ *sealedRequest) []byte {
		h := r.parsedHeader(t)
		h.Candidates[0], h.Candidates[1] = h.Candidates[1], h.Candidates[0]
		r.setHeader(t, h)
		r.wraps[0], r.wraps[1] = r.wraps[1], r.wraps[0]
		return r.forward(0) // candidate 1's key now sits at index 0
	}, ErrAuthentication},
	{"altered request id", func(t *testing.T, r, _ *sealedRequest) []byte {
		h := r.parsedHeader(t)
		h.RequestID[0] ^= 1
		r.setHeader(t, h)
		return r.forward(1)
	}, ErrAuthentication},
	{"altered timestamp", func(t *testing.T, r, _ *sealedRequest) []byte {
		h := r.parsedHeader(t)
		h.Timestamp++ // still inside the window
		r.setHeader(t, h)
		return r.forward(1)
	}, ErrAuthentication},
	{"altered task", func(t *testing.T, r, _ *sealedRequest) []byte {
		h := r.parsedHeader(t)
		h.Task = "translate"
		r.setHeader(t, h)
		return r.forward(1)
	}, ErrAuthentication},
	{"altered encapsulation of another candidate", func(t *testing.T, r, _ *sealedRequest) []byte {
		h := r.parsedHeader(t)
		h.Candidates[2].Enc[0] ^= 1
		r.setHeader(t, h)
		return r.forward(1)
	}, ErrAuthentication},
	{"dropped candidate", func(t *testing.T, r, _ *sealedRequest) []byte {
		h := r.parsedHeader(t)
		h.Candidates = h.Candidates[:2]
		r.setHeader(t, h)
		r.wraps = r.wraps[:2]
		return r.forward(1)
	}, ErrAuthentication},
	{"wrong commitment tag", func(t *testing.T, r, _ *sealedRequest) []byte {
		h := r.parsedHeader(t)
		h.Tag[0] ^= 1
		r.setHeader(t, h)
		return r.forward(1)
	}, ErrAuthentication},
	{"non-final chunk marked final, rest dropped", func(t *testing.T, r, _ *sealedRequest) []byte {
		r.chunks = r.chunks[:2]
		r.chunks[1].Final = true
		return r.forward(1)
	}, ErrAuthentication},
	{"non-final chunk marked final, rest kept", func(t *testing.T, r, _ *sealedRequest) []byte {
		r.chunks[1].Final = true
		return r.forward(1)
	}, ErrAuthentication},
	{"final chunk marked non-final", func(t *testing.T, r, _ *sealedRequest) []byte {
		r.chunks[3].Final = false
		return r.forward(1)
	}, ErrAuthentication},
	{"dropped final chunk", func(t *testing.T, r, _ *sealedRequest) []byte {
		r.chunks = r.chunks[:3]
		return r.forward(1)
	}, ErrTruncated},
	{"dropped every chunk", func(t *testing.T, r, _ *sealedRequest) []byte {
		r.chunks = nil
		return r.forward(1)
	}, ErrTruncated},
	{"cut mid-chunk", func(t *testing.T, r, _ *sealedRequest) []byte {
		b := r.forward(1)
		return b[:len(b)-100]
	}, ErrTruncated},
	{"cut mid-preamble", func(t *testing.T, r, _ *sealedRequest) []byte {
		return r.forward(1)[:100]
	}, ErrTruncated},
	{"trailing byte after the final chunk", func(t *testing.T, r, _ *sealedRequest) []byte {
		return append(r.forward(1), 0)
	}, ErrTrailingData},
	{"final chunk repeated", func(t *testing.T, r, _ *sealedRequest) []byte {
		r.chunks = append(r.chunks, r.chunks[3])
		return r.forward(1)
	}, ErrTrailingData},
	{"another request appended", func(t *testing.T, r, o *sealedRequest) []byte {
		return append(r.forward(1), o.forward(1)...)
	}, ErrTrailingData},
}

func TestRequestAttacks(t *testing.T) {
	for _, suite := range proto.Suites() {
		keys := testKeys(t, suite.KEM, 1, 3)
		req := splitRequest(t, sealTest(t, suite, keys, attackPayload).Bytes())
		other := splitRequest(t, sealTest(t, suite, keys, attackPayload).Bytes())
		if len(req.chunks) != 4 {
			t.Fatalf("%d request chunks, want 4", len(req.chunks))
		}
		for _, tc := range requestAttacks {
			t.Run(suiteShortName(suite)+"/"+tc.name, func(t *testing.T) {
				fwd := tc.attack(t, req.clone(), other.clone())
				opened, err := newTestOpener(t, testNow, keys[1:2]).Open(bytes.NewReader(fwd))
				if tc.want == nil {
					if err != nil || !bytes.Equal(opened.Payload, attackPayload) {
						t.Fatalf("control: %v", err)
					}
					return
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("Open: %v, want %v", err, tc.want)
				}
			})
		}
	}
}

// forgeRequest seals like Seal, but as a malicious client: candidate i gets
// dataKeys[i] in its wrap, the commitment tag is computed under tagKey, and
// the body is encrypted under bodyKey's derivation.
func forgeRequest(t *testing.T, suite proto.Suite, keys []*PrivateKey, dataKeys [][]byte, tagKey, bodyKey, payload []byte) *sealedRequest {
	t.Helper()
	kemImpl, kdf, aead, err := suiteParts(suite)
	if err != nil {
		t.Fatal(err)
	}
	h := &proto.Header{Suite: suite, Timestamp: testNow.UnixMilli(), Task: "summarize", RequestID: [16]byte{1, 2, 3}}
	var senders []*hpke.Sender
	for _, k := range keys {
		pk, err := kemImpl.NewPublicKey(k.pub.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		enc, s, err := hpke.NewSender(pk, kdf, aead, []byte(labelWrapInfo))
		if err != nil {
			t.Fatal(err)
		}
		h.Candidates = append(h.Candidates, proto.Candidate{KeyID: k.id, Enc: enc})
		senders = append(senders, s)
	}
	ti, err := h.TagInput()
	if err != nil {
		t.Fatal(err)
	}
	h.Tag = commitTag(tagKey, ti)
	r := &sealedRequest{}
	r.setHeader(t, h)
	for i, s := range senders {
		ct, err := s.Seal(r.header, dataKeys[i])
		if err != nil {
			t.Fatal(err)
		}
		r.wraps = append(r.wraps, proto.Wrap(ct))
	}
	padded, err := proto.PadRequest(payload)
	if err != nil {
		t.Fatal(err)
	}
	gcm := newGCM(deriveKey(bodyKey, nil, labelBody))
	n := len(padded) / proto.RequestChunkSize
	if len(padded)%proto.RequestChunkSize != 0 {
		n++
	}
	for i := range n {
		final := i == n-1
		nonce := proto.Nonce(uint64(i), final)
		pt := padded[i*proto.RequestChunkSize : min(len(padded), (i+1)*proto.RequestChunkSize)]
		r.chunks = append(r.chunks, proto.Chunk{Final: final, Ciphertext: gcm.Seal(nil, nonce[:], pt, r.header)})
	}
	return r
}

// TestKeyCommitment plays a malicious client: wraps that open correctly but
// carry a data key the commitment tag was not made with must be refused, so
// any two candidates that accept a request agree on its data key and hence
// on its plaintext.
func TestKeyCommitment(t *testing.T) {
	for _, suite := range proto.Suites() {
		t.Run(suiteShortName(suite), func(t *testing.T) {
			keys := testKeys(t, suite.KEM, 2, 2)
			k1 := bytes.Repeat([]byte{1}, dataKeySize)
			k2 := bytes.Repeat([]byte{2}, dataKeySize)
			payload := []byte("prompt")

			open := func(r *sealedRequest, i int) error {
				_, err := newTestOpener(t, testNow, keys[i:i+1]).Open(bytes.NewReader(r.forward(i)))
				return err
			}
			honest := forgeRequest(t, suite, keys, [][]byte{k1, k1}, k1, k1, payload)
			if err := open(honest, 0); err != nil {
				t.Fatalf("control: %v", err)
			}
			wrongTag := forgeRequest(t, suite, keys, [][]byte{k1, k1}, k2, k1, payload)
			if err := open(wrongTag, 0); !errors.Is(err, ErrAuthentication) {
				t.Errorf("tag under another data key: %v, want %v", err, ErrAuthentication)
			}
			split := forgeRequest(t, suite, keys, [][]byte{k1, k2}, k1, k1, payload)
			if err := open(split, 0); err != nil {
				t.Errorf("candidate 0 (committed key): %v", err)
			}
			if err := open(split, 1); !errors.Is(err, ErrAuthentication) {
				t.Errorf("candidate 1 (other key): %v, want %v", err, ErrAuthentication)
			}
		})
	}
}

// responseFixture is what a response attack starts from: the response
// candidate 1 wrote to a request sealed to three candidates (resp), a
// second response to the same request by the same candidate with a fresh
// response nonce (same), a response by that candidate to another request
// (foreign), and the request's header. The responses are copies the attack
// may change.
type responseFixture struct {
	resp, same, foreign *sealedResponse
	header              *proto.Header
}

var responseAttacks = []struct {
	name   string
	attack func(t *testing.T, f *responseFixture) []byte
	want   error
}{
	{"control", func(t *testing.T, f *responseFixture) []byte { return f.resp.bytes() }, nil},
	{"tampered chunk ciphertext", func(t *testing.T, f *responseFixture) []byte {
		f.resp.chunks[1].Ciphertext[7] ^= 1
		return f.resp.bytes()
	}, ErrAuthentication},
	{"tampered first chunk", func(t *testing.T, f *responseFixture) []byte {
		f.resp.chunks[0].Ciphertext[0] ^= 1
		return f.resp.bytes()
	}, ErrAuthentication},
	{"reordered chunks", func(t *testing.T, f *responseFixture) []byte {
		c := f.resp.chunks
		c[0].Ciphertext, c[1].Ciphertext = c[1].Ciphertext, c[0].Ciphertext
		return f.resp.bytes()
	}, ErrAuthentication},
	{"chunk spliced from another response to the same request", func(t *testing.T, f *responseFixture) []byte {
		f.resp.chunks[1] = f.same.chunks[1]
		return f.resp.bytes()
	}, ErrAuthentication},
	{"chunk spliced from a response to another request", func(t *testing.T, f *responseFixture) []byte {
		f.resp.chunks[1] = f.foreign.chunks[1]
		return f.resp.bytes()
	}, ErrAuthentication},
	{"header of another response to the same request", func(t *testing.T, f *responseFixture) []byte {
		f.resp.header = f.same.header
		return f.resp.bytes()
	}, ErrAuthentication},
	{"altered response nonce", func(t *testing.T, f *responseFixture) []byte {
		f.resp.header[len(f.resp.header)-1] ^= 1
		return f.resp.bytes()
	}, ErrAuthentication},
	{"relabelled as another candidate", func(t *testing.T, f *responseFixture) []byte {
		setResponseHeader(t, f.resp, 2, f.header.Candidates[2].KeyID)
		return f.resp.bytes()
	}, ErrAuthentication},
	{"key id not among candidates", func(t *testing.T, f *responseFixture) []byte {
		setResponseHeader(t, f.resp, 1, proto.KeyID{9})
		return f.resp.bytes()
	}, ErrNotCandidate},
	{"key id of another position", func(t *testing.T, f *responseFixture) []byte {
		setResponseHeader(t, f.resp, 0, f.header.Candidates[1].KeyID)
		return f.resp.bytes()
	}, ErrNotCandidate},
	{"index beyond the candidates", func(t *testing.T, f *responseFixture) []byte {
		setResponseHeader(t, f.resp, 5, f.header.Candidates[1].KeyID)
		return f.resp.bytes()
	}, ErrNotCandidate},
	{"non-final chunk marked final, rest dropped", func(t *testing.T, f *responseFixture) []byte {
		f.resp.chunks = f.resp.chunks[:2]
		f.resp.chunks[1].Final = true
		return f.resp.bytes()
	}, ErrAuthentication},
	{"final chunk marked non-final", func(t *testing.T, f *responseFixture) []byte {
		f.resp.chunks[len(f.resp.chunks)-1].Final = false
		return f.resp.bytes()
	}, ErrAuthentication},
	{"dropped final chunk", func(t *testing.T, f *responseFixture) []byte {
		f.resp.chunks = f.resp.chunks[:len(f.resp.chunks)-1]
		return f.resp.bytes()
	}, ErrTruncated},
	{"dropped every chunk", func(t *testing.T, f *responseFixture) []byte {
		f.resp.chunks = nil
		return f.resp.bytes()
	}, ErrTruncated},
	{"cut mid-chunk", func(t *testing.T, f *responseFixture) []byte {
		b := f.resp.bytes()
		return b[:len(b)-300]
	}, ErrTruncated},
	{"cut mid-header", func(t *testing.T, f *responseFixture) []byte {
		return f.resp.bytes()[:20]
	}, ErrTruncated},
	{"trailing byte after the final chunk", func(t *testing.T, f *responseFixture) []byte {
		return append(f.resp.bytes(), 0)
	}, ErrTrailingData},
	{"final chunk repeated", func(t *testing.T, f *responseFixture) []byte {
		f.resp.chunks = append(f.resp.chunks, f.resp.chunks[len(f.resp.chunks)-1])
		return f.resp.bytes()
	}, ErrTrailingData},
}

// setResponseHeader rewrites the index and key id of a response header,
// keeping its nonce.
func setResponseHeader(t *testing.T, r *sealedResponse, index int, id proto.KeyID) {
	t.Helper()
	h, err := proto.ParseResponseHeader(r.header)
	if err != nil {
		t.Fatal(err)
	}
	h.Index, h.KeyID = index, id
	if r.header, err = h.Marshal(); err != nil {
		t.Fatal(err)
	}
}

// bigEvents make a response of four chunks.
var bigEvents = []proto.Event{
	{Type: proto.EventData, Data: testPayload(3000)},
	{Type: proto.EventEnd, Data: []byte("{}")},
}

func TestResponseAttacks(t *testing.T) {
	for _, suite := range proto.Suites() {
		keys := testKeys(t, suite.KEM, 3, 3)
		op := newTestOpener(t, testNow, keys[1:2])
		openReq := func() (*Request, *Opened) {
			req := sealTest(t, suite, keys, []byte("prompt"))
			opened, err := op.Open(bytes.NewReader(forwardTo(t, req, 1)))
			if err != nil {
				t.Fatal(err)
			}
			return req, opened
		}
		req, opened := openReq()
		_, foreignOpened := openReq()
		resp := splitResponse(t, writeResponse(t, opened, bigEvents))
		same := splitResponse(t, writeResponse(t, opened, bigEvents))
		foreign := splitResponse(t, writeResponse(t, foreignOpened, bigEvents))
		if len(resp.chunks) != 3 {
			t.Fatalf("%d response chunks, want 3", len(resp.chunks))
		}
		for _, tc := range responseAttacks {
			t.Run(suiteShortName(suite)+"/"+tc.name, func(t *testing.T) {
				msg := tc.attack(t, &responseFixture{resp.clone(), same.clone(), foreign.clone(), req.Header()})
				r, events, err := readResponse(req, msg)
				if tc.want == nil {
					if err != nil || !equalEvents(events, bigEvents) || r.Candidate() != 1 {
						t.Fatalf("control: %v", err)
					}
					return
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("reading response: %v, want %v", err, tc.want)
				}
			})
		}
	}
}

// TestCandidateImpersonation: candidate 0 opens the request, then answers
// claiming to be candidate 1 (index and key id). It does not hold candidate
// 1's exporter secret, so the client cannot authenticate its chunks.
func TestCandidateImpersonation(t *testing.T) {
	for _, suite := range proto.Suites() {
		t.Run(suiteShortName(suite), func(t *testing.T) {
			keys := testKeys(t, suite.KEM, 4, 3)
			req := sealTest(t, suite, keys, []byte("prompt"))
			opened, err := newTestOpener(t, testNow, keys[0:1]).Open(bytes.NewReader(forwardTo(t, req, 0)))
			if err != nil {
				t.Fatal(err)
			}
			liar := *opened
			liar.Index = 1
			liar.key = &PrivateKey{id: keys[1].ID()}
			msg := writeResponse(t, &liar, testEvents())
			if _, _, err := readResponse(req, msg); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("impersonated response: %v, want %v", err, ErrAuthentication)
			}
			// The honest answer from the same candidate opens.
			if r, _, err := readResponse(req, writeResponse(t, opened, testEvents())); err != nil || r.Candidate() != 0 {
				t.Fatalf("honest response: %v", err)
			}
		})
	}
}

// TestResponseErrorsSticky: after a failure, Next keeps failing; a caller
// that retries cannot skip a forged chunk.
func TestResponseErrorsSticky(t *testing.T) {
	keys := testKeys(t, proto.KEMX25519, 5, 1)
	req := sealTest(t, proto.SuiteX25519, keys, nil)
	opened, err := newTestOpener(t, testNow, keys).Open(bytes.NewReader(forwardTo(t, req, 0)))
	if err != nil {
		t.Fatal(err)
	}
	r := splitResponse(t, writeResponse(t, opened, bigEvents))
	// Insert a forged chunk before the second: skipping it would leave a
	// valid stream behind.
	forged := proto.Chunk{Ciphertext: bytes.Clone(r.chunks[1].Ciphertext)}
	forged.Ciphertext[0] ^= 1
	r.chunks = append(r.chunks[:1], append([]proto.Chunk{forged}, r.chunks[1:]...)...)
	resp, err := req.OpenResponse(bytes.NewReader(r.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := resp.Next(); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("call %d: %v, want %v", i, err, ErrAuthentication)
		}
	}
}

// TestWorkerPolicy covers the worker's checks that come before or after
// the cryptography: keys, suites, the timestamp window and replay.
func TestWorkerPolicy(t *testing.T) {
	xKeys := testKeys(t, proto.KEMX25519, 6, 2)
	mKeys := testKeys(t, proto.KEMMLKEM768X25519, 6, 2)
	xReq := sealTest(t, proto.SuiteX25519, xKeys[:1], []byte("prompt"))
	mReq := sealTest(t, proto.SuiteMLKEM768X25519, mKeys[:1], []byte("prompt"))
	const maxAge, maxSkew = 5 * time.Minute, time.Minute
	window := func(cfg *OpenerConfig) { cfg.MaxAge, cfg.MaxSkew = maxAge, maxSkew }

	// wrongKEM is an X25519 request whose candidate names the worker's
	// ML-KEM key: the header is well formed, the key is known, the KEM is
	// not the suite's.
	wrongKEM := splitRequest(t, xReq.Bytes())
	h := wrongKEM.parsedHeader(t)
	h.Candidates[0].KeyID = mKeys[0].ID()
	wrongKEM.setHeader(t, h)

	tests := []struct {
		name string
		keys []*PrivateKey
		now  time.Time
		mod  func(*OpenerConfig)
		msg  []byte
		want error
	}{
		{"control", xKeys[:1], testNow, window, forwardTo(t, xReq, 0), nil},
		{"oldest accepted", xKeys[:1], testNow.Add(maxAge), window, forwardTo(t, xReq, 0), nil},
		{"newest accepted", xKeys[:1], testNow.Add(-maxSkew), window, forwardTo(t, xReq, 0), nil},
		{"stale timestamp", xKeys[:1], testNow.Add(maxAge + time.Millisecond), window, forwardTo(t, xReq, 0), ErrStale},
		{"future timestamp", xKeys[:1], testNow.Add(-maxSkew - time.Millisecond), window, forwardTo(t, xReq, 0), ErrStale},
		{"default window, stale", xKeys[:1], testNow.Add(5*time.Minute + time.Millisecond), nil, forwardTo(t, xReq, 0), ErrStale},
		{"unknown key", xKeys[1:2], testNow, nil, forwardTo(t, xReq, 0), ErrUnknownKey},
		{"key of the other KEM only", mKeys[1:2], testNow, nil, forwardTo(t, xReq, 0), ErrUnknownKey},
		{"suite below minimum", xKeys[:1], testNow, func(c *OpenerConfig) { c.MinSuite = proto.SuiteMLKEM768X25519 }, forwardTo(t, xReq, 0), ErrSuite},
		{"suite at minimum", mKeys[:1], testNow, func(c *OpenerConfig) { c.MinSuite = proto.SuiteMLKEM768X25519 }, forwardTo(t, mReq, 0), nil},
		{"recipient key of the wrong KEM", []*PrivateKey{xKeys[0], mKeys[0]}, testNow, nil, wrongKEM.forward(0), ErrSuite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*OpenerConfig)
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			_, err := newTestOpener(t, tc.now, tc.keys, mods...).Open(bytes.NewReader(tc.msg))
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSealRejectsWrongKEM(t *testing.T) {
	keys := testKeys(t, proto.KEMMLKEM768X25519, 7, 1)
	if _, err := Seal(proto.SuiteX25519, publics(keys), "summarize", nil, Options{}); !errors.Is(err, ErrSuite) {
		t.Fatalf("Seal: %v, want %v", err, ErrSuite)
	}
	if _, err := Seal(proto.Suite{KEM: 0x0010, KDF: 1, AEAD: 2}, publics(keys), "summarize", nil, Options{}); !errors.Is(err, ErrSuite) {
		t.Fatalf("Seal with an unsupported suite: %v, want %v", err, ErrSuite)
	}
}

func TestOpenerConfig(t *testing.T) {
	keys := testKeys(t, proto.KEMX25519, 8, 1)
	bad := []OpenerConfig{
		{},
		{Keys: keys, MaxAge: -time.Second},
		{Keys: keys, MaxSkew: -time.Second},
		{Keys: keys, ReplayCapacity: -1},
		{Keys: keys, MinSuite: proto.Suite{KEM: 0x0010, KDF: 1, AEAD: 2}},
	}
	for i, cfg := range bad {
		if _, err := NewOpener(cfg); err == nil {
			t.Errorf("config %d: NewOpener accepted %+v", i, cfg)
		}
	}
}

func TestReplay(t *testing.T) {
	keys := testKeys(t, proto.KEMX25519, 9, 1)
	msg := forwardTo(t, sealTest(t, proto.SuiteX25519, keys, []byte("prompt")), 0)
	now := testNow
	op := newTestOpener(t, now, keys, func(c *OpenerConfig) { c.Now = func() time.Time { return now } })
	if _, err := op.Open(bytes.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{0, time.Second, 5 * time.Minute} {
		now = testNow.Add(d)
		if _, err := op.Open(bytes.NewReader(msg)); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay after %v: %v, want %v", d, err, ErrReplay)
		}
	}
	// Once the id has left the cache, the timestamp window refuses it.
	now = testNow.Add(7 * time.Minute)
	if _, err := op.Open(bytes.NewReader(msg)); !errors.Is(err, ErrStale) {
		t.Fatalf("replay after the window: %v, want %v", err, ErrStale)
	}
}

func TestReplayCacheFull(t *testing.T) {
	keys := testKeys(t, proto.KEMX25519, 10, 1)
	now := testNow
	op := newTestOpener(t, now, keys, func(c *OpenerConfig) {
		c.ReplayCapacity = 2
		c.Now = func() time.Time { return now }
	})
	open := func() error {
		req, err := Seal(proto.SuiteX25519, publics(keys), "summarize", nil, Options{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		_, err = op.Open(bytes.NewReader(forwardTo(t, req, 0)))
		return err
	}
	for i := range 2 {
		if err := open(); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if err := open(); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("third request: %v, want %v", err, ErrReplayCacheFull)
	}
	// After MaxAge+MaxSkew the first ids expire and make room.
	now = testNow.Add(6*time.Minute + time.Millisecond)
	if err := open(); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

// TestResponseFlushTimer: a partial chunk reaches the client once the flush
// interval has passed, before Finish.
func TestResponseFlushTimer(t *testing.T) {
	keys := testKeys(t, proto.KEMX25519, 11, 1)
	req := sealTest(t, proto.SuiteX25519, keys, []byte("prompt"))
	opened, err := newTestOpener(t, testNow, keys).Open(bytes.NewReader(forwardTo(t, req, 0)))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	defer pr.Close()
	type result struct {
		resp *Response
		err  error
	}
	first := make(chan result, 1)
	go func() {
		r, err := req.OpenResponse(pr) // returns once the first chunk arrived
		first <- result{r, err}
	}()
	w, err := opened.NewResponseWriter(pw, nil, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	data := proto.Event{Type: proto.EventData, Data: []byte("first token")}
	if err := w.WriteEvent(data); err != nil {
		t.Fatal(err)
	}
	var res result
	select {
	case res = <-first:
	case <-time.After(30 * time.Second):
		t.Fatal("no chunk reached the client before Finish")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	e, err := res.resp.Next()
	if err != nil || !bytes.Equal(e.Data, data.Data) {
		t.Fatalf("first event %q, %v", e.Data, err)
	}

	finished := make(chan error, 1)
	go func() {
		err := w.Finish(proto.Event{Type: proto.EventEnd, Data: []byte("{}")})
		pw.Close()
		finished <- err
	}()
	if e, err := res.resp.Next(); err != nil || e.Type != proto.EventEnd {
		t.Fatalf("end event %v, %v", e.Type, err)
	}
	if _, err := res.resp.Next(); err != io.EOF {
		t.Fatalf("after end: %v", err)
	}
	if err := <-finished; err != nil {
		t.Fatal(err)
	}
}

func TestResponseAbort(t *testing.T) {
	keys := testKeys(t, proto.KEMX25519, 12, 1)
	req := sealTest(t, proto.SuiteX25519, keys, nil)
	opened, err := newTestOpener(t, testNow, keys).Open(bytes.NewReader(forwardTo(t, req, 0)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := opened.NewResponseWriter(&out, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEvent(proto.Event{Type: proto.EventData, Data: testPayload(2000)}); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if err := w.Finish(proto.Event{Type: proto.EventEnd}); err == nil {
		t.Fatal("Finish after Abort succeeded")
	}
	if _, _, err := readResponse(req, out.Bytes()); !errors.Is(err, ErrTruncated) {
		t.Fatalf("aborted response: %v, want %v", err, ErrTruncated)
	}
}

func TestResponseWriterRejectsBadEvents(t *testing.T) {
	keys := testKeys(t, proto.KEMX25519, 13, 1)
	req := sealTest(t, proto.SuiteX25519, keys, nil)
	opened, err := newTestOpener(t, testNow, keys).Open(bytes.NewReader(forwardTo(t, req, 0)))
	if err != nil {
		t.Fatal(err)
	}
	w, err := opened.NewResponseWriter(io.Discard, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, e := range []proto.Event{
		{Type: 0},
		{Type: 9},
		{Type: proto.EventEnd},
		{Type: proto.EventData, Data: make([]byte, proto.MaxEventData+1)},
	} {
		if err := w.WriteEvent(e); err == nil {
			t.Errorf("WriteEvent accepted type %d, %d bytes", e.Type, len(e.Data))
		}
	}
	for _, e := range []proto.Event{
		{Type: proto.EventData},
		{Type: proto.EventEnd, Data: make([]byte, proto.MaxEventData+1)},
	} {
		if err := w.Finish(e); err == nil {
			t.Errorf("Finish accepted type %d, %d bytes", e.Type, len(e.Data))
		}
	}
}
