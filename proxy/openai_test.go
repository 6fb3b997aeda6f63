package proxy_test

// The official OpenAI Go client, unmodified, pointed at the proxy on a
// real 127.0.0.1 socket, completes chats through a real gateway to real
// workers (internal/devnet) whose backend is the chat test double
// (internal/chattest). Taps on the gateway's connections show that the
// gateway handled ciphertext only.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/internal/chattest"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/internal/tap"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/proxy"
)

const (
	testModel  = "sealgate-test-chat"
	testAPIKey = "sk-local-proxy-test-key"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// sealedNet is a devnet of chat workers, in plain HTTP with a tap on
// every connection of the gateway, and a proxy in front of it on
// 127.0.0.1.
type sealedNet struct {
	network    *devnet.Network
	double     *chattest.Double
	taps       []*tap.Tap
	keys       lockedBuffer // the workers' and the client's key logs
	logs       lockedBuffer // every component's logs, the proxy's included
	proxyURL   string       // the proxy's base URL, ending in /v1/
	gatewayURL string       // the tapped gateway URL the proxy's client uses
	closeProxy func()
}

func startSealedNet(t *testing.T) *sealedNet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sn := &sealedNet{double: &chattest.Double{Models: []string{testModel}}}
	logger := slog.New(slog.NewJSONHandler(&sn.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var tapErr error
	network, err := devnet.Start(ctx, devnet.Config{
		// Plain HTTP on every link, so that the taps see exactly what
		// the gateway handles rather than TLS records.
		Dir: t.TempDir(), Workers: 2, Logger: logger, KeyLog: &sn.keys, InsecurePlainHTTP: true,
		Backend: func(int) enclave.Backend { return sn.double },
		Models:  func(int) []string { return []string{testModel} },
		WorkerAdvertise: func(i int, addr string) string {
			tp, err := tap.New(addr)
			if err != nil {
				tapErr = err
				return "http://" + addr
			}
			sn.taps = append(sn.taps, tp)
			return "http://" + tp.Addr
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sn.network = network
	t.Cleanup(func() {
		network.Close()
		for _, tp := range sn.taps {
			tp.Close()
		}
	})
	if tapErr != nil {
		t.Fatal(tapErr)
	}
	clientTap, err := tap.New(strings.TrimPrefix(network.GatewayURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	sn.taps = append(sn.taps, clientTap)
	sn.gatewayURL = "http://" + clientTap.Addr
	sn.proxyURL, sn.closeProxy = startProxy(t, sn.gatewayURL, network, &sn.keys, logger)
	return sn
}

// startProxy serves a proxy of gatewayURL on a fresh 127.0.0.1 port and
// returns its base URL and a function that stops it.
func startProxy(t *testing.T, gatewayURL string, network *devnet.Network, keyLog io.Writer, logger *slog.Logger) (string, func()) {
	t.Helper()
	cc := network.ClientConfig(client.Config{Policy: policy.InsecureSimulated(), K: 2, KeyLog: keyLog})
	cc.GatewayURL = gatewayURL
	c, err := client.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(proxy.Config{Client: c, APIKey: testAPIKey, Logger: logger.With(slog.String("component", "proxy")), RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("proxy serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + ln.Addr().String() + "/v1/", stop
}

func openaiClient(base string) openai.Client {
	return openai.NewClient(option.WithBaseURL(base), option.WithAPIKey(testAPIKey), option.WithMaxRetries(0))
}

// canary returns a random word that can appear nowhere by chance.
func canary() string { return "canary" + strings.ToLower(rand.Text()[:16]) }

func TestOpenAIClientThroughGateway(t *testing.T) {
	sn := startSealedNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	oc := openaiClient(sn.proxyURL)

	page, err := oc.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 1 || page.Data[0].ID != testModel {
		t.Fatalf("models %+v, want just %s", page.Data, testModel)
	}
	if m, err := oc.Models.Get(ctx, testModel); err != nil || m.ID != testModel {
		t.Fatalf("get model: %+v, %v", m, err)
	}

	var secrets []string // every prompt word and every reply word that must not leak
	const pieces = 8     // "Sealed", " reply:", " PLEASE", " KEEP" and the four canaries
	prompt := func() (system, user string, want string) {
		sys, words := canary(), []string{canary(), canary(), canary(), canary()}
		secrets = append(secrets, sys)
		for _, w := range words {
			secrets = append(secrets, w, strings.ToUpper(w))
		}
		user = "please keep " + strings.Join(words, " ")
		req := proto.ChatRequest{Messages: []proto.ChatMessage{{Role: proto.RoleUser, Content: user}}}
		return "You are a sealed assistant " + sys, user, strings.Join(chattest.Reply(req), "")
	}

	t.Run("non-streaming", func(t *testing.T) {
		system, user, want := prompt()
		var httpResp *http.Response
		res, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:    testModel,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(system), openai.UserMessage(user)},
		}, option.WithResponseInto(&httpResp))
		if err != nil {
			t.Fatal(err)
		}
		header := httpResp.Header
		if len(res.Choices) != 1 || res.Choices[0].Message.Content != want || res.Choices[0].FinishReason != "stop" || res.Choices[0].Message.Role != "assistant" {
			t.Fatalf("completion %+v, want content %q", res.Choices, want)
		}
		if res.Model != testModel || res.Object != "chat.completion" || !strings.HasPrefix(res.ID, "chatcmpl-") {
			t.Fatalf("completion id %q object %q model %q", res.ID, res.Object, res.Model)
		}
		if res.Usage.PromptTokens != int64(len(strings.Fields(system))+len(strings.Fields(user))) || res.Usage.CompletionTokens != pieces || res.Usage.TotalTokens != res.Usage.PromptTokens+pieces {
			t.Fatalf("usage %+v", res.Usage)
		}
		if w := header.Get("X-Sealgate-Worker"); !strings.HasPrefix(w, "sim-worker-") || header.Get("X-Sealgate-Tee") != "sim" || len(header.Get("X-Sealgate-Evidence-Sha256")) != 64 {
			t.Fatalf("worker headers %v", header)
		}
		var extra struct {
			Sealgate struct {
				WorkerID   string   `json:"worker_id"`
				TEE        string   `json:"tee"`
				Candidates []string `json:"candidates"`
			} `json:"sealgate"`
		}
		if err := json.Unmarshal([]byte(res.RawJSON()), &extra); err != nil || extra.Sealgate.TEE != "sim" || len(extra.Sealgate.Candidates) != 2 {
			t.Fatalf("sealgate report %+v (%v)", extra, err)
		}
	})

	t.Run("streaming", func(t *testing.T) {
		_, user, want := prompt()
		gate := make(chan struct{})
		sn.double.Lockstep(gate)
		defer sn.double.Lockstep(nil)
		stream := oc.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model:         testModel,
			Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage(user)},
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		})
		var acc openai.ChatCompletionAccumulator
		var contents []string
		var finish string
		var usageChunks int
		for stream.Next() {
			ch := stream.Current()
			if !acc.AddChunk(ch) {
				t.Fatalf("the accumulator refused chunk %+v", ch)
			}
			if ch.Object != "chat.completion.chunk" || !strings.HasPrefix(ch.ID, "chatcmpl-") {
				t.Fatalf("chunk %+v", ch)
			}
			if ch.JSON.Usage.Valid() && ch.Usage.TotalTokens > 0 {
				usageChunks++
				if len(ch.Choices) != 0 || ch.Usage.CompletionTokens != pieces {
					t.Fatalf("usage chunk %+v", ch)
				}
			}
			if len(ch.Choices) == 0 {
				continue
			}
			if c := ch.Choices[0].Delta.Content; c != "" {
				contents = append(contents, c)
				// The double sends its next piece only now: each delta
				// crossed the gateway and the proxy on its own.
				select {
				case gate <- struct{}{}:
				case <-time.After(50 * time.Millisecond): // after the last piece nobody waits
				}
			}
			if ch.Choices[0].FinishReason != "" {
				finish = ch.Choices[0].FinishReason
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if len(contents) != pieces || strings.Join(contents, "") != want {
			t.Fatalf("streamed %q, want %d pieces of %q", contents, pieces, want)
		}
		if finish != "stop" || usageChunks != 1 || acc.Choices[0].Message.Content != want || acc.Usage.CompletionTokens != pieces {
			t.Fatalf("finish %q, %d usage chunks, accumulated %q usage %+v", finish, usageChunks, acc.Choices[0].Message.Content, acc.Usage)
		}
	})

	t.Run("max tokens", func(t *testing.T) {
		_, user, _ := prompt()
		res, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: testModel, MaxCompletionTokens: openai.Int(3),
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(user)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Choices[0].FinishReason != "length" || res.Choices[0].Message.Content != "Sealed reply: PLEASE" {
			t.Fatalf("choice %+v, want three pieces and finish_reason length", res.Choices[0])
		}
	})

	t.Run("errors reach the client", func(t *testing.T) {
		_, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "no-such-model", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
		})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
			t.Fatalf("unknown model: %v", err)
		}
		_, err = oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: testModel, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("please " + chattest.Fail)},
		})
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "bad_request" {
			t.Fatalf("task failure: %v", err)
		}
		wrongKey := openai.NewClient(option.WithBaseURL(sn.proxyURL), option.WithAPIKey("sk-wrong"), option.WithMaxRetries(0))
		_, err = wrongKey.Models.List(ctx)
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" {
			t.Fatalf("wrong proxy key: %v", err)
		}
	})

	// Everything the gateway handled, and everything logged.
	sn.closeProxy()
	if err := sn.network.Close(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	var tapped []byte
	for _, tp := range sn.taps {
		tapped = append(tapped, tp.Bytes()...)
	}
	if len(tapped) < 4096 || !bytes.Contains(tapped, []byte(proto.PathRequests)) {
		t.Fatalf("taps recorded %d bytes without a sealed request: the taps are not on the path", len(tapped))
	}
	if !bytes.Contains(tapped, []byte(testModel)) {
		t.Fatal("the candidate listing's model names are not in the taps: the client tap is not on the path")
	}
	places := map[string][]byte{"the gateway's connections": tapped, "the logs": sn.logs.Bytes()}
	if len(secrets) == 0 {
		t.Fatal("no secrets to look for")
	}
	for where, hay := range places {
		for _, s := range secrets {
			assertAbsent(t, where, hay, "a prompt or reply word", []byte(s))
		}
	}
	var keys int
	sc := bufio.NewScanner(bytes.NewReader(sn.keys.Bytes()))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			t.Fatalf("key log line %q", sc.Text())
		}
		secret, err := hex.DecodeString(f[2])
		if err != nil || len(secret) < 16 {
			t.Fatalf("key log secret in %q", sc.Text())
		}
		keys++
		for where, hay := range places {
			assertAbsent(t, where, hay, f[0], secret)
		}
	}
	if keys < 10 {
		t.Fatalf("only %d secrets in the key logs: the hook is not wired", keys)
	}
}

