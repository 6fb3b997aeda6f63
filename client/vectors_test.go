package client

import (
	"testing"
	"time"

	"github.com/sealgate/sealgate/internal/vectors"
)

// TestVectors drives every attestation vector through the client's own
// verification path (the verdict cache included).
func TestVectors(t *testing.T) {
	for _, v := range vectors.Load(t) {
		t.Run(v.Kind+"/"+v.Name, func(t *testing.T) {
			at := v.VerifyAt
			c, err := New(Config{GatewayURL: "http://127.0.0.1:1", InsecurePlainHTTP: true, Policy: v.Policy, Now: func() time.Time { return at }, AttestationOptions: v.Options(t)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.verify(v.Bundle)
			if err := v.Check(err); err != nil {
				t.Fatal(err)
			}
			if _, err := c.verify(v.Bundle); v.Check(err) != nil {
				t.Fatalf("second verification (cached) disagrees: %v", err)
			}
		})
	}
}
