//go:build unix

// Command e2enet starts a whole sealgate network as real processes on
// 127.0.0.1 and breaks it on command: a gateway (`sealgate gateway`, SQLite
// in its state directory, development TLS), six workers
// (`sealgate-worker`, two for each of three providers) and clients, all
// set up with the real CLI (`sealgate admin ...`, `sealgate provider
// ...`). scripts/e2e builds and runs it; see that script's header.
//
// INSECURE: the workers run on the simulated TEE and the gateway admits
// them under the simulated-TEE development policy. For development and
// fault drills only.
//
// Commands are read from standard input (with a prompt on a terminal)
// and, with -control FIFO, from a named pipe that other shells and
// scripts write lines to (`echo 'stop worker-a1' > FIFO`), in which case
// the end of standard input does not stop the network. `help` lists
// them: ps, kill, term, stop, cont, restart, request, load, stats, env,
// quit. Each process's output goes to DIR/logs/NAME.log; DIR/env holds
// the variables that point the sealgate CLI at the network.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/internal/netproc"
)

const usage = `usage: scripts/e2e [flags]

Starts a gateway, six simulated-TEE workers of three providers and load
clients on 127.0.0.1, then reads commands from standard input (and the
-control FIFO):

  ps                    processes, their pids and states, and the gateway's view of each worker
  kill NAME...          SIGKILL (NAME: gateway, a worker id such as worker-a1, or "workers")
  term NAME...          SIGTERM (a clean stop; the gateway lets streams finish)
  stop NAME...          SIGSTOP: pause (sockets stay open, nothing answers)
  cont NAME...          SIGCONT: resume a paused process
  restart NAME...       kill if running, then start again with the same flags and files
  request [N]           run the real CLI client (sealgate summarize) N times (default 1)
  load N                run N Go SDK clients in a loop (0 stops them)
  stats                 the load clients' successes and failures since the last stats
  env                   print the variables that point the sealgate CLI at the network
  help                  this text
  quit                  stop everything (also: Ctrl-C, SIGTERM, and the end of standard input
                        unless -control is given)

Flags:
`

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("e2e", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	dir := fs.String("dir", "", "state directory (binaries, database, credentials, logs); default: a temporary one, removed at exit")
	listen := fs.String("listen", "127.0.0.1:0", "the gateway's address")
	control := fs.String("control", "", "also read commands from this named pipe (created if missing)")
	clients := fs.Int("clients", 2, "Go SDK load clients to start with")
	reattest := fs.String("reattest", "30s", "the gateway's and workers' re-attestation interval")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n := &network{reattest: *reattest}
	if err := n.start(ctx, *dir, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		n.close()
		return 1
	}
	defer n.close()
	n.setLoad(*clients)
	fmt.Printf("network up in %s: gateway %s, %d workers; logs in %s\n", n.dir, n.gw.URL, len(n.workers), filepath.Join(n.dir, "logs"))
	fmt.Printf("in another shell: . %s; then sealgate summarize -insecure-allow-simulated FILE\n", filepath.Join(n.dir, "env"))

	lines := make(chan string)
	// With a control pipe, the end of standard input (a script run in
	// the background) does not stop the network; quit or a signal does.
	go readLines(os.Stdin, lines, *control == "")
	if *control != "" {
		if err := makeFIFO(*control); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: -control:", err)
			return 1
		}
		fmt.Printf("reading commands from %s too\n", *control)
		go readFIFO(*control, lines)
	}
	interactive := isTerminal(os.Stdin)
	for {
		if interactive {
			fmt.Print("e2e> ")
		}
		select {
		case <-ctx.Done():
			fmt.Println("\nstopping")
			return 0
		case line, ok := <-lines:
			if !ok {
				fmt.Println("standard input closed; stopping")
				return 0
			}
			if quit := n.do(ctx, line); quit {
				return 0
			}
		}
	}
}

// network is the running network. Its fields are set by start and used
// by the command loop only, one command at a time; the load clients
// touch only what load guards.
type network struct {
	dir, reattest string
	temp          bool
	bins          netproc.Bins
	gw            *netproc.Gateway
	providers     []netproc.Provider
	tenant        string // the tenant's credential file
	workers       []*netproc.Proc
	logs          map[string]*os.File

	load struct {
		mu     sync.Mutex // guards cancel
		cancel []func()   // stops each running load client
		wg     sync.WaitGroup
		ok     atomic.Int64
		fails  sync.Map // error text -> *atomic.Int64
	}
}

