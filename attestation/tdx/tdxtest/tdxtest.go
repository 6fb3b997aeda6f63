// Package tdxtest builds synthetic Intel TDX evidence for tests: a fixture
// PKI shaped like Intel's (an "Intel SGX Root CA", a PCK platform CA, a
// PCK certificate with SGX extensions, a TCB signing certificate), TDX V4
// quotes signed by a fixture quoting enclave, and PCS collateral (TCB
// info, QE identity, CRLs) signed by the fixture TCB signing key. Keys
// come from a seed and signatures are deterministic (RFC 6979), so the
// same inputs give the same bytes.
//
// TEST-ONLY. The fixture roots are trusted only where a test passes them
// in tdx.Options.Roots; production code never imports this package.
package tdxtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/sealgate/sealgate/internal/fixturekey"
	"math/big"
	"time"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/sealgate/sealgate/attestation/tdx"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Fixture platform identity, baked into the PCK certificate and the TCB
// info.
const (
	FMSPC  = "00906ed50000"
	PCEID  = "0000"
	PCESVN = 11
	// RootCRLURL is the fixture root's CRL distribution point.
	RootCRLURL = "https://sealgate.invalid/tdxtest/root-ca.crl"
	pckCRLURL  = "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=platform&encoding=der"
)

// CPUSVN is the fixture platform's SGX TCB component SVNs.
var CPUSVN = [16]byte{3, 3, 2, 2, 2, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0}

// Intel's distinguished names, which go-tdx-guest requires.
func intelName(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{"Intel Corporation"}, Locality: []string{"Santa Clara"}, Province: []string{"CA"}, Country: []string{"US"}}
}

// PKI is a fixture certificate hierarchy with Intel's names and shape.
type PKI struct {
	Root       *x509.Certificate
	PCKCA      *x509.Certificate
	PCK        *x509.Certificate
	TCBSigning *x509.Certificate

	rootKey, pckCAKey, pckKey, tcbKey *ecdsa.PrivateKey
}

// DeriveKey returns a P-256 key derived from seed and label.
func DeriveKey(seed, label string) *ecdsa.PrivateKey {
	return fixturekey.ECDSA(elliptic.P256(), "tdxtest", seed, label)
}

func serial(seed, label string) *big.Int { return fixturekey.Serial("tdxtest", seed, label, 20) }

// NewPKI derives a fixture PKI from seed. Certificates are valid from
// notBefore: the CAs for 25 years, the leaves for 7.
func NewPKI(seed string, notBefore time.Time) (*PKI, error) {
	p := &PKI{
		rootKey:  DeriveKey(seed, "root"),
		pckCAKey: DeriveKey(seed, "pck ca"),
		pckKey:   DeriveKey(seed, "pck"),
		tcbKey:   DeriveKey(seed, "tcb signing"),
	}
	notBefore = notBefore.UTC().Truncate(time.Second)
	ca := func(label, cn string, pathLen int, parent *x509.Certificate, parentKey, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
		t := &x509.Certificate{
			SerialNumber: serial(seed, label), Subject: intelName(cn),
			NotBefore: notBefore, NotAfter: notBefore.AddDate(25, 0, 0),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true, IsCA: true, MaxPathLen: pathLen, MaxPathLenZero: pathLen == 0,
			CRLDistributionPoints: []string{RootCRLURL},
			SubjectKeyId:          keyID(&key.PublicKey),
		}
		if parent == nil {
			parent, parentKey = t, key
		}
		return create(t, parent, &key.PublicKey, parentKey)
	}
	var err error
	if p.Root, err = ca("root", "Intel SGX Root CA", 1, nil, nil, p.rootKey); err != nil {
		return nil, err
	}
	if p.PCKCA, err = ca("pck ca", "Intel SGX PCK Platform CA", 0, p.Root, p.rootKey, p.pckCAKey); err != nil {
		return nil, err
	}
	if p.TCBSigning, err = create(&x509.Certificate{
		SerialNumber: serial(seed, "tcb signing"), Subject: intelName("Intel SGX TCB Signing"),
		NotBefore: notBefore, NotAfter: notBefore.AddDate(7, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true, CRLDistributionPoints: []string{RootCRLURL},
		SubjectKeyId: keyID(&p.tcbKey.PublicKey),
	}, p.Root, &p.tcbKey.PublicKey, p.rootKey); err != nil {
		return nil, err
	}
	sgx, err := sgxExtension(seed)
	if err != nil {
		return nil, err
	}
	// Six extensions, as go-tdx-guest requires of a PCK certificate:
	// authority and subject key ids, CRL distribution point, key usage,
	// basic constraints and the SGX extension.
	if p.PCK, err = create(&x509.Certificate{
		SerialNumber: serial(seed, "pck"), Subject: intelName("Intel SGX PCK Certificate"),
		NotBefore: notBefore, NotAfter: notBefore.AddDate(7, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true, CRLDistributionPoints: []string{pckCRLURL},
		SubjectKeyId:    keyID(&p.pckKey.PublicKey),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}, Value: sgx}},
	}, p.PCKCA, &p.pckKey.PublicKey, p.pckCAKey); err != nil {
		return nil, err
	}
	return p, nil
}

