package nvgpu_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu"
	"github.com/sealgate/sealgate/internal/fuzzseed"
)

// FuzzVerify feeds one GPU's evidence, whole, to Verify under the vectors'
// fixture roots, nonce and time: the evidence codec, the SPDM report, the
// certificate chain, the OCSP responses and both RIMs. It must never
// panic, every refusal carries a check code, and it may accept only
// evidence whose report transcript is one the fixture device signed for a
// vector:
// anything else that passes is a forgery. The valid vectors are the seeds
// (with a few of their corruptions); the committed corpus holds only the
// small ones, since the vectors are committed in testvectors/.
func FuzzVerify(f *testing.F) {
	valid := validVector(f)
	genuine, err := nvgpu.ParseEvidence(valid.evidence)
	if err != nil {
		f.Fatal(err)
	}
	opts := valid.opts
	// signed holds the report transcripts of the vectors Verify accepts
	// under opts: the fixture device signed them.
	var signed [][]byte
	for _, e := range readManifest(f) {
		v := loadVector(f, e)
		if e.Want.Code == "ok" || e.Want.Code == string(check.CodeMalformed) {
			fuzzseed.Add(f, v.evidence)
		}
		if _, err := nvgpu.Verify(v.evidence, opts); err == nil {
			ev, _ := nvgpu.ParseEvidence(v.evidence)
			r, _ := nvgpu.ParseReport(ev.Report)
			signed = append(signed, r.SignedBytes)
		}
	}
	small := *genuine
	small.DriverRIM, small.VBIOSRIM = []byte("<x/>"), []byte("<y/>")
	fuzzseed.Add(f, encode(f, &small))
	small.OCSP = nil
	fuzzseed.Add(f, encode(f, &small))
	fuzzseed.Add(f, valid.evidence[:len(valid.evidence)/2])
	fuzzseed.Add(f, []byte("SGGE\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := nvgpu.Verify(b, opts)
		if err != nil {
			var ce *check.Error
			if !errors.As(err, &ce) || ce.Code == "" || ce.Field == "" {
				t.Fatalf("refusal %v (%T) is not a *check.Error with a code and field", err, err)
			}
			if c != nil && ce.Code != check.CodePolicy {
				t.Fatalf("claims returned with a %s error", ce.Code)
			}
			return
		}
		if c == nil || c.Nonce != opts.Nonce || len(c.MismatchedIndexes) != 0 {
			t.Fatalf("accepted with claims %+v", c)
		}
		e, err := nvgpu.ParseEvidence(b)
		if err != nil {
			t.Fatalf("accepted evidence does not parse: %v", err)
		}
		r, err := nvgpu.ParseReport(e.Report)
		if err != nil {
			t.Fatalf("accepted report does not parse: %v", err)
		}
		if !slices.ContainsFunc(signed, func(s []byte) bool { return bytes.Equal(s, r.SignedBytes) }) {
			t.Fatal("accepted a report transcript the fixture device never signed")
		}
	})
}
