package seal

import (
	"crypto/hmac"
	"crypto/hpke"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// OpenerConfig configures a worker's Opener. Only Keys is required.
type OpenerConfig struct {
	// Keys are the worker's current HPKE private keys, one per KEM.
	Keys []*PrivateKey
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// MaxAge is how old a request's timestamp may be. Zero means 5 minutes.
	MaxAge time.Duration
	// MaxSkew is how far in the future a request's timestamp may be. Zero
	// means 1 minute.
	MaxSkew time.Duration
	// MinSuite is the weakest suite accepted. The zero Suite accepts every
	// supported suite; any other value must be a supported suite.
	MinSuite proto.Suite
	// ReplayCapacity bounds how many request ids are remembered within the
	// window of MaxAge+MaxSkew; when it is full, requests are refused with
	// ErrReplayCacheFull. Zero means 1<<20; negative is an error.
	ReplayCapacity int
	// KeyLog, when non-nil, receives the worker's private keys and every
	// request's secrets. INSECURE: for tests only.
	KeyLog io.Writer
}

// Opener opens requests sealed to one generation of a worker's keys and
// refuses any request id it has already opened. Rotating keys means a new
// Opener, which bounds the replay cache. It is safe for concurrent use.
type Opener struct {
	cfg  OpenerConfig
	keys map[proto.KeyID]*PrivateKey

	mu    sync.Mutex // guards seen and order
	seen  map[[proto.RequestIDSize]byte]struct{}
	order []seenEntry // insertion order; expiries are non-decreasing
}

type seenEntry struct {
	id     [proto.RequestIDSize]byte
	expiry time.Time
}

// NewOpener validates cfg and returns an Opener.
func NewOpener(cfg OpenerConfig) (*Opener, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("seal: opener needs at least one key")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 5 * time.Minute
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = time.Minute
	}
	if cfg.MaxAge < 0 || cfg.MaxSkew < 0 {
		return nil, fmt.Errorf("seal: negative request window (max age %v, max skew %v)", cfg.MaxAge, cfg.MaxSkew)
	}
	if cfg.ReplayCapacity == 0 {
		cfg.ReplayCapacity = 1 << 20
	}
	if cfg.ReplayCapacity < 0 {
		return nil, fmt.Errorf("seal: replay capacity %d, want a positive number or zero for the default", cfg.ReplayCapacity)
	}
	if cfg.MinSuite != (proto.Suite{}) && !cfg.MinSuite.Supported() {
		return nil, fmt.Errorf("%w: minimum suite %v is not supported, want the zero Suite or one of %v", ErrSuite, cfg.MinSuite, proto.Suites())
	}
	o := &Opener{cfg: cfg, keys: make(map[proto.KeyID]*PrivateKey), seen: make(map[[proto.RequestIDSize]byte]struct{})}
	for _, k := range cfg.Keys {
		o.keys[k.ID()] = k
		keyLog(cfg.KeyLog, "PRIVATE_KEY", [proto.RequestIDSize]byte{}, k.insecureBytes())
	}
	return o, nil
}

// Opened is a request the worker has authenticated and decrypted.
type Opened struct {
	Header      *proto.Header
	HeaderBytes []byte
	HeaderHash  [32]byte
	// Index is this worker's position among the request's candidates.
	Index int
	// Payload is the unpadded request plaintext.
	Payload []byte

	key      *PrivateKey
	exporter []byte
	keyLog   io.Writer
}

