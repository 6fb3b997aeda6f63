package faulttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/client"
)

// slowModel is a TEST DOUBLE of a model server: an OpenAI-compatible
// /v1/chat/completions on 127.0.0.1 that answers every request with a
// long stream, pieces deltas gap apart, then usage and [DONE]. Workers
// run with -backend openai -upstream pointing at it, so that the real
// worker processes serve long streams without a model.
type slowModel struct {
	url    string
	pieces int
	gap    time.Duration
	active atomic.Int64 // streams in progress
	served atomic.Int64 // streams finished whole
}

// modelName is the model the workers serve from a slowModel.
const modelName = "slow-test-double"

// startSlowModel serves a slowModel until the test ends.
func startSlowModel(t *testing.T, pieces int, gap time.Duration) *slowModel {
	t.Helper()
	m := &slowModel{pieces: pieces, gap: gap}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m.url = "http://" + ln.Addr().String() + "/v1"
	return m
}

// reply is the text every stream of m adds up to.
func (m *slowModel) reply() string {
	var b strings.Builder
	for i := range m.pieces {
		fmt.Fprintf(&b, "piece-%d ", i)
	}
	return b.String()
}

func (m *slowModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		http.NotFound(w, r)
		return
	}
	m.active.Add(1)
	defer m.active.Add(-1)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	tick := time.NewTicker(m.gap)
	defer tick.Stop()
	for i := range m.pieces {
		if _, err := fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"piece-%d \"}}]}\n\n", i); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		}
	}
	fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":%d}}\n\ndata: [DONE]\n\n", m.pieces)
	rc.Flush()
	m.served.Add(1)
}

// modelWorkerArgs are the flags of a worker that serves m.
func modelWorkerArgs(m *slowModel, capacity int) []string {
	return []string{"-backend", "openai", "-upstream", m.url, "-model", modelName,
		"-model-digest", "sha256:" + strings.Repeat("ab", 32), "-capacity", fmt.Sprint(capacity)}
}

// typedError returns why err is not one of the outcomes a client may see
// from a network on a bad day: a typed error of the client package (a
// gateway answer, a truncated stream, an overload) or its own deadline.
// A bare transport error, or anything else, is not.
func typedError(err error) error {
	var ge *client.GatewayError
	var te *client.TaskError
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, client.ErrTruncated), errors.Is(err, client.ErrOverloaded),
		errors.Is(err, client.ErrRateLimited), errors.Is(err, client.ErrNoCandidate),
		errors.As(err, &ge), errors.As(err, &te):
		return nil
	}
	return fmt.Errorf("untyped error %T: %v", err, err)
}
