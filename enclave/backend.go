package enclave

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"unicode/utf8"

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
		out, err := apertium(ctx, req)
		if err != nil {
			return proto.EndBody{}, err
		}
		if err := emit(out); err != nil {
			return proto.EndBody{}, err
		}
		return proto.EndBody{Backend: "builtin", Model: "apertium-" + req.From + "-" + req.To, InputUnits: int64(len(req.Text)), OutputUnits: int64(len(out))}, nil
	}
	return proto.EndBody{}, &TaskError{Code: "unsupported_task", Message: fmt.Sprintf("task %q is not served by the builtin backend", task)}
}

// apertium translates through the apertium command, one process per
// request. Issue 8 replaces this with a long-lived pipeline.
func apertium(ctx context.Context, req proto.TranslateRequest) (string, error) {
	if !isLang(req.From) || !isLang(req.To) {
		return "", badRequest("language codes must be 2 or 3 lowercase letters (found from=%q to=%q)", clip(req.From), clip(req.To))
	}
	if !utf8.ValidString(req.Text) || strings.TrimSpace(req.Text) == "" {
		return "", badRequest("text is empty")
	}
	path, err := exec.LookPath("apertium")
	if err != nil {
		return "", &TaskError{Code: "backend_unavailable", Message: "translate needs Apertium: install the Debian packages apertium and apertium-" + pairPackage(req.From, req.To)}
	}
	cmd := exec.CommandContext(ctx, path, "-u", req.From+"-"+req.To)
	cmd.Stdin = strings.NewReader(req.Text)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", &TaskError{Code: "backend_unavailable", Message: fmt.Sprintf("apertium has no %s-%s pair installed (Debian package apertium-%s)", req.From, req.To, pairPackage(req.From, req.To))}
	}
	return strings.TrimSpace(string(out)), nil
}

func isLang(s string) bool {
	if len(s) < 2 || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 8 {
		return s[:8] + "…"
	}
	return s
}

// pairPackage names the Debian package for a pair, with ISO 639-3 codes.
func pairPackage(from, to string) string {
	three := map[string]string{"en": "eng", "es": "spa", "ca": "cat", "fr": "fra", "pt": "por", "it": "ita", "de": "deu"}
	f, t := three[from], three[to]
	if f == "" {
		f = from
	}
	if t == "" {
		t = to
	}
	return f + "-" + t
}
