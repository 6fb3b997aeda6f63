package client

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/sealgate/sealgate/proto"
)

// checkEndorsement checks that the candidate's provider key endorsed the
// keys its verified evidence binds, and that the key is trusted.
func (c *Client) checkEndorsement(ci proto.CandidateInfo, keysHash [32]byte) error {
	fail := func(field, found, want string) error {
		return &EndorsementError{ProviderID: ci.ProviderID, Field: field, Found: found, Want: want}
	}
	switch {
	case len(ci.ProviderKey) == 0:
		return fail("provider key", "none", "the Ed25519 key of the provider that endorses the worker")
	case len(ci.ProviderKey) != ed25519.PublicKeySize:
		return fail("provider key", fmt.Sprintf("%d bytes", len(ci.ProviderKey)), fmt.Sprintf("an Ed25519 public key of %d bytes", ed25519.PublicKeySize))
	case len(ci.Endorsement) == 0:
		return fail("endorsement", "none", "the provider's signature over the worker's attested keys")
	}
	pk := ed25519.PublicKey(ci.ProviderKey)
	if len(c.cfg.TrustedProviders) > 0 && !slices.ContainsFunc(c.cfg.TrustedProviders, func(k ed25519.PublicKey) bool { return pk.Equal(k) }) {
		return fail("provider key", base64.StdEncoding.EncodeToString(pk), fmt.Sprintf("one of the %d keys in Config.TrustedProviders", len(c.cfg.TrustedProviders)))
	}
	if !ed25519.Verify(pk, proto.EndorsementMessage(ci.WorkerID, keysHash), ci.Endorsement) {
		return fail("endorsement", "a signature that does not verify", "the listed provider key's signature over the worker's id and attested keys")
	}
	return nil
}
