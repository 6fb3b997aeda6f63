package rim

import (
	"bytes"
	"crypto"
	_ "crypto/sha1" // CertID hashes
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/sealgate/sealgate/attestation/check"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// certID is the CertID of one SingleResponse (RFC 6960, 4.1.1).
type certID struct {
	hash      crypto.Hash
	nameHash  []byte
	keyHash   []byte
	serial    *big.Int
	supported bool // hash is one of SHA-1, SHA-256, SHA-384, SHA-512
}

var certIDHashes = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{[]int{1, 3, 14, 3, 2, 26}, crypto.SHA1},
	{[]int{2, 16, 840, 1, 101, 3, 4, 2, 1}, crypto.SHA256},
	{[]int{2, 16, 840, 1, 101, 3, 4, 2, 2}, crypto.SHA384},
	{[]int{2, 16, 840, 1, 101, 3, 4, 2, 3}, crypto.SHA512},
}

// responseCertIDs reads the CertIDs of an OCSP response's single
// responses, in order. golang.org/x/crypto/ocsp matches a response to a
// certificate by serial number only; checkOCSP also matches the issuer's
// name and key hashes, so a response about another CA's certificate with
// the same serial does not count.
func responseCertIDs(der []byte) ([]certID, bool) {
	in := cryptobyte.String(der)
	var resp, bytesSeq, basic, basicSeq, tbs, responder, responses cryptobyte.String
	var responderTag cbasn1.Tag
	var status int
	if !in.ReadASN1(&resp, cbasn1.SEQUENCE) || !in.Empty() ||
		!resp.ReadASN1Enum(&status) || status != 0 ||
		!resp.ReadASN1(&bytesSeq, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!bytesSeq.ReadASN1(&bytesSeq, cbasn1.SEQUENCE) ||
		!bytesSeq.SkipASN1(cbasn1.OBJECT_IDENTIFIER) ||
		!bytesSeq.ReadASN1(&basic, cbasn1.OCTET_STRING) ||
		!basic.ReadASN1(&basicSeq, cbasn1.SEQUENCE) ||
		!basicSeq.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.ReadAnyASN1(&responder, &responderTag) ||
		(responderTag != cbasn1.Tag(1).Constructed().ContextSpecific() && responderTag != cbasn1.Tag(2).Constructed().ContextSpecific()) ||
		!tbs.SkipASN1(cbasn1.GeneralizedTime) ||
		!tbs.ReadASN1(&responses, cbasn1.SEQUENCE) {
		return nil, false
	}
	var ids []certID
	for !responses.Empty() {
		var single, id, alg cryptobyte.String
		var oid asn1.ObjectIdentifier
		c := certID{serial: new(big.Int)}
		if !responses.ReadASN1(&single, cbasn1.SEQUENCE) ||
			!single.ReadASN1(&id, cbasn1.SEQUENCE) ||
			!id.ReadASN1(&alg, cbasn1.SEQUENCE) ||
			!alg.ReadASN1ObjectIdentifier(&oid) ||
			!id.ReadASN1Bytes(&c.nameHash, cbasn1.OCTET_STRING) ||
			!id.ReadASN1Bytes(&c.keyHash, cbasn1.OCTET_STRING) ||
			!id.ReadASN1Integer(c.serial) {
			return nil, false
		}
		for _, h := range certIDHashes {
			if oid.Equal(h.oid) {
				c.hash, c.supported = h.hash, true
			}
		}
		ids = append(ids, c)
	}
	return ids, true
}

// issuerHashes returns the CertID name and key hashes of issuer.
func issuerHashes(issuer *x509.Certificate, h crypto.Hash) (name, key []byte, ok bool) {
	if !h.Available() {
		return nil, nil, false
	}
	spki := cryptobyte.String(issuer.RawSubjectPublicKeyInfo)
	var seq cryptobyte.String
	var bits asn1.BitString
	if !spki.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.SkipASN1(cbasn1.SEQUENCE) || !seq.ReadASN1BitString(&bits) {
		return nil, nil, false
	}
	hn := h.New()
	hn.Write(issuer.RawSubject)
	hk := h.New()
	hk.Write(bits.Bytes)
	return hn.Sum(nil), hk.Sum(nil), true
}

// about reports whether the response's first single response for cert's
// serial number names issuer: the one golang.org/x/crypto/ocsp reads.
func about(ids []certID, cert, issuer *x509.Certificate) bool {
	for _, id := range ids {
		if id.serial.Cmp(cert.SerialNumber) != 0 {
			continue
		}
		if !id.supported {
			return false
		}
		name, key, ok := issuerHashes(issuer, id.hash)
		return ok && bytes.Equal(name, id.nameHash) && bytes.Equal(key, id.keyHash)
	}
	return false
}

// checkOCSP checks the responses in opts.OCSP about the certificates of
// chain (leaf first, root last) and returns the earliest next update of
// the responses and responder certificates used (zero if none).
func checkOCSP(chain []*x509.Certificate, opts Options) (time.Time, error) {
	if len(opts.OCSP) > MaxOCSPResponses {
		return time.Time{}, check.Fail(check.CodeMalformed, "ocsp", fmt.Sprintf("%d responses", len(opts.OCSP)), fmt.Sprintf("at most %d", MaxOCSPResponses))
	}
	ids := make([][]certID, len(opts.OCSP))
	for i, der := range opts.OCSP {
		if len(der) > MaxOCSPSize {
			return time.Time{}, check.Fail(check.CodeMalformed, fmt.Sprintf("ocsp[%d]", i), fmt.Sprintf("%d bytes", len(der)), fmt.Sprintf("at most %d", MaxOCSPSize))
		}
		var ok bool
		if ids[i], ok = responseCertIDs(der); !ok {
			return time.Time{}, check.Fail(check.CodeMalformed, fmt.Sprintf("ocsp[%d]", i), "not a successful basic OCSP response", "DER of an RFC 6960 response")
		}
	}
	var next time.Time
	earliest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for ci, cert := range chain[:len(chain)-1] {
		issuer := chain[ci+1]
		good := false
		for i, der := range opts.OCSP {
			if !about(ids[i], cert, issuer) {
				continue
			}
			f := fmt.Sprintf("ocsp[%d]", i)
			resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
			if err != nil {
				return time.Time{}, check.Wrap(check.CodeSignature, f, fmt.Errorf("response about signing chain[%d] %s: %w", ci, name(cert), err))
			}
			if rc := resp.Certificate; rc != nil {
				if !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
					return time.Time{}, check.Fail(check.CodeSignature, f+" responder", name(rc)+" without the OCSPSigning extended key usage", "the issuer or a responder it delegated to")
				}
				if !validAt(rc, opts.Now) {
					return time.Time{}, check.Fail(check.CodeCollateralExpired, f+" responder", fmt.Sprintf("%s valid %s to %s", name(rc), rc.NotBefore.UTC().Format(time.RFC3339), rc.NotAfter.UTC().Format(time.RFC3339)), "valid at "+opts.Now.UTC().Format(time.RFC3339))
				}
				earliest(rc.NotAfter)
			}
			switch resp.Status {
			case ocsp.Revoked:
				return time.Time{}, check.Fail(check.CodeRevoked, f, fmt.Sprintf("signing chain[%d] %s revoked at %s (reason %d)", ci, name(cert), resp.RevokedAt.UTC().Format(time.RFC3339), resp.RevocationReason), "good")
			case ocsp.Good, ocsp.Unknown:
			default:
				return time.Time{}, check.Fail(check.CodeRevoked, f, fmt.Sprintf("status %d", resp.Status), "good")
			}
			if opts.Now.Before(resp.ThisUpdate) {
				return time.Time{}, check.Fail(check.CodeCollateralExpired, f+" this update", resp.ThisUpdate.UTC().Format(time.RFC3339), "at or before "+opts.Now.UTC().Format(time.RFC3339))
			}
			if resp.NextUpdate.IsZero() {
				return time.Time{}, check.Fail(check.CodeCollateralExpired, f+" next update", "none", "a next update after "+opts.Now.UTC().Format(time.RFC3339))
			}
			if !opts.Now.Before(resp.NextUpdate) {
				return time.Time{}, check.Fail(check.CodeCollateralExpired, f+" next update", resp.NextUpdate.UTC().Format(time.RFC3339), "after "+opts.Now.UTC().Format(time.RFC3339))
			}
			if resp.Status == ocsp.Unknown {
				return time.Time{}, check.Fail(check.CodeRevoked, f, fmt.Sprintf("signing chain[%d] %s status unknown", ci, name(cert)), "good")
			}
			earliest(resp.NextUpdate)
			good = true
		}
		if !good && opts.RequireOCSP {
			return time.Time{}, check.Fail(check.CodeRevoked, fmt.Sprintf("ocsp signing chain[%d]", ci), "no response about "+name(cert), "a good OCSP response (RequireOCSP)")
		}
	}
	return next, nil
}
