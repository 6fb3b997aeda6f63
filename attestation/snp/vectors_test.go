package snp_test

// SEV-SNP test vectors in testvectors/attestation/snp: one evidence bundle
// per vector, a manifest of expected verdicts, the fixture root and a
// provenance file. `go test ./attestation/snp -run '^TestSNPVectors$'
// -update` (wrapped by scripts/gen-snp-vectors) rewrites them; without
// -update the test regenerates every file from its seed and requires the
// same bytes. TestSNPManifest drives every vector through Verify, the
// REPORT_DATA binding and Validate.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	test "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/testdata"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/sealgate/sealgate/attestation/anchortest"
	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/snp"
	"github.com/sealgate/sealgate/attestation/snp/snptest"
	"github.com/sealgate/sealgate/internal/testenv"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

var update = flag.Bool("update", false, "rewrite the SEV-SNP test vectors in testvectors/attestation/snp")

const (
	vectorSubdir   = "testvectors/attestation/snp"
	manifestFile   = "manifest.json"
	provenanceFile = "PROVENANCE.md"
	rootsFile      = "fixture-roots.pem"
	generatorNote  = "scripts/gen-snp-vectors (`go test ./attestation/snp -run '^TestSNPVectors$' -update`)"
	// The recorded report's source.
	sevGuestModule  = "github.com/google/go-sev-guest"
	sevGuestVersion = "v0.15.0"
)

// fixtureNonce is every vector bundle's nonce.
// It derives from a time anchor signed by the fixture anchor key a minute
// before snptest.VerifyAt, so the full dispatcher judges the vectors fresh.
var fixtureAnchor, fixtureNonce = anchortest.Anchor(snptest.VerifyAt.Add(-time.Minute))

// recordedVerifyAt is within the recorded VCEK's validity (2022-09-24T00:55:28Z
// to 2029-09-24T00:55:28Z); go-sev-guest's TestVerifyVcekCert verifies it at
// this time.
var recordedVerifyAt = time.Date(2022, 9, 24, 1, 0, 0, 0, time.UTC)

// manifestEntry is one vector in manifest.json.
type manifestEntry struct {
	Name        string          `json:"name"`
	Kind        string          `json:"kind"`
	File        string          `json:"file"`
	VerifyAt    string          `json:"verify_at"`
	Policy      json.RawMessage `json:"policy"`
	Roots       string          `json:"roots"`
	Want        manifestWant    `json:"want"`
	Description string          `json:"description"`
}

// manifestWant is the verdict of the full bundle check: the code ("ok"
// for success) and a substring of the failing field.
type manifestWant struct {
	Code  string `json:"code"`
	Field string `json:"field"`
}

// vectorSpec describes how one vector is made and what it must give.
type vectorSpec struct {
	name        string
	seed        uint64
	description string
	recorded    bool
	roots       string // "fixture" or "amd"
	verifyAt    time.Time
	policy      func(p *policy.Policy)
	want        manifestWant
	build       func(t *testing.T, g *generator) *proto.Bundle
}

// generator holds the chains vectors are signed with.
type generator struct {
	signer *test.AmdSigner // the fixture chain: its ARK is the pinned fixture root
	other  *test.AmdSigner // a chain under an ARK nobody pins
}

// bind returns a bundle whose report, signed by s, binds it.
func (g *generator) bind(t *testing.T, s *test.AmdSigner, r snptest.ReportSpec, col snp.Collateral) *proto.Bundle {
	b := vectorBundle(t)
	r.ReportData = b.ReportData()
	b.Report = snptest.BuildReport(t, s, r)
	b.Collateral = snptest.Encode(t, col)
	return b
}

// valid returns a bound bundle with the fixture chain and a current CRL,
// its report made from r.
func (g *generator) valid(t *testing.T, r snptest.ReportSpec) *proto.Bundle {
	crl := snptest.BuildCRL(t, g.signer.Ark, g.signer.Keys.Ark, snptest.CRLNextUpdate)
	return g.bind(t, g.signer, r, snptest.Chain(g.signer, r.Key, crl))
}

func ok() manifestWant { return manifestWant{Code: "ok"} }

func want(c check.Code, field string) manifestWant {
	return manifestWant{Code: string(c), Field: field}
}

