package tdx_test

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/verify"
	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/tdx"
	"github.com/sealgate/sealgate/attestation/tdx/tdxtest"
	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/proto"
)

func TestVerifyNeedsTime(t *testing.T) {
	raw, _, opts := validVector(t)
	b, err := proto.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	opts.Now = time.Time{}
	if _, err := tdx.Verify(b.Report, b.Collateral, opts); check.CodeOf(err) != check.CodeOptions {
		t.Fatalf("zero Now: %v, want code %s", err, check.CodeOptions)
	}
}

func TestVerifyValidClaims(t *testing.T) {
	raw, _, opts := validVector(t)
	b, err := proto.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tdx.Verify(b.Report, b.Collateral, opts)
	if err != nil {
		t.Fatal(err)
	}
	td := tdxtest.DefaultTD()
	if c.ReportData != b.ReportData() || c.MRTD != td.MRTD || c.RTMR != td.RTMR || c.TEETCBSVN != td.TEETCBSVN || c.Debug {
		t.Errorf("td fields: %+v", c)
	}
	if c.TCBStatus != "UpToDate" || c.TDXModuleTCBStatus != "UpToDate" || c.QETCBStatus != "UpToDate" || len(c.AdvisoryIDs) != 0 {
		t.Errorf("statuses %q %q %q %v", c.TCBStatus, c.TDXModuleTCBStatus, c.QETCBStatus, c.AdvisoryIDs)
	}
	if c.TCBEvaluationNumber != 17 || !c.CRLChecked || c.FMSPC != tdxtest.FMSPC {
		t.Errorf("collateral fields: eval %d crl %v fmspc %s", c.TCBEvaluationNumber, c.CRLChecked, c.FMSPC)
	}
	if want := tdxtest.VectorIssued.AddDate(0, 0, 30); !c.NextUpdate.Equal(want) {
		t.Errorf("NextUpdate %v, want %v", c.NextUpdate, want)
	}
}

// TestRecordedClaims checks the real verdicts on Intel's recorded quote
// and collateral, with the pinned Intel root (Roots nil).
func TestRecordedClaims(t *testing.T) {
	quote, err := tdxtest.RecordedQuote()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := tdxtest.RecordedCollateral()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := coll.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := tdx.Verify(quote, enc, tdx.Options{Now: tdxtest.RecordedVerifyAt})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(c.MRTD[:]); got != "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb" {
		t.Errorf("MRTD %s", got)
	}
	// The TCB info's levels are newer than this platform's SVNs (go-tdx-
	// guest's own test expects "no matching TCB level found"); the QE is
	// UpToDate.
	if c.TCBStatus != tdx.TCBStatusNotSupported || c.TDXModuleTCBStatus != "" || c.QETCBStatus != "UpToDate" {
		t.Errorf("statuses %q %q %q", c.TCBStatus, c.TDXModuleTCBStatus, c.QETCBStatus)
	}
	if c.Debug || !c.CRLChecked || c.FMSPC != "50806f000000" || c.TCBEvaluationNumber != 15 {
		t.Errorf("debug %v crl %v fmspc %s eval %d", c.Debug, c.CRLChecked, c.FMSPC, c.TCBEvaluationNumber)
	}
	// The QE identity's nextUpdate is the earliest expiry.
	if want := time.Date(2023, 7, 8, 7, 24, 59, 0, time.UTC); !c.NextUpdate.Equal(want) {
		t.Errorf("NextUpdate %v, want %v", c.NextUpdate, want)
	}
	// A second later than the earliest next update, the collateral has
	// expired.
	if _, err := tdx.Verify(quote, enc, tdx.Options{Now: c.NextUpdate.Add(time.Second)}); check.CodeOf(err) != check.CodeCollateralExpired {
		t.Errorf("after NextUpdate: %v", err)
	}
}

// TestPinnedRootIsIntels checks the embedded root against the root of
// Intel's real PCK chain and PCS issuer chains.
func TestPinnedRootIsIntels(t *testing.T) {
	quote, err := tdxtest.RecordedQuote()
	if err != nil {
		t.Fatal(err)
	}
	q, err := abi.QuoteToProto(quote)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := verify.ExtractChainFromQuote(q)
	if err != nil {
		t.Fatal(err)
	}
	coll, err := tdxtest.RecordedCollateral()
	if err != nil {
		t.Fatal(err)
	}
	root := tdx.IntelRootCA().Raw
	for name, r := range map[string][]byte{"pck chain": ch.RootCertificate.Raw, "tcb info chain": coll.TCBInfoChain.Root, "qe identity chain": coll.QEIdentityChain.Root, "pck crl chain": coll.PCKCRLChain.Root} {
		if !bytes.Equal(r, root) {
			t.Errorf("%s root differs from the pinned root", name)
		}
	}
}

