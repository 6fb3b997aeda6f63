// Package collect gets AMD SEV-SNP evidence inside a confidential VM: a
// report for a REPORT_DATA through configfs-tsm (go-configfs-tsm's report
// package, behind go-sev-guest's client.QuoteProvider interface), and the
// collateral a verifier needs to check it offline (package snp's
// Collateral): the certificates the host's certificate table provides,
// and what it lacks, always including the ARK's CRL, from AMD's Key
// Distribution Service through an injected trust.HTTPSGetter.
//
// It is separate from package snp because go-sev-guest's client package
// registers command-line flags in the global flag set when it is linked;
// only the worker, which collects, links it.
//
// Nothing here talks to the network or the kernel unless its caller said
// so: the quote provider (by default the kernel's configfs-tsm) and the
// getter are configured, and tests use go-configfs-tsm's faketsm and
// go-sev-guest's testing fakes. The package does not log.
package collect

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/report"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/sealgate/sealgate/attestation/snp"
)

// CollectorConfig configures a Collector.
type CollectorConfig struct {
	// Quotes produces raw reports with the host's certificate table
	// appended, as go-sev-guest's client.QuoteProvider does. Nil means
	// configfs-tsm through the kernel (/sys/kernel/config/tsm/report, see
	// NewConfigFSProvider); that is available on Linux only.
	Quotes client.QuoteProvider
	// Getter fetches from AMD's Key Distribution Service what the host's
	// certificate table lacks: the VCEK, the ASK and ARK, and always the
	// ARK's CRL. Production workers pass trust.DefaultHTTPSGetter() (it
	// retries for up to two minutes; KDS rate-limits). Nil means nothing
	// is fetched: the certificates must all come from the host, and the
	// collateral carries no CRL, which a policy with require_crl refuses.
	Getter trust.HTTPSGetter
	// ProductLine is the AMD product line ("Milan", "Genoa", "Turin") used
	// in KDS URLs when the report does not say (version 2 reports carry
	// no CPUID) and the certificate table neither. Empty means derive it
	// from the report, the table or the endorsement key's certificate,
	// and fail if none says.
	ProductLine string
}

// Collector gets SEV-SNP reports inside a confidential VM and assembles
// their collateral. It is safe for concurrent use if its QuoteProvider
// and Getter are.
type Collector struct {
	quotes client.QuoteProvider
	getter trust.HTTPSGetter
	line   string
}

// NewCollector validates cfg and returns a Collector.
func NewCollector(cfg CollectorConfig) (*Collector, error) {
	if cfg.ProductLine != "" {
		if _, err := kds.ParseProductLine(cfg.ProductLine); err != nil {
			return nil, fmt.Errorf("snp collector: product line: found %q, want Milan, Genoa or Turin", cfg.ProductLine)
		}
	}
	quotes := cfg.Quotes
	if quotes == nil {
		tsm, err := kernelTSM()
		if err != nil {
			return nil, fmt.Errorf("snp collector: configfs-tsm: %w", err)
		}
		quotes = NewConfigFSProvider(tsm)
	}
	return &Collector{quotes: quotes, getter: cfg.Getter, line: cfg.ProductLine}, nil
}

// Collect gets a report carrying reportData (a bundle's ReportData) and
// the encoded snp.Collateral that verifies it, for proto.Bundle's Report
// and Collateral: certificates from the host's certificate table where it
// has them, the rest and the CRL from the Getter. It checks that the
// report echoes reportData; it does not verify the report (snp.Verify
// does).
func (c *Collector) Collect(ctx context.Context, reportData [64]byte) (report, collateral []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	raw, err := c.quotes.GetRawQuote(reportData)
	if err != nil {
		return nil, nil, fmt.Errorf("snp collect: getting report: %w", err)
	}
	if len(raw) < abi.ReportSize {
		return nil, nil, fmt.Errorf("snp collect: report: found %d bytes, want at least %d", len(raw), abi.ReportSize)
	}
	reportBytes := bytes.Clone(raw[:abi.ReportSize])
	rep, err := abi.ReportToProto(reportBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("snp collect: report: %w", err)
	}
	if !bytes.Equal(rep.GetReportData(), reportData[:]) {
		return nil, nil, fmt.Errorf("snp collect: report_data: found %s, want the requested %s", short(rep.GetReportData()), short(reportData[:]))
	}
	info, err := abi.ParseSignerInfo(rep.GetSignerInfo())
	if err != nil {
		return nil, nil, fmt.Errorf("snp collect: signer_info: %w", err)
	}
	if info.SigningKey != abi.VcekReportSigner && info.SigningKey != abi.VlekReportSigner {
		return nil, nil, fmt.Errorf("snp collect: signing_key: found %v, want VCEK or VLEK", info.SigningKey)
	}
	table, err := parseCertTable(raw[abi.ReportSize:])
	if err != nil {
		return nil, nil, fmt.Errorf("snp collect: certificate table: %w", err)
	}
	col := &snp.Collateral{Key: snp.Key(info.SigningKey)}
	col.Endorsement, col.Intermediate, col.Root = fromTable(table, col.Key)
	line, err := c.productLine(rep, table, col)
	if err != nil {
		return nil, nil, err
	}
	if err := c.fetch(ctx, rep, col, line); err != nil {
		return nil, nil, err
	}
	enc, err := col.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("snp collect: %w", err)
	}
	return reportBytes, enc, nil
}

