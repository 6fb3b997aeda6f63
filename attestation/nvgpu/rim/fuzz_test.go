package rim_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim"
	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/internal/testenv"
)

// FuzzParse feeds Parse, and Verify under the fixture root, arbitrary
// documents: neither may panic, every error is a *check.Error, and what
// Parse accepts keeps its promises. The corpus is the RIM fixtures of
// NVIDIA's verifier tests (../shared/fixtures/nvidia/rim) when present,
// and the synthetic testdata always.
func FuzzParse(f *testing.F) {
	local, _ := filepath.Glob(filepath.Join("testdata", "*.xml"))
	for _, name := range local {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		fuzzseed.Add(f, b)
	}
	shared := filepath.Join(filepath.Dir(testenv.RepoRoot(f)), "shared", "fixtures", "nvidia", "rim", "*.xml")
	names, _ := filepath.Glob(shared)
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b) // NVIDIA's: not ours to commit
	}
	opts := rim.Options{Now: testdataNow, Roots: fixturePKI(f).Roots()}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := rim.Parse(b)
		checkError(t, "Parse", err)
		if err == nil {
			checkRIM(t, r)
		}
		v, err := rim.Verify(b, opts)
		checkError(t, "Verify", err)
		if err == nil {
			checkRIM(t, v)
			if r == nil {
				t.Fatal("Verify accepted what Parse refused")
			}
		}
	})
}

func checkError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *check.Error
	if _, ok := err.(*check.Error); !ok || !errors.As(err, &e) || e.Code == "" || e.Field == "" {
		t.Fatalf("%s: error %v (%T), want a *check.Error with a code and field", what, err, err)
	}
}

func checkRIM(t *testing.T, r *rim.RIM) {
	t.Helper()
	if r.ID == "" || r.Version == "" || r.ColloquialVersion == "" || len(r.Measurements) == 0 ||
		len(r.SigningChain) == 0 || len(r.SigningChain) > rim.MaxChain {
		t.Fatalf("accepted RIM missing fields: %+v", r)
	}
	for i, m := range r.Measurements {
		if i > 0 && m.Index <= r.Measurements[i-1].Index || m.Index < 0 || m.Index > rim.MaxIndex ||
			len(m.Alternatives) == 0 || len(m.Alternatives) > rim.MaxAlternatives {
			t.Fatalf("measurement %d: %+v", i, m)
		}
		for _, a := range m.Alternatives {
			if len(a) != m.Size {
				t.Fatalf("measurement %d: alternative of %d bytes, size %d", m.Index, len(a), m.Size)
			}
		}
	}
}
