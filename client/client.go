package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
	"github.com/sealgate/sealgate/translog"
)

// Config configures a Client. Only GatewayURL is required; a gateway that
// checks credentials (every production one) also needs Credential.
type Config struct {
	// GatewayURL is the gateway's base URL. It must be https, unless its
	// host is a loopback address (localhost, 127.0.0.0/8, ::1) and
	// InsecurePlainHTTP is set.
	GatewayURL string
	// Credential is the tenant's API key (proto.CredentialTenant followed
	// by 43 base64url characters), sent on every call to the gateway as
	// "Authorization: Bearer <credential>". Empty sends none; a gateway
	// that requires one then answers 401 (ErrUnauthorized). A provider or
	// admin credential is refused. The credential is never logged nor put
	// in an error message: Config's LogValue and String leave it out.
	Credential string
	// GatewayCA, when not empty, holds PEM CERTIFICATE blocks, and the
	// gateway's TLS certificate must chain to one of them: exactly these
	// are trusted, the system roots are not. For a development gateway's
	// self-signed certificate, give that certificate itself (the gateway
	// writes it next to its key). Empty means the system roots. It cannot
	// be combined with HTTPClient, which brings its own TLS configuration.
	GatewayCA []byte
	// InsecurePlainHTTP allows an http:// GatewayURL whose host is a
	// loopback address. INSECURE: the credential and every request's
	// metadata travel unencrypted; for local development and tests only.
	// Plain http to any other host is refused whatever this says. False
	// means https only.
	InsecurePlainHTTP bool
	// Policy is the attestation policy every candidate must pass. Nil means
	// policy.Default(), which accepts hardware TEEs only.
	Policy *policy.Policy
	// K is how many verified candidates a request is sealed to, one per
	// distinct provider key first. Zero means 3; at most
	// proto.MaxCandidates.
	K int
	// TrustedProviders, when not empty, are the only provider endorsement
	// keys accepted: a candidate endorsed by any other key is refused.
	// Empty accepts any provider key the gateway lists, as long as the
	// endorsement verifies under it; provider diversity then counts keys
	// the gateway chose. Each key must be ed25519.PublicKeySize bytes.
	TrustedProviders []ed25519.PublicKey
	// MinProviders is how many distinct provider keys every request must
	// be sealed to. When the verified candidates (after strict mode's
	// checks) come from fewer, nothing is sent and the request fails
	// with a *DiversityError (ErrDiversity), so a gateway that lists one
	// provider's workers only, to steer every request to machines it
	// chose, is noticed rather than obeyed. Keys are counted among the
	// workers offering the suite the request would use. Distinct keys are
	// independent providers only if the gateway did not make them: set
	// TrustedProviders too. Zero means 1: any one verified candidate will
	// do, though the choice still prefers distinct providers (see K). At
	// most K.
	MinProviders int
	// Strict, when true, makes every request ask each chosen candidate,
	// through the gateway (proto.PathEvidence), for evidence bound to a
	// fresh nonce of the client's own, and seal only to candidates whose
	// fresh evidence passes Policy and binds the same keys as their
	// listed evidence; a candidate that fails is refused and the next is
	// tried. This proves freshness without trusting any time anchor, at
	// the cost of one more round trip per request (the candidates are
	// asked concurrently) that the gateway rate-limits per tenant. It adds
	// to the listing's checks: the listed evidence must still pass them.
	// False trusts the listed evidence's freshness as verified.
	Strict bool
	// HTTPClient sends requests. Nil means a client whose dial, TLS
	// handshake and response-header waits are bounded and that trusts
	// GatewayCA or the system roots; streamed bodies are bounded by the
	// caller's context. The client is copied, not modified, to refuse
	// redirects.
	HTTPClient *http.Client
	// Now returns the current time, for evidence freshness and request
	// timestamps. Nil means time.Now.
	Now func() time.Time
	// AttestationOptions are passed to attestation.Verify (Now is filled
	// from the Now field). Tests use it to pin other roots. Its Nonce must
	// be nil: strict mode sets it per request.
	AttestationOptions attestation.Options
	// KeyLog, when non-nil, receives every request's secrets. INSECURE:
	// for tests only.
	KeyLog io.Writer
	// LogKey is the public key of the gateway's transparency log, in
	// note's text form ("origin+hash+base64", as `sealgate gateway` logs
	// it at start). When set, every listed candidate must carry an
	// inclusion proof of its evidence in a checkpoint signed by this key,
	// and every checkpoint must be consistent with the largest one this
	// client has verified; a candidate that fails is refused with a
	// *LogError (a forked log: *translog.ForkError inside). Empty means:
	// with a policy that admits only hardware TEEs, every candidate is
	// refused with ErrNoLogKey unless InsecureSkipLog is set; with a
	// policy that allows the simulated TEE (already INSECURE), the log is
	// not checked.
	LogKey string
	// InsecureSkipLog accepts candidates without checking the
	// transparency log when LogKey is empty. INSECURE: the gateway could
	// then serve evidence it never logged, so no auditor would see what
	// it admitted. False means LogKey decides, as above.
	InsecureSkipLog bool
}

