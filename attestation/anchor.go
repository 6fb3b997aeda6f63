package attestation

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/proto"
)

// SignAnchor returns an encoded time anchor for challenge at t, signed by
// key. The gateway hands anchors out with its challenges; a worker binds
// proto.AnchoredNonce(anchor) into its evidence.
func SignAnchor(key ed25519.PrivateKey, challenge [proto.NonceSize]byte, t time.Time) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("attestation: anchor key is not an Ed25519 private key")
	}
	a := proto.Anchor{Challenge: challenge, Time: t.Truncate(time.Millisecond), KeyID: proto.AnchorKeyID(key.Public().(ed25519.PublicKey))}
	copy(a.Signature[:], ed25519.Sign(key, a.SignedMessage()))
	return a.Marshal()
}

// anchorTime checks the bundle's time anchor against the pinned anchor keys
// and returns its time: the earliest the evidence can have been made. The
// bundle parser has already checked that the nonce derives from the anchor.
func anchorTime(b *proto.Bundle, keys []ed25519.PublicKey) (time.Time, error) {
	if len(b.Anchor) == 0 {
		return time.Time{}, check.Fail(check.CodeStale, "anchor", "none", "a signed time anchor, since "+b.Kind+" reports carry no time")
	}
	if len(keys) == 0 {
		return time.Time{}, check.Fail(check.CodeStale, "anchor key", "no pinned anchor key", "the anchor signer's public key in the verifier's options")
	}
	a, err := proto.ParseAnchor(b.Anchor)
	if err != nil {
		return time.Time{}, check.Wrap(check.CodeMalformed, "anchor", err)
	}
	for _, k := range keys {
		if proto.AnchorKeyID(k) != a.KeyID {
			continue
		}
		if !ed25519.Verify(k, a.SignedMessage(), a.Signature[:]) {
			return time.Time{}, check.Fail(check.CodeSignature, "anchor signature", "a signature that does not verify", "a signature by the pinned anchor key")
		}
		return a.Time, nil
	}
	return time.Time{}, check.Fail(check.CodeStale, "anchor key id", fmt.Sprintf("%x", a.KeyID), "the id of a pinned anchor key")
}
