package rim_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim"
	"github.com/sealgate/sealgate/internal/testenv"
)

// Times the recorded NVIDIA data is checked at.
var (
	// recordedAt is when the fixture README says to verify: every
	// certificate of both RIM chains is valid then.
	recordedAt = time.Date(2025, 9, 1, 1, 0, 0, 0, time.UTC)
	// ocspAt is inside the window of the recorded RIM OCSP responses
	// (thisUpdate 2025-10-24T11:32:21Z, nextUpdate a day later), which
	// were fetched after recordedAt and are not valid at it.
	ocspAt = time.Date(2025, 10, 24, 12, 0, 0, 0, time.UTC)
)

// The real RIMs and what they hold.
const (
	driverRIM = "NV_GPU_DRIVER_GH100_550.90.07.xml"
	vbiosRIM  = "NV_GPU_VBIOS_1010_0200_882_96009F0001.xml"
)

// The recorded OCSP responses about the RIM signing chains, by what they
// are about (serial numbers as the responses and certificates carry
// them).
const (
	// ocspRIMCA is about "NVIDIA Reference Value GH100 CA" (serial
	// c6dbf0754093fdeb4333f34ba205b4dc), issued by the CoRIM root: chain
	// level 2 of both the driver and the VBIOS RIM.
	ocspRIMCA = "test_gpu_rim_l2_base64encoded_ocsp_response.dat"
	// ocspRIML3 is about "NVIDIA Reference Value L3 GH100 002" (serial
	// b4ebf6542022fdec4512f24ba503a3cb): chain level 3 of both RIMs,
	// though its name says driver.
	ocspRIML3 = "test_gpu_driver_rim_l3_base64encoded_ocsp_response.dat"
	// ocspDriverLeaf is about the driver RIM's "HCC RIM L4 Signer"
	// (serial d69f10b46c05d201).
	ocspDriverLeaf = "test_gpu_driver_rim_l4_base64encoded_ocsp_response.dat"
	// ocspVBIOSLeaf is about the VBIOS RIM's "HCC RIM L4 Signer" (serial
	// 89624ede804c3916).
	ocspVBIOSLeaf = "test_gpu_vbios_l4_base64encoded_ocsp_response.dat"
)

// nvidia returns the path of name in the shared NVIDIA fixtures, skipping
// (or failing under CI=true) when they are absent.
func nvidia(tb testing.TB, name string) string {
	tb.Helper()
	return filepath.Join(testenv.Shared(tb, "fixtures/nvidia"), name)
}

func read(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func readRIM(tb testing.TB, name string) []byte {
	tb.Helper()
	return read(tb, nvidia(tb, filepath.Join("rim", name)))
}

// readOCSP returns the DER of recorded OCSP responses (stored as base64
// text).
func readOCSP(tb testing.TB, names ...string) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, n := range names {
		der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(read(tb, nvidia(tb, filepath.Join("ocsp", n))))))
		if err != nil {
			tb.Fatalf("%s: %v", n, err)
		}
		out = append(out, der)
	}
	return out
}

// allOCSP returns every recorded OCSP response, the GPU chain's too.
func allOCSP(tb testing.TB) [][]byte {
	tb.Helper()
	names, err := filepath.Glob(nvidia(tb, "ocsp/*.dat"))
	if err != nil || len(names) == 0 {
		tb.Fatalf("no recorded OCSP responses: %v", err)
	}
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	return readOCSP(tb, names...)
}

func readCert(tb testing.TB, path string) *x509.Certificate {
	tb.Helper()
	b, _ := pem.Decode(read(tb, path))
	if b == nil {
		tb.Fatalf("%s: not PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// recordedRoots is a pool with the recorded rim_root.pem (the same
// certificate Verify pins; TestPinnedRootIsNVIDIAs checks that).
func recordedRoots(tb testing.TB) *x509.CertPool {
	tb.Helper()
	p := x509.NewCertPool()
	p.AddCert(readCert(tb, nvidia(tb, "rim_root.pem")))
	return p
}

// problems returns every *check.Error in err: the one it is and the ones
// it wraps (Parse reports one per malformed part of a document).
func problems(err error) []*check.Error {
	var out []*check.Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*check.Error); ok {
			out = append(out, e)
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// wantCode fails unless err is a *check.Error with code.
func wantCode(tb testing.TB, err error, code check.Code) *check.Error {
	tb.Helper()
	var e *check.Error
	if !errors.As(err, &e) {
		tb.Fatalf("error %v (%T), want a *check.Error with code %s", err, err, code)
	}
	if e.Code != code {
		tb.Fatalf("code %s (%v), want %s", e.Code, err, code)
	}
	return e
}

// verified runs Verify and fails the test on error.
func verified(tb testing.TB, xml []byte, opts rim.Options) *rim.RIM {
	tb.Helper()
	r, err := rim.Verify(xml, opts)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return r
}
