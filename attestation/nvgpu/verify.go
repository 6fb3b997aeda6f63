package nvgpu

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// Options configure Verify.
type Options struct {
	// Now is the time at which every certificate, OCSP response and RIM
	// must be valid. Required: the zero time is a CodeOptions error, so
	// nothing verifies at the wall clock by accident.
	Now time.Time
	// DeviceRoots are the trusted roots of the GPU's attestation
	// certificate chain and of the OCSP responders for it. Nil means the
	// pinned NVIDIA Device Identity CA (DeviceRoots). Production code
	// leaves it nil; tests inject fixture roots.
	DeviceRoots *x509.CertPool
	// RIMRoots are the trusted roots of the RIM signing chains, passed to
	// rim.Options.Roots. Nil means what package rim pins (NVIDIA's RIM
	// signing root).
	RIMRoots *x509.CertPool
	// Nonce is the nonce this GPU's report must carry: for GPU i of an
	// evidence bundle, proto.GPUNonce(bundle nonce, i).
	Nonce [32]byte
	// RequireOCSP refuses evidence in which a certificate of the device
	// chain (but the leaf and the root) or of a RIM signing chain comes
	// without a good OCSP response. False accepts a missing response; a
	// carried response is checked either way, and "revoked" and "unknown"
	// are always refused. Set it from policy.GPURules.OCSPRequired.
	RequireOCSP bool
}

// Claims are the fields of verified GPU evidence. Verify returns Claims
// only for evidence whose report signature, certificate chain,
// revocation, nonce and RIMs all verified; Validate then applies a
// policy to them.
type Claims struct {
	// Nonce is the nonce the report carries (equal to Options.Nonce).
	Nonce [32]byte
	// DriverVersion and VBIOSVersion are the versions the signed report
	// states, and the versions of the RIMs it was compared with.
	DriverVersion string
	VBIOSVersion  string
	// Mode is the confidential-computing mode the report's feature flag
	// states (ModeLegacy when it has none).
	Mode Mode
	// CCMode reports whether the signed report says the GPU is in
	// confidential-computing mode. See Mode for how it is read.
	CCMode bool
	// Measurements are the report's measurement blocks, by SPDM index.
	Measurements []Block
	// MismatchedIndexes lists the SPDM indexes of blocks that match no
	// golden value of the RIMs, sorted. Empty in Claims returned without
	// an error; Verify returns it with the CodePolicy error of a mismatch
	// so that tools can show every index.
	MismatchedIndexes []int
	// DriverRIMID and VBIOSRIMID identify the RIMs compared (rim.RIM.ID).
	DriverRIMID string
	VBIOSRIMID  string
	// DeviceModel is the common name of the device certificate (the
	// leaf's issuer), such as "GH100 A01 GSP BROM"; nvtrust's hwmodel.
	DeviceModel string
	// DeviceSerial is the serial number of the leaf certificate in hex;
	// nvtrust's ueid.
	DeviceSerial string
	// FWID is the firmware ID the report and the leaf certificate share,
	// nil when the report has none.
	FWID []byte
	// OCSPChecked reports whether every certificate of the device chain
	// but the leaf and the root, and of both RIM signing chains but their
	// roots, came with a good, current OCSP response. Validate requires
	// it unless the rules say require_ocsp false.
	OCSPChecked bool
	// NextUpdate is the earliest time at which anything relied on stops
	// being valid: a certificate's NotAfter, an OCSP response's
	// nextUpdate or its responder's NotAfter, a RIM's NextUpdate. A
	// verdict on these Claims must not be reused after it.
	NextUpdate time.Time
}

