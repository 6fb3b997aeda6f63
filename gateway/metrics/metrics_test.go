package metrics_test

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sealgate/sealgate/gateway/metrics"
)

const ns = "sealgate_gateway_"

// scrape fetches m's handler over a real HTTP server and parses the text
// exposition format.
func scrape(t *testing.T, m *metrics.Metrics) families {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want text/plain", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the exposition: %v", err)
	}
	return fams
}

type families map[string]*dto.MetricFamily

// series returns the metric of family name whose labels are exactly
// labels (name, value pairs), or nil.
func (f families) series(name string, labels ...string) *dto.Metric {
	fam := f[name]
	if fam == nil {
		return nil
	}
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		match := true
		for i, lp := range m.GetLabel() {
			if lp.GetName() != labels[2*i] || lp.GetValue() != labels[2*i+1] {
				match = false
				break
			}
		}
		if match {
			return m
		}
	}
	return nil
}

// value returns the counter or gauge value of a series, failing the test
// if the series is missing.
func (f families) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	m := f.series(name, labels...)
	switch {
	case m == nil:
		t.Fatalf("no series %s%v", name, labels)
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	t.Fatalf("series %s%v is neither a counter nor a gauge", name, labels)
	return 0
}

// labelValues returns every value label takes in family name.
func (f families) labelValues(name, label string) []string {
	var vs []string
	for _, m := range f[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label {
				vs = append(vs, lp.GetValue())
			}
		}
	}
	sort.Strings(vs)
	return vs
}

// finite returns the buckets with a finite upper bound.
func finite(bs []*dto.Bucket) []*dto.Bucket {
	var out []*dto.Bucket
	for _, b := range bs {
		if !math.IsInf(b.GetUpperBound(), 1) {
			out = append(out, b)
		}
	}
	return out
}

func TestCounters(t *testing.T) {
	m := metrics.New()
	m.RequestDone("chat", metrics.OutcomeOK, 2*time.Second)
	m.RequestDone("chat", metrics.OutcomeOK, time.Second)
	m.RequestDone("chat", metrics.OutcomeTruncated, time.Second)
	m.RequestDone("embed", metrics.OutcomeRateLimited, time.Millisecond)
	m.Failover()
	m.Failover()
	m.Admitted("tdx")
	m.Admitted("tdx")
	m.Admitted("snp")
	m.Refused("bad_challenge")
	m.Refused("stale")
	m.Refused("stale")
	m.Drained("operator")
	m.Reattested(metrics.ReattestOK)
	m.Reattested(metrics.ReattestMissed)
	m.Reattested(metrics.ReattestMissed)
	m.RateLimited()
	m.Evicted("w1")

	f := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"requests_total", []string{"outcome", "ok", "task", "chat"}, 2},
		{"requests_total", []string{"outcome", "truncated", "task", "chat"}, 1},
		{"requests_total", []string{"outcome", "rate_limited", "task", "embed"}, 1},
		{"failovers_total", nil, 2},
		{"admissions_total", []string{"kind", "tdx"}, 2},
		{"admissions_total", []string{"kind", "snp"}, 1},
		{"admission_refusals_total", []string{"reason", "bad_challenge"}, 1},
		{"admission_refusals_total", []string{"reason", "stale"}, 2},
		{"drains_total", []string{"reason", "operator"}, 1},
		{"evictions_total", nil, 1},
		{"reattestations_total", []string{"result", "ok"}, 1},
		{"reattestations_total", []string{"result", "failed"}, 0},
		{"reattestations_total", []string{"result", "missed"}, 2},
		{"ratelimited_total", nil, 1},
	} {
		if got := f.value(t, ns+c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
		if got := f[ns+c.name].GetType(); got != dto.MetricType_COUNTER {
			t.Errorf("%s is a %v, want a counter", c.name, got)
		}
	}
	if got := f.labelValues(ns+"requests_total", "task"); strings.Join(got, ",") != "chat,chat,embed" {
		t.Errorf("requests_total tasks = %v, want only the recorded ones", got)
	}
}

