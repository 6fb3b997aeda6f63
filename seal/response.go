package seal

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// ResponseWriter seals a worker's response stream. Stream bytes are cut
// into fixed-size chunks; a partial chunk is sent when FlushInterval passes
// after its first byte was buffered, so chunk sizes and timing reveal only
// coarse output volume. It is safe for concurrent use.
type ResponseWriter struct {
	mu       sync.Mutex // guards every field below
	dst      io.Writer
	flush    func() error
	gcm      cipher.AEAD
	aad      []byte
	counter  uint64
	buf      []byte // stream bytes not yet in a chunk
	timer    *time.Timer
	interval time.Duration
	done     bool
	err      error // first write error; sticky
}

// NewResponseWriter writes the response header to dst and returns a writer
// for the response stream. flush, if not nil, is called after every chunk
// (an http.Flusher's Flush, say). flushInterval bounds how long a partial
// chunk waits; zero means 20ms.
func (o *Opened) NewResponseWriter(dst io.Writer, flush func() error, flushInterval time.Duration) (*ResponseWriter, error) {
	rh := proto.ResponseHeader{Index: o.Index, KeyID: o.key.id}
	rand.Read(rh.Nonce[:])
	rb, err := rh.Marshal()
	if err != nil {
		return nil, err
	}
	key := responseKey(o.exporter, rh.Nonce, o.HeaderHash)
	keyLog(o.keyLog, "RESPONSE_KEY", o.Header.RequestID, key)
	if flushInterval == 0 {
		flushInterval = 20 * time.Millisecond
	}
	w := &ResponseWriter{dst: dst, flush: flush, gcm: newGCM(key), aad: rb, interval: flushInterval}
	if _, err := dst.Write(rb); err != nil {
		return nil, err
	}
	if err := w.flushDst(); err != nil {
		return nil, err
	}
	return w, nil
}

// WriteEvent appends a non-terminal event to the stream.
func (w *ResponseWriter) WriteEvent(e proto.Event) error {
	if e.Terminal() {
		return fmt.Errorf("seal: %v event must be written with Finish", e.Type)
	}
	if err := checkEvent(e); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errors.New("seal: response already finished")
	}
	w.buf = proto.AppendEvent(w.buf, e)
	for len(w.buf) > proto.ResponseChunkData && w.err == nil {
		w.emit(w.buf[:proto.ResponseChunkData], false)
		w.buf = w.buf[proto.ResponseChunkData:]
	}
	if len(w.buf) > 0 && w.timer == nil && w.err == nil {
		w.timer = time.AfterFunc(w.interval, w.onTimer)
	}
	return w.err
}

func (w *ResponseWriter) onTimer() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = nil
	if !w.done && len(w.buf) > 0 && w.err == nil {
		w.emit(w.buf, false)
		w.buf = w.buf[:0]
	}
}

// Finish appends the terminal event (EventEnd or EventError), sends the
// final chunk and stops the flush timer.
func (w *ResponseWriter) Finish(e proto.Event) error {
	if !e.Terminal() {
		return fmt.Errorf("seal: Finish needs a terminal event, got %v", e.Type)
	}
	if err := checkEvent(e); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errors.New("seal: response already finished")
	}
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.buf = proto.AppendEvent(w.buf, e)
	for len(w.buf) > proto.ResponseChunkData && w.err == nil {
		w.emit(w.buf[:proto.ResponseChunkData], false)
		w.buf = w.buf[proto.ResponseChunkData:]
	}
	if w.err == nil {
		w.emit(w.buf, true)
	}
	w.buf = nil
	return w.err
}

// Abort stops the flush timer without sending a final chunk; the client
// sees a truncated stream. Use it when the connection is gone.
func (w *ResponseWriter) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

// checkEvent refuses an event the client's reader would reject, so a worker
// cannot write a stream that fails as malformed.
func checkEvent(e proto.Event) error {
	if e.Type < proto.EventData || e.Type > proto.EventEnd {
		return fmt.Errorf("seal: event type %d, want %d to %d", uint8(e.Type), proto.EventData, proto.EventEnd)
	}
	if len(e.Data) > proto.MaxEventData {
		return fmt.Errorf("seal: %v event of %d bytes, want at most %d", e.Type, len(e.Data), proto.MaxEventData)
	}
	return nil
}

