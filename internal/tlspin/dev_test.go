package tlspin

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// devDir returns a dir with a development certificate made at testNow.
func devDir(t *testing.T) (dir string, pin Pin) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "data")
	cert, _, created, err := LoadOrCreateDev(dir, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("created = false for an empty dir")
	}
	return dir, PinOf(cert.Leaf)
}

func TestLoadOrCreateDevCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	cert, certPath, created, err := LoadOrCreateDev(dir, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("created = false for an empty dir")
	}
	if want := filepath.Join(dir, DevCertFile); certPath != want {
		t.Errorf("certPEMPath = %q, want %q", certPath, want)
	}
	pin, err := LoadPinFile(certPath)
	if err != nil || pin != PinOf(cert.Leaf) {
		t.Errorf("pin of the certificate file = %s, %v; want the returned certificate's %s", pin, err, PinOf(cert.Leaf))
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := cert.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("VerifyHostname(%q): %v", h, err)
		}
	}
	if !cert.Leaf.NotAfter.Equal(testNow.Add(devValidFor)) {
		t.Errorf("NotAfter = %v, want %v", cert.Leaf.NotAfter, testNow.Add(devValidFor))
	}

	for name, want := range map[string]os.FileMode{DevKeyFile: 0o600, DevCertFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %#o, want %#o", name, got, want)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("created dir mode %#o, want 0700", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 {
		t.Errorf("dir holds %q, want only the two files (no temporary files left)", names)
	}

	// The key file holds the returned key.
	keyPEM, err := os.ReadFile(filepath.Join(dir, DevKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key file is not a PRIVATE KEY PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if ek, ok := key.(*ecdsa.PrivateKey); !ok || !ek.PublicKey.Equal(cert.Leaf.PublicKey) {
		t.Errorf("key file holds a %T that is not the certificate's key", key)
	}
}

func TestLoadOrCreateDevReuses(t *testing.T) {
	dir, pin := devDir(t)
	for _, now := range []time.Time{testNow, testNow.Add(-time.Hour), testNow.Add(devValidFor)} {
		cert, certPath, created, err := LoadOrCreateDev(dir, nil, now)
		if err != nil {
			t.Fatalf("at %v: %v", now, err)
		}
		if created {
			t.Errorf("at %v: created = true, want the existing certificate reused", now)
		}
		if PinOf(cert.Leaf) != pin {
			t.Errorf("at %v: pin %s, want the existing %s", now, PinOf(cert.Leaf), pin)
		}
		if certPath != filepath.Join(dir, DevCertFile) {
			t.Errorf("certPEMPath = %q", certPath)
		}
		if cert.PrivateKey == nil || len(cert.Certificate) != 1 {
			t.Errorf("reused certificate incomplete: %d certificates, key %T", len(cert.Certificate), cert.PrivateKey)
		}
	}
	// The reused pair works in a handshake.
	cert, _, _, err := LoadOrCreateDev(dir, []string{"LOCALHOST", "::1"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	out := connect(t, ServerConfig(cert, pins(pin)), ClientConfig(&cert, pin))
	if out.client != nil || out.server != nil {
		t.Fatalf("handshake with the reused pair: client %v, server %v", out.client, out.server)
	}
}

func TestLoadOrCreateDevRegenerates(t *testing.T) {
	tests := []struct {
		name  string
		hosts []string
		now   time.Time
		spoil func(t *testing.T, dir string)
	}{
		{name: "expired", now: testNow.Add(devValidFor + time.Second)},
		{name: "not yet valid", now: testNow.Add(-time.Hour - time.Second)},
		{name: "new host", hosts: []string{"localhost", "gw.example"}, now: testNow},
		{name: "cert missing", now: testNow, spoil: func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, DevCertFile)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "key missing", now: testNow, spoil: func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, DevKeyFile)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "key of another cert (crash between the writes)", now: testNow, spoil: func(t *testing.T, dir string) {
			other, _ := devDir(t)
			data, err := os.ReadFile(filepath.Join(other, DevKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, DevKeyFile), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, old := devDir(t)
			if tt.spoil != nil {
				tt.spoil(t, dir)
			}
			cert, certPath, created, err := LoadOrCreateDev(dir, tt.hosts, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if !created {
				t.Error("created = false, want a new certificate")
			}
			if PinOf(cert.Leaf) == old {
				t.Error("new certificate has the old key")
			}
			if !cert.Leaf.NotBefore.Equal(tt.now.Add(-time.Hour)) {
				t.Errorf("NotBefore = %v, want an hour before %v", cert.Leaf.NotBefore, tt.now)
			}
			if pin, err := LoadPinFile(certPath); err != nil || pin != PinOf(cert.Leaf) {
				t.Errorf("certificate file pin %s, %v; want the new %s", pin, err, PinOf(cert.Leaf))
			}
			// And the next call reuses the new pair.
			again, _, created, err := LoadOrCreateDev(dir, tt.hosts, tt.now)
			if err != nil || created || PinOf(again.Leaf) != PinOf(cert.Leaf) {
				t.Errorf("second call: created %v, pin %s, %v; want the new pair reused", created, PinOf(again.Leaf), err)
			}
		})
	}
}

func TestLoadOrCreateDevRefuses(t *testing.T) {
	tests := []struct {
		name    string
		spoil   func(t *testing.T, dir string)
		wantErr []string
	}{
		{"key readable by others", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, DevKeyFile), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{DevKeyFile, "has mode 0644, want 0600"}},
		{"key readable by group", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, DevKeyFile), 0o640); err != nil {
				t.Fatal(err)
			}
		}, []string{DevKeyFile, "has mode 0640, want 0600"}},
		{"garbled cert", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, DevCertFile), []byte("hello"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{DevCertFile, "no CERTIFICATE PEM block"}},
		{"garbled key", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, DevKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{DevKeyFile, "asn1: structure error"}},
		{"key is a certificate", func(t *testing.T, dir string) {
			data, err := os.ReadFile(filepath.Join(dir, DevCertFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, DevKeyFile), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{DevKeyFile, "no PRIVATE KEY PEM block"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := devDir(t)
			tt.spoil(t, dir)
			before := readDir(t, dir)
			_, _, _, err := LoadOrCreateDev(dir, nil, testNow)
			if err == nil {
				t.Fatal("LoadOrCreateDev succeeded, want error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v, want it to contain %q", err, w)
				}
			}
			if after := readDir(t, dir); after != before {
				t.Error("LoadOrCreateDev changed the files it refused")
			}
		})
	}
	if _, _, _, err := LoadOrCreateDev("", nil, testNow); err == nil || !strings.Contains(err.Error(), "empty development certificate dir") {
		t.Errorf("empty dir: error = %v", err)
	}
}

// readDir returns the names and contents of dir's files.
func readDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(e.Name() + "\x00" + string(data) + "\x00")
	}
	return b.String()
}
