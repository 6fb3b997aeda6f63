package client

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// gatewayURL checks cfg.GatewayURL: an https base URL, or plain http to a
// loopback address when cfg.InsecurePlainHTTP says so. The credential
// travels in every request, so it must never go in clear over a network.
func gatewayURL(cfg *Config) (*url.URL, error) {
	u, err := url.Parse(cfg.GatewayURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("client: gateway url: found a value that is not an absolute http or https URL, want https://host[:port]")
	}
	switch {
	case u.User != nil:
		return nil, errors.New("client: gateway url: found user information in the URL, want the credential in Config.Credential")
	case u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return nil, fmt.Errorf("client: gateway url: found %s with a query or fragment, want a base URL", u.Redacted())
	}
	if u.Scheme == "https" {
		return u, nil
	}
	if !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("client: gateway url: found plain http to %s, which is not a loopback address, want https: the credential never travels in clear", u.Host)
	}
	if !cfg.InsecurePlainHTTP {
		return nil, fmt.Errorf("client: gateway url: found plain http to %s, want https, or InsecurePlainHTTP set to allow plain http to a loopback address", u.Host)
	}
	return u, nil
}

// isLoopback reports whether host is "localhost" or a loopback IP address
// (127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into IPv6).
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// httpClient returns the HTTP client for cfg, after gatewayURL accepted
// cfg.GatewayURL. It is the one place the client's TLS trust is set:
//
//   - HTTPClient set: a copy of it (its transport and TLS configuration
//     are the caller's; the caller's value is not modified);
//   - GatewayCA set: trust exactly the certificates it holds;
//   - neither: the system roots.
//
// Either way the client refuses redirects, so the credential goes to
// GatewayURL and nowhere else.
func httpClient(cfg *Config) (*http.Client, error) {
	if cfg.HTTPClient != nil {
		if len(cfg.GatewayCA) > 0 {
			return nil, errors.New("client: gateway ca: found both GatewayCA and HTTPClient, want one: an HTTPClient brings its own TLS configuration")
		}
		hc := *cfg.HTTPClient
		hc.CheckRedirect = refuseRedirect
		return &hc, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cfg.GatewayCA) > 0 {
		pool, err := certPool(cfg.GatewayCA)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		CheckRedirect: refuseRedirect,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       tc,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
		},
	}, nil
}

// certPool parses GatewayCA: one or more PEM CERTIFICATE blocks (text
// around them is ignored, as openssl writes it) and no other block, so a
// private key given by mistake is refused rather than skipped.
func certPool(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("client: gateway ca: found a %q PEM block, want only CERTIFICATE blocks", b.Type)
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("client: gateway ca: certificate %d: %w", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("client: gateway ca: found no PEM certificate, want the gateway's certificate or its CA in PEM")
	}
	return pool, nil
}

// refuseRedirect stops every redirect: the gateway API has none, and
// following one could send the credential elsewhere.
func refuseRedirect(req *http.Request, _ []*http.Request) error {
	return fmt.Errorf("client: the gateway redirected to %s://%s; redirects are refused so the credential goes only to GatewayURL", req.URL.Scheme, req.URL.Host)
}
