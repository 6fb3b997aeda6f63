package gateway

import (
	"bytes"
	"crypto/ed25519"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/gateway/breaker"
	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/proto"
)

var errClosed = api.New(api.Unavailable, "the gateway is shutting down")

// Worker states, as stored.
const (
	stateActive   = "active"
	stateDraining = "draining"
)

// worker is one admitted worker. The pointer for a worker id never
// changes while it is registered, so its outstanding count and breaker
// survive re-attestation.
type worker struct {
	id string
	// outstanding counts relays to this worker in progress on this
	// replica.
	outstanding atomic.Int64
	breaker     *breaker.Breaker
	// reattesting is set while a re-attestation call is out.
	reattesting atomic.Bool

	// Fields below are replaced on admission and sync; read and write
	// them with registry.mu held.
	at workerAt
}

// workerAt is a worker's registration as of its last admission.
type workerAt struct {
	// The fields route and listing read come first, next to worker's
	// own, so that each worker costs them few cache lines.
	verified    *attestation.Verified
	state       string
	pool        *pool // the pool reserving this worker, or nil
	capacity    int
	serveURL    string
	client      *http.Client // pinned to tlsPin, presenting the gateway's certificate
	tasks       []string
	providerKey ed25519.PublicKey

	providerID  string
	endorsement []byte
	url         string
	models      []string
	region      string
	tlsPin      []byte
	bundleHash  [32]byte // of the stored bundle, verified or not
	admittedAt  time.Time
	attestedAt  time.Time
	drainedAt   time.Time
}

// load is outstanding over capacity, scaled to avoid floats.
func (w *worker) load(capacity int) int64 {
	return w.outstanding.Load() * 1024 / int64(max(capacity, 1))
}

// pool is a tenant's reserved capacity.
type pool struct {
	id, tenant, name string
	workers          []string
	slots            int
	lend             bool
	// inUse counts the tenant's relays on the pool's nodes and slots;
	// slotUse those on its slots (unpooled workers).
	inUse   atomic.Int64
	slotUse atomic.Int64
}

// keyRoute sends one key id to a worker until the evidence that bound the
// key expires.
type keyRoute struct {
	w       *worker
	expires time.Time
}

// registry is the in-memory routing table, a cache of the store.
type registry struct {
	breakerCfg breaker.Config

	mu      sync.RWMutex // guards workers, keys, pools and the at field of every worker
	workers map[string]*worker
	keys    map[proto.KeyID]keyRoute
	pools   map[string]*pool
	// unpooledCapacity is the capacity of active unpooled workers;
	// slotPools are the pools with Slots.
	unpooledCapacity int64
	slotPools        []*pool

	// unpooledOutstanding counts relays in progress on unpooled workers.
	unpooledOutstanding atomic.Int64
}

func newRegistry(bc breaker.Config) *registry {
	return &registry{
		breakerCfg: bc,
		workers:    make(map[string]*worker),
		keys:       make(map[proto.KeyID]keyRoute),
		pools:      make(map[string]*pool),
	}
}

// admit installs a worker's registration and routes the keys of its
// verified evidence to it. A nil at.verified installs a worker that is
// known (so it can be challenged) but neither listed nor routed to.
func (r *registry) admit(id string, at workerAt) *worker {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.workerLocked(id)
	at.pool = w.at.pool
	if old := w.at.client; old != nil && old != at.client {
		if bytes.Equal(w.at.tlsPin, at.tlsPin) {
			at.client = old // keep the pooled connections
		} else {
			old.CloseIdleConnections()
		}
	}
	w.at = at
	if at.verified != nil {
		for _, k := range at.verified.HPKEKeys() {
			r.keys[k.ID()] = keyRoute{w: w, expires: at.verified.Expires()}
		}
	}
	r.recountLocked()
	return w
}

// workerLocked returns the worker with id, creating it. r.mu is held.
func (r *registry) workerLocked(id string) *worker {
	w := r.workers[id]
	if w == nil {
		w = &worker{id: id, breaker: breaker.New(r.breakerCfg)}
		r.workers[id] = w
		if p := r.reservingLocked(id); p != nil {
			w.at.pool = p
		}
	}
	return w
}

// setState changes a worker's state; it reports whether the worker is
// known.
func (r *registry) setState(id, state string, at time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.workers[id]
	if w == nil {
		return false
	}
	w.at.state = state
	if state == stateDraining {
		w.at.drainedAt = at
	} else {
		w.at.drainedAt = time.Time{}
	}
	r.recountLocked()
	return true
}

// remove forgets a worker and its keys.
func (r *registry) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.workers[id]
	if w == nil {
		return
	}
	delete(r.workers, id)
	for k, kr := range r.keys {
		if kr.w == w {
			delete(r.keys, k)
		}
	}
	if w.at.client != nil {
		w.at.client.CloseIdleConnections()
	}
	r.recountLocked()
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

// closeIdle closes every worker client's idle connections.
func (r *registry) closeIdle() {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, w := range r.workers {
		if w.at.client != nil {
			w.at.client.CloseIdleConnections()
		}
	}
}

