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
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/gateway/breaker"
	"github.com/sealgate/sealgate/gateway/metrics"
	"github.com/sealgate/sealgate/gateway/ratelimit"
	"github.com/sealgate/sealgate/proto"
)

// retryRelay is the Retry-After of an overloaded relay.
const retryRelay = time.Second

// relayBufSize is the size of one read from a worker's response; each read
// is written and flushed to the client as it arrives.
const relayBufSize = 32 << 10

// relayBufs recycles the relayBufSize buffers responses are copied
// through: one per relay would be the gateway's largest allocation.
var relayBufs = sync.Pool{New: func() any { return new([relayBufSize]byte) }}

// maxErrorDrain bounds how much of a failed worker response is read
// before its connection is closed, so the connection can be reused.
const maxErrorDrain = 4 << 10

// Relay reads a sealed request from body (the client's preamble, then its
// chunks, to the end), picks the admitted workers among its candidates,
// least loaded first, and forwards it to them in turn until one answers
// with a first response byte; that worker's response is streamed into
// sink. It returns an error only before sink.Start; once the response has
// started, a broken stream just ends it, and Relay returns nil.
func (g *Gateway) Relay(ctx context.Context, cred string, body io.Reader, sink api.Sink) error {
	if err := g.life.enter(); err != nil {
		return err
	}
	defer g.life.leave()
	p, err := g.require(ctx, cred, api.RoleTenant)
	if err != nil {
		return err
	}
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
		g.metrics.RequestDone("", metrics.OutcomeRefused, time.Since(start))
		return bodyError("malformed request preamble", err)
	}
	chunks, err := readChunks(body)
	if err != nil {
		g.metrics.RequestDone("", metrics.OutcomeRefused, time.Since(start))
		return bodyError("malformed request body", err)
	}
	h := pre.Header
	log := g.log.With(
		slog.String("request_id", hex.EncodeToString(h.RequestID[:])),
		slog.String("tenant", p.ID),
		slog.String("task", h.Task),
		slog.Int("candidates", len(h.Candidates)),
	)
	bytesIn := int64(8 + len(pre.HeaderBytes) + len(pre.Wraps)*proto.WrapSize + len(chunks))
	if err := g.rateLimit(p, bytesIn); err != nil {
		g.metrics.RequestDone(h.Task, metrics.OutcomeRateLimited, time.Since(start))
		log.InfoContext(ctx, "relay refused: tenant rate limit", slog.Int64("bytes_in", bytesIn))
		return err
	}
	cands, full := g.reg.route(h.Candidates, p.ID, g.cfg.Now())
	if len(cands) == 0 {
		if full {
			g.metrics.RequestDone(h.Task, metrics.OutcomeOverloaded, time.Since(start))
			log.InfoContext(ctx, "relay refused: no candidate has capacity")
			return &api.Error{Code: api.Overloaded, Message: "no candidate worker has capacity", RetryAfter: retryRelay}
		}
		g.metrics.RequestDone(h.Task, metrics.OutcomeUnknownCandidates, time.Since(start))
		log.InfoContext(ctx, "relay refused: no candidate key belongs to a routable worker")
		return api.New(api.UnknownCandidates, "none of the request's candidate keys belongs to a worker you can be routed to")
	}

	tried := 0
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			g.metrics.RequestDone(h.Task, metrics.OutcomeClientGone, time.Since(start))
			log.InfoContext(ctx, "relay abandoned: client gone", slog.Int("attempts", tried))
			return api.Wrap(api.Unavailable, "request cancelled", err)
		}
		if !c.w.breaker.Allow() {
			continue
		}
		if tried > 0 {
			g.metrics.Failover()
		}
		tried++
		// Room for the chunks too: forward sends the preamble and the
		// chunks as one buffer.
		fwd := proto.AppendForwardPreamble(make([]byte, 0, 8+len(pre.HeaderBytes)+1+proto.WrapSize+len(chunks)), pre.HeaderBytes, c.index, pre.Wraps[c.index])
		done, outcome, err := g.forward(ctx, log, c, fwd, chunks, sink, start, bytesIn, tried)
		if done {
			g.metrics.RequestDone(h.Task, outcome, time.Since(start))
			return err
		}
		log.WarnContext(ctx, "worker failed before its first byte; trying the next candidate",
			slog.String("worker", c.w.id), slog.Int("attempt", tried), slog.Any("err", err))
	}
	if tried == 0 {
		g.metrics.RequestDone(h.Task, metrics.OutcomeOverloaded, time.Since(start))
		return &api.Error{Code: api.Overloaded, Message: "every candidate worker is failing; try again later", RetryAfter: retryRelay}
	}
	g.metrics.RequestDone(h.Task, metrics.OutcomeUpstreamFailed, time.Since(start))
	log.WarnContext(ctx, "relay failed: every candidate failed before its first byte",
		slog.Int("attempts", tried), slog.Duration("duration", time.Since(start)))
	return api.New(api.UpstreamFailed, "every candidate worker failed")
}

// noLimit is the unlimited rate.
var noLimit = ratelimit.Limit{}

