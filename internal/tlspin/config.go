package tlspin

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// ServerConfig returns the TLS configuration of a worker: TLS 1.3 only,
// presenting cert, and requiring a client certificate whose leaf key's pin
// is among clientPins() at the time of the handshake. The pins are read on
// every handshake, so a change (a re-enrollment) applies to the next one;
// established connections are not closed. clientPins must be safe to call
// from concurrent handshakes. If it is nil or returns no pins, every client
// is refused. A client with an unpinned key fails the handshake with
// [ErrNotPinned] (the client receives a bad_certificate alert); one with no
// certificate, with crypto/tls's error (a certificate_required alert).
//
// No CA verifies the client, and its certificate's names, dates and key
// usages are ignored: the pin is the trust anchor. TLS 1.3 makes the client
// sign the handshake with the key of the certificate it presents, so a
// client whose pin matches holds the pinned key. Session tickets are off,
// so every connection proves the key again.
func ServerConfig(cert tls.Certificate, clientPins func() []Pin) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		ClientAuth:             tls.RequireAnyClientCert,
		SessionTicketsDisabled: true,
		// VerifyConnection, unlike VerifyPeerCertificate, also runs on
		// resumed sessions: nothing gets past it.
		VerifyConnection: func(cs tls.ConnectionState) error {
			var pins []Pin
			if clientPins != nil {
				pins = clientPins()
			}
			return checkPeer(&cs, pins)
		},
	}
}

// ClientConfig returns the TLS configuration of the gateway calling a
// worker: TLS 1.3 only, presenting cert (none if nil; the config keeps a
// copy), and accepting the server only if its leaf key's pin is serverPin.
// The handshake fails with [ErrNoPeerCertificate] or [ErrNotPinned]
// otherwise; a zero serverPin matches no server.
//
// The configuration sets InsecureSkipVerify, which turns off CA chain,
// host name and validity-date checks, and checks the pin in
// VerifyConnection instead. This is safe because the pin, not a CA, is
// the trust anchor: the worker sent it in its registration, and TLS 1.3
// makes the server sign the handshake with the key of the certificate it
// presents (crypto/tls checks that signature whatever InsecureSkipVerify
// says), so a server whose pin matches holds the pinned key. It is as safe
// as the channel the pin came over, and no safer.
func ClientConfig(cert *tls.Certificate, serverPin Pin) *tls.Config {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // the pin check below replaces CA verification
		VerifyConnection: func(cs tls.ConnectionState) error {
			return checkPeer(&cs, []Pin{serverPin})
		},
	}
	if cert != nil {
		own := *cert
		// Present the certificate whatever the server's request says: the
		// server decides.
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &own, nil
		}
	}
	return c
}

// TrustConfig returns the TLS configuration of a client of a gateway with
// a CA-issued certificate: the ordinary checks of the chain against roots
// (nil means the system roots), the host name and the validity dates. It
// accepts TLS 1.2, since a public gateway may sit behind a TLS-terminating
// proxy the project does not control.
func TrustConfig(roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    roots,
	}
}

// PinOnlyTrustConfig returns the TLS configuration of a client of a
// development gateway with a self-signed certificate ([LoadOrCreateDev]):
// TLS 1.3 only, and the gateway is accepted if and only if its leaf key's
// pin is pin. There is no CA, host name or validity-date check; the
// handshake fails with [ErrNotPinned] for any other key.
//
// This is secure exactly when the pin came over a channel the client
// already trusts: the certificate file or pin copied from the gateway's
// machine, not fetched from the gateway itself or from anyone on the path
// to it. A pin learned from a first connection ("trust on first use")
// trusts whoever answered that connection.
func PinOnlyTrustConfig(pin Pin) *tls.Config {
	return ClientConfig(nil, pin)
}

// checkPeer accepts cs if the peer's leaf key has one of pins. It compares
// in constant time and against every pin.
func checkPeer(cs *tls.ConnectionState, pins []Pin) error {
	if len(cs.PeerCertificates) == 0 {
		return ErrNoPeerCertificate
	}
	got := PinOf(cs.PeerCertificates[0])
	match := 0
	for i := range pins {
		match |= subtle.ConstantTimeCompare(got[:], pins[i][:])
	}
	if match != 1 {
		return fmt.Errorf("%w: %s", ErrNotPinned, got)
	}
	return nil
}
