package tdxtest

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	gotesting "github.com/google/go-tdx-guest/testing"
	"github.com/google/go-tdx-guest/testing/testdata"
	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/anchortest"
	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/tdx"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// The test vectors in testvectors/attestation/tdx are made from these.
const (
	// VectorSeed derives the fixture PKI, the TD and the bundles' keys.
	VectorSeed = "sealgate/testvectors/attestation/tdx"
	// otherRootSeed derives the PKI of the wrong-root vector.
	otherRootSeed = VectorSeed + " other root"
	// Roots values in the manifest.
	RootsFixture = "fixture" // the fixture root, FixtureRootFile
	RootsIntel   = "intel"   // the pinned Intel SGX Root CA (tdx.Options.Roots nil)
	// FixtureRootFile is the fixture root CA, PEM, next to the vectors.
	FixtureRootFile = "fixture-root-ca.pem"

	// tdxGuestModule is where the recorded vectors come from.
	tdxGuestModule = "github.com/google/go-tdx-guest@v0.3.2-0.20260305110651-91f9a52f36c7"
)

// Times of the synthetic vectors: the fixture PKI is valid from
// VectorPKIFrom, the collateral from VectorIssued for 30 days, and the
// vectors are verified at VectorVerifyAt.
var (
	VectorPKIFrom  = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	VectorIssued   = time.Date(2026, 5, 25, 0, 0, 0, 0, time.UTC)
	VectorVerifyAt = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	// RecordedVerifyAt is when go-tdx-guest's own tests verify the
	// recorded quote with its collateral (verify/verify_test.go,
	// currentTime): inside every validity window of that collateral.
	RecordedVerifyAt = time.Date(2023, 7, 1, 1, 0, 0, 0, time.UTC)
)

// Vector is one test vector: an evidence bundle, how to check it and the
// expected verdict of Verify, then the REPORT_DATA binding, then Validate.
type Vector struct {
	Name        string
	Description string
	VerifyAt    time.Time
	Policy      *policy.Policy
	Roots       string
	Want        Want
	// Bundle is the encoded proto.Bundle.
	Bundle []byte
	// Provenance says where the bundle's contents come from.
	Provenance string
}

// Want is an expected verdict: Code "ok" or a check.Code, and a substring
// of the failing check's field.
type Want struct {
	Code  string `json:"code"`
	Field string `json:"field"`
}

// ManifestEntry is one manifest.json entry.
type ManifestEntry struct {
	Name        string          `json:"name"`
	Kind        string          `json:"kind"`
	File        string          `json:"file"`
	VerifyAt    string          `json:"verify_at"`
	Policy      json.RawMessage `json:"policy"`
	Roots       string          `json:"roots"`
	Want        Want            `json:"want"`
	Description string          `json:"description"`
}

// VectorKeys returns the worker keys every vector bundle carries.
func VectorKeys() (proto.WorkerKeys, error) {
	mlkem, err := seal.DeriveKey(proto.KEMMLKEM768X25519, ikm("hpke mlkem768x25519"))
	if err != nil {
		return proto.WorkerKeys{}, err
	}
	x, err := seal.DeriveKey(proto.KEMX25519, ikm("hpke x25519"))
	if err != nil {
		return proto.WorkerKeys{}, err
	}
	signing := ed25519.NewKeyFromSeed(ikm("receipt signing"))
	return proto.WorkerKeys{
		HPKE:    []proto.HPKEKey{mlkem.Public(), x.Public()},
		Signing: signing.Public().(ed25519.PublicKey),
	}, nil
}

func ikm(label string) []byte {
	h := sha256.Sum256([]byte(VectorSeed + " " + label))
	return h[:]
}

// anchoredBundle returns a vector bundle anchored one minute before
// verifyAt by the fixture anchor key, so its nonce is the anchored nonce.
func anchoredBundle(keys proto.WorkerKeys, verifyAt time.Time) *proto.Bundle {
	anchor, nonce := anchortest.Anchor(verifyAt.Add(-time.Minute))
	return &proto.Bundle{Kind: policy.KindTDX, Nonce: nonce, Anchor: anchor, Keys: keys}
}

