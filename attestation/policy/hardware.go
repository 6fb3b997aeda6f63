package policy

import (
	"encoding/hex"
	"fmt"
	"slices"
)

// TDXRules constrain Intel TDX evidence. Required when tee_kinds lists
// "tdx".
type TDXRules struct {
	// Measurements lists the accepted TD identities. Each entry must match
	// as a whole: MRTD always, each RTMR only when given. Empty refuses
	// every TD unless AnyMeasurement is true (fail closed: a policy must
	// name the code it trusts).
	Measurements []TDXMeasurement `json:"measurements,omitempty"`
	// AnyMeasurement accepts every TD identity. False means Measurements
	// decides. INSECURE outside development: any code could be running.
	AnyMeasurement bool `json:"any_measurement,omitempty"`
	// MinTEETCBSVN is the minimum TEE_TCB_SVN, 16 bytes in hex, compared
	// component by component. Empty means no minimum beyond TCB status.
	MinTEETCBSVN string `json:"min_tee_tcb_svn,omitempty"`
	// MinTCBEvaluationNumber is the minimum TCB evaluation data number of
	// the TCB info and QE identity collateral. Zero means no minimum.
	MinTCBEvaluationNumber uint32 `json:"min_tcb_evaluation_number,omitempty"`
	// AcceptedTCBStatuses lists the TCB statuses accepted for the platform
	// and the QE. Empty means ["UpToDate"].
	AcceptedTCBStatuses []string `json:"accepted_tcb_statuses,omitempty"`
	// AllowDebug accepts a TD with the DEBUG attribute. False refuses it.
	AllowDebug bool `json:"allow_debug,omitempty"`
	// RequireCRL refuses a bundle whose collateral lacks the PCK and root
	// CRLs. Nil means true.
	RequireCRL *bool `json:"require_crl,omitempty"`
}

// TDXMeasurement is one accepted TD identity, each value 48 bytes in hex.
type TDXMeasurement struct {
	MRTD  string `json:"mrtd"`
	RTMR0 string `json:"rtmr0,omitempty"`
	RTMR1 string `json:"rtmr1,omitempty"`
	RTMR2 string `json:"rtmr2,omitempty"`
	RTMR3 string `json:"rtmr3,omitempty"`
}

// SNPRules constrain AMD SEV-SNP evidence. Required when tee_kinds lists
// "snp".
type SNPRules struct {
	// Measurements lists accepted launch MEASUREMENT values, 48 bytes in
	// hex. Empty refuses every guest unless AnyMeasurement is true.
	Measurements []string `json:"measurements,omitempty"`
	// AnyMeasurement accepts every launch measurement. INSECURE outside
	// development.
	AnyMeasurement bool `json:"any_measurement,omitempty"`
	// HostData lists accepted HOST_DATA values, 32 bytes in hex. Empty
	// means any.
	HostData []string `json:"host_data,omitempty"`
	// MinTCB is the minimum reported TCB. Zero fields mean no minimum for
	// that component.
	MinTCB SNPTCB `json:"min_tcb"`
	// AllowDebug accepts a guest whose policy allows debugging. False
	// refuses it.
	AllowDebug bool `json:"allow_debug,omitempty"`
	// AllowMigrationAgent accepts a guest whose policy allows a migration
	// agent. False refuses it.
	AllowMigrationAgent bool `json:"allow_migration_agent,omitempty"`
	// SMT is "allowed" (the guest policy may allow SMT) or "forbidden" (it
	// must not). Empty means "allowed".
	SMT string `json:"smt,omitempty"`
	// RequireCRL refuses a bundle whose collateral lacks the ARK's CRL.
	// Nil means true.
	RequireCRL *bool `json:"require_crl,omitempty"`
}

// SNPTCB is an SNP TCB version by component.
type SNPTCB struct {
	BootLoader uint8 `json:"bootloader,omitempty"`
	TEE        uint8 `json:"tee,omitempty"`
	SNP        uint8 `json:"snp,omitempty"`
	Microcode  uint8 `json:"microcode,omitempty"`
}

// CRLRequired reports the effective RequireCRL.
func (r *TDXRules) CRLRequired() bool { return r.RequireCRL == nil || *r.RequireCRL }

