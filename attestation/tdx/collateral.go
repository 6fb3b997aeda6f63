package tdx

import (
	"fmt"

	"github.com/sealgate/sealgate/proto"
	"golang.org/x/crypto/cryptobyte"
)

// Layout and limits of the collateral encoding.
const (
	// MagicCollateral starts every encoded Collateral.
	MagicCollateral = "SGTC"
	// CollateralVersion is the encoding version this package reads and
	// writes.
	CollateralVersion = 1

	// MaxJSONSize bounds the TCB info and QE identity responses. Intel's
	// are a few KiB.
	MaxJSONSize = 256 << 10
	// MaxCertSize bounds one DER certificate.
	MaxCertSize = 16 << 10
	// MaxCRLSize bounds one DER CRL.
	MaxCRLSize = 512 << 10
)

// Collateral is everything needed, besides the quote itself (which
// carries the PCK certificate chain), to verify a TDX quote offline: the
// responses of Intel's Provisioning Certification Service (PCS) v4 for the
// quote's platform, kept exactly as PCS returns them so that their
// signatures still verify.
//
// TCBInfo and QEIdentity are the raw response bodies of
// GET /tdx/certification/v4/tcb?fmspc=… and /tdx/certification/v4/qe/identity
// ({"tcbInfo":{…},"signature":"…"}); each IssuerChain is the certificate
// chain PCS sends in the response's issuer-chain header, in DER.
//
// The CRLs are optional in the encoding: PCKCRL, PCKCRLChain and RootCACRL
// are all present or all absent. Whether a verdict may rely on a quote
// whose collateral carries no CRLs is policy (policy.TDXRules.RequireCRL),
// so Verify records it in Claims.CRLChecked.
type Collateral struct {
	// TCBInfo is the TDX TCB info response body (raw signed JSON).
	TCBInfo []byte
	// TCBInfoChain signs TCBInfo (PCS header TCB-Info-Issuer-Chain).
	TCBInfoChain IssuerChain
	// QEIdentity is the TDX QE identity response body (raw signed JSON).
	QEIdentity []byte
	// QEIdentityChain signs QEIdentity (PCS header
	// SGX-Enclave-Identity-Issuer-Chain).
	QEIdentityChain IssuerChain
	// PCKCRL is the DER CRL of the CA that issued the quote's PCK
	// certificate (GET /sgx/certification/v4/pckcrl?ca=…&encoding=der).
	// Nil means no CRLs are carried.
	PCKCRL []byte
	// PCKCRLChain signs PCKCRL (PCS header SGX-PCK-CRL-Issuer-Chain). Zero
	// when PCKCRL is nil.
	PCKCRLChain IssuerChain
	// RootCACRL is the DER CRL of the Intel SGX Root CA, from the root
	// certificate's CRL distribution point. Nil when PCKCRL is nil.
	RootCACRL []byte
}

// IssuerChain is a PCS issuer chain: the signing certificate and the root
// it chains to, both in DER.
type IssuerChain struct {
	Signing []byte
	Root    []byte
}

// HasCRLs reports whether the collateral carries the PCK and root CA CRLs.
func (c *Collateral) HasCRLs() bool { return c.PCKCRL != nil }

func (ch *IssuerChain) empty() bool { return ch.Signing == nil && ch.Root == nil }

// Marshal returns the canonical encoding of c:
//
//	"SGTC" || uint16 version
//	|| uint24-prefixed TCBInfo || chain(TCBInfoChain)
//	|| uint24-prefixed QEIdentity || chain(QEIdentityChain)
//	|| uint8 crls (0 or 1)
//	[ || uint24-prefixed PCKCRL || chain(PCKCRLChain) || uint24-prefixed RootCACRL ]
//
// where chain(x) is uint16-prefixed x.Signing || uint16-prefixed x.Root,
// all integers big-endian. It fails if a field is empty or too large, or
// if the CRLs are only partly present.
func (c *Collateral) Marshal() ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddBytes([]byte(MagicCollateral))
	b.AddUint16(CollateralVersion)
	addUint24(&b, c.TCBInfo)
	addChain(&b, &c.TCBInfoChain)
	addUint24(&b, c.QEIdentity)
	addChain(&b, &c.QEIdentityChain)
	if !c.HasCRLs() {
		b.AddUint8(0)
	} else {
		b.AddUint8(1)
		addUint24(&b, c.PCKCRL)
		addChain(&b, &c.PCKCRLChain)
		addUint24(&b, c.RootCACRL)
	}
	out, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	if len(out) > proto.MaxCollateral {
		return nil, malformedCollateral("length", "found %d bytes, want at most %d", len(out), proto.MaxCollateral)
	}
	return out, nil
}

func addUint24(b *cryptobyte.Builder, v []byte) {
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

func addChain(b *cryptobyte.Builder, ch *IssuerChain) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ch.Signing) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ch.Root) })
}

