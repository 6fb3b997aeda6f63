//go:build nvml

package nvgpu_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
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

type rimAnswer []byte

func (a rimAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(a)), Request: r}, nil
}

// FuzzRIMServiceAnswer makes NVIDIA's RIM service (the network, to the
// worker) answer arbitrary bytes: HTTPCollateral.RIM never panics, and
// what it returns is the base64 "rim" member of a JSON answer for the RIM
// asked for (rim.Verify checks the XML later).
func FuzzRIMServiceAnswer(f *testing.F) {
	const id = "NV_GPU_DRIVER_GH100_535.104.05"
	ok, _ := json.Marshal(map[string]string{"id": id, "rim": base64.StdEncoding.EncodeToString([]byte("<SoftwareIdentity/>"))})
	fuzzseed.Add(f, ok)
	fuzzseed.Add(f, []byte(`{"id":"NV_GPU_VBIOS_OTHER","rim":"PHgvPg=="}`))
	fuzzseed.Add(f, []byte(`{"rim":"not base64"}`))
	fuzzseed.Add(f, []byte(`{"rim":""}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h := nvgpu.HTTPCollateral{Client: &http.Client{Transport: rimAnswer(body)}, RIMService: "https://rim.test/"}
		xml, err := h.RIM(context.Background(), id)
		if err != nil {
			return
		}
		var doc struct{ ID, RIM string }
		if json.Unmarshal(body, &doc) != nil || (doc.ID != "" && doc.ID != id) {
			t.Fatalf("accepted an answer for another rim or not JSON: %q", body)
		}
		if want, err := base64.StdEncoding.DecodeString(doc.RIM); err != nil || len(xml) == 0 || !bytes.Equal(xml, want) {
			t.Fatal("the rim returned is not the answer's rim member")
		}
	})
}