// Verify checks encoded GPU Evidence at opts.Now, offline, and returns its
// Claims. It does not apply a policy: the caller then calls Validate.
//
// Checks and their codes, in order:
//   - opts.Now is set (CodeOptions);
//   - the evidence, the report, the certificates and the OCSP responses
//     parse (CodeMalformed, naming the field);
//   - the report signature is an ECDSA P-384 signature by the leaf
//     certificate's key over SHA-384 of the request and the response up
//     to the signature (CodeSignature, "report signature");
//   - the report's firmware ID, when it has one, is the one in the
//     leaf's TCG DICE FWID extension (CodeChain, "leaf fwid");
//   - the certificate chain is one path, in order, from the leaf to a
//     root of opts.DeviceRoots, valid at opts.Now: never to a root
//     because the device supplied it (CodeChain; a certificate outside
//     its validity, CodeCollateralExpired);
//   - each OCSP response is signed by the certificate's issuer or a
//     responder the issuer delegated to, and names that issuer
//     (CodeSignature), is current at opts.Now (CodeCollateralExpired) and
//     "good" (CodeRevoked for "revoked" and "unknown"); with
//     RequireOCSP, every certificate but the leaf and the root has one
//     (CodeRevoked, "ocsp ...");
//   - the report's nonce is opts.Nonce (CodeBinding, "gpu nonce");
//   - both RIMs verify with rim.Verify (their codes, the field prefixed
//     "driver rim" or "vbios rim") and are for the report's driver and
//     VBIOS versions (CodePolicy, "driver rim version", "vbios rim
//     version");
//   - every active golden measurement of the RIMs matches the report's
//     block at that index (RIM index + 1) in size and value, with one of
//     its alternatives; the driver and VBIOS RIMs must not both cover an
//     index; as NVIDIA's verifiers do, RIM index 35 is not compared when
//     the report says NVDEC0 is disabled (CodePolicy, "measurement N",
//     naming the first mismatch; Claims.MismatchedIndexes lists all).
//
// On a measurement mismatch Verify returns the Claims with the error; on
// every other failure it returns nil Claims. Any error is a refusal.
func Verify(evidence []byte, opts Options) (*Claims, error) {
	if opts.Now.IsZero() {
		return nil, check.Fail(check.CodeOptions, "now", "the zero time", "the verification time")
	}
	now := opts.Now
	e, err := ParseEvidence(evidence)
	if err != nil {
		return nil, err
	}
	rep, err := ParseReport(e.Report)
	if err != nil {
		return nil, err
	}
	supplied, err := parseCertificates(e.CertChain)
	if err != nil {
		return nil, err
	}
	// The report's own signature and its firmware ID first, with the
	// leaf as carried, then the chain of trust up from the leaf, as
	// package tdx checks the quote's signatures before the PCK chain: a
	// forged report is refused for what it is, and cheaply.
	if err := checkReportSignature(rep, supplied[0]); err != nil {
		return nil, err
	}
	if err := checkFWID(rep, supplied[0]); err != nil {
		return nil, err
	}
	roots := opts.DeviceRoots
	if roots == nil {
		roots = DeviceRoots()
	}
	path, err := verifyChain(supplied, roots, now)
	if err != nil {
		return nil, err
	}
	next := earliest{}
	for _, c := range path {
		next.add(c.NotAfter)
	}
	ocspChecked, err := checkOCSP(path, e.OCSP, now, opts.RequireOCSP, &next)
	if err != nil {
		return nil, err
	}
	if rep.Nonce != opts.Nonce {
		return nil, check.Fail(check.CodeBinding, "gpu nonce", hex.EncodeToString(rep.Nonce[:]), hex.EncodeToString(opts.Nonce[:]))
	}
	ro := rim.Options{Now: now, Roots: opts.RIMRoots, OCSP: e.RIMOCSP, RequireOCSP: opts.RequireOCSP}
	driver, driverOCSP, err := verifyRIM("driver rim", e.DriverRIM, ro)
	if err != nil {
		return nil, err
	}
	vbios, vbiosOCSP, err := verifyRIM("vbios rim", e.VBIOSRIM, ro)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(driver.ColloquialVersion, rep.DriverVersion) {
		return nil, check.Fail(check.CodePolicy, "driver rim version", fmt.Sprintf("%q (rim %s)", driver.ColloquialVersion, driver.ID), fmt.Sprintf("%q (the report's driver version)", rep.DriverVersion))
	}
	if !strings.EqualFold(vbios.ColloquialVersion, rep.VBIOSVersion) {
		return nil, check.Fail(check.CodePolicy, "vbios rim version", fmt.Sprintf("%q (rim %s)", vbios.ColloquialVersion, vbios.ID), fmt.Sprintf("%q (the report's vbios version)", rep.VBIOSVersion))
	}
	next.add(driver.NextUpdate)
	next.add(vbios.NextUpdate)

	c := &Claims{
		Nonce:         rep.Nonce,
		DriverVersion: rep.DriverVersion,
		VBIOSVersion:  rep.VBIOSVersion,
		Mode:          rep.Mode,
		CCMode:        rep.CCMode,
		Measurements:  slices.Clone(rep.Measurements),
		DriverRIMID:   driver.ID,
		VBIOSRIMID:    vbios.ID,
		DeviceModel:   path[1].Subject.CommonName,
		DeviceSerial:  hex.EncodeToString(path[0].SerialNumber.Bytes()),
		FWID:          rep.FWID,
		OCSPChecked:   ocspChecked && driverOCSP && vbiosOCSP,
		NextUpdate:    next.t.UTC(),
	}
	if err := compareMeasurements(c, rep, driver, vbios); err != nil {
		return c, err
	}
	return c, nil
}

