package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeout is how long a SQLite statement waits for a lock held by
// another connection before it fails with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// sqliteMigrations is SQLite's schema history. Append only: never edit a
// released entry.
var sqliteMigrations = []migration{
	{1, `-- workers and the key ids that route to them.
	CREATE TABLE workers (
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
	CREATE INDEX worker_keys_expires ON worker_keys(expires_at);`},
	{2, `-- worker ownership, capacity and state; replica sync; providers,
	-- tenants and pools. Workers from schema 1 belong to no provider ('')
	-- and count as attested and updated when they were admitted.
	ALTER TABLE workers ADD COLUMN provider_id TEXT NOT NULL DEFAULT '';
	ALTER TABLE workers ADD COLUMN models TEXT NOT NULL DEFAULT ''; -- comma-separated
	ALTER TABLE workers ADD COLUMN region TEXT NOT NULL DEFAULT '';
	ALTER TABLE workers ADD COLUMN capacity INTEGER NOT NULL DEFAULT 1 CHECK (capacity >= 1);
	ALTER TABLE workers ADD COLUMN endorsement BLOB NOT NULL DEFAULT X'';
	ALTER TABLE workers ADD COLUMN tls_pin BLOB; -- NULL: plain http
	ALTER TABLE workers ADD COLUMN state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining'));
	ALTER TABLE workers ADD COLUMN attested_at INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE workers ADD COLUMN drained_at INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE workers ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
	UPDATE workers SET attested_at = admitted_at, updated_at = admitted_at;
	CREATE INDEX workers_updated ON workers(updated_at);
	CREATE TABLE worker_deletions (
		id         TEXT PRIMARY KEY,
		deleted_at INTEGER NOT NULL
	) STRICT;
	CREATE INDEX worker_deletions_deleted ON worker_deletions(deleted_at);
	CREATE TABLE providers (
		id          TEXT PRIMARY KEY,
		name        TEXT NOT NULL,
		key_hash    BLOB NOT NULL UNIQUE,
		signing_key BLOB, -- NULL: none registered
		created_at  INTEGER NOT NULL
	) STRICT;
	CREATE TABLE tenants (
		id                  TEXT PRIMARY KEY,
		name                TEXT NOT NULL,
		key_hash            BLOB NOT NULL UNIQUE,
		requests_per_second REAL NOT NULL,
		burst_requests      INTEGER NOT NULL,
		bytes_per_second    INTEGER NOT NULL,
		burst_bytes         INTEGER NOT NULL,
		created_at          INTEGER NOT NULL
	) STRICT;
	CREATE TABLE pools (
		id         TEXT PRIMARY KEY,
		tenant_id  TEXT NOT NULL REFERENCES tenants(id),
		name       TEXT NOT NULL,
		slots      INTEGER NOT NULL,
		lend       INTEGER NOT NULL CHECK (lend IN (0, 1)),
		created_at INTEGER NOT NULL,
		UNIQUE (tenant_id, name)
	) STRICT;
	-- Reserved node ids; they need not name enrolled workers.
	CREATE TABLE pool_workers (
		pool_id   TEXT NOT NULL REFERENCES pools(id) ON DELETE CASCADE,
		worker_id TEXT NOT NULL UNIQUE,
		PRIMARY KEY (pool_id, worker_id)
	) STRICT;`},
	{3, `-- the transparency log (package translog): entries by index, the
	-- hashes of the tree's perfect subtrees, collateral by content hash,
	-- the latest signed checkpoint, and the log's metadata.
	CREATE TABLE log_entries (
		idx  INTEGER PRIMARY KEY,
		data BLOB NOT NULL
	) STRICT;
	CREATE TABLE log_nodes (
		level INTEGER NOT NULL,
		idx   INTEGER NOT NULL,
		hash  BLOB NOT NULL,
		PRIMARY KEY (level, idx)
	) STRICT;
	CREATE TABLE log_collateral (
		hash BLOB PRIMARY KEY,
		data BLOB NOT NULL
	) STRICT;
	CREATE TABLE log_checkpoint (
		id         INTEGER PRIMARY KEY CHECK (id = 1),
		size       INTEGER NOT NULL,
		checkpoint BLOB NOT NULL
	) STRICT;
	CREATE TABLE log_bundles (
		bundle_hash BLOB PRIMARY KEY,
		idx         INTEGER NOT NULL
	) STRICT;
	CREATE TABLE log_meta (
		key   TEXT PRIMARY KEY,
		value TEXT NOT NULL
	) STRICT;`},
}

