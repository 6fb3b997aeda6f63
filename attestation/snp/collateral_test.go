package snp_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/attestation/snp"
	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/internal/testenv"
	"github.com/sealgate/sealgate/proto"
)

func TestCollateralRoundTrip(t *testing.T) {
	for _, c := range []snp.Collateral{
		{Key: snp.KeyVCEK, Endorsement: []byte{1}, Intermediate: []byte{2, 2}, Root: []byte{3, 3, 3}},
		{Key: snp.KeyVLEK, Endorsement: []byte{1}, Intermediate: []byte{2}, Root: []byte{3}, CRL: []byte{4, 4}},
		{Key: snp.KeyVCEK, Endorsement: bytes.Repeat([]byte{1}, snp.MaxCollateralItem), Intermediate: []byte{2}, Root: []byte{3}, CRL: bytes.Repeat([]byte{4}, snp.MaxCollateralItem)},
	} {
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := snp.ParseCollateral(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Key != c.Key || !bytes.Equal(got.Endorsement, c.Endorsement) || !bytes.Equal(got.Intermediate, c.Intermediate) ||
			!bytes.Equal(got.Root, c.Root) || !bytes.Equal(got.CRL, c.CRL) || (got.CRL == nil) != (c.CRL == nil) {
			t.Errorf("round trip: found %+v, want %+v", got, c)
		}
	}
}

// validCollateral is a small valid encoding: VCEK key, items 1, 22, 333,
// CRL 4444.
func validCollateral() []byte {
	return []byte("SGSC\x00\x01\x00" +
		"\x00\x00\x01\x01" +
		"\x00\x00\x02\x02\x02" +
		"\x00\x00\x03\x03\x03\x03" +
		"\x01\x00\x00\x04\x04\x04\x04\x04")
}

func TestParseCollateral(t *testing.T) {
	v := validCollateral()
	if _, err := snp.ParseCollateral(v); err != nil {
		t.Fatalf("valid: %v", err)
	}
	noCRL := append(bytes.Clone(v[:len(v)-8]), 0)
	if c, err := snp.ParseCollateral(noCRL); err != nil || c.CRL != nil {
		t.Fatalf("no crl: found %v, %v, want a collateral without crl", c, err)
	}
	for _, tc := range []struct {
		name    string
		input   []byte
		wantErr string
	}{
		{"empty", nil, "magic"},
		{"bad magic", append([]byte("SGSX"), v[4:]...), "magic"},
		{"version 2", append([]byte("SGSC\x00\x02"), v[6:]...), "version: found 2, want 1"},
		{"truncated version", v[:5], "version"},
		{"unknown key", append(append(bytes.Clone(v[:6]), 2), v[7:]...), "key: found 2, want 0 (VCEK) or 1 (VLEK)"},
		{"truncated key", v[:6], "key: truncated"},
		{"truncated endorsement", v[:9], "endorsement: truncated"},
		{"empty endorsement", append([]byte("SGSC\x00\x01\x00\x00\x00\x00"), v[11:]...), "endorsement: found 0 bytes"},
		{"truncated intermediate", v[:13], "intermediate: truncated"},
		{"truncated root", v[:19], "root: truncated"},
		{"missing crl flag", v[:len(v)-8], "crl present: truncated"},
		{"crl flag 2", append(bytes.Clone(v[:len(v)-8]), 2), "crl present: found 2"},
		{"truncated crl", v[:len(v)-1], "crl: truncated"},
		{"empty crl", append(bytes.Clone(v[:len(v)-8]), 1, 0, 0, 0), "crl: found 0 bytes"},
		{"trailing byte", append(bytes.Clone(v), 0), "1 trailing bytes"},
		{"oversized item", append(append([]byte("SGSC\x00\x01\x00\x01\x00\x01"), make([]byte, snp.MaxCollateralItem+1)...), v[11:]...), "endorsement: found 65537 bytes, want 1 to 65536"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := snp.ParseCollateral(tc.input)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("found %v, want an error containing %q", err, tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "malformed snp collateral: ") {
				t.Errorf("error %q does not start with the package's prefix", err)
			}
		})
	}
}

func TestMarshalCollateral(t *testing.T) {
	for _, tc := range []struct {
		name    string
		input   snp.Collateral
		wantErr string
	}{
		{"zero", snp.Collateral{}, "endorsement: found 0 bytes"},
		{"unknown key", snp.Collateral{Key: 7, Endorsement: []byte{1}, Intermediate: []byte{1}, Root: []byte{1}}, "key: found 7"},
		{"no intermediate", snp.Collateral{Endorsement: []byte{1}, Root: []byte{1}}, "intermediate: found 0 bytes"},
		{"no root", snp.Collateral{Endorsement: []byte{1}, Intermediate: []byte{1}}, "root: found 0 bytes"},
		{"empty non-nil crl", snp.Collateral{Endorsement: []byte{1}, Intermediate: []byte{1}, Root: []byte{1}, CRL: []byte{}}, "crl: found 0 bytes"},
		{"oversized root", snp.Collateral{Endorsement: []byte{1}, Intermediate: []byte{1}, Root: make([]byte, snp.MaxCollateralItem+1)}, "root: found 65537 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.input.Marshal()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("found %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// vectorCorpus returns the reports and collaterals of the committed
// vectors, for fuzz seeds.
func vectorCorpus(f *testing.F) (reports, collaterals [][]byte) {
	dir := filepath.Join(testenv.RepoRoot(f), vectorSubdir)
	files, err := filepath.Glob(filepath.Join(dir, "*.bundle"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no vectors in %s: %v", dir, err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		b, err := proto.ParseBundle(raw)
		if err != nil {
			f.Fatal(err)
		}
		reports = append(reports, b.Report)
		collaterals = append(collaterals, b.Collateral)
	}
	return reports, collaterals
}

// FuzzParseCollateral: parsing never panics, every failure carries the
// package's prefix, and parse-then-marshal gives back the parsed bytes.
func FuzzParseCollateral(f *testing.F) {
	_, cols := vectorCorpus(f)
	for _, c := range append(cols, validCollateral()) {
		fuzzseed.Add(f, c)
		if len(c) > 8 {
			fuzzseed.Add(f, c[:len(c)-1])
			m := bytes.Clone(c)
			m[7] ^= 1
			fuzzseed.Add(f, m)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := snp.ParseCollateral(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "malformed snp collateral: ") {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		b, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed collateral: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("collateral does not re-marshal to the parsed bytes:\n got %x\nwant %x", b, data)
		}
	})
}
