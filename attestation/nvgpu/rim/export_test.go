package rim

import (
	"crypto/x509"
	"time"

	"github.com/beevik/etree"
)

// ParsePayload reads only the Payload of a document, as Parse does, for
// the parser fixtures of NVIDIA's verifiers that hold nothing else.
func ParsePayload(b []byte) ([]Measurement, error) {
	root, err := readDocument(b)
	if err != nil {
		return nil, err
	}
	var r RIM
	if e := parsePayload(root, &r); e != nil {
		return nil, e
	}
	return r.Measurements, nil
}

// ValidateXMLDSig runs Verify's signature step alone on any document:
// the root's first Signature child, checked against this package's
// algorithm rules and by goxmldsig with cert. It returns the validated
// element, serialized.
func ValidateXMLDSig(b []byte, cert *x509.Certificate, now time.Time) (string, error) {
	root, err := readDocument(b)
	if err != nil {
		return "", err
	}
	sig := childrenNamed(root, namespaceDSig, "Signature")[0]
	if err := checkSignedInfo(root, sig, cert); err != nil {
		return "", err
	}
	el, err := validate(root, sig, cert, now)
	if err != nil {
		return "", err
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	return doc.WriteToString()
}
