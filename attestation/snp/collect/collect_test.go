package collect_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-sev-guest/abi"
	labi "github.com/google/go-sev-guest/client/linuxabi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	test "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/sealgate/sealgate/attestation/snp"
	"github.com/sealgate/sealgate/attestation/snp/collect"
	"github.com/sealgate/sealgate/attestation/snp/snptest"
	"github.com/sealgate/sealgate/internal/fuzzseed"
)

// fakeKDS serves a fixture chain the way AMD KDS would: go-sev-guest's
// testing.FakeKDS for certificates, plus the CRL, and records every URL
// asked for.
type fakeKDS struct {
	kds *test.FakeKDS
	crl []byte
	mu  sync.Mutex // guards asked
	// asked lists the URLs requested, in order.
	asked []string
}

func newFakeKDS(t *testing.T, s *test.AmdSigner) *fakeKDS {
	t.Helper()
	k, err := test.FakeKDSFromSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeKDS{kds: k, crl: snptest.BuildCRL(t, s.Ark, s.Keys.Ark, snptest.CRLNextUpdate)}
}

func (f *fakeKDS) Get(url string) ([]byte, error) {
	f.mu.Lock()
	f.asked = append(f.asked, url)
	f.mu.Unlock()
	if url == kds.CrlLinkByKey("Milan", abi.VcekReportSigner) || url == kds.CrlLinkByKey("Milan", abi.VlekReportSigner) {
		return f.crl, nil
	}
	return f.kds.Get(url)
}

var _ trust.HTTPSGetter = (*fakeKDS)(nil)

// fakeTSM returns go-configfs-tsm's fake configfs-tsm with its report
// subsystem answering as the sev-guest driver would: outblob is a report
// for the written inblob, signed by s with r's fields, and auxblob is aux
// (the host's certificate table).
func fakeTSM(t *testing.T, s *test.AmdSigner, r snptest.ReportSpec, aux []byte) configfsi.Client {
	t.Helper()
	sub := faketsm.ReportV7(0)
	base := sub.ReadAttr
	sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte("sev_guest\n"), nil
		case "auxblob":
			return aux, nil
		case "outblob":
			spec := r
			copy(spec.ReportData[:], e.InAttrs["inblob"].Value)
			return snptest.BuildReport(t, s, spec), nil
		}
		return base(e, attr)
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}
}

func reportData(label string) [64]byte {
	var rd [64]byte
	copy(rd[:], label)
	return rd
}

// verifyCollected verifies evidence with the fixture roots.
func verifyCollected(t *testing.T, s *test.AmdSigner, report, collateral []byte, rd [64]byte, wantCRL bool) {
	t.Helper()
	c, err := snp.Verify(report, collateral, snp.Options{Now: snptest.VerifyAt, Roots: snptest.Roots(s)})
	if err != nil {
		t.Fatalf("collected evidence does not verify: %v", err)
	}
	if c.ReportData != rd {
		t.Errorf("report data: found %x, want %x", c.ReportData[:8], rd[:8])
	}
	if c.CRLPresent != wantCRL {
		t.Errorf("crl present: found %v, want %v", c.CRLPresent, wantCRL)
	}
}

func TestCollectTestingQuoteProvider(t *testing.T) {
	s := snptest.NewSigner(t, nil)
	rd := reportData("go-sev-guest testing quote provider")
	var out [labi.SnpReportRespReportSize]byte
	copy(out[:], snptest.BuildReport(t, s, snptest.ReportSpec{ReportData: rd}))
	qp, err := test.TcQuoteProvider([]test.TestCase{{Name: "fixture", Input: rd, Output: out}},
		&test.DeviceOptions{Signer: s, Product: s.Product, Now: snptest.Created})
	if err != nil {
		t.Fatal(err)
	}
	k := newFakeKDS(t, s)
	col, err := collect.NewCollector(collect.CollectorConfig{Quotes: qp, Getter: k})
	if err != nil {
		t.Fatal(err)
	}
	report, collateral, err := col.Collect(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	verifyCollected(t, s, report, collateral, rd, true)
	// The host's table had every certificate: only the CRL was fetched.
	if want := kds.CrlLinkByKey("Milan", abi.VcekReportSigner); len(k.asked) != 1 || k.asked[0] != want {
		t.Errorf("fetched %v, want only %s", k.asked, want)
	}
}

func TestCollectConfigFS(t *testing.T) {
	s := snptest.NewSigner(t, nil)
	table, err := s.CertTableBytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		key       snp.Key
		aux       []byte
		getter    bool
		wantCRL   bool
		wantFetch int
	}{
		{name: "empty certificate table, all from kds", aux: nil, getter: true, wantCRL: true, wantFetch: 3},
		{name: "full certificate table, crl from kds", aux: table, getter: true, wantCRL: true, wantFetch: 1},
		{name: "full certificate table, no getter", aux: table, getter: false, wantCRL: false},
		{name: "vlek from the certificate table", key: snp.KeyVLEK, aux: table, getter: true, wantCRL: true, wantFetch: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			qp := collect.NewConfigFSProvider(fakeTSM(t, s, snptest.ReportSpec{Key: tc.key}, tc.aux))
			if !qp.IsSupported() {
				t.Fatal("IsSupported: false on a sev_guest provider")
			}
			cfg := collect.CollectorConfig{Quotes: qp}
			k := newFakeKDS(t, s)
			if tc.getter {
				cfg.Getter = k
			}
			col, err := collect.NewCollector(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rd := reportData("configfs " + tc.name)
			report, collateral, err := col.Collect(context.Background(), rd)
			if err != nil {
				t.Fatal(err)
			}
			verifyCollected(t, s, report, collateral, rd, tc.wantCRL)
			if len(k.asked) != tc.wantFetch {
				t.Errorf("fetched %v, want %d URLs", k.asked, tc.wantFetch)
			}
		})
	}
}

