package tdx

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/verify"
	"github.com/google/go-tdx-guest/verify/trust"
	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/proto"
)

// TCBStatusNotSupported is the TCB status of a platform, TDX module or QE
// that no TCB level of Intel's collateral matches (Intel's QVL calls this
// TCB_NOT_SUPPORTED): its TCB is older than anything Intel still lists, or
// the collateral is for another platform. No policy accepts it.
const TCBStatusNotSupported = "NotSupported"

// Options configure Verify.
type Options struct {
	// Now is the time at which every certificate, CRL, the TCB info and
	// the QE identity must be valid. Required: the zero time is a
	// CodeOptions error, so nothing verifies at the wall clock by
	// accident.
	Now time.Time
	// Roots are the trusted roots of the PCK certificate chain and of
	// every PCS issuer chain. Nil means the pinned Intel SGX Root CA
	// (IntelRoots). Production code leaves it nil; tests inject fixture
	// roots.
	Roots *x509.CertPool
}

// Claims are the fields of a verified TDX quote and of the collateral it
// was verified against. Verify returns Claims only for a quote whose
// signatures, chains, revocation and collateral all verified; Validate
// then applies a policy to them.
type Claims struct {
	// ReportData is the TD's REPORT_DATA: for sealgate workers, the
	// binding hash of the bundle (proto.Bundle.ReportData).
	ReportData [64]byte
	// MRTD measures the TD's initial contents (the firmware).
	MRTD [48]byte
	// RTMR are the TD's runtime measurement registers 0 to 3.
	RTMR [4][48]byte
	// MRSEAM, MRConfigID, MROwner and MROwnerConfig are the TD quote
	// body's other identity fields, for audit records.
	MRSEAM, MRConfigID, MROwner, MROwnerConfig [48]byte
	// TDAttributes and XFAM are the TD's attributes and extended feature
	// mask, little-endian as in the quote.
	TDAttributes [8]byte
	XFAM         [8]byte
	// TEETCBSVN is the TDX module's TEE_TCB_SVN.
	TEETCBSVN [16]byte
	// Debug is the TD attribute DEBUG (TDAttributes bit 0): the host can
	// read and change the TD's memory.
	Debug bool
	// FMSPC identifies the platform's processor family and model, in hex.
	FMSPC string
	// TCBStatus is the status of the TCB level the platform matches in
	// the TCB info (PCK certificate SVNs and TEE_TCB_SVN), such as
	// "UpToDate" or "OutOfDate", or TCBStatusNotSupported.
	TCBStatus string
	// TDXModuleTCBStatus is the status of the TDX module's TCB level in
	// the TCB info's TDX module identities, when TEE_TCB_SVN[1] is not
	// zero (TDX 1.5 and later); empty otherwise.
	TDXModuleTCBStatus string
	// QETCBStatus is the status of the quoting enclave's TCB level in the
	// QE identity.
	QETCBStatus string
	// TCBEvaluationNumber is the smaller of the TCB info's and the QE
	// identity's tcbEvaluationDataNumber.
	TCBEvaluationNumber uint32
	// AdvisoryIDs lists the Intel security advisories of every matched
	// TCB level, sorted, without duplicates.
	AdvisoryIDs []string
	// CRLChecked reports whether the collateral carried the PCK and root
	// CA CRLs and revocation was checked against them.
	CRLChecked bool
	// NextUpdate is the earliest time at which any collateral relied on
	// expires or is due for an update: the TCB info's and QE identity's
	// nextUpdate, the CRLs' nextUpdate and every certificate's NotAfter.
	// A verdict on these Claims must not be reused after it.
	NextUpdate time.Time
}

