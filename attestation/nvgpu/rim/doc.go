// Package rim reads and verifies NVIDIA reference integrity manifests
// (RIMs): the signed SWID tags (ISO/IEC 19770-2) in which NVIDIA
// publishes, per GPU driver version and per VBIOS, the golden values of
// the measurements an NVIDIA GPU reports over SPDM. Package nvgpu compares
// a GPU's measurements with the RIMs Verify returns.
//
// A RIM is XML: a SoftwareIdentity (tagId, version) with a Meta
// (colloquialVersion: the driver or VBIOS version), a Payload of
// Resources (one per measurement index: whether it is active, its size,
// and one or more accepted SHA-384 values, Hash0 to HashN), and an
// enveloped XML-DSig signature over the whole document whose KeyInfo
// carries the signing certificate chain up to NVIDIA's CoRIM signing
// root.
//
//   - Parse reads a RIM strictly, without trusting it: every malformed
//     field is a check.CodeMalformed error naming it.
//   - Verify parses, checks the chain to a pinned root at an injected
//     time, the signature, and revocation from carried OCSP responses,
//     then returns the RIM read from the signed content only.
//
// Decisions this package makes:
//
//   - The trust anchor is the NVIDIA CoRIM signing Root CA, embedded
//     (NVIDIARootCA; its source is cited in roots.go). Options.Roots nil
//     means it; tests inject fixture roots. The root a RIM carries is
//     never trusted for being carried.
//   - XML-DSig is github.com/russellhaering/goxmldsig (pure Go). Before
//     it runs, this package requires one signature, a child of the root,
//     holding only SignedInfo, SignatureValue and KeyInfo, with one
//     Reference to the whole document, the enveloped-signature transform,
//     and SHA-2 algorithms. goxmldsig only trusts certificates it is
//     given, so the chain is verified here (crypto/x509) and goxmldsig is
//     handed the verified signing certificate alone. XML-DSig writes ECDSA
//     signature values as r||s while goxmldsig reads ASN.1: Verify
//     re-encodes the value, which the signature does not cover.
//   - Signature wrapping: the measurements, versions and tagId are read
//     from the element goxmldsig returns as validated (the canonical
//     signed bytes, re-parsed), never from the document as received, and
//     Parse refuses content where the enveloped transform would hide it
//     from the digest (inside the Signature) or a second signature.
//   - Parse reports every malformed part of a document (the root, Meta,
//     Payload, Signature), the first as the error and the others wrapped
//     in it: the parser fixtures of NVIDIA's verifiers each exercise one
//     part and lack the others.
//   - OCSP responses are matched to the chain's certificates by serial
//     number and issuer name and key hashes; others are ignored. A carried
//     response that says revoked or unknown fails whether or not
//     RequireOCSP asks for one per certificate.
//   - RIM.NextUpdate is the earliest expiry of what the verdict used: the
//     chain's certificates, the OCSP responses' next updates, the OCSP
//     responders' certificates.
//
// Package rim/rimtest makes synthetic RIMs under fixture roots for tests;
// production code never imports it. The package does not log and reads
// neither the clock nor the network.
package rim
