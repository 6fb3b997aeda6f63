package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/internal/chattest"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/proto"
)

const chatModel = "cli-test-chat"

// startChatNet starts a devnet whose workers serve chat through the chat
// test double, listed with chatModel.
func startChatNet(t *testing.T, plain bool) (*devnet.Network, *chattest.Double) {
	t.Helper()
	double := &chattest.Double{}
	network, err := devnet.Start(context.Background(), devnet.Config{
		Dir: t.TempDir(), InsecurePlainHTTP: plain,
		Backend: func(int) enclave.Backend { return double },
		Models:  func(int) []string { return []string{chatModel} },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { network.Close() })
	return network, double
}

// reply is the double's reply to one user message.
func reply(user string) string {
	return strings.Join(chattest.Reply(proto.ChatRequest{Messages: []proto.ChatMessage{{Role: proto.RoleUser, Content: user}}}), "")
}

func TestCLIChat(t *testing.T) {
	network, _ := startChatNet(t, false)
	cred, ca := networkFiles(t, network)
	msg := filepath.Join(t.TempDir(), "msg.txt")
	os.WriteFile(msg, []byte("from a file\n"), 0o600)
	base := []string{"chat", "-gateway", network.GatewayURL, "-credential-file", cred, "-gateway-ca", ca, "-insecure-allow-simulated"}
	with := func(args ...string) []string { return append(append([]string{}, base...), args...) }

	tests := []struct {
		name       string
		stdin      string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "arguments", args: with("hello", "sealed", "world"), wantStdout: reply("hello sealed world") + "\n", wantStderr: "INSECURE"},
		{name: "stdin", stdin: "typed on stdin", args: with(), wantStdout: reply("typed on stdin") + "\n"},
		{name: "file", args: with("-file", msg), wantStdout: reply("from a file") + "\n"},
		{name: "system and model", args: with("-system", "be brief", "-model", chatModel, "hi"), wantStdout: reply("hi") + "\n"},
		{name: "max tokens", args: with("-max-tokens", "2", "one two three"), wantStdout: "Sealed reply:\n"},
		{name: "unlisted model", args: with("-model", "other", "hi"), wantCode: 3, wantStderr: `model "other"`},
		{name: "task fails", args: with("please", chattest.Fail), wantCode: 5, wantStderr: "told to fail"},
		{name: "negative max tokens", args: with("-max-tokens", "-1", "hi"), wantCode: 2, wantStderr: "max_tokens"},
		{name: "temperature out of range", args: with("-temperature", "3", "hi"), wantCode: 2, wantStderr: "temperature"},
		{name: "temperature not a number", args: with("-temperature", "warm", "hi"), wantCode: 2, wantStderr: "want a number"},
		{name: "arguments and file", args: with("-file", msg, "hi"), wantCode: 2, wantStderr: "not both"},
		{name: "empty", args: with(), wantCode: 1, wantStderr: "input is empty"},
		{name: "default policy refuses simulated workers", args: []string{"chat", "-gateway", network.GatewayURL, "-credential-file", cred, "-gateway-ca", ca, "hi"}, wantCode: 3, wantStderr: "allow_simulated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sealgate(t, tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			if tt.wantCode == 0 && r.stdout != tt.wantStdout || tt.wantCode != 0 && r.stdout != "" {
				t.Errorf("stdout %q, want %q", r.stdout, tt.wantStdout)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.wantStderr)
			}
		})
	}
}

