//go:build nvml

package nvgpu

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/crypto/ocsp"
)

// NVIDIA's public services the worker fetches GPU collateral from.
const (
	DefaultRIMService = "https://rim.attestation.nvidia.com/v1/rim/"
	DefaultOCSP       = "https://ocsp.ndis.nvidia.com/"
	maxFetched        = 1 << 20
)

// HTTPCollateral fetches RIMs from NVIDIA's RIM service and OCSP responses
// from NVIDIA's OCSP responder. The worker only fetches: verifiers check
// everything it brings (signatures, chains, validity) offline.
type HTTPCollateral struct {
	// Client sends the requests. Nil means a client with a 30s timeout.
	Client *http.Client
	// RIMService is the RIM service's base URL, the RIM id appended. Empty
	// means DefaultRIMService.
	RIMService string
	// OCSPResponder is used for certificates that name no responder.
	// Empty means DefaultOCSP.
	OCSPResponder string
}

var _ Collateral = HTTPCollateral{}

func (h HTTPCollateral) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// RIM returns the signed RIM with the given id. The service answers JSON
// whose "rim" member is the RIM's XML in base64.
func (h HTTPCollateral) RIM(ctx context.Context, id string) ([]byte, error) {
	base := h.RIMService
	if base == "" {
		base = DefaultRIMService
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+url.PathEscape(id), nil)
	if err != nil {
		return nil, err
	}
	body, err := h.do(req, "rim "+id)
	if err != nil {
		return nil, err
	}
	var doc struct {
		ID  string `json:"id"`
		RIM string `json:"rim"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("nvgpu: rim %s: service answer is not JSON: %v", id, err)
	}
	if doc.ID != "" && doc.ID != id {
		return nil, fmt.Errorf("nvgpu: rim service answered rim %q, want %q", doc.ID, id)
	}
	xml, err := base64.StdEncoding.DecodeString(doc.RIM)
	if err != nil || len(xml) == 0 {
		return nil, fmt.Errorf("nvgpu: rim %s: \"rim\" member is not base64 XML", id)
	}
	return xml, nil
}

// OCSP asks cert's OCSP responder (or OCSPResponder) about cert.
func (h HTTPCollateral) OCSP(ctx context.Context, cert, issuer *x509.Certificate) ([]byte, error) {
	der, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA384})
	if err != nil {
		return nil, fmt.Errorf("nvgpu: ocsp request for %q: %v", cert.Subject.CommonName, err)
	}
	responder := h.OCSPResponder
	if len(cert.OCSPServer) > 0 {
		responder = cert.OCSPServer[0]
	}
	if responder == "" {
		responder = DefaultOCSP
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responder, bytes.NewReader(der))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	return h.do(req, "ocsp "+cert.Subject.CommonName)
}

func (h HTTPCollateral) do(req *http.Request, what string) ([]byte, error) {
	resp, err := h.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("nvgpu: fetching %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("nvgpu: fetching %s: status %d", what, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetched+1))
	if err != nil {
		return nil, fmt.Errorf("nvgpu: fetching %s: %w", what, err)
	}
	if len(body) > maxFetched {
		return nil, errors.New("nvgpu: fetching " + what + ": answer larger than 1 MiB")
	}
	return body, nil
}
