// Package rimtest makes synthetic NVIDIA-style reference integrity
// manifests for tests: a fixture signing PKI (a root and a signing
// certificate), SWID documents signed the way NVIDIA signs its RIMs
// (enveloped XML-DSig, canonical XML 1.1, ECDSA with r||s signature
// values, the chain in X509Data), and OCSP responses about the fixture
// certificates.
//
// Keys come from a seed and every signature is deterministic (RFC 6979;
// RSA PKCS #1 v1.5 is deterministic by construction), so the same inputs
// give the same bytes: the committed files in rim/testdata are
// regenerated and compared by a test.
//
// TEST-ONLY. The fixture root is trusted only where a test passes it in
// rim.Options.Roots; production code never imports this package.
package rimtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"github.com/sealgate/sealgate/internal/fixturekey"
	"io"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// Spec is what Sign writes into a RIM.
type Spec struct {
	// ID is the SWID tagId.
	ID string
	// ColloquialVersion is the Meta colloquialVersion: a driver or VBIOS
	// version.
	ColloquialVersion string
	// Version is the SoftwareIdentity version; "" means "1.0".
	Version string
	// Measurements are the golden values, written as Resources in the
	// order given (Sign does not sort or check them, so tests can write
	// bad RIMs too). Each Alternatives[k] becomes the attribute HashK in
	// the SHA-384 namespace, in hex.
	Measurements []rim.Measurement
}

// Sign returns a RIM for spec, signed with key, carrying chain (leaf
// first) in X509Data, shaped like NVIDIA's: a SoftwareIdentity with an
// Entity, a Meta and a Payload, then an enveloped ds:Signature over the
// whole document (Reference URI "", enveloped-signature and canonical
// XML 1.1 transforms). ECDSA keys sign with the hash of their curve's
// size (SHA-384 for P-384), RSA keys with SHA-384.
func Sign(tb testing.TB, spec Spec, key crypto.Signer, chain []*x509.Certificate) []byte {
	tb.Helper()
	b, err := sign(spec, key, chain)
	if err != nil {
		tb.Fatalf("rimtest: sign: %v", err)
	}
	return b
}

func sign(spec Spec, key crypto.Signer, chain []*x509.Certificate) ([]byte, error) {
	version := spec.Version
	if version == "" {
		version = "1.0"
	}
	doc := etree.NewDocument()
	root := doc.CreateElement("SoftwareIdentity")
	for _, a := range [][2]string{
		{"xmlns", rim.NamespaceSWID},
		{"xmlns:ns0", rim.NamespaceSWID},
		{"xmlns:ns2", rim.NamespaceSHA384},
		{"corpus", "false"},
		{"name", "SEALGATE-FIXTURE"},
		{"patch", "false"},
		{"supplemental", "false"},
		{"tagId", spec.ID},
		{"version", version},
		{"tagVersion", "0"},
	} {
		root.CreateAttr(a[0], a[1])
	}
	entity := root.CreateElement("ns0:Entity")
	entity.CreateAttr("name", "sealgate test fixture")
	entity.CreateAttr("role", "softwareCreator tagCreator")
	meta := root.CreateElement("ns0:Meta")
	meta.CreateAttr("colloquialVersion", spec.ColloquialVersion)
	meta.CreateAttr("product", "SEALGATE-FIXTURE")
	meta.CreateAttr("PayloadType", "direct")
	payload := root.CreateElement("ns0:Payload")
	for _, m := range spec.Measurements {
		r := payload.CreateElement("ns0:Resource")
		r.CreateAttr("type", "Measurement")
		r.CreateAttr("index", strconv.Itoa(m.Index))
		r.CreateAttr("active", map[bool]string{true: "True", false: "False"}[m.Active])
		r.CreateAttr("alternatives", strconv.Itoa(len(m.Alternatives)))
		for k, v := range m.Alternatives {
			r.CreateAttr(fmt.Sprintf("ns2:Hash%d", k), hex.EncodeToString(v))
		}
		r.CreateAttr("name", fmt.Sprintf("Measurement_%d", m.Index))
		r.CreateAttr("size", strconv.Itoa(m.Size))
	}
	doc.Indent(4)

	var certs [][]byte
	for _, c := range chain {
		certs = append(certs, c.Raw)
	}
	ctx, err := dsig.NewSigningContext(xmldsigSigner{key}, certs)
	if err != nil {
		return nil, err
	}
	ctx.Prefix = "ds"
	ctx.Canonicalizer = dsig.MakeC14N11Canonicalizer()
	method := dsig.RSASHA384SignatureMethod
	if pub, ok := key.Public().(*ecdsa.PublicKey); ok {
		switch pub.Curve {
		case elliptic.P256():
			method = dsig.ECDSASHA256SignatureMethod
		case elliptic.P384():
			method = dsig.ECDSASHA384SignatureMethod
		default:
			method = dsig.ECDSASHA512SignatureMethod
		}
	}
	if err := ctx.SetSignatureMethod(method); err != nil {
		return nil, err
	}
	signed, err := ctx.SignEnveloped(doc.Root())
	if err != nil {
		return nil, err
	}
	doc.SetRoot(signed)
	return doc.WriteToBytes()
}

