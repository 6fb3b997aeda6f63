package translog

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

var (
	hasher = rfc6962.DefaultHasher
	ranges = &compact.RangeFactory{Hash: hasher.HashChildren}
)

// LeafHash is the RFC 6962 leaf hash of an encoded entry.
func LeafHash(encoded []byte) [32]byte {
	var h [32]byte
	copy(h[:], hasher.HashLeaf(encoded))
	return h
}

// Reader reads a log's storage. Implementations are safe for concurrent
// use.
type Reader interface {
	// LogCheckpoint returns the latest signed checkpoint, or nil when the
	// log has none yet.
	LogCheckpoint(ctx context.Context) ([]byte, error)
	// LogEntries returns the encoded entries [from, to); to must not
	// pass the log's size.
	LogEntries(ctx context.Context, from, to uint64) ([][]byte, error)
	// LogNodes returns the hashes of the given perfect-subtree nodes,
	// each of which must exist.
	LogNodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error)
	// LogCollateral returns collateral by its SHA-256, or an error
	// wrapping ErrNotFound.
	LogCollateral(ctx context.Context, hash [32]byte) ([]byte, error)
	// LogBundleIndex returns the index of the first evidence entry of the
	// bundle with this SHA-256, or an error wrapping ErrNotFound.
	LogBundleIndex(ctx context.Context, bundleHash [32]byte) (uint64, error)
}

// Tx is one append's view of the storage, inside a transaction that
// holds the log's writer lock.
type Tx interface {
	// LogSize returns the number of entries.
	LogSize(ctx context.Context) (uint64, error)
	// LogCheckpoint returns the latest signed checkpoint, nil if none.
	LogCheckpoint(ctx context.Context) ([]byte, error)
	LogNodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error)
	// LogMeta returns the value stored under key, "" if none.
	LogMeta(ctx context.Context, key string) (string, error)
	SetLogMeta(ctx context.Context, key, value string) error
	// PutLogEntries stores entries at indexes first, first+1, ….
	PutLogEntries(ctx context.Context, first uint64, entries [][]byte) error
	PutLogNodes(ctx context.Context, ids []compact.NodeID, hashes [][]byte) error
	// PutLogBundleIndex records index as the entry of a bundle, unless
	// the bundle has one.
	PutLogBundleIndex(ctx context.Context, bundleHash [32]byte, index uint64) error
	// PutLogCollateral stores data under hash unless it is there.
	PutLogCollateral(ctx context.Context, hash [32]byte, data []byte) error
	// PutLogCheckpoint records the signed checkpoint of size entries.
	PutLogCheckpoint(ctx context.Context, size uint64, signed []byte) error
}

// Storage is where a log keeps its entries, tree nodes, collateral and
// checkpoint. gateway/store implements it over SQLite and PostgreSQL.
type Storage interface {
	Reader
	// LogUpdate runs fn in one write transaction that holds the log's
	// writer lock (on PostgreSQL an advisory lock, so one replica writes
	// at a time), committing when fn returns nil. Nothing fn wrote is
	// visible, or durable, before the commit.
	LogUpdate(ctx context.Context, fn func(Tx) error) error
}

// ErrNotFound reports an index, size or collateral hash the log does not
// have.
var ErrNotFound = errors.New("not found")

// Config configures a Log.
type Config struct {
	// Storage holds the log. Required.
	Storage Storage
	// Signer signs checkpoints. Required.
	Signer *Signer
	// Now stamps entries' checkpoints. Nil means time.Now.
	Now func() time.Time
}

// Log appends entries to a transparency log and serves its checkpoint,
// entries and proofs. Its methods are safe for concurrent use, from any
// number of processes sharing the storage.
type Log struct {
	st     Storage
	signer *Signer
	now    func() time.Time
}

