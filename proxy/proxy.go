// Package proxy is sealgate's OpenAI-compatible local HTTP server: an
// application already written against OpenAI's API switches to private
// inference by changing its base URL to the proxy's. The proxy is a
// client in the sense of DESIGN.md: it runs on the user's machine, holds
// the tenant credential, and does everything through the SDK (package
// client) — it lists candidates, verifies their evidence and their
// providers' endorsements against its own policy, seals each request to
// verified workers, and opens the sealed reply. The gateway it talks to
// sees ciphertext only.
//
// Endpoints:
//
//	POST /v1/chat/completions      OpenAI chat completions, JSON or, with
//	                               "stream": true, server-sent events
//	GET  /v1/models                the models of verified chat workers
//	GET  /v1/models/{model}        one of them
//	POST /v1/sealgate/summarize    {"text", "sentences", "ratio"}
//	POST /v1/sealgate/translate    {"text", "from", "to"}
//
// Every answer names the worker that served it, as the sealed response
// proves, in X-Sealgate-Worker, X-Sealgate-Tee, X-Sealgate-Evidence-Sha256
// and X-Sealgate-Request-Id headers (and, in JSON answers, a "sealgate"
// object that OpenAI clients ignore).
//
// # Decisions
//
//   - Who may call. The proxy serves plaintext: prompts and completions
//     cross the local socket in clear. Serve refuses a listener that is not
//     on a loopback address unless Config.InsecureListenAny says so. On
//     loopback it also refuses a Host header other than a loopback address
//     or localhost (DNS rebinding), any request with an Origin header (a
//     web page in the user's browser), and a POST whose Content-Type is
//     not application/json (which a cross-site form cannot send without a
//     CORS preflight the proxy never grants). Config.APIKey, when set, is
//     a bearer key every caller must present; without it the Authorization
//     header OpenAI clients always send is ignored, and the tenant
//     credential never leaves the proxy except towards the gateway.
//   - Strictness. Request bodies are bounded (Config.MaxBodyBytes),
//     decoded as one JSON object with nothing after it, and every field is
//     either honoured, accepted at its default value only (n = 1,
//     top_p = 1, presence and frequency penalties 0, logprobs false, no
//     stop sequences), or refused with a 400 that names it: the proxy
//     never silently ignores a parameter that would change the answer.
//     "user" is accepted and not forwarded. Message content is a string
//     or a list of text parts; the "developer" role is sent as system.
//   - Errors use OpenAI's shape, {"error": {"message", "type", "param",
//     "code"}}, with one mapping from the SDK's errors to statuses
//     (errorFor): 401 when the gateway refuses the proxy's credential, 429
//     and 503 with the gateway's Retry-After, 404 model_not_found when no
//     verified worker is listed with the model, 503 no_verified_worker,
//     502 when the reply was truncated or failed its integrity checks. A
//     streamed reply that fails after its first event ends with an error
//     event ({"error": ...}) and without "data: [DONE]", so an OpenAI
//     client reports an error rather than a short answer.
//   - finish_reason is "length" when max_tokens was set and the worker
//     counted at least that many output tokens, "stop" otherwise. Usage
//     is the worker's end summary: its input and output units, tokens for
//     model backends.
//   - Logging. One line per request with its route, status, sizes,
//     duration, worker and request id; never a prompt, a completion, a
//     header value or the credential.
package proxy

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/sealgate/sealgate/client"
)

// Config configures a Proxy.
type Config struct {
	// Client verifies workers and seals every request. Required.
	Client *client.Client
	// APIKey, when not empty, is the key every caller must send as
	// "Authorization: Bearer <APIKey>" (an OpenAI client's API key); it
	// is compared in constant time and never logged. Empty serves every
	// caller that can connect and ignores their Authorization header.
	APIKey string
	// InsecureListenAny lets Serve accept a listener on a non-loopback
	// address and turns off the Host check. INSECURE: the proxy then
	// serves plaintext prompts and completions, on the tenant's
	// credential, to whoever reaches it. False means loopback only.
	InsecureListenAny bool
	// MaxBodyBytes bounds a request body. Zero means 8 MiB.
	MaxBodyBytes int64
	// RequestTimeout bounds one request, from its arrival to the last
	// byte of its answer. Zero means 5 minutes.
	RequestTimeout time.Duration
	// Logger receives one line per request. Nil discards.
	Logger *slog.Logger
	// Now stamps "created" fields. Nil means time.Now.
	Now func() time.Time
}

