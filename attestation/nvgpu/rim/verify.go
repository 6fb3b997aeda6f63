package rim

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/sealgate/sealgate/attestation/check"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Options configure Verify.
type Options struct {
	// Now is the time at which every certificate of the signing chain and
	// every OCSP response used must be valid. Required: the zero time is a
	// CodeOptions error, so nothing verifies at the wall clock by
	// accident.
	Now time.Time
	// Roots are the trusted roots of the signing chain. Nil means the
	// pinned NVIDIA CoRIM signing Root CA (NVIDIARoots). Production code
	// leaves it nil; tests inject fixture roots.
	Roots *x509.CertPool
	// OCSP are DER OCSP responses (RFC 6960) about certificates of the
	// signing chain, in any order. A response about no certificate of the
	// chain is ignored, so the caller may pass every response it has (the
	// GPU chain's too); one that does not parse as a successful basic
	// response is CodeMalformed, and so are more than MaxOCSPResponses
	// or one above MaxOCSPSize bytes. Nil means no revocation evidence.
	OCSP [][]byte
	// RequireOCSP makes every certificate of the chain below the root need
	// a good OCSP response. False accepts a certificate without one; a
	// carried response that says revoked or unknown fails either way.
	RequireOCSP bool
}

// Verify checks a RIM at opts.Now, offline, and returns what it signs.
//
// Checks and their codes, in order:
//   - opts.Now is set (CodeOptions);
//   - the document parses (Parse; CodeMalformed);
//   - the signing chain carried in X509Data leads from its first
//     certificate to a root of opts.Roots (CodeChain), every certificate
//     of it valid at opts.Now (CodeCollateralExpired: one that would
//     chain at a time when all are valid, but is outside its validity at
//     opts.Now); the signing certificate is not a CA and may sign
//     (CodeChain);
//   - the signature (CodeSignature): one ds:Signature, a child of the
//     root, in the XML-DSig namespace; one Reference, to the whole
//     document (URI "" or the root's ID) with the enveloped-signature
//     transform and at most one canonicalization after it; canonical XML
//     1.0, 1.1 or exclusive, without comments; SHA-256, SHA-384 or SHA-512
//     digests; ECDSA or RSA PKCS #1 v1.5 with those hashes, matching the
//     signing key (ECDSA values are r||s, as XML-DSig defines them); the
//     signature and digest values in canonical base64; and
//     github.com/russellhaering/goxmldsig validates the digest and the
//     signature value with the signing certificate;
//   - revocation (OCSP responses as Options describes): each response's
//     signature by the certificate's issuer or an OCSP responder the
//     issuer delegated to (CodeSignature), the responder's validity and
//     the response's thisUpdate/nextUpdate window at opts.Now
//     (CodeCollateralExpired), its status (revoked or unknown:
//     CodeRevoked), and with RequireOCSP a good response for every
//     certificate below the root (CodeRevoked).
//
// The RIM returned is read from the element goxmldsig returns as
// validated, the canonical signed content, never from the tree as
// received: only SigningChain comes from the unsigned KeyInfo, and it is
// trusted because the chain was verified. NextUpdate is set.
func Verify(xml []byte, opts Options) (*RIM, error) {
	if opts.Now.IsZero() {
		return nil, check.Fail(check.CodeOptions, "now", "zero time", "the time to verify at")
	}
	roots := opts.Roots
	if roots == nil {
		roots = NVIDIARoots()
	}
	d, err := parse(xml)
	if err != nil {
		return nil, err
	}
	chain, err := verifyChain(d.rim.SigningChain, roots, opts.Now)
	if err != nil {
		return nil, err
	}
	signed, err := verifySignature(d, chain[0], opts.Now)
	if err != nil {
		return nil, err
	}
	r, err := parseSigned(signed)
	if err != nil {
		return nil, err
	}
	r.SigningChain = chain
	r.NextUpdate = earliestExpiry(chain)
	next, err := checkOCSP(chain, opts)
	if err != nil {
		return nil, err
	}
	if !next.IsZero() && next.Before(r.NextUpdate) {
		r.NextUpdate = next
	}
	return r, nil
}

