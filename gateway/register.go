package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sealgate/sealgate/internal/tlspin"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

// retryChallenge is the Retry-After of an overloaded challenge issuer.
const retryChallenge = 10 * time.Second

// Challenge issues a fresh nonce for a worker to bind into its evidence.
// The nonce is single use and expires after Config.ChallengeTTL.
func (g *Gateway) Challenge(ctx context.Context, cred string) (proto.Challenge, error) {
	if err := g.life.enter(); err != nil {
		return proto.Challenge{}, err
	}
	defer g.life.leave()
	if _, err := g.require(ctx, cred, api.RoleProvider); err != nil {
		return proto.Challenge{}, err
	}
	return g.newChallenge(true)
}

// newChallenge signs a fresh anchor and derives its nonce; pending
// challenges are remembered for Register.
func (g *Gateway) newChallenge(pending bool) (proto.Challenge, error) {
	var challenge [proto.NonceSize]byte
	rand.Read(challenge[:])
	now := g.cfg.Now()
	anchor, err := attestation.SignAnchor(g.cfg.AnchorKey, challenge, now)
	if err != nil {
		return proto.Challenge{}, api.Wrap(api.Internal, "could not issue a challenge", err)
	}
	nonce := proto.AnchoredNonce(anchor)
	expires := now.Add(g.cfg.ChallengeTTL)
	if pending && !g.challenges.add(nonce, now, expires) {
		return proto.Challenge{}, &api.Error{
			Code: api.Overloaded, Message: "too many outstanding challenges", RetryAfter: retryChallenge,
			Err: fmt.Errorf("%d challenges pending", g.cfg.MaxPendingChallenges),
		}
	}
	return proto.Challenge{Nonce: nonce[:], Anchor: anchor, ExpiresAt: expires}, nil
}

// Register enrolls a provider's worker: the bundle's nonce must be an
// unexpired, unused challenge, the bundle must pass the admission policy,
// the endorsement must verify under the provider's registered key, and the
// worker's id, URL, TLS pin, tasks, capacity, region and models must be
// valid. On success the worker and its key ids are stored and routable.
func (g *Gateway) Register(ctx context.Context, cred string, reg proto.Registration) (proto.Admission, error) {
	if err := g.life.enter(); err != nil {
		return proto.Admission{}, err
	}
	defer g.life.leave()
	p, err := g.require(ctx, cred, api.RoleProvider)
	if err != nil {
		return proto.Admission{}, err
	}
	if err := g.validateRegistration(&reg); err != nil {
		return proto.Admission{}, err
	}
	b, err := proto.ParseBundle(reg.Bundle)
	if err != nil {
		return proto.Admission{}, api.Wrap(api.BadRequest, "malformed evidence bundle", err)
	}
	now := g.cfg.Now()
	switch g.challenges.use(b.Nonce, now) {
	case challengeUnknown:
		g.metrics.Refused("bad_challenge")
		return proto.Admission{}, api.New(api.BadChallenge, "the bundle's nonce is not an outstanding challenge (unknown or already used)")
	case challengeExpired:
		g.metrics.Refused("bad_challenge")
		return proto.Admission{}, api.New(api.BadChallenge, "the bundle's nonce is an expired challenge")
	}
	if prev, ok := g.reg.snapshot(reg.WorkerID); ok && prev.providerID != p.ID {
		return proto.Admission{}, api.New(api.Forbidden, "worker_id: registered by another provider")
	}
	at := workerAt{
		providerID: p.ID, url: reg.URL, serveURL: serveURL(reg.URL), tasks: slices.Clone(reg.Tasks),
		models: slices.Clone(reg.Models), region: reg.Region, capacity: reg.Capacity, admittedAt: now,
	}
	if reg.TLSPin != "" {
		pin, _ := tlspin.ParsePin(reg.TLSPin) // validated above
		at.tlsPin = pin[:]
	}
	v, err := g.admit(ctx, translog.KindAdmission, reg.WorkerID, at, reg.Bundle, reg.Endorsement, now)
	if err != nil {
		return proto.Admission{}, err
	}
	return proto.Admission{
		WorkerID: reg.WorkerID, Kind: v.Kind(), AdmittedAt: now, ExpiresAt: v.Expires(), Policy: v.PolicyName(),
	}, nil
}