func vectorSpecs() []vectorSpec {
	hexOf := func(b []byte) string { return hex.EncodeToString(b) }
	noCRL := func(p *policy.Policy) { f := false; p.SNP.RequireCRL = &f }
	return []vectorSpec{
		{
			name: "valid", seed: 101,
			description: "a report signed by the fixture VCEK, with the fixture chain and a current CRL, binding the bundle; passes the fixture policy",
			want:        ok(),
			build:       func(t *testing.T, g *generator) *proto.Bundle { return g.valid(t, snptest.ReportSpec{}) },
		},
		{
			name: "valid-vlek", seed: 102,
			description: "as valid, but signed by the fixture VLEK, certified by the fixture ASVK",
			want:        ok(),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				return g.valid(t, snptest.ReportSpec{Key: snp.KeyVLEK})
			},
		},
		{
			name: "valid-no-crl-allowed", seed: 103,
			description: "as valid, but the collateral carries no CRL, and the policy says require_crl false",
			policy:      noCRL,
			want:        ok(),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				return g.bind(t, g.signer, snptest.ReportSpec{}, snptest.Chain(g.signer, snp.KeyVCEK, nil))
			},
		},
		{
			name: "bad-report-signature", seed: 104,
			description: "a well-formed ECDSA P-384 signature by a key other than the VCEK the collateral certifies",
			want:        want(check.CodeSignature, "report signature"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				crl := snptest.BuildCRL(t, g.signer.Ark, g.signer.Keys.Ark, snptest.CRLNextUpdate)
				return g.bind(t, snptest.WithVCEKKey(g.signer, test.DefaultVlek()), snptest.ReportSpec{}, snptest.Chain(g.signer, snp.KeyVCEK, crl))
			},
		},
		{
			name: "unpinned-ark", seed: 105,
			description: "a complete, self-consistent chain (VCEK, ASK, ARK, CRL) under an ARK that is not pinned",
			want:        want(check.CodeChain, "ark"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				crl := snptest.BuildCRL(t, g.other.Ark, g.other.Keys.Ark, snptest.CRLNextUpdate)
				return g.bind(t, g.other, snptest.ReportSpec{}, snptest.Chain(g.other, snp.KeyVCEK, crl))
			},
		},
		{
			name: "ask-not-signed-by-ark", seed: 106,
			description: "the pinned fixture ARK, but an ASK (and the VCEK under it) that another root signed",
			want:        want(check.CodeChain, "ask"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				col := snptest.Chain(g.other, snp.KeyVCEK, snptest.BuildCRL(t, g.signer.Ark, g.signer.Keys.Ark, snptest.CRLNextUpdate))
				col.Root = g.signer.Ark.Raw
				return g.bind(t, g.other, snptest.ReportSpec{}, col)
			},
		},
		{
			name: "fixture-under-amd-roots", seed: 107,
			description: "the valid fixture evidence verified against AMD's pinned roots, as production does: the fixture ARK is not AMD's",
			roots:       "amd",
			want:        want(check.CodeChain, "ark"),
			build:       func(t *testing.T, g *generator) *proto.Bundle { return g.valid(t, snptest.ReportSpec{}) },
		},
		{
			name: "vcek-expired", seed: 108,
			description: "valid evidence verified after the fixture VCEK's notAfter (2032-05-30)",
			verifyAt:    time.Date(2032, 6, 15, 0, 0, 0, 0, time.UTC),
			want:        want(check.CodeCollateralExpired, "vcek validity"),
			build:       func(t *testing.T, g *generator) *proto.Bundle { return g.valid(t, snptest.ReportSpec{}) },
		},
		{
			name: "crl-expired", seed: 109,
			description: "valid evidence verified after the CRL's nextUpdate (2026-02-01)",
			verifyAt:    time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC),
			want:        want(check.CodeCollateralExpired, "crl validity"),
			build:       func(t *testing.T, g *generator) *proto.Bundle { return g.valid(t, snptest.ReportSpec{}) },
		},
		{
			name: "crl-bad-signature", seed: 110,
			description: "a CRL with the fixture ARK's name but signed by another root's key",
			want:        want(check.CodeSignature, "crl signature"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				crl := snptest.BuildCRL(t, g.other.Ark, g.other.Keys.Ark, snptest.CRLNextUpdate)
				return g.bind(t, g.signer, snptest.ReportSpec{}, snptest.Chain(g.signer, snp.KeyVCEK, crl))
			},
		},
		{
			name: "revoked-ask", seed: 111,
			description: "a current CRL, signed by the fixture ARK, that revokes the fixture ASK's serial number",
			want:        want(check.CodeRevoked, "ask"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				crl := snptest.BuildCRL(t, g.signer.Ark, g.signer.Keys.Ark, snptest.CRLNextUpdate, g.signer.Ask.SerialNumber)
				return g.bind(t, g.signer, snptest.ReportSpec{}, snptest.Chain(g.signer, snp.KeyVCEK, crl))
			},
		},
		{
			name: "crl-missing", seed: 112,
			description: "the collateral carries no CRL and the policy requires one (require_crl defaults to true)",
			want:        want(check.CodeRevoked, "crl"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				return g.bind(t, g.signer, snptest.ReportSpec{}, snptest.Chain(g.signer, snp.KeyVCEK, nil))
			},
		},
		{
			name: "debug-enabled", seed: 113,
			description: "the guest policy allows debugging (POLICY bit 19)",
			want:        want(check.CodePolicy, "policy.debug"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				return g.valid(t, snptest.ReportSpec{Policy: abi.SnpPolicy{Debug: true}})
			},
		},
		{
			name: "migration-agent-allowed", seed: 114,
			description: "the guest policy allows a migration agent (POLICY bit 18)",
			want:        want(check.CodePolicy, "policy.migrate_ma"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				return g.valid(t, snptest.ReportSpec{Policy: abi.SnpPolicy{MigrateMA: true}})
			},
		},
		{
			name: "smt-forbidden", seed: 115,
			description: "the guest policy allows SMT (POLICY bit 16) and the policy says smt forbidden",
			want:        want(check.CodePolicy, "policy.smt"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				return g.valid(t, snptest.ReportSpec{Policy: abi.SnpPolicy{SMT: true}})
			},
		},
		{
			name: "measurement-not-allowed", seed: 116,
			description: "a launch measurement the policy does not list",
			want:        want(check.CodePolicy, "measurement"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				m := sha512.Sum384([]byte("sealgate snp fixture: another guest"))
				return g.valid(t, snptest.ReportSpec{Measurement: &m})
			},
		},
		{
			name: "measurement-none-named", seed: 117,
			description: "valid evidence under a policy that lists no measurement and does not say any_measurement: fail closed",
			policy:      func(p *policy.Policy) { p.SNP.Measurements = nil },
			want:        want(check.CodePolicy, "measurement"),
			build:       func(t *testing.T, g *generator) *proto.Bundle { return g.valid(t, snptest.ReportSpec{}) },
		},
		{
			name: "host-data-not-allowed", seed: 118,
			description: "valid evidence under a policy whose host_data list does not include the report's HOST_DATA",
			policy: func(p *policy.Policy) {
				h := sha256.Sum256([]byte("sealgate snp fixture: other host data"))
				p.SNP.HostData = []string{hexOf(h[:])}
			},
			want:  want(check.CodePolicy, "host_data"),
			build: func(t *testing.T, g *generator) *proto.Bundle { return g.valid(t, snptest.ReportSpec{}) },
		},
		{
			name: "tcb-below-minimum", seed: 119,
			description: "valid evidence at SNP SVN 22 under a policy whose minimum SNP SVN is 23",
			policy:      func(p *policy.Policy) { p.SNP.MinTCB.SNP = snptest.TCB.SnpSpl + 1 },
			want:        want(check.CodePolicy, "reported_tcb.snp"),
			build:       func(t *testing.T, g *generator) *proto.Bundle { return g.valid(t, snptest.ReportSpec{}) },
		},
		{
			name: "vcek-tcb-mismatch", seed: 120,
			description: "a report whose REPORTED_TCB (SNP SVN 21) is not the TCB its VCEK certifies (SNP SVN 22)",
			want:        want(check.CodeChain, "vcek tcb"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				tcb := snptest.TCB
				tcb.SnpSpl--
				return g.valid(t, snptest.ReportSpec{ReportedTCB: &tcb})
			},
		},
		{
			name: "report-data-mismatch", seed: 121,
			description: "a valid report whose REPORT_DATA is not the bundle's binding hash",
			want:        want(check.CodeBinding, "report_data"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				b := vectorBundle(t)
				crl := snptest.BuildCRL(t, g.signer.Ark, g.signer.Keys.Ark, snptest.CRLNextUpdate)
				b.Report = snptest.BuildReport(t, g.signer, snptest.ReportSpec{ReportData: sha512.Sum512([]byte("sealgate snp fixture: not this bundle"))})
				b.Collateral = snptest.Encode(t, snptest.Chain(g.signer, snp.KeyVCEK, crl))
				return b
			},
		},
		{
			name: "nonce-mismatch", seed: 122,
			description: "a valid report binding the bundle's keys with another nonce than the bundle's",
			want:        want(check.CodeBinding, "report_data"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				b := vectorBundle(t)
				b.Nonce = sha256.Sum256([]byte("sealgate snp fixture: another nonce"))
				crl := snptest.BuildCRL(t, g.signer.Ark, g.signer.Keys.Ark, snptest.CRLNextUpdate)
				b.Report = snptest.BuildReport(t, g.signer, snptest.ReportSpec{ReportData: b.ReportData()})
				b.Collateral = snptest.Encode(t, snptest.Chain(g.signer, snp.KeyVCEK, crl))
				b.Nonce = fixtureNonce
				return b
			},
		},
		{
			name: "report-truncated", seed: 123,
			description: "the valid report without its last 100 bytes",
			want:        want(check.CodeMalformed, "report length"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				b := g.valid(t, snptest.ReportSpec{})
				b.Report = b.Report[:len(b.Report)-100]
				return b
			},
		},
		{
			name: "report-trailing-byte", seed: 124,
			description: "the valid report followed by one zero byte (go-sev-guest's abi.ReportToProto alone would ignore it)",
			want:        want(check.CodeMalformed, "report length"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				b := g.valid(t, snptest.ReportSpec{})
				b.Report = append(b.Report, 0)
				return b
			},
		},
		{
			name: "collateral-trailing-byte", seed: 125,
			description: "the valid collateral encoding followed by one zero byte",
			want:        want(check.CodeMalformed, "collateral"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				b := g.valid(t, snptest.ReportSpec{})
				b.Collateral = append(b.Collateral, 0)
				return b
			},
		},
		{
			name: "collateral-bad-certificate", seed: 126,
			description: "a well-formed collateral encoding whose VCEK is not a DER certificate",
			want:        want(check.CodeMalformed, "vcek certificate"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				col := snptest.Chain(g.signer, snp.KeyVCEK, snptest.BuildCRL(t, g.signer.Ark, g.signer.Keys.Ark, snptest.CRLNextUpdate))
				col.Endorsement = []byte("sealgate snp fixture: not a certificate")
				return g.bind(t, g.signer, snptest.ReportSpec{}, col)
			},
		},
		{
			name: "collateral-wrong-key", seed: 127,
			description: "a VCEK-signed report with the VLEK chain as collateral",
			want:        want(check.CodeMalformed, "collateral key"),
			build: func(t *testing.T, g *generator) *proto.Bundle {
				col := snptest.Chain(g.signer, snp.KeyVLEK, snptest.BuildCRL(t, g.signer.Ark, g.signer.Keys.Ark, snptest.CRLNextUpdate))
				return g.bind(t, g.signer, snptest.ReportSpec{}, col)
			},
		},
		{
			name: "recorded-milan", seed: 201, recorded: true,
			description: "the real Milan report in go-sev-guest's test data, its real VCEK and AMD's Milan ASK and ARK, under AMD's pinned roots; its signature, chain and validity check out, but its REPORT_DATA is fixed (01 02 03 04 05 then zeros), so it cannot bind our keys. It has no CRL (the policy says require_crl false) and its DEBUG policy bit is set: the policy (allow_debug false) would refuse it next",
			roots:       "amd",
			verifyAt:    recordedVerifyAt,
			want:        want(check.CodeBinding, "report_data"),
			build:       recordedBundle,
		},
		{
			name: "recorded-milan-expired", seed: 202, recorded: true,
			description: "the recorded Milan evidence verified after its VCEK's notAfter (2029-09-24T00:55:28Z)",
			roots:       "amd",
			verifyAt:    time.Date(2029, 10, 1, 0, 0, 0, 0, time.UTC),
			want:        want(check.CodeCollateralExpired, "vcek validity"),
			build:       recordedBundle,
		},
	}
}

