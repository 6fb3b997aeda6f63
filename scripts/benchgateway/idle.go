package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// Mode idle: the gateway's memory per open, idle stream. Three processes
// on loopback, with TLS on every link as in production (gateway TLS,
// worker mutual TLS): this one, the clients; the gateway (this program
// with -role gateway); and the workers (-role workers: real
// enclave.Workers with simulated evidence, INSECURE, enough of them for
// the streams at proto.MaxCapacity each, whose backend is a test double,
// holdBackend, that sends one full chunk and then holds the stream open).
// Each client stream is its own HTTP/1.1 connection, as from as many
// client machines; the gateway reaches the workers over HTTP/2, whose
// connections carry many streams each. Separate processes keep the
// gateway's memory its own and its file descriptors within the hard
// limit: a gateway's stream holds one client connection.
//
// The gateway process measures itself on request, after a collection
// that returns freed memory to the system (debug.FreeOSMemory): its
// resident set (VmRSS), the Go heap and goroutine stacks in use, its
// goroutines and open files. The figure is the change from a baseline
// (after the network is up and a warm-up wave of streams has come and
// gone) to when every stream has its first chunk and sits idle, divided
// by the streams.

// idleSetup is what the gateway process hands the others, in setup.json.
type idleSetup struct {
	GatewayURL  string   `json:"gateway_url"`
	Certificate []byte   `json:"certificate"` // the gateway's, DER
	Accounts    accounts `json:"accounts"`
}

// memSample is the gateway process's report on itself.
type memSample struct {
	RSS        int64 `json:"rss"`
	HeapInuse  int64 `json:"heap_inuse"`
	StackInuse int64 `json:"stack_inuse"`
	Goroutines int   `json:"goroutines"`
	Files      int   `json:"files"`
}

// idleResults are mode idle's figures; memory in bytes.
type idleResults struct {
	Streams       int       `json:"streams"`
	Before        memSample `json:"before"`
	Open          memSample `json:"open"`
	RSSPerStream  float64   `json:"rss_per_stream"`
	HeapPerStream float64   `json:"heap_per_stream"` // Go heap and stacks
}

// holdBackend is a test double of a model backend: it answers with one
// event that fills one response chunk, then holds the stream open until
// the request ends.
type holdBackend struct{}

func (holdBackend) Tasks() []string { return []string{task} }

func (holdBackend) Serve(ctx context.Context, _ string, _ []byte, emit func(string) error) (proto.EndBody, error) {
	if err := emit(strings.Repeat("t", streamEventData)); err != nil {
		return proto.EndBody{}, err
	}
	<-ctx.Done()
	return proto.EndBody{}, ctx.Err()
}

func runRole(ctx context.Context, o options) error {
	if o.dir == "" {
		return errors.New("-role needs -dir")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	switch o.role {
	case "gateway":
		return gatewayRole(ctx, o)
	case "workers":
		return workersRole(ctx, o)
	}
	return fmt.Errorf("-role: found %q, want gateway or workers", o.role)
}

// gatewayRole serves a TLS gateway, writes setup.json, says "ready" on
// stdout, then answers each "mem" line on stdin with a memSample as a
// JSON line, until stdin ends.
func gatewayRole(ctx context.Context, o options) error {
	cert, err := tlspin.SelfSigned(nil, time.Now(), 24*time.Hour)
	if err != nil {
		return err
	}
	gw, admin, err := newGateway(ctx, o.dir, &cert, o.idleStreams+256)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		gw.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	served := goLabelled(ctx, "gateway", func(ctx context.Context) error { return gw.Serve(ctx, ln) })
	defer func() {
		cancel()
		waitFor(served)
	}()
	acc, err := createAccounts(ctx, gw, admin)
	if err != nil {
		return err
	}
	b, err := json.Marshal(idleSetup{GatewayURL: "https://" + ln.Addr().String(), Certificate: cert.Leaf.Raw, Accounts: acc})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.dir, "setup.json"), b, 0o600); err != nil {
		return err
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		switch cmd, arg, _ := strings.Cut(in.Text(), " "); cmd {
		case "mem":
			if err := enc.Encode(measureSelf()); err != nil {
				return err
			}
		case "heap":
			if err := writeHeapProfile(arg); err != nil {
				return err
			}
			fmt.Println("ok")
		}
	}
	return in.Err()
}

