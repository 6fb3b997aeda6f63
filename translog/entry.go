package translog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"

	"github.com/sealgate/sealgate/proto"
)

// Kind says what an entry records.
type Kind uint8

// Entry kinds. Their numbers are part of the encoding and never change.
const (
	// KindAdmission records a worker admitted with its evidence.
	KindAdmission Kind = 1
	// KindReattestation records a worker's fresh evidence and keys after
	// a re-attestation challenge.
	KindReattestation Kind = 2
	// KindDrain records a worker drained (no new requests), with why.
	KindDrain Kind = 3
	// KindEviction records a worker evicted, with why.
	KindEviction Kind = 4
	// KindPolicy records the admission policy the entries after it are
	// judged by, in full.
	KindPolicy Kind = 5
)

func (k Kind) String() string {
	switch k {
	case KindAdmission:
		return "admission"
	case KindReattestation:
		return "reattestation"
	case KindDrain:
		return "drain"
	case KindEviction:
		return "eviction"
	case KindPolicy:
		return "policy"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Encoding constants and limits of an entry (proto/SPEC.md §15).
const (
	MagicEntry     = "SGLE"
	EntryVersion   = 1
	MaxProviderID  = 64
	MaxReason      = 1024
	MaxPolicy      = 256 << 10
	MaxEntrySize   = 4 + 2 + 1 + 8 + 1 + proto.MaxWorkerIDLen + 1 + MaxProviderID + 1 + ed25519.PublicKeySize + 1 + ed25519.SignatureSize + 4*32 + 4 + proto.MaxBundleSize
	endorsementLen = ed25519.SignatureSize
)

// ErrMalformed is wrapped by every error ParseEntry and ParseCheckpoint
// return: the input is not a canonical encoding.
var ErrMalformed = errors.New("malformed")

func malformed(field, format string, args ...any) error {
	return fmt.Errorf("%w log entry: %s: %s", ErrMalformed, field, fmt.Sprintf(format, args...))
}

// Entry is one record of the transparency log. Which fields are set
// depends on Kind:
//
//   - KindAdmission, KindReattestation: WorkerID, ProviderID,
//     ProviderKey, Endorsement, PolicyHash, Nonce, Bundle,
//     CollateralHash, BundleHash.
//   - KindDrain, KindEviction: WorkerID, Reason.
//   - KindPolicy: Policy.
//
// Time, the gateway's clock when it decided (for evidence, the time it
// verified the bundle at), is always set, at millisecond resolution.
type Entry struct {
	Kind Kind
	Time time.Time

	WorkerID string
	// ProviderID names the worker's provider and ProviderKey is the
	// Ed25519 key whose Endorsement (over proto.EndorsementMessage of the
	// worker id and the bundle's keys) the gateway checked.
	ProviderID  string
	ProviderKey []byte
	Endorsement []byte
	// PolicyHash is the policy.Policy.Hash of the admission policy the
	// gateway verified the bundle against; a KindPolicy entry earlier in
	// the log carries it in full.
	PolicyHash [32]byte
	// Nonce is the nonce the bundle binds (the challenge's).
	Nonce [proto.NonceSize]byte
	// Bundle is the evidence bundle's canonical encoding with its
	// collateral left out; CollateralHash is the SHA-256 of that
	// collateral, stored once beside the log however many bundles share
	// it, and BundleHash the SHA-256 of the whole bundle as the worker
	// sent it. Use NewEvidence to fill them and FullBundle to rebuild it.
	Bundle         []byte
	CollateralHash [32]byte
	BundleHash     [32]byte

	// Reason says why a worker was drained or evicted: 1 to MaxReason
	// bytes of UTF-8.
	Reason string

	// Policy is the admission policy's canonical JSON (policy.Policy
	// marshalled), whose SHA-256 is the hash evidence entries name.
	Policy []byte
}

// NewEvidence returns an admission or re-attestation entry for bundle (a
// whole canonical evidence bundle) and the bundle's collateral, which the
// log stores by its hash.
func NewEvidence(kind Kind, at time.Time, workerID, providerID string, providerKey, endorsement []byte, policyHash [32]byte, bundle []byte) (Entry, []byte, error) {
	if kind != KindAdmission && kind != KindReattestation {
		return Entry{}, nil, fmt.Errorf("translog: new evidence entry: kind: found %v, want admission or reattestation", kind)
	}
	b, err := proto.ParseBundle(bundle)
	if err != nil {
		return Entry{}, nil, fmt.Errorf("translog: new evidence entry: %w", err)
	}
	collateral := b.Collateral
	b.Collateral = nil
	stripped, err := b.Marshal()
	if err != nil {
		return Entry{}, nil, fmt.Errorf("translog: new evidence entry: %w", err)
	}
	e := Entry{
		Kind: kind, Time: at.UTC().Truncate(time.Millisecond),
		WorkerID: workerID, ProviderID: providerID,
		ProviderKey: bytes.Clone(providerKey), Endorsement: bytes.Clone(endorsement),
		PolicyHash: policyHash, Nonce: b.Nonce, Bundle: stripped,
		CollateralHash: sha256.Sum256(collateral), BundleHash: proto.BundleHash(bundle),
	}
	if err := e.validate(); err != nil {
		return Entry{}, nil, fmt.Errorf("translog: new evidence entry: %w", err)
	}
	return e, collateral, nil
}

// FullBundle rebuilds the bundle an evidence entry records from its
// collateral, and checks both against the entry's hashes.
func (e *Entry) FullBundle(collateral []byte) ([]byte, error) {
	if e.Kind != KindAdmission && e.Kind != KindReattestation {
		return nil, fmt.Errorf("translog: full bundle: a %v entry has no bundle", e.Kind)
	}
	if sha256.Sum256(collateral) != e.CollateralHash {
		return nil, fmt.Errorf("translog: full bundle: collateral hash: found %x, want %x", sha256.Sum256(collateral), e.CollateralHash)
	}
	b, err := proto.ParseBundle(e.Bundle)
	if err != nil {
		return nil, fmt.Errorf("translog: full bundle: %w", err)
	}
	b.Collateral = collateral
	full, err := b.Marshal()
	if err != nil {
		return nil, fmt.Errorf("translog: full bundle: %w", err)
	}
	if h := proto.BundleHash(full); h != e.BundleHash {
		return nil, fmt.Errorf("translog: full bundle: bundle hash: found %x, want %x", h, e.BundleHash)
	}
	return full, nil
}

// NewPolicy returns a policy-change entry for a policy's canonical JSON.
func NewPolicy(at time.Time, policyJSON []byte) Entry {
	return Entry{Kind: KindPolicy, Time: at.UTC().Truncate(time.Millisecond), Policy: bytes.Clone(policyJSON)}
}

// PolicyHashOf is the hash evidence entries name a policy by: SHA-256 of
// its canonical JSON, as policy.Policy.Hash computes it.
func PolicyHashOf(policyJSON []byte) [32]byte { return sha256.Sum256(policyJSON) }

// NewStateChange returns a drain or eviction entry.
func NewStateChange(kind Kind, at time.Time, workerID, reason string) Entry {
	return Entry{Kind: kind, Time: at.UTC().Truncate(time.Millisecond), WorkerID: workerID, Reason: reason}
}

func (e *Entry) validate() error {
	if ms := e.Time.UnixMilli(); ms <= 0 || !e.Time.Equal(time.UnixMilli(ms)) {
		return malformed("time", "found %v, want a time after 1970 in whole milliseconds", e.Time)
	}
	switch e.Kind {
	case KindAdmission, KindReattestation:
		if err := checkWorkerID(e.WorkerID); err != nil {
			return err
		}
		if n := len(e.ProviderID); n < 1 || n > MaxProviderID {
			return malformed("provider id", "found %d bytes, want 1 to %d", n, MaxProviderID)
		}
		if len(e.ProviderKey) != ed25519.PublicKeySize {
			return malformed("provider key", "found %d bytes, want %d", len(e.ProviderKey), ed25519.PublicKeySize)
		}
		if len(e.Endorsement) != endorsementLen {
			return malformed("endorsement", "found %d bytes, want %d", len(e.Endorsement), endorsementLen)
		}
		b, err := proto.ParseBundle(e.Bundle)
		if err != nil {
			return malformed("bundle", "%v", err)
		}
		if len(b.Collateral) != 0 {
			return malformed("bundle", "found %d bytes of collateral inline, want none (it is stored by hash)", len(b.Collateral))
		}
		if b.Nonce != e.Nonce {
			return malformed("nonce", "found %x, want the bundle's %x", e.Nonce, b.Nonce)
		}
		if e.Reason != "" || e.Policy != nil {
			return malformed("kind", "%v entry with a reason or a policy", e.Kind)
		}
	case KindDrain, KindEviction:
		if err := checkWorkerID(e.WorkerID); err != nil {
			return err
		}
		if n := len(e.Reason); n < 1 || n > MaxReason || !utf8.ValidString(e.Reason) {
			return malformed("reason", "found %d bytes, want 1 to %d bytes of UTF-8", n, MaxReason)
		}
		if e.ProviderID != "" || e.ProviderKey != nil || e.Endorsement != nil || e.Bundle != nil || e.Policy != nil ||
			e.PolicyHash != ([32]byte{}) || e.Nonce != ([proto.NonceSize]byte{}) || e.CollateralHash != ([32]byte{}) || e.BundleHash != ([32]byte{}) {
			return malformed("kind", "%v entry with evidence or policy fields", e.Kind)
		}
	case KindPolicy:
		if n := len(e.Policy); n < 1 || n > MaxPolicy {
			return malformed("policy", "found %d bytes, want 1 to %d", n, MaxPolicy)
		}
		if e.WorkerID != "" || e.Reason != "" || e.ProviderID != "" || e.ProviderKey != nil || e.Endorsement != nil || e.Bundle != nil ||
			e.PolicyHash != ([32]byte{}) || e.Nonce != ([proto.NonceSize]byte{}) || e.CollateralHash != ([32]byte{}) || e.BundleHash != ([32]byte{}) {
			return malformed("kind", "policy entry with worker or evidence fields")
		}
	default:
		return malformed("kind", "found %d, want 1 to 5", uint8(e.Kind))
	}
	return nil
}

func checkWorkerID(id string) error {
	if n := len(id); n < 1 || n > proto.MaxWorkerIDLen {
		return malformed("worker id", "found %d bytes, want 1 to %d", n, proto.MaxWorkerIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return malformed("worker id", "found byte 0x%02x at offset %d, want [A-Za-z0-9._-]", c, i)
		}
	}
	return nil
}

// Marshal returns the canonical encoding of e, the bytes the log's leaf
// hash covers.
func (e *Entry) Marshal() ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddBytes([]byte(MagicEntry))
	b.AddUint16(EntryVersion)
	b.AddUint8(uint8(e.Kind))
	b.AddUint64(uint64(e.Time.UnixMilli()))
	switch e.Kind {
	case KindAdmission, KindReattestation:
		addU8(&b, []byte(e.WorkerID))
		addU8(&b, []byte(e.ProviderID))
		addU8(&b, e.ProviderKey)
		addU8(&b, e.Endorsement)
		b.AddBytes(e.PolicyHash[:])
		b.AddBytes(e.Nonce[:])
		b.AddBytes(e.CollateralHash[:])
		b.AddBytes(e.BundleHash[:])
		b.AddUint32LengthPrefixed(func(c *cryptobyte.Builder) { c.AddBytes(e.Bundle) })
	case KindDrain, KindEviction:
		addU8(&b, []byte(e.WorkerID))
		b.AddUint16LengthPrefixed(func(c *cryptobyte.Builder) { c.AddBytes([]byte(e.Reason)) })
	case KindPolicy:
		b.AddUint32LengthPrefixed(func(c *cryptobyte.Builder) { c.AddBytes(e.Policy) })
	}
	return b.Bytes()
}

func addU8(b *cryptobyte.Builder, v []byte) {
	b.AddUint8LengthPrefixed(func(c *cryptobyte.Builder) { c.AddBytes(v) })
}

// ParseEntry parses the canonical encoding of an Entry. Every error wraps
// ErrMalformed.
func ParseEntry(raw []byte) (*Entry, error) {
	if len(raw) > MaxEntrySize {
		return nil, malformed("length", "found %d bytes, want at most %d", len(raw), MaxEntrySize)
	}
	in := cryptobyte.String(raw)
	var (
		magic   []byte
		version uint16
		kind    uint8
		ms      uint64
		e       Entry
	)
	if !in.ReadBytes(&magic, 4) || string(magic) != MagicEntry {
		return nil, malformed("magic", "want %q", MagicEntry)
	}
	if !in.ReadUint16(&version) || version != EntryVersion {
		return nil, malformed("version", "found %d, want %d", version, EntryVersion)
	}
	if !in.ReadUint8(&kind) || !in.ReadUint64(&ms) {
		return nil, malformed("header", "truncated")
	}
	if ms == 0 || ms > 1<<62 {
		return nil, malformed("time", "found %d ms, want a time after 1970", ms)
	}
	e.Kind, e.Time = Kind(kind), time.UnixMilli(int64(ms)).UTC()
	var worker, provider, reason cryptobyte.String
	switch e.Kind {
	case KindAdmission, KindReattestation:
		var pk, end, bundle cryptobyte.String
		if !in.ReadUint8LengthPrefixed(&worker) || !in.ReadUint8LengthPrefixed(&provider) ||
			!in.ReadUint8LengthPrefixed(&pk) || !in.ReadUint8LengthPrefixed(&end) ||
			!in.CopyBytes(e.PolicyHash[:]) || !in.CopyBytes(e.Nonce[:]) ||
			!in.CopyBytes(e.CollateralHash[:]) || !in.CopyBytes(e.BundleHash[:]) ||
			!readU32(&in, &bundle) {
			return nil, malformed("evidence", "truncated")
		}
		e.WorkerID, e.ProviderID = string(worker), string(provider)
		e.ProviderKey, e.Endorsement, e.Bundle = bytes.Clone(pk), bytes.Clone(end), bytes.Clone(bundle)
	case KindDrain, KindEviction:
		if !in.ReadUint8LengthPrefixed(&worker) || !in.ReadUint16LengthPrefixed(&reason) {
			return nil, malformed("state change", "truncated")
		}
		e.WorkerID, e.Reason = string(worker), string(reason)
	case KindPolicy:
		var pol cryptobyte.String
		if !readU32(&in, &pol) {
			return nil, malformed("policy", "truncated")
		}
		e.Policy = bytes.Clone(pol)
	default:
		return nil, malformed("kind", "found %d, want 1 to 5", kind)
	}
	if !in.Empty() {
		return nil, malformed("length", "found %d trailing bytes, want none", len(in))
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

// readU32 reads a uint32-length-prefixed field.
func readU32(in *cryptobyte.String, out *cryptobyte.String) bool {
	var n uint32
	if !in.ReadUint32(&n) || uint64(n) > uint64(len(*in)) {
		return false
	}
	var b []byte
	if !in.ReadBytes(&b, int(n)) {
		return false
	}
	*out = b
	return true
}
