package snp

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/policy"
)

// ReportSize is the size of an SEV-SNP attestation report.
const ReportSize = abi.ReportSize

// Roots maps an AMD product line ("Milan", "Genoa", "Turin") to the AMD
// root key (ARK) certificates trusted for it. A report verifies only if
// its collateral's ARK is byte for byte one of these.
type Roots map[string][]*x509.Certificate

// AMDRoots returns the production roots: the ARK of every product line
// whose AMD certificate chain go-sev-guest embeds (package verify/trust,
// fetched from https://kdsintf.amd.com/vcek/v1/<line>/cert_chain).
func AMDRoots() Roots {
	r := Roots{}
	for line, rc := range trust.DefaultRootCerts {
		if rc != nil && rc.ProductCerts != nil && rc.ProductCerts.Ark != nil {
			r[line] = []*x509.Certificate{rc.ProductCerts.Ark}
		}
	}
	return r
}

var amdRoots = sync.OnceValue(AMDRoots)

// Options inject what verification depends on.
type Options struct {
	// Now is the time at which certificates and the CRL must be valid.
	// Required: the zero time is a CodeOptions error, so nothing verifies
	// at the wall clock by accident.
	Now time.Time
	// Roots pins the AMD root keys. Nil means AMDRoots(): production
	// never accepts another root. Tests inject fixture roots.
	Roots Roots
}

// GuestPolicy is the guest policy the guest was launched with (the
// report's POLICY field).
type GuestPolicy struct {
	// ABIMajor and ABIMinor are the minimum firmware ABI the guest needs.
	ABIMajor, ABIMinor uint8
	// SMT is true if the guest may run with simultaneous multithreading.
	SMT bool
	// MigrateMA is true if the guest may be associated with a migration
	// agent, which can export its memory.
	MigrateMA bool
	// Debug is true if the host may debug the guest: read and write its
	// memory in clear. Such a guest protects nothing.
	Debug bool
	// SingleSocket is true if the guest may run on one socket only.
	SingleSocket bool
}

// Claims are the fields of a report that Verify checked: signed by an
// endorsement key whose certificate chains to a pinned AMD root, valid and
// not revoked at Options.Now. Validate checks them against a policy; the
// caller checks ReportData against the bundle it came in.
type Claims struct {
	// Version is the report format version (2 to 5).
	Version uint32
	// ReportData is the guest-chosen REPORT_DATA; sealgate puts the
	// bundle's binding hash here.
	ReportData [64]byte
	// Measurement is the launch MEASUREMENT of the guest.
	Measurement [48]byte
	// HostData is the HOST_DATA the host supplied at launch.
	HostData [32]byte
	// GuestPolicy is the guest's launch policy.
	GuestPolicy GuestPolicy
	// ReportedTCB is the REPORTED_TCB the endorsement key is derived for.
	ReportedTCB policy.SNPTCB
	// ChipID is the CHIP_ID; all zeros when the host masks it or the key
	// is a VLEK.
	ChipID [64]byte
	// Product is the AMD product line, such as "Milan".
	Product string
	// Key is the endorsement key that signed the report.
	Key Key
	// VMPL is the privilege level the report was requested at.
	VMPL uint32
	// GuestSVN is the guest's security version number.
	GuestSVN uint32
	// CRLPresent is true if the collateral carried the ARK's CRL and
	// Verify checked revocation against it.
	CRLPresent bool
	// NextUpdate is the earliest of the CRL's next update and the expiry
	// of every certificate used: the verdict must be redone by then.
	NextUpdate time.Time
}

