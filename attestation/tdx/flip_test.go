package tdx_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/verify"
	"github.com/sealgate/sealgate/proto"
)

// TestFlipEveryQuoteByte flips one bit (XOR 0x01) of every byte of the
// valid synthetic quote in turn and requires the full check (Verify,
// binding, Validate) to refuse it.
//
// Bytes outside the signed region of a V4 quote, and why none is
// accepted here:
//   - after the signed data: nothing; Verify refuses trailing bytes;
//   - the length and type fields of the signed data (signed data size,
//     certification data type and size, QE auth data size, PCK chain type
//     and size) are not signed but frame everything after them: the
//     library parser refuses any other value;
//   - the QE auth data is not signed but is hashed into the QE report's
//     REPORT_DATA, which the PCK key signs;
//   - the attestation key is hashed the same way and checks the quote
//     signature;
//   - the PCK certificate chain is PEM: its text is not signed, the DER
//     it decodes to is (each certificate by its issuer, the root by being
//     pinned). The only bits whose change leaves the DER as it was are
//     unused low bits of a base64 group before "=" padding, which Go's
//     PEM decoder ignores. A flip there is tolerated only if the decoded
//     chain is byte for byte the same; in the current vector there is
//     none.
func TestFlipEveryQuoteByte(t *testing.T) {
	raw, p, opts := validVector(t)
	b, err := proto.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	wantChain := pckChainDER(t, b.Report)
	step := 1
	if testing.Short() {
		step = 13
	}
	const workers = 4
	var (
		mu        sync.Mutex // guards survivors
		survivors []int
		wg        sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * step; i < len(b.Report); i += workers * step {
				bb := *b
				bb.Report = bytes.Clone(b.Report)
				bb.Report[i] ^= 0x01
				enc, err := bb.Marshal()
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := verdict(enc, p, opts); err == nil {
					mu.Lock()
					survivors = append(survivors, i)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for _, i := range survivors {
		flipped := bytes.Clone(b.Report)
		flipped[i] ^= 0x01
		if got := pckChainDER(t, flipped); !bytes.Equal(got, wantChain) {
			t.Errorf("flipping bit 0 of quote byte %d (%#x) is accepted and changes the quote's meaning", i, i)
		} else {
			t.Logf("flipping bit 0 of quote byte %d is accepted: an unused base64 bit of the PEM chain; the certificates are unchanged", i)
		}
	}
}

// pckChainDER returns the DER of the quote's PCK chain, or nil.
func pckChainDER(t *testing.T, quote []byte) []byte {
	q, err := abi.QuoteToProto(quote)
	if err != nil {
		return nil
	}
	ch, err := verify.ExtractChainFromQuote(q)
	if err != nil {
		return nil
	}
	return fmt.Append(nil, ch.PCKCertificate.Raw, ch.IntermediateCertificate.Raw, ch.RootCertificate.Raw)
}
