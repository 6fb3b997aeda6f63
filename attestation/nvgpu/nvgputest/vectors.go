package nvgputest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/sealgate/sealgate/attestation/anchortest"
	"time"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/proto"
	"golang.org/x/crypto/ocsp"
)

// The test vectors in testvectors/attestation/nvgpu are made from these.
const (
	// VectorSeed derives the fixture PKI and the vectors' nonces.
	VectorSeed = "sealgate/testvectors/attestation/nvgpu"
	// otherRootSeed derives the PKI of the unpinned-root vector.
	otherRootSeed = VectorSeed + " other root"
	// RootsFixture is the manifest's roots value: the fixture device root
	// (DeviceRootFile) and RIM root (RIMRootFile).
	RootsFixture = "fixture"
	// DeviceRootFile and RIMRootFile are the fixture roots, PEM, next to
	// the vectors.
	DeviceRootFile = "fixture-device-root.pem"
	RIMRootFile    = "fixture-rim-root.pem"
	// FileSuffix ends every vector's evidence file name.
	FileSuffix = ".gpuevidence"
)

// Times of the vectors: the fixture PKI is valid from VectorPKIFrom, the
// OCSP responses from an hour before VectorVerifyAt to a day after, and
// the vectors are verified at VectorVerifyAt.
var (
	VectorPKIFrom  = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	VectorVerifyAt = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
)

// VectorAnchor and VectorBundleNonce are the time anchor (signed by the
// fixture anchor key a minute before VectorVerifyAt) and the evidence
// bundle nonce derived from it that the vectors' GPU nonces derive from:
// each vector is GPU 0 of a bundle with this nonce, so its report must
// carry proto.GPUNonce(VectorBundleNonce, 0).
var VectorAnchor, VectorBundleNonce = anchortest.Anchor(VectorVerifyAt.Add(-time.Minute))

// Vector is one test vector: encoded GPU evidence, how to check it and
// the expected verdict of nvgpu.Verify, then nvgpu.Validate.
type Vector struct {
	Name        string
	Description string
	VerifyAt    time.Time
	// Nonce is the nonce the evidence must carry (Options.Nonce).
	Nonce [32]byte
	Rules policy.GPURules
	Want  Want
	// Evidence is the encoded nvgpu.Evidence.
	Evidence []byte
}

// Want is an expected verdict: Code "ok" or a check.Code, and a substring
// of the failing check's field.
type Want struct {
	Code  string `json:"code"`
	Field string `json:"field"`
}

// ManifestEntry is one manifest.json entry.
type ManifestEntry struct {
	Name     string `json:"name"`
	File     string `json:"file"`
	VerifyAt string `json:"verify_at"`
	// Nonce is Options.Nonce, in hex.
	Nonce string `json:"nonce"`
	// GPURules are the policy's GPU rules the vector is validated under;
	// Options.RequireOCSP is their OCSPRequired.
	GPURules policy.GPURules `json:"gpu_rules"`
	// Roots names the trusted roots: RootsFixture.
	Roots       string `json:"roots"`
	Want        Want   `json:"want"`
	Description string `json:"description"`
}

func ok() Want { return Want{Code: "ok"} }

func fail(c check.Code, field string) Want { return Want{Code: string(c), Field: field} }

// synthetic describes one vector as a change to the defaults.
type synthetic struct {
	name, desc string
	want       Want
	otherRoot  bool
	gpu        func(*GPU)
	spec       func(*Spec)
	rules      func(*policy.GPURules)
	nonceIndex int                                   // the report carries GPUNonce(bundle, nonceIndex)
	evidence   func(*nvgpu.Evidence) *nvgpu.Evidence // edits the evidence before encoding
	encoded    func([]byte) []byte                   // edits the encoding
}

// defaultRIMs pins the RIMs to the default GPU's, so a vector can change
// what the report says and not what the RIMs want.
func defaultRIMs(s *Spec) {
	d, v := RIMs(DefaultGPU())
	s.DriverRIM, s.VBIOSRIM = &d, &v
}

