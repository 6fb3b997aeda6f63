package gateway_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/sealgate/sealgate/proto"
)

func TestCandidates(t *testing.T) {
	e := newEnv(t)
	sum := newWorkerDouble(t, "sum", e.clock)
	tr := newWorkerDouble(t, "tr", e.clock)
	both := newWorkerDouble(t, "both", e.clock)
	e.register(sum, proto.TaskSummarize)
	e.register(tr, proto.TaskTranslate)
	e.register(both, proto.TaskTranslate, proto.TaskSummarize)

	listed := func(task string) []string {
		var out []string
		for id, v := range e.candidates(task) {
			// The listed bundle binds the worker's current key.
			var w *workerDouble
			switch id {
			case sum.id:
				w = sum
			case tr.id:
				w = tr
			case both.id:
				w = both
			}
			if k, ok := v.HPKEKey(suite.KEM); !ok || k.ID() != w.key().ID() {
				t.Fatalf("candidate %s: its bundle does not bind its key", id)
			}
			out = append(out, id)
		}
		slices.Sort(out)
		return out
	}
	if got, want := listed(proto.TaskSummarize), []string{"both", "sum"}; !slices.Equal(got, want) {
		t.Fatalf("summarize: found %v, want %v", got, want)
	}
	if got, want := listed(proto.TaskTranslate), []string{"both", "tr"}; !slices.Equal(got, want) {
		t.Fatalf("translate: found %v, want %v", got, want)
	}
	if got := listed("transcribe"); len(got) != 0 {
		t.Fatalf("transcribe: found %v, want none", got)
	}

	tests := []struct {
		name       string
		query      string
		wantStatus int
		wantCode   string
		wantN      int
	}{
		{name: "max 1", query: "?task=summarize&max=1", wantStatus: http.StatusOK, wantN: 1},
		{name: "max 16", query: "?task=summarize&max=16", wantStatus: http.StatusOK, wantN: 2},
		{name: "no match is an empty list", query: "?task=transcribe", wantStatus: http.StatusOK, wantN: 0},
		{name: "missing task", query: "", wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "invalid task", query: "?task=Summarize", wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "two tasks", query: "?task=summarize&task=translate", wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "max 0", query: "?task=summarize&max=0", wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "max 17", query: "?task=summarize&max=17", wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
		{name: "max not a number", query: "?task=summarize&max=two", wantStatus: http.StatusBadRequest, wantCode: "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(http.MethodGet, proto.PathCandidates+tt.query, "", nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status: found %d, want %d (%s)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus != http.StatusOK {
				if code := errorCode(body); code != tt.wantCode {
					t.Fatalf("code: found %q, want %q", code, tt.wantCode)
				}
				return
			}
			var raw struct {
				Candidates []json.RawMessage `json:"candidates"`
			}
			if err := json.Unmarshal(body, &raw); err != nil || raw.Candidates == nil {
				t.Fatalf("body %s: want a candidates array (%v)", body, err)
			}
			if len(raw.Candidates) != tt.wantN {
				t.Fatalf("candidates: found %d, want %d", len(raw.Candidates), tt.wantN)
			}
		})
	}

	// Evidence expiry, by the injected clock: "sum" re-registers late and
	// outlives the others.
	e.clock.Advance(10 * time.Minute)
	e.register(sum, proto.TaskSummarize)
	e.clock.Advance(5*time.Minute + time.Millisecond)
	if got, want := listed(proto.TaskSummarize), []string{"sum"}; !slices.Equal(got, want) {
		t.Fatalf("summarize after the first evidence expired: found %v, want %v", got, want)
	}
	e.clock.Advance(10 * time.Minute)
	if got := listed(proto.TaskSummarize); len(got) != 0 {
		t.Fatalf("summarize after all evidence expired: found %v, want none", got)
	}
}
