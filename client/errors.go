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
	"unicode"

	"github.com/sealgate/sealgate/proto"
)

var (
	// ErrNoCandidate matches every *NoCandidateError.
	ErrNoCandidate = errors.New("no verified candidate")
	// ErrOverloaded matches every *OverloadedError.
	ErrOverloaded = errors.New("gateway overloaded")
	// ErrUnauthorized matches every *AuthError: the gateway refused the
	// credential (401) or the credential may not do this (403).
	ErrUnauthorized = errors.New("gateway refused the credential")
	// ErrRateLimited matches every *RateLimitedError: the tenant's
	// request or byte rate is used up (429).
	ErrRateLimited = errors.New("rate limited by the gateway")
	// ErrTruncated matches every *TruncatedError: the response stream
	// ended before its final sealed chunk.
	ErrTruncated = errors.New("response stream truncated")
	// ErrEndorsement matches every *EndorsementError.
	ErrEndorsement = errors.New("provider endorsement refused")
	// ErrStrictEvidence matches every *StrictEvidenceError.
	ErrStrictEvidence = errors.New("fresh evidence refused")
	// ErrDiversity matches every *DiversityError.
	ErrDiversity = errors.New("candidates lack the provider diversity asked for")
	// ErrModel matches every *ModelError.
	ErrModel = errors.New("answering model does not match the verified evidence")
)

// ModelError: the worker's end event names a model or a model digest
// that its verified evidence does not back, so the answer is refused (no
// text of it is returned by Collect or Do; ChatStream.Deltas ends with
// this error after the deltas that arrived).
type ModelError struct {
	// WorkerID is the worker that answered, as the sealed response proves.
	WorkerID string
	// Model is the model the end event names.
	Model string
	// Found and Want describe the mismatch.
	Found, Want string
}

func (e *ModelError) Error() string {
	return fmt.Sprintf("worker %s answered as model %.80q: found %s, want %s", e.WorkerID, e.Model, e.Found, e.Want)
}

// Is makes ModelError match ErrModel.
func (e *ModelError) Is(target error) bool { return target == ErrModel }

// NoCandidateError: no listed worker passed verification (or none offered
// an acceptable suite). Refusals says why each listed one was refused.
type NoCandidateError struct {
	Refusals []Refusal
	Reason   string
	// Model, when set, is the model the request asked for that no
	// verified worker is listed with.
	Model string
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
// *attestation.Error, *EndorsementError or *StrictEvidenceError among
// them.
func (e *NoCandidateError) Unwrap() []error {
	var out []error
	for _, r := range e.Refusals {
		out = append(out, r.Err)
	}
	return out
}

// DiversityError: the verified candidates come from fewer distinct
// provider keys than Config.MinProviders asks for, so nothing was sealed
// or sent. A gateway that strips candidates to steer requests to one
// provider's machines ends here; so does a network that has too few
// providers for the task.
type DiversityError struct {
	// Found is how many distinct provider keys the verified candidates
	// offering Suite have; Want is Config.MinProviders.
	Found, Want int
	Suite       proto.Suite
	// Refusals are the listed candidates the client refused, with why.
	Refusals []Refusal
}

func (e *DiversityError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "provider diversity: found %d distinct provider keys among the verified candidates offering %v, want at least %d (Config.MinProviders)", e.Found, e.Suite, e.Want)
	for _, r := range e.Refusals {
		fmt.Fprintf(&b, "; %s refused: %v", r.WorkerID, r.Err)
	}
	return b.String()
}

// Is makes DiversityError match ErrDiversity.
func (e *DiversityError) Is(target error) bool { return target == ErrDiversity }

// Unwrap returns the refusal errors, as NoCandidateError does.
func (e *DiversityError) Unwrap() []error {
	var out []error
	for _, r := range e.Refusals {
		out = append(out, r.Err)
	}
	return out
}

// EndorsementError: a candidate's provider endorsement of its attested
// keys is missing, does not verify under the provider key listed with it,
// or is by a key outside Config.TrustedProviders; or the gateway lists the
// candidate under a worker or provider id it could not have admitted. The
// candidate is never sealed to.
type EndorsementError struct {
	// ProviderID is the provider the gateway named (not authenticated).
	ProviderID string
	// Field is what failed: "endorsement", "provider key", "worker id" or
	// "provider id".
	Field string
	// Found and Want describe the failure.
	Found, Want string
}

func (e *EndorsementError) Error() string {
	return fmt.Sprintf("provider endorsement: %s: found %s, want %s", e.Field, e.Found, e.Want)
}

// Is makes EndorsementError match ErrEndorsement.
func (e *EndorsementError) Is(target error) bool { return target == ErrEndorsement }

// StrictEvidenceError: in strict mode, a chosen candidate did not prove
// its listed keys with evidence bound to the client's own nonce: the
// gateway relayed none, the fresh evidence failed verification (Err is
// then the *attestation.Error, a nonce mismatch among them), or it binds
// other keys than the listed evidence. The candidate is never sealed to.
type StrictEvidenceError struct {
	Reason string
	Err    error
}