// New returns a Log over cfg.Storage, signing an empty checkpoint if the
// log has none yet.
func New(ctx context.Context, cfg Config) (*Log, error) {
	if cfg.Storage == nil || cfg.Signer == nil {
		return nil, errors.New("translog: config: Storage and Signer are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Log{st: cfg.Storage, signer: cfg.Signer, now: cfg.Now}
	err := l.st.LogUpdate(ctx, func(tx Tx) error {
		size, err := tx.LogSize(ctx)
		if err != nil || size > 0 {
			return err
		}
		if cp, err := tx.LogCheckpoint(ctx); err != nil || cp != nil {
			return err
		}
		return l.signInto(ctx, tx, 0, hasher.EmptyRoot())
	})
	if err != nil {
		return nil, fmt.Errorf("translog: %w", err)
	}
	return l, nil
}

// Origin is the log's origin.
func (l *Log) Origin() string { return l.signer.Origin() }

// VerifierKey is the log's public key in note's text form.
func (l *Log) VerifierKey() string { return l.signer.VerifierKey() }

// Pending is an entry waiting to be appended with the collateral it
// references, if any.
type Pending struct {
	Entry      Entry
	Collateral []byte
}

// Append adds the entries in order, in one transaction, and returns the
// index of the first. When it returns nil the entries are durable and
// covered by the stored checkpoint; when it returns an error none of them
// is in the log.
func (l *Log) Append(ctx context.Context, entries ...Pending) (uint64, error) {
	first, _, err := l.append(ctx, "", "", entries)
	return first, err
}

// AppendUnlessMeta appends the entries and sets meta key to value in the
// same transaction, unless key already holds value, in which case it
// appends nothing and reports false. The gateway logs its admission
// policy this way, once per change.
func (l *Log) AppendUnlessMeta(ctx context.Context, key, value string, entries ...Pending) (uint64, bool, error) {
	return l.append(ctx, key, value, entries)
}

func (l *Log) append(ctx context.Context, key, value string, entries []Pending) (uint64, bool, error) {
	if len(entries) == 0 {
		return 0, false, errors.New("translog: append: no entries")
	}
	encoded := make([][]byte, len(entries))
	for i, p := range entries {
		b, err := p.Entry.Marshal()
		if err != nil {
			return 0, false, fmt.Errorf("translog: append: entry %d: %w", i, err)
		}
		if (p.Entry.Kind == KindAdmission || p.Entry.Kind == KindReattestation) && sha256.Sum256(p.Collateral) != p.Entry.CollateralHash {
			return 0, false, fmt.Errorf("translog: append: entry %d: collateral does not match its hash", i)
		}
		encoded[i] = b
	}
	var first uint64
	appended := false
	err := l.st.LogUpdate(ctx, func(tx Tx) error {
		if key != "" {
			v, err := tx.LogMeta(ctx, key)
			if err != nil {
				return err
			}
			if v == value {
				return nil
			}
			if err := tx.SetLogMeta(ctx, key, value); err != nil {
				return err
			}
		}
		size, err := tx.LogSize(ctx)
		if err != nil {
			return err
		}
		ids := compact.RangeNodes(0, size, nil)
		hashes, err := tx.LogNodes(ctx, ids)
		if err != nil {
			return fmt.Errorf("reading the tree's right border: %w", err)
		}
		rng, err := ranges.NewRange(0, size, hashes)
		if err != nil {
			return err
		}
		var newIDs []compact.NodeID
		var newHashes [][]byte
		visit := func(id compact.NodeID, h []byte) {
			newIDs = append(newIDs, id)
			newHashes = append(newHashes, h)
		}
		for i, b := range encoded {
			if err := rng.Append(hasher.HashLeaf(b), visit); err != nil {
				return err
			}
			p := entries[i]
			if p.Entry.Kind == KindAdmission || p.Entry.Kind == KindReattestation {
				if err := tx.PutLogCollateral(ctx, p.Entry.CollateralHash, p.Collateral); err != nil {
					return err
				}
				if err := tx.PutLogBundleIndex(ctx, p.Entry.BundleHash, size+uint64(i)); err != nil {
					return err
				}
			}
		}
		root, err := rng.GetRootHash(nil)
		if err != nil {
			return err
		}
		if err := tx.PutLogEntries(ctx, size, encoded); err != nil {
			return err
		}
		if err := tx.PutLogNodes(ctx, newIDs, newHashes); err != nil {
			return err
		}
		first, appended = size, true
		return l.signInto(ctx, tx, size+uint64(len(encoded)), root)
	})
	if err != nil {
		return 0, false, fmt.Errorf("translog: append: %w", err)
	}
	return first, appended, nil
}

func (l *Log) signInto(ctx context.Context, tx Tx, size uint64, root []byte) error {
	c := Checkpoint{Origin: l.signer.Origin(), Size: size, Time: l.now().UTC().Truncate(time.Millisecond)}
	copy(c.Root[:], root)
	signed, err := l.signer.Sign(c)
	if err != nil {
		return err
	}
	return tx.PutLogCheckpoint(ctx, size, signed)
}

// Checkpoint returns the latest signed checkpoint and its parsed body.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, Checkpoint, error) {
	signed, err := l.st.LogCheckpoint(ctx)
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("translog: checkpoint: %w", err)
	}
	if signed == nil {
		return nil, Checkpoint{}, fmt.Errorf("translog: checkpoint: %w", ErrNotFound)
	}
	text, err := checkpointText(signed)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	c, err := ParseCheckpoint(text)
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("translog: stored checkpoint: %w", err)
	}
	return signed, c, nil
}

