package breaker_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway/breaker"
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

// op is one step of a script run against a Breaker.
type op struct {
	do    string        // "allow", "deny", "ok", "fail", "wait"
	d     time.Duration // for "wait"
	state breaker.State // state after the step
}

var (
	allow = func(s breaker.State) op { return op{do: "allow", state: s} }
	deny  = func(s breaker.State) op { return op{do: "deny", state: s} }
	ok    = func(s breaker.State) op { return op{do: "ok", state: s} }
	fail  = func(s breaker.State) op { return op{do: "fail", state: s} }
	wait  = func(d time.Duration, s breaker.State) op { return op{do: "wait", d: d, state: s} }
)

const (
	closed   = breaker.Closed
	open     = breaker.Open
	halfOpen = breaker.HalfOpen
)

// failN is n admitted calls that fail, ending in state s.
func failN(n int, s breaker.State) []op {
	var ops []op
	for range n - 1 {
		ops = append(ops, allow(closed), fail(closed))
	}
	return append(ops, allow(closed), fail(s))
}

func script(parts ...any) []op {
	var ops []op
	for _, p := range parts {
		switch p := p.(type) {
		case op:
			ops = append(ops, p)
		case []op:
			ops = append(ops, p...)
		}
	}
	return ops
}

func TestTransitions(t *testing.T) {
	cfg := breaker.Config{Failures: 3, OpenFor: 10 * time.Second, MaxOpenFor: 35 * time.Second}
	tests := []struct {
		name string
		cfg  breaker.Config
		ops  []op
	}{
		{"closed admits", cfg, script(
			allow(closed), ok(closed), allow(closed), allow(closed),
		)},
		{"closed stays closed below the threshold", cfg, script(
			failN(2, closed), allow(closed),
		)},
		{"a success resets the count", cfg, script(
			failN(2, closed), allow(closed), ok(closed), failN(2, closed), allow(closed),
		)},
		{"consecutive failures open", cfg, script(
			failN(3, open), deny(open),
		)},
		{"open refuses until the interval has passed", cfg, script(
			failN(3, open),
			wait(10*time.Second-1, open), deny(open),
			wait(1, open), allow(halfOpen),
		)},
		{"half-open admits one probe", cfg, script(
			failN(3, open), wait(10*time.Second, open),
			allow(halfOpen), deny(halfOpen), deny(halfOpen),
		)},
		{"probe success closes", cfg, script(
			failN(3, open), wait(10*time.Second, open), allow(halfOpen), ok(closed),
			allow(closed), allow(closed),
		)},
		{"probe failure reopens for twice as long", cfg, script(
			failN(3, open), wait(10*time.Second, open), allow(halfOpen), fail(open),
			wait(20*time.Second-1, open), deny(open),
			wait(1, open), allow(halfOpen),
		)},
		{"doubling stops at MaxOpenFor", cfg, script(
			failN(3, open),
			wait(10*time.Second, open), allow(halfOpen), fail(open),
			wait(20*time.Second, open), allow(halfOpen), fail(open),
			// 40s would exceed the 35s ceiling.
			wait(35*time.Second-1, open), deny(open),
			wait(1, open), allow(halfOpen), fail(open),
			wait(35*time.Second, open), allow(halfOpen),
		)},
		{"probe success resets the interval", cfg, script(
			failN(3, open),
			wait(10*time.Second, open), allow(halfOpen), fail(open),
			wait(20*time.Second, open), allow(halfOpen), ok(closed),
			failN(3, open),
			wait(10*time.Second, open), allow(halfOpen),
		)},
		{"after closing it takes the full count again", cfg, script(
			failN(3, open), wait(10*time.Second, open), allow(halfOpen), ok(closed),
			failN(2, closed), allow(closed),
		)},
		{"reports while open are ignored", cfg, script(
			failN(3, open),
			ok(open), fail(open),
			// The late failure did not restart the interval.
			wait(10*time.Second, open), allow(halfOpen),
		)},
		{"a lost probe is replaced after an interval", cfg, script(
			failN(3, open), wait(10*time.Second, open), allow(halfOpen),
			wait(10*time.Second-1, halfOpen), deny(halfOpen),
			wait(1, halfOpen), allow(halfOpen), deny(halfOpen),
			ok(closed),
		)},
		{"the first report in half-open decides", cfg, script(
			failN(3, open), wait(10*time.Second, open), allow(halfOpen),
			fail(open), ok(open), deny(open),
		)},
		{"a threshold of one", breaker.Config{Failures: 1}, script(
			allow(closed), fail(open), deny(open),
		)},
		{"defaults", breaker.Config{}, script(
			failN(breaker.DefaultFailures, open),
			wait(breaker.DefaultOpenFor-1, open), deny(open),
			wait(1, open), allow(halfOpen), fail(open),
			wait(2*breaker.DefaultOpenFor-1, open), deny(open),
			wait(1, open), allow(halfOpen), fail(open), // 40s next
			wait(40*time.Second, open), allow(halfOpen), fail(open), // 80s next
			wait(80*time.Second, open), allow(halfOpen), fail(open), // 160s, capped at 2m
			wait(breaker.DefaultMaxOpenFor-1, open), deny(open),
			wait(1, open), allow(halfOpen),
		)},
		{"zero MaxOpenFor below a long OpenFor is OpenFor", breaker.Config{Failures: 1, OpenFor: 5 * time.Minute}, script(
			allow(closed), fail(open),
			wait(5*time.Minute, open), allow(halfOpen), fail(open),
			wait(5*time.Minute-1, open), deny(open),
			wait(1, open), allow(halfOpen),
		)},
		{"a huge MaxOpenFor does not overflow", breaker.Config{Failures: 1, OpenFor: 1 << 61, MaxOpenFor: 1<<63 - 1}, script(
			allow(closed), fail(open),
			wait(1<<61, open), allow(halfOpen), fail(open),
			wait(1<<62, open), allow(halfOpen), fail(open),
			wait(1<<62, open), deny(open),
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			cfg := tt.cfg
			cfg.Now = c.Now
			b := breaker.New(cfg)
			if got := b.State(); got != closed {
				t.Fatalf("new breaker is %v, want closed", got)
			}
			for i, o := range tt.ops {
				switch o.do {
				case "allow", "deny":
					if got, want := b.Allow(), o.do == "allow"; got != want {
						t.Fatalf("step %d: Allow() = %v, want %v (state %v)", i, got, want, b.State())
					}
				case "ok":
					b.Success()
				case "fail":
					b.Failure()
				case "wait":
					c.Advance(o.d)
				}
				if got := b.State(); got != o.state {
					t.Fatalf("step %d (%s): state %v, want %v", i, o.do, got, o.state)
				}
			}
		})
	}
}

