package hostile_test

// The network every attack runs against: a real gateway and three real
// workers on the simulated TEE (INSECURE), on 127.0.0.1, shared by the
// whole suite; and what the tests observe of it.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/ratelimit"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/proto"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// serveCounter is a reverse proxy on 127.0.0.1 in front of one worker
// that counts the sealed requests the gateway forwarded to it.
type serveCounter struct {
	srv    *http.Server
	served atomic.Int64
}

func newServeCounter(target string) (*serveCounter, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	u, _ := url.Parse("http://" + target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	sc := &serveCounter{}
	sc.srv = &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == proto.PathServe {
			sc.served.Add(1)
		}
		rp.ServeHTTP(rw, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go sc.srv.Serve(ln)
	return sc, "http://" + ln.Addr().String(), nil
}

// env is the shared network.
type env struct {
	network *devnet.Network
	logs    lockedBuffer // every component's logs
	counter []*serveCounter
	// honest is the real gateway's listing for the summarize task, as
	// the suite started.
	honest proto.CandidateList
	// trusted are the devnet providers' endorsement keys.
	trusted []ed25519.PublicKey
	// genuine maps every key id of every worker's listed evidence to the
	// worker.
	genuine map[proto.KeyID]string
}

var shared *env

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "hostile-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	e := &env{}
	var counterErr error
	network, err := devnet.Start(ctx, devnet.Config{
		Dir: dir, Workers: 3, InsecurePlainHTTP: true,
		// A worker refuses a tampered request with a 4xx, which the
		// gateway counts against the worker's circuit breaker: the
		// request attacks would open the breakers and the gateway would
		// stop listing those workers to the cases after them.
		// The suite also asks for more strict-mode evidence, and sends
		// more requests, than a tenant's default rates allow.
		Gateway: func(c *gateway.Config) {
			c.Breaker.Failures = 1 << 20
			c.EvidenceLimit = ratelimit.Limit{PerSecond: 1000, Burst: 1000}
			c.DefaultLimits = gateway.TenantLimits{RequestsPerSecond: 1000, BurstRequests: 1000, BytesPerSecond: 1 << 30, BurstBytes: 1 << 30}
		},
		Logger: slog.New(slog.NewJSONHandler(&e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		WorkerAdvertise: func(i int, addr string) string {
			sc, u, err := newServeCounter(addr)
			if err != nil {
				counterErr = err
				return "http://" + addr
			}
			e.counter = append(e.counter, sc)
			return u
		},
	})
	defer func() {
		for _, sc := range e.counter {
			sc.srv.Close()
		}
	}()
	if err != nil {
		return 0, err
	}
	defer network.Close()
	if counterErr != nil {
		return 0, counterErr
	}
	e.network = network
	if err := e.learn(ctx); err != nil {
		return 0, err
	}
	shared = e
	return m.Run(), nil
}

// learn reads the honest listing straight from the real gateway.
func (e *env) learn(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.network.GatewayURL+proto.PathCandidates+"?task="+proto.TaskSummarize+"&max=16", nil)
	req.Header.Set(proto.HeaderAuthorization, "Bearer "+e.network.TenantCredential)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&e.honest); err != nil {
		return err
	}
	if len(e.honest.Candidates) != 3 {
		return fmt.Errorf("the gateway lists %d workers, want 3", len(e.honest.Candidates))
	}
	e.genuine = make(map[proto.KeyID]string)
	seen := map[string]bool{}
	for _, ci := range e.honest.Candidates {
		b, err := proto.ParseBundle(ci.Bundle)
		if err != nil {
			return err
		}
		for _, k := range b.Keys.HPKE {
			e.genuine[proto.NewKeyID(k.KEM, k.PublicKey)] = ci.WorkerID
		}
		if !seen[string(ci.ProviderKey)] {
			seen[string(ci.ProviderKey)] = true
			e.trusted = append(e.trusted, ed25519.PublicKey(ci.ProviderKey))
		}
	}
	if len(e.trusted) != 2 {
		return fmt.Errorf("the listing names %d provider keys, want 2", len(e.trusted))
	}
	return nil
}

// served returns how many sealed requests reached each worker.
func (e *env) served() []int64 {
	var out []int64
	for _, sc := range e.counter {
		out = append(out, sc.served.Load())
	}
	return out
}

// entry returns a copy of the honest listing's entry for worker i (in
// start order: workers 0 and 2 are provider a's, worker 1 provider b's).
func (e *env) entry(i int) proto.CandidateInfo {
	id := workerID(i)
	for _, ci := range e.honest.Candidates {
		if ci.WorkerID == id {
			ci.Bundle = bytes.Clone(ci.Bundle)
			ci.Endorsement = bytes.Clone(ci.Endorsement)
			return ci
		}
	}
	panic("no listing entry for " + id)
}

// workerID is the id devnet gives its worker i.
func workerID(i int) string { return fmt.Sprintf("sim-worker-%d", i+1) }

// document returns a prompt of about 40 KiB (four request chunks once
// padded to 64 KiB) whose every sentence carries a random canary word,
// and the canaries. A summary of 30 of its sentences takes several
// response chunks.
func document() (string, []string) {
	words := strings.Fields("attested enclave gateway worker sealed prompt hospital record latency audit " +
		"provider evidence measurement policy freshness nonce anchor chunk stream padding " +
		"receipt tenant pool region capacity breaker failover metric ledger invoice " +
		"river mountain harbour lantern orchard meadow glacier canyon prairie lagoon")
	var doc strings.Builder
	var canaries []string
	for s := range 300 {
		c := "canary" + rand.Text()[:20]
		canaries = append(canaries, c)
		var b [8]byte
		rand.Read(b[:])
		fmt.Fprintf(&doc, "Sentence %d mentions %s while the %s met the %s near the %s and the %s, then %s returned to the %s with the %s. ",
			s, c, words[b[0]%40], words[b[1]%40], words[b[2]%40], words[b[3]%40], words[b[4]%40], words[b[5]%40], words[b[6]%40])
		if s%10 == 9 {
			doc.WriteString("\n\n")
		}
	}
	return doc.String(), canaries
}

// forms returns the byte strings a secret could appear as: raw, hex and
// base64 (standard and URL alphabets, at every alignment, edges trimmed).
func forms(secret []byte) [][]byte {
	out := [][]byte{secret, []byte(hex.EncodeToString(secret))}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for off := range 3 {
			s := strings.TrimRight(enc.EncodeToString(secret[off:]), "=")
			out = append(out, []byte(s[1:len(s)-2]))
		}
	}
	return out
}

// window is how many leading bytes of a secret's form index it in a
// needles set.
const window = 12

// needles finds any form of any of a set of secrets in one pass over a
// haystack, so that hundreds of canaries cost one scan, not hundreds.
type needles map[string][][]byte // first window bytes -> the forms

func newNeedles(secrets []string) needles {
	n := make(needles)
	for _, s := range secrets {
		for _, f := range forms([]byte(s)) {
			k := string(f[:window])
			n[k] = append(n[k], f)
		}
	}
	return n
}

// find returns the first form found in haystack, or nil.
func (n needles) find(haystack []byte) []byte {
	for i := 0; i+window <= len(haystack); i++ {
		for _, f := range n[string(haystack[i:i+window])] {
			if bytes.HasPrefix(haystack[i:], f) {
				return f
			}
		}
	}
	return nil
}

// assertNoCanary fails t if any canary appears, in any form, in haystack.
func assertNoCanary(t *testing.T, where string, haystack []byte, canaries []string) {
	t.Helper()
	if f := newNeedles(canaries).find(haystack); f != nil {
		t.Errorf("%s contains a prompt canary (as %q)", where, f)
	}
}
