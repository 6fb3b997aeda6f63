package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// postgresMigrations is PostgreSQL's schema history, numbered like
// sqliteMigrations. PostgreSQL support arrived with schema 2, so its first
// entry creates schema 2 whole. Append only: never edit a released entry.
//
// Text keys are COLLATE "C" so that ORDER BY and comparisons are
// byte-wise, as on SQLite, whatever the database's locale.
var postgresMigrations = []migration{
	{2, `CREATE TABLE workers (
		id          TEXT COLLATE "C" PRIMARY KEY,
		url         TEXT NOT NULL,
		provider_id TEXT COLLATE "C" NOT NULL,
		tasks       TEXT NOT NULL, -- comma-separated task names
		models      TEXT NOT NULL, -- comma-separated model names
		region      TEXT NOT NULL,
		capacity    BIGINT NOT NULL CHECK (capacity >= 1),
		kind        TEXT NOT NULL,
		bundle      BYTEA NOT NULL,
		bundle_hash BYTEA NOT NULL,
		endorsement BYTEA NOT NULL,
		tls_pin     BYTEA, -- NULL: plain http
		state       TEXT NOT NULL CHECK (state IN ('active', 'draining')),
		admitted_at BIGINT NOT NULL,
		expires_at  BIGINT NOT NULL,
		attested_at BIGINT NOT NULL,
		drained_at  BIGINT NOT NULL,
		updated_at  BIGINT NOT NULL
	);
	CREATE INDEX workers_updated ON workers(updated_at);
	CREATE TABLE worker_keys (
		key_id     BYTEA PRIMARY KEY,
		worker_id  TEXT COLLATE "C" NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX worker_keys_expires ON worker_keys(expires_at);
	CREATE INDEX worker_keys_worker ON worker_keys(worker_id);
	CREATE TABLE worker_deletions (
		id         TEXT COLLATE "C" PRIMARY KEY,
		deleted_at BIGINT NOT NULL
	);
	CREATE INDEX worker_deletions_deleted ON worker_deletions(deleted_at);
	CREATE TABLE providers (
		id          TEXT COLLATE "C" PRIMARY KEY,
		name        TEXT NOT NULL,
		key_hash    BYTEA NOT NULL UNIQUE,
		signing_key BYTEA, -- NULL: none registered
		created_at  BIGINT NOT NULL
	);
	CREATE TABLE tenants (
		id                  TEXT COLLATE "C" PRIMARY KEY,
		name                TEXT NOT NULL,
		key_hash            BYTEA NOT NULL UNIQUE,
		requests_per_second DOUBLE PRECISION NOT NULL,
		burst_requests      BIGINT NOT NULL,
		bytes_per_second    BIGINT NOT NULL,
		burst_bytes         BIGINT NOT NULL,
		created_at          BIGINT NOT NULL
	);
	CREATE TABLE pools (
		id         TEXT COLLATE "C" PRIMARY KEY,
		tenant_id  TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
		name       TEXT COLLATE "C" NOT NULL,
		slots      BIGINT NOT NULL,
		lend       BOOLEAN NOT NULL,
		created_at BIGINT NOT NULL,
		UNIQUE (tenant_id, name)
	);
	-- Reserved node ids; they need not name enrolled workers.
	CREATE TABLE pool_workers (
		pool_id   TEXT COLLATE "C" NOT NULL REFERENCES pools(id) ON DELETE CASCADE,
		worker_id TEXT COLLATE "C" NOT NULL UNIQUE,
		PRIMARY KEY (pool_id, worker_id)
	);`},
	{3, `CREATE TABLE log_entries (
		idx  BIGINT PRIMARY KEY,
		data BYTEA NOT NULL
	);
	CREATE TABLE log_nodes (
		level BIGINT NOT NULL,
		idx   BIGINT NOT NULL,
		hash  BYTEA NOT NULL,
		PRIMARY KEY (level, idx)
	);
	CREATE TABLE log_collateral (
		hash BYTEA PRIMARY KEY,
		data BYTEA NOT NULL
	);
	CREATE TABLE log_checkpoint (
		id         BIGINT PRIMARY KEY CHECK (id = 1),
		size       BIGINT NOT NULL,
		checkpoint BYTEA NOT NULL
	);
	CREATE TABLE log_bundles (
		bundle_hash BYTEA PRIMARY KEY,
		idx         BIGINT NOT NULL
	);
	CREATE TABLE log_meta (
		key   TEXT COLLATE "C" PRIMARY KEY,
		value TEXT NOT NULL
	);`},
}

// migrationLock is the pg_advisory_xact_lock key that serializes
// migrations of one database: "Sealgate" in ASCII.
const migrationLock int64 = 0x5365616c67617465

// Postgres is a Store in a PostgreSQL database, shared by gateway
// replicas.
type Postgres struct {
	core
	pool *pgxpool.Pool
	eng  pgEngine
	name string // host:port/database, for errors; never the password
}

