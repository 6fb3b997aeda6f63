//go:build nvml

package nvgpu_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/sealgate/sealgate/attestation/nvgpu"
	"github.com/sealgate/sealgate/internal/fuzzseed"
)

// FuzzSplitChain feeds SplitChain (the chain NVML hands the collector, PEM
// or DER) arbitrary bytes: it never panics, and what it returns is at
// least two DER elements that re-encode to the input's certificates.
func FuzzSplitChain(f *testing.F) {
	valid := validVector(f)
	e, err := nvgpu.ParseEvidence(valid.evidence)
	if err != nil {
		f.Fatal(err)
	}
	der := bytes.Join(e.CertChain, nil)
	pemChain := pemOf(e.CertChain...)
	fuzzseed.Add(f, e.CertChain[0])
	fuzzseed.Add(f, der[:len(der)-1])
	fuzzseed.Add(f, pemChain)
	fuzzseed.Add(f, der)
	fuzzseed.Add(f, append(pemOf(e.CertChain[0]), "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"...))
	f.Fuzz(func(t *testing.T, b []byte) {
		certs, err := nvgpu.SplitChain(b)
		if err != nil {
			return
		}
		if len(certs) < 2 {
			t.Fatalf("%d certificates accepted", len(certs))
		}
		if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) && !bytes.Equal(bytes.Join(certs, nil), b) {
			t.Fatal("der certificates do not concatenate to the input")
		}
		for i, c := range certs {
			if len(c) == 0 {
				t.Fatalf("certificate %d is empty", i)
			}
			if parsed, err := x509.ParseCertificate(c); err == nil && !bytes.Equal(parsed.Raw, c) {
				t.Fatalf("certificate %d has bytes past its encoding", i)
			}
		}
	})
}

func pemOf(ders ...[]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return out
}
