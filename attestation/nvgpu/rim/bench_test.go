package rim_test

import (
	"testing"

	"github.com/sealgate/sealgate/attestation/nvgpu/rim"
)

// BenchmarkVerify verifies NVIDIA's real driver RIM: parse, chain to the
// pinned root, XML-DSig; and the same with the three OCSP responses of
// its chain required.
func BenchmarkVerify(b *testing.B) {
	raw := readRIM(b, driverRIM)
	for _, bc := range []struct {
		name string
		opts rim.Options
	}{
		{"driver", rim.Options{Now: recordedAt}},
		{"driver+ocsp", rim.Options{Now: ocspAt, OCSP: readOCSP(b, ocspDriverLeaf, ocspRIML3, ocspRIMCA), RequireOCSP: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := rim.Verify(raw, bc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse parses the real driver RIM without verifying it.
func BenchmarkParse(b *testing.B) {
	raw := readRIM(b, driverRIM)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := rim.Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}