func TestRequestDuration(t *testing.T) {
	m := metrics.New()
	m.RequestDone("chat", metrics.OutcomeOK, 3*time.Millisecond)
	m.RequestDone("chat", metrics.OutcomeClientGone, 90*time.Second)
	h := scrape(t, m).series(ns+"request_duration_seconds", "task", "chat").GetHistogram()
	if h == nil {
		t.Fatal("no request_duration_seconds histogram for task chat")
	}
	if got := h.GetSampleCount(); got != 2 {
		t.Errorf("sample count %d, want 2", got)
	}
	if got, want := h.GetSampleSum(), 90.003; math.Abs(got-want) > 1e-9 {
		t.Errorf("sample sum %v, want %v", got, want)
	}
	// The buckets reach past a minute for long streams.
	if b := finite(h.GetBucket()); b[len(b)-1].GetUpperBound() < 300 {
		t.Errorf("largest finite bucket %v, want at least 300s", b[len(b)-1].GetUpperBound())
	}
}

func TestGauges(t *testing.T) {
	m := metrics.New()
	f := scrape(t, m)
	// Fixed series exist at zero before any event.
	for _, state := range []string{"active", "draining"} {
		if got := f.value(t, ns+"workers", "state", state); got != 0 {
			t.Errorf("workers{state=%q} = %v before SetWorkers, want 0", state, got)
		}
	}

	m.SetWorkers(7, 2)
	m.WorkerOutstanding("w1", 3)
	m.WorkerOutstanding("w1", 4)
	m.BreakerState("w1", true)
	m.BreakerState("w2", true)
	m.BreakerState("w2", false)
	m.Pool("p1", 10, 6)
	f = scrape(t, m)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"workers", []string{"state", "active"}, 7},
		{"workers", []string{"state", "draining"}, 2},
		{"worker_outstanding", []string{"worker", "w1"}, 4},
		{"breaker_open", []string{"worker", "w1"}, 1},
		{"breaker_open", []string{"worker", "w2"}, 0},
		{"pool_slots", []string{"pool", "p1"}, 10},
		{"pool_in_use", []string{"pool", "p1"}, 6},
	} {
		if got := f.value(t, ns+c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
		if got := f[ns+c.name].GetType(); got != dto.MetricType_GAUGE {
			t.Errorf("%s is a %v, want a gauge", c.name, got)
		}
	}
}

func TestWorkerLatencyBuckets(t *testing.T) {
	m := metrics.New()
	m.WorkerTTFB("w1", 3*time.Millisecond)
	m.WorkerTTFB("w1", 20*time.Millisecond)
	m.WorkerTTFB("w1", time.Minute)
	h := scrape(t, m).series(ns+"worker_latency_seconds", "worker", "w1").GetHistogram()
	if h == nil {
		t.Fatal("no worker_latency_seconds histogram for w1")
	}
	if got := h.GetSampleCount(); got != 3 {
		t.Errorf("sample count %d, want 3", got)
	}
	b := finite(h.GetBucket())
	if first, last := b[0].GetUpperBound(), b[len(b)-1].GetUpperBound(); first != 0.001 || last != 30 {
		t.Errorf("buckets from %v to %v, want 0.001 to 30", first, last)
	}
	cum := map[float64]uint64{}
	for _, bk := range b {
		cum[bk.GetUpperBound()] = bk.GetCumulativeCount()
	}
	for le, want := range map[float64]uint64{0.001: 0, 0.005: 1, 0.025: 2, 30: 2} {
		if got := cum[le]; got != want {
			t.Errorf("bucket le=%v holds %d, want %d", le, got, want)
		}
	}
}