// Verify checks an SNP report against its collateral (the encoding of a
// Collateral) at opts.Now, offline, and returns the verified claims. It
// does not check policy (see Validate) or REPORT_DATA (the caller binds it
// to its bundle).
//
// Each failure has its own check.Code. When evidence has several defects,
// the first in this order is reported:
//
//  1. the report parses (go-sev-guest's abi, exactly ReportSize bytes), as
//     do the collateral and its certificates, and the collateral is for
//     the key that signed the report: CodeMalformed; a report that names
//     no signing key: CodeSignature;
//  2. the collateral's ARK is a pinned root for the report's product line:
//     CodeChain;
//  3. the intermediate (ASK or ASVK) is signed by the ARK, and the
//     endorsement key's certificate (VCEK or VLEK) by the intermediate:
//     CodeChain;
//  4. every certificate is valid at opts.Now: CodeCollateralExpired;
//  5. the CRL, if carried, is signed by the ARK (CodeSignature), current
//     at opts.Now (CodeCollateralExpired) and does not list the
//     intermediate (CodeRevoked);
//  6. the report's signature verifies under the endorsement key:
//     CodeSignature;
//  7. AMD's certificate profile, as go-sev-guest checks it: CodeChain;
//  8. the endorsement key's certificate is for the report's REPORTED_TCB
//     and, for a VCEK, its CHIP_ID: CodeChain.
//
// The cryptography is done once, by go-sev-guest's verify.SnpAttestation,
// fed only the carried certificates and CRL, the pinned ARK and opts.Now.
// Only when it fails are steps 3 to 6 checked one by one, to say which.
func Verify(report, collateral []byte, opts Options) (*Claims, error) {
	if opts.Now.IsZero() {
		return nil, check.Fail(check.CodeOptions, "now", "zero time", "the time to verify at")
	}
	roots := opts.Roots
	if roots == nil {
		roots = amdRoots()
	}
	rep, err := parseReport(report)
	if err != nil {
		return nil, err
	}
	info, err := abi.ParseSignerInfo(rep.GetSignerInfo())
	if err != nil {
		return nil, check.Wrap(check.CodeMalformed, "report signer_info", err)
	}
	if info.SigningKey != abi.VcekReportSigner && info.SigningKey != abi.VlekReportSigner {
		return nil, check.Fail(check.CodeSignature, "report signing_key", info.SigningKey.String()+" (the report is not signed)", "VCEK or VLEK")
	}
	key := Key(info.SigningKey)
	col, err := ParseCollateral(collateral)
	if err != nil {
		return nil, check.Wrap(check.CodeMalformed, "collateral", err)
	}
	if col.Key != key {
		return nil, check.Fail(check.CodeMalformed, "collateral key", col.Key.String(), key.String()+", the key that signed the report")
	}
	c, err := parseCerts(col, key)
	if err != nil {
		return nil, err
	}
	exts, err := kds.CertificateExtensions(c.ek, info.SigningKey)
	if err != nil {
		return nil, check.Wrap(check.CodeMalformed, c.ekName+" extensions", err)
	}
	line, err := productLine(rep, exts, key)
	if err != nil {
		return nil, err
	}
	ark, err := pinnedARK(c, roots, line)
	if err != nil {
		return nil, err
	}
	if err := libraryVerify(rep, col, c, ark, line, opts.Now); err != nil {
		return nil, diagnose(err, report, c, ark, opts.Now)
	}
	// go-sev-guest checked the chain, its validity, the CRL's signature
	// and the intermediate's revocation; it did not check that the CRL is
	// current, nor what follows.
	if err := checkValidity(c, opts.Now); err != nil {
		return nil, err
	}
	if c.crl != nil {
		if err := crlCurrent(c, opts.Now); err != nil {
			return nil, err
		}
		if err := notRevoked(c); err != nil {
			return nil, err
		}
	}
	if got, want := exts.TCBVersion, kds.TCBVersion(rep.GetReportedTcb()); got != want {
		return nil, check.Fail(check.CodeChain, c.ekName+" tcb", tcbString(got), tcbString(want)+" (the report's REPORTED_TCB)")
	}
	if key == KeyVCEK && !allZero(rep.GetChipId()) && !bytes.Equal(rep.GetChipId(), exts.HWID) {
		return nil, check.Fail(check.CodeChain, "vcek hwid", short(exts.HWID), short(rep.GetChipId())+" (the report's CHIP_ID)")
	}
	return claims(rep, key, line, c), nil
}

