//go:build !nvml

package main

// gpusWant is what -gpus says in a build without NVML.
const gpusWant = "built without NVML support"
