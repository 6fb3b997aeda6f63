package nvgpu_test

import (
	"errors"
	"strings"

	"github.com/sealgate/sealgate/attestation/check"
)

func asCheck(err error, e **check.Error) bool { return errors.As(err, e) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
