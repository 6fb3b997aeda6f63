// Package gateway is sealgate's gateway: it enrolls attested workers for
// providers, lists them to tenants as candidates, and relays sealed
// requests to one of the candidates a client sealed to, streaming the
// sealed response back. It is untrusted for confidentiality: it never
// holds a key that opens a request or a response, and it logs only
// metadata (request id, task, candidate count, worker id, status, sizes,
// durations), never bodies, bundles, credentials or keys.
//
// This package is the domain; package httpapi is its only HTTP adapter and
// package store its state (SQLite, or PostgreSQL shared by replicas). The
// contract between the domain and the adapter (error codes, principals,
// the response sink) is package api.
//
// Decisions the design leaves open, as built here:
//
//   - Accounts. The operator holds the admin credential (its SHA-256 is in
//     Config); providers and tenants get credentials from the admin API.
//     A credential is a prefix naming its role and 32 random bytes; the
//     store keeps only its SHA-256. Every endpoint accepts one role: no
//     credential or an unknown one is api.Unauthorized (401), another
//     role's is api.Forbidden (403). Lookups are cached for
//     Config.CredentialCacheTTL, so a rotated credential stops working at
//     once on the replica that rotated it and within that TTL on others.
//   - Enrollment. A provider registers an Ed25519 endorsement key; its
//     worker asks for a challenge (a time anchor signed with
//     Config.AnchorKey, and the nonce derived from it; single use, valid
//     for Config.ChallengeTTL, in memory only) and registers evidence
//     bound to it with the provider's signature over its keys
//     (proto.EndorsementMessage). The gateway verifies the bundle against
//     Config.AdmissionPolicy at Config.Now and the endorsement against the
//     provider's registered key, and records the worker, its provider,
//     capacity, region, models, TLS pin and key ids. A nonce is spent by
//     the first well-formed registration that names it, even one refused,
//     so evidence cannot be retried against one challenge. A key id that
//     routes to another worker with unexpired evidence is refused with
//     api.KeyConflict.
//   - Transport. The gateway serves TLS with Config.TLSCertificate and
//     presents the same certificate as its client certificate to workers,
//     which pin it at enrollment and serve nobody else; the gateway pins
//     each worker's certificate from its registration. Plain HTTP, on
//     either side, needs an explicit INSECURE setting.
//   - Re-attestation. Every Config.ReattestInterval the gateway sends each
//     admitted worker a fresh challenge over mutual TLS and requires new
//     keys and evidence bound to it, endorsed again. A worker that fails
//     or misses it is drained: not listed and not routed new requests,
//     while its in-flight streams finish; a drained worker that passes a
//     later challenge is active again, and one still drained after
//     Config.EvictAfter is evicted (deleted with its keys).
//   - Restart and replicas. New loads every stored worker and verifies its
//     stored bundle again under the current policy at the current time;
//     workers that no longer pass are not routed to until they pass a
//     challenge. Every Config.SyncInterval the registry reloads workers,
//     deletions and pools changed in the store, so replicas sharing a
//     PostgreSQL database route to workers enrolled through either.
//   - Listing. Candidates are the active workers serving the task with
//     unexpired evidence, the tenant's reserved pool first, then spread
//     over as many distinct endorsing providers as there are, least
//     loaded first within a provider. Nodes reserved by another tenant's
//     pool are listed only if that pool lends and they have spare
//     capacity.
//   - Routing. Among a request's candidates that route to active workers
//     with a closed (or probing) circuit breaker and spare capacity, the
//     tenant's own pool nodes come first; the first attempt goes to the
//     better of two picked at random (among the pool nodes, if any)
//     (outstanding requests over advertised capacity), and failover tries
//     the rest least loaded first. A worker that fails before its first
//     response byte is skipped and counts against its breaker. A worker
//     whose breaker is open is not listed; once its open interval is
//     over, the next request sealed to it, or its next passed
//     re-attestation, is the probe that closes it again. After the
//     first byte there is no retry, and a broken stream ends the client's
//     response without its final chunk, which the client detects. With
//     no candidate able to take the request the answer is api.Overloaded
//     (503 with Retry-After); nothing queues. Outstanding counts are per
//     replica.
//   - Reserved capacity. A pool's Slots are concurrent requests reserved
//     out of the unpooled workers' capacity: other tenants' requests are
//     refused with api.Overloaded while taking one would leave less free
//     unpooled capacity than the pools' unused slots.
//   - Limits. Per tenant, a token bucket of requests and one of sealed
//     bytes (api.RateLimited, 429 with Retry-After) and one of strict-mode
//     evidence requests. At most Config.MaxInFlight relays run at once and
//     at most Config.MaxPendingChallenges challenges are outstanding;
//     beyond that the gateway answers api.Overloaded.
package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/gateway/breaker"
	"github.com/sealgate/sealgate/gateway/httpapi"
	"github.com/sealgate/sealgate/gateway/metrics"
	"github.com/sealgate/sealgate/gateway/ratelimit"
	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

