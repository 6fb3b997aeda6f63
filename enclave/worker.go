package enclave

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// Config configures a Worker. ID, GatewayURL, Credential, ProviderKey and
// Evidence are required.
type Config struct {
	// ID is the worker's stable name at the gateway: 1 to
	// proto.MaxWorkerIDLen characters of [A-Za-z0-9._-].
	ID string
	// GatewayURL is the gateway's base URL, such as
	// "https://gateway.example:8443". It must be https: the worker learns
	// the certificate it accepts the gateway's calls from in the TLS
	// handshakes of its enrollment. An http URL is accepted only with
	// InsecurePlainHTTP.
	GatewayURL string
	// Credential is the provider's API key (proto.CredentialProvider and
	// 43 base64url characters), sent as "Authorization: Bearer" on every
	// call to the gateway. Required: the gateway refuses calls without
	// it. It is never logged.
	Credential string
	// ProviderKey is the provider's Ed25519 endorsement key, whose public
	// half the provider registered at the gateway (proto.PathProviderKey).
	// The worker signs proto.EndorsementMessage(ID, keys hash) with it for
	// every key generation it makes. Required; never logged.
	ProviderKey ed25519.PrivateKey
	// AdvertiseURL is the base URL the gateway uses to reach this worker.
	// Empty means "https://" plus the listener's address ("http://" with
	// InsecurePlainHTTP). Its scheme must match how the worker serves.
	AdvertiseURL string
	// Region is a placement label sent in the registration, up to
	// proto.MaxRegionLen characters of [a-z0-9-]. Empty means unknown.
	Region string
	// Models lists the models the worker advertises, up to
	// proto.MaxModels names of 1 to proto.MaxModelLen printable ASCII
	// characters other than space and comma. Nil advertises none.
	Models []string
	// ModelDigests names the models the backend serves and their digests
	// (see DigestModelDir), up to proto.MaxModels with names as Models
	// allows, each name once. Every key generation's evidence binds them
	// (proto.WorkerKeys.Models), so the TEE report covers them and a
	// client policy can pin them, and an end event whose model is one of
	// them carries its digest (proto.EndBody.ModelDigest). The worker
	// keeps a copy sorted by name. Nil binds no model: the evidence is
	// then encoded exactly as by workers that predate model digests.
	ModelDigests []proto.ModelDigest
	// Evidence produces the TEE reports that bind the worker's keys.
	Evidence EvidenceSource
	// Backend runs the tasks. Nil means Builtin{}.
	Backend Backend
	// MaxInputBytes bounds each task's input, by task name: the decrypted
	// request payload (the task's JSON request, so its text and a few
	// bytes of framing). The key "*" covers tasks not named. A larger
	// request fails with a sealed "too_large" error before the backend
	// sees it. Nil, or a task neither named nor covered by "*", means no
	// bound but the backend's own and proto.MaxRequestPayload. Values are
	// 1 to proto.MaxRequestPayload. The worker keeps a copy.
	MaxInputBytes map[string]int
	// Logger receives structured logs. Nil discards them.
	Logger *slog.Logger
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// ReattestInterval is how often the gateway is expected to send this
	// worker a re-attestation challenge (proto.PathAttest); it must match
	// the gateway's setting. The worker no longer re-registers on its own
	// schedule: if no challenge succeeds within twice this interval, it
	// assumes the gateway lost it (a restart, a missed challenge) and
	// enrolls again. Zero means 3 minutes, the gateway's default.
	ReattestInterval time.Duration
	// MaxConcurrent bounds requests served at once; more get 503 and the
	// gateway fails over. The registration advertises it as the worker's
	// capacity, so it is at most proto.MaxCapacity. Zero means 8.
	MaxConcurrent int
	// RequestTimeout bounds one request from its first byte to its last,
	// and one evidence collection. Zero means 2 minutes.
	RequestTimeout time.Duration
	// FlushInterval bounds how long a partial response chunk waits. Zero
	// means 20ms.
	FlushInterval time.Duration
	// BodyReadTimeout bounds reading a request's body, from the request's
	// start to the body's end, whether or not its handler reads it: a
	// body that arrives later is 408. Zero means 1 minute.
	BodyReadTimeout time.Duration
	// GatewayTLS says how to trust the gateway's certificate when calling
	// it, for instance RootCAs holding a development gateway's self-signed
	// certificate. Nil means the system roots. The worker uses a clone and
	// never accepts less than TLS 1.2.
	GatewayTLS *tls.Config
	// HTTPClient, when set, calls the gateway instead of the worker's own
	// client; GatewayTLS must then be nil (the client's transport carries
	// its TLS configuration). Nil means a client with a 30s timeout whose
	// transport trusts the gateway as GatewayTLS says.
	HTTPClient *http.Client
	// InsecurePlainHTTP serves plain HTTP without mutual TLS: anyone who
	// reaches the worker's address can send it requests, re-attestation
	// challenges and quote requests, and the registration carries no TLS
	// pin. It also allows an http GatewayURL. INSECURE: for tests and
	// benchmarks only; false (the zero value) serves mutual TLS.
	InsecurePlainHTTP bool
	// KeyLog, when non-nil, receives every private key and request secret.
	// INSECURE: a test hook only; the worker binary never sets it.
	KeyLog io.Writer
}

