package proto

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// Limits of an evidence bundle.
const (
	MagicBundle      = "SGEB"
	BundleVersion    = 1
	NonceSize        = 32
	MaxKindLen       = 16
	MaxHPKEKeys      = 4
	SigningKeySize   = 32 // Ed25519
	MaxReportSize    = 64 << 10
	MaxCollateral    = 1 << 20
	MaxGPUs          = 16
	MaxGPUEvidence   = 256 << 10 // a report, its certificate chain and OCSP responses, and the driver and VBIOS RIMs
	MaxBundleSize    = 4 + 2 + 1 + MaxKindLen + NonceSize + 2 + 4 + MaxReportSize + 4 + MaxCollateral + 1 + MaxGPUs*(4+MaxGPUEvidence) + 2 + AnchorSize + maxModelList + 4096
	ReportDataSize   = 64
	reportDataDomain = "sealgate/v1 report data\x00"
)

// ModelDigestPrefix starts the text form of a model digest.
const ModelDigestPrefix = "sha256:"

// maxModelList bounds the model list of a bundle's keys block (SPEC.md
// §10.3): at most MaxModels entries, each a name of 1 to MaxModelLen
// bytes and a SHA-256.
const maxModelList = 1 + MaxModels*(1+MaxModelLen+sha256.Size)

// publicKeySize is the serialized HPKE public key length for each KEM.
func publicKeySize(kem uint16) int {
	switch kem {
	case KEMX25519:
		return 32
	case KEMMLKEM768X25519:
		return 1216
	}
	return -1
}

// HPKEKey is one HPKE public key a worker accepts requests under.
type HPKEKey struct {
	KEM       uint16
	PublicKey []byte
}

// ID returns the key's KeyID.
func (k HPKEKey) ID() KeyID { return NewKeyID(k.KEM, k.PublicKey) }

// WorkerKeys are the public keys a worker's evidence binds, and the
// models it serves.
type WorkerKeys struct {
	// HPKE lists the worker's request keys, one per KEM it supports.
	HPKE []HPKEKey
	// Signing is the worker's Ed25519 public key for receipts.
	Signing []byte
	// Models lists the models the worker serves with their digests, at
	// most MaxModels, sorted by Name with no name twice. Empty means the
	// worker binds no model (a builtin backend); its keys block then
	// encodes exactly as before models existed (SPEC.md §10.3).
	Models []ModelDigest
}

// ModelDigest names a model a worker serves and the SHA-256 that
// identifies it: of the weight files' canonical manifest (see
// enclave.DigestModelDir) or of the serving engine's model manifest.
type ModelDigest struct {
	// Name is the model's served name, as requests and end events name
	// it: 1 to MaxModelLen bytes of printable ASCII other than space and
	// comma.
	Name string
	// SHA256 is the digest.
	SHA256 [sha256.Size]byte
}

// String returns "name=sha256:<hex>".
func (m ModelDigest) String() string { return m.Name + "=" + FormatModelDigest(m.SHA256) }

// FormatModelDigest returns the text form of a model digest,
// "sha256:" and 64 lowercase hex digits, as policies and end events
// write it.
func FormatModelDigest(d [sha256.Size]byte) string {
	return ModelDigestPrefix + hex.EncodeToString(d[:])
}

// ParseModelDigest parses the text form of a model digest: "sha256:"
// and exactly 64 lowercase hex digits.
func ParseModelDigest(s string) ([sha256.Size]byte, error) {
	const st = "model digest"
	var d [sha256.Size]byte
	h, ok := strings.CutPrefix(s, ModelDigestPrefix)
	if !ok {
		return d, malformed(st, "prefix", "found %q, want %q", clipText(s, 8), ModelDigestPrefix)
	}
	if len(h) != 2*sha256.Size {
		return d, malformed(st, "hex", "found %d characters, want %d lowercase hex digits", len(h), 2*sha256.Size)
	}
	if strings.ToLower(h) != h {
		return d, malformed(st, "hex", "found upper case, want %d lowercase hex digits", 2*sha256.Size)
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, malformed(st, "hex", "found a character that is not a hex digit, want %d lowercase hex digits", 2*sha256.Size)
	}
	return d, nil
}

