//go:build unix

// Package snptest builds synthetic AMD SEV-SNP evidence for tests: reports
// and collateral under test-only AMD key chains, made from go-sev-guest's
// testing package: its fixed test keys (testing/data/keys), its KDS
// certificate extensions (testing.CustomExtensions), its report signer
// (testing.AmdSigner) and, for the certificates, the names, extensions and
// lifetimes of its AmdSignerBuilder.
//
// Under testing/cryptotest.SetGlobalRandom everything here is
// deterministic (call WarmKeys first, outside the seeded stream).
//
// TEST-ONLY. The fixture roots are trusted only where a test passes them
// in snp.Options.Roots; production code never imports this package, and
// production verification (AMD's pinned roots) refuses this evidence.
//
// Unix only, like go-sev-guest's testing package it builds on.
package snptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	test "github.com/google/go-sev-guest/testing"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/snp"
)

// Fixed inputs of every fixture.
var (
	// Created is when the fixture ARK, ASK, ASVK, VCEK and VLEK
	// certificates were made; the VCEK and VLEK expire 7×365 days later
	// (2032-05-30), the ARK and intermediates 25×365 days later.
	Created = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	// The fixture CRL is current from CRLThisUpdate to CRLNextUpdate.
	CRLThisUpdate = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	CRLNextUpdate = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	// VerifyAt is a time at which fixture evidence is valid.
	VerifyAt = time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)

	// TCB is the fixture platform's TCB: reported, current, committed,
	// launch, and certified by the VCEK and VLEK.
	TCB         = kds.TCBParts{BlSpl: 4, TeeSpl: 0, SnpSpl: 22, UcodeSpl: 213}
	Measurement = sha512.Sum384([]byte("sealgate snp fixture measurement"))
	HostData    = sha256.Sum256([]byte("sealgate snp fixture host data"))
	ChipID      = sha512.Sum512([]byte("sealgate snp fixture chip id"))
	reportID    = sha256.Sum256([]byte("sealgate snp fixture report id"))
)

const (
	// MilanFMS is CPUID(1).EAX of an AMD EPYC Milan B0, as version 3
	// reports carry it.
	MilanFMS = 0x00a00f10
	// productName is what the fixture VCEK names.
	productName = "Milan-B0"
	// cspID names the fixture VLEK's cloud provider.
	cspID = "sealgate-fixture"
)

