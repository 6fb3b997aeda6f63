// Package ratelimit holds per-tenant token buckets for the gateway: one for
// requests and one for bytes, taken together so that a request is charged
// both or neither.
//
// Limits travel with each call rather than living in the Limiter, so a
// tenant's plan can change without touching this package: a bucket is
// refilled at the rate of the call that touches it and capped at that
// call's burst. A tenant seen for the first time starts with full buckets.
//
// The number of tenants tracked is bounded (Config.MaxKeys). Past the bound
// the least recently used bucket is dropped, preferring one that has
// already refilled (so dropping it forgets nothing). The clock is injected
// (Config.Now); nothing here sleeps or starts goroutines.
package ratelimit

import (
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys is the number of tenants a Limiter tracks when
// Config.MaxKeys is zero.
const DefaultMaxKeys = 100_000

// Limit is a token-bucket rate: PerSecond tokens are added every second,
// up to Burst tokens. For requests a token is one request; for bytes, one
// byte.
//
// The zero Limit is unlimited.
type Limit struct {
	// PerSecond is the refill rate in tokens per second. Zero (or any
	// value that is not a finite positive number) means unlimited: the
	// bucket always admits and Burst is ignored.
	PerSecond float64
	// Burst is the bucket's capacity: the most tokens one call can take
	// after the tenant has been idle. Zero (or any value that is not a
	// finite positive number) means one second's worth of PerSecond. A
	// capacity below one token is raised to one, so that one request, or
	// one byte, can always pass eventually.
	Burst float64
}

// unlimited reports whether l admits everything.
func (l Limit) unlimited() bool {
	return !(l.PerSecond > 0) || math.IsInf(l.PerSecond, 1)
}

// capacity is l's effective burst; l must not be unlimited.
func (l Limit) capacity() float64 {
	b := l.Burst
	if !(b > 0) || math.IsInf(b, 1) {
		b = l.PerSecond
	}
	return max(b, 1)
}

// Config configures a Limiter.
type Config struct {
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// MaxKeys bounds the number of tenants tracked at once. When a new
	// tenant arrives and the bound is reached, the least recently used
	// bucket is dropped. Zero means DefaultMaxKeys; negative panics in New.
	MaxKeys int
}

// Result is the outcome of Limiter.Allow. Exactly one of three cases holds:
// OK; refused for now (RetryAfter > 0); or TooLarge.
//
// The zero Result is a refusal with no advice, which Allow never returns.
type Result struct {
	// OK reports that one request token and the bytes were taken.
	OK bool
	// RetryAfter is, when the call was refused for now, how long until
	// both buckets would hold enough tokens for the same call, assuming no
	// other call for the tenant in between. It is exact (not rounded);
	// rounding up to the HTTP Retry-After granularity is the caller's
	// job. Zero when OK or TooLarge.
	RetryAfter time.Duration
	// TooLarge reports that the call asked for more bytes than the byte
	// Limit's burst: no amount of waiting admits it under this limit.
	// Nothing was taken.
	TooLarge bool
}

// shard is one slice of the tenant table with its own lock and LRU list.
type shard struct {
	// mu guards every field of the shard and every bucket reachable from
	// it, including the buckets' LRU links.
	mu      sync.Mutex
	buckets map[string]*bucket
	// head is the sentinel of a circular doubly linked list of buckets,
	// most recently used first.
	head bucket
	max  int
	// pad keeps the next shard's lock off this shard's cache lines.
	_ [64]byte
}

// bucket is one tenant's request and byte buckets.
type bucket struct {
	key        string
	reqTokens  float64
	byteTokens float64
	// last is when the tokens were last refilled, in nanoseconds since
	// Limiter.epoch.
	last int64
	// fullAt is when both buckets will be full at the limits last seen,
	// in the same clock as last; a bucket whose fullAt has passed is idle:
	// dropping it loses nothing.
	fullAt     int64
	prev, next *bucket
}

// Limiter tracks token buckets per tenant key. It is safe for concurrent
// use. Create one with New; the zero Limiter is not usable.
type Limiter struct {
	now    func() time.Time
	epoch  time.Time
	seed   maphash.Seed
	shards []shard
	mask   uint64
}

// minPerShard is the smallest per-shard bound for which New shards the
// table; with fewer keys one lock is cheap enough and the LRU order stays
// exact.
const minPerShard = 1024

// maxShards bounds the number of locks.
const maxShards = 64

// evictScan is how many buckets from the LRU end eviction looks at for an
// idle one before dropping the least recently used regardless.
const evictScan = 8

// New returns a Limiter for cfg. It panics if cfg.MaxKeys is negative.
func New(cfg Config) *Limiter {
	if cfg.MaxKeys < 0 {
		panic(fmt.Sprintf("ratelimit: config: MaxKeys: found %d, want zero or positive", cfg.MaxKeys))
	}
	maxKeys := cfg.MaxKeys
	if maxKeys == 0 {
		maxKeys = DefaultMaxKeys
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	n := 1
	for n < maxShards && maxKeys/(n*2) >= minPerShard {
		n *= 2
	}
	l := &Limiter{
		now:    now,
		epoch:  now(),
		seed:   maphash.MakeSeed(),
		shards: make([]shard, n),
		mask:   uint64(n - 1),
	}
	for i := range l.shards {
		s := &l.shards[i]
		// The first shards take the remainder, so the bounds add up to
		// maxKeys exactly.
		s.max = maxKeys / n
		if i < maxKeys%n {
			s.max++
		}
		s.buckets = make(map[string]*bucket)
		s.head.next, s.head.prev = &s.head, &s.head
	}
	return l
}

// Allow takes one request token from key's request bucket and n tokens
// from its byte bucket, both or neither. n below zero counts as zero.
//
// If the byte Limit is bounded and n exceeds its burst, Allow returns
// TooLarge and takes nothing. If either bucket is short, it returns the
// time until both would suffice and takes nothing. A call whose two
// Limits are both unlimited is admitted without tracking key.
func (l *Limiter) Allow(key string, req, bytes Limit, n int64) Result {
	reqFree, byteFree := req.unlimited(), bytes.unlimited()
	if reqFree && byteFree {
		return Result{OK: true}
	}
	cost := float64(max(n, 0))
	var reqCap, byteCap float64
	if !reqFree {
		reqCap = req.capacity()
	}
	if !byteFree {
		byteCap = bytes.capacity()
		if cost > byteCap {
			return Result{TooLarge: true}
		}
	}
	now := int64(l.now().Sub(l.epoch))

	s := &l.shards[maphash.String(l.seed, key)&l.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.get(key, now)
	b.refill(now, req, reqCap, bytes, byteCap)

	var wait float64 // seconds
	if !reqFree && short(b.reqTokens, 1) {
		wait = (1 - b.reqTokens) / req.PerSecond
	}
	if !byteFree && short(b.byteTokens, cost) {
		wait = max(wait, (cost-b.byteTokens)/bytes.PerSecond)
	}
	if wait > 0 {
		b.setFullAt(req, reqCap, bytes, byteCap)
		return Result{RetryAfter: ceilDuration(wait)}
	}
	if !reqFree {
		b.reqTokens--
	}
	if !byteFree {
		b.byteTokens -= cost
	}
	b.setFullAt(req, reqCap, bytes, byteCap)
	return Result{OK: true}
}

// Len returns the number of tenants currently tracked.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}

// get returns key's bucket, marked most recently used, creating it (full)
// if needed and dropping another if the shard is at its bound. s.mu must
// be held.
func (s *shard) get(key string, now int64) *bucket {
	if b, ok := s.buckets[key]; ok {
		s.unlink(b)
		s.pushFront(b)
		return b
	}
	var b *bucket
	if len(s.buckets) >= s.max {
		// Reuse the dropped bucket's memory for the new tenant.
		b = s.victim(now)
		s.unlink(b)
		delete(s.buckets, b.key)
		*b = bucket{}
	} else {
		b = new(bucket)
	}
	b.key = key
	b.last = now
	// Infinite tokens are capped to the call's burst by refill, so a new
	// bucket starts full whatever the limits.
	b.reqTokens, b.byteTokens = math.Inf(1), math.Inf(1)
	s.buckets[key] = b
	s.pushFront(b)
	return b
}

// victim picks the bucket to drop: the least recently used idle bucket
// among the evictScan least recently used, or else the least recently used
// one. s.mu must be held and the shard must not be empty.
func (s *shard) victim(now int64) *bucket {
	b := s.head.prev
	for i := 0; i < evictScan && b != &s.head; i, b = i+1, b.prev {
		if b.fullAt <= now {
			return b
		}
	}
	return s.head.prev
}

func (s *shard) unlink(b *bucket) {
	b.prev.next = b.next
	b.next.prev = b.prev
	b.prev, b.next = nil, nil
}

func (s *shard) pushFront(b *bucket) {
	b.prev = &s.head
	b.next = s.head.next
	s.head.next.prev = b
	s.head.next = b
}

// refill adds the tokens earned since b.last at the given limits and caps
// them at the given capacities. A clock reading older than b.last (from a
// caller that read the clock before another took the lock) earns nothing
// and does not move b.last back.
func (b *bucket) refill(now int64, req Limit, reqCap float64, bytes Limit, byteCap float64) {
	var secs float64
	if now > b.last {
		secs = float64(now-b.last) / 1e9
		b.last = now
	}
	if reqCap > 0 {
		b.reqTokens = min(b.reqTokens+secs*req.PerSecond, reqCap)
	}
	if byteCap > 0 {
		b.byteTokens = min(b.byteTokens+secs*bytes.PerSecond, byteCap)
	}
}

// setFullAt records when both buckets will be full at the given limits.
func (b *bucket) setFullAt(req Limit, reqCap float64, bytes Limit, byteCap float64) {
	var secs float64
	if reqCap > 0 {
		secs = (reqCap - b.reqTokens) / req.PerSecond
	}
	if byteCap > 0 {
		secs = max(secs, (byteCap-b.byteTokens)/bytes.PerSecond)
	}
	b.fullAt = b.last + int64(ceilDuration(secs))
}

// slack is the relative shortfall that still counts as enough tokens. It
// absorbs floating-point rounding in refill, so that a caller that waits
// exactly the RetryAfter it was given is admitted; it is far below one
// token for any amount a bucket can hold.
const slack = 1e-9

// short reports whether tokens fall short of need, beyond rounding.
func short(tokens, need float64) bool {
	return tokens+slack*max(need, 1) < need
}

// ceilDuration converts seconds to a Duration, rounding up to the next
// nanosecond and saturating at the largest Duration. A value within
// rounding noise of a whole nanosecond is taken as that nanosecond, so
// that a wait of 1ms does not come out as 1.000001ms; the shortfall that
// can cause is a far smaller fraction of the tokens than slack.
func ceilDuration(secs float64) time.Duration {
	ns := secs * 1e9
	if r := math.Round(ns); math.Abs(ns-r) <= 1e-10*max(r, 1) {
		ns = r
	} else {
		ns = math.Ceil(ns)
	}
	if !(ns < math.MaxInt64) {
		return math.MaxInt64
	}
	return time.Duration(ns)
}
