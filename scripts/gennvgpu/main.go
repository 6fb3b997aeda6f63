// Command gennvgpu writes the NVIDIA GPU attestation test vectors: one
// encoded GPU evidence file per vector, manifest.json, the fixture roots
// and PROVENANCE.md. The output is deterministic; scripts/gen-nvgpu-vectors
// runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sealgate/sealgate/attestation/nvgpu/nvgputest"
)

func main() {
	out := flag.String("out", "testvectors/attestation/nvgpu", "directory to write the vectors to")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gennvgpu:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	vs, err := nvgputest.Vectors()
	if err != nil {
		return err
	}
	manifest, err := nvgputest.Manifest(vs)
	if err != nil {
		return err
	}
	deviceRoot, rimRoot, err := nvgputest.RootPEMs()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Remove the files of vectors that no longer exist.
	old, err := filepath.Glob(filepath.Join(dir, "*"+nvgputest.FileSuffix))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	files := map[string][]byte{
		"manifest.json":          manifest,
		nvgputest.DeviceRootFile: deviceRoot,
		nvgputest.RIMRootFile:    rimRoot,
		"PROVENANCE.md":          nvgputest.Provenance(vs),
	}
	for _, v := range vs {
		files[v.Name+nvgputest.FileSuffix] = v.Evidence
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d vectors to %s\n", len(vs), dir)
	return nil
}