func tcbVersion(tb testing.TB, p kds.TCBParts) kds.TCBVersion {
	tb.Helper()
	v, err := kds.ComposeTCBParts(p)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// NewSigner builds a test-only AMD chain for Milan from keys (nil:
// go-sev-guest's fixed test keys): ARK, ASK and ASVK (RSA-4096, RSA-PSS
// signatures), VCEK and VLEK (P-384), with the names, extensions and
// lifetimes go-sev-guest's testing.AmdSignerBuilder gives them. The VCEK
// certifies ChipID and TCB.
//
// It makes the certificates itself, with crypto/rand, rather than with
// AmdSignerBuilder: the builder signs with a package-global math/rand
// stream, so its output would depend on what ran before it in the process.
func NewSigner(tb testing.TB, keys *test.AmdKeys) *test.AmdSigner {
	tb.Helper()
	if keys == nil {
		keys = test.DefaultAmdKeys()
	}
	const line = "Milan"
	caSerial := big.NewInt(0xc0dec0de)
	ca := func(cn string, crl string, usage x509.KeyUsage, years int) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber:          caSerial,
			Subject:               amdName(cn, fmt.Sprintf("%x", caSerial)),
			NotBefore:             Created,
			NotAfter:              Created.Add(time.Duration(365*24*years) * time.Hour),
			SignatureAlgorithm:    x509.SHA384WithRSAPSS,
			CRLDistributionPoints: []string{crl},
			KeyUsage:              usage,
			IsCA:                  true,
			BasicConstraintsValid: true,
		}
	}
	ek := func(cn string, exts []pkix.Extension) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber:       big.NewInt(0),
			Subject:            amdName(cn, "0"),
			NotAfter:           Created.Add(7 * 365 * 24 * time.Hour),
			SignatureAlgorithm: x509.SHA384WithRSAPSS,
			ExtraExtensions:    exts,
		}
	}
	create := func(tmpl, parent *x509.Certificate, pub any, priv crypto.Signer) *x509.Certificate {
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
		if err != nil {
			tb.Fatalf("building the fixture chain: %v", err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	vcekCRL := kds.CrlLinkByKey(line, abi.VcekReportSigner)
	s := &test.AmdSigner{Keys: keys, HWID: ChipID, TCB: tcbVersion(tb, TCB)}
	s.Ark = create(ca("ARK-"+line, vcekCRL, x509.KeyUsageCertSign|x509.KeyUsageCRLSign, 25), nil, &keys.Ark.PublicKey, keys.Ark)
	s.Ask = create(ca("SEV-"+line, vcekCRL, x509.KeyUsageCertSign, 25), s.Ark, &keys.Ask.PublicKey, keys.Ark)
	s.Asvk = create(ca("SEV-VLEK-"+line, kds.CrlLinkByKey(line, abi.VlekReportSigner), x509.KeyUsageCertSign, 25), s.Ark, &keys.Asvk.PublicKey, keys.Ark)
	s.Vcek = create(ek("SEV-VCEK", test.CustomExtensions(TCB, ChipID[:], "", productName)), s.Ask, &keys.Vcek.PublicKey, keys.Ask)
	s.Vlek = create(ek("SEV-VLEK", test.CustomExtensions(TCB, nil, cspID, line)), s.Asvk, &keys.Vlek.PublicKey, keys.Asvk)
	s.Product = &spb.SevProduct{Name: spb.SevProduct_SEV_PRODUCT_MILAN, MachineStepping: wrapperspb.UInt32(0)}
	return s
}

// amdName is the subject AMD's certificates carry.
func amdName(cn, serial string) pkix.Name {
	return pkix.Name{
		Organization:       []string{"Advanced Micro Devices"},
		Country:            []string{"US"},
		OrganizationalUnit: []string{"Engineering"},
		Locality:           []string{"Santa Clara"},
		Province:           []string{"CA"},
		SerialNumber:       serial,
		CommonName:         cn,
	}
}

// OtherKeys are test keys for a chain under an ARK that is not pinned:
// go-sev-guest's fixed RSA test keys in other roles.
func OtherKeys() *test.AmdKeys {
	return &test.AmdKeys{
		Ark:  test.DefaultAsvk(),
		Ask:  test.DefaultArk(),
		Asvk: test.DefaultAsk(),
		Vcek: test.DefaultVcek(),
		Vlek: test.DefaultVlek(),
	}
}

// WarmKeys uses every fixture private key once. crypto/ecdsa converts a
// key on first use and runs a pairwise consistency test that draws
// randomness; call this before seeding the global random stream, so that
// what a seed produces does not depend on whether another test used the
// keys first.
func WarmKeys(tb testing.TB) {
	tb.Helper()
	digest := sha512.Sum384([]byte("warm up"))
	for _, k := range []*ecdsa.PrivateKey{test.DefaultVcek(), test.DefaultVlek()} {
		if _, err := ecdsa.SignASN1(rand.Reader, k, digest[:]); err != nil {
			tb.Fatal(err)
		}
	}
	for _, k := range []*rsa.PrivateKey{test.DefaultArk(), test.DefaultAsk(), test.DefaultAsvk()} {
		if _, err := rsa.SignPSS(rand.Reader, k, crypto.SHA384, digest[:], nil); err != nil {
			tb.Fatal(err)
		}
	}
}

// Roots pins s's ARK for Milan.
func Roots(s *test.AmdSigner) snp.Roots {
	return snp.Roots{"Milan": {s.Ark}}
}

// ReportSpec describes a fixture report; the zero value of each field
// means the fixture's value.
type ReportSpec struct {
	ReportData [64]byte
	// Key is the signing key; the zero value is the VCEK.
	Key snp.Key
	// Policy is the guest policy; the zero value allows nothing.
	Policy abi.SnpPolicy
	// ReportedTCB overrides REPORTED_TCB (the current TCB stays TCB).
	ReportedTCB *kds.TCBParts
	// Measurement overrides the launch measurement.
	Measurement *[48]byte
}

// BuildReport serializes a version 3 Milan report with go-sev-guest's abi
// and signs it with s's VCEK or VLEK.
func BuildReport(tb testing.TB, s *test.AmdSigner, r ReportSpec) []byte {
	tb.Helper()
	current := tcbVersion(tb, TCB)
	reported := current
	if r.ReportedTCB != nil {
		reported = tcbVersion(tb, *r.ReportedTCB)
	}
	m := Measurement
	if r.Measurement != nil {
		m = *r.Measurement
	}
	chip := ChipID[:]
	if r.Key == snp.KeyVLEK {
		chip = make([]byte, abi.ChipIDSize)
	}
	rep := &spb.Report{
		Version:         abi.ReportVersion3,
		GuestSvn:        1,
		Policy:          abi.SnpPolicyToBytes(r.Policy),
		FamilyId:        make([]byte, abi.FamilyIDSize),
		ImageId:         make([]byte, abi.ImageIDSize),
		SignatureAlgo:   abi.SignEcdsaP384Sha384,
		CurrentTcb:      uint64(current),
		SignerInfo:      abi.ComposeSignerInfo(abi.SignerInfo{SigningKey: abi.ReportSigner(r.Key)}),
		ReportData:      r.ReportData[:],
		Measurement:     m[:],
		HostData:        HostData[:],
		IdKeyDigest:     make([]byte, abi.IDKeyDigestSize),
		AuthorKeyDigest: make([]byte, abi.AuthorKeyDigestSize),
		ReportId:        reportID[:],
		ReportIdMa:      make([]byte, abi.ReportIDMASize),
		ReportedTcb:     uint64(reported),
		Cpuid1EaxFms:    MilanFMS,
		ChipId:          chip,
		CommittedTcb:    uint64(current),
		CurrentBuild:    21, CurrentMinor: 55, CurrentMajor: 1,
		CommittedBuild: 21, CommittedMinor: 55, CommittedMajor: 1,
		LaunchTcb: uint64(current),
		Signature: make([]byte, abi.SignatureSize),
	}
	raw, err := abi.ReportToAbiBytes(rep)
	if err != nil {
		tb.Fatalf("serializing the fixture report: %v", err)
	}
	R, S, err := s.Sign(abi.SignedComponent(raw))
	if err != nil {
		tb.Fatalf("signing the fixture report: %v", err)
	}
	if err := abi.SetSignature(R, S, raw); err != nil {
		tb.Fatal(err)
	}
	return raw
}

// WithVCEKKey returns a copy of s whose VCEK private key is k, so its
// reports carry a well-formed signature the VCEK certificate does not
// verify.
func WithVCEKKey(s *test.AmdSigner, k *ecdsa.PrivateKey) *test.AmdSigner {
	keys := *s.Keys
	keys.Vcek = k
	c := *s
	c.Keys = &keys
	return &c
}

// BuildCRL returns a CRL issued by ark under key, current from
// CRLThisUpdate to next, revoking the given serial numbers.
func BuildCRL(tb testing.TB, ark *x509.Certificate, key crypto.Signer, next time.Time, revoked ...*big.Int) []byte {
	tb.Helper()
	tmpl := &x509.RevocationList{
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
		Number:             big.NewInt(1),
		ThisUpdate:         CRLThisUpdate,
		NextUpdate:         next,
	}
	for _, s := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: CRLThisUpdate})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ark, key)
	if err != nil {
		tb.Fatalf("building the fixture crl: %v", err)
	}
	return der
}

