package translog

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/proof"

	"github.com/sealgate/sealgate/proto"
)

// MaxProofHashes bounds an inclusion or consistency proof: a tree of up
// to 2^63 entries needs fewer than 2*64 hashes.
const MaxProofHashes = 128

// ErrInclusion reports an entry that an inclusion proof does not place
// in the checkpoint's tree.
var ErrInclusion = errors.New("entry not included in the log's checkpoint")

// ForkError reports two checkpoints of the same log that cannot both be
// honest: the same size with different roots, or a newer one that is not
// consistent with an older one. Either is proof that the log forked.
type ForkError struct {
	Old, New Checkpoint
	Reason   string
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("log forked: checkpoint of %d entries is not consistent with the one of %d seen before: %s", e.New.Size, e.Old.Size, e.Reason)
}

// VerifyInclusion checks that the encoded entry is at index in the tree
// of checkpoint c. A failure wraps ErrInclusion.
func VerifyInclusion(c Checkpoint, index uint64, encoded []byte, p [][]byte) error {
	if len(p) > MaxProofHashes {
		return fmt.Errorf("%w: proof of %d hashes, want at most %d", ErrInclusion, len(p), MaxProofHashes)
	}
	leaf := LeafHash(encoded)
	if err := proof.VerifyInclusion(hasher, index, c.Size, leaf[:], p, c.Root[:]); err != nil {
		return fmt.Errorf("%w: entry %d of %d: %v", ErrInclusion, index, c.Size, err)
	}
	return nil
}

// VerifyConsistency checks that checkpoint newer extends checkpoint older
// of the same log; p is the consistency proof from older's size to
// newer's (empty when the sizes are equal). A failure is a *ForkError.
func VerifyConsistency(older, newer Checkpoint, p [][]byte) error {
	fork := func(format string, args ...any) error {
		return &ForkError{Old: older, New: newer, Reason: fmt.Sprintf(format, args...)}
	}
	if older.Origin != newer.Origin {
		return fork("origin %q, want %q", newer.Origin, older.Origin)
	}
	if newer.Size < older.Size {
		older, newer = newer, older
	}
	if older.Size == newer.Size {
		if older.Root != newer.Root {
			return fork("same size, different root hashes")
		}
		return nil
	}
	if len(p) > MaxProofHashes {
		return fork("proof of %d hashes, want at most %d", len(p), MaxProofHashes)
	}
	if err := proof.VerifyConsistency(hasher, older.Size, newer.Size, p, older.Root[:], newer.Root[:]); err != nil {
		return fork("%v", err)
	}
	return nil
}

// Witness remembers the largest checkpoint of one log that a client has
// verified, and checks every other against it. It is safe for
// concurrent use.
type Witness struct {
	mu      sync.Mutex // guards largest, has
	largest Checkpoint
	has     bool
}

// Largest returns the largest checkpoint seen, and false when none has
// been.
func (w *Witness) Largest() (Checkpoint, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.largest, w.has
}

// Observe checks c, already verified as signed by the log, against the
// largest checkpoint seen: p must be the consistency proof from the
// smaller of the two to the larger (nil for equal sizes or the first
// checkpoint). A consistent c larger than the largest becomes the
// largest. An inconsistent one is a *ForkError, and the largest stays.
func (w *Witness) Observe(c Checkpoint, p [][]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.has {
		w.largest, w.has = c, true
		return nil
	}
	if err := VerifyConsistency(w.largest, c, p); err != nil {
		return err
	}
	if c.Size > w.largest.Size || c.Size == w.largest.Size && c.Time.After(w.largest.Time) {
		w.largest = c
	}
	return nil
}

// ErrNoProof reports a listed candidate that carries no log inclusion.
var ErrNoProof = errors.New("candidate carries no transparency-log inclusion proof")

// VerifyCandidate checks that a listed candidate's evidence is in the
// tree of checkpoint c: it rebuilds the evidence entry from the
// candidate's worker id, provider, endorsement and bundle and the
// entry's kind, time and policy hash in c.Log, and verifies c.Log.Proof
// for it. A candidate without c.Log is ErrNoProof; one whose entry is
// not in the tree wraps ErrInclusion.
func VerifyCandidate(cp Checkpoint, c *proto.CandidateInfo) error {
	if c.Log == nil {
		return ErrNoProof
	}
	var kind Kind
	switch c.Log.Kind {
	case KindAdmission.String():
		kind = KindAdmission
	case KindReattestation.String():
		kind = KindReattestation
	default:
		return fmt.Errorf("%w: entry kind %q, want admission or reattestation", ErrInclusion, clip(c.Log.Kind))
	}
	if len(c.Log.PolicyHash) != 32 {
		return fmt.Errorf("%w: policy hash of %d bytes, want 32", ErrInclusion, len(c.Log.PolicyHash))
	}
	if c.Log.TimeMillis <= 0 {
		return fmt.Errorf("%w: entry time %d, want Unix milliseconds", ErrInclusion, c.Log.TimeMillis)
	}
	e, _, err := NewEvidence(kind, time.UnixMilli(c.Log.TimeMillis), c.WorkerID, c.ProviderID, c.ProviderKey, c.Endorsement, [32]byte(c.Log.PolicyHash), c.Bundle)
	if err != nil {
		return fmt.Errorf("%w: rebuilding the entry: %v", ErrInclusion, err)
	}
	raw, err := e.Marshal()
	if err != nil {
		return fmt.Errorf("%w: rebuilding the entry: %v", ErrInclusion, err)
	}
	return VerifyInclusion(cp, c.Log.Index, raw, c.Log.Proof)
}