// Verify checks a TDX V4 quote against its collateral (an encoded
// Collateral) at opts.Now, with no network access, and returns the
// quote's Claims. It does not check REPORT_DATA or any policy: the caller
// compares Claims.ReportData with the bundle's binding hash, then calls
// Validate.
//
// Checks and their codes, in order:
//   - opts.Now is set (CodeOptions);
//   - the quote parses as a V4 ECDSA-P256 TDX quote with no trailing
//     bytes, the collateral parses, and so do the certificates, CRLs and
//     JSON inside it (CodeMalformed);
//   - every certificate, both CRLs, the TCB info and the QE identity are
//     valid at opts.Now (CodeCollateralExpired);
//   - go-tdx-guest's verify.TdxQuote, fed the carried collateral through a
//     getter that never touches the network, checks the QE report
//     signature, the attestation key's binding in the QE report, the quote
//     signature, the PCK chain to the roots, revocation by the CRLs, the
//     TCB info and QE identity signatures and issuer chains, and that the
//     collateral is for this platform, TDX module and QE. When it refuses
//     the quote, Verify redoes the checks in the order of the chain of
//     trust and reports the first that fails: the QE report signature,
//     the attestation key binding and the quote signature
//     (CodeSignature), the PCK chain to the roots (CodeChain), the CRLs'
//     signatures (CodeSignature) and revocation (CodeRevoked), the TCB
//     info's and QE identity's issuer chains (CodeChain) and signatures
//     (CodeSignature). If none fails, the library refused something else
//     (a certificate name, or collateral for another platform, TDX module
//     or QE): CodeSignature, field "quote", with the library's error.
//
// A TCB status other than UpToDate is not an error here: go-tdx-guest
// refuses it, but whether it is acceptable is policy, so Verify reports
// the statuses in Claims and Validate decides.
func Verify(quote, collateral []byte, opts Options) (*Claims, error) {
	if opts.Now.IsZero() {
		return nil, check.Fail(check.CodeOptions, "now", "zero time", "the time to verify at")
	}
	roots := opts.Roots
	if roots == nil {
		roots = IntelRoots()
	}
	q, err := parseQuote(quote)
	if err != nil {
		return nil, check.Wrap(check.CodeMalformed, "quote", err)
	}
	c, err := ParseCollateral(collateral)
	if err != nil {
		return nil, check.Wrap(check.CodeMalformed, "collateral", err)
	}
	d, err := decodeCollateral(c)
	if err != nil {
		return nil, err
	}
	chain, err := verify.ExtractChainFromQuote(q)
	if err != nil {
		return nil, check.Wrap(check.CodeMalformed, "pck certificate chain", err)
	}
	exts, err := pcs.PckCertificateExtensions(chain.PCKCertificate)
	if err != nil {
		return nil, check.Wrap(check.CodeMalformed, "pck certificate extensions", err)
	}
	nextUpdate, err := checkTimes(opts.Now, chain, d)
	if err != nil {
		return nil, err
	}

	lib := &verify.Options{
		GetCollateral:    true,
		CheckRevocations: c.HasCRLs(),
		Getter:           d.getter(),
		Now:              &verify.TimeSet{PckCertChain: opts.Now, TcbInfo: opts.Now, QeIdentity: opts.Now, PckCrl: opts.Now, RootCaCrl: opts.Now},
		// Always a pool: given nil, the library trusts its own copy of the
		// Intel root and logs a warning to stdout.
		TrustedRoots: roots,
	}
	libErr := libraryVerify(q, lib)
	switch {
	case libErr == nil:
	case strings.HasPrefix(libErr.Error(), libPlatformStatusFailure):
		// go-tdx-guest stops at the platform's TCB status, before it
		// compares the QE report with the QE identity: finish that step.
		if err := checkQEIdentity(q, &d.qeIdentity.EnclaveIdentity); err != nil {
			return nil, err
		}
	case strings.HasPrefix(libErr.Error(), libQEStatusFailure):
		// The QE's TCB status is the last check go-tdx-guest makes.
	default:
		return nil, diagnose(q, chain, d, roots, opts.Now, libErr)
	}

	cl := claimsFromQuote(q)
	cl.FMSPC = exts.FMSPC
	cl.CRLChecked = c.HasCRLs()
	cl.NextUpdate = nextUpdate
	cl.TCBEvaluationNumber = uint32(min(d.tcbInfo.TcbInfo.TcbEvaluationDataNumber, d.qeIdentity.EnclaveIdentity.TcbEvaluationDataNumber))
	levels(&cl, q, lib, exts, d)
	return &cl, nil
}

