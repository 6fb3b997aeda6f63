package tdx

import (
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"sync"
)

// intelRootPEM is the Intel SGX Root CA, the root of every PCK certificate
// chain and every PCS issuer chain. It is a copy of verify/trusted_root.pem
// from github.com/google/go-tdx-guest (Apache-2.0), the root that module
// pins; TestPinnedRootIsIntels checks it against the root of Intel's real
// collateral shipped in that module's test data.
//
// Subject: CN=Intel SGX Root CA, O=Intel Corporation, L=Santa Clara, ST=CA, C=US
// SHA-256: 44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3
// Valid:   2018-05-21T10:45:10Z to 2049-12-31T23:59:59Z
//
//go:embed intel_sgx_root_ca.pem
var intelRootPEM []byte

var intelRoot = sync.OnceValue(func() *x509.Certificate {
	b, _ := pem.Decode(intelRootPEM)
	if b == nil {
		panic("tdx: embedded Intel SGX Root CA is not PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		panic("tdx: embedded Intel SGX Root CA: " + err.Error())
	}
	return c
})

// IntelRootCA returns the pinned Intel SGX Root CA certificate.
func IntelRootCA() *x509.Certificate { return intelRoot() }

// IntelRoots returns a new pool holding only the pinned Intel SGX Root CA:
// what Verify trusts when Options.Roots is nil.
func IntelRoots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(intelRoot())
	return p
}
