package tlspin

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The files of the development certificate in LoadOrCreateDev's dir.
const (
	DevCertFile = "dev-tls-cert.pem" // the certificate, mode 0644: give it to clients
	DevKeyFile  = "dev-tls-key.pem"  // its PKCS #8 private key, mode 0600
)

// devValidFor is the validity of a new development certificate. A new
// certificate has a new key, hence a new pin every client must learn, so
// it is long.
const devValidFor = 365 * 24 * time.Hour

// errStale marks development files LoadOrCreateDev replaces rather than
// reports: a missing file, or a key that is not the certificate's (what a
// crash between writing the two files leaves).
var errStale = errors.New("stale")

// LoadOrCreateDev returns the self-signed certificate of a development
// gateway, kept in dir as [DevCertFile] and [DevKeyFile]. It reuses them if
// both exist, the key is the certificate's, now is within the
// certificate's validity and the certificate names every host (no hosts
// means 127.0.0.1, ::1 and localhost). Otherwise it makes a new key and
// certificate with [SelfSigned], valid for a year, writes each file
// atomically (temporary file, fsync, rename, fsync of dir; the key first,
// mode 0600), and reports created. The key is written nowhere else.
//
// A new certificate has a new pin: clients that pinned the old one refuse
// the gateway until given the new certificate file (certPEMPath) or pin.
// LoadOrCreateDev refuses a key file that group or others may access
// rather than use or replace a key that may have leaked, and reports an
// unreadable or malformed file rather than replace it. It is not safe for
// several processes to call it on the same dir at once.
func LoadOrCreateDev(dir string, hosts []string, now time.Time) (cert tls.Certificate, certPEMPath string, created bool, err error) {
	if dir == "" {
		return tls.Certificate{}, "", false, errors.New("tlspin: empty development certificate dir")
	}
	if len(hosts) == 0 {
		hosts = defaultHosts()
	}
	certPath := filepath.Join(dir, DevCertFile)
	keyPath := filepath.Join(dir, DevKeyFile)

	cert, err = loadDev(certPath, keyPath)
	switch {
	case err == nil:
		if devUsable(cert.Leaf, hosts, now) {
			return cert, certPath, false, nil
		}
	case !errors.Is(err, errStale):
		return tls.Certificate{}, "", false, err
	}

	cert, err = SelfSigned(hosts, now, devValidFor)
	if err != nil {
		return tls.Certificate{}, "", false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return tls.Certificate{}, "", false, fmt.Errorf("tlspin: encoding development key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, "", false, fmt.Errorf("tlspin: development certificate dir: %w", err)
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, "", false, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, "", false, err
	}
	return cert, certPath, true, nil
}

// loadDev reads the development key pair. Its error wraps errStale when
// LoadOrCreateDev should replace the files.
func loadDev(certPath, keyPath string) (tls.Certificate, error) {
	keyPEM, err := readPrivateFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("%w: %w", errStale, err)
	}
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("%w: %w", errStale, err)
	}
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlspin: reading development certificate: %w", err)
	}

	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return tls.Certificate{}, fmt.Errorf("tlspin: development certificate %s: no CERTIFICATE PEM block", certPath)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlspin: development certificate %s: %w", certPath, err)
	}
	block, _ = pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return tls.Certificate{}, fmt.Errorf("tlspin: development key %s: no PRIVATE KEY PEM block", keyPath)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlspin: development key %s: %w", keyPath, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return tls.Certificate{}, fmt.Errorf("tlspin: development key %s: %T is not a signing key", keyPath, key)
	}
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(signer.Public()) {
		return tls.Certificate{}, fmt.Errorf("%w: development key %s is not the key of %s", errStale, keyPath, certPath)
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: signer, Leaf: leaf}, nil
}

// readPrivateFile reads a file only group and others cannot access.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tlspin: reading development key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tlspin: reading development key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("tlspin: development key %s has mode %#o, want 0600: it may have leaked; delete it to make a new one", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<16))
	if err != nil {
		return nil, fmt.Errorf("tlspin: reading development key: %w", err)
	}
	return data, nil
}

// devUsable reports whether leaf is valid at now and names every host.
func devUsable(leaf *x509.Certificate, hosts []string, now time.Time) bool {
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return false
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return false
			}
			continue
		}
		if !slices.ContainsFunc(leaf.DNSNames, func(n string) bool { return strings.EqualFold(n, h) }) {
			return false
		}
	}
	return true
}

// writeFileAtomic replaces path with data: a reader sees the old file or
// the whole new one, also after a crash.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return fmt.Errorf("tlspin: writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("tlspin: writing %s: %w", path, err)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
