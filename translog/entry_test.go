package translog_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

func TestEntryRoundTrip(t *testing.T) {
	entries := []translog.Entry{
		evidence(t, translog.KindAdmission, "w1", []byte("collateral")).Entry,
		evidence(t, translog.KindReattestation, "w1", nil).Entry,
		translog.NewStateChange(translog.KindDrain, t0, "w1", "missed re-attestation"),
		translog.NewStateChange(translog.KindEviction, t0, "w1", "drained for 10m0s"),
		translog.NewPolicy(t0, []byte(`{"name":"p"}`)),
	}
	for _, e := range entries {
		t.Run(e.Kind.String(), func(t *testing.T) {
			raw, err := e.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := translog.ParseEntry(raw)
			if err != nil {
				t.Fatal(err)
			}
			again, err := got.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, again) {
				t.Fatalf("re-marshal differs:\n got %x\nwant %x", again, raw)
			}
			if !got.Time.Equal(t0) || got.Kind != e.Kind || got.WorkerID != e.WorkerID {
				t.Fatalf("parsed %+v, want %+v", got, e)
			}
		})
	}
}

func TestFullBundle(t *testing.T) {
	coll := []byte("shared collateral")
	bundle := testBundle(t, coll)
	e, gotColl, err := translog.NewEvidence(translog.KindAdmission, t0, "w1", "acme", make([]byte, 32), make([]byte, 64), [32]byte{}, bundle)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotColl, coll) {
		t.Fatalf("collateral %q, want %q", gotColl, coll)
	}
	if bytes.Contains(e.Bundle, coll) {
		t.Fatal("the entry's bundle still holds the collateral")
	}
	full, err := e.FullBundle(coll)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(full, bundle) {
		t.Fatal("rebuilt bundle differs from the original")
	}
	if _, err := e.FullBundle([]byte("other collateral")); err == nil || !strings.Contains(err.Error(), "collateral hash") {
		t.Fatalf("FullBundle with other collateral: %v, want a collateral hash error", err)
	}
	e.BundleHash[0] ^= 1
	if _, err := e.FullBundle(coll); err == nil || !strings.Contains(err.Error(), "bundle hash") {
		t.Fatalf("FullBundle with a wrong bundle hash: %v, want a bundle hash error", err)
	}
}

func TestParseEntryRejects(t *testing.T) {
	adm := evidence(t, translog.KindAdmission, "w1", []byte("c")).Entry
	good, err := adm.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	drain := translog.NewStateChange(translog.KindDrain, t0, "w1", "r")
	drainRaw, _ := drain.Marshal()
	mod := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
	tests := []struct {
		name    string
		input   []byte
		wantErr string
	}{
		{"empty", nil, "magic"},
		{"bad magic", mod(good, func(b []byte) []byte { b[0] = 'X'; return b }), "magic"},
		{"bad version", mod(good, func(b []byte) []byte { b[5] = 9; return b }), "version"},
		{"unknown kind", mod(good, func(b []byte) []byte { b[6] = 9; return b }), "kind"},
		{"zero time", mod(drainRaw, func(b []byte) []byte { copy(b[7:15], make([]byte, 8)); return b }), "time"},
		{"trailing byte", append(bytes.Clone(good), 0), "trailing"},
		{"truncated", good[:len(good)-1], "truncated"},
		{"empty worker id", mod(drainRaw, func(b []byte) []byte { return append(append(b[:15:15], 0), b[18:]...) }), "worker id"},
		{"worker id with a space", mod(drainRaw, func(b []byte) []byte { b[16] = ' '; return b }), "worker id"},
		{"empty reason", mod(drainRaw, func(b []byte) []byte { return append(b[:18:18], 0, 0) }), "reason"},
		{"nonce not the bundle's", mod(good, func(b []byte) []byte {
			// The nonce follows magic, version, kind, time, three
			// u8-prefixed fields, the endorsement and the policy hash.
			off := 15 + 1 + 2 + 1 + 4 + 1 + 32 + 1 + 64 + 32
			b[off] ^= 1
			return b
		}), "nonce"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := translog.ParseEntry(tt.input)
			if err == nil {
				t.Fatal("parsed, want an error")
			}
			if !errors.Is(err, translog.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestMarshalRejectsInlineCollateral(t *testing.T) {
	p := evidence(t, translog.KindAdmission, "w1", []byte("c"))
	b, err := proto.ParseBundle(p.Entry.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	b.Collateral = []byte("inline")
	p.Entry.Bundle, _ = b.Marshal()
	if _, err := p.Entry.Marshal(); err == nil || !strings.Contains(err.Error(), "collateral") {
		t.Fatalf("Marshal: %v, want an inline collateral error", err)
	}
}