// earliest tracks the earliest of a set of times, ignoring zero ones.
type earliest struct{ t time.Time }

func (e *earliest) add(t time.Time) {
	if !t.IsZero() && (e.t.IsZero() || t.Before(e.t)) {
		e.t = t
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func parseCertificates(ders [][]byte) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, 0, len(ders))
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, check.Wrap(check.CodeMalformed, fmt.Sprintf("gpu certificate %d", i), err)
		}
		out = append(out, c)
	}
	return out, nil
}

func certName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("%q", c.Subject.CommonName)
	}
	return "serial " + hex.EncodeToString(c.SerialNumber.Bytes())
}

// verifyChain verifies the supplied chain, leaf first, to roots at now,
// and returns the verified path from the leaf to the root. The supplied
// certificates must be that path in order, with or without its root: a
// chain with extra, missing or reordered certificates is refused, so that
// every certificate's issuer is the next one (OCSP relies on it).
func verifyChain(supplied []*x509.Certificate, roots *x509.CertPool, now time.Time) ([]*x509.Certificate, error) {
	leaf := supplied[0]
	inter := x509.NewCertPool()
	for _, c := range supplied[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			return nil, &check.Error{Code: check.CodeCollateralExpired, Field: "gpu certificate " + certName(invalid.Cert),
				Found: fmt.Sprintf("not before %s, not after %s", stamp(invalid.Cert.NotBefore), stamp(invalid.Cert.NotAfter)),
				Want:  "valid at " + stamp(now), Err: err}
		}
		return nil, &check.Error{Code: check.CodeChain, Field: "gpu certificate chain",
			Found: fmt.Sprintf("a chain from %s issued by %q, ending at %s", certName(leaf), leaf.Issuer.CommonName, certName(supplied[len(supplied)-1])),
			Want:  "a chain to a pinned nvidia device identity root", Err: err}
	}
	for _, path := range chains {
		if len(path) != len(supplied) && len(path) != len(supplied)+1 {
			continue
		}
		same := true
		for i, c := range supplied {
			if !c.Equal(path[i]) {
				same = false
				break
			}
		}
		if same {
			return path, nil
		}
	}
	return nil, check.Fail(check.CodeChain, "gpu certificate chain",
		fmt.Sprintf("%d certificates that are not the verified path in order (it has %d)", len(supplied), len(chains[0])),
		"the path from the leaf to the pinned root, leaf first, with or without the root")
}

// FWID extensions of NVIDIA device certificates: TCG DICE (tcg-dice-fwid
// 2.23.133.5.4.1, and the .1 that nvtrust also accepts). On Hopper the
// FWID is the extension's last 48 bytes (nvtrust cc_admin_utils.py,
// extract_fwid; go-nvattest-tools extractHopperFWID).
var fwidOIDs = []asn1.ObjectIdentifier{{2, 23, 133, 5, 4, 1}, {2, 23, 133, 5, 4, 1, 1}}

// checkFWID binds the report to the leaf certificate: the firmware that
// produced the report is the one the certificate was issued for.
func checkFWID(rep *Report, leaf *x509.Certificate) error {
	if rep.FWID == nil {
		return nil
	}
	for _, ext := range leaf.Extensions {
		for _, oid := range fwidOIDs {
			if !ext.Id.Equal(oid) {
				continue
			}
			if len(ext.Value) < len(rep.FWID) {
				return check.Fail(check.CodeChain, "leaf fwid", fmt.Sprintf("an extension of %d bytes", len(ext.Value)), "at least 48 bytes")
			}
			got := ext.Value[len(ext.Value)-len(rep.FWID):]
			if !bytes.Equal(got, rep.FWID) {
				return check.Fail(check.CodeChain, "leaf fwid", hex.EncodeToString(got), hex.EncodeToString(rep.FWID)+" (the report's fwid)")
			}
			return nil
		}
	}
	return check.Fail(check.CodeChain, "leaf fwid", "a leaf certificate without a tcg dice fwid extension", hex.EncodeToString(rep.FWID)+" (the report's fwid)")
}

