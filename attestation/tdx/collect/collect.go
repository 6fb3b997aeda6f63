// Package collect gets Intel TDX evidence inside a trust domain: quotes
// from the TDX module through configfs-tsm (or the legacy /dev/tdx_guest
// device), using go-tdx-guest's client package, and the Intel PCS
// collateral a verifier needs to check them offline (package tdx).
//
// It is separate from package tdx because go-tdx-guest's client package
// registers a command-line flag (-tdx_guest_device_path) in the global flag
// set when it is linked; only the worker, which collects, links it.
//
// Nothing here talks to the network or the kernel unless its caller said
// so: the configfs-tsm client and the PCS getter are injected, and tests
// use go-configfs-tsm's faketsm and go-tdx-guest's testing fakes.
package collect

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"
	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/client"
	"github.com/google/go-tdx-guest/pcs"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/verify"
	"github.com/google/go-tdx-guest/verify/trust"
	"github.com/sealgate/sealgate/attestation/tdx"
)

// tsmProvider is the name configfs-tsm gives the TDX quote provider.
const tsmProvider = "tdx_guest"

// Device produces TDX quotes for a given REPORT_DATA.
type Device struct {
	// provider is the quote source handed to go-tdx-guest's client: a
	// configfs-tsm provider or a legacy ioctl device.
	provider any
	tsm      *configfsProvider // set when provider is configfs-tsm
}

// DeviceConfig configures a Device.
type DeviceConfig struct {
	// TSM is the configfs-tsm client quotes are requested through. Nil
	// means the kernel's (/sys/kernel/config/tsm); tests pass a
	// go-configfs-tsm faketsm.Client.
	TSM configfsi.Client
	// Legacy, when not nil, is a TDX guest ioctl device (go-tdx-guest's
	// client.OpenDevice, for kernels without configfs-tsm quotes, or its
	// testing.TcDevice in tests) used instead of configfs-tsm. The caller
	// opens and closes it.
	Legacy client.Device
}

// NewDevice returns a Device. With neither TSM nor Legacy set it opens the
// kernel's configfs-tsm.
func NewDevice(cfg DeviceConfig) (*Device, error) {
	if cfg.Legacy != nil {
		return &Device{provider: cfg.Legacy}, nil
	}
	c := cfg.TSM
	if c == nil {
		var err error
		if c, err = linuxtsm.MakeClient(); err != nil {
			return nil, fmt.Errorf("tdx: configfs-tsm: %w", err)
		}
	}
	p := &configfsProvider{client: c}
	return &Device{provider: p, tsm: p}, nil
}

// Quote returns a TDX quote whose REPORT_DATA is reportData. It checks
// that the quote parses and carries reportData, so a confused provider
// cannot hand out another TD's evidence.
func (d *Device) Quote(reportData [64]byte) ([]byte, error) {
	if d.tsm != nil {
		// go-tdx-guest falls back to opening /dev/tdx_guest when the
		// provider is unsupported; a Device configured for configfs-tsm
		// never does.
		if err := d.tsm.IsSupported(); err != nil {
			return nil, err
		}
	}
	raw, err := client.GetRawQuote(d.provider, reportData)
	if err != nil {
		return nil, fmt.Errorf("tdx: getting a quote: %w", err)
	}
	q, err := parseQuote(raw)
	if err != nil {
		return nil, fmt.Errorf("tdx: the quote provider returned %v", err)
	}
	if got := q.GetTdQuoteBody().GetReportData(); !bytes.Equal(got, reportData[:]) {
		return nil, fmt.Errorf("tdx: quote report_data: found %x…, want %x…", got[:8], reportData[:8])
	}
	return raw, nil
}

// configfsProvider is a go-tdx-guest client.QuoteProvider over an
// injected configfs-tsm client (go-tdx-guest's own provider always uses
// the kernel's).
type configfsProvider struct{ client configfsi.Client }

var _ client.QuoteProvider = (*configfsProvider)(nil)