// Chain returns s's collateral for key, with crl (nil: none).
func Chain(s *test.AmdSigner, key snp.Key, crl []byte) snp.Collateral {
	if key == snp.KeyVLEK {
		return snp.Collateral{Key: key, Endorsement: s.Vlek.Raw, Intermediate: s.Asvk.Raw, Root: s.Ark.Raw, CRL: crl}
	}
	return snp.Collateral{Key: key, Endorsement: s.Vcek.Raw, Intermediate: s.Ask.Raw, Root: s.Ark.Raw, CRL: crl}
}

// Encode marshals c.
func Encode(tb testing.TB, c snp.Collateral) []byte {
	tb.Helper()
	b, err := c.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Policy returns the policy fixture evidence passes: the fixture
// measurement and host data, the fixture TCB as minimum, SMT forbidden, a
// CRL required.
func Policy() *policy.Policy {
	return &policy.Policy{
		Version:        policy.Version,
		Name:           "snp-fixture",
		TEEKinds:       []string{policy.KindSNP},
		MaxEvidenceAge: policy.Duration{Duration: 15 * time.Minute},
		SNP: &policy.SNPRules{
			Measurements: []string{hex.EncodeToString(Measurement[:])},
			HostData:     []string{hex.EncodeToString(HostData[:])},
			MinTCB:       policy.SNPTCB{BootLoader: TCB.BlSpl, TEE: TCB.TeeSpl, SNP: TCB.SnpSpl, Microcode: TCB.UcodeSpl},
			SMT:          "forbidden",
		},
	}
}