var _ slog.LogValuer = Config{}

// LogValue describes c without its secrets: the credential by its kind
// only and the provider key by the fingerprint of its public half.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("id", c.ID),
		slog.String("gateway_url", c.GatewayURL),
		slog.String("advertise_url", c.AdvertiseURL),
		slog.String("region", c.Region),
		slog.Any("models", c.Models),
		slog.Any("model_digests", modelDigestStrings(c.ModelDigests)),
		slog.Any("max_input_bytes", c.MaxInputBytes),
		slog.Int("max_concurrent", c.MaxConcurrent),
		slog.Duration("reattest_interval", c.ReattestInterval),
		slog.Bool("credential_set", c.Credential != ""),
		slog.String("provider_key", providerKeyFingerprint(c.ProviderKey)),
		slog.Bool("insecure_plain_http", c.InsecurePlainHTTP),
	}
	if c.Evidence != nil {
		attrs = append(attrs, slog.String("evidence", c.Evidence.Kind()))
	}
	return slog.GroupValue(attrs...)
}

// providerKeyFingerprint names a provider key by the first 8 bytes of the
// SHA-256 of its public half, in hex.
func providerKeyFingerprint(k ed25519.PrivateKey) string {
	if len(k) != ed25519.PrivateKeySize {
		return "none"
	}
	h := sha256.Sum256(k[ed25519.SeedSize:])
	return hex.EncodeToString(h[:8])
}

// maxForwardBody bounds a forwarded request: the largest padded plaintext,
// its chunk framing and tags, and the largest header.
const maxForwardBody = proto.MaxRequestPlaintext + proto.MaxRequestChunks*(5+proto.AEADOverhead) + proto.MaxHeaderSize + 64

// maxGatewayPins is how many gateway certificate pins the worker accepts
// calls from: the one seen at its latest enrollment and the one before,
// so that calls already under way when the gateway changed its
// certificate, and a re-enrollment after such a change, both work.
const maxGatewayPins = 2

// maxConcurrentQuotes bounds /v1/quote requests at once: a quote costs
// the TEE (and each GPU) a report, which is slow on hardware.
const maxConcurrentQuotes = 2

// selfSignedValidity is the validity of the worker's TLS certificate. The
// gateway pins its key and ignores its dates; the worker makes a new one
// at every start.
const selfSignedValidity = 365 * 24 * time.Hour