// recordedBundle wraps go-sev-guest's recorded report and certificates.
func recordedBundle(t *testing.T, _ *generator) *proto.Bundle {
	ask, ark, err := kds.ParseProductCertChain(trust.AskArkMilanVcekBytes)
	if err != nil {
		t.Fatal(err)
	}
	b := vectorBundle(t)
	b.Report = bytes.Clone(testdata.AttestationBytes)
	b.Collateral = snptest.Encode(t, snp.Collateral{Key: snp.KeyVCEK, Endorsement: testdata.VcekBytes, Intermediate: ask, Root: ark})
	return b
}

// recordedPolicy is a production-like policy naming the recorded guest: it
// refuses debug guests and, because the recording has none, does not
// require a CRL.
func recordedPolicy() *policy.Policy {
	p := snptest.Policy()
	p.Name = "snp-recorded"
	f := false
	p.SNP = &policy.SNPRules{
		Measurements: []string{hex.EncodeToString(testdata.AttestationBytes[0x90:0xC0])},
		SMT:          "allowed",
		RequireCRL:   &f,
	}
	return p
}

func (v *vectorSpec) fullPolicy() *policy.Policy {
	p := snptest.Policy()
	if v.recorded {
		p = recordedPolicy()
	}
	if v.policy != nil {
		v.policy(p)
	}
	return p
}

