package nvgpu_test

import (
	"testing"

	"github.com/sealgate/sealgate/attestation/nvgpu"
)

// BenchmarkVerify is a cold verification of the valid synthetic GPU
// evidence: evidence and report parse, the device chain to the fixture
// root, three OCSP responses, the report signature, the nonce, both RIMs
// (XML-DSig, their chains and OCSP) and the comparison of every golden
// measurement; nothing cached.
func BenchmarkVerify(b *testing.B) {
	v := validVector(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nvgpu.Verify(v.evidence, v.opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAndValidate adds Validate under the vector's rules: the
// whole per-GPU verdict.
func BenchmarkVerifyAndValidate(b *testing.B) {
	v := validVector(b)
	rules := v.GPURules
	b.ReportAllocs()
	for b.Loop() {
		if _, err := verdict(v.evidence, &rules, v.opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRecorded verifies the recorded H100 evidence (NVIDIA's
// chain and RIMs, device OCSP responses) at a time its device OCSP
// responses are current.
func BenchmarkVerifyRecorded(b *testing.B) {
	ev := encode(b, recordedEvidence(b, true, false))
	opts := nvgpu.Options{Now: deviceOCSPAt, Nonce: recordedNonce}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nvgpu.Verify(ev, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseReport parses the valid synthetic report.
func BenchmarkParseReport(b *testing.B) {
	raw, _ := syntheticReport(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nvgpu.ParseReport(raw); err != nil {
			b.Fatal(err)
		}
	}
}
