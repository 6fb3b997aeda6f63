// Package anchortest holds the fixture time-anchor key that every
// generated attestation test vector is anchored with. Test code only: the
// key is derived from a published seed, so anything it signs proves
// nothing. Production verifiers pin the gateway's (later the transparency
// log's) real anchor key.
package anchortest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/proto"
)

// Seed is the published seed of the fixture anchor key.
const Seed = "sealgate test vector anchor key v1"

// Key returns the fixture anchor signing key.
func Key() ed25519.PrivateKey {
	s := sha256.Sum256([]byte(Seed))
	return ed25519.NewKeyFromSeed(s[:])
}

// PublicKey returns the fixture anchor key's public half, to pin in tests.
func PublicKey() ed25519.PublicKey { return Key().Public().(ed25519.PublicKey) }

// Anchor returns an encoded anchor signed by the fixture key at t, with a
// challenge derived from the seed and t, and the nonce a bundle carrying it
// must have.
func Anchor(t time.Time) ([]byte, [proto.NonceSize]byte) {
	c := sha256.Sum256([]byte(Seed + " challenge " + t.UTC().Format(time.RFC3339Nano)))
	a, err := attestation.SignAnchor(Key(), c, t)
	if err != nil {
		panic("anchortest: " + err.Error()) // only for a key of the wrong size
	}
	return a, proto.AnchoredNonce(a)
}
