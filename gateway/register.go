package gateway

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/proto"
)

// retryChallenge is the Retry-After of an overloaded challenge issuer.
const retryChallenge = 10 * time.Second

// Challenge issues a fresh nonce for a worker to bind into its evidence.
// The nonce is single use and expires after Config.ChallengeTTL.
func (g *Gateway) Challenge(ctx context.Context) (proto.Challenge, error) {
	if err := g.life.enter(); err != nil {
		return proto.Challenge{}, err
	}
	defer g.life.leave()
	var challenge [proto.NonceSize]byte
	rand.Read(challenge[:])
	now := g.cfg.Now()
	anchor, err := attestation.SignAnchor(g.cfg.AnchorKey, challenge, now)
	if err != nil {
		return proto.Challenge{}, api.Wrap(api.Internal, "could not issue a challenge", err)
	}
	nonce := proto.AnchoredNonce(anchor)
	expires := now.Add(g.cfg.ChallengeTTL)
	if !g.challenges.add(nonce, now, expires) {
		return proto.Challenge{}, &api.Error{
			Code: api.Overloaded, Message: "too many outstanding challenges", RetryAfter: retryChallenge,
			Err: fmt.Errorf("%d challenges pending", g.cfg.MaxPendingChallenges),
		}
	}
	return proto.Challenge{Nonce: nonce[:], Anchor: anchor, ExpiresAt: expires}, nil
}

// Register admits a worker: the bundle's nonce must be an unexpired,
// unused challenge, the bundle must pass the admission policy, and the
// worker id, URL and tasks must be valid. On success the worker and its
// key ids are stored and routable.
func (g *Gateway) Register(ctx context.Context, reg proto.Registration) (proto.Admission, error) {
	if err := g.life.enter(); err != nil {
		return proto.Admission{}, err
	}
	defer g.life.leave()
	if err := validateRegistration(&reg); err != nil {
		return proto.Admission{}, err
	}
	log := g.log.With(slog.String("worker", reg.WorkerID))
	b, err := proto.ParseBundle(reg.Bundle)
	if err != nil {
		return proto.Admission{}, api.Wrap(api.BadRequest, "malformed evidence bundle", err)
	}
	now := g.cfg.Now()
	switch g.challenges.use(b.Nonce, now) {
	case challengeUnknown:
		return proto.Admission{}, api.New(api.BadChallenge, "the bundle's nonce is not an outstanding challenge (unknown or already used)")
	case challengeExpired:
		return proto.Admission{}, api.New(api.BadChallenge, "the bundle's nonce is an expired challenge")
	}
	v, err := attestation.Verify(reg.Bundle, g.cfg.AdmissionPolicy, g.verifyOptions(now))
	if err != nil {
		log.InfoContext(ctx, "worker refused", slog.String("attestation_code", string(attestation.CodeOf(err))), slog.Any("err", err))
		// Attestation errors name fields and values of public evidence
		// and policy; they hold no secrets, and the worker's operator
		// needs them.
		return proto.Admission{}, api.Wrap(api.AttestationRefused, "evidence refused: "+err.Error(), err)
	}

	g.regMu.Lock()
	defer g.regMu.Unlock()
	if other := g.reg.conflict(reg.WorkerID, v.HPKEKeys(), now); other != "" {
		return proto.Admission{}, api.Wrap(api.KeyConflict, "a key in the bundle is registered to another worker",
			fmt.Errorf("key routes to worker %q", other))
	}
	w, keys := record(reg.WorkerID, reg.URL, reg.Tasks, v, now)
	if err := g.store.PutWorker(ctx, w, keys); err != nil {
		return proto.Admission{}, api.Wrap(api.Internal, "internal error", err)
	}
	g.reg.admit(reg.WorkerID, reg.URL, reg.Tasks, v, now)
	if n, err := g.store.PruneKeys(ctx, now); err != nil {
		log.WarnContext(ctx, "pruning expired keys", slog.Any("err", err))
	} else if n > 0 {
		log.InfoContext(ctx, "pruned expired keys", slog.Int64("keys", n))
	}
	g.reg.prune(now)

	attrs := []any{
		slog.String("kind", v.Kind()), slog.String("policy", v.PolicyName()),
		slog.Time("expires", v.Expires()), slog.Any("tasks", reg.Tasks), slog.Int("keys", len(keys)),
	}
	if v.Simulated() {
		log.WarnContext(ctx, "worker admitted with INSECURE simulated evidence", attrs...)
	} else {
		log.InfoContext(ctx, "worker admitted", attrs...)
	}
	return proto.Admission{
		WorkerID: reg.WorkerID, Kind: v.Kind(), AdmittedAt: now, ExpiresAt: v.Expires(), Policy: v.PolicyName(),
	}, nil
}

// validateRegistration checks the fields the gateway routes on. Messages
// name the field and the rule, never the value found.
func validateRegistration(reg *proto.Registration) error {
	if err := validateWorkerID(reg.WorkerID); err != nil {
		return err
	}
	if err := validateWorkerURL(reg.URL); err != nil {
		return err
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

// Candidates lists up to max workers that serve task and whose evidence is
// unexpired, least loaded first, each with its evidence bundle. A max of
// zero means DefaultListed; it may not exceed proto.MaxListed.
func (g *Gateway) Candidates(ctx context.Context, task string, max int) (proto.CandidateList, error) {
	if err := g.life.enter(); err != nil {
		return proto.CandidateList{}, err
	}
	defer g.life.leave()
	if err := proto.ValidateTask(task); err != nil {
		return proto.CandidateList{}, api.Wrap(api.BadRequest, fmt.Sprintf("task: want [a-z][a-z0-9-]* of 1 to %d characters", proto.MaxTaskLen), err)
	}
	if max == 0 {
		max = DefaultListed
	}
	if max < 1 || max > proto.MaxListed {
		return proto.CandidateList{}, api.New(api.BadRequest, fmt.Sprintf("max: want 1 to %d", proto.MaxListed))
	}
	cs := g.reg.serving(task, g.cfg.Now())
	byLoad(cs)
	if len(cs) > max {
		cs = cs[:max]
	}
	list := proto.CandidateList{Candidates: make([]proto.CandidateInfo, 0, len(cs))}
	for _, c := range cs {
		list.Candidates = append(list.Candidates, proto.CandidateInfo{
			WorkerID: c.w.id, Tasks: slices.Clone(c.tasks), Bundle: c.verified.Bundle(),
		})
	}
	return list, nil
}
