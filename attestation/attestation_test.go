package attestation

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// bundleOpts says how a test bundle differs from a valid one.
type bundleOpts struct {
	kind        string
	device      sim.DeviceConfig
	swapKey     bool // report binds other keys than the bundle lists
	swapNonce   bool // report binds another nonce
	corruptSig  bool
	badReport   []byte
	measurement [48]byte
	models      []proto.ModelDigest
	swapModel   bool // the bundle lists another digest than the report binds
}

func makeBundle(t testing.TB, o bundleOpts) []byte {
	t.Helper()
	var b proto.Bundle
	b.Kind = "sim"
	if o.kind != "" {
		b.Kind = o.kind
	}
	rand.Read(b.Nonce[:])
	for _, s := range proto.Suites() {
		k, err := seal.GenerateKey(s.KEM)
		if err != nil {
			t.Fatal(err)
		}
		b.Keys.HPKE = append(b.Keys.HPKE, k.Public())
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	b.Keys.Signing = pub
	b.Keys.Models = o.models
	rd := b.ReportData()
	if o.device.Now == nil {
		o.device.Now = func() time.Time { return t0 }
	}
	o.device.Measurement = o.measurement
	b.Report = sim.NewDevice(o.device).Report(rd)
	if o.swapKey {
		k, _ := seal.GenerateKey(proto.KEMX25519)
		b.Keys.HPKE[1] = k.Public()
	}
	if o.swapNonce {
		b.Nonce[0] ^= 1
	}
	if o.swapModel {
		b.Keys.Models = append([]proto.ModelDigest{}, b.Keys.Models...)
		b.Keys.Models[0].SHA256[0] ^= 1
	}
	if o.corruptSig {
		b.Report[len(b.Report)-1] ^= 1
	}
	if o.badReport != nil {
		b.Report = o.badReport
	}
	enc, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func TestVerifyAcceptsValidSimulated(t *testing.T) {
	enc := makeBundle(t, bundleOpts{})
	p := policy.InsecureSimulated()
	v, err := Verify(enc, p, Options{Now: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind() != "sim" || !v.Simulated() || v.PolicyName() != p.Name || v.PolicyHash() != p.Hash() {
		t.Fatalf("verified fields: %s %v %s", v.Kind(), v.Simulated(), v.PolicyName())
	}
	if v.BundleHash() != proto.BundleHash(enc) || !v.EvidenceTime().Equal(t0) || !v.Expires().Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("hash/time fields wrong: %v %v", v.EvidenceTime(), v.Expires())
	}
	if len(v.Suites()) != 2 || v.Suites()[0] != proto.SuiteMLKEM768X25519 {
		t.Fatalf("suites %v", v.Suites())
	}
}

func TestVerifyRejects(t *testing.T) {
	otherRoot, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	measured := [48]byte{1, 2, 3}
	pinned := policy.InsecureSimulated()
	pinned.Sim.Measurements = []string{strings.Repeat("ab", 48)}
	debugOK := policy.InsecureSimulated()
	debugOK.Sim.AllowDebug = true

	tests := []struct {
		name     string
		bundle   bundleOpts
		policy   *policy.Policy
		now      time.Time
		opts     Options
		wantCode Code
		wantSub  string
	}{
		{name: "simulated under default policy", policy: policy.Default(), wantCode: CodePolicy, wantSub: "allow_simulated"},
		{name: "bad signature", bundle: bundleOpts{corruptSig: true}, wantCode: CodeSignature},
		{name: "wrong root", bundle: bundleOpts{device: sim.DeviceConfig{SigningKey: otherPriv}}, wantCode: CodeSignature},
		{name: "pinned root differs", opts: Options{SimRoot: otherRoot}, wantCode: CodeSignature},
		{name: "bound key differs from listed key", bundle: bundleOpts{swapKey: true}, wantCode: CodeBinding, wantSub: "report_data"},
		{name: "nonce differs", bundle: bundleOpts{swapNonce: true}, wantCode: CodeBinding},
		{name: "debug", bundle: bundleOpts{device: sim.DeviceConfig{Debug: true}}, wantCode: CodePolicy, wantSub: "debug"},
		{name: "measurement not allowed", bundle: bundleOpts{measurement: measured}, policy: pinned, wantCode: CodePolicy, wantSub: "measurement"},
		{name: "too old", now: t0.Add(16 * time.Minute), wantCode: CodeStale, wantSub: "evidence age"},
		{name: "from the future", now: t0.Add(-2 * time.Minute), wantCode: CodeStale, wantSub: "evidence time"},
		{name: "truncated report", bundle: bundleOpts{badReport: []byte("SGSIM")}, wantCode: CodeMalformed},
		{name: "unknown kind", bundle: bundleOpts{kind: "qux"}, wantCode: CodeUnknownKind},
		{name: "zero time", now: time.Time{}, opts: Options{}, wantCode: CodeOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := makeBundle(t, tt.bundle)
			p := tt.policy
			if p == nil {
				p = policy.InsecureSimulated()
			}
			opts := tt.opts
			opts.Now = tt.now
			if tt.now.IsZero() && tt.wantCode != CodeOptions {
				opts.Now = t0.Add(time.Minute)
			}
			v, err := Verify(enc, p, opts)
			if err == nil {
				t.Fatalf("verified %v, want %s error", v.Kind(), tt.wantCode)
			}
			if CodeOf(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantSub) {
				t.Fatalf("err = %v (code %q), want code %q containing %q", err, CodeOf(err), tt.wantCode, tt.wantSub)
			}
		})
	}
	// The same debug bundle passes when the policy allows debug, so the
	// debug case above fails for the debug flag alone.
	enc := makeBundle(t, bundleOpts{device: sim.DeviceConfig{Debug: true}})
	if _, err := Verify(enc, debugOK, Options{Now: t0}); err != nil {
		t.Fatalf("debug allowed: %v", err)
	}
}

func TestVerifyRejectsMalformedBundle(t *testing.T) {
	enc := makeBundle(t, bundleOpts{})
	for _, bad := range [][]byte{nil, enc[:10], append(append([]byte{}, enc...), 0)} {
		if _, err := Verify(bad, policy.InsecureSimulated(), Options{Now: t0}); CodeOf(err) != CodeMalformed {
			t.Fatalf("err = %v, want malformed", err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	fuzzseed.Add(f, makeBundle(f, bundleOpts{}))
	fuzzseed.Add(f, []byte("SGEB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Verify(b, policy.InsecureSimulated(), Options{Now: t0})
		if err == nil && v == nil {
			t.Fatal("nil verified without error")
		}
		if err != nil && CodeOf(err) == "" {
			t.Fatalf("error without a code: %v", err)
		}
	})
}

func TestAuditRecordsEveryVerdict(t *testing.T) {
	enc := makeBundle(t, bundleOpts{swapKey: true, device: sim.DeviceConfig{Debug: true}})
	var audit Audit
	_, err := Verify(enc, policy.InsecureSimulated(), Options{Now: t0.Add(time.Hour), Audit: &audit})
	if CodeOf(err) != CodeBinding {
		t.Fatalf("err = %v, want the binding failure first", err)
	}
	want := []struct {
		check string
		code  Code
	}{{"bundle", ""}, {"tee kind", ""}, {"sim report", ""}, {"report_data binding", CodeBinding}, {"policy", CodePolicy}, {"gpu evidence", ""}, {"freshness", CodeStale}}
	if len(audit.Steps) != len(want) || audit.OK || audit.Code != CodeBinding || audit.Kind != "sim" {
		t.Fatalf("audit %+v", audit)
	}
	for i, w := range want {
		if s := audit.Steps[i]; s.Check != w.check || s.Code != w.code || s.OK != (w.code == "") {
			t.Errorf("step %d = %+v, want %s %q", i, s, w.check, w.code)
		}
	}
}

func TestHardwareKindsNeedAnAnchor(t *testing.T) {
	p := &policy.Policy{Version: 1, Name: "tdx-only", TEEKinds: []string{"tdx"}, MaxEvidenceAge: policy.Duration{Duration: time.Minute}, TDX: &policy.TDXRules{AnyMeasurement: true}}
	enc := makeBundle(t, bundleOpts{})
	if _, err := Verify(enc, p, Options{Now: t0}); CodeOf(err) != CodePolicy || !strings.Contains(err.Error(), "allow_simulated") {
		t.Fatalf("sim bundle under a tdx-only policy: %v", err)
	}
	b := &proto.Bundle{Kind: "sim"}
	if _, err := anchorTime(b, nil); CodeOf(err) != CodeStale || !strings.Contains(err.Error(), "anchor") {
		t.Fatalf("no anchor: %v", err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	anchor, err := SignAnchor(key, [32]byte{1}, t0)
	if err != nil {
		t.Fatal(err)
	}
	b.Anchor = anchor
	if _, err := anchorTime(b, nil); CodeOf(err) != CodeStale || !strings.Contains(err.Error(), "anchor key") {
		t.Fatalf("no pinned key: %v", err)
	}
	if _, err := anchorTime(b, []ed25519.PublicKey{other}); CodeOf(err) != CodeStale || !strings.Contains(err.Error(), "anchor key id") {
		t.Fatalf("unpinned signer: %v", err)
	}
	if at, err := anchorTime(b, []ed25519.PublicKey{other, pub}); err != nil || !at.Equal(t0) {
		t.Fatalf("pinned signer: %v %v", at, err)
	}
	b.Anchor[len(b.Anchor)-1] ^= 1
	if _, err := anchorTime(b, []ed25519.PublicKey{pub}); CodeOf(err) != CodeSignature {
		t.Fatalf("forged anchor: %v", err)
	}
}

func TestRequireGPU(t *testing.T) {
	p := policy.InsecureSimulated()
	p.RequireGPU, p.GPU = true, &policy.GPURules{}
	enc := makeBundle(t, bundleOpts{})
	if _, err := Verify(enc, p, Options{Now: t0}); CodeOf(err) != CodePolicy || !strings.Contains(err.Error(), "gpu evidence: found none") {
		t.Fatalf("err = %v, want a policy refusal for missing gpu evidence", err)
	}
}

func TestVerifyChecksCallersNonce(t *testing.T) {
	p := policy.InsecureSimulated()
	enc := makeBundle(t, bundleOpts{})
	b, err := proto.ParseBundle(enc)
	if err != nil {
		t.Fatal(err)
	}
	want := b.Nonce
	if _, err := Verify(enc, p, Options{Now: t0, Nonce: &want}); err != nil {
		t.Fatalf("bundle with the asked-for nonce: %v", err)
	}
	other := want
	other[31] ^= 1
	_, err = Verify(enc, p, Options{Now: t0, Nonce: &other})
	if CodeOf(err) != CodeBinding || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("bundle with another nonce: got %v, want a binding failure naming the nonce", err)
	}
	var audit Audit
	Verify(enc, p, Options{Now: t0, Nonce: &other, Audit: &audit})
	found := false
	for _, s := range audit.Steps {
		if s.Check == "nonce" && s.Code == CodeBinding {
			found = true
		}
	}
	if !found {
		t.Fatalf("audit does not record the nonce check: %+v", audit.Steps)
	}
}

func TestVerifyModels(t *testing.T) {
	llama := proto.ModelDigest{Name: "llama3.1:8b", SHA256: [32]byte{1}}
	qwen := proto.ModelDigest{Name: "qwen2.5:7b", SHA256: [32]byte{2}}
	pinned := func(digests ...[32]byte) *policy.Policy {
		p := policy.InsecureSimulated()
		p.Models = &policy.ModelRules{}
		for _, d := range digests {
			p.Models.AllowedDigests = append(p.Models.AllowedDigests, proto.FormatModelDigest(d))
		}
		return p
	}
	tests := []struct {
		name    string
		bundle  bundleOpts
		policy  *policy.Policy
		wantErr string // empty: verifies
	}{
		{name: "no rules, no models", policy: policy.InsecureSimulated()},
		{name: "no rules, models", bundle: bundleOpts{models: []proto.ModelDigest{llama}}, policy: policy.InsecureSimulated()},
		{name: "pinned model", bundle: bundleOpts{models: []proto.ModelDigest{llama}}, policy: pinned(llama.SHA256)},
		{name: "both models pinned", bundle: bundleOpts{models: []proto.ModelDigest{llama, qwen}}, policy: pinned(qwen.SHA256, llama.SHA256)},
		{name: "rules, no models", policy: pinned(llama.SHA256), wantErr: "policy: models: found no model digest"},
		{name: "digest not allowed", bundle: bundleOpts{models: []proto.ModelDigest{llama}}, policy: pinned(qwen.SHA256), wantErr: `models.allowed_digests: found model "llama3.1:8b" with digest sha256:01`},
		{name: "one of two not allowed", bundle: bundleOpts{models: []proto.ModelDigest{llama, qwen}}, policy: pinned(llama.SHA256), wantErr: `found model "qwen2.5:7b"`},
		{name: "listed digest not the bound one", bundle: bundleOpts{models: []proto.ModelDigest{llama}, swapModel: true}, policy: policy.InsecureSimulated(), wantErr: "binding: report_data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Verify(makeBundle(t, tt.bundle), tt.policy, Options{Now: t0})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := v.Models(); len(got) != len(tt.bundle.models) {
					t.Fatalf("Models() = %v, want %v", got, tt.bundle.models)
				}
				for _, m := range tt.bundle.models {
					if d, ok := v.ModelDigest(m.Name); !ok || d != m.SHA256 {
						t.Fatalf("ModelDigest(%q) = %x, %v", m.Name, d, ok)
					}
				}
				if _, ok := v.ModelDigest("another"); ok {
					t.Fatal("ModelDigest names a model the evidence does not bind")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
