package tdx_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/attestation/tdx"
	"github.com/sealgate/sealgate/attestation/tdx/tdxtest"
	"github.com/sealgate/sealgate/internal/fuzzseed"
)

func sampleCollateral(t testing.TB, crls bool) *tdx.Collateral {
	t.Helper()
	pki, err := tdxtest.NewPKI("collateral test", tdxtest.VectorPKIFrom)
	if err != nil {
		t.Fatal(err)
	}
	spec := tdxtest.DefaultCollateral(tdxtest.VectorIssued)
	spec.NoCRLs = !crls
	c, err := pki.Collateral(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCollateralRoundTrip(t *testing.T) {
	for _, crls := range []bool{true, false} {
		c := sampleCollateral(t, crls)
		enc, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := tdx.ParseCollateral(enc)
		if err != nil {
			t.Fatal(err)
		}
		if got.HasCRLs() != crls || !bytes.Equal(got.TCBInfo, c.TCBInfo) || !bytes.Equal(got.QEIdentityChain.Root, c.QEIdentityChain.Root) || !bytes.Equal(got.RootCACRL, c.RootCACRL) {
			t.Fatalf("crls %v: parsed collateral differs", crls)
		}
		again, err := got.Marshal()
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("crls %v: marshal after parse differs: %v", crls, err)
		}
	}
}

func TestCollateralStrict(t *testing.T) {
	c := sampleCollateral(t, true)
	enc, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(enc)) }
	tests := []struct {
		name    string
		input   []byte
		wantErr string
	}{
		{"empty", nil, "magic"},
		{"bad magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), "magic"},
		{"bad version", edit(func(b []byte) []byte { b[5] = 2; return b }), "version: found 2, want 1"},
		{"trailing byte", append(bytes.Clone(enc), 0), "1 trailing bytes"},
		{"truncated", enc[:len(enc)-1], "truncated"},
		{"crl flag 2", func() []byte {
			nc := sampleCollateral(t, false)
			b, _ := nc.Marshal()
			b[len(b)-1] = 2
			return b
		}(), "crls: found 2, want 0 (absent) or 1 (present)"},
		{"crl flag 1 without crls", func() []byte {
			nc := sampleCollateral(t, false)
			b, _ := nc.Marshal()
			b[len(b)-1] = 1
			return b
		}(), "crls: truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tdx.ParseCollateral(tc.input)
			var ce *tdx.CollateralError
			if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseCollateral: %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestCollateralMarshalRefuses(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*tdx.Collateral)
		wantErr string
	}{
		{"no tcb info", func(c *tdx.Collateral) { c.TCBInfo = nil }, "tcb_info: found 0 bytes"},
		{"no qe identity root", func(c *tdx.Collateral) { c.QEIdentityChain.Root = nil }, "qe_identity issuer chain root certificate"},
		{"pck crl without root crl", func(c *tdx.Collateral) { c.RootCACRL = nil }, "root_ca_crl: found none"},
		{"root crl without pck crl", func(c *tdx.Collateral) { c.PCKCRL, c.PCKCRLChain = nil, tdx.IssuerChain{} }, "want all three or none"},
		{"empty pck crl", func(c *tdx.Collateral) { c.PCKCRL = []byte{} }, "pck_crl: found 0 bytes"},
		{"oversized tcb info", func(c *tdx.Collateral) { c.TCBInfo = make([]byte, tdx.MaxJSONSize+1) }, "want 1 to 262144"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleCollateral(t, true)
			tc.edit(c)
			if _, err := c.Marshal(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Marshal: %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzParseCollateral: whatever parses marshals back to the same bytes.
func FuzzParseCollateral(f *testing.F) {
	for _, crls := range []bool{true, false} {
		enc, err := sampleCollateral(f, crls).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		fuzzseed.Add(f, enc)
	}
	fuzzseed.Add(f, []byte(tdx.MagicCollateral+"\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := tdx.ParseCollateral(b)
		if err != nil {
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("parsed collateral does not marshal: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatal("parse then marshal changed the bytes")
		}
	})
}
