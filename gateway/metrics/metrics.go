// Package metrics holds the gateway's Prometheus metrics, on a registry of
// their own (not the global one) together with the Go runtime and process
// collectors, and serves them with Handler.
//
// The gateway records through small typed methods, so no Prometheus type
// reaches the gateway domain. A nil *Metrics is valid: every method is a
// no-op, so tests and benchmarks can pass nil.
//
// Label values never carry user content. Each label takes only values of
// a fixed shape: tasks [a-z][a-z0-9-]*, codes (reasons, kinds)
// [a-z][a-z0-9_-]*, worker and pool ids [A-Za-z0-9._-], each at most
// MaxLabelLen bytes. A task or code of another shape is counted under the
// label value InvalidLabel, which matches neither shape; a worker or pool
// id of another shape is not recorded at all, since a gauge or histogram
// shared by unrelated workers would mislead.
//
// Per-worker and per-pool series are removed with ForgetWorker and
// ForgetPool, so their number stays bounded by the workers and pools the
// gateway knows.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace and Subsystem prefix every metric name: sealgate_gateway_.
const (
	Namespace = "sealgate"
	Subsystem = "gateway"
)

// MaxLabelLen is the longest label value recorded, in bytes; it matches
// proto.MaxWorkerIDLen.
const MaxLabelLen = 64

// InvalidLabel is the label value that stands for a task, outcome, code or
// result that does not have the documented shape.
const InvalidLabel = "_invalid"

// Outcome is how a relayed request ended, the outcome label of
// requests_total. The zero Outcome is not valid and is counted as
// InvalidLabel.
type Outcome string

// The outcomes of a relayed request.
const (
	// OutcomeOK: the response was relayed in full.
	OutcomeOK Outcome = "ok"
	// OutcomeUpstreamFailed: every candidate worker failed before its first byte.
	OutcomeUpstreamFailed Outcome = "upstream_failed"
	// OutcomeTruncated: the worker's stream broke after its first byte.
	OutcomeTruncated Outcome = "truncated"
	// OutcomeClientGone: the client went away before the response was done.
	OutcomeClientGone Outcome = "client_gone"
	// OutcomeRefused: the request was refused with a 4xx before any relay.
	OutcomeRefused Outcome = "refused"
	// OutcomeOverloaded: the gateway or the workers had no capacity (503).
	OutcomeOverloaded Outcome = "overloaded"
	// OutcomeRateLimited: the tenant's rate limit refused the request (429).
	OutcomeRateLimited Outcome = "rate_limited"
	// OutcomeUnknownCandidates: no candidate key belongs to an admitted worker.
	OutcomeUnknownCandidates Outcome = "unknown_candidates"
)

func (o Outcome) valid() bool {
	switch o {
	case OutcomeOK, OutcomeUpstreamFailed, OutcomeTruncated, OutcomeClientGone, OutcomeRefused,
		OutcomeOverloaded, OutcomeRateLimited, OutcomeUnknownCandidates:
		return true
	}
	return false
}

// ReattestResult is the result label of reattestations_total. The zero
// ReattestResult is not valid and is counted as InvalidLabel.
type ReattestResult string

// The results of a worker's periodic re-attestation.
const (
	// ReattestOK: fresh evidence passed the admission policy.
	ReattestOK ReattestResult = "ok"
	// ReattestFailed: fresh evidence was refused.
	ReattestFailed ReattestResult = "failed"
	// ReattestMissed: the worker sent no fresh evidence in time.
	ReattestMissed ReattestResult = "missed"
)

func (r ReattestResult) valid() bool {
	return r == ReattestOK || r == ReattestFailed || r == ReattestMissed
}

// Worker states, the state label of the workers gauge.
const (
	stateActive   = "active"
	stateDraining = "draining"
)

// latencyBuckets are the time-to-first-byte buckets, 1ms to 30s.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// durationBuckets are the request duration buckets, 5ms to 10min: a
// streamed response can run for minutes.
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// Metrics is the gateway's metrics. Create one with New; a nil *Metrics
// records nothing. It is safe for concurrent use.
type Metrics struct {
	handler http.Handler

	requests          *prometheus.CounterVec
	requestDuration   *prometheus.HistogramVec
	failovers         prometheus.Counter
	admissions        *prometheus.CounterVec
	admissionRefusals *prometheus.CounterVec
	drains            *prometheus.CounterVec
	evictions         prometheus.Counter
	reattestations    *prometheus.CounterVec
	workers           *prometheus.GaugeVec
	workerOutstanding *prometheus.GaugeVec
	workerLatency     *prometheus.HistogramVec
	breakerOpen       *prometheus.GaugeVec
	rateLimited       prometheus.Counter
	poolSlots         *prometheus.GaugeVec
	poolInUse         *prometheus.GaugeVec
	logAppends        *prometheus.CounterVec
	logFailures       *prometheus.CounterVec
	logSize           prometheus.Gauge
}

