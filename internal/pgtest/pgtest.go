// Package pgtest runs a throwaway PostgreSQL server for tests: one
// cluster per test binary, started on first use, and a fresh database for
// each test.
//
// A package that uses it calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and each test that needs a database calls DSN. The cluster lives in a
// temporary directory (data, Unix socket and server log), listens on a
// free port on 127.0.0.1, runs with fsync off, and is stopped (immediate
// shutdown) and removed when the tests end; if the test binary dies first,
// the kernel stops the server with it (Linux). Its superuser, postgres,
// has a random password, which the DSNs carry.
//
// Databases are created with the ICU collation en-US when the server has
// ICU (PostgreSQL 15 and later), not byte order, so that code which relies
// on the database's locale for ordering fails here rather than in
// production.
//
// The binaries are found under /usr/lib/postgresql/*/bin (15 preferred,
// else the newest) or on PATH. Without them DSN skips the test, or fails
// it when CI=true (see internal/testenv); scripts/setup installs them.
// initdb and postgres refuse to run as root: as root, pgtest runs them as
// the postgres account, or nobody when there is none.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sealgate/sealgate/internal/testenv"
)

// preferredMajor is the PostgreSQL major version picked when several are
// installed under /usr/lib/postgresql.
const preferredMajor = 15

// startTimeout bounds the server's start, from exec to the first
// accepted connection.
const startTimeout = 30 * time.Second

// errNotInstalled reports that no PostgreSQL binaries were found.
var errNotInstalled = errors.New("PostgreSQL not found under /usr/lib/postgresql/*/bin or on PATH; run scripts/setup")

var (
	mu      sync.Mutex // guards inMain, started, running and startErr
	inMain  bool       // Main is running the tests
	started bool       // a start was attempted; running or startErr holds its outcome
	running *cluster
	// startErr is the failed start's error, returned to every later DSN
	// call rather than retried.
	startErr error

	dbSeq atomic.Int64 // numbers the databases DSN creates
)

