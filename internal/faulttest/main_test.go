package faulttest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sealgate/sealgate/internal/pgtest"
)

// sealgateBin and workerBin are the sealgate and sealgate-worker commands,
// built once for the whole test binary by TestMain.
var sealgateBin, workerBin string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sealgate-faulttest")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttest:", err)
		return 1
	}
	sealgateBin, workerBin = filepath.Join(dir, "sealgate"), filepath.Join(dir, "sealgate-worker")
	for bin, pkg := range map[string]string{sealgateBin: "./cmd/sealgate", workerBin: "./cmd/sealgate-worker"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "faulttest: go build %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	return pgtest.Main(m)
}

// moduleRoot returns the directory holding go.mod, found from the working
// directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
