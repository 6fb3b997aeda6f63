package gateway

import (
	"sync"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// challenges holds the nonces issued to workers and not yet used. They
// live in memory only.
type challenges struct {
	mu      sync.Mutex // guards pending
	pending map[[proto.NonceSize]byte]time.Time
	max     int
}

func newChallenges(max int) challenges {
	return challenges{pending: make(map[[proto.NonceSize]byte]time.Time), max: max}
}

// add remembers nonce until expires. It reports false when max unexpired
// challenges are already pending.
func (c *challenges) add(nonce [proto.NonceSize]byte, now, expires time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) >= c.max {
		for n, exp := range c.pending {
			if !exp.After(now) {
				delete(c.pending, n)
			}
		}
		if len(c.pending) >= c.max {
			return false
		}
	}
	c.pending[nonce] = expires
	return true
}

// challengeState is what use found.
type challengeState int

const (
	challengeOK challengeState = iota
	challengeUnknown
	challengeExpired
)

// use consumes nonce: it succeeds once, for a nonce issued and unexpired
// at now.
func (c *challenges) use(nonce [proto.NonceSize]byte, now time.Time) challengeState {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.pending[nonce]
	if !ok {
		return challengeUnknown
	}
	delete(c.pending, nonce)
	if !exp.After(now) {
		return challengeExpired
	}
	return challengeOK
}
