// Package policy holds the attestation policy: versioned data, in a JSON
// file, that says which evidence a verifier accepts. A client, the gateway's
// admission check and an auditor each apply a Policy of their own.
//
// Parsing is strict: unknown fields, a missing or unknown version, and
// out-of-range values are errors, never defaults. Each field documents what
// its zero value means. The embedded Default policy accepts only hardware
// TEEs; the InsecureSimulated policy accepts the software-simulated TEE and
// is named insecure wherever it is used.
package policy

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// Version is the policy file version this package reads.
const Version = 1

// MaxFileSize bounds a policy file.
const MaxFileSize = 1 << 20

// Known TEE kinds.
const (
	KindSim = "sim"
	KindTDX = "tdx"
	KindSNP = "snp"
)

var knownKinds = []string{KindSim, KindTDX, KindSNP}

// Kinds lists the TEE kinds a policy may name.
func Kinds() []string { return slices.Clone(knownKinds) }

// Policy is one attestation policy.
type Policy struct {
	// Version must be 1.
	Version int `json:"version"`
	// Name identifies the policy in logs and audit records. Required.
	Name string `json:"name"`
	// TEEKinds lists the accepted TEE kinds. Required, non-empty.
	TEEKinds []string `json:"tee_kinds"`
	// AllowSimulated must be true for the "sim" kind to be accepted.
	// INSECURE: simulated evidence proves nothing about the worker.
	AllowSimulated bool `json:"allow_simulated"`
	// MaxEvidenceAge is how old evidence may be, as a Go duration string
	// ("15m"). Required, at least 1s.
	MaxEvidenceAge Duration `json:"max_evidence_age"`
	// RequireGPU refuses a bundle that carries no GPU evidence. False
	// accepts CPU-only workers. (Verifying the GPU evidence itself is the
	// job of attestation/nvgpu; until it lands, a policy with RequireGPU
	// refuses every bundle whose GPU evidence it cannot check.)
	RequireGPU bool `json:"require_gpu,omitempty"`
	// GPU holds the rules for GPU evidence; required when RequireGPU is
	// true.
	GPU *GPURules `json:"gpu,omitempty"`
	// MinHPKESuite is the weakest suite a client may seal with. Empty means
	// "mlkem768x25519-hkdfsha256-aes256gcm".
	MinHPKESuite string `json:"min_hpke_suite,omitempty"`
	// Sim holds the rules for simulated evidence.
	Sim SimRules `json:"sim"`
	// TDX holds the rules for Intel TDX evidence; required when TEEKinds
	// lists "tdx".
	TDX *TDXRules `json:"tdx,omitempty"`
	// SNP holds the rules for AMD SEV-SNP evidence; required when TEEKinds
	// lists "snp".
	SNP *SNPRules `json:"snp,omitempty"`
	// Models pins the models a worker may serve, by the digests its
	// evidence binds (proto/SPEC.md §10.3). Nil accepts any model, and
	// workers that bind none.
	Models *ModelRules `json:"models,omitempty"`
}

// ModelRules constrain the models a bundle binds (proto.WorkerKeys.Models).
type ModelRules struct {
	// AllowedDigests lists the accepted model digests, each "sha256:" and
	// 64 lowercase hex digits (proto.FormatModelDigest), each once.
	// Required and non-empty: a bundle passes only if it binds at least
	// one model and every model it binds has one of these digests. A
	// worker that binds no model (a builtin backend) is refused.
	AllowedDigests []string `json:"allowed_digests"`
}

// Allows reports whether digest is one of the allowed digests.
func (r *ModelRules) Allows(digest [32]byte) bool {
	return slices.Contains(r.AllowedDigests, proto.FormatModelDigest(digest))
}

func (r *ModelRules) validate() error {
	if len(r.AllowedDigests) == 0 {
		return fmt.Errorf("policy: models.allowed_digests: found none, want at least one digest (or no models rules, to accept any model)")
	}
	for i, d := range r.AllowedDigests {
		if _, err := proto.ParseModelDigest(d); err != nil {
			return fmt.Errorf("policy: models.allowed_digests[%d]: found %q, want \"sha256:\" and 64 lowercase hex digits", i, d)
		}
		if slices.Contains(r.AllowedDigests[:i], d) {
			return fmt.Errorf("policy: models.allowed_digests[%d]: found %q twice, want each digest once", i, d)
		}
	}
	return nil
}

