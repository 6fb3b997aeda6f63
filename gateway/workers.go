package gateway

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"net/http"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
)

// snapshot returns a copy of worker id's registration.
func (r *registry) snapshot(id string) (workerAt, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	w := r.workers[id]
	if w == nil {
		return workerAt{}, false
	}
	return w.at, true
}

// all returns every worker, for the background loops.
func (r *registry) all() []*worker {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*worker, 0, len(r.workers))
	for _, w := range r.workers {
		out = append(out, w)
	}
	return out
}

// workerClient returns an HTTP client for a worker with TLS pin pin (nil
// for an INSECURE plain-http worker): it presents the gateway's
// certificate and trusts only the pinned key.
func (g *Gateway) workerClient(pin []byte) *http.Client {
	t := g.base.Clone()
	if len(pin) == len(tlspin.Pin{}) {
		t.TLSClientConfig = tlspin.ClientConfig(g.cfg.TLSCertificate, tlspin.Pin(pin))
	}
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func serveURL(base string) string {
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + proto.PathServe
}

// atOf rebuilds a worker's registration from its store row; verified is
// nil when its evidence does not pass now.
func (g *Gateway) atOf(ctx context.Context, sw store.Worker, now time.Time) workerAt {
	at := workerAt{
		providerID: sw.ProviderID, endorsement: sw.Endorsement, url: sw.URL, serveURL: serveURL(sw.URL),
		tasks: sw.Tasks, models: sw.Models, region: sw.Region, capacity: sw.Capacity, tlsPin: sw.TLSPin,
		bundleHash: sw.BundleHash, admittedAt: sw.AdmittedAt, attestedAt: sw.AttestedAt,
		state: sw.State, drainedAt: sw.DrainedAt,
	}
	at.client = g.workerClient(sw.TLSPin)
	if prov, err := g.store.Provider(ctx, sw.ProviderID); err == nil && len(prov.SigningKey) == ed25519.PublicKeySize {
		at.providerKey = ed25519.PublicKey(prov.SigningKey)
	}
	v, err := attestation.Verify(sw.Bundle, g.cfg.AdmissionPolicy, g.verifyOptions(now))
	if err != nil {
		g.log.InfoContext(ctx, "stored worker not routable: its evidence no longer passes; it stays known until re-attested or evicted",
			slog.String("worker", sw.ID), slog.String("attestation_code", string(attestation.CodeOf(err))), slog.Any("err", err))
		return at
	}
	b, _ := proto.ParseBundle(sw.Bundle)
	if at.providerKey == nil || !ed25519.Verify(at.providerKey, proto.EndorsementMessage(sw.ID, b.KeysHash()), sw.Endorsement) {
		g.log.InfoContext(ctx, "stored worker not routable: its endorsement does not verify under its provider's current key",
			slog.String("worker", sw.ID))
		return at
	}
	at.verified = v
	return at
}

// load fills the registry from the store. Every stored bundle is verified
// again under the current policy at the current time; workers that no
// longer pass stay known, to be challenged, but are not routed to.
func (g *Gateway) load(ctx context.Context) error {
	now := g.cfg.Now()
	pruned, err := g.store.PruneKeys(ctx, now)
	if err != nil {
		return err
	}
	workers, err := g.store.Workers(ctx)
	if err != nil {
		return err
	}
	keys, err := g.store.Keys(ctx)
	if err != nil {
		return err
	}
	pools, err := g.store.Pools(ctx)
	if err != nil {
		return err
	}
	g.reg.setPools(pools)
	routable := 0
	for _, sw := range workers {
		at := g.atOf(ctx, sw, now)
		if at.verified != nil {
			routable++
		}
		g.reg.admit(sw.ID, at)
	}
	restored := g.reg.restoreKeys(keys, now)
	g.syncedAt = now
	g.log.InfoContext(ctx, "registry loaded",
		slog.Int("workers_stored", len(workers)), slog.Int("workers_routable", routable),
		slog.Int("earlier_keys_restored", restored), slog.Int64("keys_pruned", pruned), slog.Int("pools", len(pools)))
	return nil
}

// restoreKeys routes stored key ids of earlier registrations to their
// worker, when the worker's current evidence passes and the key has not
// expired. It returns how many it added.
func (r *registry) restoreKeys(keys []store.Key, now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, k := range keys {
		w := r.workers[k.WorkerID]
		if w == nil || w.at.verified == nil || !k.ExpiresAt.After(now) {
			continue
		}
		if _, ok := r.keys[k.ID]; !ok {
			r.keys[k.ID] = keyRoute{w: w, expires: k.ExpiresAt}
			n++
		}
	}
	return n
}

// record converts a registration to its store rows.
func record(id string, at workerAt, now time.Time) (store.Worker, []store.Key) {
	v := at.verified
	w := store.Worker{
		ID: id, URL: at.url, ProviderID: at.providerID, Tasks: at.tasks, Models: at.models, Region: at.region,
		Capacity: at.capacity, Kind: v.Kind(), Bundle: v.Bundle(), BundleHash: v.BundleHash(),
		Endorsement: at.endorsement, TLSPin: at.tlsPin, State: at.state,
		AdmittedAt: at.admittedAt, ExpiresAt: v.Expires(), AttestedAt: at.attestedAt, DrainedAt: at.drainedAt,
		UpdatedAt: now,
	}
	var keys []store.Key
	for _, k := range v.HPKEKeys() {
		keys = append(keys, store.Key{ID: k.ID(), WorkerID: id, ExpiresAt: v.Expires()})
	}
	return w, keys
}
