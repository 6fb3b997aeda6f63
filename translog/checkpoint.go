package translog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// MaxCheckpointSize bounds a signed checkpoint note (body and signature
// lines), as served and as parsed.
const MaxCheckpointSize = 8 << 10

// timeLine starts the checkpoint's extension line that carries its time.
const timeLine = "time "

// Checkpoint is a C2SP tlog-checkpoint body: the log's origin, its size
// and root hash, and, as the first extension line, the time the gateway
// signed it ("time " and Unix milliseconds in decimal).
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   [32]byte
	Time   time.Time
}

// Marshal returns the checkpoint's note text.
func (c Checkpoint) Marshal() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n%s%d\n", c.Origin, c.Size,
		base64.StdEncoding.EncodeToString(c.Root[:]), timeLine, c.Time.UnixMilli())
}

// ParseCheckpoint parses a checkpoint's note text, strictly: exactly the
// four lines Marshal writes. Every error wraps ErrMalformed.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	var c Checkpoint
	bad := func(field, format string, args ...any) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("%w checkpoint: %s: %s", ErrMalformed, field, fmt.Sprintf(format, args...))
	}
	lines := strings.Split(string(text), "\n")
	if len(lines) != 5 || lines[4] != "" {
		return bad("lines", "found %d, want 4 lines each ending in a newline", len(lines)-1)
	}
	if lines[0] == "" {
		return bad("origin", "found an empty line, want the log's origin")
	}
	c.Origin = lines[0]
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return bad("size", "found %q, want a decimal number", clip(lines[1]))
	}
	c.Size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return bad("root hash", "found %q, want 32 bytes in base64", clip(lines[2]))
	}
	copy(c.Root[:], root)
	ts, ok := strings.CutPrefix(lines[3], timeLine)
	ms, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil || ms <= 0 || strconv.FormatInt(ms, 10) != ts {
		return bad("time", "found %q, want %q and Unix milliseconds", clip(lines[3]), timeLine)
	}
	c.Time = time.UnixMilli(ms).UTC()
	return c, nil
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// Signer signs checkpoints as the log: a note signer whose name is the
// log's origin. It has no String method and logs only its public key.
type Signer struct {
	s    note.Signer
	vkey string
}

// GenerateKey returns a new log key for origin: the private key in note's
// text form ("PRIVATE+KEY+origin+hash+base64"), to keep in a 0600 file,
// and the verifier key ("origin+hash+base64") clients and auditors pin.
func GenerateKey(origin string) (skey, vkey string, err error) {
	if err := checkOrigin(origin); err != nil {
		return "", "", err
	}
	return note.GenerateKey(rand.Reader, origin)
}

// checkOrigin allows what note allows in a key name, minus the empty
// string.
func checkOrigin(origin string) error {
	if origin == "" || strings.ContainsAny(origin, "+ \n\t") || !isPrint(origin) {
		return fmt.Errorf("translog: origin: found %q, want a non-empty name without '+', spaces or control characters", clip(origin))
	}
	return nil
}

func isPrint(s string) bool {
	for _, r := range s {
		if r < 0x21 || r == 0x7f {
			return false
		}
	}
	return true
}

// NewSigner reads a private log key in note's text form. Only Ed25519
// keys are accepted.
func NewSigner(skey string) (*Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, errors.New("translog: log key: not a note private key (PRIVATE+KEY+name+hash+base64)")
	}
	if err := checkOrigin(s.Name()); err != nil {
		return nil, err
	}
	// Derive the verifier key from the private key's text form,
	// PRIVATE+KEY+name+hash+base64 (base64 may hold '+'): its algorithm
	// byte (1, Ed25519) and seed.
	parts := strings.SplitN(strings.TrimSpace(skey), "+", 5)
	if len(parts) != 5 {
		return nil, errors.New("translog: log key: not a note private key (PRIVATE+KEY+name+hash+base64)")
	}
	priv, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(priv) != 1+ed25519.SeedSize || priv[0] != 1 {
		return nil, errors.New("translog: log key: want an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(priv[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("translog: log key: %w", err)
	}
	return &Signer{s: s, vkey: vkey}, nil
}

// Origin is the log's name, the first line of its checkpoints.
func (s *Signer) Origin() string { return s.s.Name() }

// VerifierKey is the public key clients and auditors pin, in note's text
// form.
func (s *Signer) VerifierKey() string { return s.vkey }

// LogValue names the log and its public key, never the private key.
func (s *Signer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("origin", s.Origin()), slog.String("public_key", s.vkey))
}

// Sign returns c signed as a note.
func (s *Signer) Sign(c Checkpoint) ([]byte, error) {
	if c.Origin != s.Origin() {
		return nil, fmt.Errorf("translog: sign checkpoint: origin: found %q, want %q", c.Origin, s.Origin())
	}
	return note.Sign(&note.Note{Text: string(c.Marshal())}, s.s)
}

// ErrCheckpointSignature reports a checkpoint that does not carry a valid
// signature by the pinned log key.
var ErrCheckpointSignature = errors.New("checkpoint not signed by the pinned log key")

// Verifier checks checkpoints against one pinned log key.
type Verifier struct {
	v    note.Verifier
	vkey string
}

// NewVerifier reads a log's public key in note's text form
// ("origin+hash+base64").
func NewVerifier(vkey string) (*Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("translog: log public key: not a note verifier key (origin+hash+base64): %v", err)
	}
	return &Verifier{v: v, vkey: strings.TrimSpace(vkey)}, nil
}

// Origin is the origin the pinned key signs for.
func (v *Verifier) Origin() string { return v.v.Name() }

// Key returns the pinned key in its text form.
func (v *Verifier) Key() string { return v.vkey }

// Open checks that signed is a checkpoint signed by the pinned key for
// its origin and returns it. Signatures by other keys (witness
// cosignatures) are allowed and ignored. A missing or invalid signature
// wraps ErrCheckpointSignature; a malformed body wraps ErrMalformed.
func (v *Verifier) Open(signed []byte) (Checkpoint, error) {
	if len(signed) > MaxCheckpointSize {
		return Checkpoint{}, fmt.Errorf("%w checkpoint: found %d bytes, want at most %d", ErrMalformed, len(signed), MaxCheckpointSize)
	}
	n, err := note.Open(signed, note.VerifierList(v.v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrCheckpointSignature, err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Origin() {
		return Checkpoint{}, fmt.Errorf("%w: origin: found %q, want %q", ErrCheckpointSignature, clip(c.Origin), v.Origin())
	}
	return c, nil
}

// checkpointText returns the note text of a signed checkpoint without
// checking its signature, for the log's own stored checkpoint.
func checkpointText(signed []byte) ([]byte, error) {
	i := bytes.Index(signed, []byte("\n\n"))
	if i < 0 {
		return nil, fmt.Errorf("%w checkpoint: no signature block", ErrMalformed)
	}
	return signed[:i+1], nil
}