// Worker serves sealed requests. Create it with New and start it with Run.
type Worker struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client

	sem       chan struct{} // slots of requests being served
	attestSem chan struct{} // one slot: a new key generation being made (enrollment or PathAttest)
	quoteSem  chan struct{} // slots of PathQuote evidence collections

	cert tls.Certificate // the worker's TLS certificate; zero with InsecurePlainHTTP
	pin  string          // text form of cert's pin; empty with InsecurePlainHTTP

	// attested receives a value (without blocking) whenever a PathAttest
	// challenge succeeds; unpinned whenever a TLS client presents a
	// certificate whose key is not pinned. The enrollment loop reads both.
	attested chan struct{}
	unpinned chan struct{}
	// watchdogTimer arms the enrollment loop's watchdog. It is time.After;
	// tests replace it to fire the watchdog themselves.
	watchdogTimer func(time.Duration) <-chan time.Time

	mu          sync.Mutex // guards current, prev, pending and gatewayPins
	current     *generation
	prev        *generation
	pending     *generation  // made for an enrollment whose registration is in flight
	gatewayPins []tlspin.Pin // newest first, at most maxGatewayPins
}

// generation is one set of keys, the evidence that binds them and the
// provider's endorsement of them.
type generation struct {
	opener      *seal.Opener
	signing     ed25519.PrivateKey
	keys        proto.WorkerKeys
	bundle      []byte
	endorsement []byte
}

// New validates cfg and returns a Worker. Unless cfg.InsecurePlainHTTP is
// set, it makes the worker's TLS key and self-signed certificate, in
// memory only.
func New(cfg Config) (*Worker, error) {
	var err error
	if err := checkWorkerID(cfg.ID); err != nil {
		return nil, err
	}
	if u, err := url.Parse(cfg.GatewayURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, configErr("GatewayURL", "found %q, want an https URL", cfg.GatewayURL)
	} else if u.Scheme == "http" && !cfg.InsecurePlainHTTP {
		return nil, configErr("GatewayURL", "found %q, want https (the worker learns the gateway's certificate at enrollment; http needs InsecurePlainHTTP)", cfg.GatewayURL)
	}
	cfg.GatewayURL = strings.TrimSuffix(cfg.GatewayURL, "/")
	if err := checkCredential(cfg.Credential); err != nil {
		return nil, err
	}
	if err := checkProviderKey(cfg.ProviderKey); err != nil {
		return nil, err
	}
	if err := checkRegion(cfg.Region); err != nil {
		return nil, err
	}
	if err := checkModels(cfg.Models); err != nil {
		return nil, err
	}
	cfg.Models = slices.Clone(cfg.Models)
	if cfg.ModelDigests, err = checkModelDigests(cfg.ModelDigests); err != nil {
		return nil, err
	}
	if cfg.MaxInputBytes, err = checkInputLimits(cfg.MaxInputBytes); err != nil {
		return nil, err
	}
	if cfg.Evidence == nil {
		return nil, configErr("Evidence", "found none, want one")
	}
	if cfg.AdvertiseURL != "" {
		want := "https"
		if cfg.InsecurePlainHTTP {
			want = "http"
		}
		u, err := url.Parse(cfg.AdvertiseURL)
		if err != nil || u.Scheme != want || u.Host == "" || len(cfg.AdvertiseURL) > proto.MaxWorkerURLLen {
			return nil, configErr("AdvertiseURL", "found %q, want a %s URL of at most %d bytes", cfg.AdvertiseURL, want, proto.MaxWorkerURLLen)
		}
	}
	if cfg.ReattestInterval < 0 || cfg.MaxConcurrent < 0 || cfg.RequestTimeout < 0 || cfg.FlushInterval < 0 || cfg.BodyReadTimeout < 0 {
		return nil, errors.New("enclave: negative interval, timeout or limit in config")
	}
	if cfg.MaxConcurrent > proto.MaxCapacity {
		return nil, configErr("MaxConcurrent", "found %d, want at most %d (it is the capacity the worker advertises)", cfg.MaxConcurrent, proto.MaxCapacity)
	}
	if cfg.HTTPClient != nil && cfg.GatewayTLS != nil {
		return nil, configErr("GatewayTLS", "found both HTTPClient and GatewayTLS, want at most one (an HTTPClient's transport carries its TLS configuration)")
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
		cfg.ReattestInterval = 3 * time.Minute
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = 8
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 2 * time.Minute
	}
	if cfg.BodyReadTimeout == 0 {
		cfg.BodyReadTimeout = time.Minute
	}
	w := &Worker{
		cfg:           cfg,
		client:        cfg.HTTPClient,
		log:           cfg.Logger.With(slog.String("worker_id", cfg.ID)),
		sem:           make(chan struct{}, cfg.MaxConcurrent),
		attestSem:     make(chan struct{}, 1),
		quoteSem:      make(chan struct{}, maxConcurrentQuotes),
		attested:      make(chan struct{}, 1),
		unpinned:      make(chan struct{}, 1),
		watchdogTimer: time.After,
	}
	if w.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = gatewayTLS(cfg.GatewayTLS)
		w.client = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}
	if cfg.InsecurePlainHTTP {
		w.log.Warn("INSECURE: this worker serves plain HTTP without mutual TLS; anyone who reaches its address can use it. For tests and benchmarks only")
		if strings.HasPrefix(cfg.GatewayURL, "http:") {
			w.log.Warn("INSECURE: the gateway URL is http; the provider credential travels in clear")
		}
	} else {
		// The gateway pins the key and ignores the names; they are for
		// people reading the certificate. A host name a certificate cannot
		// carry falls back to the loopback names.
		var hosts []string
		if cfg.AdvertiseURL != "" {
			u, _ := url.Parse(cfg.AdvertiseURL)
			hosts = []string{u.Hostname()}
		}
		cert, err := tlspin.SelfSigned(hosts, cfg.Now(), selfSignedValidity)
		if err != nil && hosts != nil {
			cert, err = tlspin.SelfSigned(nil, cfg.Now(), selfSignedValidity)
		}
		if err != nil {
			return nil, fmt.Errorf("enclave: tls certificate: %w", err)
		}
		w.cert, w.pin = cert, tlspin.PinOf(cert.Leaf).String()
	}
	if cfg.Evidence.Kind() == "sim" {
		w.log.Warn("INSECURE: this worker uses the simulated TEE; its evidence proves nothing about where it runs")
	}
	return w, nil
}

