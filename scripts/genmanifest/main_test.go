package genmanifest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sealgate/sealgate/internal/vectors"
)

// TestWrite writes testvectors/attestation/gpu (the nvgpu vectors wrapped
// into TDX bundles) and testvectors/attestation/manifest.json when
// SEALGATE_WRITE_MANIFEST=1 (scripts/gen-attestation-vectors sets it);
// otherwise it does nothing.
func TestWrite(t *testing.T) {
	if os.Getenv("SEALGATE_WRITE_MANIFEST") != "1" {
		return
	}
	vectors.WriteGPUBundles(t)
	if err := os.WriteFile(filepath.Join(vectors.Dir(t), "manifest.json"), vectors.Merge(t), 0o644); err != nil {
		t.Fatal(err)
	}
}