// Entries returns the encoded entries [from, to), which must lie within
// size, the size of a checkpoint the caller has.
func (l *Log) Entries(ctx context.Context, from, to, size uint64) ([][]byte, error) {
	if from > to || to > size {
		return nil, fmt.Errorf("translog: entries [%d, %d) of a tree of %d: %w", from, to, size, ErrNotFound)
	}
	if err := l.checkSize(ctx, size); err != nil {
		return nil, err
	}
	return l.st.LogEntries(ctx, from, to)
}

// BundleEntry returns the index and the entry that first logged the
// bundle with this SHA-256, or an error wrapping ErrNotFound.
func (l *Log) BundleEntry(ctx context.Context, bundleHash [32]byte) (uint64, *Entry, error) {
	i, err := l.st.LogBundleIndex(ctx, bundleHash)
	if err != nil {
		return 0, nil, err
	}
	raw, err := l.st.LogEntries(ctx, i, i+1)
	if err != nil {
		return 0, nil, err
	}
	e, err := ParseEntry(raw[0])
	if err != nil {
		return 0, nil, fmt.Errorf("translog: stored entry %d: %w", i, err)
	}
	return i, e, nil
}

// Collateral returns stored collateral by its SHA-256.
func (l *Log) Collateral(ctx context.Context, hash [32]byte) ([]byte, error) {
	return l.st.LogCollateral(ctx, hash)
}

func (l *Log) checkSize(ctx context.Context, size uint64) error {
	_, c, err := l.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if size > c.Size {
		return fmt.Errorf("translog: tree size %d: the log has %d entries: %w", size, c.Size, ErrNotFound)
	}
	return nil
}

// InclusionProof returns the proof that entry index is in the tree of
// size entries.
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("translog: inclusion proof: index %d of a tree of %d: %w", index, size, ErrNotFound)
	}
	if err := l.checkSize(ctx, size); err != nil {
		return nil, err
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("translog: inclusion proof: %w", err)
	}
	return l.rehash(ctx, nodes)
}

// ConsistencyProof returns the proof that the tree of size2 entries
// extends the tree of size1.
func (l *Log) ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	if size1 > size2 {
		return nil, fmt.Errorf("translog: consistency proof from %d to %d: %w", size1, size2, ErrNotFound)
	}
	if err := l.checkSize(ctx, size2); err != nil {
		return nil, err
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("translog: consistency proof: %w", err)
	}
	return l.rehash(ctx, nodes)
}

func (l *Log) rehash(ctx context.Context, nodes proof.Nodes) ([][]byte, error) {
	hashes, err := l.st.LogNodes(ctx, nodes.IDs)
	if err != nil {
		return nil, fmt.Errorf("translog: reading proof nodes: %w", err)
	}
	p, err := nodes.Rehash(hashes, hasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("translog: proof: %w", err)
	}
	return p, nil
}

// RootAt returns the root hash of the tree of size entries, computed
// from the stored nodes.
func (l *Log) RootAt(ctx context.Context, size uint64) ([32]byte, error) {
	var root [32]byte
	if err := l.checkSize(ctx, size); err != nil {
		return root, err
	}
	hashes, err := l.st.LogNodes(ctx, compact.RangeNodes(0, size, nil))
	if err != nil {
		return root, err
	}
	rng, err := ranges.NewRange(0, size, hashes)
	if err != nil {
		return root, err
	}
	r, err := rng.GetRootHash(nil)
	if err != nil {
		return root, err
	}
	copy(root[:], r)
	return root, nil
}
