// Package nvgpu verifies NVIDIA GPU confidential-computing evidence
// (Hopper H100/H200) offline: the GPU's SPDM attestation report, its
// certificate chain to NVIDIA's device identity root, revocation by
// carried OCSP responses, and the report's measurements against NVIDIA's
// signed reference integrity manifests (RIMs). No cgo and no network:
// everything verification needs travels in the evidence.
//
// The work is split the way go-sev-guest splits it:
//
//   - Encoding: Evidence is one GPU's evidence (report, certificate chain,
//     OCSP responses, driver and VBIOS RIMs, the RIMs' OCSP responses) in
//     a strict, versioned, length-prefixed encoding (Marshal,
//     ParseEvidence; magic "SGGE"). proto.Bundle.GPU carries one per GPU,
//     and GPU i's report must carry proto.GPUNonce(bundle nonce, i).
//   - Parsing: ParseReport reads the SPDM 1.1 GET_MEASUREMENTS request
//     and signed MEASUREMENTS response (the layout is documented in
//     report.go, after DMTF DSP0274 and NVIDIA's nvtrust verifier),
//     rejecting every malformed length, offset or field with CodeMalformed
//     naming it, and reads NVIDIA's opaque fields: driver and VBIOS
//     versions, firmware ID, NVDEC0 status, feature flag (see Mode for how
//     CC mode is read, and where the mapping comes from).
//   - Cryptographic verification (Verify): the report's ECDSA P-384
//     signature by the attestation leaf, the leaf's firmware ID, the chain
//     to a pinned root at an injected time (the NVIDIA Device Identity CA
//     embedded here, never a root the device supplies), OCSP for every
//     certificate of the chain, the nonce, and both RIMs through package
//     nvgpu/rim (XML-DSig, their own chains and OCSP).
//   - RIM comparison (also Verify): every active golden measurement of the
//     driver and VBIOS RIMs against the report's block at that index,
//     the way NVIDIA's verifiers compare them (RIM index i is SPDM block
//     i+1; any alternative matches; an index in both RIMs is an error;
//     RIM index 35 is skipped when NVDEC0 is disabled). Mismatches are
//     CodePolicy naming the index, the value found and the values wanted.
//   - Policy validation (Validate): a policy's GPU rules applied to the
//     verified Claims: CC mode, minimum or exact driver and VBIOS versions,
//     pinned measurements, required OCSP.
//   - Collection, inside the worker's confidential VM, behind the build
//     tag nvml (collect.go): a Collector asks each GPU (a small Device
//     interface that an NVML adapter implements) for a report over its
//     nonce and gathers the chain's OCSP responses and the RIMs through an
//     injected Collateral source. The default build has none of it.
//
// Binding to the CPU TEE is not checked here: the bundle's REPORT_DATA
// commits to the GPU evidence (proto.Bundle.GPUHash) and package
// attestation checks it, and the nonce each GPU's report must carry,
// between the TEE's Verify and Validate.
//
// Fixture roots for tests are injected through Options.DeviceRoots and
// Options.RIMRoots; with both nil, only NVIDIA's pinned roots are
// trusted. Package nvgpu/nvgputest builds synthetic GPU evidence under
// fixture roots for tests and test vectors; production code never imports
// it.
package nvgpu