// The messages with which go-tdx-guest (at the version in go.mod) reports
// a TCB status other than UpToDate. They are the only library failures
// Verify does not turn into an error, and each is the last check of its
// stage, so everything before it passed. If a library upgrade changes
// them, those quotes fail closed (Verify refuses them) and the
// tcb-out-of-date vectors fail.
const (
	libPlatformStatusFailure = "TDX TCB info reported by Intel PCS failed TCB status check: "
	libQEStatusFailure       = "QE Identity reported by Intel PCS failed TCB status check: "
)

// parseQuote parses raw with go-tdx-guest's abi package and requires a
// V4 quote with nothing after its signed data.
func parseQuote(raw []byte) (q *pb.QuoteV4, err error) {
	if len(raw) > proto.MaxReportSize {
		return nil, fmt.Errorf("length: found %d bytes, want at most %d", len(raw), proto.MaxReportSize)
	}
	// The library's V4 parser trusts the quote's inner length fields and
	// can slice out of range on hostile input; that is a malformed quote,
	// not a crash.
	defer func() {
		if r := recover(); r != nil {
			q, err = nil, fmt.Errorf("inner lengths are inconsistent (go-tdx-guest abi: %v)", r)
		}
	}()
	parsed, err := abi.QuoteToProto(raw)
	if err != nil {
		return nil, err
	}
	v4, ok := parsed.(*pb.QuoteV4)
	if !ok {
		return nil, fmt.Errorf("version: found %d, want 4", binary.LittleEndian.Uint16(raw))
	}
	if n := len(v4.GetExtraBytes()); n != 0 {
		return nil, fmt.Errorf("length: found %d bytes after the signed data, want none", n)
	}
	return v4, nil
}

// libraryVerify runs go-tdx-guest's verification, turning a panic on
// hostile input into an error.
func libraryVerify(q *pb.QuoteV4, opts *verify.Options) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("go-tdx-guest verify panicked: %v", r)
		}
	}()
	return verify.TdxQuote(q, opts)
}

// decoded is a Collateral with its contents parsed.
type decoded struct {
	raw *Collateral

	tcbInfo         pcs.TdxTcbInfo
	tcbInfoBody     []byte // the signed "tcbInfo" member, byte for byte
	tcbInfoChain    certPair
	qeIdentity      pcs.QeIdentity
	qeIdentityBody  []byte // the signed "enclaveIdentity" member
	qeIdentityChain certPair

	// Set when the collateral carries CRLs.
	pckCRL      *x509.RevocationList
	pckCRLChain certPair
	rootCRL     *x509.RevocationList
}

type certPair struct{ signing, root *x509.Certificate }