func keyID(pub *ecdsa.PublicKey) []byte { return fixturekey.SubjectKeyID(pub) }

// create signs a certificate deterministically: x509 signs with RFC 6979
// when given no randomness and the serial number is set.
func create(t, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(nil, t, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// sgxExtension encodes the PCK certificate's SGX extension
// (OID 1.2.840.113741.1.13.1): PPID, TCB (16 SGX component SVNs, PCESVN,
// CPUSVN), PCE ID, FMSPC and SGX type, as Intel's PCK certificates carry
// them.
func sgxExtension(seed string) ([]byte, error) {
	sgx := []int{1, 2, 840, 113741, 1, 13, 1}
	sub := func(tail ...int) asn1.ObjectIdentifier {
		return append(append(asn1.ObjectIdentifier{}, sgx...), tail...)
	}
	attr := func(b *cryptobyte.Builder, id asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(id)
			value(b)
		})
	}
	octets := func(v []byte) func(*cryptobyte.Builder) {
		return func(b *cryptobyte.Builder) { b.AddASN1OctetString(v) }
	}
	integer := func(v int64) func(*cryptobyte.Builder) {
		return func(b *cryptobyte.Builder) { b.AddASN1Int64(v) }
	}
	ppid := sha256.Sum256([]byte("sealgate tdxtest ppid " + seed))
	fmspc, _ := hex.DecodeString(FMSPC)
	pceid, _ := hex.DecodeString(PCEID)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		attr(b, sub(1), octets(ppid[:16]))
		attr(b, sub(2), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for i, svn := range CPUSVN {
					attr(b, sub(2, i+1), integer(int64(svn)))
				}
				attr(b, sub(2, 17), integer(PCESVN))
				attr(b, sub(2, 18), octets(CPUSVN[:]))
			})
		})
		attr(b, sub(3), octets(pceid))
		attr(b, sub(4), octets(fmspc))
		attr(b, sub(5), func(b *cryptobyte.Builder) { b.AddASN1Enum(0) })
	})
	return b.Bytes()
}

// chainPEM is the PCK certificate chain as a quote carries it: leaf,
// intermediate, root, in PEM.
func (p *PKI) chainPEM() []byte {
	var out []byte
	for _, c := range []*x509.Certificate{p.PCK, p.PCKCA, p.Root} {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// Roots returns a pool holding the fixture root, for tdx.Options.Roots.
func (p *PKI) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.Root)
	return pool
}

// TD is what a fixture quote reports.
type TD struct {
	ReportData    [64]byte
	TEETCBSVN     [16]byte
	MRSEAM        [48]byte
	MRTD          [48]byte
	MRConfigID    [48]byte
	MROwner       [48]byte
	MROwnerConfig [48]byte
	RTMR          [4][48]byte
	TDAttributes  [8]byte
	XFAM          [8]byte
	// QESVN is the quoting enclave's ISVSVN.
	QESVN uint16
}

// Measurement returns a fixture measurement: SHA-384 of a label.
func Measurement(label string) [48]byte {
	return sha512.Sum384([]byte("sealgate tdxtest measurement " + label))
}

// DefaultTD is a TDX 1.5 TD (TEE_TCB_SVN[1] = 1, so its TCB status comes
// from the TDX module identities) without DEBUG.
func DefaultTD() TD {
	return TD{
		TEETCBSVN:    [16]byte{5, 1, 2},
		MRSEAM:       Measurement("mrseam"),
		MRTD:         Measurement("mrtd"),
		RTMR:         [4][48]byte{Measurement("rtmr0"), Measurement("rtmr1"), Measurement("rtmr2")},
		TDAttributes: [8]byte{0, 0, 0, 0x10}, // SEPT_VE_DISABLE
		XFAM:         [8]byte{0xe7, 0x1a, 0x06},
		QESVN:        4,
	}
}