func (e *StrictEvidenceError) Error() string {
	if e.Err == nil {
		return "strict mode: " + e.Reason
	}
	return fmt.Sprintf("strict mode: %s: %v", e.Reason, e.Err)
}

// Is makes StrictEvidenceError match ErrStrictEvidence.
func (e *StrictEvidenceError) Is(target error) bool { return target == ErrStrictEvidence }

// Unwrap returns the verification or gateway error, if any.
func (e *StrictEvidenceError) Unwrap() error { return e.Err }

// OverloadedError: the gateway answered 503; try again after RetryAfter.
type OverloadedError struct{ RetryAfter time.Duration }

func (e *OverloadedError) Error() string {
	return fmt.Sprintf("gateway overloaded; retry after %v", e.RetryAfter)
}

// Is makes OverloadedError match ErrOverloaded.
func (e *OverloadedError) Is(target error) bool { return target == ErrOverloaded }

// RateLimitedError: the gateway answered 429 because the tenant's request
// or byte rate is used up; try again after RetryAfter.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("rate limited by the gateway; retry after %v", e.RetryAfter)
}

// Is makes RateLimitedError match ErrRateLimited.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// AuthError: the gateway answered 401 (the credential is missing, wrong
// or revoked) or 403 (it may not do this). The message never contains
// the credential.
type AuthError struct {
	// Status is 401 or 403.
	Status int
	// Code and Message are the gateway's, when it sent them.
	Code    string
	Message string
}

func (e *AuthError) Error() string {
	what := "gateway refused the credential"
	if e.Status == http.StatusForbidden {
		what = "gateway forbids this to the credential"
	}
	if e.Message == "" {
		return fmt.Sprintf("%s (%d %s)", what, e.Status, e.Code)
	}
	return fmt.Sprintf("%s (%d %s): %s", what, e.Status, e.Code, e.Message)
}

// Is makes AuthError match ErrUnauthorized.
func (e *AuthError) Is(target error) bool { return target == ErrUnauthorized }

// TruncatedError: the response stream ended before its final sealed
// chunk, so the answer is incomplete; nothing of it is returned. The
// worker or the gateway failed mid-stream (or the connection broke).
type TruncatedError struct {
	// WorkerID is the candidate that answered, as the sealed response
	// proves; empty if the stream ended before that was known.
	WorkerID string
	// Received is how many bytes of task output had arrived, authenticated,
	// before the stream ended. They are discarded.
	Received int
	// Err is seal.ErrTruncated, or the transport's error when the
	// connection broke.
	Err error
}

func (e *TruncatedError) Error() string {
	who := "the response"
	if e.WorkerID != "" {
		who = "the response of worker " + e.WorkerID
	}
	return fmt.Sprintf("%s ended before its final sealed chunk after %d bytes of output: %v", who, e.Received, e.Err)
}

// Is makes TruncatedError match ErrTruncated.
func (e *TruncatedError) Is(target error) bool { return target == ErrTruncated }

// Unwrap returns the cause.
func (e *TruncatedError) Unwrap() error { return e.Err }

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

// gatewayError maps a gateway's error answer to the package's errors. The
// gateway's code and message are untrusted text: they are bounded,
// stripped of control characters and of the credential.
func (c *Client) gatewayError(resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusServiceUnavailable:
		return &OverloadedError{RetryAfter: retryAfter(resp.Header.Get("Retry-After"), c.cfg.Now())}
	case http.StatusTooManyRequests:
		return &RateLimitedError{RetryAfter: retryAfter(resp.Header.Get("Retry-After"), c.cfg.Now())}
	}
	code, msg := "unknown", http.StatusText(resp.StatusCode)
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e proto.ErrorResponse
	if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
		code, msg = c.safeText(e.Error.Code), c.safeText(e.Error.Message)
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return &AuthError{Status: resp.StatusCode, Code: code, Message: msg}
	}
	return &GatewayError{Status: resp.StatusCode, Code: code, Message: msg}
}

// maxGatewayText bounds what of a gateway's error text reaches an error.
const maxGatewayText = 256

// safeText makes untrusted text from the gateway fit for an error
// message: printable characters only, at most maxGatewayText bytes, and
// never the credential (a gateway knows it and could echo it).
func (c *Client) safeText(s string) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
	if c.cfg.Credential != "" { // after stripping, so control characters cannot hide it
		s = strings.ReplaceAll(s, c.cfg.Credential, "[credential]")
	}
	if len(s) > maxGatewayText {
		s = strings.ToValidUTF8(s[:maxGatewayText], "") + "…"
	}
	return s
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3). A missing or unreadable value means one second; a
// date in the past means zero.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return time.Second
	}
	if secs, err := strconv.ParseInt(h, 10, 32); err == nil {
		if secs < 0 {
			return time.Second
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d.Round(time.Second)
		}
		return 0
	}
	return time.Second
}