// fetch fills in from AMD KDS what the host did not provide.
func (c *Collector) fetch(ctx context.Context, rep *spb.Report, col *snp.Collateral, line string) error {
	signer := abi.ReportSigner(col.Key)
	if col.Endorsement == nil {
		switch {
		case col.Key == snp.KeyVLEK:
			return errors.New("snp collect: vlek certificate: found none in the host's certificate table, want one (AMD KDS serves VLEKs only to the cloud provider)")
		case c.getter == nil:
			return errors.New("snp collect: vcek certificate: found none in the host's certificate table and no getter to fetch it from AMD KDS")
		case allZero(rep.GetChipId()):
			return errors.New("snp collect: vcek certificate: found none in the host's certificate table, and CHIP_ID is masked so AMD KDS cannot be asked")
		}
		url := kds.VCEKCertURL(line, rep.GetChipId(), kds.TCBVersion(rep.GetReportedTcb()))
		b, err := trust.GetWith(ctx, c.getter, url)
		if err != nil {
			return fmt.Errorf("snp collect: fetching vcek from %s: %w", url, err)
		}
		col.Endorsement = b
	}
	if col.Intermediate == nil || col.Root == nil {
		if c.getter == nil {
			return fmt.Errorf("snp collect: %s and ark certificates: found none in the host's certificate table and no getter to fetch them from AMD KDS", intermediateName(col.Key))
		}
		url := kds.ProductCertChainURL(signer, line)
		b, err := trust.GetWith(ctx, c.getter, url)
		if err != nil {
			return fmt.Errorf("snp collect: fetching certificate chain from %s: %w", url, err)
		}
		ica, ark, err := kds.ParseProductCertChain(b)
		if err != nil {
			return fmt.Errorf("snp collect: certificate chain from %s: %w", url, err)
		}
		if col.Intermediate == nil {
			col.Intermediate = ica
		}
		if col.Root == nil {
			col.Root = ark
		}
	}
	if c.getter != nil {
		url := kds.CrlLinkByKey(line, signer)
		b, err := trust.GetWith(ctx, c.getter, url)
		if err != nil {
			return fmt.Errorf("snp collect: fetching crl from %s: %w", url, err)
		}
		col.CRL = b
	}
	return nil
}

// productLine names the product for KDS URLs: from the report's CPUID,
// else the configured line, else the certificate table's platform info,
// else the endorsement key's certificate.
func (c *Collector) productLine(rep *spb.Report, table *abi.CertTable, col *snp.Collateral) (string, error) {
	if fms := rep.GetCpuid1EaxFms(); fms != 0 {
		return kds.ProductLineFromFms(fms), nil
	}
	if c.line != "" {
		return c.line, nil
	}
	if blob, err := table.GetByGUIDString(abi.ExtraPlatformInfoGUID); err == nil {
		if pi, err := abi.ParseExtraPlatformInfo(blob); err == nil {
			if line := kds.ProductLineFromFms(pi.Cpuid1Eax); line != "Unknown" {
				return line, nil
			}
		}
	}
	if col.Endorsement != nil {
		if cert, err := x509.ParseCertificate(col.Endorsement); err == nil {
			if exts, err := kds.CertificateExtensions(cert, abi.ReportSigner(col.Key)); err == nil {
				if p, err := kds.ParseProductName(exts.ProductName, abi.ReportSigner(col.Key)); err == nil {
					return kds.ProductLine(p), nil
				}
			}
		}
	}
	return "", errors.New("snp collect: product line: found none in the report, the certificate table or the configuration, want one (set CollectorConfig.ProductLine)")
}

