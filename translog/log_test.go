package translog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sealgate/sealgate/translog"
)

// appendN appends n drain entries one by one, naming workers from start.
func appendN(t testing.TB, l *translog.Log, start, n int) {
	t.Helper()
	for i := range n {
		e := translog.NewStateChange(translog.KindDrain, t0, fmt.Sprintf("w%d", start+i), "test")
		if _, err := l.Append(context.Background(), translog.Pending{Entry: e}); err != nil {
			t.Fatal(err)
		}
	}
}

// openCheckpoint verifies the log's current checkpoint with v.
func openCheckpoint(t testing.TB, l *translog.Log, v *translog.Verifier) translog.Checkpoint {
	t.Helper()
	signed, _, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Open(signed)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLogProofs(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := open(t)
			s := newSigner(t, "example.test/log")
			v, err := translog.NewVerifier(s.VerifierKey())
			if err != nil {
				t.Fatal(err)
			}
			l := newLog(t, st, s)
			if c := openCheckpoint(t, l, v); c.Size != 0 || !c.Time.Equal(t0) {
				t.Fatalf("empty log's checkpoint: %+v", c)
			}
			var seen []translog.Checkpoint
			for size := 1; size <= 13; size++ {
				appendN(t, l, size-1, 1)
				c := openCheckpoint(t, l, v)
				if c.Size != uint64(size) {
					t.Fatalf("checkpoint size %d, want %d", c.Size, size)
				}
				root, err := l.RootAt(ctx, c.Size)
				if err != nil || root != c.Root {
					t.Fatalf("RootAt(%d) = %x, %v; want the checkpoint's %x", size, root, err, c.Root)
				}
				seen = append(seen, c)
			}
			last := seen[len(seen)-1]
			entries, err := l.Entries(ctx, 0, last.Size, last.Size)
			if err != nil {
				t.Fatal(err)
			}
			// Every entry is included in every tree that has it.
			for _, c := range seen {
				for i := range c.Size {
					p, err := l.InclusionProof(ctx, i, c.Size)
					if err != nil {
						t.Fatal(err)
					}
					if err := translog.VerifyInclusion(c, i, entries[i], p); err != nil {
						t.Fatalf("entry %d in tree %d: %v", i, c.Size, err)
					}
				}
			}
			// Every tree is consistent with every later one.
			for _, a := range seen {
				for _, b := range seen {
					if a.Size > b.Size {
						continue
					}
					p, err := l.ConsistencyProof(ctx, a.Size, b.Size)
					if err != nil {
						t.Fatal(err)
					}
					if err := translog.VerifyConsistency(a, b, p); err != nil {
						t.Fatalf("%d to %d: %v", a.Size, b.Size, err)
					}
				}
			}
			if _, err := l.InclusionProof(ctx, last.Size, last.Size); !errors.Is(err, translog.ErrNotFound) {
				t.Fatalf("inclusion proof past the end: %v, want ErrNotFound", err)
			}
			if _, err := l.ConsistencyProof(ctx, 1, last.Size+1); !errors.Is(err, translog.ErrNotFound) {
				t.Fatalf("consistency proof to a size the log has not reached: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestDetects shows each kind of tampering the issue names detected by
// the client-side checks.
func TestDetects(t *testing.T) {
	ctx := context.Background()
	s := newSigner(t, "example.test/log")
	v, _ := translog.NewVerifier(s.VerifierKey())
	l := newLog(t, openStore(t, t.TempDir()+"/a.db"), s)
	appendN(t, l, 0, 7)
	c := openCheckpoint(t, l, v)
	entries, err := l.Entries(ctx, 0, c.Size, c.Size)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("entry changed after the fact", func(t *testing.T) {
		p, _ := l.InclusionProof(ctx, 3, c.Size)
		changed := translog.NewStateChange(translog.KindDrain, t0, "w3", "a different reason")
		raw, _ := changed.Marshal()
		if err := translog.VerifyInclusion(c, 3, raw, p); !errors.Is(err, translog.ErrInclusion) {
			t.Fatalf("got %v, want ErrInclusion", err)
		}
	})
	t.Run("entry dropped", func(t *testing.T) {
		// Without entry 3, entry 4 would be served at index 3.
		p, _ := l.InclusionProof(ctx, 3, c.Size)
		if err := translog.VerifyInclusion(c, 3, entries[4], p); !errors.Is(err, translog.ErrInclusion) {
			t.Fatalf("got %v, want ErrInclusion", err)
		}
	})
	t.Run("proof too long", func(t *testing.T) {
		if err := translog.VerifyInclusion(c, 3, entries[3], make([][]byte, translog.MaxProofHashes+1)); !errors.Is(err, translog.ErrInclusion) {
			t.Fatalf("got %v, want ErrInclusion", err)
		}
	})

	// A fork: a second log under the same key with a different history.
	other := newLog(t, openStore(t, t.TempDir()+"/b.db"), s)
	appendN(t, other, 100, 7)
	forked := openCheckpoint(t, other, v)
	t.Run("fork at the same size", func(t *testing.T) {
		var fe *translog.ForkError
		if err := translog.VerifyConsistency(c, forked, nil); !errors.As(err, &fe) {
			t.Fatalf("got %v, want a ForkError", err)
		}
		w := &translog.Witness{}
		if err := w.Observe(c, nil); err != nil {
			t.Fatal(err)
		}
		if err := w.Observe(forked, nil); !errors.As(err, &fe) {
			t.Fatalf("witness: got %v, want a ForkError", err)
		}
		if got, _ := w.Largest(); got.Root != c.Root {
			t.Fatal("the witness took the forked checkpoint")
		}
	})
	t.Run("newer checkpoint not consistent with the old", func(t *testing.T) {
		appendN(t, other, 200, 3)
		newer := openCheckpoint(t, other, v)
		p, err := other.ConsistencyProof(ctx, c.Size, newer.Size)
		if err != nil {
			t.Fatal(err)
		}
		w := &translog.Witness{}
		w.Observe(c, nil)
		var fe *translog.ForkError
		if err := w.Observe(newer, p); !errors.As(err, &fe) {
			t.Fatalf("got %v, want a ForkError", err)
		}
		// The honest log's own extension passes and becomes the largest.
		appendN(t, l, 7, 3)
		honest := openCheckpoint(t, l, v)
		hp, _ := l.ConsistencyProof(ctx, c.Size, honest.Size)
		if err := w.Observe(honest, hp); err != nil {
			t.Fatal(err)
		}
		if got, _ := w.Largest(); got.Size != honest.Size {
			t.Fatalf("largest size %d, want %d", got.Size, honest.Size)
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		signed, _, _ := l.Checkpoint(ctx)
		_, cur, _ := l.Checkpoint(ctx)
		tampered := bytes.Replace(signed, fmt.Appendf(nil, "\n%d\n", cur.Size), fmt.Appendf(nil, "\n%d\n", cur.Size+1), 1)
		if bytes.Equal(tampered, signed) {
			t.Fatal("did not tamper")
		}
		if _, err := v.Open(tampered); !errors.Is(err, translog.ErrCheckpointSignature) {
			t.Fatalf("tampered body: got %v, want ErrCheckpointSignature", err)
		}
		stranger := newSigner(t, "example.test/log")
		sv, _ := translog.NewVerifier(stranger.VerifierKey())
		if _, err := sv.Open(signed); !errors.Is(err, translog.ErrCheckpointSignature) {
			t.Fatalf("another key: got %v, want ErrCheckpointSignature", err)
		}
	})
}

func TestCollateralStoredOnce(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir()+"/gw.db")
	l := newLog(t, st, newSigner(t, "example.test/log"))
	shared := bytes.Repeat([]byte("tcb info "), 1000)
	a := evidence(t, translog.KindAdmission, "w1", shared)
	b := evidence(t, translog.KindAdmission, "w2", shared)
	if a.Entry.CollateralHash != b.Entry.CollateralHash {
		t.Fatal("same collateral, different hashes")
	}
	if _, err := l.Append(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	got, err := l.Collateral(ctx, a.Entry.CollateralHash)
	if err != nil || !bytes.Equal(got, shared) {
		t.Fatalf("Collateral: %d bytes, %v", len(got), err)
	}
	raws, _ := l.Entries(ctx, 0, 2, 2)
	for _, raw := range raws {
		if len(raw) > 1000 {
			t.Fatalf("an entry of %d bytes: the collateral is inline", len(raw))
		}
		e, err := translog.ParseEntry(raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.FullBundle(got); err != nil {
			t.Fatal(err)
		}
	}
	// Each bundle's entry is found by the bundle's hash.
	for want, p := range []translog.Pending{a, b} {
		i, e, err := l.BundleEntry(ctx, p.Entry.BundleHash)
		if err != nil || i != uint64(want) || e.WorkerID != p.Entry.WorkerID {
			t.Fatalf("BundleEntry: %d, %v, want %d", i, err, want)
		}
	}
	if _, _, err := l.BundleEntry(ctx, [32]byte{9}); !errors.Is(err, translog.ErrNotFound) {
		t.Fatalf("BundleEntry of an unlogged bundle: %v, want ErrNotFound", err)
	}
	// An entry whose collateral does not match its hash is refused.
	c := evidence(t, translog.KindAdmission, "w3", shared)
	c.Collateral = []byte("other")
	if _, err := l.Append(ctx, c); err == nil || !strings.Contains(err.Error(), "collateral") {
		t.Fatalf("Append with mismatched collateral: %v", err)
	}
}

func TestPolicyLoggedOncePerChange(t *testing.T) {
	ctx := context.Background()
	l := newLog(t, openStore(t, t.TempDir()+"/gw.db"), newSigner(t, "example.test/log"))
	pol := []byte(`{"name":"p1"}`)
	hash := fmt.Sprintf("%x", translog.PolicyHashOf(pol))
	for i, want := range []bool{true, false} {
		_, appended, err := l.AppendUnlessMeta(ctx, "policy", hash, translog.Pending{Entry: translog.NewPolicy(t0, pol)})
		if err != nil || appended != want {
			t.Fatalf("call %d: appended %v, %v; want %v", i, appended, err, want)
		}
	}
	_, c, _ := l.Checkpoint(ctx)
	if c.Size != 1 {
		t.Fatalf("size %d, want 1", c.Size)
	}
}

// TestReplicasShareOneLog appends from two Log values over two
// connections to one PostgreSQL database at once, as two gateway
// replicas do: the advisory lock serializes them into one tree.
func TestReplicasShareOneLog(t *testing.T) {
	ctx := context.Background()
	dsn := pgtestDSN(t)
	s := newSigner(t, "example.test/log")
	v, _ := translog.NewVerifier(s.VerifierKey())
	a := newLog(t, openStore(t, dsn), s)
	b := newLog(t, openStore(t, dsn), s)
	var wg sync.WaitGroup
	for r, l := range []*translog.Log{a, b} {
		wg.Go(func() { appendN(t, l, r*1000, 15) })
	}
	wg.Wait()
	ca, cb := openCheckpoint(t, a, v), openCheckpoint(t, b, v)
	if ca.Size != 30 || ca.Root != cb.Root {
		t.Fatalf("replicas see %d/%x and %d/%x, want 30 entries and one root", ca.Size, ca.Root, cb.Size, cb.Root)
	}
	entries, err := b.Entries(ctx, 0, 30, 30)
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(30) {
		p, err := a.InclusionProof(ctx, i, 30)
		if err != nil {
			t.Fatal(err)
		}
		if err := translog.VerifyInclusion(ca, i, entries[i], p); err != nil {
			t.Fatal(err)
		}
	}
}
