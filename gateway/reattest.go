package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/gateway/breaker"
	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

// reattestParallel bounds concurrent re-attestation calls.
const reattestParallel = 8

// maxWorkerJSON bounds a worker's JSON answer (an attestation carries a
// bundle).
const maxWorkerJSON = proto.MaxJSONBody

// reattestLoop challenges every worker whose last attestation is older
// than Config.ReattestInterval, drains those that fail and evicts those
// drained for Config.EvictAfter, until ctx is done.
func (g *Gateway) reattestLoop(ctx context.Context) {
	tick := time.NewTicker(min(g.cfg.ReattestInterval/4, 5*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// The loop does not wait for a round's challenges: a worker that
		// hangs until its timeout must not hold up the others'. A worker
		// still being challenged, or one for which no slot is free, is
		// taken up by a later tick.
		g.reattestRound(ctx, false)
	}
}

// ReattestDue runs one round of the re-attestation loop now and waits for
// it: it challenges every worker due, drains failures and evicts workers
// drained too long. Tests and operators call it to avoid waiting for the
// loop.
func (g *Gateway) ReattestDue(ctx context.Context) { g.reattestRound(ctx, true) }

// reattestRound challenges the workers due, at most reattestParallel at
// once across rounds. With wait it blocks for free slots and returns when
// its challenges are done; without, it skips workers it has no slot for
// and leaves its challenges running, tracked by the lifecycle's loops.
func (g *Gateway) reattestRound(ctx context.Context, wait bool) {
	now := g.cfg.Now()
	var wg sync.WaitGroup
	for _, w := range g.reg.all() {
		at, ok := g.reg.snapshot(w.id)
		if !ok {
			continue
		}
		if at.state == stateDraining && !at.drainedAt.IsZero() && now.Sub(at.drainedAt) >= g.cfg.EvictAfter {
			g.evict(ctx, w.id, at)
			continue
		}
		due := now.Sub(at.attestedAt) >= g.cfg.ReattestInterval || at.verified == nil
		if !due || !w.reattesting.CompareAndSwap(false, true) {
			continue
		}
		if wait {
			select {
			case g.reattestSlots <- struct{}{}:
			case <-ctx.Done():
				w.reattesting.Store(false)
				wg.Wait()
				return
			}
		} else {
			select {
			case g.reattestSlots <- struct{}{}:
			default:
				w.reattesting.Store(false)
				continue
			}
		}
		done := wg.Done
		wg.Add(1)
		if !wait {
			wg.Done() // the round does not wait; the lifecycle does
			g.life.loops.Add(1)
			done = g.life.loops.Done
		}
		go func() {
			defer done()
			defer func() { <-g.reattestSlots; w.reattesting.Store(false) }()
			g.reattest(ctx, w, at)
			g.updateWorkerGauges()
		}()
	}
	wg.Wait()
	g.updateWorkerGauges()
}

// reattest sends one worker a fresh challenge and admits the evidence it
// answers with, or drains it.
func (g *Gateway) reattest(ctx context.Context, w *worker, at workerAt) {
	id := w.id
	log := g.log.With(slog.String("worker", id))
	err := g.challengeWorker(ctx, id, at)
	if err == nil {
		g.metrics.Reattested("ok")
		log.DebugContext(ctx, "worker re-attested")
		// A worker with an open breaker is not listed, so no request
		// would ever probe it: an exchange that passed once the open
		// interval is over is its probe.
		if w.breaker.State() == breaker.Open && w.breaker.Allow() {
			w.breaker.Success()
			g.noteBreaker(w)
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	g.metrics.Reattested("failed")
	log.WarnContext(ctx, "re-attestation failed", slog.Any("err", err))
	if at.state == stateDraining {
		return
	}
	g.logStateChange(ctx, translog.KindDrain, id, "re-attestation failed: "+drainReason(err))
	now := g.cfg.Now()
	if err := g.store.SetWorkerState(ctx, id, stateDraining, now); err != nil && !errors.Is(err, store.ErrNotFound) {
		log.ErrorContext(ctx, "recording drain", slog.Any("err", err))
	}
	if g.reg.setState(id, stateDraining, now) {
		g.metrics.Drained("reattestation_failed")
		log.WarnContext(ctx, "worker drained: no new requests; in-flight ones finish", slog.Duration("evict_after", g.cfg.EvictAfter))
	}
}

// challengeWorker does the exchange: challenge out, attestation back,
// admission.
func (g *Gateway) challengeWorker(ctx context.Context, id string, at workerAt) error {
	ch, err := g.newChallenge(false)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.ReattestTimeout)
	defer cancel()
	var att proto.Attestation
	for try := 0; ; try++ {
		err = g.callWorker(ctx, at, proto.PathAttest, ch, &att)
		var busy *workerBusy
		if err == nil || !errors.As(err, &busy) || try == 2 {
			break
		}
		// A worker busy with another attestation (or its own
		// enrollment) says when to come back; the timeout still bounds
		// the whole exchange.
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(busy.retryAfter, 2*time.Second)):
		}
	}
	if err != nil {
		return err
	}
	b, err := proto.ParseBundle(att.Bundle)
	if err != nil {
		return fmt.Errorf("attestation: %w", err)
	}
	if !bytes.Equal(b.Nonce[:], ch.Nonce) {
		return errors.New("attestation: the bundle binds another nonce than the challenge's")
	}
	next := at
	next.verified, next.attestedAt = nil, time.Time{}
	_, err = g.admit(ctx, translog.KindReattestation, id, next, att.Bundle, att.Endorsement, g.cfg.Now())
	return err
}

