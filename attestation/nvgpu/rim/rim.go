package rim

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/sealgate/sealgate/attestation/check"
)

// XML namespaces of a RIM.
const (
	// NamespaceSWID is the ISO/IEC 19770-2:2015 SWID tag namespace of the
	// SoftwareIdentity, Meta, Payload and Resource elements.
	NamespaceSWID = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
	// NamespaceSHA384 is the namespace of the HashN attributes that carry
	// the golden values: NVIDIA's measurements are SHA-384 digests.
	NamespaceSHA384 = "http://www.w3.org/2001/04/xmlenc#sha384"
	// namespaceDSig is the XML-DSig namespace.
	namespaceDSig = "http://www.w3.org/2000/09/xmldsig#"
)

// Limits of what Parse accepts. NVIDIA's RIMs are about 21 KB, with 64
// measurements of 48 bytes, at most 4 alternatives each, and a chain of 4
// certificates.
const (
	// MaxSize bounds the XML document.
	MaxSize = 1 << 20
	// MaxIndex is the largest measurement index (SPDM measurement indexes
	// are one byte).
	MaxIndex = 255
	// MaxAlternatives bounds the golden values of one measurement.
	MaxAlternatives = 64
	// MaxMeasurementSize bounds the size of one golden value, in bytes.
	MaxMeasurementSize = 64
	// MaxChain bounds the certificates carried in the signature.
	MaxChain = 8
	// MaxOCSPResponses bounds Options.OCSP: the responses for a GPU's
	// chain and its two RIMs' chains are about ten.
	MaxOCSPResponses = 32
	// MaxOCSPSize bounds one OCSP response; NVIDIA's are about 1 KB.
	MaxOCSPSize = 16 << 10
	// maxText bounds tagId, version and colloquialVersion.
	maxText = 256
	// maxDepth bounds the element nesting; a RIM nests 6 deep.
	maxDepth = 16
)

// Measurement is the golden value of one measurement index: a Resource
// element of the RIM's Payload.
type Measurement struct {
	// Index is the RIM's measurement index, from 0. NVIDIA's SPDM
	// measurement blocks count from 1: block Index+1 is compared with it.
	Index int
	// Size is the size of every alternative, in bytes.
	Size int
	// Alternatives are the accepted values (the Resource's Hash0 to HashN
	// attributes, in order); a measurement matches if it equals any.
	Alternatives [][]byte
	// Active reports whether the RIM asks for this index to be compared.
	// NVIDIA's driver and VBIOS RIMs both list every index and mark as
	// active the ones each covers; a verifier compares only active
	// indexes, and an index active in both RIMs is an error.
	Active bool
}

// RIM is a reference integrity manifest: what Parse read, or what Verify
// read from the signed content of a RIM whose signature and chain it
// checked.
type RIM struct {
	// ID is the SWID tagId.
	ID string
	// ColloquialVersion is the Meta element's colloquialVersion: the
	// driver version ("550.90.07") or the VBIOS version
	// ("96.00.9F.00.01"), as written.
	ColloquialVersion string
	// Version is the SoftwareIdentity's version attribute.
	Version string
	// Measurements are the golden measurements, sorted by index, with
	// unique indexes.
	Measurements []Measurement
	// SigningChain is the certificate chain carried in the signature's
	// X509Data, leaf (the signing certificate) first, as carried.
	SigningChain []*x509.Certificate
	// NextUpdate is, after Verify, the earliest time at which something
	// the verdict relied on expires: a certificate of the chain (up to the
	// root), an OCSP response's next update, or the certificate of an
	// OCSP responder. A verdict must not be reused after it. Parse leaves
	// it zero.
	NextUpdate time.Time
}

