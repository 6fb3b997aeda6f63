package proto_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sealgate/sealgate/proto"
)

func TestLogEntriesRoundTrip(t *testing.T) {
	in := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte("b"), 300)}
	raw, err := proto.MarshalLogEntries(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := proto.ParseLogEntries(raw, 3)
	if err != nil || len(out) != 3 || !bytes.Equal(out[2], in[2]) || len(out[1]) != 0 {
		t.Fatalf("parsed %q, %v", out, err)
	}
	for name, bad := range map[string][]byte{
		"truncated length": raw[:2],
		"truncated entry":  raw[:len(raw)-1],
	} {
		if _, err := proto.ParseLogEntries(bad, 3); !errors.Is(err, proto.ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	if _, err := proto.ParseLogEntries(raw, 2); !errors.Is(err, proto.ErrMalformed) {
		t.Errorf("more entries than allowed: %v, want ErrMalformed", err)
	}
}