// ConfigError is a Config field New refuses. Its message names what was
// found and what is wanted, and never quotes a secret.
type ConfigError struct {
	// Field is the Config field's name, such as "Credential".
	Field string
	// Msg says what was found and what is wanted.
	Msg string
}

func (e *ConfigError) Error() string { return "enclave: " + e.Field + ": " + e.Msg }

func configErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// gatewayTLS returns the configuration the worker trusts the gateway
// with: a clone of c, or the system roots when c is nil, never below TLS
// 1.2.
func gatewayTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	c = c.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

func checkWorkerID(id string) error {
	if id == "" || len(id) > proto.MaxWorkerIDLen {
		return configErr("ID", "found %d bytes, want 1 to %d", len(id), proto.MaxWorkerIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return configErr("ID", "found byte %q at offset %d, want [A-Za-z0-9._-]", c, i)
		}
	}
	return nil
}

// checkCredential checks the form of a provider credential. Its errors
// never quote the credential: at most its prefix, when that is a known
// one.
func checkCredential(c string) error {
	rest, ok := strings.CutPrefix(c, proto.CredentialProvider)
	if !ok {
		switch {
		case c == "":
			return configErr("Credential", "found none, want the provider's API key (%s...)", proto.CredentialProvider)
		case strings.HasPrefix(c, proto.CredentialTenant):
			return configErr("Credential", "found a tenant key (%s...), want a provider key (%s...)", proto.CredentialTenant, proto.CredentialProvider)
		case strings.HasPrefix(c, proto.CredentialAdmin):
			return configErr("Credential", "found an admin key (%s...), want a provider key (%s...)", proto.CredentialAdmin, proto.CredentialProvider)
		}
		return configErr("Credential", "found %d characters without the %q prefix, want a provider key", len(c), proto.CredentialProvider)
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(rest); err != nil || len(b) != 32 {
		return configErr("Credential", "found %d characters after %q, want 43 of unpadded base64url", len(rest), proto.CredentialProvider)
	}
	return nil
}

func checkProviderKey(k ed25519.PrivateKey) error {
	if len(k) != ed25519.PrivateKeySize {
		return configErr("ProviderKey", "found %d bytes, want an Ed25519 private key of %d", len(k), ed25519.PrivateKeySize)
	}
	if !bytes.Equal(ed25519.NewKeyFromSeed(k.Seed())[ed25519.SeedSize:], k[ed25519.SeedSize:]) {
		return configErr("ProviderKey", "its public half does not derive from its seed, want an intact Ed25519 private key")
	}
	return nil
}

func checkRegion(r string) error {
	if len(r) > proto.MaxRegionLen {
		return configErr("Region", "found %d characters, want at most %d", len(r), proto.MaxRegionLen)
	}
	for i := 0; i < len(r); i++ {
		if c := r[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return configErr("Region", "found %q, want [a-z0-9-]", r)
		}
	}
	return nil
}

func checkModels(models []string) error {
	if len(models) > proto.MaxModels {
		return configErr("Models", "found %d, want at most %d", len(models), proto.MaxModels)
	}
	for i, m := range models {
		if m == "" || len(m) > proto.MaxModelLen {
			return configErr("Models", "model %d: found %d characters, want 1 to %d", i, len(m), proto.MaxModelLen)
		}
		for j := 0; j < len(m); j++ {
			if c := m[j]; c <= ' ' || c > '~' || c == ',' {
				return configErr("Models", "model %d: found byte %q at offset %d, want printable ASCII other than space and comma", i, c, j)
			}
		}
		if slices.Contains(models[:i], m) {
			return configErr("Models", "found %q twice, want each once", m)
		}
	}
	return nil
}

// checkModelDigests checks the models to bind and returns a copy sorted
// by name, as the bundle encoding wants them.
func checkModelDigests(models []proto.ModelDigest) ([]proto.ModelDigest, error) {
	if len(models) > proto.MaxModels {
		return nil, configErr("ModelDigests", "found %d, want at most %d", len(models), proto.MaxModels)
	}
	for i, m := range models {
		if err := proto.CheckModelName(m.Name); err != nil {
			return nil, configErr("ModelDigests", "model %d: %s", i, problem(err))
		}
		for _, o := range models[:i] {
			if o.Name == m.Name {
				return nil, configErr("ModelDigests", "found %q twice, want each model once", m.Name)
			}
		}
	}
	if len(models) == 0 {
		return nil, nil
	}
	out := slices.Clone(models)
	slices.SortFunc(out, func(a, b proto.ModelDigest) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// problem returns what a proto.FieldError says was wrong, or the error's
// text.
func problem(err error) string {
	var fe *proto.FieldError
	if errors.As(err, &fe) {
		return fe.Problem
	}
	return err.Error()
}

// checkInputLimits checks the per-task input bounds and returns a copy.
func checkInputLimits(limits map[string]int) (map[string]int, error) {
	if limits == nil {
		return nil, nil
	}
	out := make(map[string]int, len(limits))
	for task, n := range limits {
		if task != "*" && !validTaskName(task) {
			return nil, configErr("MaxInputBytes", "found task %q, want a task name or \"*\"", task)
		}
		if n < 1 || n > proto.MaxRequestPayload {
			return nil, configErr("MaxInputBytes", "%s: found %d bytes, want 1 to %d", task, n, proto.MaxRequestPayload)
		}
		out[task] = n
	}
	return out, nil
}

// validTaskName reports whether t has the form of a header's task name:
// [a-z][a-z0-9-]*, 1 to 32 bytes.
func validTaskName(t string) bool {
	if t == "" || len(t) > 32 || t[0] < 'a' || t[0] > 'z' {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// inputLimit returns the bound on task's payload, or 0 for none.
func (w *Worker) inputLimit(task string) int {
	if n, ok := w.cfg.MaxInputBytes[task]; ok {
		return n
	}
	return w.cfg.MaxInputBytes["*"]
}

// modelDigestStrings returns "name=sha256:hex" for each model, for logs.
func modelDigestStrings(models []proto.ModelDigest) []string {
	out := make([]string, len(models))
	for i, m := range models {
		out[i] = m.String()
	}
	return out
}

// modelDigest returns the text form of the digest the evidence binds for
// model, or "".
func (w *Worker) modelDigest(model string) string {
	for _, m := range w.cfg.ModelDigests {
		if m.Name == model {
			return proto.FormatModelDigest(m.SHA256)
		}
	}
	return ""
}

// Handler returns the worker's HTTP handler: proto.PathServe,
// proto.PathAttest, proto.PathQuote and proto.PathHealth. Unless
// InsecurePlainHTTP is set, every route refuses (403) a request that did
// not arrive over TLS from a client whose certificate key is a pinned
// gateway key; Run's listener already refuses such clients in the
// handshake, and this checks it again for any other server the handler is
// mounted on.
func (w *Worker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+proto.PathServe, w.serve)
	mux.HandleFunc("POST "+proto.PathAttest, w.attest)
	mux.HandleFunc("POST "+proto.PathQuote, w.quote)
	mux.HandleFunc("GET "+proto.PathHealth, func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain")
		io.WriteString(rw, "ok\n")
	})
	// Every body is read under a deadline from the request's start (see
	// bodyDeadline), lifted by the handlers that read a body to its end.
	bounded := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			// net/http reads what a handler leaves of a body before it
			// answers; a peer dribbling it would otherwise hold the
			// connection, and a capacity slot, for as long as it likes.
			// Not every ResponseWriter supports deadlines; the body is
			// then bounded in size only.
			http.NewResponseController(rw).SetReadDeadline(w.cfg.Now().Add(w.cfg.BodyReadTimeout))
		}
		mux.ServeHTTP(rw, r)
	})
	if w.cfg.InsecurePlainHTTP {
		return bounded
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		pin, err := tlspin.PeerPin(r.TLS)
		if err != nil || !w.gatewayPinned(pin) {
			writeError(rw, http.StatusForbidden, "not_pinned", "this worker serves only its gateway, over mutual TLS")
			return
		}
		bounded.ServeHTTP(rw, r)
	})
}