// setPools replaces the pools, keeping the counters of those that stay.
func (r *registry) setPools(ps []store.Pool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[string]*pool, len(ps))
	for _, sp := range ps {
		p := r.pools[sp.ID]
		if p == nil || p.tenant != sp.TenantID {
			p = &pool{id: sp.ID, tenant: sp.TenantID}
		}
		p.name, p.workers, p.slots, p.lend = sp.Name, slices.Clone(sp.Workers), sp.Slots, sp.Lend
		next[sp.ID] = p
	}
	r.pools = next
	for id, w := range r.workers {
		w.at.pool = r.reservingLocked(id)
	}
	r.recountLocked()
}

// reservingLocked returns the pool reserving worker id, or nil. r.mu is
// held.
func (r *registry) reservingLocked(id string) *pool {
	var found *pool
	for _, p := range r.pools {
		if slices.Contains(p.workers, id) && (found == nil || p.id < found.id) {
			found = p // the lowest pool id wins if an operator reserved a node twice
		}
	}
	return found
}

// recountLocked recomputes the unpooled capacity and the slot pools.
// r.mu is held for writing.
func (r *registry) recountLocked() {
	var c int64
	for _, w := range r.workers {
		if w.at.pool == nil && w.at.state == stateActive && w.at.verified != nil {
			c += int64(w.at.capacity)
		}
	}
	r.unpooledCapacity = c
	r.slotPools = r.slotPools[:0]
	for _, p := range r.pools {
		if p.slots > 0 {
			r.slotPools = append(r.slotPools, p)
		}
	}
	slices.SortFunc(r.slotPools, func(a, b *pool) int { return cmpString(a.id, b.id) })
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// tenantSlotPool returns tenant's first slot pool with an unused slot, or
// nil. r.mu is held.
func (r *registry) tenantSlotPoolLocked(tenant string) *pool {
	for _, p := range r.slotPools {
		if p.tenant == tenant && p.slotUse.Load() < int64(p.slots) {
			return p
		}
	}
	return nil
}

// unpooledFreeForOthersLocked is the unpooled capacity free for a tenant
// without an unused slot: free capacity less every pool's unused slots.
// r.mu is held.
func (r *registry) unpooledFreeForOthersLocked() int64 {
	free := r.unpooledCapacity - r.unpooledOutstanding.Load()
	for _, p := range r.slotPools {
		free -= max(int64(p.slots)-p.slotUse.Load(), 0)
	}
	return free
}

// candidate is a worker picked for a listing or a relay attempt, copied
// out of the registry.
type candidate struct {
	w        *worker
	serveURL string
	client   *http.Client
	capacity int
	index    int   // position in the request's candidate list, for relays
	load     int64 // snapshot, for ordering
	// pool is the tenant's pool this attempt counts against, if any;
	// slot reports it counts against the pool's slots.
	pool     *pool
	slot     bool
	unpooled bool // the worker is in no pool: counts against unpooled capacity
}

// usable reports whether w may be listed or routed to tenant at now, and
// which of tenant's pools the use counts against. When it may not, busy
// reports that it is only for want of spare capacity (a lent node that is
// full, or unpooled capacity held for other tenants' slots), so that a
// later try may succeed. r.mu is held.
func (r *registry) usableLocked(w *worker, tenant string, now time.Time) (ok bool, p *pool, slot, busy bool) {
	at := &w.at
	if at.verified == nil || at.state != stateActive || !at.verified.Expires().After(now) {
		return false, nil, false, false
	}
	if at.pool != nil {
		if at.pool.tenant == tenant {
			return true, at.pool, false, false
		}
		// Another tenant's node: only if its pool lends and it has room.
		if !at.pool.lend {
			return false, nil, false, false
		}
		room := w.outstanding.Load() < int64(at.capacity)
		return room, nil, false, !room
	}
	if sp := r.tenantSlotPoolLocked(tenant); sp != nil {
		return true, sp, true, false
	}
	free := r.unpooledFreeForOthersLocked() > 0 || len(r.slotPools) == 0
	return free, nil, false, !free
}

// route maps a request's candidate key ids to workers tenant may use now.
// Unknown, expired, drained and full workers are skipped, and a worker
// named by several keys is kept once, at its first position. Workers with
// an open breaker stay: the relay asks each breaker, so that one whose
// open interval is over gets its probe.
// The tenant's own pool nodes come first. The first is the better of two
// picked at random (among the pool nodes, if any); the rest follow least
// loaded first. It reports whether any candidate was left out only for
// want of capacity.
func (r *registry) route(cands []proto.Candidate, tenant string, now time.Time) (out []candidate, full bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out = make([]candidate, 0, len(cands))
	for i, c := range cands {
		kr, ok := r.keys[c.KeyID]
		if !ok || !kr.expires.After(now) {
			continue
		}
		w := kr.w
		if slices.ContainsFunc(out, func(o candidate) bool { return o.w == w }) {
			continue
		}
		usable, p, slot, busy := r.usableLocked(w, tenant, now)
		if !usable {
			full = full || busy
			continue
		}
		if w.outstanding.Load() >= int64(w.at.capacity) {
			full = true
			continue
		}
		out = append(out, candidate{
			w: w, serveURL: w.at.serveURL, client: w.at.client, capacity: w.at.capacity,
			index: i, load: w.load(w.at.capacity), pool: p, slot: slot, unpooled: w.at.pool == nil,
		})
	}
	// The tenant's own pool nodes come first: they are reserved for it.
	own := 0
	for i := range out {
		if out[i].pool != nil && !out[i].slot {
			out[own], out[i] = out[i], out[own]
			own++
		}
	}
	if own > 0 {
		twoChoices(out[:own])
		sortByLoad(out[own:])
	} else {
		twoChoices(out)
	}
	return out, full
}

// twoChoices orders cs for relay attempts: the better (less loaded) of two
// picked at random first, then the rest by load, ties in random order.
func twoChoices(cs []candidate) {
	if len(cs) < 2 {
		return
	}
	rand.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	if cs[1].load < cs[0].load {
		cs[0], cs[1] = cs[1], cs[0]
	}
	sortByLoad(cs[1:])
}

// sortByLoad orders cs by load, keeping the order of equals. It is an
// insertion sort: stable, and the quickest for the few candidates of a
// request (at most proto.MaxCandidates).
func sortByLoad(cs []candidate) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].load < cs[j-1].load; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