// vectorPolicy is the policy a synthetic vector is checked under unless
// it says otherwise: the fixture TD's MRTD and RTMR0-2, UpToDate only,
// CRLs required.
func vectorPolicy(name string, td TD) *policy.Policy {
	return &policy.Policy{
		Version: policy.Version, Name: "tdx-vector-" + name, TEEKinds: []string{policy.KindTDX},
		MaxEvidenceAge: policy.Duration{Duration: 15 * time.Minute},
		TDX: &policy.TDXRules{Measurements: []policy.TDXMeasurement{{
			MRTD:  hex.EncodeToString(td.MRTD[:]),
			RTMR0: hex.EncodeToString(td.RTMR[0][:]), RTMR1: hex.EncodeToString(td.RTMR[1][:]), RTMR2: hex.EncodeToString(td.RTMR[2][:]),
		}}},
	}
}

// synthetic describes one synthetic vector as a change to the defaults.
type synthetic struct {
	name, desc string
	want       Want
	tamper     Tamper
	otherRoot  bool
	td         func(*TD)
	collateral func(*CollateralSpec)
	policy     func(*policy.TDXRules)
	otherNonce bool // REPORT_DATA binds another nonce
	quote      func([]byte) []byte
	encoded    func([]byte) []byte  // edits the encoded collateral
	bundle     func(*proto.Bundle)  // edits the bundle before REPORT_DATA is computed
	unbound    func(*proto.Bundle)  // edits the bundle after REPORT_DATA is computed
	rules      func(*policy.Policy) // edits the whole policy
	verifyAt   time.Time            // zero means VectorVerifyAt
}

// vectorModel is the model the model-list vectors bind: a served name and
// the digest of a made-up weight file.
var vectorModel = proto.ModelDigest{Name: "llama3.1:8b", SHA256: sha256.Sum256([]byte(VectorSeed + " model weights"))}

func ok() Want { return Want{Code: "ok"} }

func fail(c check.Code, field string) Want { return Want{Code: string(c), Field: field} }

