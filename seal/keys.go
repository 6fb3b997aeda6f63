package seal

import (
	"crypto/hpke"
	"fmt"
	"log/slog"

	"github.com/sealgate/sealgate/proto"
)

// kem returns the crypto/hpke KEM for a supported suite's KEM id.
func kem(id uint16) (hpke.KEM, error) {
	switch id {
	case proto.KEMMLKEM768X25519:
		return hpke.MLKEM768X25519(), nil
	case proto.KEMX25519:
		return hpke.NewKEM(id)
	}
	return nil, fmt.Errorf("%w: kem 0x%04x is not supported", ErrSuite, id)
}

// PrivateKey is a worker's HPKE private key for one KEM. It has no String
// method; LogValue prints only the key id.
type PrivateKey struct {
	priv hpke.PrivateKey
	pub  proto.HPKEKey
	id   proto.KeyID
}

// GenerateKey makes a new private key for the suite's KEM.
func GenerateKey(kemID uint16) (*PrivateKey, error) {
	k, err := kem(kemID)
	if err != nil {
		return nil, err
	}
	priv, err := k.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generating hpke key: %w", err)
	}
	return newPrivateKey(kemID, priv), nil
}

// DeriveKey derives a private key deterministically from ikm (RFC 9180
// DeriveKeyPair). It exists for test vectors; workers use GenerateKey.
func DeriveKey(kemID uint16, ikm []byte) (*PrivateKey, error) {
	k, err := kem(kemID)
	if err != nil {
		return nil, err
	}
	priv, err := k.DeriveKeyPair(ikm)
	if err != nil {
		return nil, fmt.Errorf("deriving hpke key: %w", err)
	}
	return newPrivateKey(kemID, priv), nil
}

func newPrivateKey(kemID uint16, priv hpke.PrivateKey) *PrivateKey {
	pub := proto.HPKEKey{KEM: kemID, PublicKey: priv.PublicKey().Bytes()}
	return &PrivateKey{priv: priv, pub: pub, id: pub.ID()}
}

// Public returns the public half, as a bundle lists it.
func (k *PrivateKey) Public() proto.HPKEKey { return k.pub }

// ID returns the key id.
func (k *PrivateKey) ID() proto.KeyID { return k.id }

// LogValue identifies the key by a fingerprint of its public half only.
func (k *PrivateKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kem", fmt.Sprintf("0x%04x", k.pub.KEM)), slog.String("key_id", fmt.Sprintf("%x", k.id[:8])))
}

// insecureBytes serializes the private key, for Options.KeyLog only.
func (k *PrivateKey) insecureBytes() []byte {
	b, err := k.priv.Bytes()
	if err != nil {
		return nil
	}
	return b
}
