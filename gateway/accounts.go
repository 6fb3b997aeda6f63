package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/proto"
)

// Account kinds, as in proto.Account and proto.RotateKey.
const (
	kindProvider = "provider"
	kindTenant   = "tenant"
)

// CreateAccount creates a provider or tenant (kind) and returns it with
// its credential, which is shown only here. Admin only.
func (g *Gateway) CreateAccount(ctx context.Context, cred, kind string, a proto.NewAccount) (proto.Account, error) {
	if err := g.life.enter(); err != nil {
		return proto.Account{}, err
	}
	defer g.life.leave()
	if _, err := g.require(ctx, cred, api.RoleAdmin); err != nil {
		return proto.Account{}, err
	}
	if err := validateWorkerID(a.ID); err != nil {
		return proto.Account{}, api.New(api.BadRequest, "id: want 1 to 64 characters from [A-Za-z0-9._-]")
	}
	if len(a.Name) > proto.MaxNameLen {
		return proto.Account{}, api.New(api.BadRequest, fmt.Sprintf("name: found %d bytes, want at most %d", len(a.Name), proto.MaxNameLen))
	}
	if a.Name == "" {
		a.Name = a.ID
	}
	now := g.cfg.Now()
	out := proto.Account{Kind: kind, ID: a.ID, Name: a.Name, CreatedAt: now}
	var err error
	switch kind {
	case kindProvider:
		if a.RequestsPerSecond != 0 || a.BurstRequests != 0 || a.BytesPerSecond != 0 || a.BurstBytes != 0 {
			return proto.Account{}, api.New(api.BadRequest, "limits: providers have none; set them on tenants")
		}
		out.Credential = NewCredential(proto.CredentialProvider)
		err = g.store.CreateProvider(ctx, store.Provider{ID: a.ID, Name: a.Name, KeyHash: HashCredential(out.Credential), CreatedAt: now})
	case kindTenant:
		lim, lerr := g.tenantLimits(a)
		if lerr != nil {
			return proto.Account{}, lerr
		}
		out.Credential = NewCredential(proto.CredentialTenant)
		err = g.store.CreateTenant(ctx, store.Tenant{
			ID: a.ID, Name: a.Name, KeyHash: HashCredential(out.Credential), CreatedAt: now,
			RequestsPerSecond: lim.RequestsPerSecond, BurstRequests: lim.BurstRequests,
			BytesPerSecond: lim.BytesPerSecond, BurstBytes: lim.BurstBytes,
		})
	default:
		return proto.Account{}, api.New(api.BadRequest, "kind: want provider or tenant")
	}
	if errors.Is(err, store.ErrExists) {
		return proto.Account{}, api.New(api.Exists, kind+" "+a.ID+" exists")
	}
	if err != nil {
		return proto.Account{}, api.Wrap(api.Internal, "internal error", err)
	}
	g.log.InfoContext(ctx, "account created", slog.String("kind", kind), slog.String("id", a.ID))
	return out, nil
}

// tenantLimits validates a new tenant's limits and fills the defaults.
func (g *Gateway) tenantLimits(a proto.NewAccount) (TenantLimits, error) {
	switch {
	case a.RequestsPerSecond < 0 || math.IsNaN(a.RequestsPerSecond) || math.IsInf(a.RequestsPerSecond, 0) || a.RequestsPerSecond > 1e6:
		return TenantLimits{}, api.New(api.BadRequest, "requests_per_second: want 0 (the default) to 1000000")
	case a.BurstRequests < 0 || a.BurstRequests > 1e6:
		return TenantLimits{}, api.New(api.BadRequest, "burst_requests: want 0 (the default) to 1000000")
	case a.BytesPerSecond < 0 || a.BurstBytes < 0:
		return TenantLimits{}, api.New(api.BadRequest, "bytes_per_second, burst_bytes: want 0 (the default) or positive")
	}
	lim := TenantLimits{RequestsPerSecond: a.RequestsPerSecond, BurstRequests: a.BurstRequests, BytesPerSecond: a.BytesPerSecond, BurstBytes: a.BurstBytes}
	def := g.cfg.DefaultLimits
	setDefault(&lim.RequestsPerSecond, def.RequestsPerSecond)
	setDefault(&lim.BurstRequests, def.BurstRequests)
	setDefault(&lim.BytesPerSecond, def.BytesPerSecond)
	setDefault(&lim.BurstBytes, def.BurstBytes)
	if lim.BurstBytes < g.cfg.MaxRequestBody {
		return TenantLimits{}, api.New(api.BadRequest, fmt.Sprintf("burst_bytes: found %d, want at least the largest request, %d", lim.BurstBytes, g.cfg.MaxRequestBody))
	}
	return lim, nil
}