func TestHalfOpenAdmitsExactlyOneConcurrently(t *testing.T) {
	for range 50 {
		c := newClock()
		b := breaker.New(breaker.Config{Failures: 1, Now: c.Now})
		b.Allow()
		b.Failure()
		c.Advance(breaker.DefaultOpenFor)

		var admitted atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				<-start
				if b.Allow() {
					admitted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := admitted.Load(); got != 1 {
			t.Fatalf("%d calls admitted in half-open, want exactly 1", got)
		}
		if got := b.State(); got != halfOpen {
			t.Fatalf("state %v, want half-open", got)
		}
	}
}

// TestConcurrentUse runs every method at once under the race detector and
// checks the breaker ends in a state its reports can explain.
func TestConcurrentUse(t *testing.T) {
	c := newClock()
	b := breaker.New(breaker.Config{Failures: 2, OpenFor: time.Millisecond, Now: c.Now})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				if g == 0 && i%10 == 0 {
					c.Advance(time.Millisecond)
				}
				if !b.Allow() {
					continue
				}
				if (g+i)%3 == 0 {
					b.Failure()
				} else {
					b.Success()
				}
				_ = b.State().String()
			}
		})
	}
	wg.Wait()
	// Drive it to a known end: a probe that succeeds closes it.
	c.Advance(time.Hour)
	b.Allow()
	b.Success()
	if got := b.State(); got != closed {
		t.Errorf("state %v after a successful probe, want closed", got)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[breaker.State]string{
		breaker.Closed: "closed", breaker.Open: "open", breaker.HalfOpen: "half-open", 7: "State(7)",
	} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int32(s), got, want)
		}
	}
}

func TestNewPanics(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  breaker.Config
	}{
		{"negative Failures", breaker.Config{Failures: -1}},
		{"negative OpenFor", breaker.Config{OpenFor: -time.Second}},
		{"negative MaxOpenFor", breaker.Config{MaxOpenFor: -time.Second}},
		{"MaxOpenFor below OpenFor", breaker.Config{OpenFor: time.Minute, MaxOpenFor: time.Second}},
		{"MaxOpenFor below the default OpenFor", breaker.Config{MaxOpenFor: time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("New did not panic")
				}
			}()
			breaker.New(tt.cfg)
		})
	}
}

func TestNilNowIsTimeNow(t *testing.T) {
	b := breaker.New(breaker.Config{Failures: 1, OpenFor: time.Hour})
	b.Allow()
	b.Failure()
	if b.Allow() {
		t.Error("Allow() = true right after opening for an hour on the real clock")
	}
}

func TestClosedPathDoesNotAllocate(t *testing.T) {
	b := breaker.New(breaker.Config{})
	if n := testing.AllocsPerRun(1000, func() {
		if b.Allow() {
			b.Success()
		}
	}); n != 0 {
		t.Errorf("Allow and Success on a closed breaker: %v allocations, want 0", n)
	}
}

func BenchmarkClosed(b *testing.B) {
	br := breaker.New(breaker.Config{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if br.Allow() {
				br.Success()
			}
		}
	})
}

func BenchmarkOpen(b *testing.B) {
	br := breaker.New(breaker.Config{Failures: 1, OpenFor: time.Hour})
	br.Allow()
	br.Failure()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			br.Allow()
		}
	})
}
