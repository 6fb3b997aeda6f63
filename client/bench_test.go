package client

import (
	"syscall"
	"testing"
	"time"

	"github.com/sealgate/sealgate/internal/vectors"
)

// BenchmarkVerifyCached measures a verdict served from the client's cache,
// and BenchmarkVerifyCold the full verification it saves, on the valid
// TDX and SNP vectors, in the same run.
func BenchmarkVerifyCached(b *testing.B) { benchVerify(b, true) }

func BenchmarkVerifyCold(b *testing.B) { benchVerify(b, false) }

func benchVerify(b *testing.B, cached bool) {
	for _, v := range vectors.Load(b) {
		if v.Name != "valid" {
			continue
		}
		b.Run(v.Kind, func(b *testing.B) {
			at := v.VerifyAt
			c, err := New(Config{GatewayURL: "http://127.0.0.1:1", InsecurePlainHTTP: true, Policy: v.Policy, Now: func() time.Time { return at }, AttestationOptions: v.Options(b)})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.verify(v.Bundle); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			cpu0 := processCPU()
			for b.Loop() {
				if !cached {
					c.mu.Lock()
					clear(c.cache)
					c.mu.Unlock()
				}
				if _, err := c.verify(v.Bundle); err != nil {
					b.Fatal(err)
				}
			}
			// The process's CPU time per verification: on a shared
			// machine steadier than the wall time, which counts the
			// waits for a CPU other processes hold.
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the user and system CPU time of the test binary so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
