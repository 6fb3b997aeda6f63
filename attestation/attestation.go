// Package attestation verifies worker evidence bundles (proto.Bundle)
// against a policy and returns a Verified value that the client and the
// gateway route on. Verified has unexported fields: the only way to get one
// is Verify, so nothing can route on evidence nobody checked.
//
// Verification follows go-sev-guest's split: each TEE kind's package parses
// its raw report and checks signatures, chains, revocation and collateral
// (attestation/tdx, attestation/snp, and the INSECURE attestation/sim);
// this package checks the REPORT_DATA binding of the bundle's keys (with
// the model digests they carry, proto/SPEC.md §10.3), GPU evidence and
// nonce, validates the verified fields against the policy (package
// policy, whose models rules pin those digests), verifies each GPU's
// evidence (attestation/nvgpu) when the policy has GPU rules, and judges
// freshness: from the simulated
// report's own time, or for hardware kinds from the bundle's time anchor,
// signed by a key the caller pins (see proto/SPEC.md §10.1). Time and
// trusted roots are injected through Options; nothing here reads the wall
// clock or the network.
//
// Every failure is an *Error with a stable Code and the field, the value
// found and the value wanted.
package attestation

import (
	"bytes"
	"crypto/ed25519"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/attestation/snp"
	"github.com/sealgate/sealgate/attestation/tdx"
	"github.com/sealgate/sealgate/proto"
)

// Code classifies a verification failure; see package check.
type Code = check.Code

// Failure classes, re-exported from package check.
const (
	CodeMalformed         = check.CodeMalformed
	CodeUnknownKind       = check.CodeUnknownKind
	CodeSignature         = check.CodeSignature
	CodeChain             = check.CodeChain
	CodeRevoked           = check.CodeRevoked
	CodeCollateralExpired = check.CodeCollateralExpired
	CodePolicy            = check.CodePolicy
	CodeBinding           = check.CodeBinding
	CodeStale             = check.CodeStale
	CodeOptions           = check.CodeOptions
)

// Error is a verification failure; see package check.
type Error = check.Error

// CodeOf returns the Code of err, or "" if err is not an *Error.
func CodeOf(err error) Code { return check.CodeOf(err) }

// Options inject what verification depends on.
type Options struct {
	// Now is the time at which evidence is judged. Required: the zero time
	// is an error, so no caller verifies at the wall clock by accident.
	Now time.Time
	// MaxSkew is how far evidence time may lie in the future of Now. Zero
	// means 1 minute.
	MaxSkew time.Duration
	// SimRoot pins the simulated TEE's root. Nil means sim.RootPublicKey();
	// tests inject other roots to prove a wrong root is refused.
	SimRoot ed25519.PublicKey
	// AnchorKeys pins the signers of time anchors (today the gateway's
	// anchor key, later the transparency log's). Hardware evidence carries
	// no time of its own, so without a pinned key it cannot be judged
	// fresh and is refused. The simulated kind does not use anchors.
	AnchorKeys []ed25519.PublicKey
	// Nonce, when set, is the nonce the caller asked the worker to bind
	// (strict mode: the client's own nonce). The bundle must carry exactly
	// it, and evidence without a time anchor is judged made at Now, since
	// the caller chose the nonce just before. Nil means the nonce is not
	// checked here and hardware evidence needs an anchor.
	Nonce *[proto.NonceSize]byte
	// TDXRoots pins the Intel roots of TDX PCK and collateral chains. Nil
	// means the Intel SGX Root CA (tdx.IntelRoots). Only tests set it, to
	// fixture roots; no production path accepts another root.
	TDXRoots *x509.CertPool
	// SNPRoots pins the AMD root keys (ARKs) by product line. Nil means
	// the ARKs go-sev-guest embeds (snp.AMDRoots). Only tests set it.
	SNPRoots snp.Roots
	// GPURoots and RIMRoots pin the NVIDIA device identity root and the
	// RIM signing root. Nil means NVIDIA's (nvgpu.DeviceRoots and the root
	// package rim pins). Only tests set them.
	GPURoots *x509.CertPool
	RIMRoots *x509.CertPool
	// Audit, when not nil, receives a record of every check and its
	// result.
	Audit *Audit
}