func (v *vectorSpec) rootsName() string {
	if v.roots == "" {
		return "fixture"
	}
	return v.roots
}

func (v *vectorSpec) at() time.Time {
	if v.verifyAt.IsZero() {
		return snptest.VerifyAt
	}
	return v.verifyAt
}

// generated is every file the generator writes, by name.
type generated map[string][]byte

// generate makes every vector file. Each vector is built under its own
// seed (testing/cryptotest.SetGlobalRandom), the fixture chains under
// seed 1, so the output is deterministic.
func generate(t *testing.T) (generated, *generator) {
	t.Helper()
	g := &generator{}
	snptest.WarmKeys(t)
	t.Run("chains", func(t *testing.T) {
		cryptotest.SetGlobalRandom(t, 1)
		g.signer = snptest.NewSigner(t, nil)
		g.other = snptest.NewSigner(t, snptest.OtherKeys())
	})
	if t.Failed() {
		t.FailNow()
	}
	out := generated{}
	out[rootsFile] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.signer.Ark.Raw})
	var entries []manifestEntry
	for _, v := range vectorSpecs() {
		var raw []byte
		t.Run("gen/"+v.name, func(t *testing.T) {
			cryptotest.SetGlobalRandom(t, v.seed)
			b := v.build(t, g)
			var err error
			if raw, err = b.Marshal(); err != nil {
				t.Fatal(err)
			}
		})
		if raw == nil {
			t.FailNow()
		}
		// Check the vector gives the verdict it is made for before
		// writing it down.
		var roots snp.Roots
		if v.rootsName() == "fixture" {
			roots = snptest.Roots(g.signer)
		}
		t.Run("check/"+v.name, func(t *testing.T) {
			_, err := fullCheck(raw, v.fullPolicy(), roots, v.at())
			checkVerdict(t, err, v.want)
		})
		pol, err := json.Marshal(v.fullPolicy())
		if err != nil {
			t.Fatal(err)
		}
		file := v.name + ".bundle"
		out[file] = raw
		entries = append(entries, manifestEntry{
			Name: v.name, Kind: policy.KindSNP, File: file,
			VerifyAt: v.at().Format(time.RFC3339), Policy: pol, Roots: v.rootsName(),
			Want: v.want, Description: v.description,
		})
	}
	m, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out[manifestFile] = append(m, '\n')
	out[provenanceFile] = provenance(vectorSpecs())
	return out, g
}

