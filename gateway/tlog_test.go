package gateway_test

import (
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

// logVerifier pins the env's gateway log key.
func (e *env) logVerifier() *translog.Verifier {
	e.t.Helper()
	v, err := translog.NewVerifier(e.gw.LogPublicKey())
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// logListing returns t1's candidate list for task as sent.
func (e *env) logListing(task string) proto.CandidateList {
	e.t.Helper()
	resp, body := e.do(http.MethodGet, proto.PathCandidates+"?task="+task, "", nil)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("candidates: status %d: %s", resp.StatusCode, body)
	}
	var list proto.CandidateList
	if err := json.Unmarshal(body, &list); err != nil {
		e.t.Fatal(err)
	}
	return list
}

// logCheckpoint fetches and verifies the log's checkpoint over HTTP.
func (e *env) logCheckpoint() translog.Checkpoint {
	e.t.Helper()
	resp, body := e.doAs("", http.MethodGet, proto.PathLogCheckpoint, "", nil)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("checkpoint: status %d: %s", resp.StatusCode, body)
	}
	c, err := e.logVerifier().Open(body)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// logEntries fetches and parses every entry of a tree of size entries.
func (e *env) logEntries(size uint64) []*translog.Entry {
	e.t.Helper()
	var out []*translog.Entry
	for uint64(len(out)) < size {
		resp, body := e.doAs("", http.MethodGet, fmt.Sprintf("%s?start=%d&end=%d", proto.PathLogEntries, len(out), size), "", nil)
		if resp.StatusCode != http.StatusOK {
			e.t.Fatalf("entries: status %d: %s", resp.StatusCode, body)
		}
		raws, err := proto.ParseLogEntries(body, proto.MaxLogPage)
		if err != nil || len(raws) == 0 {
			e.t.Fatalf("entries: %d, %v", len(raws), err)
		}
		for _, raw := range raws {
			en, err := translog.ParseEntry(raw)
			if err != nil {
				e.t.Fatal(err)
			}
			out = append(out, en)
		}
	}
	return out
}

func kinds(entries []*translog.Entry) []string {
	var out []string
	for _, en := range entries {
		out = append(out, en.Kind.String()+":"+en.WorkerID)
	}
	return out
}

// withLogKey gives the gateway a log key that survives restarts.
func withLogKey(t *testing.T) func(*gateway.Config) {
	skey, _, err := translog.GenerateKey("example.test/log")
	if err != nil {
		t.Fatal(err)
	}
	s, err := translog.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *gateway.Config) { c.LogKey = s }
}

