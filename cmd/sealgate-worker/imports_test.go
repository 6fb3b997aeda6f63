package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowed are the non-standard packages the worker may import; an entry
// ending in "/..." allows a whole module. Each entry was reviewed: the
// worker is the trusted computing base, so adding one needs a reason here
// and in the commit that adds it.
var allowed = []string{
	"github.com/sealgate/sealgate/attestation/sim",         // simulated evidence source (std only)
	"github.com/sealgate/sealgate/attestation/tdx",         // TDX collateral encoding (collect builds it)
	"github.com/sealgate/sealgate/attestation/tdx/collect", // TDX quotes through configfs-tsm, collateral from Intel PCS
	"github.com/sealgate/sealgate/attestation/snp",         // SNP collateral encoding (collect builds it)
	"github.com/sealgate/sealgate/attestation/snp/collect", // SNP reports through configfs-tsm, certificates from AMD KDS
	"github.com/sealgate/sealgate/attestation/check",       // verdict codes, linked through tdx and snp
	"github.com/sealgate/sealgate/attestation/policy",      // policy types, linked through tdx and snp
	"github.com/sealgate/sealgate/enclave",                 // the worker itself
	"github.com/sealgate/sealgate/enclave/builtin",         // CPU-only backends (std only)
	"github.com/sealgate/sealgate/internal/tlspin",         // pinned mutual TLS with the gateway (std only)
	"github.com/sealgate/sealgate/proto",                   // wire types
	"github.com/sealgate/sealgate/seal",                    // HPKE sealing over crypto/hpke
	"golang.org/x/crypto/cryptobyte/...",                   // canonical binary parsing
	"github.com/google/go-tdx-guest/...",                   // Google's TDX guest library: quote ABI, configfs-tsm client, PCS types
	"github.com/google/go-sev-guest/...",                   // Google's SEV-SNP guest library: report ABI, configfs-tsm client, KDS
	"github.com/google/go-configfs-tsm/...",                // the kernel's configfs-tsm report interface
	"google.golang.org/protobuf/...",                       // the vendor libraries' report types are protobufs
	"golang.org/x/sys/unix",                                // ioctls of the legacy guest devices
	"github.com/google/logger",                             // imported by go-tdx-guest and go-sev-guest
	"go.uber.org/multierr",                                 // imported by go-sev-guest
	"github.com/google/uuid",                               // imported by go-sev-guest
}

// allowedNVML are the extra packages of the NVML build (-tags nvml),
// which collects GPU evidence.
var allowedNVML = []string{
	"github.com/sealgate/sealgate/attestation/nvgpu",     // GPU evidence collection (OpenNVML, HTTPCollateral) and encoding
	"github.com/sealgate/sealgate/attestation/nvgpu/rim", // RIM ids and parsing, linked through nvgpu
	"golang.org/x/crypto/ocsp",                           // OCSP requests for the GPU and RIM chains
	"github.com/russellhaering/goxmldsig/...",            // XML-DSig, linked through rim
	"github.com/beevik/etree",                            // imported by goxmldsig
	"github.com/jonboulle/clockwork",                     // imported by goxmldsig
}

func isAllowed(pkg string, extra ...string) bool {
	for _, a := range append(extra, allowed...) {
		if mod, ok := strings.CutSuffix(a, "/..."); ok && (pkg == mod || strings.HasPrefix(pkg, mod+"/")) || pkg == a {
			return true
		}
	}
	return false
}

// forbiddenStd are standard packages the worker must never link.
var forbiddenStd = []string{"testing", "net/http/pprof", "expvar", "database/sql", "plugin", "runtime/pprof", "net/http/httptest"}

func TestWorkerImportsAllowlist(t *testing.T) {
	checkImports(t, nil)
}

func TestWorkerImportsAllowlistNVML(t *testing.T) {
	checkImports(t, allowedNVML, "-tags", "nvml")
}

func checkImports(t *testing.T, extra []string, flags ...string) {
	t.Helper()
	args := append(append([]string{"list", "-deps"}, flags...), "-f", "{{if .Standard}}std {{end}}{{.ImportPath}}", ".")
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if pkg, ok := strings.CutPrefix(line, "std "); ok {
			if slices.Contains(forbiddenStd, pkg) {
				t.Errorf("worker (%v) links forbidden standard package %s", flags, pkg)
			}
			continue
		}
		if line == "github.com/sealgate/sealgate/cmd/sealgate-worker" || strings.HasPrefix(line, "vendor/") {
			continue
		}
		if !isAllowed(line, extra...) {
			t.Errorf("worker (%v) imports %s, which is not on the reviewed allowlist", flags, line)
		}
	}
}

// forbiddenModules must never reach the worker, whatever the allowlist
// grows to: servers, databases, metrics and test frameworks.
var forbiddenModules = []string{"github.com/labstack/echo", "modernc.org/sqlite", "github.com/jackc/pgx", "github.com/prometheus", "github.com/stretchr/testify"}

func TestAllowlistExcludesForbidden(t *testing.T) {
	for _, f := range forbiddenModules {
		if isAllowed(f) || isAllowed(f+"/v4") {
			t.Errorf("the allowlist admits %s", f)
		}
	}
}