func syntheticVectors() []synthetic {
	no := false
	return []synthetic{
		{name: "valid", want: ok(),
			desc: "H100-shaped evidence in SPT CC mode, driver 550.90.07, VBIOS 96.00.9f.00.01, every golden measurement matching, OCSP good for the device and RIM chains"},
		{name: "valid-mpt", want: ok(),
			desc: "the valid evidence with feature flag 1 (multi-GPU passthrough, a CC mode)",
			gpu:  func(g *GPU) { g.FeatureFlag = 1 }},
		{name: "valid-no-ocsp-allowed", want: ok(),
			desc:  "no OCSP responses at all, under rules with require_ocsp false",
			spec:  func(s *Spec) { s.NoOCSP, s.NoRIMOCSP = true, true },
			rules: func(r *policy.GPURules) { r.RequireOCSP = &no }},
		{name: "valid-nvdec0-disabled", want: ok(),
			desc: "NVDEC0 disabled (0x55) and block 36 (RIM index 35) not its golden value: NVIDIA's verifiers skip that index then",
			gpu: func(g *GPU) {
				g.NVDEC0 = nvgpu.NVDEC0Disabled
				g.Measurements[35] = Measurement("nvdec0 off")
			},
			spec: defaultRIMs},
		{name: "valid-pinned-measurement", want: ok(),
			desc: "rules that pin block 1 to its value",
			rules: func(r *policy.GPURules) {
				r.Measurements = map[string][]string{"1": {hex.EncodeToString(DefaultGPU().Measurements[0])}}
			}},
		{name: "valid-cc-mode-off-allowed", want: ok(),
			desc:  "feature flag 2 (protected PCIe, GPU CC mode off) under rules with allow_cc_mode_off",
			gpu:   func(g *GPU) { g.FeatureFlag = 2 },
			rules: func(r *policy.GPURules) { r.AllowCCModeOff = true }},
		{name: "bad-signature", want: fail(check.CodeSignature, "report signature"),
			desc: "the leaf's signature covers other bytes than the report's",
			spec: func(s *Spec) { s.Tamper = BadSignature }},
		{name: "unpinned-root", want: fail(check.CodeChain, "gpu certificate chain"), otherRoot: true,
			desc: "evidence whose chain ends at another root with the fixture root's name, not the pinned (fixture) root"},
		{name: "wrong-nonce", want: fail(check.CodeBinding, "gpu nonce"), nonceIndex: 1,
			desc: "a report for GPU 1's nonce of the same bundle checked as GPU 0"},
		{name: "cc-mode-off", want: fail(check.CodePolicy, "cc_mode"),
			desc: "feature flag 2 (protected PCIe: the GPU's own CC mode is off) under the default rules",
			gpu:  func(g *GPU) { g.FeatureFlag = 2 }},
		{name: "cc-mode-not-stated", want: fail(check.CodePolicy, "cc_mode"),
			desc: "no feature flag (legacy opaque data, as drivers before it write): the signed report does not say CC mode is on",
			gpu:  func(g *GPU) { g.FeatureFlag = -1 }},
		{name: "driver-below-minimum", want: fail(check.CodePolicy, "driver_version"),
			desc:  "driver 550.90.07 under min_driver_version 550.127.5",
			rules: func(r *policy.GPURules) { r.MinDriverVersion = "550.127.5" }},
		{name: "vbios-not-allowed", want: fail(check.CodePolicy, "vbios_version"),
			desc:  "VBIOS 96.00.9f.00.01 not in vbios_versions [96.00.74.00.1c]",
			rules: func(r *policy.GPURules) { r.VBIOSVersions = []string{"96.00.74.00.1c"} }},
		{name: "measurement-mismatch", want: fail(check.CodePolicy, "measurement 10"),
			desc: "block 10 (driver RIM index 9) is not the driver RIM's golden value",
			gpu:  func(g *GPU) { g.Measurements[9] = Measurement("patched driver") },
			spec: defaultRIMs},
		{name: "pinned-measurement-mismatch", want: fail(check.CodePolicy, "measurement 2"),
			desc: "rules that pin block 2 to a value it does not have",
			rules: func(r *policy.GPURules) {
				r.Measurements = map[string][]string{"2": {hex.EncodeToString(Measurement("other"))}}
			}},
		{name: "driver-rim-other-version", want: fail(check.CodePolicy, "driver rim version"),
			desc: "a valid driver RIM for driver 550.54.15 with a report of driver 550.90.07",
			spec: func(s *Spec) {
				d, _ := RIMs(s.GPU)
				d.ID, d.ColloquialVersion, d.Version = "NV_GPU_DRIVER_GH100_550.54.15", "550.54.15", "550.54.15"
				s.DriverRIM = &d
			}},
		{name: "driver-rim-tampered", want: fail(check.CodeSignature, "driver rim"),
			desc: "a golden value of the signed driver RIM changed after signing",
			evidence: func(e *nvgpu.Evidence) *nvgpu.Evidence {
				g := hex.EncodeToString(DefaultGPU().Measurements[9])
				e.DriverRIM = bytes.Replace(e.DriverRIM, []byte(g), []byte(hex.EncodeToString(Measurement("patched driver"))), 1)
				return e
			}},
		{name: "revoked-certificate", want: fail(check.CodeRevoked, "ocsp gpu certificate"),
			desc: "the device certificate is revoked by its carried OCSP response",
			spec: func(s *Spec) { s.DeviceStatus = ocsp.Revoked }},
		{name: "ocsp-unknown", want: fail(check.CodeRevoked, "ocsp gpu certificate"),
			desc: "the device certificate's OCSP status is unknown",
			spec: func(s *Spec) { s.DeviceStatus = ocsp.Unknown }},
		{name: "ocsp-missing", want: fail(check.CodeRevoked, "ocsp gpu certificate"),
			desc: "no OCSP responses for the device chain under the default require_ocsp",
			spec: func(s *Spec) { s.NoOCSP = true }},
		{name: "ocsp-stale", want: fail(check.CodeCollateralExpired, "ocsp gpu certificate"),
			desc: "OCSP responses whose nextUpdate is a day before the verification time",
			spec: func(s *Spec) {
				s.OCSPThisUpdate, s.OCSPNextUpdate = VectorVerifyAt.Add(-48*time.Hour), VectorVerifyAt.Add(-24*time.Hour)
			}},
		{name: "fwid-mismatch", want: fail(check.CodeChain, "leaf fwid"),
			desc: "the report's firmware ID is not the one in the leaf certificate",
			gpu:  func(g *GPU) { f := Measurement("other firmware"); g.FWID = f }},
		{name: "truncated-report", want: fail(check.CodeMalformed, "gpu report"),
			desc: "the valid report cut in the middle of its signature",
			evidence: func(e *nvgpu.Evidence) *nvgpu.Evidence {
				e.Report = e.Report[:len(e.Report)-40]
				return e
			}},
		{name: "evidence-trailing-byte", want: fail(check.CodeMalformed, "gpu evidence length"),
			desc:    "the valid evidence encoding with one byte after it",
			encoded: func(b []byte) []byte { return append(b, 0) }},
	}
}

