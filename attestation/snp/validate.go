package snp

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/policy"
)

// Validate checks verified claims against the policy's SNP rules. It
// returns the first failure as a *check.Error naming the field, the value
// found and the value wanted:
//
//   - policy.debug, policy.migrate_ma, policy.smt: guest policy bits the
//     rules forbid (CodePolicy);
//   - measurement: not among the rules' measurements, or the rules name
//     none and do not say any_measurement (CodePolicy);
//   - host_data: not among the rules' host data, when they list any
//     (CodePolicy);
//   - reported_tcb.bootloader, .tee, .snp, .microcode: below the minimum
//     (CodePolicy);
//   - crl: the collateral carried no CRL and require_crl is on. This is
//     CodeRevoked, the code package check reserves for "no CRL where one
//     is required", so a missing CRL is reported with revocation failures.
func Validate(c *Claims, r *policy.SNPRules) error {
	if c == nil {
		return check.Fail(check.CodeOptions, "claims", "nil", "verified claims")
	}
	if r == nil {
		return check.Fail(check.CodeOptions, "snp rules", "nil", "the policy's snp rules")
	}
	if c.GuestPolicy.Debug && !r.AllowDebug {
		return check.Fail(check.CodePolicy, "policy.debug", "true (the host can read and write guest memory)", "false")
	}
	if c.GuestPolicy.MigrateMA && !r.AllowMigrationAgent {
		return check.Fail(check.CodePolicy, "policy.migrate_ma", "true (a migration agent can export guest memory)", "false")
	}
	if r.SMT == "forbidden" && c.GuestPolicy.SMT {
		return check.Fail(check.CodePolicy, "policy.smt", "true (the guest may run with SMT)", "false (the policy forbids SMT)")
	}
	m := hex.EncodeToString(c.Measurement[:])
	if !r.AnyMeasurement {
		if len(r.Measurements) == 0 {
			return check.Fail(check.CodePolicy, "measurement", m, "a measurement the policy names, but the policy names no measurement (set snp.measurements, or any_measurement for development only)")
		}
		if !containsHex(r.Measurements, m) {
			return check.Fail(check.CodePolicy, "measurement", m, fmt.Sprintf("one of %v", r.Measurements))
		}
	}
	if h := hex.EncodeToString(c.HostData[:]); len(r.HostData) > 0 && !containsHex(r.HostData, h) {
		return check.Fail(check.CodePolicy, "host_data", h, fmt.Sprintf("one of %v", r.HostData))
	}
	for _, t := range []struct {
		name     string
		got, min uint8
	}{
		{"bootloader", c.ReportedTCB.BootLoader, r.MinTCB.BootLoader},
		{"tee", c.ReportedTCB.TEE, r.MinTCB.TEE},
		{"snp", c.ReportedTCB.SNP, r.MinTCB.SNP},
		{"microcode", c.ReportedTCB.Microcode, r.MinTCB.Microcode},
	} {
		if t.got < t.min {
			return check.Fail(check.CodePolicy, "reported_tcb."+t.name, fmt.Sprint(t.got), fmt.Sprintf("at least %d", t.min))
		}
	}
	if r.CRLRequired() && !c.CRLPresent {
		return check.Fail(check.CodeRevoked, "crl", "no crl in the collateral", "the ARK's crl (policy require_crl is true)")
	}
	return nil
}

func containsHex(list []string, v string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(s, v) })
}
