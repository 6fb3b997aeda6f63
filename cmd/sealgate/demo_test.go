package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sealgate/sealgate/internal/devnet"
)

// modelServerDouble is a TEST DOUBLE of an OpenAI-compatible model server
// (Ollama, vLLM, llama.cpp's server) on 127.0.0.1: it streams a reply
// that repeats the last user message's words in upper case.
func modelServerDouble(t *testing.T, model string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model    string `json:"model"`
			Messages []struct {
				Role, Content string
			} `json:"messages"`
		}
		if r.URL.Path != "/v1/chat/completions" || json.NewDecoder(r.Body).Decode(&req) != nil || req.Model != model || len(req.Messages) == 0 {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		words := strings.Fields(strings.ToUpper(req.Messages[len(req.Messages)-1].Content))
		for _, word := range words {
			b, _ := json.Marshal(word + " ")
			fmt.Fprintf(w, "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s},\"finish_reason\":null}]}\n\n", b)
			w.(http.Flusher).Flush()
		}
		fmt.Fprintf(w, "data: {\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n", len(words), 9+len(words))
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestDemoServe runs `sealgate demo -serve` with a chat worker in front of
// a model server double, uses the network it serves through nothing but
// the environment file it writes, and interrupts it.
func TestDemoServe(t *testing.T) {
	upstream := modelServerDouble(t, "tiny:1b")
	dir := filepath.Join(t.TempDir(), "net")
	cmd := exec.Command(binary, "demo", "-serve", dir, "-listen", "127.0.0.1:0",
		"-chat-upstream", upstream.URL+"/v1", "-chat-model", "tiny:1b")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	envFile := filepath.Join(dir, "env")
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(envFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after a minute; output:\n%s", envFile, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, name := range []string{"tenant.cred", "admin.cred"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	env := os.Environ()
	f, err := os.Open(envFile)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if kv, ok := strings.CutPrefix(sc.Text(), "export "); ok {
			env = append(env, kv)
		}
	}
	f.Close()
	run := func(stdin string, args ...string) result {
		t.Helper()
		c := exec.Command(binary, args...)
		c.Env = env
		c.Stdin = strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{code, stdout.String(), stderr.String()}
	}

	if r := run(devnet.SampleDocument, "summarize", "-insecure-allow-simulated", "-sentences", "1", "-"); r.code != 0 || !strings.Contains(r.stdout, "patient records") {
		t.Errorf("summarize: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r := run("", "chat", "-insecure-allow-simulated", "-model", "tiny:1b", "private", "words"); r.code != 0 || !strings.Contains(r.stdout, "PRIVATE WORDS") {
		t.Errorf("chat: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r := run("", "admin", "status", "-credential-file", filepath.Join(dir, "admin.cred")); r.code != 0 || !strings.Contains(r.stdout, "sim-worker-3") {
		t.Errorf("admin status: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo -serve after SIGINT: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "shut down cleanly") {
		t.Errorf("demo -serve did not say it shut down cleanly:\n%s", out.String())
	}
}

func TestDemoFlags(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "-chat-upstream", "http://127.0.0.1:1/v1", "-chat-model", "m"},
		{"demo", "-serve", t.TempDir(), "-chat-upstream", "http://127.0.0.1:1/v1"},
		{"demo", "-serve", t.TempDir(), "-chat-upstream", "http://10.0.0.1:8000/v1", "-chat-model", "m"},
		{"demo", "-serve", t.TempDir(), "-chat-upstream", "http://127.0.0.1:1/v1", "-chat-model", "m", "-chat-model-digest", "sha256:nothex"},
	} {
		if r := sealgate(t, "", args...); r.code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage)\nstderr: %s", args, r.code, r.stderr)
		}
	}
}