func decodeCollateral(c *Collateral) (*decoded, error) {
	d := &decoded{raw: c}
	var err error
	if d.tcbInfoBody, err = decodeSigned(c.TCBInfo, "tcbInfo", &d.tcbInfo); err != nil {
		return nil, check.Wrap(check.CodeMalformed, "collateral tcb_info", err)
	}
	if d.qeIdentityBody, err = decodeSigned(c.QEIdentity, "enclaveIdentity", &d.qeIdentity); err != nil {
		return nil, check.Wrap(check.CodeMalformed, "collateral qe_identity", err)
	}
	if n := d.tcbInfo.TcbInfo.TcbEvaluationDataNumber; n < 0 || n > 1<<31-1 {
		return nil, check.Fail(check.CodeMalformed, "collateral tcb_info tcbEvaluationDataNumber", fmt.Sprint(n), "0 to 2^31-1")
	}
	if n := d.qeIdentity.EnclaveIdentity.TcbEvaluationDataNumber; n < 0 || n > 1<<31-1 {
		return nil, check.Fail(check.CodeMalformed, "collateral qe_identity tcbEvaluationDataNumber", fmt.Sprint(n), "0 to 2^31-1")
	}
	if d.tcbInfoChain, err = parsePair(&c.TCBInfoChain); err != nil {
		return nil, check.Wrap(check.CodeMalformed, "collateral tcb_info issuer chain", err)
	}
	if d.qeIdentityChain, err = parsePair(&c.QEIdentityChain); err != nil {
		return nil, check.Wrap(check.CodeMalformed, "collateral qe_identity issuer chain", err)
	}
	if !c.HasCRLs() {
		return d, nil
	}
	if d.pckCRL, err = parseCRL(c.PCKCRL); err != nil {
		return nil, check.Wrap(check.CodeMalformed, "collateral pck_crl", err)
	}
	if d.pckCRLChain, err = parsePair(&c.PCKCRLChain); err != nil {
		return nil, check.Wrap(check.CodeMalformed, "collateral pck_crl issuer chain", err)
	}
	if d.rootCRL, err = parseCRL(c.RootCACRL); err != nil {
		return nil, check.Wrap(check.CodeMalformed, "collateral root_ca_crl", err)
	}
	return d, nil
}

// decodeSigned decodes a PCS response body into v (go-tdx-guest's pcs
// types) and returns the raw bytes of its signed member.
func decodeSigned(body []byte, member string, v any) ([]byte, error) {
	if err := json.Unmarshal(body, v); err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	signed, ok := raw[member]
	if !ok {
		return nil, fmt.Errorf("member %q: found none, want the signed body", member)
	}
	return signed, nil
}

func parsePair(ch *IssuerChain) (certPair, error) {
	s, err := x509.ParseCertificate(ch.Signing)
	if err != nil {
		return certPair{}, fmt.Errorf("signing certificate: %v", err)
	}
	r, err := x509.ParseCertificate(ch.Root)
	if err != nil {
		return certPair{}, fmt.Errorf("root certificate: %v", err)
	}
	return certPair{signing: s, root: r}, nil
}

func parseCRL(der []byte) (*x509.RevocationList, error) {
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, err
	}
	if crl.NextUpdate.IsZero() {
		return nil, errors.New("next update: found none, want a time")
	}
	return crl, nil
}

