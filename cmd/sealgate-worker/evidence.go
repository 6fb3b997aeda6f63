package main

import (
	"context"
	"fmt"

	sevtrust "github.com/google/go-sev-guest/verify/trust"
	tdxtrust "github.com/google/go-tdx-guest/verify/trust"

	"github.com/sealgate/sealgate/attestation/sim"
	snpcollect "github.com/sealgate/sealgate/attestation/snp/collect"
	tdxcollect "github.com/sealgate/sealgate/attestation/tdx/collect"
	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/proto"
)

// tdxEvidence collects TDX quotes through configfs-tsm and their
// collateral from Intel PCS.
type tdxEvidence struct{ c *tdxcollect.Collector }

func (tdxEvidence) Kind() string { return "tdx" }

func (e tdxEvidence) Evidence(ctx context.Context, rd [proto.ReportDataSize]byte) ([]byte, []byte, error) {
	return e.c.Collect(ctx, rd)
}

// snpEvidence collects SEV-SNP reports through configfs-tsm and their
// certificates and CRL from the host and AMD KDS.
type snpEvidence struct{ c *snpcollect.Collector }

func (snpEvidence) Kind() string { return "snp" }

func (e snpEvidence) Evidence(ctx context.Context, rd [proto.ReportDataSize]byte) ([]byte, []byte, error) {
	return e.c.Collect(ctx, rd)
}

// evidenceSource opens the evidence source for tee: "tdx" and "snp" are
// the hardware kinds; "sim" is the INSECURE simulated TEE and needs
// insecureSim as well.
func evidenceSource(tee string, insecureSim bool) (enclave.EvidenceSource, error) {
	switch tee {
	case "tdx":
		dev, err := tdxcollect.NewDevice(tdxcollect.DeviceConfig{})
		if err != nil {
			return nil, err
		}
		c, err := tdxcollect.NewCollector(tdxcollect.CollectorConfig{Device: dev, Getter: tdxtrust.DefaultHTTPSGetter()})
		if err != nil {
			return nil, err
		}
		return tdxEvidence{c}, nil
	case "snp":
		c, err := snpcollect.NewCollector(snpcollect.CollectorConfig{Getter: sevtrust.DefaultHTTPSGetter()})
		if err != nil {
			return nil, err
		}
		return snpEvidence{c}, nil
	case "sim":
		if !insecureSim {
			return nil, fmt.Errorf("-tee sim needs -insecure-simulated-tee as well: simulated evidence proves nothing about where the worker runs")
		}
		m, err := sim.MeasureExecutable()
		if err != nil {
			return nil, err
		}
		return enclave.SimulatedEvidence{Device: sim.NewDevice(sim.DeviceConfig{Measurement: m})}, nil
	}
	return nil, fmt.Errorf("-tee: found %q, want tdx, snp or sim", tee)
}

// gpuCollecting is what the worker needs of a GPU collector.
type gpuCollecting interface {
	Collect(ctx context.Context, nonce [proto.NonceSize]byte) ([][]byte, error)
}

// withGPUs adds GPU evidence to a TEE evidence source: the worker collects
// it first, and the TEE report binds it.
type withGPUs struct {
	enclave.EvidenceSource
	gpus gpuCollecting
}

var _ enclave.GPUEvidenceSource = withGPUs{}

func (w withGPUs) GPUEvidence(ctx context.Context, nonce [proto.NonceSize]byte) ([][]byte, error) {
	return w.gpus.Collect(ctx, nonce)
}