func provenance(specs []vectorSpec) []byte {
	var b strings.Builder
	b.WriteString(`# SEV-SNP test vectors: provenance

One line per file in this directory. Everything here is regenerated by
` + generatorNote + `, deterministically: each synthetic vector is built
under its own seed (testing/cryptotest.SetGlobalRandom), the fixture chains
under seed 1, and ` + "`go test ./attestation/snp`" + ` regenerates every file and
requires the same bytes. The verdicts are in manifest.json.

Synthetic evidence is **generated by us** (attestation/snp/fixtures_test.go)
under test-only AMD key chains: go-sev-guest's fixed test keys
(` + sevGuestModule + ` ` + sevGuestVersion + `, testing/data/keys, Apache-2.0), certificates
made to the templates of its testing.AmdSignerBuilder with its
testing.CustomExtensions, reports signed by its testing.AmdSigner. The keys
are public: this evidence proves nothing outside tests, and production
verification (AMD's pinned roots) refuses it.

Bundles carry no time anchor; the manifest's verdicts are those of kind
verification, REPORT_DATA binding and policy validation, not freshness.

`)
	row := func(file, what string) { fmt.Fprintf(&b, "- `%s`: %s\n", file, what) }
	row(manifestFile, "the manifest: every vector's file, verification time, inline policy, roots and expected verdict. Generated by us; regenerate: scripts/gen-snp-vectors.")
	row(provenanceFile, "this file. Generated by us; regenerate: scripts/gen-snp-vectors.")
	row(rootsFile, "the fixture root: the test-only Milan ARK (RSA-4096, go-sev-guest's testing/data/keys/ark_private_key.pem) that synthetic vectors with roots \"fixture\" chain to; tests pin it, production never does. Generated by us, seed 1; regenerate: scripts/gen-snp-vectors.")
	for _, v := range specs {
		file := v.name + ".bundle"
		if v.recorded {
			row(file, fmt.Sprintf("RECORDED evidence in a bundle we generate: the report is %s %s verify/testdata/attestation.bin (a real SEV-SNP report, version 2, AMD EPYC Milan, guest policy 0x0b0000 with DEBUG set, REPORT_DATA 0102030405 then zeros), its VCEK is verify/testdata/vcek.testcer, the ASK and ARK are verify/trust/ask_ark_milan.pem (from AMD KDS https://kdsintf.amd.com/vcek/v1/Milan/cert_chain), all from that module, license Apache-2.0; no CRL is recorded. The bundle's keys and nonce are ours, derived from fixed labels. Vector: %s. Regenerate: scripts/gen-snp-vectors.", sevGuestModule, sevGuestVersion, v.description))
			continue
		}
		row(file, fmt.Sprintf("synthetic, generated by us, seed %d: %s. Regenerate: scripts/gen-snp-vectors.", v.seed, v.description))
	}
	return []byte(b.String())
}

