package translog_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sealgate/sealgate/translog"
)

// Parsing never panics, fails only with ErrMalformed, and parse then
// marshal gives back the parsed bytes. The committed corpus under
// testdata/fuzz holds one encoding of each entry kind.

func FuzzParseEntry(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := translog.ParseEntry(data)
		if err != nil {
			if !errors.Is(err, translog.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := e.Marshal()
		if err != nil {
			t.Fatalf("parsed but does not marshal: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("re-marshal differs:\n got %x\nwant %x", again, data)
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := translog.ParseCheckpoint(data)
		if err != nil {
			if !errors.Is(err, translog.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if again := c.Marshal(); !bytes.Equal(again, data) {
			t.Fatalf("re-marshal differs:\n got %q\nwant %q", again, data)
		}
	})
}
