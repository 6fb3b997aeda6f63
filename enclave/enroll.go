package enclave

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
)

// probeGap is the least time between two checks of the gateway's
// certificate prompted by clients presenting unpinned keys. Anyone who
// reaches the worker can prompt one, so they are rate-limited; a check is
// one TLS handshake with the gateway, and only a changed gateway key
// leads to a re-enrollment (and so a key rotation).
const probeGap = 5 * time.Second

// enrollLoop enrolls now (retrying with backoff) and then waits for the
// gateway's re-attestation challenges. It enrolls again when no challenge
// succeeds within twice ReattestInterval, or when a client presents an
// unpinned certificate and the gateway's certificate turns out to have
// changed. It returns when ctx is done.
func (w *Worker) enrollLoop(ctx context.Context, advertise string) {
	watchdog := 2 * w.cfg.ReattestInterval
	for {
		if !w.enroll(ctx, advertise) {
			return
		}
		expire := w.watchdogTimer(watchdog)
		var probeWait <-chan time.Time // not nil while probes are rate-limited
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.attested:
				expire = w.watchdogTimer(watchdog)
			case <-expire:
				w.log.Warn("no re-attestation challenge from the gateway in time; enrolling again", slog.Duration("watchdog", watchdog))
				break wait
			case <-probeWait:
				probeWait = nil
			case <-w.unpinned:
				if probeWait != nil {
					continue
				}
				probeWait = time.After(probeGap)
				changed, err := w.gatewayChanged(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					w.log.Warn("a client presented an unpinned certificate; checking the gateway's failed", slog.String("error", err.Error()))
					continue
				}
				if changed {
					w.log.Warn("the gateway's certificate changed; enrolling again")
					break wait
				}
				w.log.Info("a client presented an unpinned certificate; the gateway's is unchanged")
			}
		}
	}
}

// enroll runs Attest until it succeeds, with backoff between failures. It
// returns false when ctx is done first.
func (w *Worker) enroll(ctx context.Context, advertise string) bool {
	backoff := 100 * time.Millisecond
	for {
		adm, err := w.Attest(ctx, advertise)
		if err == nil {
			w.log.Info("enrolled with gateway", slog.String("kind", adm.Kind), slog.String("policy", adm.Policy), slog.Time("evidence_expires", adm.ExpiresAt))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		w.log.Warn("enrollment failed; retrying", slog.String("error", err.Error()), slog.Duration("retry_in", backoff))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// Attest enrolls the worker: it obtains a fresh challenge from the
// gateway, makes a new key generation with evidence bound to it and the
// provider's endorsement, and registers it. The worker serves the new
// generation as soon as the registration is sent and makes it current
// once the gateway admits it. It is exported so that tests and operators
// can force an enrollment; Run calls it at start and when its watchdog
// fires.
func (w *Worker) Attest(ctx context.Context, advertise string) (*proto.Admission, error) {
	select {
	case w.attestSem <- struct{}{}:
		defer func() { <-w.attestSem }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var ch proto.Challenge
	if err := w.postJSON(ctx, proto.PathChallenge, struct{}{}, &ch); err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	if err := checkChallenge(&ch); err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	gen, err := w.newGeneration(ctx, ch.Anchor)
	if err != nil {
		return nil, err
	}
	reg := proto.Registration{
		WorkerID:    w.cfg.ID,
		URL:         advertise,
		Tasks:       w.cfg.Backend.Tasks(),
		Bundle:      gen.bundle,
		Endorsement: gen.endorsement,
		TLSPin:      w.pin,
		Capacity:    w.cfg.MaxConcurrent,
		Region:      w.cfg.Region,
		Models:      w.cfg.Models,
	}
	// The gateway may route to the new keys as soon as it admits them,
	// before its answer reaches us.
	w.mu.Lock()
	w.pending = gen
	w.mu.Unlock()
	var adm proto.Admission
	err = w.postJSON(ctx, proto.PathRegister, reg, &adm)
	w.mu.Lock()
	w.pending = nil
	if err == nil {
		w.prev, w.current = w.current, gen
	}
	w.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return &adm, nil
}

// checkChallenge checks a challenge's nonce derives from its time anchor.
// Its errors name what is wrong and quote nothing.
func checkChallenge(ch *proto.Challenge) error {
	if len(ch.Nonce) != proto.NonceSize {
		return fmt.Errorf("nonce of %d bytes, want %d", len(ch.Nonce), proto.NonceSize)
	}
	if _, err := proto.ParseAnchor(ch.Anchor); err != nil {
		return err
	}
	want := proto.AnchoredNonce(ch.Anchor)
	if subtle.ConstantTimeCompare(ch.Nonce, want[:]) != 1 {
		return errors.New("nonce is not derived from its time anchor")
	}
	return nil
}

// learnGatewayPin records the pin of a certificate the gateway presented
// to the worker's own calls, which GatewayTLS verified. It keeps the
// newest maxGatewayPins.
func (w *Worker) learnGatewayPin(p tlspin.Pin) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.gatewayPins) > 0 && w.gatewayPins[0] == p {
		return
	}
	pins := []tlspin.Pin{p}
	for _, q := range w.gatewayPins {
		if q != p && len(pins) < maxGatewayPins {
			pins = append(pins, q)
		}
	}
	w.gatewayPins = pins
	w.log.Info("pinned the gateway's certificate", slog.String("gateway_pin", p.String()))
}

// gatewayPinList returns the pinned gateway keys, for the TLS handshake.
func (w *Worker) gatewayPinList() []tlspin.Pin {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.gatewayPins)
}

// gatewayPinned reports whether p is a pinned gateway key.
func (w *Worker) gatewayPinned(p tlspin.Pin) bool {
	match := 0
	for _, q := range w.gatewayPinList() {
		match |= subtle.ConstantTimeCompare(p[:], q[:])
	}
	return match == 1
}

// gatewayChanged connects to the gateway afresh and reports whether the
// certificate it presents now has a key other than the newest pinned one.
// It learns nothing: the re-enrollment that follows a change does.
func (w *Worker) gatewayChanged(ctx context.Context) (bool, error) {
	w.client.CloseIdleConnections() // a new handshake, not a kept-alive one
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.cfg.GatewayURL+proto.PathHealth, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set(proto.HeaderAuthorization, "Bearer "+w.cfg.Credential)
	resp, err := w.client.Do(req)
	if err != nil {
		return false, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.TLS == nil {
		return false, nil // plain http: nothing to pin
	}
	p, err := tlspin.PeerPin(resp.TLS)
	if err != nil {
		return false, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.gatewayPins) == 0 || w.gatewayPins[0] != p, nil
}

// postJSON calls the gateway with the credential and learns the pin of
// the certificate it answered with.
func (w *Worker) postJSON(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.GatewayURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(proto.HeaderAuthorization, "Bearer "+w.cfg.Credential)
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.TLS != nil {
		p, err := tlspin.PeerPin(resp.TLS)
		if err != nil {
			return err
		}
		w.learnGatewayPin(p)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e proto.ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("gateway answered %d %s: %.200s", resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("gateway answered %d", resp.StatusCode)
	}
	return json.Unmarshal(data, out)
}
