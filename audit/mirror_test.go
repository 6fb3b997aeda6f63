package audit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/audit"
	"github.com/sealgate/sealgate/translog"
)

func TestMirror(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, nil)
	for i := range 3 {
		l.evidence(translog.KindAdmission, fmt.Sprintf("w%d", i), sim.DeviceConfig{}, nil)
	}
	dir := t.TempDir()
	if n, err := audit.Mirror(ctx, logSource{l: l}, l.verifier, dir, nil); err != nil || n != 4 {
		t.Fatalf("first mirror: %d entries, %v; want 4", n, err)
	}
	// Incremental: only what is new, and an interrupted update's bytes
	// past the checkpoint are cut off first.
	f, _ := os.OpenFile(filepath.Join(dir, "entries"), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0, 0, 0, 9, 'h', 'a', 'l', 'f'})
	f.Close()
	for i := 3; i < 5; i++ {
		l.evidence(translog.KindAdmission, fmt.Sprintf("w%d", i), sim.DeviceConfig{}, nil)
	}
	if n, err := audit.Mirror(ctx, logSource{l: l}, l.verifier, dir, nil); err != nil || n != 2 {
		t.Fatalf("second mirror: %d entries, %v; want 2", n, err)
	}
	if n, err := audit.Mirror(ctx, logSource{l: l}, l.verifier, dir, nil); err != nil || n != 0 {
		t.Fatalf("up-to-date mirror: %d entries, %v; want 0", n, err)
	}
	// The mirror replays like the log.
	found, sum, err := replay(t, l, &audit.DirSource{Dir: dir}, nil)
	if err != nil || len(found) != 0 || sum.Size != 6 || sum.Admissions != 5 {
		t.Fatalf("replay of the mirror: %s, %+v, %v", codes(found), sum, err)
	}

	// A log forked from what the mirror holds is refused, at the same
	// size and grown, and the mirror is left as it was.
	other := newTestLog(t, l.signer)
	for i := range 5 {
		other.evidence(translog.KindAdmission, fmt.Sprintf("x%d", i), sim.DeviceConfig{}, nil)
	}
	var fe *translog.ForkError
	if _, err := audit.Mirror(ctx, logSource{l: other}, l.verifier, dir, nil); !errors.Is(err, audit.ErrLog) || !errors.As(err, &fe) {
		t.Fatalf("same-size fork: %v, want a LogError with a ForkError", err)
	}
	other.evidence(translog.KindAdmission, "x5", sim.DeviceConfig{}, nil)
	if _, err := audit.Mirror(ctx, logSource{l: other}, l.verifier, dir, nil); !errors.As(err, &fe) {
		t.Fatalf("grown fork: %v, want a ForkError", err)
	}
	if _, _, err := replay(t, l, &audit.DirSource{Dir: dir}, nil); err != nil {
		t.Fatalf("the mirror after refused updates: %v", err)
	}

	// Collateral changed in the mirror is found by the replay.
	matches, _ := filepath.Glob(filepath.Join(dir, "collateral", "*"))
	if len(matches) == 0 {
		t.Fatal("no collateral mirrored")
	}
	os.WriteFile(matches[0], []byte("changed"), 0o644)
	found, _, err = replay(t, l, &audit.DirSource{Dir: dir}, nil)
	if err != nil || len(found) == 0 || found[0].Code != audit.FindingCollateral {
		t.Fatalf("replay with changed collateral: %s, %v; want a collateral finding", codes(found), err)
	}
}
