package attestation_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/internal/vectors"
)

// TestVectors drives every attestation vector through attestation.Verify
// and checks its verdict. The CLI and the client run the same vectors in
// their own tests.
func TestVectors(t *testing.T) {
	vs := vectors.Load(t)
	if len(vs) < 40 {
		t.Errorf("%d vectors, want at least 40", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Kind+"/"+v.Name, func(t *testing.T) {
			_, err := attestation.Verify(v.Bundle, v.Policy, v.Options(t))
			if err := v.Check(err); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestManifestIsTheMergeOfTheKindManifests(t *testing.T) {
	got, err := os.ReadFile(filepath.Join(vectors.Dir(t), "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, vectors.Merge(t)) {
		t.Fatal("testvectors/attestation/manifest.json is stale: run scripts/gen-attestation-vectors")
	}
}

func TestGPUBundlesAreCurrent(t *testing.T) {
	files, err := vectors.GPUBundles()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(vectors.Dir(t), "gpu", name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("testvectors/attestation/gpu/%s is stale (%v): run scripts/gen-attestation-vectors", name, err)
		}
	}
}
