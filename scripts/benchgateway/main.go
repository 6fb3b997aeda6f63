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
//
// That is -mode hop, the default. Two more modes serve issue 9's report
// (scripts/bench): -mode stream, time to first byte and relay latency per
// chunk of a long stream (stream.go), and -mode idle, the gateway's
// memory per idle open stream, in separate processes (idle.go). -json
// writes each mode's figures for scripts/benchreport.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
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
	mode       string        // hop, stream or idle
	jsonOut    string        // file for the figures scripts/bench reports; empty writes none

	streamChunks int           // data chunks of each stream (mode stream)
	streamGap    time.Duration // between a stream's chunks
	streamRuns   int           // streams on each path

	idleStreams int    // concurrent idle streams (mode idle)
	heapProfile string // mode idle: file for the gateway's heap profile with the streams open
	role        string // internal: this process's part in mode idle
	dir         string // internal: the directory the processes of mode idle share
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
	flag.StringVar(&o.mode, "mode", "hop", "what to measure: hop (the gateway hop against direct and nginx), stream (time to first byte and per-chunk relay latency of a long stream, through the gateway and direct), or idle (the gateway's memory per idle open stream, with the gateway, the workers and the clients in three processes)")
	flag.StringVar(&o.jsonOut, "json", "", "also write the figures scripts/bench reports to this file, as JSON")
	flag.IntVar(&o.streamChunks, "stream-chunks", 200, "mode stream: data chunks in each stream")
	flag.DurationVar(&o.streamGap, "stream-gap", time.Millisecond, "mode stream: time between a stream's chunks")
	flag.IntVar(&o.streamRuns, "stream-runs", 20, "mode stream: streams on each path, the paths taken in turn")
	flag.IntVar(&o.idleStreams, "idle-streams", 10000, "mode idle: concurrent idle streams through the gateway")
	flag.StringVar(&o.heapProfile, "idle-heapprofile", "", "mode idle: write the gateway process's heap profile, taken with the streams open, to this file")
	flag.StringVar(&o.role, "role", "", "internal: run as the gateway or the workers of mode idle")
	flag.StringVar(&o.dir, "dir", "", "internal: the directory the processes of mode idle share")
	flag.Parse()
	var err error
	switch {
	case o.role != "":
		err = runRole(context.Background(), o)
	case o.mode == "hop":
		err = run(context.Background(), o)
	case o.mode == "stream":
		err = runStream(context.Background(), o)
	case o.mode == "idle":
		err = runIdle(context.Background(), o)
	default:
		err = fmt.Errorf("-mode: found %q, want hop, stream or idle", o.mode)
	}
	if err != nil {
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

	plain, err := startNetwork(ctx, filepath.Join(dir, "plain"), netOptions{})
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
		secure, err := startNetwork(ctx, filepath.Join(dir, "tls"), netOptions{withTLS: true})
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
	res := report(os.Stdout, o, targets, direct, gw, ngx)
	return writeJSON(o.jsonOut, results{Hop: res})
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

// netOptions vary the network startNetwork builds.
type netOptions struct {
	withTLS       bool            // gateway TLS and worker mutual TLS; else INSECURE plain HTTP on every link
	backend       enclave.Backend // the worker's; nil means echoBackend
	flushInterval time.Duration   // the worker's; zero means its default
}

// startNetwork starts a gateway (its SQLite store in dir) and one worker,
// enrolled by a provider, and creates a tenant without practical rate
// limits, the way internal/devnet assembles its network.
func startNetwork(ctx context.Context, dir string, no netOptions) (*network, error) {
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
	var cert *tls.Certificate
	if no.withTLS {
		c, err := tlspin.SelfSigned(nil, time.Now(), 24*time.Hour)
		if err != nil {
			return fail(err)
		}
		cert = &c
		n.gatewayTLS = trustIn(c.Leaf)
	}
	gw, admin, err := newGateway(ctx, dir, cert, 0)
	if err != nil {
		return fail(err)
	}
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		gw.Close()
		return fail(err)
	}
	n.gatewayURL = schemeOf(no.withTLS) + gln.Addr().String()
	done = append(done, goLabelled(ctx, "gateway", func(ctx context.Context) error { return gw.Serve(ctx, gln) }))
	acc, err := createAccounts(ctx, gw, admin)
	if err != nil {
		return fail(err)
	}
	n.tenant = acc.Tenant

	backend := no.backend
	if backend == nil {
		backend = echoBackend{}
	}
	wo := workerOptions{id: "bench-worker", gatewayURL: n.gatewayURL, acc: acc, backend: backend,
		capacity: 256, flushInterval: no.flushInterval}
	if no.withTLS {
		wo.gatewayTLS = trustIn(cert.Leaf)
	}
	w, wdone, addr, err := startWorker(ctx, wo)
	if err != nil {
		return fail(err)
	}
	done = append(done, wdone)
	n.workerAddr = addr
	n.workerURL = schemeOf(no.withTLS) + addr
	if n.key, err = bundleKey(w.Bundle()); err != nil {
		return fail(err)
	}
	return n, nil
}

