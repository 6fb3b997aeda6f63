package nvgpu_test

import (
	"strings"
	"testing"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu"
	"github.com/sealgate/sealgate/attestation/policy"
)

func TestValidate(t *testing.T) {
	block := func(i int, v byte) nvgpu.Block { return nvgpu.Block{Index: i, ValueType: 1, Value: []byte{v, v}} }
	good := func() *nvgpu.Claims {
		return &nvgpu.Claims{
			DriverVersion: "550.90.07", VBIOSVersion: "96.00.9f.00.01", Mode: nvgpu.ModeSPT, CCMode: true,
			Measurements: []nvgpu.Block{block(1, 0xaa), block(2, 0xbb)}, OCSPChecked: true,
		}
	}
	rules := func() *policy.GPURules {
		return &policy.GPURules{MinDriverVersion: "550.90.07", MinVBIOSVersion: "96.00.9f.00.01"}
	}
	no := false
	type input struct {
		claims func(*nvgpu.Claims)
		rules  func(*policy.GPURules)
	}
	tests := []struct {
		name    string
		input   input
		wantErr string
	}{
		{"valid", input{}, ""},
		{"no rules beyond defaults", input{rules: func(r *policy.GPURules) { *r = policy.GPURules{} }}, ""},
		{"rim mismatches", input{claims: func(c *nvgpu.Claims) { c.MismatchedIndexes = []int{8, 12} }}, "policy: measurements: found mismatched indexes [8 12]"},
		{"cc mode off", input{claims: func(c *nvgpu.Claims) { c.CCMode, c.Mode = false, nvgpu.ModePPCIE }}, "policy: cc_mode: found off (feature flag mode ppcie), want on"},
		{"cc mode not stated", input{claims: func(c *nvgpu.Claims) { c.CCMode, c.Mode = false, nvgpu.ModeLegacy }}, "policy: cc_mode: found not stated"},
		{"cc mode off allowed", input{claims: func(c *nvgpu.Claims) { c.CCMode = false }, rules: func(r *policy.GPURules) { r.AllowCCModeOff = true }}, ""},
		{"driver below minimum", input{rules: func(r *policy.GPURules) { r.MinDriverVersion = "550.127.05" }}, "policy: driver_version: found 550.90.07, want at least 550.127.05"},
		{"driver compared numerically, not as text", input{rules: func(r *policy.GPURules) { r.MinDriverVersion = "550.9" }}, ""},
		{"driver minimum with fewer parts", input{rules: func(r *policy.GPURules) { r.MinDriverVersion = "550" }}, ""},
		{"driver minimum with more parts", input{rules: func(r *policy.GPURules) { r.MinDriverVersion = "550.90.07.1" }}, "policy: driver_version"},
		{"driver above minimum by major", input{claims: func(c *nvgpu.Claims) { c.DriverVersion = "560.1.1" }}, ""},
		{"driver in list", input{rules: func(r *policy.GPURules) { r.DriverVersions = []string{"535.1.1", "550.90.7"} }}, ""},
		{"driver not in list", input{rules: func(r *policy.GPURules) { r.DriverVersions = []string{"550.90.08"} }}, `policy: driver_version: found 550.90.07, want one of ["550.90.08"]`},
		{"driver list needs every part", input{rules: func(r *policy.GPURules) { r.DriverVersions = []string{"550.90"} }}, "policy: driver_version"},
		{"driver not numeric", input{claims: func(c *nvgpu.Claims) { c.DriverVersion = "550.90-rc1" }}, `policy: driver_version: found "550.90-rc1"`},
		{"bad driver minimum in rules", input{rules: func(r *policy.GPURules) { r.MinDriverVersion = "latest" }}, "options: gpu.min_driver_version"},
		{"bad driver in list", input{rules: func(r *policy.GPURules) { r.DriverVersions = []string{"x"} }}, "options: gpu.driver_versions[0]"},
		{"vbios parts are hex", input{rules: func(r *policy.GPURules) { r.MinVBIOSVersion = "96.00.a0.00.01" }}, "policy: vbios_version: found 96.00.9f.00.01, want at least 96.00.a0.00.01"},
		{"vbios hex case does not matter", input{rules: func(r *policy.GPURules) { r.VBIOSVersions = []string{"96.00.9F.00.01"} }}, ""},
		{"vbios not in list", input{rules: func(r *policy.GPURules) { r.VBIOSVersions = []string{"96.00.74.00.1c"} }}, "policy: vbios_version"},
		{"bad vbios minimum", input{rules: func(r *policy.GPURules) { r.MinVBIOSVersion = "96.zz" }}, "options: gpu.min_vbios_version"},
		{"pinned measurement matches", input{rules: func(r *policy.GPURules) { r.Measurements = map[string][]string{"2": {"0000", "BBBB"}} }}, ""},
		{"pinned measurement differs", input{rules: func(r *policy.GPURules) { r.Measurements = map[string][]string{"1": {"0000"}} }}, `policy: measurement 1: found aaaa, want one of ["0000"]`},
		{"pinned measurement absent", input{rules: func(r *policy.GPURules) { r.Measurements = map[string][]string{"9": {"0000"}} }}, "policy: measurement 9: found no block"},
		{"pinned measurements checked in index order", input{rules: func(r *policy.GPURules) { r.Measurements = map[string][]string{"10": {"00"}, "2": {"00"}} }}, "measurement 2:"},
		{"pinned index not a number", input{rules: func(r *policy.GPURules) { r.Measurements = map[string][]string{"one": {"00"}} }}, "options: gpu.measurements"},
		{"pinned value not hex", input{rules: func(r *policy.GPURules) { r.Measurements = map[string][]string{"1": {"xyz"}} }}, "options: gpu.measurements[1][0]"},
		{"ocsp required by default", input{claims: func(c *nvgpu.Claims) { c.OCSPChecked = false }}, "revoked: ocsp"},
		{"ocsp not required", input{claims: func(c *nvgpu.Claims) { c.OCSPChecked = false }, rules: func(r *policy.GPURules) { r.RequireOCSP = &no }}, ""},
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
			err := nvgpu.Validate(c, r)
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
	if err := nvgpu.Validate(nil, &policy.GPURules{}); check.CodeOf(err) != check.CodeOptions {
		t.Fatalf("nil claims: %v", err)
	}
	if err := nvgpu.Validate(&nvgpu.Claims{}, nil); check.CodeOf(err) != check.CodeOptions {
		t.Fatalf("nil rules: %v", err)
	}
}
