// Package store keeps the gateway's registry of admitted workers in an
// embedded SQLite database (modernc.org/sqlite, no cgo).
//
// The database runs in WAL mode with a busy timeout, and write transactions
// take the write lock when they begin (BEGIN IMMEDIATE), so concurrent
// writers wait rather than fail. The schema is versioned: migrations is a
// numbered list in this package, applied in order inside one transaction
// that also records the version in the schema_version table. A database
// whose version is newer than this binary knows is refused.
//
// Times are stored as INTEGER Unix milliseconds, the resolution of
// evidence timestamps.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealgate/sealgate/proto"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// busyTimeout is how long a statement waits for a lock held by another
// connection before it fails with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// migrations is the schema history. migrations[i] takes the database from
// version i to version i+1. Append only: never edit a released entry.
var migrations = []string{
	// 1: workers and the key ids that route to them.
	`CREATE TABLE workers (
		id          TEXT PRIMARY KEY,
		url         TEXT NOT NULL,
		tasks       TEXT NOT NULL, -- comma-separated task names
		kind        TEXT NOT NULL,
		bundle      BLOB NOT NULL,
		bundle_hash BLOB NOT NULL,
		admitted_at INTEGER NOT NULL,
		expires_at  INTEGER NOT NULL
	) STRICT;
	CREATE TABLE worker_keys (
		key_id     BLOB PRIMARY KEY,
		worker_id  TEXT NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
		expires_at INTEGER NOT NULL
	) STRICT;
	CREATE INDEX worker_keys_expires ON worker_keys(expires_at);`,
}

// Worker is one admitted worker: its latest registration and the evidence
// bundle that admitted it.
type Worker struct {
	ID         string
	URL        string
	Tasks      []string
	Kind       string
	Bundle     []byte
	BundleHash [32]byte
	AdmittedAt time.Time
	ExpiresAt  time.Time
}

// Key routes one HPKE key id to a worker until ExpiresAt, the expiry of the
// evidence that bound it.
type Key struct {
	ID        proto.KeyID
	WorkerID  string
	ExpiresAt time.Time
}

// DB is an open store. It is safe for concurrent use.
type DB struct {
	db *sql.DB
}

// Open opens the SQLite database at path, creating it if needed, and
// brings its schema up to date.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("store: database path is empty")
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("store: database path %q: want a plain file path without '?', '#' or a file: prefix", path)
	}
	dsn := path + "?_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	s := &DB{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return s, nil
}

// Version returns the schema version this package writes.
func Version() int { return len(migrations) }

func (s *DB) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning migration: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("creating schema_version: %w", err)
	}
	var version int
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("initialising schema_version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("reading schema_version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version: found %d, want at most %d (the database was written by a newer gateway)", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("applying migration %d: %w", v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)); err != nil {
		return fmt.Errorf("recording schema version: %w", err)
	}
	return tx.Commit()
}

// PutWorker records w and its keys in one transaction: the worker row is
// inserted or replaced, and each key id is inserted or, if it exists,
// pointed at w with the new expiry. Keys from w's earlier registrations
// are left as they are, routable until they expire.
func (s *DB) PutWorker(ctx context.Context, w Worker, keys []Key) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: beginning put worker: %w", err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO workers (id, url, tasks, kind, bundle, bundle_hash, admitted_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET url = excluded.url, tasks = excluded.tasks, kind = excluded.kind,
			bundle = excluded.bundle, bundle_hash = excluded.bundle_hash,
			admitted_at = excluded.admitted_at, expires_at = excluded.expires_at`,
		w.ID, w.URL, strings.Join(w.Tasks, ","), w.Kind, w.Bundle, w.BundleHash[:],
		w.AdmittedAt.UnixMilli(), w.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("store: writing worker %q: %w", w.ID, err)
	}
	for _, k := range keys {
		if k.WorkerID != w.ID {
			return fmt.Errorf("store: key for worker %q in put of worker %q", k.WorkerID, w.ID)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO worker_keys (key_id, worker_id, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (key_id) DO UPDATE SET worker_id = excluded.worker_id, expires_at = excluded.expires_at`,
			k.ID[:], k.WorkerID, k.ExpiresAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("store: writing key of worker %q: %w", w.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: committing worker %q: %w", w.ID, err)
	}
	return nil
}

// Workers returns every stored worker, ordered by id.
func (s *DB) Workers(ctx context.Context) ([]Worker, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, url, tasks, kind, bundle, bundle_hash, admitted_at, expires_at FROM workers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: reading workers: %w", err)
	}
	defer rows.Close()
	var out []Worker
	for rows.Next() {
		var (
			w                   Worker
			tasks               string
			hash                []byte
			admitted, expiresAt int64
		)
		if err := rows.Scan(&w.ID, &w.URL, &tasks, &w.Kind, &w.Bundle, &hash, &admitted, &expiresAt); err != nil {
			return nil, fmt.Errorf("store: reading worker: %w", err)
		}
		if len(hash) != len(w.BundleHash) {
			return nil, fmt.Errorf("store: worker %q: bundle_hash: found %d bytes, want %d", w.ID, len(hash), len(w.BundleHash))
		}
		copy(w.BundleHash[:], hash)
		if tasks != "" {
			w.Tasks = strings.Split(tasks, ",")
		}
		w.AdmittedAt = time.UnixMilli(admitted).UTC()
		w.ExpiresAt = time.UnixMilli(expiresAt).UTC()
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading workers: %w", err)
	}
	return out, nil
}

// Keys returns every stored key id, ordered by worker and expiry.
func (s *DB) Keys(ctx context.Context) ([]Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key_id, worker_id, expires_at FROM worker_keys ORDER BY worker_id, expires_at`)
	if err != nil {
		return nil, fmt.Errorf("store: reading keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		var (
			k         Key
			id        []byte
			expiresAt int64
		)
		if err := rows.Scan(&id, &k.WorkerID, &expiresAt); err != nil {
			return nil, fmt.Errorf("store: reading key: %w", err)
		}
		if len(id) != len(k.ID) {
			return nil, fmt.Errorf("store: key of worker %q: key_id: found %d bytes, want %d", k.WorkerID, len(id), len(k.ID))
		}
		copy(k.ID[:], id)
		k.ExpiresAt = time.UnixMilli(expiresAt).UTC()
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading keys: %w", err)
	}
	return out, nil
}

// PruneKeys deletes every key id whose evidence expired at or before now,
// and returns how many it deleted.
func (s *DB) PruneKeys(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM worker_keys WHERE expires_at <= ?`, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("store: pruning keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: pruning keys: %w", err)
	}
	return n, nil
}

// Close closes the database.
func (s *DB) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: closing: %w", err)
	}
	return nil
}
