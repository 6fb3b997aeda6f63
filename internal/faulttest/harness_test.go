package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
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
type logBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a running sealgate or sealgate-worker process, killed when its
// test ends.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result; read only after done is closed
}

// childEnv is the test's environment without the variables the commands
// read, so that the developer's own settings do not leak into a test.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SEALGATE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// startProc starts bin, with its output (both streams) in the proc's log.
// The process is killed when the test ends, and its log shown if the test
// failed.
func startProc(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: &logBuffer{}, done: make(chan struct{})}
	p.cmd.Env = childEnv(env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	setParentDeathSignal(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("output of %s (pid %d):\n%s", name, p.cmd.Process.Pid, lastLines(p.out.String(), 80))
		}
	})
	return p
}

// kill ends the process with SIGKILL, which also ends a stopped one, and
// waits for it.
func (p *proc) kill() {
	if !p.exited() {
		p.cmd.Process.Kill()
	}
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling %s with %v: %v", p.name, sig, err)
	}
}

// wait waits for the process to exit and returns how it exited.
func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v", p.name, timeout)
		return nil
	}
}

// logRecord waits for the process to log a JSON record with message msg
// and returns the record.
func (p *proc) logRecord(t *testing.T, msg string) map[string]any {
	t.Helper()
	var rec map[string]any
	eventually(t, startTimeout, fmt.Sprintf("%s logging %q", p.name, msg), func() error {
		if rec = findRecord(p.out.String(), msg); rec != nil {
			return nil
		}
		if p.exited() {
			t.Fatalf("%s exited (%v) before logging %q:\n%s", p.name, p.err, msg, lastLines(p.out.String(), 40))
		}
		return errors.New("not logged yet")
	})
	return rec
}

// findRecord returns the first JSON log record in out whose msg is msg.
func findRecord(out, msg string) map[string]any {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			return rec
		}
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[%d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

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

func tryCLI(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sealgateBin, args...)
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("sealgate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// gatewayProc is a running `sealgate gateway` with its files in dir: the
// SQLite database (unless env names another), the development TLS
// certificate, the admin credential and the anchor key.
type gatewayProc struct {
	*proc
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
	g := &gatewayProc{
		dir: dir, env: env, extra: extra,
		ca:    filepath.Join(dir, "tls", "dev-tls-cert.pem"),
		admin: filepath.Join(dir, "admin.cred"),
	}
	args := []string{"gateway", "-listen", listen,
		"-dev-tls-dir", filepath.Join(dir, "tls"),
		"-admin-credential-file", g.admin,
		"-anchor-key-file", filepath.Join(dir, "anchor.key"),
		"-insecure-allow-simulated",
	}
	if !hasEnv(env, "SEALGATE_DATABASE") {
		args = append(args, "-db", filepath.Join(dir, "gateway.db"))
	}
	g.proc = startProc(t, name, env, sealgateBin, append(args, extra...)...)
	rec := g.logRecord(t, "gateway listening")
	g.addr, _ = rec["addr"].(string)
	if g.addr == "" {
		t.Fatalf("%s: gateway listening record without addr: %v", name, rec)
	}
	g.url = "https://" + g.addr
	pem, err := os.ReadFile(g.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: no certificate in %s", name, g.ca)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	g.http = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	eventually(t, startTimeout, name+" ready", func() error {
		if g.exited() {
			t.Fatalf("%s exited: %v", name, g.err)
		}
		return g.get(proto.PathReady, nil)
	})
	return g
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

func hasEnv(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// get fetches path from the gateway without a credential; a non-200
// answer is an error. body, when not nil, receives the answer.
func (g *gatewayProc) get(path string, body *[]byte) error {
	resp, err := g.http.Get(g.url + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if body != nil {
		*body = data
	}
	return nil
}

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
	args := append([]string{"admin"}, strings.Fields(verb)...)
	args = append(args, "-gateway", g.url, "-credential-file", g.admin, "-gateway-ca", g.ca)
	return tryCLI(append(args, flags...)...)
}

// status is `sealgate admin status -json`.
func (g *gatewayProc) status() (proto.Status, error) {
	var st proto.Status
	out, err := g.tryAdminCLI("status", "-json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("admin status -json: %v", err)
	}
	return st, nil
}

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
	return g.waitStatus(t, startTimeout, "workers "+strings.Join(ids, ", ")+" active", func(st proto.Status) error {
		for _, id := range ids {
			w, ok := workerStatus(st, id)
			if !ok {
				return fmt.Errorf("worker %s not listed", id)
			}
			if w.State != "active" {
				return fmt.Errorf("worker %s is %s, want active", id, w.State)
			}
		}
		return nil
	})
}

func workerStatus(st proto.Status, id string) (proto.WorkerStatus, bool) {
	for _, w := range st.Workers {
		if w.WorkerID == id {
			return w, true
		}
	}
	return proto.WorkerStatus{}, false
}

// metric returns the sum of the gateway's samples of
// sealgate_gateway_NAME whose labels include every name="value" pair in
// labels.
func (g *gatewayProc) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	var body []byte
	if err := g.get(proto.PathMetrics, &body); err != nil {
		t.Fatal(err)
	}
	full := "sealgate_gateway_" + name
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		metric, labelSet, _ := strings.Cut(series, "{")
		if metric != full {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(labelSet, l) {
				match = false
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric %s: value %q: %v", series, value, err)
		}
		sum += v
	}
	return sum
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
	p := provider{id: id, cred: filepath.Join(dir, id+".cred"), key: filepath.Join(dir, id+".key")}
	admin.adminCLI(t, "provider create", "-id", id, "-credential-out", p.cred)
	cli(t, "provider", "keygen", "-out", p.key)
	cli(t, "provider", "register-key", "-gateway", reg.url, "-gateway-ca", reg.ca, "-credential-file", p.cred, "-key-file", p.key)
	return p
}

// newTenant creates tenant id, with rate limits no test reaches, and
// returns its credential file.
func newTenant(t *testing.T, admin *gatewayProc, dir, id string) string {
	t.Helper()
	cred := filepath.Join(dir, id+".cred")
	admin.adminCLI(t, "tenant create", "-id", id, "-rps", "1000", "-burst", "1000", "-credential-out", cred)
	return cred
}

// startWorker runs a sealgate-worker on the simulated TEE for provider p,
// enrolling with g.
func startWorker(t *testing.T, g *gatewayProc, p provider, id string, extra ...string) *proc {
	t.Helper()
	args := []string{"-gateway", g.url, "-gateway-ca", g.ca, "-id", id,
		"-tee", "sim", "-insecure-simulated-tee",
		"-credential-file", p.cred, "-provider-key-file", p.key}
	return startProc(t, id, nil, workerBin, append(args, extra...)...)
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