func TestLogListingAndEndpoints(t *testing.T) {
	e := newEnv(t, withLogKey(t))
	w := newAttestingWorker(t, e, "w", nil)
	e.register(w.workerDouble, proto.TaskSummarize)

	list := e.logListing(proto.TaskSummarize)
	cp, err := e.logVerifier().Open(list.LogCheckpoint)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 2 || !cp.Time.Equal(e.clock.Now()) {
		t.Fatalf("listed checkpoint %+v, want 2 entries (the policy and the admission) at the env's time", cp)
	}
	c := &list.Candidates[0]
	if err := translog.VerifyCandidate(cp, c); err != nil {
		t.Fatalf("the listed candidate: %v", err)
	}
	// The proof binds the whole entry: another endorsement, time or kind
	// does not verify.
	for name, edit := range map[string]func(*proto.CandidateInfo){
		"endorsement": func(c *proto.CandidateInfo) {
			c.Endorsement = append([]byte(nil), c.Endorsement...)
			c.Endorsement[0] ^= 1
		},
		"time":     func(c *proto.CandidateInfo) { l := *c.Log; l.TimeMillis++; c.Log = &l },
		"kind":     func(c *proto.CandidateInfo) { l := *c.Log; l.Kind = "reattestation"; c.Log = &l },
		"no proof": func(c *proto.CandidateInfo) { c.Log = nil },
	} {
		bad := *c
		edit(&bad)
		err := translog.VerifyCandidate(cp, &bad)
		if !errors.Is(err, translog.ErrInclusion) && !errors.Is(err, translog.ErrNoProof) {
			t.Errorf("%s changed: %v, want ErrInclusion or ErrNoProof", name, err)
		}
	}

	// The public endpoints serve the same log, cacheable, without a
	// credential.
	if got := e.logCheckpoint(); got != cp {
		t.Fatalf("served checkpoint %+v, want the listed %+v", got, cp)
	}
	entries := e.logEntries(cp.Size)
	if got := kinds(entries); fmt.Sprint(got) != "[policy: admission:w]" {
		t.Fatalf("entries %v", got)
	}
	if entries[1].PolicyHash != translog.PolicyHashOf(entries[0].Policy) {
		t.Fatal("the admission names another policy than the one logged")
	}
	resp, body := e.doAs("", http.MethodGet, fmt.Sprintf("%s?index=1&size=%d", proto.PathLogInclusion, cp.Size), "", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") == "" {
		t.Fatalf("inclusion proof: %d %q: %s", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
	}
	resp, body = e.doAs("", http.MethodGet, fmt.Sprintf("%s/%s", proto.PathLogCollateral, hex.EncodeToString(entries[1].CollateralHash[:])), "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("collateral: %d: %s", resp.StatusCode, body)
	}
	if _, err := entries[1].FullBundle(body); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path   string
		status int
	}{
		{fmt.Sprintf("%s?start=0&end=%d", proto.PathLogEntries, cp.Size+1), http.StatusNotFound},
		{proto.PathLogEntries + "?start=1&end=1", http.StatusNotFound},
		{proto.PathLogEntries + "?start=-1&end=1", http.StatusBadRequest},
		{proto.PathLogEntries + "?start=0", http.StatusBadRequest},
		{fmt.Sprintf("%s?index=2&size=%d", proto.PathLogInclusion, cp.Size), http.StatusNotFound},
		{fmt.Sprintf("%s?from=1&to=%d", proto.PathLogConsistency, cp.Size+1), http.StatusNotFound},
		{proto.PathLogCollateral + "/00", http.StatusBadRequest},
		{fmt.Sprintf("%s/%064x", proto.PathLogCollateral, 0), http.StatusNotFound},
	} {
		if resp, body := e.doAs("", http.MethodGet, tc.path, "", nil); resp.StatusCode != tc.status {
			t.Errorf("GET %s: %d %s, want %d", tc.path, resp.StatusCode, body, tc.status)
		}
	}

	// A restart does not log the unchanged policy again; the log grows
	// consistently.
	e.restart()
	if got := e.logCheckpoint(); got.Size != 2 || got.Root != cp.Root {
		t.Fatalf("after a restart: %+v, want the same tree", got)
	}
	// A changed policy is logged in full at start.
	pol := *policy.InsecureSimulated()
	pol.Name = "changed"
	e.cfg.AdmissionPolicy = &pol
	e.restart()
	after := e.logCheckpoint()
	entries = e.logEntries(after.Size)
	if got := kinds(entries); fmt.Sprint(got) != "[policy: admission:w policy:]" {
		t.Fatalf("entries after a policy change %v", got)
	}
	if translog.PolicyHashOf(entries[2].Policy) != pol.Hash() {
		t.Fatal("the logged policy is not the new one")
	}
}