func syntheticVectors() []synthetic {
	return []synthetic{
		{name: "valid", want: ok(),
			desc: "TDX 1.5 TD (TEE_TCB_SVN[1]=1), platform, TDX module and QE UpToDate, CRLs carried, REPORT_DATA binds the bundle"},
		{name: "valid-tdx10", want: ok(),
			desc: "TDX 1.0 TD (TEE_TCB_SVN[1]=0): the platform TCB level alone decides, no TDX module identities",
			td:   func(td *TD) { td.TEETCBSVN = [16]byte{5, 0, 2} },
			collateral: func(c *CollateralSpec) {
				c.Platform[0].TDX = [16]byte{5, 0, 2}
				c.Module = nil
			}},
		{name: "valid-no-crl-allowed", want: ok(),
			desc:       "collateral without CRLs under a policy with require_crl false",
			collateral: func(c *CollateralSpec) { c.NoCRLs = true },
			policy:     func(r *policy.TDXRules) { f := false; r.RequireCRL = &f }},
		{name: "crl-missing", want: fail(check.CodeRevoked, "crl"),
			desc:       "collateral without CRLs under the default require_crl",
			collateral: func(c *CollateralSpec) { c.NoCRLs = true }},
		{name: "bad-quote-signature", want: fail(check.CodeSignature, "quote signature"), tamper: BadQuoteSignature,
			desc: "the attestation key's signature does not cover the quote header and TD quote body"},
		{name: "bad-qe-report-signature", want: fail(check.CodeSignature, "qe report signature"), tamper: BadQEReportSignature,
			desc: "the PCK key's signature does not cover the QE report"},
		{name: "attestation-key-not-bound", want: fail(check.CodeSignature, "attestation key binding"), tamper: UnboundAttestationKey,
			desc: "the QE report's REPORT_DATA commits to another attestation key than the one that signs the quote"},
		{name: "wrong-root", want: fail(check.CodeChain, "pck certificate chain"), otherRoot: true,
			desc: "quote and collateral under another root with Intel's names, not the pinned (fixture) root"},
		{name: "expired-tcb-info", want: fail(check.CodeCollateralExpired, "tcb_info"),
			desc: "the TCB info's nextUpdate is before the verification time",
			collateral: func(c *CollateralSpec) {
				c.IssueDate, c.NextUpdate = VectorIssued.AddDate(0, -2, 0), VectorIssued.AddDate(0, -1, 0)
			}},
		{name: "expired-pck-crl", want: fail(check.CodeCollateralExpired, "pck_crl"),
			desc: "the CRLs' nextUpdate is before the verification time",
			collateral: func(c *CollateralSpec) {
				c.CRLThisUpdate, c.CRLNextUpdate = VectorIssued.AddDate(0, -2, 0), VectorIssued.AddDate(0, -1, 0)
			}},
		{name: "revoked-pck", want: fail(check.CodeRevoked, "pck certificate"),
			desc:       "the PCK certificate is on the carried PCK CRL",
			collateral: func(c *CollateralSpec) { c.RevokePCK = true }},
		{name: "bad-tcb-info-signature", want: fail(check.CodeSignature, "tcb_info signature"),
			desc:       "the TCB info's signature does not cover its body",
			collateral: func(c *CollateralSpec) { c.BadTCBInfoSignature = true }},
		{name: "bad-qe-identity-signature", want: fail(check.CodeSignature, "qe_identity signature"),
			desc:       "the QE identity's signature does not cover its body",
			collateral: func(c *CollateralSpec) { c.BadQEIdentitySignature = true }},
		{name: "tcb-info-other-platform", want: fail(check.CodeSignature, "quote"),
			desc:       "a validly signed TCB info for another FMSPC than the PCK certificate's",
			collateral: func(c *CollateralSpec) { c.FMSPC = "00806f050000" }},
		{name: "debug-enabled", want: fail(check.CodePolicy, "debug"),
			desc: "the TD has the DEBUG attribute",
			td:   func(td *TD) { td.TDAttributes[0] |= 1 }},
		{name: "mrtd-not-allowed", want: fail(check.CodePolicy, "mrtd"),
			desc: "the TD's MRTD is not in the policy",
			td:   func(td *TD) { td.MRTD = Measurement("another firmware") }},
		{name: "rtmr-not-allowed", want: fail(check.CodePolicy, "rtmr2"),
			desc: "the TD's MRTD is allowed but its RTMR2 (kernel command line) is not the one the policy pairs with it",
			td:   func(td *TD) { td.RTMR[2] = Measurement("another cmdline") }},
		{name: "policy-names-no-measurement", want: fail(check.CodePolicy, "measurements"),
			desc:   "a policy with no tdx measurements and any_measurement false refuses every TD",
			policy: func(r *policy.TDXRules) { r.Measurements = nil }},
		{name: "tee-tcb-svn-below-minimum", want: fail(check.CodePolicy, "tee_tcb_svn"),
			desc:   "TEE_TCB_SVN 05010200… is below the policy's min_tee_tcb_svn 06010200…",
			policy: func(r *policy.TDXRules) { r.MinTEETCBSVN = "06010200000000000000000000000000" }},
		{name: "platform-out-of-date", want: fail(check.CodePolicy, "tcb_status"),
			desc: "TEE_TCB_SVN[2] is below the UpToDate level: the platform is OutOfDate while the TDX module is UpToDate (go-tdx-guest alone reports UpToDate)",
			td:   func(td *TD) { td.TEETCBSVN[2] = 1 }},
		{name: "platform-out-of-date-accepted", want: ok(),
			desc:   "the platform-out-of-date TD under a policy that accepts OutOfDate",
			td:     func(td *TD) { td.TEETCBSVN[2] = 1 },
			policy: func(r *policy.TDXRules) { r.AcceptedTCBStatuses = []string{"UpToDate", "OutOfDate"} }},
		{name: "tdx-module-out-of-date", want: fail(check.CodePolicy, "tdx_module_tcb_status"),
			desc: "TEE_TCB_SVN[0] (the TDX module's SVN) is below the module's UpToDate level",
			td:   func(td *TD) { td.TEETCBSVN[0] = 3 }},
		{name: "qe-out-of-date", want: fail(check.CodePolicy, "qe_tcb_status"),
			desc:       "the QE's ISVSVN is below the QE identity's UpToDate level",
			collateral: func(c *CollateralSpec) { c.QE[0].ISVSVN = 5 }},
		{name: "tcb-not-supported", want: fail(check.CodePolicy, "tcb_status"),
			desc: "no TCB level of the TCB info matches the platform (PCE SVN below every level)",
			collateral: func(c *CollateralSpec) {
				for i := range c.Platform {
					c.Platform[i].PCESVN = PCESVN + 1
				}
			}},
		{name: "tcb-evaluation-number-below-minimum", want: fail(check.CodePolicy, "tcb_evaluation_number"),
			desc:   "collateral of TCB evaluation 17 under a policy that wants at least 18",
			policy: func(r *policy.TDXRules) { r.MinTCBEvaluationNumber = 18 }},
		{name: "evidence-too-old", want: fail(check.CodeStale, "evidence age"),
			desc:     "valid evidence whose time anchor is 21 minutes old at verification, past the policy's 15-minute window",
			verifyAt: VectorVerifyAt.Add(20 * time.Minute)},
		{name: "no-time-anchor", want: fail(check.CodeStale, "anchor"),
			desc:   "valid evidence with no time anchor: a TDX quote carries no time, so its age cannot be judged",
			bundle: func(b *proto.Bundle) { b.Anchor, b.Nonce = nil, [proto.NonceSize]byte(ikm("unanchored nonce")) }},
		{name: "anchor-unpinned-key", want: fail(check.CodeStale, "anchor key id"),
			desc: "valid evidence anchored by a key the verifier does not pin",
			bundle: func(b *proto.Bundle) {
				a, err := attestation.SignAnchor(ed25519.NewKeyFromSeed(ikm("unpinned anchor key")), [proto.NonceSize]byte(ikm("challenge")), VectorVerifyAt.Add(-time.Minute))
				if err != nil {
					panic(err)
				}
				b.Anchor, b.Nonce = a, proto.AnchoredNonce(a)
			}},
		{name: "valid-model-pinned", want: ok(),
			desc:   "the keys block carries a model list (proto/SPEC.md §10.3) that REPORT_DATA binds, under a policy whose models rules pin its digest",
			bundle: func(b *proto.Bundle) { b.Keys.Models = []proto.ModelDigest{vectorModel} },
			rules: func(p *policy.Policy) {
				p.Models = &policy.ModelRules{AllowedDigests: []string{proto.FormatModelDigest(vectorModel.SHA256)}}
			}},
		{name: "model-digest-not-bound", want: fail(check.CodeBinding, "report_data"),
			desc:   "the bundle lists another model digest than the one REPORT_DATA binds",
			bundle: func(b *proto.Bundle) { b.Keys.Models = []proto.ModelDigest{vectorModel} },
			unbound: func(b *proto.Bundle) {
				m := vectorModel
				m.SHA256[0] ^= 1
				b.Keys.Models = []proto.ModelDigest{m}
			}},
		{name: "unknown-tee-kind", want: fail(check.CodeUnknownKind, "kind"),
			desc:   "a valid TDX bundle relabelled with a TEE kind no verifier knows",
			bundle: func(b *proto.Bundle) { b.Kind = "tdx9" }},
		{name: "report-data-mismatch", want: fail(check.CodeBinding, "report_data"), otherNonce: true,
			desc: "a valid quote whose REPORT_DATA binds the bundle's keys with another nonce"},
		{name: "truncated-quote", want: fail(check.CodeMalformed, "quote"),
			desc:  "the valid quote cut in the middle of its PCK certificate chain",
			quote: func(q []byte) []byte { return q[:len(q)-700] }},
		{name: "malformed-collateral", want: fail(check.CodeMalformed, "collateral"),
			desc:    "the valid collateral encoding cut short",
			encoded: func(c []byte) []byte { return c[:len(c)-10] }},
		{name: "collateral-tcb-info-not-json", want: fail(check.CodeMalformed, "tcb_info"),
			desc: "a well-framed collateral encoding whose TCB info is not JSON",
			encoded: func(c []byte) []byte {
				p, err := tdx.ParseCollateral(c)
				if err != nil {
					panic(err)
				}
				p.TCBInfo = []byte("<tcbInfo/>")
				out, err := p.Marshal()
				if err != nil {
					panic(err)
				}
				return out
			}},
	}
}