func earliestExpiry(chain []*x509.Certificate) time.Time {
	t := chain[0].NotAfter
	for _, c := range chain[1:] {
		if c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}

// verifyChain returns the chain from the signing certificate to a root.
func verifyChain(carried []*x509.Certificate, roots *x509.CertPool, now time.Time) ([]*x509.Certificate, error) {
	leaf := carried[0]
	// The carried root (NVIDIA carries it) is no intermediate: the root
	// must come from roots, and offering its copy only costs signature
	// checks on paths that cannot succeed.
	inter := x509.NewCertPool()
	for _, c := range carried[1:] {
		if !selfIssued(c) {
			inter.AddCert(c)
		}
	}
	vo := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	chains, err := leaf.Verify(vo)
	if err != nil {
		return nil, diagnoseChain(carried, vo, err)
	}
	// Every carried certificate must be on the verified path, the carried
	// root byte for byte the pinned one: nothing unverified rides along
	// in SigningChain.
	for _, c := range carried {
		if !slices.ContainsFunc(chains[0], func(v *x509.Certificate) bool { return v.Equal(c) }) {
			return nil, check.Fail(check.CodeChain, "signing chain", "a carried certificate that is not on the verified path ("+name(c)+")", "only the path from the signing certificate to the pinned root")
		}
	}
	if leaf.IsCA {
		return nil, check.Fail(check.CodeChain, "signing certificate", "a CA certificate ("+name(leaf)+")", "an end-entity certificate")
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, check.Fail(check.CodeChain, "signing certificate key usage", fmt.Sprintf("%#x", leaf.KeyUsage), "digitalSignature")
	}
	return chains[0], nil
}

// diagnoseChain tells an expired chain from one that does not lead to the
// roots: if the chain verifies at a time when every carried certificate
// is valid, the failure at now is a certificate (carried or root) outside
// its validity.
func diagnoseChain(carried []*x509.Certificate, vo x509.VerifyOptions, err error) error {
	var invalid x509.CertificateInvalidError
	timeFailed := errors.As(err, &invalid) && invalid.Reason == x509.Expired
	from, until := carried[0].NotBefore, carried[0].NotAfter
	for _, c := range carried {
		if !validAt(c, vo.CurrentTime) {
			timeFailed = true
		}
		if c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	if timeFailed && !from.After(until) {
		at := vo
		at.CurrentTime = from
		if chains, err2 := carried[0].Verify(at); err2 == nil {
			for i, c := range chains[0] {
				if !validAt(c, vo.CurrentTime) {
					return check.Fail(check.CodeCollateralExpired, fmt.Sprintf("signing chain[%d]", i),
						fmt.Sprintf("%s valid %s to %s", name(c), c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339)),
						"valid at "+vo.CurrentTime.UTC().Format(time.RFC3339))
				}
			}
		}
	}
	return check.Wrap(check.CodeChain, "signing chain", err)
}

// selfIssued reports whether c names itself as its issuer, as roots do.
func selfIssued(c *x509.Certificate) bool { return bytes.Equal(c.RawSubject, c.RawIssuer) }

func validAt(c *x509.Certificate, t time.Time) bool {
	return !t.Before(c.NotBefore) && !t.After(c.NotAfter)
}

// name identifies a certificate in errors.
func name(c *x509.Certificate) string {
	return fmt.Sprintf("%q serial %s", c.Subject.CommonName, hex.EncodeToString(c.SerialNumber.Bytes()))
}

// Algorithms verifySignature accepts. SHA-1 and the "WithComments"
// canonicalizations are refused.
var (
	canonicalizations = map[string]bool{
		string(dsig.CanonicalXML11AlgorithmId):          true,
		string(dsig.CanonicalXML10ExclusiveAlgorithmId): true,
		string(dsig.CanonicalXML10RecAlgorithmId):       true,
	}
	signatureMethods = map[string]x509.PublicKeyAlgorithm{
		dsig.ECDSASHA256SignatureMethod: x509.ECDSA,
		dsig.ECDSASHA384SignatureMethod: x509.ECDSA,
		dsig.ECDSASHA512SignatureMethod: x509.ECDSA,
		dsig.RSASHA256SignatureMethod:   x509.RSA,
		dsig.RSASHA384SignatureMethod:   x509.RSA,
		dsig.RSASHA512SignatureMethod:   x509.RSA,
	}
	digestMethods = map[string]bool{
		"http://www.w3.org/2001/04/xmlenc#sha256":       true,
		"http://www.w3.org/2001/04/xmldsig-more#sha384": true,
		"http://www.w3.org/2001/04/xmlenc#sha512":       true,
	}
)

func sigFail(field, found, want string) error {
	return check.Fail(check.CodeSignature, field, found, want)
}

// verifySignature checks the enveloped signature of d with the signing
// certificate leaf and returns the validated element: the canonical form
// of the root without its Signature, re-parsed.
func verifySignature(d *document, leaf *x509.Certificate, now time.Time) (*etree.Element, error) {
	if d.sig.NamespaceURI() != namespaceDSig {
		return nil, sigFail("signature", "a Signature outside the XML-DSig namespace", namespaceDSig)
	}
	if err := checkSignedInfo(d.root, d.sig, leaf); err != nil {
		return nil, err
	}
	return validate(d.root, d.sig, leaf, now)
}

// validate runs goxmldsig on a copy of root whose signature is sig,
// trusting only leaf (whose chain the caller verified). XML-DSig encodes
// an ECDSA signature value as r||s; goxmldsig wants ASN.1, so the copy's
// SignatureValue is re-encoded first. It is outside what the signature
// covers, and the re-encoding is one-to-one.
func validate(root, sig *etree.Element, leaf *x509.Certificate, now time.Time) (*etree.Element, error) {
	work := root.Copy()
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); ok {
		wsig, ok := work.Child[sig.Index()].(*etree.Element)
		if !ok {
			return nil, sigFail("signature", "no Signature in the copy", "one")
		}
		sv := childrenNamed(wsig, namespaceDSig, "SignatureValue")
		if len(sv) != 1 {
			return nil, sigFail("signature value", fmt.Sprintf("%d SignatureValue elements", len(sv)), "one")
		}
		der, err := ecdsaValueToASN1(sv[0].Text(), (pub.Curve.Params().BitSize+7)/8)
		if err != nil {
			return nil, err
		}
		sv[0].SetText(der)
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{leaf}})
	vc.Clock = dsig.NewFakeClockAt(now)
	el, err := vc.Validate(work)
	if err != nil {
		return nil, check.Wrap(check.CodeSignature, "signature", err)
	}
	return el, nil
}