func TestLogRecordsLifecycle(t *testing.T) {
	e := newEnv(t)
	w := newAttestingWorker(t, e, "w", nil)
	e.register(w.workerDouble, proto.TaskSummarize)
	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())
	first := e.logCheckpoint()

	// The listing now proves the re-attestation's entry.
	list := e.logListing(proto.TaskSummarize)
	cp, _ := e.logVerifier().Open(list.LogCheckpoint)
	if c := list.Candidates[0]; c.Log == nil || c.Log.Kind != "reattestation" || translog.VerifyCandidate(cp, &c) != nil {
		t.Fatalf("candidate after re-attestation: %+v", c.Log)
	}

	w.failAttest.Store(true)
	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())
	e.clock.Advance(gateway.DefaultEvictAfter)
	e.gw.ReattestDue(t.Context())

	last := e.logCheckpoint()
	entries := e.logEntries(last.Size)
	want := "[policy: admission:w reattestation:w drain:w eviction:w]"
	if got := kinds(entries); fmt.Sprint(got) != want {
		t.Fatalf("entries %v, want %s", got, want)
	}
	if entries[3].Reason == "" || !strings.HasPrefix(entries[4].Reason, "drained since ") {
		t.Fatalf("reasons %q and %q", entries[3].Reason, entries[4].Reason)
	}
	page := e.metrics()
	for series, want := range map[string]float64{
		`sealgate_gateway_log_appends_total{kind="policy"}`:        1,
		`sealgate_gateway_log_appends_total{kind="admission"}`:     1,
		`sealgate_gateway_log_appends_total{kind="reattestation"}`: 1,
		`sealgate_gateway_log_appends_total{kind="drain"}`:         1,
		`sealgate_gateway_log_appends_total{kind="eviction"}`:      1,
		`sealgate_gateway_log_size`:                                5,
	} {
		if v, ok := metricValue(page, series); !ok || v != want {
			t.Errorf("%s = %v (%v), want %v", series, v, ok, want)
		}
	}
	// Every checkpoint is consistent with the later ones.
	var p proto.LogProof
	resp, body := e.doAs("", http.MethodGet, fmt.Sprintf("%s?from=%d&to=%d", proto.PathLogConsistency, first.Size, last.Size), "", nil)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &p) != nil {
		t.Fatalf("consistency proof: %d %s", resp.StatusCode, body)
	}
	if err := translog.VerifyConsistency(first, last, p.Hashes); err != nil {
		t.Fatal(err)
	}
}

// TestLogFailsClosed breaks the log's table under a running gateway: an
// enrollment is then refused and the worker is neither stored nor
// listed, and a worker whose re-attestation cannot be logged is drained.
func TestLogFailsClosed(t *testing.T) {
	e := newEnv(t)
	ok := newAttestingWorker(t, e, "ok", nil)
	e.register(ok.workerDouble, proto.TaskSummarize)

	db, err := sql.Open("sqlite", e.cfg.Database+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER log_down BEFORE INSERT ON log_entries BEGIN SELECT RAISE(ABORT, 'log down'); END`); err != nil {
		t.Fatal(err)
	}

	w := newAttestingWorker(t, e, "w", nil)
	resp, body := e.postJSONAs(e.provider.cred, proto.PathRegister, e.registration(w.workerDouble, proto.TaskSummarize))
	if resp.StatusCode != http.StatusServiceUnavailable || errorCode(body) != "unavailable" {
		t.Fatalf("register with the log down: %d %s, want 503 unavailable", resp.StatusCode, body)
	}
	if _, listed := e.candidates(proto.TaskSummarize)["w"]; listed {
		t.Fatal("a worker whose entry is not in the log is listed")
	}
	if _, stored := e.workerStatus("w"); stored {
		t.Fatal("a worker whose entry is not in the log is stored")
	}
	if v, _ := metricValue(e.metrics(), `sealgate_gateway_log_append_failures_total{kind="admission"}`); v != 1 {
		t.Errorf("admission append failures counted %v, want 1", v)
	}

	e.clock.Advance(e.cfg.ReattestInterval)
	e.gw.ReattestDue(t.Context())
	if ws, _ := e.workerStatus("ok"); ws.State != "draining" {
		t.Fatalf("a worker whose re-attestation could not be logged: %+v, want draining", ws)
	}

	// With the log back, enrollment works again.
	if _, err := db.Exec(`DROP TRIGGER log_down`); err != nil {
		t.Fatal(err)
	}
	e.register(w.workerDouble, proto.TaskSummarize)
	if _, listed := e.candidates(proto.TaskSummarize)["w"]; !listed {
		t.Fatal("not listed once the log is back")
	}
}
