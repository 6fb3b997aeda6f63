package collect_test

import (
	"context"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-tdx-guest/pcs"
	gotesting "github.com/google/go-tdx-guest/testing"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/tdx"
	"github.com/sealgate/sealgate/attestation/tdx/collect"
	"github.com/sealgate/sealgate/attestation/tdx/tdxtest"
)

var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func fixture(t *testing.T) *tdxtest.Fixture {
	t.Helper()
	f, err := tdxtest.New("collect test", now)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// fakeTSM is a go-configfs-tsm faketsm client whose report provider is
// provider and whose outblob is quote(inblob). Like the kernel (and unlike
// faketsm's stock entries) it shows the provider before anything is
// written.
func fakeTSM(provider string, quote func(rd [64]byte) ([]byte, error)) configfsi.Client {
	sub := &faketsm.ReportSubsystem{
		MakeEntry: func() *faketsm.ReportEntry {
			return &faketsm.ReportEntry{
				InAttrs: map[string]*faketsm.ReportAttributeState{"inblob": {}, "privlevel": {Value: []byte("0\n")}},
				ROAttrs: map[string][]byte{"provider": []byte(provider + "\n")},
			}
		},
		CheckInAttr: func(e *faketsm.ReportEntry, attr string, contents []byte) error {
			if attr != "inblob" || len(contents) > 64 {
				return syscall.EINVAL
			}
			return nil
		},
		ReadAttr: func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
			switch attr {
			case "provider":
				return []byte(provider + "\n"), nil
			case "outblob":
				var rd [64]byte
				copy(rd[:], e.InAttrs["inblob"].Value)
				return quote(rd)
			}
			return nil, syscall.ENOENT
		},
		Random: rand.Reader,
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}
}

// getterFor serves c at the PCS URLs, as Intel PCS would, through
// go-tdx-guest's testing.Getter.
func getterFor(c *tdx.Collateral, rootCRLURL string) *gotesting.Getter {
	chain := func(ch tdx.IssuerChain) []string {
		p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ch.Signing})
		p = append(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ch.Root})...)
		return []string{url.QueryEscape(string(p))}
	}
	return &gotesting.Getter{Responses: map[string]gotesting.HTTPResponse{
		pcs.TcbInfoURL(tdxtest.FMSPC): {Header: map[string][]string{pcs.TcbInfoIssuerChainPhrase: chain(c.TCBInfoChain)}, Body: c.TCBInfo},
		pcs.QeIdentityURL():           {Header: map[string][]string{pcs.SgxQeIdentityIssuerChainPhrase: chain(c.QEIdentityChain)}, Body: c.QEIdentity},
		pcs.PckCrlURL("platform"):     {Header: map[string][]string{pcs.SgxPckCrlIssuerChainPhrase: chain(c.PCKCRLChain)}, Body: c.PCKCRL},
		rootCRLURL:                    {Body: c.RootCACRL},
	}}
}

// TestCollectVerifies collects through a fake configfs-tsm and a fake PCS
// and verifies the result: the evidence a worker publishes passes the
// verifier.
func TestCollectVerifies(t *testing.T) {
	f := fixture(t)
	quoteFor := func(rd [64]byte) ([]byte, error) {
		q, _, err := f.Evidence(rd)
		return q, err
	}
	dev, err := collect.NewDevice(collect.DeviceConfig{TSM: fakeTSM("tdx_guest", quoteFor)})
	if err != nil {
		t.Fatal(err)
	}
	want, err := f.PKI.Collateral(f.Collateral)
	if err != nil {
		t.Fatal(err)
	}
	col, err := collect.NewCollector(collect.CollectorConfig{Device: dev, Getter: getterFor(want, tdxtest.RootCRLURL)})
	if err != nil {
		t.Fatal(err)
	}
	rd := [64]byte{1, 2, 3}
	quote, coll, err := col.Collect(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tdx.ParseCollateral(coll)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("collected collateral differs from what PCS served")
	}
	c, err := tdx.Verify(quote, coll, tdx.Options{Now: now, Roots: f.PKI.Roots()})
	if err != nil {
		t.Fatal(err)
	}
	if c.ReportData != rd {
		t.Fatalf("report data %x", c.ReportData[:8])
	}
	if err := tdx.Validate(c, &policy.TDXRules{AnyMeasurement: true}); err != nil {
		t.Fatal(err)
	}
}