// TestLibraryReportsModuleStatusOnly documents why Verify matches the
// platform's TCB level itself: for a TDX 1.5 quote go-tdx-guest reports
// the TDX module's status and accepts a platform whose own level is
// OutOfDate. If this starts failing, go-tdx-guest converges the statuses
// itself and platformLevel can go.
func TestLibraryReportsModuleStatusOnly(t *testing.T) {
	var raw []byte
	var opts tdx.Options
	var p *policy.Policy
	for _, e := range readManifest(t) {
		if e.Name == "platform-out-of-date" {
			raw, p, opts = loadVector(t, e)
		}
	}
	b, err := proto.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	getter, err := tdx.OfflineGetter(b.Collateral)
	if err != nil {
		t.Fatal(err)
	}
	q, err := abi.QuoteToProto(b.Report)
	if err != nil {
		t.Fatal(err)
	}
	lib := &verify.Options{GetCollateral: true, CheckRevocations: true, Getter: getter, TrustedRoots: opts.Roots,
		Now: &verify.TimeSet{PckCertChain: opts.Now, TcbInfo: opts.Now, QeIdentity: opts.Now, PckCrl: opts.Now, RootCaCrl: opts.Now}}
	if err := verify.TdxQuote(q, lib); err != nil {
		t.Fatalf("go-tdx-guest now refuses the platform-out-of-date quote: %v", err)
	}
	c, err := verdict(raw, p, opts)
	if check.CodeOf(err) != check.CodePolicy || c.TCBStatus != "OutOfDate" || c.TDXModuleTCBStatus != "UpToDate" {
		t.Fatalf("Verify: %v, statuses %q %q", err, c.TCBStatus, c.TDXModuleTCBStatus)
	}
}

// FuzzVerify feeds mutated quotes and collateral to Verify: it must never
// panic, and whatever it accepts must carry the collateral's validity.
func FuzzVerify(f *testing.F) {
	raw, _, opts := validVector(f)
	b, err := proto.ParseBundle(raw)
	if err != nil {
		f.Fatal(err)
	}
	fuzzseed.Add(f, b.Report, b.Collateral)
	rec, err := tdxtest.RecordedQuote()
	if err != nil {
		f.Fatal(err)
	}
	fuzzseed.Add(f, rec, b.Collateral)
	fuzzseed.Add(f, b.Report[:1100], b.Collateral)
	f.Fuzz(func(t *testing.T, quote, collateral []byte) {
		c, err := tdx.Verify(quote, collateral, opts)
		if err != nil {
			if check.CodeOf(err) == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		if c.NextUpdate.Before(opts.Now) {
			t.Fatalf("accepted with NextUpdate %v before Now", c.NextUpdate)
		}
	})
}

// TestVerifyHostileLengths sets the quote's inner length fields to values
// go-tdx-guest's parser does not bound: Verify must report a malformed
// quote, not crash.
func TestVerifyHostileLengths(t *testing.T) {
	raw, _, opts := validVector(t)
	b, err := proto.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	le32 := func(off int, v uint32) func([]byte) {
		return func(q []byte) { q[off], q[off+1], q[off+2], q[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24) }
	}
	const signedData = 0x27C           // after the header, body and signed data size
	const certData = signedData + 0x80 // after the signature and attestation key
	const authSize = certData + 6 + 0x1C0
	tests := []struct {
		name  string
		input func([]byte)
	}{
		{"signed data size 16", le32(signedData-4, 16)},
		{"signed data size 0", le32(signedData-4, 0)},
		{"certification data size 0", le32(certData+2, 0)},
		{"qe auth data size 0xffff", func(q []byte) { q[authSize], q[authSize+1] = 0xff, 0xff }},
		{"version 5", func(q []byte) { q[0] = 5 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := bytes.Clone(b.Report)
			tc.input(q)
			if _, err := tdx.Verify(q, b.Collateral, opts); check.CodeOf(err) != check.CodeMalformed {
				t.Fatalf("Verify: %v, want code %s", err, check.CodeMalformed)
			}
		})
	}
}