func schemeOf(withTLS bool) string {
	if withTLS {
		return "https://"
	}
	return "http://"
}

// trustIn is a client TLS configuration that trusts cert alone.
func trustIn(cert *x509.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tlspin.TrustConfig(pool)
}

// newGateway builds a gateway with its SQLite store in dir, admitting
// INSECURE simulated evidence, and returns it with its admin credential.
// cert nil serves INSECURE plain HTTP to clients and workers. maxInFlight
// zero means the gateway's default.
func newGateway(ctx context.Context, dir string, cert *tls.Certificate, maxInFlight int) (*gateway.Gateway, string, error) {
	admin := gateway.NewCredential(proto.CredentialAdmin)
	gw, err := gateway.New(ctx, gateway.Config{
		Database:             filepath.Join(dir, "gateway.db"),
		AdmissionPolicy:      policy.InsecureSimulated(),
		AdminCredentialHash:  gateway.HashCredential(admin),
		TLSCertificate:       cert,
		InsecurePlainHTTP:    cert == nil,
		InsecurePlainWorkers: cert == nil,
		MaxInFlight:          maxInFlight,
		Logger:               slog.New(slog.DiscardHandler),
	})
	return gw, admin, err
}

// accounts are what createAccounts made: a provider with its endorsement
// key, and a tenant. Also the JSON the idle-stream gateway process hands
// the others.
type accounts struct {
	Provider    string             `json:"provider"`
	ProviderKey ed25519.PrivateKey `json:"provider_key"`
	Tenant      string             `json:"tenant"`
}

// createAccounts creates a provider with an endorsement key and a tenant
// without practical rate limits.
func createAccounts(ctx context.Context, gw *gateway.Gateway, admin string) (accounts, error) {
	prov, err := gw.CreateAccount(ctx, admin, "provider", proto.NewAccount{ID: "bench-provider"})
	if err != nil {
		return accounts{}, fmt.Errorf("creating the provider: %w", err)
	}
	pub, provKey, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := gw.SetProviderKey(ctx, prov.Credential, proto.ProviderKey{PublicKey: pub}); err != nil {
		return accounts{}, fmt.Errorf("registering the provider key: %w", err)
	}
	ten, err := gw.CreateAccount(ctx, admin, "tenant", proto.NewAccount{ID: "bench-tenant",
		RequestsPerSecond: 1e6, BurstRequests: 1e6, BytesPerSecond: 1 << 40, BurstBytes: 1 << 40})
	if err != nil {
		return accounts{}, fmt.Errorf("creating the tenant: %w", err)
	}
	return accounts{Provider: prov.Credential, ProviderKey: provKey, Tenant: ten.Credential}, nil
}

// workerOptions configure startWorker.
type workerOptions struct {
	id             string
	gatewayURL     string
	gatewayTLS     *tls.Config // nil: INSECURE plain HTTP, served and called
	acc            accounts
	backend        enclave.Backend
	capacity       int
	flushInterval  time.Duration
	requestTimeout time.Duration
}

