package enclave

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// Config configures a Worker. ID, GatewayURL and Evidence are required.
type Config struct {
	// ID is the worker's stable name at the gateway.
	ID string
	// GatewayURL is the gateway's base URL, such as "http://127.0.0.1:8080".
	GatewayURL string
	// AdvertiseURL is the base URL the gateway uses to reach this worker.
	// Empty means "http://" plus the listener's address.
	AdvertiseURL string
	// Evidence produces the TEE reports that bind the worker's keys.
	Evidence EvidenceSource
	// Backend runs the tasks. Nil means Builtin{}.
	Backend Backend
	// Logger receives structured logs. Nil discards them.
	Logger *slog.Logger
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// ReattestInterval is how often the worker rotates its keys and
	// registers fresh evidence. Zero means 5 minutes; it must stay below
	// the gateway policy's maximum evidence age.
	ReattestInterval time.Duration
	// MaxConcurrent bounds requests served at once; more get 503 and the
	// gateway fails over. Zero means 8.
	MaxConcurrent int
	// RequestTimeout bounds one request from its first byte to its last.
	// Zero means 2 minutes.
	RequestTimeout time.Duration
	// FlushInterval bounds how long a partial response chunk waits. Zero
	// means 20ms.
	FlushInterval time.Duration
	// HTTPClient calls the gateway. Nil means a client with a 30s timeout.
	HTTPClient *http.Client
	// KeyLog, when non-nil, receives every private key and request secret.
	// INSECURE: a test hook only; the worker binary never sets it.
	KeyLog io.Writer
}

// maxForwardBody bounds a forwarded request: the largest padded plaintext,
// its chunk framing and tags, and the largest header.
const maxForwardBody = proto.MaxRequestPlaintext + proto.MaxRequestChunks*(5+proto.AEADOverhead) + proto.MaxHeaderSize + 64

// Worker serves sealed requests. Create it with New and start it with Run.
type Worker struct {
	cfg Config
	log *slog.Logger
	sem chan struct{}

	mu      sync.Mutex // guards current and previous
	current *generation
	prev    *generation
}

// generation is one set of keys and the evidence that binds them.
type generation struct {
	opener  *seal.Opener
	signing ed25519.PrivateKey
	bundle  []byte
}

