package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
)

// Config configures a Client. Only GatewayURL is required.
type Config struct {
	// GatewayURL is the gateway's base URL.
	GatewayURL string
	// Policy is the attestation policy every candidate must pass. Nil means
	// policy.Default(), which accepts hardware TEEs only.
	Policy *policy.Policy
	// K is how many verified candidates a request is sealed to. Zero means
	// 3; at most proto.MaxCandidates.
	K int
	// HTTPClient sends requests. Nil means a client whose dial and
	// response-header waits are bounded; streamed bodies are bounded by the
	// caller's context.
	HTTPClient *http.Client
	// Now returns the current time, for evidence freshness and request
	// timestamps. Nil means time.Now.
	Now func() time.Time
	// AttestationOptions are passed to attestation.Verify (Now is filled
	// from the Now field). Tests use it to pin other roots.
	AttestationOptions attestation.Options
	// KeyLog, when non-nil, receives every request's secrets. INSECURE:
	// for tests only.
	KeyLog io.Writer
}

// Client is safe for concurrent use.
type Client struct {
	cfg        Config
	base       *url.URL
	minSuite   proto.Suite
	policyHash [32]byte // of cfg.Policy, which is never modified after New

	mu    sync.Mutex // guards cache and keys
	cache map[cacheKey]*attestation.Verified
	// keys holds the parsed HPKE keys of cached verdicts, so sealing does
	// not parse a worker's key again for every request.
	keys map[proto.KeyID]*seal.PublicKey
}

type cacheKey struct {
	bundle [32]byte
	policy [32]byte
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.GatewayURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: gateway url: found %q, want an http or https URL", cfg.GatewayURL)
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
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			ResponseHeaderTimeout: 60 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConnsPerHost:   8,
		}}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, base: u, minSuite: min, policyHash: cfg.Policy.Hash(), cache: make(map[cacheKey]*attestation.Verified), keys: make(map[proto.KeyID]*seal.PublicKey)}, nil
}

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

	verified *attestation.Verified
}

// Refusal is a listed candidate the client refused, with the reason.
type Refusal struct {
	WorkerID string
	Err      error
}

// Workers lists candidates for task and verifies each. It returns the
// verified workers and the refused ones; neither list is an error.
func (c *Client) Workers(ctx context.Context, task string) ([]Worker, []Refusal, error) {
	if err := proto.ValidateTask(task); err != nil {
		return nil, nil, err
	}
	q := url.Values{"task": {task}, "max": {strconv.Itoa(proto.MaxListed)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint(proto.PathCandidates)+"?"+q.Encode(), nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("client: listing candidates: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, gatewayError(resp)
	}
	var list proto.CandidateList
	if err := decodeJSON(resp.Body, &list); err != nil {
		return nil, nil, fmt.Errorf("client: candidate list: %w", err)
	}
	var ok []Worker
	var refused []Refusal
	for _, ci := range list.Candidates {
		v, err := c.verify(ci.Bundle)
		if err != nil {
			refused = append(refused, Refusal{WorkerID: ci.WorkerID, Err: err})
			continue
		}
		ok = append(ok, Worker{
			ID: ci.WorkerID, Kind: v.Kind(), Simulated: v.Simulated(),
			Measurement: hex.EncodeToString(v.Measurement()), BundleHash: hexHash(v.BundleHash()),
			EvidenceTime: v.EvidenceTime(), Policy: v.PolicyName(), Tasks: ci.Tasks, verified: v,
		})
	}
	return ok, refused, nil
}

// verify checks a bundle, caching verdicts by (bundle hash, policy hash)
// until the evidence leaves its freshness window.
func (c *Client) verify(bundle []byte) (*attestation.Verified, error) {
	now := c.cfg.Now()
	key := cacheKey{bundle: proto.BundleHash(bundle), policy: c.policyHash}
	c.mu.Lock()
	v, hit := c.cache[key]
	if hit && !now.Before(v.Expires()) {
		c.evict(key, v)
		hit = false
	}
	c.mu.Unlock()
	if hit {
		return v, nil
	}
	opts := c.cfg.AttestationOptions
	opts.Now = now
	v, err := attestation.Verify(bundle, c.cfg.Policy, opts)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	for k, old := range c.cache { // evict expired verdicts so the cache stays bounded by live workers
		if !now.Before(old.Expires()) {
			c.evict(k, old)
		}
	}
	c.cache[key] = v
	c.mu.Unlock()
	return v, nil
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
	// Candidates are the workers the request was sealed to.
	Candidates []Worker
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
// whole output.
func (c *Client) Do(ctx context.Context, task string, payload []byte) (*Result, error) {
	workers, refused, err := c.Workers(ctx, task)
	if err != nil {
		return nil, err
	}
	chosen, suite, err := c.choose(workers, refused)
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(proto.PathRequests), bytes.NewReader(sealed.Bytes()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", proto.MediaTypeRequest)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: sending request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, gatewayError(resp)
	}
	stream, err := sealed.OpenResponse(resp.Body)
	if err != nil {
		return nil, err
	}
	id := sealed.ID()
	res := &Result{Worker: chosen[stream.Candidate()], Candidates: chosen, RequestID: hex.EncodeToString(id[:])}
	var out strings.Builder
	for {
		e, err := stream.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch e.Type {
		case proto.EventData:
			out.Write(e.Data)
		case proto.EventError:
			var body proto.ErrorBody
			if err := json.Unmarshal(e.Data, &body); err != nil {
				return nil, fmt.Errorf("client: worker error event does not decode: %w", err)
			}
			return nil, &TaskError{Code: body.Code, Message: body.Message, WorkerID: res.Worker.ID}
		case proto.EventEnd:
			if err := json.Unmarshal(e.Data, &res.End); err != nil {
				return nil, fmt.Errorf("client: worker end event does not decode: %w", err)
			}
		}
	}
	res.Text = out.String()
	return res, nil
}

// choose picks up to K verified workers and the strongest suite all of them
// support that meets the policy minimum. Workers without such a suite are
// left out; none is sealed to with a weaker suite.
func (c *Client) choose(workers []Worker, refused []Refusal) ([]Worker, proto.Suite, error) {
	if len(workers) == 0 {
		return nil, proto.Suite{}, &NoCandidateError{Refusals: refused}
	}
	for _, s := range proto.Suites() {
		if s.Strength() < c.minSuite.Strength() {
			break
		}
		var chosen []Worker
		for _, w := range workers {
			if slices.Contains(w.verified.Suites(), s) {
				chosen = append(chosen, w)
			}
			if len(chosen) == c.cfg.K {
				break
			}
		}
		if len(chosen) > 0 {
			return chosen, s, nil
		}
	}
	return nil, proto.Suite{}, &NoCandidateError{Refusals: refused, Reason: fmt.Sprintf("no verified worker offers a suite at least as strong as %v", c.minSuite)}
}

func (c *Client) endpoint(path string) string {
	return strings.TrimSuffix(c.base.String(), "/") + path
}

func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, 64<<20))
	return dec.Decode(v)
}

func hexHash(h [32]byte) string { return hex.EncodeToString(h[:]) }