// listed is a worker a listing may include: a snapshot of its load, and
// a random rank among equally loaded workers.
type listed struct {
	w    *worker
	load int64
	tie  uint64
	pool *pool // the tenant's pool, for one of its own nodes
}

// before orders listed workers least loaded first, ties at random.
func (l listed) before(m listed) bool {
	return l.load < m.load || l.load == m.load && l.tie < m.tie
}

// listing returns up to n workers serving task that tenant may use at now:
// the tenant's pool nodes first, then the others, each part spread over
// distinct providers (by endorsement key), least loaded first within a
// provider.
//
// It is the same as sorting each part by load (ties in random order) and
// taking, pass after pass, the first worker not yet taken of each
// provider in that order, but it keeps only each provider's n best
// workers, and copies out only the n it lists.
func (r *registry) listing(task, tenant string, n int, now time.Time) []proto.CandidateInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	own, other := newDiverse(n), newDiverse(n)
	for _, w := range r.workers {
		if !slices.Contains(w.at.tasks, task) {
			continue
		}
		usable, p, slot, _ := r.usableLocked(w, tenant, now)
		if !usable || w.breaker.State() == breaker.Open {
			continue
		}
		l := listed{w: w, load: w.load(w.at.capacity), tie: rand.Uint64()}
		if p != nil && !slot {
			l.pool = p
			own.add(l)
		} else {
			other.add(l)
		}
	}
	out := make([]proto.CandidateInfo, 0, n)
	out = own.appendTo(out, n)
	return other.appendTo(out, n)
}

// diverse collects listed workers by provider key, keeping each
// provider's n best.
type diverse struct {
	n     int
	byKey map[string]*[]listed // each sorted by before, at most n long
}

func newDiverse(n int) *diverse { return &diverse{n: n, byKey: make(map[string]*[]listed)} }

func (d *diverse) add(l listed) {
	best := d.byKey[string(l.w.at.providerKey)]
	if best == nil {
		best = new([]listed)
		d.byKey[string(l.w.at.providerKey)] = best
	}
	b := *best
	if len(b) == d.n && !l.before(b[d.n-1]) {
		return
	}
	i := len(b)
	for i > 0 && l.before(b[i-1]) {
		i--
	}
	if len(b) == d.n {
		b = b[:d.n-1]
	}
	*best = slices.Insert(b, i, l)
}

// appendTo appends up to n-len(out) workers to out, one per provider in
// turn (each provider's best first, the providers' best in order), then
// again, until done. r.mu is held.
func (d *diverse) appendTo(out []proto.CandidateInfo, n int) []proto.CandidateInfo {
	var round []listed
	for k := 0; len(out) < n; k++ {
		round = round[:0]
		for _, best := range d.byKey {
			if k < len(*best) {
				round = append(round, (*best)[k])
			}
		}
		if len(round) == 0 {
			break
		}
		slices.SortFunc(round, func(a, b listed) int {
			switch {
			case a.before(b):
				return -1
			case b.before(a):
				return 1
			}
			return 0
		})
		for _, l := range round[:min(len(round), n-len(out))] {
			out = append(out, l.info())
		}
	}
	return out
}

// info is what a listing says of l's worker. r.mu is held.
func (l listed) info() proto.CandidateInfo {
	at := &l.w.at
	c := proto.CandidateInfo{
		WorkerID: l.w.id, Tasks: slices.Clone(at.tasks), Bundle: at.verified.Bundle(),
		ProviderID: at.providerID, ProviderKey: at.providerKey, Endorsement: at.endorsement,
		Region: at.region, Models: at.models, Capacity: at.capacity,
	}
	if l.pool != nil {
		c.Pool = l.pool.id
	}
	return c
}
