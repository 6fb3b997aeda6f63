package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLIGatewayKeepsItsLogKey(t *testing.T) {
	dir := t.TempDir()
	_, stop := startGateway(t, dir)
	stop()
	path := filepath.Join(dir, "sealgate-log.key") // beside -anchor-key-file by default
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("log key file: %v; want it created with mode 0600", err)
	}
	first, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(first), "PRIVATE+KEY+sealgate-log+") {
		t.Fatalf("log key file does not hold a note private key for origin sealgate-log")
	}
	_, stop = startGateway(t, dir)
	stop()
	if second, _ := os.ReadFile(path); string(second) != string(first) {
		t.Fatal("the log key changed across a restart")
	}
	os.WriteFile(path, []byte("not a key\n"), 0o600)
	r := sealgate(t, "", "gateway", "-listen", "127.0.0.1:0", "-db", filepath.Join(dir, "gw.db"), "-anchor-key-file", filepath.Join(dir, "anchor.key"),
		"-admin-credential-file", filepath.Join(dir, "admin.cred"), "-dev-tls-dir", filepath.Join(dir, "tls"))
	if r.code != 1 || !strings.Contains(r.stderr, "log key") {
		t.Fatalf("corrupt log key file: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCLILogKeyFlag(t *testing.T) {
	r := sealgate(t, "x. y.", "summarize", "-insecure-allow-simulated", "-gateway", "http://127.0.0.1:1", "-insecure-plain-http", "-log-key", "not-a-key")
	if r.code != 1 || !strings.Contains(r.stderr, "log key") {
		t.Fatalf("malformed -log-key: exit %d, stderr %q", r.code, r.stderr)
	}
	r = sealgate(t, "x. y.", "summarize", "-insecure-allow-simulated", "-insecure-skip-log", "-gateway", "http://127.0.0.1:1", "-insecure-plain-http")
	if !strings.Contains(r.stderr, "INSECURE: the transparency log is not checked") {
		t.Fatalf("-insecure-skip-log: stderr %q, want a warning", r.stderr)
	}
}