// Open reads one forwarded request from r to its end, authenticates and
// decrypts it. It consumes r up to the final chunk and fails with
// ErrTrailingData if anything follows.
func (o *Opener) Open(r io.Reader) (*Opened, error) {
	p, err := proto.ReadForwardPreamble(r)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, ErrTruncated
	}
	if err != nil {
		return nil, err
	}
	h := p.Header
	key, ok := o.keys[h.Candidates[p.Index].KeyID]
	if !ok {
		return nil, ErrUnknownKey
	}
	if h.Suite.KEM != key.pub.KEM {
		return nil, fmt.Errorf("%w: header suite %v, key kem 0x%04x", ErrSuite, h.Suite, key.pub.KEM)
	}
	if h.Suite.Strength() < o.cfg.MinSuite.Strength() {
		return nil, fmt.Errorf("%w: found %v, want at least %v", ErrSuite, h.Suite, o.cfg.MinSuite)
	}
	now := o.cfg.Now()
	ts := time.UnixMilli(h.Timestamp)
	if ts.Before(now.Add(-o.cfg.MaxAge)) || ts.After(now.Add(o.cfg.MaxSkew)) {
		return nil, fmt.Errorf("%w: timestamp %s, now %s, window -%v/+%v", ErrStale, ts.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), o.cfg.MaxAge, o.cfg.MaxSkew)
	}

	_, kdf, aead, err := suiteParts(h.Suite)
	if err != nil {
		return nil, err
	}
	rcpt, err := hpke.NewRecipient(h.Candidates[p.Index].Enc, key.priv, kdf, aead, []byte(labelWrapInfo))
	if err != nil {
		return nil, ErrAuthentication
	}
	dataKey, err := rcpt.Open(p.HeaderBytes, p.Wrap[:])
	if err != nil || len(dataKey) != dataKeySize {
		return nil, ErrAuthentication
	}
	tagInput, err := h.TagInput()
	if err != nil {
		return nil, err
	}
	want := commitTag(dataKey, tagInput)
	if !hmac.Equal(want[:], h.Tag[:]) {
		return nil, ErrAuthentication
	}

	// A cheap look before the body is decrypted; remember below decides.
	if o.served(h.RequestID) {
		return nil, ErrReplay
	}
	padded, err := readBody(r, dataKey, p.HeaderBytes)
	if err != nil {
		return nil, err
	}
	payload, err := proto.UnpadRequest(padded)
	if err != nil {
		return nil, err
	}
	if err := o.remember(h.RequestID, now); err != nil {
		return nil, err
	}
	exp, err := rcpt.Export(labelExporter, 32)
	if err != nil {
		return nil, fmt.Errorf("seal: exporter: %v", err)
	}
	keyLog(o.cfg.KeyLog, "DATA_KEY", h.RequestID, dataKey)
	keyLog(o.cfg.KeyLog, fmt.Sprintf("EXPORTER_%d", p.Index), h.RequestID, exp)
	return &Opened{
		Header: h, HeaderBytes: p.HeaderBytes, HeaderHash: proto.HeaderHash(p.HeaderBytes),
		Index: p.Index, Payload: payload, key: key, exporter: exp, keyLog: o.cfg.KeyLog,
	}, nil
}

// readBody decrypts request chunks up to and including the final one, then
// requires the end of r.
func readBody(r io.Reader, dataKey, aad []byte) ([]byte, error) {
	gcm := newGCM(deriveKey(dataKey, nil, labelBody))
	var out []byte
	for i := uint64(0); ; i++ {
		if i >= proto.MaxRequestChunks {
			return nil, fmt.Errorf("%w: more than %d chunks", proto.ErrMalformed, proto.MaxRequestChunks)
		}
		c, err := proto.ReadChunk(r, proto.RequestChunk)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ErrTruncated
		}
		if err != nil {
			return nil, err
		}
		nonce := proto.Nonce(i, c.Final)
		out, err = gcm.Open(out, nonce[:], c.Ciphertext, aad)
		if err != nil {
			return nil, ErrAuthentication
		}
		if c.Final {
			break
		}
	}
	if err := expectEOF(r); err != nil {
		return nil, err
	}
	return out, nil
}

func expectEOF(r io.Reader) error {
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	if n > 0 {
		return ErrTrailingData
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// served reports whether id was already served. It does not reserve id:
// two concurrent requests with one id can both pass it, and remember then
// admits only the first.
func (o *Opener) served(id [proto.RequestIDSize]byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.seen[id]
	return ok
}

// remember records id as served, failing if it was already.
func (o *Opener) remember(id [proto.RequestIDSize]byte, now time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for len(o.order) > 0 && now.After(o.order[0].expiry) {
		delete(o.seen, o.order[0].id)
		o.order = o.order[1:]
	}
	if _, dup := o.seen[id]; dup {
		return ErrReplay
	}
	if len(o.seen) >= o.cfg.ReplayCapacity {
		return ErrReplayCacheFull
	}
	o.seen[id] = struct{}{}
	o.order = append(o.order, seenEntry{id: id, expiry: now.Add(o.cfg.MaxAge + o.cfg.MaxSkew)})
	return nil
}