// CheckModelName reports whether name may name a model: 1 to MaxModelLen
// bytes of printable ASCII other than space and comma.
func CheckModelName(name string) error {
	if name == "" || len(name) > MaxModelLen {
		return malformed("model", "name", "found %d bytes, want 1 to %d", len(name), MaxModelLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == ',' {
			return malformed("model", "name", "found byte 0x%02x at offset %d, want printable ASCII other than space and comma", c, i)
		}
	}
	return nil
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Bundle is a worker's evidence bundle: the TEE report, the collateral
// needed to verify it offline, GPU evidence, and the keys and nonce its
// REPORT_DATA binds. Report and Collateral are opaque here; their layout
// depends on Kind and is checked by package attestation.
type Bundle struct {
	Kind       string
	Nonce      [NonceSize]byte
	Keys       WorkerKeys
	Report     []byte
	Collateral []byte
	GPU        [][]byte
	// Anchor is an encoded time anchor (proto.Anchor), or empty. When it
	// is set, Nonce must be AnchoredNonce(Anchor); hardware kinds need it
	// to prove freshness.
	Anchor []byte
}

// Marshal returns the canonical encoding of b.
func (b *Bundle) Marshal() ([]byte, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	var out cryptobyte.Builder
	out.AddBytes([]byte(MagicBundle))
	out.AddUint16(BundleVersion)
	out.AddUint8(uint8(len(b.Kind)))
	out.AddBytes([]byte(b.Kind))
	out.AddBytes(b.Nonce[:])
	keys := b.Keys.marshal()
	out.AddUint16(uint16(len(keys)))
	out.AddBytes(keys)
	out.AddUint32(uint32(len(b.Report)))
	out.AddBytes(b.Report)
	out.AddUint32(uint32(len(b.Collateral)))
	out.AddBytes(b.Collateral)
	out.AddBytes(b.marshalGPU())
	out.AddUint16(uint16(len(b.Anchor)))
	out.AddBytes(b.Anchor)
	return out.Bytes()
}

func (k *WorkerKeys) marshal() []byte {
	var out cryptobyte.Builder
	out.AddUint8(uint8(len(k.HPKE)))
	for _, h := range k.HPKE {
		out.AddUint16(h.KEM)
		out.AddUint16(uint16(len(h.PublicKey)))
		out.AddBytes(h.PublicKey)
	}
	out.AddUint8(uint8(len(k.Signing)))
	out.AddBytes(k.Signing)
	// The model list is present only when it is not empty, so a worker
	// binding no model encodes its keys as before the list existed.
	if len(k.Models) > 0 {
		out.AddUint8(uint8(len(k.Models)))
		for _, m := range k.Models {
			out.AddUint8(uint8(len(m.Name)))
			out.AddBytes([]byte(m.Name))
			out.AddBytes(m.SHA256[:])
		}
	}
	return out.BytesOrPanic()
}

func (b *Bundle) marshalGPU() []byte {
	var out cryptobyte.Builder
	out.AddUint8(uint8(len(b.GPU)))
	for _, g := range b.GPU {
		out.AddUint32(uint32(len(g)))
		out.AddBytes(g)
	}
	return out.BytesOrPanic()
}

// KeysHash is SHA-256 over the encoding of b.Keys.
func (b *Bundle) KeysHash() [32]byte { return sha256.Sum256(b.Keys.marshal()) }

// GPUHash is SHA-256 over the encoding of b.GPU (its count and every
// entry).
func (b *Bundle) GPUHash() [32]byte { return sha256.Sum256(b.marshalGPU()) }

// ReportData returns the 64 bytes a TEE report must carry to bind this
// bundle: SHA-512(label || KeysHash || GPUHash || Nonce). See SPEC.md.
func (b *Bundle) ReportData() [ReportDataSize]byte {
	return BindingHash(b.KeysHash(), b.GPUHash(), b.Nonce)
}

// BindingHash computes REPORT_DATA from its parts.
func BindingHash(keysHash, gpuHash [32]byte, nonce [NonceSize]byte) [ReportDataSize]byte {
	h := sha512.New()
	h.Write([]byte(reportDataDomain))
	h.Write(keysHash[:])
	h.Write(gpuHash[:])
	h.Write(nonce[:])
	var out [ReportDataSize]byte
	h.Sum(out[:0])
	return out
}

func (b *Bundle) validate() error {
	const s = "bundle"
	if len(b.Kind) < 1 || len(b.Kind) > MaxKindLen {
		return malformed(s, "kind", "found %d bytes, want 1 to %d", len(b.Kind), MaxKindLen)
	}
	for i := 0; i < len(b.Kind); i++ {
		if c := b.Kind[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return malformed(s, "kind", "found %q, want [a-z0-9]+", b.Kind)
		}
	}
	if n := len(b.Keys.HPKE); n < 1 || n > MaxHPKEKeys {
		return malformed(s, "hpke key count", "found %d, want 1 to %d", n, MaxHPKEKeys)
	}
	for i, k := range b.Keys.HPKE {
		want := publicKeySize(k.KEM)
		if want < 0 {
			return malformed(s, "hpke key kem", "key %d: found 0x%04x, want a supported KEM", i, k.KEM)
		}
		if len(k.PublicKey) != want {
			return malformed(s, "hpke public key", "key %d: found %d bytes, want %d", i, len(k.PublicKey), want)
		}
		for j := range i {
			if b.Keys.HPKE[j].KEM == k.KEM {
				return malformed(s, "hpke key kem", "keys %d and %d share KEM 0x%04x", j, i, k.KEM)
			}
		}
	}
	if len(b.Keys.Signing) != SigningKeySize {
		return malformed(s, "signing key", "found %d bytes, want %d", len(b.Keys.Signing), SigningKeySize)
	}
	if err := checkModels(b.Keys.Models); err != nil {
		return err
	}
	if len(b.Report) > MaxReportSize {
		return malformed(s, "report", "found %d bytes, want at most %d", len(b.Report), MaxReportSize)
	}
	if len(b.Collateral) > MaxCollateral {
		return malformed(s, "collateral", "found %d bytes, want at most %d", len(b.Collateral), MaxCollateral)
	}
	if len(b.GPU) > MaxGPUs {
		return malformed(s, "gpu count", "found %d, want at most %d", len(b.GPU), MaxGPUs)
	}
	for i, g := range b.GPU {
		if len(g) < 1 || len(g) > MaxGPUEvidence {
			return malformed(s, "gpu evidence", "entry %d: found %d bytes, want 1 to %d", i, len(g), MaxGPUEvidence)
		}
	}
	if len(b.Anchor) > 0 {
		if _, err := ParseAnchor(b.Anchor); err != nil {
			return err
		}
		if AnchoredNonce(b.Anchor) != b.Nonce {
			return malformed(s, "nonce", "found a nonce not derived from the bundle's anchor, want AnchoredNonce(anchor)")
		}
	}
	return nil
}

// ParseBundle parses the canonical encoding of a Bundle.
func ParseBundle(raw []byte) (*Bundle, error) {
	const s = "bundle"
	if len(raw) > MaxBundleSize {
		return nil, malformed(s, "length", "found %d bytes, want at most %d", len(raw), MaxBundleSize)
	}
	in := cryptobyte.String(raw)
	var (
		b       Bundle
		magic   []byte
		version uint16
		kind    cryptobyte.String
		keys    cryptobyte.String
		report  cryptobyte.String
		coll    cryptobyte.String
		nGPU    uint8
	)
	if !in.ReadBytes(&magic, 4) || string(magic) != MagicBundle {
		return nil, malformed(s, "magic", "want %q", MagicBundle)
	}
	if !in.ReadUint16(&version) || version != BundleVersion {
		return nil, malformed(s, "version", "found %d, want %d", version, BundleVersion)
	}
	if !in.ReadUint8LengthPrefixed(&kind) || !in.CopyBytes(b.Nonce[:]) {
		return nil, malformed(s, "kind or nonce", "truncated")
	}
	b.Kind = string(kind)
	if !in.ReadUint16LengthPrefixed(&keys) {
		return nil, malformed(s, "keys", "truncated")
	}
	if err := b.Keys.parse(keys); err != nil {
		return nil, err
	}
	if !readUint32Prefixed(&in, &report) || !readUint32Prefixed(&in, &coll) {
		return nil, malformed(s, "report or collateral", "truncated")
	}
	b.Report = append([]byte{}, report...)
	b.Collateral = append([]byte{}, coll...)
	if !in.ReadUint8(&nGPU) {
		return nil, malformed(s, "gpu count", "truncated")
	}
	if nGPU > MaxGPUs {
		return nil, malformed(s, "gpu count", "found %d, want at most %d", nGPU, MaxGPUs)
	}
	for i := range int(nGPU) {
		var g cryptobyte.String
		if !readUint32Prefixed(&in, &g) {
			return nil, malformed(s, "gpu evidence", "entry %d truncated", i)
		}
		b.GPU = append(b.GPU, append([]byte{}, g...))
	}
	var anchor cryptobyte.String
	if !in.ReadUint16LengthPrefixed(&anchor) {
		return nil, malformed(s, "anchor", "truncated")
	}
	if len(anchor) > 0 {
		b.Anchor = append([]byte{}, anchor...)
	}
	if !in.Empty() {
		return nil, malformed(s, "length", "%d trailing bytes", len(in))
	}
	if err := b.validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

func (k *WorkerKeys) parse(in cryptobyte.String) error {
	const s = "bundle keys"
	var n uint8
	if !in.ReadUint8(&n) {
		return malformed(s, "hpke key count", "truncated")
	}
	if n > MaxHPKEKeys {
		return malformed(s, "hpke key count", "found %d, want 1 to %d", n, MaxHPKEKeys)
	}
	for i := range int(n) {
		var h HPKEKey
		var pub cryptobyte.String
		if !in.ReadUint16(&h.KEM) || !in.ReadUint16LengthPrefixed(&pub) {
			return malformed(s, "hpke key", "key %d truncated", i)
		}
		h.PublicKey = append([]byte{}, pub...)
		k.HPKE = append(k.HPKE, h)
	}
	var sig cryptobyte.String
	if !in.ReadUint8LengthPrefixed(&sig) {
		return malformed(s, "signing key", "truncated")
	}
	k.Signing = append([]byte{}, sig...)
	if in.Empty() {
		return nil
	}
	// A model list follows; an empty one is encoded by its absence.
	var n2 uint8
	if !in.ReadUint8(&n2) || n2 == 0 || n2 > MaxModels {
		return malformed(s, "model count", "found %d, want 1 to %d (no models are encoded as no list)", n2, MaxModels)
	}
	for i := range int(n2) {
		var m ModelDigest
		var name cryptobyte.String
		if !in.ReadUint8LengthPrefixed(&name) || !in.CopyBytes(m.SHA256[:]) {
			return malformed(s, "model", "model %d truncated", i)
		}
		m.Name = string(name)
		k.Models = append(k.Models, m)
	}
	if !in.Empty() {
		return malformed(s, "length", "%d trailing bytes", len(in))
	}
	return nil
}

// checkModels checks a model list: at most MaxModels, valid names, sorted
// by name with none twice, so each set of models has one encoding.
func checkModels(models []ModelDigest) error {
	const s = "bundle"
	if len(models) > MaxModels {
		return malformed(s, "model count", "found %d, want at most %d", len(models), MaxModels)
	}
	for i, m := range models {
		if err := CheckModelName(m.Name); err != nil {
			return malformed(s, "model name", "model %d: %s", i, err.(*FieldError).Problem)
		}
		if i > 0 && models[i-1].Name >= m.Name {
			return malformed(s, "model order", "model %d: found %q after %q, want names strictly ascending", i, m.Name, models[i-1].Name)
		}
	}
	return nil
}

// BundleHash is the SHA-256 of an encoded bundle: the name under which
// clients cache verdicts and logs record admissions.
func BundleHash(encoded []byte) [32]byte { return sha256.Sum256(encoded) }

// readUint32Prefixed reads a 4-byte big-endian length and that many bytes.
func readUint32Prefixed(in *cryptobyte.String, out *cryptobyte.String) bool {
	var n uint32
	var b []byte
	if !in.ReadUint32(&n) || !in.ReadBytes(&b, int(n)) {
		return false
	}
	*out = b
	return true
}

const gpuNonceLabel = "sealgate/v1 gpu nonce\x00"

// GPUNonce is the nonce GPU i's attestation report must carry in a bundle
// with the given nonce: SHA-256(label || nonce || i as one byte), so every
// GPU's evidence is as fresh as the CPU TEE's and cannot be moved between
// positions or bundles.
func GPUNonce(nonce [NonceSize]byte, i int) [NonceSize]byte {
	h := sha256.New()
	h.Write([]byte(gpuNonceLabel))
	h.Write(nonce[:])
	h.Write([]byte{byte(i)})
	return [NonceSize]byte(h.Sum(nil))
}
