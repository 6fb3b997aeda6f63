package gateway_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/proto"
)

// checkEndorsed checks a listed candidate as a client does: its
// endorsement verifies under its provider key over its bundle's keys, and
// the provider key is p's.
func checkEndorsed(t *testing.T, c proto.CandidateInfo, p *providerDouble) {
	t.Helper()
	b, err := proto.ParseBundle(c.Bundle)
	if err != nil {
		t.Fatalf("candidate %s: %v", c.WorkerID, err)
	}
	if !ed25519.Verify(c.ProviderKey, proto.EndorsementMessage(c.WorkerID, b.KeysHash()), c.Endorsement) {
		t.Fatalf("candidate %s: the endorsement does not verify under the listed provider key", c.WorkerID)
	}
	if c.ProviderID != p.id || !bytes.Equal(c.ProviderKey, p.key.Public().(ed25519.PublicKey)) {
		t.Fatalf("candidate %s: provider %q, want %q with its registered key", c.WorkerID, c.ProviderID, p.id)
	}
}

func TestListingDiversity(t *testing.T) {
	e := newEnv(t)
	a := e.provider
	b := e.newProvider("p2")
	owner := map[string]*providerDouble{}
	for _, id := range []string{"a1", "a2", "a3"} {
		w := newWorkerDouble(t, id, e.clock)
		e.register(w, proto.TaskSummarize)
		owner[id] = a
	}
	for _, id := range []string{"b1", "b2"} {
		w := newWorkerDouble(t, id, e.clock)
		w.provider = b
		e.register(w, proto.TaskSummarize)
		owner[id] = b
	}
	providersOf := func(cs []proto.CandidateInfo) []string {
		var out []string
		for _, c := range cs {
			checkEndorsed(t, c, owner[c.WorkerID])
			out = append(out, c.ProviderID)
		}
		return out
	}
	// The listing is shuffled among equally loaded workers; the spread
	// over providers must hold every time.
	for range 10 {
		got := providersOf(e.listing(e.tenant, proto.TaskSummarize, 2))
		slices.Sort(got)
		if !slices.Equal(got, []string{"p1", "p2"}) {
			t.Fatalf("max 2: providers %v, want one of each", got)
		}
		got = providersOf(e.listing(e.tenant, proto.TaskSummarize, 4))
		if len(got) != 4 || got[0] == got[1] || got[2] == got[3] {
			t.Fatalf("max 4: providers %v, want two rounds of distinct providers", got)
		}
		all := e.listing(e.tenant, proto.TaskSummarize, 5)
		ids := listedIDs(all)
		providersOf(all)
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"a1", "a2", "a3", "b1", "b2"}) {
			t.Fatalf("max 5: found %v, want every worker once", ids)
		}
	}
}

