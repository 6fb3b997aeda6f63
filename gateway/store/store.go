// Package store keeps the gateway's durable state: the admitted workers and
// the key ids that route to them, the providers that own workers, the
// tenants that send requests, and the pools that reserve capacity for
// tenants.
//
// # Backends
//
// Two backends implement [Store] with the same behaviour, checked by one
// conformance suite (package storetest) run against each:
//
//   - [SQLite] (modernc.org/sqlite, no cgo) for a single gateway: one file,
//     nothing to run beside it. The database runs in WAL mode with a busy
//     timeout and foreign keys on, and write transactions take the write
//     lock when they begin (BEGIN IMMEDIATE), so concurrent writers wait
//     rather than fail.
//   - [Postgres] (jackc/pgx) when several gateway replicas share one
//     registry. Text keys are compared byte-wise (COLLATE "C") whatever the
//     database's locale, so listings come back in the same order as on
//     SQLite.
//
// [Open] picks the backend from its target: a postgres:// or postgresql://
// URL opens PostgreSQL, anything else is a SQLite file path.
//
// # Replicas
//
// Replicas sharing a PostgreSQL registry keep their in-memory routing
// tables in step by polling. Every worker write carries UpdatedAt, set by
// the caller to its own clock: [Store.WorkersUpdatedSince] returns the
// workers written after a time, and [Store.DeletedWorkersSince] the ids
// evicted after it, from a tombstone table that [Store.DeleteWorker] fills
// and [Store.PutWorker] clears (an id is either a worker or a tombstone,
// never both). Because the times come from the writers' clocks and a
// transaction may commit after a later-stamped one, a replica should poll
// from a little before the newest time it has seen (allowing for clock
// skew and transaction length); applying a worker or a deletion twice is
// harmless.
//
// # Schema and migrations
//
// Each backend has its own numbered migration list, in its own SQL
// dialect, and both end at the same schema version ([Version]). Opening a
// database applies the missing migrations in one transaction that also
// records the version in the schema_version table; on PostgreSQL that
// transaction first takes an advisory lock, so replicas starting together
// migrate once. A database whose version is newer than this binary knows
// is refused. Migrations are append-only: a released entry is never
// edited, and a change is a new entry in both lists.
//
// Times are stored as Unix milliseconds, the resolution of evidence
// timestamps, and read back in UTC. The zero time.Time is stored as 0 and
// read back as the zero time.
package store

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// ErrNotFound reports that the record a call names does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists reports that an insert or update would duplicate a unique
// value: an id, a key hash, a pool name within its tenant, or a worker
// reserved by another pool.
var ErrExists = errors.New("already exists")

// Worker states.
const (
	StateActive   = "active"   // routable
	StateDraining = "draining" // finishing its requests, takes no new ones
)

// Worker is one admitted worker: its latest registration and the evidence
// bundle that admitted it.
type Worker struct {
	ID         string
	URL        string
	ProviderID string // the owning provider; required on write (rows from schema 1 read back "")
	Tasks      []string
	Models     []string
	Region     string
	Capacity   int // advertised concurrent requests, at least 1
	Kind       string
	Bundle     []byte
	BundleHash [32]byte
	// Endorsement is the provider's signature over the node's keys,
	// opaque to the store; nil when there is none.
	Endorsement []byte
	// TLSPin is the SHA-256 of the worker's TLS SubjectPublicKeyInfo, or
	// nil for a plain-http worker.
	TLSPin     []byte
	State      string // StateActive or StateDraining
	AdmittedAt time.Time
	ExpiresAt  time.Time
	AttestedAt time.Time // last successful (re-)attestation
	DrainedAt  time.Time // zero unless State is StateDraining, then required
	// UpdatedAt is when this version was written, by the writer's clock.
	// The caller sets it on every PutWorker (it is required); SetWorkerState
	// sets it to its at argument. Replicas sync on it.
	UpdatedAt time.Time
}

// Key routes one HPKE key id to a worker until ExpiresAt, the expiry of the
// evidence that bound it.
type Key struct {
	ID        proto.KeyID
	WorkerID  string
	ExpiresAt time.Time
}

// Provider runs workers and enrolls them with its API key.
type Provider struct {
	ID      string
	Name    string
	KeyHash [32]byte // SHA-256 of the provider's API key; unique
	// SigningKey is the ed25519 public key that endorses the provider's
	// nodes, or nil when none is registered yet.
	SigningKey []byte
	CreatedAt  time.Time
}

// Tenant sends requests with its API key, within its rate limits. The
// store checks only that the limits are finite and not negative; what a
// zero limit means is the gateway's business.
type Tenant struct {
	ID                string
	Name              string
	KeyHash           [32]byte // SHA-256 of the tenant's API key; unique
	RequestsPerSecond float64
	BurstRequests     int
	BytesPerSecond    int64
	BurstBytes        int64
	CreatedAt         time.Time
}

