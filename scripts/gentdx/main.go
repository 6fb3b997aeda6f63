// Command gentdx writes the TDX attestation test vectors: one evidence
// bundle per vector, manifest.json, the fixture root and PROVENANCE.md.
// The output is deterministic; scripts/gen-tdx-vectors runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sealgate/sealgate/attestation/tdx/tdxtest"
)

func main() {
	out := flag.String("out", "testvectors/attestation/tdx", "directory to write the vectors to")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gentdx:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	vs, err := tdxtest.Vectors()
	if err != nil {
		return err
	}
	manifest, err := tdxtest.Manifest(vs)
	if err != nil {
		return err
	}
	root, err := tdxtest.FixtureRootPEM()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Remove bundles of vectors that no longer exist.
	old, err := filepath.Glob(filepath.Join(dir, "*.bundle"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	files := map[string][]byte{
		"manifest.json":         manifest,
		tdxtest.FixtureRootFile: root,
		"PROVENANCE.md":         tdxtest.Provenance(vs),
	}
	for _, v := range vs {
		files[v.Name+".bundle"] = v.Bundle
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d vectors to %s\n", len(vs), dir)
	return nil
}
