// Package audit replays a gateway's transparency log offline (from the
// gateway, HTTPSource, or from a mirror directory that Mirror keeps up to
// date, DirSource): it fetches
// every entry, checks the tree against a checkpoint signed by the pinned
// log key and its consistency with the auditor's last saved checkpoint,
// re-verifies every evidence bundle at the time the gateway admitted it
// against the admission policy in force at that entry, and reports each
// entry that should not have been admitted and each worker kept admitted
// past its evidence's freshness window.
//
// Two kinds of result come out of Replay. A *LogError says the log itself
// cannot be trusted (a bad checkpoint signature, entries that do not hash
// to the checkpoint's root, a checkpoint not consistent with the saved
// one, an entry that does not parse); the replay stops. A Finding is an
// entry the gateway should not have made; the replay goes on and reports
// every one.
//
// "Served past its freshness window" is judged from the log alone: a
// worker whose latest evidence entry expired (attestation.Verified's
// Expires, under the entry's policy) before the gateway logged its next
// re-attestation, drain or eviction, or before the checkpoint's time if
// there was none, was kept admitted on stale evidence. The gateway does
// not list such a worker, but the log cannot show that, so the auditor
// reports it.
package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

// Source is where the log is read from: a gateway over HTTP
// (HTTPSource), a mirror directory (DirSource), or anything else that
// serves the same data.
type Source interface {
	Checkpoint(ctx context.Context) ([]byte, error)
	// Entries returns entries [start, end), or a non-empty prefix of them.
	Entries(ctx context.Context, start, end uint64) ([][]byte, error)
	Collateral(ctx context.Context, hash [32]byte) ([]byte, error)
}

// Finding codes.
const (
	// FindingRefused: the evidence fails the policy the entry names, at
	// the entry's time; Reason carries the attestation error.
	FindingRefused = "evidence_refused"
	// FindingEndorsement: the provider's endorsement does not verify.
	FindingEndorsement = "endorsement_refused"
	// FindingUnknownPolicy: the entry names a policy no earlier entry
	// logged.
	FindingUnknownPolicy = "unknown_policy"
	// FindingStalePolicy: the entry names a policy other than the latest
	// one logged before it.
	FindingStalePolicy = "stale_policy"
	// FindingCollateral: the referenced collateral is missing or does not
	// rebuild the bundle.
	FindingCollateral = "collateral"
	// FindingStale: a worker stayed admitted after its evidence expired.
	FindingStale = "served_past_freshness"
	// FindingNotAdmitted: a re-attestation, drain or eviction of a worker
	// the log never admitted (or had evicted).
	FindingNotAdmitted = "not_admitted"
)

// Finding is one thing the gateway should not have done.
type Finding struct {
	Index    uint64    `json:"index"`
	Kind     string    `json:"kind"`
	WorkerID string    `json:"worker_id,omitempty"`
	Time     time.Time `json:"time"`
	Code     string    `json:"finding"`
	Reason   string    `json:"reason"`
}

// Summary counts what a replay saw.
type Summary struct {
	Size           uint64    `json:"size"`
	Root           []byte    `json:"root"`
	CheckpointTime time.Time `json:"checkpoint_time"`
	Admissions     int       `json:"admissions"`
	Reattestations int       `json:"reattestations"`
	Drains         int       `json:"drains"`
	Evictions      int       `json:"evictions"`
	Policies       int       `json:"policies"`
	Findings       int       `json:"findings"`
}

// ErrLog is matched by every *LogError.
var ErrLog = errors.New("the log cannot be trusted")

// LogError says the log itself failed a check; nothing it holds can be
// relied on.
type LogError struct{ Err error }

func (e *LogError) Error() string        { return "log: " + e.Err.Error() }
func (e *LogError) Unwrap() error        { return e.Err }
func (e *LogError) Is(target error) bool { return target == ErrLog }

// Config configures a replay.
type Config struct {
	// Source serves the log. Required.
	Source Source
	// Verifier pins the log's key. Required.
	Verifier *translog.Verifier
	// From is the auditor's last saved checkpoint (signed), or nil. The
	// log's checkpoint must be consistent with it: the replay checks that
	// the log's first From.Size entries hash to its root (which needs no
	// proof, since every entry is fetched anyway).
	From []byte
	// VerifyOptions are the attestation options (anchor keys, roots);
	// Now is set to each entry's time.
	VerifyOptions attestation.Options
	// Finding receives each finding as it is found. Nil drops them (the
	// Summary still counts them).
	Finding func(Finding)
	// Progress is called after each page of entries with the entries
	// replayed and the total. Nil means no progress.
	Progress func(done, total uint64)
}