// Verified is evidence that passed Verify under one policy at one time.
type Verified struct {
	kind         string
	bundleHash   [32]byte
	bundle       []byte
	keys         proto.WorkerKeys
	nonce        [proto.NonceSize]byte
	measurement  []byte
	evidenceTime time.Time
	expires      time.Time
	policyName   string
	policyHash   [32]byte
}

// Kind returns the TEE kind, such as "sim" or "tdx".
func (v *Verified) Kind() string { return v.kind }

// Simulated reports whether the evidence came from the INSECURE simulated
// TEE.
func (v *Verified) Simulated() bool { return v.kind == policy.KindSim }

// BundleHash returns SHA-256 of the encoded bundle.
func (v *Verified) BundleHash() [32]byte { return v.bundleHash }

// Bundle returns a copy of the encoded bundle.
func (v *Verified) Bundle() []byte { return bytes.Clone(v.bundle) }

// HPKEKeys returns the worker's verified HPKE public keys.
func (v *Verified) HPKEKeys() []proto.HPKEKey { return slices.Clone(v.keys.HPKE) }

// HPKEKey returns the worker's verified key for kem.
func (v *Verified) HPKEKey(kem uint16) (proto.HPKEKey, bool) {
	for _, k := range v.keys.HPKE {
		if k.KEM == kem {
			return k, true
		}
	}
	return proto.HPKEKey{}, false
}

// Suites returns the supported suites the worker has keys for, strongest
// first.
func (v *Verified) Suites() []proto.Suite {
	var out []proto.Suite
	for _, s := range proto.Suites() {
		if _, ok := v.HPKEKey(s.KEM); ok {
			out = append(out, s)
		}
	}
	return out
}

// SigningKey returns the worker's verified Ed25519 receipt key.
func (v *Verified) SigningKey() ed25519.PublicKey { return bytes.Clone(v.keys.Signing) }

// Models returns the models the worker serves and their digests, as its
// evidence binds them (sorted by name), or nil when it binds none. A
// policy with models rules has checked every one of them.
func (v *Verified) Models() []proto.ModelDigest { return slices.Clone(v.keys.Models) }

// ModelDigest returns the digest the evidence binds for the model named
// name. An end event naming that model should carry the same digest
// (proto.EndBody.ModelDigest).
func (v *Verified) ModelDigest(name string) ([32]byte, bool) {
	for _, m := range v.keys.Models {
		if m.Name == name {
			return m.SHA256, true
		}
	}
	return [32]byte{}, false
}

// Measurement returns the measured guest identity (MRTD, SNP MEASUREMENT or
// the simulated measurement).
func (v *Verified) Measurement() []byte { return bytes.Clone(v.measurement) }

// EvidenceTime returns the time the evidence is judged to have been made.
func (v *Verified) EvidenceTime() time.Time { return v.evidenceTime }

// Expires returns when the verdict stops holding: evidence time plus the
// policy's maximum evidence age.
func (v *Verified) Expires() time.Time { return v.expires }

// PolicyName and PolicyHash name the policy the evidence passed.
func (v *Verified) PolicyName() string   { return v.policyName }
func (v *Verified) PolicyHash() [32]byte { return v.policyHash }

// Nonce returns the nonce the evidence was made for.
func (v *Verified) Nonce() [proto.NonceSize]byte { return v.nonce }