// New returns Metrics registered on a new registry of their own, with the
// Go runtime and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: Namespace, Subsystem: Subsystem, Name: name, Help: help}
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts(opts(name, help)))
	}
	counterVec := func(name, help string, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts(opts(name, help)), []string{label})
	}
	gaugeVec := func(name, help string, label string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts(opts(name, help)), []string{label})
	}
	histogramVec := func(name, help string, buckets []float64, label string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: Subsystem, Name: name, Help: help, Buckets: buckets,
		}, []string{label})
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts(opts("requests_total",
			"Relayed requests by task and outcome.")), []string{"task", "outcome"}),
		requestDuration: histogramVec("request_duration_seconds",
			"Time from a request's arrival to the end of its response, by task.", durationBuckets, "task"),
		failovers: counter("failovers_total",
			"Relay attempts beyond the first for a request."),
		admissions: counterVec("admissions_total",
			"Workers admitted, by kind.", "kind"),
		admissionRefusals: counterVec("admission_refusals_total",
			"Worker registrations refused, by reason.", "reason"),
		drains: counterVec("drains_total",
			"Workers put to draining, by reason.", "reason"),
		evictions: counter("evictions_total",
			"Workers removed from the registry."),
		reattestations: counterVec("reattestations_total",
			"Periodic re-attestations of admitted workers, by result (ok, failed, missed).", "result"),
		workers: gaugeVec("workers",
			"Admitted workers, by state (active, draining).", "state"),
		workerOutstanding: gaugeVec("worker_outstanding",
			"Requests in flight to a worker.", "worker"),
		workerLatency: histogramVec("worker_latency_seconds",
			"Time from sending a request to a worker to its first response byte.", latencyBuckets, "worker"),
		breakerOpen: gaugeVec("breaker_open",
			"1 while a worker's circuit breaker is open or half-open, else 0.", "worker"),
		rateLimited: counter("ratelimited_total",
			"Requests refused by a tenant's rate limit."),
		poolSlots: gaugeVec("pool_slots",
			"Concurrent requests a pool reserves.", "pool"),
		poolInUse: gaugeVec("pool_in_use",
			"Concurrent requests a pool has in flight.", "pool"),
		logAppends: counterVec("log_appends_total",
			"Entries this replica appended to the transparency log, by kind.", "kind"),
		logFailures: counterVec("log_append_failures_total",
			"Transparency-log appends that failed, by entry kind.", "kind"),
		logSize: prometheus.NewGauge(prometheus.GaugeOpts(opts("log_size",
			"Entries in the transparency log after this replica's latest append."))),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestDuration, m.failovers,
		m.admissions, m.admissionRefusals, m.drains, m.evictions, m.reattestations,
		m.workers, m.workerOutstanding, m.workerLatency, m.breakerOpen,
		m.rateLimited, m.poolSlots, m.poolInUse,
		m.logAppends, m.logFailures, m.logSize,
	)
	// Series with a fixed label set start at zero, so that rates and
	// alerts see them before the first event.
	for _, r := range []ReattestResult{ReattestOK, ReattestFailed, ReattestMissed} {
		m.reattestations.WithLabelValues(string(r))
	}
	m.workers.WithLabelValues(stateActive)
	m.workers.WithLabelValues(stateDraining)
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A collector that fails leaves the rest of the page intact.
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg,
		MaxRequestsInFlight: 4,
	})
	return m
}

// Handler serves the metrics in the Prometheus exposition formats. On a
// nil *Metrics it serves 404 Not Found.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.handler
}

// RequestDone records a relayed request of task that ended with outcome
// after d: requests_total and request_duration_seconds.
func (m *Metrics) RequestDone(task string, outcome Outcome, d time.Duration) {
	if m == nil {
		return
	}
	if !validTask(task) {
		task = InvalidLabel
	}
	o := string(outcome)
	if !outcome.valid() {
		o = InvalidLabel
	}
	m.requests.WithLabelValues(task, o).Inc()
	m.requestDuration.WithLabelValues(task).Observe(d.Seconds())
}

// Failover records a relay attempt beyond a request's first.
func (m *Metrics) Failover() {
	if m == nil {
		return
	}
	m.failovers.Inc()
}

// Admitted records a worker admitted; kind is a code such as its TEE kind.
func (m *Metrics) Admitted(kind string) {
	if m == nil {
		return
	}
	m.admissions.WithLabelValues(code(kind)).Inc()
}

// Refused records a registration refused; reason is a short stable code,
// such as an attestation check code, "bad_challenge", "endorsement" or
// "key_conflict".
func (m *Metrics) Refused(reason string) {
	if m == nil {
		return
	}
	m.admissionRefusals.WithLabelValues(code(reason)).Inc()
}