// SimRules constrain simulated evidence.
type SimRules struct {
	// Measurements lists accepted 48-byte measurements in hex. Empty means
	// any measurement.
	Measurements []string `json:"measurements,omitempty"`
	// AllowDebug accepts reports with the debug flag set. False means
	// debug reports are refused.
	AllowDebug bool `json:"allow_debug,omitempty"`
}

// Duration is a time.Duration written as a Go duration string.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string such as "15m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: found %s, want a string such as \"15m\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: found %q, want a string such as \"15m\"", s)
	}
	d.Duration = v
	return nil
}

//go:embed default.json
var defaultJSON []byte

//go:embed insecure-simulated.json
var insecureSimulatedJSON []byte

// Default returns the production policy: hardware TEEs only.
func Default() *Policy { return mustParse(defaultJSON) }

// InsecureSimulated returns the development policy that accepts the
// simulated TEE. INSECURE: for demos and tests on machines without a TEE.
func InsecureSimulated() *Policy { return mustParse(insecureSimulatedJSON) }

func mustParse(b []byte) *Policy {
	p, err := Parse(b)
	if err != nil {
		panic("policy: embedded policy invalid: " + err.Error())
	}
	return p
}

// Parse reads a policy file strictly and validates it.
func Parse(data []byte) (*Policy, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("policy: file of %d bytes, want at most %d", len(data), MaxFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("policy: trailing data after the policy object")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate checks every field.
func (p *Policy) Validate() error {
	if p.Version != Version {
		return fmt.Errorf("policy: version: found %d, want %d", p.Version, Version)
	}
	if p.Name == "" {
		return fmt.Errorf("policy: name: found empty, want a name")
	}
	if len(p.TEEKinds) == 0 {
		return fmt.Errorf("policy: tee_kinds: found none, want at least one of %v", knownKinds)
	}
	for _, k := range p.TEEKinds {
		if !slices.Contains(knownKinds, k) {
			return fmt.Errorf("policy: tee_kinds: found %q, want one of %v", k, knownKinds)
		}
	}
	if slices.Contains(p.TEEKinds, KindSim) && !p.AllowSimulated {
		return fmt.Errorf("policy: tee_kinds: found %q with allow_simulated false, want allow_simulated true to accept simulated evidence", KindSim)
	}
	if p.MaxEvidenceAge.Duration < time.Second {
		return fmt.Errorf("policy: max_evidence_age: found %v, want at least 1s", p.MaxEvidenceAge.Duration)
	}
	if _, err := p.MinSuite(); err != nil {
		return fmt.Errorf("policy: min_hpke_suite: %v", err)
	}
	if p.RequireGPU && p.GPU == nil {
		return fmt.Errorf("policy: gpu: found none, want gpu rules since require_gpu is true")
	}
	if p.Accepts(KindTDX) && p.TDX == nil {
		return fmt.Errorf("policy: tdx: found none, want rules for the tdx kind listed in tee_kinds")
	}
	if p.TDX != nil {
		if err := p.TDX.validate(); err != nil {
			return err
		}
	}
	if p.Accepts(KindSNP) && p.SNP == nil {
		return fmt.Errorf("policy: snp: found none, want rules for the snp kind listed in tee_kinds")
	}
	if p.SNP != nil {
		if err := p.SNP.validate(); err != nil {
			return err
		}
	}
	if p.Models != nil {
		if err := p.Models.validate(); err != nil {
			return err
		}
	}
	for _, m := range p.Sim.Measurements {
		if b, err := hex.DecodeString(m); err != nil || len(b) != 48 {
			return fmt.Errorf("policy: sim.measurements: found %q, want 96 hex digits", m)
		}
	}
	return nil
}

// MinSuite returns the weakest acceptable HPKE suite.
func (p *Policy) MinSuite() (proto.Suite, error) {
	if p.MinHPKESuite == "" {
		return proto.SuiteMLKEM768X25519, nil
	}
	return proto.ParseSuite(p.MinHPKESuite)
}

// Accepts reports whether kind is among the policy's TEE kinds.
func (p *Policy) Accepts(kind string) bool { return slices.Contains(p.TEEKinds, kind) }

// Hash returns SHA-256 over the policy's canonical JSON encoding: the name
// under which verdicts are cached and admissions logged.
func (p *Policy) Hash() [32]byte {
	b, err := json.Marshal(p)
	if err != nil {
		panic("policy: marshal: " + err.Error())
	}
	return sha256.Sum256(b)
}
