// Command benchgateway measures the gateway hop: a sealed request with a
// 2 KiB padded plaintext, sent to one fast worker directly, through the
// sealgate gateway, and through nginx proxy_pass, in one process run on
// one machine. It prints a Markdown table and the ratios issue 5 asks for
// (gateway/nginx throughput at 32 connections, added p50 and p99 latency
// at one connection). scripts/bench-gateway runs it; see that script's
// header for what it installs.
//
// Everything but nginx runs in this process, on loopback, in plain
// HTTP/1.1 (the INSECURE test settings of the gateway and the worker):
// the load generator, the gateway and a real enclave.Worker with an echo
// backend and simulated evidence. A fourth line runs a second gateway and
// worker with TLS on both links (gateway TLS, worker mutual TLS), for
// information. Each request is sealed fresh (the worker refuses a replayed
// request id) before its run starts, so sealing is not in any timing.
//
// The machines are shared and noisy: compare the ratios, measured in the
// same run, not the absolute numbers. Every round runs each path's
// throughput in turn (the order reversed every other round), then sends
// one request at a time to each path in turn for latency, so that a
// neighbour's load falls on all of them alike. CPU per request is this process's
// CPU time (getrusage) plus nginx's (from /proc) over a throughput run,
// divided by the requests served; the proxy's share is a path's CPU per
// request less the direct path's. Goroutines are labelled with the
// component that started them (client, gateway, worker), so a CPU profile
// (-cpuprofile) can be split with `go tool pprof -tagfocus`.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// task is the echo backend's only task.
const task = "echo"

// payloadSize fills the 2 KiB padding bucket: a 4-byte length and the
// payload.
const payloadSize = 2<<10 - 4

// options are the command's flags; see main for what each means.
type options struct {
	nginx      string        // nginx binary; empty skips the nginx path
	duration   time.Duration // of each throughput run
	warmup     time.Duration // before each throughput run
	latencyN   int           // requests to each path per round at one connection
	conns      int           // connections of the throughput runs
	rounds     int           // interleaved rounds
	withTLS    bool          // measure a gateway with TLS on both links too
	cpuProfile string        // file for a CPU profile of one gateway run
	paths      string        // the paths to measure, comma-separated
}

