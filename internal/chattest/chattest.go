// Package chattest is a TEST DOUBLE of a chat inference backend: an
// enclave.Backend that serves the chat task with a deterministic reply,
// streamed in several pieces, so that the SDK, the CLI and the
// OpenAI-compatible proxy can be tested end to end through a real gateway
// and real workers without a model. It is not a model and not the
// worker's `openai` backend; nothing outside tests uses it.
//
// The reply to a conversation is "Sealed reply:" followed by the words of
// its last user message in upper case, one piece per word (Reply). A
// last user message that contains a command word changes what the double
// does: "[[fail]]" fails the task with a bad_request error before any
// output, and "[[stall]]" sends the first piece and then waits, emitting
// nothing more, until the request's context ends.
package chattest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/proto"
)

// Command words of the last user message.
const (
	Fail  = "[[fail]]"
	Stall = "[[stall]]"
)

// DefaultModel is the model the double answers as when a request names
// none.
const DefaultModel = "chattest-echo"

// Double is the test double. Its zero value serves any model.
type Double struct {
	// Models, when not empty, are the only models it serves; a request
	// for another fails with the task error code "model_not_found".
	Models []string

	mu   sync.Mutex    // guards gate
	gate chan struct{} // when set, each piece after the first waits for a receive
}

var _ enclave.Backend = (*Double)(nil)

// Lockstep makes every later reply wait, before each piece after its
// first, until a value is received from gate (or the request's context
// ends, or a minute passes, which fails the task): a test that releases
// the next piece only once it has seen the previous one proves the
// pieces stream through rather than arrive together. Nil turns it off.
func (d *Double) Lockstep(gate chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gate = gate
}

// Tasks returns the chat task.
func (d *Double) Tasks() []string { return []string{proto.TaskChat} }

// Reply returns the pieces of the double's reply to req, before any
// max_tokens cut.
func Reply(req proto.ChatRequest) []string {
	var last string
	for _, m := range req.Messages {
		if m.Role == proto.RoleUser {
			last = m.Content
		}
	}
	pieces := []string{"Sealed", " reply:"}
	for _, w := range strings.Fields(last) {
		pieces = append(pieces, " "+strings.ToUpper(w))
	}
	return pieces
}

// Serve answers a chat request.
func (d *Double) Serve(ctx context.Context, task string, payload []byte, emit func(string) error) (proto.EndBody, error) {
	if task != proto.TaskChat {
		return proto.EndBody{}, &enclave.TaskError{Code: "unsupported_task", Message: fmt.Sprintf("task %q is not served by the chat test double", task)}
	}
	var req proto.ChatRequest
	if err := proto.DecodeTask(payload, &req); err != nil || len(req.Messages) == 0 {
		return proto.EndBody{}, &enclave.TaskError{Code: "bad_request", Message: "chat payload does not decode"}
	}
	model := req.Model
	if model == "" {
		model = DefaultModel
	}
	if len(d.Models) > 0 && !slices.Contains(d.Models, model) {
		return proto.EndBody{}, &enclave.TaskError{Code: "model_not_found", Message: "the chat test double does not serve that model"}
	}
	last := req.Messages[len(req.Messages)-1].Content
	if strings.Contains(last, Fail) {
		return proto.EndBody{}, &enclave.TaskError{Code: "bad_request", Message: "the chat test double was told to fail"}
	}
	pieces := Reply(req)
	if req.MaxTokens > 0 && len(pieces) > req.MaxTokens {
		pieces = pieces[:req.MaxTokens]
	}
	d.mu.Lock()
	gate := d.gate
	d.mu.Unlock()
	for i, p := range pieces {
		if i > 0 && gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return proto.EndBody{}, ctx.Err()
			case <-time.After(time.Minute):
				return proto.EndBody{}, &enclave.TaskError{Code: "internal", Message: "the chat test double waited a minute for its lockstep release"}
			}
		}
		if err := emit(p); err != nil {
			return proto.EndBody{}, err
		}
		if i == 0 && strings.Contains(last, Stall) {
			<-ctx.Done()
			return proto.EndBody{}, ctx.Err()
		}
	}
	var in int64
	for _, m := range req.Messages {
		in += int64(len(strings.Fields(m.Content)))
	}
	return proto.EndBody{Backend: "chattest", Model: model, InputUnits: in, OutputUnits: int64(len(pieces))}, nil
}
