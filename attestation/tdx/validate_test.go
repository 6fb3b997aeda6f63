package tdx_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/tdx"
)

func TestValidate(t *testing.T) {
	mrtd := [48]byte{0xaa}
	rtmr1 := [48]byte{0xbb}
	good := func() *tdx.Claims {
		c := &tdx.Claims{
			MRTD: mrtd, TEETCBSVN: [16]byte{5, 1, 2},
			TCBStatus: "UpToDate", TDXModuleTCBStatus: "UpToDate", QETCBStatus: "UpToDate",
			TCBEvaluationNumber: 17, CRLChecked: true,
		}
		c.RTMR[1] = rtmr1
		return c
	}
	h := func(b [48]byte) string { return hex.EncodeToString(b[:]) }
	rules := func() *policy.TDXRules {
		return &policy.TDXRules{Measurements: []policy.TDXMeasurement{{MRTD: h(mrtd), RTMR1: h(rtmr1)}}}
	}
	no := false
	type input struct {
		claims func(*tdx.Claims)
		rules  func(*policy.TDXRules)
	}
	tests := []struct {
		name    string
		input   input
		wantErr string
	}{
		{"valid", input{}, ""},
		{"mrtd upper-case hex in policy", input{rules: func(r *policy.TDXRules) { r.Measurements[0].MRTD = strings.ToUpper(h(mrtd)) }}, ""},
		{"any measurement", input{claims: func(c *tdx.Claims) { c.MRTD = [48]byte{1} }, rules: func(r *policy.TDXRules) { r.Measurements = nil; r.AnyMeasurement = true }}, ""},
		{"no measurement named", input{rules: func(r *policy.TDXRules) { r.Measurements = nil }}, "policy: measurements: found mrtd aa00"},
		{"no measurement named says so", input{rules: func(r *policy.TDXRules) { r.Measurements = nil }}, "the policy names no measurement"},
		{"mrtd not allowed", input{claims: func(c *tdx.Claims) { c.MRTD = [48]byte{0xcc} }}, "policy: mrtd: found cc00"},
		{"rtmr1 differs", input{claims: func(c *tdx.Claims) { c.RTMR[1] = [48]byte{0xdd} }}, "policy: rtmr1: found dd00"},
		{"rtmr not given matches any", input{claims: func(c *tdx.Claims) { c.RTMR[3] = [48]byte{0xee} }}, ""},
		{"second entry matches", input{
			claims: func(c *tdx.Claims) { c.RTMR[1] = [48]byte{0xdd} },
			rules: func(r *policy.TDXRules) {
				r.Measurements = append(r.Measurements, policy.TDXMeasurement{MRTD: h(mrtd), RTMR1: h([48]byte{0xdd})})
			}}, ""},
		{"debug", input{claims: func(c *tdx.Claims) { c.Debug = true; c.TDAttributes[0] = 1 }}, "policy: debug: found true"},
		{"debug allowed", input{claims: func(c *tdx.Claims) { c.Debug = true }, rules: func(r *policy.TDXRules) { r.AllowDebug = true }}, ""},
		{"tee tcb svn equal to minimum", input{rules: func(r *policy.TDXRules) { r.MinTEETCBSVN = "05010200000000000000000000000000" }}, ""},
		{"tee tcb svn one component low", input{rules: func(r *policy.TDXRules) { r.MinTEETCBSVN = "05010300000000000000000000000000" }}, "policy: tee_tcb_svn: found 05010200000000000000000000000000 (component 2 is 2), want at least 05010300000000000000000000000000"},
		{"tee tcb svn higher elsewhere does not compensate", input{
			claims: func(c *tdx.Claims) { c.TEETCBSVN = [16]byte{9, 1, 1} },
			rules:  func(r *policy.TDXRules) { r.MinTEETCBSVN = "05010200000000000000000000000000" }}, "component 2 is 1"},
		{"tcb status out of date", input{claims: func(c *tdx.Claims) { c.TCBStatus = "OutOfDate"; c.AdvisoryIDs = []string{"INTEL-SA-00837"} }}, `policy: tcb_status: found "OutOfDate" (advisories [INTEL-SA-00837]), want one of ["UpToDate"]`},
		{"tcb status accepted", input{claims: func(c *tdx.Claims) { c.TCBStatus = "SWHardeningNeeded" }, rules: func(r *policy.TDXRules) { r.AcceptedTCBStatuses = []string{"UpToDate", "SWHardeningNeeded"} }}, ""},
		{"tcb not supported", input{claims: func(c *tdx.Claims) { c.TCBStatus = tdx.TCBStatusNotSupported }, rules: func(r *policy.TDXRules) { r.AcceptedTCBStatuses = []string{"OutOfDate"} }}, `tcb_status: found "NotSupported"`},
		{"module out of date", input{claims: func(c *tdx.Claims) { c.TDXModuleTCBStatus = "OutOfDate" }}, "policy: tdx_module_tcb_status"},
		{"tdx 1.0 has no module status", input{claims: func(c *tdx.Claims) { c.TDXModuleTCBStatus = "" }}, ""},
		{"qe out of date", input{claims: func(c *tdx.Claims) { c.QETCBStatus = "OutOfDate" }}, "policy: qe_tcb_status"},
		{"evaluation number low", input{rules: func(r *policy.TDXRules) { r.MinTCBEvaluationNumber = 18 }}, "policy: tcb_evaluation_number: found 17, want at least 18"},
		{"no crl, required by default", input{claims: func(c *tdx.Claims) { c.CRLChecked = false }}, "revoked: crl: found collateral without the pck and root ca crls"},
		{"no crl, not required", input{claims: func(c *tdx.Claims) { c.CRLChecked = false }, rules: func(r *policy.TDXRules) { r.RequireCRL = &no }}, ""},
		{"bad min svn in unvalidated rules", input{rules: func(r *policy.TDXRules) { r.MinTEETCBSVN = "zz" }}, "options: tdx.min_tee_tcb_svn"},
		{"bad mrtd in unvalidated rules", input{rules: func(r *policy.TDXRules) { r.Measurements[0].MRTD = "00" }}, "options: tdx.measurements[0].mrtd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, r := good(), rules()
			if tc.input.claims != nil {
				tc.input.claims(c)
			}
			if tc.input.rules != nil {
				tc.input.rules(r)
			}
			err := tdx.Validate(c, r)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate: %v, want error containing %q", err, tc.wantErr)
			}
			if check.CodeOf(err) == "" {
				t.Fatalf("Validate: %v is not a *check.Error", err)
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	if err := tdx.Validate(nil, &policy.TDXRules{}); check.CodeOf(err) != check.CodeOptions {
		t.Fatalf("nil claims: %v", err)
	}
	if err := tdx.Validate(&tdx.Claims{}, nil); check.CodeOf(err) != check.CodeOptions {
		t.Fatalf("nil rules: %v", err)
	}
}