// startWorker starts a real enclave.Worker with simulated evidence
// (INSECURE) on a free loopback port and waits until it has enrolled. It
// returns the worker, the channel its Run result arrives on (after ctx is
// cancelled), and its address.
func startWorker(ctx context.Context, o workerOptions) (*enclave.Worker, chan error, string, error) {
	wln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, "", err
	}
	w, err := enclave.New(enclave.Config{
		ID:                o.id,
		GatewayURL:        o.gatewayURL,
		Credential:        o.acc.Provider,
		ProviderKey:       o.acc.ProviderKey,
		GatewayTLS:        o.gatewayTLS,
		InsecurePlainHTTP: o.gatewayTLS == nil,
		Region:            "local",
		Evidence:          enclave.SimulatedEvidence{Device: sim.NewDevice(sim.DeviceConfig{})},
		Backend:           o.backend,
		MaxConcurrent:     o.capacity,
		FlushInterval:     o.flushInterval,
		RequestTimeout:    o.requestTimeout,
		ReattestInterval:  gateway.DefaultReattestInterval,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		wln.Close()
		return nil, nil, "", err
	}
	done := goLabelled(ctx, "worker", func(ctx context.Context) error { return w.Run(ctx, wln) })
	deadline := time.Now().Add(20 * time.Second)
	for w.Bundle() == nil {
		if time.Now().After(deadline) {
			return nil, done, "", fmt.Errorf("worker %s did not enroll within 20s", o.id)
		}
		select {
		case err := <-done:
			done <- err
			return nil, done, "", fmt.Errorf("worker %s stopped before it enrolled: %v", o.id, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return w, done, wln.Addr().String(), nil
}

// bundleKey is the key of the benchmark suite's KEM in an evidence bundle.
func bundleKey(raw []byte) (*seal.PublicKey, error) {
	b, err := proto.ParseBundle(raw)
	if err != nil {
		return nil, err
	}
	for _, k := range b.Keys.HPKE {
		if k.KEM == proto.SuiteMLKEM768X25519.KEM {
			return seal.ParsePublicKey(k)
		}
	}
	return nil, fmt.Errorf("the worker's bundle has no key of kem 0x%04x", proto.SuiteMLKEM768X25519.KEM)
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
func report(w io.Writer, o options, targets []*target, direct, gw, ngx *target) *hopResults {
	base := direct.pooled()
	res := &hopResults{Conns: o.conns, Rounds: o.rounds,
		DirectRPS:  direct.median(func(r rate) float64 { return r.rps }),
		GatewayRPS: gw.median(func(r rate) float64 { return r.rps }),
		DirectP50:  micros(percentile(base, 0.5)), GatewayP50: micros(percentile(gw.pooled(), 0.5)),
	}
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
	res.GatewayAddedP50 = micros(gAdded)
	r, per := vs(gw, direct, ratio)
	fmt.Fprintf(w, "- gateway / direct throughput: %.2f (rounds: %s)\n", r, per)
	if ngx != nil {
		r, per := vs(gw, ngx, ratio)
		fmt.Fprintf(w, "- gateway / nginx throughput at %d connections: %.2f (goal ≥ 1.0; rounds: %s)\n", o.conns, r, per)
		res.NginxRPS = ngx.median(func(r rate) float64 { return r.rps })
		res.GatewayOverNginx = r
		// With other processes on the machine, nginx's own processes get
		// the nginx path a larger share of the CPUs than this process's
		// threads alone get the others; CPU per request compares the
		// paths as if each had the machine to itself.
		r, per = vs(gw, ngx, func(a, b rate) float64 { return b.cpuPerReq / a.cpuPerReq })
		fmt.Fprintf(w, "- gateway / nginx throughput per CPU second (nginx path's CPU per request over the gateway path's): %.2f (rounds: %s)\n", r, per)
		res.GatewayOverNginxPerCPU = r
		n := ngx.pooled()
		nAdded := percentile(n, 0.5) - percentile(base, 0.5)
		fmt.Fprintf(w, "- nginx added latency: p50 %.1f µs, p99 %.1f µs; gateway added p50 / nginx added p50: %.2f\n",
			micros(nAdded), micros(percentile(n, 0.99)-percentile(base, 0.99)), float64(gAdded)/float64(nAdded))
		res.NginxP50, res.NginxAddedP50 = micros(percentile(n, 0.5)), micros(nAdded)
		gc, gper := vs(gw, direct, extraCPU)
		nc, nper := vs(ngx, direct, extraCPU)
		fmt.Fprintf(w, "- proxy CPU per request (path less direct): gateway %.1f µs (rounds: %s), nginx %.1f µs (rounds: %s); the nginx processes' own: %.1f µs\n",
			gc, gper, nc, nper, ngx.median(func(r rate) float64 { return r.ngxPerReq }))
	}
	return res
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