// checkTimes checks that everything the verdict relies on is valid at now
// and returns the earliest time at which something stops being valid.
func checkTimes(now time.Time, chain *verify.PCKCertificateChain, d *decoded) (time.Time, error) {
	type window struct {
		field          string
		from, to       time.Time
		fromWord, toWd string
	}
	cert := func(field string, c *x509.Certificate) window {
		return window{field, c.NotBefore, c.NotAfter, "not before", "not after"}
	}
	ws := []window{
		cert("pck certificate", chain.PCKCertificate),
		cert("pck ca certificate", chain.IntermediateCertificate),
		cert("pck root certificate", chain.RootCertificate),
		{"tcb_info", d.tcbInfo.TcbInfo.IssueDate, d.tcbInfo.TcbInfo.NextUpdate, "issueDate", "nextUpdate"},
		cert("tcb_info signing certificate", d.tcbInfoChain.signing),
		cert("tcb_info root certificate", d.tcbInfoChain.root),
		{"qe_identity", d.qeIdentity.EnclaveIdentity.IssueDate, d.qeIdentity.EnclaveIdentity.NextUpdate, "issueDate", "nextUpdate"},
		cert("qe_identity signing certificate", d.qeIdentityChain.signing),
		cert("qe_identity root certificate", d.qeIdentityChain.root),
	}
	if d.pckCRL != nil {
		ws = append(ws,
			window{"pck_crl", d.pckCRL.ThisUpdate, d.pckCRL.NextUpdate, "thisUpdate", "nextUpdate"},
			cert("pck_crl signing certificate", d.pckCRLChain.signing),
			cert("pck_crl root certificate", d.pckCRLChain.root),
			window{"root_ca_crl", d.rootCRL.ThisUpdate, d.rootCRL.NextUpdate, "thisUpdate", "nextUpdate"},
		)
	}
	var earliest time.Time
	for _, w := range ws {
		if now.Before(w.from) || now.After(w.to) {
			return time.Time{}, check.Fail(check.CodeCollateralExpired, w.field,
				fmt.Sprintf("%s %s, %s %s", w.fromWord, stamp(w.from), w.toWd, stamp(w.to)),
				"valid at "+stamp(now))
		}
		if earliest.IsZero() || w.to.Before(earliest) {
			earliest = w.to
		}
	}
	return earliest.UTC(), nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// getter serves the carried collateral to go-tdx-guest at the PCS URLs it
// asks for, so its collateral checks run offline on exactly these bytes.
func (d *decoded) getter() trust.HTTPSGetter { return collateralGetter{d} }

type collateralGetter struct{ d *decoded }

var _ trust.HTTPSGetter = collateralGetter{}

// Get implements trust.HTTPSGetter without any network access.
func (g collateralGetter) Get(u string) (map[string][]string, []byte, error) {
	c := g.d.raw
	switch {
	case strings.HasPrefix(u, pcs.TdxBaseURL+"/tcb?fmspc="):
		return issuerHeader(pcs.TcbInfoIssuerChainPhrase, &c.TCBInfoChain), c.TCBInfo, nil
	case u == pcs.QeIdentityURL():
		return issuerHeader(pcs.SgxQeIdentityIssuerChainPhrase, &c.QEIdentityChain), c.QEIdentity, nil
	case c.HasCRLs() && strings.HasPrefix(u, pcs.SgxBaseURL+"/pckcrl?"):
		return issuerHeader(pcs.SgxPckCrlIssuerChainPhrase, &c.PCKCRLChain), c.PCKCRL, nil
	case c.HasCRLs() && slices.Contains(g.d.qeIdentityChain.root.CRLDistributionPoints, u):
		return nil, c.RootCACRL, nil
	}
	return nil, nil, fmt.Errorf("tdx: %s is not in the carried collateral", u)
}

// issuerHeader encodes an issuer chain the way PCS sends it: URL-escaped
// concatenated PEM.
func issuerHeader(name string, ch *IssuerChain) map[string][]string {
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ch.Signing})
	p = append(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ch.Root})...)
	return map[string][]string{name: {url.QueryEscape(string(p))}}
}

func claimsFromQuote(q *pb.QuoteV4) Claims {
	b := q.GetTdQuoteBody()
	var c Claims
	copy(c.ReportData[:], b.GetReportData())
	copy(c.MRTD[:], b.GetMrTd())
	for i, r := range b.GetRtmrs() {
		if i < len(c.RTMR) {
			copy(c.RTMR[i][:], r)
		}
	}
	copy(c.MRSEAM[:], b.GetMrSeam())
	copy(c.MRConfigID[:], b.GetMrConfigId())
	copy(c.MROwner[:], b.GetMrOwner())
	copy(c.MROwnerConfig[:], b.GetMrOwnerConfig())
	copy(c.TDAttributes[:], b.GetTdAttributes())
	copy(c.XFAM[:], b.GetXfam())
	copy(c.TEETCBSVN[:], b.GetTeeTcbSvn())
	c.Debug = c.TDAttributes[0]&tdAttributeDebug != 0
	return c
}

// tdAttributeDebug is TUD.DEBUG, bit 0 of TD_ATTRIBUTES.
const tdAttributeDebug = 0x01

