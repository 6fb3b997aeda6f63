package rim_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim/rimtest"
)

// forgedPayload is a Payload whose golden value for index 7 (the driver
// RIM's first active index) is all 0xee.
const forgedPayload = `<ns0:Payload><ns0:Resource type="Measurement" index="7" active="True" alternatives="1" ` +
	`ns2:Hash0="eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee" name="Measurement_7" size="48"/></ns0:Payload>`

var (
	payloadElement   = regexp.MustCompile(`(?s)<ns0:Payload.*</ns0:Payload>`)
	signatureElement = regexp.MustCompile(`(?s)<ds:Signature .*</ds:Signature>`)
)

// TestSignatureWrapping tries the XML signature wrapping attacks on the
// real driver RIM, keeping its valid signature: forged golden values
// where the signature does not cover them, or next to or around the
// signed content. Each is refused.
func TestSignatureWrapping(t *testing.T) {
	raw := string(readRIM(t, driverRIM))
	opts := rim.Options{Now: recordedAt}
	genuine := verified(t, []byte(raw), opts)
	sig := signatureElement.FindString(raw)
	payload := payloadElement.FindString(raw)
	rootOpen := raw[:strings.Index(raw, ">")+1]
	if sig == "" || payload == "" {
		t.Fatal("no Signature or Payload in the driver RIM")
	}
	for _, tc := range []struct {
		name string
		doc  string
		code check.Code
	}{
		// The enveloped-signature transform removes the whole Signature
		// before digesting, so what is inside it is not signed.
		{"forged payload in a ds:Object", strings.Replace(raw, "</ds:KeyInfo>", "</ds:KeyInfo><ds:Object>"+forgedPayload+"</ds:Object>", 1), check.CodeMalformed},
		{"forged payload in KeyInfo", strings.Replace(raw, "<ds:X509Data>", forgedPayload+"<ds:X509Data>", 1), check.CodeMalformed},
		{"forged payload in X509Data", strings.Replace(raw, "</ds:X509Data>", forgedPayload+"</ds:X509Data>", 1), check.CodeMalformed},
		{"forged SoftwareIdentity in a ds:Object", strings.Replace(raw, "</ds:KeyInfo>", "</ds:KeyInfo><ds:Object>"+rootOpen+forgedPayload+"</SoftwareIdentity></ds:Object>", 1), check.CodeMalformed},
		// Forged content in the signed region changes the digest.
		{"forged payload replacing the genuine one", strings.Replace(raw, payload, forgedPayload, 1), check.CodeSignature},
		{"forged payload before the genuine one", strings.Replace(raw, payload, forgedPayload+payload, 1), check.CodeMalformed},
		{"forged resource added", strings.Replace(raw, "</ns0:Payload>", `<ns0:Resource type="Measurement" index="64" active="True" alternatives="1" ns2:Hash0="`+strings.Repeat("ee", 48)+`" name="x" size="48"/></ns0:Payload>`, 1), check.CodeSignature},
		// The signed document wrapped in a forged one that carries the
		// signature: the Reference "" means the forged root.
		{"genuine document wrapped, signature moved to the wrapper", rootOpen + `<ns0:Meta colloquialVersion="550.90.07"/>` + forgedPayload +
			`<ns0:Entity>` + strings.Replace(raw, sig, "", 1) + `</ns0:Entity>` + sig + `</SoftwareIdentity>`, check.CodeSignature},
		// ... or leaves the signature inside the genuine document.
		{"genuine signed document wrapped", rootOpen + `<ns0:Meta colloquialVersion="550.90.07"/>` + forgedPayload +
			`<ns0:Entity>` + raw + `</ns0:Entity></SoftwareIdentity>`, check.CodeMalformed},
		{"signature in a forged document", rootOpen + `<ns0:Meta colloquialVersion="550.90.07"/>` + forgedPayload + sig + `</SoftwareIdentity>`, check.CodeSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := rim.Verify([]byte(tc.doc), opts)
			if r != nil {
				t.Fatalf("accepted; measurement 7 reads %x", r.Measurements[7].Alternatives[0])
			}
			wantCode(t, err, tc.code)
		})
	}

	// What the refusals above protect: goxmldsig alone accepts a
	// signature whose ds:Object carries a forged Payload. The element it
	// returns as validated, which Verify reads, holds the genuine one.
	forged := strings.Replace(raw, "</ds:KeyInfo>", "</ds:KeyInfo><ds:Object>"+forgedPayload+"</ds:Object>", 1)
	validated, err := rim.ValidateXMLDSig([]byte(forged), genuine.SigningChain[0], recordedAt)
	if err != nil {
		t.Fatalf("goxmldsig refused the ds:Object: %v", err)
	}
	if strings.Contains(validated, strings.Repeat("ee", 48)) || strings.Contains(validated, "Signature") {
		t.Fatal("the validated element carries the unsigned Signature or forged Payload")
	}
	ms, err := rim.ParsePayload([]byte(validated))
	if err != nil || !equalMeasurements(ms, genuine.Measurements) {
		t.Fatalf("validated element's measurements differ from the genuine ones: %v", err)
	}
}

