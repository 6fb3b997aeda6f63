package nvgpu_test

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu"
	"github.com/sealgate/sealgate/attestation/nvgpu/nvgputest"
	"github.com/sealgate/sealgate/attestation/policy"
)

const vectorDir = "../../testvectors/attestation/nvgpu"

func readManifest(t testing.TB) []nvgputest.ManifestEntry {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectorDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var es []nvgputest.ManifestEntry
	if err := json.Unmarshal(raw, &es); err != nil {
		t.Fatal(err)
	}
	return es
}

func vectorPool(t testing.TB, file string) *x509.CertPool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectorDir, file))
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(raw) {
		t.Fatalf("%s is not PEM", file)
	}
	return p
}

// vector is a loaded manifest entry.
type vector struct {
	nvgputest.ManifestEntry
	evidence []byte
	opts     nvgpu.Options
}

func loadVector(t testing.TB, e nvgputest.ManifestEntry) vector {
	t.Helper()
	at, err := time.Parse(time.RFC3339, e.VerifyAt)
	if err != nil {
		t.Fatal(err)
	}
	n, err := hex.DecodeString(e.Nonce)
	if err != nil || len(n) != 32 {
		t.Fatalf("nonce %q", e.Nonce)
	}
	if e.Roots != nvgputest.RootsFixture {
		t.Fatalf("roots %q", e.Roots)
	}
	raw, err := os.ReadFile(filepath.Join(vectorDir, e.File))
	if err != nil {
		t.Fatal(err)
	}
	return vector{e, raw, nvgpu.Options{
		Now: at, Nonce: [32]byte(n), RequireOCSP: e.GPURules.OCSPRequired(),
		DeviceRoots: vectorPool(t, nvgputest.DeviceRootFile), RIMRoots: vectorPool(t, nvgputest.RIMRootFile),
	}}
}

func validVector(t testing.TB) vector {
	t.Helper()
	for _, e := range readManifest(t) {
		if e.Name == "valid" {
			return loadVector(t, e)
		}
	}
	t.Fatal("no valid vector")
	return vector{}
}

// verdict is the full check of one GPU's evidence: Verify, then Validate.
func verdict(evidence []byte, rules *policy.GPURules, opts nvgpu.Options) (*nvgpu.Claims, error) {
	c, err := nvgpu.Verify(evidence, opts)
	if err != nil {
		return c, err
	}
	return c, nvgpu.Validate(c, rules)
}

func matches(err error, want nvgputest.Want) bool {
	if want.Code == "ok" {
		return err == nil
	}
	var e *check.Error
	return errors.As(err, &e) && string(e.Code) == want.Code && strings.Contains(e.Field, want.Field)
}

// TestVectors drives every vector of the manifest through Verify and
// Validate, and through the evidence codec, and compares the verdict.
func TestVectors(t *testing.T) {
	es := readManifest(t)
	if len(es) < 20 {
		t.Fatalf("manifest lists %d vectors, want at least 20", len(es))
	}
	seen := map[string]bool{}
	for _, e := range es {
		t.Run(e.Name, func(t *testing.T) {
			if seen[e.Name] {
				t.Fatal("duplicate vector name")
			}
			seen[e.Name] = true
			if e.File != e.Name+nvgputest.FileSuffix || e.Description == "" {
				t.Fatalf("file %q, description %q", e.File, e.Description)
			}
			v := loadVector(t, e)
			rules := e.GPURules
			_, err := verdict(v.evidence, &rules, v.opts)
			if !matches(err, e.Want) {
				t.Fatalf("verdict %v, want %+v", err, e.Want)
			}
			t.Logf("%s: %v", e.Want.Code, err)
			// The codec path: every evidence that parses re-encodes to
			// the same bytes.
			if p, err := nvgpu.ParseEvidence(v.evidence); err == nil {
				again, err := p.Marshal()
				if err != nil || !bytes.Equal(again, v.evidence) {
					t.Fatalf("evidence does not round-trip: %v", err)
				}
			} else if e.Want.Code != string(check.CodeMalformed) {
				t.Fatalf("ParseEvidence: %v", err)
			}
		})
	}
}

// TestVectorsRegenerate rebuilds every file from the generator and
// requires identical bytes, so the files and their provenance cannot
// drift from the code that documents them.
func TestVectorsRegenerate(t *testing.T) {
	vs, err := nvgputest.Vectors()
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := nvgputest.Manifest(vs)
	if err != nil {
		t.Fatal(err)
	}
	device, rimRoot, err := nvgputest.RootPEMs()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"manifest.json": manifest, nvgputest.DeviceRootFile: device, nvgputest.RIMRootFile: rimRoot, "PROVENANCE.md": nvgputest.Provenance(vs)}
	for _, v := range vs {
		want[v.Name+nvgputest.FileSuffix] = v.Evidence
	}
	files, err := os.ReadDir(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := want[f.Name()]; !ok {
			t.Errorf("%s is not made by the generator (and has no provenance line)", f.Name())
		}
	}
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Errorf("%s: %v (run scripts/gen-nvgpu-vectors)", name, err)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s differs from what the generator makes (run scripts/gen-nvgpu-vectors)", name)
		}
	}
}