// callWorker posts in as JSON to a worker's path over its pinned client
// and decodes its JSON answer into out, bounded.
func (g *Gateway) callWorker(ctx context.Context, at workerAt, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(at.url, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := at.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxWorkerJSON+1))
	if err != nil {
		return err
	}
	if len(data) > maxWorkerJSON {
		return fmt.Errorf("worker answer over %d bytes", maxWorkerJSON)
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return &workerBusy{retryAfter: time.Duration(max(ra, 1)) * time.Second}
	}
	if resp.StatusCode != http.StatusOK {
		var e proto.ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("worker answered %d %s", resp.StatusCode, e.Error.Code)
		}
		return fmt.Errorf("worker answered status %d", resp.StatusCode)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("worker answer: %w", err)
	}
	return nil
}

// workerBusy is a worker's 503: busy, or not ready yet.
type workerBusy struct{ retryAfter time.Duration }

func (e *workerBusy) Error() string {
	return fmt.Sprintf("worker busy (503, retry after %v)", e.retryAfter)
}

// evict deletes a worker drained for Config.EvictAfter.
func (g *Gateway) evict(ctx context.Context, id string, at workerAt) {
	g.logStateChange(ctx, translog.KindEviction, id, fmt.Sprintf("drained since %s, longer than %v", at.drainedAt.UTC().Format(time.RFC3339), g.cfg.EvictAfter))
	if _, err := g.store.DeleteWorker(ctx, id, g.cfg.Now()); err != nil {
		g.log.ErrorContext(ctx, "evicting worker", slog.String("worker", id), slog.Any("err", err))
		return
	}
	g.reg.remove(id)
	g.metrics.Evicted(id)
	g.log.WarnContext(ctx, "worker evicted: drained too long", slog.String("worker", id), slog.Time("drained_at", at.drainedAt))
}

// updateWorkerGauges publishes the count of workers by state.
func (g *Gateway) updateWorkerGauges() {
	active, draining := 0, 0
	for _, w := range g.reg.all() {
		at, _ := g.reg.snapshot(w.id)
		switch {
		case at.state == stateDraining:
			draining++
		case at.verified != nil:
			active++
		}
	}
	g.metrics.SetWorkers(active, draining)
}

// syncLoop reloads what other replicas changed in the store, every
// Config.SyncInterval, until ctx is done.
func (g *Gateway) syncLoop(ctx context.Context) {
	tick := time.NewTicker(g.cfg.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := g.Sync(ctx); err != nil && ctx.Err() == nil {
			g.log.WarnContext(ctx, "syncing the registry from the store", slog.Any("err", err))
		}
	}
}

// Sync reloads workers, deletions and pools changed in the store since the
// last sync: another replica's enrollments, drains and evictions.
func (g *Gateway) Sync(ctx context.Context) error {
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	now := g.cfg.Now()
	// Overlap the window a little: a write committed with an UpdatedAt
	// just before the last sync's time may have become visible after it.
	since := g.syncedAt.Add(-2 * g.cfg.SyncInterval)
	changed, err := g.store.WorkersUpdatedSince(ctx, since)
	if err != nil {
		return err
	}
	deleted, err := g.store.DeletedWorkersSince(ctx, since)
	if err != nil {
		return err
	}
	pools, err := g.store.Pools(ctx)
	if err != nil {
		return err
	}
	g.reg.setPools(pools)
	for _, id := range deleted {
		g.reg.remove(id)
	}
	g.regMu.Lock()
	for _, sw := range changed {
		cur, ok := g.reg.snapshot(sw.ID)
		if ok && cur.bundleHash == sw.BundleHash && cur.state == sw.State {
			continue
		}
		g.reg.admit(sw.ID, g.atOf(ctx, sw, now))
	}
	g.regMu.Unlock()
	if len(changed) > 0 {
		keys, err := g.store.Keys(ctx)
		if err != nil {
			return err
		}
		g.reg.restoreKeys(keys, now)
	}
	g.syncedAt = now
	return nil
}

// drainReason is the public part of a failed re-attestation, for the
// transparency log: the attestation failure class or the API code, never
// free text a worker wrote.
func drainReason(err error) string {
	if c := attestation.CodeOf(err); c != "" {
		return string(c)
	}
	if c := api.CodeOf(err); c != api.Internal {
		return string(c)
	}
	return "no valid answer"
}