// diagnose says why go-sev-guest refused the evidence: the first of
// Verify's steps 3 to 6 that fails, else its own error as CodeChain (a
// certificate outside AMD's profile).
func diagnose(libErr error, raw []byte, c *certs, ark *x509.Certificate, now time.Time) error {
	steps := []func() error{
		func() error { return checkSignatures(c, ark) },
		func() error { return checkValidity(c, now) },
	}
	if c.crl != nil {
		steps = append(steps,
			func() error { return crlSignature(c, ark) },
			func() error { return crlCurrent(c, now) },
			func() error { return notRevoked(c) })
	}
	steps = append(steps, func() error { return reportSignature(raw, c) })
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return &check.Error{Code: check.CodeChain, Field: "certificate chain", Found: "a chain go-sev-guest refuses", Want: "an AMD KDS certificate chain", Err: libErr}
}

// certs are the parsed collateral.
type certs struct {
	ek, ica, ark    *x509.Certificate
	crl             *x509.RevocationList
	ekName, icaName string
}

func parseReport(raw []byte) (*spb.Report, error) {
	if len(raw) != abi.ReportSize {
		return nil, check.Fail(check.CodeMalformed, "report length", fmt.Sprintf("%d bytes", len(raw)), fmt.Sprintf("%d bytes", abi.ReportSize))
	}
	if err := abi.ValidateReportFormat(raw); err != nil {
		return nil, check.Wrap(check.CodeMalformed, "report", err)
	}
	rep, err := abi.ReportToProto(raw)
	if err != nil {
		return nil, check.Wrap(check.CodeMalformed, "report", err)
	}
	if rep.GetSignatureAlgo() != abi.SignEcdsaP384Sha384 {
		return nil, check.Fail(check.CodeMalformed, "report signature_algo", fmt.Sprint(rep.GetSignatureAlgo()), fmt.Sprintf("%d (ECDSA P-384 with SHA-384)", abi.SignEcdsaP384Sha384))
	}
	return rep, nil
}

func parseCerts(col *Collateral, key Key) (*certs, error) {
	c := &certs{ekName: strings.ToLower(key.String()), icaName: strings.ToLower(key.intermediateName())}
	var err error
	if c.ek, err = x509.ParseCertificate(col.Endorsement); err != nil {
		return nil, check.Wrap(check.CodeMalformed, c.ekName+" certificate", err)
	}
	if c.ica, err = x509.ParseCertificate(col.Intermediate); err != nil {
		return nil, check.Wrap(check.CodeMalformed, c.icaName+" certificate", err)
	}
	if c.ark, err = x509.ParseCertificate(col.Root); err != nil {
		return nil, check.Wrap(check.CodeMalformed, "ark certificate", err)
	}
	if col.CRL != nil {
		if c.crl, err = x509.ParseRevocationList(col.CRL); err != nil {
			return nil, check.Wrap(check.CodeMalformed, "crl", err)
		}
	}
	return c, nil
}

// productLine returns the report's product line: from its CPUID
// family/model/stepping (report version 3 and later), else from the
// endorsement key certificate's product name, as go-sev-guest does.
func productLine(rep *spb.Report, exts *kds.Extensions, key Key) (string, error) {
	if fms := rep.GetCpuid1EaxFms(); fms != 0 {
		line := kds.ProductLineFromFms(fms)
		if line == "Unknown" {
			return "", check.Fail(check.CodeMalformed, "report cpuid", fmt.Sprintf("family/model/stepping 0x%08x", fms), "an AMD SEV-SNP product (Milan, Genoa, Turin)")
		}
		return line, nil
	}
	p, err := kds.ParseProductName(exts.ProductName, abi.ReportSigner(key))
	if err != nil {
		return "", check.Wrap(check.CodeMalformed, strings.ToLower(key.String())+" product name", err)
	}
	return kds.ProductLine(p), nil
}