// forms returns the byte strings a secret could appear as: raw, hex and
// base64 at every alignment.
func forms(secret []byte) [][]byte {
	out := [][]byte{secret, []byte(hex.EncodeToString(secret)), []byte(strings.ToUpper(hex.EncodeToString(secret)))}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for off := range 3 {
			if len(secret)-off < 9 {
				continue
			}
			s := strings.TrimRight(enc.EncodeToString(secret[off:]), "=")
			out = append(out, []byte(s[1:len(s)-2]))
		}
	}
	return out
}

func assertAbsent(t *testing.T, where string, haystack []byte, name string, secret []byte) {
	t.Helper()
	for _, f := range forms(secret) {
		if bytes.Contains(haystack, f) {
			t.Errorf("%s contains %s (as %q…)", where, name, f[:min(len(f), 12)])
			return
		}
	}
}

// cutter is a test double of a broken path between the client and the
// gateway: it relays every call, but resets the connection of a sealed
// request once the response header and the first sealed chunk have
// passed, so that the reply stops after its first delta.
func cutter(t *testing.T, gatewayURL string) string {
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
	rp.ErrorHandler = func(rw http.ResponseWriter, r *http.Request, err error) {
		panic(http.ErrAbortHandler) // reset the client's connection: no clean end
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

// A reply cut after its first delta: the streamed answer ends with an
// error event that the OpenAI client reports, not a short answer; the
// JSON answer is a 502.
func TestOpenAIClientSeesTruncation(t *testing.T) {
	sn := startSealedNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cutURL, _ := startProxy(t, cutter(t, sn.gatewayURL), sn.network, nil, slog.New(slog.DiscardHandler))
	oc := openaiClient(cutURL)
	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("tell me everything " + chattest.Stall)}

	stream := oc.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: testModel, Messages: msgs})
	var got []string
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
			got = append(got, ch.Choices[0].Delta.Content)
		}
	}
	err := stream.Err()
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("stream ended with %v after %q, want an error naming the truncation", err, got)
	}
	if !slices.Equal(got, []string{"Sealed"}) {
		t.Fatalf("streamed %q before the cut, want the first piece", got)
	}

	_, err = oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: testModel, Messages: msgs})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway || apiErr.Code != "truncated" {
		t.Fatalf("non-streaming: %v, want 502 truncated", err)
	}
}
