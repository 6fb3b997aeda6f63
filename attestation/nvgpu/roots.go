package nvgpu

import (
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"sync"
)

// deviceRootPEM is the NVIDIA Device Identity CA, the root of every
// NVIDIA GPU and NVSwitch attestation certificate chain. It is a copy of
// guest_tools/gpu_verifiers/local_gpu_verifier/src/verifier/certs/
// verifier_device_root.pem from github.com/NVIDIA/nvtrust (BSD-3-Clause),
// commit b75351ab108ff098076954e1a20e9479b51dabb7, the root NVIDIA's own
// verifier pins; google/go-nvattest-tools embeds the same certificate
// (server/cert/device_root.pem). TestPinnedRootIsNVIDIAs checks it
// against the root of the recorded H100 chain when the shared fixtures
// are present.
//
// Subject: CN=NVIDIA Device Identity CA, O=NVIDIA
// Key:     ECDSA P-384
// SHA-256: 102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48
// Valid:   2021-11-05T00:00:00Z to 9999-12-31T23:59:59Z
//
//go:embed nvidia_device_identity_ca.pem
var deviceRootPEM []byte

var deviceRoot = sync.OnceValue(func() *x509.Certificate {
	b, _ := pem.Decode(deviceRootPEM)
	if b == nil {
		panic("nvgpu: embedded NVIDIA Device Identity CA is not PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		panic("nvgpu: embedded NVIDIA Device Identity CA: " + err.Error())
	}
	return c
})

// DeviceRootCA returns the pinned NVIDIA Device Identity CA certificate.
func DeviceRootCA() *x509.Certificate { return deviceRoot() }

// DeviceRoots returns a new pool holding only the pinned NVIDIA Device
// Identity CA: what Verify trusts when Options.DeviceRoots is nil.
func DeviceRoots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(deviceRoot())
	return p
}
