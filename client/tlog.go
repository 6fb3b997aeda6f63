package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

// The transparency-log checks of a listing (Config.LogKey):
//
//  1. The listing's checkpoint must be signed by the pinned key.
//  2. It must be consistent with the largest checkpoint this client has
//     verified: the same root at the same size, and otherwise a
//     consistency proof fetched from the gateway between the two. The
//     larger becomes the one remembered.
//  3. Each candidate that passed attestation and endorsement must carry
//     an inclusion proof of its evidence entry, rebuilt from its listed
//     fields, in that checkpoint's tree.
//
// A failure of 1 or 2 refuses every candidate of the listing; of 3, that
// candidate. Each refusal is a *LogError.

// ErrLog is matched by every *LogError.
var ErrLog = errors.New("transparency log check failed")

// ErrNoLogKey is the cause of a candidate refused because the client
// pins no log key while its policy admits hardware TEEs only.
var ErrNoLogKey = errors.New("no transparency-log key pinned (set Config.LogKey, or the INSECURE InsecureSkipLog)")

// LogError refuses a candidate on the transparency log's account. Err is
// ErrNoLogKey, or wraps translog.ErrCheckpointSignature,
// translog.ErrMalformed, translog.ErrNoProof or translog.ErrInclusion,
// or is a *translog.ForkError (a checkpoint inconsistent with one seen
// before: proof that the log forked), or is the failure to fetch a
// consistency proof.
type LogError struct {
	Err error
}

func (e *LogError) Error() string { return "transparency log: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *LogError) Unwrap() error { return e.Err }

// Is makes every LogError match ErrLog.
func (e *LogError) Is(target error) bool { return target == ErrLog }

// logChecks reports whether listings are checked against the log, and
// the error every candidate is refused with when they cannot be.
func (c *Client) logChecks() (bool, error) {
	switch {
	case c.logVerifier != nil:
		return true, nil
	case c.cfg.InsecureSkipLog || c.cfg.Policy.AllowSimulated:
		return false, nil
	}
	return true, &LogError{Err: ErrNoLogKey}
}

// checkListingLog verifies the listing's checkpoint (steps 1 and 2) and
// returns it.
func (c *Client) checkListingLog(ctx context.Context, list *proto.CandidateList) (translog.Checkpoint, error) {
	if len(list.LogCheckpoint) == 0 {
		return translog.Checkpoint{}, &LogError{Err: errors.New("the listing carries no checkpoint")}
	}
	cp, err := c.logVerifier.Open(list.LogCheckpoint)
	if err != nil {
		return translog.Checkpoint{}, &LogError{Err: err}
	}
	if err := c.observeCheckpoint(ctx, cp); err != nil {
		return translog.Checkpoint{}, err
	}
	return cp, nil
}

// observeCheckpoint checks cp against the largest checkpoint seen,
// fetching a consistency proof when their sizes differ, and remembers
// the larger.
func (c *Client) observeCheckpoint(ctx context.Context, cp translog.Checkpoint) error {
	var p [][]byte
	if largest, ok := c.logWitness.Largest(); ok && largest.Size != cp.Size {
		from, to := min(largest.Size, cp.Size), max(largest.Size, cp.Size)
		var err error
		if from > 0 {
			p, err = c.consistencyProof(ctx, from, to)
			if err != nil {
				return &LogError{Err: fmt.Errorf("fetching the consistency proof from %d to %d entries: %w", from, to, err)}
			}
		}
	}
	if err := c.logWitness.Observe(cp, p); err != nil {
		return &LogError{Err: err}
	}
	return nil
}

// maxProofBody bounds a proof's JSON: MaxLogProof hashes in base64.
const maxProofBody = 16 << 10

func (c *Client) consistencyProof(ctx context.Context, from, to uint64) ([][]byte, error) {
	q := url.Values{"from": {strconv.FormatUint(from, 10)}, "to": {strconv.FormatUint(to, 10)}}
	req, err := c.newRequest(ctx, http.MethodGet, proto.PathLogConsistency+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.gatewayError(resp)
	}
	var p proto.LogProof
	if err := decodeJSON(resp.Body, &p, maxProofBody); err != nil {
		return nil, err
	}
	if len(p.Hashes) > proto.MaxLogProof {
		return nil, fmt.Errorf("proof of %d hashes, want at most %d", len(p.Hashes), proto.MaxLogProof)
	}
	return p.Hashes, nil
}

// LogCheckpoint returns the largest transparency-log checkpoint this
// client has verified, and false when it has verified none (or checks
// no log). An application that keeps it across runs can compare it
// with later ones (translog.VerifyConsistency) to notice a fork.
func (c *Client) LogCheckpoint() (translog.Checkpoint, bool) {
	if c.logVerifier == nil {
		return translog.Checkpoint{}, false
	}
	return c.logWitness.Largest()
}
