package attestation

import "github.com/sealgate/sealgate/attestation/check"

// Audit is a record of one verification: every check in the order it ran
// and its result. `sealgate attest verify -json` prints it.
type Audit struct {
	Kind   string `json:"kind,omitempty"`
	Steps  []Step `json:"checks"`
	OK     bool   `json:"ok"`
	Code   Code   `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Step is one check and its result.
type Step struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Code   Code   `json:"code,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// recorder appends steps to an Audit, when there is one.
type recorder struct{ audit *Audit }

// step records a check's result and returns err unchanged.
func (r *recorder) step(name string, err error) error {
	if r.audit != nil {
		s := Step{Check: name, OK: err == nil}
		if err != nil {
			s.Code, s.Detail = check.CodeOf(err), err.Error()
		}
		r.audit.Steps = append(r.audit.Steps, s)
	}
	return err
}

func (r *recorder) kind(k string) {
	if r.audit != nil {
		r.audit.Kind = k
	}
}

func (r *recorder) finish(err error) {
	if r.audit == nil {
		return
	}
	r.audit.OK = err == nil
	if err != nil {
		r.audit.Code, r.audit.Reason = check.CodeOf(err), err.Error()
	}
}
