package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// ErrInvalidRequest matches every *RequestError.
var ErrInvalidRequest = errors.New("invalid request")

// RequestError: the client refused to send a request it can tell is
// malformed, naming the field, the value found and the value wanted. The
// value is never quoted when it is the user's text.
type RequestError struct {
	Field string
	Found string
	Want  string
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("client: request: %s: found %s, want %s", e.Field, e.Found, e.Want)
}

// Is makes RequestError match ErrInvalidRequest.
func (e *RequestError) Is(target error) bool { return target == ErrInvalidRequest }

// Chat seals req to up to K verified workers that serve the chat task
// (and, when req.Model is set, that the gateway lists as serving that
// model), sends it through the gateway and returns the reply as a stream
// of text deltas. Candidates are listed, verified, endorsed and, in
// strict mode, challenged exactly as for Do.
//
// Chat returns once the answering worker's first sealed chunk has
// arrived and authenticated, so the stream already names the worker. The
// caller must range over Deltas to the end, call Collect, or call Close.
//
// A malformed request fails with a *RequestError before anything is
// sent. req.Model, when set, narrows the candidates to the workers the
// gateway lists with that model; the gateway already knows which workers
// serve which models, so this tells it no more than the candidate key
// ids in the sealed header do.
func (c *Client) Chat(ctx context.Context, req proto.ChatRequest) (*ChatStream, error) {
	if err := checkChat(req); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	return c.start(ctx, proto.TaskChat, payload, req.Model)
}

// checkChat checks what proto.ChatRequest documents. The worker checks
// again; this only spares a round trip and a sealed refusal.
func checkChat(req proto.ChatRequest) error {
	if n := len(req.Messages); n == 0 || n > proto.MaxChatMessages {
		return &RequestError{Field: "messages", Found: fmt.Sprintf("%d messages", n), Want: fmt.Sprintf("1 to %d", proto.MaxChatMessages)}
	}
	for i, m := range req.Messages {
		switch m.Role {
		case proto.RoleSystem, proto.RoleUser, proto.RoleAssistant:
		default:
			return &RequestError{Field: fmt.Sprintf("messages[%d].role", i), Found: fmt.Sprintf("%.16q", m.Role), Want: "system, user or assistant"}
		}
		if !utf8.ValidString(m.Content) {
			return &RequestError{Field: fmt.Sprintf("messages[%d].content", i), Found: "invalid UTF-8", Want: "UTF-8 text"}
		}
	}
	if last := req.Messages[len(req.Messages)-1].Role; last != proto.RoleUser {
		return &RequestError{Field: "messages", Found: "a last message from " + last, Want: "the conversation to end with a user message"}
	}
	if req.Model != "" {
		if !modelName(req.Model) {
			return &RequestError{Field: "model", Found: fmt.Sprintf("%.40q", req.Model), Want: fmt.Sprintf("1 to %d bytes of printable ASCII other than space and comma", proto.MaxModelName)}
		}
	}
	if req.MaxTokens < 0 {
		return &RequestError{Field: "max_tokens", Found: fmt.Sprint(req.MaxTokens), Want: "zero (the worker's default) or more"}
	}
	if t := req.Temperature; t != nil && (math.IsNaN(*t) || *t < 0 || *t > 2) {
		return &RequestError{Field: "temperature", Found: fmt.Sprint(*t), Want: "0 to 2"}
	}
	return nil
}

// modelName reports whether name can name a model as workers list them:
// 1 to proto.MaxModelName bytes of printable ASCII other than space and
// comma.
func modelName(name string) bool {
	if name == "" || len(name) > proto.MaxModelName {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == ',' {
			return false
		}
	}
	return true
}

// ChatStream is a task's reply arriving from the worker that answered, as
// text deltas in the order the worker produced them. Each delta has been
// authenticated as that worker's, for this request, before it is
// returned. It is not safe for concurrent use.
type ChatStream struct {
	// Worker is the candidate that answered, as the sealed response
	// proves: its gateway id, verified TEE kind, measurement and evidence
	// hash (BundleHash).
	Worker Worker
	// Candidates are the workers the request was sealed to, in listing
	// order; each names its provider.
	Candidates []Worker
	// Refused are the listed candidates the client refused, with why.
	Refused []Refusal
	// RequestID is the request's id, hex.
	RequestID string

	ctx       context.Context
	pinModels bool // the policy pins model digests: the answering model must be bound
	body      *recordingReader
	closer    io.Closer
	resp      *seal.Response
	received  int    // bytes of output authenticated so far
	pending   []byte // the start of a UTF-8 sequence split across events
	read      bool   // a delta has been returned
	ended     bool   // the end event arrived; end is set
	end       proto.EndBody
	err       error // sticky: every later read returns it
}

// errClosed is what a stream closed before its end returns.
var errClosed = errors.New("client: stream closed before its end")

