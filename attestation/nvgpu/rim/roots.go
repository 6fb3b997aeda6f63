package rim

import (
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"sync"
)

// nvidiaRootPEM is the NVIDIA CoRIM signing Root CA, the root of the
// certificate chains that sign NVIDIA's reference integrity manifests. It
// is a copy of guest_tools/gpu_verifiers/local_gpu_verifier/src/verifier/
// certs/verifier_RIM_root.pem from github.com/NVIDIA/nvtrust (Apache-2.0,
// commit 0ab869a5cd454076801ab63baecae96f49302261), the root NVIDIA's own
// local GPU verifier pins. TestPinnedRootIsNVIDIAs checks it against the
// root carried in NVIDIA's real RIMs and the recorded rim_root.pem.
//
// Subject: CN=NVIDIA CoRIM signing Root CA, O=NVIDIA, C=US
// SHA-256: 12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1
// Valid:   2023-03-16T15:37:34Z to 2053-03-08T15:37:34Z
//
//go:embed nvidia_rim_root.pem
var nvidiaRootPEM []byte

var nvidiaRoot = sync.OnceValue(func() *x509.Certificate {
	b, _ := pem.Decode(nvidiaRootPEM)
	if b == nil {
		panic("rim: embedded NVIDIA RIM root is not PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		panic("rim: embedded NVIDIA RIM root: " + err.Error())
	}
	return c
})

// NVIDIARootCA returns the pinned NVIDIA CoRIM signing Root CA.
func NVIDIARootCA() *x509.Certificate { return nvidiaRoot() }

// NVIDIARoots returns a new pool holding only the pinned NVIDIA CoRIM
// signing Root CA: what Verify trusts when Options.Roots is nil.
func NVIDIARoots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(nvidiaRoot())
	return p
}