// TestSNPVectors regenerates the vectors and compares them with the
// committed files, or rewrites them with -update.
func TestSNPVectors(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), vectorSubdir)
	out, _ := generate(t)
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		olds, _ := filepath.Glob(filepath.Join(dir, "*.bundle"))
		for _, f := range olds {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		for name, b := range out {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("wrote %d files to %s", len(out), dir)
		return
	}
	for name, want := range out {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v (run scripts/gen-snp-vectors)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what its generator makes (run scripts/gen-snp-vectors)", name)
		}
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := out[f.Name()]; !ok {
			t.Errorf("%s is not made by the generator and has no provenance", f.Name())
		}
	}
}

// TestSNPManifest drives every vector in the manifest through the full
// bundle check and asserts its verdict.
func TestSNPManifest(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), vectorSubdir)
	entries := readManifest(t, dir)
	roots := readFixtureRoots(t, dir)
	if len(entries) < 25 {
		t.Errorf("manifest lists %d vectors, want at least 25", len(entries))
	}
	codes := map[string]bool{}
	for _, e := range entries {
		t.Run(e.Name, func(t *testing.T) {
			if e.Kind != policy.KindSNP {
				t.Fatalf("kind: found %q, want %q", e.Kind, policy.KindSNP)
			}
			raw, err := os.ReadFile(filepath.Join(dir, e.File))
			if err != nil {
				t.Fatal(err)
			}
			p, err := policy.Parse(e.Policy)
			if err != nil {
				t.Fatalf("policy: %v", err)
			}
			if len(p.TEEKinds) != 1 || p.TEEKinds[0] != policy.KindSNP {
				t.Errorf("policy tee_kinds: found %v, want [snp]", p.TEEKinds)
			}
			at, err := time.Parse(time.RFC3339, e.VerifyAt)
			if err != nil {
				t.Fatal(err)
			}
			var r snp.Roots // nil: AMD's
			switch e.Roots {
			case "fixture":
				r = roots
			case "amd":
			default:
				t.Fatalf("roots: found %q, want fixture or amd", e.Roots)
			}
			_, err = fullCheck(raw, p, r, at)
			checkVerdict(t, err, e.Want)
			codes[e.Want.Code] = true
		})
	}
	for _, c := range []check.Code{check.CodeMalformed, check.CodeSignature, check.CodeChain, check.CodeRevoked, check.CodeCollateralExpired, check.CodePolicy, check.CodeBinding} {
		if !codes[string(c)] {
			t.Errorf("no vector expects %s", c)
		}
	}
}

