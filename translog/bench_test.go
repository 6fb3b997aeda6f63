package translog_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sealgate/sealgate/internal/pgtest"
	"github.com/sealgate/sealgate/translog"
)

// BenchmarkAppend appends one admission entry (a ~1 KiB bundle and its
// collateral) per transaction to a SQLite store, with its inclusion
// proof read back, as an enrollment and the listing after it would.
func BenchmarkAppend(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchAppend(b, filepath.Join(b.TempDir(), "gw.db")) })
	b.Run("postgres", func(b *testing.B) { benchAppend(b, pgtest.DSN(b)) })
}

func benchAppend(b *testing.B, target string) {
	ctx := context.Background()
	l := newLog(b, openStore(b, target), newSigner(b, "bench.test/log"))
	pending := make([]translog.Pending, b.N)
	for i := range pending {
		pending[i] = evidence(b, translog.KindAdmission, fmt.Sprintf("w%d", i), []byte("shared collateral"))
	}
	b.ResetTimer()
	for i := range b.N {
		idx, err := l.Append(ctx, pending[i])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.InclusionProof(ctx, idx, idx+1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}