// rateLimit takes one request and n bytes from the tenant's buckets.
func (g *Gateway) rateLimit(p principal, n int64) error {
	l := p.limits
	res := g.limits.Allow(p.ID,
		ratelimit.Limit{PerSecond: l.RequestsPerSecond, Burst: float64(l.BurstRequests)},
		ratelimit.Limit{PerSecond: float64(l.BytesPerSecond), Burst: float64(l.BurstBytes)}, n)
	switch {
	case res.OK:
		return nil
	case res.TooLarge:
		return api.New(api.TooLarge, "request larger than your byte burst")
	}
	g.metrics.RateLimited()
	return &api.Error{Code: api.RateLimited, Message: "rate limit reached", RetryAfter: res.RetryAfter}
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
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return api.Wrap(api.RequestTimeout, "request body not received within the read timeout", err)
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
func (g *Gateway) forward(ctx context.Context, log *slog.Logger, c candidate, fwd, chunks []byte, sink api.Sink, start time.Time, bytesIn int64, attempt int) (done bool, outcome metrics.Outcome, err error) {
	g.metrics.WorkerOutstanding(c.w.id, int(c.w.outstanding.Add(1)))
	defer func() { g.metrics.WorkerOutstanding(c.w.id, int(c.w.outstanding.Add(-1))) }()
	if c.unpooled {
		g.reg.unpooledOutstanding.Add(1)
		defer g.reg.unpooledOutstanding.Add(-1)
	}
	if c.pool != nil {
		c.pool.inUse.Add(1)
		defer c.pool.inUse.Add(-1)
		if c.slot {
			c.pool.slotUse.Add(1)
			defer c.pool.slotUse.Add(-1)
		}
	}
	// Cancelling ctx on return closes the worker's response if it is still
	// streaming, whatever ended the relay.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The body is one in-memory buffer (fwd has room for the chunks, and
	// is this attempt's own), so net/http sets ContentLength and GetBody
	// and writes the request line, headers and body together, rather
	// than flushing the headers before a body it cannot see the end of.
	body := append(fwd, chunks...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.serveURL, bytes.NewReader(body))
	if err != nil {
		return false, "", fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", proto.MediaTypeForward)
	resp, err := c.client.Do(req)
	if err != nil {
		return g.attemptFailed(ctx, c, true, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorDrain))
		// A full worker (503) is healthy; anything else counts against
		// its breaker.
		return g.attemptFailed(ctx, c, resp.StatusCode != http.StatusServiceUnavailable, fmt.Errorf("worker answered status %d", resp.StatusCode))
	}

	bufp := relayBufs.Get().(*[relayBufSize]byte)
	defer relayBufs.Put(bufp)
	buf := bufp[:]
	var n int
	for n == 0 && err == nil {
		n, err = resp.Body.Read(buf)
	}
	if n == 0 {
		if errors.Is(err, io.EOF) {
			err = errors.New("worker response empty")
		}
		return g.attemptFailed(ctx, c, true, fmt.Errorf("reading first byte: %w", err))
	}
	ttfb := time.Since(start)
	g.metrics.WorkerTTFB(c.w.id, ttfb)

	// The first byte is in hand: from here on there is no failover.
	if err := sink.Start(c.w.id); err != nil {
		log.InfoContext(ctx, "relay abandoned: starting the response failed", slog.String("worker", c.w.id), slog.Any("err", err))
		c.w.breaker.Success()
		return true, metrics.OutcomeClientGone, nil
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
	// LogAttrs, unlike InfoContext, does not box its attributes, which
	// would cost one allocation each on every relay, logged or not.
	log.LogAttrs(ctx, slog.LevelInfo, "relayed",
		slog.String("worker", c.w.id), slog.String("status", status), slog.Int("attempt", attempt),
		slog.Int64("bytes_in", bytesIn), slog.Int64("bytes_out", bytesOut),
		slog.Duration("ttfb", ttfb), slog.Duration("duration", time.Since(start)))
	switch status {
	case "worker_stream_broken":
		c.w.breaker.Failure()
		g.noteBreaker(c.w)
		return true, metrics.OutcomeTruncated, nil
	case "client_gone":
		c.w.breaker.Success()
		return true, metrics.OutcomeClientGone, nil
	}
	c.w.breaker.Success()
	g.noteBreaker(c.w)
	return true, metrics.OutcomeOK, nil
}

// attemptFailed ends an attempt that failed before its first byte: the
// relay goes on with the next candidate unless the client's context is
// over, in which case there is nobody to answer. unhealthy counts the
// failure against the worker's breaker.
func (g *Gateway) attemptFailed(ctx context.Context, c candidate, unhealthy bool, err error) (bool, metrics.Outcome, error) {
	// forward's own cancel has not run yet, so a done ctx means the
	// client's request was cancelled.
	if ctx.Err() != nil {
		return true, metrics.OutcomeClientGone, api.Wrap(api.Unavailable, "request cancelled", err)
	}
	if unhealthy {
		c.w.breaker.Failure()
	} else {
		c.w.breaker.Success()
	}
	g.noteBreaker(c.w)
	return false, "", err
}

// noteBreaker publishes a worker's breaker state.
func (g *Gateway) noteBreaker(w *worker) {
	g.metrics.BreakerState(w.id, w.breaker.State() == breaker.Open)
}
