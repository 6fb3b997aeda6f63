package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/seal"
)

// OpenAI's error types.
const (
	typeInvalidRequest = "invalid_request_error"
	typeAuthentication = "authentication_error"
	typePermission     = "permission_error"
	typeRateLimit      = "rate_limit_error"
	typeServer         = "server_error"
)

// apiError is an answer in OpenAI's error shape.
type apiError struct {
	status     int
	typ        string
	code       string
	param      string
	msg        string
	retryAfter time.Duration // > 0: sent as Retry-After, in whole seconds
	err        error         // the cause, for the log only
}

// errorBody is OpenAI's error JSON.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

func (e *apiError) body() errorBody {
	d := errorDetail{Message: e.msg, Type: e.typ, Code: e.code}
	if e.param != "" {
		d.Param = &e.param
	}
	return errorBody{Error: d}
}

func badRequest(code, param, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: typeInvalidRequest, code: code, param: param, msg: fmt.Sprintf(format, args...)}
}

// writeError answers e as JSON with its status.
func (p *Proxy) writeError(w http.ResponseWriter, rec *record, e *apiError) {
	rec.code, rec.err = e.code, e.err
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.retryAfter.Seconds()))))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(e.body())
}

// errorFor maps an error of the SDK (or of the request's context) to the
// answer the caller gets. It is the one place that does. Messages carry
// no prompt or completion: the SDK's errors never quote them, and text
// that came from the gateway or a worker is already sanitized by the SDK
// or here.
func errorFor(err error) *apiError {
	var (
		reqErr  *client.RequestError
		noCand  *client.NoCandidateError
		auth    *client.AuthError
		limited *client.RateLimitedError
		over    *client.OverloadedError
		task    *client.TaskError
		gwErr   *client.GatewayError
	)
	e := &apiError{err: err}
	switch {
	case errors.As(err, &reqErr):
		e.status, e.typ, e.code, e.param, e.msg = http.StatusBadRequest, typeInvalidRequest, "invalid_value", reqErr.Field, err.Error()
	case errors.As(err, &noCand) && noCand.Model != "":
		e.status, e.typ, e.code, e.param = http.StatusNotFound, typeInvalidRequest, "model_not_found", "model"
		e.msg = fmt.Sprintf("no verified worker serves model %q; GET /v1/models lists those that do", noCand.Model)
	case errors.Is(err, client.ErrNoCandidate):
		e.status, e.typ, e.code = http.StatusServiceUnavailable, typeServer, "no_verified_worker"
		e.msg = "no worker passed verification under the proxy's policy: " + safe(err.Error(), 400)
	case errors.As(err, &auth):
		e.status, e.typ, e.code, e.msg = http.StatusUnauthorized, typeAuthentication, "gateway_refused_credential", "the gateway refused the proxy's tenant credential"
		if auth.Status == http.StatusForbidden {
			e.status, e.typ, e.code, e.msg = http.StatusForbidden, typePermission, "gateway_forbidden", "the gateway forbids this to the proxy's tenant credential"
		}
	case errors.As(err, &limited):
		e.status, e.typ, e.code, e.retryAfter = http.StatusTooManyRequests, typeRateLimit, "rate_limit_exceeded", limited.RetryAfter
		e.msg = "the gateway rate-limits this tenant; retry after " + limited.RetryAfter.String()
	case errors.As(err, &over):
		e.status, e.typ, e.code, e.retryAfter = http.StatusServiceUnavailable, typeServer, "overloaded", over.RetryAfter
		e.msg = "the gateway is overloaded; retry after " + over.RetryAfter.String()
	case errors.Is(err, client.ErrTruncated):
		e.status, e.typ, e.code, e.msg = http.StatusBadGateway, typeServer, "truncated", "the worker's sealed reply stopped before its end; no partial answer is given"
	case errors.Is(err, seal.ErrAuthentication), errors.Is(err, seal.ErrTrailingData), errors.Is(err, seal.ErrNotCandidate), errors.Is(err, seal.ErrTruncated):
		e.status, e.typ, e.code, e.msg = http.StatusBadGateway, typeServer, "integrity_failure", "the sealed reply failed its integrity checks"
	case errors.Is(err, client.ErrModel):
		e.status, e.typ, e.code, e.msg = http.StatusBadGateway, typeServer, "model_mismatch", "the answering model does not match the worker's verified evidence: "+safe(err.Error(), 400)
	case errors.As(err, &task):
		e.status, e.typ, e.code = taskStatus(task.Code), typeServer, safe(task.Code, 64)
		if e.status < 500 {
			e.typ = typeInvalidRequest
		}
		e.msg = "the worker refused the task: " + safe(task.Message, 400)
	case errors.As(err, &gwErr):
		e.status, e.typ, e.code = http.StatusBadGateway, typeServer, "gateway_error"
		if gwErr.Status == http.StatusRequestEntityTooLarge {
			e.status, e.typ, e.code = http.StatusRequestEntityTooLarge, typeInvalidRequest, "request_too_large"
		}
		e.msg = fmt.Sprintf("the gateway answered %d %s", gwErr.Status, safe(gwErr.Code, 64))
	case errors.Is(err, context.DeadlineExceeded):
		e.status, e.typ, e.code, e.msg = http.StatusGatewayTimeout, typeServer, "timeout", "no complete answer within the proxy's request timeout"
	case errors.Is(err, context.Canceled):
		e.status, e.typ, e.code, e.msg = 499, typeServer, "client_closed", "the caller went away" // nobody reads it
	default:
		e.status, e.typ, e.code, e.msg = http.StatusBadGateway, typeServer, "gateway_unreachable", "the proxy could not complete the call to the gateway; see its log"
	}
	return e
}

// taskStatus maps a worker's task error code to a status: the caller's
// mistakes are 4xx, the worker's failures 5xx.
func taskStatus(code string) int {
	switch code {
	case "bad_request", "unsupported_task", "invalid_request":
		return http.StatusBadRequest
	case "model_not_found", "unknown_model":
		return http.StatusNotFound
	case "too_large":
		return http.StatusRequestEntityTooLarge
	case "deadline", "timeout":
		return http.StatusGatewayTimeout
	case "overloaded", "backend_unavailable":
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

// safe makes untrusted text fit for a message: printable characters only,
// at most max bytes.
func safe(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
	return clip(s, max)
}

// clip cuts s to at most max bytes, on a rune boundary.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}

// headerValue makes untrusted text fit for a header: printable ASCII
// only, at most 128 bytes.
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return -1
		}
		return r
	}, s)
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}
