package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nginx is an nginx master process this program started, proxying to one
// worker.
type nginx struct {
	addr string
	cmd  *exec.Cmd
	stop func()
}

// nginxConf is a reverse proxy tuned the way issue 5 asks: upstream
// keepalive, HTTP/1.1 with the Connection header cleared, no buffering
// either way, no access log, one worker process per CPU. The keepalive
// request limits are raised so that neither side closes connections
// during a run (Go's transport and server have no such limit).
const nginxConf = `worker_processes auto;
pid %[1]s/nginx.pid;
error_log stderr warn;
%[4]s
events {
    worker_connections 1024;
}
http {
    access_log off;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    client_max_body_size 16m;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    upstream worker {
        server %[2]s;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen %[3]s;
        location / {
            proxy_pass http://worker;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }
    }
}
`

// startNginx runs bin in the foreground with its prefix, configuration
// and temporary directories under dir, listening on a free loopback port
// and proxying to upstream; stop ends it.
func startNginx(ctx context.Context, bin, dir, upstream string) (*nginx, error) {
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	// Run as root, nginx's workers drop to nobody, who must be able to
	// write its temporary directories (unused without buffering).
	userLine := ""
	if os.Geteuid() == 0 {
		userLine = "user nobody nogroup;"
		if err := os.Chmod(tmp, 0o1777); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, upstream, addr, userLine), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "-p", dir, "-c", conf, "-e", "stderr", "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting nginx: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	n := &nginx{addr: addr, cmd: cmd}
	n.stop = func() {
		// SIGQUIT is nginx's graceful shutdown; WaitDelay kills it if that
		// takes too long.
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("nginx exited at start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("nginx did not listen on %s within 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n, nil
}

// cpu is the user and system CPU time of the master and its workers.
func (n *nginx) cpu() time.Duration {
	master := n.cmd.Process.Pid
	total := procCPU(master)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == master {
			continue
		}
		if ppid, ok := procParent(pid); ok && ppid == master {
			total += procCPU(pid)
		}
	}
	return total
}

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on
// Linux).
const clockTick = 10 * time.Millisecond

// procStat returns the fields of /proc/pid/stat after the command name.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func procParent(pid int) (int, bool) {
	f := procStat(pid)
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// procCPU is utime+stime (fields 14 and 15 of stat, 12 and 13 after the
// name).
func procCPU(pid int) time.Duration {
	f := procStat(pid)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * clockTick
}