func (n *network) start(ctx context.Context, dir, listen string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "sealgate-e2e")
		if err != nil {
			return err
		}
		dir, n.temp = d, true
	}
	n.dir = dir
	n.logs = map[string]*os.File{}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		return err
	}
	root, err := netproc.ModuleRoot()
	if err != nil {
		return err
	}
	fmt.Println("building sealgate and sealgate-worker...")
	if n.bins, err = netproc.Build(ctx, root, filepath.Join(dir, "bin")); err != nil {
		return err
	}
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	fmt.Println("starting the gateway (INSECURE: it admits simulated-TEE workers)...")
	if n.gw, err = netproc.StartGateway(wait, n.bins, "gateway", dir, listen, nil, n.log("gateway"), "-reattest", n.reattest); err != nil {
		return err
	}
	fmt.Println("creating three providers and a tenant with the CLI...")
	for _, id := range []string{"provider-a", "provider-b", "provider-c"} {
		p, err := netproc.NewProvider(wait, n.gw, n.gw, dir, id)
		if err != nil {
			return err
		}
		n.providers = append(n.providers, p)
	}
	if n.tenant, err = netproc.NewTenant(wait, n.gw, dir, "tenant", "-rps", "500", "-burst", "1000"); err != nil {
		return err
	}
	var ids []string
	for _, p := range n.providers {
		for i := 1; i <= 2; i++ {
			id := fmt.Sprintf("worker-%s%d", strings.TrimPrefix(p.ID, "provider-"), i)
			w, err := netproc.StartWorker(n.gw, p, id, n.log(id), "-reattest", n.reattest)
			if err != nil {
				return err
			}
			n.workers = append(n.workers, w)
			ids = append(ids, id)
		}
	}
	fmt.Println("waiting for six workers to enroll...")
	if _, err := n.gw.WaitActive(wait, ids...); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "env"), []byte(n.env()), 0o600)
}

