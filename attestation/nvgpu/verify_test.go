package nvgpu_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu"
	"github.com/sealgate/sealgate/attestation/nvgpu/nvgputest"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim/rimtest"
	"github.com/sealgate/sealgate/proto"
	"golang.org/x/crypto/ocsp"
)

var fixtureNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func TestFixtureEvidenceVerifies(t *testing.T) {
	f := nvgputest.New("verify test", fixtureNow)
	nonce := proto.GPUNonce([32]byte{1}, 3)
	c, err := nvgpu.Verify(f.Evidence(nonce), f.Options(nonce))
	if err != nil {
		t.Fatal(err)
	}
	if !c.CCMode || c.Mode != nvgpu.ModeSPT || !c.OCSPChecked || c.Nonce != nonce || len(c.MismatchedIndexes) != 0 {
		t.Fatalf("claims %+v", c)
	}
	if c.DeviceModel != nvgputest.DeviceName || c.NextUpdate != fixtureNow.Add(24*time.Hour) {
		t.Fatalf("model %q next update %s", c.DeviceModel, c.NextUpdate)
	}
	rules := nvgputest.DefaultRules()
	if err := nvgpu.Validate(c, &rules); err != nil {
		t.Fatal(err)
	}
	// Another GPU position's nonce is refused.
	_, err = nvgpu.Verify(f.Evidence(nonce), f.Options(proto.GPUNonce([32]byte{1}, 2)))
	if check.CodeOf(err) != check.CodeBinding {
		t.Fatalf("other nonce: %v", err)
	}
}

// fixtureCase builds the fixture's valid evidence for a test to change.
type fixtureCase struct {
	f     *nvgputest.Fixture
	nonce [32]byte
}

func newFixtureCase(t testing.TB) fixtureCase {
	return fixtureCase{nvgputest.New("verify test", fixtureNow), proto.GPUNonce([32]byte{9}, 0)}
}

