package proto_test

// Checks of the concrete statements SPEC.md makes, computed here from the
// spec's words rather than through the package's helpers.

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/sealgate/sealgate/proto"
)

func TestSpecNonce(t *testing.T) {
	for _, tc := range []struct {
		counter uint64
		final   bool
		want    string
	}{
		{0, false, "000000000000000000000000"},
		{0, true, "000000000000000000000001"},
		{1, false, "000000000000000000000100"},
		{0x0102030405060708, true, "000000010203040506070801"},
	} {
		n := proto.Nonce(tc.counter, tc.final)
		if got := hex.EncodeToString(n[:]); got != tc.want {
			t.Errorf("Nonce(%d, %v) = %s, want %s", tc.counter, tc.final, got, tc.want)
		}
	}
}

func TestSpecRequestBucket(t *testing.T) {
	for _, tc := range []struct{ payload, bucket int }{
		{0, 1024}, {1020, 1024}, {1021, 2048}, {2044, 2048}, {2045, 4096},
		{16380, 16384}, {16381, 32768}, {proto.MaxRequestPayload, proto.MaxRequestPlaintext},
		{proto.MaxRequestPayload + 1, -1}, {-1, -1},
	} {
		if got := proto.RequestBucket(tc.payload); got != tc.bucket {
			t.Errorf("RequestBucket(%d) = %d, want %d", tc.payload, got, tc.bucket)
		}
	}
	p, err := proto.PadRequest([]byte("abc"))
	if err != nil || len(p) != 1024 || !bytes.Equal(p[:7], []byte{0, 0, 0, 3, 'a', 'b', 'c'}) || !bytes.Equal(p[7:], make([]byte, 1017)) {
		t.Errorf("PadRequest(abc) = %x..., %v", p[:8], err)
	}
}

func TestSpecKeyID(t *testing.T) {
	pub := testKey(t, proto.KEMX25519, 0).Public()
	want := sha256.Sum256(append([]byte("sealgate/v1 key id\x00\x00\x20"), pub.PublicKey...))
	if got := pub.ID(); got != want {
		t.Errorf("key id %x, want %x", got, want)
	}
}

func TestSpecReportData(t *testing.T) {
	b := validBundle(t)
	enc, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Locate the keys block and the GPU list in the encoding, as SPEC.md
	// lays them out, and hash them directly.
	off := 4 + 2 + 1 + len(b.Kind) + proto.NonceSize
	keysLen := int(enc[off])<<8 | int(enc[off+1])
	keys := enc[off+2 : off+2+keysLen]
	gpuStart := off + 2 + keysLen + 4 + len(b.Report) + 4 + len(b.Collateral)
	gpu := enc[gpuStart : len(enc)-2-len(b.Anchor)] // the anchor follows the GPU list
	kh, gh := sha256.Sum256(keys), sha256.Sum256(gpu)
	h := sha512.New()
	h.Write([]byte("sealgate/v1 report data\x00"))
	h.Write(kh[:])
	h.Write(gh[:])
	h.Write(b.Nonce[:])
	if got := b.ReportData(); !bytes.Equal(got[:], h.Sum(nil)) {
		t.Errorf("REPORT_DATA %x, want %x", got, h.Sum(nil))
	}
	if b.KeysHash() != kh || b.GPUHash() != gh {
		t.Error("KeysHash or GPUHash is not SHA-256 of its encoded block")
	}
}

func TestSpecResponseHeaderSize(t *testing.T) {
	if proto.ResponseHeaderSize != 71 {
		t.Errorf("ResponseHeaderSize %d, SPEC.md says 71", proto.ResponseHeaderSize)
	}
}

func TestSpecAnchor(t *testing.T) {
	enc := testAnchor(t)
	if len(enc) != 118 || proto.AnchorSize != 118 {
		t.Fatalf("anchor is %d bytes, SPEC.md says 118", len(enc))
	}
	want := sha256.Sum256(append([]byte("sealgate/v1 anchored nonce\x00"), enc...))
	if proto.AnchoredNonce(enc) != want {
		t.Fatal("AnchoredNonce differs from SPEC.md")
	}
	b := validBundle(t)
	b.Nonce[0] ^= 1
	if _, err := b.Marshal(); !errors.Is(err, proto.ErrMalformed) {
		t.Fatalf("bundle with a nonce not derived from its anchor: %v", err)
	}
}