// log returns the log file of process name, opened for appending.
func (n *network) log(name string) io.Writer {
	if f := n.logs[name]; f != nil {
		return f
	}
	f, err := os.OpenFile(filepath.Join(n.dir, "logs", name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil
	}
	n.logs[name] = f
	return f
}

func (n *network) env() string {
	anchor := ""
	if rec := netproc.FindRecord(n.gw.Out.String(), "gateway listening"); rec != nil {
		anchor, _ = rec["anchor_public_key"].(string)
	}
	return fmt.Sprintf("export SEALGATE_GATEWAY=%s\nexport SEALGATE_GATEWAY_CA=%s\nexport SEALGATE_CREDENTIAL_FILE=%s\nexport SEALGATE_ADMIN_CREDENTIAL_FILE=%s\nexport SEALGATE_ANCHOR_KEY=%s\n",
		n.gw.URL, n.gw.CA, n.tenant, n.gw.Admin, anchor)
}

// close stops the load, kills every process and removes a temporary
// state directory.
func (n *network) close() {
	n.setLoad(0)
	n.load.wg.Wait()
	for _, w := range n.workers {
		w.Kill()
	}
	if n.gw != nil {
		n.gw.Kill()
	}
	for _, f := range n.logs {
		f.Close()
	}
	if n.temp && n.dir != "" {
		os.RemoveAll(n.dir)
	}
}

// procs returns the processes a command names: "gateway", a worker id,
// or "workers".
func (n *network) procs(names []string) ([]*netproc.Proc, error) {
	if len(names) == 0 {
		return nil, errors.New("name a process: gateway, workers, or a worker id (see ps)")
	}
	var out []*netproc.Proc
	for _, name := range names {
		switch name {
		case "gateway":
			out = append(out, n.gw.Proc)
			continue
		case "workers":
			out = append(out, n.workers...)
			continue
		}
		found := false
		for _, w := range n.workers {
			if w.Name == name {
				out, found = append(out, w), true
			}
		}
		if !found {
			return nil, fmt.Errorf("no process %q (see ps)", name)
		}
	}
	return out, nil
}

// do runs one command line and reports whether it was quit.
func (n *network) do(ctx context.Context, line string) (quit bool) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return false
	}
	cmd, args := f[0], f[1:]
	var err error
	switch cmd {
	case "quit", "exit":
		return true
	case "help", "?":
		fmt.Print(usage)
	case "ps":
		n.ps(ctx)
	case "kill", "term", "stop", "pause", "cont", "continue", "resume":
		sig := map[string]syscall.Signal{"kill": syscall.SIGKILL, "term": syscall.SIGTERM, "stop": syscall.SIGSTOP, "pause": syscall.SIGSTOP,
			"cont": syscall.SIGCONT, "continue": syscall.SIGCONT, "resume": syscall.SIGCONT}[cmd]
		var ps []*netproc.Proc
		if ps, err = n.procs(args); err == nil {
			for _, p := range ps {
				if p.Exited() {
					fmt.Printf("%s has exited (%v)\n", p.Name, p.Err())
					continue
				}
				if err = p.Signal(sig); err != nil {
					break
				}
				fmt.Printf("%s (pid %d): sent %v\n", p.Name, p.Pid(), sig)
			}
		}
	case "restart":
		err = n.restart(ctx, args)
	case "request":
		count := 1
		if len(args) > 0 {
			if count, err = strconv.Atoi(args[0]); err != nil || count < 1 {
				err = fmt.Errorf("request: found %q, want a positive count", args[0])
				break
			}
		}
		n.request(ctx, count)
	case "load":
		if len(args) != 1 {
			err = errors.New("load: want the number of clients")
			break
		}
		var k int
		if k, err = strconv.Atoi(args[0]); err != nil || k < 0 {
			err = fmt.Errorf("load: found %q, want a count of clients", args[0])
			break
		}
		n.setLoad(k)
		fmt.Printf("%d load clients running\n", k)
	case "stats":
		n.stats()
	case "env":
		fmt.Print(n.env())
	default:
		err = fmt.Errorf("unknown command %q; try help", cmd)
	}
	if err != nil {
		fmt.Println("error:", err)
	}
	return false
}

func (n *network) restart(ctx context.Context, names []string) error {
	ps, err := n.procs(names)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if !p.Exited() {
			p.Kill() // SIGKILL ends a stopped process too
		}
		if p == n.gw.Proc {
			wait, cancel := context.WithTimeout(ctx, time.Minute)
			err = n.gw.Restart(wait, n.log("gateway"))
			cancel()
			if err != nil {
				return err
			}
			fmt.Printf("gateway restarted (pid %d) on %s\n", n.gw.Pid(), n.gw.Addr)
			continue
		}
		if err := p.Restart(n.log(p.Name)); err != nil {
			return err
		}
		fmt.Printf("%s restarted (pid %d)\n", p.Name, p.Pid())
	}
	return nil
}

// ps prints each process and the gateway's view of each worker.
func (n *network) ps(ctx context.Context) {
	states := map[string]string{}
	st, err := n.gw.Status(ctx)
	if err == nil {
		for _, w := range st.Workers {
			states[w.WorkerID] = w.State
		}
	}
	for _, p := range append([]*netproc.Proc{n.gw.Proc}, n.workers...) {
		view := ""
		if p != n.gw.Proc {
			view = states[p.Name]
			if view == "" {
				view = "not listed"
			}
			view = "gateway says: " + view
		}
		fmt.Printf("%-10s pid %-7d %-8s %s\n", p.Name, p.Pid(), procState(p), view)
	}
	if err != nil {
		fmt.Println("gateway status:", firstLine(err.Error()))
	}
}

// procState is running, stopped or exited, from /proc.
func procState(p *netproc.Proc) string {
	if p.Exited() {
		return "exited"
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return "running"
	}
	// pid (comm) STATE ...: the state follows the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && s[i+2] == 'T' {
		return "stopped"
	}
	return "running"
}