func TestListingNodePools(t *testing.T) {
	e := newEnv(t)
	t2 := e.newTenant("t2", proto.NewAccount{})
	reserved := newWorkerDouble(t, "reserved", e.clock)
	lent := newWorkerDouble(t, "lent", e.clock)
	lent.capacity = 1
	open := newWorkerDouble(t, "open", e.clock)
	for _, w := range []*workerDouble{reserved, lent, open} {
		e.register(w, proto.TaskSummarize)
	}
	ps := e.createPool(proto.PoolSpec{ID: "t1-nodes", TenantID: "t1", Workers: []string{"reserved"}})
	if ps.Capacity != reserved.capacity || ps.WorkersAdmitted != 1 || ps.InUse != 0 {
		t.Fatalf("new pool status: found %+v, want capacity %d with 1 node admitted", ps, reserved.capacity)
	}
	e.createPool(proto.PoolSpec{ID: "t1-lent", TenantID: "t1", Workers: []string{"lent"}, Lend: true})

	// t1 is listed its pool nodes first, marked with their pool.
	for range 10 {
		l := e.listing(e.tenant, proto.TaskSummarize, 3)
		if len(l) != 3 {
			t.Fatalf("t1: listed %v, want 3", listedIDs(l))
		}
		first := []string{l[0].WorkerID, l[1].WorkerID}
		slices.Sort(first)
		if !slices.Equal(first, []string{"lent", "reserved"}) || l[2].WorkerID != "open" {
			t.Fatalf("t1: listed %v, want its pool nodes first, then open", listedIDs(l))
		}
		for _, c := range l {
			want := map[string]string{"reserved": "t1-nodes", "lent": "t1-lent", "open": ""}[c.WorkerID]
			if c.Pool != want {
				t.Fatalf("t1: %s listed with pool %q, want %q", c.WorkerID, c.Pool, want)
			}
		}
	}
	if l := e.listing(e.tenant, proto.TaskSummarize, 1); len(l) != 1 || l[0].Pool == "" {
		t.Fatalf("t1 max 1: listed %v, want one of its pool nodes", listedIDs(l))
	}

	// t2 is never listed the reserved node, and the lent one only while
	// it has spare capacity; no pool is named to it.
	t2Listing := func() []string {
		l := e.listing(t2, proto.TaskSummarize, proto.MaxListed)
		for _, c := range l {
			if c.Pool != "" {
				t.Fatalf("t2: %s listed with t1's pool %q", c.WorkerID, c.Pool)
			}
		}
		ids := listedIDs(l)
		slices.Sort(ids)
		return ids
	}
	if got := t2Listing(); !slices.Equal(got, []string{"lent", "open"}) {
		t.Fatalf("t2: listed %v, want lent and open", got)
	}
	held := e.relayInBackground(e.seal(proto.TaskSummarize, "hold", lent.key()), "hold")
	<-lent.held
	if got := t2Listing(); !slices.Equal(got, []string{"open"}) {
		t.Fatalf("t2 while the lent node is full: listed %v, want only open", got)
	}
	// t2 sealing to the full lent node is told to come back.
	if status, code, ra := e.relayRefused(t2, e.seal(proto.TaskSummarize, "x", lent.key())); status != http.StatusServiceUnavailable || code != "overloaded" || ra == "" {
		t.Fatalf("t2 to the full lent node: found %d %s (Retry-After %q), want 503 overloaded with Retry-After", status, code, ra)
	}
	// The pool shows the use, and so does the network's status.
	for _, ps := range e.status(e.tenant).Pools {
		want := map[string]int{"t1-lent": 1, "t1-nodes": 0}[ps.ID]
		if ps.InUse != want {
			t.Fatalf("pool %s in use: found %d, want %d", ps.ID, ps.InUse, want)
		}
	}
	close(lent.release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if got := t2Listing(); !slices.Equal(got, []string{"lent", "open"}) {
		t.Fatalf("t2 after the lent node freed up: listed %v, want lent and open", got)
	}
	// t2 relays through the lent node and the open one, never the
	// reserved one.
	e.relayOKAs(t2, e.seal(proto.TaskSummarize, "borrowed", lent.key()), "borrowed", lent)
	e.relayOKAs(t2, e.seal(proto.TaskSummarize, "open", open.key()), "open", open)
	before := reserved.hits.Load()
	// A node reserved and not lent is never t2's: no point retrying.
	if status, code, _ := e.relayRefused(t2, e.seal(proto.TaskSummarize, "x", reserved.key())); status != http.StatusUnprocessableEntity || code != "unknown_candidates" {
		t.Fatalf("t2 to the reserved node: found %d %s, want 422 unknown_candidates", status, code)
	}
	if reserved.hits.Load() != before {
		t.Fatal("t2's request reached t1's reserved node")
	}
	e.relayOK(e.seal(proto.TaskSummarize, "mine", reserved.key()), "mine", reserved)

	// Deleting the pool releases its node to everyone.
	if resp, body := e.doAs(e.admin, http.MethodDelete, proto.PathAdminPools+"/t1-nodes", "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete pool: %d %s", resp.StatusCode, body)
	}
	if got := t2Listing(); !slices.Equal(got, []string{"lent", "open", "reserved"}) {
		t.Fatalf("t2 after the pool's deletion: listed %v, want all three", got)
	}
	resp, body := e.doAs(e.admin, http.MethodDelete, proto.PathAdminPools+"/t1-nodes", "", nil)
	wantError(t, "delete the pool again", resp, body, http.StatusNotFound, "not_found")
}

