package ratelimit_test

import (
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway/ratelimit"
)

// clock is a frozen clock that moves only when told to.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLimiter(t testing.TB, maxKeys int) (*ratelimit.Limiter, *clock) {
	t.Helper()
	c := newClock()
	return ratelimit.New(ratelimit.Config{Now: c.Now, MaxKeys: maxKeys}), c
}

var (
	ok       = ratelimit.Result{OK: true}
	tooLarge = ratelimit.Result{TooLarge: true}
)

func wait(d time.Duration) ratelimit.Result { return ratelimit.Result{RetryAfter: d} }

var unlimited ratelimit.Limit

// step is one call in a scripted sequence against a single key.
type step struct {
	advance time.Duration
	key     string // "" means "t"
	req     ratelimit.Limit
	bytes   ratelimit.Limit
	n       int64
	want    ratelimit.Result
}

func TestAllow(t *testing.T) {
	reqs := ratelimit.Limit{PerSecond: 1, Burst: 3}
	kb := ratelimit.Limit{PerSecond: 100, Burst: 1000}
	oneReq := ratelimit.Limit{PerSecond: 1, Burst: 1}
	tests := []struct {
		name  string
		steps []step
	}{
		{"zero limits are unlimited", []step{
			{n: 1 << 40, want: ok},
			{n: 1 << 40, want: ok},
			{n: -1, want: ok},
		}},
		{"request burst then exact wait", []step{
			{req: reqs, want: ok},
			{req: reqs, want: ok},
			{req: reqs, want: ok},
			{req: reqs, want: wait(time.Second)},
			{advance: 999 * time.Millisecond, req: reqs, want: wait(time.Millisecond)},
			{advance: time.Millisecond, req: reqs, want: ok},
			{req: reqs, want: wait(time.Second)},
		}},
		{"refill is capped at burst", []step{
			{req: reqs, want: ok},
			{advance: time.Hour, req: reqs, want: ok},
			{req: reqs, want: ok},
			{req: reqs, want: ok},
			{req: reqs, want: wait(time.Second)},
		}},
		{"byte bucket", []step{
			{bytes: kb, n: 600, want: ok},
			{bytes: kb, n: 600, want: wait(2 * time.Second)},
			{advance: 2 * time.Second, bytes: kb, n: 600, want: ok},
			{bytes: kb, n: 0, want: ok},
			{bytes: kb, n: 1, want: wait(10 * time.Millisecond)},
		}},
		{"bytes refused takes no request token", []step{
			{req: oneReq, bytes: kb, n: 1000, want: ok},
			{advance: time.Second, req: oneReq, bytes: kb, n: 500, want: wait(4 * time.Second)},
			// The request token is still there.
			{req: oneReq, bytes: kb, n: 0, want: ok},
		}},
		{"request refused takes no bytes", []step{
			{req: oneReq, bytes: kb, n: 1000, want: ok},
			{advance: 500 * time.Millisecond, req: oneReq, bytes: kb, n: 50, want: wait(500 * time.Millisecond)},
			// 50 bytes had accrued and are still there, plus 50 more.
			{advance: 500 * time.Millisecond, req: oneReq, bytes: kb, n: 100, want: ok},
		}},
		{"retry is the longer of the two waits", []step{
			{req: oneReq, bytes: kb, n: 1000, want: ok},
			{req: oneReq, bytes: kb, n: 50, want: wait(time.Second)},
			{req: oneReq, bytes: kb, n: 300, want: wait(3 * time.Second)},
		}},
		{"larger than the byte burst", []step{
			{req: oneReq, bytes: kb, n: 1001, want: tooLarge},
			// Nothing was taken: the whole burst is still there.
			{req: oneReq, bytes: kb, n: 1000, want: ok},
			// Too large wins over short of tokens.
			{req: oneReq, bytes: kb, n: 5000, want: tooLarge},
		}},
		{"no byte limit, no size limit", []step{
			{req: oneReq, n: 1 << 50, want: ok},
		}},
		{"negative n counts as zero", []step{
			{bytes: kb, n: -5, want: ok},
			{bytes: kb, n: 1000, want: ok},
		}},
		{"zero burst is one second's worth", []step{
			{req: ratelimit.Limit{PerSecond: 2}, want: ok},
			{req: ratelimit.Limit{PerSecond: 2}, want: ok},
			{req: ratelimit.Limit{PerSecond: 2}, want: wait(500 * time.Millisecond)},
		}},
		{"burst below one token is one", []step{
			{req: ratelimit.Limit{PerSecond: 0.5, Burst: 0.1}, want: ok},
			{req: ratelimit.Limit{PerSecond: 0.5, Burst: 0.1}, want: wait(2 * time.Second)},
		}},
		{"infinite rate is unlimited", []step{
			{req: ratelimit.Limit{PerSecond: inf(), Burst: 1}, bytes: ratelimit.Limit{PerSecond: inf()}, n: 1 << 50, want: ok},
		}},
		{"negative rate is unlimited", []step{
			{req: ratelimit.Limit{PerSecond: -1}, want: ok},
			{req: ratelimit.Limit{PerSecond: -1}, want: ok},
		}},
		{"infinite burst is one second's worth", []step{
			{bytes: ratelimit.Limit{PerSecond: 10, Burst: inf()}, n: 11, want: tooLarge},
			{bytes: ratelimit.Limit{PerSecond: 10, Burst: inf()}, n: 10, want: ok},
		}},
		{"a lower burst caps saved tokens", []step{
			{bytes: kb, n: 0, want: ok},
			{bytes: ratelimit.Limit{PerSecond: 100, Burst: 10}, n: 10, want: ok},
			{bytes: kb, n: 1, want: wait(10 * time.Millisecond)},
		}},
		{"a new rate applies to time since the last call", []step{
			{bytes: kb, n: 1000, want: ok},
			{advance: time.Second, bytes: ratelimit.Limit{PerSecond: 1000, Burst: 1000}, n: 1000, want: ok},
		}},
		{"keys are separate", []step{
			{key: "a", req: oneReq, want: ok},
			{key: "a", req: oneReq, want: wait(time.Second)},
			{key: "b", req: oneReq, want: ok},
		}},
		{"a clock that goes back earns nothing", []step{
			{req: oneReq, want: ok},
			{advance: -time.Hour, req: oneReq, want: wait(time.Second)},
			{advance: time.Hour, req: oneReq, want: wait(time.Second)},
			{advance: time.Second, req: oneReq, want: ok},
		}},
		{"fractional rates wait to the nanosecond", []step{
			{req: ratelimit.Limit{PerSecond: 3, Burst: 1}, want: ok},
			{req: ratelimit.Limit{PerSecond: 3, Burst: 1}, want: wait(333333334)},
			{advance: 333333000, req: ratelimit.Limit{PerSecond: 3, Burst: 1}, want: wait(334)},
			{advance: 334, req: ratelimit.Limit{PerSecond: 3, Burst: 1}, want: ok},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, c := newLimiter(t, 0)
			for i, s := range tt.steps {
				c.Advance(s.advance)
				key := s.key
				if key == "" {
					key = "t"
				}
				if got := l.Allow(key, s.req, s.bytes, s.n); got != s.want {
					t.Fatalf("step %d: Allow(%q, %+v, %+v, %d) = %+v, want %+v", i, key, s.req, s.bytes, s.n, got, s.want)
				}
			}
		})
	}
}

