package snp_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/snp"
	"github.com/sealgate/sealgate/attestation/snp/snptest"
	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/internal/testenv"
)

func TestVerifyOptions(t *testing.T) {
	_, err := snp.Verify(nil, nil, snp.Options{})
	checkVerdict(t, err, want(check.CodeOptions, "now"))
}

func TestVerifyClaims(t *testing.T) {
	s := snptest.NewSigner(t, nil)
	var rd [64]byte
	copy(rd[:], "claims")
	crl := snptest.BuildCRL(t, s.Ark, s.Keys.Ark, snptest.CRLNextUpdate)
	c, err := snp.Verify(snptest.BuildReport(t, s, snptest.ReportSpec{ReportData: rd, Policy: abi.SnpPolicy{ABIMajor: 1, ABIMinor: 51, SingleSocket: true}}),
		snptest.Encode(t, snptest.Chain(s, snp.KeyVCEK, crl)), snp.Options{Now: snptest.VerifyAt, Roots: snptest.Roots(s)})
	if err != nil {
		t.Fatal(err)
	}
	want := fixtureClaims()
	want.ReportData = rd
	want.GuestSVN = 1
	want.GuestPolicy = snp.GuestPolicy{ABIMajor: 1, ABIMinor: 51, SingleSocket: true}
	want.NextUpdate = snptest.CRLNextUpdate // before every certificate's expiry
	if *c != *want {
		t.Errorf("claims:\nfound %+v\n want %+v", c, want)
	}
	// Without a CRL the verdict lasts until the first certificate expires:
	// the VCEK, 7×365 days after it was made.
	c, err = snp.Verify(snptest.BuildReport(t, s, snptest.ReportSpec{}), snptest.Encode(t, snptest.Chain(s, snp.KeyVCEK, nil)), snp.Options{Now: snptest.VerifyAt, Roots: snptest.Roots(s)})
	if err != nil {
		t.Fatal(err)
	}
	if w := snptest.Created.Add(7 * 365 * 24 * time.Hour); !c.NextUpdate.Equal(w) || c.CRLPresent {
		t.Errorf("without crl: next update %v crl %v, want %v false", c.NextUpdate, c.CRLPresent, w)
	}
}

func TestVerifyRefusals(t *testing.T) {
	s := snptest.NewSigner(t, nil)
	crl := snptest.BuildCRL(t, s.Ark, s.Keys.Ark, snptest.CRLNextUpdate)
	good := snptest.BuildReport(t, s, snptest.ReportSpec{})
	goodCol := snptest.Chain(s, snp.KeyVCEK, crl)
	opts := snp.Options{Now: snptest.VerifyAt, Roots: snptest.Roots(s)}
	unsigned := bytes.Clone(good)
	unsigned[0x48] = 7 << 2 // SIGNING_KEY none
	notYet := snptest.BuildCRL(t, s.Ark, s.Keys.Ark, snptest.CRLNextUpdate)
	for _, tc := range []struct {
		name   string
		report []byte
		col    snp.Collateral
		opts   snp.Options
		want   manifestWant
	}{
		{"unsigned report", unsigned, goodCol, opts, want(check.CodeSignature, "report signing_key")},
		{"no pinned root for the product", good, goodCol, snp.Options{Now: snptest.VerifyAt, Roots: snp.Roots{"Genoa": {s.Ark}}}, want(check.CodeChain, "ark")},
		{"empty roots refuse everything", good, goodCol, snp.Options{Now: snptest.VerifyAt, Roots: snp.Roots{}}, want(check.CodeChain, "ark")},
		{"before the crl was issued", good, snp.Collateral{Key: snp.KeyVCEK, Endorsement: s.Vcek.Raw, Intermediate: s.Ask.Raw, Root: s.Ark.Raw, CRL: notYet},
			snp.Options{Now: snptest.CRLThisUpdate.Add(-time.Hour), Roots: snptest.Roots(s)}, want(check.CodeCollateralExpired, "crl validity")},
		{"ark as intermediate", good, snp.Collateral{Key: snp.KeyVCEK, Endorsement: s.Vcek.Raw, Intermediate: s.Ark.Raw, Root: s.Ark.Raw, CRL: crl}, opts, want(check.CodeChain, "vcek")},
		{"ark not a certificate", good, snp.Collateral{Key: snp.KeyVCEK, Endorsement: s.Vcek.Raw, Intermediate: s.Ask.Raw, Root: []byte{0x30, 0}, CRL: crl}, opts, want(check.CodeMalformed, "ark certificate")},
		{"crl not a crl", good, snp.Collateral{Key: snp.KeyVCEK, Endorsement: s.Vcek.Raw, Intermediate: s.Ask.Raw, Root: s.Ark.Raw, CRL: []byte{0x30, 0}}, opts, want(check.CodeMalformed, "crl")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := snp.Verify(tc.report, snptest.Encode(t, tc.col), tc.opts)
			checkVerdict(t, err, tc.want)
		})
	}
}

// FuzzVerify: Verify never panics on any report and collateral, and every
// refusal is a *check.Error with a code.
func FuzzVerify(f *testing.F) {
	reports, cols := vectorCorpus(f)
	for i := range reports {
		fuzzseed.Add(f, reports[i], cols[i])
	}
	roots := readFixtureRoots(f, filepath.Join(testenv.RepoRoot(f), vectorSubdir))
	f.Fuzz(func(t *testing.T, report, col []byte) {
		c, err := snp.Verify(report, col, snp.Options{Now: snptest.VerifyAt, Roots: roots})
		if err != nil {
			if check.CodeOf(err) == "" {
				t.Fatalf("refusal without a code: %v", err)
			}
			return
		}
		if c == nil || c.Product == "" {
			t.Fatalf("accepted without claims: %+v", c)
		}
	})
}
