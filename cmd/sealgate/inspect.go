package main

import (
	"fmt"

	sevabi "github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	sevpb "github.com/google/go-sev-guest/proto/sevsnp"
	tdxabi "github.com/google/go-tdx-guest/abi"
	tdxpb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu"
	"github.com/sealgate/sealgate/attestation/snp"
	"github.com/sealgate/sealgate/attestation/tdx"
)

// inspectTDX prints a TDX quote's fields and what its collateral carries.
// Nothing here is verified: `attest verify` does that.
func inspectTDX(report, collateral []byte) (err error) {
	defer func() {
		if recover() != nil { // the library's quote parser panics on hostile lengths
			err = &verdictError{code: check.CodeMalformed, err: fmt.Errorf("tdx quote does not parse")}
		}
	}()
	q, err := tdxabi.QuoteToProto(report)
	if err != nil {
		return &verdictError{code: check.CodeMalformed, err: fmt.Errorf("tdx quote: %v", err)}
	}
	v4, ok := q.(*tdxpb.QuoteV4)
	if !ok {
		return &verdictError{code: check.CodeMalformed, err: fmt.Errorf("tdx quote: version %T, want 4", q)}
	}
	b := v4.GetTdQuoteBody()
	fmt.Printf("tdx quote       version 4 (not verified here)\n  mrtd          %x\n", b.GetMrTd())
	for i, r := range b.GetRtmrs() {
		fmt.Printf("  rtmr%d         %x\n", i, r)
	}
	fmt.Printf("  tee_tcb_svn   %x\n  td_attributes %x (debug %v)\n  mrseam        %x\n  report_data   %x\n",
		b.GetTeeTcbSvn(), b.GetTdAttributes(), len(b.GetTdAttributes()) > 0 && b.GetTdAttributes()[0]&1 == 1, b.GetMrSeam(), b.GetReportData())
	c, err := tdx.ParseCollateral(collateral)
	if err != nil {
		return &verdictError{code: check.CodeMalformed, err: err}
	}
	fmt.Printf("tdx collateral  tcb info %d bytes, qe identity %d bytes, crls %v\n", len(c.TCBInfo), len(c.QEIdentity), c.HasCRLs())
	return nil
}

// inspectSNP prints an SNP report's fields and what its collateral
// carries, unverified.
func inspectSNP(report, collateral []byte) error {
	r, err := sevabi.ReportToProto(report)
	if err != nil {
		return &verdictError{code: check.CodeMalformed, err: fmt.Errorf("snp report: %v", err)}
	}
	printSNP(r)
	c, err := snp.ParseCollateral(collateral)
	if err != nil {
		return &verdictError{code: check.CodeMalformed, err: err}
	}
	fmt.Printf("snp collateral  key %v, crl %v\n", c.Key, c.CRL != nil)
	return nil
}

func printSNP(r *sevpb.Report) {
	pol, _ := sevabi.ParseSnpPolicy(r.GetPolicy())
	tcb := kds.DecomposeTCBVersion(kds.TCBVersion(r.GetReportedTcb()))
	fmt.Printf("snp report      version %d (not verified here)\n  measurement   %x\n  host_data     %x\n  report_data   %x\n  chip_id       %x\n  vmpl          %d\n  policy        debug %v, migrate_ma %v, smt %v\n  reported_tcb  bootloader %d tee %d snp %d microcode %d\n",
		r.GetVersion(), r.GetMeasurement(), r.GetHostData(), r.GetReportData(), r.GetChipId(), r.GetVmpl(),
		pol.Debug, pol.MigrateMA, pol.SMT, tcb.BlSpl, tcb.TeeSpl, tcb.SnpSpl, tcb.UcodeSpl)
}

// inspectGPUs prints each GPU evidence entry's report fields, unverified.
func inspectGPUs(gpus [][]byte) error {
	for i, raw := range gpus {
		e, err := nvgpu.ParseEvidence(raw)
		if err != nil {
			return &verdictError{code: check.CodeMalformed, err: fmt.Errorf("gpu %d: %w", i, err)}
		}
		r, err := nvgpu.ParseReport(e.Report)
		if err != nil {
			return &verdictError{code: check.CodeMalformed, err: fmt.Errorf("gpu %d: %w", i, err)}
		}
		fmt.Printf("gpu %d           SPDM report (not verified here)\n  nonce         %x\n  driver        %s\n  vbios         %s\n  mode          %s (cc mode %v)\n  measurements  %d blocks\n  evidence      %d certificates, %d ocsp responses, driver rim %d bytes, vbios rim %d bytes\n",
			i, r.Nonce, r.DriverVersion, r.VBIOSVersion, r.Mode, r.CCMode, len(r.Measurements), len(e.CertChain), len(e.OCSP), len(e.DriverRIM), len(e.VBIOSRIM))
	}
	return nil
}