// Vectors builds every test vector.
func Vectors() ([]Vector, error) {
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
		v, err := s.build(pki, other)
		if err != nil {
			return nil, fmt.Errorf("vector %s: %v", s.name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *synthetic) build(pki, other *PKI) (Vector, error) {
	g := DefaultGPU()
	if s.gpu != nil {
		s.gpu(&g)
	}
	spec := Spec{
		GPU: g, Nonce: proto.GPUNonce(VectorBundleNonce, s.nonceIndex),
		OCSPThisUpdate: VectorVerifyAt.Add(-time.Hour), OCSPNextUpdate: VectorVerifyAt.Add(24 * time.Hour),
	}
	if s.spec != nil {
		s.spec(&spec)
	}
	rules := DefaultRules()
	if s.rules != nil {
		s.rules(&rules)
	}
	signer := pki
	if s.otherRoot {
		signer = other
	}
	e, err := signer.Evidence(spec)
	if err != nil {
		return Vector{}, err
	}
	if s.evidence != nil {
		e = s.evidence(e)
	}
	enc, err := e.Marshal()
	if err != nil {
		return Vector{}, err
	}
	if s.encoded != nil {
		enc = s.encoded(enc)
	}
	return Vector{
		Name: s.name, Description: s.desc, VerifyAt: VectorVerifyAt,
		Nonce: proto.GPUNonce(VectorBundleNonce, 0), Rules: rules, Want: s.want, Evidence: enc,
	}, nil
}

// Manifest returns manifest.json for vs.
func Manifest(vs []Vector) ([]byte, error) {
	es := make([]ManifestEntry, 0, len(vs))
	for _, v := range vs {
		es = append(es, ManifestEntry{
			Name: v.Name, File: v.Name + FileSuffix, VerifyAt: v.VerifyAt.UTC().Format(time.RFC3339),
			Nonce: hex.EncodeToString(v.Nonce[:]), GPURules: v.Rules, Roots: RootsFixture,
			Want: v.Want, Description: v.Description,
		})
	}
	out, err := json.MarshalIndent(es, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// RootPEMs returns the fixture device root and RIM root, PEM.
func RootPEMs() (device, rimRoot []byte, err error) {
	pki, err := NewPKI(VectorSeed, VectorPKIFrom)
	if err != nil {
		return nil, nil, err
	}
	enc := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
	return enc(pki.Root.Cert.Raw), enc(pki.RIMRoot.Cert.Raw), nil
}

// Provenance returns PROVENANCE.md for vs.
func Provenance(vs []Vector) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Provenance of testvectors/attestation/nvgpu\n\n")
	fmt.Fprintf(&b, "Every file here is written by `scripts/gen-nvgpu-vectors` (which runs `scripts/gennvgpu`, built on `attestation/nvgpu/nvgputest`); `go test ./attestation/nvgpu` regenerates them in memory and fails if a byte differs. **All of it is generated by us**: synthetic GPU evidence (SPDM 1.1 GET_MEASUREMENTS request and signed response, P-384 device certificate chain, OCSP responses, driver and VBIOS RIMs signed with XML-DSig through `attestation/nvgpu/rim/rimtest`) under fixture keys derived from the seed %q, named \"sealgate nvgputest\", not NVIDIA's: it verifies only under the fixture roots. Each vector is GPU 0 of a bundle whose nonce derives from a time anchor signed by the fixture anchor key of `attestation/anchortest` (seed %q) at %s, so its report must carry `proto.GPUNonce(that nonce, 0)`; `testvectors/attestation/gpu/` wraps each into a whole TDX bundle. The recorded NVIDIA H100 evidence is not copied here: tests read it from `../shared/fixtures/nvidia` when that folder exists.\n\n", VectorSeed, anchortest.Seed, VectorVerifyAt.Add(-time.Minute).Format(time.RFC3339))
	fmt.Fprintf(&b, "| file | what it is | where it came from | regenerate with |\n| --- | --- | --- | --- |\n")
	line := func(file, what, from string) {
		fmt.Fprintf(&b, "| `%s` | %s | %s | `scripts/gen-nvgpu-vectors` |\n", file, what, from)
	}
	line("manifest.json", "every vector with its GPU rules, nonce, verification time, roots and expected verdict", "generated by us from the vector list in attestation/nvgpu/nvgputest/vectors.go")
	line(DeviceRootFile, "the fixture device identity root CA the vectors' device chains end at", fmt.Sprintf("generated by us: nvgputest fixture PKI seed %q", VectorSeed))
	line(RIMRootFile, "the fixture RIM root CA that signs the vectors' RIM signing chains", fmt.Sprintf("generated by us: nvgputest fixture PKI seed %q", VectorSeed))
	line("PROVENANCE.md", "this file", "generated by us")
	for _, v := range vs {
		seed := VectorSeed
		if v.Name == "unpinned-root" {
			seed = otherRootSeed
		}
		line(v.Name+FileSuffix, "GPU evidence (nvgpu.Evidence encoding): "+v.Description, fmt.Sprintf("synthetic, generated by us: nvgputest fixture PKI seed %q, vector %q", seed, v.Name))
	}
	return b.Bytes()
}
