package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/sealgate/sealgate/proto"
)

// Labels for every derivation; SPEC.md lists them.
const (
	labelWrapInfo    = "sealgate/v1 wrap"
	labelCommit      = "sealgate/v1 commit"
	labelBody        = "sealgate/v1 request body"
	labelExporter    = "sealgate/v1 response exporter"
	labelResponseKey = "sealgate/v1 response key\x00"
	dataKeySize      = 32
)

func suiteParts(s proto.Suite) (hpke.KEM, hpke.KDF, hpke.AEAD, error) {
	if !s.Supported() {
		return nil, nil, nil, fmt.Errorf("%w: %v is not supported", ErrSuite, s)
	}
	k, err := kem(s.KEM)
	if err != nil {
		return nil, nil, nil, err
	}
	return k, hpke.HKDFSHA256(), hpke.AES256GCM(), nil
}

func deriveKey(secret, salt []byte, info string) []byte {
	k, err := hkdf.Key(sha256.New, secret, salt, info, 32)
	if err != nil {
		panic("seal: hkdf: " + err.Error()) // only for lengths > 255*32
	}
	return k
}

func commitTag(dataKey, tagInput []byte) [proto.TagSize]byte {
	m := hmac.New(sha256.New, deriveKey(dataKey, nil, labelCommit))
	m.Write(tagInput)
	var t [proto.TagSize]byte
	m.Sum(t[:0])
	return t
}

func newGCM(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic("seal: aes: " + err.Error()) // keys are always 32 bytes
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic("seal: gcm: " + err.Error())
	}
	return g
}

func responseKey(exporter []byte, nonce [32]byte, headerHash [32]byte) []byte {
	return deriveKey(exporter, nonce[:], labelResponseKey+string(headerHash[:]))
}

// keyLog writes one INSECURE key log line, for tests only.
func keyLog(w io.Writer, label string, id [proto.RequestIDSize]byte, secret []byte) {
	if w != nil {
		fmt.Fprintf(w, "%s %x %x\n", label, id, secret)
	}
}
