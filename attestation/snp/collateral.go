package snp

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Layout of the collateral encoding (see Collateral).
const (
	// CollateralMagic starts every encoded Collateral.
	CollateralMagic = "SGSC"
	// CollateralVersion is the encoding version this package writes and
	// reads.
	CollateralVersion = 1
	// MaxCollateralItem bounds each certificate and the CRL. AMD's are
	// 1 to 2 KiB.
	MaxCollateralItem = 64 << 10
)

// Key names the endorsement key that signed a report, as the report's
// SIGNING_KEY field does.
type Key uint8

// Endorsement keys.
const (
	// KeyVCEK is the Versioned Chip Endorsement Key, certified by the ASK.
	KeyVCEK Key = 0
	// KeyVLEK is the Versioned Loaded Endorsement Key, certified by the
	// ASVK.
	KeyVLEK Key = 1
)

// String returns "VCEK" or "VLEK".
func (k Key) String() string {
	switch k {
	case KeyVCEK:
		return "VCEK"
	case KeyVLEK:
		return "VLEK"
	}
	return fmt.Sprintf("key(%d)", uint8(k))
}

// intermediateName is the name of the CA that certifies k.
func (k Key) intermediateName() string {
	if k == KeyVLEK {
		return "ASVK"
	}
	return "ASK"
}

// Collateral is everything needed to verify an SEV-SNP report offline: the
// endorsement key's certificate chain up to the AMD root key, and the root's
// certificate revocation list. Certificates and the CRL are DER, exactly as
// AMD's Key Distribution Service (KDS) serves them.
//
// Encoding (all integers big-endian; every byte is determined by the
// fields, so parse-then-marshal gives back the same bytes):
//
//	magic        "SGSC"
//	version      uint16 = 1
//	key          uint8: 0 VCEK, 1 VLEK
//	endorsement  uint24 length (1..65536), DER certificate
//	intermediate uint24 length (1..65536), DER certificate
//	root         uint24 length (1..65536), DER certificate
//	crl present  uint8: 0 or 1
//	crl          if present: uint24 length (1..65536), DER CRL
type Collateral struct {
	// Key is the endorsement key the certificate is for.
	Key Key
	// Endorsement is the VCEK or VLEK certificate. Required.
	Endorsement []byte
	// Intermediate is the ASK (for a VCEK) or ASVK (for a VLEK)
	// certificate. Required.
	Intermediate []byte
	// Root is the ARK certificate. Required; Verify accepts it only if it
	// is a pinned root.
	Root []byte
	// CRL is the ARK's certificate revocation list for its intermediates.
	// Nil means none is carried; the policy's require_crl decides whether
	// that is acceptable.
	CRL []byte
}

// errCollateral is wrapped by every ParseCollateral and Marshal error.
var errCollateral = errors.New("malformed snp collateral")

func malformed(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", errCollateral, field, fmt.Sprintf(format, args...))
}

func (c *Collateral) validate() error {
	if c.Key != KeyVCEK && c.Key != KeyVLEK {
		return malformed("key", "found %d, want 0 (VCEK) or 1 (VLEK)", c.Key)
	}
	for _, it := range []struct {
		name string
		b    []byte
	}{{"endorsement", c.Endorsement}, {"intermediate", c.Intermediate}, {"root", c.Root}} {
		if len(it.b) < 1 || len(it.b) > MaxCollateralItem {
			return malformed(it.name, "found %d bytes, want 1 to %d", len(it.b), MaxCollateralItem)
		}
	}
	if c.CRL != nil && (len(c.CRL) < 1 || len(c.CRL) > MaxCollateralItem) {
		return malformed("crl", "found %d bytes, want 1 to %d", len(c.CRL), MaxCollateralItem)
	}
	return nil
}

// Marshal returns the canonical encoding of c.
func (c *Collateral) Marshal() ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddBytes([]byte(CollateralMagic))
	b.AddUint16(CollateralVersion)
	b.AddUint8(uint8(c.Key))
	for _, item := range [][]byte{c.Endorsement, c.Intermediate, c.Root} {
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(item) })
	}
	if c.CRL == nil {
		b.AddUint8(0)
	} else {
		b.AddUint8(1)
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.CRL) })
	}
	return b.Bytes()
}

// ParseCollateral parses the canonical encoding of a Collateral. It checks
// the envelope only; Verify parses and checks the certificates.
func ParseCollateral(raw []byte) (*Collateral, error) {
	in := cryptobyte.String(raw)
	var (
		c       Collateral
		magic   []byte
		version uint16
		key     uint8
		present uint8
	)
	if !in.ReadBytes(&magic, len(CollateralMagic)) || string(magic) != CollateralMagic {
		return nil, malformed("magic", "want %q", CollateralMagic)
	}
	if !in.ReadUint16(&version) || version != CollateralVersion {
		return nil, malformed("version", "found %d, want %d", version, CollateralVersion)
	}
	if !in.ReadUint8(&key) {
		return nil, malformed("key", "truncated")
	}
	c.Key = Key(key)
	for _, it := range []struct {
		name string
		dst  *[]byte
	}{{"endorsement", &c.Endorsement}, {"intermediate", &c.Intermediate}, {"root", &c.Root}} {
		var v cryptobyte.String
		if !in.ReadUint24LengthPrefixed(&v) {
			return nil, malformed(it.name, "truncated")
		}
		*it.dst = append([]byte{}, v...)
	}
	if !in.ReadUint8(&present) {
		return nil, malformed("crl present", "truncated")
	}
	switch present {
	case 0:
	case 1:
		var v cryptobyte.String
		if !in.ReadUint24LengthPrefixed(&v) {
			return nil, malformed("crl", "truncated")
		}
		c.CRL = append([]byte{}, v...)
	default:
		return nil, malformed("crl present", "found %d, want 0 or 1", present)
	}
	if !in.Empty() {
		return nil, malformed("length", "%d trailing bytes", len(in))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}
