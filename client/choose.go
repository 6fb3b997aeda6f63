package client

import (
	"context"
	"fmt"
	"slices"

	"github.com/sealgate/sealgate/proto"
)

// pick chooses the candidates to seal to and the suite. In strict mode it
// asks each chosen candidate for fresh evidence; those that fail are
// refused and the choice is made again among the rest.
func (c *Client) pick(ctx context.Context, workers []Worker, refused []Refusal) ([]Worker, proto.Suite, []Refusal, error) {
	fresh := make(map[int]Worker) // listing position -> worker with fresh evidence
	for {
		chosen, suite, err := c.choose(workers, refused)
		if err != nil || !c.cfg.Strict {
			return chosen, suite, refused, err
		}
		var ask []Worker
		for _, w := range chosen {
			if _, ok := fresh[w.listed]; !ok {
				ask = append(ask, w)
			}
		}
		results, err := c.challengeAll(ctx, ask)
		if err != nil {
			return nil, proto.Suite{}, refused, err
		}
		failed := make(map[int]bool)
		for i, r := range results {
			w := ask[i]
			if r.err != nil {
				failed[w.listed] = true
				refused = append(refused, Refusal{WorkerID: w.ID, ProviderID: w.ProviderID, Err: r.err})
				continue
			}
			w.setVerified(r.v)
			w.Strict = true
			fresh[w.listed] = w
		}
		if len(failed) == 0 {
			for i, w := range chosen {
				chosen[i] = fresh[w.listed]
			}
			return chosen, suite, refused, nil
		}
		workers = slices.DeleteFunc(slices.Clone(workers), func(w Worker) bool { return failed[w.listed] })
	}
}

// choose picks up to K verified workers and the strongest suite all of them
// support that meets the policy minimum. Workers without such a suite are
// left out; none is sealed to with a weaker suite. Among the workers with
// the suite it takes one per distinct provider key first, in listing
// order, then fills up in listing order; a worker whose keys are already
// chosen (listed twice) is not taken again. The chosen workers are
// returned in listing order. Fewer distinct provider keys among them than
// MinProviders is a *DiversityError.
func (c *Client) choose(workers []Worker, refused []Refusal) ([]Worker, proto.Suite, error) {
	if len(workers) == 0 {
		return nil, proto.Suite{}, &NoCandidateError{Refusals: refused}
	}
	for _, s := range proto.Suites() {
		if s.Strength() < c.minSuite.Strength() {
			break
		}
		var offer []Worker
		for _, w := range workers {
			if slices.Contains(w.verified.Suites(), s) {
				offer = append(offer, w)
			}
		}
		if len(offer) > 0 {
			chosen := diverse(offer, c.cfg.K)
			if n := providers(chosen); n < c.cfg.MinProviders {
				return nil, proto.Suite{}, &DiversityError{Found: n, Want: c.cfg.MinProviders, Suite: s, Refusals: refused}
			}
			return chosen, s, nil
		}
	}
	return nil, proto.Suite{}, &NoCandidateError{Refusals: refused, Reason: fmt.Sprintf("no verified worker offers a suite at least as strong as %v", c.minSuite)}
}

// providers counts the distinct provider keys of ws.
func providers(ws []Worker) int {
	keys := make(map[string]bool)
	for _, w := range ws {
		keys[string(w.ProviderKey)] = true
	}
	return len(keys)
}

// diverse takes up to k of ws: one per provider key first, then the rest,
// each pass in order, never two workers with the same keys.
func diverse(ws []Worker, k int) []Worker {
	taken := make([]bool, len(ws))
	keys := make(map[[32]byte]bool)
	providers := make(map[string]bool)
	n := 0
	for pass := range 2 {
		for i, w := range ws {
			if n == k {
				break
			}
			if taken[i] || keys[w.keysHash] || (pass == 0 && providers[string(w.ProviderKey)]) {
				continue
			}
			taken[i], keys[w.keysHash], providers[string(w.ProviderKey)] = true, true, true
			n++
		}
	}
	var out []Worker
	for i, w := range ws {
		if taken[i] {
			out = append(out, w)
		}
	}
	return out
}
