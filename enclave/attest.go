package enclave

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"

	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// Bounds of the JSON bodies the gateway posts to a worker: a challenge
// (a nonce, an anchor and a time, base64) and an evidence request (a
// nonce).
const (
	maxChallengeBody       = 4 << 10
	maxEvidenceRequestBody = 1 << 10
)

// attest handles proto.PathAttest: the gateway's re-attestation challenge.
// The worker makes a new key generation with evidence bound to the
// challenge and the provider's endorsement, makes it current (the previous
// one keeps serving until the next rotation) and answers both. One runs at
// a time; another at the same time, or during an enrollment, gets 503.
func (w *Worker) attest(rw http.ResponseWriter, r *http.Request) {
	select {
	case w.attestSem <- struct{}{}:
		defer func() { <-w.attestSem }()
	default:
		rw.Header().Set("Retry-After", "1")
		writeError(rw, http.StatusServiceUnavailable, "busy", "an attestation is already in progress")
		return
	}
	var ch proto.Challenge
	if !decodeJSON(rw, r, maxChallengeBody, &ch) {
		return
	}
	if err := checkChallenge(&ch); err != nil {
		w.log.LogAttrs(r.Context(), slog.LevelWarn, "refused re-attestation challenge", slog.String("reason", err.Error()))
		writeError(rw, http.StatusBadRequest, "bad_challenge", "challenge nonce must be "+fmt.Sprint(proto.NonceSize)+" bytes derived from a valid time anchor")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), w.cfg.RequestTimeout)
	defer cancel()
	gen, err := w.newGeneration(ctx, ch.Anchor)
	if err != nil {
		w.log.LogAttrs(ctx, slog.LevelError, "re-attestation failed", slog.String("error", err.Error()))
		rw.Header().Set("Retry-After", "5")
		writeError(rw, http.StatusServiceUnavailable, "evidence_unavailable", "the worker could not collect evidence")
		return
	}
	w.mu.Lock()
	w.prev, w.current = w.current, gen
	w.mu.Unlock()
	signal(w.attested)
	w.log.LogAttrs(ctx, slog.LevelInfo, "re-attested: keys rotated")
	writeJSON(rw, proto.Attestation{Bundle: gen.bundle, Endorsement: gen.endorsement})
}

// quote handles proto.PathQuote: evidence for the current keys bound to a
// client's own nonce (strict mode), relayed by the gateway. At most
// maxConcurrentQuotes run at once; more get 503.
func (w *Worker) quote(rw http.ResponseWriter, r *http.Request) {
	select {
	case w.quoteSem <- struct{}{}:
		defer func() { <-w.quoteSem }()
	default:
		rw.Header().Set("Retry-After", "1")
		writeError(rw, http.StatusServiceUnavailable, "busy", "too many quotes in progress")
		return
	}
	var er proto.EvidenceRequest
	if !decodeJSON(rw, r, maxEvidenceRequestBody, &er) {
		return
	}
	if len(er.Nonce) != proto.NonceSize {
		writeError(rw, http.StatusBadRequest, "bad_nonce", fmt.Sprintf("nonce of %d bytes, want %d", len(er.Nonce), proto.NonceSize))
		return
	}
	if er.WorkerID != "" && er.WorkerID != w.cfg.ID {
		writeError(rw, http.StatusMisdirectedRequest, "wrong_worker", "evidence request names another worker")
		return
	}
	w.mu.Lock()
	cur := w.current
	w.mu.Unlock()
	if cur == nil {
		rw.Header().Set("Retry-After", "1")
		writeError(rw, http.StatusServiceUnavailable, "not_ready", "the worker has no keys yet")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), w.cfg.RequestTimeout)
	defer cancel()
	enc, _, err := w.evidence(ctx, cur.keys, [proto.NonceSize]byte(er.Nonce), nil)
	if err != nil {
		w.log.LogAttrs(ctx, slog.LevelError, "quote failed", slog.String("error", err.Error()))
		rw.Header().Set("Retry-After", "5")
		writeError(rw, http.StatusServiceUnavailable, "evidence_unavailable", "the worker could not collect evidence")
		return
	}
	w.log.LogAttrs(ctx, slog.LevelInfo, "quoted current keys for a client nonce")
	writeJSON(rw, proto.Evidence{Bundle: enc})
}

// newGeneration makes new keys, evidence binding them to the nonce derived
// from anchor, and the provider's endorsement of them.
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
	wk := proto.WorkerKeys{Signing: sigPub, Models: w.cfg.ModelDigests}
	for _, k := range keys {
		wk.HPKE = append(wk.HPKE, k.Public())
	}
	enc, keysHash, err := w.evidence(ctx, wk, proto.AnchoredNonce(anchor), anchor)
	if err != nil {
		return nil, err
	}
	return &generation{
		opener:      opener,
		signing:     sigPriv,
		keys:        wk,
		bundle:      enc,
		endorsement: ed25519.Sign(w.cfg.ProviderKey, proto.EndorsementMessage(w.cfg.ID, keysHash)),
	}, nil
}

// evidence returns an encoded bundle binding keys to nonce (and anchor,
// which may be empty), and the bundle's keys hash. GPU evidence, when
// the source has GPUs, is collected first, since the TEE report binds it.
func (w *Worker) evidence(ctx context.Context, keys proto.WorkerKeys, nonce [proto.NonceSize]byte, anchor []byte) ([]byte, [32]byte, error) {
	b := proto.Bundle{Kind: w.cfg.Evidence.Kind(), Nonce: nonce, Anchor: anchor, Keys: keys}
	if g, ok := w.cfg.Evidence.(GPUEvidenceSource); ok {
		var err error
		if b.GPU, err = g.GPUEvidence(ctx, b.Nonce); err != nil {
			return nil, [32]byte{}, fmt.Errorf("collecting gpu evidence: %w", err)
		}
	}
	report, coll, err := w.cfg.Evidence.Evidence(ctx, b.ReportData())
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("collecting evidence: %w", err)
	}
	b.Report, b.Collateral = report, coll
	enc, err := b.Marshal()
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("encoding bundle: %w", err)
	}
	return enc, b.KeysHash(), nil
}

// decodeJSON strictly decodes a JSON request body of at most limit bytes
// into v: application/json, no unknown fields, nothing after the value.
// On failure it has answered the request and returns false.
func decodeJSON(rw http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(rw, http.StatusUnsupportedMediaType, "bad_media_type", "request body must be application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(rw, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); !errors.Is(extra, io.EOF) {
			err = errors.New("data after the JSON value")
		}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig), errors.Is(err, os.ErrDeadlineExceeded):
			writeBodyError(rw, err)
		default:
			writeError(rw, http.StatusBadRequest, "bad_request", "request body is not the expected JSON")
		}
		return false
	}
	liftReadDeadline(rw)
	return true
}

func writeJSON(rw http.ResponseWriter, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(rw).Encode(v)
}