// pinnedARK returns the pinned ARK for line that the collateral carries.
func pinnedARK(c *certs, roots Roots, line string) (*x509.Certificate, error) {
	pinned := roots[line]
	i := slices.IndexFunc(pinned, func(p *x509.Certificate) bool { return p != nil && bytes.Equal(p.Raw, c.ark.Raw) })
	if i < 0 {
		return nil, check.Fail(check.CodeChain, "ark", "certificate "+fingerprint(c.ark.Raw)+" ("+c.ark.Subject.CommonName+")", fmt.Sprintf("one of the %d pinned ARKs for %s", len(pinned), line))
	}
	return pinned[i], nil
}

// checkSignatures checks that ark signed the intermediate, which signed
// the endorsement key's certificate.
func checkSignatures(c *certs, ark *x509.Certificate) error {
	if err := c.ica.CheckSignatureFrom(ark); err != nil {
		return &check.Error{Code: check.CodeChain, Field: c.icaName, Found: "certificate " + fingerprint(c.ica.Raw), Want: "signed by the pinned ARK", Err: err}
	}
	if err := c.ek.CheckSignatureFrom(c.ica); err != nil {
		return &check.Error{Code: check.CodeChain, Field: c.ekName, Found: "certificate " + fingerprint(c.ek.Raw), Want: "signed by the " + c.icaName, Err: err}
	}
	return nil
}

func checkValidity(c *certs, now time.Time) error {
	for _, it := range []struct {
		name string
		cert *x509.Certificate
	}{{"ark", c.ark}, {c.icaName, c.ica}, {c.ekName, c.ek}} {
		if now.Before(it.cert.NotBefore) || now.After(it.cert.NotAfter) {
			return check.Fail(check.CodeCollateralExpired, it.name+" validity",
				"valid from "+stamp(it.cert.NotBefore)+" to "+stamp(it.cert.NotAfter),
				"valid at "+stamp(now))
		}
	}
	return nil
}

func crlSignature(c *certs, ark *x509.Certificate) error {
	if err := c.crl.CheckSignatureFrom(ark); err != nil {
		return &check.Error{Code: check.CodeSignature, Field: "crl signature", Found: "a crl naming " + c.crl.Issuer.CommonName + " as issuer", Want: "signed by the pinned ARK", Err: err}
	}
	return nil
}

func crlCurrent(c *certs, now time.Time) error {
	if c.crl.NextUpdate.IsZero() {
		return check.Fail(check.CodeMalformed, "crl next_update", "none", "a next update time")
	}
	if now.Before(c.crl.ThisUpdate) || !now.Before(c.crl.NextUpdate) {
		return check.Fail(check.CodeCollateralExpired, "crl validity",
			"this update "+stamp(c.crl.ThisUpdate)+", next update "+stamp(c.crl.NextUpdate),
			"current at "+stamp(now))
	}
	return nil
}

// notRevoked checks the CRL does not list the intermediate. Following
// X.509, the ARK's CRL covers the certificates the ARK issued: the ASK and
// ASVK. AMD does not revoke individual VCEKs (their serial numbers are all
// 0); a TCB update supersedes them instead, which a policy's minimum TCB
// enforces.
func notRevoked(c *certs) error {
	for _, e := range c.crl.RevokedCertificateEntries {
		if e.SerialNumber != nil && e.SerialNumber.Cmp(c.ica.SerialNumber) == 0 {
			return check.Fail(check.CodeRevoked, c.icaName,
				fmt.Sprintf("serial %x revoked at %s", c.ica.SerialNumber, stamp(e.RevocationTime)),
				"not listed in the ARK's crl")
		}
	}
	return nil
}

func reportSignature(raw []byte, c *certs) error {
	if err := verify.SnpReportSignature(raw, c.ek); err != nil {
		return &check.Error{Code: check.CodeSignature, Field: "report signature", Found: "a signature that does not verify", Want: "signed by the " + c.ekName, Err: err}
	}
	return nil
}