// TestRecordedClaims checks what the recorded report says, and that the
// policy its vector carries would refuse it for DEBUG were its binding
// not already refused.
func TestRecordedClaims(t *testing.T) {
	b := recordedBundle(t, nil)
	c, err := snp.Verify(b.Report, b.Collateral, snp.Options{Now: recordedVerifyAt})
	if err != nil {
		t.Fatalf("recorded report: %v", err)
	}
	if c.Product != "Milan" || c.Key != snp.KeyVCEK || c.Version != 2 || c.CRLPresent {
		t.Errorf("claims: found product %q key %v version %d crl %v, want Milan VCEK 2 false", c.Product, c.Key, c.Version, c.CRLPresent)
	}
	if !c.GuestPolicy.Debug || !c.GuestPolicy.SMT || c.GuestPolicy.MigrateMA {
		t.Errorf("guest policy: found %+v, want debug and smt", c.GuestPolicy)
	}
	if want := (policy.SNPTCB{BootLoader: 2, TEE: 0, SNP: 5, Microcode: 68}); c.ReportedTCB != want {
		t.Errorf("reported tcb: found %+v, want %+v", c.ReportedTCB, want)
	}
	if want := time.Date(2029, 9, 24, 0, 55, 28, 0, time.UTC); !c.NextUpdate.Equal(want) {
		t.Errorf("next update: found %v, want the VCEK's expiry %v", c.NextUpdate, want)
	}
	err = snp.Validate(c, recordedPolicy().SNP)
	checkVerdict(t, err, want(check.CodePolicy, "policy.debug"))
	// Pinned to the fixture root, AMD's real chain is refused.
	_, err = snp.Verify(b.Report, b.Collateral, snp.Options{Now: recordedVerifyAt, Roots: snp.Roots{"Milan": {snptest.NewSigner(t, nil).Ark}}})
	checkVerdict(t, err, want(check.CodeChain, "ark"))
}

// TestReportByteFlips flips every byte of the valid synthetic report in
// turn and expects Verify to refuse each. Bytes 0x000-0x29F are the
// signed region (go-sev-guest's abi.SignedComponent). The signature field
// 0x2A0-0x49F is not signed; its bytes are refused for these reasons:
var unsignedReasons = []struct {
	from, to int // [from, to)
	what     string
	code     check.Code
}{
	{0x2A0, 0x2A0 + 48, "R, little-endian: another R does not verify", check.CodeSignature},
	{0x2A0 + 48, 0x2A0 + 72, "R's zero padding: R would exceed the P-384 group order", check.CodeSignature},
	{0x2A0 + 72, 0x2A0 + 120, "S, little-endian: another S does not verify", check.CodeSignature},
	{0x2A0 + 120, 0x2A0 + 144, "S's zero padding: S would exceed the P-384 group order", check.CodeSignature},
	{0x2A0 + 144, abi.ReportSize, "reserved, must be zero: go-sev-guest's abi refuses the report", check.CodeMalformed},
}