// IsSupported reports whether configfs-tsm's report provider is TDX.
func (p *configfsProvider) IsSupported() error {
	r, err := report.Create(p.client, &report.Request{})
	if err != nil {
		return fmt.Errorf("tdx: configfs-tsm report: %w", err)
	}
	provider, err := r.ReadOption("provider")
	if derr := r.Destroy(); err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("tdx: configfs-tsm provider: %w", err)
	}
	if got := strings.TrimSpace(string(provider)); got != tsmProvider {
		return fmt.Errorf("tdx: configfs-tsm provider: found %q, want %q", got, tsmProvider)
	}
	return nil
}

// GetRawQuote asks configfs-tsm for a quote over reportData.
func (p *configfsProvider) GetRawQuote(reportData [64]byte) ([]byte, error) {
	resp, err := report.Get(p.client, &report.Request{InBlob: reportData[:]})
	if err != nil {
		return nil, fmt.Errorf("tdx: configfs-tsm report: %w", err)
	}
	if got := strings.TrimSpace(resp.Provider); got != tsmProvider {
		return nil, fmt.Errorf("tdx: configfs-tsm provider: found %q, want %q", got, tsmProvider)
	}
	return resp.OutBlob, nil
}

// parseQuote parses a V4 quote, turning a parser panic on a bad quote
// into an error.
func parseQuote(raw []byte) (q *pb.QuoteV4, err error) {
	defer func() {
		if r := recover(); r != nil {
			q, err = nil, fmt.Errorf("a malformed quote (%v)", r)
		}
	}()
	parsed, err := abi.QuoteToProto(raw)
	if err != nil {
		return nil, fmt.Errorf("a malformed quote: %v", err)
	}
	v4, ok := parsed.(*pb.QuoteV4)
	if !ok {
		return nil, errors.New("a quote that is not version 4")
	}
	return v4, nil
}

// Collector gets quotes from a Device and their collateral from Intel PCS.
type Collector struct {
	device *Device
	getter trust.HTTPSGetter
}

// CollectorConfig configures a Collector.
type CollectorConfig struct {
	// Device produces the quotes. Required for Collect; Collateral does
	// not use it.
	Device *Device
	// Getter fetches Intel PCS responses. Required: production workers
	// pass trust.DefaultHTTPSGetter() or a getter with their own HTTP
	// client and timeouts (one that implements trust.ContextHTTPSGetter
	// gets the context); tests pass go-tdx-guest's testing.Getter.
	Getter trust.HTTPSGetter
}

// NewCollector returns a Collector.
func NewCollector(cfg CollectorConfig) (*Collector, error) {
	if cfg.Getter == nil {
		return nil, errors.New("tdx: collector: getter: found nil, want a PCS getter")
	}
	return &Collector{device: cfg.Device, getter: cfg.Getter}, nil
}

// Collect returns a quote over reportData and its encoded collateral,
// ready for a proto.Bundle's Report and Collateral.
func (c *Collector) Collect(ctx context.Context, reportData [64]byte) (quote, collateral []byte, err error) {
	if c.device == nil {
		return nil, nil, errors.New("tdx: collector: device: found nil, want a device to quote with")
	}
	if quote, err = c.device.Quote(reportData); err != nil {
		return nil, nil, err
	}
	coll, err := c.Collateral(ctx, quote)
	if err != nil {
		return nil, nil, err
	}
	if collateral, err = coll.Marshal(); err != nil {
		return nil, nil, err
	}
	return quote, collateral, nil
}