// admit verifies a worker's bundle and endorsement and, if both pass,
// logs the evidence in the transparency log as kind (an admission or a
// re-attestation), then stores and routes the worker as active. at
// carries everything but the evidence; its provider must have a
// registered endorsement key. A worker whose entry does not reach the
// log is refused.
func (g *Gateway) admit(ctx context.Context, kind translog.Kind, id string, at workerAt, bundle, endorsement []byte, now time.Time) (*attestation.Verified, error) {
	log := g.log.With(slog.String("worker", id), slog.String("provider", at.providerID))
	v, err := attestation.Verify(bundle, g.cfg.AdmissionPolicy, g.verifyOptions(now))
	if err != nil {
		g.metrics.Refused(string(attestation.CodeOf(err)))
		log.InfoContext(ctx, "worker refused", slog.String("attestation_code", string(attestation.CodeOf(err))), slog.Any("err", err))
		// Attestation errors name fields and values of public evidence
		// and policy; they hold no secrets, and the worker's operator
		// needs them.
		return nil, api.Wrap(api.AttestationRefused, "evidence refused: "+err.Error(), err)
	}
	prov, err := g.store.Provider(ctx, at.providerID)
	if err != nil {
		return nil, lookupError(err)
	}
	if len(prov.SigningKey) != ed25519.PublicKeySize {
		g.metrics.Refused("endorsement")
		return nil, api.New(api.EndorsementRefused, "the provider has no endorsement key: register one first")
	}
	b, _ := proto.ParseBundle(bundle) // Verify parsed it
	if !ed25519.Verify(prov.SigningKey, proto.EndorsementMessage(id, b.KeysHash()), endorsement) {
		g.metrics.Refused("endorsement")
		log.InfoContext(ctx, "worker refused: endorsement does not verify")
		return nil, api.New(api.EndorsementRefused, "endorsement: not a signature by the provider's registered key over this worker's keys")
	}
	at.providerKey, at.endorsement = ed25519.PublicKey(prov.SigningKey), slices.Clone(endorsement)
	at.verified, at.bundleHash, at.attestedAt, at.state = v, v.BundleHash(), now, stateActive
	at.drainedAt = time.Time{} // a drained worker that passes is active again
	at.client = g.workerClient(at.tlsPin)

	g.regMu.Lock()
	defer g.regMu.Unlock()
	if other := g.reg.conflict(id, v.HPKEKeys(), now); other != "" {
		g.metrics.Refused("key_conflict")
		return nil, api.Wrap(api.KeyConflict, "a key in the bundle is registered to another worker",
			fmt.Errorf("key routes to worker %q", other))
	}
	if err := g.logEvidence(ctx, kind, id, at, bundle, now); err != nil {
		return nil, err
	}
	w, keys := record(id, at, now)
	if err := g.store.PutWorker(ctx, w, keys); err != nil {
		if ctx.Err() != nil {
			// The caller went away mid-write: not the gateway's fault.
			return nil, api.Wrap(api.Unavailable, "request cancelled", err)
		}
		return nil, api.Wrap(api.Internal, "internal error", err)
	}
	g.reg.admit(id, at)
	if n, err := g.store.PruneKeys(ctx, now); err != nil {
		log.WarnContext(ctx, "pruning expired keys", slog.Any("err", err))
	} else if n > 0 {
		log.InfoContext(ctx, "pruned expired keys", slog.Int64("keys", n))
	}
	g.reg.prune(now)
	g.metrics.Admitted(v.Kind())
	g.updateWorkerGauges()

	attrs := []any{
		slog.String("kind", v.Kind()), slog.String("policy", v.PolicyName()),
		slog.Time("expires", v.Expires()), slog.Any("tasks", at.tasks), slog.Int("keys", len(keys)),
		slog.Int("capacity", at.capacity), slog.String("region", at.region),
	}
	if v.Simulated() {
		log.WarnContext(ctx, "worker admitted with INSECURE simulated evidence", attrs...)
	} else {
		log.InfoContext(ctx, "worker admitted", attrs...)
	}
	return v, nil
}

