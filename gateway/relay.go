package gateway

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/proto"
)

// retryRelay is the Retry-After of an overloaded relay.
const retryRelay = time.Second

// relayBufSize is the size of one read from a worker's response; each read
// is written and flushed to the client as it arrives.
const relayBufSize = 32 << 10

// maxErrorDrain bounds how much of a failed worker response is read
// before its connection is closed, so the connection can be reused.
const maxErrorDrain = 4 << 10

// Relay reads a sealed request from body (the client's preamble, then its
// chunks, to the end), picks the admitted workers among its candidates,
// least loaded first, and forwards it to them in turn until one answers
// with a first response byte; that worker's response is streamed into
// sink. It returns an error only before sink.Start; once the response has
// started, a broken stream just ends it, and Relay returns nil.
func (g *Gateway) Relay(ctx context.Context, body io.Reader, sink api.Sink) error {
	if err := g.life.enter(); err != nil {
		return err
	}
	defer g.life.leave()
	select {
	case g.relaySlots <- struct{}{}:
		defer func() { <-g.relaySlots }()
	default:
		return &api.Error{Code: api.Overloaded, Message: "too many requests in flight", RetryAfter: retryRelay,
			Err: fmt.Errorf("%d relays in flight", cap(g.relaySlots))}
	}
	start := time.Now() // durations are measured, not judged: the wall clock is right here

	pre, err := proto.ReadRequestPreamble(body)
	if err != nil {
		return bodyError("malformed request preamble", err)
	}
	chunks, err := readChunks(body)
	if err != nil {
		return bodyError("malformed request body", err)
	}
	h := pre.Header
	log := g.log.With(
		slog.String("request_id", hex.EncodeToString(h.RequestID[:])),
		slog.String("task", h.Task),
		slog.Int("candidates", len(h.Candidates)),
	)
	cands := g.reg.route(h.Candidates, g.cfg.Now())
	if len(cands) == 0 {
		log.InfoContext(ctx, "relay refused: no candidate key belongs to an admitted worker")
		return api.New(api.UnknownCandidates, "none of the request's candidate keys belongs to an admitted worker")
	}
	byLoad(cands)

	bytesIn := int64(8 + len(pre.HeaderBytes) + len(pre.Wraps)*proto.WrapSize + len(chunks))
	for attempt, c := range cands {
		if err := ctx.Err(); err != nil {
			log.InfoContext(ctx, "relay abandoned: client gone", slog.Int("attempts", attempt))
			return api.Wrap(api.Unavailable, "request cancelled", err)
		}
		fwd := proto.AppendForwardPreamble(make([]byte, 0, 8+len(pre.HeaderBytes)+1+proto.WrapSize), pre.HeaderBytes, c.index, pre.Wraps[c.index])
		done, err := g.forward(ctx, log, c, fwd, chunks, sink, start, bytesIn, attempt+1)
		if done {
			return err
		}
		log.WarnContext(ctx, "worker failed before its first byte; trying the next candidate",
			slog.String("worker", c.w.id), slog.Int("attempt", attempt+1), slog.Any("err", err))
	}
	log.WarnContext(ctx, "relay failed: every candidate failed before its first byte",
		slog.Int("attempts", len(cands)), slog.Duration("duration", time.Since(start)))
	return api.New(api.UpstreamFailed, "every candidate worker failed")
}

// bodyError classifies a failure reading the client's body. The cause
// goes to the log, so it must not quote the body: a parse error keeps its
// structure and field, and its problem only when that quotes nothing.
func bodyError(msg string, err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return api.Wrap(api.TooLarge, "request body too large", err)
	}
	var fe *proto.FieldError
	if errors.As(err, &fe) {
		problem := fe.Problem
		if strings.ContainsAny(problem, "\"'`") {
			problem = "(value withheld from the log)"
		}
		return api.Wrap(api.BadRequest, msg, fmt.Errorf("malformed %s: %s: %s", fe.Struct, fe.Field, problem))
	}
	if errors.Is(err, proto.ErrMalformed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return api.Wrap(api.BadRequest, msg, err)
	}
	// Not the client's framing: a read timeout or a broken connection.
	return api.Wrap(api.BadRequest, "reading the request body failed", err)
}

