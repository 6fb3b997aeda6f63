package proto

import (
	"encoding/binary"
	"math/bits"
)

// MinRequestBucket is the smallest padded request plaintext.
const MinRequestBucket = 1 << 10

// RequestBucket returns the padded plaintext size for a request payload of
// n bytes: the smallest power of two, at least MinRequestBucket, that holds
// a 4-byte length and the payload. It returns -1 when that exceeds
// MaxRequestPlaintext.
func RequestBucket(n int) int {
	need := n + 4
	if n < 0 || need > MaxRequestPlaintext {
		return -1
	}
	if need <= MinRequestBucket {
		return MinRequestBucket
	}
	return 1 << bits.Len(uint(need-1))
}

// MaxRequestPayload is the largest payload PadRequest accepts.
const MaxRequestPayload = MaxRequestPlaintext - 4

// PadRequest returns the padded request plaintext for payload: a 4-byte
// big-endian payload length, the payload, and zeros up to
// RequestBucket(len(payload)) bytes.
func PadRequest(payload []byte) ([]byte, error) {
	size := RequestBucket(len(payload))
	if size < 0 {
		return nil, malformed("request payload", "length", "found %d bytes, want at most %d", len(payload), MaxRequestPayload)
	}
	out := make([]byte, size)
	binary.BigEndian.PutUint32(out, uint32(len(payload)))
	copy(out[4:], payload)
	return out, nil
}

// UnpadRequest reverses PadRequest, rejecting any plaintext PadRequest could
// not have produced: a size that is not the bucket of the length it states,
// or non-zero padding.
func UnpadRequest(p []byte) ([]byte, error) {
	const s = "request plaintext"
	if len(p) < 4 {
		return nil, malformed(s, "length", "found %d bytes, want at least %d", len(p), MinRequestBucket)
	}
	n := binary.BigEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) {
		return nil, malformed(s, "payload length", "found %d, want at most %d", n, len(p)-4)
	}
	if want := RequestBucket(int(n)); want != len(p) {
		return nil, malformed(s, "padding", "found %d bytes for a %d-byte payload, want %d", len(p), n, want)
	}
	if !allZero(p[4+n:]) {
		return nil, malformed(s, "padding", "found non-zero padding bytes, want zeros")
	}
	return p[4 : 4+n], nil
}

// PadResponseChunk returns one response chunk plaintext: a 2-byte length,
// data (at most ResponseChunkData bytes) and zeros to ResponseChunkSize.
func PadResponseChunk(dst *[ResponseChunkSize]byte, data []byte) error {
	if len(data) > ResponseChunkData {
		return malformed("response chunk", "data length", "found %d bytes, want at most %d", len(data), ResponseChunkData)
	}
	binary.BigEndian.PutUint16(dst[:], uint16(len(data)))
	n := copy(dst[2:], data)
	clear(dst[2+n:])
	return nil
}

// UnpadResponseChunk returns the stream bytes inside one response chunk
// plaintext, rejecting a wrong size, an impossible length or non-zero
// padding.
func UnpadResponseChunk(p []byte) ([]byte, error) {
	const s = "response chunk"
	if len(p) != ResponseChunkSize {
		return nil, malformed(s, "length", "found %d bytes, want %d", len(p), ResponseChunkSize)
	}
	n := int(binary.BigEndian.Uint16(p))
	if n > ResponseChunkData {
		return nil, malformed(s, "data length", "found %d, want at most %d", n, ResponseChunkData)
	}
	if !allZero(p[2+n:]) {
		return nil, malformed(s, "padding", "found non-zero padding bytes, want zeros")
	}
	return p[2 : 2+n], nil
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}