// Deltas returns the reply's text as it arrives, one delta per piece the
// worker emitted. A multi-byte UTF-8 sequence split between two pieces is
// held back until it is whole, so every delta is valid UTF-8 text when the
// worker sent valid text.
//
// A failure ends the sequence with one ("", err) pair: a *TruncatedError
// (ErrTruncated) when the stream stops before its final sealed chunk, a
// *TaskError when the task failed in the worker, a seal error for a
// forged stream, or the context's error. Text already yielded is then an
// incomplete answer: a caller that showed it must say so. When the
// sequence ends without an error, the reply is complete and End returns
// the worker's summary.
//
// Stopping the loop early closes the stream. The sequence can be ranged
// over once; a second range yields nothing, or the error that ended the
// first.
func (s *ChatStream) Deltas() iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for {
			d, err := s.next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield("", err)
				return
			}
			s.read = true
			if !yield(d, nil) {
				s.Close()
				return
			}
		}
	}
}

// End returns the worker's end-of-task summary (backend, model, token
// counts) and true once the reply has arrived whole; before that, or
// after a failure, it returns false.
func (s *ChatStream) End() (proto.EndBody, bool) { return s.end, s.ended && s.err == nil }

// Collect reads the whole reply and returns it as a Result. Like Do, it
// returns no partial text: a stream that stops early fails with a
// *TruncatedError. It must be called instead of ranging over Deltas, not
// after.
func (s *ChatStream) Collect() (*Result, error) {
	defer s.Close()
	if s.read {
		return nil, errors.New("client: Collect called after deltas were read")
	}
	var out strings.Builder
	for d, err := range s.Deltas() {
		if err != nil {
			return nil, err
		}
		out.WriteString(d)
	}
	return &Result{Text: out.String(), Worker: s.Worker, Candidates: s.Candidates, Refused: s.Refused, End: s.end, RequestID: s.RequestID}, nil
}

// Close releases the connection. Closed before its end, the stream stops
// there (the gateway and the worker see the client leave) and every later
// read fails. Close is safe to call more than once and after the end.
func (s *ChatStream) Close() error {
	if s.err == nil && !s.ended {
		s.err = errClosed
	}
	if s.closer != nil {
		s.closer.Close()
		s.closer = nil
	}
	return nil
}

// next returns the next non-empty delta, or io.EOF after the end event.
func (s *ChatStream) next() (string, error) {
	if s.err != nil {
		return "", s.err
	}
	for !s.ended {
		e, err := s.resp.Next()
		if err != nil {
			return "", s.fail(streamError(s.ctx, err, s.body, s.Worker.ID, s.received))
		}
		switch e.Type {
		case proto.EventData:
			s.received += len(e.Data)
			if d := s.text(e.Data); d != "" {
				return d, nil
			}
		case proto.EventError:
			var eb proto.ErrorBody
			if err := json.Unmarshal(e.Data, &eb); err != nil {
				return "", s.fail(fmt.Errorf("client: worker error event does not decode: %w", err))
			}
			return "", s.fail(&TaskError{Code: eb.Code, Message: eb.Message, WorkerID: s.Worker.ID})
		case proto.EventEnd:
			if err := json.Unmarshal(e.Data, &s.end); err != nil {
				return "", s.fail(fmt.Errorf("client: worker end event does not decode: %w", err))
			}
			if err := checkModel(s.Worker, s.pinModels, s.end); err != nil {
				return "", s.fail(err)
			}
			s.ended = true
			s.closer.Close() // the body is read to its end: seal checked there is nothing after the end event
			s.closer = nil
			if len(s.pending) > 0 { // a worker that ended on a partial sequence: hand it over as it is
				d := string(s.pending)
				s.pending = nil
				return d, nil
			}
		}
	}
	return "", io.EOF
}

// text returns data, after any held-back bytes, less a trailing
// incomplete UTF-8 sequence, which it holds back for the next event.
func (s *ChatStream) text(data []byte) string {
	b := append(s.pending, data...)
	s.pending = nil
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				s.pending = append([]byte(nil), b[i:]...)
				b = b[:i]
			}
			break
		}
	}
	return string(b)
}

// checkModel checks the end event's model against the answering
// worker's verified evidence: the digest the worker names must be the one
// its evidence binds for that model, and, when the policy pins model
// digests, the model must be one the evidence binds.
func checkModel(w Worker, pinned bool, end proto.EndBody) error {
	bound, ok := w.verified.ModelDigest(end.Model)
	switch {
	case ok && end.ModelDigest != proto.FormatModelDigest(bound):
		return &ModelError{WorkerID: w.ID, Model: end.Model, Found: fmt.Sprintf("digest %.80q", end.ModelDigest), Want: proto.FormatModelDigest(bound) + ", the digest its evidence binds"}
	case !ok && end.ModelDigest != "":
		return &ModelError{WorkerID: w.ID, Model: end.Model, Found: fmt.Sprintf("digest %.80q", end.ModelDigest), Want: "none: its evidence binds no digest for this model"}
	case !ok && pinned:
		return &ModelError{WorkerID: w.ID, Model: end.Model, Found: "a model its evidence does not bind", Want: "one of the models its evidence binds, as the policy pins model digests"}
	}
	return nil
}

// fail records err as the stream's end and releases the connection.
func (s *ChatStream) fail(err error) error {
	s.err = err
	if s.closer != nil {
		s.closer.Close()
		s.closer = nil
	}
	return err
}
