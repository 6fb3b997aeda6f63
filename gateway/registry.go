package gateway

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/proto"
)

var errClosed = api.New(api.Unavailable, "the gateway is shutting down")

// worker is one admitted worker. The pointer for a worker id never
// changes, so its outstanding count survives re-registration.
type worker struct {
	id string
	// outstanding counts relays to this worker in progress.
	outstanding atomic.Int64

	// Fields below are replaced on re-registration; read and write them
	// with registry.mu held.
	url        string // as registered
	serveURL   string // url + proto.PathServe
	tasks      []string
	verified   *attestation.Verified
	admittedAt time.Time
}

// keyRoute sends one key id to a worker until the evidence that bound the
// key expires.
type keyRoute struct {
	w       *worker
	expires time.Time
}

// registry is the in-memory routing table, a cache of the store.
type registry struct {
	mu      sync.RWMutex // guards workers, keys and the mutable fields of every worker
	workers map[string]*worker
	keys    map[proto.KeyID]keyRoute
}

func newRegistry() registry {
	return registry{workers: make(map[string]*worker), keys: make(map[proto.KeyID]keyRoute)}
}

// admit installs a verified registration and routes its keys to it.
func (r *registry) admit(id, url string, tasks []string, v *attestation.Verified, admittedAt time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.workers[id]
	if w == nil {
		w = &worker{id: id}
		r.workers[id] = w
	}
	w.url, w.serveURL, w.tasks, w.verified, w.admittedAt = url, serveURL(url), slices.Clone(tasks), v, admittedAt
	for _, k := range v.HPKEKeys() {
		r.keys[k.ID()] = keyRoute{w: w, expires: v.Expires()}
	}
}

// conflict returns the id of a worker other than id that one of keys
// routes to at now, or "".
func (r *registry) conflict(id string, keys []proto.HPKEKey, now time.Time) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range keys {
		if kr, ok := r.keys[k.ID()]; ok && kr.w.id != id && kr.expires.After(now) {
			return kr.w.id
		}
	}
	return ""
}

// prune forgets key ids whose evidence expired at or before now.
func (r *registry) prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, kr := range r.keys {
		if !kr.expires.After(now) {
			delete(r.keys, id)
		}
	}
}

// candidate is a worker picked for a listing or a relay attempt, copied
// out of the registry.
type candidate struct {
	w           *worker
	serveURL    string
	tasks       []string
	verified    *attestation.Verified
	index       int   // position in the request's candidate list, for relays
	outstanding int64 // snapshot, for ordering
}

// serving returns the workers that serve task and whose evidence is
// unexpired at now.
func (r *registry) serving(task string, now time.Time) []candidate {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []candidate
	for _, w := range r.workers {
		if w.verified == nil || !w.verified.Expires().After(now) || !slices.Contains(w.tasks, task) {
			continue
		}
		out = append(out, candidate{w: w, serveURL: w.serveURL, tasks: w.tasks, verified: w.verified, outstanding: w.outstanding.Load()})
	}
	return out
}

// route maps a request's candidate key ids to admitted workers whose key
// evidence is unexpired at now. Unknown and expired keys are skipped, and
// a worker named by several keys is kept once, at its first position.
func (r *registry) route(cands []proto.Candidate, now time.Time) []candidate {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []candidate
	for i, c := range cands {
		kr, ok := r.keys[c.KeyID]
		if !ok || !kr.expires.After(now) || kr.w.verified == nil {
			continue
		}
		if slices.ContainsFunc(out, func(o candidate) bool { return o.w == kr.w }) {
			continue
		}
		out = append(out, candidate{w: kr.w, serveURL: kr.w.serveURL, index: i, outstanding: kr.w.outstanding.Load()})
	}
	return out
}

// byLoad orders candidates by least outstanding requests, ties at random.
func byLoad(cs []candidate) {
	rand.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	slices.SortStableFunc(cs, func(a, b candidate) int {
		switch {
		case a.outstanding < b.outstanding:
			return -1
		case a.outstanding > b.outstanding:
			return 1
		}
		return 0
	})
}

func serveURL(base string) string {
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + proto.PathServe
}

// load fills the registry from the store. Every stored bundle is verified
// again under the current policy at the current time; workers that no
// longer pass are left out, with their keys.
func (g *Gateway) load(ctx context.Context) error {
	now := g.cfg.Now()
	pruned, err := g.store.PruneKeys(ctx, now)
	if err != nil {
		return err
	}
	workers, err := g.store.Workers(ctx)
	if err != nil {
		return err
	}
	keys, err := g.store.Keys(ctx)
	if err != nil {
		return err
	}
	admitted := 0
	for _, sw := range workers {
		v, err := attestation.Verify(sw.Bundle, g.cfg.AdmissionPolicy, g.verifyOptions(now))
		if err != nil {
			g.log.InfoContext(ctx, "stored worker not restored: its evidence no longer passes",
				slog.String("worker", sw.ID), slog.String("attestation_code", string(attestation.CodeOf(err))), slog.Any("err", err))
			continue
		}
		g.reg.admit(sw.ID, sw.URL, sw.Tasks, v, sw.AdmittedAt)
		admitted++
	}
	restoredKeys := 0
	g.reg.mu.Lock()
	for _, k := range keys {
		w := g.reg.workers[k.WorkerID]
		if w == nil || !k.ExpiresAt.After(now) {
			continue
		}
		if _, ok := g.reg.keys[k.ID]; !ok {
			g.reg.keys[k.ID] = keyRoute{w: w, expires: k.ExpiresAt}
			restoredKeys++
		}
	}
	g.reg.mu.Unlock()
	g.log.InfoContext(ctx, "registry loaded",
		slog.Int("workers_stored", len(workers)), slog.Int("workers_restored", admitted),
		slog.Int("earlier_keys_restored", restoredKeys), slog.Int64("keys_pruned", pruned))
	return nil
}

// record converts a registration to its store rows.
func record(id, url string, tasks []string, v *attestation.Verified, admittedAt time.Time) (store.Worker, []store.Key) {
	w := store.Worker{
		ID: id, URL: url, Tasks: tasks, Kind: v.Kind(), Bundle: v.Bundle(), BundleHash: v.BundleHash(),
		AdmittedAt: admittedAt, ExpiresAt: v.Expires(),
	}
	var keys []store.Key
	for _, k := range v.HPKEKeys() {
		keys = append(keys, store.Key{ID: k.ID(), WorkerID: id, ExpiresAt: v.Expires()})
	}
	return w, keys
}