// xmldsigSigner signs deterministically when it can and returns ECDSA
// signatures as XML-DSig encodes them: r||s, each the curve's size
// (goxmldsig would write the ASN.1 form).
type xmldsigSigner struct{ crypto.Signer }

func (s xmldsigSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := Deterministic(s.Signer).Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, err
	}
	pub, ok := s.Public().(*ecdsa.PublicKey)
	if !ok {
		return sig, nil
	}
	var r, ss big.Int
	in := cryptobyte.String(sig)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&ss) {
		return nil, fmt.Errorf("rimtest: ECDSA signature is not ASN.1")
	}
	size := (pub.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	r.FillBytes(out[:size])
	ss.FillBytes(out[size:])
	return out, nil
}

// Deterministic wraps key so that it signs without randomness: ECDSA
// keys per RFC 6979, RSA keys with PKCS #1 v1.5 (deterministic anyway).
// Other signers are returned as they are.
func Deterministic(key crypto.Signer) crypto.Signer {
	switch key.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey:
		return deterministic{key}
	}
	return key
}

type deterministic struct{ crypto.Signer }

func (d deterministic) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return d.Signer.Sign(nil, digest, opts)
}

// DeriveKey returns a P-384 key derived from seed and label.
func DeriveKey(seed, label string) *ecdsa.PrivateKey {
	return fixturekey.ECDSA(elliptic.P384(), "rimtest", seed, label)
}

func serial(seed, label string) *big.Int { return fixturekey.Serial("rimtest", seed, label, 16) }

func keyID(pub crypto.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	h := sha1.Sum(der)
	return h[:]
}

// PKI is a fixture RIM signing hierarchy: a root and a signing
// certificate it issued, both P-384.
type PKI struct {
	Root, Leaf       *x509.Certificate
	RootKey, LeafKey *ecdsa.PrivateKey
	seed             string
}

// Validity of the fixture certificates around NewPKI's now.
const (
	RootBefore = 365 * 24 * time.Hour
	RootAfter  = 20 * 365 * 24 * time.Hour
	LeafBefore = 24 * time.Hour
	LeafAfter  = 365 * 24 * time.Hour
)

