//go:build nvml

package main

import "github.com/sealgate/sealgate/attestation/nvgpu"

// gpuCollector collects every GPU's evidence through the driver's NVML,
// with RIMs and OCSP responses from NVIDIA's services.
func gpuCollector() (gpuCollecting, error) {
	devs, err := nvgpu.OpenNVML()
	if err != nil {
		return nil, err
	}
	return &nvgpu.Collector{Devices: devs, Collateral: nvgpu.HTTPCollateral{}}, nil
}