// workerState is what the replay remembers of a worker.
type workerState struct {
	expires time.Time // of its latest evidence
	index   uint64    // of its latest evidence entry
	active  bool      // admitted and not drained or evicted since
}

// Replay replays the log and returns the verified checkpoint (signed) and
// a summary. It returns a *LogError when the log fails a check.
func Replay(ctx context.Context, cfg Config) ([]byte, Summary, error) {
	var sum Summary
	signed, err := cfg.Source.Checkpoint(ctx)
	if err != nil {
		return nil, sum, fmt.Errorf("fetching the checkpoint: %w", err)
	}
	cp, err := cfg.Verifier.Open(signed)
	if err != nil {
		return nil, sum, &LogError{Err: err}
	}
	sum.Size, sum.Root, sum.CheckpointTime = cp.Size, cp.Root[:], cp.Time
	var from *translog.Checkpoint
	if cfg.From != nil {
		f, err := cfg.Verifier.Open(cfg.From)
		if err != nil {
			return nil, sum, fmt.Errorf("the saved checkpoint: %w", err)
		}
		if cp.Size < f.Size {
			return nil, sum, &LogError{Err: fmt.Errorf("the log has %d entries, fewer than the %d of the saved checkpoint (a rollback)", cp.Size, f.Size)}
		}
		if err := translog.VerifyConsistency(f, cp, nil); err != nil && f.Size == cp.Size {
			return nil, sum, &LogError{Err: err}
		}
		from = &f
	}
	checkFrom := func(size uint64, root []byte) error {
		if from == nil || size != from.Size || [32]byte(root) == from.Root {
			return nil
		}
		return &LogError{Err: &translog.ForkError{Old: *from, New: cp,
			Reason: fmt.Sprintf("the log's first %d entries hash to %x, not to the saved checkpoint's root", size, root)}}
	}
	if err := checkFrom(0, rfc6962.DefaultHasher.EmptyRoot()); err != nil {
		return nil, sum, err
	}

	r := replayer{cfg: cfg, sum: &sum, policies: map[[32]byte]*policy.Policy{}, workers: map[string]*workerState{}, collateral: map[[32]byte][]byte{}}
	rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	for next := uint64(0); next < cp.Size; {
		page, err := cfg.Source.Entries(ctx, next, min(cp.Size, next+proto.MaxLogPage))
		if err != nil {
			return nil, sum, fmt.Errorf("fetching entries from %d: %w", next, err)
		}
		if len(page) == 0 {
			return nil, sum, fmt.Errorf("fetching entries from %d: none served", next)
		}
		for _, raw := range page {
			if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(raw), nil); err != nil {
				return nil, sum, err
			}
			e, err := translog.ParseEntry(raw)
			if err != nil {
				return nil, sum, &LogError{Err: fmt.Errorf("entry %d: %w", next, err)}
			}
			if err := r.entry(ctx, next, e); err != nil {
				return nil, sum, err
			}
			next++
			if from != nil && next == from.Size {
				root, err := rng.GetRootHash(nil)
				if err != nil {
					return nil, sum, err
				}
				if err := checkFrom(next, root); err != nil {
					return nil, sum, err
				}
			}
		}
		if cfg.Progress != nil {
			cfg.Progress(next, cp.Size)
		}
	}
	root := rfc6962.DefaultHasher.EmptyRoot()
	if cp.Size > 0 {
		if root, err = rng.GetRootHash(nil); err != nil {
			return nil, sum, err
		}
	}
	if [32]byte(root) != cp.Root {
		return nil, sum, &LogError{Err: fmt.Errorf("the %d entries served hash to %x, not to the checkpoint's root %x: an entry was changed, dropped or inserted", cp.Size, root, cp.Root)}
	}
	for id, w := range r.workers {
		if w.active && cp.Time.After(w.expires) {
			r.find(Finding{Index: w.index, Kind: "checkpoint", WorkerID: id, Time: cp.Time, Code: FindingStale,
				Reason: fmt.Sprintf("evidence of entry %d expired at %s and the worker is still admitted at the checkpoint's time %s", w.index, w.expires.Format(time.RFC3339), cp.Time.Format(time.RFC3339))})
		}
	}
	return signed, sum, nil
}