// Main runs the tests of m and then stops the cluster, if a test started
// one. It returns the exit code for os.Exit: m's, or 1 when the tests
// passed but the cluster did not stop cleanly.
func Main(m *testing.M) int {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	c := running
	running, inMain = nil, false
	mu.Unlock()
	if c != nil {
		if err := c.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// DSN creates an empty database for the test, dropped when the test ends,
// and returns its postgres:// URL. The first call in a test binary starts
// the cluster.
func DSN(tb testing.TB) string {
	tb.Helper()
	c, err := get(tb)
	if errors.Is(err, errNotInstalled) {
		testenv.Missing(tb, "%v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	name := fmt.Sprintf("test_%d", dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.admin(ctx, `CREATE DATABASE `+name+c.createOpts); err != nil {
		tb.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends sessions the test left open.
		if err := c.admin(ctx, `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			tb.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return c.dsn(name)
}

// get returns the running cluster, starting it on the first call.
func get(tb testing.TB) (*cluster, error) {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if !inMain {
		return nil, errors.New("pgtest: DSN called outside pgtest.Main: call os.Exit(pgtest.Main(m)) from the package's TestMain, which stops the cluster")
	}
	if !started {
		started = true
		t0 := time.Now()
		running, startErr = start()
		if startErr == nil {
			tb.Logf("pgtest: PostgreSQL %d on 127.0.0.1:%d started in %v", running.major, running.port, time.Since(t0).Round(time.Millisecond))
		}
	}
	return running, startErr
}

// cluster is a running server.
type cluster struct {
	dir        string // owns everything the cluster writes; removed by stop
	port       int
	password   string
	major      int
	createOpts string // CREATE DATABASE options: the collation

	proc    *os.Process
	exited  chan struct{} // closed when the server process has exited
	waitErr error         // the server's exit status; read after exited closes

	adminMu sync.Mutex // guards conn, and serializes CREATE DATABASE (template1 takes one user at a time)
	conn    *pgx.Conn  // the superuser's session on database postgres; nil until first use
}

func (c *cluster) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=disable", c.password, c.port, db)
}

// admin runs one statement as the superuser on database postgres.
func (c *cluster) admin(ctx context.Context, stmt string) error {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	if c.conn == nil || c.conn.IsClosed() {
		conn, err := pgx.Connect(ctx, c.dsn("postgres"))
		if err != nil {
			return err
		}
		c.conn = conn
	}
	_, err := c.conn.Exec(ctx, stmt)
	return err
}

// binaries locates initdb and postgres.
func binaries() (initdb, postgres string, major int, err error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var best string
	bestMajor := -1
	for _, d := range dirs {
		m, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err != nil || !isExec(filepath.Join(d, "initdb")) || !isExec(filepath.Join(d, "postgres")) {
			continue
		}
		if m == preferredMajor || (bestMajor != preferredMajor && m > bestMajor) {
			best, bestMajor = d, m
		}
	}
	if best != "" {
		return filepath.Join(best, "initdb"), filepath.Join(best, "postgres"), bestMajor, nil
	}
	initdb, err = exec.LookPath("initdb")
	if err != nil {
		return "", "", 0, errNotInstalled
	}
	postgres = filepath.Join(filepath.Dir(initdb), "postgres")
	if !isExec(postgres) {
		if postgres, err = exec.LookPath("postgres"); err != nil {
			return "", "", 0, errNotInstalled
		}
	}
	out, err := exec.Command(postgres, "--version").Output()
	if err != nil {
		return "", "", 0, fmt.Errorf("pgtest: %s --version: %w", postgres, err)
	}
	major, err = parseMajor(string(out))
	if err != nil {
		return "", "", 0, fmt.Errorf("pgtest: %s --version: %w", postgres, err)
	}
	return initdb, postgres, major, nil
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// parseMajor reads the major version from postgres --version.
func parseMajor(out string) (int, error) {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("version: found %q, want \"postgres (PostgreSQL) N...\"", strings.TrimSpace(out))
	}
	return strconv.Atoi(m[1])
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// account is the unprivileged user the server runs as when we are root.
type account struct {
	name     string
	uid, gid uint32
}

// serverAccount returns nil when we are not root: the server runs as us.
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var errs []error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("pgtest: account %s: %w", name, err)
		}
		if uid == 0 {
			continue
		}
		return &account{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("pgtest: running as root and no unprivileged account (postgres, nobody) to run PostgreSQL as: %w", errors.Join(errs...))
}

// checkTraversable checks that acct can reach dir: every parent must be
// searchable by others (or owned by acct).
func checkTraversable(dir string, acct *account) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm()&0o001 == 0 && !(ok && st.Uid == acct.uid && fi.Mode().Perm()&0o100 != 0) {
			return fmt.Errorf("pgtest: %s (mode %v) is not searchable by %s, who runs PostgreSQL; set TMPDIR to a directory whose parents are mode 0755 or more open", p, fi.Mode().Perm(), acct.name)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

const (
	dirPrefix = "sealgate-pgtest-"
	ownerFile = "owner.pid" // the pid of the test binary that made the directory
)

// sweep removes the directories of clusters whose test binary died
// without stopping them (killed, or timed out); their servers died with
// it (Linux).
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // being made, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processExists(pid) {
			continue
		}
		os.RemoveAll(d)
	}
}

func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// start creates and starts a cluster.
func start() (c *cluster, err error) {
	initdb, postgres, major, err := binaries()
	if err != nil {
		return nil, err
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	sweep()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if acct != nil {
		if err := checkTraversable(dir, acct); err != nil {
			return nil, err
		}
		if err := os.Chown(dir, int(acct.uid), int(acct.gid)); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	pw := make([]byte, 16)
	rand.Read(pw)
	c = &cluster{dir: dir, password: hex.EncodeToString(pw), major: major, exited: make(chan struct{})}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.password+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if acct != nil {
		if err := os.Chown(pwfile, int(acct.uid), int(acct.gid)); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	args := []string{"-D", data, "-U", "postgres", "--pwfile=" + pwfile, "--auth=scram-sha-256",
		"--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C"}
	icu := major >= 15
	out, err := run(acct, dir, initdb, append(args, "--locale-provider=icu", "--icu-locale=en-US")...)
	if err != nil && icu {
		// A server built without ICU: byte-order collation it is.
		icu = false
		os.RemoveAll(data)
		out, err = run(acct, dir, initdb, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("pgtest: %s: %w\n%s", initdb, err, out)
	}
	os.Remove(pwfile)
	if icu {
		c.createOpts = ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'`
	}
	// A free port can be taken between our probe and the server's bind:
	// try again on another.
	for attempt := 1; ; attempt++ {
		err = c.startServer(acct, postgres)
		if err == nil || attempt == 3 || !errors.Is(err, errAddrInUse) {
			break
		}
		c.exited = make(chan struct{})
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// run runs a PostgreSQL tool as acct (nil: as us) in dir, returning its
// combined output.
func run(acct *account, dir, bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = toolEnv()
	attr, err := sysProcAttr(acct)
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr = attr
	return cmd.CombinedOutput()
}

// toolEnv is the environment of the PostgreSQL processes: none of the
// caller's PG* variables, a fixed locale and time zone.
func toolEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "TZ=UTC"}
}

var errAddrInUse = errors.New("port in use")

// startServer runs postgres on a free port and waits until it accepts
// connections.
func (c *cluster) startServer(acct *account, postgres string) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	c.port = port
	logPath := filepath.Join(c.dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(postgres, "-D", filepath.Join(c.dir, "data"), "-p", strconv.Itoa(port), "-k", c.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_permissions=0700",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB")
	cmd.Dir = c.dir
	cmd.Env = toolEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	attr, err := sysProcAttr(acct)
	if err != nil {
		return err
	}
	cmd.SysProcAttr = attr
	setParentDeathSignal(cmd.SysProcAttr, syscall.SIGQUIT) // immediate shutdown when we die

	// The parent-death signal fires when the thread that started the
	// server ends, not the process: start it from a goroutine locked to
	// its thread, which lives until the server exits.
	startErr := make(chan error, 1)
	exited := c.exited
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine, after the server
		if err := cmd.Start(); err != nil {
			startErr <- err
			close(exited)
			return
		}
		startErr <- nil
		c.waitErr = cmd.Wait()
		close(exited)
	}()
	if err := <-startErr; err != nil {
		return fmt.Errorf("pgtest: starting %s: %w", postgres, err)
	}
	c.proc = cmd.Process

	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.dsn("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			if strings.Contains(string(log), "could not bind") || strings.Contains(string(log), "Address already in use") {
				return fmt.Errorf("pgtest: 127.0.0.1:%d: %w", port, errAddrInUse)
			}
			return fmt.Errorf("pgtest: postgres exited during start (%v); its log:\n%s", c.waitErr, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.kill()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("pgtest: postgres did not accept connections on 127.0.0.1:%d within %v (last: %v); its log:\n%s", port, startTimeout, err, log)
		}
	}
}

// kill stops the server at once and waits for it.
func (c *cluster) kill() {
	c.proc.Signal(syscall.SIGKILL)
	<-c.exited
}

// stop shuts the server down (immediate mode, like pg_ctl stop -m
// immediate: there is nothing to keep) and removes its directory.
func (c *cluster) stop() error {
	c.adminMu.Lock()
	if c.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.conn.Close(ctx)
		cancel()
		c.conn = nil
	}
	c.adminMu.Unlock()
	var errs []error
	if err := c.proc.Signal(syscall.SIGQUIT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		errs = append(errs, fmt.Errorf("stopping postgres: %w", err))
	}
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		errs = append(errs, errors.New("postgres did not stop within 10s of SIGQUIT; killed it"))
		c.kill()
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
