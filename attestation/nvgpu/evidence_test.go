package nvgpu_test

import (
	"bytes"
	"testing"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu"
	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/proto"
)

func sampleEvidence() *nvgpu.Evidence {
	return &nvgpu.Evidence{
		Report:    []byte("report"),
		CertChain: [][]byte{[]byte("leaf"), []byte("root")},
		OCSP:      [][]byte{[]byte("ocsp")},
		DriverRIM: []byte("<driver/>"),
		VBIOSRIM:  []byte("<vbios/>"),
	}
}

func TestEvidenceEncoding(t *testing.T) {
	e := sampleEvidence()
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("SGGE\x00\x01" +
		"\x00\x06report" +
		"\x02\x00\x04leaf\x00\x04root" +
		"\x01\x00\x04ocsp" +
		"\x00\x00\x09<driver/>\x00\x00\x08<vbios/>" +
		"\x00")
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding\n got %q\nwant %q", b, want)
	}
	p, err := nvgpu.ParseEvidence(b)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := p.Marshal(); !bytes.Equal(again, b) {
		t.Fatal("round trip")
	}
}

func TestEvidenceMalformed(t *testing.T) {
	good, err := sampleEvidence().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	big := func(n int) []byte { return make([]byte, n) }
	tests := []struct {
		name    string
		input   func() []byte
		wantErr string
	}{
		{"empty", func() []byte { return nil }, "gpu evidence magic"},
		{"magic", func() []byte { b := bytes.Clone(good); b[0] = 'X'; return b }, "gpu evidence magic"},
		{"version", func() []byte { b := bytes.Clone(good); b[5] = 2; return b }, "gpu evidence version: found 2, want 1"},
		{"report cut", func() []byte { return good[:8] }, "gpu evidence report"},
		{"chain cut", func() []byte { return good[:20] }, "gpu evidence certificate chain"},
		{"trailing byte", func() []byte { return append(bytes.Clone(good), 0) }, "gpu evidence length: found 1 trailing bytes"},
		{"rim ocsp cut", func() []byte { return good[:len(good)-1] }, "gpu evidence rim ocsp responses"},
		{"too long", func() []byte { return big(proto.MaxGPUEvidence + 1) }, "gpu evidence length"},
		{"empty report", func() []byte { e := sampleEvidence(); e.Report = nil; return marshalUnchecked(t, e) }, "gpu evidence report: found 0 bytes"},
		{"one certificate", func() []byte { e := sampleEvidence(); e.CertChain = e.CertChain[:1]; return marshalUnchecked(t, e) }, "gpu evidence certificate chain: found 1 certificates, want 2 to 8"},
		{"empty certificate", func() []byte { e := sampleEvidence(); e.CertChain[1] = nil; return marshalUnchecked(t, e) }, "gpu evidence certificate 1: found 0 bytes"},
		{"empty ocsp response", func() []byte { e := sampleEvidence(); e.OCSP[0] = nil; return marshalUnchecked(t, e) }, "gpu evidence ocsp response 0"},
		{"empty driver rim", func() []byte { e := sampleEvidence(); e.DriverRIM = nil; return marshalUnchecked(t, e) }, "gpu evidence driver rim: found 0 bytes"},
		{"report over nvml's buffer", func() []byte {
			e := sampleEvidence()
			e.Report = big(nvgpu.MaxReportSize + 1)
			return marshalUnchecked(t, e)
		}, "gpu evidence report: found 8193 bytes"},
		{"too many ocsp responses", func() []byte {
			e := sampleEvidence()
			for range nvgpu.MaxOCSPResponses {
				e.RIMOCSP = append(e.RIMOCSP, []byte("r"))
			}
			e.RIMOCSP = append(e.RIMOCSP, []byte("r"))
			return marshalUnchecked(t, e)
		}, "gpu evidence rim ocsp responses: found 9, want at most 8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := nvgpu.ParseEvidence(tc.input())
			if err == nil || !contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseEvidence: %v, want error containing %q", err, tc.wantErr)
			}
			if check.CodeOf(err) != check.CodeMalformed {
				t.Fatalf("%v is not CodeMalformed", err)
			}
		})
	}
	// Marshal refuses what ParseEvidence refuses.
	e := sampleEvidence()
	e.VBIOSRIM = nil
	if _, err := e.Marshal(); check.CodeOf(err) != check.CodeMalformed {
		t.Fatalf("Marshal of an empty vbios rim: %v", err)
	}
}

// marshalUnchecked encodes e without Marshal's checks, to feed
// ParseEvidence what Marshal would refuse.
func marshalUnchecked(t *testing.T, e *nvgpu.Evidence) []byte {
	t.Helper()
	u16 := func(b []byte) []byte { return append([]byte{byte(len(b) >> 8), byte(len(b))}, b...) }
	u24 := func(b []byte) []byte {
		return append([]byte{byte(len(b) >> 16), byte(len(b) >> 8), byte(len(b))}, b...)
	}
	list := func(vs [][]byte) []byte {
		out := []byte{byte(len(vs))}
		for _, v := range vs {
			out = append(out, u16(v)...)
		}
		return out
	}
	out := []byte("SGGE\x00\x01")
	out = append(out, u16(e.Report)...)
	out = append(out, list(e.CertChain)...)
	out = append(out, list(e.OCSP)...)
	out = append(out, u24(e.DriverRIM)...)
	out = append(out, u24(e.VBIOSRIM)...)
	return append(out, list(e.RIMOCSP)...)
}

// FuzzParseEvidence: whatever parses marshals back to the same bytes.
func FuzzParseEvidence(f *testing.F) {
	good, err := sampleEvidence().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	fuzzseed.Add(f, good)
	fuzzseed.Add(f, validVector(f).evidence)
	if seedRecorded(f) {
		f.Add(encode(f, recordedEvidence(f, true, true))) // NVIDIA's recording: not ours to commit
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := nvgpu.ParseEvidence(b)
		if err != nil {
			if check.CodeOf(err) != check.CodeMalformed {
				t.Fatalf("error %v is not CodeMalformed", err)
			}
			return
		}
		again, err := e.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("round trip changed the evidence")
		}
	})
}