// libraryVerify runs go-sev-guest's verify.SnpAttestation, offline: the
// certificate chain comes from the collateral, the only trusted root is
// the pinned ARK, the CRL is the carried one (in a fresh AMDRootCerts per
// call, so nothing is cached between verifications), certificate
// fetching is disabled, and the getter refuses every URL but the
// intermediate's CRL distribution points, where it serves the carried CRL.
func libraryVerify(rep *spb.Report, col *Collateral, c *certs, ark *x509.Certificate, line string, now time.Time) error {
	root := trust.AMDRootCertsProduct(line)
	// go-sev-guest reads the intermediate from Ask for the CRL check, and
	// from Asvk for a VLEK's chain.
	root.ProductCerts = &trust.ProductCerts{Ark: ark, Ask: c.ica}
	if col.Key == KeyVLEK {
		root.ProductCerts.Asvk = c.ica
	}
	root.CRL = c.crl
	chain := &spb.CertificateChain{AskCert: col.Intermediate, ArkCert: col.Root}
	if col.Key == KeyVLEK {
		chain.VlekCert = col.Endorsement
	} else {
		chain.VcekCert = col.Endorsement
	}
	return verify.SnpAttestation(&spb.Attestation{Report: rep, CertificateChain: chain}, &verify.Options{
		CheckRevocations:    c.crl != nil,
		DisableCertFetching: true,
		Getter:              &offlineGetter{crl: col.CRL, urls: c.ica.CRLDistributionPoints},
		Now:                 now,
		TrustedRoots:        map[string][]*trust.AMDRootCerts{line: {root}},
	})
}

// offlineGetter is the trust.HTTPSGetter go-sev-guest gets: it serves the
// carried CRL at the intermediate's CRL distribution points and refuses
// every other URL, so verification never touches the network.
type offlineGetter struct {
	crl  []byte
	urls []string
}

func (g *offlineGetter) Get(url string) ([]byte, error) {
	if g.crl != nil && slices.Contains(g.urls, url) {
		return bytes.Clone(g.crl), nil
	}
	return nil, fmt.Errorf("offline verification: refusing to fetch %q", url)
}

var _ trust.HTTPSGetter = (*offlineGetter)(nil)

func claims(rep *spb.Report, key Key, line string, c *certs) *Claims {
	pol, _ := abi.ParseSnpPolicy(rep.GetPolicy()) // checked by abi.ReportToProto
	tcb := kds.DecomposeTCBVersion(kds.TCBVersion(rep.GetReportedTcb()))
	cl := &Claims{
		Version: rep.GetVersion(),
		GuestPolicy: GuestPolicy{
			ABIMajor: pol.ABIMajor, ABIMinor: pol.ABIMinor,
			SMT: pol.SMT, MigrateMA: pol.MigrateMA, Debug: pol.Debug, SingleSocket: pol.SingleSocket,
		},
		ReportedTCB: policy.SNPTCB{BootLoader: tcb.BlSpl, TEE: tcb.TeeSpl, SNP: tcb.SnpSpl, Microcode: tcb.UcodeSpl},
		Product:     line,
		Key:         key,
		VMPL:        rep.GetVmpl(),
		GuestSVN:    rep.GetGuestSvn(),
		CRLPresent:  c.crl != nil,
	}
	copy(cl.ReportData[:], rep.GetReportData())
	copy(cl.Measurement[:], rep.GetMeasurement())
	copy(cl.HostData[:], rep.GetHostData())
	copy(cl.ChipID[:], rep.GetChipId())
	next := c.ek.NotAfter
	for _, t := range []time.Time{c.ica.NotAfter, c.ark.NotAfter} {
		if t.Before(next) {
			next = t
		}
	}
	if c.crl != nil && c.crl.NextUpdate.Before(next) {
		next = c.crl.NextUpdate
	}
	cl.NextUpdate = next.UTC()
	return cl
}

func tcbString(v kds.TCBVersion) string {
	p := kds.DecomposeTCBVersion(v)
	return fmt.Sprintf("bootloader %d, tee %d, snp %d, microcode %d", p.BlSpl, p.TeeSpl, p.SnpSpl, p.UcodeSpl)
}

func fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(h[:8]) + "…"
}

func short(b []byte) string {
	if len(b) > 8 {
		return hex.EncodeToString(b[:8]) + "…"
	}
	return hex.EncodeToString(b)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