// levels fills in the TCB statuses and advisories. go-tdx-guest matches
// the TCB levels (Intel's TDX TCB status algorithm) when given the
// collateral; its result is the platform's level when TEE_TCB_SVN[1] is
// zero and the TDX module's level otherwise. In the second case it drops
// the platform's level, which Intel's algorithm converges with the
// module's, so platformLevel finds it again and Validate requires both
// statuses to be accepted.
func levels(c *Claims, q *pb.QuoteV4, lib *verify.Options, exts *pcs.PckExtensions, d *decoded) {
	// Its error only says which level did not match; that level comes
	// back zero and its status is TCBStatusNotSupported.
	tdxLevel, qeLevel, _ := verify.SupportedTcbLevelsFromCollateral(q, lib)
	var advisories []string
	status := func(l pcs.TcbLevel) string {
		if l.TcbStatus == "" {
			return TCBStatusNotSupported
		}
		advisories = append(advisories, l.AdvisoryIDs...)
		return string(l.TcbStatus)
	}
	if c.TEETCBSVN[1] == 0 {
		c.TCBStatus = status(tdxLevel)
	} else {
		c.TDXModuleTCBStatus = status(tdxLevel)
		c.TCBStatus = status(platformLevel(d.tcbInfo.TcbInfo.TcbLevels, exts, c.TEETCBSVN[:]))
	}
	c.QETCBStatus = status(qeLevel)
	slices.Sort(advisories)
	c.AdvisoryIDs = slices.Compact(advisories)
}

// platformLevel is the first TCB level whose SGX components and PCE SVN
// the PCK certificate meets and whose TDX components TEE_TCB_SVN meets
// (from index 2 when TEE_TCB_SVN[1] is not zero): steps 3.a to 3.c of
// Intel's TDX TCB status algorithm, as go-tdx-guest implements them
// before it replaces the result with the TDX module's level. The zero
// level means none matches.
func platformLevel(levels []pcs.TcbLevel, exts *pcs.PckExtensions, teeTCBSVN []byte) pcs.TcbLevel {
	atLeast := func(have []byte, want []pcs.TcbComponent, from int) bool {
		if len(have) != len(want) {
			return false
		}
		for i := from; i < len(have); i++ {
			if have[i] < want[i].Svn {
				return false
			}
		}
		return true
	}
	from := 0
	if teeTCBSVN[1] > 0 {
		from = 2
	}
	for _, l := range levels {
		if atLeast(exts.TCB.CPUSvnComponents, l.Tcb.SgxTcbcomponents, 0) &&
			exts.TCB.PCESvn >= l.Tcb.Pcesvn &&
			atLeast(teeTCBSVN, l.Tcb.TdxTcbcomponents, from) {
			return l
		}
	}
	return pcs.TcbLevel{}
}

// checkQEIdentity compares the QE report with Intel's QE identity, the
// step go-tdx-guest skips when the platform's TCB status check fails
// first: MISCSELECT and ATTRIBUTES under their masks, MRSIGNER and
// ISVPRODID.
func checkQEIdentity(q *pb.QuoteV4, id *pcs.EnclaveIdentity) error {
	r := q.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetQeReport()
	fail := func(field, found, want string) error {
		return check.Fail(check.CodeSignature, "qe report "+field, found, want+" (the TD QE identity Intel signed)")
	}
	if len(id.Miscselect.Bytes) != 4 || len(id.MiscselectMask.Bytes) != 4 {
		return check.Fail(check.CodeMalformed, "collateral qe_identity miscselect", "a value that is not 4 bytes", "4 bytes")
	}
	mask := binary.LittleEndian.Uint32(id.MiscselectMask.Bytes)
	if got, want := r.GetMiscSelect()&mask, binary.LittleEndian.Uint32(id.Miscselect.Bytes); got != want {
		return fail("miscselect", fmt.Sprintf("%08x under mask %08x", got, mask), fmt.Sprintf("%08x", want))
	}
	attrs := r.GetAttributes()
	if len(id.AttributesMask.Bytes) != len(attrs) || len(id.Attributes.Bytes) != len(attrs) {
		return check.Fail(check.CodeMalformed, "collateral qe_identity attributes", "a value that is not 16 bytes", "16 bytes")
	}
	masked := make([]byte, len(attrs))
	for i := range attrs {
		masked[i] = attrs[i] & id.AttributesMask.Bytes[i]
	}
	if !bytes.Equal(masked, id.Attributes.Bytes) {
		return fail("attributes", hex.EncodeToString(masked), hex.EncodeToString(id.Attributes.Bytes))
	}
	if !bytes.Equal(r.GetMrSigner(), id.Mrsigner.Bytes) {
		return fail("mrsigner", hex.EncodeToString(r.GetMrSigner()), hex.EncodeToString(id.Mrsigner.Bytes))
	}
	if r.GetIsvProdId() != uint32(id.IsvProdID) {
		return fail("isvprodid", fmt.Sprint(r.GetIsvProdId()), fmt.Sprint(id.IsvProdID))
	}
	return nil
}

