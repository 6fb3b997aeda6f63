// Package httpapi is the gateway's HTTP adapter, and the only package of
// sealgate that imports echo. It decodes requests strictly, bounds every
// body, calls a Service with plain types and the request's context, and
// maps every error to an HTTP status in one place (handleError).
//
// Routes (see proto/api.go), with the role each needs:
//
//	GET    /v1/candidates?task=T&max=N  tenant   -> proto.CandidateList
//	POST   /v1/requests                 tenant   sealed request -> sealed response stream
//	POST   /v1/evidence                 tenant   proto.EvidenceRequest -> proto.Evidence
//	GET    /v1/status                   tenant   -> proto.Status (its pools)
//	POST   /v1/workers/challenge        provider -> proto.Challenge (body empty or {})
//	POST   /v1/workers/register         provider proto.Registration -> proto.Admission
//	PUT    /v1/provider/key             provider proto.ProviderKey -> proto.ProviderKey
//	POST   /v1/admin/providers          admin    proto.NewAccount -> proto.Account
//	POST   /v1/admin/tenants            admin    proto.NewAccount -> proto.Account
//	POST   /v1/admin/rotate             admin    proto.RotateKey -> proto.Account
//	POST   /v1/admin/pools              admin    proto.PoolSpec -> proto.PoolStatus
//	DELETE /v1/admin/pools/:id          admin    -> 204
//	GET    /v1/admin/status             admin    -> proto.Status
//	GET    /healthz                     none     -> {"status":"ok"} while the process serves
//	GET    /readyz                      none     -> {"status":"ready"}, or 503 when the store is unreachable
//	GET    /metrics                     none     Prometheus exposition
//	GET    /v1/log/...                  none     the transparency log (LogService)
//
// Credentials travel as "Authorization: Bearer <credential>"; the header
// is read here and handed to the service, which decides (401 for none or
// an unknown one, 403 for the wrong role). /metrics carries no tenant
// data; operators who consider load figures sensitive keep it off the
// public listener.
//
// JSON bodies must be Content-Type application/json (the challenge body may
// be empty), hold at most proto.MaxJSONBody bytes, one object, no unknown
// fields and nothing after it. Sealed requests must be Content-Type
// proto.MediaTypeRequest and hold at most Config.MaxRequestBody bytes.
// Every body must arrive within Config.BodyReadTimeout of the request's
// start, whether or not its handler reads it (net/http reads what a
// handler leaves, and a client dribbling it must not hold the connection):
// a body the handler reads too late is 408 request_timeout.
// Errors are proto.ErrorResponse bodies with a stable code and a short
// message; details go to the log only.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/proto"
)

// Service is what the HTTP API exposes. *gateway.Gateway implements it.
// Every call but Ready takes the caller's credential as sent, "" when none
// was.
type Service interface {
	Challenge(ctx context.Context, cred string) (proto.Challenge, error)
	Register(ctx context.Context, cred string, reg proto.Registration) (proto.Admission, error)
	SetProviderKey(ctx context.Context, cred string, k proto.ProviderKey) (proto.ProviderKey, error)
	Candidates(ctx context.Context, cred, task string, max int) (proto.CandidateList, error)
	Relay(ctx context.Context, cred string, body io.Reader, sink api.Sink) error
	Evidence(ctx context.Context, cred string, req proto.EvidenceRequest) (proto.Evidence, error)
	Status(ctx context.Context, cred string) (proto.Status, error)
	CreateAccount(ctx context.Context, cred, kind string, a proto.NewAccount) (proto.Account, error)
	RotateCredential(ctx context.Context, cred string, r proto.RotateKey) (proto.Account, error)
	CreatePool(ctx context.Context, cred string, spec proto.PoolSpec) (proto.PoolStatus, error)
	DeletePool(ctx context.Context, cred, id string) error
	// Ready reports whether the service can serve: its store answers.
	Ready(ctx context.Context) error
	// Authenticate returns the principal of a credential: api.Unauthorized
	// for none or an unknown one. The adapter calls it before reading a
	// body, so that an unauthenticated caller costs no more than a lookup.
	Authenticate(ctx context.Context, cred string) (api.Principal, error)
}