// Pool reserves capacity for one tenant: whole nodes by id and a share of
// the general capacity.
type Pool struct {
	ID       string
	TenantID string // must name an existing tenant
	Name     string // unique within the tenant
	// Workers are the reserved node ids, sorted. They need not name
	// enrolled workers (a node may be reserved before it enrolls), but a
	// node is reserved by at most one pool.
	Workers   []string
	Slots     int  // reserved concurrent requests out of the general capacity
	Lend      bool // idle reserved capacity may serve other tenants
	CreatedAt time.Time
}

// Store is the gateway's durable state. Every method is safe for
// concurrent use. Methods that name a record return an error wrapping
// ErrNotFound when it does not exist; inserts return one wrapping ErrExists
// when a unique value is taken. Listings are ordered by id (byte-wise).
type Store interface {
	// PutWorker records w and its keys in one transaction: the worker is
	// inserted or replaced (clearing any tombstone of its id), and each key
	// id is inserted or, if it exists, pointed at w with the new expiry.
	// Keys from w's earlier registrations stay routable until they expire.
	// Every key must have WorkerID == w.ID.
	PutWorker(ctx context.Context, w Worker, keys []Key) error
	Worker(ctx context.Context, id string) (Worker, error)
	Workers(ctx context.Context) ([]Worker, error)
	// WorkersUpdatedSince returns the workers whose UpdatedAt is after t.
	WorkersUpdatedSince(ctx context.Context, t time.Time) ([]Worker, error)
	// SetWorkerState moves a worker to state at time at: draining sets
	// DrainedAt to at, active clears it; both set UpdatedAt to at.
	SetWorkerState(ctx context.Context, id, state string, at time.Time) error
	// DeleteWorker evicts a worker and its keys, leaving a tombstone dated
	// at, and reports whether the worker existed. Deleting an absent
	// worker is not an error and leaves no tombstone.
	DeleteWorker(ctx context.Context, id string, at time.Time) (bool, error)
	// DeletedWorkersSince returns the ids of the workers deleted after t
	// and not written again since.
	DeletedWorkersSince(ctx context.Context, t time.Time) ([]string, error)
	// Keys returns every stored key id, ordered by worker, expiry and id.
	Keys(ctx context.Context) ([]Key, error)
	// PruneKeys deletes every key id whose evidence expired at or before
	// now, and returns how many it deleted.
	PruneKeys(ctx context.Context, now time.Time) (int64, error)

	CreateProvider(ctx context.Context, p Provider) error
	Provider(ctx context.Context, id string) (Provider, error)
	ProviderByKeyHash(ctx context.Context, h [32]byte) (Provider, error)
	Providers(ctx context.Context) ([]Provider, error)
	SetProviderKeyHash(ctx context.Context, id string, h [32]byte) error
	// SetProviderSigningKey replaces the provider's signing key; nil
	// removes it.
	SetProviderSigningKey(ctx context.Context, id string, pub []byte) error

	CreateTenant(ctx context.Context, t Tenant) error
	Tenant(ctx context.Context, id string) (Tenant, error)
	TenantByKeyHash(ctx context.Context, h [32]byte) (Tenant, error)
	Tenants(ctx context.Context) ([]Tenant, error)
	SetTenantKeyHash(ctx context.Context, id string, h [32]byte) error
	SetTenantLimits(ctx context.Context, id string, rps float64, burst int, bps int64, burstBytes int64) error

	// CreatePool inserts a pool and its reserved workers; a missing tenant
	// is an error wrapping ErrNotFound.
	CreatePool(ctx context.Context, p Pool) error
	Pools(ctx context.Context) ([]Pool, error)
	DeletePool(ctx context.Context, id string) error
	// SetPoolWorkers replaces the pool's reserved workers.
	SetPoolWorkers(ctx context.Context, id string, workers []string) error

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database. Calling it again returns nil.
	Close() error
}

var (
	_ Store = (*SQLite)(nil)
	_ Store = (*Postgres)(nil)
)

// Open opens the store named by target and brings its schema up to date:
// PostgreSQL when target is a postgres:// or postgresql:// URL, otherwise
// the SQLite database file at that path.
func Open(ctx context.Context, target string) (Store, error) {
	if isPostgresURL(target) {
		return OpenPostgres(ctx, target)
	}
	return OpenSQLite(ctx, target)
}

func isPostgresURL(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
}

// Version returns the schema version this package writes, the same for
// both backends.
func Version() int { return sqliteMigrations[len(sqliteMigrations)-1].version }

// migration takes a database to version from the one before its entry in
// the list (or from an empty database, for the first entry).
type migration struct {
	version int
	sql     string
}

// millis encodes t for storage; the zero time is 0.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMillis decodes a stored time in UTC; 0 is the zero time.
func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// joinList encodes a list of names as one comma-separated column.
func joinList(field string, items []string) (string, error) {
	for i, s := range items {
		if s == "" || strings.Contains(s, ",") {
			return "", fmt.Errorf("%s[%d]: found %q, want a non-empty name without ','", field, i, s)
		}
	}
	return strings.Join(items, ","), nil
}