func TestCLIChatJSON(t *testing.T) {
	network, _ := startChatNet(t, false)
	cred, ca := networkFiles(t, network)
	r := sealgate(t, "", "chat", "-gateway", network.GatewayURL, "-credential-file", cred, "-gateway-ca", ca, "-insecure-allow-simulated",
		"-json", "-k", "2", "-system", "be brief", "-model", chatModel, "what", "is", "sealed")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var out struct {
		Text, TEE, Model, Backend string
		RequestID                 string `json:"request_id"`
		Candidates                []string
		Worker                    struct {
			ID, Kind    string
			Simulated   bool
			Measurement string
			Evidence    string `json:"evidence_sha256"`
		}
		Usage struct {
			InputUnits  int64 `json:"input_units"`
			OutputUnits int64 `json:"output_units"`
		}
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%v in %s", err, r.stdout)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value: %s", r.stdout)
	}
	if out.Text != reply("what is sealed") || out.TEE != "sim" || out.Model != chatModel || out.Backend != "chattest" || len(out.RequestID) != 32 {
		t.Fatalf("json %+v", out)
	}
	if !strings.HasPrefix(out.Worker.ID, "sim-worker-") || out.Worker.Kind != "sim" || !out.Worker.Simulated || len(out.Worker.Evidence) != 64 || len(out.Candidates) != 2 {
		t.Fatalf("worker %+v candidates %v", out.Worker, out.Candidates)
	}
	if out.Usage.InputUnits != 5 || out.Usage.OutputUnits != 5 {
		t.Fatalf("usage %+v", out.Usage)
	}
}

// The reply reaches stdout piece by piece: the double sends each piece
// only once the previous one has been read from the command's stdout.
func TestCLIChatStreams(t *testing.T) {
	network, double := startChatNet(t, false)
	cred, ca := networkFiles(t, network)
	gate := make(chan struct{})
	double.Lockstep(gate)
	user := "one two three four"
	cmd := exec.Command(binary, "chat", "-gateway", network.GatewayURL, "-credential-file", cred, "-gateway-ca", ca, "-insecure-allow-simulated", user)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pieces := chattest.Reply(proto.ChatRequest{Messages: []proto.ChatMessage{{Role: proto.RoleUser, Content: user}}})
	for i, want := range pieces {
		got := make([]byte, len(want))
		if _, err := io.ReadFull(stdout, got); err != nil || string(got) != want {
			cmd.Process.Kill()
			t.Fatalf("piece %d: read %q (%v), want %q", i, got, err, want)
		}
		if i < len(pieces)-1 {
			gate <- struct{}{}
		}
	}
	rest, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil || string(rest) != "\n" {
		t.Fatalf("after the pieces: %q, %v\n%s", rest, err, stderr.String())
	}
}

// A reply cut off after its first piece has been partly printed: the
// command says so and exits 6.
func TestCLIChatTruncated(t *testing.T) {
	network, _ := startChatNet(t, true)
	cred, _ := networkFiles(t, network)
	r := sealgate(t, "", "chat", "-gateway", cutGateway(t, network.GatewayURL), "-insecure-plain-http", "-credential-file", cred, "-insecure-allow-simulated",
		"tell", "me", chattest.Stall)
	if r.code != 6 || r.stdout != "Sealed\n" || !strings.Contains(r.stderr, "the reply above is incomplete") || !strings.Contains(r.stderr, "truncated") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 6, the first piece and a truncation error", r.code, r.stdout, r.stderr)
	}
	r = sealgate(t, "", "chat", "-gateway", cutGateway(t, network.GatewayURL), "-insecure-plain-http", "-credential-file", cred, "-insecure-allow-simulated",
		"-json", "tell", "me", chattest.Stall)
	if r.code != 6 || r.stdout != "" {
		t.Fatalf("-json: exit %d, stdout %q; want 6 and nothing printed", r.code, r.stdout)
	}
}

// cutGateway is a test double of a broken path to a plain-HTTP gateway:
// it relays every call, but resets the connection of a sealed request
// once the response header and the first sealed chunk have passed.
func cutGateway(t *testing.T, gatewayURL string) string {
	t.Helper()
	target, err := url.Parse(gatewayURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0) // the cut is expected
	rp.FlushInterval = -1
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path == proto.PathRequests && resp.StatusCode == http.StatusOK {
			resp.Body = &cutBody{rc: resp.Body, left: proto.ResponseHeaderSize + 5 + proto.ResponseChunkSize + proto.AEADOverhead}
		}
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// cutBody passes left bytes, then fails.
type cutBody struct {
	rc   io.ReadCloser
	left int
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, errors.New("cut by the test")
	}
	n, err := b.rc.Read(p[:min(len(p), b.left)])
	b.left -= n
	return n, err
}

