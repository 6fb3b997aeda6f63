package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// ErrNoCandidate matches every *NoCandidateError.
var ErrNoCandidate = errors.New("no verified candidate")

// ErrOverloaded matches every *OverloadedError.
var ErrOverloaded = errors.New("gateway overloaded")

// NoCandidateError: no listed worker passed verification (or none offered
// an acceptable suite). Refusals says why each listed one was refused.
type NoCandidateError struct {
	Refusals []Refusal
	Reason   string
}

func (e *NoCandidateError) Error() string {
	var b strings.Builder
	b.WriteString("no verified candidate")
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	if len(e.Refusals) == 0 && e.Reason == "" {
		b.WriteString(": the gateway listed no worker for this task")
	}
	for _, r := range e.Refusals {
		fmt.Fprintf(&b, "; %s refused: %v", r.WorkerID, r.Err)
	}
	return b.String()
}

// Is makes NoCandidateError match ErrNoCandidate.
func (e *NoCandidateError) Is(target error) bool { return target == ErrNoCandidate }

// Unwrap returns the refusal errors, so errors.As finds an
// *attestation.Error among them.
func (e *NoCandidateError) Unwrap() []error {
	var out []error
	for _, r := range e.Refusals {
		out = append(out, r.Err)
	}
	return out
}

// OverloadedError: the gateway answered 503; try again after RetryAfter.
type OverloadedError struct{ RetryAfter time.Duration }

func (e *OverloadedError) Error() string {
	return fmt.Sprintf("gateway overloaded; retry after %v", e.RetryAfter)
}

// Is makes OverloadedError match ErrOverloaded.
func (e *OverloadedError) Is(target error) bool { return target == ErrOverloaded }

// GatewayError is any other error answer from the gateway.
type GatewayError struct {
	Status  int
	Code    string
	Message string
}

func (e *GatewayError) Error() string {
	return fmt.Sprintf("gateway answered %d %s: %s", e.Status, e.Code, e.Message)
}

// TaskError: the worker opened the request but the task failed there.
type TaskError struct {
	Code     string
	Message  string
	WorkerID string
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("task failed on worker %s: %s: %s", e.WorkerID, e.Code, e.Message)
}

func gatewayError(resp *http.Response) error {
	if resp.StatusCode == http.StatusServiceUnavailable {
		secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || secs < 0 {
			secs = 1
		}
		return &OverloadedError{RetryAfter: time.Duration(secs) * time.Second}
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e proto.ErrorResponse
	if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
		return &GatewayError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	return &GatewayError{Status: resp.StatusCode, Code: "unknown", Message: http.StatusText(resp.StatusCode)}
}
