package gateway

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

// The transparency log, as the gateway writes and serves it (package
// translog; proto/SPEC.md §15):
//
//   - New logs the admission policy in full when the log does not hold it
//     as its latest policy (log meta "policy" is its hash), and fails if
//     it cannot.
//   - admit appends an admission or re-attestation entry after the
//     evidence and the endorsement verified and before the worker is
//     stored or routed; if the append fails, the worker is refused with
//     api.Unavailable. A worker whose entry is not in the log is never
//     admitted, nor re-admitted after a re-attestation (it is drained).
//   - Drains and evictions are logged before they take effect; if that
//     append fails they take effect anyway (refusing service is the safe
//     direction) and the failure is logged as an error.
//   - The listing carries each candidate's entry and inclusion proof
//     against the checkpoint it names. The gateway re-reads the stored
//     checkpoint at most every logViewTTL, or at once when a candidate's
//     entry is past it, so replicas list the same log.

// logViewTTL is how long the gateway lists against a checkpoint before
// it reads the stored one again.
const logViewTTL = time.Second

// logMetaPolicy is the log meta key holding the hash of the latest
// logged admission policy.
const logMetaPolicy = "policy"

// maxLogRefs bounds the cache of bundles' entries; past it, it is
// emptied (it refills from the store).
const maxLogRefs = 1 << 16

// tlog is the gateway's side of the transparency log.
type tlog struct {
	log        *translog.Log
	policyHash [32]byte

	mu     sync.Mutex // guards everything below
	signed []byte     // the checkpoint listings name
	cp     translog.Checkpoint
	readAt time.Time           // when signed was read from the store
	refs   map[[32]byte]logRef // bundle hash -> its entry
	proofs map[uint64][][]byte // entry index -> inclusion proof in cp's tree
}

// logRef is what a listing needs of an evidence entry.
type logRef struct {
	index uint64
	entry *translog.Entry
}

// openLog sets up the transparency log over the store and logs the
// admission policy.
func (g *Gateway) openLog(ctx context.Context) error {
	st, ok := g.store.(translog.Storage)
	if !ok {
		return errors.New("the store does not hold a transparency log")
	}
	l, err := translog.New(ctx, translog.Config{Storage: st, Signer: g.cfg.LogKey, Now: g.cfg.Now})
	if err != nil {
		return err
	}
	pol, err := json.Marshal(g.cfg.AdmissionPolicy)
	if err != nil {
		return err
	}
	hash := translog.PolicyHashOf(pol)
	idx, appended, err := l.AppendUnlessMeta(ctx, logMetaPolicy, hex.EncodeToString(hash[:]),
		translog.Pending{Entry: translog.NewPolicy(g.cfg.Now(), pol)})
	if err != nil {
		return fmt.Errorf("logging the admission policy: %w", err)
	}
	if appended {
		g.metrics.LogAppended(translog.KindPolicy.String(), idx+1)
		g.log.InfoContext(ctx, "admission policy logged", slog.String("policy", g.cfg.AdmissionPolicy.Name), slog.Uint64("log_index", idx))
	}
	g.tlog = &tlog{log: l, policyHash: hash, refs: map[[32]byte]logRef{}, proofs: map[uint64][][]byte{}}
	return nil
}

// LogPublicKey returns the transparency log's verifier key in note's
// text form ("origin+hash+base64"), which clients and auditors pin.
func (g *Gateway) LogPublicKey() string { return g.cfg.LogKey.VerifierKey() }