func (b *cutBody) Close() error { return b.rc.Close() }

// startProxyCommand runs `sealgate proxy` with args until it logs that it
// listens, and returns its base URL, its stderr so far and afterwards,
// and a stop function that interrupts it and returns its exit code.
func startProxyCommand(t *testing.T, args ...string) (string, *bytes.Buffer, func() int) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"proxy", "-listen", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	copied := make(chan struct{})
	stop := func() int {
		cmd.Process.Signal(os.Interrupt)
		<-copied
		cmd.Wait()
		return cmd.ProcessState.ExitCode()
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		logs.Write(sc.Bytes())
		logs.WriteByte('\n')
		var line struct {
			Msg     string `json:"msg"`
			BaseURL string `json:"base_url"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "proxy listening" {
			go func() {
				io.Copy(&logs, stderr)
				close(copied)
			}()
			return line.BaseURL, &logs, stop
		}
	}
	cmd.Wait()
	t.Fatalf("proxy exited before listening:\n%s", logs.String())
	return "", nil, nil
}

func TestCLIProxy(t *testing.T) {
	network, _ := startChatNet(t, false)
	cred, ca := networkFiles(t, network)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "proxy.key")
	os.WriteFile(keyFile, []byte("sk-local-cli\n"), 0o600)
	base, logs, stop := startProxyCommand(t, "-gateway", network.GatewayURL, "-credential-file", cred, "-gateway-ca", ca, "-insecure-allow-simulated", "-api-key-file", keyFile)

	secret := "canary" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", ""))
	body := `{"model":"` + chatModel + `","messages":[{"role":"user","content":"keep ` + secret + `"}]}`
	req, _ := http.NewRequest("POST", base+"/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-local-cli")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Choices []struct {
			Message struct{ Content string }
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(out.Choices) != 1 || out.Choices[0].Message.Content != reply("keep "+secret) {
		t.Fatalf("chat through the proxy: %d %+v %v", resp.StatusCode, out, err)
	}
	if resp.Header.Get("X-Sealgate-Tee") != "sim" {
		t.Fatalf("headers %v", resp.Header)
	}
	if code := stop(); code != 0 {
		t.Fatalf("proxy exited %d on SIGINT:\n%s", code, logs)
	}
	l := logs.String()
	if !strings.Contains(l, `"route":"chat.completions"`) || !strings.Contains(l, "INSECURE") {
		t.Fatalf("the proxy's log lacks the request line or the simulated-TEE warning:\n%s", l)
	}
	if strings.Contains(strings.ToLower(l), secret) || strings.Contains(l, "sk-local-cli") || strings.Contains(l, network.TenantCredential) {
		t.Fatalf("the proxy's log holds the prompt, the reply or a key:\n%s", l)
	}
}

func TestCLIProxyRefusals(t *testing.T) {
	dir := t.TempDir()
	openKey := filepath.Join(dir, "open.key")
	os.WriteFile(openKey, []byte("sk-x\n"), 0o644)
	os.Chmod(openKey, 0o644)
	plain := []string{"-gateway", "http://127.0.0.1:1", "-insecure-plain-http"}
	for _, tt := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"every interface", append([]string{"proxy", "-listen", "0.0.0.0:8080"}, plain...), 2, "loopback"},
		{"a network address", append([]string{"proxy", "-listen", "192.0.2.1:8080"}, plain...), 2, "-insecure-listen-any"},
		{"its own address", []string{"proxy", "-listen", "127.0.0.1:8080", "-gateway", "http://127.0.0.1:8080", "-insecure-plain-http"}, 2, "own -listen"},
		{"no json flag", append([]string{"proxy", "-json"}, plain...), 2, "not defined"},
		{"api key others can read", append([]string{"proxy", "-listen", "127.0.0.1:0", "-api-key-file", openKey}, plain...), 1, "want 0600"},
		{"argument", append([]string{"proxy", "extra"}, plain...), 2, "no argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := sealgate(t, "", tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantStderr) {
				t.Fatalf("exit %d stderr %q, want %d and %q", r.code, r.stderr, tt.wantCode, tt.wantStderr)
			}
		})
	}
}
