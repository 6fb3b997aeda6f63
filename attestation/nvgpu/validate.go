package nvgpu

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/policy"
)

// Validate applies a policy's GPU rules to verified Claims. Checks, in
// order, each failing with CodePolicy and the field it names:
//
//   - "measurements": Claims that carry RIM mismatches (from a failed
//     Verify) are refused whatever the rules say;
//   - "cc_mode": the signed report does not say the GPU is in
//     confidential-computing mode and allow_cc_mode_off is false;
//   - "driver_version": below min_driver_version, or not one of
//     driver_versions when that list is given (compared numerically part
//     by part, decimal);
//   - "vbios_version": the same with min_vbios_version and
//     vbios_versions (hex parts);
//   - "measurement N": a block pinned by the rules' measurements (SPDM
//     index N, the same numbering as Claims.Measurements) is absent or
//     has none of the pinned values.
//
// Last, rules that require OCSP (the default) refuse Claims verified
// without a good OCSP response for every certificate of the device chain
// with CodeRevoked and field "ocsp", the code the shared vocabulary gives
// a missing revocation check. Nil Claims or rules, and rules that do not
// parse (a version or an index that is not a number, a value that is not
// hex), are CodeOptions.
func Validate(c *Claims, r *policy.GPURules) error {
	if c == nil {
		return check.Fail(check.CodeOptions, "claims", "nil", "claims returned by Verify")
	}
	if r == nil {
		return check.Fail(check.CodeOptions, "gpu rules", "nil", "the policy's gpu rules")
	}
	if len(c.MismatchedIndexes) > 0 {
		return check.Fail(check.CodePolicy, "measurements", fmt.Sprintf("mismatched indexes %v", c.MismatchedIndexes), "every measurement matching its rim")
	}
	if !c.CCMode && !r.AllowCCModeOff {
		found := fmt.Sprintf("off (feature flag mode %s)", c.Mode)
		if c.Mode == ModeLegacy {
			found = "not stated (the report has no feature flag: legacy opaque data)"
		}
		return check.Fail(check.CodePolicy, "cc_mode", found, "on: feature flag mode spt or mpt (allow_cc_mode_off is not set)")
	}
	if err := checkVersion("driver_version", c.DriverVersion, r.MinDriverVersion, r.DriverVersions, 10); err != nil {
		return err
	}
	if err := checkVersion("vbios_version", c.VBIOSVersion, r.MinVBIOSVersion, r.VBIOSVersions, 16); err != nil {
		return err
	}
	if err := checkPinned(c, r.Measurements); err != nil {
		return err
	}
	if r.OCSPRequired() && !c.OCSPChecked {
		return check.Fail(check.CodeRevoked, "ocsp", "a device chain without a good ocsp response for every certificate", "ocsp responses (require_ocsp)")
	}
	return nil
}

// checkVersion checks a version against a minimum and an exact list.
func checkVersion(field, have, min string, exact []string, base int) error {
	rule := "gpu.min_" + field
	got, err := parseVersion(have, base)
	if err != nil {
		return check.Fail(check.CodePolicy, field, fmt.Sprintf("%q", have), "a version of dot-separated numbers")
	}
	if min != "" {
		want, err := parseVersion(min, base)
		if err != nil {
			return check.Fail(check.CodeOptions, rule, fmt.Sprintf("%q", min), "dot-separated numbers")
		}
		if compareVersions(got, want) < 0 {
			return check.Fail(check.CodePolicy, field, have, "at least "+min)
		}
	}
	if len(exact) == 0 {
		return nil
	}
	for i, v := range exact {
		want, err := parseVersion(v, base)
		if err != nil {
			return check.Fail(check.CodeOptions, fmt.Sprintf("gpu.%ss[%d]", field, i), fmt.Sprintf("%q", v), "dot-separated numbers")
		}
		if len(want) == len(got) && compareVersions(got, want) == 0 {
			return nil
		}
	}
	return check.Fail(check.CodePolicy, field, have, fmt.Sprintf("one of %q", exact))
}

// parseVersion splits a version such as "550.90.07" (base 10) or
// "96.00.9f.00.01" (base 16) into its numeric parts.
func parseVersion(v string, base int) ([]uint64, error) {
	if v == "" {
		return nil, fmt.Errorf("empty version")
	}
	parts := strings.Split(v, ".")
	out := make([]uint64, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, base, 32)
		if err != nil || p == "" || strings.ContainsAny(p, "+-_") {
			return nil, fmt.Errorf("part %q is not a number", p)
		}
		out[i] = n
	}
	return out, nil
}

// compareVersions compares part by part; a missing part counts as 0.
func compareVersions(a, b []uint64) int {
	for i := range max(len(a), len(b)) {
		var x, y uint64
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// checkPinned checks the measurement blocks the rules pin, by SPDM index
// in ascending order.
func checkPinned(c *Claims, pinned map[string][]string) error {
	type pin struct {
		index int
		key   string
	}
	var pins []pin
	for k := range pinned {
		i, err := strconv.Atoi(k)
		if err != nil || i < 1 || i > 254 {
			return check.Fail(check.CodeOptions, "gpu.measurements", fmt.Sprintf("index %q", k), "a measurement index from 1 to 254")
		}
		pins = append(pins, pin{i, k})
	}
	slices.SortFunc(pins, func(a, b pin) int { return a.index - b.index })
	for _, p := range pins {
		at := slices.IndexFunc(c.Measurements, func(b Block) bool { return b.Index == p.index })
		values := pinned[p.key]
		matched := false
		for j, v := range values {
			want, err := hex.DecodeString(v)
			if err != nil {
				return check.Fail(check.CodeOptions, fmt.Sprintf("gpu.measurements[%s][%d]", p.key, j), fmt.Sprintf("%q", v), "hex")
			}
			matched = matched || at >= 0 && bytes.Equal(want, c.Measurements[at].Value)
		}
		if matched {
			continue
		}
		found := "no block"
		if at >= 0 {
			found = hex.EncodeToString(c.Measurements[at].Value)
		}
		return check.Fail(check.CodePolicy, fmt.Sprintf("measurement %d", p.index), found, fmt.Sprintf("one of %q (gpu.measurements)", values))
	}
	return nil
}
