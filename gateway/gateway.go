// Package gateway is sealgate's gateway: it admits attested workers, lists
// them to clients as candidates, and relays sealed requests to one of the
// candidates a client sealed to, streaming the sealed response back. It is
// untrusted for confidentiality: it never holds a key that opens a request
// or a response, and it logs only metadata (request id, task, candidate
// count, worker id, status, sizes, durations), never bodies, bundles,
// encapsulations or wraps.
//
// This package is the domain; package httpapi is its only HTTP adapter and
// package store its SQLite state. The contract between the domain and the
// adapter (error codes, the response sink) is package api.
//
// Decisions the design leaves open, as built here:
//
//   - Admission. A worker asks for a challenge: a time anchor over a random
//     challenge, signed with Config.AnchorKey, and the nonce derived from
//     it (single use, valid for Config.ChallengeTTL, kept in memory only: a
//     restart forgets outstanding challenges). It binds the nonce into its
//     evidence, carries the anchor in its bundle and registers; clients
//     that pin the anchor key judge the evidence's age from the anchor.
//     The gateway verifies the bundle against Config.AdmissionPolicy at
//     Config.Now and records the worker and its key ids. A worker that
//     registers again replaces its URL, tasks and bundle; the key ids of its
//     earlier registrations stay routable until their own evidence expires,
//     then they are pruned (at startup and at every registration). A nonce
//     is spent by the first well-formed registration that names it, even
//     one the policy refuses, so evidence cannot be retried against one
//     challenge. A key id
//     that routes to another worker with unexpired evidence is refused with
//     api.KeyConflict.
//   - Restart. New loads every stored worker and verifies its stored bundle
//     again under the current policy at the current time; workers whose
//     evidence no longer passes (expired, or refused by a changed policy)
//     are not routed to and not listed until they register again. Key ids of
//     earlier registrations are restored as stored, for their worker.
//   - Routing. Candidates and relay attempts are ordered by least
//     outstanding relayed requests per worker, ties broken at random.
//     Expired workers are neither listed nor relayed to.
//   - Relay. The whole sealed request is read into memory, within
//     Config.MaxRequestBody, and its chunk framing checked, so that a
//     failover resends the same bytes. A worker that fails before its first
//     response byte is skipped; after the first byte there is no retry, and
//     a broken stream just ends the client's response (the client detects
//     truncation cryptographically).
//   - Backpressure. At most Config.MaxInFlight relays run at once and at
//     most Config.MaxPendingChallenges challenges are outstanding; beyond
//     that the gateway answers api.Overloaded (HTTP 503 with Retry-After).
//   - Transport. This walking skeleton speaks plain HTTP to workers unless
//     their URL is https; mutual TLS pinned at enrollment comes later.
package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/gateway/httpapi"
	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/proto"
)

// Defaults for the zero values of Config.
const (
	DefaultChallengeTTL         = 5 * time.Minute
	DefaultReadHeaderTimeout    = 10 * time.Second
	DefaultBodyReadTimeout      = time.Minute
	DefaultMaxHeaderBytes       = 16 << 10
	DefaultShutdownTimeout      = 30 * time.Second
	DefaultMaxInFlight          = 64
	DefaultMaxPendingChallenges = 10000
	DefaultListed               = 8
	DefaultDialTimeout          = 5 * time.Second
	DefaultResponseHeaderWait   = 30 * time.Second
	maxTasks                    = 8
)

// DefaultMaxRequestBody is the largest sealed request the protocol allows:
// the preamble with the largest header and every wrap, and
// proto.MaxRequestPlaintext bytes of framed request chunks.
const DefaultMaxRequestBody = 8 + proto.MaxHeaderSize + proto.MaxCandidates*proto.WrapSize +
	proto.MaxRequestChunks*(5+proto.RequestChunkSize+proto.AEADOverhead)

