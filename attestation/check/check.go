// Package check holds the verdict vocabulary every attestation package
// shares: the failure Codes and the Error that carries them. It is a leaf
// package so the per-kind verifiers (sim, tdx, snp) and the dispatcher in
// package attestation can all return the same error type; package
// attestation re-exports it.
package check

import (
	"errors"
	"fmt"
)

// Code classifies a verification failure. Codes are stable: tools, audit
// records and CLI exit codes depend on them.
type Code string

// Failure classes.
const (
	CodeMalformed         Code = "malformed"          // the bundle, report or collateral does not parse
	CodeUnknownKind       Code = "unknown_kind"       // a TEE kind this verifier does not know
	CodeSignature         Code = "signature"          // a report or collateral signature does not verify
	CodeChain             Code = "chain"              // a certificate chain does not lead to the pinned root
	CodeRevoked           Code = "revoked"            // a certificate is revoked by a carried CRL, or no CRL where one is required
	CodeCollateralExpired Code = "collateral_expired" // a certificate, CRL, TCB info or QE identity is not valid at the verification time
	CodePolicy            Code = "policy"             // a verified field is not allowed by policy
	CodeBinding           Code = "binding"            // REPORT_DATA does not bind the bundle
	CodeStale             Code = "stale"              // the evidence is older than policy allows, or its time anchor is missing or bad
	CodeOptions           Code = "options"            // the caller's options are unusable
)

// Codes lists every code, in a stable order.
func Codes() []Code {
	return []Code{CodeMalformed, CodeUnknownKind, CodeSignature, CodeChain, CodeRevoked, CodeCollateralExpired, CodePolicy, CodeBinding, CodeStale, CodeOptions}
}

// Error is a verification failure.
type Error struct {
	Code  Code
	Field string // the checked field, such as "report_data" or "mrtd"
	Found string // the value found, short and printable
	Want  string // the value wanted
	Err   error  // an underlying cause, when there is one
}

func (e *Error) Error() string {
	s := fmt.Sprintf("attestation %s: %s", e.Code, e.Field)
	if e.Found != "" || e.Want != "" {
		s += fmt.Sprintf(": found %s, want %s", e.Found, e.Want)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Fail returns an *Error.
func Fail(code Code, field, found, want string) *Error {
	return &Error{Code: code, Field: field, Found: found, Want: want}
}

// Wrap returns an *Error with a cause.
func Wrap(code Code, field string, err error) *Error {
	return &Error{Code: code, Field: field, Err: err}
}

// CodeOf returns the Code of err, or "" if err is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