// ParseCollateral parses the canonical encoding of a Collateral. It checks
// the framing only (magic, version, lengths, limits, CRL presence, no
// trailing bytes); Verify parses the certificates, CRLs and JSON inside.
// Parsing then marshaling gives back the same bytes.
func ParseCollateral(raw []byte) (*Collateral, error) {
	if len(raw) > proto.MaxCollateral {
		return nil, malformedCollateral("length", "found %d bytes, want at most %d", len(raw), proto.MaxCollateral)
	}
	in := cryptobyte.String(raw)
	var (
		c       Collateral
		magic   []byte
		version uint16
		crls    uint8
	)
	if !in.ReadBytes(&magic, len(MagicCollateral)) || string(magic) != MagicCollateral {
		return nil, malformedCollateral("magic", "want %q", MagicCollateral)
	}
	if !in.ReadUint16(&version) || version != CollateralVersion {
		return nil, malformedCollateral("version", "found %d, want %d", version, CollateralVersion)
	}
	if !readUint24(&in, &c.TCBInfo) || !readChain(&in, &c.TCBInfoChain) {
		return nil, malformedCollateral("tcb_info", "truncated")
	}
	if !readUint24(&in, &c.QEIdentity) || !readChain(&in, &c.QEIdentityChain) {
		return nil, malformedCollateral("qe_identity", "truncated")
	}
	if !in.ReadUint8(&crls) {
		return nil, malformedCollateral("crls", "truncated")
	}
	switch crls {
	case 0:
	case 1:
		if !readUint24(&in, &c.PCKCRL) || !readChain(&in, &c.PCKCRLChain) || !readUint24(&in, &c.RootCACRL) {
			return nil, malformedCollateral("crls", "truncated")
		}
	default:
		return nil, malformedCollateral("crls", "found %d, want 0 (absent) or 1 (present)", crls)
	}
	if !in.Empty() {
		return nil, malformedCollateral("length", "%d trailing bytes", len(in))
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// readUint24 reads a uint24-prefixed field into a fresh slice; an empty
// field reads as a non-nil empty slice so validate can refuse it.
func readUint24(in *cryptobyte.String, out *[]byte) bool {
	var v cryptobyte.String
	if !in.ReadUint24LengthPrefixed(&v) {
		return false
	}
	*out = append([]byte{}, v...)
	return true
}

func readChain(in *cryptobyte.String, ch *IssuerChain) bool {
	var s, r cryptobyte.String
	if !in.ReadUint16LengthPrefixed(&s) || !in.ReadUint16LengthPrefixed(&r) {
		return false
	}
	ch.Signing = append([]byte{}, s...)
	ch.Root = append([]byte{}, r...)
	return true
}

func (c *Collateral) validate() error {
	if err := checkField("tcb_info", c.TCBInfo, MaxJSONSize); err != nil {
		return err
	}
	if err := checkChainField("tcb_info issuer chain", &c.TCBInfoChain); err != nil {
		return err
	}
	if err := checkField("qe_identity", c.QEIdentity, MaxJSONSize); err != nil {
		return err
	}
	if err := checkChainField("qe_identity issuer chain", &c.QEIdentityChain); err != nil {
		return err
	}
	if !c.HasCRLs() {
		if c.RootCACRL != nil || !c.PCKCRLChain.empty() {
			return malformedCollateral("crls", "found a root ca crl or pck crl issuer chain without a pck crl, want all three or none")
		}
		return nil
	}
	if err := checkField("pck_crl", c.PCKCRL, MaxCRLSize); err != nil {
		return err
	}
	if err := checkChainField("pck_crl issuer chain", &c.PCKCRLChain); err != nil {
		return err
	}
	if c.RootCACRL == nil {
		return malformedCollateral("root_ca_crl", "found none with a pck crl, want both crls or neither")
	}
	return checkField("root_ca_crl", c.RootCACRL, MaxCRLSize)
}

func checkChainField(field string, ch *IssuerChain) error {
	if err := checkField(field+" signing certificate", ch.Signing, MaxCertSize); err != nil {
		return err
	}
	return checkField(field+" root certificate", ch.Root, MaxCertSize)
}

func checkField(field string, v []byte, max int) error {
	if len(v) < 1 || len(v) > max {
		return malformedCollateral(field, "found %d bytes, want 1 to %d", len(v), max)
	}
	return nil
}

// CollateralError is a malformed collateral encoding.
type CollateralError struct {
	Field  string // the field that is wrong, such as "tcb_info"
	Detail string // what was found and wanted
}

func (e *CollateralError) Error() string {
	return "tdx collateral: " + e.Field + ": " + e.Detail
}

func malformedCollateral(field, format string, args ...any) error {
	return &CollateralError{Field: field, Detail: fmt.Sprintf(format, args...)}
}
