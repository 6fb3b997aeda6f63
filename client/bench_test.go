package client

import (
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
		})
	}
}