// Collateral fetches from Intel PCS everything needed to verify quote
// offline: the TCB info for the platform's FMSPC, the TD QE identity, the
// CRL of the CA that issued the PCK certificate and the root CA's CRL,
// each with its issuer chain. It fetches; it does not verify.
func (c *Collector) Collateral(ctx context.Context, quote []byte) (*tdx.Collateral, error) {
	q, err := parseQuote(quote)
	if err != nil {
		return nil, fmt.Errorf("tdx: collateral for %v", err)
	}
	chain, err := verify.ExtractChainFromQuote(q)
	if err != nil {
		return nil, fmt.Errorf("tdx: collateral: pck certificate chain: %v", err)
	}
	exts, err := pcs.PckCertificateExtensions(chain.PCKCertificate)
	if err != nil {
		return nil, fmt.Errorf("tdx: collateral: pck certificate extensions: %v", err)
	}
	ca, err := pckCA(chain.PCKCertificate.Issuer.CommonName)
	if err != nil {
		return nil, err
	}
	var out tdx.Collateral
	if out.TCBInfo, out.TCBInfoChain, err = c.fetch(ctx, "tcb info", pcs.TcbInfoURL(exts.FMSPC), pcs.TcbInfoIssuerChainPhrase, tdx.MaxJSONSize); err != nil {
		return nil, err
	}
	if out.QEIdentity, out.QEIdentityChain, err = c.fetch(ctx, "qe identity", pcs.QeIdentityURL(), pcs.SgxQeIdentityIssuerChainPhrase, tdx.MaxJSONSize); err != nil {
		return nil, err
	}
	if out.PCKCRL, out.PCKCRLChain, err = c.fetch(ctx, "pck crl", pcs.PckCrlURL(ca), pcs.SgxPckCrlIssuerChainPhrase, tdx.MaxCRLSize); err != nil {
		return nil, err
	}
	// The root CA's CRL is at the root certificate's distribution points.
	var errs []error
	for _, u := range chain.RootCertificate.CRLDistributionPoints {
		_, body, err := trust.GetWith(ctx, c.getter, u)
		if err == nil && (len(body) == 0 || len(body) > tdx.MaxCRLSize) {
			err = fmt.Errorf("found %d bytes, want 1 to %d", len(body), tdx.MaxCRLSize)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", u, err))
			continue
		}
		out.RootCACRL = body
		return &out, nil
	}
	return nil, fmt.Errorf("tdx: collateral: root ca crl: none of the root's distribution points answered: %v", errors.Join(errs...))
}

// pckCA names the PCS CA whose CRL covers a PCK certificate.
func pckCA(issuer string) (string, error) {
	switch issuer {
	case "Intel SGX PCK Platform CA":
		return "platform", nil
	case "Intel SGX PCK Processor CA":
		return "processor", nil
	}
	return "", fmt.Errorf("tdx: collateral: pck certificate issuer: found %q, want an Intel SGX PCK platform or processor CA", issuer)
}

// fetch gets one PCS response and decodes its issuer chain header.
func (c *Collector) fetch(ctx context.Context, what, u, header string, max int) ([]byte, tdx.IssuerChain, error) {
	h, body, err := trust.GetWith(ctx, c.getter, u)
	if err != nil {
		return nil, tdx.IssuerChain{}, fmt.Errorf("tdx: collateral: %s: %w", what, err)
	}
	if len(body) == 0 || len(body) > max {
		return nil, tdx.IssuerChain{}, fmt.Errorf("tdx: collateral: %s: found %d bytes, want 1 to %d", what, len(body), max)
	}
	chain, err := issuerChain(h[header])
	if err != nil {
		return nil, tdx.IssuerChain{}, fmt.Errorf("tdx: collateral: %s issuer chain (%s header): %v", what, header, err)
	}
	return body, chain, nil
}

// issuerChain decodes a PCS issuer chain header: one URL-escaped value
// holding the signing certificate and the root, in PEM.
func issuerChain(values []string) (tdx.IssuerChain, error) {
	if len(values) != 1 {
		return tdx.IssuerChain{}, fmt.Errorf("found %d values, want 1", len(values))
	}
	p, err := url.QueryUnescape(values[0])
	if err != nil {
		return tdx.IssuerChain{}, err
	}
	signing, rest := pem.Decode([]byte(p))
	if signing == nil || signing.Type != "CERTIFICATE" {
		return tdx.IssuerChain{}, errors.New("found no PEM signing certificate")
	}
	root, rest := pem.Decode(rest)
	if root == nil || root.Type != "CERTIFICATE" {
		return tdx.IssuerChain{}, errors.New("found no PEM root certificate")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return tdx.IssuerChain{}, fmt.Errorf("found %d bytes after the root certificate, want none", len(rest))
	}
	return tdx.IssuerChain{Signing: signing.Bytes, Root: root.Bytes}, nil
}
