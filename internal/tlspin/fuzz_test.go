package tlspin

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealgate/sealgate/internal/fuzzseed"
)

// FuzzLoadPinFile feeds LoadPinFile a certificate file (the development
// gateway's, as a client is given it): it never panics, and the pin it
// returns is the pin of the first PEM block's certificate.
func FuzzLoadPinFile(f *testing.F) {
	cert, err := SelfSigned([]string{"gateway.test"}, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Leaf.Raw})
	fuzzseed.Add(f, certPEM)
	fuzzseed.Add(f, append(bytes.Clone(certPEM), "trailing text\n"...))
	fuzzseed.Add(f, []byte("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"))
	fuzzseed.Add(f, cert.Leaf.Raw)
	path := filepath.Join(f.TempDir(), "cert.pem")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		pin, err := LoadPinFile(path)
		if err != nil {
			if pin != (Pin{}) {
				t.Fatal("a pin with an error")
			}
			return
		}
		b, _ := pem.Decode(data)
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil || PinOf(c) != pin {
			t.Fatalf("the pin is not the first certificate's (%v)", err)
		}
	})
}