// SetProviderKey registers the provider's Ed25519 endorsement key. Nodes
// enrolled later must be endorsed by it; nodes already admitted keep
// their endorsement until their next re-attestation.
func (g *Gateway) SetProviderKey(ctx context.Context, cred string, k proto.ProviderKey) (proto.ProviderKey, error) {
	if err := g.life.enter(); err != nil {
		return proto.ProviderKey{}, err
	}
	defer g.life.leave()
	p, err := g.require(ctx, cred, api.RoleProvider)
	if err != nil {
		return proto.ProviderKey{}, err
	}
	if len(k.PublicKey) != ed25519.PublicKeySize {
		return proto.ProviderKey{}, api.New(api.BadRequest, fmt.Sprintf("public_key: found %d bytes, want an Ed25519 public key of %d", len(k.PublicKey), ed25519.PublicKeySize))
	}
	if err := g.store.SetProviderSigningKey(ctx, p.ID, k.PublicKey); err != nil {
		return proto.ProviderKey{}, lookupError(err)
	}
	g.log.InfoContext(ctx, "provider endorsement key registered", slog.String("provider", p.ID),
		slog.String("key_sha256", fmt.Sprintf("%x", sha256.Sum256(k.PublicKey))))
	return k, nil
}

// validateRegistration checks the fields the gateway routes on. Messages
// name the field and the rule, never the value found.
func (g *Gateway) validateRegistration(reg *proto.Registration) error {
	if err := validateWorkerID(reg.WorkerID); err != nil {
		return err
	}
	if err := validateWorkerURL(reg.URL); err != nil {
		return err
	}
	u, _ := url.Parse(reg.URL)
	switch {
	case u.Scheme == "https" && reg.TLSPin == "":
		return api.New(api.BadRequest, "tls_pin: missing, want the pin of the worker's certificate for an https url")
	case u.Scheme == "https":
		if _, err := tlspin.ParsePin(reg.TLSPin); err != nil {
			return api.Wrap(api.BadRequest, "tls_pin: want sha256/ and 43 characters of base64url", err)
		}
	case !g.cfg.InsecurePlainWorkers:
		return api.New(api.BadRequest, "url: want https (this gateway does not admit INSECURE plain-http workers)")
	case reg.TLSPin != "":
		return api.New(api.BadRequest, "tls_pin: want none for an http url")
	}
	if reg.Capacity < 1 || reg.Capacity > proto.MaxCapacity {
		return api.New(api.BadRequest, fmt.Sprintf("capacity: found %d, want 1 to %d", reg.Capacity, proto.MaxCapacity))
	}
	if err := validateLabel("region", reg.Region, proto.MaxRegionLen, true); err != nil {
		return err
	}
	if len(reg.Models) > proto.MaxModels {
		return api.New(api.BadRequest, fmt.Sprintf("models: found %d, want at most %d", len(reg.Models), proto.MaxModels))
	}
	for i, m := range reg.Models {
		if err := validateModel(m); err != nil {
			return api.Wrap(api.BadRequest, fmt.Sprintf("models[%d]: want 1 to %d characters from [A-Za-z0-9._:/@+-]", i, proto.MaxModelLen), err)
		}
	}
	if len(reg.Endorsement) != ed25519.SignatureSize {
		return api.New(api.BadRequest, fmt.Sprintf("endorsement: found %d bytes, want an Ed25519 signature of %d", len(reg.Endorsement), ed25519.SignatureSize))
	}
	if n := len(reg.Tasks); n < 1 || n > maxTasks {
		return api.New(api.BadRequest, fmt.Sprintf("tasks: found %d, want 1 to %d", n, maxTasks))
	}
	for i, t := range reg.Tasks {
		if err := proto.ValidateTask(t); err != nil {
			return api.Wrap(api.BadRequest, fmt.Sprintf("tasks[%d]: want [a-z][a-z0-9-]* of 1 to %d characters", i, proto.MaxTaskLen), err)
		}
		if slices.Contains(reg.Tasks[:i], t) {
			return api.New(api.BadRequest, fmt.Sprintf("tasks[%d]: duplicate task", i))
		}
	}
	if len(reg.Bundle) == 0 {
		return api.New(api.BadRequest, "bundle: missing")
	}
	return nil
}

