package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/proto"
)

// challengeResult is one candidate's outcome in strict mode: its fresh
// verdict, or why it is refused.
type challengeResult struct {
	v   *attestation.Verified
	err error // a *StrictEvidenceError
}

// challengeAll asks every worker in ws for fresh evidence, concurrently,
// and waits for all of them. It fails as a whole only for what is not
// about one candidate: the credential refused, the tenant rate-limited,
// the gateway overloaded or unreachable, or ctx done.
func (c *Client) challengeAll(ctx context.Context, ws []Worker) ([]challengeResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]challengeResult, len(ws))
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			v, err := c.challenge(ctx, w)
			var se *StrictEvidenceError
			switch {
			case err == nil:
				results[i].v = v
			case errors.As(err, &se):
				results[i].err = err
			default:
				errs[i] = err
				cancel() // the others cannot succeed either
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return results, nil
}

// challenge asks the gateway to relay a fresh nonce to w and verifies the
// evidence that comes back: it must pass the policy, bind exactly that
// nonce (which also makes it fresh, with no time anchor), and bind the
// keys of w's listed evidence, which its provider endorsed.
func (c *Client) challenge(ctx context.Context, w Worker) (*attestation.Verified, error) {
	var nonce [proto.NonceSize]byte
	rand.Read(nonce[:])
	body, err := json.Marshal(proto.EvidenceRequest{WorkerID: w.ID, Nonce: nonce[:]})
	if err != nil {
		return nil, err
	}
	req, err := c.newRequest(ctx, http.MethodPost, proto.PathEvidence, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: asking for fresh evidence: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := c.gatewayError(resp)
		var ge *GatewayError
		if errors.As(err, &ge) { // about this worker: unknown, unreachable, failed
			return nil, &StrictEvidenceError{Reason: "the gateway relayed no fresh evidence", Err: err}
		}
		return nil, err
	}
	var ev proto.Evidence
	if err := decodeJSON(resp.Body, &ev, proto.MaxJSONBody); err != nil {
		return nil, &StrictEvidenceError{Reason: "the fresh evidence answer does not decode", Err: err}
	}
	opts := c.cfg.AttestationOptions
	opts.Now = c.cfg.Now()
	opts.Nonce = &nonce
	vd, err := verifyBundle(ev.Bundle, c.cfg.Policy, opts)
	if err != nil {
		return nil, &StrictEvidenceError{Reason: "the fresh evidence failed verification", Err: err}
	}
	if vd.keysHash != w.keysHash {
		return nil, &StrictEvidenceError{Reason: fmt.Sprintf("keys: the fresh evidence binds keys with hash %x…, want %x… (the keys of the listed, endorsed evidence)", vd.keysHash[:8], w.keysHash[:8])}
	}
	return vd.v, nil
}