// Parse reads a RIM without checking its signature: a SWID
// SoftwareIdentity with a tagId and version, one Meta with a
// colloquialVersion, one Payload of measurement Resources, and one
// enveloped Signature whose KeyInfo carries the certificate chain. It is
// strict: every Resource has a canonical decimal index (unique, at most
// MaxIndex), an active flag, a number of alternatives and a size, and
// exactly the attributes Hash0 to HashN-1 in the SHA-384 namespace, each
// the hex of size bytes; the Signature holds only SignedInfo,
// SignatureValue and KeyInfo, KeyInfo only X509Data, X509Data only
// X509Certificates, each base64 of a DER certificate; no element in the
// XML-DSig namespace appears elsewhere; no DOCTYPE, no processing
// instruction but the XML declaration, no encoding but UTF-8, no
// duplicate attribute.
//
// Errors are *check.Error with CodeMalformed, naming the field. When
// several parts of the document (the root, Meta, Payload, Signature) are
// malformed, the error names the first, in that order, and wraps one error
// for each of the others.
//
// What Parse returns is unverified: use Verify for anything trusted.
func Parse(xml []byte) (*RIM, error) {
	d, err := parse(xml)
	if err != nil {
		return nil, err
	}
	return d.rim, nil
}

// document is a parsed RIM and the tree it was read from.
type document struct {
	root *etree.Element
	sig  *etree.Element // the Signature child of root
	rim  *RIM
}

func parse(b []byte) (*document, error) {
	if len(b) > MaxSize {
		return nil, check.Fail(check.CodeMalformed, "length", fmt.Sprintf("%d bytes", len(b)), fmt.Sprintf("at most %d", MaxSize))
	}
	root, err := readDocument(b)
	if err != nil {
		return nil, err
	}
	r := new(RIM)
	var problems []*check.Error
	note := func(e *check.Error) {
		if e != nil {
			problems = append(problems, e)
		}
	}
	note(parseRoot(root, r))
	note(parseMeta(root, r))
	note(parsePayload(root, r))
	sig, e := parseSignature(root, r)
	note(e)
	if len(problems) > 0 {
		return nil, joinProblems(problems)
	}
	return &document{root: root, sig: sig, rim: r}, nil
}

// readDocument parses b as XML and returns its root element, refusing
// what a RIM has no use for and parsers disagree on.
func readDocument(b []byte) (*etree.Element, error) {
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{
		CharsetReader:          refuseCharset,
		PreserveDuplicateAttrs: true,
		MaxDepth:               maxDepth,
	}
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, check.Wrap(check.CodeMalformed, "xml", err)
	}
	root, err := documentRoot(doc)
	if err != nil {
		return nil, err
	}
	if err := checkAttrs(root); err != nil {
		return nil, err
	}
	return root, nil
}

// parseSigned reads the RIM fields from the element XML-DSig validation
// returned: the signed content, without the Signature.
func parseSigned(root *etree.Element) (*RIM, error) {
	r := new(RIM)
	var problems []*check.Error
	for _, e := range []*check.Error{parseRoot(root, r), parseMeta(root, r), parsePayload(root, r)} {
		if e != nil {
			problems = append(problems, e)
		}
	}
	if len(problems) > 0 {
		return nil, joinProblems(problems)
	}
	return r, nil
}

// joinProblems returns the first problem, wrapping the others.
func joinProblems(ps []*check.Error) error {
	first := *ps[0]
	if len(ps) == 1 {
		return &first
	}
	var errs []error
	if first.Err != nil {
		errs = append(errs, first.Err)
	}
	for _, p := range ps[1:] {
		errs = append(errs, p)
	}
	first.Err = errors.Join(errs...)
	return &first
}

func refuseCharset(charset string, _ io.Reader) (io.Reader, error) {
	return nil, fmt.Errorf("encoding %q, want UTF-8", charset)
}

func malformed(field, found, want string) *check.Error {
	return check.Fail(check.CodeMalformed, field, found, want)
}

// documentRoot returns the document's only element, refusing a DOCTYPE,
// processing instructions other than the XML declaration, and text
// outside the root.
func documentRoot(doc *etree.Document) (*etree.Element, error) {
	var root *etree.Element
	for i, tok := range doc.Child {
		switch t := tok.(type) {
		case *etree.Element:
			if root != nil {
				return nil, malformed("xml", "more than one root element", "one")
			}
			root = t
		case *etree.Comment:
		case *etree.CharData:
			if strings.TrimSpace(t.Data) != "" {
				return nil, malformed("xml", "text outside the root element", "none")
			}
		case *etree.ProcInst:
			if t.Target != "xml" || i != 0 {
				return nil, malformed("xml", "processing instruction "+strconv.Quote(t.Target), "only the XML declaration")
			}
		case *etree.Directive:
			return nil, malformed("xml", "directive (DOCTYPE)", "none")
		default:
			return nil, malformed("xml", fmt.Sprintf("token %T", tok), "elements")
		}
	}
	if root == nil {
		return nil, malformed("xml", "no root element", "SoftwareIdentity")
	}
	return root, nil
}