// LogValue describes the configuration without the API key.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.Bool("api_key_set", c.APIKey != ""),
		slog.Int64("max_body_bytes", c.MaxBodyBytes),
		slog.Duration("request_timeout", c.RequestTimeout),
	}
	if c.Client != nil {
		attrs = append(attrs, slog.Any("client", c.Client))
	}
	if c.InsecureListenAny {
		attrs = append(attrs, slog.Bool("INSECURE_listen_any", true))
	}
	return slog.GroupValue(attrs...)
}

var (
	_ slog.LogValuer = Config{}
	_ http.Handler   = (*Proxy)(nil)
)

// Defaults of Config's zero values, and limits of the server Serve runs.
const (
	DefaultMaxBodyBytes   = 8 << 20
	DefaultRequestTimeout = 5 * time.Minute
	maxHeaderBytes        = 64 << 10
	readHeaderTimeout     = 10 * time.Second
	readBodyTimeout       = time.Minute
	idleTimeout           = 2 * time.Minute
	shutdownTimeout       = 10 * time.Second
)

// Proxy is the OpenAI-compatible handler. It is safe for concurrent use.
type Proxy struct {
	cfg Config // never modified after New
	log *slog.Logger
}

// New validates cfg and returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	if cfg.Client == nil {
		return nil, errors.New("proxy: client: found nil, want a *client.Client")
	}
	if cfg.MaxBodyBytes < 0 || cfg.RequestTimeout < 0 {
		return nil, fmt.Errorf("proxy: max body bytes %d, request timeout %v: want zero (the default) or more", cfg.MaxBodyBytes, cfg.RequestTimeout)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	for i := 0; i < len(cfg.APIKey); i++ {
		if c := cfg.APIKey[i]; c <= ' ' || c > '~' {
			return nil, fmt.Errorf("proxy: api key: found a byte outside printable ASCII at offset %d, want a bearer token", i)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Proxy{cfg: cfg, log: cfg.Logger}, nil
}

// Serve serves on ln until ctx is done, then shuts down, giving requests
// in flight shutdownTimeout to finish. It refuses a listener whose
// address is not a loopback one unless Config.InsecureListenAny is set.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	if err := CheckListenAddr(ln.Addr().String(), p.cfg.InsecureListenAny); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(slogWriter{p.log}, "", 0),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
	}
	<-errc // http.ErrServerClosed
	return err
}

// CheckListenAddr refuses an address (host:port) that is not a loopback
// one, unless allowAny. An empty host or an unspecified address
// (0.0.0.0, ::) listens on every interface and is refused too.
func CheckListenAddr(addr string, allowAny bool) error {
	if allowAny {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("proxy: listen address: found %q, want host:port", addr)
	}
	if !loopbackHost(host) {
		return fmt.Errorf("proxy: listen address: found %q, want a loopback address such as 127.0.0.1:8080: the proxy serves plaintext prompts on the tenant's credential to whoever connects", addr)
	}
	return nil
}

// loopbackHost reports whether host is localhost or a loopback IP.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// slogWriter turns the http.Server's error log into slog lines.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.log.Warn("http server", slog.String("error", strings.TrimSpace(string(b))))
	return len(b), nil
}