// validateLabel checks a short lowercase label: [a-z0-9-], at most max
// bytes, empty only if allowed.
func validateLabel(field, s string, max int, emptyOK bool) error {
	if s == "" && emptyOK {
		return nil
	}
	if len(s) < 1 || len(s) > max {
		return api.New(api.BadRequest, fmt.Sprintf("%s: found %d bytes, want 1 to %d", field, len(s), max))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return api.New(api.BadRequest, field+": want characters from [a-z0-9-]")
		}
	}
	return nil
}

// validateModel checks a model name such as "llama-3.1-8b@sha256:...".
func validateModel(m string) error {
	if len(m) < 1 || len(m) > proto.MaxModelLen {
		return fmt.Errorf("found %d bytes", len(m))
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:/@+-", c) >= 0) {
			return errors.New("a character outside the set")
		}
	}
	return nil
}

func validateWorkerID(id string) error {
	if n := len(id); n < 1 || n > proto.MaxWorkerIDLen {
		return api.New(api.BadRequest, fmt.Sprintf("worker_id: found %d bytes, want 1 to %d", n, proto.MaxWorkerIDLen))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return api.New(api.BadRequest, "worker_id: want characters from [A-Za-z0-9._-]")
		}
	}
	return nil
}

func validateWorkerURL(raw string) error {
	if n := len(raw); n < 1 || n > proto.MaxWorkerURLLen {
		return api.New(api.BadRequest, fmt.Sprintf("url: found %d bytes, want 1 to %d", n, proto.MaxWorkerURLLen))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return api.Wrap(api.BadRequest, "url: not a valid URL", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return api.New(api.BadRequest, "url: want an absolute http or https URL")
	case u.Host == "" || u.Opaque != "":
		return api.New(api.BadRequest, "url: want a host")
	case u.User != nil:
		return api.New(api.BadRequest, "url: want no user information")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "":
		return api.New(api.BadRequest, "url: want no query or fragment")
	}
	return nil
}

// Candidates lists up to max workers that serve task and that the tenant
// may use: its reserved pool first, then others spread over distinct
// providers, least loaded first, each with its evidence bundle and its
// provider's endorsement. A max of zero means DefaultListed; it may not
// exceed proto.MaxListed.
func (g *Gateway) Candidates(ctx context.Context, cred, task string, max int) (proto.CandidateList, error) {
	if err := g.life.enter(); err != nil {
		return proto.CandidateList{}, err
	}
	defer g.life.leave()
	p, err := g.require(ctx, cred, api.RoleTenant)
	if err != nil {
		return proto.CandidateList{}, err
	}
	if err := proto.ValidateTask(task); err != nil {
		return proto.CandidateList{}, api.Wrap(api.BadRequest, fmt.Sprintf("task: want [a-z][a-z0-9-]* of 1 to %d characters", proto.MaxTaskLen), err)
	}
	if max == 0 {
		max = DefaultListed
	}
	if max < 1 || max > proto.MaxListed {
		return proto.CandidateList{}, api.New(api.BadRequest, fmt.Sprintf("max: want 1 to %d", proto.MaxListed))
	}
	now := g.cfg.Now()
	list := proto.CandidateList{Candidates: g.reg.listing(task, p.ID, max, now)}
	g.decorateListing(ctx, &list, now)
	return list, nil
}
