package netproc

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// Bins are the paths of the built sealgate and sealgate-worker commands.
type Bins struct {
	Sealgate, Worker string
}

// Build builds cmd/sealgate and cmd/sealgate-worker of the module in root
// into dir.
func Build(ctx context.Context, root, dir string) (Bins, error) {
	b := Bins{Sealgate: filepath.Join(dir, "sealgate"), Worker: filepath.Join(dir, "sealgate-worker")}
	for _, x := range []struct{ bin, pkg string }{{b.Sealgate, "./cmd/sealgate"}, {b.Worker, "./cmd/sealgate-worker"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", x.bin, x.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return Bins{}, fmt.Errorf("go build %s: %v\n%s", x.pkg, err, out)
		}
	}
	return b, nil
}

// ModuleRoot returns the directory holding go.mod, found from the working
// directory upwards.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errNoGoMod
		}
		dir = parent
	}
}

// CLITimeout bounds one run of the sealgate CLI.
const CLITimeout = 20 * time.Second

// CLI runs `sealgate args...` to completion, within CLITimeout, and
// returns its standard output; a non-zero exit is an error carrying its
// standard error.
func (b Bins) CLI(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, CLITimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.Sealgate, args...)
	cmd.Env = ChildEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("sealgate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// Gateway is a running `sealgate gateway` with its files in Dir: the
// SQLite database (unless Env names another store), the development TLS
// certificate, the admin credential and the anchor key.
type Gateway struct {
	*Proc
	Bins  Bins
	Dir   string
	Addr  string // host:port it listens on
	URL   string
	CA    string // the development certificate's file, for workers and clients
	Admin string // the admin credential's file
	// HTTP trusts the development certificate.
	HTTP *http.Client
	// Extra are the flags given after GatewayArgs'.
	Extra []string
}

// GatewayArgs are the flags StartGateway gives `sealgate gateway` before
// the caller's own.
func GatewayArgs(dir, listen string, env []string) []string {
	args := []string{"gateway", "-listen", listen,
		"-dev-tls-dir", filepath.Join(dir, "tls"),
		"-admin-credential-file", filepath.Join(dir, "admin.cred"),
		"-anchor-key-file", filepath.Join(dir, "anchor.key"),
		"-insecure-allow-simulated",
	}
	if !HasEnv(env, "SEALGATE_DATABASE") {
		args = append(args, "-db", filepath.Join(dir, "gateway.db"))
	}
	return args
}

// StartGateway runs a gateway on listen (127.0.0.1:0 for any port) that
// admits simulated-TEE workers, with its files in dir, and waits until it
// is ready. extra are more flags. On error the process, if it started, is
// killed.
func StartGateway(ctx context.Context, b Bins, name, dir, listen string, env []string, tee io.Writer, extra ...string) (*Gateway, error) {
	p, err := Start(name, env, tee, b.Sealgate, append(GatewayArgs(dir, listen, env), extra...)...)
	if err != nil {
		return nil, err
	}
	g := &Gateway{Proc: p, Bins: b, Dir: dir, Extra: extra,
		CA:    filepath.Join(dir, "tls", "dev-tls-cert.pem"),
		Admin: filepath.Join(dir, "admin.cred"),
	}
	if err := g.ready(ctx); err != nil {
		p.Kill()
		return nil, err
	}
	return g, nil
}

// ready waits for the gateway's listening record, reads its address and
// certificate, and waits until /readyz answers.
func (g *Gateway) ready(ctx context.Context) error {
	rec, err := g.WaitRecord(ctx, "gateway listening")
	if err != nil {
		return err
	}
	g.Addr, _ = rec["addr"].(string)
	if g.Addr == "" {
		return fmt.Errorf("%s: gateway listening record without addr: %v", g.Name, rec)
	}
	g.URL = "https://" + g.Addr
	pem, err := os.ReadFile(g.CA)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s: no certificate in %s", g.Name, g.CA)
	}
	if g.HTTP != nil {
		g.HTTP.CloseIdleConnections()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	g.HTTP = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return Poll(ctx, g.Name+" ready", func() error {
		if g.Exited() {
			return fmt.Errorf("%s exited: %v\n%s", g.Name, g.err, LastLines(g.Out.String(), 40))
		}
		return g.Get(proto.PathReady, nil)
	})
}

// Restart starts the same gateway again, on the same address, with the
// same files and flags, and waits until it is ready. The old process must
// have exited. The new process's log starts empty.
func (g *Gateway) Restart(ctx context.Context, tee io.Writer) error {
	if !g.Exited() {
		return fmt.Errorf("restarting %s while it runs (pid %d)", g.Name, g.Pid())
	}
	p, err := Start(g.Name, g.Env, tee, g.Bins.Sealgate, append(GatewayArgs(g.Dir, g.Addr, g.Env), g.Extra...)...)
	if err != nil {
		return err
	}
	g.Proc = p
	if err := g.ready(ctx); err != nil {
		p.Kill()
		return err
	}
	return nil
}

// Get fetches path from the gateway without a credential; a non-200
// answer is an error. body, when not nil, receives the answer.
func (g *Gateway) Get(path string, body *[]byte) error {
	resp, err := g.HTTP.Get(g.URL + path)
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

// Flags are the flags that point a sealgate command at the gateway.
func (g *Gateway) Flags() []string {
	return []string{"-gateway", g.URL, "-gateway-ca", g.CA}
}

// AdminCLI runs `sealgate admin VERB... FLAGS...` against the gateway
// with its admin credential; verb is one or two words, such as "status"
// or "pool create".
func (g *Gateway) AdminCLI(ctx context.Context, verb string, flags ...string) (string, error) {
	args := append([]string{"admin"}, strings.Fields(verb)...)
	args = append(append(args, g.Flags()...), "-credential-file", g.Admin)
	return g.Bins.CLI(ctx, append(args, flags...)...)
}

// Status is `sealgate admin status -json`.
func (g *Gateway) Status(ctx context.Context) (proto.Status, error) {
	var st proto.Status
	out, err := g.AdminCLI(ctx, "status", "-json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("admin status -json: %v", err)
	}
	return st, nil
}

// WorkerStatus returns worker id's entry in st.
func WorkerStatus(st proto.Status, id string) (proto.WorkerStatus, bool) {
	for _, w := range st.Workers {
		if w.WorkerID == id {
			return w, true
		}
	}
	return proto.WorkerStatus{}, false
}

// WaitActive waits until every worker in ids is listed active in the
// admin status.
func (g *Gateway) WaitActive(ctx context.Context, ids ...string) (proto.Status, error) {
	var st proto.Status
	err := Poll(ctx, g.Name+": workers "+strings.Join(ids, ", ")+" active", func() error {
		var err error
		if st, err = g.Status(ctx); err != nil {
			return err
		}
		for _, id := range ids {
			w, ok := WorkerStatus(st, id)
			if !ok {
				return fmt.Errorf("worker %s not listed", id)
			}
			if w.State != "active" {
				return fmt.Errorf("worker %s is %s, want active", id, w.State)
			}
		}
		return nil
	})
	return st, err
}

// Metric returns the sum of the gateway's samples of the metric named
// name (in full, such as "sealgate_gateway_requests_total" or
// "go_goroutines") whose labels include every name="value" pair in labels.
func (g *Gateway) Metric(name string, labels ...string) (float64, error) {
	var body []byte
	if err := g.Get(proto.PathMetrics, &body); err != nil {
		return 0, err
	}
	return SumMetric(string(body), name, labels...)
}

// SumMetric sums the samples of metric name in a Prometheus text
// exposition whose labels include every name="value" pair in labels.
func SumMetric(exposition, name string, labels ...string) (float64, error) {
	sum := 0.0
	for _, line := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		metric, labelSet, _ := strings.Cut(series, "{")
		if metric != name {
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
			return 0, fmt.Errorf("metric %s: value %q: %v", series, value, err)
		}
		sum += v
	}
	return sum, nil
}

// Provider is a provider account made with the CLI: its credential file
// and its endorsement key file.
type Provider struct {
	ID, Cred, Key string
}

// NewProvider creates provider id through admin, makes its endorsement
// key and registers it through reg (the same gateway, or a replica). Its
// files go in dir.
func NewProvider(ctx context.Context, admin, reg *Gateway, dir, id string) (Provider, error) {
	p := Provider{ID: id, Cred: filepath.Join(dir, id+".cred"), Key: filepath.Join(dir, id+".key")}
	if _, err := admin.AdminCLI(ctx, "provider create", "-id", id, "-credential-out", p.Cred); err != nil {
		return p, err
	}
	if _, err := admin.Bins.CLI(ctx, "provider", "keygen", "-out", p.Key); err != nil {
		return p, err
	}
	args := append(append([]string{"provider", "register-key"}, reg.Flags()...), "-credential-file", p.Cred, "-key-file", p.Key)
	_, err := admin.Bins.CLI(ctx, args...)
	return p, err
}

// NewTenant creates tenant id with the rate limits in flags (such as
// "-rps", "1000") and returns its credential file, in dir.
func NewTenant(ctx context.Context, admin *Gateway, dir, id string, flags ...string) (string, error) {
	cred := filepath.Join(dir, id+".cred")
	_, err := admin.AdminCLI(ctx, "tenant create", append([]string{"-id", id, "-credential-out", cred}, flags...)...)
	return cred, err
}

// WorkerArgs are the flags of a sealgate-worker on the simulated TEE for
// provider p, enrolling with g, followed by extra.
func WorkerArgs(g *Gateway, p Provider, id string, extra ...string) []string {
	args := append(g.Flags(), "-id", id,
		"-tee", "sim", "-insecure-simulated-tee",
		"-credential-file", p.Cred, "-provider-key-file", p.Key)
	return append(args, extra...)
}

// StartWorker starts a sealgate-worker on the simulated TEE for provider
// p, enrolling with g. It does not wait for the enrollment
// (Gateway.WaitActive does).
func StartWorker(g *Gateway, p Provider, id string, tee io.Writer, extra ...string) (*Proc, error) {
	return Start(id, nil, tee, g.Bins.Worker, WorkerArgs(g, p, id, extra...)...)
}