// QEMRSigner is the fixture quoting enclave's MRSIGNER.
var QEMRSigner = sha256.Sum256([]byte("sealgate tdxtest qe mrsigner"))

// QEProdID is the fixture quoting enclave's ISVPRODID (Intel's TD QE is 2).
const QEProdID = 2

// Tamper selects one defect to build into a quote.
type Tamper int

// Quote defects.
const (
	Intact Tamper = iota
	// BadQuoteSignature: the attestation key signs other bytes.
	BadQuoteSignature
	// BadQEReportSignature: the PCK key signs another QE report.
	BadQEReportSignature
	// UnboundAttestationKey: the QE report commits to another attestation
	// key than the one that signs the quote.
	UnboundAttestationKey
)

// Quote returns a TDX V4 quote for td, signed through p's PCK key by a
// fixture quoting enclave, with tamper's defect.
func (p *PKI) Quote(td TD, tamper Tamper) ([]byte, error) {
	attKey := DeriveKey("attestation", hex.EncodeToString(td.ReportData[:]))
	attPub, _ := attKey.PublicKey.Bytes() // 0x04 || X || Y
	attPub = attPub[1:]
	authData := make([]byte, 32)
	for i := range authData {
		authData[i] = byte(i)
	}
	boundKey := attPub
	if tamper == UnboundAttestationKey {
		other, _ := DeriveKey("attestation", "other").PublicKey.Bytes()
		boundKey = other[1:]
	}
	bound := sha256.Sum256(append(append([]byte{}, boundKey...), authData...))
	qeReport := &pb.EnclaveReport{
		CpuSvn: CPUSVN[:], MiscSelect: 0, Reserved1: make([]byte, 28),
		Attributes: []byte{0x15, 0, 0, 0, 0, 0, 0, 0, 0xe7, 0, 0, 0, 0, 0, 0, 0},
		MrEnclave:  sha256Sum("sealgate tdxtest qe mrenclave"), Reserved2: make([]byte, 32),
		MrSigner: QEMRSigner[:], Reserved3: make([]byte, 96),
		IsvProdId: QEProdID, IsvSvn: uint32(td.QESVN), Reserved4: make([]byte, 60),
		ReportData: append(bound[:], make([]byte, 32)...),
	}
	qeRaw, err := abi.EnclaveReportToAbiBytes(qeReport)
	if err != nil {
		return nil, err
	}
	if tamper == BadQEReportSignature {
		qeRaw = append([]byte("another qe report"), qeRaw...)
	}
	qeSig, err := sign(p.pckKey, qeRaw)
	if err != nil {
		return nil, err
	}
	header := &pb.Header{
		Version: 4, AttestationKeyType: abi.AttestationKeyType, TeeType: abi.TeeTDX,
		QeSvn: []byte{byte(td.QESVN), byte(td.QESVN >> 8)}, PceSvn: []byte{PCESVN, 0},
		QeVendorId: mustHex("939a7233f79c4ca9940a0db3957f0607"), UserData: make([]byte, 20),
	}
	body := &pb.TDQuoteBody{
		TeeTcbSvn: td.TEETCBSVN[:], MrSeam: td.MRSEAM[:], MrSignerSeam: make([]byte, 48),
		SeamAttributes: make([]byte, 8), TdAttributes: td.TDAttributes[:], Xfam: td.XFAM[:],
		MrTd: td.MRTD[:], MrConfigId: td.MRConfigID[:], MrOwner: td.MROwner[:], MrOwnerConfig: td.MROwnerConfig[:],
		Rtmrs:      [][]byte{td.RTMR[0][:], td.RTMR[1][:], td.RTMR[2][:], td.RTMR[3][:]},
		ReportData: td.ReportData[:],
	}
	hb, err := abi.HeaderToAbiBytes(header)
	if err != nil {
		return nil, err
	}
	bb, err := abi.TdQuoteBodyToAbiBytes(body)
	if err != nil {
		return nil, err
	}
	signed := append(hb, bb...)
	if tamper == BadQuoteSignature {
		signed = append([]byte("another td"), signed...)
	}
	quoteSig, err := sign(attKey, signed)
	if err != nil {
		return nil, err
	}
	chain := p.chainPEM()
	qeCert := &pb.QEReportCertificationData{
		QeReport: qeReport, QeReportSignature: qeSig,
		QeAuthData:              &pb.QeAuthData{ParsedDataSize: uint32(len(authData)), Data: authData},
		PckCertificateChainData: &pb.PCKCertificateChainData{CertificateDataType: 5, Size: uint32(len(chain)), PckCertChain: chain},
	}
	certSize := uint32(384 + 64 + 2 + len(authData) + 6 + len(chain))
	q := &pb.QuoteV4{
		Header: header, TdQuoteBody: body, SignedDataSize: 64 + 64 + 6 + certSize,
		SignedData: &pb.Ecdsa256BitQuoteV4AuthData{
			Signature: quoteSig, EcdsaAttestationKey: attPub,
			CertificationData: &pb.CertificationData{CertificateDataType: 6, Size: certSize, QeReportCertificationData: qeCert},
		},
	}
	return abi.QuoteToAbiBytes(q)
}