func TestReportByteFlips(t *testing.T) {
	if testing.Short() {
		t.Skip("flips 1184 bytes")
	}
	dir := filepath.Join(testenv.RepoRoot(t), vectorSubdir)
	raw, err := os.ReadFile(filepath.Join(dir, "valid.bundle"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	opts := snp.Options{Now: snptest.VerifyAt, Roots: readFixtureRoots(t, dir)}
	if _, err := snp.Verify(b.Report, b.Collateral, opts); err != nil {
		t.Fatalf("the valid report does not verify: %v", err)
	}
	signed := len(abi.SignedComponent(b.Report))
	if signed != 0x2A0 {
		t.Fatalf("signed region: found %d bytes, want 0x2a0", signed)
	}
	var mu sync.Mutex // guards byCode
	byCode := map[check.Code]int{}
	const chunk = 148 // 8 chunks, verified in parallel
	t.Run("flips", func(t *testing.T) {
		for start := 0; start < len(b.Report); start += chunk {
			t.Run(fmt.Sprintf("0x%03x", start), func(t *testing.T) {
				t.Parallel()
				for i := start; i < min(start+chunk, len(b.Report)); i++ {
					r := bytes.Clone(b.Report)
					r[i] ^= 0xFF
					_, err := snp.Verify(r, b.Collateral, opts)
					if err == nil {
						t.Errorf("byte 0x%03x flipped: accepted", i)
						continue
					}
					code := check.CodeOf(err)
					mu.Lock()
					byCode[code]++
					mu.Unlock()
					if i < signed {
						if code != check.CodeSignature && code != check.CodeMalformed && code != check.CodeChain {
							t.Errorf("signed byte 0x%03x flipped: %v, want a signature, malformed or chain failure", i, err)
						}
						continue
					}
					for _, u := range unsignedReasons {
						if i >= u.from && i < u.to && code != u.code {
							t.Errorf("unsigned byte 0x%03x (%s) flipped: %v, want %s", i, u.what, err, u.code)
						}
					}
				}
			})
		}
	})
	t.Logf("%d flips refused: %v", len(b.Report), byCode)
}

// vectorBundle returns a bundle with the vectors' deterministic worker
// keys and nonce, and no report yet.
func vectorBundle(tb testing.TB) *proto.Bundle {
	tb.Helper()
	k1, err := seal.DeriveKey(proto.KEMMLKEM768X25519, []byte("sealgate snp vector hpke mlkem768x25519"))
	if err != nil {
		tb.Fatal(err)
	}
	k2, err := seal.DeriveKey(proto.KEMX25519, []byte("sealgate snp vector hpke x25519"))
	if err != nil {
		tb.Fatal(err)
	}
	seed := sha256.Sum256([]byte("sealgate snp vector signing key"))
	sig := ed25519.NewKeyFromSeed(seed[:])
	return &proto.Bundle{
		Kind:   policy.KindSNP,
		Nonce:  fixtureNonce,
		Anchor: fixtureAnchor,
		Keys: proto.WorkerKeys{
			HPKE:    []proto.HPKEKey{k1.Public(), k2.Public()},
			Signing: sig.Public().(ed25519.PublicKey),
		},
	}
}

// fullCheck is the full bundle check for an snp bundle, in the
// dispatcher's order: kind verification, REPORT_DATA binding, policy.
func fullCheck(raw []byte, p *policy.Policy, roots snp.Roots, at time.Time) (*snp.Claims, error) {
	b, err := proto.ParseBundle(raw)
	if err != nil {
		return nil, check.Wrap(check.CodeMalformed, "bundle", err)
	}
	if b.Kind != policy.KindSNP {
		return nil, check.Fail(check.CodeUnknownKind, "kind", b.Kind, policy.KindSNP)
	}
	c, err := snp.Verify(b.Report, b.Collateral, snp.Options{Now: at, Roots: roots})
	if err != nil {
		return nil, err
	}
	if want := b.ReportData(); c.ReportData != want {
		return c, check.Fail(check.CodeBinding, "report_data", hex.EncodeToString(c.ReportData[:8])+"…", hex.EncodeToString(want[:8])+"…")
	}
	return c, snp.Validate(c, p.SNP)
}

func checkVerdict(t *testing.T, err error, w manifestWant) {
	t.Helper()
	if w.Code == "ok" {
		if err != nil {
			t.Fatalf("found %v, want success", err)
		}
		return
	}
	var ce *check.Error
	if !errors.As(err, &ce) {
		t.Fatalf("found %v, want a %s failure on %q", err, w.Code, w.Field)
	}
	if string(ce.Code) != w.Code || !strings.Contains(ce.Field, w.Field) {
		t.Fatalf("found %v, want a %s failure on %q", err, w.Code, w.Field)
	}
	if ce.Field != strings.ToLower(ce.Field) {
		t.Errorf("field %q is not lower-case", ce.Field)
	}
}

func readManifest(t *testing.T, dir string) []manifestEntry {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var entries []manifestEntry
	if err := dec.Decode(&entries); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return entries
}

func readFixtureRoots(tb testing.TB, dir string) snp.Roots {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, rootsFile))
	if err != nil {
		tb.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	if blk == nil {
		tb.Fatalf("%s: no PEM block", rootsFile)
	}
	ark, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return snp.Roots{"Milan": {ark}}
}
