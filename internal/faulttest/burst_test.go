package faulttest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/internal/netproc"
)

// TestBurstOfLongStreams sends a burst of 1,000 concurrent sealed
// requests, each answered by a stream of about two seconds, through a
// gateway process to six worker processes of three providers. Every
// request must end with the whole answer or a typed error. Afterwards the
// gateway process must come back to where it was before the burst: its
// goroutines (go_goroutines) and its heap in use
// (go_memstats_heap_inuse_bytes), both read from its /metrics, must
// return to their baseline within a slack, and no request may still be
// counted outstanding. That is the leak check: a goroutine, a connection
// or a buffer kept per request would hold them up by about a thousand.
//
// The gateway runs with GOGC=25 so that the garbage of the burst is
// collected while the test polls (each poll makes it allocate a few
// scrapes of /metrics), instead of at the runtime's two-minute forced
// collection; the slack is what is left of it.
func TestBurstOfLongStreams(t *testing.T) {
	t.Parallel()
	const (
		burst    = 1000
		capacity = 250 // per worker; six of them take the whole burst at once
	)
	dir := t.TempDir()
	model := startSlowModel(t, 10, 200*time.Millisecond)
	want := model.reply()
	g := startGateway(t, "gateway", dir, "127.0.0.1:0", []string{"GOGC=25"}, "-max-in-flight", fmt.Sprint(burst+100))
	var workers []string
	for _, pid := range []string{"provider-a", "provider-b", "provider-c"} {
		p := newProvider(t, g, g, dir, pid)
		for i := 1; i <= 2; i++ {
			id := fmt.Sprintf("worker-%s%d", strings.TrimPrefix(pid, "provider-"), i)
			startWorker(t, g, p, id, modelWorkerArgs(model, capacity)...)
			workers = append(workers, id)
		}
	}
	tenant := newTenant(t, g, dir, "tenant")
	g.waitActive(t, workers...)
	c, tr := newBurstClient(t, g, tenant)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	// Warm up: the gateway's connections to every worker, and the
	// client's verdicts.
	warmUp := func() {
		var warm sync.WaitGroup
		for range 2 * len(workers) {
			warm.Go(func() {
				if res, err := c.Summarize(ctx, document, client.SummarizeOptions{Sentences: 2}); err != nil || res.Text != want {
					t.Errorf("warm-up request: %v, %v", res, err)
				}
			})
		}
		warm.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	warmUp()
	// The baseline has no connection from the client, as the end will
	// not; then the client connects again, so that the burst shares a
	// connection instead of opening a thousand.
	tr.CloseIdleConnections()
	base := g.settled(t, "baseline", func(runtimeStats) error { return nil })
	t.Logf("baseline: %v", base)
	warmUp()

	// The burst, with the gateway's figures sampled while it runs.
	var peak runtimeStats
	var peakMu sync.Mutex // guards peak
	sampling, stopSampling := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampling)
		for ctx.Err() == nil {
			if s, err := g.runtimeStats(); err == nil {
				peakMu.Lock()
				peak.goroutines, peak.heapInuse = max(peak.goroutines, s.goroutines), max(peak.heapInuse, s.heapInuse)
				peakMu.Unlock()
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, burst)
	for range burst {
		wg.Go(func() {
			<-start
			rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			res, err := c.Summarize(rctx, document, client.SummarizeOptions{Sentences: 2})
			switch {
			case err != nil:
				failed.Add(1)
				if terr := typedError(err); terr != nil {
					errs <- terr
				} else {
					errs <- nil
				}
			case res.Text != want:
				errs <- fmt.Errorf("answer of %d bytes from %s, want the whole answer of %d", len(res.Text), res.Worker.ID, len(want))
			default:
				ok.Add(1)
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	close(errs)
	took := time.Since(began)
	close(stopSampling)
	<-sampling
	untyped := 0
	for err := range errs {
		if err != nil {
			if untyped < 5 {
				t.Errorf("burst: %v", err)
			}
			untyped++
		}
	}
	t.Logf("burst of %d in %v: %d whole answers, %d typed errors, %d wrong; gateway peak: %v",
		burst, took.Round(time.Millisecond), ok.Load(), failed.Load()-int64(untyped), untyped, peak)
	if ok.Load() == 0 {
		t.Fatal("burst: no request succeeded")
	}

	// Back to the baseline.
	tr.CloseIdleConnections()
	const goroutineSlack = 40
	heapSlack := max(base.heapInuse/2, 16<<20)
	after := g.settled(t, "back to the baseline after the burst", func(s runtimeStats) error {
		if s.goroutines > base.goroutines+goroutineSlack {
			return fmt.Errorf("%d goroutines, baseline %d (+%d allowed)", s.goroutines, base.goroutines, goroutineSlack)
		}
		if s.heapInuse > base.heapInuse+heapSlack {
			return fmt.Errorf("heap in use %d MiB, baseline %d MiB (+%d MiB allowed)", s.heapInuse>>20, base.heapInuse>>20, heapSlack>>20)
		}
		if s.outstanding != 0 {
			return fmt.Errorf("%v requests still counted outstanding", s.outstanding)
		}
		return nil
	})
	t.Logf("after the burst: %v", after)
}

// runtimeStats are a gateway process's figures from its /metrics.
type runtimeStats struct {
	goroutines  int
	heapInuse   int64 // bytes
	outstanding float64
}

func (s runtimeStats) String() string {
	return fmt.Sprintf("%d goroutines, heap in use %.1f MiB", s.goroutines, float64(s.heapInuse)/(1<<20))
}

func (g *gatewayProc) runtimeStats() (runtimeStats, error) {
	var body []byte
	if err := g.get("/metrics", &body); err != nil {
		return runtimeStats{}, err
	}
	var s runtimeStats
	for _, m := range []struct {
		name string
		set  func(float64)
	}{
		{"go_goroutines", func(v float64) { s.goroutines = int(v) }},
		{"go_memstats_heap_inuse_bytes", func(v float64) { s.heapInuse = int64(v) }},
		{"sealgate_gateway_worker_outstanding", func(v float64) { s.outstanding = v }},
	} {
		v, err := netproc.SumMetric(string(body), m.name)
		if err != nil {
			return s, err
		}
		m.set(v)
	}
	return s, nil
}

// settled polls the gateway's runtime figures until ok accepts them and
// two readings in a row agree on the goroutine count, and returns the
// last reading.
func (g *gatewayProc) settled(t *testing.T, what string, ok func(runtimeStats) error) runtimeStats {
	t.Helper()
	var last runtimeStats
	seen := false
	eventually(t, stateTimeout, what, func() error {
		// Scrapes allocate in the gateway, which brings its next
		// collection closer; only the last one is read.
		for range 4 {
			g.get("/metrics", nil)
		}
		s, err := g.runtimeStats()
		if err != nil {
			return err
		}
		prev := last
		last = s
		if err := ok(s); err != nil {
			return err
		}
		if !seen || s.goroutines != prev.goroutines {
			seen = true
			return fmt.Errorf("%d goroutines, %d before", s.goroutines, prev.goroutines)
		}
		return nil
	})
	return last
}

// newBurstClient is newClient with a transport of its own, returned so
// that the test can close its idle connections.
func newBurstClient(t *testing.T, g *gatewayProc, credFile string) (*client.Client, *http.Transport) {
	t.Helper()
	cred, err := os.ReadFile(credFile)
	if err != nil {
		t.Fatal(err)
	}
	tr := g.http.Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	c, err := client.New(client.Config{
		GatewayURL: g.url,
		Credential: strings.TrimSpace(string(cred)),
		Policy:     policy.InsecureSimulated(),
		K:          2,
		HTTPClient: &http.Client{Transport: tr},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, tr
}