// Config configures a Gateway. New validates it and keeps its own copy;
// the caller's value is never modified.
type Config struct {
	// DBPath is the SQLite database file holding the worker registry.
	// Required. It is created if missing.
	DBPath string
	// AdmissionPolicy decides which evidence admits a worker. Required. If
	// it allows simulated evidence, New logs a loud warning: such a gateway
	// admits INSECURE simulated TEE workers.
	AdmissionPolicy *policy.Policy
	// AnchorKey signs the time anchors handed out with challenges, from
	// which workers derive their evidence nonces; clients pin its public
	// key to judge evidence age. Nil means a key generated at start, which
	// clients cannot pin across restarts (New logs a warning).
	AnchorKey ed25519.PrivateKey
	// VerifyOptions are passed to every attestation.Verify call; Now and
	// AnchorKeys are filled in by the gateway. The zero value pins the
	// vendors' roots, as production must; only tests set roots here.
	VerifyOptions attestation.Options
	// Logger receives structured logs. Nil means discard.
	Logger *slog.Logger
	// Now returns the current time; evidence, challenges and key expiry
	// are judged by it. Nil means time.Now.
	Now func() time.Time
	// ChallengeTTL is how long an issued nonce stays usable. Zero means
	// DefaultChallengeTTL.
	ChallengeTTL time.Duration
	// MaxPendingChallenges bounds the unexpired, unused challenges held in
	// memory; beyond it Challenge fails with api.Overloaded. Zero means
	// DefaultMaxPendingChallenges.
	MaxPendingChallenges int
	// MaxRequestBody bounds a sealed request body; a larger one is refused
	// with api.TooLarge. Each in-flight relay holds up to this much memory.
	// Zero means DefaultMaxRequestBody (proto.MaxRequestPlaintext plus
	// framing).
	MaxRequestBody int64
	// MaxInFlight bounds concurrent relays; beyond it a relay fails with
	// api.Overloaded. Zero means DefaultMaxInFlight.
	MaxInFlight int
	// WorkerClient sends requests to workers. It must not have an overall
	// Timeout, since responses stream. Nil means a client that dials within
	// DefaultDialTimeout, waits DefaultResponseHeaderWait for response
	// headers, never follows redirects, ignores proxy environment variables
	// and does not ask for compression.
	WorkerClient *http.Client
	// ReadHeaderTimeout bounds reading a request's headers in Serve. Zero
	// means DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout bounds reading a request's body (a registration or a
	// sealed request), from the handler's start. Zero means
	// DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers in Serve. Zero means
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// ShutdownTimeout is how long Serve lets in-flight requests finish
	// after its context is cancelled before it cuts them off. Zero means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// LogValue summarizes the configuration for logs. It leaves out the
// anchor key, the one secret Config holds; the policy is named, not
// dumped.
func (c Config) LogValue() slog.Value {
	policyName := ""
	if c.AdmissionPolicy != nil {
		policyName = c.AdmissionPolicy.Name
	}
	return slog.GroupValue(
		slog.String("db_path", c.DBPath),
		slog.String("admission_policy", policyName),
		slog.Bool("allow_simulated", c.AdmissionPolicy != nil && c.AdmissionPolicy.AllowSimulated),
		slog.Duration("challenge_ttl", c.ChallengeTTL),
		slog.Int64("max_request_body", c.MaxRequestBody),
		slog.Int("max_in_flight", c.MaxInFlight),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
	)
}

// withDefaults validates c and returns a copy with every zero value
// resolved.
func (c Config) withDefaults() (Config, error) {
	if c.DBPath == "" {
		return c, errors.New("gateway: config: DBPath: found empty, want a SQLite file path")
	}
	if c.AdmissionPolicy == nil {
		return c, errors.New("gateway: config: AdmissionPolicy: found nil, want a policy")
	}
	if err := c.AdmissionPolicy.Validate(); err != nil {
		return c, fmt.Errorf("gateway: config: AdmissionPolicy: %w", err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ChallengeTTL", c.ChallengeTTL}, {"ReadHeaderTimeout", c.ReadHeaderTimeout},
		{"BodyReadTimeout", c.BodyReadTimeout}, {"ShutdownTimeout", c.ShutdownTimeout},
	} {
		if d.v < 0 {
			return c, fmt.Errorf("gateway: config: %s: found %v, want zero or positive", d.name, d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int64
	}{
		{"MaxPendingChallenges", int64(c.MaxPendingChallenges)}, {"MaxRequestBody", c.MaxRequestBody},
		{"MaxInFlight", int64(c.MaxInFlight)}, {"MaxHeaderBytes", int64(c.MaxHeaderBytes)},
	} {
		if n.v < 0 {
			return c, fmt.Errorf("gateway: config: %s: found %d, want zero or positive", n.name, n.v)
		}
	}
	if c.WorkerClient != nil && c.WorkerClient.Timeout != 0 {
		return c, fmt.Errorf("gateway: config: WorkerClient.Timeout: found %v, want 0 (responses stream)", c.WorkerClient.Timeout)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ChallengeTTL == 0 {
		c.ChallengeTTL = DefaultChallengeTTL
	}
	if c.MaxPendingChallenges == 0 {
		c.MaxPendingChallenges = DefaultMaxPendingChallenges
	}
	if c.MaxRequestBody == 0 {
		c.MaxRequestBody = DefaultMaxRequestBody
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.BodyReadTimeout == 0 {
		c.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	return c, nil
}

// defaultWorkerClient is the WorkerClient used when Config leaves it nil.
func defaultWorkerClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil, // never read proxy settings from the environment
			DialContext:           (&net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   DefaultDialTimeout,
			ResponseHeaderTimeout: DefaultResponseHeaderWait,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   16,
			DisableCompression:    true, // relay the worker's bytes as they are
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Store is the gateway's durable state. *store.DB implements it.
type Store interface {
	// PutWorker records a worker's registration and the key ids its
	// evidence binds, in one transaction.
	PutWorker(ctx context.Context, w store.Worker, keys []store.Key) error
	// Workers and Keys return everything stored.
	Workers(ctx context.Context) ([]store.Worker, error)
	Keys(ctx context.Context) ([]store.Key, error)
	// PruneKeys deletes key ids whose evidence expired at or before now.
	PruneKeys(ctx context.Context, now time.Time) (int64, error)
	Close() error
}

var _ Store = (*store.DB)(nil)

// Gateway admits workers and relays sealed requests to them. Its methods
// are safe for concurrent use.
type Gateway struct {
	cfg       Config // resolved; never modified after New
	log       *slog.Logger
	store     Store
	client    *http.Client
	ownClient bool // client was made by New and is closed by Close
	handler   http.Handler

	reg        registry
	challenges challenges
	regMu      sync.Mutex    // serializes Register: conflict check, store write, registry update
	relaySlots chan struct{} // one token per running relay

	life lifecycle
}

// lifecycle tracks the domain calls in progress so that Close can wait
// for them before it closes the store.
type lifecycle struct {
	mu     sync.Mutex // guards closed and the Add side of active
	closed bool
	active sync.WaitGroup
	once   sync.Once
	err    error // Close's result, set once
}

// enter registers a call in progress; it fails once Close has begun.
func (l *lifecycle) enter() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	l.active.Add(1)
	return nil
}

func (l *lifecycle) leave() { l.active.Done() }

// New validates cfg, opens the store, loads and re-verifies the registered
// workers, and returns a Gateway ready to serve.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:        cfg,
		log:        cfg.Logger,
		client:     cfg.WorkerClient,
		reg:        newRegistry(),
		challenges: newChallenges(cfg.MaxPendingChallenges),
		relaySlots: make(chan struct{}, cfg.MaxInFlight),
	}
	if g.client == nil {
		g.client, g.ownClient = defaultWorkerClient(), true
	}
	if g.cfg.AnchorKey == nil {
		_, g.cfg.AnchorKey, _ = ed25519.GenerateKey(rand.Reader)
		g.log.WarnContext(ctx, "no anchor key configured: using one generated at start; clients must pin its public key again after every restart",
			slog.String("anchor_key_id", fmt.Sprintf("%x", proto.AnchorKeyID(g.AnchorPublicKey()))))
	}
	g.log.InfoContext(ctx, "gateway starting", slog.Any("config", cfg))
	if cfg.AdmissionPolicy.AllowSimulated {
		g.log.WarnContext(ctx, "INSECURE: this gateway admits simulated TEE workers; simulated evidence proves nothing about where a worker runs, never use this policy in production",
			slog.String("policy", cfg.AdmissionPolicy.Name))
	}
	db, err := store.Open(ctx, cfg.DBPath)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.store = db
	if err := g.load(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("gateway: loading registry: %w", err)
	}
	h, err := httpapi.New(httpapi.Config{
		Service:         g,
		Logger:          g.log,
		MaxRequestBody:  cfg.MaxRequestBody,
		BodyReadTimeout: cfg.BodyReadTimeout,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.handler = h
	return g, nil
}

// AnchorPublicKey returns the public key clients pin to check the time
// anchors of evidence admitted by this gateway.
func (g *Gateway) AnchorPublicKey() ed25519.PublicKey {
	return g.cfg.AnchorKey.Public().(ed25519.PublicKey)
}

// verifyOptions are the attestation options of every admission check.
func (g *Gateway) verifyOptions(now time.Time) attestation.Options {
	opts := g.cfg.VerifyOptions
	opts.Now, opts.AnchorKeys, opts.Audit = now, []ed25519.PublicKey{g.AnchorPublicKey()}, nil
	return opts
}

// Handler returns the gateway's HTTP API, for Serve or any http.Server.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Serve serves the HTTP API on ln until ctx is cancelled, then shuts down:
// it stops accepting connections, lets in-flight requests (streams
// included) finish within Config.ShutdownTimeout, cancels those still
// running, and closes the Gateway. It returns nil after a shutdown caused
// by ctx, or the error that stopped serving. Serve closes ln. Call it at
// most once.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	// Requests must outlive ctx during the grace period, so their base
	// context is detached from it and cancelled only when the grace period
	// is over.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           g.handler,
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		MaxHeaderBytes:    g.cfg.MaxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	g.log.InfoContext(ctx, "gateway serving", slog.String("addr", ln.Addr().String()))

	var serveErr error
	select {
	case serveErr = <-served:
		// Serve failed on its own; fall through to close everything.
	case <-ctx.Done():
		g.log.InfoContext(ctx, "gateway shutting down", slog.Duration("grace", g.cfg.ShutdownTimeout))
	}
	grace, cancelGrace := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.ShutdownTimeout)
	err := srv.Shutdown(grace)
	cancelGrace()
	if err != nil {
		g.log.WarnContext(ctx, "shutdown grace period over; cutting off in-flight requests", slog.Any("err", err))
		cancelBase()
		srv.Close()
	}
	if serveErr == nil {
		serveErr = <-served
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	closeErr := g.Close()
	g.log.InfoContext(ctx, "gateway stopped")
	return errors.Join(serveErr, closeErr)
}

// Close waits for domain calls in progress, then closes the store and the
// worker client's idle connections. Calls that start after Close fail with
// api.Unavailable. It is safe to call more than once.
func (g *Gateway) Close() error {
	g.life.once.Do(func() {
		g.life.mu.Lock()
		g.life.closed = true
		g.life.mu.Unlock()
		g.life.active.Wait()
		if g.ownClient {
			g.client.CloseIdleConnections()
		}
		g.life.err = g.store.Close()
	})
	return g.life.err
}