// OpenPostgres connects to the PostgreSQL database named by dsn, a
// postgres:// or postgresql:// URL as libpq takes it (the PG* environment
// variables fill what it leaves out), and brings its schema up to date.
// Errors name the host and database, never the password.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	if !isPostgresURL(dsn) {
		return nil, errors.New("store: postgres dsn: want a postgres:// or postgresql:// URL")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		// url.Error repeats the whole URL, password included: keep only
		// what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("store: postgres dsn: not a valid URL: %s", err)
	}
	password, _ := u.User.Password()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, redact(fmt.Errorf("store: postgres dsn for %s: %w", u.Host+u.Path, err), password)
	}
	if cfg.ConnConfig.Password != "" {
		password = cfg.ConnConfig.Password // perhaps from PGPASSWORD
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "sealgate-gateway"
	}
	name := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))) + "/" + cfg.ConnConfig.Database
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, redact(fmt.Errorf("store: open postgres %s: %w", name, err), password)
	}
	e := pgEngine{pool: pool, secret: password}
	s := &Postgres{core: core{e: e}, pool: pool, eng: e, name: name}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, redact(fmt.Errorf("store: open postgres %s: %w", name, err), password)
	}
	return s, nil
}

func (s *Postgres) migrate(ctx context.Context) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("beginning migration: %w", err)
	}
	defer tx.Rollback(ctx)
	// Held until the transaction ends: a replica starting at the same
	// time waits here, then finds the schema up to date.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("creating schema_version: %w", err)
	}
	var version int
	switch err := tx.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version); {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("initialising schema_version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("reading schema_version: %w", err)
	}
	if version > Version() {
		return fmt.Errorf("schema version: found %d, want at most %d (the database was written by a newer gateway)", version, Version())
	}
	for _, m := range postgresMigrations {
		if m.version <= version {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("applying migration %d: %w", m.version, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE schema_version SET version = $1`, Version()); err != nil {
		return fmt.Errorf("recording schema version: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing migration: %w", err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Postgres) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping postgres %s: %w", s.name, s.eng.redact(err))
	}
	return nil
}

// Close closes every connection, waiting for those in use to be released.
func (s *Postgres) Close() error {
	s.pool.Close() // idempotent
	return nil
}

// redactedError is an error whose message had a secret masked; Unwrap
// still reaches the original for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact masks secret wherever err's message shows it. pgx already keeps
// passwords out of its messages; this is the second lock on that door.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), secret, "xxxxx"), err: err}
}

// pgEngine runs the shared queries on a pgx pool, numbering their '?'
// placeholders.
type pgEngine struct {
	pool   *pgxpool.Pool
	secret string // the password, masked in errors
}

func (e pgEngine) redact(err error) error { return redact(err, e.secret) }

// pgQuerier is a *pgxpool.Pool or a pgx.Tx.
type pgQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type pgConn struct {
	q pgQuerier
	e pgEngine
}

func (e pgEngine) exec(ctx context.Context, query string, args ...any) (int64, error) {
	return pgConn{e.pool, e}.exec(ctx, query, args...)
}

func (e pgEngine) query(ctx context.Context, query string, args ...any) (rows, error) {
	return pgConn{e.pool, e}.query(ctx, query, args...)
}

func (e pgEngine) queryRow(ctx context.Context, query string, args ...any) scanner {
	return pgConn{e.pool, e}.queryRow(ctx, query, args...)
}

func (c pgConn) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := c.q.Exec(ctx, numberPlaceholders(query), args...)
	if err != nil {
		return 0, c.e.redact(err)
	}
	return tag.RowsAffected(), nil
}

func (c pgConn) query(ctx context.Context, query string, args ...any) (rows, error) {
	rs, err := c.q.Query(ctx, numberPlaceholders(query), args...)
	if err != nil {
		return nil, c.e.redact(err)
	}
	return pgRows{rs, c.e}, nil
}

func (c pgConn) queryRow(ctx context.Context, query string, args ...any) scanner {
	return pgRow{c.q.QueryRow(ctx, numberPlaceholders(query), args...), c.e}
}

type pgRows struct {
	pgx.Rows
	e pgEngine
}

func (r pgRows) Scan(dest ...any) error { return r.e.redact(r.Rows.Scan(dest...)) }
func (r pgRows) Err() error             { return r.e.redact(r.Rows.Err()) }

type pgRow struct {
	r pgx.Row
	e pgEngine
}

func (r pgRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoRows
	}
	return r.e.redact(err)
}

// logLock is the pg_advisory_xact_lock key that makes one transaction
// at a time, on any replica, the transparency log's writer:
// "SGlogWri" in ASCII. It is released at commit or rollback, or when the
// writer's session dies.
const logLock int64 = 0x53476c6f67577269

func (pgEngine) lockLog(ctx context.Context, c conn) error {
	_, err := c.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, logLock)
	return err
}

func (e pgEngine) inTx(ctx context.Context, fn func(conn) error) error {
	tx, err := e.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", e.redact(err))
	}
	defer tx.Rollback(ctx)
	if err := fn(pgConn{tx, e}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing: %w", e.redact(err))
	}
	return nil
}

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func (pgEngine) isUnique(err error) bool     { return pgCode(err) == "23505" } // unique_violation
func (pgEngine) isForeignKey(err error) bool { return pgCode(err) == "23503" } // foreign_key_violation

// numberPlaceholders rewrites the shared queries' '?' placeholders as
// PostgreSQL's $1, $2, ... The shared queries have no '?' elsewhere.
func numberPlaceholders(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