func TestSlotPool(t *testing.T) {
	e := newEnv(t)
	t2 := e.newTenant("t2", proto.NewAccount{})
	shared := newWorkerDouble(t, "shared", e.clock)
	shared.capacity = 2
	e.register(shared, proto.TaskSummarize)
	ps := e.createPool(proto.PoolSpec{ID: "t1-slots", TenantID: "t1", Slots: 1})
	if ps.Capacity != 1 || ps.InUse != 0 {
		t.Fatalf("slot pool status: found %+v, want capacity 1, none in use", ps)
	}

	// Free unpooled capacity 2, one slot unused: t2 may take one.
	if l := e.listing(t2, proto.TaskSummarize, 0); len(l) != 1 {
		t.Fatalf("t2 before: listed %v, want shared", listedIDs(l))
	}
	held := e.relayInBackgroundAs(t2, e.seal(proto.TaskSummarize, "hold", shared.key()), "hold")
	<-shared.held

	// Free capacity 1, and t1's unused slot holds it: t2 is refused,
	// and not listed the worker.
	hits := shared.hits.Load()
	status, code, ra := e.relayRefused(t2, e.seal(proto.TaskSummarize, "x", shared.key()))
	if status != http.StatusServiceUnavailable || code != "overloaded" || ra == "" {
		t.Fatalf("t2 with only reserved slots left: found %d %s (Retry-After %q), want 503 overloaded with Retry-After", status, code, ra)
	}
	if shared.hits.Load() != hits {
		t.Fatal("the refused request reached the worker")
	}
	if l := e.listing(t2, proto.TaskSummarize, 0); len(l) != 0 {
		t.Fatalf("t2 with only reserved slots left: listed %v, want none", listedIDs(l))
	}
	// t1 gets its slot, and is listed the worker.
	if l := e.listing(e.tenant, proto.TaskSummarize, 0); len(l) != 1 || l[0].Pool != "" {
		t.Fatalf("t1: listed %+v, want shared (slots name no pool)", listedIDs(l))
	}
	heldT1 := e.relayInBackground(e.seal(proto.TaskSummarize, "hold", shared.key()), "hold")
	<-shared.held
	st := e.status(e.tenant)
	if len(st.Pools) != 1 || st.Pools[0].InUse != 1 || st.Pools[0].Capacity != 1 {
		t.Fatalf("t1's status while its slot is used: %+v, want its pool with 1 of 1 in use", st.Pools)
	}
	if st.Capacity != 2 || st.InUse != 2 {
		t.Fatalf("network status: capacity %d in use %d, want 2 and 2", st.Capacity, st.InUse)
	}
	close(shared.release)
	for _, ch := range []<-chan error{held, heldT1} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	// With nothing in flight t2 is served again.
	e.relayOKAs(t2, e.seal(proto.TaskSummarize, "again", shared.key()), "again", shared)
	if st := e.status(e.tenant); st.Pools[0].InUse != 0 || st.InUse != 0 {
		t.Fatalf("status after the requests: %+v, want nothing in use", st)
	}
}

