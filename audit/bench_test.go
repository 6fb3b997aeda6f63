package audit_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/audit"
	"github.com/sealgate/sealgate/translog"
)

// BenchmarkReplay10k replays a log of 10,000 simulated-TEE admissions
// (each re-verified: signature, binding, policy, endorsement) from a
// SQLite store.
func BenchmarkReplay10k(b *testing.B) {
	l := newBenchLog(b, 10000)
	b.ResetTimer()
	for range b.N {
		_, sum, err := audit.Replay(context.Background(), audit.Config{Source: logSource{l: l}, Verifier: l.verifier})
		if err != nil || sum.Findings != 0 || sum.Size != 10001 {
			b.Fatalf("%+v, %v", sum, err)
		}
	}
	b.ReportMetric(float64(10001*b.N)/b.Elapsed().Seconds(), "entries/s")
}

// newBenchLog logs n admissions, 100 per transaction.
func newBenchLog(b *testing.B, n int) *testLog {
	l := newTestLog(b, nil)
	for i := 0; i < n; i += 100 {
		var batch []translog.Pending
		for j := i; j < min(n, i+100); j++ {
			batch = append(batch, l.pending(translog.KindAdmission, fmt.Sprintf("w%d", j), sim.DeviceConfig{}, nil))
		}
		if _, err := l.log.Append(context.Background(), batch...); err != nil {
			b.Fatal(err)
		}
	}
	return l
}
