package snp_test

// BenchmarkVerify is a cold verification of the valid synthetic bundle:
// parse the bundle, Verify (every certificate, the CRL and the report
// signature, then go-sev-guest's verify.SnpAttestation), the REPORT_DATA
// binding and Validate. BenchmarkLibraryVerify is the baseline: go-sev-guest's
// verify.SnpAttestation alone on the same report, certificates, root and
// CRL, with a fresh root (no cached CRL) per iteration.

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/sealgate/sealgate/attestation/snp"
	"github.com/sealgate/sealgate/attestation/snp/snptest"
	"github.com/sealgate/sealgate/internal/testenv"
	"github.com/sealgate/sealgate/proto"
)

func benchInput(b *testing.B) (raw []byte, roots snp.Roots) {
	dir := filepath.Join(testenv.RepoRoot(b), vectorSubdir)
	raw, err := os.ReadFile(filepath.Join(dir, "valid.bundle"))
	if err != nil {
		b.Fatal(err)
	}
	return raw, readFixtureRoots(b, dir)
}

func BenchmarkVerify(b *testing.B) {
	raw, roots := benchInput(b)
	p := snptest.Policy()
	if _, err := fullCheck(raw, p, roots, snptest.VerifyAt); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fullCheck(raw, p, roots, snptest.VerifyAt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLibraryVerify(b *testing.B) {
	raw, roots := benchInput(b)
	bundle, err := proto.ParseBundle(raw)
	if err != nil {
		b.Fatal(err)
	}
	col, err := snp.ParseCollateral(bundle.Collateral)
	if err != nil {
		b.Fatal(err)
	}
	ark := roots["Milan"][0]
	run := func() error {
		rep, err := abi.ReportToProto(bundle.Report)
		if err != nil {
			return err
		}
		ask, err := x509.ParseCertificate(col.Intermediate)
		if err != nil {
			return err
		}
		crl, err := x509.ParseRevocationList(col.CRL)
		if err != nil {
			return err
		}
		root := trust.AMDRootCertsProduct("Milan")
		root.ProductCerts = &trust.ProductCerts{Ark: ark, Ask: ask}
		root.CRL = crl
		att := &spb.Attestation{Report: rep, CertificateChain: &spb.CertificateChain{VcekCert: col.Endorsement, AskCert: col.Intermediate, ArkCert: col.Root}}
		return verify.SnpAttestation(att, &verify.Options{
			CheckRevocations:    true,
			DisableCertFetching: true,
			Now:                 snptest.VerifyAt,
			TrustedRoots:        map[string][]*trust.AMDRootCerts{"Milan": {root}},
		})
	}
	if err := run(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := run(); err != nil {
			b.Fatal(err)
		}
	}
}