func TestStatusViews(t *testing.T) {
	e := newEnv(t)
	t2 := e.newTenant("t2", proto.NewAccount{})
	a := newWorkerDouble(t, "a", e.clock)
	a.capacity = 3
	b := newWorkerDouble(t, "b", e.clock)
	b.capacity = 5
	e.register(a, proto.TaskSummarize)
	e.register(b, proto.TaskSummarize)
	e.createPool(proto.PoolSpec{ID: "t1-pool", TenantID: "t1", Workers: []string{"a"}, Slots: 2})
	e.createPool(proto.PoolSpec{ID: "t2-pool", TenantID: "t2", Slots: 1})
	e.createPool(proto.PoolSpec{ID: "t1-future", TenantID: "t1", Workers: []string{"not-yet"}})

	held := e.relayInBackground(e.seal(proto.TaskSummarize, "hold", a.key()), "hold")
	<-a.held

	poolIDs := func(st proto.Status) []string {
		var out []string
		for _, p := range st.Pools {
			out = append(out, p.ID)
		}
		return out
	}
	st1 := e.status(e.tenant)
	if got := poolIDs(st1); !slices.Equal(got, []string{"t1-future", "t1-pool"}) {
		t.Fatalf("t1 sees pools %v, want only its own", got)
	}
	if len(st1.Workers) != 0 {
		t.Fatalf("t1 sees workers %+v, want none", st1.Workers)
	}
	for _, p := range st1.Pools {
		switch p.ID {
		case "t1-pool":
			if p.Capacity != 3+2 || p.InUse != 1 || p.WorkersAdmitted != 1 || p.Slots != 2 {
				t.Fatalf("t1-pool: %+v, want capacity 5 (node 3, slots 2), 1 in use, 1 node admitted", p)
			}
		case "t1-future":
			if p.Capacity != 0 || p.WorkersAdmitted != 0 {
				t.Fatalf("t1-future: %+v, want no capacity until its node enrolls", p)
			}
		}
	}
	if st1.Capacity != 8 || st1.InUse != 1 {
		t.Fatalf("t1 network totals: capacity %d in use %d, want 8 and 1", st1.Capacity, st1.InUse)
	}
	if got := poolIDs(e.status(t2)); !slices.Equal(got, []string{"t2-pool"}) {
		t.Fatalf("t2 sees pools %v, want only its own", got)
	}

	adm := e.status(e.admin)
	if got := poolIDs(adm); !slices.Equal(got, []string{"t1-future", "t1-pool", "t2-pool"}) {
		t.Fatalf("admin sees pools %v, want all three", got)
	}
	if len(adm.Workers) != 2 {
		t.Fatalf("admin sees workers %+v, want a and b", adm.Workers)
	}
	for _, ws := range adm.Workers {
		want := map[string]proto.WorkerStatus{
			"a": {Capacity: 3, Outstanding: 1},
			"b": {Capacity: 5, Outstanding: 0},
		}[ws.WorkerID]
		if ws.Capacity != want.Capacity || ws.Outstanding != want.Outstanding || ws.State != "active" ||
			ws.Breaker != "closed" || ws.ProviderID != "p1" || ws.Kind != "sim" || ws.Region != "test" {
			t.Fatalf("worker %s: %+v, want active, closed breaker, capacity %d, %d outstanding", ws.WorkerID, ws, want.Capacity, want.Outstanding)
		}
	}
	resp, body := e.doAs(e.provider.cred, http.MethodGet, proto.PathStatus, "", nil)
	wantError(t, "provider status", resp, body, http.StatusForbidden, "forbidden")

	close(a.release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if st := e.status(e.tenant); st.InUse != 0 || st.Pools[1].InUse != 0 {
		t.Fatalf("t1 status after the request: %+v, want nothing in use", st)
	}
}

func TestPoolValidation(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		spec       proto.PoolSpec
		wantStatus int
		wantCode   string
	}{
		{"no nodes or slots", proto.PoolSpec{ID: "p", TenantID: "t1"}, http.StatusBadRequest, "bad_request"},
		{"negative slots", proto.PoolSpec{ID: "p", TenantID: "t1", Slots: -1}, http.StatusBadRequest, "bad_request"},
		{"lending slots only", proto.PoolSpec{ID: "p", TenantID: "t1", Slots: 1, Lend: true}, http.StatusBadRequest, "bad_request"},
		{"duplicate node", proto.PoolSpec{ID: "p", TenantID: "t1", Workers: []string{"w", "w"}}, http.StatusBadRequest, "bad_request"},
		{"bad node id", proto.PoolSpec{ID: "p", TenantID: "t1", Workers: []string{"a b"}}, http.StatusBadRequest, "bad_request"},
		{"bad pool id", proto.PoolSpec{ID: "a/b", TenantID: "t1", Slots: 1}, http.StatusBadRequest, "bad_request"},
		{"unknown tenant", proto.PoolSpec{ID: "p", TenantID: "nobody", Slots: 1}, http.StatusNotFound, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.doJSON(e.admin, http.MethodPost, proto.PathAdminPools, tt.spec, nil)
			wantError(t, "create pool", resp, body, tt.wantStatus, tt.wantCode)
		})
	}
	e.createPool(proto.PoolSpec{ID: "p", TenantID: "t1", Slots: 1})
	resp, body := e.doJSON(e.admin, http.MethodPost, proto.PathAdminPools, proto.PoolSpec{ID: "p", TenantID: "t1", Slots: 2}, nil)
	wantError(t, "create the pool again", resp, body, http.StatusConflict, "exists")
}