// RotateCredential replaces a provider's or tenant's credential. The old
// one stops working at once on this replica, and within
// Config.CredentialCacheTTL on others. Admin only.
func (g *Gateway) RotateCredential(ctx context.Context, cred string, r proto.RotateKey) (proto.Account, error) {
	if err := g.life.enter(); err != nil {
		return proto.Account{}, err
	}
	defer g.life.leave()
	if _, err := g.require(ctx, cred, api.RoleAdmin); err != nil {
		return proto.Account{}, err
	}
	out := proto.Account{Kind: r.Kind, ID: r.ID}
	var err error
	switch r.Kind {
	case kindProvider:
		out.Credential = NewCredential(proto.CredentialProvider)
		err = g.store.SetProviderKeyHash(ctx, r.ID, HashCredential(out.Credential))
		g.creds.forget(api.RoleProvider, r.ID)
	case kindTenant:
		out.Credential = NewCredential(proto.CredentialTenant)
		err = g.store.SetTenantKeyHash(ctx, r.ID, HashCredential(out.Credential))
		g.creds.forget(api.RoleTenant, r.ID)
	default:
		return proto.Account{}, api.New(api.BadRequest, "kind: want provider or tenant")
	}
	if errors.Is(err, store.ErrNotFound) {
		return proto.Account{}, api.New(api.NotFound, "no "+r.Kind+" "+r.ID)
	}
	if err != nil {
		return proto.Account{}, api.Wrap(api.Internal, "internal error", err)
	}
	g.log.InfoContext(ctx, "credential rotated", slog.String("kind", r.Kind), slog.String("id", r.ID))
	return out, nil
}

// CreatePool reserves capacity for a tenant: named nodes, Slots of the
// unpooled capacity, or both. Admin only.
func (g *Gateway) CreatePool(ctx context.Context, cred string, spec proto.PoolSpec) (proto.PoolStatus, error) {
	if err := g.life.enter(); err != nil {
		return proto.PoolStatus{}, err
	}
	defer g.life.leave()
	if _, err := g.require(ctx, cred, api.RoleAdmin); err != nil {
		return proto.PoolStatus{}, err
	}
	if err := validateWorkerID(spec.ID); err != nil {
		return proto.PoolStatus{}, api.New(api.BadRequest, "id: want 1 to 64 characters from [A-Za-z0-9._-]")
	}
	if len(spec.Name) > proto.MaxNameLen {
		return proto.PoolStatus{}, api.New(api.BadRequest, fmt.Sprintf("name: found %d bytes, want at most %d", len(spec.Name), proto.MaxNameLen))
	}
	if len(spec.Workers) > proto.MaxPoolWorkers {
		return proto.PoolStatus{}, api.New(api.BadRequest, fmt.Sprintf("workers: found %d, want at most %d", len(spec.Workers), proto.MaxPoolWorkers))
	}
	for i, w := range spec.Workers {
		if err := validateWorkerID(w); err != nil {
			return proto.PoolStatus{}, api.New(api.BadRequest, fmt.Sprintf("workers[%d]: want a worker id", i))
		}
		if slices.Contains(spec.Workers[:i], w) {
			return proto.PoolStatus{}, api.New(api.BadRequest, fmt.Sprintf("workers[%d]: duplicate", i))
		}
	}
	if spec.Slots < 0 || spec.Slots > 1_000_000 {
		return proto.PoolStatus{}, api.New(api.BadRequest, "slots: want 0 to 1000000")
	}
	if len(spec.Workers) == 0 && spec.Slots == 0 {
		return proto.PoolStatus{}, api.New(api.BadRequest, "workers, slots: want nodes, slots or both")
	}
	if spec.Lend && len(spec.Workers) == 0 {
		return proto.PoolStatus{}, api.New(api.BadRequest, "lend: only nodes can be lent; this pool has none")
	}
	if _, err := g.store.Tenant(ctx, spec.TenantID); errors.Is(err, store.ErrNotFound) {
		return proto.PoolStatus{}, api.New(api.NotFound, "tenant_id: no such tenant")
	} else if err != nil {
		return proto.PoolStatus{}, api.Wrap(api.Internal, "internal error", err)
	}
	if spec.Name == "" {
		spec.Name = spec.ID
	}
	err := g.store.CreatePool(ctx, store.Pool{
		ID: spec.ID, TenantID: spec.TenantID, Name: spec.Name, Workers: spec.Workers, Slots: spec.Slots, Lend: spec.Lend,
		CreatedAt: g.cfg.Now(),
	})
	if errors.Is(err, store.ErrExists) {
		return proto.PoolStatus{}, api.New(api.Exists, "pool "+spec.ID+" exists")
	}
	if err != nil {
		return proto.PoolStatus{}, api.Wrap(api.Internal, "internal error", err)
	}
	if err := g.reloadPools(ctx); err != nil {
		return proto.PoolStatus{}, err
	}
	g.log.InfoContext(ctx, "pool created", slog.String("pool", spec.ID), slog.String("tenant", spec.TenantID),
		slog.Int("workers", len(spec.Workers)), slog.Int("slots", spec.Slots), slog.Bool("lend", spec.Lend))
	for _, ps := range g.poolStatus("") {
		if ps.ID == spec.ID {
			return ps, nil
		}
	}
	return proto.PoolStatus{PoolSpec: spec}, nil
}

