//go:build nvml

package nvgpu_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sealgate/sealgate/attestation/nvgpu"
)

// The servers below are TEST DOUBLES of NVIDIA's RIM service and OCSP
// responder, which this machine cannot reach.

func TestHTTPCollateralRIM(t *testing.T) {
	xml := []byte("<SoftwareIdentity/>")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/v1/rim/")
		switch id {
		case "NV_GPU_DRIVER_GH100_550.90.07":
			json.NewEncoder(w).Encode(map[string]string{"id": id, "rim": base64.StdEncoding.EncodeToString(xml)})
		case "other-id":
			json.NewEncoder(w).Encode(map[string]string{"id": "NV_SOMETHING_ELSE", "rim": base64.StdEncoding.EncodeToString(xml)})
		case "not-json":
			io.WriteString(w, "<html>")
		case "not-base64":
			json.NewEncoder(w).Encode(map[string]string{"id": id, "rim": "!!"})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	h := nvgpu.HTTPCollateral{RIMService: srv.URL + "/v1/rim/"}
	got, err := h.RIM(context.Background(), "NV_GPU_DRIVER_GH100_550.90.07")
	if err != nil || !bytes.Equal(got, xml) {
		t.Fatalf("RIM = %q, %v", got, err)
	}
	for id, want := range map[string]string{"other-id": "answered rim", "not-json": "not JSON", "not-base64": "not base64", "missing": "status 404"} {
		if _, err := h.RIM(context.Background(), id); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("RIM(%s) = %v, want %q", id, err, want)
		}
	}
}

func TestHTTPCollateralOCSP(t *testing.T) {
	issuerKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &issuerKey.PublicKey, issuerKey)
	issuer, _ := x509.ParseCertificate(der)

	answer := []byte("a DER OCSP response")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/ocsp-request" || err != nil || req.SerialNumber.Int64() != 7 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Write(answer)
	}))
	defer srv.Close()

	leafKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "leaf"}, OCSPServer: []string{srv.URL},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ = x509.CreateCertificate(rand.Reader, leafTmpl, issuer, &leafKey.PublicKey, issuerKey)
	leaf, _ := x509.ParseCertificate(der)

	got, err := nvgpu.HTTPCollateral{}.OCSP(context.Background(), leaf, issuer)
	if err != nil || !bytes.Equal(got, answer) {
		t.Fatalf("OCSP = %q, %v", got, err)
	}
	// A certificate naming no responder goes to OCSPResponder.
	leafTmpl.OCSPServer = nil
	der, _ = x509.CreateCertificate(rand.Reader, leafTmpl, issuer, &leafKey.PublicKey, issuerKey)
	bare, _ := x509.ParseCertificate(der)
	if got, err := (nvgpu.HTTPCollateral{OCSPResponder: srv.URL}).OCSP(context.Background(), bare, issuer); err != nil || !bytes.Equal(got, answer) {
		t.Fatalf("OCSP via the default responder = %q, %v", got, err)
	}
}

// TestOpenNVMLWithoutDriver: on a machine without the NVIDIA driver the
// error names what is missing. With a driver, OpenNVML either finds GPUs
// or says why not; it never panics.
func TestOpenNVMLWithoutDriver(t *testing.T) {
	out, _ := exec.Command("ldconfig", "-p").Output()
	devs, err := nvgpu.OpenNVML()
	if !bytes.Contains(out, []byte("libnvidia-ml.so.1")) {
		if err == nil || !strings.Contains(err.Error(), "libnvidia-ml.so.1 not found") {
			t.Fatalf("OpenNVML without a driver = %v, %v; want an error naming libnvidia-ml.so.1", devs, err)
		}
		return
	}
	if err == nil && len(devs) == 0 {
		t.Fatal("OpenNVML found no device but gave no error")
	}
}