// parseCertTable parses the host's certificate table (GHCB extended guest
// request format). It checks every entry's range first: the table comes
// from the untrusted host, and go-sev-guest's parser does not guard
// against offsets that overflow.
func parseCertTable(b []byte) (*abi.CertTable, error) {
	table := &abi.CertTable{}
	if len(b) == 0 {
		return table, nil
	}
	headers, err := abi.ParseSnpCertTableHeader(b)
	if err != nil {
		return nil, err
	}
	for i, h := range headers {
		if uint64(h.Offset)+uint64(h.Length) > uint64(len(b)) {
			return nil, fmt.Errorf("entry %d: found bytes %d to %d, want within the table's %d bytes", i, h.Offset, uint64(h.Offset)+uint64(h.Length), len(b))
		}
	}
	if err := table.Unmarshal(b); err != nil {
		return nil, err
	}
	return table, nil
}

// fromTable returns the certificates the host provided for key, nil where
// it provided none.
func fromTable(table *abi.CertTable, key snp.Key) (endorsement, intermediate, root []byte) {
	get := func(guid string) []byte {
		b, err := table.GetByGUIDString(guid)
		if err != nil || len(b) == 0 {
			return nil
		}
		return bytes.Clone(b)
	}
	root = get(abi.ArkGUID)
	if key == snp.KeyVLEK {
		endorsement = get(abi.VlekGUID)
		// The ASVK has no GUID of its own in the GHCB specification; hosts
		// put it under the ASK's or go-sev-guest's placeholder GUID.
		for _, guid := range []string{abi.AsvkGUID, abi.AskGUID} {
			if b := get(guid); b != nil && isASVK(b) {
				return endorsement, b, root
			}
		}
		return endorsement, nil, root
	}
	endorsement = get(abi.VcekGUID)
	if b := get(abi.AskGUID); b != nil && !isASVK(b) {
		intermediate = b
	}
	return endorsement, intermediate, root
}

// intermediateName names the CA that certifies key.
func intermediateName(key snp.Key) string {
	if key == snp.KeyVLEK {
		return "asvk"
	}
	return "ask"
}

func short(b []byte) string {
	if len(b) > 8 {
		return hex.EncodeToString(b[:8]) + "…"
	}
	return hex.EncodeToString(b)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func isASVK(der []byte) bool {
	cert, err := x509.ParseCertificate(der)
	return err == nil && strings.HasPrefix(cert.Subject.CommonName, "SEV-VLEK-")
}

// NewConfigFSProvider returns a go-sev-guest client.QuoteProvider that
// gets reports through configfs-tsm (go-configfs-tsm's report package) on
// tsm. It does what go-sev-guest's client.LinuxConfigFsQuoteProvider does
// on the kernel's configfs, but on an injected client, so tests run it on
// go-configfs-tsm's faketsm. The raw quote is the report followed by the
// host's certificate table (the auxblob), unchanged.
func NewConfigFSProvider(tsm configfsi.Client) client.QuoteProvider {
	return &configFSProvider{tsm: tsm}
}

// providerSEV is the configfs-tsm provider name of the sev-guest driver.
const providerSEV = "sev_guest\n"

type configFSProvider struct {
	tsm configfsi.Client
}

var _ client.QuoteProvider = (*configFSProvider)(nil)

// IsSupported reports whether the configfs-tsm provider is sev-guest. It
// writes an inblob first, so the entry has a generation to read at (the
// fake needs it; the kernel does not mind), and reads no outblob, so no
// report is made.
func (p *configFSProvider) IsSupported() bool {
	r, err := report.Create(p.tsm, &report.Request{})
	if err != nil {
		return false
	}
	defer r.Destroy()
	if err := r.WriteOption("inblob", make([]byte, abi.ReportDataSize)); err != nil {
		return false
	}
	provider, err := r.ReadOption("provider")
	return err == nil && string(provider) == providerSEV
}

// GetRawQuote returns the report for reportData and the host's
// certificate table.
func (p *configFSProvider) GetRawQuote(reportData [64]byte) ([]byte, error) {
	resp, err := report.Get(p.tsm, &report.Request{InBlob: reportData[:], GetAuxBlob: true})
	if err != nil {
		return nil, err
	}
	if resp.Provider != providerSEV {
		return nil, fmt.Errorf("configfs-tsm provider: found %q, want %q", strings.TrimSpace(resp.Provider), strings.TrimSpace(providerSEV))
	}
	if len(resp.OutBlob) != abi.ReportSize {
		return nil, fmt.Errorf("configfs-tsm outblob: found %d bytes, want %d", len(resp.OutBlob), abi.ReportSize)
	}
	return append(bytes.Clone(resp.OutBlob), resp.AuxBlob...), nil
}

// Product returns the product of the CPU this runs on. Deprecated in
// go-sev-guest's interface; Collect does not use it.
func (p *configFSProvider) Product() *spb.SevProduct { return abi.SevProduct() }
