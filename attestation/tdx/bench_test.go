package tdx_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/verify"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/tdx"
	"github.com/sealgate/sealgate/attestation/tdx/tdxtest"
	"github.com/sealgate/sealgate/proto"
)

// loadVector reads one manifest entry's bundle, policy and options.
func loadVector(t testing.TB, e tdxtest.ManifestEntry) ([]byte, *policy.Policy, tdx.Options) {
	t.Helper()
	p, err := policy.Parse(e.Policy)
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339, e.VerifyAt)
	if err != nil {
		t.Fatal(err)
	}
	opts := tdx.Options{Now: at}
	if e.Roots == tdxtest.RootsFixture {
		opts.Roots = fixtureRoots(t)
	}
	raw, err := os.ReadFile(filepath.Join(vectorDir, e.File))
	if err != nil {
		t.Fatal(err)
	}
	return raw, p, opts
}

// validVector returns the valid synthetic bundle, its policy and options.
func validVector(t testing.TB) ([]byte, *policy.Policy, tdx.Options) {
	t.Helper()
	for _, e := range readManifest(t) {
		if e.Name == "valid" {
			return loadVector(t, e)
		}
	}
	t.Fatal("no valid vector")
	return nil, nil, tdx.Options{}
}

// BenchmarkVerify is a cold verification of the valid synthetic bundle:
// bundle parse, Verify, binding and Validate, nothing cached.
func BenchmarkVerify(b *testing.B) {
	raw, p, opts := validVector(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := verdict(raw, p, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLibraryVerify is the baseline: go-tdx-guest's verify.TdxQuote
// on the same quote and collateral (parsed quote, collateral served by
// the same offline getter, CRLs checked), as Verify runs it.
func BenchmarkLibraryVerify(b *testing.B) {
	raw, _, opts := validVector(b)
	bundle, err := proto.ParseBundle(raw)
	if err != nil {
		b.Fatal(err)
	}
	getter, err := tdx.OfflineGetter(bundle.Collateral)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		q, err := abi.QuoteToProto(bundle.Report)
		if err != nil {
			b.Fatal(err)
		}
		err = verify.TdxQuote(q, &verify.Options{
			GetCollateral: true, CheckRevocations: true, Getter: getter, TrustedRoots: opts.Roots,
			Now: &verify.TimeSet{PckCertChain: opts.Now, TcbInfo: opts.Now, QeIdentity: opts.Now, PckCrl: opts.Now, RootCaCrl: opts.Now},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