// ServeHTTP routes a request after the caller checks.
func (p *Proxy) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := p.cfg.Now()
	rec := &record{route: "unknown"}
	defer func() { p.logRequest(r, rec, start) }()
	w := &statusWriter{ResponseWriter: rw}
	rec.w = w

	if e := p.admit(r); e != nil {
		p.writeError(w, rec, e)
		return
	}
	type route struct {
		method string
		name   string
		serve  func(http.ResponseWriter, *http.Request, *record) *apiError
	}
	var rt route
	switch path := r.URL.Path; {
	case path == "/v1/chat/completions":
		rt = route{http.MethodPost, "chat.completions", p.chat}
	case path == "/v1/models":
		rt = route{http.MethodGet, "models", p.models}
	case strings.HasPrefix(path, "/v1/models/"):
		rt = route{http.MethodGet, "models.get", p.model}
	case path == "/v1/sealgate/summarize":
		rt = route{http.MethodPost, "sealgate.summarize", p.summarize}
	case path == "/v1/sealgate/translate":
		rt = route{http.MethodPost, "sealgate.translate", p.translate}
	default:
		p.writeError(w, rec, &apiError{status: http.StatusNotFound, typ: typeInvalidRequest, code: "not_found", msg: "unknown endpoint " + clip(r.URL.Path, 64)})
		return
	}
	rec.route = rt.name
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		p.writeError(w, rec, &apiError{status: http.StatusMethodNotAllowed, typ: typeInvalidRequest, code: "method_not_allowed", msg: fmt.Sprintf("%s takes %s, not %s", r.URL.Path, rt.method, clip(r.Method, 16))})
		return
	}
	if rt.method == http.MethodPost {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			p.writeError(w, rec, &apiError{status: http.StatusUnsupportedMediaType, typ: typeInvalidRequest, code: "unsupported_media_type", msg: "send the request body as Content-Type: application/json"})
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.RequestTimeout)
	defer cancel()
	if e := rt.serve(w, r.WithContext(ctx), rec); e != nil {
		p.writeError(w, rec, e)
	}
}

// admit checks who is calling: the Host (on loopback), the Origin, and
// the API key when one is set.
func (p *Proxy) admit(r *http.Request) *apiError {
	if !p.cfg.InsecureListenAny {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !loopbackHost(strings.Trim(host, "[]")) {
			return &apiError{status: http.StatusForbidden, typ: typePermission, code: "host_not_allowed", msg: "the proxy answers only requests addressed to a loopback host (127.0.0.1, ::1 or localhost)"}
		}
	}
	if _, ok := r.Header["Origin"]; ok {
		return &apiError{status: http.StatusForbidden, typ: typePermission, code: "origin_not_allowed", msg: "the proxy does not serve web pages (a request with an Origin header)"}
	}
	if p.cfg.APIKey != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(p.cfg.APIKey)) != 1 {
			return &apiError{status: http.StatusUnauthorized, typ: typeAuthentication, code: "invalid_api_key", msg: "missing or wrong API key for this proxy"}
		}
	}
	return nil
}

// record is what the request's log line says.
type record struct {
	w         *statusWriter
	route     string
	stream    bool
	workerID  string
	requestID string
	code      string // the error code answered, if any
	err       error  // the error behind it, for the log only
}

// statusWriter remembers the status and counts the bytes written.
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (p *Proxy) logRequest(r *http.Request, rec *record, start time.Time) {
	attrs := []slog.Attr{
		slog.String("method", clip(r.Method, 16)),
		slog.String("route", rec.route),
		slog.Int("status", rec.w.status),
		slog.Int64("request_bytes", r.ContentLength),
		slog.Int64("response_bytes", rec.w.n),
		slog.Duration("duration", p.cfg.Now().Sub(start)),
	}
	if rec.stream {
		attrs = append(attrs, slog.Bool("stream", true))
	}
	if rec.workerID != "" {
		attrs = append(attrs, slog.String("worker_id", rec.workerID), slog.String("request_id", rec.requestID))
	}
	level := slog.LevelInfo
	if rec.code != "" {
		attrs = append(attrs, slog.String("code", rec.code))
		level = slog.LevelWarn
	}
	if rec.err != nil {
		attrs = append(attrs, slog.String("error", rec.err.Error()))
	}
	p.log.LogAttrs(r.Context(), level, "request", attrs...)
}
