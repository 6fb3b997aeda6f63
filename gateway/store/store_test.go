package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/gateway/store/storetest"
	"github.com/sealgate/sealgate/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func openSQLite(t *testing.T, path string) *store.SQLite {
	t.Helper()
	s, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T, dsn string) *store.Postgres {
	t.Helper()
	s, err := store.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "gateway.db"))
	})
}

func TestSQLiteReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T) (store.Store, func(*testing.T) store.Store) {
		path := filepath.Join(t.TempDir(), "gateway.db")
		return openSQLite(t, path), func(t *testing.T) store.Store { return openSQLite(t, path) }
	})
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openPostgres(t, pgtest.DSN(t))
	})
}

func TestPostgresReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T) (store.Store, func(*testing.T) store.Store) {
		dsn := pgtest.DSN(t)
		return openPostgres(t, dsn), func(t *testing.T) store.Store { return openPostgres(t, dsn) }
	})
}

func TestOpenPicksBackend(t *testing.T) {
	ctx := t.Context()
	s, err := store.Open(ctx, filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*store.SQLite); !ok {
		t.Fatalf("Open of a path: found %T, want *store.SQLite", s)
	}
	dsn := pgtest.DSN(t)
	for _, target := range []string{dsn, "postgresql://" + strings.TrimPrefix(dsn, "postgres://")} {
		s, err := store.Open(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, ok := s.(*store.Postgres); !ok {
			t.Fatalf("Open of %s...: found %T, want *store.Postgres", target[:13], s)
		}
	}
}

func TestOpenRejectsBadPath(t *testing.T) {
	for _, tc := range []struct{ path, wantErr string }{
		{"", "path is empty"},
		{"x.db?ro", `"x.db?ro": want a plain file path`},
		{"x.db#frag", `"x.db#frag": want a plain file path`},
		{"x.db?mode=ro", "contains '='"},
		{"file:x.db", `"file:x.db": want a plain file path`},
		{"host=db password=hunter2", "contains '='"},
		{filepath.Join(t.TempDir(), "missing-dir", "x.db"), "missing-dir"},
	} {
		s, err := store.Open(t.Context(), tc.path)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", tc.path)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q): found %q, want it to mention %q and no password", tc.path, err, tc.wantErr)
		}
	}
}

// PostgreSQL.

// Replicas starting together against an empty database migrate it once.
func TestPostgresConcurrentMigrations(t *testing.T) {
	dsn := pgtest.DSN(t)
	const replicas = 6
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // guards errs
		errs []error
	)
	start := make(chan struct{})
	for range replicas {
		wg.Go(func() {
			<-start
			s, err := store.OpenPostgres(t.Context(), dsn)
			if err == nil {
				err = s.Close()
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent opens of an empty database: %v", err)
	}
	conn := pgConnect(t, dsn)
	var rows, version int
	if err := conn.QueryRow(t.Context(), `SELECT count(*), max(version) FROM schema_version`).Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || version != store.Version() {
		t.Fatalf("schema_version: found %d rows, version %d, want 1 row, version %d", rows, version, store.Version())
	}
}

func pgConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestPostgresNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := openPostgres(t, dsn)
	s.Close()
	if _, err := pgConnect(t, dsn).Exec(t.Context(), `UPDATE schema_version SET version = $1`, store.Version()+1); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("schema version: found %d, want at most %d", store.Version()+1, store.Version())
	if _, err := store.OpenPostgres(t.Context(), dsn); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("open of a newer schema: found %v, want a schema version error", err)
	}
}

// Errors name the server and database, never the password.
func TestPostgresErrorsHideThePassword(t *testing.T) {
	const secret = "hunter2-Secret"
	dsn := pgtest.DSN(t)
	if !strings.HasPrefix(dsn, "postgres://postgres:") {
		t.Fatalf("test DSN %q: want postgres://postgres:<password>@...", dsn)
	}
	for _, tc := range []struct{ name, dsn, wantErr string }{
		{"wrong password", strings.Replace(dsn, "://postgres:", "://postgres:"+secret, 1), "127.0.0.1:"}, // <secret><real password>
		{"closed port", "postgres://u:" + secret + "@127.0.0.1:1/db?connect_timeout=5", "127.0.0.1:1/db"},
		{"bad port", "postgres://u:" + secret + "@127.0.0.1:notaport/db", "not a valid URL"},
		{"bad option", "postgres://u:" + secret + "@127.0.0.1:5432/db?sslmode=bogus", "127.0.0.1:5432/db"},
		{"not a URL", "postgresql://u:" + secret + "@[::1/db", "not a valid URL"},
	} {
		s, err := store.OpenPostgres(t.Context(), tc.dsn)
		if err == nil {
			s.Close()
			t.Errorf("%s: open succeeded, want an error", tc.name)
			continue
		}
		if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: found %q, want it to mention %q and not the password", tc.name, err, tc.wantErr)
		}
	}
}
