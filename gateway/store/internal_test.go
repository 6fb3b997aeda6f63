package store

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func openSQLite(t *testing.T, path string) *SQLite {
	t.Helper()
	s, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestVersionsAgree(t *testing.T) {
	for name, list := range map[string][]migration{"sqlite": sqliteMigrations, "postgres": postgresMigrations} {
		for i := 1; i < len(list); i++ {
			if list[i].version != list[i-1].version+1 {
				t.Errorf("%s migration %d: version %d follows %d, want consecutive versions", name, i, list[i].version, list[i-1].version)
			}
		}
		if last := list[len(list)-1].version; last != Version() {
			t.Errorf("%s migrations end at version %d, want %d", name, last, Version())
		}
	}
}

func TestSQLiteMigrations(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "gateway.db")
	s := openSQLite(t, path)
	version := func(s *SQLite) int {
		var v int
		if err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := version(s); v != Version() {
		t.Fatalf("schema version: found %d, want %d", v, Version())
	}
	for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000"} {
		var got string
		if err := s.db.QueryRowContext(ctx, `PRAGMA `+pragma).Scan(&got); err != nil || got != want {
			t.Fatalf("pragma %s: found %q, %v, want %q", pragma, got, err, want)
		}
	}
	s.Close()

	// Opening again applies nothing and keeps the version.
	s = openSQLite(t, path)
	if v := version(s); v != Version() {
		t.Fatalf("schema version after reopen: found %d, want %d", v, Version())
	}
	// A database from a newer gateway is refused.
	if _, err := s.db.ExecContext(ctx, `UPDATE schema_version SET version = ?`, Version()+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenSQLite(ctx, path); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema version: found %d, want at most %d", Version()+1, Version())) {
		t.Fatalf("open of a newer schema: found %v, want a schema version error", err)
	}
}

// A database written by the schema-1 gateway keeps its workers and keys,
// with the documented defaults for what schema 1 did not have.
func TestSQLiteMigrationFromVersion1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "gateway.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		sqliteMigrations[0].sql,
		`CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT`,
		`INSERT INTO schema_version (version) VALUES (1)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	hash := make([]byte, 32)
	hash[0] = 7
	if _, err := db.ExecContext(ctx, `INSERT INTO workers VALUES ('w-old', 'http://10.0.0.1:8080', 'summarize,translate', 'sim', X'0102', ?, ?, ?)`,
		hash, t0.UnixMilli(), t0.Add(time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	keyID := make([]byte, 32)
	keyID[0] = 9
	if _, err := db.ExecContext(ctx, `INSERT INTO worker_keys VALUES (?, 'w-old', ?)`, keyID, t0.Add(time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := openSQLite(t, path)
	got, err := s.Worker(ctx, "w-old")
	if err != nil {
		t.Fatal(err)
	}
	want := Worker{ID: "w-old", URL: "http://10.0.0.1:8080", ProviderID: "", Tasks: []string{"summarize", "translate"},
		Capacity: 1, Kind: "sim", Bundle: []byte{1, 2}, BundleHash: [32]byte{7}, State: StateActive,
		AdmittedAt: t0, ExpiresAt: t0.Add(time.Hour), AttestedAt: t0, UpdatedAt: t0}
	if got.ID != want.ID || got.URL != want.URL || got.ProviderID != "" || strings.Join(got.Tasks, ",") != "summarize,translate" ||
		got.Models != nil || got.Region != "" || got.Capacity != 1 || got.Kind != "sim" || string(got.Bundle) != "\x01\x02" ||
		got.BundleHash != want.BundleHash || got.Endorsement != nil || got.TLSPin != nil || got.State != StateActive ||
		!got.AdmittedAt.Equal(t0) || !got.ExpiresAt.Equal(want.ExpiresAt) || !got.AttestedAt.Equal(t0) ||
		!got.DrainedAt.IsZero() || !got.UpdatedAt.Equal(t0) {
		t.Fatalf("schema-1 worker after migration:\nfound %+v\nwant  %+v", got, want)
	}
	keys, err := s.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0].ID[0] != 9 || keys[0].WorkerID != "w-old" {
		t.Fatalf("schema-1 keys after migration: found %+v, %v, want key 09.. of w-old", keys, err)
	}
	// The migrated worker takes writes under the new rules.
	got.ProviderID, got.UpdatedAt = "prov-1", t0.Add(time.Minute)
	if err := s.PutWorker(ctx, got, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRedact(t *testing.T) {
	inner := errors.New("connect: user=u password=pw123 failed")
	err := redact(inner, "pw123")
	if got := err.Error(); got != "connect: user=u password=xxxxx failed" {
		t.Fatalf("redacted message: found %q", got)
	}
	if !errors.Is(err, inner) {
		t.Fatal("redacted error does not wrap the original")
	}
	if redact(inner, "") != inner || redact(inner, "absent") != inner {
		t.Fatal("redact changed an error that shows no secret")
	}
}

func TestNumberPlaceholders(t *testing.T) {
	got := numberPlaceholders(`UPDATE t SET a = ?, b = ? WHERE id = ?`)
	if want := `UPDATE t SET a = $1, b = $2 WHERE id = $3`; got != want {
		t.Fatalf("found %q, want %q", got, want)
	}
}