// checkOCSP checks the carried OCSP responses against the verified path
// and reports whether every certificate but the leaf and the root has a
// good one.
func checkOCSP(path []*x509.Certificate, raws [][]byte, now time.Time, require bool, next *earliest) (bool, error) {
	good := make([]bool, len(path))
	for j, raw := range raws {
		i, err := checkResponse(path, j, raw, now, next)
		if err != nil {
			return false, err
		}
		if good[i] {
			return false, check.Fail(check.CodeMalformed, fmt.Sprintf("gpu ocsp response %d", j), "a second response for "+certName(path[i]), "one response per certificate")
		}
		good[i] = true
	}
	all := true
	for i := 1; i < len(path)-1; i++ {
		if good[i] {
			continue
		}
		all = false
		if require {
			return false, check.Fail(check.CodeRevoked, "ocsp gpu certificate "+certName(path[i]), "no ocsp response", "a good, current ocsp response (require_ocsp)")
		}
	}
	return all, nil
}

// checkResponse checks one OCSP response and returns the index in path
// of the certificate it is for.
func checkResponse(path []*x509.Certificate, j int, raw []byte, now time.Time, next *earliest) (int, error) {
	field := fmt.Sprintf("gpu ocsp response %d", j)
	resp, err := ocsp.ParseResponse(raw, nil)
	if err != nil {
		return 0, ocspError(field, err)
	}
	i := -1
	for k := 0; k < len(path)-1; k++ {
		if path[k].SerialNumber.Cmp(resp.SerialNumber) == 0 {
			i = k
			break
		}
	}
	if i < 0 {
		return 0, check.Fail(check.CodeMalformed, field, "a response for serial "+hex.EncodeToString(resp.SerialNumber.Bytes()), "a response for a certificate of the chain")
	}
	cert, issuer := path[i], path[i+1]
	field = "ocsp gpu certificate " + certName(cert)
	// Signed by the issuer itself, or by a responder certificate the
	// issuer issued for OCSP signing (RFC 6960 §4.2.2.2). The library
	// checks the issuer's signature on the embedded responder
	// certificate and the responder's signature on the response.
	if resp, err = ocsp.ParseResponseForCert(raw, cert, issuer); err != nil {
		return 0, ocspError(field, err)
	}
	if !aboutCert(raw, cert, issuer, resp.IssuerHash) {
		return 0, check.Fail(check.CodeSignature, field, "a response whose certid names another issuer", "a certid with the hashes of "+certName(issuer)+"'s name and key")
	}
	if r := resp.Certificate; r != nil {
		if !slices.Contains(r.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return 0, check.Fail(check.CodeChain, field+" responder", certName(r)+" without the ocsp signing extended key usage", "a responder delegated by "+certName(issuer))
		}
		if now.Before(r.NotBefore) || now.After(r.NotAfter) {
			return 0, check.Fail(check.CodeCollateralExpired, field+" responder "+certName(r),
				fmt.Sprintf("not before %s, not after %s", stamp(r.NotBefore), stamp(r.NotAfter)), "valid at "+stamp(now))
		}
		next.add(r.NotAfter)
	}
	if resp.Status == ocsp.Revoked {
		return 0, check.Fail(check.CodeRevoked, field,
			fmt.Sprintf("revoked at %s (%s)", stamp(resp.RevokedAt), revocationReason(resp.RevocationReason)), "good")
	}
	if resp.NextUpdate.IsZero() || now.Before(resp.ThisUpdate) || now.After(resp.NextUpdate) {
		return 0, check.Fail(check.CodeCollateralExpired, field,
			fmt.Sprintf("thisUpdate %s, nextUpdate %s", stamp(resp.ThisUpdate), stamp(resp.NextUpdate)), "current at "+stamp(now))
	}
	if resp.Status != ocsp.Good {
		return 0, check.Fail(check.CodeRevoked, field, "status unknown", "good")
	}
	next.add(resp.NextUpdate)
	return i, nil
}

