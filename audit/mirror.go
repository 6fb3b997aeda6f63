package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

// A mirror directory holds a verified copy of a log:
//
//	checkpoint          the latest signed checkpoint the mirror verified
//	entries             the entries, each as a uint32 length and its bytes
//	                    (proto.MarshalLogEntries), in order; bytes past the
//	                    checkpoint's size are an interrupted update and
//	                    are cut off by the next Mirror
//	collateral/<hex>    collateral by its SHA-256
//
// Mirror writes entries and collateral before the checkpoint that covers
// them, and the checkpoint by rename, so a mirror interrupted at any
// point is still a consistent copy of the log up to its checkpoint.
const (
	mirrorCheckpoint = "checkpoint"
	mirrorEntries    = "entries"
	mirrorCollateral = "collateral"
)

// Mirror brings the mirror in dir up to date with src: it verifies src's
// checkpoint with v, fetches the entries the mirror does not have, checks
// that all entries, old and new, hash to the new checkpoint's root (so
// the new checkpoint is consistent with the mirror's), fetches the
// collateral new evidence entries reference, and then records the new
// checkpoint. It returns how many entries it added. A log that fails a
// check is a *LogError and leaves the mirror as it was.
func Mirror(ctx context.Context, src Source, v *translog.Verifier, dir string, progress func(done, total uint64)) (uint64, error) {
	if err := os.MkdirAll(filepath.Join(dir, mirrorCollateral), 0o755); err != nil {
		return 0, err
	}
	local, old, err := readMirror(dir, v)
	if err != nil {
		return 0, err
	}
	signed, err := src.Checkpoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("fetching the checkpoint: %w", err)
	}
	cp, err := v.Open(signed)
	if err != nil {
		return 0, &LogError{Err: err}
	}
	if cp.Size < old.Size {
		return 0, &LogError{Err: fmt.Errorf("the log has %d entries, fewer than the mirror's %d (a rollback)", cp.Size, old.Size)}
	}
	if old.Size == cp.Size {
		if err := translog.VerifyConsistency(old, cp, nil); err != nil {
			return 0, &LogError{Err: err}
		}
	}
	rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	for _, raw := range local {
		if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(raw), nil); err != nil {
			return 0, err
		}
	}
	var added [][]byte
	for next := old.Size; next < cp.Size; {
		page, err := src.Entries(ctx, next, min(cp.Size, next+proto.MaxLogPage))
		if err != nil {
			return 0, fmt.Errorf("fetching entries from %d: %w", next, err)
		}
		if len(page) == 0 {
			return 0, fmt.Errorf("fetching entries from %d: none served", next)
		}
		for _, raw := range page {
			e, err := translog.ParseEntry(raw)
			if err != nil {
				return 0, &LogError{Err: fmt.Errorf("entry %d: %w", next, err)}
			}
			if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(raw), nil); err != nil {
				return 0, err
			}
			if e.Kind == translog.KindAdmission || e.Kind == translog.KindReattestation {
				if err := mirrorCollateralOf(ctx, src, dir, e.CollateralHash); err != nil {
					return 0, fmt.Errorf("entry %d: %w", next, err)
				}
			}
			added = append(added, raw)
			next++
		}
		if progress != nil {
			progress(next, cp.Size)
		}
	}
	root := rfc6962.DefaultHasher.EmptyRoot()
	if cp.Size > 0 {
		if root, err = rng.GetRootHash(nil); err != nil {
			return 0, err
		}
	}
	if [32]byte(root) != cp.Root {
		return 0, &LogError{Err: &translog.ForkError{Old: old, New: cp,
			Reason: fmt.Sprintf("the mirror's %d entries and the %d served hash to %x, not to the checkpoint's root", old.Size, len(added), root)}}
	}
	if len(added) > 0 {
		page, err := proto.MarshalLogEntries(added)
		if err != nil {
			return 0, err
		}
		f, err := os.OpenFile(filepath.Join(dir, mirrorEntries), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return 0, err
		}
		_, werr := f.Write(page)
		if werr == nil {
			werr = f.Sync()
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return 0, werr
		}
	}
	if err := writeFileAtomic(filepath.Join(dir, mirrorCheckpoint), signed); err != nil {
		return 0, err
	}
	return uint64(len(added)), nil
}

