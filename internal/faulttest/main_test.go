package faulttest

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/sealgate/sealgate/internal/netproc"
	"github.com/sealgate/sealgate/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

// run builds the sealgate and sealgate-worker commands once for the whole
// test binary, then runs the tests with a throwaway PostgreSQL cluster.
func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sealgate-faulttest")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := netproc.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttest:", err)
		return 1
	}
	if bins, err = netproc.Build(context.Background(), root, dir); err != nil {
		fmt.Fprintln(os.Stderr, "faulttest:", err)
		return 1
	}
	return pgtest.Main(m)
}
