package translog_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/translog"
)

func TestSignerKeys(t *testing.T) {
	for range 20 { // base64 of some seeds holds '+', which the key format also uses
		skey, vkey, err := translog.GenerateKey("example.test/log")
		if err != nil {
			t.Fatal(err)
		}
		s, err := translog.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		if s.VerifierKey() != vkey {
			t.Fatalf("verifier key %q, want %q", s.VerifierKey(), vkey)
		}
	}
	for _, bad := range []string{"", "PRIVATE+KEY+x", "example.test/log+01234567+AAAA"} {
		if _, err := translog.NewSigner(bad); err == nil {
			t.Errorf("NewSigner(%q) accepted", bad)
		}
	}
	if _, _, err := translog.GenerateKey("has space"); err == nil {
		t.Error("GenerateKey accepted an origin with a space")
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	c := translog.Checkpoint{Origin: "example.test/log", Size: 42, Root: [32]byte{7}, Time: t0}
	got, err := translog.ParseCheckpoint(c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Fatalf("parsed %+v, want %+v", got, c)
	}
}

func TestParseCheckpointRejects(t *testing.T) {
	good := string(translog.Checkpoint{Origin: "o", Size: 1, Time: t0}.Marshal())
	lines := strings.Split(good, "\n")
	with := func(i int, v string) string {
		l := append([]string(nil), lines...)
		l[i] = v
		return strings.Join(l, "\n")
	}
	tests := []struct{ name, input, wantErr string }{
		{"no time line", strings.Join(lines[:3], "\n") + "\n", "lines"},
		{"extra line", good + "x\n", "lines"},
		{"no final newline", strings.TrimSuffix(good, "\n"), "lines"},
		{"empty origin", with(0, ""), "origin"},
		{"size with a sign", with(1, "+1"), "size"},
		{"size with a leading zero", with(1, "01"), "size"},
		{"short root", with(2, "AAAA"), "root"},
		{"time missing", with(3, "1763799617000"), "time"},
		{"time zero", with(3, "time 0"), "time"},
		{"time with a leading zero", with(3, "time 01"), "time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := translog.ParseCheckpoint([]byte(tt.input))
			if !errors.Is(err, translog.ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want ErrMalformed naming %q", err, tt.wantErr)
			}
		})
	}
}