// serverTLS is the worker's listener configuration: TLS 1.3 with its
// self-signed certificate, accepting only clients whose key is a pinned
// gateway key. A client presenting any other key tells the enrollment
// loop, which checks whether the gateway changed its certificate.
func (w *Worker) serverTLS() *tls.Config {
	c := tlspin.ServerConfig(w.cert, w.gatewayPinList)
	verify := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		err := verify(cs)
		if errors.Is(err, tlspin.ErrNotPinned) {
			signal(w.unpinned)
		}
		return err
	}
	return c
}

// Run serves on ln (mutual TLS unless InsecurePlainHTTP), enrolls with the
// gateway (retrying until it succeeds), enrolls again when the gateway
// stops challenging it or changes its certificate, and returns when ctx
// is cancelled, after in-flight requests finish or 10 seconds pass.
func (w *Worker) Run(ctx context.Context, ln net.Listener) error {
	advertise := w.cfg.AdvertiseURL
	if advertise == "" {
		scheme := "https://"
		if w.cfg.InsecurePlainHTTP {
			scheme = "http://"
		}
		advertise = scheme + ln.Addr().String()
	}
	srv := &http.Server{
		Handler:           w.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(w.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	serveErr := make(chan error, 1)
	if w.cfg.InsecurePlainHTTP {
		go func() { serveErr <- srv.Serve(ln) }()
	} else {
		srv.TLSConfig = w.serverTLS()
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	}
	w.log.Info("worker serving",
		slog.String("advertise_url", advertise),
		slog.String("tls_pin", w.pin),
		slog.String("provider_key", providerKeyFingerprint(w.cfg.ProviderKey)),
		slog.Duration("reattest_interval", w.cfg.ReattestInterval))

	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		w.enrollLoop(loopCtx, advertise)
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
	stopLoop()
	<-loopDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Bundle returns the current evidence bundle, or nil before the first
// enrollment.
func (w *Worker) Bundle() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.current == nil {
		return nil
	}
	return bytes.Clone(w.current.bundle)
}

// signal sends on a one-slot channel without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
