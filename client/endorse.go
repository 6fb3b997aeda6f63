package client

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"

	"github.com/sealgate/sealgate/proto"
)

// checkIDs refuses a candidate whose worker or provider id is not one the
// gateway admits (1 to proto.MaxWorkerIDLen characters of [A-Za-z0-9._-]).
// Only a hostile gateway lists one, and the ids reach the caller's
// results, errors and logs: control characters there could rewrite a
// terminal or forge log lines. The error does not quote the id.
func checkIDs(ci proto.CandidateInfo) error {
	for _, id := range []struct{ field, v string }{{"worker id", ci.WorkerID}, {"provider id", ci.ProviderID}} {
		if !validID(id.v) {
			return &EndorsementError{ProviderID: printableID(ci.ProviderID), Field: id.field,
				Found: fmt.Sprintf("%d bytes, not all of [A-Za-z0-9._-]", len(id.v)), Want: fmt.Sprintf("1 to %d characters of [A-Za-z0-9._-], as the gateway admits", proto.MaxWorkerIDLen)}
		}
	}
	return nil
}

func validID(id string) bool {
	if id == "" || len(id) > proto.MaxWorkerIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// printableID returns id if it is valid, else the quoted (Go syntax,
// ASCII) form of at most its first proto.MaxWorkerIDLen bytes.
func printableID(id string) string {
	if validID(id) {
		return id
	}
	return strconv.QuoteToASCII(id[:min(len(id), proto.MaxWorkerIDLen)])
}

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