// TestRestartKeepsAccountsPoolsAndWorkers restarts the gateway on its
// database: credentials, provider keys, pools and workers are all there.
func TestRestartKeepsAccountsPoolsAndWorkers(t *testing.T) {
	e := newEnv(t)
	t2 := e.newTenant("t2", proto.NewAccount{})
	reserved := newWorkerDouble(t, "reserved", e.clock)
	open := newWorkerDouble(t, "open", e.clock)
	e.register(reserved, proto.TaskSummarize)
	e.register(open, proto.TaskSummarize)
	e.createPool(proto.PoolSpec{ID: "t1-nodes", TenantID: "t1", Workers: []string{"reserved"}, Slots: 1})

	e.restart()

	// Accounts: every credential still works for its role, and only then.
	e.listing(t2, proto.TaskSummarize, 0)
	resp, body := e.doAs(e.provider.cred, http.MethodPost, proto.PathChallenge, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("provider credential after restart: %d %s", resp.StatusCode, body)
	}
	resp, body = e.doAs(gateway.NewCredential(proto.CredentialTenant), http.MethodGet, proto.PathStatus, "", nil)
	wantError(t, "an unknown tenant after restart", resp, body, http.StatusUnauthorized, "unauthorized")
	resp, body = e.doJSON(e.admin, http.MethodPost, proto.PathAdminTenants, proto.NewAccount{ID: "t2"}, nil)
	wantError(t, "t2 created again after restart", resp, body, http.StatusConflict, "exists")

	// Pools: t1 is listed its node first; t2 is not listed it.
	l := e.listing(e.tenant, proto.TaskSummarize, 0)
	if len(l) != 2 || l[0].WorkerID != "reserved" || l[0].Pool != "t1-nodes" {
		t.Fatalf("t1 after restart: listed %v, want its pool node first", listedIDs(l))
	}
	if got := listedIDs(e.listing(t2, proto.TaskSummarize, 0)); !slices.Equal(got, []string{"open"}) {
		t.Fatalf("t2 after restart: listed %v, want only open", got)
	}
	st := e.status(e.tenant)
	if len(st.Pools) != 1 || st.Pools[0].Slots != 1 || st.Pools[0].Capacity != reserved.capacity+1 {
		t.Fatalf("t1's pools after restart: %+v", st.Pools)
	}

	// Workers: both route, and the provider's endorsement key is still
	// registered (a new worker enrolls).
	e.relayOK(e.seal(proto.TaskSummarize, "reserved", reserved.key()), "reserved", reserved)
	e.relayOKAs(t2, e.seal(proto.TaskSummarize, "open", open.key()), "open", open)
	late := newWorkerDouble(t, "late", e.clock)
	e.register(late, proto.TaskSummarize)
}