// sign returns the raw r||s ECDSA-P256-SHA256 signature of msg, the form
// quotes and PCS responses carry, deterministically (RFC 6979).
func sign(key *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	der, err := key.Sign(nil, h[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	var r, s big.Int
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) {
		return nil, fmt.Errorf("tdxtest: bad ecdsa signature encoding")
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

func sha256Sum(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Level is one TCB level of the fixture collateral. Platform levels use
// SGX, PCESVN and TDX; TDX module and QE levels use ISVSVN.
type Level struct {
	SGX        [16]byte
	PCESVN     uint16
	TDX        [16]byte
	ISVSVN     uint32
	Date       time.Time
	Status     string
	Advisories []string
}

// CollateralSpec describes fixture collateral.
type CollateralSpec struct {
	// IssueDate and NextUpdate bound the TCB info and the QE identity.
	IssueDate, NextUpdate time.Time
	// CRLThisUpdate and CRLNextUpdate bound both CRLs.
	CRLThisUpdate, CRLNextUpdate time.Time
	// TCBEvaluationNumber is both documents' tcbEvaluationDataNumber.
	TCBEvaluationNumber int
	// Platform, Module and QE list the TCB levels, best first.
	Platform, Module, QE []Level
	// MRSignerSeam is the TDX module signer the TCB info names.
	MRSignerSeam [48]byte
	// FMSPC is the platform the TCB info is for. Empty means FMSPC.
	FMSPC string
	// NoCRLs leaves the CRLs out.
	NoCRLs bool
	// RevokePCK lists the PCK certificate in the PCK CRL.
	RevokePCK bool
	// BadTCBInfoSignature and BadQEIdentitySignature sign other bytes.
	BadTCBInfoSignature, BadQEIdentitySignature bool
}

// DefaultCollateral returns collateral valid from issued for 30 days
// under which DefaultTD is UpToDate everywhere.
func DefaultCollateral(issued time.Time) CollateralSpec {
	issued = issued.UTC()
	date := issued.AddDate(0, -2, 0).Truncate(24 * time.Hour)
	old := issued.AddDate(-1, 0, 0).Truncate(24 * time.Hour)
	return CollateralSpec{
		IssueDate: issued, NextUpdate: issued.AddDate(0, 0, 30),
		CRLThisUpdate: issued, CRLNextUpdate: issued.AddDate(0, 0, 30),
		TCBEvaluationNumber: 17,
		Platform: []Level{
			{SGX: [16]byte{2, 2, 2, 2, 2, 1, 0, 3}, PCESVN: 11, TDX: [16]byte{5, 1, 2}, Date: date, Status: "UpToDate"},
			{SGX: [16]byte{}, PCESVN: 5, TDX: [16]byte{}, Date: old, Status: "OutOfDate", Advisories: []string{"INTEL-SA-00837", "INTEL-SA-00960"}},
		},
		Module: []Level{
			{ISVSVN: 5, Date: date, Status: "UpToDate"},
			{ISVSVN: 0, Date: old, Status: "OutOfDate", Advisories: []string{"INTEL-SA-01036"}},
		},
		QE: []Level{
			{ISVSVN: 4, Date: date, Status: "UpToDate"},
			{ISVSVN: 0, Date: old, Status: "OutOfDate", Advisories: []string{"INTEL-SA-00615"}},
		},
	}
}

// JSON shapes of Intel PCS v4 responses, in Intel's field order.
type (
	tcbInfoJSON struct {
		ID                      string               `json:"id"`
		Version                 int                  `json:"version"`
		IssueDate               string               `json:"issueDate"`
		NextUpdate              string               `json:"nextUpdate"`
		FMSPC                   string               `json:"fmspc"`
		PCEID                   string               `json:"pceId"`
		TCBType                 int                  `json:"tcbType"`
		TCBEvaluationDataNumber int                  `json:"tcbEvaluationDataNumber"`
		TDXModule               moduleJSON           `json:"tdxModule"`
		TDXModuleIdentities     []moduleIdentityJSON `json:"tdxModuleIdentities"`
		TCBLevels               []levelJSON          `json:"tcbLevels"`
	}
	moduleJSON struct {
		MRSigner       string `json:"mrsigner"`
		Attributes     string `json:"attributes"`
		AttributesMask string `json:"attributesMask"`
	}
	moduleIdentityJSON struct {
		ID             string      `json:"id"`
		MRSigner       string      `json:"mrsigner"`
		Attributes     string      `json:"attributes"`
		AttributesMask string      `json:"attributesMask"`
		TCBLevels      []levelJSON `json:"tcbLevels"`
	}
	levelJSON struct {
		TCB         tcbJSON  `json:"tcb"`
		TCBDate     string   `json:"tcbDate"`
		TCBStatus   string   `json:"tcbStatus"`
		AdvisoryIDs []string `json:"advisoryIDs,omitempty"`
	}
	tcbJSON struct {
		SGX    []svnJSON `json:"sgxtcbcomponents,omitempty"`
		PCESVN *uint16   `json:"pcesvn,omitempty"`
		TDX    []svnJSON `json:"tdxtcbcomponents,omitempty"`
		ISVSVN *uint32   `json:"isvsvn,omitempty"`
	}
	svnJSON struct {
		SVN byte `json:"svn"`
	}
	qeIdentityJSON struct {
		ID                      string      `json:"id"`
		Version                 int         `json:"version"`
		IssueDate               string      `json:"issueDate"`
		NextUpdate              string      `json:"nextUpdate"`
		TCBEvaluationDataNumber int         `json:"tcbEvaluationDataNumber"`
		MiscSelect              string      `json:"miscselect"`
		MiscSelectMask          string      `json:"miscselectMask"`
		Attributes              string      `json:"attributes"`
		AttributesMask          string      `json:"attributesMask"`
		MRSigner                string      `json:"mrsigner"`
		ISVProdID               int         `json:"isvprodid"`
		TCBLevels               []levelJSON `json:"tcbLevels"`
	}
)

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func upperHex(b []byte) string { return fmt.Sprintf("%X", b) }

func platformLevels(ls []Level) []levelJSON {
	var out []levelJSON
	for _, l := range ls {
		pce := l.PCESVN
		var t tcbJSON
		for i := range 16 {
			t.SGX = append(t.SGX, svnJSON{l.SGX[i]})
			t.TDX = append(t.TDX, svnJSON{l.TDX[i]})
		}
		t.PCESVN = &pce
		out = append(out, levelJSON{TCB: t, TCBDate: stamp(l.Date), TCBStatus: l.Status, AdvisoryIDs: l.Advisories})
	}
	return out
}

func isvLevels(ls []Level) []levelJSON {
	var out []levelJSON
	for _, l := range ls {
		isv := l.ISVSVN
		out = append(out, levelJSON{TCB: tcbJSON{ISVSVN: &isv}, TCBDate: stamp(l.Date), TCBStatus: l.Status, AdvisoryIDs: l.Advisories})
	}
	return out
}

// signedJSON returns {"<member>":<body>,"signature":"<hex r||s>"}, the
// shape of a PCS response, signed by key over body's exact bytes.
func signedJSON(member string, v any, key *ecdsa.PrivateKey, corrupt bool) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	msg := body
	if corrupt {
		msg = append([]byte("another body"), body...)
	}
	sig, err := sign(key, msg)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, `{"%s":%s,"signature":"%x"}`, member, body, sig), nil
}

// Collateral returns the collateral spec describes, signed by p.
func (p *PKI) Collateral(spec CollateralSpec) (*tdx.Collateral, error) {
	fmspc := spec.FMSPC
	if fmspc == "" {
		fmspc = FMSPC
	}
	info := tcbInfoJSON{
		ID: "TDX", Version: 3, IssueDate: stamp(spec.IssueDate), NextUpdate: stamp(spec.NextUpdate),
		FMSPC: fmspc, PCEID: PCEID, TCBType: 0, TCBEvaluationDataNumber: spec.TCBEvaluationNumber,
		TDXModule: moduleJSON{MRSigner: upperHex(spec.MRSignerSeam[:]), Attributes: "0000000000000000", AttributesMask: "FFFFFFFFFFFFFFFF"},
		TCBLevels: platformLevels(spec.Platform),
	}
	if len(spec.Module) > 0 {
		info.TDXModuleIdentities = []moduleIdentityJSON{{
			ID: "TDX_01", MRSigner: upperHex(spec.MRSignerSeam[:]), Attributes: "0000000000000000", AttributesMask: "FFFFFFFFFFFFFFFF",
			TCBLevels: isvLevels(spec.Module),
		}}
	}
	qe := qeIdentityJSON{
		ID: "TD_QE", Version: 2, IssueDate: stamp(spec.IssueDate), NextUpdate: stamp(spec.NextUpdate),
		TCBEvaluationDataNumber: spec.TCBEvaluationNumber,
		MiscSelect:              "00000000", MiscSelectMask: "FFFFFFFF",
		Attributes: "11000000000000000000000000000000", AttributesMask: "FBFFFFFFFFFFFFFF0000000000000000",
		MRSigner: upperHex(QEMRSigner[:]), ISVProdID: QEProdID, TCBLevels: isvLevels(spec.QE),
	}
	c := &tdx.Collateral{
		TCBInfoChain:    tdx.IssuerChain{Signing: p.TCBSigning.Raw, Root: p.Root.Raw},
		QEIdentityChain: tdx.IssuerChain{Signing: p.TCBSigning.Raw, Root: p.Root.Raw},
	}
	var err error
	if c.TCBInfo, err = signedJSON("tcbInfo", info, p.tcbKey, spec.BadTCBInfoSignature); err != nil {
		return nil, err
	}
	if c.QEIdentity, err = signedJSON("enclaveIdentity", qe, p.tcbKey, spec.BadQEIdentitySignature); err != nil {
		return nil, err
	}
	if spec.NoCRLs {
		return c, nil
	}
	revoked := []x509.RevocationListEntry{
		{SerialNumber: big.NewInt(0x5ea1), RevocationTime: spec.CRLThisUpdate.AddDate(0, -3, 0)},
		{SerialNumber: big.NewInt(0x6a7e), RevocationTime: spec.CRLThisUpdate.AddDate(0, -1, 0)},
	}
	if spec.RevokePCK {
		revoked = append(revoked, x509.RevocationListEntry{SerialNumber: p.PCK.SerialNumber, RevocationTime: spec.CRLThisUpdate.AddDate(0, 0, -1)})
	}
	if c.PCKCRL, err = x509.CreateRevocationList(nil, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: spec.CRLThisUpdate, NextUpdate: spec.CRLNextUpdate,
		RevokedCertificateEntries: revoked,
	}, p.PCKCA, p.pckCAKey); err != nil {
		return nil, err
	}
	c.PCKCRLChain = tdx.IssuerChain{Signing: p.PCKCA.Raw, Root: p.Root.Raw}
	if c.RootCACRL, err = x509.CreateRevocationList(nil, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: spec.CRLThisUpdate, NextUpdate: spec.CRLNextUpdate,
	}, p.Root, p.rootKey); err != nil {
		return nil, err
	}
	return c, nil
}

// Fixture is a PKI with a default TD and collateral, for tests that need
// valid TDX evidence for their own REPORT_DATA.
type Fixture struct {
	PKI        *PKI
	TD         TD
	Collateral CollateralSpec
}

// New returns a fixture whose certificates and collateral are valid at
// now (the collateral for 30 days from a week before).
func New(seed string, now time.Time) (*Fixture, error) {
	pki, err := NewPKI(seed, now.AddDate(-1, 0, 0))
	if err != nil {
		return nil, err
	}
	return &Fixture{PKI: pki, TD: DefaultTD(), Collateral: DefaultCollateral(now.AddDate(0, 0, -7))}, nil
}

// Evidence returns a quote carrying reportData and its encoded
// collateral, which tdx.Verify accepts with Options.Roots = f.PKI.Roots().
func (f *Fixture) Evidence(reportData [64]byte) (quote, collateral []byte, err error) {
	td := f.TD
	td.ReportData = reportData
	if quote, err = f.PKI.Quote(td, Intact); err != nil {
		return nil, nil, err
	}
	c, err := f.PKI.Collateral(f.Collateral)
	if err != nil {
		return nil, nil, err
	}
	collateral, err = c.Marshal()
	return quote, collateral, err
}