// New validates cfg and returns a Worker.
func New(cfg Config) (*Worker, error) {
	if cfg.ID == "" || len(cfg.ID) > proto.MaxWorkerIDLen {
		return nil, fmt.Errorf("enclave: worker id: found %d bytes, want 1 to %d", len(cfg.ID), proto.MaxWorkerIDLen)
	}
	if u, err := url.Parse(cfg.GatewayURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("enclave: gateway url: found %q, want an http or https URL", cfg.GatewayURL)
	}
	if cfg.Evidence == nil {
		return nil, errors.New("enclave: evidence source: found none, want one")
	}
	if cfg.Backend == nil {
		cfg.Backend = Builtin{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReattestInterval == 0 {
		cfg.ReattestInterval = 5 * time.Minute
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = 8
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 2 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.ReattestInterval < 0 || cfg.MaxConcurrent < 0 || cfg.RequestTimeout < 0 || cfg.FlushInterval < 0 {
		return nil, errors.New("enclave: negative interval, timeout or limit in config")
	}
	w := &Worker{cfg: cfg, log: cfg.Logger.With(slog.String("worker_id", cfg.ID)), sem: make(chan struct{}, cfg.MaxConcurrent)}
	if cfg.Evidence.Kind() == "sim" {
		w.log.Warn("INSECURE: this worker uses the simulated TEE; its evidence proves nothing about where it runs")
	}
	return w, nil
}

// Handler returns the worker's HTTP handler: proto.PathServe and
// proto.PathHealth.
func (w *Worker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+proto.PathServe, w.serve)
	mux.HandleFunc("GET "+proto.PathHealth, func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain")
		io.WriteString(rw, "ok\n")
	})
	return mux
}

// Run serves on ln, registers with the gateway (retrying until it
// succeeds), re-attests every ReattestInterval, and returns when ctx is
// cancelled, after in-flight requests finish or 10 seconds pass.
func (w *Worker) Run(ctx context.Context, ln net.Listener) error {
	advertise := w.cfg.AdvertiseURL
	if advertise == "" {
		advertise = "http://" + ln.Addr().String()
	}
	srv := &http.Server{
		Handler:           w.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(w.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		w.attestLoop(ctx, advertise)
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); serr != nil && err == nil {
		err = serr
	}
	<-loopDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// attestLoop registers now and then every ReattestInterval, retrying
// failures with backoff, until ctx is done.
func (w *Worker) attestLoop(ctx context.Context, advertise string) {
	backoff := 100 * time.Millisecond
	next := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
		adm, err := w.Attest(ctx, advertise)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("registration failed; retrying", slog.String("error", err.Error()), slog.Duration("retry_in", backoff))
			next = backoff
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		next = w.cfg.ReattestInterval
		w.log.Info("registered with gateway", slog.String("kind", adm.Kind), slog.String("policy", adm.Policy), slog.Time("evidence_expires", adm.ExpiresAt))
	}
}

// Attest rotates the worker's keys, obtains evidence bound to a fresh
// gateway challenge and registers it. It is exported so that tests and
// operators can force a re-attestation.
func (w *Worker) Attest(ctx context.Context, advertise string) (*proto.Admission, error) {
	var ch proto.Challenge
	if err := w.postJSON(ctx, proto.PathChallenge, struct{}{}, &ch); err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	if len(ch.Nonce) != proto.NonceSize {
		return nil, fmt.Errorf("challenge: nonce of %d bytes, want %d", len(ch.Nonce), proto.NonceSize)
	}
	if _, err := proto.ParseAnchor(ch.Anchor); err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	if proto.AnchoredNonce(ch.Anchor) != [proto.NonceSize]byte(ch.Nonce) {
		return nil, errors.New("challenge: nonce is not derived from its time anchor")
	}
	gen, err := w.newGeneration(ctx, ch.Anchor)
	if err != nil {
		return nil, err
	}
	reg := proto.Registration{WorkerID: w.cfg.ID, URL: advertise, Tasks: w.cfg.Backend.Tasks(), Bundle: gen.bundle}
	var adm proto.Admission
	if err := w.postJSON(ctx, proto.PathRegister, reg, &adm); err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	w.mu.Lock()
	w.prev, w.current = w.current, gen
	w.mu.Unlock()
	return &adm, nil
}

// newGeneration makes new keys and evidence binding them to the nonce
// derived from anchor.
func (w *Worker) newGeneration(ctx context.Context, anchor []byte) (*generation, error) {
	var keys []*seal.PrivateKey
	for _, s := range proto.Suites() {
		k, err := seal.GenerateKey(s.KEM)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	sigPub, sigPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating signing key: %w", err)
	}
	opener, err := seal.NewOpener(seal.OpenerConfig{Keys: keys, Now: w.cfg.Now, KeyLog: w.cfg.KeyLog})
	if err != nil {
		return nil, err
	}
	b := proto.Bundle{Kind: w.cfg.Evidence.Kind(), Nonce: proto.AnchoredNonce(anchor), Anchor: anchor, Keys: proto.WorkerKeys{Signing: sigPub}}
	for _, k := range keys {
		b.Keys.HPKE = append(b.Keys.HPKE, k.Public())
	}
	if g, ok := w.cfg.Evidence.(GPUEvidenceSource); ok {
		if b.GPU, err = g.GPUEvidence(ctx, b.Nonce); err != nil {
			return nil, fmt.Errorf("collecting gpu evidence: %w", err)
		}
	}
	report, coll, err := w.cfg.Evidence.Evidence(ctx, b.ReportData())
	if err != nil {
		return nil, fmt.Errorf("collecting evidence: %w", err)
	}
	b.Report, b.Collateral = report, coll
	enc, err := b.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encoding bundle: %w", err)
	}
	return &generation{opener: opener, signing: sigPriv, bundle: enc}, nil
}

// Bundle returns the current evidence bundle, or nil before the first
// registration.
func (w *Worker) Bundle() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.current == nil {
		return nil
	}
	return bytes.Clone(w.current.bundle)
}

func (w *Worker) postJSON(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.GatewayURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e proto.ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("gateway answered %d %s: %s", resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("gateway answered %d", resp.StatusCode)
	}
	return json.Unmarshal(data, out)
}
