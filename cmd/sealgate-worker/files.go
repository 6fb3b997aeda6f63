package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sealgate/sealgate/internal/tlspin"
)

// maxSecretFile bounds the credential and key files, maxCAFile the
// gateway CA file: no legitimate one comes near.
const (
	maxSecretFile = 16 << 10
	maxCAFile     = 1 << 20
)

// readFile reads at most limit bytes of path, refusing a larger file.
// Errors name flag and path and never quote the content.
func readFile(flag, path string, limit int64) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%s: found none, want a file", flag)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", flag, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", flag, path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s %s: found more than %d bytes, want a small file", flag, path, limit)
	}
	return data, nil
}

// othersCanRead reports whether path's mode lets its group or others read
// it, for a warning: a secret file should be mode 0600 or 0400.
func othersCanRead(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Perm()&0o044 != 0
}

// readCredential reads the provider credential: one line, surrounding
// white space ignored. enclave.New checks its form.
func readCredential(path string) (string, error) {
	const flag = "-credential-file"
	data, err := readFile(flag, path, maxSecretFile)
	if err != nil {
		return "", err
	}
	c := strings.TrimSpace(string(data))
	if c == "" {
		return "", fmt.Errorf("%s %s: found an empty file, want the provider's credential (sgp_...)", flag, path)
	}
	if strings.ContainsAny(c, " \t\r\n") {
		return "", fmt.Errorf("%s %s: found more than one word, want only the provider's credential (sgp_...)", flag, path)
	}
	return c, nil
}

// readProviderKey reads the provider's Ed25519 endorsement key from a
// PKCS#8 PEM file, as 'sealgate provider keygen' writes it.
func readProviderKey(path string) (ed25519.PrivateKey, error) {
	const flag = "-provider-key-file"
	data, err := readFile(flag, path, maxSecretFile)
	if err != nil {
		return nil, err
	}
	block, rest := pem.Decode(data)
	switch {
	case block == nil:
		return nil, fmt.Errorf("%s %s: found no PEM block, want one PKCS#8 \"PRIVATE KEY\" block, as 'sealgate provider keygen' writes", flag, path)
	case block.Type != "PRIVATE KEY":
		return nil, fmt.Errorf("%s %s: found a PEM %q block, want a PKCS#8 \"PRIVATE KEY\" block", flag, path, block.Type)
	case len(bytes.TrimSpace(rest)) != 0:
		return nil, fmt.Errorf("%s %s: found data after the key, want one PEM block", flag, path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s %s: the PRIVATE KEY block is not PKCS#8 (%v)", flag, path, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s %s: found a %T, want an Ed25519 key", flag, path, key)
	}
	return priv, nil
}

// readGatewayCA reads the PEM certificates to trust for the gateway (a
// development gateway's self-signed certificate, or a private CA) into a
// TLS configuration. An empty path means nil: the system roots.
func readGatewayCA(path string) (*tls.Config, error) {
	const flag = "-gateway-ca"
	if path == "" {
		return nil, nil
	}
	data, err := readFile(flag, path, maxCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s %s: found a PEM %q block, want only CERTIFICATE blocks", flag, path, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s %s: certificate %d: %v", flag, path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s %s: found no CERTIFICATE PEM block, want the gateway's certificate or its CA's", flag, path)
	}
	return tlspin.TrustConfig(pool), nil
}

// splitModels splits the -models list at commas, trimming spaces; empty
// means none.
func splitModels(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	models := strings.Split(s, ",")
	for i := range models {
		models[i] = strings.TrimSpace(models[i])
	}
	return models
}

// configFlags names the flag behind each enclave.Config field, for
// enclave.ConfigError.
var configFlags = map[string]string{
	"ID":             "-id",
	"GatewayURL":     "-gateway",
	"Credential":     "-credential-file",
	"ProviderKey":    "-provider-key-file",
	"AdvertiseURL":   "-advertise",
	"Region":         "-region",
	"Models":         "-models",
	"MaxConcurrent":  "-capacity",
	"BaseURL":        "-upstream",
	"Model":          "-model",
	"ModelDigests":   "-model",
	"MaxInputBytes":  "-max-input-bytes",
	"RequestTimeout": "-request-timeout",
}