// DeletePool releases a pool. Admin only.
func (g *Gateway) DeletePool(ctx context.Context, cred, id string) error {
	if err := g.life.enter(); err != nil {
		return err
	}
	defer g.life.leave()
	if _, err := g.require(ctx, cred, api.RoleAdmin); err != nil {
		return err
	}
	if err := g.store.DeletePool(ctx, id); errors.Is(err, store.ErrNotFound) {
		return api.New(api.NotFound, "no such pool")
	} else if err != nil {
		return api.Wrap(api.Internal, "internal error", err)
	}
	g.metrics.ForgetPool(id)
	g.log.InfoContext(ctx, "pool deleted", slog.String("pool", id))
	return g.reloadPools(ctx)
}

func (g *Gateway) reloadPools(ctx context.Context) error {
	pools, err := g.store.Pools(ctx)
	if err != nil {
		return api.Wrap(api.Internal, "internal error", err)
	}
	g.reg.setPools(pools)
	return nil
}

// Status returns the caller's view: a tenant's pools, or for the admin
// every pool and worker.
func (g *Gateway) Status(ctx context.Context, cred string) (proto.Status, error) {
	if err := g.life.enter(); err != nil {
		return proto.Status{}, err
	}
	defer g.life.leave()
	p, err := g.authenticate(ctx, cred)
	if err != nil {
		return proto.Status{}, err
	}
	var st proto.Status
	switch p.Role {
	case api.RoleAdmin:
		st.Pools = g.poolStatus("")
		st.Workers = g.workerStatus()
	case api.RoleTenant:
		st.Pools = g.poolStatus(p.ID)
	default:
		return proto.Status{}, api.New(api.Forbidden, "this endpoint needs a tenant or admin credential")
	}
	st.Capacity, st.InUse = g.reg.totals(g.cfg.Now())
	if st.Pools == nil {
		st.Pools = []proto.PoolStatus{}
	}
	return st, nil
}

// poolStatus returns the pools of tenant ("" for all), by id.
func (g *Gateway) poolStatus(tenant string) []proto.PoolStatus {
	now := g.cfg.Now()
	r := g.reg
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []proto.PoolStatus
	for _, p := range r.pools {
		if tenant != "" && p.tenant != tenant {
			continue
		}
		ps := proto.PoolStatus{
			PoolSpec: proto.PoolSpec{ID: p.id, TenantID: p.tenant, Name: p.name, Workers: slices.Clone(p.workers), Slots: p.slots, Lend: p.lend},
			Capacity: p.slots, InUse: int(p.inUse.Load()),
		}
		for _, id := range p.workers {
			w := r.workers[id]
			if w == nil || w.at.verified == nil || w.at.state != stateActive || !w.at.verified.Expires().After(now) {
				continue
			}
			ps.Capacity += w.at.capacity
			ps.WorkersAdmitted++
		}
		g.metrics.Pool(p.id, ps.Capacity, ps.InUse)
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b proto.PoolStatus) int { return cmpString(a.ID, b.ID) })
	return out
}

// workerStatus returns every known worker, by id.
func (g *Gateway) workerStatus() []proto.WorkerStatus {
	r := g.reg
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]proto.WorkerStatus, 0, len(r.workers))
	for _, w := range r.workers {
		ws := proto.WorkerStatus{
			WorkerID: w.id, ProviderID: w.at.providerID, State: w.at.state, Capacity: w.at.capacity,
			Outstanding: int(w.outstanding.Load()), Region: w.at.region, Breaker: w.breaker.State().String(),
			AttestedAt: w.at.attestedAt,
		}
		if w.at.verified != nil {
			ws.Kind, ws.ExpiresAt = w.at.verified.Kind(), w.at.verified.Expires()
		} else if ws.State == stateActive {
			ws.State = "unverified"
		}
		out = append(out, ws)
	}
	slices.SortFunc(out, func(a, b proto.WorkerStatus) int { return cmpString(a.WorkerID, b.WorkerID) })
	return out
}

// totals returns the capacity of routable workers and the requests in
// flight on them.
func (r *registry) totals(now time.Time) (capacity, inUse int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, w := range r.workers {
		if w.at.verified == nil || w.at.state != stateActive || !w.at.verified.Expires().After(now) {
			continue
		}
		capacity += w.at.capacity
		inUse += int(w.outstanding.Load())
	}
	return capacity, inUse
}

// Ready reports whether the gateway can serve: it is not shutting down
// and its store answers.
func (g *Gateway) Ready(ctx context.Context) error {
	if err := g.life.enter(); err != nil {
		return err
	}
	defer g.life.leave()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := g.store.Ping(ctx); err != nil {
		return api.Wrap(api.Unavailable, "the store does not answer", err)
	}
	return nil
}
