//go:build sealgatetestroots

package main

import (
	"flag"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/internal/vectors"
)

// extraRoots adds -insecure-test-roots to a TEST BUILD of `sealgate attest
// verify`, so the vector tests can drive fixture-rooted vectors through the
// CLI. Production builds never have this flag.
var extraRoots = func(opts *attestation.Options, fs *flag.FlagSet) func() error {
	kind := fs.String("insecure-test-roots-kind", "", "TEST BUILD ONLY: TEE kind of -insecure-test-roots")
	file := fs.String("insecure-test-roots", "", "TEST BUILD ONLY: PEM file of fixture roots to pin instead of the vendor's")
	return func() error {
		if *file == "" {
			return nil
		}
		return vectors.SetRoots(opts, *kind, *file)
	}
}
