package store

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/proto"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func keyID(b byte) proto.KeyID {
	var id proto.KeyID
	id[0] = b
	return id
}

func TestPutAndReload(t *testing.T) {
	ctx := t.Context()
	db, path := openTemp(t)
	w := Worker{
		ID: "w-1", URL: "http://127.0.0.1:1", Tasks: []string{"summarize", "translate"}, Kind: "sim",
		Bundle: []byte("bundle"), BundleHash: [32]byte{1, 2, 3}, AdmittedAt: t0, ExpiresAt: t0.Add(15 * time.Minute),
	}
	k1 := Key{ID: keyID(1), WorkerID: "w-1", ExpiresAt: w.ExpiresAt}
	if err := db.PutWorker(ctx, w, []Key{k1}); err != nil {
		t.Fatal(err)
	}
	// Re-registration: new URL, new bundle, a new key; the old key stays.
	w2 := w
	w2.URL, w2.Bundle, w2.AdmittedAt, w2.ExpiresAt = "http://127.0.0.1:2", []byte("bundle 2"), t0.Add(10*time.Minute), t0.Add(25*time.Minute)
	k2 := Key{ID: keyID(2), WorkerID: "w-1", ExpiresAt: w2.ExpiresAt}
	if err := db.PutWorker(ctx, w2, []Key{k2}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ws, err := db.Workers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 {
		t.Fatalf("workers: found %d, want 1", len(ws))
	}
	got := ws[0]
	if got.ID != w2.ID || got.URL != w2.URL || !slices.Equal(got.Tasks, w2.Tasks) || got.Kind != w2.Kind ||
		string(got.Bundle) != string(w2.Bundle) || got.BundleHash != w2.BundleHash ||
		!got.AdmittedAt.Equal(w2.AdmittedAt) || !got.ExpiresAt.Equal(w2.ExpiresAt) {
		t.Fatalf("worker: found %+v, want %+v", got, w2)
	}
	keys, err := db.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != k1 || keys[1] != k2 {
		t.Fatalf("keys: found %+v, want %+v and %+v", keys, k1, k2)
	}

	n, err := db.PruneKeys(ctx, k1.ExpiresAt)
	if err != nil || n != 1 {
		t.Fatalf("prune: found %d, %v, want 1, nil", n, err)
	}
	keys, err = db.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0] != k2 {
		t.Fatalf("keys after prune: found %+v, %v, want [%+v]", keys, err, k2)
	}
}

func TestKeyMovesToNewWorker(t *testing.T) {
	ctx := t.Context()
	db, _ := openTemp(t)
	for _, id := range []string{"a", "b"} {
		w := Worker{ID: id, URL: "http://x", Tasks: []string{"summarize"}, Kind: "sim", Bundle: []byte{1}, AdmittedAt: t0, ExpiresAt: t0}
		if err := db.PutWorker(ctx, w, []Key{{ID: keyID(9), WorkerID: id, ExpiresAt: t0}}); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := db.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0].WorkerID != "b" {
		t.Fatalf("keys: found %+v, %v, want one key of worker b", keys, err)
	}
}

func TestPutWorkerRejectsForeignKey(t *testing.T) {
	db, _ := openTemp(t)
	w := Worker{ID: "a", URL: "http://x", Tasks: []string{"summarize"}, Kind: "sim", Bundle: []byte{1}}
	err := db.PutWorker(t.Context(), w, []Key{{ID: keyID(1), WorkerID: "b"}})
	if err == nil {
		t.Fatal("put of a key for another worker succeeded")
	}
	ws, err := db.Workers(t.Context())
	if err != nil || len(ws) != 0 {
		t.Fatalf("workers after a failed put: found %d, %v, want none (the transaction rolls back)", len(ws), err)
	}
}

func TestMigrations(t *testing.T) {
	ctx := t.Context()
	db, path := openTemp(t)
	version := func(db *DB) int {
		var v int
		if err := db.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := version(db); v != Version() {
		t.Fatalf("schema version: found %d, want %d", v, Version())
	}
	var mode string
	if err := db.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode: found %q, %v, want wal", mode, err)
	}
	db.Close()

	// Opening again applies nothing and keeps the version.
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if v := version(db); v != Version() {
		t.Fatalf("schema version after reopen: found %d, want %d", v, Version())
	}
	// A database from a newer gateway is refused.
	if _, err := db.db.ExecContext(ctx, `UPDATE schema_version SET version = ?`, Version()+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(ctx, path); err == nil || !strings.Contains(err.Error(), "schema version") {
		t.Fatalf("open of a newer schema: found %v, want a schema version error", err)
	}
}

func TestOpenRejectsBadPath(t *testing.T) {
	for _, path := range []string{"", "x.db?mode=ro", "file:x.db", filepath.Join(t.TempDir(), "missing-dir", "x.db")} {
		if db, err := Open(context.Background(), path); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}
