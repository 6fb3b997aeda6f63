//go:build !sealgatetestroots

package main

import (
	"flag"

	"github.com/sealgate/sealgate/attestation"
)

// extraRoots is nil in every production build: `sealgate attest verify`
// accepts only the pinned vendor roots. Test builds (tag
// sealgatetestroots, see roots_testbuild.go) let the vector tests inject
// fixture roots.
var extraRoots func(*attestation.Options, *flag.FlagSet) func() error