// DefaultRetryAfter is the Retry-After of an api.Overloaded error that
// does not say.
const DefaultRetryAfter = time.Second

// Config configures the handler.
type Config struct {
	// Service serves the requests. Required.
	Service Service
	// Logger receives one line per failed request, and one debug line per
	// request. Nil means discard.
	Logger *slog.Logger
	// Metrics serves /metrics. Nil means the route answers 404.
	Metrics http.Handler
	// MaxRequestBody bounds a sealed request body. Required, positive.
	MaxRequestBody int64
	// BodyReadTimeout bounds reading a request body, from the start of the
	// handler to the end of the body. Zero means no bound.
	BodyReadTimeout time.Duration
	// Log serves the transparency log's routes. Nil means they answer
	// 404.
	Log LogService
}

// handler holds the resolved Config.
type handler struct {
	svc         Service
	log         *slog.Logger
	maxBody     int64
	readTimeout time.Duration
}

// New returns the HTTP handler of the gateway's API.
func New(cfg Config) (http.Handler, error) {
	if cfg.Service == nil {
		return nil, errors.New("httpapi: config: Service: found nil, want a service")
	}
	if cfg.MaxRequestBody <= 0 {
		return nil, fmt.Errorf("httpapi: config: MaxRequestBody: found %d, want a positive limit", cfg.MaxRequestBody)
	}
	if cfg.BodyReadTimeout < 0 {
		return nil, fmt.Errorf("httpapi: config: BodyReadTimeout: found %v, want zero or positive", cfg.BodyReadTimeout)
	}
	h := &handler{svc: cfg.Service, log: cfg.Logger, maxBody: cfg.MaxRequestBody, readTimeout: cfg.BodyReadTimeout}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.HTTPErrorHandler = h.handleError
	e.Use(h.accessLog, h.bodyDeadline)
	tenant, provider, admin := h.require(api.RoleTenant), h.require(api.RoleProvider), h.require(api.RoleAdmin)
	e.GET(proto.PathCandidates, h.candidates, tenant)
	e.POST(proto.PathRequests, h.relay, tenant)
	e.POST(proto.PathEvidence, h.evidence, tenant)
	e.GET(proto.PathStatus, h.status, tenant)
	e.POST(proto.PathChallenge, h.challenge, provider)
	e.POST(proto.PathRegister, h.register, provider)
	e.PUT(proto.PathProviderKey, h.providerKey, provider)
	e.POST(proto.PathAdminProviders, h.createAccount("provider"), admin)
	e.POST(proto.PathAdminTenants, h.createAccount("tenant"), admin)
	e.POST(proto.PathAdminRotate, h.rotate, admin)
	e.POST(proto.PathAdminPools, h.createPool, admin)
	e.DELETE(proto.PathAdminPools+"/:id", h.deletePool, admin)
	e.GET(proto.PathAdminStatus, h.status, admin)
	e.GET(proto.PathHealth, h.health)
	e.GET(proto.PathReady, h.ready)
	if cfg.Metrics != nil {
		e.GET(proto.PathMetrics, echo.WrapHandler(cfg.Metrics))
	}
	if cfg.Log != nil {
		h.logRoutes(e, cfg.Log)
	}
	return e, nil
}

// require checks the request's credential and its role before the
// handler reads anything: 401 for none or an unknown one, 403 for another
// role's. The service checks again; this is so that nobody without the
// right credential gets a body parsed.
func (h *handler) require(role api.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, err := h.svc.Authenticate(c.Request().Context(), credential(c))
			if err != nil {
				return err
			}
			if p.Role != role {
				return api.New(api.Forbidden, "this endpoint needs a "+string(role)+" credential")
			}
			return next(c)
		}
	}
}

// accessLog writes one debug line per request: method, route, status,
// duration and bytes written. It logs no header, query or body.
func (h *handler) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			// The error handler writes the response and logs the error.
			c.Error(err)
		}
		r := c.Request()
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
			slog.String("method", r.Method), slog.String("route", c.Path()),
			slog.Int("status", c.Response().Status), slog.Int64("bytes_out", c.Response().Size),
			slog.Duration("duration", time.Since(start)))
		return nil
	}
}