// waitFor waits for done, or 15 s: a process that stops does not need
// its servers' graceful shutdown to finish.
func waitFor(done chan error) {
	select {
	case <-done:
	case <-time.After(15 * time.Second):
	}
}

// workersRole starts enough workers for o.idleStreams streams, each with
// holdBackend, enrolled with the gateway of setup.json; writes their
// evidence bundles to bundles.json; says "ready" on stdout; and runs until
// stdin ends.
func workersRole(ctx context.Context, o options) error {
	b, err := os.ReadFile(filepath.Join(o.dir, "setup.json"))
	if err != nil {
		return err
	}
	var setup idleSetup
	if err := json.Unmarshal(b, &setup); err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(setup.Certificate)
	if err != nil {
		return err
	}
	n := (o.idleStreams + 64 + proto.MaxCapacity - 1) / proto.MaxCapacity
	capacity := (o.idleStreams + 64 + n - 1) / n
	ctx, cancel := context.WithCancel(ctx)
	var dones []chan error
	defer func() {
		cancel()
		for _, d := range dones {
			waitFor(d)
		}
	}()
	var bundles [][]byte
	for i := range n {
		w, done, _, err := startWorker(ctx, workerOptions{id: fmt.Sprintf("idle-worker-%d", i), gatewayURL: setup.GatewayURL,
			gatewayTLS: trustIn(cert), acc: setup.Accounts, backend: holdBackend{}, capacity: capacity, requestTimeout: time.Hour})
		if done != nil {
			dones = append(dones, done)
		}
		if err != nil {
			return err
		}
		bundles = append(bundles, w.Bundle())
	}
	if b, err = json.Marshal(bundles); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.dir, "bundles.json"), b, 0o600); err != nil {
		return err
	}
	fmt.Println("ready")
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// child is a role process: its stdin, and its stdout line by line.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	done  chan error
}

// startChild runs this program in role, with dir, and waits for its
// "ready" line.
func startChild(o options, role string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-role", role, "-dir", o.dir, "-idle-streams", strconv.Itoa(o.idleStreams))
	cmd.Stderr = os.Stderr
	c := &child{cmd: cmd, done: make(chan error, 1)}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.out = bufio.NewScanner(stdout)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { c.done <- cmd.Wait() }()
	if !c.out.Scan() || c.out.Text() != "ready" {
		c.stop()
		return nil, fmt.Errorf("the %s process did not start (it said %q)", role, c.out.Text())
	}
	return c, nil
}