// splitList decodes a column written by joinList; "" is nil.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// hash32 decodes a stored 32-byte hash.
func hash32(field string, b []byte) ([32]byte, error) {
	var h [32]byte
	if len(b) != len(h) {
		return h, fmt.Errorf("%s: found %d bytes, want %d", field, len(b), len(h))
	}
	copy(h[:], b)
	return h, nil
}

// orNil reads back an optional byte string: empty is nil.
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// orEmpty writes a byte string to a NOT NULL column: nil is empty.
func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func required(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s: found \"\", want a non-empty value", field)
	}
	return nil
}

func requiredTime(field string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("%s: found the zero time, want a time", field)
	}
	return nil
}

func checkKeyHash(h [32]byte) error {
	if h == ([32]byte{}) {
		return errors.New("key hash: found all zero bytes, want the SHA-256 of an API key")
	}
	return nil
}

func checkState(state string) error {
	if state != StateActive && state != StateDraining {
		return fmt.Errorf("state: found %q, want %q or %q", state, StateActive, StateDraining)
	}
	return nil
}

func checkSigningKey(pub []byte) error {
	if pub != nil && len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("signing key: found %d bytes, want %d (ed25519) or none", len(pub), ed25519.PublicKeySize)
	}
	return nil
}

// checkWorker checks what PutWorker writes.
func checkWorker(w Worker, keys []Key) error {
	for _, err := range []error{
		required("id", w.ID),
		required("url", w.URL),
		required("provider id", w.ProviderID),
		required("kind", w.Kind),
		checkState(w.State),
		requiredTime("updated at", w.UpdatedAt),
	} {
		if err != nil {
			return err
		}
	}
	if w.Capacity < 1 {
		return fmt.Errorf("capacity: found %d, want at least 1", w.Capacity)
	}
	if w.TLSPin != nil && len(w.TLSPin) != 32 {
		return fmt.Errorf("tls pin: found %d bytes, want 32 (SHA-256) or none", len(w.TLSPin))
	}
	if w.State == StateDraining && w.DrainedAt.IsZero() {
		return fmt.Errorf("drained at: found the zero time with state %q, want the time draining began", w.State)
	}
	if w.State == StateActive && !w.DrainedAt.IsZero() {
		return fmt.Errorf("drained at: found %v with state %q, want the zero time", w.DrainedAt, w.State)
	}
	for i, k := range keys {
		if k.WorkerID != w.ID {
			return fmt.Errorf("keys[%d]: worker id: found %q, want %q", i, k.WorkerID, w.ID)
		}
	}
	return nil
}

func checkProvider(p Provider) error {
	for _, err := range []error{
		required("id", p.ID),
		required("name", p.Name),
		checkKeyHash(p.KeyHash),
		checkSigningKey(p.SigningKey),
		requiredTime("created at", p.CreatedAt),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func checkLimits(rps float64, burst int, bps, burstBytes int64) error {
	if math.IsNaN(rps) || math.IsInf(rps, 0) || rps < 0 {
		return fmt.Errorf("requests per second: found %v, want a finite number >= 0", rps)
	}
	if burst < 0 {
		return fmt.Errorf("burst requests: found %d, want >= 0", burst)
	}
	if bps < 0 {
		return fmt.Errorf("bytes per second: found %d, want >= 0", bps)
	}
	if burstBytes < 0 {
		return fmt.Errorf("burst bytes: found %d, want >= 0", burstBytes)
	}
	return nil
}

func checkTenant(t Tenant) error {
	for _, err := range []error{
		required("id", t.ID),
		required("name", t.Name),
		checkKeyHash(t.KeyHash),
		checkLimits(t.RequestsPerSecond, t.BurstRequests, t.BytesPerSecond, t.BurstBytes),
		requiredTime("created at", t.CreatedAt),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkPoolWorkers checks a pool's reserved worker ids and returns them
// sorted.
func checkPoolWorkers(workers []string) ([]string, error) {
	for i, id := range workers {
		if id == "" {
			return nil, fmt.Errorf("workers[%d]: found \"\", want a worker id", i)
		}
		if j := slices.Index(workers[:i], id); j >= 0 {
			return nil, fmt.Errorf("workers[%d]: found %q, already at workers[%d]; want each worker once", i, id, j)
		}
	}
	return slices.Sorted(slices.Values(workers)), nil
}

func checkPool(p Pool) error {
	for _, err := range []error{
		required("id", p.ID),
		required("tenant id", p.TenantID),
		required("name", p.Name),
		requiredTime("created at", p.CreatedAt),
	} {
		if err != nil {
			return err
		}
	}
	if p.Slots < 0 {
		return fmt.Errorf("slots: found %d, want >= 0", p.Slots)
	}
	_, err := checkPoolWorkers(p.Workers)
	return err
}
