package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The queries below are written once, with '?' placeholders, in the SQL
// that SQLite and PostgreSQL share; each backend supplies an engine that
// runs them (PostgreSQL's numbers the placeholders) and tells its unique
// and foreign-key violations apart. The behaviour is the same on both by
// construction, and the conformance suite checks it.

// conn runs queries, in or out of a transaction.
type conn interface {
	exec(ctx context.Context, query string, args ...any) (rowsAffected int64, err error)
	query(ctx context.Context, query string, args ...any) (rows, error)
	// queryRow's Scan returns errNoRows when there is no row.
	queryRow(ctx context.Context, query string, args ...any) scanner
}

type scanner interface{ Scan(dest ...any) error }

type rows interface {
	scanner
	Next() bool
	Err() error
	Close()
}

// engine is a backend's database.
type engine interface {
	conn
	// inTx runs fn in a write transaction, committing when it returns nil.
	inTx(ctx context.Context, fn func(conn) error) error
	// lockLog makes the transaction c the transparency log's only
	// writer until it ends.
	lockLog(ctx context.Context, c conn) error
	isUnique(err error) bool
	isForeignKey(err error) bool
}

// errNoRows is what engines' queryRow returns for an empty result.
var errNoRows = errors.New("no rows")

// core implements Store over an engine.
type core struct {
	e engine
}

const workerCols = `id, url, provider_id, tasks, models, region, capacity, kind, bundle, bundle_hash,
	endorsement, tls_pin, state, admitted_at, expires_at, attested_at, drained_at, updated_at`

// workerRow is a workers row as scanned.
type workerRow struct {
	id, url, providerID, tasks, models, region string
	capacity                                   int64
	kind                                       string
	bundle, bundleHash, endorsement, tlsPin    []byte
	state                                      string
	admitted, expires, attested, drained       int64
	updated                                    int64
}

func (r *workerRow) dest() []any {
	return []any{&r.id, &r.url, &r.providerID, &r.tasks, &r.models, &r.region, &r.capacity, &r.kind,
		&r.bundle, &r.bundleHash, &r.endorsement, &r.tlsPin, &r.state,
		&r.admitted, &r.expires, &r.attested, &r.drained, &r.updated}
}

func (r *workerRow) worker() (Worker, error) {
	hash, err := hash32("bundle_hash", r.bundleHash)
	if err != nil {
		return Worker{}, fmt.Errorf("store: read worker %q: %w", r.id, err)
	}
	return Worker{
		ID: r.id, URL: r.url, ProviderID: r.providerID,
		Tasks: splitList(r.tasks), Models: splitList(r.models), Region: r.region,
		Capacity: int(r.capacity), Kind: r.kind,
		Bundle: orNil(r.bundle), BundleHash: hash, Endorsement: orNil(r.endorsement), TLSPin: orNil(r.tlsPin),
		State:      r.state,
		AdmittedAt: fromMillis(r.admitted), ExpiresAt: fromMillis(r.expires),
		AttestedAt: fromMillis(r.attested), DrainedAt: fromMillis(r.drained), UpdatedAt: fromMillis(r.updated),
	}, nil
}

