package tdx

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/policy"
)

// Validate applies the TDX rules of a policy to verified Claims. Checks,
// in order, each failing with CodePolicy and the field it names:
//
//   - "measurements": the policy names no measurement and does not set
//     any_measurement, so it refuses every TD;
//   - "mrtd", then "rtmr0".."rtmr3": the TD's MRTD and the RTMRs an entry
//     gives must all match one entry of tdx.measurements;
//   - "debug": the TD has the DEBUG attribute and allow_debug is false;
//   - "tee_tcb_svn": TEE_TCB_SVN is below min_tee_tcb_svn in some
//     component;
//   - "tcb_status", "tdx_module_tcb_status", "qe_tcb_status": a TCB status
//     is not among accepted_tcb_statuses (default UpToDate);
//   - "tcb_evaluation_number": below min_tcb_evaluation_number.
//
// Last, a policy that requires CRLs (the default) refuses Claims verified
// without them with CodeRevoked and field "crl", the code the shared
// vocabulary gives a missing CRL. Nil or unusable rules are CodeOptions.
func Validate(c *Claims, r *policy.TDXRules) error {
	if c == nil {
		return check.Fail(check.CodeOptions, "claims", "nil", "claims returned by Verify")
	}
	if r == nil {
		return check.Fail(check.CodeOptions, "tdx rules", "nil", "the policy's tdx rules")
	}
	if err := checkMeasurement(c, r); err != nil {
		return err
	}
	if c.Debug && !r.AllowDebug {
		return check.Fail(check.CodePolicy, "debug", "true (td_attributes "+hex.EncodeToString(c.TDAttributes[:])+" has DEBUG)", "false (allow_debug is not set)")
	}
	if r.MinTEETCBSVN != "" {
		min, err := hex.DecodeString(r.MinTEETCBSVN)
		if err != nil || len(min) != len(c.TEETCBSVN) {
			return check.Fail(check.CodeOptions, "tdx.min_tee_tcb_svn", fmt.Sprintf("%q", r.MinTEETCBSVN), "32 hex digits")
		}
		for i := range min {
			if c.TEETCBSVN[i] < min[i] {
				return check.Fail(check.CodePolicy, "tee_tcb_svn",
					fmt.Sprintf("%x (component %d is %d)", c.TEETCBSVN, i, c.TEETCBSVN[i]),
					fmt.Sprintf("at least %x in every component (component %d at least %d)", min, i, min[i]))
			}
		}
	}
	accepted := r.TCBStatuses()
	for _, s := range []struct{ field, status string }{
		{"tcb_status", c.TCBStatus},
		{"tdx_module_tcb_status", c.TDXModuleTCBStatus},
		{"qe_tcb_status", c.QETCBStatus},
	} {
		if s.field == "tdx_module_tcb_status" && s.status == "" {
			continue // TEE_TCB_SVN[1] is zero: no separate TDX module level
		}
		if !slices.Contains(accepted, s.status) {
			return check.Fail(check.CodePolicy, s.field, fmt.Sprintf("%q (advisories %v)", s.status, c.AdvisoryIDs), fmt.Sprintf("one of %q", accepted))
		}
	}
	if c.TCBEvaluationNumber < r.MinTCBEvaluationNumber {
		return check.Fail(check.CodePolicy, "tcb_evaluation_number", fmt.Sprint(c.TCBEvaluationNumber), fmt.Sprintf("at least %d", r.MinTCBEvaluationNumber))
	}
	if r.CRLRequired() && !c.CRLChecked {
		return check.Fail(check.CodeRevoked, "crl", "collateral without the pck and root ca crls", "both crls (require_crl)")
	}
	return nil
}

func checkMeasurement(c *Claims, r *policy.TDXRules) error {
	if r.AnyMeasurement {
		return nil
	}
	mrtd := hex.EncodeToString(c.MRTD[:])
	if len(r.Measurements) == 0 {
		return check.Fail(check.CodePolicy, "measurements", "mrtd "+mrtd, "a policy that names the allowed measurements (tdx.measurements is empty and any_measurement is false, so the policy names no measurement and refuses every td)")
	}
	var sameMRTD []policy.TDXMeasurement
	var all []string
	for i, m := range r.Measurements {
		want, err := hex.DecodeString(m.MRTD)
		if err != nil || len(want) != len(c.MRTD) {
			return check.Fail(check.CodeOptions, fmt.Sprintf("tdx.measurements[%d].mrtd", i), fmt.Sprintf("%q", m.MRTD), "96 hex digits")
		}
		all = append(all, m.MRTD)
		if bytes.Equal(want, c.MRTD[:]) {
			sameMRTD = append(sameMRTD, m)
		}
	}
	if len(sameMRTD) == 0 {
		return check.Fail(check.CodePolicy, "mrtd", mrtd, fmt.Sprintf("one of %v", all))
	}
	var first error
	for _, m := range sameMRTD {
		err := matchRTMRs(c, m)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// matchRTMRs checks the RTMRs an entry gives; an empty RTMR matches any.
func matchRTMRs(c *Claims, m policy.TDXMeasurement) error {
	for i, v := range []string{m.RTMR0, m.RTMR1, m.RTMR2, m.RTMR3} {
		if v == "" {
			continue
		}
		want, err := hex.DecodeString(v)
		if err != nil || len(want) != len(c.RTMR[i]) {
			return check.Fail(check.CodeOptions, fmt.Sprintf("tdx.measurements rtmr%d", i), fmt.Sprintf("%q", v), "96 hex digits")
		}
		if !bytes.Equal(want, c.RTMR[i][:]) {
			return check.Fail(check.CodePolicy, fmt.Sprintf("rtmr%d", i), hex.EncodeToString(c.RTMR[i][:]), fmt.Sprintf("%s (the entry for mrtd %s)", v, m.MRTD))
		}
	}
	return nil
}