func TestForgetWorker(t *testing.T) {
	m := metrics.New()
	for _, id := range []string{"w1", "w2", "w3"} {
		m.WorkerOutstanding(id, 1)
		m.WorkerTTFB(id, time.Millisecond)
		m.BreakerState(id, false)
	}
	perWorker := []string{"worker_outstanding", "worker_latency_seconds", "breaker_open"}
	f := scrape(t, m)
	for _, name := range perWorker {
		if got := f.labelValues(ns+name, "worker"); strings.Join(got, ",") != "w1,w2,w3" {
			t.Fatalf("%s workers = %v before forgetting, want w1,w2,w3", name, got)
		}
	}

	m.ForgetWorker("w1")
	m.Evicted("w3")
	m.ForgetWorker("never-seen")
	f = scrape(t, m)
	for _, name := range perWorker {
		if got := f.labelValues(ns+name, "worker"); strings.Join(got, ",") != "w2" {
			t.Errorf("%s workers = %v after forgetting w1 and evicting w3, want only w2", name, got)
		}
	}
	if got := f.value(t, ns+"evictions_total"); got != 1 {
		t.Errorf("evictions_total = %v, want 1", got)
	}
}

func TestForgetPool(t *testing.T) {
	m := metrics.New()
	m.Pool("p1", 4, 1)
	m.Pool("p2", 8, 2)
	m.ForgetPool("p1")
	f := scrape(t, m)
	for _, name := range []string{"pool_slots", "pool_in_use"} {
		if got := f.labelValues(ns+name, "pool"); strings.Join(got, ",") != "p2" {
			t.Errorf("%s pools = %v after forgetting p1, want only p2", name, got)
		}
	}
}

// TestLabelShapes checks that a value of the wrong shape never becomes a
// label value: codes and tasks fall back to InvalidLabel, ids are not
// recorded.
func TestLabelShapes(t *testing.T) {
	badIDs := []string{
		"", "chat task", "chat\n# HELP", `x"}`, "ünïcode", "a/b", "a:b",
		strings.Repeat("a", metrics.MaxLabelLen+1),
	}
	// Well-formed ids, but not tasks or codes, which start with a
	// lowercase letter.
	badCodes := append([]string{"Chat", "-leading", "1abc", "_x", "a.b"}, badIDs...)
	m := metrics.New()
	for _, s := range badCodes {
		m.RequestDone(s, metrics.Outcome(s), time.Millisecond)
		m.Admitted(s)
		m.Refused(s)
		m.Drained(s)
		m.Reattested(metrics.ReattestResult(s))
	}
	for _, s := range badIDs {
		m.WorkerOutstanding(s, 1)
		m.WorkerTTFB(s, time.Millisecond)
		m.BreakerState(s, true)
		m.Pool(s, 1, 1)
	}
	f := scrape(t, m)
	n := float64(len(badCodes))
	if got := f.value(t, ns+"requests_total", "outcome", metrics.InvalidLabel, "task", metrics.InvalidLabel); got != n {
		t.Errorf("requests_total{_invalid,_invalid} = %v, want %v", got, n)
	}
	for _, c := range []struct{ name, label string }{
		{"admissions_total", "kind"},
		{"admission_refusals_total", "reason"},
		{"drains_total", "reason"},
		{"reattestations_total", "result"},
	} {
		if got := f.value(t, ns+c.name, c.label, metrics.InvalidLabel); got != n {
			t.Errorf("%s{%s=_invalid} = %v, want %v", c.name, c.label, got, n)
		}
		if got := f.labelValues(ns+c.name, c.label); c.name != "reattestations_total" && strings.Join(got, ",") != metrics.InvalidLabel {
			t.Errorf("%s %s values = %q, want only %q", c.name, c.label, got, metrics.InvalidLabel)
		}
	}
	for _, name := range []string{"worker_outstanding", "worker_latency_seconds", "breaker_open", "pool_slots", "pool_in_use"} {
		if fam := f[ns+name]; fam != nil && len(fam.GetMetric()) > 0 {
			t.Errorf("%s has series %v for malformed ids, want none", name, fam.GetMetric())
		}
	}
}