func (fc fixtureCase) evidence(t testing.TB, change func(*nvgputest.Spec)) *nvgpu.Evidence {
	t.Helper()
	s := fc.f.Spec(fc.nonce)
	if change != nil {
		change(&s)
	}
	e, err := fc.f.PKI.Evidence(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// issue makes a certificate under parent for tests of odd responders.
func issue(t testing.TB, parent nvgputest.Issued, label string, tmpl x509.Certificate) nvgputest.Issued {
	t.Helper()
	key := nvgputest.DeriveKey("verify test extra", label)
	tmpl.SerialNumber = big.NewInt(int64(len(label)) + 1000)
	tmpl.Subject = pkix.Name{CommonName: "sealgate nvgputest " + label}
	tmpl.NotBefore, tmpl.NotAfter = fixtureNow.AddDate(-1, 0, 0), fixtureNow.AddDate(1, 0, 0)
	der, err := x509.CreateCertificate(nil, &tmpl, parent.Cert, &key.PublicKey, parent.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return nvgputest.Issued{Cert: c, Key: key}
}

func TestVerifyRefuses(t *testing.T) {
	fc := newFixtureCase(t)
	p := fc.f.PKI
	ocspAbout := func(cert, issuer *x509.Certificate, signer nvgputest.Issued, responder *x509.Certificate, this, next time.Time) []byte {
		return rimtest.OCSP(t, cert, issuer, signer.Signer(), rimtest.OCSPResponse{Status: ocsp.Good, ThisUpdate: this, NextUpdate: next, Responder: responder})
	}
	this, next := fixtureNow.Add(-time.Hour), fixtureNow.Add(time.Hour)
	noEKU := issue(t, p.Provisioner, "responder without ocsp signing", x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature})
	tests := []struct {
		name      string
		evidence  func(*nvgpu.Evidence)
		spec      func(*nvgputest.Spec)
		opts      func(*nvgpu.Options)
		wantCode  check.Code
		wantField string
	}{
		{name: "valid", wantCode: ""},
		{name: "chain without its root", evidence: func(e *nvgpu.Evidence) { e.CertChain = e.CertChain[:4] }, wantCode: ""},
		{name: "ocsp signed by the issuer itself", wantCode: "", evidence: func(e *nvgpu.Evidence) {
			e.OCSP[0] = ocspAbout(p.Device.Cert, p.Provisioner.Cert, p.Provisioner, nil, this, next)
		}},
		{name: "leaf and root only", wantCode: check.CodeChain, wantField: "gpu certificate chain",
			evidence: func(e *nvgpu.Evidence) { e.CertChain = [][]byte{e.CertChain[0], e.CertChain[4]} }},
		{name: "intermediates out of order", wantCode: check.CodeChain, wantField: "gpu certificate chain",
			evidence: func(e *nvgpu.Evidence) { e.CertChain[1], e.CertChain[2] = e.CertChain[2], e.CertChain[1] }},
		{name: "an extra certificate", wantCode: check.CodeChain, wantField: "gpu certificate chain",
			evidence: func(e *nvgpu.Evidence) { e.CertChain = append(e.CertChain, p.RIMRoot.Cert.Raw) }},
		{name: "certificate not der", wantCode: check.CodeMalformed, wantField: "gpu certificate 2",
			evidence: func(e *nvgpu.Evidence) { e.CertChain[2] = []byte("not a certificate") }},
		{name: "before the certificates", opts: func(o *nvgpu.Options) { o.Now = fixtureNow.AddDate(-2, 0, 0) },
			wantCode: check.CodeCollateralExpired, wantField: "gpu certificate"},
		{name: "after the certificates", opts: func(o *nvgpu.Options) { o.Now = fixtureNow.AddDate(30, 0, 0) },
			wantCode: check.CodeCollateralExpired, wantField: "gpu certificate"},
		{name: "zero time", opts: func(o *nvgpu.Options) { o.Now = time.Time{} }, wantCode: check.CodeOptions, wantField: "now"},
		{name: "nvidia's root for fixture evidence", opts: func(o *nvgpu.Options) { o.DeviceRoots = nil },
			wantCode: check.CodeChain, wantField: "gpu certificate chain"},
		{name: "ocsp response not der", wantCode: check.CodeMalformed, wantField: "gpu ocsp response 1",
			evidence: func(e *nvgpu.Evidence) { e.OCSP[1] = []byte("garbage") }},
		{name: "ocsp response about another certificate", wantCode: check.CodeMalformed, wantField: "gpu ocsp response 0",
			evidence: func(e *nvgpu.Evidence) { e.OCSP[0] = e.RIMOCSP[0] }},
		{name: "two responses for one certificate", wantCode: check.CodeMalformed, wantField: "gpu ocsp response 1",
			evidence: func(e *nvgpu.Evidence) { e.OCSP[1] = e.OCSP[0] }},
		{name: "ocsp signed by another ca's responder", wantCode: check.CodeSignature, wantField: "ocsp gpu certificate",
			evidence: func(e *nvgpu.Evidence) {
				r := p.Responders[nvgputest.IdentityName]
				e.OCSP[0] = ocspAbout(p.Device.Cert, p.Provisioner.Cert, r, r.Cert, this, next)
			}},
		{name: "ocsp responder without the ocsp signing usage", wantCode: check.CodeChain, wantField: "responder",
			evidence: func(e *nvgpu.Evidence) {
				e.OCSP[0] = ocspAbout(p.Device.Cert, p.Provisioner.Cert, noEKU, noEKU.Cert, this, next)
			}},
		{name: "ocsp response not yet current", wantCode: check.CodeCollateralExpired, wantField: "ocsp gpu certificate",
			evidence: func(e *nvgpu.Evidence) {
				e.OCSP[2] = ocspAbout(p.Identity.Cert, p.Root.Cert, p.Responders[nvgputest.RootName], p.Responders[nvgputest.RootName].Cert, next, next.Add(time.Hour))
			}},
		{name: "ocsp response without nextUpdate", wantCode: check.CodeCollateralExpired, wantField: "ocsp gpu certificate",
			evidence: func(e *nvgpu.Evidence) {
				e.OCSP[2] = ocspAbout(p.Identity.Cert, p.Root.Cert, p.Responders[nvgputest.RootName], p.Responders[nvgputest.RootName].Cert, this, time.Time{})
			}},
		{name: "rim ocsp missing, required", wantCode: check.CodeRevoked, wantField: "driver rim",
			spec: func(s *nvgputest.Spec) { s.NoRIMOCSP = true }},
		{name: "rim under an unpinned root", wantCode: check.CodeChain, wantField: "driver rim",
			opts: func(o *nvgpu.Options) { o.RIMRoots = p.DeviceRoots() }},
		{name: "an index in both rims", wantCode: check.CodePolicy, wantField: "rim index 7",
			spec: func(s *nvgputest.Spec) {
				d, v := nvgputest.RIMs(s.GPU)
				v.Measurements[7] = d.Measurements[7]
				s.VBIOSRIM = &v
			}},
		{name: "no active golden measurement", wantCode: check.CodePolicy, wantField: "rim measurements",
			spec: func(s *nvgputest.Spec) {
				d, v := nvgputest.RIMs(s.GPU)
				for _, r := range []*nvgputest.RIMSpec{&d, &v} {
					for i := range r.Measurements {
						r.Measurements[i].Active = false
					}
				}
				s.DriverRIM, s.VBIOSRIM = &d, &v
			}},
		{name: "a measurement the rim covers is missing", wantCode: check.CodePolicy, wantField: "measurement 64",
			spec: func(s *nvgputest.Spec) {
				d, v := nvgputest.RIMs(s.GPU)
				d.Measurements[63].Active = true
				s.DriverRIM, s.VBIOSRIM = &d, &v
				s.GPU.Measurements = s.GPU.Measurements[:63]
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := fc.evidence(t, tc.spec)
			if tc.evidence != nil {
				tc.evidence(e)
			}
			opts := fc.f.Options(fc.nonce)
			if tc.opts != nil {
				tc.opts(&opts)
			}
			c, err := nvgpu.Verify(encode(t, e), opts)
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			var ce *check.Error
			if !asCheck(err, &ce) || ce.Code != tc.wantCode || !contains(ce.Field, tc.wantField) {
				t.Fatalf("Verify: %v, want %s %q", err, tc.wantCode, tc.wantField)
			}
			if c != nil && ce.Code != check.CodePolicy {
				t.Fatalf("claims returned with %v", err)
			}
			t.Logf("%v", err)
		})
	}
}

// TestVerifyReportsEveryMismatch: a mismatch returns the claims with
// every mismatched index, and Validate refuses them.
func TestVerifyReportsEveryMismatch(t *testing.T) {
	fc := newFixtureCase(t)
	e := fc.evidence(t, func(s *nvgputest.Spec) {
		d, v := nvgputest.RIMs(nvgputest.DefaultGPU())
		s.DriverRIM, s.VBIOSRIM = &d, &v
		s.GPU.Measurements[9] = nvgputest.Measurement("x")
		s.GPU.Measurements[0] = nvgputest.Measurement("y")
	})
	c, err := nvgpu.Verify(encode(t, e), fc.f.Options(fc.nonce))
	if check.CodeOf(err) != check.CodePolicy || c == nil || !slices.Equal(c.MismatchedIndexes, []int{1, 10}) {
		t.Fatalf("Verify: %v, claims %+v", err, c)
	}
	if !contains(err.Error(), "measurement 1:") || !contains(err.Error(), "mismatched indexes [1 10]") {
		t.Fatalf("error %v", err)
	}
	rules := nvgputest.DefaultRules()
	if err := nvgpu.Validate(c, &rules); check.CodeOf(err) != check.CodePolicy {
		t.Fatalf("Validate: %v", err)
	}
}

// TestFlipEveryReportByte flips bit 0 of every byte of the valid
// synthetic report in turn (its signed request and response, then its
// signature) and requires the full check, Verify then Validate, to refuse
// it.
func TestFlipEveryReportByte(t *testing.T) {
	v := validVector(t)
	e, err := nvgpu.ParseEvidence(v.evidence)
	if err != nil {
		t.Fatal(err)
	}
	rules := v.GPURules
	step := 1
	if testing.Short() || raceEnabled {
		step = 17
	}
	const workers = 4
	var (
		mu       sync.Mutex // guards refused and accepted
		refused  = map[check.Code]int{}
		accepted []int
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * step; i < len(e.Report); i += workers * step {
				ee := *e
				ee.Report = bytes.Clone(e.Report)
				ee.Report[i] ^= 0x01
				enc, err := ee.Marshal()
				if err != nil {
					t.Error(err)
					return
				}
				_, err = verdict(enc, &rules, v.opts)
				mu.Lock()
				if err == nil {
					accepted = append(accepted, i)
				} else {
					refused[check.CodeOf(err)]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, i := range accepted {
		t.Errorf("flipping bit 0 of report byte %d (%#x) is accepted", i, i)
	}
	t.Logf("%d-byte report, flips refused by code: %v", len(e.Report), refused)
}
