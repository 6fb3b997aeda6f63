package nvgpu

import (
	"fmt"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/proto"
	"golang.org/x/crypto/cryptobyte"
)

// Layout and limits of the evidence encoding.
const (
	// MagicEvidence starts every encoded Evidence.
	MagicEvidence = "SGGE"
	// EvidenceVersion is the encoding version this package reads and
	// writes.
	EvidenceVersion = 1

	// MaxReportSize bounds the attestation report: NVML's report buffer,
	// NVML_CC_GPU_ATTESTATION_REPORT_SIZE (0x2000).
	MaxReportSize = 0x2000
	// MaxCertificates bounds the device certificate chain. NVIDIA's
	// Hopper chains have 5 certificates.
	MaxCertificates = 8
	// MaxCertSize bounds one DER certificate.
	MaxCertSize = 16 << 10
	// MaxOCSPResponses bounds each list of OCSP responses.
	MaxOCSPResponses = 8
	// MaxOCSPSize bounds one DER OCSP response.
	MaxOCSPSize = 16 << 10
	// MaxRIMSize bounds one RIM. NVIDIA's are about 21 KiB.
	MaxRIMSize = 96 << 10
)

// Evidence is everything needed to verify one GPU offline: its
// attestation report, its certificate chain, revocation status, and the
// reference integrity manifests (RIMs) of its driver and VBIOS.
// proto.Bundle.GPU carries one encoded Evidence per GPU.
type Evidence struct {
	// Report is the raw attestation report: the SPDM GET_MEASUREMENTS
	// request and the signed response (ParseReport).
	Report []byte
	// CertChain is the GPU's attestation certificate chain as the device
	// supplies it, DER, leaf first; the last is normally NVIDIA's device
	// identity root. Verify never trusts a root because it is here.
	CertChain [][]byte
	// OCSP are DER OCSP responses for the chain's certificates, one per
	// certificate where available, in any order. NVIDIA's responder
	// covers every certificate but the leaf (made by the GPU's firmware
	// at boot) and the root.
	OCSP [][]byte
	// DriverRIM and VBIOSRIM are the signed RIMs (SWID XML with XML-DSig)
	// of the GPU's driver and VBIOS, exactly as NVIDIA's RIM service
	// serves them.
	DriverRIM []byte
	VBIOSRIM  []byte
	// RIMOCSP are DER OCSP responses for the certificates of both RIMs'
	// signing chains.
	RIMOCSP [][]byte
}

func malformedEvidence(field, found, want string) error {
	return check.Fail(check.CodeMalformed, "gpu evidence "+field, found, want)
}

// Marshal returns the canonical encoding of e:
//
//	"SGGE" || uint16 version
//	|| uint16-prefixed Report
//	|| uint8 count || count × uint16-prefixed certificate   (CertChain)
//	|| uint8 count || count × uint16-prefixed response      (OCSP)
//	|| uint24-prefixed DriverRIM || uint24-prefixed VBIOSRIM
//	|| uint8 count || count × uint16-prefixed response      (RIMOCSP)
//
// all integers big-endian. It fails if a field is empty or over its
// limit, or if the whole is over proto.MaxGPUEvidence.
func (e *Evidence) Marshal() ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddBytes([]byte(MagicEvidence))
	b.AddUint16(EvidenceVersion)
	addUint16(&b, e.Report)
	addList(&b, e.CertChain)
	addList(&b, e.OCSP)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.DriverRIM) })
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.VBIOSRIM) })
	addList(&b, e.RIMOCSP)
	out, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	if len(out) > proto.MaxGPUEvidence {
		return nil, malformedEvidence("length", fmt.Sprintf("%d bytes", len(out)), fmt.Sprintf("at most %d", proto.MaxGPUEvidence))
	}
	return out, nil
}

func addUint16(b *cryptobyte.Builder, v []byte) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

func addList(b *cryptobyte.Builder, vs [][]byte) {
	b.AddUint8(uint8(len(vs)))
	for _, v := range vs {
		addUint16(b, v)
	}
}