// stop ends the child's stdin, which ends it, and kills it if it has not
// exited within 20 s.
func (c *child) stop() {
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// mem asks the gateway process for a memSample.
func (c *child) mem() (memSample, error) {
	var s memSample
	if _, err := io.WriteString(c.stdin, "mem\n"); err != nil {
		return s, err
	}
	if !c.out.Scan() {
		return s, fmt.Errorf("the gateway process gave no memory sample: %v", c.out.Err())
	}
	return s, json.Unmarshal(c.out.Bytes(), &s)
}

func runIdle(_ context.Context, o options) error {
	if o.idleStreams < 1 {
		return fmt.Errorf("-idle-streams: found %d, want at least 1", o.idleStreams)
	}
	var err error
	if o.dir, err = os.MkdirTemp("", "benchgateway-idle-"); err != nil {
		return err
	}
	defer os.RemoveAll(o.dir)
	gwp, err := startChild(o, "gateway")
	if err != nil {
		return err
	}
	defer gwp.stop()
	wp, err := startChild(o, "workers")
	if err != nil {
		return err
	}
	defer wp.stop()
	var setup idleSetup
	var bundles [][]byte
	if b, err := os.ReadFile(filepath.Join(o.dir, "setup.json")); err != nil {
		return err
	} else if err := json.Unmarshal(b, &setup); err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(o.dir, "bundles.json")); err != nil {
		return err
	} else if err := json.Unmarshal(b, &bundles); err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(setup.Certificate)
	if err != nil {
		return err
	}
	var keys []*seal.PublicKey
	for _, b := range bundles {
		k, err := bundleKey(b)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	tc := trustIn(cert)
	client := &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:   tc,
		TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1: a connection per stream
		MaxIdleConns:      -1,
		DisableKeepAlives: true,
	}}
	url := setup.GatewayURL + proto.PathRequests
	open := func(n int, what string) ([]io.Closer, error) {
		fmt.Fprintf(os.Stderr, "idle: sealing %d requests (%s)\n", n, what)
		reqs, err := sealRequests(keys, n)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "idle: opening %d streams through the gateway (%s)\n", n, what)
		return openStreams(client, url, setup.Accounts.Tenant, reqs)
	}
	// A warm-up wave that comes and goes, so that the baseline has the
	// pools and caches a loaded gateway keeps.
	warm, err := open(min(o.idleStreams, 200), "warm-up")
	closeAll(warm)
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	before, err := gwp.mem()
	if err != nil {
		return err
	}
	streams, err := open(o.idleStreams, "measured")
	defer closeAll(streams)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // let the workers' timer-flushed remainders pass
	after, err := gwp.mem()
	if err != nil {
		return err
	}
	if o.heapProfile != "" {
		abs, err := filepath.Abs(o.heapProfile)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(gwp.stdin, "heap "+abs+"\n"); err != nil {
			return err
		}
		if !gwp.out.Scan() || gwp.out.Text() != "ok" {
			return fmt.Errorf("the gateway process wrote no heap profile: %v", gwp.out.Err())
		}
		fmt.Fprintf(os.Stderr, "idle: the gateway's heap profile with the streams open is in %s\n", abs)
	}
	res := &idleResults{Streams: o.idleStreams, Before: before, Open: after,
		RSSPerStream:  float64(after.RSS-before.RSS) / float64(o.idleStreams),
		HeapPerStream: float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse) / float64(o.idleStreams)}
	fmt.Printf("| gateway process | RSS MiB | Go heap MiB | stacks MiB | goroutines | open files |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range []struct {
		name string
		s    memSample
	}{{"before", before}, {fmt.Sprintf("%d idle streams open", o.idleStreams), after}} {
		fmt.Printf("| %s | %.1f | %.1f | %.1f | %d | %d |\n", r.name, mib(r.s.RSS), mib(r.s.HeapInuse), mib(r.s.StackInuse), r.s.Goroutines, r.s.Files)
	}
	fmt.Printf("\n- gateway memory per idle stream: %.1f KiB of RSS (goal ≤ 64), %.1f KiB of Go heap and stacks; %.1f goroutines per stream\n",
		res.RSSPerStream/1024, res.HeapPerStream/1024, float64(after.Goroutines-before.Goroutines)/float64(o.idleStreams))
	return writeJSON(o.jsonOut, results{Idle: res})
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// sealRequests seals n fresh requests, spread over keys, in parallel.
func sealRequests(keys []*seal.PublicKey, n int) ([][]byte, error) {
	out := make([][]byte, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for g := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				var err error
				if out[i], err = sealOne(keys[i%len(keys)]); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// openStreams sends every request, each on its own connection, 64 at a
// time, and returns once each response has delivered its first full
// chunk; the responses stay open. On an error it returns those opened
// so far with it.
func openStreams(client *http.Client, url, cred string, reqs [][]byte) ([]io.Closer, error) {
	out := make([]io.Closer, len(reqs))
	var next, opened atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			buf := make([]byte, proto.ResponseHeaderSize+frameSize)
			for failed.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					return
				}
				t := &target{url: url, contentType: proto.MediaTypeRequest, cred: cred}
				resp, err := client.Do(t.request(reqs[i]))
				if err == nil {
					out[i] = resp.Body
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					} else {
						_, err = io.ReadFull(resp.Body, buf)
					}
				}
				if err != nil {
					err = fmt.Errorf("stream %d: %w", i, err)
					failed.CompareAndSwap(nil, &err)
					return
				}
				if k := opened.Add(1); k%2000 == 0 {
					fmt.Fprintf(os.Stderr, "idle: %d of %d streams open\n", k, len(reqs))
				}
			}
		})
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		return out, *p
	}
	return out, nil
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
	}
}

func writeHeapProfile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// measureSelf collects garbage, returns freed memory to the system and
// reports this process's memory.
func measureSelf() memSample {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSample{HeapInuse: int64(ms.HeapInuse), StackInuse: int64(ms.StackInuse), Goroutines: runtime.NumGoroutine()}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				s.RSS = kb << 10
			}
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.Files = len(fds)
	}
	return s
}
