package faulttest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/internal/netproc"
	"github.com/sealgate/sealgate/proto"
)

// Deadlines of the harness's waits. They bound how long a broken network
// hangs a test; none of them is a timing the tests assert.
const (
	startTimeout = 20 * time.Second // a process up and answering
	stateTimeout = 30 * time.Second // a state change the gateway makes on its own schedule
	pollEvery    = 50 * time.Millisecond
)

// eventually calls f until it returns nil, and fails the test with f's last
// error when timeout passes first.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(pollEvery)
	}
}

// logBuffer collects a process's output. It is safe for concurrent use.
type logBuffer = netproc.LogBuffer

// proc is a running sealgate or sealgate-worker process, killed when its
// test ends.
type proc struct {
	*netproc.Proc
	name string
	out  *logBuffer
}

// startProc starts bin, with its output (both streams) in the proc's log.
// The process is killed when the test ends, and its log shown if the test
// failed.
func startProc(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	np, err := netproc.Start(name, env, nil, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return watch(t, np)
}

// watch kills np when the test ends, and shows its log if the test
// failed.
func watch(t *testing.T, np *netproc.Proc) *proc {
	t.Cleanup(func() {
		np.Kill()
		if t.Failed() {
			t.Logf("output of %s (pid %d):\n%s", np.Name, np.Pid(), lastLines(np.Out.String(), 80))
		}
	})
	return &proc{Proc: np, name: np.Name, out: np.Out}
}

// kill ends the process with SIGKILL, which also ends a stopped one, and
// waits for it.
func (p *proc) kill() { p.Kill() }

func (p *proc) exited() bool { return p.Exited() }

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the process to exit and returns how it exited.
func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	exit, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return exit
}

func findRecord(out, msg string) map[string]any { return netproc.FindRecord(out, msg) }

func lastLines(s string, n int) string { return netproc.LastLines(s, n) }

// bins are the sealgate and sealgate-worker commands, built once for the
// whole test binary by TestMain.
var bins netproc.Bins

// cli runs `sealgate args...` to completion and returns its standard
// output; a non-zero exit fails the test.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := tryCLI(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tryCLI(args ...string) (string, error) { return bins.CLI(context.Background(), args...) }

// gatewayProc is a running `sealgate gateway` with its files in dir: the
// SQLite database (unless env names another), the development TLS
// certificate, the admin credential and the anchor key.
type gatewayProc struct {
	*proc
	gw    *netproc.Gateway
	dir   string
	env   []string
	extra []string
	addr  string // host:port it listens on
	url   string
	ca    string // the development certificate, for workers and clients
	admin string // the admin credential file
	http  *http.Client
}

// startGateway runs a gateway on listen (127.0.0.1:0 for any port) that
// admits simulated-TEE workers, and waits until it is ready.
func startGateway(t *testing.T, name, dir, listen string, env []string, extra ...string) *gatewayProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	gw, err := netproc.StartGateway(ctx, bins, name, dir, listen, env, nil, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.HTTP.CloseIdleConnections)
	return &gatewayProc{
		proc: watch(t, gw.Proc), gw: gw,
		dir: dir, env: env, extra: extra, addr: gw.Addr, url: gw.URL, ca: gw.CA, admin: gw.Admin, http: gw.HTTP,
	}
}

// restart starts the same gateway again, on the same address, with the
// same files and flags. The old process must have exited.
func (g *gatewayProc) restart(t *testing.T, name string) *gatewayProc {
	t.Helper()
	if !g.exited() {
		t.Fatalf("restarting %s while it runs", g.name)
	}
	return startGateway(t, name, g.dir, g.addr, g.env, g.extra...)
}

// get fetches path from the gateway without a credential; a non-200
// answer is an error. body, when not nil, receives the answer.
func (g *gatewayProc) get(path string, body *[]byte) error { return g.gw.Get(path, body) }