// logEvidence appends an admission or re-attestation entry. Its error is
// an *api.Error for the caller to return.
func (g *Gateway) logEvidence(ctx context.Context, kind translog.Kind, id string, at workerAt, bundle []byte, now time.Time) error {
	e, coll, err := translog.NewEvidence(kind, now, id, at.providerID, at.providerKey, at.endorsement, g.tlog.policyHash, bundle)
	if err == nil {
		var idx uint64
		idx, err = g.tlog.log.Append(ctx, translog.Pending{Entry: e, Collateral: coll})
		if err == nil {
			g.tlog.remember(e.BundleHash, logRef{index: idx, entry: &e})
			g.metrics.LogAppended(kind.String(), idx+1)
			return nil
		}
	}
	g.metrics.LogAppendFailed(kind.String())
	g.metrics.Refused("log")
	g.log.ErrorContext(ctx, "transparency log append failed; worker not admitted", slog.String("worker", id), slog.Any("err", err))
	if ctx.Err() != nil {
		return api.Wrap(api.Unavailable, "request cancelled", err)
	}
	return &api.Error{Code: api.Unavailable, Message: "the transparency log is unavailable; try again later", RetryAfter: 5 * time.Second, Err: err}
}

// logStateChange appends a drain or eviction entry, logging a failure.
func (g *Gateway) logStateChange(ctx context.Context, kind translog.Kind, id, reason string) {
	idx, err := g.tlog.log.Append(ctx, translog.Pending{Entry: translog.NewStateChange(kind, g.cfg.Now(), id, reason)})
	if err != nil {
		g.metrics.LogAppendFailed(kind.String())
		g.log.ErrorContext(ctx, "transparency log append failed", slog.String("worker", id), slog.String("entry", kind.String()), slog.Any("err", err))
		return
	}
	g.metrics.LogAppended(kind.String(), idx+1)
}

func (t *tlog) remember(bundleHash [32]byte, r logRef) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.refs) >= maxLogRefs {
		clear(t.refs)
	}
	t.refs[bundleHash] = r
}

// view returns the checkpoint to list against, reading the stored one
// when the cached one is older than logViewTTL or smaller than need.
func (t *tlog) view(ctx context.Context, now time.Time, need uint64) ([]byte, translog.Checkpoint, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.signed != nil && now.Sub(t.readAt) < logViewTTL && now.Sub(t.readAt) >= 0 && t.cp.Size >= need {
		return t.signed, t.cp, nil
	}
	signed, cp, err := t.log.Checkpoint(ctx)
	if err != nil {
		return nil, translog.Checkpoint{}, err
	}
	if cp.Size != t.cp.Size || t.signed == nil {
		clear(t.proofs)
	}
	t.signed, t.cp, t.readAt = signed, cp, now
	return signed, cp, nil
}

// ref returns a bundle's entry, from the cache or the store.
func (t *tlog) ref(ctx context.Context, bundleHash [32]byte) (logRef, error) {
	t.mu.Lock()
	r, ok := t.refs[bundleHash]
	t.mu.Unlock()
	if ok {
		return r, nil
	}
	idx, e, err := t.log.BundleEntry(ctx, bundleHash)
	if err != nil {
		return logRef{}, err
	}
	r = logRef{index: idx, entry: e}
	t.remember(bundleHash, r)
	return r, nil
}

// proof returns the inclusion proof of index in the tree of cp.
func (t *tlog) proof(ctx context.Context, index uint64, cp translog.Checkpoint) ([][]byte, error) {
	t.mu.Lock()
	p, ok := t.proofs[index]
	same := t.cp.Size == cp.Size
	t.mu.Unlock()
	if ok && same {
		return p, nil
	}
	hashes, err := t.log.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	if t.cp.Size == cp.Size {
		t.proofs[index] = hashes
	}
	t.mu.Unlock()
	return hashes, nil
}