// aboutCert reports whether the OCSP response raw holds a CertID for
// cert's serial number whose issuer name and key hashes, under h, are
// issuer's: the check x/crypto/ocsp leaves out (it matches serial numbers
// only), so that a response cannot speak of a same-numbered certificate
// of another CA.
func aboutCert(raw []byte, cert, issuer *x509.Certificate, h crypto.Hash) bool {
	if !h.Available() {
		return false
	}
	sum := func(b []byte) []byte { d := h.New(); d.Write(b); return d.Sum(nil) }
	spki := cryptobyte.String(issuer.RawSubjectPublicKeyInfo)
	var seq cryptobyte.String
	var key asn1.BitString
	if !spki.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.SkipASN1(cbasn1.SEQUENCE) || !seq.ReadASN1BitString(&key) {
		return false
	}
	wantName, wantKey := sum(issuer.RawSubject), sum(key.RightAlign())

	in := cryptobyte.String(raw)
	var resp, bytesSeq, inner, basicOctets, basic, tbs, responderID, responses cryptobyte.String
	var responderTag cbasn1.Tag
	if !in.ReadASN1(&resp, cbasn1.SEQUENCE) || !resp.SkipASN1(cbasn1.ENUM) ||
		!resp.ReadASN1(&bytesSeq, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!bytesSeq.ReadASN1(&inner, cbasn1.SEQUENCE) || !inner.SkipASN1(cbasn1.OBJECT_IDENTIFIER) ||
		!inner.ReadASN1(&basicOctets, cbasn1.OCTET_STRING) || !basicOctets.ReadASN1(&basic, cbasn1.SEQUENCE) ||
		!basic.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.ReadAnyASN1(&responderID, &responderTag) ||
		!tbs.SkipASN1(cbasn1.GeneralizedTime) ||
		!tbs.ReadASN1(&responses, cbasn1.SEQUENCE) {
		return false
	}
	for !responses.Empty() {
		var single, id cryptobyte.String
		var name, keyHash []byte
		serial := new(big.Int)
		if !responses.ReadASN1(&single, cbasn1.SEQUENCE) || !single.ReadASN1(&id, cbasn1.SEQUENCE) ||
			!id.SkipASN1(cbasn1.SEQUENCE) || !id.ReadASN1Bytes(&name, cbasn1.OCTET_STRING) ||
			!id.ReadASN1Bytes(&keyHash, cbasn1.OCTET_STRING) || !id.ReadASN1Integer(serial) {
			return false
		}
		if serial.Cmp(cert.SerialNumber) == 0 && bytes.Equal(name, wantName) && bytes.Equal(keyHash, wantKey) {
			return true
		}
	}
	return false
}

// revocationReason names an RFC 5280 CRLReason.
func revocationReason(r int) string {
	names := []string{"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
		"cessationOfOperation", "certificateHold", "", "removeFromCRL", "privilegeWithdrawn", "aACompromise"}
	if r >= 0 && r < len(names) && names[r] != "" {
		return "reason " + names[r]
	}
	return fmt.Sprintf("reason %d", r)
}

// ocspError classifies an x/crypto/ocsp parse error: a responder that
// did not answer with a status, a signature that does not verify, or
// bytes that are not an OCSP response.
func ocspError(field string, err error) error {
	var re ocsp.ResponseError
	if errors.As(err, &re) {
		return &check.Error{Code: check.CodeRevoked, Field: field, Found: "responder status " + re.Error(), Want: "a successful response with a good status", Err: err}
	}
	var pe ocsp.ParseError
	if errors.As(err, &pe) && strings.Contains(string(pe), "signature") {
		return &check.Error{Code: check.CodeSignature, Field: field, Found: "a response whose signature does not verify",
			Want: "a response signed by the certificate's issuer or a responder it delegated", Err: err}
	}
	return check.Wrap(check.CodeMalformed, field, err)
}

// CheckSignature checks the report's ECDSA P-384 signature with the
// public key of leaf (the GPU's attestation certificate) over SHA-384 of
// SignedBytes. It checks nothing about leaf itself: Verify does that.
func (r *Report) CheckSignature(leaf *x509.Certificate) error { return checkReportSignature(r, leaf) }

// checkReportSignature checks the report's ECDSA P-384 signature with the
// leaf's key over SHA-384 of the signed transcript.
func checkReportSignature(rep *Report, leaf *x509.Certificate) error {
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return check.Fail(check.CodeSignature, "report signing key", fmt.Sprintf("a %T leaf key", leaf.PublicKey), "an ecdsa p-384 key")
	}
	digest := sha512.Sum384(rep.SignedBytes)
	r := new(big.Int).SetBytes(rep.Signature[:SignatureSize/2])
	s := new(big.Int).SetBytes(rep.Signature[SignatureSize/2:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return check.Fail(check.CodeSignature, "report signature", "a signature that does not verify",
			"an ecdsa p-384 signature by the leaf certificate's key over sha-384 of the request and response")
	}
	return nil
}

// verifyRIM runs rim.Verify, names the RIM in its error, and reports
// whether every certificate of the RIM's signing chain had a good OCSP
// response. rim.Verify does not say; it refuses a missing one under
// RequireOCSP, so without RequireOCSP the RIM is checked with it first
// and, if that fails for revocation, again without: the second answer is
// the verdict (a revoked or unknown status fails both), and the first says
// whether OCSP was complete.
func verifyRIM(which string, xml []byte, opts rim.Options) (*rim.RIM, bool, error) {
	var (
		r   *rim.RIM
		err error
	)
	switch {
	case opts.RequireOCSP:
		r, err = rim.Verify(xml, opts)
		if err == nil {
			return r, true, nil
		}
	case len(opts.OCSP) == 0:
		// A signing chain has a certificate below its root: without
		// any response, OCSP is not complete. One verification.
		r, err = rim.Verify(xml, opts)
		if err == nil {
			return r, false, nil
		}
	default:
		strict := opts
		strict.RequireOCSP = true
		r, err = rim.Verify(xml, strict)
		if err == nil {
			return r, true, nil
		}
		if check.CodeOf(err) == check.CodeRevoked {
			r, err = rim.Verify(xml, opts)
			if err == nil {
				return r, false, nil
			}
		}
	}
	var ce *check.Error
	if errors.As(err, &ce) {
		out := *ce
		out.Field = which + " " + ce.Field
		return nil, false, &out
	}
	return nil, false, check.Wrap(check.CodeSignature, which, err)
}

// rimIndex35 is the RIM index NVIDIA's verifiers skip when NVDEC0 is
// disabled (nvtrust verifier.py, is_msr_35_valid).
const rimIndex35 = 35

// golden is one golden measurement and the RIM it comes from.
type golden struct {
	m     rim.Measurement
	which string
}

// compareMeasurements compares the report's blocks with the RIMs' golden
// measurements and fills c.MismatchedIndexes.
func compareMeasurements(c *Claims, rep *Report, driver, vbios *rim.RIM) error {
	goldens := map[int]golden{}
	for _, g := range []struct {
		which string
		r     *rim.RIM
	}{{"driver rim", driver}, {"vbios rim", vbios}} {
		for _, m := range g.r.Measurements {
			if !m.Active {
				continue // listed, but this rim does not cover the index
			}
			if prev, ok := goldens[m.Index]; ok {
				return check.Fail(check.CodePolicy, fmt.Sprintf("rim index %d", m.Index),
					fmt.Sprintf("a golden measurement in the %s and the %s", prev.which, g.which), "each index in one rim")
			}
			goldens[m.Index] = golden{m, g.which}
		}
	}
	if len(goldens) == 0 {
		return check.Fail(check.CodePolicy, "rim measurements", "no active golden measurement in either rim", "at least one")
	}
	indexes := make([]int, 0, len(goldens))
	for i := range goldens {
		indexes = append(indexes, i)
	}
	slices.Sort(indexes)
	var first *check.Error
	for _, ri := range indexes {
		g := goldens[ri]
		if ri == rimIndex35 && rep.NVDEC0Disabled {
			continue
		}
		b := rep.Block(ri + 1)
		if b != nil && len(b.Value) == g.m.Size && slices.ContainsFunc(g.m.Alternatives, func(a []byte) bool { return bytes.Equal(a, b.Value) }) {
			continue
		}
		c.MismatchedIndexes = append(c.MismatchedIndexes, ri+1)
		if first != nil {
			continue
		}
		found := "no block"
		if b != nil {
			found = hex.EncodeToString(b.Value)
		}
		var want []string
		for _, a := range g.m.Alternatives {
			want = append(want, hex.EncodeToString(a))
		}
		first = check.Fail(check.CodePolicy, fmt.Sprintf("measurement %d", ri+1), found,
			fmt.Sprintf("one of [%s] (%d bytes; %s index %d)", strings.Join(want, " "), g.m.Size, g.which, ri))
	}
	if first != nil {
		if len(c.MismatchedIndexes) > 1 {
			first.Want += fmt.Sprintf("; mismatched indexes %v", c.MismatchedIndexes)
		}
		return first
	}
	return nil
}