// checkAttrs refuses an element with two attributes of the same name:
// parsers differ on which one wins.
func checkAttrs(el *etree.Element) error {
	seen := make(map[string]bool, len(el.Attr))
	for i := range el.Attr {
		a := &el.Attr[i]
		name := a.Space + ":" + a.Key
		if a.Space != "" && a.Space != "xmlns" {
			name = "{" + a.NamespaceURI() + "}" + a.Key
		}
		if seen[name] {
			return malformed("xml", fmt.Sprintf("attribute %s twice on %s", a.FullKey(), el.FullTag()), "unique attributes")
		}
		seen[name] = true
	}
	for _, c := range el.ChildElements() {
		if err := checkAttrs(c); err != nil {
			return err
		}
	}
	return nil
}

// is reports whether el is the element local in namespace ns or in no
// namespace (the parser fixtures of NVIDIA's verifiers use none; Verify
// requires the XML-DSig namespace where it matters).
func is(el *etree.Element, ns, local string) bool {
	if el.Tag != local {
		return false
	}
	u := el.NamespaceURI()
	return u == ns || u == ""
}

func childrenNamed(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if is(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

// attr returns the value of the attribute key in no namespace.
func attr(el *etree.Element, key string) (string, bool) {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// text checks a short printable ASCII attribute value.
func text(el *etree.Element, key, field string) (string, *check.Error) {
	v, ok := attr(el, key)
	if !ok || v == "" {
		return "", malformed(field, "none", "a value")
	}
	if len(v) > maxText {
		return "", malformed(field, fmt.Sprintf("%d characters", len(v)), fmt.Sprintf("at most %d", maxText))
	}
	for _, c := range []byte(v) {
		if c < 0x21 || c > 0x7e {
			return "", malformed(field, strconv.Quote(v), "printable ASCII without spaces")
		}
	}
	return v, nil
}

func parseRoot(root *etree.Element, r *RIM) *check.Error {
	if !is(root, NamespaceSWID, "SoftwareIdentity") {
		return malformed("root", root.FullTag()+" in namespace "+strconv.Quote(root.NamespaceURI()), "SoftwareIdentity in the SWID namespace")
	}
	var e *check.Error
	if r.ID, e = text(root, "tagId", "tagId"); e != nil {
		return e
	}
	r.Version, e = text(root, "version", "version")
	return e
}

func parseMeta(root *etree.Element, r *RIM) *check.Error {
	metas := childrenNamed(root, NamespaceSWID, "Meta")
	switch len(metas) {
	case 0:
		return malformed("meta", "none", "one Meta element")
	case 1:
	default:
		return malformed("meta", fmt.Sprintf("%d Meta elements", len(metas)), "one")
	}
	var e *check.Error
	r.ColloquialVersion, e = text(metas[0], "colloquialVersion", "meta colloquialVersion")
	return e
}

// canonicalInt matches the decimal integers Parse accepts: no sign, no
// leading zero, at most 9 digits.
var canonicalInt = regexp.MustCompile(`^(0|[1-9][0-9]{0,8})$`)

func intAttr(el *etree.Element, field, key string, lo, hi int) (int, *check.Error) {
	field += " " + key
	v, ok := attr(el, key)
	if !ok {
		return 0, malformed(field, "none", fmt.Sprintf("an integer from %d to %d", lo, hi))
	}
	if !canonicalInt.MatchString(v) {
		return 0, malformed(field, strconv.Quote(v), fmt.Sprintf("a decimal integer from %d to %d", lo, hi))
	}
	n, _ := strconv.Atoi(v)
	if n < lo || n > hi {
		return 0, malformed(field, v, fmt.Sprintf("from %d to %d", lo, hi))
	}
	return n, nil
}

func boolAttr(el *etree.Element, field, key string) (bool, *check.Error) {
	field += " " + key
	v, ok := attr(el, key)
	switch {
	case !ok:
		return false, malformed(field, "none", "True or False")
	case v == "True" || v == "true" || v == "1":
		return true, nil
	case v == "False" || v == "false" || v == "0":
		return false, nil
	}
	return false, malformed(field, strconv.Quote(v), "True or False")
}

// hashKey matches the names of the golden-value attributes.
var hashKey = regexp.MustCompile(`^Hash(0|[1-9][0-9]{0,2})$`)

func parsePayload(root *etree.Element, r *RIM) *check.Error {
	payloads := childrenNamed(root, NamespaceSWID, "Payload")
	switch len(payloads) {
	case 0:
		return malformed("payload", "none", "one Payload element")
	case 1:
	default:
		return malformed("payload", fmt.Sprintf("%d Payload elements", len(payloads)), "one")
	}
	resources := payloads[0].ChildElements()
	if len(resources) == 0 {
		return malformed("payload resources", "none", "at least one measurement Resource")
	}
	if len(resources) > MaxIndex+1 {
		return malformed("payload resources", strconv.Itoa(len(resources)), fmt.Sprintf("at most %d", MaxIndex+1))
	}
	// First the structure of every Resource, then the values: a
	// structural error names its case even when a value is also bad.
	type resource struct {
		m      Measurement
		hashes []string
	}
	rs := make([]resource, len(resources))
	at := make(map[int]int, len(resources)) // index -> position
	for i, el := range resources {
		f := fmt.Sprintf("payload resource[%d]", i)
		if !is(el, NamespaceSWID, "Resource") {
			return malformed(f, "element "+el.FullTag(), "Resource")
		}
		if v, _ := attr(el, "type"); v != "Measurement" {
			return malformed(f+" type", strconv.Quote(v), `"Measurement"`)
		}
		var e *check.Error
		m := &rs[i].m
		if m.Index, e = intAttr(el, f, "index", 0, MaxIndex); e != nil {
			return e
		}
		if j, dup := at[m.Index]; dup {
			return malformed(f+" index", fmt.Sprintf("%d, also the index of resource[%d]", m.Index, j), "unique indexes")
		}
		at[m.Index] = i
		if m.Active, e = boolAttr(el, f, "active"); e != nil {
			return e
		}
		n, e := intAttr(el, f, "alternatives", 1, MaxAlternatives)
		if e != nil {
			return e
		}
		if m.Size, e = intAttr(el, f, "size", 1, MaxMeasurementSize); e != nil {
			return e
		}
		hashes := make([]string, n)
		found := make([]bool, n)
		for _, a := range el.Attr {
			if !hashKey.MatchString(a.Key) {
				continue
			}
			if ns := a.NamespaceURI(); a.Space == "" || ns != NamespaceSHA384 {
				return malformed(f+" "+a.Key, fmt.Sprintf("%s in namespace %q", a.FullKey(), ns), "the attribute in namespace "+NamespaceSHA384)
			}
			k, _ := strconv.Atoi(strings.TrimPrefix(a.Key, "Hash"))
			if k >= n {
				return malformed(f+" alternatives", fmt.Sprintf("%d, with attribute %s", n, a.Key), "one HashN attribute per alternative")
			}
			hashes[k], found[k] = a.Value, true
		}
		for k, ok := range found {
			if !ok {
				return malformed(fmt.Sprintf("%s Hash%d", f, k), "none", "a hex value in namespace "+NamespaceSHA384)
			}
		}
		rs[i].hashes = hashes
	}
	ms := make([]Measurement, len(rs))
	for i, res := range rs {
		m := res.m
		m.Alternatives = make([][]byte, len(res.hashes))
		for k, h := range res.hashes {
			v, err := hex.DecodeString(h)
			if err != nil || len(v) != m.Size {
				return malformed(fmt.Sprintf("payload resource[%d] Hash%d", i, k), hashFound(h, v, err), fmt.Sprintf("%d bytes in hex (size)", m.Size))
			}
			m.Alternatives[k] = v
		}
		ms[i] = m
	}
	slices.SortFunc(ms, func(a, b Measurement) int { return a.Index - b.Index })
	r.Measurements = ms
	return nil
}

func hashFound(h string, v []byte, err error) string {
	if err != nil {
		if len(h) > 16 {
			h = h[:16] + "..."
		}
		return strconv.Quote(h) + ", not hex"
	}
	return fmt.Sprintf("%d bytes", len(v))
}

// parseSignature reads the certificate chain of the one Signature, a
// child of the root, and refuses XML-DSig elements anywhere else.
func parseSignature(root *etree.Element, r *RIM) (*etree.Element, *check.Error) {
	sigs := childrenNamed(root, namespaceDSig, "Signature")
	switch len(sigs) {
	case 0:
		return nil, malformed("signature", "none", "one enveloped Signature, a child of the root")
	case 1:
	default:
		return nil, malformed("signature", fmt.Sprintf("%d Signature elements", len(sigs)), "one")
	}
	sig := sigs[0]
	if e := strayDSig(root, sig); e != nil {
		return nil, e
	}
	seen := make(map[string]bool)
	var keyInfo *etree.Element
	for _, c := range sig.ChildElements() {
		switch {
		case !is(c, namespaceDSig, c.Tag) || seen[c.Tag]:
			return nil, malformed("signature", "element "+c.FullTag(), "one each of SignedInfo, SignatureValue and KeyInfo")
		case c.Tag == "KeyInfo":
			keyInfo = c
		case c.Tag == "SignedInfo", c.Tag == "SignatureValue":
		default:
			return nil, malformed("signature", "element "+c.FullTag(), "only SignedInfo, SignatureValue and KeyInfo")
		}
		seen[c.Tag] = true
	}
	if keyInfo == nil {
		return nil, malformed("signature keyinfo", "none", "a KeyInfo with the certificate chain")
	}
	kids := keyInfo.ChildElements()
	if len(kids) == 0 {
		return nil, malformed("signature x509data", "none", "one X509Data in KeyInfo")
	}
	if len(kids) > 1 || !is(kids[0], namespaceDSig, "X509Data") {
		return nil, malformed("signature keyinfo", fmt.Sprintf("%d elements, the first %s", len(kids), kids[0].FullTag()), "one X509Data")
	}
	certs := kids[0].ChildElements()
	if len(certs) == 0 {
		return nil, malformed("signature x509 certificate", "none", "the signing certificate and its chain")
	}
	if len(certs) > MaxChain {
		return nil, malformed("signature x509 certificate", fmt.Sprintf("%d certificates", len(certs)), fmt.Sprintf("at most %d", MaxChain))
	}
	for i, c := range certs {
		f := fmt.Sprintf("signature x509 certificate[%d]", i)
		if !is(c, namespaceDSig, "X509Certificate") {
			return nil, malformed(f, "element "+c.FullTag(), "X509Certificate")
		}
		der, err := base64.StdEncoding.Strict().DecodeString(strings.Join(strings.Fields(c.Text()), ""))
		if err != nil {
			return nil, &check.Error{Code: check.CodeMalformed, Field: f, Found: "invalid base64", Want: "base64 of a DER certificate", Err: err}
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, &check.Error{Code: check.CodeMalformed, Field: f, Found: "not a DER certificate", Want: "base64 of a DER certificate", Err: err}
		}
		r.SigningChain = append(r.SigningChain, cert)
	}
	return sig, nil
}

// strayDSig refuses an XML-DSig element (or any Signature) outside sig:
// nothing may be read from, or signed by, another signature.
func strayDSig(el, sig *etree.Element) *check.Error {
	for _, c := range el.ChildElements() {
		if c == sig {
			continue
		}
		if c.NamespaceURI() == namespaceDSig || c.Tag == "Signature" {
			return malformed("signature", "element "+c.FullTag()+" inside "+el.FullTag(), "one Signature, a child of the root")
		}
		if e := strayDSig(c, sig); e != nil {
			return e
		}
	}
	return nil
}
