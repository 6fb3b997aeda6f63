package nvgputest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/nvgpu"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim/rimtest"
	"golang.org/x/crypto/ocsp"
)

// Spec describes one piece of fixture evidence as changes to the
// defaults.
type Spec struct {
	// GPU is what the report says.
	GPU GPU
	// Nonce is the nonce the report carries.
	Nonce [32]byte
	// Tamper builds a defect into the report.
	Tamper Tamper
	// OCSPThisUpdate and OCSPNextUpdate bound every OCSP response.
	OCSPThisUpdate, OCSPNextUpdate time.Time
	// NoOCSP leaves out the OCSP responses of the device chain, NoRIMOCSP
	// those of the RIM signing chain.
	NoOCSP, NoRIMOCSP bool
	// DeviceStatus is the device certificate's OCSP status: ocsp.Good
	// (zero), ocsp.Revoked or ocsp.Unknown.
	DeviceStatus int
	// DriverRIM and VBIOSRIM describe the RIMs; zero means RIMs(GPU).
	DriverRIM, VBIOSRIM *RIMSpec
}

// Evidence returns the evidence spec describes, signed by p.
func (p *PKI) Evidence(s Spec) (*nvgpu.Evidence, error) {
	report, err := p.Report(s.GPU, s.Nonce, s.Tamper)
	if err != nil {
		return nil, err
	}
	e := &nvgpu.Evidence{Report: report, CertChain: p.Chain()}
	if !s.NoOCSP {
		for _, pair := range [][2]Issued{{p.Device, p.Provisioner}, {p.Provisioner, p.Identity}, {p.Identity, p.Root}} {
			status := ocsp.Good
			if pair[0].Cert == p.Device.Cert {
				status = s.DeviceStatus
			}
			r, err := p.OCSPResponse(pair[0].Cert, pair[1].Cert, status, s.OCSPThisUpdate, s.OCSPNextUpdate)
			if err != nil {
				return nil, err
			}
			e.OCSP = append(e.OCSP, r)
		}
	}
	if !s.NoRIMOCSP {
		for _, pair := range [][2]Issued{{p.RIMSigner, p.RIMCA}, {p.RIMCA, p.RIMRoot}} {
			r, err := p.OCSPResponse(pair[0].Cert, pair[1].Cert, ocsp.Good, s.OCSPThisUpdate, s.OCSPNextUpdate)
			if err != nil {
				return nil, err
			}
			e.RIMOCSP = append(e.RIMOCSP, r)
		}
	}
	driver, vbios := RIMs(s.GPU)
	if s.DriverRIM != nil {
		driver = *s.DriverRIM
	}
	if s.VBIOSRIM != nil {
		vbios = *s.VBIOSRIM
	}
	if e.DriverRIM, err = p.SignRIM(driver); err != nil {
		return nil, err
	}
	if e.VBIOSRIM, err = p.SignRIM(vbios); err != nil {
		return nil, err
	}
	return e, nil
}

// SignRIM returns spec as a RIM signed by the fixture RIM signer, through
// package rimtest.
func (p *PKI) SignRIM(spec RIMSpec) (out []byte, err error) {
	defer recoverInto(&err, "signing rim "+spec.ID)
	return rimtest.Sign(panicTB{}, rimtest.Spec{
		ID: spec.ID, ColloquialVersion: spec.ColloquialVersion, Version: spec.Version,
		Measurements: append([]rim.Measurement{}, spec.Measurements...),
	}, p.RIMSigner.Signer(), p.RIMChain()), nil
}

// recoverInto turns a panic of panicTB into *err.
func recoverInto(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("nvgputest: %s: %v", what, r)
	}
}

// panicTB lets rimtest.Sign, which reports failures through a
// testing.TB, run where there is no test (New, the vector generator): a
// failure panics and SignRIM turns the panic into an error. Only the
// methods a helper calls to fail are implemented; any other call panics
// on the nil embedded interface, which SignRIM reports the same way.
type panicTB struct{ testing.TB }

func (panicTB) Helper()                      {}
func (panicTB) Fatal(args ...any)            { panic(fmt.Sprint(args...)) }
func (panicTB) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
func (panicTB) Error(args ...any)            { panic(fmt.Sprint(args...)) }
func (panicTB) Errorf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
func (panicTB) FailNow()                     { panic("FailNow") }
func (panicTB) Log(...any)                   {}
func (panicTB) Logf(string, ...any)          {}
func (panicTB) Name() string                 { return "nvgputest" }
func (panicTB) Cleanup(func())               {}
func (panicTB) Skip(args ...any)             { panic(fmt.Sprint(args...)) }
func (panicTB) Skipf(f string, args ...any)  { panic(fmt.Sprintf(f, args...)) }
func (panicTB) Failed() bool                 { return false }
func (panicTB) Setenv(string, string)        { panic("Setenv") }
func (panicTB) TempDir() string              { panic("TempDir") }
func (panicTB) Fail()                        { panic("Fail") }
func (panicTB) SkipNow()                     { panic("SkipNow") }
func (panicTB) Skipped() bool                { return false }

// Fixture is a PKI and a default GPU, for tests that need valid GPU
// evidence for their own nonces (such as end-to-end runs that derive
// each GPU's nonce with proto.GPUNonce).
type Fixture struct {
	PKI *PKI
	GPU GPU
	// Now is the time the evidence is valid at: its OCSP responses run
	// from an hour before to a day after.
	Now time.Time
}

// New returns a fixture whose certificates are valid at now (from a year
// before) and whose evidence is valid at now. It panics if the fixture
// cannot be built, which only a bug in this package causes.
func New(seed string, now time.Time) *Fixture {
	pki, err := NewPKI(seed, now.AddDate(-1, 0, 0))
	if err != nil {
		panic(err)
	}
	return &Fixture{PKI: pki, GPU: DefaultGPU(), Now: now.UTC()}
}

// Spec returns the spec of the fixture's evidence for nonce.
func (f *Fixture) Spec(nonce [32]byte) Spec {
	return Spec{GPU: f.GPU, Nonce: nonce, OCSPThisUpdate: f.Now.Add(-time.Hour), OCSPNextUpdate: f.Now.Add(24 * time.Hour)}
}

// Evidence returns encoded GPU evidence whose report carries nonce, which
// nvgpu.Verify accepts with f.Options(nonce). It panics if the evidence
// cannot be built.
func (f *Fixture) Evidence(nonce [32]byte) []byte {
	e, err := f.PKI.Evidence(f.Spec(nonce))
	if err != nil {
		panic(err)
	}
	out, err := e.Marshal()
	if err != nil {
		panic(err)
	}
	return out
}

// Options returns the options that verify the fixture's evidence for
// nonce at f.Now under the fixture roots, with OCSP required.
func (f *Fixture) Options(nonce [32]byte) nvgpu.Options {
	return nvgpu.Options{Now: f.Now, DeviceRoots: f.PKI.DeviceRoots(), RIMRoots: f.PKI.RIMRoots(), Nonce: nonce, RequireOCSP: true}
}