// Verify checks an encoded evidence bundle against p at opts.Now.
//
// The checks run in a fixed order: the bundle parses; the policy accepts
// its kind; the kind's verifier checks the report's signatures, chains,
// revocation and collateral (a failure here ends verification, since
// nothing in the report can be trusted); then REPORT_DATA must bind the
// bundle's keys, GPU evidence and nonce; then the policy validates the
// verified fields; then the evidence must be fresh. The first failure is
// returned; with opts.Audit set, the checks after a binding, policy or
// freshness failure still run and are recorded, so an audit shows every
// verdict.
func Verify(encoded []byte, p *policy.Policy, opts Options) (*Verified, error) {
	rec := recorder{audit: opts.Audit}
	v, err := verify(encoded, p, opts, &rec)
	rec.finish(err)
	return v, err
}

// kindResult is what a kind's verifier vouches for.
type kindResult struct {
	reportData  [proto.ReportDataSize]byte
	measurement []byte
	// reportTime is a time the report itself carries and its signer
	// vouches for (only the simulated kind has one); zero means the
	// evidence time comes from the bundle's anchor.
	reportTime time.Time
	// nextUpdate is the earliest expiry of any collateral relied on; zero
	// means none.
	nextUpdate time.Time
	// validate applies the kind's policy rules to the verified fields.
	validate func() error
}

func verify(encoded []byte, p *policy.Policy, opts Options, rec *recorder) (*Verified, error) {
	if opts.Now.IsZero() {
		return nil, rec.step("options", &Error{Code: CodeOptions, Field: "now", Found: "zero time", Want: "the time to verify at"})
	}
	if p == nil {
		return nil, rec.step("options", &Error{Code: CodeOptions, Field: "policy", Found: "nil", Want: "a policy"})
	}
	if err := p.Validate(); err != nil {
		return nil, rec.step("options", &Error{Code: CodeOptions, Field: "policy", Err: err})
	}
	if opts.MaxSkew == 0 {
		opts.MaxSkew = time.Minute
	}
	b, err := proto.ParseBundle(encoded)
	if err != nil {
		return nil, rec.step("bundle", &Error{Code: CodeMalformed, Field: "bundle", Err: err})
	}
	rec.kind(b.Kind)
	rec.step("bundle", nil)
	if err := rec.step("tee kind", acceptKind(b.Kind, p)); err != nil {
		return nil, err
	}
	var res *kindResult
	switch b.Kind {
	case policy.KindSim:
		res, err = verifySim(b, p, opts)
	case policy.KindTDX:
		res, err = verifyTDX(b, p, opts)
	case policy.KindSNP:
		res, err = verifySNP(b, p, opts)
	default:
		err = &Error{Code: CodeUnknownKind, Field: "kind", Found: fmt.Sprintf("%q", b.Kind), Want: "a kind this verifier knows"}
	}
	if err := rec.step(b.Kind+" report", err); err != nil {
		return nil, err
	}

	firstErr := rec.step("report_data binding", checkBinding(b, res.reportData))
	if opts.Nonce != nil {
		if err := rec.step("nonce", checkNonce(b, *opts.Nonce)); firstErr == nil {
			firstErr = err
		}
	}
	policyErr := res.validate()
	if policyErr == nil {
		policyErr = checkModels(b, p)
	}
	if err := rec.step("policy", policyErr); firstErr == nil {
		firstErr = err
	}
	gpuNext, gpuErr := checkGPU(b, p, opts)
	if err := rec.step("gpu evidence", gpuErr); firstErr == nil {
		firstErr = err
	}
	if !gpuNext.IsZero() && (res.nextUpdate.IsZero() || gpuNext.Before(res.nextUpdate)) {
		res.nextUpdate = gpuNext
	}
	evidenceTime := res.reportTime
	freshErr := error(nil)
	switch {
	case !evidenceTime.IsZero():
	case opts.Nonce != nil && len(b.Anchor) == 0:
		// The caller's own nonce: the evidence is no older than the
		// request for it, and checkNonce has matched it.
		evidenceTime = opts.Now
	default:
		evidenceTime, freshErr = anchorTime(b, opts.AnchorKeys)
	}
	if freshErr == nil {
		freshErr = checkAge(evidenceTime, p, opts)
	}
	if err := rec.step("freshness", freshErr); firstErr == nil {
		firstErr = err
	}
	if firstErr != nil {
		return nil, firstErr
	}
	expires := evidenceTime.Add(p.MaxEvidenceAge.Duration)
	if !res.nextUpdate.IsZero() && res.nextUpdate.Before(expires) {
		expires = res.nextUpdate
	}
	return &Verified{
		kind: b.Kind, measurement: res.measurement, evidenceTime: evidenceTime, expires: expires,
		bundle: bytes.Clone(encoded), bundleHash: proto.BundleHash(encoded),
		keys: b.Keys, nonce: b.Nonce, policyName: p.Name, policyHash: p.Hash(),
	}, nil
}