// Drained records a worker put to draining; reason is a short stable code.
func (m *Metrics) Drained(reason string) {
	if m == nil {
		return
	}
	m.drains.WithLabelValues(code(reason)).Inc()
}

// Evicted records worker id removed from the registry and forgets its
// series, as ForgetWorker does.
func (m *Metrics) Evicted(id string) {
	if m == nil {
		return
	}
	m.evictions.Inc()
	m.ForgetWorker(id)
}

// Reattested records a worker's periodic re-attestation.
func (m *Metrics) Reattested(result ReattestResult) {
	if m == nil {
		return
	}
	r := string(result)
	if !result.valid() {
		r = InvalidLabel
	}
	m.reattestations.WithLabelValues(r).Inc()
}

// SetWorkers sets the number of admitted workers that are active and
// draining.
func (m *Metrics) SetWorkers(active, draining int) {
	if m == nil {
		return
	}
	m.workers.WithLabelValues(stateActive).Set(float64(active))
	m.workers.WithLabelValues(stateDraining).Set(float64(draining))
}

// WorkerOutstanding sets the number of requests in flight to worker id.
func (m *Metrics) WorkerOutstanding(id string, n int) {
	if m == nil || !validID(id) {
		return
	}
	m.workerOutstanding.WithLabelValues(id).Set(float64(n))
}

// WorkerTTFB records the time worker id took to send its first response
// byte.
func (m *Metrics) WorkerTTFB(id string, d time.Duration) {
	if m == nil || !validID(id) {
		return
	}
	m.workerLatency.WithLabelValues(id).Observe(d.Seconds())
}

// BreakerState records whether worker id's circuit breaker refuses
// traffic (open or half-open).
func (m *Metrics) BreakerState(id string, open bool) {
	if m == nil || !validID(id) {
		return
	}
	v := 0.0
	if open {
		v = 1
	}
	m.breakerOpen.WithLabelValues(id).Set(v)
}

// ForgetWorker deletes every series of worker id: worker_outstanding,
// worker_latency_seconds and breaker_open. Call it once the worker can no
// longer be routed to, so that no late update recreates them.
func (m *Metrics) ForgetWorker(id string) {
	if m == nil || !validID(id) {
		return
	}
	m.workerOutstanding.DeleteLabelValues(id)
	m.workerLatency.DeleteLabelValues(id)
	m.breakerOpen.DeleteLabelValues(id)
}

// RateLimited records a request refused by a tenant's rate limit.
func (m *Metrics) RateLimited() {
	if m == nil {
		return
	}
	m.rateLimited.Inc()
}

// Pool sets pool id's reserved slots and the slots in use.
func (m *Metrics) Pool(id string, slots, inUse int) {
	if m == nil || !validID(id) {
		return
	}
	m.poolSlots.WithLabelValues(id).Set(float64(slots))
	m.poolInUse.WithLabelValues(id).Set(float64(inUse))
}

// ForgetPool deletes pool id's series, for a pool that no longer exists.
func (m *Metrics) ForgetPool(id string) {
	if m == nil || !validID(id) {
		return
	}
	m.poolSlots.DeleteLabelValues(id)
	m.poolInUse.DeleteLabelValues(id)
}

// code returns s if it has the shape of a code, else InvalidLabel.
func code(s string) string {
	if len(s) == 0 || len(s) > MaxLabelLen || !lower(s[0]) {
		return InvalidLabel
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !lower(c) && !digit(c) && c != '_' && c != '-' {
			return InvalidLabel
		}
	}
	return s
}

// validTask reports whether s has the shape of a task name.
func validTask(s string) bool {
	if len(s) == 0 || len(s) > MaxLabelLen || !lower(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !lower(c) && !digit(c) && c != '-' {
			return false
		}
	}
	return true
}

// validID reports whether s has the shape of a worker or pool id.
func validID(s string) bool {
	if len(s) == 0 || len(s) > MaxLabelLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !lower(c) && !digit(c) && !('A' <= c && c <= 'Z') && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func lower(c byte) bool { return 'a' <= c && c <= 'z' }
func digit(c byte) bool { return '0' <= c && c <= '9' }

// LogAppended records an entry of kind appended to the transparency log,
// which then holds size entries.
func (m *Metrics) LogAppended(kind string, size uint64) {
	if m == nil {
		return
	}
	m.logAppends.WithLabelValues(code(kind)).Inc()
	m.logSize.Set(float64(size))
}

// LogAppendFailed records a failed append of an entry of kind.
func (m *Metrics) LogAppendFailed(kind string) {
	if m == nil {
		return
	}
	m.logFailures.WithLabelValues(code(kind)).Inc()
}
