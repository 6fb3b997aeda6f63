// Package breaker is a circuit breaker for one worker: after enough
// consecutive failures it stops sending the worker traffic for a while,
// then lets a single probe through and closes again only if that probe
// succeeds. Each failed probe doubles the wait, up to a ceiling.
//
// The caller asks Allow before each call and reports the call's outcome
// with Success or Failure. What counts as a failure (a refused connection,
// a 5xx, a stream cut short) is the caller's decision; a refusal that is
// the client's fault should be reported as neither.
//
// The clock is injected (Config.Now); nothing here sleeps or starts
// goroutines.
package breaker

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero values of Config's fields.
const (
	DefaultFailures   = 5
	DefaultOpenFor    = 10 * time.Second
	DefaultMaxOpenFor = 2 * time.Minute
)

// State is where a Breaker stands. The zero State is Closed.
type State int32

// The states of a Breaker.
const (
	// Closed lets every call through and counts consecutive failures.
	Closed State = iota
	// Open refuses every call until the open interval has passed.
	Open
	// HalfOpen has let one probe through and refuses other calls until
	// the probe reports.
	HalfOpen
)

// String returns "closed", "open" or "half-open", or "State(n)" for a
// value that is none of them.
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Config configures a Breaker.
type Config struct {
	// Failures is how many consecutive failures open a closed breaker.
	// Zero means DefaultFailures; negative panics in New.
	Failures int
	// OpenFor is how long the breaker stays open after it first opens,
	// before it lets a probe through. Each failed probe doubles it, up to
	// MaxOpenFor; a successful probe resets it. Zero means
	// DefaultOpenFor; negative panics in New.
	OpenFor time.Duration
	// MaxOpenFor caps the doubled open interval. Zero means
	// DefaultMaxOpenFor, or OpenFor if that is longer; a negative value,
	// or one below OpenFor, panics in New.
	MaxOpenFor time.Duration
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// Breaker is a circuit breaker for one worker. It is safe for concurrent
// use. Create one with New; the zero Breaker is not usable.
type Breaker struct {
	now        func() time.Time
	threshold  int
	baseOpen   time.Duration
	maxOpenFor time.Duration

	// state and fails mirror the fields of the same meaning below, so
	// that the common case (closed, no failures) is decided without the
	// lock. They are written only with mu held.
	state atomic.Int32
	fails atomic.Int64

	// mu guards every field below, and every write of state and fails.
	mu sync.Mutex
	// interval is how long the breaker stays open this time round.
	interval time.Duration
	// openedAt is when the breaker last opened.
	openedAt time.Time
	// probeAt is when the outstanding half-open probe was let through.
	probeAt time.Time
}

// New returns a closed Breaker for cfg. It panics if a field of cfg is
// out of range, as documented on Config.
func New(cfg Config) *Breaker {
	switch {
	case cfg.Failures < 0:
		panic(fmt.Sprintf("breaker: config: Failures: found %d, want zero or positive", cfg.Failures))
	case cfg.OpenFor < 0:
		panic(fmt.Sprintf("breaker: config: OpenFor: found %v, want zero or positive", cfg.OpenFor))
	case cfg.MaxOpenFor < 0:
		panic(fmt.Sprintf("breaker: config: MaxOpenFor: found %v, want zero or positive", cfg.MaxOpenFor))
	}
	b := &Breaker{
		now:        cfg.Now,
		threshold:  cfg.Failures,
		baseOpen:   cfg.OpenFor,
		maxOpenFor: cfg.MaxOpenFor,
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.threshold == 0 {
		b.threshold = DefaultFailures
	}
	if b.baseOpen == 0 {
		b.baseOpen = DefaultOpenFor
	}
	if b.maxOpenFor == 0 {
		b.maxOpenFor = max(DefaultMaxOpenFor, b.baseOpen)
	}
	if b.maxOpenFor < b.baseOpen {
		panic(fmt.Sprintf("breaker: config: MaxOpenFor: found %v, want at least OpenFor (%v)", b.maxOpenFor, b.baseOpen))
	}
	b.interval = b.baseOpen
	return b
}

// Allow reports whether a call may go to the worker now. Closed, it always
// does. Open, it refuses until the open interval has passed since the
// breaker opened; the first call after that becomes the probe and the
// breaker turns half-open. Half-open, it refuses every call until the
// probe reports, unless the probe has gone unreported for a whole open
// interval: then it is presumed lost and the next call becomes the probe.
//
// A call Allow admits must be reported with Success or Failure.
func (b *Breaker) Allow() bool {
	if State(b.state.Load()) == Closed {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch State(b.state.Load()) {
	case Open:
		now := b.now()
		if now.Sub(b.openedAt) < b.interval {
			return false
		}
		b.probeAt = now
		b.state.Store(int32(HalfOpen))
		return true
	case HalfOpen:
		now := b.now()
		if now.Sub(b.probeAt) < b.interval {
			return false
		}
		b.probeAt = now
		return true
	}
	return true
}

// Success reports that an admitted call succeeded. Closed, it resets the
// count of consecutive failures; half-open, it closes the breaker and
// resets the open interval. Open, it is ignored: the call was admitted
// before the breaker opened.
//
// A half-open breaker cannot tell its probe from a call admitted before
// it opened that reports late; the first report after the probe was let
// through decides.
func (b *Breaker) Success() {
	if State(b.state.Load()) == Closed && b.fails.Load() == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch State(b.state.Load()) {
	case Closed:
		b.fails.Store(0)
	case HalfOpen:
		b.interval = b.baseOpen
		b.fails.Store(0)
		b.state.Store(int32(Closed))
	}
}

// Failure reports that an admitted call failed. Closed, it counts a
// consecutive failure and opens the breaker at Config.Failures of them;
// half-open, it opens the breaker again for twice the last interval, up to
// Config.MaxOpenFor. Open, it is ignored: the call was admitted before the
// breaker opened.
func (b *Breaker) Failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch State(b.state.Load()) {
	case Closed:
		n := b.fails.Load() + 1
		if int(n) < b.threshold {
			b.fails.Store(n)
			return
		}
		b.fails.Store(0)
		b.open(b.baseOpen)
	case HalfOpen:
		next := b.maxOpenFor
		if b.interval <= b.maxOpenFor/2 {
			next = 2 * b.interval
		}
		b.open(next)
	}
}

// open opens the breaker for interval from now. b.mu must be held.
func (b *Breaker) open(interval time.Duration) {
	b.interval = interval
	b.openedAt = b.now()
	b.state.Store(int32(Open))
}

// State returns the breaker's current state. An open breaker whose
// interval has passed stays Open until Allow lets the probe through.
func (b *Breaker) State() State {
	return State(b.state.Load())
}
