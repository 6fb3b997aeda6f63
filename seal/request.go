package seal

import (
	"crypto/hpke"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// Options adjust Seal. The zero value is ready to use.
type Options struct {
	// Now returns the time written into the header. Nil means time.Now.
	Now func() time.Time
	// KeyLog, when non-nil, receives every secret of the request (the data
	// key, each candidate's exporter secret, the response key) as text
	// lines. INSECURE: it exists so tests can prove secrets never reach the
	// gateway. Never set it in production.
	KeyLog io.Writer
}

// Request is a sealed request together with the client-side secrets needed
// to open its response. It has no String method.
type Request struct {
	message     []byte
	header      *proto.Header
	headerBytes []byte
	headerHash  [32]byte
	exporters   [][]byte
	keyLog      io.Writer
}

// PublicKey is a recipient's HPKE public key, parsed once so that sealing
// many requests to the same worker does not parse it again.
type PublicKey struct {
	key proto.HPKEKey
	id  proto.KeyID
	pk  hpke.PublicKey
}

// ParsePublicKey parses a worker's public key.
func ParsePublicKey(k proto.HPKEKey) (*PublicKey, error) {
	kemImpl, err := kem(k.KEM)
	if err != nil {
		return nil, err
	}
	pk, err := kemImpl.NewPublicKey(k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("seal: invalid hpke public key for kem 0x%04x: %v", k.KEM, err)
	}
	return &PublicKey{key: k, id: k.ID(), pk: pk}, nil
}

// Seal encrypts payload for the task to every recipient under suite.
// Every recipient key must be of the suite's KEM; the caller has checked
// that each belongs to a verified worker.
func Seal(suite proto.Suite, recipients []proto.HPKEKey, task string, payload []byte, opts Options) (*Request, error) {
	parsed := make([]*PublicKey, len(recipients))
	for i, r := range recipients {
		if r.KEM != suite.KEM {
			return nil, fmt.Errorf("%w: recipient %d has kem 0x%04x, suite %v wants 0x%04x", ErrSuite, i, r.KEM, suite, suite.KEM)
		}
		var err error
		if parsed[i], err = ParsePublicKey(r); err != nil {
			return nil, fmt.Errorf("recipient %d: %w", i, err)
		}
	}
	return SealTo(suite, parsed, task, payload, opts)
}

// SealTo is Seal with parsed recipient keys.
func SealTo(suite proto.Suite, recipients []*PublicKey, task string, payload []byte, opts Options) (*Request, error) {
	_, kdf, aead, err := suiteParts(suite)
	if err != nil {
		return nil, err
	}
	if n := len(recipients); n < 1 || n > proto.MaxCandidates {
		return nil, fmt.Errorf("seal: %d recipients, want 1 to %d", n, proto.MaxCandidates)
	}
	padded, err := proto.PadRequest(payload)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	h := &proto.Header{Suite: suite, Timestamp: now().UnixMilli(), Task: task}
	rand.Read(h.RequestID[:])

	senders := make([]*hpke.Sender, len(recipients))
	for i, r := range recipients {
		if r.key.KEM != suite.KEM {
			return nil, fmt.Errorf("%w: recipient %d has kem 0x%04x, suite %v wants 0x%04x", ErrSuite, i, r.key.KEM, suite, suite.KEM)
		}
		enc, s, err := hpke.NewSender(r.pk, kdf, aead, []byte(labelWrapInfo))
		if err != nil {
			return nil, fmt.Errorf("seal: recipient %d: %v", i, err)
		}
		h.Candidates = append(h.Candidates, proto.Candidate{KeyID: r.id, Enc: enc})
		senders[i] = s
	}

	dataKey := make([]byte, dataKeySize)
	rand.Read(dataKey)
	tagInput, err := h.TagInput()
	if err != nil {
		return nil, err
	}
	h.Tag = commitTag(dataKey, tagInput)
	hb, err := h.Marshal()
	if err != nil {
		return nil, err
	}
	req := &Request{header: h, headerBytes: hb, headerHash: proto.HeaderHash(hb), keyLog: opts.KeyLog}
	keyLog(opts.KeyLog, "DATA_KEY", h.RequestID, dataKey)

	wraps := make([]proto.Wrap, len(senders))
	for i, s := range senders {
		ct, err := s.Seal(hb, dataKey)
		if err != nil || len(ct) != proto.WrapSize {
			return nil, fmt.Errorf("seal: wrapping data key for recipient %d: %v", i, err)
		}
		copy(wraps[i][:], ct)
		exp, err := s.Export(labelExporter, 32)
		if err != nil {
			return nil, fmt.Errorf("seal: exporter for recipient %d: %v", i, err)
		}
		keyLog(opts.KeyLog, fmt.Sprintf("EXPORTER_%d", i), h.RequestID, exp)
		req.exporters = append(req.exporters, exp)
	}

	nChunks := (len(padded) + proto.RequestChunkSize - 1) / proto.RequestChunkSize
	msg := make([]byte, 0, 8+len(hb)+len(wraps)*proto.WrapSize+len(padded)+nChunks*(5+proto.AEADOverhead))
	msg = proto.AppendRequestPreamble(msg, hb, wraps)
	gcm := newGCM(deriveKey(dataKey, nil, labelBody))
	for i := range nChunks {
		pt := padded[i*proto.RequestChunkSize : min(len(padded), (i+1)*proto.RequestChunkSize)]
		final := i == nChunks-1
		nonce := proto.Nonce(uint64(i), final)
		msg = proto.AppendChunk(msg, proto.Chunk{Final: final, Ciphertext: gcm.Seal(nil, nonce[:], pt, hb)})
	}
	req.message = msg
	return req, nil
}

// Bytes returns the message to send to the gateway.
func (r *Request) Bytes() []byte { return r.message }

// ID returns the request id.
func (r *Request) ID() [proto.RequestIDSize]byte { return r.header.RequestID }

// HeaderHash returns SHA-256 of the encoded header.
func (r *Request) HeaderHash() [32]byte { return r.headerHash }

// Header returns the parsed header. The caller must not modify it.
func (r *Request) Header() *proto.Header { return r.header }
