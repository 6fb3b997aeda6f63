package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/proto"
)

// FuzzInputLimits feeds -max-input-bytes arbitrary text: it never panics,
// every limit it accepts is in range, largest is their maximum, and the
// limits written back in the flag's canonical form parse to the same.
func FuzzInputLimits(f *testing.F) {
	for _, s := range []string{"", "64KiB", "summarize=1MiB, translate=4096", "*=1,chat=2MiB", "a=1,a=2", "9999999999MiB", "-1", "1KiBKiB"} {
		fuzzseed.Add(f, s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		limits, largest, err := parseInputLimits(s)
		if err != nil {
			return
		}
		want := 0
		var parts []string
		for task, n := range limits {
			if n < 1 || n > proto.MaxRequestPayload {
				t.Fatalf("%q: limit %d for %q accepted", s, n, task)
			}
			want = max(want, n)
			parts = append(parts, fmt.Sprintf("%s=%d", task, n))
		}
		if largest != want {
			t.Fatalf("%q: largest %d, want %d", s, largest, want)
		}
		slices.Sort(parts)
		again, largest2, err := parseInputLimits(strings.Join(parts, ","))
		if err != nil || largest2 != largest || len(again) != len(limits) {
			t.Fatalf("%q: canonical form %q does not parse back (%v)", s, strings.Join(parts, ","), err)
		}
		for task, n := range limits {
			if again[task] != n {
				t.Fatalf("%q: canonical form changes %q", s, task)
			}
		}
	})
}

// FuzzSecretFiles writes arbitrary bytes to a file and reads it as each of
// the worker's files: the credential, the provider key and the gateway's
// CA. None may panic; an error never quotes the credential file's
// content; an accepted provider key is a whole Ed25519 key.
func FuzzSecretFiles(f *testing.F) {
	_, priv, err := ed25519.GenerateKey(bytes.NewReader(make([]byte, 64)))
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		f.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	fuzzseed.Add(f, keyPEM)
	fuzzseed.Add(f, append(bytes.Clone(keyPEM), keyPEM...))
	fuzzseed.Add(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	fuzzseed.Add(f, []byte("sgp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"))
	fuzzseed.Add(f, []byte("sgp_AAAA sgp_BBBB\n"))
	fuzzseed.Add(f, []byte(" \n\t"))
	path := filepath.Join(f.TempDir(), "file")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cred, err := readCredential(path)
		if err != nil {
			if s := strings.TrimSpace(string(data)); len(s) >= 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("error quotes the credential file: %v", err)
			}
		} else if cred == "" || strings.ContainsAny(cred, " \t\r\n") {
			t.Fatalf("credential %q accepted", cred)
		}
		if key, err := readProviderKey(path); err == nil {
			if len(key) != ed25519.PrivateKeySize || !bytes.Equal(ed25519.NewKeyFromSeed(key.Seed()), key) {
				t.Fatal("an inconsistent provider key accepted")
			}
		}
		if cfg, err := readGatewayCA(path); err == nil && (cfg == nil || cfg.RootCAs == nil) {
			t.Fatal("a gateway CA accepted without a pool")
		}
	})
}