// readChunks reads request chunks up to and including the final one,
// checking their framing, and requires the end of r. It returns their
// encoding, byte for byte as sent.
func readChunks(r io.Reader) ([]byte, error) {
	var out []byte
	for i := 0; ; i++ {
		if i >= proto.MaxRequestChunks {
			return nil, fmt.Errorf("%w: more than %d chunks", proto.ErrMalformed, proto.MaxRequestChunks)
		}
		c, err := proto.ReadChunk(r, proto.RequestChunk)
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: body ends before its final chunk", proto.ErrMalformed)
		}
		if err != nil {
			return nil, err
		}
		out = proto.AppendChunk(out, c)
		if c.Final {
			break
		}
	}
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	if n > 0 {
		return nil, fmt.Errorf("%w: data after the final chunk", proto.ErrMalformed)
	}
	if !errors.Is(err, io.EOF) {
		return nil, err
	}
	return out, nil
}

// forward sends one attempt to worker c. done reports that the relay is
// over, with err its result: the response started (err is nil), or the
// client went away. When done is false, c failed before its first byte,
// err says why, and the next candidate may be tried.
func (g *Gateway) forward(ctx context.Context, log *slog.Logger, c candidate, fwd, chunks []byte, sink api.Sink, start time.Time, bytesIn int64, attempt int) (done bool, err error) {
	c.w.outstanding.Add(1)
	defer c.w.outstanding.Add(-1)
	// Cancelling ctx on return closes the worker's response if it is still
	// streaming, whatever ended the relay.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.serveURL, io.MultiReader(bytes.NewReader(fwd), bytes.NewReader(chunks)))
	if err != nil {
		return false, fmt.Errorf("building request: %w", err)
	}
	req.ContentLength = int64(len(fwd) + len(chunks))
	req.GetBody = func() (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(fwd), bytes.NewReader(chunks))), nil
	}
	req.Header.Set("Content-Type", proto.MediaTypeForward)
	resp, err := g.client.Do(req)
	if err != nil {
		return attemptFailed(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorDrain))
		return attemptFailed(ctx, fmt.Errorf("worker answered status %d", resp.StatusCode))
	}

	buf := make([]byte, relayBufSize)
	var n int
	for n == 0 && err == nil {
		n, err = resp.Body.Read(buf)
	}
	if n == 0 {
		if errors.Is(err, io.EOF) {
			err = errors.New("worker response empty")
		}
		return attemptFailed(ctx, fmt.Errorf("reading first byte: %w", err))
	}
	ttfb := time.Since(start)

	// The first byte is in hand: from here on there is no failover.
	if err := sink.Start(c.w.id); err != nil {
		log.InfoContext(ctx, "relay abandoned: starting the response failed", slog.String("worker", c.w.id), slog.Any("err", err))
		return true, nil
	}
	var bytesOut int64
	status := "complete"
	for {
		if n > 0 {
			if _, werr := sink.Write(buf[:n]); werr != nil {
				status = "client_gone"
				break
			}
			if ferr := sink.Flush(); ferr != nil {
				status = "client_gone"
				break
			}
			bytesOut += int64(n)
		}
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
			case ctx.Err() != nil:
				status = "client_gone"
			default:
				status = "worker_stream_broken"
				log.WarnContext(ctx, "worker stream broke after its first byte; ending the response", slog.String("worker", c.w.id), slog.Any("err", err))
			}
			break
		}
		n, err = resp.Body.Read(buf)
	}
	log.InfoContext(ctx, "relayed",
		slog.String("worker", c.w.id), slog.String("status", status), slog.Int("attempt", attempt),
		slog.Int64("bytes_in", bytesIn), slog.Int64("bytes_out", bytesOut),
		slog.Duration("ttfb", ttfb), slog.Duration("duration", time.Since(start)))
	return true, nil
}

// attemptFailed ends an attempt that failed before its first byte: the
// relay goes on with the next candidate unless the client's context is
// over, in which case there is nobody to answer.
func attemptFailed(ctx context.Context, err error) (bool, error) {
	// forward's own cancel has not run yet, so a done ctx means the
	// client's request was cancelled.
	if ctx.Err() != nil {
		return true, api.Wrap(api.Unavailable, "request cancelled", err)
	}
	return false, err
}
