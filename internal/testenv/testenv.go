// Package testenv helps tests find what lives outside their package: the
// repository root, its test vectors, and the shared fixtures beside the
// repository (../shared, which is not ours to commit). A test that needs
// something missing calls Missing: it skips on a developer's machine and
// fails when CI=true, so CI proves that everything really ran.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the directory holding go.mod, found from the test's
// working directory upwards.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("testenv: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Shared returns the path of sub inside ../shared beside the repository
// root, or calls Missing when it does not exist.
func Shared(tb testing.TB, sub string) string {
	tb.Helper()
	p := filepath.Join(filepath.Dir(RepoRoot(tb)), "shared", sub)
	if _, err := os.Stat(p); err != nil {
		Missing(tb, "shared fixtures %s (expected at %s)", sub, p)
	}
	return p
}

// Missing skips the test, saying what is missing, or fails it when the
// environment variable CI is "true".
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true and a test needs what is missing: "+format, args...)
	}
	tb.Skipf("missing: "+format, args...)
}