// CRLRequired reports the effective RequireCRL.
func (r *SNPRules) CRLRequired() bool { return r.RequireCRL == nil || *r.RequireCRL }

// TCBStatuses returns the effective accepted TCB statuses.
func (r *TDXRules) TCBStatuses() []string {
	if len(r.AcceptedTCBStatuses) == 0 {
		return []string{"UpToDate"}
	}
	return r.AcceptedTCBStatuses
}

var tdxStatuses = []string{"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"}

func (r *TDXRules) validate() error {
	for i, m := range r.Measurements {
		if err := hexField(fmt.Sprintf("tdx.measurements[%d].mrtd", i), m.MRTD, 48, false); err != nil {
			return err
		}
		for j, v := range []string{m.RTMR0, m.RTMR1, m.RTMR2, m.RTMR3} {
			if err := hexField(fmt.Sprintf("tdx.measurements[%d].rtmr%d", i, j), v, 48, true); err != nil {
				return err
			}
		}
	}
	if err := hexField("tdx.min_tee_tcb_svn", r.MinTEETCBSVN, 16, true); err != nil {
		return err
	}
	for _, s := range r.AcceptedTCBStatuses {
		if !slices.Contains(tdxStatuses, s) {
			return fmt.Errorf("policy: tdx.accepted_tcb_statuses: found %q, want one of %v", s, tdxStatuses)
		}
	}
	return nil
}

func (r *SNPRules) validate() error {
	for i, m := range r.Measurements {
		if err := hexField(fmt.Sprintf("snp.measurements[%d]", i), m, 48, false); err != nil {
			return err
		}
	}
	for i, h := range r.HostData {
		if err := hexField(fmt.Sprintf("snp.host_data[%d]", i), h, 32, false); err != nil {
			return err
		}
	}
	if r.SMT != "" && r.SMT != "allowed" && r.SMT != "forbidden" {
		return fmt.Errorf("policy: snp.smt: found %q, want \"allowed\" or \"forbidden\"", r.SMT)
	}
	return nil
}

func hexField(name, v string, size int, optional bool) error {
	if v == "" && optional {
		return nil
	}
	if b, err := hex.DecodeString(v); err != nil || len(b) != size {
		return fmt.Errorf("policy: %s: found %q, want %d hex digits", name, v, 2*size)
	}
	return nil
}

// GPURules constrain NVIDIA GPU confidential-computing evidence. Required
// when RequireGPU is true.
type GPURules struct {
	// MinDriverVersion is the lowest accepted driver version, such as
	// "550.90.07", compared numerically part by part. Empty means no
	// minimum.
	MinDriverVersion string `json:"min_driver_version,omitempty"`
	// DriverVersions lists the accepted driver versions exactly. Empty
	// means any version at or above MinDriverVersion.
	DriverVersions []string `json:"driver_versions,omitempty"`
	// MinVBIOSVersion is the lowest accepted VBIOS version, such as
	// "96.00.9f.00.01", compared numerically part by part (hex parts).
	// Empty means no minimum.
	MinVBIOSVersion string `json:"min_vbios_version,omitempty"`
	// VBIOSVersions lists the accepted VBIOS versions exactly. Empty means
	// any version at or above MinVBIOSVersion.
	VBIOSVersions []string `json:"vbios_versions,omitempty"`
	// AllowCCModeOff accepts a GPU that is not in confidential-computing
	// mode. False refuses it. INSECURE: without CC mode the host can read
	// GPU memory.
	AllowCCModeOff bool `json:"allow_cc_mode_off,omitempty"`
	// Measurements pins measurement blocks by index (decimal string) to
	// accepted values in hex, checked in addition to the RIMs. Empty means
	// the RIMs alone decide.
	Measurements map[string][]string `json:"measurements,omitempty"`
	// RequireOCSP refuses evidence whose certificates (device chain and
	// RIM signing chains) come without a good OCSP response. Nil means
	// true: a missing response, "revoked" and "unknown" are all refused.
	RequireOCSP *bool `json:"require_ocsp,omitempty"`
}

// OCSPRequired reports the effective RequireOCSP.
func (r *GPURules) OCSPRequired() bool { return r.RequireOCSP == nil || *r.RequireOCSP }