// diagnose names the check go-tdx-guest failed. Its error messages are not
// part of its API, so each candidate check is redone here, in the order
// of the chain of trust, and the first that fails is reported; if none
// does, the library's error is reported as it is. diagnose only explains a
// refusal: it never turns one into an acceptance.
func diagnose(q *pb.QuoteV4, chain *verify.PCKCertificateChain, d *decoded, roots *x509.CertPool, now time.Time, libErr error) error {
	if err := checkQuoteSignatures(q, chain.PCKCertificate); err != nil {
		return err
	}
	if err := checkChain("pck certificate chain", chain.PCKCertificate, chain.IntermediateCertificate, roots, now); err != nil {
		return err
	}
	if d.pckCRL != nil {
		if err := checkRevocation(chain, d, roots, now); err != nil {
			return err
		}
	}
	if err := checkSignedJSON("tcb_info", d.tcbInfoChain, d.tcbInfoBody, d.tcbInfo.Signature, roots, now); err != nil {
		return err
	}
	if err := checkSignedJSON("qe_identity", d.qeIdentityChain, d.qeIdentityBody, d.qeIdentity.Signature, roots, now); err != nil {
		return err
	}
	return &check.Error{
		Code: check.CodeSignature, Field: "quote",
		Found: "a quote go-tdx-guest does not verify against its collateral",
		Want:  "a quote that matches its collateral (intel certificate names, fmspc, pce id, tdx module, qe identity)",
		Err:   libErr,
	}
}

// checkQuoteSignatures checks the three signatures that tie the TD to the
// PCK certificate: the PCK key signs the QE report, the QE report's
// REPORT_DATA commits to the attestation key, and the attestation key
// signs the quote header and TD quote body.
func checkQuoteSignatures(q *pb.QuoteV4, pck *x509.Certificate) error {
	sd := q.GetSignedData()
	qe := sd.GetCertificationData().GetQeReportCertificationData()
	qeRaw, err := abi.EnclaveReportToAbiBytes(qe.GetQeReport())
	if err != nil {
		return check.Wrap(check.CodeMalformed, "qe report", err)
	}
	qeSig, err := abi.SignatureToDER(qe.GetQeReportSignature())
	if err != nil {
		return check.Wrap(check.CodeMalformed, "qe report signature", err)
	}
	if err := pck.CheckSignature(x509.ECDSAWithSHA256, qeRaw, qeSig); err != nil {
		return check.Fail(check.CodeSignature, "qe report signature", "a signature that does not verify", "a signature by the pck certificate's key")
	}
	key := sd.GetEcdsaAttestationKey()
	bound := sha256.Sum256(append(bytes.Clone(key), qe.GetQeAuthData().GetData()...))
	want := append(bound[:], make([]byte, 32)...)
	if !bytes.Equal(qe.GetQeReport().GetReportData(), want) {
		return check.Fail(check.CodeSignature, "attestation key binding",
			"qe report_data "+hex.EncodeToString(qe.GetQeReport().GetReportData()[:8])+"…",
			hex.EncodeToString(want[:8])+"… (sha-256 of the attestation key and qe auth data)")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, key...))
	if err != nil {
		return check.Fail(check.CodeSignature, "attestation key", "not a p-256 point", "a p-256 public key")
	}
	header, err := abi.HeaderToAbiBytes(q.GetHeader())
	if err != nil {
		return check.Wrap(check.CodeMalformed, "quote header", err)
	}
	body, err := abi.TdQuoteBodyToAbiBytes(q.GetTdQuoteBody())
	if err != nil {
		return check.Wrap(check.CodeMalformed, "td quote body", err)
	}
	sig, err := abi.SignatureToDER(sd.GetSignature())
	if err != nil {
		return check.Wrap(check.CodeMalformed, "quote signature", err)
	}
	digest := sha256.Sum256(append(header, body...))
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		return check.Fail(check.CodeSignature, "quote signature", "a signature that does not verify", "a signature by the attestation key over the header and td quote body")
	}
	return nil
}