// decorateListing adds the log checkpoint and each candidate's entry and
// inclusion proof. A candidate whose entry cannot be proved is listed
// without one (clients that check the log refuse it) and the cause is
// logged.
func (g *Gateway) decorateListing(ctx context.Context, list *proto.CandidateList, now time.Time) {
	if len(list.Candidates) == 0 {
		return
	}
	refs := make([]logRef, len(list.Candidates))
	var need uint64
	for i, c := range list.Candidates {
		// The hash of the bundle as listed, not of the worker's current
		// one: a re-attestation may have replaced it since.
		r, err := g.tlog.ref(ctx, proto.BundleHash(c.Bundle))
		if err != nil {
			g.log.WarnContext(ctx, "listing a candidate without its log entry", slog.String("worker", c.WorkerID), slog.Any("err", err))
			continue
		}
		refs[i] = r
		need = max(need, r.index+1)
	}
	signed, cp, err := g.tlog.view(ctx, now, need)
	if err != nil {
		g.log.WarnContext(ctx, "listing without a log checkpoint", slog.Any("err", err))
		return
	}
	list.LogCheckpoint = signed
	for i := range list.Candidates {
		r := refs[i]
		if r.entry == nil || r.index >= cp.Size {
			continue
		}
		p, err := g.tlog.proof(ctx, r.index, cp)
		if err != nil {
			g.log.WarnContext(ctx, "listing a candidate without its inclusion proof", slog.String("worker", list.Candidates[i].WorkerID), slog.Any("err", err))
			continue
		}
		list.Candidates[i].Log = &proto.LogInclusion{
			Index: r.index, Kind: r.entry.Kind.String(), TimeMillis: r.entry.Time.UnixMilli(),
			PolicyHash: r.entry.PolicyHash[:], Proof: p,
		}
	}
}

// logError maps the log's errors for the HTTP API.
func logError(err error) error {
	switch {
	case errors.Is(err, translog.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return api.Wrap(api.NotFound, "no such log entry, size or collateral", err)
	case errors.Is(err, context.Canceled):
		return api.Wrap(api.Unavailable, "request cancelled", err)
	}
	return api.Wrap(api.Internal, "internal error", err)
}

// LogCheckpoint returns the latest signed checkpoint.
func (g *Gateway) LogCheckpoint(ctx context.Context) ([]byte, error) {
	if err := g.life.enter(); err != nil {
		return nil, err
	}
	defer g.life.leave()
	signed, _, err := g.tlog.log.Checkpoint(ctx)
	if err != nil {
		return nil, logError(err)
	}
	return signed, nil
}

// LogEntries returns entries [start, end) of the log, or fewer: at most
// proto.MaxLogPage of them and proto.MaxLogPageBytes in all (at least
// one). end must not pass the latest checkpoint.
func (g *Gateway) LogEntries(ctx context.Context, start, end uint64) ([][]byte, error) {
	if err := g.life.enter(); err != nil {
		return nil, err
	}
	defer g.life.leave()
	_, cp, err := g.tlog.log.Checkpoint(ctx)
	if err != nil {
		return nil, logError(err)
	}
	if start >= end || end > cp.Size {
		return nil, api.New(api.NotFound, fmt.Sprintf("entries: want start < end <= %d, the latest checkpoint's size", cp.Size))
	}
	end = min(end, start+proto.MaxLogPage)
	entries, err := g.tlog.log.Entries(ctx, start, end, cp.Size)
	if err != nil {
		return nil, logError(err)
	}
	total := 0
	for i, e := range entries {
		total += 4 + len(e)
		if total > proto.MaxLogPageBytes && i > 0 {
			return entries[:i], nil
		}
	}
	return entries, nil
}

// LogInclusionProof returns the proof that entry index is in the tree of
// size entries.
func (g *Gateway) LogInclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	if err := g.life.enter(); err != nil {
		return nil, err
	}
	defer g.life.leave()
	p, err := g.tlog.log.InclusionProof(ctx, index, size)
	if err != nil {
		return nil, logError(err)
	}
	return p, nil
}

// LogConsistencyProof returns the proof that the tree of to entries
// extends the tree of from.
func (g *Gateway) LogConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error) {
	if err := g.life.enter(); err != nil {
		return nil, err
	}
	defer g.life.leave()
	p, err := g.tlog.log.ConsistencyProof(ctx, from, to)
	if err != nil {
		return nil, logError(err)
	}
	return p, nil
}

// LogCollateral returns collateral the log references by its SHA-256.
func (g *Gateway) LogCollateral(ctx context.Context, hash [32]byte) ([]byte, error) {
	if err := g.life.enter(); err != nil {
		return nil, err
	}
	defer g.life.leave()
	c, err := g.tlog.log.Collateral(ctx, hash)
	if err != nil {
		return nil, logError(err)
	}
	return c, nil
}