// Vectors builds every test vector.
func Vectors() ([]Vector, error) {
	keys, err := VectorKeys()
	if err != nil {
		return nil, err
	}
	pki, err := NewPKI(VectorSeed, VectorPKIFrom)
	if err != nil {
		return nil, err
	}
	other, err := NewPKI(otherRootSeed, VectorPKIFrom)
	if err != nil {
		return nil, err
	}
	var out []Vector
	for _, s := range syntheticVectors() {
		v, err := s.build(pki, other, keys)
		if err != nil {
			return nil, fmt.Errorf("vector %s: %v", s.name, err)
		}
		out = append(out, v)
	}
	rec, err := recordedVectors(keys)
	if err != nil {
		return nil, err
	}
	return append(out, rec...), nil
}

func (s *synthetic) build(pki, other *PKI, keys proto.WorkerKeys) (Vector, error) {
	td := DefaultTD()
	if s.td != nil {
		s.td(&td)
	}
	spec := DefaultCollateral(VectorIssued)
	if s.collateral != nil {
		s.collateral(&spec)
	}
	p := vectorPolicy(s.name, DefaultTD())
	if s.policy != nil {
		s.policy(p.TDX)
	}
	if s.rules != nil {
		s.rules(p)
	}
	signer := pki
	if s.otherRoot {
		signer = other
	}
	b := anchoredBundle(keys, VectorVerifyAt)
	if s.bundle != nil {
		s.bundle(b)
	}
	td.ReportData = b.ReportData()
	if s.otherNonce {
		td.ReportData = proto.BindingHash(b.KeysHash(), b.GPUHash(), [proto.NonceSize]byte(ikm("another nonce")))
	}
	quote, err := signer.Quote(td, s.tamper)
	if err != nil {
		return Vector{}, err
	}
	if s.quote != nil {
		quote = s.quote(quote)
	}
	c, err := signer.Collateral(spec)
	if err != nil {
		return Vector{}, err
	}
	coll, err := c.Marshal()
	if err != nil {
		return Vector{}, err
	}
	if s.encoded != nil {
		coll = s.encoded(coll)
	}
	b.Report, b.Collateral = quote, coll
	if s.unbound != nil {
		s.unbound(b)
	}
	enc, err := b.Marshal()
	if err != nil {
		return Vector{}, err
	}
	return Vector{
		Name: s.name, Description: s.desc, VerifyAt: cmp.Or(s.verifyAt, VectorVerifyAt), Policy: p, Roots: RootsFixture, Want: s.want,
		Bundle:     enc,
		Provenance: fmt.Sprintf("synthetic, generated by us: tdxtest fixture PKI seed %q, vector %q", VectorSeed, s.name),
	}, nil
}

