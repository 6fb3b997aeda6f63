package enclave

import (
	"context"
	"errors"
	"fmt"

	"github.com/sealgate/sealgate/enclave/builtin"
	"github.com/sealgate/sealgate/proto"
)

// Backend runs tasks on decrypted payloads.
type Backend interface {
	// Tasks lists the tasks the backend serves.
	Tasks() []string
	// Serve runs one task. It sends output through emit as it is produced
	// and returns the end summary. An error that should reach the client
	// is a *TaskError; any other error is reported to the client as an
	// internal error without detail.
	Serve(ctx context.Context, task string, payload []byte, emit func(text string) error) (proto.EndBody, error)
}

// TaskError is a task failure whose code and message are safe to send to
// the client: they never quote the input.
type TaskError struct {
	Code    string
	Message string
}

func (e *TaskError) Error() string { return e.Code + ": " + e.Message }

func badRequest(format string, args ...any) error {
	return &TaskError{Code: "bad_request", Message: fmt.Sprintf(format, args...)}
}

// Builtin is the CPU-only backend: extractive summarization written in Go,
// and translation through Apertium when it is installed.
type Builtin struct {
	// MaxInputBytes bounds a task's input text. Zero means 1 MiB.
	MaxInputBytes int
	// Translator translates; its owner closes it. Nil means one Apertium
	// shared by the process, with the zero ApertiumConfig: started on
	// first use, its pipelines stop after five idle minutes.
	Translator *Apertium
}

var _ Backend = Builtin{}

// Tasks returns summarize and translate.
func (Builtin) Tasks() []string { return []string{proto.TaskSummarize, proto.TaskTranslate} }

// Serve runs a builtin task.
func (b Builtin) Serve(ctx context.Context, task string, payload []byte, emit func(string) error) (proto.EndBody, error) {
	max := b.MaxInputBytes
	if max == 0 {
		max = 1 << 20
	}
	switch task {
	case proto.TaskSummarize:
		var req proto.SummarizeRequest
		if err := proto.DecodeTask(payload, &req); err != nil {
			return proto.EndBody{}, badRequest("summarize payload does not decode")
		}
		if len(req.Text) > max {
			return proto.EndBody{}, badRequest("text of %d bytes, want at most %d", len(req.Text), max)
		}
		out, err := builtin.Summarize(req.Text, builtin.SummarizeOptions{Sentences: req.Sentences, Ratio: req.Ratio})
		if errors.Is(err, builtin.ErrEmptyInput) {
			return proto.EndBody{}, badRequest("text is empty")
		}
		if err != nil {
			return proto.EndBody{}, &TaskError{Code: "bad_request", Message: err.Error()}
		}
		if err := emit(out); err != nil {
			return proto.EndBody{}, err
		}
		return proto.EndBody{Backend: "builtin", Model: "textrank-extractive-v1", InputUnits: int64(len(req.Text)), OutputUnits: int64(len(out))}, nil
	case proto.TaskTranslate:
		var req proto.TranslateRequest
		if err := proto.DecodeTask(payload, &req); err != nil {
			return proto.EndBody{}, badRequest("translate payload does not decode")
		}
		if len(req.Text) > max {
			return proto.EndBody{}, badRequest("text of %d bytes, want at most %d", len(req.Text), max)
		}
		tr := b.Translator
		if tr == nil {
			tr = sharedApertium()
		}
		out, err := tr.Translate(ctx, req.From, req.To, req.Text)
		if err != nil {
			return proto.EndBody{}, err
		}
		if err := emit(out.Text); err != nil {
			return proto.EndBody{}, err
		}
		return proto.EndBody{Backend: "builtin", Model: "apertium-" + out.Pair, InputUnits: int64(len(req.Text)), OutputUnits: int64(len(out.Text))}, nil
	}
	return proto.EndBody{}, &TaskError{Code: "unsupported_task", Message: fmt.Sprintf("task %q is not served by the builtin backend", task)}
}