// checkChain verifies leaf (through intermediate, if any) to roots at now.
func checkChain(field string, leaf, intermediate *x509.Certificate, roots *x509.CertPool, now time.Time) error {
	inter := x509.NewCertPool()
	if intermediate != nil {
		inter.AddCert(intermediate)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err == nil {
		return nil
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
		return check.Wrap(check.CodeCollateralExpired, field, err)
	}
	return &check.Error{Code: check.CodeChain, Field: field,
		Found: fmt.Sprintf("a chain from %q issued by %q", leaf.Subject.CommonName, leaf.Issuer.CommonName),
		Want:  "a chain to a pinned root", Err: err}
}

// checkRevocation checks both CRLs' signatures and that no certificate
// the verdict relies on is on them.
func checkRevocation(chain *verify.PCKCertificateChain, d *decoded, roots *x509.CertPool, now time.Time) error {
	if err := checkChain("pck_crl issuer chain", d.pckCRLChain.signing, nil, roots, now); err != nil {
		return err
	}
	if err := d.rootCRL.CheckSignatureFrom(chain.RootCertificate); err != nil {
		return check.Fail(check.CodeSignature, "root_ca_crl signature", "a crl the pck chain's root did not sign", "a crl signed by the root")
	}
	if err := d.pckCRL.CheckSignatureFrom(chain.IntermediateCertificate); err != nil {
		return check.Fail(check.CodeSignature, "pck_crl signature", "a crl the pck ca did not sign", "a crl signed by the pck certificate's issuer")
	}
	for _, r := range []struct {
		field string
		crl   *x509.RevocationList
		cert  *x509.Certificate
	}{
		{"pck ca certificate", d.rootCRL, chain.IntermediateCertificate},
		{"pck certificate", d.pckCRL, chain.PCKCertificate},
		{"tcb_info signing certificate", d.rootCRL, d.tcbInfoChain.signing},
		{"qe_identity signing certificate", d.rootCRL, d.qeIdentityChain.signing},
	} {
		for _, e := range r.crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(r.cert.SerialNumber) == 0 {
				return check.Fail(check.CodeRevoked, r.field,
					fmt.Sprintf("serial %x revoked at %s", r.cert.SerialNumber, stamp(e.RevocationTime)),
					"a certificate not on the carried crl")
			}
		}
	}
	return nil
}

// checkSignedJSON checks a PCS response's issuer chain and its signature
// over the signed member's raw bytes.
func checkSignedJSON(field string, ch certPair, body []byte, sigHex string, roots *x509.CertPool, now time.Time) error {
	if err := checkChain(field+" issuer chain", ch.signing, nil, roots, now); err != nil {
		return err
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		return check.Wrap(check.CodeMalformed, field+" signature", err)
	}
	der, err := abi.SignatureToDER(sig)
	if err != nil {
		return check.Wrap(check.CodeMalformed, field+" signature", err)
	}
	if err := ch.signing.CheckSignature(x509.ECDSAWithSHA256, body, der); err != nil {
		return check.Fail(check.CodeSignature, field+" signature", "a signature that does not verify", "a signature by the tcb signing certificate")
	}
	return nil
}