// RecordedQuote returns the real TDX V4 quote (an Intel Sapphire Rapids
// E4 production platform) that go-tdx-guest ships as
// testing/testdata/tdx_prod_quote_SPR_E4.dat, without the 39 bytes its
// authors appended after the signed data to test their parser ("\nextra
// bytes(only for testing purpose)\n"); the signed data is unchanged.
func RecordedQuote() ([]byte, error) {
	q, err := abi.QuoteToProto(testdata.RawQuote)
	if err != nil {
		return nil, err
	}
	extra := q.(*pb.QuoteV4).GetExtraBytes()
	return bytes.Clone(testdata.RawQuote[:len(testdata.RawQuote)-len(extra)]), nil
}

// RecordedCollateral returns Intel's real collateral for the recorded
// quote from go-tdx-guest's test data: the TCB info, QE identity, PCK CRL
// and root CA CRL responses (testing/testdata) and their issuer chains
// (the response headers in testing/test_cases.go).
func RecordedCollateral() (*tdx.Collateral, error) {
	chain := func(h map[string][]string, name string) (tdx.IssuerChain, error) {
		v, ok := h[name]
		if !ok || len(v) != 1 {
			return tdx.IssuerChain{}, fmt.Errorf("issuer chain header %s missing", name)
		}
		p, err := url.QueryUnescape(v[0])
		if err != nil {
			return tdx.IssuerChain{}, err
		}
		signing, rest := pem.Decode([]byte(p))
		root, rest := pem.Decode(rest)
		if signing == nil || root == nil || len(strings.TrimSpace(string(rest))) != 0 {
			return tdx.IssuerChain{}, fmt.Errorf("issuer chain header %s is not two PEM certificates", name)
		}
		return tdx.IssuerChain{Signing: signing.Bytes, Root: root.Bytes}, nil
	}
	c := &tdx.Collateral{TCBInfo: testdata.TcbInfoBody, QEIdentity: testdata.QeIdentityBody, PCKCRL: testdata.PckCrlBody, RootCACRL: testdata.RootCrlBody}
	var err error
	if c.TCBInfoChain, err = chain(gotesting.TcbInfoHeader, pcs.TcbInfoIssuerChainPhrase); err != nil {
		return nil, err
	}
	if c.QEIdentityChain, err = chain(gotesting.QeIdentityHeader, pcs.SgxQeIdentityIssuerChainPhrase); err != nil {
		return nil, err
	}
	if c.PCKCRLChain, err = chain(gotesting.PckCrlHeader, pcs.SgxPckCrlIssuerChainPhrase); err != nil {
		return nil, err
	}
	return c, nil
}

