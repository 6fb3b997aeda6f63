package proto

import (
	"golang.org/x/crypto/cryptobyte"
)

// The gateway's transparency log over HTTP (SPEC.md §15). These routes
// need no credential: the log is public, for auditors and clients alike.
const (
	// PathLogCheckpoint serves the latest signed checkpoint, a C2SP
	// signed note (text/plain).
	PathLogCheckpoint = "/v1/log/checkpoint"
	// PathLogEntries serves ?start=N&end=M: entries [N, M), which must lie
	// within the latest checkpoint, as MediaTypeLogEntries. The answer may
	// hold fewer entries than asked (at most MaxLogPage, and at most
	// MaxLogPageBytes of them); ask again from where it stopped.
	PathLogEntries = "/v1/log/entries"
	// PathLogInclusion serves ?index=I&size=S: LogProof that entry I is in
	// the tree of S entries.
	PathLogInclusion = "/v1/log/proof/inclusion"
	// PathLogConsistency serves ?from=A&to=B: LogProof that the tree of B
	// entries extends the tree of A.
	PathLogConsistency = "/v1/log/proof/consistency"
	// PathLogCollateral + "/" + 64 lowercase hex digits serves the
	// collateral with that SHA-256 (application/octet-stream).
	PathLogCollateral = "/v1/log/collateral"

	MediaTypeLogEntries = "application/vnd.sealgate.log-entries"

	MaxLogPage      = 256
	MaxLogPageBytes = 16 << 20
	// MaxLogProof bounds a proof's hashes.
	MaxLogProof = 128
)

// LogProof is an inclusion or consistency proof: the RFC 6962 audit path
// or consistency path, SHA-256 hashes base64 in JSON.
type LogProof struct {
	Hashes [][]byte `json:"hashes"`
}

// LogInclusion places a listed candidate's evidence in the gateway's
// transparency log. With the candidate's WorkerID, ProviderID,
// ProviderKey, Endorsement and Bundle it determines the logged entry
// exactly (SPEC.md §15.3): the client rebuilds the entry, hashes it, and
// checks Proof against CandidateList.LogCheckpoint.
type LogInclusion struct {
	// Index is the entry's position in the log.
	Index uint64 `json:"index"`
	// Kind is "admission" or "reattestation".
	Kind string `json:"kind"`
	// TimeMillis is the entry's time: when the gateway verified the
	// bundle, in Unix milliseconds.
	TimeMillis int64 `json:"time_ms"`
	// PolicyHash is the SHA-256 of the admission policy the gateway
	// verified the bundle against.
	PolicyHash []byte `json:"policy_hash"`
	// Proof is the inclusion proof of the entry in the tree of
	// CandidateList.LogCheckpoint.
	Proof [][]byte `json:"proof"`
}

// MarshalLogEntries encodes a page of log entries: each as a uint32
// length and its bytes.
func MarshalLogEntries(entries [][]byte) ([]byte, error) {
	var b cryptobyte.Builder
	for _, e := range entries {
		b.AddUint32(uint32(len(e)))
		b.AddBytes(e)
	}
	return b.Bytes()
}

// ParseLogEntries decodes a page of log entries, at most max of them.
func ParseLogEntries(raw []byte, max int) ([][]byte, error) {
	const s = "log entries"
	in := cryptobyte.String(raw)
	var out [][]byte
	for !in.Empty() {
		if len(out) == max {
			return nil, malformed(s, "count", "found more than %d, want at most %d", max, max)
		}
		var n uint32
		var e []byte
		if !in.ReadUint32(&n) || uint64(n) > uint64(len(in)) || !in.ReadBytes(&e, int(n)) {
			return nil, malformed(s, "entry", "entry %d: truncated", len(out))
		}
		out = append(out, e)
	}
	return out, nil
}
