package store

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/transparency-dev/merkle/compact"

	"github.com/sealgate/sealgate/translog"
)

// The transparency log's tables (schema 3) and the translog.Storage both
// backends implement over them. Appends run in one write transaction
// that first takes the log's writer lock (engine.lockLog).

var (
	_ translog.Storage = (*SQLite)(nil)
	_ translog.Storage = (*Postgres)(nil)
)

// LogUpdate implements [translog.Storage].
func (c *core) LogUpdate(ctx context.Context, fn func(translog.Tx) error) error {
	err := c.e.inTx(ctx, func(tx conn) error {
		if err := c.e.lockLog(ctx, tx); err != nil {
			return fmt.Errorf("taking the log's writer lock: %w", err)
		}
		return fn(logTx{tx})
	})
	if err != nil {
		return fmt.Errorf("store: log: %w", err)
	}
	return nil
}

// LogCheckpoint implements [translog.Reader].
func (c *core) LogCheckpoint(ctx context.Context) ([]byte, error) {
	return logTx{c.e}.LogCheckpoint(ctx)
}

// LogNodes implements [translog.Reader].
func (c *core) LogNodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error) {
	return logTx{c.e}.LogNodes(ctx, ids)
}

// maxLogPage bounds one LogEntries call.
const maxLogPage = 1024

// LogEntries implements [translog.Reader].
func (c *core) LogEntries(ctx context.Context, from, to uint64) ([][]byte, error) {
	if from > to || to-from > maxLogPage || to > math.MaxInt64 {
		return nil, fmt.Errorf("store: log entries [%d, %d): want at most %d entries", from, to, maxLogPage)
	}
	rs, err := c.e.query(ctx, `SELECT idx, data FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx`, int64(from), int64(to))
	if err != nil {
		return nil, fmt.Errorf("store: log entries: %w", err)
	}
	defer rs.Close()
	out := make([][]byte, 0, to-from)
	for rs.Next() {
		var idx int64
		var data []byte
		if err := rs.Scan(&idx, &data); err != nil {
			return nil, fmt.Errorf("store: log entries: %w", err)
		}
		if uint64(idx) != from+uint64(len(out)) {
			return nil, fmt.Errorf("store: log entries: found index %d, want %d", idx, from+uint64(len(out)))
		}
		out = append(out, data)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: log entries: %w", err)
	}
	if uint64(len(out)) != to-from {
		return nil, fmt.Errorf("store: log entries [%d, %d): found %d: %w", from, to, len(out), translog.ErrNotFound)
	}
	return out, nil
}

// LogCollateral implements [translog.Reader].
func (c *core) LogCollateral(ctx context.Context, hash [32]byte) ([]byte, error) {
	var data []byte
	err := c.e.queryRow(ctx, `SELECT data FROM log_collateral WHERE hash = ?`, hash[:]).Scan(&data)
	if errors.Is(err, errNoRows) {
		return nil, fmt.Errorf("store: log collateral %x: %w", hash[:8], translog.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: log collateral: %w", err)
	}
	return orEmpty(data), nil
}

// LogBundleIndex implements [translog.Reader].
func (c *core) LogBundleIndex(ctx context.Context, bundleHash [32]byte) (uint64, error) {
	var idx int64
	err := c.e.queryRow(ctx, `SELECT idx FROM log_bundles WHERE bundle_hash = ?`, bundleHash[:]).Scan(&idx)
	if errors.Is(err, errNoRows) {
		return 0, fmt.Errorf("store: log bundle %x: %w", bundleHash[:8], translog.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("store: log bundle: %w", err)
	}
	return uint64(idx), nil
}

// logTx implements translog.Tx on a transaction (or, for reads, on the
// database).
type logTx struct{ c conn }

func (t logTx) LogSize(ctx context.Context) (uint64, error) {
	var size int64
	err := t.c.queryRow(ctx, `SELECT size FROM log_checkpoint WHERE id = 1`).Scan(&size)
	if errors.Is(err, errNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("log size: %w", err)
	}
	return uint64(size), nil
}

func (t logTx) LogCheckpoint(ctx context.Context) ([]byte, error) {
	var cp []byte
	err := t.c.queryRow(ctx, `SELECT checkpoint FROM log_checkpoint WHERE id = 1`).Scan(&cp)
	if errors.Is(err, errNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: log checkpoint: %w", err)
	}
	return cp, nil
}

func (t logTx) LogNodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		var h []byte
		err := t.c.queryRow(ctx, `SELECT hash FROM log_nodes WHERE level = ? AND idx = ?`, int64(id.Level), int64(id.Index)).Scan(&h)
		if errors.Is(err, errNoRows) {
			return nil, fmt.Errorf("store: log node (%d, %d): %w", id.Level, id.Index, translog.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("store: log node: %w", err)
		}
		out[i] = h
	}
	return out, nil
}

func (t logTx) LogMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := t.c.queryRow(ctx, `SELECT value FROM log_meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, errNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("log meta: %w", err)
	}
	return v, nil
}

func (t logTx) SetLogMeta(ctx context.Context, key, value string) error {
	_, err := t.c.exec(ctx, `INSERT INTO log_meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("log meta: %w", err)
	}
	return nil
}

func (t logTx) PutLogEntries(ctx context.Context, first uint64, entries [][]byte) error {
	for i, e := range entries {
		// A plain INSERT: an index written twice is a bug, and its
		// unique violation aborts the append.
		if _, err := t.c.exec(ctx, `INSERT INTO log_entries (idx, data) VALUES (?, ?)`, int64(first)+int64(i), e); err != nil {
			return fmt.Errorf("log entry %d: %w", first+uint64(i), err)
		}
	}
	return nil
}

func (t logTx) PutLogNodes(ctx context.Context, ids []compact.NodeID, hashes [][]byte) error {
	if len(ids) != len(hashes) {
		return fmt.Errorf("log nodes: %d ids, %d hashes", len(ids), len(hashes))
	}
	for i, id := range ids {
		if _, err := t.c.exec(ctx, `INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)`, int64(id.Level), int64(id.Index), hashes[i]); err != nil {
			return fmt.Errorf("log node (%d, %d): %w", id.Level, id.Index, err)
		}
	}
	return nil
}

func (t logTx) PutLogCollateral(ctx context.Context, hash [32]byte, data []byte) error {
	_, err := t.c.exec(ctx, `INSERT INTO log_collateral (hash, data) VALUES (?, ?) ON CONFLICT (hash) DO NOTHING`, hash[:], orEmpty(data))
	if err != nil {
		return fmt.Errorf("log collateral: %w", err)
	}
	return nil
}

func (t logTx) PutLogBundleIndex(ctx context.Context, bundleHash [32]byte, index uint64) error {
	_, err := t.c.exec(ctx, `INSERT INTO log_bundles (bundle_hash, idx) VALUES (?, ?) ON CONFLICT (bundle_hash) DO NOTHING`, bundleHash[:], int64(index))
	if err != nil {
		return fmt.Errorf("log bundle index: %w", err)
	}
	return nil
}

func (t logTx) PutLogCheckpoint(ctx context.Context, size uint64, signed []byte) error {
	_, err := t.c.exec(ctx, `INSERT INTO log_checkpoint (id, size, checkpoint) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET size = excluded.size, checkpoint = excluded.checkpoint`, int64(size), signed)
	if err != nil {
		return fmt.Errorf("log checkpoint: %w", err)
	}
	return nil
}
