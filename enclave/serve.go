package enclave

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// serve handles one forwarded request: open it under the current or the
// previous key generation, run the task, stream the sealed result.
func (w *Worker) serve(rw http.ResponseWriter, r *http.Request) {
	start := w.cfg.Now()
	select {
	case w.sem <- struct{}{}:
		defer func() { <-w.sem }()
	default:
		rw.Header().Set("Retry-After", "1")
		writeError(rw, http.StatusServiceUnavailable, "overloaded", "worker is at capacity")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), w.cfg.RequestTimeout)
	defer cancel()

	if r.ContentLength > maxForwardBody {
		writeError(rw, http.StatusRequestEntityTooLarge, "too_large", "request body too large")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxForwardBody))
	if err != nil {
		writeBodyError(rw, err)
		return
	}
	liftReadDeadline(rw)
	opened, err := w.open(body)
	if err != nil {
		status, code := openErrorStatus(err)
		w.log.LogAttrs(ctx, slog.LevelWarn, "refused request", slog.String("reason", code), slog.Int("status", status), slog.Int("bytes", len(body)))
		writeError(rw, status, code, openErrorMessage(code))
		return
	}
	log := w.log.With(slog.String("request_id", hex.EncodeToString(opened.Header.RequestID[:])), slog.String("task", opened.Header.Task))

	flusher := http.NewResponseController(rw)
	rw.Header().Set("Content-Type", proto.MediaTypeResponse)
	rw.WriteHeader(http.StatusOK)
	resp, err := opened.NewResponseWriter(rw, flusher.Flush, w.cfg.FlushInterval)
	if err != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "client connection lost before the response header")
		return
	}
	var outBytes int
	var end proto.EndBody
	if max := w.inputLimit(opened.Header.Task); max > 0 && len(opened.Payload) > max {
		err = &TaskError{Code: "too_large", Message: fmt.Sprintf("the %s input of %d bytes exceeds this worker's limit of %d bytes", opened.Header.Task, len(opened.Payload), max)}
	} else {
		end, err = w.cfg.Backend.Serve(ctx, opened.Header.Task, opened.Payload, func(text string) error {
			outBytes += len(text)
			return resp.WriteEvent(proto.Event{Type: proto.EventData, Data: []byte(text)})
		})
		// The digest is the one the evidence binds for the model named,
		// whatever the backend put there.
		end.ModelDigest = w.modelDigest(end.Model)
	}
	var final proto.Event
	outcome := "ok"
	if err != nil {
		var te *TaskError
		body := proto.ErrorBody{Code: "internal", Message: "the task failed inside the worker"}
		if errors.As(err, &te) {
			body = proto.ErrorBody{Code: te.Code, Message: te.Message}
		}
		if ctx.Err() != nil {
			body = proto.ErrorBody{Code: "deadline", Message: "the task did not finish within the worker's request timeout"}
		}
		outcome = body.Code
		data, _ := json.Marshal(body)
		final = proto.Event{Type: proto.EventError, Data: data}
	} else {
		data, _ := json.Marshal(end)
		final = proto.Event{Type: proto.EventEnd, Data: data}
	}
	if err := resp.Finish(final); err != nil {
		resp.Abort()
		outcome = "connection_lost"
	}
	log.LogAttrs(ctx, slog.LevelInfo, "served request",
		slog.String("outcome", outcome),
		slog.Int("payload_bytes", len(opened.Payload)),
		slog.Int("output_bytes", outBytes),
		slog.Duration("duration", w.cfg.Now().Sub(start)))
}

// open tries the current generation, the previous one, then the one
// whose registration is in flight.
func (w *Worker) open(body []byte) (*seal.Opened, error) {
	w.mu.Lock()
	gens := []*generation{w.current, w.prev, w.pending}
	w.mu.Unlock()
	err := seal.ErrUnknownKey
	for _, g := range gens {
		if g == nil {
			continue
		}
		var o *seal.Opened
		if o, err = g.opener.Open(bytes.NewReader(body)); !errors.Is(err, seal.ErrUnknownKey) {
			return o, err
		}
	}
	return nil, err
}

// openErrorStatus maps a refusal to an HTTP status and code. The gateway
// fails over on 421 and 5xx.
func openErrorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, seal.ErrUnknownKey):
		return http.StatusMisdirectedRequest, "unknown_key"
	case errors.Is(err, seal.ErrReplay):
		return http.StatusConflict, "replay"
	case errors.Is(err, seal.ErrReplayCacheFull):
		return http.StatusServiceUnavailable, "overloaded"
	case errors.Is(err, seal.ErrStale):
		return http.StatusBadRequest, "stale"
	case errors.Is(err, seal.ErrSuite):
		return http.StatusBadRequest, "suite"
	case errors.Is(err, seal.ErrAuthentication):
		return http.StatusBadRequest, "authentication"
	case errors.Is(err, seal.ErrTruncated), errors.Is(err, seal.ErrTrailingData), errors.Is(err, proto.ErrMalformed):
		return http.StatusBadRequest, "bad_request"
	}
	return http.StatusInternalServerError, "internal"
}

func openErrorMessage(code string) string {
	switch code {
	case "unknown_key":
		return "request is not sealed to a current key of this worker"
	case "replay":
		return "request id already served"
	case "overloaded":
		return "worker cannot accept more requests now"
	case "stale":
		return "request timestamp outside the accepted window"
	case "suite":
		return "hpke suite not acceptable"
	case "authentication":
		return "sealed request failed authentication"
	case "bad_request":
		return "sealed request is malformed"
	}
	return "internal error"
}

// writeBodyError answers a request whose body could not be read.
func writeBodyError(rw http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(rw, http.StatusRequestEntityTooLarge, "too_large", "request body too large")
	case errors.Is(err, os.ErrDeadlineExceeded):
		writeError(rw, http.StatusRequestTimeout, "request_timeout", "request body not received within the read timeout")
	default:
		writeError(rw, http.StatusBadRequest, "bad_request", "request body could not be read")
	}
}

// liftReadDeadline lifts the body read deadline once a body has been read
// to its end: net/http then watches the connection for the peer going
// away, and a deadline passing during a long answer would end it.
func liftReadDeadline(rw http.ResponseWriter) {
	http.NewResponseController(rw).SetReadDeadline(time.Time{})
}

func writeError(rw http.ResponseWriter, status int, code, msg string) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	json.NewEncoder(rw).Encode(proto.ErrorResponse{Error: proto.ErrorBody{Code: code, Message: msg}})
}
