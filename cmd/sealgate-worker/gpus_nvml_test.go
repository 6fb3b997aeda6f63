//go:build nvml

package main

// gpusWant is what -gpus says in an NVML build on a machine without the
// NVIDIA driver, such as CI's.
const gpusWant = "libnvidia-ml.so.1 not found"