func recordedVectors(keys proto.WorkerKeys) ([]Vector, error) {
	quote, err := RecordedQuote()
	if err != nil {
		return nil, err
	}
	c, err := RecordedCollateral()
	if err != nil {
		return nil, err
	}
	coll, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	parsed, err := abi.QuoteToProto(quote)
	if err != nil {
		return nil, err
	}
	mrtd := hex.EncodeToString(parsed.(*pb.QuoteV4).GetTdQuoteBody().GetMrTd())
	pol := func(name string) *policy.Policy {
		return &policy.Policy{
			Version: policy.Version, Name: "tdx-vector-" + name, TEEKinds: []string{policy.KindTDX},
			MaxEvidenceAge: policy.Duration{Duration: 15 * time.Minute},
			TDX:            &policy.TDXRules{Measurements: []policy.TDXMeasurement{{MRTD: mrtd}}},
		}
	}
	src := fmt.Sprintf("recorded: %s testing/testdata/tdx_prod_quote_SPR_E4.dat%%s with its collateral testing/testdata/{sample_tcbInfo_response,sample_qeIdentity_response,pckcrl,rootcrl.der} and issuer chains from testing/test_cases.go (Apache-2.0)", tdxGuestModule)
	bundle := func(report []byte) ([]byte, error) {
		b := anchoredBundle(keys, RecordedVerifyAt)
		b.Report, b.Collateral = report, coll
		return b.Marshal()
	}
	stripped, err := bundle(quote)
	if err != nil {
		return nil, err
	}
	shipped, err := bundle(bytes.Clone(testdata.RawQuote))
	if err != nil {
		return nil, err
	}
	withoutTrailer := fmt.Sprintf(src, " without the 39 bytes appended after its signed data")
	return []Vector{
		{Name: "recorded-intel-spr-e4", Roots: RootsIntel, VerifyAt: RecordedVerifyAt, Policy: pol("recorded-intel-spr-e4"),
			Want:        fail(check.CodeBinding, "report_data"),
			Description: "real TDX V4 quote from an Intel SPR E4 platform with Intel's real collateral: signatures, chain to the Intel root, CRLs and collateral verify; its fixed REPORT_DATA cannot bind our keys (its TCB status is NotSupported: the TCB info's levels are newer than the platform)",
			Bundle:      stripped, Provenance: withoutTrailer},
		{Name: "recorded-intel-spr-e4-as-shipped", Roots: RootsIntel, VerifyAt: RecordedVerifyAt, Policy: pol("recorded-intel-spr-e4-as-shipped"),
			Want:        fail(check.CodeMalformed, "quote"),
			Description: "the recorded quote byte for byte as the module ships it, with 39 unsigned bytes after its signed data, which sealgate refuses",
			Bundle:      shipped, Provenance: fmt.Sprintf(src, ", byte for byte,")},
		{Name: "recorded-intel-spr-e4-after-next-update", Roots: RootsIntel, VerifyAt: time.Date(2023, 7, 20, 0, 0, 0, 0, time.UTC), Policy: pol("recorded-intel-spr-e4-after-next-update"),
			Want:        fail(check.CodeCollateralExpired, "tcb_info"),
			Description: "the recorded quote verified after its TCB info's nextUpdate (2023-07-18T08:42:58Z)",
			Bundle:      stripped, Provenance: withoutTrailer},
		{Name: "recorded-intel-spr-e4-fixture-root", Roots: RootsFixture, VerifyAt: RecordedVerifyAt, Policy: pol("recorded-intel-spr-e4-fixture-root"),
			Want:        fail(check.CodeChain, "pck certificate chain"),
			Description: "the recorded quote checked against the fixture root instead of Intel's: its PCK chain leads to a root that is not pinned",
			Bundle:      stripped, Provenance: withoutTrailer},
	}, nil
}