// NewPKI returns the fixture PKI for seed: the root is valid from
// now-RootBefore to now+RootAfter, the signing certificate from
// now-LeafBefore to now+LeafAfter. The same seed and now give the same
// certificates.
func NewPKI(seed string, now time.Time) *PKI {
	now = now.UTC().Truncate(time.Second)
	p := &PKI{RootKey: DeriveKey(seed, "root"), LeafKey: DeriveKey(seed, "leaf"), seed: seed}
	rootTmpl := &x509.Certificate{
		SerialNumber:          serial(seed, "root"),
		Subject:               pkix.Name{CommonName: "sealgate fixture RIM signing Root CA", Organization: []string{"sealgate test fixtures"}},
		NotBefore:             now.Add(-RootBefore),
		NotAfter:              now.Add(RootAfter),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          keyID(&p.RootKey.PublicKey),
	}
	p.Root = mustCreate(rootTmpl, rootTmpl, &p.RootKey.PublicKey, p.RootKey)
	p.Leaf = p.Issue("leaf", "sealgate fixture RIM signer", &p.LeafKey.PublicKey, now.Add(-LeafBefore), now.Add(LeafAfter))
	return p
}

// NewCA returns NewPKI(seed, now)'s root, signing certificate and signing
// key.
func NewCA(seed string, now time.Time) (root, leaf *x509.Certificate, leafKey crypto.Signer) {
	p := NewPKI(seed, now)
	return p.Root, p.Leaf, p.LeafKey
}

// Issue returns an end-entity signing certificate for pub, issued by the
// root, valid from notBefore to notAfter; label makes its serial number.
// Tests use it for RSA signers and for certificates that expire.
func (p *PKI) Issue(label, cn string, pub crypto.PublicKey, notBefore, notAfter time.Time) *x509.Certificate {
	return mustCreate(&x509.Certificate{
		SerialNumber:          serial(p.seed, label),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"sealgate test fixtures"}},
		NotBefore:             notBefore.UTC(),
		NotAfter:              notAfter.UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SubjectKeyId:          keyID(pub),
		AuthorityKeyId:        p.Root.SubjectKeyId,
	}, p.Root, pub, p.RootKey)
}

// Responder returns an OCSP responder certificate issued by the root,
// with the OCSPSigning extended key usage when delegated is true (false
// makes one a verifier must refuse), and its key.
func (p *PKI) Responder(delegated bool, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	label := "responder"
	if !delegated {
		label = "responder-without-eku"
	}
	key := DeriveKey(p.seed, label)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(p.seed, label),
		Subject:               pkix.Name{CommonName: "sealgate fixture OCSP responder", Organization: []string{"sealgate test fixtures"}},
		NotBefore:             notBefore.UTC(),
		NotAfter:              notAfter.UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SubjectKeyId:          keyID(&key.PublicKey),
		AuthorityKeyId:        p.Root.SubjectKeyId,
	}
	if delegated {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	}
	return mustCreate(tmpl, p.Root, &key.PublicKey, p.RootKey), key
}

// Roots returns a pool holding only the fixture root.
func (p *PKI) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.Root)
	return pool
}

// Chain returns the chain Sign should carry: the signing certificate,
// then the root, as NVIDIA carries its chain up to the root.
func (p *PKI) Chain() []*x509.Certificate { return []*x509.Certificate{p.Leaf, p.Root} }

