package devnet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

// listingRewriter is a TEST DOUBLE of a dishonest gateway: a reverse
// proxy on 127.0.0.1 in front of the real one that hands every candidate
// listing to rewrite.
type listingRewriter struct {
	mu      sync.Mutex // guards rewrite
	rewrite func(*proto.CandidateList)
	url     string
}

func (l *listingRewriter) set(f func(*proto.CandidateList)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rewrite = f
}

func newListingRewriter(t *testing.T, target string) *listingRewriter {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	l := &listingRewriter{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		l.mu.Lock()
		f := l.rewrite
		l.mu.Unlock()
		if resp.Request.URL.Path != proto.PathCandidates || resp.StatusCode != http.StatusOK || f == nil {
			return nil
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if err != nil {
			return err
		}
		var list proto.CandidateList
		if err := json.Unmarshal(body, &list); err != nil {
			return err
		}
		f(&list)
		body, _ = json.Marshal(list)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	l.url = "http://" + ln.Addr().String()
	return l
}

// refusals lists task's workers and returns why each was refused.
func refusals(t *testing.T, c *client.Client) []error {
	t.Helper()
	ok, refused, err := c.Workers(t.Context(), proto.TaskSummarize)
	if err != nil {
		t.Fatal(err)
	}
	if len(ok) != 0 {
		t.Fatalf("%d workers accepted, want every one refused", len(ok))
	}
	var out []error
	for _, r := range refused {
		out = append(out, r.Err)
	}
	if len(out) == 0 {
		t.Fatal("nothing listed")
	}
	return out
}

func TestClientChecksTheLog(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	skey, _, err := translog.GenerateKey("devnet.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := translog.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	var offset atomic.Int64 // added to the wall clock, so re-attestation can be made due
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	network, err := devnet.Start(ctx, devnet.Config{Dir: t.TempDir(), InsecurePlainHTTP: true, Now: now,
		Gateway: func(c *gateway.Config) { c.LogKey = signer }})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	proxy := newListingRewriter(t, network.GatewayURL)
	newClient := func(cfg client.Config) *client.Client {
		t.Helper()
		cfg = network.ClientConfig(cfg)
		cfg.GatewayURL = proxy.url
		cfg.Policy = policy.InsecureSimulated()
		cfg.Now = now
		c, err := client.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Honest: every candidate's inclusion is proved, the summary comes
	// back, and the client remembers the checkpoint.
	c := newClient(client.Config{})
	if _, err := c.Summarize(ctx, "The house is red. The sky is blue. The grass is green.", client.SummarizeOptions{Sentences: 1}); err != nil {
		t.Fatal(err)
	}
	seen, ok := c.LogCheckpoint()
	if !ok || seen.Size < 3 {
		t.Fatalf("largest checkpoint %+v, %v; want the policy and two admissions", seen, ok)
	}

	t.Run("another log key", func(t *testing.T) {
		_, other, _ := translog.GenerateKey("devnet.test/log")
		for _, err := range refusals(t, newClient(client.Config{LogKey: other})) {
			if !errors.Is(err, client.ErrLog) || !errors.Is(err, translog.ErrCheckpointSignature) {
				t.Fatalf("refusal %v, want a LogError for the checkpoint's signature", err)
			}
		}
	})
	t.Run("candidate without a proof", func(t *testing.T) {
		proxy.set(func(l *proto.CandidateList) { l.Candidates[0].Log = nil })
		defer proxy.set(nil)
		ok, refused, err := c.Workers(ctx, proto.TaskSummarize)
		if err != nil || len(ok) != len(network.Workers)-1 || len(refused) != 1 || !errors.Is(refused[0].Err, translog.ErrNoProof) {
			t.Fatalf("%d accepted, refusals %+v, %v; want the stripped candidate refused with ErrNoProof", len(ok), refused, err)
		}
	})
	t.Run("candidate not in the log", func(t *testing.T) {
		// The gateway lists a worker with evidence entry details that
		// were never logged: a later time than the entry's.
		proxy.set(func(l *proto.CandidateList) { l.Candidates[0].Log.TimeMillis++ })
		defer proxy.set(nil)
		_, refused, _ := c.Workers(ctx, proto.TaskSummarize)
		if len(refused) != 1 || !errors.Is(refused[0].Err, translog.ErrInclusion) {
			t.Fatalf("refusals %+v, want one ErrInclusion", refused)
		}
	})
	t.Run("fork at the same size", func(t *testing.T) {
		proxy.set(func(l *proto.CandidateList) {
			cp, _ := translog.ParseCheckpoint(mustText(t, l.LogCheckpoint))
			cp.Root[0] ^= 1
			l.LogCheckpoint, _ = signer.Sign(cp)
		})
		defer proxy.set(nil)
		for _, err := range refusals(t, c) {
			var fe *translog.ForkError
			if !errors.As(err, &fe) || !errors.Is(err, client.ErrLog) {
				t.Fatalf("refusal %v, want a LogError holding a ForkError", err)
			}
		}
		if got, _ := c.LogCheckpoint(); got != seen {
			t.Fatal("the client remembered the forked checkpoint")
		}
	})
	t.Run("a larger checkpoint not consistent with the one seen", func(t *testing.T) {
		// The real log grows (a re-attestation round logs two entries);
		// the proxy then lists a checkpoint of the new size with another
		// root, signed by the log's key. The real consistency proof does
		// not match it.
		offset.Add(int64(gateway.DefaultReattestInterval))
		network.Gateway.ReattestDue(ctx)
		proxy.set(func(l *proto.CandidateList) {
			cp, _ := translog.ParseCheckpoint(mustText(t, l.LogCheckpoint))
			if cp.Size <= seen.Size {
				t.Errorf("the log did not grow: %d entries", cp.Size)
			}
			cp.Root[0] ^= 1
			l.LogCheckpoint, _ = signer.Sign(cp)
		})
		defer proxy.set(nil)
		for _, err := range refusals(t, c) {
			var fe *translog.ForkError
			if !errors.As(err, &fe) {
				t.Fatalf("refusal %v, want a ForkError", err)
			}
		}
		// The honest larger checkpoint is consistent and accepted.
		proxy.set(nil)
		if ok, refused, err := c.Workers(ctx, proto.TaskSummarize); err != nil || len(refused) != 0 || len(ok) == 0 {
			t.Fatalf("honest listing after growth: %d accepted, %+v, %v", len(ok), refused, err)
		}
		if got, _ := c.LogCheckpoint(); got.Size <= seen.Size {
			t.Fatalf("largest checkpoint %d entries, want more than %d", got.Size, seen.Size)
		}
	})
}

// mustText returns a signed note's text.
func mustText(t *testing.T, signed []byte) []byte {
	t.Helper()
	i := bytes.Index(signed, []byte("\n\n"))
	if i < 0 {
		t.Fatal("not a signed note")
	}
	return signed[:i+1]
}