// PutWorker implements [Store.PutWorker].
func (c *core) PutWorker(ctx context.Context, w Worker, keys []Key) error {
	if err := checkWorker(w, keys); err != nil {
		return fmt.Errorf("store: put worker %q: %w", w.ID, err)
	}
	tasks, err := joinList("tasks", w.Tasks)
	if err != nil {
		return fmt.Errorf("store: put worker %q: %w", w.ID, err)
	}
	models, err := joinList("models", w.Models)
	if err != nil {
		return fmt.Errorf("store: put worker %q: %w", w.ID, err)
	}
	// Upsert keys in id order: two transactions touching the same keys
	// lock them in the same order and cannot deadlock.
	keys = slices.SortedFunc(slices.Values(keys), func(a, b Key) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	err = c.e.inTx(ctx, func(tx conn) error {
		_, err := tx.exec(ctx, `INSERT INTO workers (`+workerCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET url = excluded.url, provider_id = excluded.provider_id,
				tasks = excluded.tasks, models = excluded.models, region = excluded.region,
				capacity = excluded.capacity, kind = excluded.kind, bundle = excluded.bundle,
				bundle_hash = excluded.bundle_hash, endorsement = excluded.endorsement, tls_pin = excluded.tls_pin,
				state = excluded.state, admitted_at = excluded.admitted_at, expires_at = excluded.expires_at,
				attested_at = excluded.attested_at, drained_at = excluded.drained_at, updated_at = excluded.updated_at`,
			w.ID, w.URL, w.ProviderID, tasks, models, w.Region, int64(w.Capacity), w.Kind,
			orEmpty(w.Bundle), w.BundleHash[:], orEmpty(w.Endorsement), w.TLSPin, w.State,
			millis(w.AdmittedAt), millis(w.ExpiresAt), millis(w.AttestedAt), millis(w.DrainedAt), millis(w.UpdatedAt))
		if err != nil {
			return fmt.Errorf("writing worker: %w", err)
		}
		if _, err := tx.exec(ctx, `DELETE FROM worker_deletions WHERE id = ?`, w.ID); err != nil {
			return fmt.Errorf("clearing tombstone: %w", err)
		}
		for _, k := range keys {
			_, err := tx.exec(ctx, `INSERT INTO worker_keys (key_id, worker_id, expires_at) VALUES (?, ?, ?)
				ON CONFLICT (key_id) DO UPDATE SET worker_id = excluded.worker_id, expires_at = excluded.expires_at`,
				k.ID[:], k.WorkerID, millis(k.ExpiresAt))
			if err != nil {
				return fmt.Errorf("writing key %x: %w", k.ID[:], err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put worker %q: %w", w.ID, err)
	}
	return nil
}

// Worker implements [Store.Worker].
func (c *core) Worker(ctx context.Context, id string) (Worker, error) {
	var r workerRow
	err := c.e.queryRow(ctx, `SELECT `+workerCols+` FROM workers WHERE id = ?`, id).Scan(r.dest()...)
	if errors.Is(err, errNoRows) {
		return Worker{}, fmt.Errorf("store: read worker %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Worker{}, fmt.Errorf("store: read worker %q: %w", id, err)
	}
	return r.worker()
}

// Workers implements [Store.Workers].
func (c *core) Workers(ctx context.Context) ([]Worker, error) {
	return c.workers(ctx, "workers", `SELECT `+workerCols+` FROM workers ORDER BY id`)
}

// WorkersUpdatedSince implements [Store.WorkersUpdatedSince].
func (c *core) WorkersUpdatedSince(ctx context.Context, t time.Time) ([]Worker, error) {
	return c.workers(ctx, "workers updated since "+t.UTC().Format(time.RFC3339Nano),
		`SELECT `+workerCols+` FROM workers WHERE updated_at > ? ORDER BY id`, millis(t))
}

func (c *core) workers(ctx context.Context, what, query string, args ...any) ([]Worker, error) {
	rs, err := c.e.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", what, err)
	}
	defer rs.Close()
	var out []Worker
	for rs.Next() {
		var r workerRow
		if err := rs.Scan(r.dest()...); err != nil {
			return nil, fmt.Errorf("store: read %s: %w", what, err)
		}
		w, err := r.worker()
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: read %s: %w", what, err)
	}
	return out, nil
}

// SetWorkerState implements [Store.SetWorkerState].
func (c *core) SetWorkerState(ctx context.Context, id, state string, at time.Time) error {
	if err := checkState(state); err != nil {
		return fmt.Errorf("store: set state of worker %q: %w", id, err)
	}
	if err := requiredTime("at", at); err != nil {
		return fmt.Errorf("store: set state of worker %q: %w", id, err)
	}
	drained := int64(0)
	if state == StateDraining {
		drained = millis(at)
	}
	n, err := c.e.exec(ctx, `UPDATE workers SET state = ?, drained_at = ?, updated_at = ? WHERE id = ?`,
		state, drained, millis(at), id)
	if err != nil {
		return fmt.Errorf("store: set state of worker %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("store: set state of worker %q: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteWorker implements [Store.DeleteWorker].
func (c *core) DeleteWorker(ctx context.Context, id string, at time.Time) (bool, error) {
	if err := requiredTime("at", at); err != nil {
		return false, fmt.Errorf("store: delete worker %q: %w", id, err)
	}
	var existed bool
	err := c.e.inTx(ctx, func(tx conn) error {
		// The worker's keys go with it (ON DELETE CASCADE).
		n, err := tx.exec(ctx, `DELETE FROM workers WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if existed = n > 0; !existed {
			return nil
		}
		_, err = tx.exec(ctx, `INSERT INTO worker_deletions (id, deleted_at) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at`, id, millis(at))
		if err != nil {
			return fmt.Errorf("writing tombstone: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: delete worker %q: %w", id, err)
	}
	return existed, nil
}

// DeletedWorkersSince implements [Store.DeletedWorkersSince].
func (c *core) DeletedWorkersSince(ctx context.Context, t time.Time) ([]string, error) {
	what := "workers deleted since " + t.UTC().Format(time.RFC3339Nano)
	rs, err := c.e.query(ctx, `SELECT id FROM worker_deletions WHERE deleted_at > ? ORDER BY id`, millis(t))
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", what, err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: read %s: %w", what, err)
		}
		out = append(out, id)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: read %s: %w", what, err)
	}
	return out, nil
}

// Keys implements [Store.Keys].
func (c *core) Keys(ctx context.Context) ([]Key, error) {
	rs, err := c.e.query(ctx, `SELECT key_id, worker_id, expires_at FROM worker_keys ORDER BY worker_id, expires_at, key_id`)
	if err != nil {
		return nil, fmt.Errorf("store: read keys: %w", err)
	}
	defer rs.Close()
	var out []Key
	for rs.Next() {
		var (
			k         Key
			id        []byte
			expiresAt int64
		)
		if err := rs.Scan(&id, &k.WorkerID, &expiresAt); err != nil {
			return nil, fmt.Errorf("store: read keys: %w", err)
		}
		if len(id) != len(k.ID) {
			return nil, fmt.Errorf("store: read key of worker %q: key_id: found %d bytes, want %d", k.WorkerID, len(id), len(k.ID))
		}
		copy(k.ID[:], id)
		k.ExpiresAt = fromMillis(expiresAt)
		out = append(out, k)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: read keys: %w", err)
	}
	return out, nil
}

// PruneKeys implements [Store.PruneKeys].
func (c *core) PruneKeys(ctx context.Context, now time.Time) (int64, error) {
	n, err := c.e.exec(ctx, `DELETE FROM worker_keys WHERE expires_at <= ?`, millis(now))
	if err != nil {
		return 0, fmt.Errorf("store: prune keys expired at %s: %w", now.UTC().Format(time.RFC3339Nano), err)
	}
	return n, nil
}

// Providers.

const providerCols = `id, name, key_hash, signing_key, created_at`

type providerRow struct {
	id, name         string
	keyHash, signing []byte
	created          int64
}

func (r *providerRow) dest() []any {
	return []any{&r.id, &r.name, &r.keyHash, &r.signing, &r.created}
}

func (r *providerRow) provider() (Provider, error) {
	h, err := hash32("key_hash", r.keyHash)
	if err != nil {
		return Provider{}, fmt.Errorf("store: read provider %q: %w", r.id, err)
	}
	return Provider{ID: r.id, Name: r.name, KeyHash: h, SigningKey: orNil(r.signing), CreatedAt: fromMillis(r.created)}, nil
}

// CreateProvider implements [Store.CreateProvider].
func (c *core) CreateProvider(ctx context.Context, p Provider) error {
	if err := checkProvider(p); err != nil {
		return fmt.Errorf("store: create provider %q: %w", p.ID, err)
	}
	_, err := c.e.exec(ctx, `INSERT INTO providers (`+providerCols+`) VALUES (?, ?, ?, ?, ?)`,
		p.ID, p.Name, p.KeyHash[:], orNil(p.SigningKey), millis(p.CreatedAt))
	if c.e.isUnique(err) {
		return fmt.Errorf("store: create provider %q: id or key hash: %w", p.ID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: create provider %q: %w", p.ID, err)
	}
	return nil
}

// Provider implements [Store.Provider].
func (c *core) Provider(ctx context.Context, id string) (Provider, error) {
	return c.provider(ctx, fmt.Sprintf("provider %q", id), `SELECT `+providerCols+` FROM providers WHERE id = ?`, id)
}

// ProviderByKeyHash implements [Store.ProviderByKeyHash].
func (c *core) ProviderByKeyHash(ctx context.Context, h [32]byte) (Provider, error) {
	return c.provider(ctx, fmt.Sprintf("provider of key hash %x", h[:8]), `SELECT `+providerCols+` FROM providers WHERE key_hash = ?`, h[:])
}

func (c *core) provider(ctx context.Context, what, query string, arg any) (Provider, error) {
	var r providerRow
	err := c.e.queryRow(ctx, query, arg).Scan(r.dest()...)
	if errors.Is(err, errNoRows) {
		return Provider{}, fmt.Errorf("store: read %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return Provider{}, fmt.Errorf("store: read %s: %w", what, err)
	}
	return r.provider()
}

// Providers implements [Store.Providers].
func (c *core) Providers(ctx context.Context) ([]Provider, error) {
	rs, err := c.e.query(ctx, `SELECT `+providerCols+` FROM providers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: read providers: %w", err)
	}
	defer rs.Close()
	var out []Provider
	for rs.Next() {
		var r providerRow
		if err := rs.Scan(r.dest()...); err != nil {
			return nil, fmt.Errorf("store: read providers: %w", err)
		}
		p, err := r.provider()
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: read providers: %w", err)
	}
	return out, nil
}

// SetProviderKeyHash implements [Store.SetProviderKeyHash].
func (c *core) SetProviderKeyHash(ctx context.Context, id string, h [32]byte) error {
	if err := checkKeyHash(h); err != nil {
		return fmt.Errorf("store: set key hash of provider %q: %w", id, err)
	}
	return c.update(ctx, fmt.Sprintf("set key hash of provider %q", id), "key hash",
		`UPDATE providers SET key_hash = ? WHERE id = ?`, h[:], id)
}

// SetProviderSigningKey implements [Store.SetProviderSigningKey].
func (c *core) SetProviderSigningKey(ctx context.Context, id string, pub []byte) error {
	if err := checkSigningKey(pub); err != nil {
		return fmt.Errorf("store: set signing key of provider %q: %w", id, err)
	}
	return c.update(ctx, fmt.Sprintf("set signing key of provider %q", id), "",
		`UPDATE providers SET signing_key = ? WHERE id = ?`, orNil(pub), id)
}

// update runs an UPDATE of one row: no row is ErrNotFound, and a unique
// violation (on the column named unique) is ErrExists.
func (c *core) update(ctx context.Context, what, unique, query string, args ...any) error {
	n, err := c.e.exec(ctx, query, args...)
	if unique != "" && c.e.isUnique(err) {
		return fmt.Errorf("store: %s: %s: %w", what, unique, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("store: %s: %w", what, ErrNotFound)
	}
	return nil
}

// Tenants.

const tenantCols = `id, name, key_hash, requests_per_second, burst_requests, bytes_per_second, burst_bytes, created_at`

type tenantRow struct {
	id, name               string
	keyHash                []byte
	rps                    float64
	burst, bps, burstBytes int64
	created                int64
}

func (r *tenantRow) dest() []any {
	return []any{&r.id, &r.name, &r.keyHash, &r.rps, &r.burst, &r.bps, &r.burstBytes, &r.created}
}

func (r *tenantRow) tenant() (Tenant, error) {
	h, err := hash32("key_hash", r.keyHash)
	if err != nil {
		return Tenant{}, fmt.Errorf("store: read tenant %q: %w", r.id, err)
	}
	return Tenant{ID: r.id, Name: r.name, KeyHash: h, RequestsPerSecond: r.rps, BurstRequests: int(r.burst),
		BytesPerSecond: r.bps, BurstBytes: r.burstBytes, CreatedAt: fromMillis(r.created)}, nil
}

// CreateTenant implements [Store.CreateTenant].
func (c *core) CreateTenant(ctx context.Context, t Tenant) error {
	if err := checkTenant(t); err != nil {
		return fmt.Errorf("store: create tenant %q: %w", t.ID, err)
	}
	_, err := c.e.exec(ctx, `INSERT INTO tenants (`+tenantCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.KeyHash[:], t.RequestsPerSecond, int64(t.BurstRequests), t.BytesPerSecond, t.BurstBytes, millis(t.CreatedAt))
	if c.e.isUnique(err) {
		return fmt.Errorf("store: create tenant %q: id or key hash: %w", t.ID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: create tenant %q: %w", t.ID, err)
	}
	return nil
}

// Tenant implements [Store.Tenant].
func (c *core) Tenant(ctx context.Context, id string) (Tenant, error) {
	return c.tenant(ctx, fmt.Sprintf("tenant %q", id), `SELECT `+tenantCols+` FROM tenants WHERE id = ?`, id)
}

// TenantByKeyHash implements [Store.TenantByKeyHash].
func (c *core) TenantByKeyHash(ctx context.Context, h [32]byte) (Tenant, error) {
	return c.tenant(ctx, fmt.Sprintf("tenant of key hash %x", h[:8]), `SELECT `+tenantCols+` FROM tenants WHERE key_hash = ?`, h[:])
}

func (c *core) tenant(ctx context.Context, what, query string, arg any) (Tenant, error) {
	var r tenantRow
	err := c.e.queryRow(ctx, query, arg).Scan(r.dest()...)
	if errors.Is(err, errNoRows) {
		return Tenant{}, fmt.Errorf("store: read %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("store: read %s: %w", what, err)
	}
	return r.tenant()
}

// Tenants implements [Store.Tenants].
func (c *core) Tenants(ctx context.Context) ([]Tenant, error) {
	rs, err := c.e.query(ctx, `SELECT `+tenantCols+` FROM tenants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: read tenants: %w", err)
	}
	defer rs.Close()
	var out []Tenant
	for rs.Next() {
		var r tenantRow
		if err := rs.Scan(r.dest()...); err != nil {
			return nil, fmt.Errorf("store: read tenants: %w", err)
		}
		t, err := r.tenant()
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: read tenants: %w", err)
	}
	return out, nil
}

// SetTenantKeyHash implements [Store.SetTenantKeyHash].
func (c *core) SetTenantKeyHash(ctx context.Context, id string, h [32]byte) error {
	if err := checkKeyHash(h); err != nil {
		return fmt.Errorf("store: set key hash of tenant %q: %w", id, err)
	}
	return c.update(ctx, fmt.Sprintf("set key hash of tenant %q", id), "key hash",
		`UPDATE tenants SET key_hash = ? WHERE id = ?`, h[:], id)
}

// SetTenantLimits implements [Store.SetTenantLimits].
func (c *core) SetTenantLimits(ctx context.Context, id string, rps float64, burst int, bps int64, burstBytes int64) error {
	if err := checkLimits(rps, burst, bps, burstBytes); err != nil {
		return fmt.Errorf("store: set limits of tenant %q: %w", id, err)
	}
	return c.update(ctx, fmt.Sprintf("set limits of tenant %q", id), "",
		`UPDATE tenants SET requests_per_second = ?, burst_requests = ?, bytes_per_second = ?, burst_bytes = ? WHERE id = ?`,
		rps, int64(burst), bps, burstBytes, id)
}

// Pools.

// CreatePool implements [Store.CreatePool].
func (c *core) CreatePool(ctx context.Context, p Pool) error {
	if err := checkPool(p); err != nil {
		return fmt.Errorf("store: create pool %q: %w", p.ID, err)
	}
	err := c.e.inTx(ctx, func(tx conn) error {
		_, err := tx.exec(ctx, `INSERT INTO pools (id, tenant_id, name, slots, lend, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			p.ID, p.TenantID, p.Name, int64(p.Slots), p.Lend, millis(p.CreatedAt))
		switch {
		case c.e.isUnique(err):
			return fmt.Errorf("id, or name %q in tenant %q: %w", p.Name, p.TenantID, ErrExists)
		case c.e.isForeignKey(err):
			return fmt.Errorf("tenant %q: %w", p.TenantID, ErrNotFound)
		case err != nil:
			return err
		}
		workers, _ := checkPoolWorkers(p.Workers) // checked above; sorted
		return c.reserve(ctx, tx, p.ID, workers)
	})
	if err != nil {
		return fmt.Errorf("store: create pool %q: %w", p.ID, err)
	}
	return nil
}

// reserve adds workers to a pool's reservation, failing with ErrExists
// when another pool holds one of them. Workers come sorted, so that
// concurrent reservations take the unique index's locks in one order.
func (c *core) reserve(ctx context.Context, tx conn, poolID string, workers []string) error {
	for _, w := range workers {
		// Name the holder in the error; the unique constraint on worker_id
		// still decides races between concurrent transactions.
		var holder string
		err := tx.queryRow(ctx, `SELECT pool_id FROM pool_workers WHERE worker_id = ?`, w).Scan(&holder)
		switch {
		case err == nil && holder != poolID:
			return fmt.Errorf("worker %q: reserved by pool %q: %w", w, holder, ErrExists)
		case err != nil && !errors.Is(err, errNoRows):
			return fmt.Errorf("worker %q: %w", w, err)
		}
		_, err = tx.exec(ctx, `INSERT INTO pool_workers (pool_id, worker_id) VALUES (?, ?)`, poolID, w)
		if c.e.isUnique(err) {
			return fmt.Errorf("worker %q: reserved by another pool: %w", w, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("worker %q: %w", w, err)
		}
	}
	return nil
}

// Pools implements [Store.Pools].
func (c *core) Pools(ctx context.Context) ([]Pool, error) {
	// One statement, so one snapshot of the pools and their workers. A
	// pool without workers comes once with worker_id '' (ids are never
	// empty).
	rs, err := c.e.query(ctx, `SELECT p.id, p.tenant_id, p.name, p.slots, p.lend, p.created_at, COALESCE(w.worker_id, '')
		FROM pools p LEFT JOIN pool_workers w ON w.pool_id = p.id ORDER BY p.id, w.worker_id`)
	if err != nil {
		return nil, fmt.Errorf("store: read pools: %w", err)
	}
	defer rs.Close()
	var out []Pool
	for rs.Next() {
		var (
			p              Pool
			slots, created int64
			worker         string
		)
		if err := rs.Scan(&p.ID, &p.TenantID, &p.Name, &slots, &p.Lend, &created, &worker); err != nil {
			return nil, fmt.Errorf("store: read pools: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].ID != p.ID {
			p.Slots, p.CreatedAt = int(slots), fromMillis(created)
			out = append(out, p)
		}
		if worker != "" {
			last := &out[len(out)-1]
			last.Workers = append(last.Workers, worker)
		}
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: read pools: %w", err)
	}
	return out, nil
}

// DeletePool implements [Store.DeletePool].
func (c *core) DeletePool(ctx context.Context, id string) error {
	// Its reservations go with it (ON DELETE CASCADE).
	n, err := c.e.exec(ctx, `DELETE FROM pools WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("store: delete pool %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("store: delete pool %q: %w", id, ErrNotFound)
	}
	return nil
}

// SetPoolWorkers implements [Store.SetPoolWorkers].
func (c *core) SetPoolWorkers(ctx context.Context, id string, workers []string) error {
	workers, err := checkPoolWorkers(workers)
	if err != nil {
		return fmt.Errorf("store: set workers of pool %q: %w", id, err)
	}
	err = c.e.inTx(ctx, func(tx conn) error {
		var one int64
		err := tx.queryRow(ctx, `SELECT 1 FROM pools WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, errNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM pool_workers WHERE pool_id = ?`, id); err != nil {
			return err
		}
		return c.reserve(ctx, tx, id, workers)
	})
	if err != nil {
		return fmt.Errorf("store: set workers of pool %q: %w", id, err)
	}
	return nil
}
