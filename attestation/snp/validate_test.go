package snp_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/snp"
	"github.com/sealgate/sealgate/attestation/snp/snptest"
)

// fixtureClaims are the claims of the valid fixture report.
func fixtureClaims() *snp.Claims {
	return &snp.Claims{
		Version:     3,
		Measurement: snptest.Measurement,
		HostData:    snptest.HostData,
		ReportedTCB: policy.SNPTCB{BootLoader: 4, TEE: 0, SNP: 22, Microcode: 213},
		ChipID:      snptest.ChipID,
		Product:     "Milan",
		Key:         snp.KeyVCEK,
		CRLPresent:  true,
	}
}

func TestValidate(t *testing.T) {
	other := strings.Repeat("ab", 48)
	for _, tc := range []struct {
		name    string
		claims  func(c *snp.Claims)
		rules   func(r *policy.SNPRules)
		wantErr string // "" means valid
	}{
		{name: "fixture policy", wantErr: ""},
		{name: "measurement listed in upper case", rules: func(r *policy.SNPRules) {
			r.Measurements = []string{strings.ToUpper(hex.EncodeToString(snptest.Measurement[:]))}
		}},
		{name: "debug", claims: func(c *snp.Claims) { c.GuestPolicy.Debug = true }, wantErr: "policy.debug: found true"},
		{name: "debug allowed", claims: func(c *snp.Claims) { c.GuestPolicy.Debug = true }, rules: func(r *policy.SNPRules) { r.AllowDebug = true }},
		{name: "migration agent", claims: func(c *snp.Claims) { c.GuestPolicy.MigrateMA = true }, wantErr: "policy.migrate_ma: found true"},
		{name: "migration agent allowed", claims: func(c *snp.Claims) { c.GuestPolicy.MigrateMA = true }, rules: func(r *policy.SNPRules) { r.AllowMigrationAgent = true }},
		{name: "smt forbidden", claims: func(c *snp.Claims) { c.GuestPolicy.SMT = true }, wantErr: "policy.smt: found true"},
		{name: "smt allowed", claims: func(c *snp.Claims) { c.GuestPolicy.SMT = true }, rules: func(r *policy.SNPRules) { r.SMT = "allowed" }},
		{name: "smt unset means allowed", claims: func(c *snp.Claims) { c.GuestPolicy.SMT = true }, rules: func(r *policy.SNPRules) { r.SMT = "" }},
		{name: "measurement not listed", rules: func(r *policy.SNPRules) { r.Measurements = []string{other} }, wantErr: "measurement: found " + hex.EncodeToString(snptest.Measurement[:]) + ", want one of [" + other + "]"},
		{name: "no measurement named", rules: func(r *policy.SNPRules) { r.Measurements = nil }, wantErr: "the policy names no measurement"},
		{name: "any measurement", rules: func(r *policy.SNPRules) { r.Measurements = nil; r.AnyMeasurement = true }},
		{name: "host data not listed", rules: func(r *policy.SNPRules) { r.HostData = []string{strings.Repeat("00", 32)} }, wantErr: "host_data: found " + hex.EncodeToString(snptest.HostData[:])},
		{name: "any host data", rules: func(r *policy.SNPRules) { r.HostData = nil }},
		{name: "bootloader below minimum", rules: func(r *policy.SNPRules) { r.MinTCB.BootLoader = 5 }, wantErr: "reported_tcb.bootloader: found 4, want at least 5"},
		{name: "tee below minimum", rules: func(r *policy.SNPRules) { r.MinTCB.TEE = 1 }, wantErr: "reported_tcb.tee: found 0, want at least 1"},
		{name: "snp below minimum", rules: func(r *policy.SNPRules) { r.MinTCB.SNP = 23 }, wantErr: "reported_tcb.snp: found 22, want at least 23"},
		{name: "microcode below minimum", rules: func(r *policy.SNPRules) { r.MinTCB.Microcode = 214 }, wantErr: "reported_tcb.microcode: found 213, want at least 214"},
		{name: "no minimum tcb", rules: func(r *policy.SNPRules) { r.MinTCB = policy.SNPTCB{} }},
		{name: "no crl, required by default", claims: func(c *snp.Claims) { c.CRLPresent = false }, wantErr: "attestation revoked: crl: found no crl in the collateral"},
		{name: "no crl, not required", claims: func(c *snp.Claims) { c.CRLPresent = false }, rules: func(r *policy.SNPRules) { f := false; r.RequireCRL = &f }},
		{name: "debug is reported before measurement", claims: func(c *snp.Claims) { c.GuestPolicy.Debug = true }, rules: func(r *policy.SNPRules) { r.Measurements = []string{other} }, wantErr: "policy.debug"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fixtureClaims()
			if tc.claims != nil {
				tc.claims(c)
			}
			r := snptest.Policy().SNP
			if tc.rules != nil {
				tc.rules(r)
			}
			err := snp.Validate(c, r)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("found %v, want success", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("found %v, want an error containing %q", err, tc.wantErr)
			}
			if code := check.CodeOf(err); code != check.CodePolicy && code != check.CodeRevoked {
				t.Errorf("code: found %q, want policy (or revoked for a missing crl)", code)
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	if err := snp.Validate(nil, snptest.Policy().SNP); check.CodeOf(err) != check.CodeOptions {
		t.Errorf("nil claims: found %v, want an options error", err)
	}
	if err := snp.Validate(fixtureClaims(), nil); check.CodeOf(err) != check.CodeOptions {
		t.Errorf("nil rules: found %v, want an options error", err)
	}
}
