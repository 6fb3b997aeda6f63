package sim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/sealgate/sealgate/internal/fuzzseed"
)

func TestReportRoundTripAndSignature(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	d := NewDevice(DeviceConfig{Measurement: [48]byte{9}, Now: func() time.Time { return now }})
	var rd [64]byte
	rand.Read(rd[:])
	raw := d.Report(rd)
	r, err := Verify(raw, RootPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if r.ReportData != rd || r.Measurement[0] != 9 || !r.Timestamp.Equal(now) || r.Debug {
		t.Fatalf("fields: %+v", r)
	}
	if !bytes.Equal(r.Marshal(), raw) {
		t.Fatal("marshal differs from input")
	}
	// Every signed byte matters.
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x01
		if _, err := Verify(bad, RootPublicKey()); err == nil {
			t.Fatalf("flipping byte %d still verifies", i)
		}
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := Verify(raw, other); !errors.Is(err, ErrSignature) {
		t.Fatalf("other root: %v", err)
	}
}

func FuzzParseReport(f *testing.F) {
	fuzzseed.Add(f, NewDevice(DeviceConfig{}).Report([64]byte{}))
	fuzzseed.Add(f, []byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReport(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Marshal(), b) {
			t.Fatal("parse then marshal changed the bytes")
		}
	})
}
