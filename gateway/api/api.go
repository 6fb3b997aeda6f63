// Package api is the contract between the gateway's domain (package
// gateway) and its transport adapter (package httpapi): the error codes the
// domain returns and the sink a relayed response streams into. It exists so
// that both can import it without an import cycle: package gateway builds
// its HTTP handler with httpapi, and httpapi must not import gateway.
//
// An *Error carries two texts: Message, short and safe to show a client,
// and Err, the detail that goes to the log only. The HTTP status of each
// Code is decided in one place, package httpapi.
package api

import (
	"errors"
	"time"
)

// Code classifies a failure for the caller. Codes are stable: clients
// branch on them. A Code is also an error, so that errors.Is(err,
// api.BadChallenge) matches any *Error with that code.
type Code string

// The codes the gateway returns. Each line names its HTTP status.
const (
	BadRequest           Code = "bad_request"            // 400: malformed or invalid input
	Unauthorized         Code = "unauthorized"           // 401: missing or unknown credential
	Forbidden            Code = "forbidden"              // 403: a valid credential of the wrong role
	RateLimited          Code = "rate_limited"           // 429 with Retry-After: the tenant's limit
	Exists               Code = "exists"                 // 409: an account or pool with that id exists
	EndorsementRefused   Code = "endorsement_refused"    // 403: the provider's endorsement does not verify
	TooLarge             Code = "too_large"              // 413: a body over its limit
	RequestTimeout       Code = "request_timeout"        // 408: the body did not arrive within the read timeout
	UnsupportedMediaType Code = "unsupported_media_type" // 415: wrong Content-Type
	BadChallenge         Code = "bad_challenge"          // 403: unknown, used or expired nonce
	AttestationRefused   Code = "attestation_refused"    // 403: evidence refused by the admission policy
	KeyConflict          Code = "key_conflict"           // 409: a key id already routes to another worker
	UnknownCandidates    Code = "unknown_candidates"     // 422: no candidate key belongs to an admitted worker
	UpstreamFailed       Code = "upstream_failed"        // 502: every candidate failed before its first byte
	Overloaded           Code = "overloaded"             // 503 with Retry-After: try again later
	Unavailable          Code = "unavailable"            // 503: the gateway is shutting down
	NotFound             Code = "not_found"              // 404: no such route
	MethodNotAllowed     Code = "method_not_allowed"     // 405: route exists, method does not
	Internal             Code = "internal"               // 500: a bug or a failed dependency
)

// Role is what a credential may do.
type Role string

// The roles. Each endpoint accepts exactly one.
const (
	RoleAdmin    Role = "admin"    // the operator: accounts, pools, status
	RoleProvider Role = "provider" // a GPU owner: its key, its nodes' enrollment
	RoleTenant   Role = "tenant"   // a buyer: candidates, requests, evidence, its pools
)

// Principal is the authenticated caller of a domain call.
type Principal struct {
	Role Role
	// ID is the provider's or tenant's id; empty for the admin.
	ID string
}

// Error returns the code itself.
func (c Code) Error() string { return string(c) }

// Error is a failure the gateway reports to a client.
type Error struct {
	// Code classifies the failure.
	Code Code
	// Message is short, safe text for the client. It never quotes a
	// request body or an internal error.
	Message string
	// RetryAfter, for Overloaded, says when to try again. Zero means the
	// adapter's default.
	RetryAfter time.Duration
	// Err is the cause, for the log only. It may be nil.
	Err error
}

// New returns an *Error without a cause.
func New(code Code, message string) *Error { return &Error{Code: code, Message: message} }

// Wrap returns an *Error whose cause, for the log, is err.
func Wrap(code Code, message string, err error) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, code) true when e has that code.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// CodeOf returns the Code of the first *Error in err's chain, or Internal
// when there is none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Sink receives a relayed response. The relay calls Start once, when the
// first byte of a worker's response is in hand, then Write and Flush for
// every piece of the stream. Nothing is sent to the client before Start, so
// the relay may still fail over or return an error until then.
type Sink interface {
	// Start commits the response: success, the sealed-response media type
	// and, for information only, the id of the answering worker.
	Start(workerID string) error
	// Write sends stream bytes.
	Write(p []byte) (int, error)
	// Flush pushes written bytes to the client now.
	Flush() error
}
