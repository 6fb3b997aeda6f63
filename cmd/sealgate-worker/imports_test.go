package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowedModules are the non-standard packages the worker may import. Each
// entry was reviewed: the worker is the trusted computing base, so adding
// one needs a reason in the commit that adds it.
var allowedModules = []string{
	"github.com/sealgate/sealgate/attestation/sim", // simulated evidence source (std only)
	"github.com/sealgate/sealgate/enclave",         // the worker itself
	"github.com/sealgate/sealgate/enclave/builtin", // CPU-only backends (std only)
	"github.com/sealgate/sealgate/proto",           // wire types
	"github.com/sealgate/sealgate/seal",            // HPKE sealing over crypto/hpke
	"golang.org/x/crypto/cryptobyte",               // canonical binary parsing
	"golang.org/x/crypto/cryptobyte/asn1",          // imported by cryptobyte
}

// forbiddenStd are standard packages the worker must never link.
var forbiddenStd = []string{"testing", "net/http/pprof", "expvar", "database/sql", "plugin", "runtime/pprof", "net/http/httptest"}

func TestWorkerImportsAllowlist(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Standard}}std {{end}}{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if pkg, ok := strings.CutPrefix(line, "std "); ok {
			if slices.Contains(forbiddenStd, pkg) {
				t.Errorf("worker links forbidden standard package %s", pkg)
			}
			continue
		}
		if line == "github.com/sealgate/sealgate/cmd/sealgate-worker" || strings.HasPrefix(line, "vendor/") {
			continue
		}
		if !slices.Contains(allowedModules, line) {
			t.Errorf("worker imports %s, which is not on the reviewed allowlist", line)
		}
	}
}
