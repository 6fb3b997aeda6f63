package enclave

import (
	"context"

	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/proto"
)

// EvidenceSource produces TEE reports. Hardware kinds collect them through
// configfs-tsm; the simulated kind signs them in software.
type EvidenceSource interface {
	// Kind is the bundle kind, such as "sim" or "tdx".
	Kind() string
	// Evidence returns a report carrying reportData and the collateral a
	// verifier needs offline.
	Evidence(ctx context.Context, reportData [proto.ReportDataSize]byte) (report, collateral []byte, err error)
}

// GPUEvidenceSource is an optional interface of an EvidenceSource whose
// machine has GPUs in confidential-computing mode. GPUEvidence returns one
// encoded evidence entry per GPU (attestation/nvgpu), GPU i's report made
// for proto.GPUNonce(nonce, i). The worker collects it before the TEE
// report, because the TEE report's REPORT_DATA binds the GPU evidence.
type GPUEvidenceSource interface {
	GPUEvidence(ctx context.Context, nonce [proto.NonceSize]byte) ([][]byte, error)
}

// SimulatedEvidence adapts a simulated TEE device. INSECURE: simulated
// evidence proves nothing about where the worker runs.
type SimulatedEvidence struct{ Device *sim.Device }

var _ EvidenceSource = SimulatedEvidence{}

// Kind returns "sim".
func (SimulatedEvidence) Kind() string { return "sim" }

// Evidence signs a simulated report; it has no collateral.
func (s SimulatedEvidence) Evidence(_ context.Context, reportData [proto.ReportDataSize]byte) ([]byte, []byte, error) {
	return s.Device.Report(reportData), nil, nil
}