// checkNonce checks the bundle binds the nonce the caller asked for.
func checkNonce(b *proto.Bundle, want [proto.NonceSize]byte) error {
	if subtle.ConstantTimeCompare(b.Nonce[:], want[:]) != 1 {
		return &Error{Code: CodeBinding, Field: "nonce", Found: hex.EncodeToString(b.Nonce[:8]) + "…", Want: hex.EncodeToString(want[:8]) + "… (the nonce the verifier asked for)"}
	}
	return nil
}

// acceptKind checks the policy accepts kind at all.
func acceptKind(kind string, p *policy.Policy) error {
	switch {
	case kind == policy.KindSim && !p.AllowSimulated:
		return &Error{Code: CodePolicy, Field: "allow_simulated", Found: "simulated TEE evidence", Want: fmt.Sprintf("one of %v (policy %q does not allow simulated evidence)", p.TEEKinds, p.Name)}
	case p.Accepts(kind):
		return nil
	case slices.Contains(policy.Kinds(), kind):
		return &Error{Code: CodePolicy, Field: "tee_kinds", Found: fmt.Sprintf("%q", kind), Want: fmt.Sprintf("one of %v", p.TEEKinds)}
	}
	return &Error{Code: CodeUnknownKind, Field: "kind", Found: fmt.Sprintf("%q", kind), Want: fmt.Sprintf("one of %v", policy.Kinds())}
}

func verifySim(b *proto.Bundle, p *policy.Policy, opts Options) (*kindResult, error) {
	root := opts.SimRoot
	if root == nil {
		root = sim.RootPublicKey()
	}
	r, err := sim.Verify(b.Report, root)
	if errors.Is(err, sim.ErrSignature) {
		return nil, &Error{Code: CodeSignature, Field: "report signature", Err: err}
	}
	if err != nil {
		return nil, &Error{Code: CodeMalformed, Field: "report", Err: err}
	}
	return &kindResult{
		reportData: r.ReportData, measurement: r.Measurement[:], reportTime: r.Timestamp,
		validate: func() error {
			if r.Debug && !p.Sim.AllowDebug {
				return &Error{Code: CodePolicy, Field: "debug", Found: "true", Want: "false"}
			}
			if len(p.Sim.Measurements) > 0 && !slices.Contains(p.Sim.Measurements, hex.EncodeToString(r.Measurement[:])) {
				return &Error{Code: CodePolicy, Field: "measurement", Found: hex.EncodeToString(r.Measurement[:]), Want: fmt.Sprintf("one of %v", p.Sim.Measurements)}
			}
			return nil
		},
	}, nil
}

func verifyTDX(b *proto.Bundle, p *policy.Policy, opts Options) (*kindResult, error) {
	c, err := tdx.Verify(b.Report, b.Collateral, tdx.Options{Now: opts.Now, Roots: opts.TDXRoots})
	if err != nil {
		return nil, err
	}
	return &kindResult{
		reportData: c.ReportData, measurement: c.MRTD[:], nextUpdate: c.NextUpdate,
		validate: func() error { return tdx.Validate(c, p.TDX) },
	}, nil
}

