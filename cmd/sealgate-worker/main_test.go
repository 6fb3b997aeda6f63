package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
)

// secrets writes a provider credential and endorsement key as an operator
// would have them, and returns the flags naming them.
func secrets(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	cred := filepath.Join(dir, "credential")
	writeFile(t, cred, proto.CredentialProvider+base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key := filepath.Join(dir, "provider.pem")
	writeFile(t, key, pkcs8PEM(t, priv))
	return []string{"-credential-file", cred, "-provider-key-file", key}
}

func pkcs8PEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRunRefusesBadTEE(t *testing.T) {
	base := append([]string{"-gateway", "https://127.0.0.1:1", "-id", "w"}, secrets(t)...)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no tee", nil, `-tee: found ""`},
		{"unknown tee", []string{"-tee", "sgx9"}, `found "sgx9"`},
		{"sim without the insecure flag", []string{"-tee", "sim"}, "-insecure-simulated-tee"},
		{"gpus without nvml", []string{"-tee", "sim", "-insecure-simulated-tee", "-gpus"}, gpusWant},
		{"tdx without configfs-tsm", []string{"-tee", "tdx"}, "configfs-tsm"},
		{"snp without configfs-tsm", []string{"-tee", "snp"}, "configfs-tsm"},
	}
	if _, err := os.Stat("/sys/kernel/config/tsm"); err == nil {
		tests = tests[:3] // inside a confidential VM the hardware sources open
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(append(append([]string{}, base...), tt.args...))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	ok := secrets(t)
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content)
		return p
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	gwCert, err := tlspin.SelfSigned(nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile := file("gateway.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: gwCert.Certificate[0]})))
	sim := []string{"-tee", "sim", "-insecure-simulated-tee", "-id", "w"}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no credential file", []string{"-gateway", "https://127.0.0.1:1", "-provider-key-file", ok[3]}, "-credential-file: found none, want a file"},
		{"missing credential file", []string{"-gateway", "https://127.0.0.1:1", "-credential-file", filepath.Join(dir, "nope"), "-provider-key-file", ok[3]}, "-credential-file: open"},
		{"empty credential", []string{"-gateway", "https://127.0.0.1:1", "-credential-file", file("empty", "\n"), "-provider-key-file", ok[3]}, "found an empty file"},
		{"two words", []string{"-gateway", "https://127.0.0.1:1", "-credential-file", file("two", "sgp_a sgp_b\n"), "-provider-key-file", ok[3]}, "found more than one word"},
		{"tenant credential", append([]string{"-gateway", "https://127.0.0.1:1", "-credential-file", file("tenant", "sgt_"+strings.Repeat("A", 43)), "-provider-key-file", ok[3]}, sim...), "-credential-file: found a tenant key"},
		{"no provider key", []string{"-gateway", "https://127.0.0.1:1", "-credential-file", ok[1]}, "-provider-key-file: found none"},
		{"provider key not pem", []string{"-gateway", "https://127.0.0.1:1", "-credential-file", ok[1], "-provider-key-file", file("raw.key", "not a key")}, "found no PEM block"},
		{"provider key wrong type", []string{"-gateway", "https://127.0.0.1:1", "-credential-file", ok[1], "-provider-key-file", file("ec.pem", pkcs8PEM(t, ecKey))}, "found a *ecdsa.PrivateKey, want an Ed25519 key"},
		{"provider key as certificate", []string{"-gateway", "https://127.0.0.1:1", "-credential-file", ok[1], "-provider-key-file", caFile}, `found a PEM "CERTIFICATE" block`},
		{"gateway ca without certificates", append([]string{"-gateway", "https://127.0.0.1:1", "-gateway-ca", file("empty.pem", "")}, ok...), "-gateway-ca " + filepath.Join(dir, "empty.pem") + ": found no CERTIFICATE"},
		{"gateway ca is a key", append([]string{"-gateway", "https://127.0.0.1:1", "-gateway-ca", ok[3]}, ok...), `found a PEM "PRIVATE KEY" block`},
		{"capacity zero", append([]string{"-gateway", "https://127.0.0.1:1", "-capacity", "0"}, ok...), "-capacity: found 0, want 1 to"},
		{"http gateway", append(append([]string{"-gateway", "http://127.0.0.1:1"}, ok...), sim...), "-gateway: found \"http://127.0.0.1:1\", want https"},
		{"bad region", append(append([]string{"-gateway", "https://127.0.0.1:1", "-region", "EU"}, ok...), sim...), "-region: found \"EU\""},
		{"bad models", append(append([]string{"-gateway", "https://127.0.0.1:1", "-models", "a,,b"}, ok...), sim...), "-models: model 1: found 0 characters"},
		{"bad id", append(append([]string{"-gateway", "https://127.0.0.1:1", "-gateway-ca", caFile}, ok...), "-tee", "sim", "-insecure-simulated-tee", "-id", "a b"), "-id: found byte ' '"},
		{"bad listen", append(append([]string{"-gateway", "https://127.0.0.1:1", "-listen", "256.0.0.1:0"}, ok...), sim...), "-listen:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), strings.Repeat("A", 8)) || strings.Contains(err.Error(), "BwcHBwcH") {
				t.Fatalf("error %q quotes a credential", err)
			}
		})
	}
}

func TestSplitModels(t *testing.T) {
	if got := splitModels(" "); got != nil {
		t.Fatalf("blank: %q, want none", got)
	}
	if got := splitModels("llama3:8b, qwen/Qwen2.5-7B"); len(got) != 2 || got[0] != "llama3:8b" || got[1] != "qwen/Qwen2.5-7B" {
		t.Fatalf("got %q", got)
	}
}
