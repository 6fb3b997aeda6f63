package tdx_test

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
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/tdx"
	"github.com/sealgate/sealgate/attestation/tdx/tdxtest"
	"github.com/sealgate/sealgate/proto"
)

const vectorDir = "../../testvectors/attestation/tdx"

func readManifest(t testing.TB) []tdxtest.ManifestEntry {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectorDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var es []tdxtest.ManifestEntry
	if err := json.Unmarshal(raw, &es); err != nil {
		t.Fatal(err)
	}
	return es
}

func fixtureRoots(t testing.TB) *x509.CertPool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectorDir, tdxtest.FixtureRootFile))
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(raw) {
		t.Fatal("fixture root is not PEM")
	}
	return p
}

// verdict checks an encoded bundle the way package attestation does for
// the tdx kind: Verify, then the REPORT_DATA binding, then Validate.
func verdict(encoded []byte, p *policy.Policy, opts tdx.Options) (*tdx.Claims, error) {
	b, err := proto.ParseBundle(encoded)
	if err != nil {
		return nil, check.Wrap(check.CodeMalformed, "bundle", err)
	}
	if b.Kind != policy.KindTDX {
		return nil, check.Fail(check.CodeUnknownKind, "kind", b.Kind, policy.KindTDX)
	}
	c, err := tdx.Verify(b.Report, b.Collateral, opts)
	if err != nil {
		return nil, err
	}
	if want := b.ReportData(); c.ReportData != want {
		return c, check.Fail(check.CodeBinding, "report_data", hex.EncodeToString(c.ReportData[:8]), hex.EncodeToString(want[:8]))
	}
	return c, tdx.Validate(c, p.TDX)
}

func matches(err error, want tdxtest.Want) bool {
	if want.Code == "ok" {
		return err == nil
	}
	var e *check.Error
	return errors.As(err, &e) && string(e.Code) == want.Code && strings.Contains(e.Field, want.Field)
}

// TestVectors drives every vector of the manifest through Verify, the
// binding check and Validate and compares the verdict.
func TestVectors(t *testing.T) {
	es := readManifest(t)
	if len(es) < 30 {
		t.Fatalf("manifest lists %d vectors, want at least 30", len(es))
	}
	roots := fixtureRoots(t)
	seen := map[string]bool{}
	for _, e := range es {
		t.Run(e.Name, func(t *testing.T) {
			if seen[e.Name] {
				t.Fatalf("duplicate vector name")
			}
			seen[e.Name] = true
			if e.Kind != policy.KindTDX || e.File != e.Name+".bundle" {
				t.Fatalf("kind %q file %q", e.Kind, e.File)
			}
			p, err := policy.Parse(e.Policy)
			if err != nil {
				t.Fatal(err)
			}
			if !p.Accepts(policy.KindTDX) || p.TDX == nil {
				t.Fatalf("policy does not list tdx rules")
			}
			at, err := time.Parse(time.RFC3339, e.VerifyAt)
			if err != nil {
				t.Fatal(err)
			}
			opts := tdx.Options{Now: at}
			switch e.Roots {
			case tdxtest.RootsFixture:
				opts.Roots = roots
			case tdxtest.RootsIntel:
			default:
				t.Fatalf("roots %q", e.Roots)
			}
			raw, err := os.ReadFile(filepath.Join(vectorDir, e.File))
			if err != nil {
				t.Fatal(err)
			}
			want := e.Want
			if want.Code == string(check.CodeStale) {
				// Freshness is judged by package attestation from the
				// bundle's anchor; at the kind level the vector is valid.
				want = tdxtest.Want{Code: "ok"}
			}
			_, err = verdict(raw, p, opts)
			if !matches(err, want) {
				t.Fatalf("verdict %v, want %+v", err, e.Want)
			}
			t.Logf("%s: %v", e.Want.Code, err)
		})
	}
}

// TestVectorsRegenerate rebuilds every file from the generator and
// requires identical bytes, so the files and their provenance cannot
// drift from the code that documents them.
func TestVectorsRegenerate(t *testing.T) {
	vs, err := tdxtest.Vectors()
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := tdxtest.Manifest(vs)
	if err != nil {
		t.Fatal(err)
	}
	root, err := tdxtest.FixtureRootPEM()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"manifest.json": manifest, tdxtest.FixtureRootFile: root, "PROVENANCE.md": tdxtest.Provenance(vs)}
	for _, v := range vs {
		want[v.Name+".bundle"] = v.Bundle
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
			t.Errorf("%s: %v (run scripts/gen-tdx-vectors)", name, err)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s differs from what the generator makes (run scripts/gen-tdx-vectors)", name)
		}
	}
}