// SQLite is a Store in a SQLite database file.
type SQLite struct {
	core
	db   *sql.DB
	path string

	closeOnce sync.Once // guards closeErr
	closeErr  error
}

// DB is the name SQLite had when it was the only backend.
//
// Deprecated: use [SQLite], or [Store] to accept either backend.
type DB = SQLite

// OpenSQLite opens the SQLite database at path, creating it if needed,
// and brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("store: sqlite database path is empty")
	}
	if strings.Contains(path, "=") {
		// Do not echo it: a key=value PostgreSQL DSN may hold a password.
		return nil, errors.New("store: sqlite database path contains '=': a key=value PostgreSQL DSN? want a plain file path, or a postgres:// URL")
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("store: sqlite database path %q: want a plain file path without '?', '#' or a file: prefix", path)
	}
	dsn := path + "?_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	s := &SQLite{core: core{e: sqliteEngine{db}}, db: db, path: path}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) migrate(ctx context.Context) error {
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
	if version > Version() {
		return fmt.Errorf("schema version: found %d, want at most %d (the database was written by a newer gateway)", version, Version())
	}
	for _, m := range sqliteMigrations {
		if m.version <= version {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("applying migration %d: %w", m.version, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, Version()); err != nil {
		return fmt.Errorf("recording schema version: %w", err)
	}
	return tx.Commit()
}

// Ping checks that the database file answers a query.
func (s *SQLite) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("store: ping sqlite %s: %w", s.path, err)
	}
	return nil
}

// Close closes the database.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("store: close sqlite %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// sqliteEngine runs the shared queries on database/sql.
type sqliteEngine struct{ db *sql.DB }

// sqlConn is a *sql.DB or *sql.Tx.
type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type sqliteConn struct{ c sqlConn }

func (e sqliteEngine) exec(ctx context.Context, query string, args ...any) (int64, error) {
	return sqliteConn{e.db}.exec(ctx, query, args...)
}

func (e sqliteEngine) query(ctx context.Context, query string, args ...any) (rows, error) {
	return sqliteConn{e.db}.query(ctx, query, args...)
}

func (e sqliteEngine) queryRow(ctx context.Context, query string, args ...any) scanner {
	return sqliteConn{e.db}.queryRow(ctx, query, args...)
}

func (c sqliteConn) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := c.c.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c sqliteConn) query(ctx context.Context, query string, args ...any) (rows, error) {
	rs, err := c.c.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqliteRows{rs}, nil
}

func (c sqliteConn) queryRow(ctx context.Context, query string, args ...any) scanner {
	return sqliteRow{c.c.QueryRowContext(ctx, query, args...)}
}

type sqliteRows struct{ *sql.Rows }

func (r sqliteRows) Close() { r.Rows.Close() }

type sqliteRow struct{ r *sql.Row }

func (r sqliteRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return errNoRows
	}
	return err
}

// lockLog is a no-op: BEGIN IMMEDIATE already made the transaction the
// only writer.
func (sqliteEngine) lockLog(context.Context, conn) error { return nil }

func (e sqliteEngine) inTx(ctx context.Context, fn func(conn) error) error {
	// _txlock=immediate: BEGIN takes the write lock, waiting up to
	// busyTimeout for another writer.
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer tx.Rollback()
	if err := fn(sqliteConn{tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func (sqliteEngine) isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func (sqliteEngine) isForeignKey(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