// adminCLI runs `sealgate admin VERB... FLAGS...` against the gateway with
// its admin credential; verb is one or two words, such as "status" or
// "pool create".
func (g *gatewayProc) adminCLI(t *testing.T, verb string, flags ...string) string {
	t.Helper()
	out, err := g.tryAdminCLI(verb, flags...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (g *gatewayProc) tryAdminCLI(verb string, flags ...string) (string, error) {
	return g.gw.AdminCLI(context.Background(), verb, flags...)
}

// status is `sealgate admin status -json`.
func (g *gatewayProc) status() (proto.Status, error) { return g.gw.Status(context.Background()) }

// waitStatus polls the admin status until ok accepts it (ok returns why
// not), and returns that status.
func (g *gatewayProc) waitStatus(t *testing.T, timeout time.Duration, what string, ok func(proto.Status) error) proto.Status {
	t.Helper()
	var st proto.Status
	eventually(t, timeout, g.name+": "+what, func() error {
		var err error
		if st, err = g.status(); err != nil {
			return err
		}
		return ok(st)
	})
	return st
}

// waitActive waits until every worker in ids is listed active in the admin
// status.
func (g *gatewayProc) waitActive(t *testing.T, ids ...string) proto.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	st, err := g.gw.WaitActive(ctx, ids...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func workerStatus(st proto.Status, id string) (proto.WorkerStatus, bool) {
	return netproc.WorkerStatus(st, id)
}

// metric returns the sum of the gateway's samples of
// sealgate_gateway_NAME whose labels include every name="value" pair in
// labels.
func (g *gatewayProc) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, err := g.gw.Metric("sealgate_gateway_"+name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// provider is a provider account made with the CLI: its credential file
// and its endorsement key file.
type provider struct {
	id, cred, key string
}

// newProvider creates provider id through admin, makes its endorsement
// key and registers it through reg (the same gateway, or a replica).
func newProvider(t *testing.T, admin, reg *gatewayProc, dir, id string) provider {
	t.Helper()
	p, err := netproc.NewProvider(t.Context(), admin.gw, reg.gw, dir, id)
	if err != nil {
		t.Fatal(err)
	}
	return provider{id: p.ID, cred: p.Cred, key: p.Key}
}

// newTenant creates tenant id, with rate limits no test reaches, and
// returns its credential file.
func newTenant(t *testing.T, admin *gatewayProc, dir, id string) string {
	t.Helper()
	cred, err := netproc.NewTenant(t.Context(), admin.gw, dir, id, "-rps", "5000", "-burst", "5000")
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// startWorker runs a sealgate-worker on the simulated TEE for provider p,
// enrolling with g.
func startWorker(t *testing.T, g *gatewayProc, p provider, id string, extra ...string) *proc {
	t.Helper()
	np, err := netproc.StartWorker(g.gw, netproc.Provider{ID: p.id, Cred: p.cred, Key: p.key}, id, nil, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return watch(t, np)
}

// newClient returns a Go SDK client of the gateway for the tenant whose
// credential is in credFile, accepting simulated workers and sealing to k.
func newClient(t *testing.T, g *gatewayProc, credFile string, k int) *client.Client {
	t.Helper()
	cred, err := os.ReadFile(credFile)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(g.ca)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{
		GatewayURL: g.url,
		Credential: strings.TrimSpace(string(cred)),
		GatewayCA:  ca,
		Policy:     policy.InsecureSimulated(),
		K:          k,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// listed returns the ids of the workers the client verified for task.
func listed(ctx context.Context, c *client.Client, task string) ([]string, error) {
	ws, refused, err := c.Workers(ctx, task)
	if err != nil {
		return nil, err
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("client refused %s: %v", refused[0].WorkerID, refused[0].Err)
	}
	var ids []string
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	return ids, nil
}

// document is a text for the summarizer, and its summary in two
// sentences as the builtin backend computes it (checked, not assumed, by
// the first request of each test).
const document = "The gateway relays sealed requests to attested workers. " +
	"It never holds a key that opens a request or a response. " +
	"Workers prove what code they run with fresh evidence. " +
	"A worker that fails before its first byte is skipped for the next candidate. " +
	"After the first byte the gateway never retries, and a broken stream is reported to the client. " +
	"Replicas of the gateway share their state in PostgreSQL."

// checkSummary checks that summary is two sentences of document.
func checkSummary(summary string) error {
	sentences := strings.SplitAfter(strings.TrimSpace(summary), ". ")
	if len(sentences) != 2 {
		return fmt.Errorf("summary %q: found %d sentences, want 2", summary, len(sentences))
	}
	for _, s := range sentences {
		if !strings.Contains(document, strings.TrimSpace(s)) {
			return fmt.Errorf("summary %q: sentence %q is not in the document", summary, s)
		}
	}
	return nil
}

func summarize(ctx context.Context, c *client.Client) (*client.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return c.Summarize(ctx, document, client.SummarizeOptions{Sentences: 2})
}
