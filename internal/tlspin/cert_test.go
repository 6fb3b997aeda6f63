package tlspin

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSelfSignedDefaults(t *testing.T) {
	cert, err := SelfSigned(nil, testNow, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		t.Fatal("Leaf not set")
	}
	if len(cert.Certificate) != 1 {
		t.Fatalf("chain of %d certificates, want 1", len(cert.Certificate))
	}
	parsed, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil || !parsed.Equal(leaf) {
		t.Fatalf("Leaf is not Certificate[0] (%v)", err)
	}
	if got, want := leaf.DNSNames, []string{"localhost"}; !slices.Equal(got, want) {
		t.Errorf("DNSNames = %q, want %q", got, want)
	}
	wantIPs := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if !slices.EqualFunc(leaf.IPAddresses, wantIPs, net.IP.Equal) {
		t.Errorf("IPAddresses = %v, want %v", leaf.IPAddresses, wantIPs)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("VerifyHostname(%q): %v", h, err)
		}
	}
	if !leaf.NotBefore.Equal(testNow.Add(-time.Hour)) {
		t.Errorf("NotBefore = %v, want %v", leaf.NotBefore, testNow.Add(-time.Hour))
	}
	if !leaf.NotAfter.Equal(testNow.Add(48 * time.Hour)) {
		t.Errorf("NotAfter = %v, want %v", leaf.NotAfter, testNow.Add(48*time.Hour))
	}
	wantEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if !slices.Equal(leaf.ExtKeyUsage, wantEKU) {
		t.Errorf("ExtKeyUsage = %v, want %v", leaf.ExtKeyUsage, wantEKU)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v, want DigitalSignature only", leaf.KeyUsage)
	}
	if !bytes.Equal(leaf.RawIssuer, leaf.RawSubject) {
		t.Errorf("issuer %v is not subject %v", leaf.Issuer, leaf.Subject)
	}
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Errorf("IsCA = %v, BasicConstraintsValid = %v; want a leaf", leaf.IsCA, leaf.BasicConstraintsValid)
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("private key %T, want ECDSA P-256", cert.PrivateKey)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		t.Error("private key is not the certificate's")
	}
	if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v, want positive and at most 128 bits", leaf.SerialNumber)
	}
}

func TestSelfSignedIsFreshEachTime(t *testing.T) {
	a, b := newCert(t), newCert(t)
	if PinOf(a.Leaf) == PinOf(b.Leaf) {
		t.Error("two calls made the same key")
	}
	if a.Leaf.SerialNumber.Cmp(b.Leaf.SerialNumber) == 0 {
		t.Error("two calls made the same serial number")
	}
}

func TestSelfSignedHosts(t *testing.T) {
	cert, err := SelfSigned([]string{"worker-1.internal", "10.0.0.7", "fd00::7", "*.workers.example", "Gateway.Example"}, testNow, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if got, want := leaf.DNSNames, []string{"worker-1.internal", "*.workers.example", "Gateway.Example"}; !slices.Equal(got, want) {
		t.Errorf("DNSNames = %q, want %q", got, want)
	}
	wantIPs := []net.IP{net.ParseIP("10.0.0.7").To4(), net.ParseIP("fd00::7")}
	if !slices.EqualFunc(leaf.IPAddresses, wantIPs, net.IP.Equal) {
		t.Errorf("IPAddresses = %v, want %v", leaf.IPAddresses, wantIPs)
	}
	for _, h := range []string{"localhost", "127.0.0.1"} {
		if err := leaf.VerifyHostname(h); err == nil {
			t.Errorf("VerifyHostname(%q) succeeded: the defaults apply only without hosts", h)
		}
	}
	if err := leaf.VerifyHostname("a.workers.example"); err != nil {
		t.Errorf("wildcard: %v", err)
	}
}

func TestSelfSignedRejects(t *testing.T) {
	tests := []struct {
		name     string
		hosts    []string
		validFor time.Duration
		wantErr  string
	}{
		{"zero validity", nil, 0, "self-signed validity 0s, want > 0"},
		{"negative validity", nil, -time.Hour, "self-signed validity -1h0m0s, want > 0"},
		{"empty host", []string{""}, time.Hour, "empty host name"},
		{"host with port", []string{"localhost:8443"}, time.Hour, `host "localhost:8443": byte ":"`},
		{"url", []string{"https://gw.example"}, time.Hour, `host "https://gw.example": byte ":"`},
		{"space", []string{"gw example"}, time.Hour, `byte " "`},
		{"trailing dot", []string{"gw.example."}, time.Hour, `label "", want 1 to 63 bytes`},
		{"empty label", []string{"gw..example"}, time.Hour, `label "", want 1 to 63 bytes`},
		{"inner wildcard", []string{"gw.*.example"}, time.Hour, `byte "*"`},
		{"long label", []string{strings.Repeat("a", 64) + ".example"}, time.Hour, "want 1 to 63 bytes"},
		{"long name", []string{strings.Repeat("a.", 127) + "ab"}, time.Hour, "256 bytes, want at most 253"},
		{"ip zone", []string{"fe80::1%eth0"}, time.Hour, "with a zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SelfSigned(tt.hosts, testNow, tt.validFor)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("SelfSigned(%q, %v) error = %v, want it to contain %q", tt.hosts, tt.validFor, err, tt.wantErr)
			}
		})
	}
}

