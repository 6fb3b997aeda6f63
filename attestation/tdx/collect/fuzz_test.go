package collect

import (
	"bytes"
	"encoding/pem"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/abi"
	"github.com/sealgate/sealgate/attestation/tdx/tdxtest"
	"github.com/sealgate/sealgate/internal/fuzzseed"
)

// chainHeader encodes signing and root as Intel PCS sends an issuer chain
// header: both certificates in PEM, URL-escaped.
func chainHeader(signing, root []byte) string {
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: signing})
	p = append(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root})...)
	return url.QueryEscape(string(p))
}

// FuzzIssuerChain feeds issuerChain the value of a PCS issuer chain header
// (the network's, untrusted): it never panics, and a chain it accepts is
// two certificates that encode back to an equivalent header.
func FuzzIssuerChain(f *testing.F) {
	pki, err := tdxtest.NewPKI("fuzz issuer chain", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		f.Fatal(err)
	}
	good := chainHeader(pki.TCBSigning.Raw, pki.Root.Raw)
	fuzzseed.Add(f, good)
	fuzzseed.Add(f, chainHeader([]byte{0x30, 0x00}, []byte{0x30}))
	fuzzseed.Add(f, good[:len(good)/2])
	fuzzseed.Add(f, good+"%0A%0A-----BEGIN%20CERTIFICATE-----%0A")
	fuzzseed.Add(f, "%zz")
	f.Fuzz(func(t *testing.T, header string) {
		ch, err := issuerChain([]string{header})
		if err != nil {
			return
		}
		again, err := issuerChain([]string{chainHeader(ch.Signing, ch.Root)})
		if err != nil || !bytes.Equal(again.Signing, ch.Signing) || !bytes.Equal(again.Root, ch.Root) {
			t.Fatalf("the accepted chain does not survive re-encoding: %v", err)
		}
	})
}

// FuzzParseQuote feeds parseQuote what configfs-tsm hands the guest: it
// turns every parser panic into an error, and a quote it accepts encodes
// back to a prefix of the bytes read (the rest is padding).
func FuzzParseQuote(f *testing.F) {
	rec, err := tdxtest.RecordedQuote()
	if err != nil {
		f.Fatal(err)
	}
	fuzzseed.Add(f, rec)
	fuzzseed.Add(f, rec[:len(rec)/2])
	fuzzseed.Add(f, rec[:1100])
	f.Fuzz(func(t *testing.T, raw []byte) {
		q, err := parseQuote(raw)
		if err != nil {
			return
		}
		b, err := abi.QuoteToAbiBytes(q)
		if err != nil {
			t.Fatalf("an accepted quote does not encode: %v", err)
		}
		if !bytes.HasPrefix(raw, b) {
			t.Fatal("an accepted quote encodes to other bytes than it was read from")
		}
	})
}
