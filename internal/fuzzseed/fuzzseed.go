// Package fuzzseed keeps fuzz targets' seed corpora committed in Go's own
// corpus format, under each package's testdata/fuzz/FuzzXxx/, where
// `go test` reads them in seed mode and `go test -fuzz` starts from them.
//
// A fuzz target builds its seeds in code, from the test vectors and
// fixtures, and adds them with Add instead of f.Add. With the environment
// variable SEALGATE_FUZZ_SEEDS=write (scripts/gen-fuzz-corpus), Add also
// writes each seed to testdata/fuzz/FuzzXxx/seed-HASH, so the committed
// corpus is derived, and regenerated, from the same code. Otherwise a seed
// whose file is already committed is not added again: Go reads the file.
//
// Generated seeds are named seed-HASH; a crash the fuzzer finds is written
// by Go as HASH alone and, once committed, is a regression seed that the
// generator never removes.
package fuzzseed

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unicode/utf8"
)

// Bounds on what Add writes, so the committed corpus stays small: a
// target's seeds are written in the order they are added while their files
// total at most Budget bytes, and its first seed is written anyway when it
// is at most MaxFirst bytes (a whole evidence bundle, say). The rest are
// only added in code.
const (
	Budget   = 8 << 10
	MaxFirst = 32 << 10
)

// Env is the environment variable that makes Add write seed files.
const Env = "SEALGATE_FUZZ_SEEDS"

// written counts the bytes Add has written for each target.
var written = struct {
	sync.Mutex // guards bytes
	bytes      map[string]int
}{bytes: map[string]int{}}

// Add adds one seed, the values of one call of f's fuzz function, to f's
// corpus, writing it to testdata/fuzz when Env is "write".
func Add(f *testing.F, vals ...any) {
	f.Helper()
	data := Encode(vals...)
	name := filepath.Join("testdata", "fuzz", f.Name(), FileName(data))
	if os.Getenv(Env) == "write" {
		if reserve(f.Name(), len(data)) {
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				f.Fatal(err)
			}
			if err := os.WriteFile(name, data, 0o644); err != nil {
				f.Fatal(err)
			}
		}
	} else if fileHolds(name, data) {
		return // go test reads it from testdata
	}
	f.Add(vals...)
}

// reserve reports whether a seed file of n bytes fits target's budget,
// and counts it if so.
func reserve(target string, n int) bool {
	written.Lock()
	defer written.Unlock()
	used := written.bytes[target]
	if used+n > Budget && (used > 0 || n > MaxFirst) {
		return false
	}
	written.bytes[target] = used + n
	return true
}

// FileName is the name Add gives a seed file of data: "seed-" and the
// first 16 hex digits of its SHA-256, as Go names corpus entries.
func FileName(data []byte) string {
	return fmt.Sprintf("seed-%x", sha256.Sum256(data))[:5+16]
}

func fileHolds(name string, data []byte) bool {
	b, err := os.ReadFile(name)
	return err == nil && bytes.Equal(b, data)
}

// Encode returns vals in Go's corpus file format ("go test fuzz v1"), as
// the fuzzing engine writes it.
func Encode(vals ...any) []byte {
	b := bytes.NewBufferString("go test fuzz v1\n")
	for _, v := range vals {
		switch t := v.(type) {
		case int, int8, int16, int64, uint, uint16, uint32, uint64, bool:
			fmt.Fprintf(b, "%T(%v)\n", t, t)
		case float32:
			if math.IsNaN(float64(t)) && math.Float32bits(t) != math.Float32bits(float32(math.NaN())) {
				fmt.Fprintf(b, "math.Float32frombits(0x%x)\n", math.Float32bits(t))
			} else {
				fmt.Fprintf(b, "%T(%v)\n", t, t)
			}
		case float64:
			if math.IsNaN(t) && math.Float64bits(t) != math.Float64bits(math.NaN()) {
				fmt.Fprintf(b, "math.Float64frombits(0x%x)\n", math.Float64bits(t))
			} else {
				fmt.Fprintf(b, "%T(%v)\n", t, t)
			}
		case string:
			fmt.Fprintf(b, "string(%q)\n", t)
		case rune:
			if utf8.ValidRune(t) {
				fmt.Fprintf(b, "rune(%q)\n", t)
			} else {
				fmt.Fprintf(b, "int32(%v)\n", t)
			}
		case byte:
			fmt.Fprintf(b, "byte(%q)\n", t)
		case []byte:
			fmt.Fprintf(b, "[]byte(%q)\n", t)
		default:
			panic(fmt.Sprintf("fuzzseed: unsupported seed type %T", t))
		}
	}
	return b.Bytes()
}