func TestValidLabels(t *testing.T) {
	m := metrics.New()
	longID := strings.Repeat("W", metrics.MaxLabelLen)
	ids := []string{"worker-1", "node_7.eu-west", "A.b_C-9", longID}
	for _, id := range ids {
		m.WorkerOutstanding(id, 1)
	}
	m.RequestDone("llama-3-70b", metrics.OutcomeOK, time.Millisecond)
	m.Refused("collateral_expired")
	f := scrape(t, m)
	if got, want := f.labelValues(ns+"worker_outstanding", "worker"), []string{"A.b_C-9", longID, "node_7.eu-west", "worker-1"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("worker ids %v, want %v", got, want)
	}
	f.value(t, ns+"requests_total", "outcome", "ok", "task", "llama-3-70b")
	f.value(t, ns+"admission_refusals_total", "reason", "collateral_expired")
}

func TestEveryOutcome(t *testing.T) {
	m := metrics.New()
	all := []metrics.Outcome{
		metrics.OutcomeOK, metrics.OutcomeUpstreamFailed, metrics.OutcomeTruncated, metrics.OutcomeClientGone,
		metrics.OutcomeRefused, metrics.OutcomeOverloaded, metrics.OutcomeRateLimited, metrics.OutcomeUnknownCandidates,
	}
	for _, o := range all {
		m.RequestDone("t", o, 0)
	}
	f := scrape(t, m)
	for _, o := range all {
		if got := f.value(t, ns+"requests_total", "outcome", string(o), "task", "t"); got != 1 {
			t.Errorf("requests_total{outcome=%q} = %v, want 1", o, got)
		}
	}
}

func TestNamesAndCollectors(t *testing.T) {
	m := metrics.New()
	m.RequestDone("t", metrics.OutcomeOK, 0)
	f := scrape(t, m)
	var ours int
	for name := range f {
		switch {
		case strings.HasPrefix(name, ns):
			ours++
		case strings.HasPrefix(name, "go_"), strings.HasPrefix(name, "process_"), strings.HasPrefix(name, "promhttp_"):
		default:
			t.Errorf("unexpected metric family %q", name)
		}
	}
	if ours == 0 {
		t.Error("no sealgate_gateway_ metric")
	}
	if f["go_goroutines"] == nil {
		t.Error("no go_goroutines: the Go collector is missing")
	}
	if runtime.GOOS == "linux" && f["process_cpu_seconds_total"] == nil {
		t.Error("no process_cpu_seconds_total: the process collector is missing")
	}
}

// TestRegistriesAreSeparate checks that New does not use the global
// registry: two can coexist, and they count apart.
func TestRegistriesAreSeparate(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.Failover()
	if got := scrape(t, b).value(t, ns+"failovers_total"); got != 0 {
		t.Errorf("second Metrics counts %v failovers, want 0", got)
	}
	if got := scrape(t, a).value(t, ns+"failovers_total"); got != 1 {
		t.Errorf("first Metrics counts %v failovers, want 1", got)
	}
}

func TestNilMetrics(t *testing.T) {
	var m *metrics.Metrics
	m.RequestDone("t", metrics.OutcomeOK, time.Second)
	m.Failover()
	m.Admitted("tdx")
	m.Refused("stale")
	m.Drained("operator")
	m.Evicted("w1")
	m.Reattested(metrics.ReattestOK)
	m.SetWorkers(1, 2)
	m.WorkerOutstanding("w1", 1)
	m.WorkerTTFB("w1", time.Second)
	m.BreakerState("w1", true)
	m.ForgetWorker("w1")
	m.RateLimited()
	m.Pool("p", 1, 1)
	m.ForgetPool("p")

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("nil Metrics handler: status %d, want 404", resp.StatusCode)
	}
}

func BenchmarkRequestDone(b *testing.B) {
	m := metrics.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.RequestDone("chat", metrics.OutcomeOK, 30*time.Millisecond)
		}
	})
}

func BenchmarkWorkerTTFB(b *testing.B) {
	m := metrics.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.WorkerTTFB("worker-1", 30*time.Millisecond)
			m.WorkerOutstanding("worker-1", 3)
		}
	})
}