// request runs the real CLI client count times, one after another.
func (n *network) request(ctx context.Context, count int) {
	doc := "The gateway relays sealed requests to attested workers. It never holds a key that opens a request. " +
		"Workers prove what code they run with fresh evidence. A worker that fails before its first byte is skipped. " +
		"After the first byte the gateway never retries."
	path := filepath.Join(n.dir, "document.txt")
	os.WriteFile(path, []byte(doc), 0o600)
	for i := range count {
		start := time.Now()
		out, err := n.bins.CLI(ctx, "summarize", "-json", "-insecure-allow-simulated", "-gateway", n.gw.URL, "-gateway-ca", n.gw.CA,
			"-credential-file", n.tenant, "-sentences", "2", "-timeout", "10s", path)
		if err != nil {
			fmt.Printf("request %d: failed after %v: %s\n", i+1, time.Since(start).Round(time.Millisecond), strings.TrimSpace(err.Error()))
			continue
		}
		var res struct {
			Text   string `json:"text"`
			Worker struct {
				ID string `json:"id"`
			} `json:"worker"`
			Candidates []string `json:"candidates"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			fmt.Printf("request %d: exit 0 but no JSON result: %v\n", i+1, err)
			continue
		}
		fmt.Printf("request %d: ok in %v, sealed to %s, answered by %s: %q\n", i+1, time.Since(start).Round(time.Millisecond),
			strings.Join(res.Candidates, ","), res.Worker.ID, res.Text)
	}
}

// setLoad runs k load clients: Go SDK clients of the tenant, each sending
// summarize requests one after another. Clients beyond k are stopped.
func (n *network) setLoad(k int) {
	n.load.mu.Lock()
	defer n.load.mu.Unlock()
	for len(n.load.cancel) > k {
		last := len(n.load.cancel) - 1
		n.load.cancel[last]()
		n.load.cancel = n.load.cancel[:last]
	}
	for len(n.load.cancel) < k {
		c, err := n.newClient()
		if err != nil {
			fmt.Println("load client:", err)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		n.load.cancel = append(n.load.cancel, cancel)
		n.load.wg.Go(func() { n.loadLoop(ctx, c) })
	}
}

func (n *network) loadLoop(ctx context.Context, c *client.Client) {
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := c.Summarize(rctx, "Sealed requests travel through a gateway that cannot read them. Workers answer them. Clients check.", client.SummarizeOptions{Sentences: 1})
		cancel()
		switch {
		case ctx.Err() != nil:
		case err != nil:
			v, _ := n.load.fails.LoadOrStore(firstLine(err.Error()), new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		default:
			n.load.ok.Add(1)
		}
	}
}

func (n *network) newClient() (*client.Client, error) {
	cred, err := os.ReadFile(n.tenant)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(n.gw.CA)
	if err != nil {
		return nil, err
	}
	return client.New(client.Config{
		GatewayURL: n.gw.URL,
		Credential: strings.TrimSpace(string(cred)),
		GatewayCA:  ca,
		Policy:     policy.InsecureSimulated(),
		K:          3,
	})
}

// stats prints and resets the load clients' counts.
func (n *network) stats() {
	fmt.Printf("load: %d ok\n", n.load.ok.Swap(0))
	var lines []string
	n.load.fails.Range(func(k, v any) bool {
		if c := v.(*atomic.Int64).Swap(0); c > 0 {
			lines = append(lines, fmt.Sprintf("  %5d × %s", c, k))
		}
		return true
	})
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// readLines sends r's lines to out, and closes out at EOF when owner.
func readLines(r io.Reader, out chan<- string, owner bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		out <- sc.Text()
	}
	if owner {
		close(out)
	}
}

// readFIFO reads lines from the named pipe path for ever, opening it again
// each time its writers have all closed it.
func readFIFO(path string, out chan<- string) {
	for {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: control:", err)
			return
		}
		readLines(f, out, false)
		f.Close()
	}
}

func makeFIFO(path string) error {
	if fi, err := os.Stat(path); err == nil {
		if fi.Mode()&os.ModeNamedPipe == 0 {
			return fmt.Errorf("%s exists and is not a named pipe", path)
		}
		return nil
	}
	return syscall.Mkfifo(path, 0o600)
}

// isTerminal reports whether f looks like a terminal: a character device
// other than /dev/null.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