// emit seals one chunk of at most ResponseChunkData stream bytes. w.mu is
// held.
func (w *ResponseWriter) emit(data []byte, final bool) {
	var pt [proto.ResponseChunkSize]byte
	if err := proto.PadResponseChunk(&pt, data); err != nil {
		w.err = err
		return
	}
	nonce := proto.Nonce(w.counter, final)
	w.counter++
	frame := proto.AppendChunk(make([]byte, 0, 5+proto.ResponseChunkSize+proto.AEADOverhead),
		proto.Chunk{Final: final, Ciphertext: w.gcm.Seal(nil, nonce[:], pt[:], w.aad)})
	if _, err := w.dst.Write(frame); err != nil {
		w.err = err
		return
	}
	w.err = w.flushDst()
}

func (w *ResponseWriter) flushDst() error {
	if w.flush == nil {
		return nil
	}
	return w.flush()
}

// Response reads a sealed response on the client side. It is not safe for
// concurrent use.
type Response struct {
	src     io.Reader
	gcm     cipher.AEAD
	aad     []byte
	counter uint64
	stream  []byte // decrypted stream bytes not yet returned
	final   bool   // the final chunk has been read
	ended   bool   // the terminal event has been returned
	err     error  // first error; every later call returns it
	index   int
}

// OpenResponse reads the response header and first chunk from src. It
// fails with ErrNotCandidate if the header names a key that is not the
// request's candidate at that position, and with ErrAuthentication if the
// first chunk was not sealed by that candidate for this request. On
// success Candidate reports, authenticated, which candidate answered.
func (r *Request) OpenResponse(src io.Reader) (*Response, error) {
	rh, rb, err := proto.ReadResponseHeader(src)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, ErrTruncated
	}
	if err != nil {
		return nil, err
	}
	if rh.Index >= len(r.header.Candidates) || r.header.Candidates[rh.Index].KeyID != rh.KeyID {
		return nil, ErrNotCandidate
	}
	key := responseKey(r.exporters[rh.Index], rh.Nonce, r.headerHash)
	keyLog(r.keyLog, "RESPONSE_KEY", r.header.RequestID, key)
	resp := &Response{src: src, gcm: newGCM(key), aad: rb, index: rh.Index}
	if err := resp.readChunk(); err != nil {
		return nil, err
	}
	return resp, nil
}

// Candidate returns the index, in the request's candidate list, of the
// worker that answered.
func (r *Response) Candidate() int { return r.index }

func (r *Response) readChunk() error {
	if r.final {
		return ErrTruncated
	}
	c, err := proto.ReadChunk(r.src, proto.ResponseChunk)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	if err != nil {
		return err
	}
	nonce := proto.Nonce(r.counter, c.Final)
	pt, err := r.gcm.Open(c.Ciphertext[:0], nonce[:], c.Ciphertext, r.aad)
	if err != nil {
		return ErrAuthentication
	}
	r.counter++
	data, err := proto.UnpadResponseChunk(pt)
	if err != nil {
		return err
	}
	r.stream = append(r.stream, data...)
	r.final = c.Final
	return nil
}

// Next returns the next event of the stream. After the terminal event it
// returns io.EOF. It fails with ErrTruncated if the stream ends early, and
// with ErrTrailingData if anything follows the terminal event.
//
// Errors are sticky: after one, every call returns it again, so a caller
// that retries cannot skip a chunk that failed to authenticate or read
// events that follow a rejected terminal event.
func (r *Response) Next() (proto.Event, error) {
	if r.err != nil {
		return proto.Event{}, r.err
	}
	if r.ended {
		return proto.Event{}, io.EOF
	}
	e, err := r.next()
	if err != nil {
		r.err = err
	}
	return e, err
}

func (r *Response) next() (proto.Event, error) {
	for {
		if len(r.stream) >= 5 {
			n := binary.BigEndian.Uint32(r.stream[1:5])
			if n > proto.MaxEventData {
				return proto.Event{}, fmt.Errorf("%w: event of %d bytes", proto.ErrMalformed, n)
			}
			if uint64(len(r.stream)) >= 5+uint64(n) {
				e, err := proto.ReadEvent(bytes.NewReader(r.stream[:5+n]))
				if err != nil {
					return proto.Event{}, err
				}
				r.stream = r.stream[5+n:]
				if e.Terminal() {
					if len(r.stream) > 0 || !r.final {
						return proto.Event{}, ErrTrailingData
					}
					if err := expectEOF(r.src); err != nil {
						return proto.Event{}, err
					}
					r.ended = true
				}
				return e, nil
			}
		}
		if err := r.readChunk(); err != nil {
			return proto.Event{}, err
		}
	}
}
