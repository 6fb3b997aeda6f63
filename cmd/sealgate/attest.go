package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/proto"
)

// attestExit maps each verdict class to the exit code of `sealgate attest
// verify`; README.md lists them.
var attestExit = map[check.Code]int{
	check.CodeMalformed:         10,
	check.CodeUnknownKind:       11,
	check.CodeSignature:         12,
	check.CodeChain:             13,
	check.CodeRevoked:           14,
	check.CodeCollateralExpired: 15,
	check.CodePolicy:            16,
	check.CodeBinding:           17,
	check.CodeStale:             18,
	check.CodeOptions:           19,
}

// verdictError carries a failed verification's exit code.
type verdictError struct {
	code check.Code
	err  error
}

func (e *verdictError) Error() string { return e.err.Error() }

func runAttest(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return &usageError{"usage: sealgate attest verify|inspect BUNDLE"}
	}
	switch args[0] {
	case "verify":
		return runAttestVerify(args[1:])
	case "inspect":
		return runAttestInspect(args[1:])
	}
	return &usageError{fmt.Sprintf("unknown attest command %q: want verify or inspect", args[0])}
}

func runAttestVerify(args []string) error {
	fs := flag.NewFlagSet("sealgate attest verify", flag.ContinueOnError)
	policyFile := fs.String("policy", "", "attestation policy file (default: the built-in hardware-only policy)")
	insecureSim := fs.Bool("insecure-allow-simulated", false, "INSECURE: use the built-in policy that accepts the simulated TEE")
	at := fs.String("at", "", "verify at this time, RFC 3339 (default: now)")
	asJSON := fs.Bool("json", false, "print the audit record as JSON")
	var anchors anchorKeyList
	fs.Var(&anchors, "anchor-key", "pinned time-anchor key, base64 Ed25519 (repeatable)")
	var opts attestation.Options
	var applyRoots func() error
	if extraRoots != nil {
		applyRoots = extraRoots(&opts, fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{"attest verify needs exactly one BUNDLE file (or - for stdin)"}
	}
	if applyRoots != nil {
		if err := applyRoots(); err != nil {
			return err
		}
	}
	pol, err := loadPolicy(*policyFile, *insecureSim)
	if err != nil {
		return err
	}
	opts.Now = time.Now()
	if *at != "" {
		if opts.Now, err = time.Parse(time.RFC3339, *at); err != nil {
			return &usageError{fmt.Sprintf("-at: found %q, want an RFC 3339 time such as 2025-09-01T01:00:00Z", *at)}
		}
	}
	opts.AnchorKeys = anchors
	raw, err := readBundle(fs.Arg(0))
	if err != nil {
		return err
	}
	var audit attestation.Audit
	opts.Audit = &audit
	v, verr := attestation.Verify(raw, pol, opts)
	if *asJSON {
		record := struct {
			Bundle     string    `json:"bundle_sha256"`
			Policy     string    `json:"policy"`
			PolicyHash string    `json:"policy_sha256"`
			At         time.Time `json:"verified_at"`
			attestation.Audit
			Measurement  string     `json:"measurement,omitempty"`
			EvidenceTime *time.Time `json:"evidence_time,omitempty"`
			Expires      *time.Time `json:"expires,omitempty"`
		}{Policy: pol.Name, At: opts.Now.UTC(), Audit: audit}
		h, ph := proto.BundleHash(raw), pol.Hash()
		record.Bundle, record.PolicyHash = hex.EncodeToString(h[:]), hex.EncodeToString(ph[:])
		if v != nil {
			et, ex := v.EvidenceTime(), v.Expires()
			record.Measurement, record.EvidenceTime, record.Expires = hex.EncodeToString(v.Measurement()), &et, &ex
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(record); err != nil {
			return err
		}
	} else {
		fmt.Printf("bundle %s (%s) under policy %q at %s\n", fs.Arg(0), audit.Kind, pol.Name, opts.Now.UTC().Format(time.RFC3339))
		for _, s := range audit.Steps {
			mark := "ok  "
			if !s.OK {
				mark = "FAIL"
			}
			fmt.Printf("  %s %-20s %s\n", mark, s.Check, s.Detail)
		}
		if v != nil {
			fmt.Printf("verified: %s evidence, measurement %x, made %s, verdict valid until %s\n",
				v.Kind(), v.Measurement(), v.EvidenceTime().UTC().Format(time.RFC3339), v.Expires().UTC().Format(time.RFC3339))
			if v.Simulated() {
				fmt.Println("WARNING: simulated TEE evidence proves nothing about where the worker runs (INSECURE)")
			}
		}
	}
	if verr != nil {
		return &verdictError{code: check.CodeOf(verr), err: verr}
	}
	return nil
}

func runAttestInspect(args []string) error {
	fs := flag.NewFlagSet("sealgate attest inspect", flag.ContinueOnError)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{"attest inspect needs exactly one BUNDLE file (or - for stdin)"}
	}
	raw, err := readBundle(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := proto.ParseBundle(raw)
	if err != nil {
		return &verdictError{code: check.CodeMalformed, err: err}
	}
	h := proto.BundleHash(raw)
	fmt.Printf("bundle sha256   %x\nkind            %s\nnonce           %x\n", h, b.Kind, b.Nonce)
	if len(b.Anchor) > 0 {
		a, _ := proto.ParseAnchor(b.Anchor) // ParseBundle checked it
		fmt.Printf("anchor          time %s, signer key id %x (signature not checked here)\n", a.Time.Format(time.RFC3339Nano), a.KeyID)
	}
	for _, k := range b.Keys.HPKE {
		id := k.ID()
		s, _ := proto.SuiteForKEM(k.KEM)
		fmt.Printf("hpke key        %s key id %x\n", s, id[:8])
	}
	rd := b.ReportData()
	fmt.Printf("signing key     ed25519 %x\nreport          %d bytes\ncollateral      %d bytes\ngpu evidence    %d reports\nwant report_data %x\n",
		b.Keys.Signing, len(b.Report), len(b.Collateral), len(b.GPU), rd)
	if err := inspectGPUs(b.GPU); err != nil {
		return err
	}
	switch b.Kind {
	case "sim":
		r, err := sim.ParseReport(b.Report)
		if err != nil {
			return &verdictError{code: check.CodeMalformed, err: err}
		}
		fmt.Printf("sim report      INSECURE simulated TEE\n  measurement   %x\n  report_data   %x\n  time          %s\n  debug         %v\n", r.Measurement, r.ReportData, r.Timestamp.Format(time.RFC3339), r.Debug)
	case "tdx":
		return inspectTDX(b.Report, b.Collateral)
	case "snp":
		return inspectSNP(b.Report, b.Collateral)
	}
	return nil
}

// readBundle reads a bundle file, or stdin for "-", within the bundle size
// limit.
func readBundle(path string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	raw, err := io.ReadAll(io.LimitReader(r, proto.MaxBundleSize+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > proto.MaxBundleSize {
		return nil, errors.New("bundle larger than the bundle size limit")
	}
	return raw, nil
}