func main() {
	var o options
	flag.StringVar(&o.nginx, "nginx", "", "nginx binary to measure proxy_pass with; empty skips the nginx path")
	flag.DurationVar(&o.duration, "duration", 1500*time.Millisecond, "length of each throughput run")
	flag.DurationVar(&o.warmup, "warmup", 400*time.Millisecond, "warmup before each throughput run")
	flag.IntVar(&o.latencyN, "latency-requests", 1000, "requests to each path per round at one connection, the paths taken in turn")
	flag.IntVar(&o.conns, "conns", 32, "concurrent connections of the throughput runs")
	flag.IntVar(&o.rounds, "rounds", 4, "times every path is measured, interleaved")
	flag.BoolVar(&o.withTLS, "tls", true, "also measure a gateway with TLS on both links")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the last round's plain gateway throughput run here")
	flag.StringVar(&o.paths, "paths", "direct,gateway,nginx,tls", "paths to measure, of direct, gateway, nginx and tls; direct and gateway are always measured")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "benchgateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "benchgateway-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var stops []func()
	defer func() {
		for _, s := range slices.Backward(stops) {
			s()
		}
	}()

	plain, err := startNetwork(ctx, filepath.Join(dir, "plain"), false)
	if err != nil {
		return err
	}
	stops = append(stops, plain.stop)
	var targets []*target
	direct := &target{name: "direct to worker", url: plain.workerURL + proto.PathServe, contentType: proto.MediaTypeForward,
		client: newClient(nil), key: plain.key, body: forwardBody}
	gw := &target{name: "sealgate gateway", url: plain.gatewayURL + proto.PathRequests, contentType: proto.MediaTypeRequest,
		cred: plain.tenant, client: newClient(nil), key: plain.key, body: requestBody}
	targets = append(targets, direct, gw)
	var ngx *target
	if o.nginx != "" && strings.Contains(o.paths, "nginx") {
		n, err := startNginx(ctx, o.nginx, filepath.Join(dir, "nginx"), plain.workerAddr)
		if err != nil {
			return err
		}
		stops = append(stops, n.stop)
		ngx = &target{name: "nginx proxy_pass", url: "http://" + n.addr + proto.PathServe, contentType: proto.MediaTypeForward,
			client: newClient(nil), key: plain.key, body: forwardBody, nginx: n}
		targets = append(targets, ngx)
	}
	if o.withTLS && strings.Contains(o.paths, "tls") {
		secure, err := startNetwork(ctx, filepath.Join(dir, "tls"), true)
		if err != nil {
			return err
		}
		stops = append(stops, secure.stop)
		targets = append(targets, &target{name: "sealgate gateway, TLS + worker mTLS", url: secure.gatewayURL + proto.PathRequests,
			contentType: proto.MediaTypeRequest, cred: secure.tenant, client: newClient(secure.gatewayTLS), key: secure.key, body: requestBody})
	}

	for _, t := range targets {
		if err := t.check(); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	sample, err := sealOne(plain.key)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "sealed request: %d bytes (suite %v, one candidate, %d-byte payload padded to %d); forwarded to the worker: %d bytes\n",
		len(sample), proto.SuiteMLKEM768X25519, payloadSize, proto.RequestBucket(payloadSize), len(mustForward(sample)))
	fmt.Fprintf(os.Stderr, "GOMAXPROCS %d, %d CPUs; %d rounds of: %v throughput at %d connections (after %v warmup) on each path, then %d requests at 1 connection to each path in turn\n",
		runtime.GOMAXPROCS(0), runtime.NumCPU(), o.rounds, o.duration, o.conns, o.warmup, o.latencyN)

	for round := 1; round <= o.rounds; round++ {
		// Every other round runs the paths in reverse, so that none
		// always follows the same one.
		order := slices.Clone(targets)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, t := range order {
			var prof *os.File
			if o.cpuProfile != "" && round == o.rounds && t == gw {
				if prof, err = os.Create(o.cpuProfile); err != nil {
					return err
				}
			}
			if err := t.throughputRun(o, prof); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			r := t.rates[len(t.rates)-1]
			fmt.Fprintf(os.Stderr, "round %d: %-36s %6.0f req/s at %d connections, %6.1f CPU µs/req\n",
				round, t.name, r.rps, o.conns, r.cpuPerReq)
		}
		if err := latencyRun(order, o); err != nil {
			return err
		}
		var p50 []string
		for _, t := range targets {
			p50 = append(p50, fmt.Sprintf("%s %.0f µs", t.name, micros(percentile(t.lat[len(t.lat)-1], 0.5))))
		}
		fmt.Fprintf(os.Stderr, "round %d: p50 at 1 connection: %s\n", round, strings.Join(p50, ", "))
	}
	report(os.Stdout, o, targets, direct, gw, ngx)
	return nil
}

// network is one gateway and one worker.
type network struct {
	gatewayURL string
	gatewayTLS *tls.Config // trust in the gateway's certificate; nil on plain HTTP
	tenant     string
	workerURL  string
	workerAddr string
	key        *seal.PublicKey // the worker's current key of the suite's KEM
	stop       func()
}