type replayer struct {
	cfg        Config
	sum        *Summary
	policies   map[[32]byte]*policy.Policy
	current    [32]byte // the latest logged policy
	workers    map[string]*workerState
	collateral map[[32]byte][]byte // fetched collateral, by hash
}

func (r *replayer) find(f Finding) {
	r.sum.Findings++
	if r.cfg.Finding != nil {
		r.cfg.Finding(f)
	}
}

func (r *replayer) entry(ctx context.Context, i uint64, e *translog.Entry) error {
	find := func(code, format string, args ...any) {
		r.find(Finding{Index: i, Kind: e.Kind.String(), WorkerID: e.WorkerID, Time: e.Time, Code: code, Reason: fmt.Sprintf(format, args...)})
	}
	w := r.workers[e.WorkerID]
	// Whatever this entry is, a worker whose evidence expired before it
	// was kept too long.
	if w != nil && w.active && e.Kind != translog.KindPolicy && e.Time.After(w.expires) {
		find(FindingStale, "evidence of entry %d expired at %s; the gateway logged nothing for the worker until %s", w.index, w.expires.Format(time.RFC3339), e.Time.Format(time.RFC3339))
	}
	switch e.Kind {
	case translog.KindPolicy:
		r.sum.Policies++
		p, err := policy.Parse(e.Policy)
		if err != nil {
			find(FindingUnknownPolicy, "the logged policy does not parse: %v", err)
			return nil
		}
		h := translog.PolicyHashOf(e.Policy)
		r.policies[h], r.current = p, h
	case translog.KindDrain:
		r.sum.Drains++
		if w == nil || !w.active {
			find(FindingNotAdmitted, "drain of a worker that is not admitted")
			return nil
		}
		w.active = false
	case translog.KindEviction:
		r.sum.Evictions++
		if w == nil {
			find(FindingNotAdmitted, "eviction of a worker that is not admitted")
			return nil
		}
		delete(r.workers, e.WorkerID)
	case translog.KindAdmission, translog.KindReattestation:
		if e.Kind == translog.KindAdmission {
			r.sum.Admissions++
		} else {
			r.sum.Reattestations++
			if w == nil {
				find(FindingNotAdmitted, "re-attestation of a worker the log never admitted")
			}
		}
		return r.evidence(ctx, i, e, find)
	}
	return nil
}

func (r *replayer) evidence(ctx context.Context, i uint64, e *translog.Entry, find func(code, format string, args ...any)) error {
	// Until it is shown to pass, the worker counts as admitted on this
	// entry with no freshness at all.
	r.workers[e.WorkerID] = &workerState{expires: e.Time, index: i, active: true}
	pol, ok := r.policies[e.PolicyHash]
	if !ok {
		find(FindingUnknownPolicy, "policy %x was never logged", e.PolicyHash[:8])
		return nil
	}
	if e.PolicyHash != r.current {
		find(FindingStalePolicy, "verified against policy %q (%x), not the latest logged %x", pol.Name, e.PolicyHash[:8], r.current[:8])
	}
	coll, ok := r.collateral[e.CollateralHash]
	if !ok {
		var err error
		if coll, err = r.cfg.Source.Collateral(ctx, e.CollateralHash); err != nil {
			find(FindingCollateral, "collateral %x: %v", e.CollateralHash[:8], err)
			return nil
		}
		if len(r.collateral) > 4096 {
			clear(r.collateral)
		}
		r.collateral[e.CollateralHash] = coll
	}
	bundle, err := e.FullBundle(coll)
	if err != nil {
		find(FindingCollateral, "%v", err)
		return nil
	}
	opts := r.cfg.VerifyOptions
	opts.Now = e.Time
	v, err := attestation.Verify(bundle, pol, opts)
	if err != nil {
		find(FindingRefused, "%v", err)
		return nil
	}
	b, _ := proto.ParseBundle(bundle) // Verify parsed it
	if !ed25519.Verify(e.ProviderKey, proto.EndorsementMessage(e.WorkerID, b.KeysHash()), e.Endorsement) {
		find(FindingEndorsement, "not a signature by the logged provider key over the worker's keys")
		return nil
	}
	r.workers[e.WorkerID].expires = v.Expires()
	return nil
}