func inf() float64 { return math.Inf(1) }

// TestRetryAfterSuffices drives random limits and sizes and checks that a
// caller who waits exactly the RetryAfter it was given is then admitted,
// whatever rounding the rates cause.
func TestRetryAfterSuffices(t *testing.T) {
	l, c := newLimiter(t, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20_000 {
		key := strconv.Itoa(i % 37)
		req := ratelimit.Limit{PerSecond: rng.Float64()*50 + 0.01, Burst: rng.Float64() * 5}
		bytes := ratelimit.Limit{PerSecond: rng.Float64()*1e9 + 1, Burst: rng.Float64()*1e9 + 1}
		n := rng.Int64N(int64(bytes.Burst) + 1)
		c.Advance(time.Duration(rng.Int64N(int64(10 * time.Millisecond))))
		r := l.Allow(key, req, bytes, n)
		switch {
		case r.TooLarge:
			t.Fatalf("iteration %d: n=%d within burst %v refused as too large", i, n, bytes.Burst)
		case r.OK:
			continue
		case r.RetryAfter <= 0:
			t.Fatalf("iteration %d: refused with RetryAfter %v", i, r.RetryAfter)
		}
		c.Advance(r.RetryAfter)
		if r2 := l.Allow(key, req, bytes, n); !r2.OK {
			t.Fatalf("iteration %d: after waiting %v: Allow = %+v, want OK", i, r.RetryAfter, r2)
		}
	}
}

// TestConcurrentAllowTakesBurstExactly checks that concurrent calls on one
// key take tokens atomically: with time frozen, exactly the burst is
// admitted.
func TestConcurrentAllowTakesBurstExactly(t *testing.T) {
	l, _ := newLimiter(t, 0)
	req := ratelimit.Limit{PerSecond: 1, Burst: 1000}
	bytes := ratelimit.Limit{PerSecond: 1, Burst: 50_000}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 200 {
				// 100 bytes each: the byte bucket admits 500 calls,
				// fewer than the request bucket.
				if l.Allow("tenant", req, bytes, 100).OK {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 500 {
		t.Errorf("admitted %d calls, want exactly 500", got)
	}
}

func TestMaxKeysBoundsTracking(t *testing.T) {
	for _, maxKeys := range []int{1, 3, 1000, 5000} {
		t.Run(strconv.Itoa(maxKeys), func(t *testing.T) {
			l, _ := newLimiter(t, maxKeys)
			req := ratelimit.Limit{PerSecond: 1, Burst: 1}
			for i := range 3 * maxKeys {
				if r := l.Allow(strconv.Itoa(i), req, unlimited, 0); !r.OK {
					t.Fatalf("new key %d: Allow = %+v, want OK", i, r)
				}
				if i < maxKeys && l.Len() != i+1 && maxKeys <= 1000 {
					t.Fatalf("after %d keys: Len = %d, want %d", i+1, l.Len(), i+1)
				}
			}
			if got := l.Len(); got != maxKeys {
				t.Errorf("Len = %d, want %d", got, maxKeys)
			}
		})
	}
}

func TestDefaultMaxKeys(t *testing.T) {
	l, _ := newLimiter(t, 0)
	req := ratelimit.Limit{PerSecond: 1, Burst: 1}
	for i := range 2 * ratelimit.DefaultMaxKeys {
		l.Allow(strconv.Itoa(i), req, unlimited, 0)
	}
	if got := l.Len(); got != ratelimit.DefaultMaxKeys {
		t.Errorf("Len = %d, want %d", got, ratelimit.DefaultMaxKeys)
	}
}

func TestUnlimitedCallsAreNotTracked(t *testing.T) {
	l, _ := newLimiter(t, 0)
	l.Allow("a", unlimited, unlimited, 10)
	if got := l.Len(); got != 0 {
		t.Errorf("Len = %d after an unlimited call, want 0", got)
	}
}

func TestEvictionPrefersIdleBuckets(t *testing.T) {
	l, c := newLimiter(t, 3)
	slow := ratelimit.Limit{PerSecond: 1.0 / 3600, Burst: 1}
	fast := ratelimit.Limit{PerSecond: 1, Burst: 1}
	// a is least recently used but still owes tokens for an hour; b and
	// c are refilled within a second.
	if !l.Allow("a", slow, unlimited, 0).OK || !l.Allow("b", fast, unlimited, 0).OK || !l.Allow("c", fast, unlimited, 0).OK {
		t.Fatal("first calls refused")
	}
	c.Advance(time.Second)
	if !l.Allow("d", fast, unlimited, 0).OK {
		t.Fatal("d refused")
	}
	// b, not a, was dropped: a still waits.
	if r := l.Allow("a", slow, unlimited, 0); r.OK {
		t.Errorf("a admitted after another key arrived: its bucket was dropped instead of an idle one")
	}
	if got := l.Len(); got != 3 {
		t.Errorf("Len = %d, want 3", got)
	}
}

func TestEvictionWithoutIdleBucketsDropsLeastRecentlyUsed(t *testing.T) {
	l, _ := newLimiter(t, 3)
	slow := ratelimit.Limit{PerSecond: 1.0 / 3600, Burst: 1}
	for _, k := range []string{"a", "b", "c"} {
		if !l.Allow(k, slow, unlimited, 0).OK {
			t.Fatalf("%s refused", k)
		}
	}
	// Touch a so that b is the least recently used.
	l.Allow("a", slow, unlimited, 0)
	if !l.Allow("d", slow, unlimited, 0).OK {
		t.Fatal("d refused")
	}
	// b was dropped and starts afresh (the bound wins over its debt); a
	// and c are still owed.
	if !l.Allow("b", slow, unlimited, 0).OK {
		t.Error("b refused: it should have been dropped as least recently used")
	}
	if l.Allow("a", slow, unlimited, 0).OK {
		t.Error("a admitted: its bucket was dropped")
	}
}

func TestNewPanicsOnNegativeMaxKeys(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New did not panic")
		}
	}()
	ratelimit.New(ratelimit.Config{MaxKeys: -1})
}

func TestNilNowIsTimeNow(t *testing.T) {
	l := ratelimit.New(ratelimit.Config{})
	req := ratelimit.Limit{PerSecond: 1e-3, Burst: 1}
	if !l.Allow("a", req, unlimited, 0).OK {
		t.Fatal("first call refused")
	}
	r := l.Allow("a", req, unlimited, 0)
	// Some real time passed between the calls, but far less than a
	// second out of the thousand the token takes.
	if r.OK || r.RetryAfter <= 999*time.Second || r.RetryAfter > 1000*time.Second {
		t.Errorf("second call: %+v, want a wait just under 1000s", r)
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	l, c := newLimiter(t, 0)
	req := ratelimit.Limit{PerSecond: 1e9, Burst: 1e9}
	bytes := ratelimit.Limit{PerSecond: 1e12, Burst: 1e12}
	l.Allow("tenant", req, bytes, 1)
	allocs := testing.AllocsPerRun(1000, func() {
		c.Advance(time.Microsecond)
		l.Allow("tenant", req, bytes, 1000)
	})
	if allocs != 0 {
		t.Errorf("Allow on a tracked key: %v allocations, want 0", allocs)
	}
}

func BenchmarkAllow(b *testing.B) {
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "tenant-" + strconv.Itoa(i)
	}
	l := ratelimit.New(ratelimit.Config{})
	req := ratelimit.Limit{PerSecond: 1e6, Burst: 1e6}
	bytes := ratelimit.Limit{PerSecond: 1e12, Burst: 1e12}
	var seed atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			l.Allow(keys[i%len(keys)], req, bytes, 4096)
			i++
		}
	})
}

// BenchmarkAllowChurn measures the eviction path: 10,000 tenants take
// turns on a Limiter that tracks 1,000, so almost every call drops one.
func BenchmarkAllowChurn(b *testing.B) {
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "tenant-" + strconv.Itoa(i)
	}
	l := ratelimit.New(ratelimit.Config{MaxKeys: 1000})
	req := ratelimit.Limit{PerSecond: 1e6, Burst: 1e6}
	var seed atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			l.Allow(keys[i%len(keys)], req, unlimited, 0)
			i++
		}
	})
}
