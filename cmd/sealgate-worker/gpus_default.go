//go:build !nvml

package main

import "errors"

// gpuCollector is unavailable in the default build, which links no NVML
// code.
func gpuCollector() (gpuCollecting, error) {
	return nil, errors.New("-gpus: this worker was built without NVML support; rebuild it with -tags nvml (cgo)")
}
