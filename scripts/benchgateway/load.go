package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// target is one path to the worker.
type target struct {
	name        string
	url         string
	contentType string
	cred        string // tenant credential, for the gateway
	client      *http.Client
	key         *seal.PublicKey
	body        func(msg []byte) ([]byte, error) // the sealed message as this path sends it
	nginx       *nginx                           // its CPU time counts too

	respLen int64 // bytes of the sealed echo response check read

	rates []rate            // one per throughput run
	lat   [][]time.Duration // one per round
	// estimate is the best rate seen so far, to size the next stock of
	// sealed requests.
	estimate float64
	spare    [][]byte // sealed requests a run left unsent
}

// rate is one throughput run's result.
type rate struct {
	rps       float64
	cpuPerReq float64 // µs of this process's and nginx's CPU per request
	ngxPerReq float64 // µs of nginx's CPU per request
}

// check sends one request, opens the sealed response and checks its
// echo; it records the response's length.
func (t *target) check() error {
	r, err := seal.SealTo(proto.SuiteMLKEM768X25519, []*seal.PublicKey{t.key}, task, payload, seal.Options{})
	if err != nil {
		return err
	}
	body, err := t.body(r.Bytes())
	if err != nil {
		return err
	}
	resp, err := t.client.Do(t.request(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	t.respLen = int64(len(raw))
	sr, err := r.OpenResponse(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("opening the response: %w", err)
	}
	var got []byte
	for {
		ev, err := sr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the response: %w", err)
		}
		if ev.Type == proto.EventData {
			got = append(got, ev.Data...)
		}
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("response: found %d bytes of data, want the %d-byte payload echoed", len(got), len(payload))
	}
	return nil
}

func (t *target) request(body []byte) *http.Request {
	req, err := http.NewRequest(http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", t.contentType)
	if t.cred != "" {
		req.Header.Set(proto.HeaderAuthorization, "Bearer "+t.cred)
	}
	return req
}

// do sends one request and reads its response to the end.
func (t *target) do(body, buf []byte) error {
	resp, err := t.client.Do(t.request(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var n int64
	for {
		m, err := resp.Body.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	// The length varies: under load the worker's flush timer may cut a
	// response into more chunks.
	if n < t.respLen/2 {
		return fmt.Errorf("response of %d bytes, want about %d", n, t.respLen)
	}
	return nil
}

// stock returns n requests never sent, in this path's encoding: those
// an earlier run left unsent, then fresh ones, sealed in parallel.
func (t *target) stock(n int) ([][]byte, error) {
	out := make([][]byte, n)
	reuse := copy(out, t.spare)
	t.spare = t.spare[reuse:]
	if reuse == n {
		return out, nil
	}
	fresh, err := t.seal(n - reuse)
	copy(out[reuse:], fresh)
	return out, err
}

// putBack keeps requests a run did not send for the next one. They stay
// fresh: the worker accepts a request for 5 minutes after it is sealed.
func (t *target) putBack(reqs [][]byte) { t.spare = append(t.spare, reqs...) }

// seal seals n fresh requests, in parallel, in this path's encoding.
func (t *target) seal(n int) ([][]byte, error) {
	out := make([][]byte, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for g := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				msg, err := sealOne(t.key)
				if err == nil {
					out[i], err = t.body(msg)
				}
				if err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// throughputRun warms up, then keeps o.conns requests in flight for
// o.duration (or until its stock of sealed requests runs out), and
// records the rate and the CPU per request.
func (t *target) throughputRun(o options, prof *os.File) error {
	warm, err := t.stock(max(int(t.estimate*o.warmup.Seconds()*1.3), 1000))
	if err != nil {
		return err
	}
	sent, _, err := t.load(warm, o.conns, o.warmup)
	if err != nil {
		return fmt.Errorf("warmup: %w", err)
	}
	t.putBack(warm[sent:])
	est := max(t.estimate, float64(sent)/o.warmup.Seconds())
	reqs, err := t.stock(int(est*o.duration.Seconds()*1.25) + 200)
	if err != nil {
		return err
	}
	warm = nil
	runtime.GC()
	if prof != nil {
		if err := pprof.StartCPUProfile(prof); err != nil {
			return err
		}
	}
	cpu0, ngx0 := processCPU(), t.nginxCPU()
	n, elapsed, err := t.load(reqs, o.conns, o.duration)
	cpu, ngx := processCPU()-cpu0, t.nginxCPU()-ngx0
	if prof != nil {
		pprof.StopCPUProfile()
		if cerr := prof.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return err
	}
	t.putBack(reqs[n:])
	if prof != nil {
		// For scripts/bench-gateway, which divides the profile's CPU time
		// per component by it.
		if err := os.WriteFile(prof.Name()+".requests", fmt.Appendf(nil, "%d\n", n), 0o644); err != nil {
			return err
		}
	}
	r := rate{rps: float64(n) / elapsed.Seconds(), cpuPerReq: micros(cpu+ngx) / float64(n), ngxPerReq: micros(ngx) / float64(n)}
	t.rates = append(t.rates, r)
	t.estimate = max(t.estimate, r.rps)
	return nil
}

// load sends reqs over conns connections until d has passed or reqs are
// spent, and returns how many completed and in what time. Any failed
// request fails the run.
func (t *target) load(reqs [][]byte, conns int, d time.Duration) (int, time.Duration, error) {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	pprof.Do(context.Background(), pprof.Labels("component", "client"), func(context.Context) {
		for range conns {
			wg.Go(func() {
				buf := make([]byte, 32<<10)
				for time.Now().Before(deadline) && failed.Load() == nil {
					i := int(next.Add(1) - 1)
					if i >= len(reqs) {
						return
					}
					if err := t.do(reqs[i], buf); err != nil {
						failed.CompareAndSwap(nil, &err)
						return
					}
				}
			})
		}
	})
	wg.Wait()
	elapsed := time.Since(start)
	if p := failed.Load(); p != nil {
		return 0, 0, *p
	}
	return int(min(next.Load(), int64(len(reqs)))), elapsed, nil
}

// latencyRun sends o.latencyN requests to each target one after the
// other, one connection per target, taking the targets in turn request
// by request, so that a neighbour's load falls on every path alike; it
// records each request's latency. The first 100 of each warm up.
func latencyRun(targets []*target, o options) error {
	const warm = 100
	reqs := make([][][]byte, len(targets))
	for i, t := range targets {
		var err error
		if reqs[i], err = t.stock(o.latencyN + warm); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	lat := make([][]time.Duration, len(targets))
	buf := make([]byte, 32<<10)
	runtime.GC()
	var runErr error
	pprof.Do(context.Background(), pprof.Labels("component", "client"), func(context.Context) {
		for i := range o.latencyN + warm {
			for k := range targets {
				j := (i + k) % len(targets) // each path follows each other in turn
				start := time.Now()
				if err := targets[j].do(reqs[j][i], buf); err != nil {
					runErr = fmt.Errorf("%s: %w", targets[j].name, err)
					return
				}
				if i >= warm {
					lat[j] = append(lat[j], time.Since(start))
				}
			}
		}
	})
	if runErr != nil {
		return runErr
	}
	for i, t := range targets {
		t.lat = append(t.lat, lat[i])
	}
	return nil
}

// median is the median of f over the throughput runs.
func (t *target) median(f func(rate) float64) float64 {
	v := make([]float64, len(t.rates))
	for i, r := range t.rates {
		v[i] = f(r)
	}
	return medianOf(v)
}

func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// pooled is every latency sample of every round.
func (t *target) pooled() []time.Duration { return slices.Concat(t.lat...) }

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(int(p*float64(len(s))), len(s)-1)]
}

// processCPU is this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (t *target) nginxCPU() time.Duration {
	if t.nginx == nil {
		return 0
	}
	return t.nginx.cpu()
}
