package proto

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every parse error in this package: the input is
// not a canonical encoding of the type being parsed.
var ErrMalformed = errors.New("malformed")

// FieldError says which field of which structure failed to parse, and why.
type FieldError struct {
	// Struct names the structure being parsed, such as "header".
	Struct string
	// Field names the field, such as "candidate count".
	Field string
	// Problem says what was wrong: the value found and the value wanted.
	Problem string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("malformed %s: %s: %s", e.Struct, e.Field, e.Problem)
}

// Unwrap makes every FieldError match ErrMalformed.
func (e *FieldError) Unwrap() error { return ErrMalformed }

func malformed(structName, field, format string, args ...any) error {
	return &FieldError{Struct: structName, Field: field, Problem: fmt.Sprintf(format, args...)}
}
