// Package tlspin authenticates TLS peers by a [Pin], the SHA-256 of their
// public key, in place of a certificate authority; a pin is exactly as
// trustworthy as the channel it came over. A worker enrolling over TLS
// records the gateway's pin ([PeerPin]); the gateway presents that same
// certificate as its client certificate, and the worker serves only pinned
// clients ([ServerConfig]). The worker makes a fresh in-memory key at start
// ([SelfSigned]) and sends its pin in its registration; the gateway dials it
// with that pin as the sole trust anchor ([ClientConfig]). Clients verify
// the gateway against CAs ([TrustConfig]) or, for a self-signed development
// gateway ([LoadOrCreateDev]), by a pin given out of band ([PinOnlyTrustConfig]).
package tlspin

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Pin is the SHA-256 of a certificate's DER SubjectPublicKeyInfo. It names
// a key, not a certificate: reissuing a certificate for the same key keeps
// its pin. Its text form is "sha256/" followed by the unpadded base64url
// encoding of the hash (50 characters).
//
// The zero Pin is not the hash of any key anyone can find, so a zero pin
// matches no peer; callers reading pins from configuration should still
// reject it as missing.
type Pin [sha256.Size]byte

const (
	pinPrefix = "sha256/"
	pinB64Len = 43 // base64.RawURLEncoding.EncodedLen(sha256.Size)
	b64URL    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

// ErrNotPinned is the handshake error, wrapped with the peer's pin, of the
// configurations in this package when the peer's leaf key is not pinned.
var ErrNotPinned = errors.New("tlspin: peer key is not pinned")

// ErrNoPeerCertificate is returned when a peer presented no certificate.
var ErrNoPeerCertificate = errors.New("tlspin: peer presented no certificate")

// PinOf returns the pin of cert's public key. cert must not be nil.
func PinOf(cert *x509.Certificate) Pin {
	return sha256.Sum256(cert.RawSubjectPublicKeyInfo)
}

// PeerPin returns the pin of the leaf certificate the peer presented in a
// completed handshake. A worker records the gateway's pin this way when it
// enrolls.
func PeerPin(cs *tls.ConnectionState) (Pin, error) {
	if cs == nil || !cs.HandshakeComplete {
		return Pin{}, errors.New("tlspin: handshake not complete")
	}
	if len(cs.PeerCertificates) == 0 {
		return Pin{}, ErrNoPeerCertificate
	}
	return PinOf(cs.PeerCertificates[0]), nil
}

// String returns the canonical text form, "sha256/" followed by the
// unpadded base64url encoding of p. [ParsePin] accepts only this form.
func (p Pin) String() string {
	return pinPrefix + base64.RawURLEncoding.EncodeToString(p[:])
}

// ParsePin parses the canonical text form produced by [Pin.String]:
// exactly "sha256/" and 43 base64url characters, no padding, no
// whitespace, and no stray bits in the last character. Anything else is an
// error, so a pin has one spelling and String(ParsePin(s)) == s.
func ParsePin(s string) (Pin, error) {
	rest, ok := strings.CutPrefix(s, pinPrefix)
	if !ok {
		return Pin{}, fmt.Errorf("tlspin: pin %.60q: want prefix %q", s, pinPrefix)
	}
	if len(rest) != pinB64Len {
		return Pin{}, fmt.Errorf("tlspin: pin %.60q: %d characters after %q, want %d", s, len(rest), pinPrefix, pinB64Len)
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(b64URL, rest[i]) < 0 {
			return Pin{}, fmt.Errorf("tlspin: pin %q: byte %q at offset %d is not unpadded base64url", s, rest[i:i+1], len(pinPrefix)+i)
		}
	}
	var p Pin
	n, err := base64.RawURLEncoding.Strict().Decode(p[:], []byte(rest))
	if err != nil || n != len(p) {
		// Only the last character can fail here: its low bits must be zero.
		return Pin{}, fmt.Errorf("tlspin: pin %q: last character %q has stray low bits, not canonical base64url", s, rest[len(rest)-1:])
	}
	return p, nil
}

// MarshalText implements [encoding.TextMarshaler] with the form of
// [Pin.String].
func (p Pin) MarshalText() ([]byte, error) {
	return []byte(p.String()), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler] with [ParsePin].
func (p *Pin) UnmarshalText(text []byte) error {
	q, err := ParsePin(string(text))
	if err != nil {
		return err
	}
	*p = q
	return nil
}