// bodyDeadline puts every request that has a body under the body read
// deadline from its start, whether or not its handler reads the body:
// when a handler answers without reading it all (an error, a route that
// takes no body), net/http reads what is left before it writes the answer
// or reuses the connection, and a client dribbling its body would
// otherwise hold the connection and its goroutine for as long as it
// likes. body lifts the deadline once a body has been read to its end.
func (h *handler) bodyDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if r := c.Request(); h.readTimeout > 0 && r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			// Not every ResponseWriter supports deadlines (httptest's
			// recorder does not); the body is then bounded in size only.
			http.NewResponseController(c.Response().Writer).SetReadDeadline(time.Now().Add(h.readTimeout))
		}
		return next(c)
	}
}

// statusOf is the HTTP status of every error code.
var statusOf = map[api.Code]int{
	api.BadRequest:           http.StatusBadRequest,
	api.Unauthorized:         http.StatusUnauthorized,
	api.Forbidden:            http.StatusForbidden,
	api.RateLimited:          http.StatusTooManyRequests,
	api.Exists:               http.StatusConflict,
	api.EndorsementRefused:   http.StatusForbidden,
	api.TooLarge:             http.StatusRequestEntityTooLarge,
	api.RequestTimeout:       http.StatusRequestTimeout,
	api.UnsupportedMediaType: http.StatusUnsupportedMediaType,
	api.BadChallenge:         http.StatusForbidden,
	api.AttestationRefused:   http.StatusForbidden,
	api.KeyConflict:          http.StatusConflict,
	api.UnknownCandidates:    http.StatusUnprocessableEntity,
	api.UpstreamFailed:       http.StatusBadGateway,
	api.Overloaded:           http.StatusServiceUnavailable,
	api.Unavailable:          http.StatusServiceUnavailable,
	api.NotFound:             http.StatusNotFound,
	api.MethodNotAllowed:     http.StatusMethodNotAllowed,
	api.Internal:             http.StatusInternalServerError,
}

// classify turns any error into the client's view of it. Only api.Error
// messages reach the client; anything else is an internal error.
func classify(err error) (status int, body proto.ErrorBody, retryAfter time.Duration) {
	var ae *api.Error
	var he *echo.HTTPError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		status, ok := statusOf[ae.Code]
		if !ok {
			return http.StatusInternalServerError, proto.ErrorBody{Code: string(api.Internal), Message: "internal error"}, 0
		}
		retryAfter = ae.RetryAfter
		if (ae.Code == api.Overloaded || ae.Code == api.RateLimited) && retryAfter <= 0 {
			retryAfter = DefaultRetryAfter
		}
		return status, proto.ErrorBody{Code: string(ae.Code), Message: ae.Message}, retryAfter
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, proto.ErrorBody{Code: string(api.TooLarge), Message: "request body too large"}, 0
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return he.Code, proto.ErrorBody{Code: string(api.NotFound), Message: "no such route"}, 0
		case http.StatusMethodNotAllowed:
			return he.Code, proto.ErrorBody{Code: string(api.MethodNotAllowed), Message: "method not allowed on this route"}, 0
		}
	}
	return http.StatusInternalServerError, proto.ErrorBody{Code: string(api.Internal), Message: "internal error"}, 0
}

