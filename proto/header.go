package proto

import (
	"crypto/sha256"
	"math"

	"golang.org/x/crypto/cryptobyte"
)

// Sizes and limits of the sealed framing. SPEC.md explains each.
const (
	Version        = 1
	RequestIDSize  = 16
	KeyIDSize      = 32
	TagSize        = 32
	WrapSize       = 48 // a 32-byte data key sealed with AES-256-GCM
	MaxCandidates  = 8
	MaxTaskLen     = 32
	MaxHeaderSize  = 16 << 10
	HeaderHashSize = sha256.Size
)

// encSize is the length of an HPKE encapsulation for each supported KEM.
func encSize(kem uint16) int {
	switch kem {
	case KEMX25519:
		return 32
	case KEMMLKEM768X25519:
		return 1120
	}
	return -1
}

// KeyID names one worker public key: SHA-256 over a label, the key's HPKE KEM
// identifier and its serialized public key (see SPEC.md).
type KeyID [KeyIDSize]byte

// NewKeyID computes the KeyID of an HPKE public key.
func NewKeyID(kem uint16, publicKey []byte) KeyID {
	h := sha256.New()
	h.Write([]byte("sealgate/v1 key id\x00"))
	h.Write([]byte{byte(kem >> 8), byte(kem)})
	h.Write(publicKey)
	var id KeyID
	h.Sum(id[:0])
	return id
}

// Candidate is one worker key a request is sealed to, with the HPKE
// encapsulation made for it.
type Candidate struct {
	KeyID KeyID
	Enc   []byte
}

// Header is the authenticated header of a sealed request. Its encoding is
// the associated data of every wrap and every request chunk.
type Header struct {
	Suite      Suite
	RequestID  [RequestIDSize]byte
	Timestamp  int64 // Unix milliseconds at sealing, as the client's clock read it
	Task       string
	Candidates []Candidate
	// Tag is the key-commitment tag: HMAC-SHA256 over the encoding of every
	// field above, under a key derived from the data key.
	Tag [TagSize]byte
}

// Marshal returns the canonical encoding of h. It fails if any field is out
// of range, exactly where ParseHeader would.
func (h *Header) Marshal() ([]byte, error) {
	b, err := h.marshal(true)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// TagInput returns the bytes the commitment tag is computed over: the
// encoding of the header without its final Tag field.
func (h *Header) TagInput() ([]byte, error) { return h.marshal(false) }

func (h *Header) marshal(withTag bool) ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddUint16(Version)
	b.AddUint16(h.Suite.KEM)
	b.AddUint16(h.Suite.KDF)
	b.AddUint16(h.Suite.AEAD)
	b.AddBytes(h.RequestID[:])
	b.AddUint64(uint64(h.Timestamp))
	b.AddUint8(uint8(len(h.Task)))
	b.AddBytes([]byte(h.Task))
	b.AddUint8(uint8(len(h.Candidates)))
	for _, c := range h.Candidates {
		b.AddBytes(c.KeyID[:])
		b.AddUint16(uint16(len(c.Enc)))
		b.AddBytes(c.Enc)
	}
	if withTag {
		b.AddBytes(h.Tag[:])
	}
	return b.Bytes()
}

func (h *Header) validate() error {
	const s = "header"
	if !h.Suite.Supported() {
		return malformed(s, "suite", "found %v, want one of the supported suites", h.Suite)
	}
	if h.Timestamp <= 0 {
		return malformed(s, "timestamp", "found %d, want a positive number of milliseconds", h.Timestamp)
	}
	if err := ValidateTask(h.Task); err != nil {
		return err
	}
	if n := len(h.Candidates); n < 1 || n > MaxCandidates {
		return malformed(s, "candidate count", "found %d, want 1 to %d", n, MaxCandidates)
	}
	want := encSize(h.Suite.KEM)
	for i, c := range h.Candidates {
		if len(c.Enc) != want {
			return malformed(s, "candidate encapsulation", "candidate %d: found %d bytes, want %d", i, len(c.Enc), want)
		}
		for j := range i {
			if h.Candidates[j].KeyID == c.KeyID {
				return malformed(s, "candidate key id", "candidates %d and %d name the same key", j, i)
			}
		}
	}
	return nil
}

// ValidateTask checks a task name: 1 to MaxTaskLen characters from a-z, 0-9
// and '-', starting with a letter.
func ValidateTask(task string) error {
	if len(task) < 1 || len(task) > MaxTaskLen {
		return malformed("header", "task", "found %d bytes, want 1 to %d", len(task), MaxTaskLen)
	}
	for i := 0; i < len(task); i++ {
		c := task[i]
		ok := c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '-')
		if !ok {
			return malformed("header", "task", "found a character outside [a-z0-9-] or a leading non-letter, want [a-z][a-z0-9-]*")
		}
	}
	return nil
}

// ParseHeader parses the canonical encoding of a Header. It rejects trailing
// bytes.
func ParseHeader(b []byte) (*Header, error) {
	const s = "header"
	if len(b) > MaxHeaderSize {
		return nil, malformed(s, "length", "found %d bytes, want at most %d", len(b), MaxHeaderSize)
	}
	in := cryptobyte.String(b)
	var (
		h       Header
		version uint16
		ts      uint64
		task    cryptobyte.String
		n       uint8
	)
	if !in.ReadUint16(&version) {
		return nil, malformed(s, "version", "truncated")
	}
	if version != Version {
		return nil, malformed(s, "version", "found %d, want %d", version, Version)
	}
	if !in.ReadUint16(&h.Suite.KEM) || !in.ReadUint16(&h.Suite.KDF) || !in.ReadUint16(&h.Suite.AEAD) {
		return nil, malformed(s, "suite", "truncated")
	}
	if !in.CopyBytes(h.RequestID[:]) {
		return nil, malformed(s, "request id", "truncated")
	}
	if !in.ReadUint64(&ts) {
		return nil, malformed(s, "timestamp", "truncated")
	}
	if ts > math.MaxInt64 {
		return nil, malformed(s, "timestamp", "found %d, want at most %d", ts, int64(math.MaxInt64))
	}
	h.Timestamp = int64(ts)
	if !in.ReadUint8LengthPrefixed(&task) {
		return nil, malformed(s, "task", "truncated")
	}
	h.Task = string(task)
	if !in.ReadUint8(&n) {
		return nil, malformed(s, "candidate count", "truncated")
	}
	if n > MaxCandidates {
		return nil, malformed(s, "candidate count", "found %d, want 1 to %d", n, MaxCandidates)
	}
	h.Candidates = make([]Candidate, n)
	for i := range h.Candidates {
		c := &h.Candidates[i]
		var enc cryptobyte.String
		if !in.CopyBytes(c.KeyID[:]) || !in.ReadUint16LengthPrefixed(&enc) {
			return nil, malformed(s, "candidate", "candidate %d truncated", i)
		}
		c.Enc = append([]byte(nil), enc...)
	}
	if !in.CopyBytes(h.Tag[:]) {
		return nil, malformed(s, "tag", "truncated")
	}
	if !in.Empty() {
		return nil, malformed(s, "length", "%d trailing bytes", len(in))
	}
	if err := h.validate(); err != nil {
		return nil, err
	}
	return &h, nil
}

// HeaderHash is the SHA-256 of an encoded header. It names a request in
// response key derivation, receipts and logs.
func HeaderHash(encodedHeader []byte) [HeaderHashSize]byte {
	return sha256.Sum256(encodedHeader)
}
