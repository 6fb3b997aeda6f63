// Package translog is sealgate's transparency log: an append-only RFC 6962
// Merkle tree of every admission, re-attestation, drain, eviction and
// admission-policy change the gateway makes, with checkpoints signed in
// the C2SP signed-note format, and inclusion and consistency proofs for
// clients and auditors.
//
// # Design decision: transparency-dev/merkle over the gateway's store
//
// The tree is built with github.com/transparency-dev/merkle (compact
// ranges for appends, proof node lists for proofs, RFC 6962 hashing) over
// tables in the gateway's own store (gateway/store, SQLite or PostgreSQL),
// not with github.com/transparency-dev/tessera and its POSIX storage:
//
//   - Replicas. Gateway replicas already share one PostgreSQL database and
//     nothing else; tessera's POSIX driver needs a file system every
//     replica reaches and its own file locks, which a second piece of
//     shared infrastructure would have to provide. Here each append runs
//     in one database transaction that first takes a PostgreSQL advisory
//     lock (pg_advisory_xact_lock), so whichever replica appends writes the
//     one log, one writer at a time; the lock is released when the
//     transaction ends or its session dies, so a dead writer never blocks
//     the others. On SQLite, BEGIN IMMEDIATE serializes writers the same
//     way.
//   - Durability. An append is acknowledged only after the transaction
//     that writes its entry, the new tree nodes and the newly signed
//     checkpoint commits. A process killed at any point before the commit
//     leaves the previous tree and checkpoint untouched; after it, the
//     entry is in the database's write-ahead log. The gateway admits a
//     worker only after its entry's append returned.
//   - Dependencies. tessera v1.0.4 resolves from the module proxy but
//     brings OpenTelemetry, klog and a batching sequencer with its own
//     goroutines and integration delay; the merkle module is small and
//     has no dependencies beyond the standard library. (The versions
//     pinned are github.com/transparency-dev/merkle v0.0.2 and
//     golang.org/x/mod v0.42.0 for sumdb/note.)
//
// The cost is that entries are served as a paginated range rather than
// as static C2SP tlog-tiles; the tree nodes are stored individually
// (every perfect subtree's hash, about two per entry), which is what
// proofs read.
//
// # Entries
//
// An Entry has a versioned canonical binary encoding (proto/SPEC.md §15):
// parse then marshal gives back the same bytes, and ParseEntry rejects
// anything else. The leaf hash covers exactly those bytes. Evidence
// entries carry the bundle without its collateral (TCB info, QE
// identity, CRLs, VCEK chains: the same for every worker on a platform),
// and its SHA-256; the collateral is stored once by that hash beside the
// log and served by it, so the log grows with workers, not with repeats.
// FullBundle rebuilds the bundle and checks it against the recorded
// bundle hash.
//
// # Checkpoints
//
// A checkpoint is the C2SP tlog-checkpoint body (origin, size, base64
// root) with one extension line, "time " and Unix milliseconds: when the
// gateway signed it. It is signed as a note (golang.org/x/mod/sumdb/note)
// with an Ed25519 key whose name is the log's origin. Clients and
// auditors pin the verifier key ("origin+hash+base64"). Verifier.Open
// ignores signatures by other keys, so witness cosignatures can be added
// to a checkpoint without breaking clients that do not check them.
package translog