// writePair writes cert as PEM files in a new temporary directory.
func writePair(t *testing.T, dir string, certPEM, keyPEM []byte) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func pemOf(t *testing.T, cert, other []byte) (certPEM, keyPEM []byte) {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: other})
}

func TestLoadPEMFile(t *testing.T) {
	cert := newCert(t)
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	otherKeyDER, err := x509.MarshalPKCS8PrivateKey(newCert(t).PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := pemOf(t, cert.Certificate[0], keyDER)
	_, otherKeyPEM := pemOf(t, nil, otherKeyDER)
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, certPEM, keyPEM)

	got, err := LoadPEMFile(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got.Leaf == nil || PinOf(got.Leaf) != PinOf(cert.Leaf) {
		t.Fatal("loaded certificate is not the one written, or Leaf is unset")
	}

	missing := filepath.Join(dir, "missing.pem")
	mismatched := filepath.Join(dir, "other-key.pem")
	if err := os.WriteFile(mismatched, otherKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, certFile, keyFile string
		wantErr                 []string
		wantNotExist            bool
	}{
		{"missing cert", missing, keyFile, []string{"reading certificate file", missing}, true},
		{"missing key", certFile, missing, []string{"reading key file", missing}, true},
		{"swapped", keyFile, certFile, []string{"certificate file " + keyFile, `first PEM block is "PRIVATE KEY", want "CERTIFICATE"`}, false},
		{"key is a directory", certFile, dir, []string{"reading key file", dir}, false},
		{"other key", certFile, mismatched, []string{certFile, mismatched, "private key does not match public key"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadPEMFile(tt.certFile, tt.keyFile)
			if err == nil {
				t.Fatal("LoadPEMFile succeeded, want error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v, want it to contain %q", err, w)
				}
			}
			if errors.Is(err, fs.ErrNotExist) != tt.wantNotExist {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v, want %v", err, !tt.wantNotExist, tt.wantNotExist)
			}
		})
	}
}

func TestLoadPinFile(t *testing.T) {
	cert := newCert(t)
	dir := t.TempDir()
	certPEM, keyPEM := pemOf(t, cert.Certificate[0], []byte("not a key"))
	certFile, keyFile := writePair(t, dir, certPEM, keyPEM)

	pin, err := LoadPinFile(certFile)
	if err != nil || pin != PinOf(cert.Leaf) {
		t.Fatalf("LoadPinFile = %s, %v; want %s", pin, err, PinOf(cert.Leaf))
	}
	if _, err := LoadPinFile(keyFile); err == nil || !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), `want "CERTIFICATE"`) {
		t.Errorf("LoadPinFile(key file) error = %v, want it to name the file and the block type", err)
	}
	garbled := filepath.Join(dir, "garbled.pem")
	if err := os.WriteFile(garbled, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("nope")}), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPinFile(garbled); err == nil || !strings.Contains(err.Error(), garbled) || !strings.Contains(err.Error(), "x509") {
		t.Errorf("LoadPinFile(garbled) error = %v, want an x509 parse error naming the file", err)
	}
	if _, err := LoadPinFile(filepath.Join(dir, "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadPinFile(missing) error = %v, want fs.ErrNotExist", err)
	}
}
