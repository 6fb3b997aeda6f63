package proto

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// A time anchor is a signed statement that a challenge existed at a time.
// TEE reports carry no trustworthy time, so a worker derives its evidence
// nonce from an anchor (AnchoredNonce): evidence bound to that nonce cannot
// be older than the anchor's time, and a client that trusts the anchor's
// signer can judge the evidence's age without trusting the gateway's
// clock. Today the gateway's anchor key signs anchors; the transparency
// log's checkpoints take that role when the log lands.
const (
	MagicAnchor    = "SGTA"
	AnchorVersion  = 1
	AnchorKeyIDLen = 8
	// AnchorSize is the encoded size of an Anchor.
	AnchorSize  = 4 + 2 + NonceSize + 8 + AnchorKeyIDLen + 64
	anchorLabel = "sealgate/v1 time anchor\x00"
	nonceLabel  = "sealgate/v1 anchored nonce\x00"
)

// Anchor is a time anchor.
type Anchor struct {
	// Challenge is fresh randomness from the anchor's issuer.
	Challenge [NonceSize]byte
	// Time is when the issuer signed the anchor, to the millisecond.
	Time time.Time
	// KeyID names the signing key: the first 8 bytes of SHA-256 of its
	// Ed25519 public key.
	KeyID [AnchorKeyIDLen]byte
	// Signature is Ed25519 over SignedMessage.
	Signature [64]byte
}

// AnchorKeyID returns the KeyID of an Ed25519 public key.
func AnchorKeyID(publicKey []byte) [AnchorKeyIDLen]byte {
	h := sha256.Sum256(publicKey)
	return [AnchorKeyIDLen]byte(h[:AnchorKeyIDLen])
}

// SignedMessage returns the bytes the signature covers: a label, the
// challenge, the time in Unix milliseconds and the key id.
func (a *Anchor) SignedMessage() []byte {
	b := make([]byte, 0, len(anchorLabel)+NonceSize+8+AnchorKeyIDLen)
	b = append(b, anchorLabel...)
	b = append(b, a.Challenge[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Time.UnixMilli()))
	return append(b, a.KeyID[:]...)
}

// Marshal returns the anchor's encoding: magic, version, challenge, time,
// key id, signature.
func (a *Anchor) Marshal() ([]byte, error) {
	if a.Time.UnixMilli() <= 0 {
		return nil, malformed("anchor", "time", "found %v, want a time after 1970", a.Time)
	}
	b := make([]byte, 0, AnchorSize)
	b = append(b, MagicAnchor...)
	b = binary.BigEndian.AppendUint16(b, AnchorVersion)
	b = append(b, a.Challenge[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Time.UnixMilli()))
	b = append(b, a.KeyID[:]...)
	return append(b, a.Signature[:]...), nil
}

// ParseAnchor parses exactly AnchorSize bytes.
func ParseAnchor(b []byte) (*Anchor, error) {
	const s = "anchor"
	if len(b) != AnchorSize {
		return nil, malformed(s, "length", "found %d bytes, want %d", len(b), AnchorSize)
	}
	if string(b[:4]) != MagicAnchor {
		return nil, malformed(s, "magic", "found other bytes, want %q", MagicAnchor)
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != AnchorVersion {
		return nil, malformed(s, "version", "found %d, want %d", v, AnchorVersion)
	}
	var a Anchor
	b = b[6:]
	b = b[copy(a.Challenge[:], b):]
	ms := binary.BigEndian.Uint64(b)
	if ms == 0 || ms > 1<<62 {
		return nil, malformed(s, "time", "found %d, want a positive number of milliseconds", ms)
	}
	a.Time = time.UnixMilli(int64(ms)).UTC()
	b = b[8:]
	b = b[copy(a.KeyID[:], b):]
	copy(a.Signature[:], b)
	return &a, nil
}

// AnchoredNonce is the evidence nonce for an encoded anchor:
// SHA-256(label || anchor).
func AnchoredNonce(encodedAnchor []byte) [NonceSize]byte {
	h := sha256.New()
	h.Write([]byte(nonceLabel))
	h.Write(encodedAnchor)
	return [NonceSize]byte(h.Sum(nil))
}
