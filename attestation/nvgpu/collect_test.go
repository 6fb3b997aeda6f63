//go:build nvml

package nvgpu_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"testing"

	"github.com/sealgate/sealgate/attestation/nvgpu"
	"github.com/sealgate/sealgate/attestation/nvgpu/nvgputest"
	"github.com/sealgate/sealgate/proto"
	"golang.org/x/crypto/ocsp"
)

// fakeDevice is the test double of an NVML device: a fixture GPU that
// signs reports with the fixture PKI's leaf.
type fakeDevice struct {
	pki *nvgputest.PKI
	gpu nvgputest.GPU
	pem bool  // return the chain as PEM rather than concatenated DER
	err error // fail every request
	// answer, when set, is the nonce the device reports instead of the
	// one asked for.
	answer *[32]byte
}

var _ nvgpu.Device = (*fakeDevice)(nil)

func (d *fakeDevice) AttestationReport(nonce [32]byte) ([]byte, []byte, error) {
	if d.err != nil {
		return nil, nil, d.err
	}
	if d.answer != nil {
		nonce = *d.answer
	}
	r, err := d.pki.Report(d.gpu, nonce, nvgputest.Intact)
	if err != nil {
		return nil, nil, err
	}
	var chain []byte
	for _, c := range d.pki.Chain() {
		if d.pem {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
		} else {
			chain = append(chain, c...)
		}
	}
	return r, chain, nil
}

// fakeCollateral serves the fixture's RIMs and OCSP responses, as
// NVIDIA's RIM service and OCSP responder would.
type fakeCollateral struct {
	pki  *nvgputest.PKI
	rims map[string][]byte
	f    *nvgputest.Fixture
	asks []string // guarded by nothing: the collector is sequential
}

func newFakeCollateral(t *testing.T, f *nvgputest.Fixture) *fakeCollateral {
	d, v := nvgputest.RIMs(f.GPU)
	fc := &fakeCollateral{pki: f.PKI, f: f, rims: map[string][]byte{}}
	for _, spec := range []nvgputest.RIMSpec{d, v} {
		b, err := f.PKI.SignRIM(spec)
		if err != nil {
			t.Fatal(err)
		}
		fc.rims[spec.ID] = b
	}
	return fc
}

func (c *fakeCollateral) RIM(_ context.Context, id string) ([]byte, error) {
	c.asks = append(c.asks, "rim "+id)
	if b, ok := c.rims[id]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("no rim %s", id)
}

func (c *fakeCollateral) OCSP(_ context.Context, cert, issuer *x509.Certificate) ([]byte, error) {
	c.asks = append(c.asks, "ocsp "+cert.Subject.CommonName)
	s := c.f.Spec([32]byte{})
	return c.pki.OCSPResponse(cert, issuer, ocsp.Good, s.OCSPThisUpdate, s.OCSPNextUpdate)
}

func TestCollect(t *testing.T) {
	f := nvgputest.New("collect test", fixtureNow)
	col := newFakeCollateral(t, f)
	c := &nvgpu.Collector{
		Devices:    []nvgpu.Device{&fakeDevice{pki: f.PKI, gpu: f.GPU}, &fakeDevice{pki: f.PKI, gpu: f.GPU, pem: true}},
		Collateral: col,
	}
	bundleNonce := [proto.NonceSize]byte{0xb0}
	evs, err := c.Collect(context.Background(), bundleNonce)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("%d evidences", len(evs))
	}
	for i, ev := range evs {
		n := proto.GPUNonce(bundleNonce, i)
		if _, err := nvgpu.Verify(ev, f.Options(n)); err != nil {
			t.Fatalf("gpu %d: %v", i, err)
		}
	}
	// GPU 0's evidence is not GPU 1's.
	if _, err := nvgpu.Verify(evs[0], f.Options(proto.GPUNonce(bundleNonce, 1))); err == nil {
		t.Fatal("gpu 0's evidence verified as gpu 1's")
	}
	t.Logf("collateral asked: %q", col.asks)
}

func TestCollectRefuses(t *testing.T) {
	f := nvgputest.New("collect test", fixtureNow)
	other := [32]byte{1}
	gpu := f.GPU
	gpu.DriverVersion = "999.1.1"
	tests := []struct {
		name    string
		c       *nvgpu.Collector
		wantErr string
	}{
		{"no devices", &nvgpu.Collector{Collateral: newFakeCollateral(t, f)}, "0 devices"},
		{"no collateral", &nvgpu.Collector{Devices: []nvgpu.Device{&fakeDevice{pki: f.PKI, gpu: f.GPU}}}, "no collateral source"},
		{"device fails", &nvgpu.Collector{Devices: []nvgpu.Device{&fakeDevice{err: errors.New("nvml: not supported")}}, Collateral: newFakeCollateral(t, f)}, "nvml: not supported"},
		{"device answers another nonce", &nvgpu.Collector{Devices: []nvgpu.Device{&fakeDevice{pki: f.PKI, gpu: f.GPU, answer: &other}}, Collateral: newFakeCollateral(t, f)}, "answered for nonce"},
		{"no rim for the driver", &nvgpu.Collector{Devices: []nvgpu.Device{&fakeDevice{pki: f.PKI, gpu: gpu}}, Collateral: newFakeCollateral(t, f)}, "driver rim: no rim NV_GPU_DRIVER_GH100_999.1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Collect(context.Background(), [proto.NonceSize]byte{})
			if err == nil || !contains(err.Error(), tc.wantErr) {
				t.Fatalf("Collect: %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestRIMIDsOfTheRecordedReport checks the RIM service file IDs against
// the names of the recorded RIMs.
func TestRIMIDsOfTheRecordedReport(t *testing.T) {
	r, err := nvgpu.ParseReport(readShared(t, recorded(t), "test_raw_gpu_attestation_report.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if got := nvgpu.DriverRIMID(r); got != "NV_GPU_DRIVER_GH100_550.90.07" {
		t.Errorf("driver rim id %q", got)
	}
	if got := nvgpu.VBIOSRIMID(r); got != "NV_GPU_VBIOS_1010_0200_882_96009F0001" {
		t.Errorf("vbios rim id %q", got)
	}
}

func TestSplitChain(t *testing.T) {
	dir := recorded(t)
	pemChain := readShared(t, dir, "test_gpu_attestation_certificate_chain.dat")
	ders, err := nvgpu.SplitChain(pemChain)
	if err != nil || len(ders) != 5 {
		t.Fatalf("pem: %d, %v", len(ders), err)
	}
	again, err := nvgpu.SplitChain(bytes.Join(ders, nil))
	if err != nil || len(again) != 5 || !bytes.Equal(again[4], ders[4]) {
		t.Fatalf("der: %d, %v", len(again), err)
	}
	if _, err := nvgpu.SplitChain(append(bytes.Join(ders, nil), 0x30)); err == nil {
		t.Fatal("truncated der accepted")
	}
}