// OCSP returns a DER OCSP response from the root about cert (which the
// root issued), signed by the root itself: status ocsp.Good, ocsp.Revoked
// (revoked at thisUpdate, key compromise) or ocsp.Unknown.
func (p *PKI) OCSP(tb testing.TB, cert *x509.Certificate, status int, thisUpdate, nextUpdate time.Time) []byte {
	tb.Helper()
	r := OCSPResponse{Status: status, ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	if status == ocsp.Revoked {
		r.RevokedAt, r.Reason = thisUpdate, ocsp.KeyCompromise
	}
	return OCSP(tb, cert, p.Root, p.RootKey, r)
}

// mustCreate signs a certificate deterministically: x509 signs with RFC
// 6979 when given no randomness and the serial number is set.
func mustCreate(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	der, err := x509.CreateCertificate(nil, tmpl, parent, pub, key)
	if err != nil {
		panic("rimtest: create certificate: " + err.Error())
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic("rimtest: parse certificate: " + err.Error())
	}
	return c
}

// OCSPResponse describes a response for OCSP.
type OCSPResponse struct {
	// Status is ocsp.Good, ocsp.Revoked or ocsp.Unknown.
	Status int
	// ThisUpdate is also the response's producedAt.
	ThisUpdate time.Time
	// NextUpdate zero leaves nextUpdate out.
	NextUpdate time.Time
	// RevokedAt and Reason are written when Status is ocsp.Revoked.
	RevokedAt time.Time
	Reason    int
	// Responder, when set, is a delegated responder certificate: it is
	// embedded, named as the responder, and its key signs. Nil means the
	// issuer signs and is named.
	Responder *x509.Certificate
}

// OCSP returns a DER OCSP response (RFC 6960) about cert, which issuer
// issued, signed by key (the issuer's, or r.Responder's), with SHA-384
// CertID hashes as NVIDIA's responders use. It is built by hand rather
// than with ocsp.CreateResponse, which stamps producedAt with the wall
// clock. Only ECDSA keys are supported.
func OCSP(tb testing.TB, cert, issuer *x509.Certificate, key crypto.Signer, r OCSPResponse) []byte {
	tb.Helper()
	b, err := buildOCSP(cert, issuer, key, r)
	if err != nil {
		tb.Fatalf("rimtest: ocsp: %v", err)
	}
	return b
}

var (
	oidSHA384      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidOCSPBasic   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidECDSASHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
)

func buildOCSP(cert, issuer *x509.Certificate, key crypto.Signer, r OCSPResponse) ([]byte, error) {
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("key %T, want ECDSA", key.Public())
	}
	hash, sigOID := crypto.SHA384, oidECDSASHA384
	switch pub.Curve {
	case elliptic.P256():
		hash, sigOID = crypto.SHA256, oidECDSASHA256
	case elliptic.P521():
		hash, sigOID = crypto.SHA512, oidECDSASHA512
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, err
	}
	nameHash := sha512.Sum384(issuer.RawSubject)
	keyHash := sha512.Sum384(spki.PublicKey.RightAlign())
	responder := issuer
	if r.Responder != nil {
		responder = r.Responder
	}

	var tbs cryptobyte.Builder
	tbs.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddBytes(responder.RawSubject)
		})
		b.AddASN1GeneralizedTime(r.ThisUpdate.UTC())
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidSHA384)
						b.AddASN1NULL()
					})
					b.AddASN1OctetString(nameHash[:])
					b.AddASN1OctetString(keyHash[:])
					b.AddASN1BigInt(cert.SerialNumber)
				})
				switch r.Status {
				case ocsp.Good:
					b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(*cryptobyte.Builder) {})
				case ocsp.Revoked:
					b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						b.AddASN1GeneralizedTime(r.RevokedAt.UTC())
						b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
							b.AddASN1Enum(int64(r.Reason))
						})
					})
				default:
					b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(*cryptobyte.Builder) {})
				}
				b.AddASN1GeneralizedTime(r.ThisUpdate.UTC())
				if !r.NextUpdate.IsZero() {
					b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						b.AddASN1GeneralizedTime(r.NextUpdate.UTC())
					})
				}
			})
		})
	})
	tbsDER, err := tbs.Bytes()
	if err != nil {
		return nil, err
	}
	h := hash.New()
	h.Write(tbsDER)
	sig, err := Deterministic(key).Sign(rand.Reader, h.Sum(nil), hash)
	if err != nil {
		return nil, err
	}
	var basic cryptobyte.Builder
	basic.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbsDER)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(sigOID) })
		b.AddASN1BitString(sig)
		if r.Responder != nil {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(r.Responder.Raw) })
			})
		}
	})
	basicDER, err := basic.Bytes()
	if err != nil {
		return nil, err
	}
	var out cryptobyte.Builder
	out.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Enum(0) // successful
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidOCSPBasic)
				b.AddASN1OctetString(basicDER)
			})
		})
	})
	return out.Bytes()
}