// TestCollateralOfRecordedQuote fetches the recorded Intel quote's
// collateral from go-tdx-guest's own PCS fake: it is byte for byte the
// collateral of the recorded test vectors.
func TestCollateralOfRecordedQuote(t *testing.T) {
	quote, err := tdxtest.RecordedQuote()
	if err != nil {
		t.Fatal(err)
	}
	col, err := collect.NewCollector(collect.CollectorConfig{Getter: gotesting.TestGetter})
	if err != nil {
		t.Fatal(err)
	}
	got, err := col.Collateral(context.Background(), quote)
	if err != nil {
		t.Fatal(err)
	}
	want, err := tdxtest.RecordedCollateral()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("collateral differs from the recorded vectors'")
	}
}

// TestLegacyDevice gets a quote through go-tdx-guest's mock ioctl device.
func TestLegacyDevice(t *testing.T) {
	f := fixture(t)
	rd := [64]byte{9}
	quote, _, err := f.Evidence(rd)
	if err != nil {
		t.Fatal(err)
	}
	mock, err := gotesting.TcDevice([]gotesting.TestCase{{Name: "fixture", Input: rd, Report: [1024]byte{1}, Quote: quote}})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := collect.NewDevice(collect.DeviceConfig{Legacy: mock})
	if err != nil {
		t.Fatal(err)
	}
	got, err := dev.Quote(rd)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(quote) {
		t.Fatal("quote differs")
	}
	if _, err := dev.Quote([64]byte{8}); err == nil {
		t.Fatal("a report data the device has no answer for was quoted")
	}
}

func TestDeviceRefuses(t *testing.T) {
	f := fixture(t)
	other, _, err := f.Evidence([64]byte{0xee})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tsm     configfsi.Client
		wantErr string
	}{
		{"provider not tdx", fakeTSM("sev_guest", func([64]byte) ([]byte, error) { return other, nil }), `provider: found "sev_guest", want "tdx_guest"`},
		{"quote for other report data", fakeTSM("tdx_guest", func([64]byte) ([]byte, error) { return other, nil }), "quote report_data: found ee00"},
		{"not a quote", fakeTSM("tdx_guest", func([64]byte) ([]byte, error) { return []byte("quote"), nil }), "a malformed quote"},
		{"hostile lengths", fakeTSM("tdx_guest", func([64]byte) ([]byte, error) {
			q := append([]byte{}, other...)
			q[0x278], q[0x279] = 16, 0
			return q, nil
		}), "a malformed quote"},
		{"provider error", fakeTSM("tdx_guest", func([64]byte) ([]byte, error) { return nil, syscall.EIO }), "configfs-tsm report"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, err := collect.NewDevice(collect.DeviceConfig{TSM: tc.tsm})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dev.Quote([64]byte{1}); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Quote: %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestCollectorRefuses(t *testing.T) {
	if _, err := collect.NewCollector(collect.CollectorConfig{}); err == nil {
		t.Fatal("a collector without a getter")
	}
	f := fixture(t)
	quote, _, err := f.Evidence([64]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.PKI.Collateral(f.Collateral)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(g *gotesting.Getter)
		wantErr string
	}{
		{"pcs down", func(g *gotesting.Getter) { g.Responses = nil }, "tcb info: 404"},
		{"no issuer chain", func(g *gotesting.Getter) {
			r := g.Responses[pcs.QeIdentityURL()]
			r.Header = nil
			g.Responses[pcs.QeIdentityURL()] = r
		}, "qe identity issuer chain"},
		{"root crl unreachable", func(g *gotesting.Getter) { delete(g.Responses, tdxtest.RootCRLURL) }, "root ca crl: none of the root's distribution points answered"},
		{"empty pck crl", func(g *gotesting.Getter) {
			r := g.Responses[pcs.PckCrlURL("platform")]
			r.Body = nil
			g.Responses[pcs.PckCrlURL("platform")] = r
		}, "pck crl: found 0 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := getterFor(c, tdxtest.RootCRLURL)
			tc.edit(g)
			col, err := collect.NewCollector(collect.CollectorConfig{Getter: g})
			if err != nil {
				t.Fatal(err)
			}
			_, err = col.Collateral(context.Background(), quote)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Collateral: %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
	col, _ := collect.NewCollector(collect.CollectorConfig{Getter: getterFor(c, tdxtest.RootCRLURL)})
	if _, _, err := col.Collect(context.Background(), [64]byte{}); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Collect without a device: %v", err)
	}
}
