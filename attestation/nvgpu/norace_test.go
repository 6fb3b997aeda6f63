//go:build !race

package nvgpu_test

// raceEnabled: see race_test.go.
const raceEnabled = false