// startNetwork starts a gateway (its SQLite store in dir) and one worker,
// enrolled by a provider, and creates a tenant without practical rate
// limits, the way internal/devnet assembles its network. withTLS serves
// the gateway over TLS and the worker over mutual TLS; otherwise every
// link is INSECURE plain HTTP.
func startNetwork(ctx context.Context, dir string, withTLS bool) (*network, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var done []chan error
	n := &network{}
	n.stop = func() {
		cancel()
		for _, d := range done {
			<-d
		}
	}
	fail := func(err error) (*network, error) {
		n.stop()
		return nil, err
	}
	admin := gateway.NewCredential(proto.CredentialAdmin)
	gcfg := gateway.Config{
		Database:             filepath.Join(dir, "gateway.db"),
		AdmissionPolicy:      policy.InsecureSimulated(),
		AdminCredentialHash:  gateway.HashCredential(admin),
		InsecurePlainHTTP:    !withTLS,
		InsecurePlainWorkers: !withTLS,
		Logger:               slog.New(slog.DiscardHandler),
	}
	var workerTrust *tls.Config
	if withTLS {
		cert, err := tlspin.SelfSigned(nil, time.Now(), 24*time.Hour)
		if err != nil {
			return fail(err)
		}
		gcfg.TLSCertificate = &cert
		pool := x509.NewCertPool()
		pool.AddCert(cert.Leaf)
		workerTrust = tlspin.TrustConfig(pool)
		n.gatewayTLS = tlspin.TrustConfig(pool)
	}
	gw, err := gateway.New(ctx, gcfg)
	if err != nil {
		return fail(err)
	}
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		gw.Close()
		return fail(err)
	}
	scheme := "http://"
	if withTLS {
		scheme = "https://"
	}
	n.gatewayURL = scheme + gln.Addr().String()
	done = append(done, goLabelled(ctx, "gateway", func(ctx context.Context) error { return gw.Serve(ctx, gln) }))

	prov, err := gw.CreateAccount(ctx, admin, "provider", proto.NewAccount{ID: "bench-provider"})
	if err != nil {
		return fail(fmt.Errorf("creating the provider: %w", err))
	}
	pub, provKey, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := gw.SetProviderKey(ctx, prov.Credential, proto.ProviderKey{PublicKey: pub}); err != nil {
		return fail(fmt.Errorf("registering the provider key: %w", err))
	}
	ten, err := gw.CreateAccount(ctx, admin, "tenant", proto.NewAccount{ID: "bench-tenant",
		RequestsPerSecond: 1e6, BurstRequests: 1e6, BytesPerSecond: 1 << 40, BurstBytes: 1 << 40})
	if err != nil {
		return fail(fmt.Errorf("creating the tenant: %w", err))
	}
	n.tenant = ten.Credential

	wln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	n.workerAddr = wln.Addr().String()
	n.workerURL = scheme + n.workerAddr
	w, err := enclave.New(enclave.Config{
		ID:                "bench-worker",
		GatewayURL:        n.gatewayURL,
		Credential:        prov.Credential,
		ProviderKey:       provKey,
		GatewayTLS:        workerTrust,
		InsecurePlainHTTP: !withTLS,
		Region:            "local",
		Evidence:          enclave.SimulatedEvidence{Device: sim.NewDevice(sim.DeviceConfig{})},
		Backend:           echoBackend{},
		MaxConcurrent:     256,
		ReattestInterval:  gateway.DefaultReattestInterval,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		wln.Close()
		return fail(err)
	}
	done = append(done, goLabelled(ctx, "worker", func(ctx context.Context) error { return w.Run(ctx, wln) }))
	deadline := time.Now().Add(20 * time.Second)
	for w.Bundle() == nil {
		if time.Now().After(deadline) {
			return fail(errors.New("the worker did not enroll within 20s"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, err := proto.ParseBundle(w.Bundle())
	if err != nil {
		return fail(err)
	}
	for _, k := range b.Keys.HPKE {
		if k.KEM == proto.SuiteMLKEM768X25519.KEM {
			if n.key, err = seal.ParsePublicKey(k); err != nil {
				return fail(err)
			}
		}
	}
	if n.key == nil {
		return fail(fmt.Errorf("the worker's bundle has no key of kem 0x%04x", proto.SuiteMLKEM768X25519.KEM))
	}
	return n, nil
}

// goLabelled runs f in a goroutine labelled component=name, which every
// goroutine it starts inherits, and returns the channel its result
// arrives on.
func goLabelled(ctx context.Context, name string, f func(context.Context) error) chan error {
	done := make(chan error, 1)
	pprof.Do(ctx, pprof.Labels("component", name), func(ctx context.Context) {
		go func() { done <- f(ctx) }()
	})
	return done
}

// echoBackend answers every task with its payload.
type echoBackend struct{}

var _ enclave.Backend = echoBackend{}

func (echoBackend) Tasks() []string { return []string{task} }

func (echoBackend) Serve(_ context.Context, _ string, payload []byte, emit func(string) error) (proto.EndBody, error) {
	if err := emit(string(payload)); err != nil {
		return proto.EndBody{}, err
	}
	return proto.EndBody{Backend: "bench-echo", Model: "echo", InputUnits: int64(len(payload)), OutputUnits: int64(len(payload))}, nil
}

// payload is the request every run sends.
var payload = bytes.Repeat([]byte("sealgate "), payloadSize/9+1)[:payloadSize]

func sealOne(k *seal.PublicKey) ([]byte, error) {
	r, err := seal.SealTo(proto.SuiteMLKEM768X25519, []*seal.PublicKey{k}, task, payload, seal.Options{})
	if err != nil {
		return nil, err
	}
	return r.Bytes(), nil
}

// requestBody is what a client sends the gateway: the sealed message.
func requestBody(msg []byte) ([]byte, error) { return msg, nil }

// forwardBody is what the gateway sends the worker for candidate 0: the
// header, the candidate's index and wrap, then the chunks as they are.
func forwardBody(msg []byte) ([]byte, error) {
	pre, err := proto.ReadRequestPreamble(bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	n := 8 + len(pre.HeaderBytes) + len(pre.Wraps)*proto.WrapSize
	out := proto.AppendForwardPreamble(make([]byte, 0, len(msg)+1), pre.HeaderBytes, 0, pre.Wraps[0])
	return append(out, msg[n:]...), nil
}

func mustForward(msg []byte) []byte {
	b, err := forwardBody(msg)
	if err != nil {
		panic(err)
	}
	return b
}

// newClient is the load generator's client: keep-alive connections, as
// many idle ones kept as the runs use, HTTP/1.1 (also over TLS).
func newClient(tc *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}}
}

// report prints the table and the ratios. Throughput and CPU are the
// median over the rounds, and each ratio the median of the rounds'
// ratios (each round measures every path within a few seconds, so a
// neighbour's load shifts them together); latency percentiles are over
// the samples of every round, taken from the paths in turn.
func report(w io.Writer, o options, targets []*target, direct, gw, ngx *target) {
	base := direct.pooled()
	// vs is the median over the rounds of f(t's run, direct's run).
	vs := func(t, ref *target, f func(a, b rate) float64) (float64, string) {
		var v []float64
		var s []string
		for i := range t.rates {
			v = append(v, f(t.rates[i], ref.rates[i]))
			s = append(s, fmt.Sprintf("%.2f", v[len(v)-1]))
		}
		return medianOf(v), strings.Join(s, ", ")
	}
	ratio := func(a, b rate) float64 { return a.rps / b.rps }
	extraCPU := func(a, b rate) float64 { return a.cpuPerReq - b.cpuPerReq }
	fmt.Fprintf(w, "| path | req/s @%d conns | CPU µs/req | proxy CPU µs/req | p50 µs @1 conn | p99 µs @1 conn | added p50 µs | added p99 µs |\n", o.conns)
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, t := range targets {
		lat := t.pooled()
		p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
		proxyCPU, added50, added99 := "-", "-", "-"
		if t != direct {
			c, _ := vs(t, direct, extraCPU)
			proxyCPU = fmt.Sprintf("%.1f", c)
			added50 = fmt.Sprintf("%.1f", micros(p50-percentile(base, 0.5)))
			added99 = fmt.Sprintf("%.1f", micros(p99-percentile(base, 0.99)))
		}
		fmt.Fprintf(w, "| %s | %.0f | %.1f | %s | %.1f | %.1f | %s | %s |\n", t.name,
			t.median(func(r rate) float64 { return r.rps }), t.median(func(r rate) float64 { return r.cpuPerReq }),
			proxyCPU, micros(p50), micros(p99), added50, added99)
	}
	fmt.Fprintln(w)
	g := gw.pooled()
	gAdded := percentile(g, 0.5) - percentile(base, 0.5)
	fmt.Fprintf(w, "- gateway added latency at 1 connection: p50 %.1f µs (goal ≤ 60), p99 %.1f µs\n",
		micros(gAdded), micros(percentile(g, 0.99)-percentile(base, 0.99)))
	r, per := vs(gw, direct, ratio)
	fmt.Fprintf(w, "- gateway / direct throughput: %.2f (rounds: %s)\n", r, per)
	if ngx != nil {
		r, per := vs(gw, ngx, ratio)
		fmt.Fprintf(w, "- gateway / nginx throughput at %d connections: %.2f (goal ≥ 1.0; rounds: %s)\n", o.conns, r, per)
		// With other processes on the machine, nginx's own processes get
		// the nginx path a larger share of the CPUs than this process's
		// threads alone get the others; CPU per request compares the
		// paths as if each had the machine to itself.
		r, per = vs(gw, ngx, func(a, b rate) float64 { return b.cpuPerReq / a.cpuPerReq })
		fmt.Fprintf(w, "- gateway / nginx throughput per CPU second (nginx path's CPU per request over the gateway path's): %.2f (rounds: %s)\n", r, per)
		n := ngx.pooled()
		nAdded := percentile(n, 0.5) - percentile(base, 0.5)
		fmt.Fprintf(w, "- nginx added latency: p50 %.1f µs, p99 %.1f µs; gateway added p50 / nginx added p50: %.2f\n",
			micros(nAdded), micros(percentile(n, 0.99)-percentile(base, 0.99)), float64(gAdded)/float64(nAdded))
		gc, gper := vs(gw, direct, extraCPU)
		nc, nper := vs(ngx, direct, extraCPU)
		fmt.Fprintf(w, "- proxy CPU per request (path less direct): gateway %.1f µs (rounds: %s), nginx %.1f µs (rounds: %s); the nginx processes' own: %.1f µs\n",
			gc, gper, nc, nper, ngx.median(func(r rate) float64 { return r.ngxPerReq }))
	}
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
