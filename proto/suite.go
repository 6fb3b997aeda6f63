package proto

import "fmt"

// HPKE algorithm identifiers (RFC 9180 and draft-ietf-hpke-pq) that sealgate
// uses.
const (
	KEMX25519         uint16 = 0x0020 // DHKEM(X25519, HKDF-SHA256)
	KEMMLKEM768X25519 uint16 = 0x647a // MLKEM768-X25519 (X-Wing)
	KDFHKDFSHA256     uint16 = 0x0001
	AEADAES256GCM     uint16 = 0x0002
)

// A Suite is one HPKE ciphersuite: the KEM that wraps the data key to each
// candidate, the KDF used for every derivation, and the AEAD used for the
// wraps and both body streams.
type Suite struct {
	KEM  uint16
	KDF  uint16
	AEAD uint16
}

// The suites sealgate supports, strongest first.
var (
	// SuiteMLKEM768X25519 is the default: post-quantum hybrid key
	// encapsulation (ML-KEM-768 with X25519), HKDF-SHA256, AES-256-GCM.
	SuiteMLKEM768X25519 = Suite{KEMMLKEM768X25519, KDFHKDFSHA256, AEADAES256GCM}
	// SuiteX25519 is classical: DHKEM(X25519), HKDF-SHA256, AES-256-GCM.
	SuiteX25519 = Suite{KEMX25519, KDFHKDFSHA256, AEADAES256GCM}
)

// Suites lists the supported suites, strongest first.
func Suites() []Suite { return []Suite{SuiteMLKEM768X25519, SuiteX25519} }

// Strength orders suites: a higher number is stronger. Unsupported suites
// have strength 0.
func (s Suite) Strength() int {
	switch s {
	case SuiteMLKEM768X25519:
		return 2
	case SuiteX25519:
		return 1
	}
	return 0
}

// Supported reports whether s is one of Suites.
func (s Suite) Supported() bool { return s.Strength() > 0 }

// String returns the suite's name as it appears in policy files, for example
// "mlkem768x25519-hkdfsha256-aes256gcm".
func (s Suite) String() string {
	switch s {
	case SuiteMLKEM768X25519:
		return "mlkem768x25519-hkdfsha256-aes256gcm"
	case SuiteX25519:
		return "x25519-hkdfsha256-aes256gcm"
	}
	return fmt.Sprintf("suite(kem=0x%04x,kdf=0x%04x,aead=0x%04x)", s.KEM, s.KDF, s.AEAD)
}

// ParseSuite returns the supported suite with the given name.
func ParseSuite(name string) (Suite, error) {
	for _, s := range Suites() {
		if s.String() == name {
			return s, nil
		}
	}
	return Suite{}, fmt.Errorf("unknown hpke suite %q: want one of %q, %q", name, SuiteMLKEM768X25519, SuiteX25519)
}

// SuiteForKEM returns the supported suite whose KEM is kem.
func SuiteForKEM(kem uint16) (Suite, bool) {
	for _, s := range Suites() {
		if s.KEM == kem {
			return s, true
		}
	}
	return Suite{}, false
}
