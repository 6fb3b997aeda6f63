// Package leakcheck counts what the running process holds, its goroutines
// and its open file descriptors, and waits for the counts to settle back
// to an earlier reading. Tests use it to show that a request, served or
// refused, leaves nothing behind once its connection is closed. It reads
// /proc/self/fd, so it works on Linux only.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// Resources are the counts of one reading.
type Resources struct {
	Goroutines int
	FDs        int
}

func (r Resources) String() string {
	return fmt.Sprintf("%d goroutines, %d file descriptors", r.Goroutines, r.FDs)
}

// Count reads the process's counts now.
func Count() (Resources, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return Resources{}, fmt.Errorf("counting file descriptors: %w", err)
	}
	// ReadDir's own descriptor is open while it reads.
	return Resources{Goroutines: runtime.NumGoroutine(), FDs: len(fds) - 1}, nil
}

// pollEvery is how often Settle reads the counts.
const pollEvery = 20 * time.Millisecond

// Settle reads the counts until two readings in a row agree and, when
// base is not nil, are no higher than base's, and returns the last
// reading. When timeout passes first, its error gives both readings and
// the stacks of every goroutine.
func Settle(timeout time.Duration, base *Resources) (Resources, error) {
	deadline := time.Now().Add(timeout)
	prev, err := Count()
	if err != nil {
		return prev, err
	}
	for {
		time.Sleep(pollEvery)
		r, err := Count()
		if err != nil {
			return r, err
		}
		if r == prev && (base == nil || (r.Goroutines <= base.Goroutines && r.FDs <= base.FDs)) {
			return r, nil
		}
		if time.Now().After(deadline) {
			if base == nil {
				return r, fmt.Errorf("counts not settling within %v: %v, then %v", timeout, prev, r)
			}
			buf := make([]byte, 1<<20)
			return r, fmt.Errorf("left behind after %v: %v, before: %v; goroutines:\n%s", timeout, r, *base, buf[:runtime.Stack(buf, true)])
		}
		prev = r
	}
}