// readMirror reads the mirror's checkpoint and the entries it covers,
// cutting off entries an interrupted update left past it. A mirror with
// no checkpoint yet is empty.
func readMirror(dir string, v *translog.Verifier) ([][]byte, translog.Checkpoint, error) {
	empty := translog.Checkpoint{Origin: v.Origin(), Root: [32]byte(rfc6962.DefaultHasher.EmptyRoot())}
	signed, err := os.ReadFile(filepath.Join(dir, mirrorCheckpoint))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, empty, os.WriteFile(filepath.Join(dir, mirrorEntries), nil, 0o644)
	}
	if err != nil {
		return nil, empty, err
	}
	cp, err := v.Open(signed)
	if err != nil {
		return nil, empty, fmt.Errorf("the mirror's checkpoint: %w", err)
	}
	path := filepath.Join(dir, mirrorEntries)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, empty, err
	}
	entries, used, err := splitEntries(data, cp.Size)
	if err != nil {
		return nil, empty, fmt.Errorf("the mirror's entries: %w", err)
	}
	if used < len(data) {
		if err := os.Truncate(path, int64(used)); err != nil {
			return nil, empty, err
		}
	}
	return entries, cp, nil
}

// splitEntries reads n length-prefixed entries from data and returns them
// with the bytes they took.
func splitEntries(data []byte, n uint64) ([][]byte, int, error) {
	out := make([][]byte, 0, n)
	off := 0
	for uint64(len(out)) < n {
		if len(data)-off < 4 {
			return nil, 0, fmt.Errorf("found %d entries, want %d", len(out), n)
		}
		l := int(data[off])<<24 | int(data[off+1])<<16 | int(data[off+2])<<8 | int(data[off+3])
		if l > len(data)-off-4 {
			return nil, 0, fmt.Errorf("entry %d: truncated", len(out))
		}
		out = append(out, data[off+4:off+4+l])
		off += 4 + l
	}
	return out, off, nil
}

func mirrorCollateralOf(ctx context.Context, src Source, dir string, hash [32]byte) error {
	path := filepath.Join(dir, mirrorCollateral, hex.EncodeToString(hash[:]))
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	data, err := src.Collateral(ctx, hash)
	if err != nil {
		return fmt.Errorf("collateral %x: %w", hash[:8], err)
	}
	if sha256.Sum256(data) != hash {
		return &LogError{Err: fmt.Errorf("collateral %x: served bytes hash to %x", hash[:8], sha256.Sum256(data))}
	}
	return writeFileAtomic(path, data)
}

// writeFileAtomic writes data to path through a synced temporary file
// and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return werr
	}
	return os.Rename(tmp, path)
}

// DirSource reads a mirror directory that Mirror wrote. It reads the
// entries file once, on first use, up to the checkpoint's size.
type DirSource struct {
	Dir string

	once    sync.Once // guards entries, err
	entries [][]byte
	err     error
}

var _ Source = (*DirSource)(nil)

// Checkpoint implements Source.
func (d *DirSource) Checkpoint(context.Context) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.Dir, mirrorCheckpoint))
}

// Entries implements Source.
func (d *DirSource) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	d.once.Do(func() {
		var signed, data []byte
		if signed, d.err = d.Checkpoint(ctx); d.err != nil {
			return
		}
		text, _, ok := bytes.Cut(signed, []byte("\n\n"))
		if !ok {
			d.err = errors.New("the mirror's checkpoint is not a signed note")
			return
		}
		cp, err := translog.ParseCheckpoint(append(text, '\n'))
		if err != nil {
			d.err = err
			return
		}
		if data, d.err = os.ReadFile(filepath.Join(d.Dir, mirrorEntries)); d.err != nil {
			return
		}
		d.entries, _, d.err = splitEntries(data, cp.Size)
	})
	if d.err != nil {
		return nil, d.err
	}
	if start >= end || end > uint64(len(d.entries)) {
		return nil, fmt.Errorf("entries [%d, %d) of a mirror of %d", start, end, len(d.entries))
	}
	return d.entries[start:end], nil
}

// Collateral implements Source.
func (d *DirSource) Collateral(_ context.Context, hash [32]byte) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.Dir, mirrorCollateral, hex.EncodeToString(hash[:])))
}
