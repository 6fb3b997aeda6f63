package tlspin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// defaultHosts are the names SelfSigned and LoadOrCreateDev put in a
// certificate when given no hosts.
func defaultHosts() []string { return []string{"127.0.0.1", "::1", "localhost"} }

// selfSignedCN is the subject common name of every certificate SelfSigned
// makes. Peers never check it; it only tells a human what the cert is.
const selfSignedCN = "sealgate self-signed"

// SelfSigned returns a new ECDSA P-256 key and a self-signed leaf
// certificate for it, valid from an hour before now (for peers with slow
// clocks) until now+validFor. Each host becomes an IP address SAN if it
// parses as an IP address, else a DNS name SAN; no hosts means 127.0.0.1,
// ::1 and localhost. The certificate is for both server and client
// authentication, since the gateway presents the same one both ways. The
// key exists only in the returned value; the caller decides whether to
// store it.
//
// The result's Leaf is set, so PinOf(cert.Leaf) is its pin.
func SelfSigned(hosts []string, now time.Time, validFor time.Duration) (tls.Certificate, error) {
	if validFor <= 0 {
		return tls.Certificate{}, fmt.Errorf("tlspin: self-signed validity %v, want > 0", validFor)
	}
	if len(hosts) == 0 {
		hosts = defaultHosts()
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: selfSignedCN},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip, err := netip.ParseAddr(h); err == nil {
			if ip.Zone() != "" {
				return tls.Certificate{}, fmt.Errorf("tlspin: host %q: an IP address with a zone cannot be a certificate name", h)
			}
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
			continue
		}
		if err := checkDNSName(h); err != nil {
			return tls.Certificate{}, err
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	// A positive 127-bit serial: unique without coordination, and within
	// RFC 5280's 20 octets.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlspin: serial number: %w", err)
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1))

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlspin: generating key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlspin: creating certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlspin: parsing new certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// checkDNSName accepts host names of letter, digit and hyphen labels, with
// an optional leading "*." wildcard label. It rejects what is usually a
// mistake in a host list: a port, a URL, a trailing dot, spaces.
func checkDNSName(h string) error {
	if h == "" {
		return fmt.Errorf("tlspin: empty host name")
	}
	if len(h) > 253 {
		return fmt.Errorf("tlspin: host %.60q...: %d bytes, want at most 253", h, len(h))
	}
	name := strings.TrimPrefix(h, "*.")
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("tlspin: host %q: label %q, want 1 to 63 bytes", h, label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("tlspin: host %q: byte %q is not a letter, digit or hyphen, and the host is not an IP address", h, label[i:i+1])
			}
		}
	}
	return nil
}

// LoadPEMFile reads a certificate chain (leaf first) and its private key
// from PEM files, like [tls.LoadX509KeyPair], with errors that name the
// file at fault. The result's Leaf is set.
func LoadPEMFile(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlspin: reading certificate file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlspin: reading key file: %w", err)
	}
	if err := checkPEM(certPEM, "CERTIFICATE"); err != nil {
		return tls.Certificate{}, fmt.Errorf("tlspin: certificate file %s: %w", certFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlspin: certificate file %s with key file %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// LoadPinFile returns the pin of the first certificate in a PEM file: how
// a client given the development gateway's certificate file pins it.
func LoadPinFile(certFile string) (Pin, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return Pin{}, fmt.Errorf("tlspin: reading certificate file: %w", err)
	}
	if err := checkPEM(data, "CERTIFICATE"); err != nil {
		return Pin{}, fmt.Errorf("tlspin: certificate file %s: %w", certFile, err)
	}
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return Pin{}, fmt.Errorf("tlspin: certificate file %s: %w", certFile, err)
	}
	return PinOf(cert), nil
}

// checkPEM reports whether data starts with a PEM block of type typ.
func checkPEM(data []byte, typ string) error {
	block, _ := pem.Decode(data)
	if block == nil {
		return fmt.Errorf("no PEM block, want %q", typ)
	}
	if block.Type != typ {
		return fmt.Errorf("first PEM block is %q, want %q", block.Type, typ)
	}
	return nil
}