// Manifest returns manifest.json for vs.
func Manifest(vs []Vector) ([]byte, error) {
	var entries []ManifestEntry
	for _, v := range vs {
		p, err := json.Marshal(v.Policy)
		if err != nil {
			return nil, err
		}
		entries = append(entries, ManifestEntry{
			Name: v.Name, Kind: policy.KindTDX, File: v.Name + ".bundle", VerifyAt: v.VerifyAt.UTC().Format(time.RFC3339),
			Policy: p, Roots: v.Roots, Want: v.Want, Description: v.Description,
		})
	}
	out, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// FixtureRootPEM returns the fixture root CA the "fixture" vectors chain
// to.
func FixtureRootPEM() ([]byte, error) {
	pki, err := NewPKI(VectorSeed, VectorPKIFrom)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.Root.Raw}), nil
}

// Provenance returns PROVENANCE.md for vs: one line per file.
func Provenance(vs []Vector) []byte {
	var b bytes.Buffer
	b.WriteString("# Provenance of testvectors/attestation/tdx\n\n")
	b.WriteString("Every file here is written by `scripts/gen-tdx-vectors` (which runs `scripts/gentdx`, built on `attestation/tdx/tdxtest`); `go test ./attestation/tdx` regenerates them in memory and fails if a byte differs. Synthetic evidence is signed by fixture keys derived from the seed named on its line, with Intel's certificate names but not Intel's keys: it verifies only under the fixture root. Recorded evidence is Intel's, from " + "`" + tdxGuestModule + "`" + ", Apache-2.0.\n\n")
	b.WriteString("| file | what it is | where it came from | regenerate with |\n| --- | --- | --- | --- |\n")
	line := func(file, what, from string) {
		fmt.Fprintf(&b, "| `%s` | %s | %s | `scripts/gen-tdx-vectors` |\n", file, what, from)
	}
	line("manifest.json", "every vector with its policy, verification time, roots and expected verdict", "generated by us from the vector list in attestation/tdx/tdxtest/vectors.go")
	line(FixtureRootFile, "the fixture root CA the \"fixture\" vectors chain to (CN=Intel SGX Root CA, not Intel's key)", fmt.Sprintf("generated by us: tdxtest fixture PKI seed %q", VectorSeed))
	line("PROVENANCE.md", "this file", "generated by us")
	for _, v := range vs {
		line(v.Name+".bundle", "evidence bundle: "+v.Description, v.Provenance)
	}
	return b.Bytes()
}

// GPUBundle returns a valid TDX evidence bundle, anchored like the other
// vectors, that carries gpu as its GPU evidence (the quote binds it), and
// the policy its TDX part passes. testvectors/attestation/gpu wraps the
// nvgpu vectors with it.
func GPUBundle(gpu [][]byte) ([]byte, *policy.Policy, error) {
	keys, err := VectorKeys()
	if err != nil {
		return nil, nil, err
	}
	pki, err := NewPKI(VectorSeed, VectorPKIFrom)
	if err != nil {
		return nil, nil, err
	}
	b := anchoredBundle(keys, VectorVerifyAt)
	b.GPU = gpu
	td := DefaultTD()
	td.ReportData = b.ReportData()
	if b.Report, err = pki.Quote(td, Intact); err != nil {
		return nil, nil, err
	}
	c, err := pki.Collateral(DefaultCollateral(VectorIssued))
	if err != nil {
		return nil, nil, err
	}
	if b.Collateral, err = c.Marshal(); err != nil {
		return nil, nil, err
	}
	enc, err := b.Marshal()
	if err != nil {
		return nil, nil, err
	}
	return enc, vectorPolicy("gpu", DefaultTD()), nil
}
