package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/proto"
)

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	good := newWorkerDouble(t, "good", e.clock)
	bad := newWorkerDouble(t, "bad", e.clock)
	e.register(good, proto.TaskSummarize)
	e.register(bad, proto.TaskSummarize)
	value := func(series string) float64 {
		t.Helper()
		v, _ := metricValue(e.metrics(), series)
		return v
	}
	const (
		ok        = `sealgate_gateway_requests_total{outcome="ok",task="summarize"}`
		failovers = `sealgate_gateway_failovers_total`
		refusals  = `sealgate_gateway_admission_refusals_total{reason="endorsement"}`
		admitted  = `sealgate_gateway_admissions_total{kind="sim"}`
		active    = `sealgate_gateway_workers{state="active"}`
	)
	if v := value(ok); v != 0 {
		t.Fatalf("%s before any request: %v, want 0", ok, v)
	}
	if v := value(admitted); v != 2 {
		t.Fatalf("%s: %v, want 2", admitted, v)
	}
	if v := value(active); v != 2 {
		t.Fatalf("%s: %v, want 2", active, v)
	}

	e.relayOK(e.seal(proto.TaskSummarize, "hello", good.key()), "hello", good)
	if v := value(ok); v != 1 {
		t.Fatalf("%s after a relay: %v, want 1", ok, v)
	}
	page := e.metrics()
	for _, want := range []string{
		`sealgate_gateway_request_duration_seconds_count{task="summarize"} 1`,
		`sealgate_gateway_worker_latency_seconds_count{worker="good"} 1`,
		`sealgate_gateway_worker_outstanding{worker="good"} 0`,
	} {
		if !strings.Contains(page, want) {
			t.Fatalf("metrics page lacks %q", want)
		}
	}

	// A failover: bad is tried first (good holds a request) and fails.
	held := e.relayInBackground(e.seal(proto.TaskSummarize, "hold", good.key()), "hold")
	<-good.held
	if v := value(`sealgate_gateway_worker_outstanding{worker="good"}`); v != 1 {
		t.Fatalf("outstanding on good while a request is held: %v, want 1", v)
	}
	bad.fail.Store(true)
	if v := value(failovers); v != 0 {
		t.Fatalf("%s before a failover: %v, want 0", failovers, v)
	}
	e.relayOK(e.seal(proto.TaskSummarize, "hello", bad.key(), good.key()), "hello", good)
	if v := value(failovers); v != 1 {
		t.Fatalf("%s after a failover: %v, want 1", failovers, v)
	}
	close(good.release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}

	// A refused registration.
	if v := value(refusals); v != 0 {
		t.Fatalf("%s before a refusal: %v, want 0", refusals, v)
	}
	p2 := e.newProvider("p2")
	w := newWorkerDouble(t, "refused", e.clock)
	reg := e.registration(w, proto.TaskSummarize)
	reg.Endorsement = p2.endorse(w.id, reg.Bundle)
	resp, body := e.postJSON(proto.PathRegister, reg)
	wantError(t, "register", resp, body, http.StatusForbidden, "endorsement_refused")
	if v := value(refusals); v != 1 {
		t.Fatalf("%s after a refusal: %v, want 1", refusals, v)
	}

	// The page needs no credential and carries no tenant, provider or
	// credential.
	page = e.metrics()
	for _, s := range []string{e.tenant, e.provider.cred, e.admin, `="t1"`, `="p1"`, `="p2"`} {
		if strings.Contains(page, s) {
			t.Fatalf("metrics page holds %q", s)
		}
	}
}

func TestReadyz(t *testing.T) {
	e := newEnv(t)
	resp, body := e.doAs("", http.MethodGet, proto.PathReady, "", nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ready"}` {
		t.Fatalf("readyz: found %d %s, want 200 ready", resp.StatusCode, body)
	}
	resp, body = e.doAs("", http.MethodGet, proto.PathHealth, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: found %d %s, want 200", resp.StatusCode, body)
	}
}