// LogValue describes the configuration without the credential: only
// whether one is set.
func (c Config) LogValue() slog.Value {
	gw := "(invalid)"
	if u, err := url.Parse(c.GatewayURL); err == nil {
		gw = u.Redacted()
	}
	pol := "default"
	if c.Policy != nil {
		pol = c.Policy.Name
	}
	attrs := []slog.Attr{
		slog.String("gateway_url", gw),
		slog.Bool("credential_set", c.Credential != ""),
		slog.Bool("gateway_ca", len(c.GatewayCA) > 0),
		slog.String("policy", pol),
		slog.Int("k", c.K),
		slog.Int("trusted_providers", len(c.TrustedProviders)),
		slog.Int("min_providers", c.MinProviders),
		slog.Bool("strict", c.Strict),
		slog.String("log_key", c.LogKey),
	}
	if c.InsecureSkipLog {
		attrs = append(attrs, slog.Bool("INSECURE_skip_log", true))
	}
	if c.InsecurePlainHTTP {
		attrs = append(attrs, slog.Bool("INSECURE_plain_http", true))
	}
	if c.KeyLog != nil {
		attrs = append(attrs, slog.Bool("INSECURE_key_log", true))
	}
	return slog.GroupValue(attrs...)
}

// String formats the configuration as LogValue does, so printing a Config
// never shows the credential.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("client.Config{")
	for i, a := range c.LogValue().Group() {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%v", a.Key, a.Value)
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

var (
	_ slog.LogValuer = Config{}
	_ slog.LogValuer = (*Client)(nil)
)

// Client is safe for concurrent use.
type Client struct {
	cfg        Config // never modified after New
	base       *url.URL
	http       *http.Client
	minSuite   proto.Suite
	policyHash [32]byte // of cfg.Policy, which is never modified after New

	mu    sync.Mutex // guards cache and keys
	cache map[cacheKey]verdict
	// keys holds the parsed HPKE keys of cached verdicts, so sealing does
	// not parse a worker's key again for every request.
	keys map[proto.KeyID]*seal.PublicKey

	logVerifier *translog.Verifier // nil when Config.LogKey is empty
	logWitness  translog.Witness   // the largest checkpoint verified
}

type cacheKey struct {
	bundle [32]byte
	policy [32]byte
}

// verdict is a verified bundle and the hash of the keys it binds, which
// endorsements sign.
type verdict struct {
	v        *attestation.Verified
	keysHash [32]byte
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	u, err := gatewayURL(&cfg)
	if err != nil {
		return nil, err
	}
	if err := checkCredential(cfg.Credential); err != nil {
		return nil, err
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.Default()
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	min, err := cfg.Policy.MinSuite()
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if cfg.K == 0 {
		cfg.K = 3
	}
	if cfg.K < 1 || cfg.K > proto.MaxCandidates {
		return nil, fmt.Errorf("client: k: found %d, want 1 to %d", cfg.K, proto.MaxCandidates)
	}
	if cfg.MinProviders == 0 {
		cfg.MinProviders = 1
	}
	if cfg.MinProviders < 1 || cfg.MinProviders > cfg.K {
		return nil, fmt.Errorf("client: min providers: found %d, want 1 to k (%d)", cfg.MinProviders, cfg.K)
	}
	for i, k := range cfg.TrustedProviders {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("client: trusted providers: key %d: found %d bytes, want an Ed25519 public key of %d", i+1, len(k), ed25519.PublicKeySize)
		}
	}
	cfg.TrustedProviders = slices.Clone(cfg.TrustedProviders)
	if cfg.AttestationOptions.Nonce != nil {
		return nil, errors.New("client: attestation options: nonce: found set, want nil: set Strict for nonces of the client's own")
	}
	hc, err := httpClient(&cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var lv *translog.Verifier
	if cfg.LogKey != "" {
		if lv, err = translog.NewVerifier(cfg.LogKey); err != nil {
			return nil, fmt.Errorf("client: log key: %w", err)
		}
	}
	return &Client{cfg: cfg, base: u, http: hc, minSuite: min, policyHash: cfg.Policy.Hash(), cache: make(map[cacheKey]verdict), keys: make(map[proto.KeyID]*seal.PublicKey), logVerifier: lv}, nil
}

// checkCredential refuses a credential that cannot be a tenant's bearer
// token. Its errors never quote it.
func checkCredential(cred string) error {
	if cred == "" {
		return nil
	}
	for _, p := range []struct{ prefix, kind string }{{proto.CredentialAdmin, "an admin"}, {proto.CredentialProvider, "a provider"}} {
		if strings.HasPrefix(cred, p.prefix) {
			return fmt.Errorf("client: credential: found %s credential (%s…), want a tenant credential (%s…)", p.kind, p.prefix, proto.CredentialTenant)
		}
	}
	for i := 0; i < len(cred); i++ {
		if !isToken68(cred[i]) {
			return fmt.Errorf("client: credential: found a character outside the bearer token alphabet at offset %d of %d, want a tenant credential (%s…) as issued, without spaces or newlines", i, len(cred), proto.CredentialTenant)
		}
	}
	return nil
}

// isToken68 reports whether b may appear in a bearer token (RFC 6750
// b64token, trailing '=' included).
func isToken68(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '-' || b == '.' || b == '_' || b == '~' || b == '+' || b == '/' || b == '='
}

// LogValue describes the client's configuration, without the credential.
func (c *Client) LogValue() slog.Value { return c.cfg.LogValue() }

// String describes the client's configuration, without the credential.
func (c *Client) String() string { return c.cfg.String() }

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.cfg.String() }

// Worker describes a verified worker.
type Worker struct {
	// ID is the gateway's name for the worker (not authenticated).
	ID string
	// Kind is the verified TEE kind, such as "tdx" or "sim".
	Kind string
	// Simulated is true for the INSECURE simulated TEE.
	Simulated bool
	// Measurement is the verified guest measurement, hex.
	Measurement string
	// BundleHash names the evidence, hex.
	BundleHash string
	// EvidenceTime is when the evidence was made.
	EvidenceTime time.Time
	// Policy is the name of the client policy it passed.
	Policy string
	// Tasks are the tasks the gateway lists it for (not authenticated).
	Tasks []string
	// ProviderKey is the Ed25519 key whose endorsement of the worker's
	// attested keys the client verified; distinct keys are independent
	// providers. ProviderID is the gateway's name for that provider (not
	// authenticated).
	ProviderKey ed25519.PublicKey
	ProviderID  string
	// Region, Models, Capacity and Pool are as the gateway lists them (not
	// authenticated).
	Region   string
	Models   []string
	Capacity int
	Pool     string
	// Strict is true when the evidence above is the fresh evidence the
	// worker made for this client's own nonce (Config.Strict).
	Strict bool

	verified *attestation.Verified
	keysHash [32]byte
	listed   int // position in the gateway's listing
}

// Refusal is a listed candidate the client refused, with the reason: an
// *attestation.Error, an *EndorsementError, a *LogError or a
// *StrictEvidenceError.
// WorkerID and ProviderID are the gateway's names, quoted (Go syntax,
// ASCII) when they are not names it could have admitted.
type Refusal struct {
	WorkerID   string
	ProviderID string
	Err        error
}

// Workers lists candidates for task, verifies each one's evidence and its
// provider's endorsement of the evidence's keys. It returns the verified
// workers and the refused ones; neither list is an error. Strict mode's
// fresh evidence is asked for only when a request is sealed.
func (c *Client) Workers(ctx context.Context, task string) ([]Worker, []Refusal, error) {
	if err := proto.ValidateTask(task); err != nil {
		return nil, nil, err
	}
	q := url.Values{"task": {task}, "max": {strconv.Itoa(proto.MaxListed)}}
	req, err := c.newRequest(ctx, http.MethodGet, proto.PathCandidates+"?"+q.Encode(), nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("client: listing candidates: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, c.gatewayError(resp)
	}
	var list proto.CandidateList
	if err := decodeJSON(resp.Body, &list, maxListBody); err != nil {
		return nil, nil, fmt.Errorf("client: candidate list: %w", err)
	}
	// Each listed bundle costs a verification, which does not watch ctx:
	// a listing longer than asked for is refused before any, so a gateway
	// cannot make the client spend minutes beyond its caller's deadline.
	if n := len(list.Candidates); n > proto.MaxListed {
		return nil, nil, &GatewayError{Status: resp.StatusCode, Code: "listing_too_long", Message: fmt.Sprintf("candidate list: found %d candidates, want at most %d, the number asked for", n, proto.MaxListed)}
	}
	var ok []Worker
	var refused []Refusal
	checkLog, logErr := c.logChecks()
	var cp translog.Checkpoint
	if checkLog && logErr == nil && len(list.Candidates) > 0 {
		cp, logErr = c.checkListingLog(ctx, &list)
	}
	for i, ci := range list.Candidates {
		err := checkIDs(ci)
		var vd verdict
		if err == nil {
			vd, err = c.verify(ci.Bundle)
		}
		if err == nil {
			err = c.checkEndorsement(ci, vd.keysHash)
		}
		if err == nil && checkLog {
			err = logErr
			if err == nil {
				if lerr := translog.VerifyCandidate(cp, &ci); lerr != nil {
					err = &LogError{Err: lerr}
				}
			}
		}
		if err != nil {
			refused = append(refused, Refusal{WorkerID: printableID(ci.WorkerID), ProviderID: printableID(ci.ProviderID), Err: err})
			continue
		}
		w := Worker{
			ID: ci.WorkerID, Tasks: ci.Tasks,
			ProviderKey: ed25519.PublicKey(bytes.Clone(ci.ProviderKey)), ProviderID: ci.ProviderID,
			Region: ci.Region, Models: ci.Models, Capacity: ci.Capacity, Pool: ci.Pool,
			keysHash: vd.keysHash, listed: i,
		}
		w.setVerified(vd.v)
		ok = append(ok, w)
	}
	return ok, refused, nil
}

// setVerified fills w's verified fields from v.
func (w *Worker) setVerified(v *attestation.Verified) {
	w.verified = v
	w.Kind, w.Simulated = v.Kind(), v.Simulated()
	w.Measurement, w.BundleHash = hex.EncodeToString(v.Measurement()), hexHash(v.BundleHash())
	w.EvidenceTime, w.Policy = v.EvidenceTime(), v.PolicyName()
}

// verify checks a bundle, caching verdicts by (bundle hash, policy hash)
// until the evidence leaves its freshness window.
func (c *Client) verify(bundle []byte) (verdict, error) {
	now := c.cfg.Now()
	key := cacheKey{bundle: proto.BundleHash(bundle), policy: c.policyHash}
	c.mu.Lock()
	vd, hit := c.cache[key]
	if hit && !now.Before(vd.v.Expires()) {
		c.evict(key, vd.v)
		hit = false
	}
	c.mu.Unlock()
	if hit {
		return vd, nil
	}
	opts := c.cfg.AttestationOptions
	opts.Now = now
	vd, err := verifyBundle(bundle, c.cfg.Policy, opts)
	if err != nil {
		return verdict{}, err
	}
	c.mu.Lock()
	for k, old := range c.cache { // evict expired verdicts so the cache stays bounded by live workers
		if !now.Before(old.v.Expires()) {
			c.evict(k, old.v)
		}
	}
	c.cache[key] = vd
	c.mu.Unlock()
	return vd, nil
}

// verifyBundle verifies bundle and hashes the keys it binds.
func verifyBundle(bundle []byte, p *policy.Policy, opts attestation.Options) (verdict, error) {
	v, err := attestation.Verify(bundle, p, opts)
	if err != nil {
		return verdict{}, err
	}
	b, err := proto.ParseBundle(bundle) // cannot fail: Verify parsed it
	if err != nil {
		return verdict{}, err
	}
	return verdict{v: v, keysHash: b.KeysHash()}, nil
}

// evict drops a cached verdict and its parsed keys. c.mu is held.
func (c *Client) evict(k cacheKey, v *attestation.Verified) {
	delete(c.cache, k)
	for _, pk := range v.HPKEKeys() {
		delete(c.keys, pk.ID())
	}
}

// publicKey returns w's parsed key for kem, parsing it at most once while
// its verdict is cached.
func (c *Client) publicKey(w Worker, kem uint16) (*seal.PublicKey, error) {
	k, ok := w.verified.HPKEKey(kem)
	if !ok {
		return nil, fmt.Errorf("client: worker %s has no key for kem 0x%04x", w.ID, kem)
	}
	id := k.ID()
	c.mu.Lock()
	pk, hit := c.keys[id]
	c.mu.Unlock()
	if hit {
		return pk, nil
	}
	pk, err := seal.ParsePublicKey(k)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.keys[id] = pk
	c.mu.Unlock()
	return pk, nil
}

// Result is a completed task.
type Result struct {
	// Text is the task's output.
	Text string
	// Worker is the candidate that answered, as the sealed response
	// proves.
	Worker Worker
	// Candidates are the workers the request was sealed to, in listing
	// order; each names its provider.
	Candidates []Worker
	// Refused are the listed candidates the client refused, with why.
	Refused []Refusal
	// End is the worker's end-of-task summary.
	End proto.EndBody
	// RequestID is the request's id, hex.
	RequestID string
}

// SummarizeOptions tune Summarize. The zero value lets the worker choose.
type SummarizeOptions struct {
	// Sentences wanted; zero means the worker chooses from Ratio.
	Sentences int
	// Ratio of sentences kept when Sentences is zero; zero means the
	// worker's default.
	Ratio float64
}

// Summarize returns a summary of text, computed by a verified worker.
func (c *Client) Summarize(ctx context.Context, text string, opts SummarizeOptions) (*Result, error) {
	payload, err := json.Marshal(proto.SummarizeRequest{Text: text, Sentences: opts.Sentences, Ratio: opts.Ratio})
	if err != nil {
		return nil, err
	}
	return c.Do(ctx, proto.TaskSummarize, payload)
}

// Translate translates text from one language to another (ISO 639 codes
// such as "en" and "es").
func (c *Client) Translate(ctx context.Context, text, from, to string) (*Result, error) {
	payload, err := json.Marshal(proto.TranslateRequest{Text: text, From: from, To: to})
	if err != nil {
		return nil, err
	}
	return c.Do(ctx, proto.TaskTranslate, payload)
}

// Do runs task with a raw payload (the task's JSON request) and collects the
// whole output. A stream that ends before its final sealed chunk fails with
// a *TruncatedError and returns no partial output.
func (c *Client) Do(ctx context.Context, task string, payload []byte) (*Result, error) {
	s, err := c.start(ctx, task, payload, "")
	if err != nil {
		return nil, err
	}
	return s.Collect()
}

// start lists, verifies and picks candidates for task (only those the
// gateway lists with model, when it is set), seals payload to them, sends
// it and opens the response stream.
func (c *Client) start(ctx context.Context, task string, payload []byte, model string) (*ChatStream, error) {
	workers, refused, err := c.Workers(ctx, task)
	if err != nil {
		return nil, err
	}
	if model != "" && len(workers) > 0 { // with none verified, the error says why, not which model is missing
		workers = slices.DeleteFunc(workers, func(w Worker) bool { return !slices.Contains(w.Models, model) })
		if len(workers) == 0 {
			return nil, &NoCandidateError{Refusals: refused, Model: model, Reason: fmt.Sprintf("no verified worker is listed with model %q", model)}
		}
	}
	chosen, suite, refused, err := c.pick(ctx, workers, refused)
	if err != nil {
		return nil, err
	}
	keys := make([]*seal.PublicKey, len(chosen))
	for i, w := range chosen {
		if keys[i], err = c.publicKey(w, suite.KEM); err != nil {
			return nil, err
		}
	}
	sealed, err := seal.SealTo(suite, keys, task, payload, seal.Options{Now: c.cfg.Now, KeyLog: c.cfg.KeyLog})
	if err != nil {
		return nil, err
	}
	req, err := c.newRequest(ctx, http.MethodPost, proto.PathRequests, bytes.NewReader(sealed.Bytes()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", proto.MediaTypeRequest)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: sending request: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, c.gatewayError(resp)
	}
	body := &recordingReader{r: resp.Body}
	stream, err := sealed.OpenResponse(body)
	if err != nil {
		resp.Body.Close()
		return nil, streamError(ctx, err, body, "", 0)
	}
	id := sealed.ID()
	return &ChatStream{
		Worker: chosen[stream.Candidate()], Candidates: chosen, Refused: refused, RequestID: hex.EncodeToString(id[:]),
		ctx: ctx, pinModels: c.cfg.Policy.Models != nil, body: body, closer: resp.Body, resp: stream,
	}, nil
}

// recordingReader remembers the first error, other than io.EOF, that
// reading the response body returned: the transport's, not the stream
// parser's.
type recordingReader struct {
	r   io.Reader
	err error
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// streamError classifies a failure reading the sealed response: a stream
// that ended early, cleanly or with a broken connection, is a
// *TruncatedError; the caller's own cancellation is reported as such;
// forgeries and malformed streams keep seal's errors, even when the
// connection broke right after the bytes that failed (a gateway that cuts
// the connection behind a forged chunk must not pass for a flaky one).
func streamError(ctx context.Context, err error, body *recordingReader, workerID string, received int) error {
	for _, forged := range []error{seal.ErrAuthentication, seal.ErrNotCandidate, seal.ErrTrailingData, proto.ErrMalformed} {
		if errors.Is(err, forged) {
			return err
		}
	}
	if body.err != nil && ctx.Err() != nil {
		return fmt.Errorf("client: reading the response: %w", context.Cause(ctx))
	}
	if errors.Is(err, seal.ErrTruncated) || body.err != nil {
		return &TruncatedError{WorkerID: workerID, Received: received, Err: err}
	}
	return err
}

// Status returns the tenant's pools and the capacity of the network it is
// listed, as the gateway reports them (not authenticated).
func (c *Client) Status(ctx context.Context) (proto.Status, error) {
	req, err := c.newRequest(ctx, http.MethodGet, proto.PathStatus, nil)
	if err != nil {
		return proto.Status{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return proto.Status{}, fmt.Errorf("client: status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return proto.Status{}, c.gatewayError(resp)
	}
	var st proto.Status
	if err := decodeJSON(resp.Body, &st, proto.MaxJSONBody); err != nil {
		return proto.Status{}, fmt.Errorf("client: status: %w", err)
	}
	return st, nil
}

// newRequest makes a request to the gateway carrying the credential.
func (c *Client) newRequest(ctx context.Context, method, pathAndQuery string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.base.String(), "/")+pathAndQuery, body)
	if err != nil {
		return nil, err
	}
	if c.cfg.Credential != "" {
		req.Header.Set(proto.HeaderAuthorization, "Bearer "+c.cfg.Credential)
	}
	return req, nil
}

// maxListBody bounds a candidate list: MaxListed bundles, base64.
const maxListBody = 64 << 20

func decodeJSON(r io.Reader, v any, max int64) error {
	return json.NewDecoder(io.LimitReader(r, max)).Decode(v)
}

func hexHash(h [32]byte) string { return hex.EncodeToString(h[:]) }
