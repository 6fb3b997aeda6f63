// Package fixturekey derives the deterministic keys and serial numbers of
// the test fixture PKIs (attestation/tdx/tdxtest, attestation/nvgpu/nvgputest,
// attestation/nvgpu/rim/rimtest), so generated test vectors are the same
// bytes on every run. Test code only: every key is derived from a public
// seed and protects nothing.
package fixturekey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"math/big"
)

// ECDSA returns a key on curve (P-256 or P-384) derived from the fixture
// package's name, a seed and a label.
func ECDSA(curve elliptic.Curve, pkg, seed, label string) *ecdsa.PrivateKey {
	for i := 0; ; i++ {
		msg := fmt.Appendf(nil, "sealgate %s key\x00%s\x00%s\x00%d", pkg, seed, label, i)
		var scalar []byte
		switch curve {
		case elliptic.P256():
			h := sha256.Sum256(msg)
			scalar = h[:]
		case elliptic.P384():
			h := sha512.Sum384(msg)
			scalar = h[:]
		default:
			panic("fixturekey: unsupported curve " + curve.Params().Name)
		}
		if k, err := ecdsa.ParseRawPrivateKey(curve, scalar); err == nil {
			return k
		}
	}
}

// Serial returns a positive certificate serial number of size bytes
// derived from the fixture package's name, a seed and a label.
func Serial(pkg, seed, label string, size int) *big.Int {
	h := sha256.Sum256(fmt.Appendf(nil, "sealgate %s serial\x00%s\x00%s", pkg, seed, label))
	h[0] &= 0x7f
	return new(big.Int).SetBytes(h[:size])
}

// SubjectKeyID returns a certificate subject key id for pub: SHA-1 of its
// uncompressed point, as RFC 5280's method 1 does.
func SubjectKeyID(pub *ecdsa.PublicKey) []byte {
	b, _ := pub.Bytes()
	h := sha1.Sum(b)
	return h[:]
}
