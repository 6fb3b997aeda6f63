package rim_test

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim/rimtest"
)

// realRIMs are NVIDIA's RIMs for the recorded H100's driver and VBIOS,
// and what Verify must read from them.
var realRIMs = []struct {
	file, colloquial, idPrefix string
	active                     int
	leafSerial                 string
	leafExpiry                 time.Time
	ocsp                       []string // chain levels 0 (leaf) to 2; the root needs none
}{
	{driverRIM, "550.90.07", "63f9f7f7de3322e3", 21, "d69f10b46c05d201",
		time.Date(2026, 6, 1, 2, 8, 29, 0, time.UTC), []string{ocspDriverLeaf, ocspRIML3, ocspRIMCA}},
	{vbiosRIM, "96.00.9F.00.01", "9e1cfb016be42b16", 12, "89624ede804c3916",
		time.Date(2026, 2, 22, 23, 17, 58, 0, time.UTC), []string{ocspVBIOSLeaf, ocspRIML3, ocspRIMCA}},
}

// TestPinnedRootIsNVIDIAs checks the embedded root against the recorded
// rim_root.pem and the root both real RIMs carry.
func TestPinnedRootIsNVIDIAs(t *testing.T) {
	pinned := rim.NVIDIARootCA()
	if got := readCert(t, nvidia(t, "rim_root.pem")); !got.Equal(pinned) {
		t.Fatal("rim_root.pem is not the pinned root")
	}
	for _, tc := range realRIMs {
		r, err := rim.Parse(readRIM(t, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if top := r.SigningChain[len(r.SigningChain)-1]; !top.Equal(pinned) {
			t.Errorf("%s carries root %q, not the pinned one", tc.file, top.Subject)
		}
	}
}

func TestVerifyRealRIMs(t *testing.T) {
	seen := map[int]string{}
	for _, tc := range realRIMs {
		t.Run(tc.file, func(t *testing.T) {
			raw := readRIM(t, tc.file)
			for _, roots := range []*x509.CertPool{nil, recordedRoots(t)} {
				r := verified(t, raw, rim.Options{Now: recordedAt, Roots: roots})
				if r.ColloquialVersion != tc.colloquial || r.Version != "1.0" || !strings.HasPrefix(r.ID, tc.idPrefix) {
					t.Errorf("got %q %q %q", r.ColloquialVersion, r.Version, r.ID)
				}
				checkShape(t, r, 64, tc.active)
				if len(r.SigningChain) != 4 || r.SigningChain[0].SerialNumber.Text(16) != tc.leafSerial {
					t.Errorf("signing chain of %d, leaf serial %s", len(r.SigningChain), r.SigningChain[0].SerialNumber.Text(16))
				}
				// Without OCSP the leaf's expiry comes first.
				if !r.NextUpdate.Equal(tc.leafExpiry) {
					t.Errorf("NextUpdate %v, want %v", r.NextUpdate, tc.leafExpiry)
				}
			}
			r := verified(t, raw, rim.Options{Now: recordedAt})
			for _, m := range r.Measurements {
				if !m.Active {
					continue
				}
				if other, dup := seen[m.Index]; dup {
					t.Errorf("index %d is active in %s and %s", m.Index, other, tc.file)
				}
				seen[m.Index] = tc.file
			}
		})
	}
}

func TestVerifyRealRIMsOCSP(t *testing.T) {
	for _, tc := range realRIMs {
		t.Run(tc.file, func(t *testing.T) {
			raw := readRIM(t, tc.file)
			// Each chain with its own responses, and with every recorded
			// response (the GPU chain's and the other RIM's are ignored).
			for _, resps := range [][][]byte{readOCSP(t, tc.ocsp...), allOCSP(t)} {
				r := verified(t, raw, rim.Options{Now: ocspAt, OCSP: resps, RequireOCSP: true})
				if want := time.Date(2025, 10, 25, 11, 32, 21, 0, time.UTC); !r.NextUpdate.Equal(want) {
					t.Errorf("NextUpdate %v, want %v (the earliest OCSP next update)", r.NextUpdate, want)
				}
			}
			// Each level's response is needed.
			for level := range tc.ocsp {
				var rest []string
				for i, n := range tc.ocsp {
					if i != level {
						rest = append(rest, n)
					}
				}
				_, err := rim.Verify(raw, rim.Options{Now: ocspAt, OCSP: readOCSP(t, rest...), RequireOCSP: true})
				if e := wantCode(t, err, check.CodeRevoked); !strings.HasPrefix(e.Field, "ocsp signing chain[") {
					t.Errorf("without %s: field %q", tc.ocsp[level], e.Field)
				}
				if _, err := rim.Verify(raw, rim.Options{Now: ocspAt, OCSP: readOCSP(t, rest...)}); err != nil {
					t.Errorf("without %s and RequireOCSP: %v", tc.ocsp[level], err)
				}
			}
			// The recorded responses were fetched after recordedAt: at
			// recordedAt they are not yet valid, and a day after ocspAt
			// no longer.
			_, err := rim.Verify(raw, rim.Options{Now: recordedAt, OCSP: readOCSP(t, tc.ocsp...)})
			if e := wantCode(t, err, check.CodeCollateralExpired); !strings.HasSuffix(e.Field, "this update") {
				t.Errorf("at the recorded time: %v", err)
			}
			_, err = rim.Verify(raw, rim.Options{Now: ocspAt.Add(48 * time.Hour), OCSP: readOCSP(t, tc.ocsp...)})
			if e := wantCode(t, err, check.CodeCollateralExpired); !strings.HasSuffix(e.Field, "next update") {
				t.Errorf("after the next update: %v", err)
			}
		})
	}
}

func TestVerifyRealRIMsExpire(t *testing.T) {
	for _, tc := range realRIMs {
		t.Run(tc.file, func(t *testing.T) {
			raw := readRIM(t, tc.file)
			verified(t, raw, rim.Options{Now: tc.leafExpiry})
			for _, at := range []time.Time{tc.leafExpiry.Add(time.Second), time.Date(2023, 12, 1, 0, 0, 0, 0, time.UTC)} {
				_, err := rim.Verify(raw, rim.Options{Now: at})
				if e := wantCode(t, err, check.CodeCollateralExpired); e.Field != "signing chain[0]" {
					t.Errorf("at %v: field %q, want signing chain[0]", at, e.Field)
				}
			}
		})
	}
}

func TestVerifyUnpinnedRoot(t *testing.T) {
	p := fixturePKI(t)
	_, err := rim.Verify(readRIM(t, driverRIM), rim.Options{Now: recordedAt, Roots: p.Roots()})
	wantCode(t, err, check.CodeChain)
	// The synthetic RIM against the pinned NVIDIA root.
	_, err = rim.Verify(testdata(t, "driver.xml"), rim.Options{Now: testdataNow})
	wantCode(t, err, check.CodeChain)
	// A chain to an unpinned root that is also expired is a chain error.
	_, err = rim.Verify(readRIM(t, driverRIM), rim.Options{Now: recordedAt.AddDate(2, 0, 0), Roots: p.Roots()})
	wantCode(t, err, check.CodeChain)
}

func TestVerifyOptions(t *testing.T) {
	_, err := rim.Verify(testdata(t, "driver.xml"), rim.Options{Roots: fixturePKI(t).Roots()})
	if e := wantCode(t, err, check.CodeOptions); e.Field != "now" {
		t.Fatalf("field %q", e.Field)
	}
}

// TestVerifySuccessValidRIM: success_valid_rim.xml is another real VBIOS
// RIM (96.00.6D.00.29) under NVIDIA's chain. test_valid_root_cert.dat,
// which NVIDIA's verifier tests pair with it, is the self-signed Okta
// certificate that signs valid_signed_xml.xml, not a root of this RIM.
func TestVerifySuccessValidRIM(t *testing.T) {
	raw := readRIM(t, "success_valid_rim.xml")
	r := verified(t, raw, rim.Options{Now: recordedAt})
	if r.ColloquialVersion != "96.00.6D.00.29" {
		t.Errorf("colloquial version %q", r.ColloquialVersion)
	}
	checkShape(t, r, 64, 12)
	okta := x509.NewCertPool()
	okta.AddCert(readCert(t, nvidia(t, "rim/test_valid_root_cert.dat")))
	_, err := rim.Verify(raw, rim.Options{Now: recordedAt, Roots: okta})
	wantCode(t, err, check.CodeChain)
}

// TestValidSignedXML checks the XML-DSig step on a third-party document:
// valid_signed_xml.xml is an Okta SAML response whose root is signed
// (RSA-SHA256, exclusive canonicalization, Reference to the root's ID)
// by test_valid_root_cert.dat. It is not a RIM, so Verify refuses it.
func TestValidSignedXML(t *testing.T) {
	raw := readRIM(t, "valid_signed_xml.xml")
	cert := readCert(t, nvidia(t, "rim/test_valid_root_cert.dat"))
	validated, err := rim.ValidateXMLDSig(raw, cert, recordedAt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(validated, "<saml2p:Response") || !strings.Contains(validated, "phoebe.yu@okta.com") {
		t.Errorf("validated element is not the response: %.200s", validated)
	}
	forged := strings.Replace(string(raw), "phoebe.yu@okta.com</saml2:NameID>", "mallory@okta.com</saml2:NameID>", 1)
	if _, err := rim.ValidateXMLDSig([]byte(forged), cert, recordedAt); check.CodeOf(err) != check.CodeSignature {
		t.Errorf("forged SAML: %v, want a signature error", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	_, err = rim.Verify(raw, rim.Options{Now: recordedAt, Roots: pool})
	wantCode(t, err, check.CodeMalformed)
}

func TestVerifySynthetic(t *testing.T) {
	p := fixturePKI(t)
	for _, c := range []struct {
		file, version string
		active        int
	}{{"driver.xml", testdataDriverVersion, 4}, {"vbios.xml", testdataVBIOSVersion, 9}} {
		r := verified(t, testdata(t, c.file), rim.Options{Now: testdataNow, Roots: p.Roots()})
		if r.ColloquialVersion != c.version {
			t.Errorf("%s: version %q", c.file, r.ColloquialVersion)
		}
		checkShape(t, r, 16, c.active)
		spec := testdataSpec(strings.TrimSuffix(c.file, ".xml"))
		if !equalMeasurements(r.Measurements, spec.Measurements) || r.ID != spec.ID {
			t.Errorf("%s: read back differs from its spec", c.file)
		}
		if !r.NextUpdate.Equal(p.Leaf.NotAfter) {
			t.Errorf("NextUpdate %v, want the leaf's expiry %v", r.NextUpdate, p.Leaf.NotAfter)
		}
	}
}

// TestVerifySyntheticExpired: a RIM verified after its signing
// certificate expires, or before it is valid.
func TestVerifySyntheticExpired(t *testing.T) {
	p := fixturePKI(t)
	raw := testdata(t, "driver.xml")
	for _, at := range []time.Time{p.Leaf.NotAfter.Add(time.Second), p.Leaf.NotBefore.Add(-time.Second)} {
		_, err := rim.Verify(raw, rim.Options{Now: at, Roots: p.Roots()})
		if e := wantCode(t, err, check.CodeCollateralExpired); e.Field != "signing chain[0]" {
			t.Errorf("at %v: field %q", at, e.Field)
		}
	}
	// An expired root.
	_, err := rim.Verify(raw, rim.Options{Now: p.Root.NotAfter.Add(time.Second), Roots: p.Roots()})
	if e := wantCode(t, err, check.CodeCollateralExpired); e.Field != "signing chain[0]" {
		t.Errorf("after the root's expiry: field %q", e.Field)
	}
	// A leaf that expired before the RIM is verified, root still valid.
	leafKey := rimtest.DeriveKey(testdataSeed, "short-lived")
	leaf := p.Issue("short-lived", "short-lived signer", &leafKey.PublicKey, testdataNow.Add(-48*time.Hour), testdataNow.Add(-time.Hour))
	raw = rimtest.Sign(t, testdataSpec("driver"), leafKey, []*x509.Certificate{leaf, p.Root})
	_, err = rim.Verify(raw, rim.Options{Now: testdataNow, Roots: p.Roots()})
	if e := wantCode(t, err, check.CodeCollateralExpired); e.Field != "signing chain[0]" {
		t.Errorf("short-lived leaf: field %q", e.Field)
	}
}