// ecdsaValueToASN1 turns a base64 r||s signature value, each size bytes,
// into base64 of the ASN.1 ECDSA-Sig-Value.
func ecdsaValueToASN1(value string, size int) (string, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(strings.Join(strings.Fields(value), ""))
	if err != nil {
		return "", check.Wrap(check.CodeSignature, "signature value", err)
	}
	if len(raw) != 2*size {
		return "", sigFail("signature value", fmt.Sprintf("%d bytes", len(raw)), fmt.Sprintf("%d (ECDSA r||s)", 2*size))
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[:size]))
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[size:]))
	})
	der, err := b.Bytes()
	if err != nil {
		return "", check.Wrap(check.CodeSignature, "signature value", err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// checkSignedInfo applies this package's rules for what a RIM's
// signature may say, before goxmldsig checks what it says.
func checkSignedInfo(root, sig *etree.Element, leaf *x509.Certificate) error {
	one := func(parent *etree.Element, local, field string) (*etree.Element, error) {
		els := childrenNamed(parent, namespaceDSig, local)
		if len(els) != 1 {
			return nil, sigFail(field, fmt.Sprintf("%d %s elements", len(els), local), "one")
		}
		return els[0], nil
	}
	algorithm := func(el *etree.Element) string { v, _ := attr(el, "Algorithm"); return v }

	si, err := one(sig, "SignedInfo", "signature signedinfo")
	if err != nil {
		return err
	}
	sv, err := one(sig, "SignatureValue", "signature value")
	if err != nil {
		return err
	}
	if err := canonicalBase64(sv, "signature value"); err != nil {
		return err
	}
	for _, c := range si.ChildElements() {
		switch {
		case !is(c, namespaceDSig, c.Tag):
			return sigFail("signature signedinfo", "element "+c.FullTag(), "only CanonicalizationMethod, SignatureMethod and Reference")
		case c.Tag == "CanonicalizationMethod", c.Tag == "SignatureMethod", c.Tag == "Reference":
		default:
			return sigFail("signature signedinfo", "element "+c.FullTag(), "only CanonicalizationMethod, SignatureMethod and Reference")
		}
	}
	cm, err := one(si, "CanonicalizationMethod", "signature canonicalization")
	if err != nil {
		return err
	}
	if a := algorithm(cm); !canonicalizations[a] {
		return sigFail("signature canonicalization", a, "canonical XML 1.0, 1.1 or exclusive, without comments")
	}
	sm, err := one(si, "SignatureMethod", "signature method")
	if err != nil {
		return err
	}
	alg, ok := signatureMethods[algorithm(sm)]
	if !ok {
		return sigFail("signature method", algorithm(sm), "ECDSA or RSA with SHA-256, SHA-384 or SHA-512")
	}
	if alg != leaf.PublicKeyAlgorithm {
		return sigFail("signature method", fmt.Sprintf("%s for a %s key", algorithm(sm), leaf.PublicKeyAlgorithm), "the signing certificate's key type")
	}
	ref, err := one(si, "Reference", "signature reference")
	if err != nil {
		return err
	}
	uri, ok := attr(ref, "URI")
	id, _ := attr(root, "ID")
	if !ok || (uri != "" && (id == "" || uri != "#"+id)) {
		return sigFail("signature reference uri", fmt.Sprintf("%q (present: %v)", uri, ok), `"" or the root's ID: the whole document`)
	}
	for _, c := range ref.ChildElements() {
		switch {
		case !is(c, namespaceDSig, c.Tag):
			return sigFail("signature reference", "element "+c.FullTag(), "only Transforms, DigestMethod and DigestValue")
		case c.Tag == "Transforms", c.Tag == "DigestMethod", c.Tag == "DigestValue":
		default:
			return sigFail("signature reference", "element "+c.FullTag(), "only Transforms, DigestMethod and DigestValue")
		}
	}
	ts, err := one(ref, "Transforms", "signature transforms")
	if err != nil {
		return err
	}
	transforms := ts.ChildElements()
	if len(transforms) < 1 || len(transforms) > 2 || !is(transforms[0], namespaceDSig, "Transform") ||
		algorithm(transforms[0]) != string(dsig.EnvelopedSignatureAltorithmId) ||
		(len(transforms) == 2 && (!is(transforms[1], namespaceDSig, "Transform") || !canonicalizations[algorithm(transforms[1])])) {
		var found []string
		for _, t := range transforms {
			found = append(found, algorithm(t))
		}
		return sigFail("signature transforms", "["+strings.Join(found, " ")+"]", "enveloped-signature, then at most one canonicalization")
	}
	dm, err := one(ref, "DigestMethod", "signature digest method")
	if err != nil {
		return err
	}
	if a := algorithm(dm); !digestMethods[a] {
		return sigFail("signature digest method", a, "SHA-256, SHA-384 or SHA-512")
	}
	dv, err := one(ref, "DigestValue", "signature digest value")
	if err != nil {
		return err
	}
	return canonicalBase64(dv, "signature digest value")
}

// canonicalBase64 refuses a value whose base64 has non-zero padding bits
// (which goxmldsig would ignore): one signature, one text.
func canonicalBase64(el *etree.Element, field string) error {
	if _, err := base64.StdEncoding.Strict().DecodeString(strings.Join(strings.Fields(el.Text()), "")); err != nil {
		return check.Wrap(check.CodeSignature, field, err)
	}
	return nil
}
