package fuzzseed

import (
	"flag"
	"math"
	"path/filepath"
	"testing"
)

// encodingSeed holds one value of every type the encoder writes, awkward
// bytes included.
var encodingSeed = []any{[]byte("\x00\xff\"\\\n€"), "é\x80\t", true, int(-7), uint16(65535), float64(-0.25), math.Inf(1), byte('\n'), rune('ü'), int64(math.MinInt64)}

// TestEncodingIsGo requires the committed file of FuzzEncoding to be what
// Encode writes for encodingSeed; FuzzEncoding, in seed mode, fails unless
// Go reads that file as exactly encodingSeed.
func TestEncodingIsGo(t *testing.T) {
	data := Encode(encodingSeed...)
	name := filepath.Join("testdata", "fuzz", "FuzzEncoding", FileName(data))
	if !fileHolds(name, data) {
		t.Fatalf("%s does not hold Encode's output (scripts/gen-fuzz-corpus writes it)", name)
	}
}

// FuzzEncoding is not a fuzz target of a parser (scripts/fuzz leaves it
// out): in seed mode it proves that Go reads the committed file as the
// values Encode wrote.
func FuzzEncoding(f *testing.F) {
	Add(f, encodingSeed...) // writes the file, or leaves it to Go to read
	saw := false
	f.Cleanup(func() {
		if fz := flag.Lookup("test.fuzz"); !saw && (fz == nil || fz.Value.String() == "") {
			f.Error("go test did not read the committed seed as encodingSeed")
		}
	})
	f.Fuzz(func(t *testing.T, b []byte, s string, ok bool, i int, u uint16, x, inf float64, c byte, r rune, l int64) {
		if string(Encode(b, s, ok, i, u, x, inf, c, r, l)) == string(Encode(encodingSeed...)) {
			saw = true
		}
	})
}