// ParseEvidence parses the canonical encoding of an Evidence. It checks
// the framing only (magic, version, lengths, counts, limits, no trailing
// bytes); Verify parses the report, certificates, responses and RIMs
// inside. Failures are *check.Error with CodeMalformed. Parsing then
// marshaling gives back the same bytes.
func ParseEvidence(raw []byte) (*Evidence, error) {
	if len(raw) > proto.MaxGPUEvidence {
		return nil, malformedEvidence("length", fmt.Sprintf("%d bytes", len(raw)), fmt.Sprintf("at most %d", proto.MaxGPUEvidence))
	}
	in := cryptobyte.String(raw)
	var (
		e       Evidence
		magic   []byte
		version uint16
	)
	if !in.ReadBytes(&magic, len(MagicEvidence)) || string(magic) != MagicEvidence {
		return nil, malformedEvidence("magic", fmt.Sprintf("%q", magic), fmt.Sprintf("%q", MagicEvidence))
	}
	if !in.ReadUint16(&version) || version != EvidenceVersion {
		return nil, malformedEvidence("version", fmt.Sprint(version), fmt.Sprint(EvidenceVersion))
	}
	if !readUint16(&in, &e.Report) {
		return nil, malformedEvidence("report", "a truncated field", "a uint16-prefixed report")
	}
	var ok bool
	if e.CertChain, ok = readList(&in); !ok {
		return nil, malformedEvidence("certificate chain", "a truncated list", "a count and uint16-prefixed certificates")
	}
	if e.OCSP, ok = readList(&in); !ok {
		return nil, malformedEvidence("ocsp responses", "a truncated list", "a count and uint16-prefixed responses")
	}
	if !readUint24(&in, &e.DriverRIM) {
		return nil, malformedEvidence("driver rim", "a truncated field", "a uint24-prefixed rim")
	}
	if !readUint24(&in, &e.VBIOSRIM) {
		return nil, malformedEvidence("vbios rim", "a truncated field", "a uint24-prefixed rim")
	}
	if e.RIMOCSP, ok = readList(&in); !ok {
		return nil, malformedEvidence("rim ocsp responses", "a truncated list", "a count and uint16-prefixed responses")
	}
	if !in.Empty() {
		return nil, malformedEvidence("length", fmt.Sprintf("%d trailing bytes", len(in)), "none")
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

// readUint16 and readUint24 read a prefixed field into a fresh slice; an
// empty field reads as a non-nil empty slice so validate can refuse it.
func readUint16(in *cryptobyte.String, out *[]byte) bool {
	var v cryptobyte.String
	if !in.ReadUint16LengthPrefixed(&v) {
		return false
	}
	*out = append([]byte{}, v...)
	return true
}

func readUint24(in *cryptobyte.String, out *[]byte) bool {
	var v cryptobyte.String
	if !in.ReadUint24LengthPrefixed(&v) {
		return false
	}
	*out = append([]byte{}, v...)
	return true
}

func readList(in *cryptobyte.String) ([][]byte, bool) {
	var n uint8
	if !in.ReadUint8(&n) {
		return nil, false
	}
	var out [][]byte
	for range n {
		var v []byte
		if !readUint16(in, &v) {
			return nil, false
		}
		out = append(out, v)
	}
	return out, true
}

func (e *Evidence) validate() error {
	if err := checkSize("report", e.Report, MaxReportSize); err != nil {
		return err
	}
	if len(e.CertChain) < 2 || len(e.CertChain) > MaxCertificates {
		return malformedEvidence("certificate chain", fmt.Sprintf("%d certificates", len(e.CertChain)), fmt.Sprintf("2 to %d", MaxCertificates))
	}
	for i, c := range e.CertChain {
		if err := checkSize(fmt.Sprintf("certificate %d", i), c, MaxCertSize); err != nil {
			return err
		}
	}
	if err := checkResponses("ocsp", e.OCSP); err != nil {
		return err
	}
	if err := checkSize("driver rim", e.DriverRIM, MaxRIMSize); err != nil {
		return err
	}
	if err := checkSize("vbios rim", e.VBIOSRIM, MaxRIMSize); err != nil {
		return err
	}
	return checkResponses("rim ocsp", e.RIMOCSP)
}

func checkResponses(field string, rs [][]byte) error {
	if len(rs) > MaxOCSPResponses {
		return malformedEvidence(field+" responses", fmt.Sprint(len(rs)), fmt.Sprintf("at most %d", MaxOCSPResponses))
	}
	for i, r := range rs {
		if err := checkSize(fmt.Sprintf("%s response %d", field, i), r, MaxOCSPSize); err != nil {
			return err
		}
	}
	return nil
}

func checkSize(field string, v []byte, max int) error {
	if len(v) < 1 || len(v) > max {
		return malformedEvidence(field, fmt.Sprintf("%d bytes", len(v)), fmt.Sprintf("1 to %d", max))
	}
	return nil
}
