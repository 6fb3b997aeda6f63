package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sealgate/sealgate/gateway/api"
	"github.com/sealgate/sealgate/proto"
)

// Evidence relays a tenant's own nonce to a worker (strict mode) and
// returns the worker's evidence of its current keys bound to it. Each
// tenant has Config.EvidenceLimit of these, since each costs the worker a
// fresh hardware quote. The gateway does not verify the answer beyond its
// size: the client does.
func (g *Gateway) Evidence(ctx context.Context, cred string, req proto.EvidenceRequest) (proto.Evidence, error) {
	if err := g.life.enter(); err != nil {
		return proto.Evidence{}, err
	}
	defer g.life.leave()
	p, err := g.require(ctx, cred, api.RoleTenant)
	if err != nil {
		return proto.Evidence{}, err
	}
	if err := validateWorkerID(req.WorkerID); err != nil {
		return proto.Evidence{}, err
	}
	if len(req.Nonce) != proto.NonceSize {
		return proto.Evidence{}, api.New(api.BadRequest, fmt.Sprintf("nonce: found %d bytes, want %d", len(req.Nonce), proto.NonceSize))
	}
	res := g.limits.Allow("evidence/"+p.ID, g.cfg.EvidenceLimit, noLimit, 0)
	if !res.OK {
		g.metrics.RateLimited()
		return proto.Evidence{}, &api.Error{Code: api.RateLimited, Message: "strict-mode evidence rate limit reached", RetryAfter: res.RetryAfter}
	}
	now := g.cfg.Now()
	g.reg.mu.RLock()
	w := g.reg.workers[req.WorkerID]
	var at workerAt
	ok := false
	if w != nil {
		ok, _, _, _ = g.reg.usableLocked(w, p.ID, now)
		at = w.at
	}
	g.reg.mu.RUnlock()
	if !ok {
		return proto.Evidence{}, api.New(api.NotFound, "worker_id: no listed worker of that id")
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.ReattestTimeout)
	defer cancel()
	var ev proto.Evidence
	start := time.Now()
	if err := g.callWorker(ctx, at, proto.PathQuote, proto.EvidenceRequest{Nonce: req.Nonce}, &ev); err != nil {
		var busy *workerBusy
		if errors.As(err, &busy) {
			return proto.Evidence{}, &api.Error{Code: api.Overloaded, Message: "the worker is busy making other evidence", RetryAfter: busy.retryAfter, Err: err}
		}
		g.log.WarnContext(ctx, "strict-mode evidence failed", slog.String("worker", req.WorkerID), slog.Any("err", err))
		return proto.Evidence{}, api.Wrap(api.UpstreamFailed, "the worker did not answer with evidence", err)
	}
	g.log.InfoContext(ctx, "strict-mode evidence relayed", slog.String("worker", req.WorkerID), slog.String("tenant", p.ID),
		slog.Int("bytes", len(ev.Bundle)), slog.Duration("duration", time.Since(start)))
	return ev, nil
}