func TestCollectErrors(t *testing.T) {
	s := snptest.NewSigner(t, nil)
	table, err := s.CertTableBytes()
	if err != nil {
		t.Fatal(err)
	}
	overflow := make([]byte, 2*abi.CertTableEntrySize+8)
	copy(overflow, "any nonzero guid")
	binary.LittleEndian.PutUint32(overflow[16:], 2*abi.CertTableEntrySize)
	binary.LittleEndian.PutUint32(overflow[20:], 0xFFFFFFF8)
	for _, tc := range []struct {
		name    string
		quotes  func(t *testing.T) collect.CollectorConfig
		wantErr string
	}{
		{
			name: "provider is not sev_guest",
			quotes: func(t *testing.T) collect.CollectorConfig {
				c := &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": faketsm.ReportV7(0)}}
				return collect.CollectorConfig{Quotes: collect.NewConfigFSProvider(c)}
			},
			wantErr: `provider: found "fake", want "sev_guest"`,
		},
		{
			name: "report for other report data",
			quotes: func(t *testing.T) collect.CollectorConfig {
				return collect.CollectorConfig{Quotes: &fixedQuotes{raw: snptest.BuildReport(t, s, snptest.ReportSpec{ReportData: reportData("another")})}}
			},
			wantErr: "report_data: found",
		},
		{
			name: "vlek without the host's certificate",
			quotes: func(t *testing.T) collect.CollectorConfig {
				return collect.CollectorConfig{Quotes: collect.NewConfigFSProvider(fakeTSM(t, s, snptest.ReportSpec{Key: snp.KeyVLEK}, nil)), Getter: newFakeKDS(t, s)}
			},
			wantErr: "vlek certificate: found none",
		},
		{
			name: "no certificates and no getter",
			quotes: func(t *testing.T) collect.CollectorConfig {
				return collect.CollectorConfig{Quotes: collect.NewConfigFSProvider(fakeTSM(t, s, snptest.ReportSpec{}, nil))}
			},
			wantErr: "no getter",
		},
		{
			name: "certificate table entry out of range",
			quotes: func(t *testing.T) collect.CollectorConfig {
				return collect.CollectorConfig{Quotes: collect.NewConfigFSProvider(fakeTSM(t, s, snptest.ReportSpec{}, overflow)), Getter: newFakeKDS(t, s)}
			},
			wantErr: "certificate table: entry 0",
		},
		{
			name: "kds fails",
			quotes: func(t *testing.T) collect.CollectorConfig {
				return collect.CollectorConfig{Quotes: collect.NewConfigFSProvider(fakeTSM(t, s, snptest.ReportSpec{}, table[:0])), Getter: &test.Getter{}}
			},
			wantErr: "fetching vcek",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			col, err := collect.NewCollector(tc.quotes(t))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = col.Collect(context.Background(), reportData("errors"))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("found %v, want an error containing %q", err, tc.wantErr)
			}
			if err.Error() != strings.ToLower(err.Error()[:1])+err.Error()[1:] {
				t.Errorf("error starts upper-case: %q", err)
			}
		})
	}
	if _, err := collect.NewCollector(collect.CollectorConfig{Quotes: &fixedQuotes{}, ProductLine: "Naples"}); err == nil || !strings.Contains(err.Error(), `product line: found "Naples"`) {
		t.Errorf("NewCollector with an unknown product line: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	col, err := collect.NewCollector(collect.CollectorConfig{Quotes: &fixedQuotes{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := col.Collect(ctx, reportData("cancelled")); err != context.Canceled {
		t.Errorf("Collect with a cancelled context: %v, want context.Canceled", err)
	}
}

// fixedQuotes returns raw for every request.
type fixedQuotes struct{ raw []byte }

func (q *fixedQuotes) IsSupported() bool                    { return true }
func (q *fixedQuotes) GetRawQuote([64]byte) ([]byte, error) { return q.raw, nil }
func (q *fixedQuotes) Product() *spb.SevProduct             { return nil }

// FuzzCertTable: whatever certificate table the untrusted host returns,
// Collect does not panic, and what it accepts re-parses as collateral.
func FuzzCertTable(f *testing.F) {
	s := snptest.NewSigner(f, nil)
	table, err := s.CertTableBytes()
	if err != nil {
		f.Fatal(err)
	}
	fuzzseed.Add(f, table)
	fuzzseed.Add(f, []byte{})
	fuzzseed.Add(f, table[:abi.CertTableEntrySize])
	var rd [64]byte
	report := snptest.BuildReport(f, s, snptest.ReportSpec{ReportData: rd})
	f.Fuzz(func(t *testing.T, tbl []byte) {
		raw := append(bytes.Clone(report), tbl...)
		col, err := collect.NewCollector(collect.CollectorConfig{Quotes: &fixedQuotes{raw: raw}, ProductLine: "Milan"})
		if err != nil {
			t.Fatal(err)
		}
		_, c, err := col.Collect(context.Background(), rd)
		if err != nil {
			return
		}
		if _, err := snp.ParseCollateral(c); err != nil {
			t.Fatalf("collected collateral does not parse: %v", err)
		}
	})
}