// Defaults for the zero values of Config.
const (
	DefaultChallengeTTL         = 5 * time.Minute
	DefaultReadHeaderTimeout    = 10 * time.Second
	DefaultBodyReadTimeout      = time.Minute
	DefaultMaxHeaderBytes       = 16 << 10
	DefaultShutdownTimeout      = 30 * time.Second
	DefaultMaxInFlight          = 256
	DefaultMaxPendingChallenges = 10000
	DefaultListed               = 8
	DefaultDialTimeout          = 5 * time.Second
	DefaultResponseHeaderWait   = 30 * time.Second
	DefaultReattestInterval     = 3 * time.Minute
	DefaultReattestTimeout      = 30 * time.Second
	DefaultEvictAfter           = 10 * time.Minute
	DefaultSyncInterval         = 2 * time.Second
	DefaultCredentialCacheTTL   = 5 * time.Second
	DefaultLogOrigin            = "sealgate-log"
	maxTasks                    = 8
)

// DefaultTenantLimits apply to a tenant created without limits of its own.
var DefaultTenantLimits = TenantLimits{RequestsPerSecond: 20, BurstRequests: 40, BytesPerSecond: 32 << 20, BurstBytes: 64 << 20}

// DefaultEvidenceLimit is each tenant's budget of strict-mode evidence
// requests, which cost a worker a fresh hardware quote.
var DefaultEvidenceLimit = ratelimit.Limit{PerSecond: 1, Burst: 5}

// DefaultMaxRequestBody is the largest sealed request the protocol allows:
// the preamble with the largest header and every wrap, and
// proto.MaxRequestPlaintext bytes of framed request chunks.
const DefaultMaxRequestBody = 8 + proto.MaxHeaderSize + proto.MaxCandidates*proto.WrapSize +
	proto.MaxRequestChunks*(5+proto.RequestChunkSize+proto.AEADOverhead)

// TenantLimits are a tenant's rate limits. A zero PerSecond means
// unlimited.
type TenantLimits struct {
	RequestsPerSecond float64
	BurstRequests     int
	BytesPerSecond    int64
	BurstBytes        int64
}

