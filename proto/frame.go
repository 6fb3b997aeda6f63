package proto

import (
	"encoding/binary"
	"errors"
	"io"
)

// Magic numbers that open each message. They let a reader fail fast on the
// wrong kind of message; they are not secret and not authenticated.
const (
	MagicRequest  = "SGRQ" // client to gateway: header, every wrap, chunks
	MagicForward  = "SGWQ" // gateway to worker: header, one wrap, chunks
	MagicResponse = "SGRS" // worker to client: response header, chunks
)

// Chunk sizes of the two body streams.
const (
	// RequestChunkSize is the plaintext size of every request chunk but the
	// last, which holds 1 to RequestChunkSize bytes.
	RequestChunkSize = 16 << 10
	// ResponseChunkSize is the plaintext size of every response chunk: each
	// holds a 2-byte length, up to ResponseChunkData bytes of the response
	// stream, and zero padding.
	ResponseChunkSize = 1 << 10
	// ResponseChunkData is how many stream bytes one response chunk carries.
	ResponseChunkData = ResponseChunkSize - 2
	// AEADOverhead is the AES-256-GCM tag size.
	AEADOverhead = 16
	// MaxRequestPlaintext is the largest padded request plaintext.
	MaxRequestPlaintext = 16 << 20
	// MaxRequestChunks bounds the number of chunks in a request.
	MaxRequestChunks = MaxRequestPlaintext / RequestChunkSize
)

// ChunkFlagFinal marks the last chunk of a stream.
const ChunkFlagFinal = 0x01

// Chunk is one framed AEAD ciphertext of a body stream.
type Chunk struct {
	Final      bool
	Ciphertext []byte
}

// ChunkKind selects which stream's size rules a chunk is checked against.
type ChunkKind int

const (
	// RequestChunk: non-final chunks hold exactly RequestChunkSize bytes of
	// plaintext, the final chunk 1 to RequestChunkSize.
	RequestChunk ChunkKind = iota
	// ResponseChunk: every chunk holds exactly ResponseChunkSize bytes.
	ResponseChunk
)

func (k ChunkKind) checkLen(final bool, n int) error {
	const s = "chunk"
	switch k {
	case RequestChunk:
		max := RequestChunkSize + AEADOverhead
		if !final && n != max {
			return malformed(s, "length", "non-final request chunk of %d bytes, want %d", n, max)
		}
		if n < 1+AEADOverhead || n > max {
			return malformed(s, "length", "found %d bytes, want %d to %d", n, 1+AEADOverhead, max)
		}
	case ResponseChunk:
		if want := ResponseChunkSize + AEADOverhead; n != want {
			return malformed(s, "length", "found %d bytes, want %d", n, want)
		}
	default:
		return malformed(s, "kind", "unknown chunk kind %d", k)
	}
	return nil
}

// AppendChunk appends the framing of one chunk to dst: a flag byte, a 4-byte
// length and the ciphertext.
func AppendChunk(dst []byte, c Chunk) []byte {
	var flag byte
	if c.Final {
		flag = ChunkFlagFinal
	}
	dst = append(dst, flag)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Ciphertext)))
	return append(dst, c.Ciphertext...)
}

// ReadChunk reads one framed chunk from r, checking its flag and length
// against kind's rules before it reads the ciphertext. A clean end of input
// before the first byte is io.EOF; any other short read is
// io.ErrUnexpectedEOF.
func ReadChunk(r io.Reader, kind ChunkKind) (Chunk, error) {
	var pre [5]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Chunk{}, err
	}
	if pre[0]&^ChunkFlagFinal != 0 {
		return Chunk{}, malformed("chunk", "flags", "found 0x%02x, want 0x00 or 0x01", pre[0])
	}
	c := Chunk{Final: pre[0] == ChunkFlagFinal}
	n := binary.BigEndian.Uint32(pre[1:])
	if n > RequestChunkSize+AEADOverhead {
		return Chunk{}, malformed("chunk", "length", "found %d bytes, want at most %d", n, RequestChunkSize+AEADOverhead)
	}
	if err := kind.checkLen(c.Final, int(n)); err != nil {
		return Chunk{}, err
	}
	c.Ciphertext = make([]byte, n)
	if _, err := io.ReadFull(r, c.Ciphertext); err != nil {
		return Chunk{}, noEOF(err)
	}
	return c, nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF, for reads past the first byte
// of a structure.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Nonce returns the AEAD nonce of the chunk at index counter: an 11-byte
// big-endian counter followed by 0x01 for the final chunk and 0x00 for
// every other.
func Nonce(counter uint64, final bool) [12]byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[3:11], counter)
	if final {
		n[11] = 1
	}
	return n
}

// Wrap is a data key sealed to one candidate with HPKE.
type Wrap [WrapSize]byte

// RequestPreamble is everything a client sends before the first chunk.
type RequestPreamble struct {
	Header      *Header
	HeaderBytes []byte // the exact encoding of Header, the AAD
	Wraps       []Wrap // one per candidate, in the header's order
}

// AppendRequestPreamble appends the client's preamble: MagicRequest, the
// 4-byte header length, the header, then one wrap per candidate.
func AppendRequestPreamble(dst, header []byte, wraps []Wrap) []byte {
	dst = append(dst, MagicRequest...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(header)))
	dst = append(dst, header...)
	for _, w := range wraps {
		dst = append(dst, w[:]...)
	}
	return dst
}