// TestReplicasShareTheStore runs two gateways on one database, as
// replicas on one PostgreSQL would: what one admits, drains, evicts or
// reserves, the other routes by after a sync.
func TestReplicasShareTheStore(t *testing.T) {
	e := newEnv(t)
	// The second replica shares the database and the clock; it has no
	// admin credential, and its clients use the first's accounts.
	e2 := newEnv(t, func(c *gateway.Config) {
		c.Database, c.Now, c.AdminCredentialHash = e.cfg.Database, e.clock.Now, [32]byte{}
	})
	e2.clock, e2.provider, e2.tenant = e.clock, e.provider, e.tenant
	t2 := e.newTenant("t2", proto.NewAccount{})

	w := newAttestingWorker(t, e, "w", nil)
	e.register(w.workerDouble, proto.TaskSummarize)
	if err := e2.gw.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Enrolled through one, routable through the other, with the
	// accounts created through the first.
	e2.relayOK(e2.seal(proto.TaskSummarize, "via replica", w.key()), "via replica", w.workerDouble)
	if got := listedIDs(e2.listing(t2, proto.TaskSummarize, 0)); !slices.Equal(got, []string{"w"}) {
		t.Fatalf("replica listing for t2: %v, want w", got)
	}

	// A pool made through the first applies on the second.
	e.createPool(proto.PoolSpec{ID: "t1-w", TenantID: "t1", Workers: []string{"w"}})
	if err := e2.gw.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e2.listing(t2, proto.TaskSummarize, 0); len(got) != 0 {
		t.Fatalf("replica listing for t2 after t1 reserved w: %v, want none", listedIDs(got))
	}
	if got := e2.listing(e.tenant, proto.TaskSummarize, 0); len(got) != 1 || got[0].Pool != "t1-w" {
		t.Fatalf("replica listing for t1: %+v, want w in pool t1-w", got)
	}

	// Re-attested through the first: the new key routes through the
	// second.
	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())
	if err := e2.gw.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	e2.relayOK(e2.seal(proto.TaskSummarize, "new key", w.key()), "new key", w.workerDouble)

	// Drained through the first: the second stops routing to it.
	w.failAttest.Store(true)
	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())
	if err := e2.gw.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if status, code, _ := e2.relayRefused(e.tenant, e2.seal(proto.TaskSummarize, "x", w.key())); status != http.StatusUnprocessableEntity || code != "unknown_candidates" {
		t.Fatalf("replica relay to a worker drained elsewhere: %d %s, want 422 unknown_candidates", status, code)
	}

	// Evicted through the first: gone from the second.
	e.clock.Advance(gateway.DefaultEvictAfter)
	e.gw.ReattestDue(t.Context())
	if err := e2.gw.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	resp, body := e2.doAs(e.tenant, http.MethodGet, proto.PathStatus, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("replica status: %d %s", resp.StatusCode, body)
	}
	var st proto.Status
	if err := json.Unmarshal(body, &st); err != nil || st.Capacity != 0 || st.Pools[0].WorkersAdmitted != 0 {
		t.Fatalf("replica status after the eviction: %s (%v), want no capacity", body, err)
	}

	// A credential rotated through the first stops working on the
	// second within CredentialCacheTTL.
	if resp, body := e2.doAs(t2, http.MethodGet, proto.PathStatus, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("t2 on the replica: %d %s", resp.StatusCode, body)
	}
	var acct proto.Account
	e.doJSON(e.admin, http.MethodPost, proto.PathAdminRotate, proto.RotateKey{Kind: "tenant", ID: "t2"}, &acct)
	if resp, _ := e.doAs(t2, http.MethodGet, proto.PathStatus, "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old credential on the replica that rotated it: %d, want 401 at once", resp.StatusCode)
	}
	e.clock.Advance(gateway.DefaultCredentialCacheTTL)
	resp, body = e2.doAs(t2, http.MethodGet, proto.PathStatus, "", nil)
	wantError(t, "old credential on the replica after the cache TTL", resp, body, http.StatusUnauthorized, "unauthorized")
	if resp, body := e2.doAs(acct.Credential, http.MethodGet, proto.PathStatus, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("new credential on the replica: %d %s", resp.StatusCode, body)
	}
}
