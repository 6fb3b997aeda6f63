package genmanifest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sealgate/sealgate/internal/vectors"
)

// TestWrite writes testvectors/attestation/manifest.json when run with
// -write (scripts/gen-attestation-vectors does); otherwise it does nothing.
func TestWrite(t *testing.T) {
	if os.Getenv("SEALGATE_WRITE_MANIFEST") != "1" {
		return
	}
	if err := os.WriteFile(filepath.Join(vectors.Dir(t), "manifest.json"), vectors.Merge(t), 0o644); err != nil {
		t.Fatal(err)
	}
}