// ReadRequestPreamble reads and parses a client's preamble from r.
func ReadRequestPreamble(r io.Reader) (*RequestPreamble, error) {
	h, hb, err := readHeader(r, MagicRequest)
	if err != nil {
		return nil, err
	}
	p := &RequestPreamble{Header: h, HeaderBytes: hb, Wraps: make([]Wrap, len(h.Candidates))}
	for i := range p.Wraps {
		if _, err := io.ReadFull(r, p.Wraps[i][:]); err != nil {
			return nil, noEOF(err)
		}
	}
	return p, nil
}

// ForwardPreamble is what the gateway sends a worker before the first
// chunk: the header and the one wrap made for that worker.
type ForwardPreamble struct {
	Header      *Header
	HeaderBytes []byte
	Index       int // the worker's position among the header's candidates
	Wrap        Wrap
}

// AppendForwardPreamble appends MagicForward, the header length and header,
// the candidate index and that candidate's wrap.
func AppendForwardPreamble(dst, header []byte, index int, w Wrap) []byte {
	dst = append(dst, MagicForward...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(header)))
	dst = append(dst, header...)
	dst = append(dst, byte(index))
	return append(dst, w[:]...)
}

// ReadForwardPreamble reads and parses a forwarded preamble from r.
func ReadForwardPreamble(r io.Reader) (*ForwardPreamble, error) {
	h, hb, err := readHeader(r, MagicForward)
	if err != nil {
		return nil, err
	}
	p := &ForwardPreamble{Header: h, HeaderBytes: hb}
	var idx [1]byte
	if _, err := io.ReadFull(r, idx[:]); err != nil {
		return nil, noEOF(err)
	}
	if int(idx[0]) >= len(h.Candidates) {
		return nil, malformed("forward preamble", "candidate index", "found %d, want below %d", idx[0], len(h.Candidates))
	}
	p.Index = int(idx[0])
	if _, err := io.ReadFull(r, p.Wrap[:]); err != nil {
		return nil, noEOF(err)
	}
	return p, nil
}

func readHeader(r io.Reader, magic string) (*Header, []byte, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, nil, noEOF(err)
	}
	if string(pre[:4]) != magic {
		return nil, nil, malformed("preamble", "magic", "found other bytes, want %q", magic)
	}
	n := binary.BigEndian.Uint32(pre[4:])
	if n > MaxHeaderSize {
		return nil, nil, malformed("preamble", "header length", "found %d, want at most %d", n, MaxHeaderSize)
	}
	hb := make([]byte, n)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, nil, noEOF(err)
	}
	h, err := ParseHeader(hb)
	if err != nil {
		return nil, nil, err
	}
	return h, hb, nil
}

// ResponseHeader opens a sealed response. It is authenticated as the
// associated data of every response chunk.
type ResponseHeader struct {
	// Index is the answering candidate's position in the request header.
	Index int
	// KeyID repeats that candidate's key id.
	KeyID KeyID
	// Nonce is fresh randomness from the worker, salt for the response key.
	Nonce [32]byte
}

// ResponseHeaderSize is the encoded size of a ResponseHeader, magic included.
const ResponseHeaderSize = 4 + 2 + 1 + KeyIDSize + 32

// Marshal returns the encoding of h: MagicResponse, version, index, key id,
// nonce.
func (h *ResponseHeader) Marshal() ([]byte, error) {
	if h.Index < 0 || h.Index >= MaxCandidates {
		return nil, malformed("response header", "candidate index", "found %d, want 0 to %d", h.Index, MaxCandidates-1)
	}
	b := make([]byte, 0, ResponseHeaderSize)
	b = append(b, MagicResponse...)
	b = binary.BigEndian.AppendUint16(b, Version)
	b = append(b, byte(h.Index))
	b = append(b, h.KeyID[:]...)
	return append(b, h.Nonce[:]...), nil
}

// ParseResponseHeader parses exactly ResponseHeaderSize bytes.
func ParseResponseHeader(b []byte) (*ResponseHeader, error) {
	const s = "response header"
	if len(b) != ResponseHeaderSize {
		return nil, malformed(s, "length", "found %d bytes, want %d", len(b), ResponseHeaderSize)
	}
	if string(b[:4]) != MagicResponse {
		return nil, malformed(s, "magic", "found other bytes, want %q", MagicResponse)
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != Version {
		return nil, malformed(s, "version", "found %d, want %d", v, Version)
	}
	h := &ResponseHeader{Index: int(b[6])}
	if h.Index >= MaxCandidates {
		return nil, malformed(s, "candidate index", "found %d, want 0 to %d", h.Index, MaxCandidates-1)
	}
	copy(h.KeyID[:], b[7:7+KeyIDSize])
	copy(h.Nonce[:], b[7+KeyIDSize:])
	return h, nil
}

// ReadResponseHeader reads and parses a response header from r.
func ReadResponseHeader(r io.Reader) (*ResponseHeader, []byte, error) {
	b := make([]byte, ResponseHeaderSize)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, nil, noEOF(err)
	}
	h, err := ParseResponseHeader(b)
	return h, b, err
}
