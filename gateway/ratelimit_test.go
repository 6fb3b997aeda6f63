package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/proto"
)

func TestRequestRateLimit(t *testing.T) {
	e := newEnv(t)
	slow := e.newTenant("slow", proto.NewAccount{RequestsPerSecond: 1, BurstRequests: 2})
	w := newWorkerDouble(t, "w", e.clock)
	e.register(w, proto.TaskSummarize)

	e.relayOKAs(slow, e.seal(proto.TaskSummarize, "one", w.key()), "one", w)
	e.relayOKAs(slow, e.seal(proto.TaskSummarize, "two", w.key()), "two", w)
	hits := w.hits.Load()
	status, code, ra := e.relayRefused(slow, e.seal(proto.TaskSummarize, "three", w.key()))
	if status != http.StatusTooManyRequests || code != "rate_limited" || ra != "1" {
		t.Fatalf("third request: found %d %s (Retry-After %q), want 429 rate_limited, Retry-After 1", status, code, ra)
	}
	if w.hits.Load() != hits {
		t.Fatal("a rate-limited request reached the worker")
	}
	// Other tenants are not limited by it.
	e.relayOK(e.seal(proto.TaskSummarize, "t1", w.key()), "t1", w)
	// A second later one request's worth has refilled, not two.
	e.clock.Advance(time.Second)
	e.relayOKAs(slow, e.seal(proto.TaskSummarize, "four", w.key()), "four", w)
	if status, _, _ := e.relayRefused(slow, e.seal(proto.TaskSummarize, "five", w.key())); status != http.StatusTooManyRequests {
		t.Fatalf("fifth request: found %d, want 429", status)
	}
	if v, _ := metricValue(e.metrics(), "sealgate_gateway_ratelimited_total"); v != 2 {
		t.Fatalf("ratelimited_total: found %v, want 2", v)
	}
	if v, _ := metricValue(e.metrics(), `sealgate_gateway_requests_total{outcome="rate_limited",task="summarize"}`); v != 2 {
		t.Fatalf("requests_total rate_limited: found %v, want 2", v)
	}
}

func TestByteRateLimit(t *testing.T) {
	const small = 48 << 10
	e := newEnv(t, func(c *gateway.Config) { c.MaxRequestBody = small })
	// A tenant whose byte burst is the largest request this gateway
	// takes now, and which refills slowly.
	tight := e.newTenant("tight", proto.NewAccount{BytesPerSecond: 1 << 10, BurstBytes: small})
	w := newWorkerDouble(t, "w", e.clock)
	e.register(w, proto.TaskSummarize)

	// Requests of about 33 KiB sealed: the first fits the burst, the second
	// must wait for the bytes to refill.
	payload := strings.Repeat("x", 20<<10)
	req := e.seal(proto.TaskSummarize, payload, w.key())
	if n := len(req.Bytes()); n <= small/2 || n > small {
		t.Fatalf("sealed request of %d bytes, want between %d and %d", n, small/2, small)
	}
	e.relayOKAs(tight, req, payload, w)
	status, code, ra := e.relayRefused(tight, e.seal(proto.TaskSummarize, payload, w.key()))
	if status != http.StatusTooManyRequests || code != "rate_limited" || ra == "" || ra == "0" {
		t.Fatalf("second large request: found %d %s (Retry-After %q), want 429 rate_limited with Retry-After", status, code, ra)
	}

	// The operator raises the largest request: the tenant's burst stays,
	// and a request larger than it can never pass, so it is 413, not 429.
	e.cfg.MaxRequestBody = 0
	e.restart()
	// (The buckets live in memory: the restarted gateway starts them full.)
	big := strings.Repeat("y", 40<<10)
	resp := e.relayAs(tight, e.seal(proto.TaskSummarize, big, w.key()))
	body := readAll(t, resp)
	wantError(t, "request larger than the byte burst", resp, body, http.StatusRequestEntityTooLarge, "too_large")
	if !strings.Contains(string(body), "larger than your byte burst") {
		t.Fatalf("413 body %s: want it to name the byte burst", body)
	}
	if resp.Header.Get("Retry-After") != "" {
		t.Fatal("a request that can never pass has a Retry-After")
	}
	// A request within the burst still passes, and t1 (default limits)
	// may send the large one.
	e.relayOKAs(tight, e.seal(proto.TaskSummarize, "small", w.key()), "small", w)
	e.relayOK(e.seal(proto.TaskSummarize, big, w.key()), big, w)
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