func verifySNP(b *proto.Bundle, p *policy.Policy, opts Options) (*kindResult, error) {
	c, err := snp.Verify(b.Report, b.Collateral, snp.Options{Now: opts.Now, Roots: opts.SNPRoots})
	if err != nil {
		return nil, err
	}
	return &kindResult{
		reportData: c.ReportData, measurement: c.Measurement[:], nextUpdate: c.NextUpdate,
		validate: func() error { return snp.Validate(c, p.SNP) },
	}, nil
}

// checkGPU verifies every GPU's evidence when the policy has GPU rules:
// GPU i's report must carry proto.GPUNonce(bundle nonce, i), its chain and
// RIMs must verify, and its fields must pass the rules. With require_gpu a
// bundle without GPU evidence is refused. Without GPU rules the evidence
// (still bound by REPORT_DATA) is not examined. It returns the earliest
// next update of the GPU collateral used.
func checkGPU(b *proto.Bundle, p *policy.Policy, opts Options) (time.Time, error) {
	if p.RequireGPU && len(b.GPU) == 0 {
		return time.Time{}, &Error{Code: CodePolicy, Field: "gpu evidence", Found: "none", Want: "GPU evidence (policy has require_gpu)"}
	}
	if p.GPU == nil {
		return time.Time{}, nil
	}
	var next time.Time
	for i, g := range b.GPU {
		c, err := nvgpu.Verify(g, nvgpu.Options{
			Now: opts.Now, DeviceRoots: opts.GPURoots, RIMRoots: opts.RIMRoots,
			Nonce: proto.GPUNonce(b.Nonce, i), RequireOCSP: p.GPU.OCSPRequired(),
		})
		if err == nil {
			err = nvgpu.Validate(c, p.GPU)
		}
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				e2 := *e
				e2.Field = fmt.Sprintf("gpu[%d] %s", i, e.Field)
				return time.Time{}, &e2
			}
			return time.Time{}, err
		}
		if next.IsZero() || c.NextUpdate.Before(next) {
			next = c.NextUpdate
		}
	}
	return next, nil
}

// checkModels applies the policy's models rules: the bundle must bind
// at least one model, and every model it binds must have an allowed
// digest.
func checkModels(b *proto.Bundle, p *policy.Policy) error {
	if p.Models == nil {
		return nil
	}
	if len(b.Keys.Models) == 0 {
		return &Error{Code: CodePolicy, Field: "models", Found: "no model digest", Want: fmt.Sprintf("models with digests among %v", p.Models.AllowedDigests)}
	}
	for _, m := range b.Keys.Models {
		if !p.Models.Allows(m.SHA256) {
			return &Error{Code: CodePolicy, Field: "models.allowed_digests", Found: fmt.Sprintf("model %q with digest %s", m.Name, proto.FormatModelDigest(m.SHA256)), Want: fmt.Sprintf("one of %v", p.Models.AllowedDigests)}
		}
	}
	return nil
}

func checkBinding(b *proto.Bundle, reportData [proto.ReportDataSize]byte) error {
	want := b.ReportData()
	if subtle.ConstantTimeCompare(want[:], reportData[:]) != 1 {
		return &Error{Code: CodeBinding, Field: "report_data", Found: hex.EncodeToString(reportData[:8]) + "…", Want: hex.EncodeToString(want[:8]) + "… (the hash of the bundle's keys, gpu evidence and nonce)"}
	}
	return nil
}

func checkAge(t time.Time, p *policy.Policy, opts Options) error {
	age := opts.Now.Sub(t)
	if age > p.MaxEvidenceAge.Duration {
		return &Error{Code: CodeStale, Field: "evidence age", Found: age.Round(time.Second).String(), Want: "at most " + p.MaxEvidenceAge.Duration.String()}
	}
	if -age > opts.MaxSkew {
		return &Error{Code: CodeStale, Field: "evidence time", Found: t.UTC().Format(time.RFC3339), Want: "not after " + opts.Now.Add(opts.MaxSkew).UTC().Format(time.RFC3339)}
	}
	return nil
}