// TestUnsignedPartsAreNotRead: comments and whitespace are outside what
// canonical XML (without comments) signs; they may change, and Verify
// reads the same RIM.
func TestUnsignedPartsAreNotRead(t *testing.T) {
	raw := string(readRIM(t, driverRIM))
	opts := rim.Options{Now: recordedAt}
	genuine := verified(t, []byte(raw), opts)
	for _, doc := range []string{
		"<!-- before -->" + raw + "\n<!-- after -->\n",
		strings.Replace(raw, `<ns0:Resource type="Measurement" index="7"`, `<!-- index="8" ns2:Hash0="ee" --><ns0:Resource type="Measurement" index="7"`, 1),
		strings.Replace(raw, "<ds:SignedInfo>", "<ds:SignedInfo><!-- c -->", 1),
		strings.Replace(raw, "<ds:X509Certificate>", "<ds:X509Certificate>\n  ", 1),
	} {
		r := verified(t, []byte(doc), opts)
		if !equalMeasurements(r.Measurements, genuine.Measurements) || r.ColloquialVersion != genuine.ColloquialVersion {
			t.Fatal("a comment or whitespace changed what Verify read")
		}
	}
}

// TestSignaturePolicy: what a signature may say, whatever goxmldsig
// would accept.
func TestSignaturePolicy(t *testing.T) {
	raw := string(readRIM(t, driverRIM))
	opts := rim.Options{Now: recordedAt}
	for _, tc := range []struct{ name, old, new, field string }{
		{"sha-1 signature", "xmldsig-more#ecdsa-sha384", "xmldsig-more#ecdsa-sha1", "signature method"},
		{"rsa method for an ecdsa key", "xmldsig-more#ecdsa-sha384", "xmldsig-more#rsa-sha384", "signature method"},
		{"sha-1 digest", `<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#sha384"/>`, `<ds:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/>`, "signature digest method"},
		{"canonicalization with comments", `<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2006/12/xml-c14n11"/>`, `<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2006/12/xml-c14n11#WithComments"/>`, "signature canonicalization"},
		{"no enveloped transform", `<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>`, ``, "signature transforms"},
		{"extra transform", `</ds:Transforms>`, `<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"/></ds:Transforms>`, "signature transforms"},
		{"reference to an id", `<ds:Reference URI="">`, `<ds:Reference URI="#x">`, "signature reference uri"},
		{"reference without uri", `<ds:Reference URI="">`, `<ds:Reference>`, "signature reference uri"},
		{"second reference", `</ds:SignedInfo>`, `<ds:Reference URI=""/></ds:SignedInfo>`, "signature reference"},
		{"object in signedinfo", `</ds:SignedInfo>`, `<ds:Object/></ds:SignedInfo>`, "signature signedinfo"},
		{"signature outside the dsig namespace", `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">`, `<ds:Signature xmlns:ds="">`, "signature"},
		{"asn.1 signature value", `<ds:SignatureValue>`, `<ds:SignatureValue>MGQCMA==`, "signature value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(raw, tc.old, tc.new, 1)
			if doc == raw {
				t.Fatalf("edit %q does not apply", tc.old)
			}
			_, err := rim.Verify([]byte(doc), opts)
			code := check.CodeOf(err)
			if code != check.CodeSignature && code != check.CodeMalformed {
				t.Fatalf("code %q (%v), want signature or malformed", code, err)
			}
			if e := problems(err); len(e) == 0 || e[0].Field != tc.field {
				t.Fatalf("error %v, want field %q", err, tc.field)
			}
		})
	}
}

// TestVerifyRSA: an RSA-signed RIM (PKCS #1 v1.5, SHA-384) under the
// fixture root.
func TestVerifyRSA(t *testing.T) {
	p := fixturePKI(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	leaf := p.Issue("rsa", "RSA RIM signer", &key.PublicKey, testdataNow.Add(-time.Hour), testdataNow.Add(time.Hour))
	spec := testdataSpec("vbios")
	raw := rimtest.Sign(t, spec, key, []*x509.Certificate{leaf, p.Root})
	opts := rim.Options{Now: testdataNow, Roots: p.Roots()}
	r := verified(t, raw, opts)
	if !equalMeasurements(r.Measurements, spec.Measurements) {
		t.Fatal("measurements differ from the spec")
	}
	if !r.NextUpdate.Equal(leaf.NotAfter) {
		t.Errorf("NextUpdate %v, want %v", r.NextUpdate, leaf.NotAfter)
	}
	active, _, rest := signedSpans(raw)
	stride := 3
	if testing.Short() || raceEnabled {
		stride = 17
	}
	flipAll(t, raw, opts, append(active, rest...), stride)
	// A 256-byte signature ends in "==": the last character before it
	// carries 4 unused bits. Setting one decodes to the same signature
	// under lenient base64, and Verify refuses it.
	sv := regexp.MustCompile(`<ds:SignatureValue>([^<]+)==<`).FindSubmatchIndex(raw)
	if sv == nil {
		t.Fatal("RSA signature value does not end in ==")
	}
	padded := bytes.Clone(raw)
	last := sv[3] - 1
	padded[last] = base64Alphabet[strings.IndexByte(base64Alphabet, padded[last])^1]
	_, err = rim.Verify(padded, opts)
	if e := wantCode(t, err, check.CodeSignature); e.Field != "signature value" {
		t.Errorf("padding bits set: field %q", e.Field)
	}
	// The RSA signature under an ECDSA signing certificate.
	ecLeaf := p.Leaf
	wrongKey := bytes.Replace(raw, []byte(b64(leaf.Raw)), []byte(b64(ecLeaf.Raw)), 1)
	_, err = rim.Verify(wrongKey, opts)
	wantCode(t, err, check.CodeSignature)
}