// Config configures a Gateway. New validates it and keeps its own copy;
// the caller's value is never modified.
type Config struct {
	// Database is the store: a SQLite file path (created if missing), or a
	// postgres:// DSN that replicas share. Required.
	Database string
	// AdmissionPolicy decides which evidence admits a worker. Required. If
	// it allows simulated evidence, New logs a loud warning: such a gateway
	// admits INSECURE simulated TEE workers.
	AdmissionPolicy *policy.Policy
	// AnchorKey signs the time anchors handed out with challenges, from
	// which workers derive their evidence nonces; clients pin its public
	// key to judge evidence age. Replicas must share it. Nil means a key
	// generated at start, which clients cannot pin across restarts (New
	// logs a warning).
	AnchorKey ed25519.PrivateKey
	// LogKey signs the transparency log's checkpoints; its origin names
	// the log, and clients and auditors pin its verifier key. Replicas
	// must share it. Nil means a key generated at start with origin
	// DefaultLogOrigin, which clients cannot pin across restarts (New
	// logs a warning).
	LogKey *translog.Signer
	// AdminCredentialHash is the SHA-256 of the operator's credential
	// (HashCredential). The zero value means no admin credential: every
	// admin call is refused.
	AdminCredentialHash [32]byte
	// TLSCertificate is the gateway's certificate: served to clients,
	// providers and the operator, and presented as the client certificate
	// to workers, which pin it. Replicas must share it. Nil means plain
	// HTTP, which needs InsecurePlainHTTP.
	TLSCertificate *tls.Certificate
	// InsecurePlainHTTP allows serving without TLS, so that credentials
	// travel in clear. INSECURE: for tests and benchmarks on loopback
	// only.
	InsecurePlainHTTP bool
	// InsecurePlainWorkers allows workers that register an http URL and no
	// TLS pin, so that anyone who reaches them is served. INSECURE: for
	// tests and benchmarks only.
	InsecurePlainWorkers bool
	// VerifyOptions are passed to every attestation.Verify call; Now and
	// AnchorKeys are filled in by the gateway. The zero value pins the
	// vendors' roots, as production must; only tests set roots here.
	VerifyOptions attestation.Options
	// Logger receives structured logs. Nil means discard.
	Logger *slog.Logger
	// Metrics receives the gateway's Prometheus metrics. Nil means a set
	// of its own, served at /metrics.
	Metrics *metrics.Metrics
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
	// ReattestInterval is how often each worker is challenged for fresh
	// evidence and keys; it must be shorter than the policy's maximum
	// evidence age, and workers expect it (sealgate-worker -reattest).
	// Zero means DefaultReattestInterval.
	ReattestInterval time.Duration
	// ReattestTimeout bounds one re-attestation call to a worker. Zero
	// means DefaultReattestTimeout, or half of ReattestInterval when that
	// is shorter: a worker that stops answering is then drained within
	// about one interval of its missed challenge, and a round held up by
	// it does not delay the other workers' challenges past their own
	// re-enrollment deadline (twice the interval).
	ReattestTimeout time.Duration
	// EvictAfter is how long a worker stays drained before it is evicted.
	// Zero means DefaultEvictAfter.
	EvictAfter time.Duration
	// SyncInterval is how often the registry reloads what other replicas
	// changed in the store. Zero means DefaultSyncInterval.
	SyncInterval time.Duration
	// CredentialCacheTTL is how long a looked-up credential is trusted
	// without asking the store again. Zero means
	// DefaultCredentialCacheTTL.
	CredentialCacheTTL time.Duration
	// DefaultLimits are the rate limits of tenants created without their
	// own. The zero value means DefaultTenantLimits.
	DefaultLimits TenantLimits
	// EvidenceLimit is each tenant's budget of strict-mode evidence
	// requests. The zero value means DefaultEvidenceLimit.
	EvidenceLimit ratelimit.Limit
	// Breaker configures each worker's circuit breaker; zero fields mean
	// the breaker package's defaults, and a nil Now means Config.Now.
	Breaker breaker.Config
	// WorkerTransport, when set, is the base of every worker connection's
	// transport; the gateway clones it and sets its TLS configuration per
	// worker. Nil means a transport that dials within DefaultDialTimeout,
	// waits DefaultResponseHeaderWait for response headers, ignores proxy
	// environment variables and does not ask for compression.
	WorkerTransport *http.Transport
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
// anchor key, the TLS key and the admin credential's hash, and the
// database DSN (which may hold a password); the policy is named, not
// dumped.
func (c Config) LogValue() slog.Value {
	policyName := ""
	if c.AdmissionPolicy != nil {
		policyName = c.AdmissionPolicy.Name
	}
	backend := "sqlite"
	if strings.HasPrefix(c.Database, "postgres://") || strings.HasPrefix(c.Database, "postgresql://") {
		backend = "postgres"
	}
	return slog.GroupValue(
		slog.String("database", backend),
		slog.String("admission_policy", policyName),
		slog.Bool("allow_simulated", c.AdmissionPolicy != nil && c.AdmissionPolicy.AllowSimulated),
		slog.Bool("tls", c.TLSCertificate != nil),
		slog.Any("log", c.LogKey),
		slog.Bool("insecure_plain_workers", c.InsecurePlainWorkers),
		slog.Duration("challenge_ttl", c.ChallengeTTL),
		slog.Duration("reattest_interval", c.ReattestInterval),
		slog.Duration("evict_after", c.EvictAfter),
		slog.Int64("max_request_body", c.MaxRequestBody),
		slog.Int("max_in_flight", c.MaxInFlight),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
	)
}

// withDefaults validates c and returns a copy with every zero value
// resolved.
func (c Config) withDefaults() (Config, error) {
	if c.Database == "" {
		return c, errors.New("gateway: config: Database: found empty, want a SQLite file path or a postgres:// DSN")
	}
	if c.AdmissionPolicy == nil {
		return c, errors.New("gateway: config: AdmissionPolicy: found nil, want a policy")
	}
	if err := c.AdmissionPolicy.Validate(); err != nil {
		return c, fmt.Errorf("gateway: config: AdmissionPolicy: %w", err)
	}
	if c.TLSCertificate == nil && !c.InsecurePlainHTTP {
		return c, errors.New("gateway: config: TLSCertificate: found nil, want a certificate (or InsecurePlainHTTP, which sends credentials in clear)")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ChallengeTTL", c.ChallengeTTL}, {"ReadHeaderTimeout", c.ReadHeaderTimeout},
		{"BodyReadTimeout", c.BodyReadTimeout}, {"ShutdownTimeout", c.ShutdownTimeout},
		{"ReattestInterval", c.ReattestInterval}, {"ReattestTimeout", c.ReattestTimeout},
		{"EvictAfter", c.EvictAfter}, {"SyncInterval", c.SyncInterval}, {"CredentialCacheTTL", c.CredentialCacheTTL},
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Breaker.Now == nil {
		c.Breaker.Now = c.Now
	}
	setDefault(&c.ChallengeTTL, DefaultChallengeTTL)
	setDefault(&c.MaxPendingChallenges, DefaultMaxPendingChallenges)
	setDefault(&c.MaxRequestBody, DefaultMaxRequestBody)
	setDefault(&c.MaxInFlight, DefaultMaxInFlight)
	setDefault(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&c.BodyReadTimeout, DefaultBodyReadTimeout)
	setDefault(&c.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&c.ReattestInterval, DefaultReattestInterval)
	setDefault(&c.ReattestTimeout, min(DefaultReattestTimeout, c.ReattestInterval/2))
	setDefault(&c.EvictAfter, DefaultEvictAfter)
	setDefault(&c.SyncInterval, DefaultSyncInterval)
	setDefault(&c.CredentialCacheTTL, DefaultCredentialCacheTTL)
	setDefault(&c.DefaultLimits, DefaultTenantLimits)
	setDefault(&c.EvidenceLimit, DefaultEvidenceLimit)
	if c.ReattestInterval >= c.AdmissionPolicy.MaxEvidenceAge.Duration {
		return c, fmt.Errorf("gateway: config: ReattestInterval: found %v, want less than the policy's max_evidence_age %v", c.ReattestInterval, c.AdmissionPolicy.MaxEvidenceAge.Duration)
	}
	return c, nil
}

// setDefault sets *v to def when it is the zero value.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// defaultWorkerTransport is the base transport when Config leaves
// WorkerTransport nil.
func defaultWorkerTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // never read proxy settings from the environment
		DialContext:           (&net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   DefaultDialTimeout,
		ResponseHeaderTimeout: DefaultResponseHeaderWait,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   64,
		DisableCompression:    true, // relay the worker's bytes as they are
		ForceAttemptHTTP2:     true,
	}
}

// Gateway enrolls workers and relays sealed requests to them. Its methods
// are safe for concurrent use.
type Gateway struct {
	cfg     Config // resolved; never modified after New
	log     *slog.Logger
	store   store.Store
	metrics *metrics.Metrics
	handler http.Handler
	base    *http.Transport // cloned per worker

	reg        *registry
	tlog       *tlog // the transparency log
	challenges challenges
	creds      credentialCache
	limits     *ratelimit.Limiter
	regMu      sync.Mutex    // serializes admissions: conflict check, store write, registry update
	relaySlots chan struct{} // one token per running relay
	// reattestSlots holds one token per re-attestation call in progress.
	reattestSlots chan struct{}
	syncMu        sync.Mutex // serializes Sync; guards syncedAt
	syncedAt      time.Time  // time of the last sync

	life lifecycle
}

// lifecycle tracks the domain calls and background loops in progress so
// that Close can wait for them before it closes the store.
type lifecycle struct {
	mu     sync.Mutex // guards closed and the Add side of active
	closed bool
	active sync.WaitGroup
	stop   context.CancelFunc // stops the background loops
	loops  sync.WaitGroup
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
// workers, starts re-attestation and replica sync, and returns a Gateway
// ready to serve. Close stops it.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:        cfg,
		log:        cfg.Logger,
		metrics:    cfg.Metrics,
		base:       cfg.WorkerTransport,
		reg:        newRegistry(cfg.Breaker),
		challenges: newChallenges(cfg.MaxPendingChallenges),
		limits:     ratelimit.New(ratelimit.Config{Now: cfg.Now}),
		relaySlots: make(chan struct{}, cfg.MaxInFlight),

		reattestSlots: make(chan struct{}, reattestParallel),
	}
	g.creds.init(cfg.CredentialCacheTTL, cfg.Now)
	if g.metrics == nil {
		g.metrics = metrics.New()
	}
	if g.base == nil {
		g.base = defaultWorkerTransport()
	}
	if g.cfg.AnchorKey == nil {
		_, g.cfg.AnchorKey, _ = ed25519.GenerateKey(rand.Reader)
		g.log.WarnContext(ctx, "no anchor key configured: using one generated at start; clients must pin its public key again after every restart",
			slog.String("anchor_key_id", fmt.Sprintf("%x", proto.AnchorKeyID(g.AnchorPublicKey()))))
	}
	if g.cfg.LogKey == nil {
		skey, _, err := translog.GenerateKey(DefaultLogOrigin)
		if err == nil {
			g.cfg.LogKey, err = translog.NewSigner(skey)
		}
		if err != nil {
			return nil, fmt.Errorf("gateway: generating a log key: %w", err)
		}
		g.log.WarnContext(ctx, "no transparency log key configured: using one generated at start; clients and auditors must pin its public key again after every restart",
			slog.String("log_public_key", g.cfg.LogKey.VerifierKey()))
	}
	g.log.InfoContext(ctx, "gateway starting", slog.Any("config", g.cfg))
	if cfg.AdmissionPolicy.AllowSimulated {
		g.log.WarnContext(ctx, "INSECURE: this gateway admits simulated TEE workers; simulated evidence proves nothing about where a worker runs, never use this policy in production",
			slog.String("policy", cfg.AdmissionPolicy.Name))
	}
	if cfg.TLSCertificate == nil {
		g.log.WarnContext(ctx, "INSECURE: this gateway serves plain HTTP; credentials travel in clear")
	}
	if cfg.InsecurePlainWorkers {
		g.log.WarnContext(ctx, "INSECURE: this gateway admits plain-HTTP workers, which serve anyone who reaches them")
	}
	if cfg.AdminCredentialHash == ([32]byte{}) {
		g.log.WarnContext(ctx, "no admin credential configured: the admin API refuses every call")
	}
	db, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.store = db
	if err := g.openLog(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("gateway: transparency log: %w", err)
	}
	if err := g.load(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("gateway: loading registry: %w", err)
	}
	h, err := httpapi.New(httpapi.Config{
		Service:         g,
		Logger:          g.log,
		Metrics:         g.metrics.Handler(),
		Log:             g,
		MaxRequestBody:  cfg.MaxRequestBody,
		BodyReadTimeout: cfg.BodyReadTimeout,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.handler = h
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	g.life.stop = stop
	g.life.loops.Add(2)
	go func() { defer g.life.loops.Done(); g.reattestLoop(loopCtx) }()
	go func() { defer g.life.loops.Done(); g.syncLoop(loopCtx) }()
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
	opts.Now, opts.AnchorKeys, opts.Audit, opts.Nonce = now, []ed25519.PublicKey{g.AnchorPublicKey()}, nil, nil
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
	if g.cfg.TLSCertificate != nil {
		ln = tls.NewListener(ln, g.serverTLS())
	}
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

// serverTLS is the TLS configuration of the gateway's listener.
func (g *Gateway) serverTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{*g.cfg.TLSCertificate},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// Close stops re-attestation and sync, waits for domain calls in
// progress, then closes the store and the worker connections. Calls that
// start after Close fail with api.Unavailable. It is safe to call more
// than once.
func (g *Gateway) Close() error {
	g.life.once.Do(func() {
		g.life.mu.Lock()
		g.life.closed = true
		g.life.mu.Unlock()
		g.life.stop()
		g.life.loops.Wait()
		g.life.active.Wait()
		g.reg.closeIdle()
		g.life.err = g.store.Close()
	})
	return g.life.err
}