// handleError is the one place errors become HTTP responses. The client
// gets the code and the safe message; the log gets the error itself.
func (h *handler) handleError(err error, c echo.Context) {
	r := c.Request()
	status, body, retryAfter := classify(err)
	level := slog.LevelInfo
	switch {
	case status == http.StatusInternalServerError:
		level = slog.LevelError
	case status >= 500:
		level = slog.LevelWarn
	}
	committed := c.Response().Committed
	h.log.LogAttrs(r.Context(), level, "request failed",
		slog.String("method", r.Method), slog.String("route", c.Path()),
		slog.Int("status", status), slog.String("code", body.Code),
		slog.Bool("response_started", committed), slog.Any("err", err))
	if committed {
		return
	}
	if retryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	if status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="sealgate"`)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	if err := c.JSON(status, proto.ErrorResponse{Error: body}); err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "writing error response", slog.Any("err", err))
	}
}

func (h *handler) health(c echo.Context) error {
	return c.JSON(http.StatusOK, struct {
		Status string `json:"status"`
	}{"ok"})
}

func (h *handler) challenge(c echo.Context) error {
	// The body may be empty; if it is not, it must be the empty object.
	if r := c.Request(); r.ContentLength != 0 {
		if err := requireMediaType(r, "application/json"); err != nil {
			return err
		}
		if err := decodeJSON(h.body(c, proto.MaxJSONBody), &struct{}{}); err != nil {
			return err
		}
	}
	ch, err := h.svc.Challenge(c.Request().Context(), credential(c))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, ch)
}

func (h *handler) register(c echo.Context) error {
	var reg proto.Registration
	if err := h.readJSON(c, proto.MaxJSONBody, &reg); err != nil {
		return err
	}
	adm, err := h.svc.Register(c.Request().Context(), credential(c), reg)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, adm)
}

// maxSmallJSON bounds every JSON body but a registration's.
const maxSmallJSON = 64 << 10

// readJSON reads a JSON body of at most max bytes into v.
func (h *handler) readJSON(c echo.Context, max int64, v any) error {
	if err := requireMediaType(c.Request(), "application/json"); err != nil {
		return err
	}
	if c.Request().ContentLength > max {
		return api.New(api.TooLarge, "request body too large")
	}
	return decodeJSON(h.body(c, max), v)
}

func (h *handler) providerKey(c echo.Context) error {
	var k proto.ProviderKey
	if err := h.readJSON(c, maxSmallJSON, &k); err != nil {
		return err
	}
	out, err := h.svc.SetProviderKey(c.Request().Context(), credential(c), k)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (h *handler) evidence(c echo.Context) error {
	var req proto.EvidenceRequest
	if err := h.readJSON(c, maxSmallJSON, &req); err != nil {
		return err
	}
	ev, err := h.svc.Evidence(c.Request().Context(), credential(c), req)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, ev)
}

func (h *handler) status(c echo.Context) error {
	st, err := h.svc.Status(c.Request().Context(), credential(c))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, st)
}

func (h *handler) createAccount(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		var a proto.NewAccount
		if err := h.readJSON(c, maxSmallJSON, &a); err != nil {
			return err
		}
		acct, err := h.svc.CreateAccount(c.Request().Context(), credential(c), kind, a)
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusCreated, acct)
	}
}

func (h *handler) rotate(c echo.Context) error {
	var r proto.RotateKey
	if err := h.readJSON(c, maxSmallJSON, &r); err != nil {
		return err
	}
	acct, err := h.svc.RotateCredential(c.Request().Context(), credential(c), r)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, acct)
}

func (h *handler) createPool(c echo.Context) error {
	var spec proto.PoolSpec
	if err := h.readJSON(c, maxSmallJSON, &spec); err != nil {
		return err
	}
	ps, err := h.svc.CreatePool(c.Request().Context(), credential(c), spec)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, ps)
}

func (h *handler) deletePool(c echo.Context) error {
	if err := h.svc.DeletePool(c.Request().Context(), credential(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *handler) ready(c echo.Context) error {
	if err := h.svc.Ready(c.Request().Context()); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct {
		Status string `json:"status"`
	}{"ready"})
}

// maxCredentialHeader bounds the Authorization header read.
const maxCredentialHeader = 256

// credential returns the bearer credential of the request, or "" when
// there is none or it is malformed (the service then answers 401).
func credential(c echo.Context) string {
	v := c.Request().Header.Values(proto.HeaderAuthorization)
	if len(v) != 1 || len(v[0]) > maxCredentialHeader {
		return ""
	}
	scheme, cred, ok := strings.Cut(v[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(cred)
}

func (h *handler) candidates(c echo.Context) error {
	q := c.Request().URL.Query()
	if len(q["task"]) != 1 {
		return api.New(api.BadRequest, "task: want exactly one task parameter")
	}
	max := 0 // the service's default
	switch vs := q["max"]; len(vs) {
	case 0:
	case 1:
		n, err := strconv.Atoi(vs[0])
		if err != nil || n < 1 || n > proto.MaxListed {
			return api.New(api.BadRequest, fmt.Sprintf("max: want an integer from 1 to %d", proto.MaxListed))
		}
		max = n
	default:
		return api.New(api.BadRequest, "max: want at most one max parameter")
	}
	list, err := h.svc.Candidates(c.Request().Context(), credential(c), q.Get("task"), max)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (h *handler) relay(c echo.Context) error {
	r := c.Request()
	if err := requireMediaType(r, proto.MediaTypeRequest); err != nil {
		return err
	}
	if r.ContentLength > h.maxBody {
		return api.New(api.TooLarge, "request body too large")
	}
	sink := &sink{res: c.Response(), rc: http.NewResponseController(c.Response().Writer)}
	return h.svc.Relay(r.Context(), credential(c), h.body(c, h.maxBody), sink)
}

// body returns the request body limited to max bytes and, when
// BodyReadTimeout is set, under a read deadline from the start of the
// handler that is lifted as soon as the body has been read to its end, so
// that a long response stream is not cut off. A body that is not read to
// its end keeps the deadline, which then also bounds what net/http reads
// of it after the handler.
func (h *handler) body(c echo.Context, max int64) io.Reader {
	limited := http.MaxBytesReader(c.Response(), c.Request().Body, max)
	if h.readTimeout <= 0 {
		return limited
	}
	rc := http.NewResponseController(c.Response().Writer)
	if err := rc.SetReadDeadline(time.Now().Add(h.readTimeout)); err != nil {
		// Not every ResponseWriter supports deadlines (httptest's
		// recorder does not); the body is still bounded in size.
		return limited
	}
	return &deadlineReader{r: limited, lift: func() { rc.SetReadDeadline(time.Time{}) }}
}

// deadlineReader lifts the connection's read deadline when its reader
// reaches io.EOF.
type deadlineReader struct {
	r      io.Reader
	lift   func()
	lifted bool
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err == io.EOF && !d.lifted {
		d.lifted = true
		d.lift()
	}
	return n, err
}

// requireMediaType checks the request's Content-Type, parameters aside.
func requireMediaType(r *http.Request, want string) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, want) {
		return api.New(api.UnsupportedMediaType, "Content-Type: want "+want)
	}
	return nil
}

// decodeJSON decodes exactly one JSON object from body into v: no unknown
// fields, nothing after it.
func decodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return api.New(api.BadRequest, "body: data after the JSON object")
		}
		return jsonError(err)
	}
	return nil
}

// jsonError classifies a decoding failure. The cause goes to the log; the
// client learns only what kind of problem it was.
func jsonError(err error) error {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return api.Wrap(api.TooLarge, "request body too large", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return api.Wrap(api.RequestTimeout, "body: not received within the read timeout", err)
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return api.Wrap(api.BadRequest, "body: not a JSON object", err)
	case errors.As(err, &typ):
		return api.Wrap(api.BadRequest, "body: field "+typ.Field+" has the wrong type", err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no type for this error. The log gets the
		// field's name; the client, which sent it, does not need it.
		return api.Wrap(api.BadRequest, "body: unknown field", err)
	}
	return api.Wrap(api.BadRequest, "body: invalid JSON", err)
}

// sink streams a relayed response to the client.
type sink struct {
	res *echo.Response
	rc  *http.ResponseController
}

var _ api.Sink = (*sink)(nil)

func (s *sink) Start(workerID string) error {
	h := s.res.Header()
	h.Set("Content-Type", proto.MediaTypeResponse)
	h.Set(proto.HeaderWorker, workerID)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	s.res.WriteHeader(http.StatusOK)
	return nil
}

func (s *sink) Write(p []byte) (int, error) { return s.res.Write(p) }

func (s *sink) Flush() error { return s.rc.Flush() }
