package enclave

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/proto"
)

// upstreamDouble is a TEST DOUBLE of an OpenAI-compatible model server
// (vLLM, llama.cpp's server, Ollama, SGLang): an httptest server on
// 127.0.0.1 that speaks POST /v1/chat/completions in OpenAI's streaming
// format, and streams, fails or stalls as the test commands through its
// handle function. It records every request body it gets, and whether
// the caller went away while a handler ran.
type upstreamDouble struct {
	srv *httptest.Server

	mu        sync.Mutex // guards the fields below
	handle    func(w http.ResponseWriter, r *http.Request, req map[string]any)
	requests  []map[string]any
	cancelled int // handlers that saw the request's context end
}

// upstreamSecret is in every body the double sends; it must never reach
// a client's error message or a log.
const upstreamSecret = "UPSTREAM-BODY-CANARY"

func newUpstreamDouble(t *testing.T) *upstreamDouble {
	t.Helper()
	d := &upstreamDouble{}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "not found "+upstreamSecret, http.StatusNotFound)
			return
		}
		var req map[string]any
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad json "+upstreamSecret, http.StatusBadRequest)
			return
		}
		d.mu.Lock()
		d.requests = append(d.requests, req)
		h := d.handle
		d.mu.Unlock()
		h(w, r, req)
		if r.Context().Err() != nil {
			d.mu.Lock()
			d.cancelled++
			d.mu.Unlock()
		}
	}))
	t.Cleanup(d.srv.Close)
	d.stream(nil, nil) // by default, an empty completion
	return d
}

func (d *upstreamDouble) baseURL() string { return d.srv.URL + "/v1" }

func (d *upstreamDouble) set(h func(w http.ResponseWriter, r *http.Request, req map[string]any)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.handle = h
}

func (d *upstreamDouble) lastRequest(t *testing.T) map[string]any {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.requests) == 0 {
		t.Fatal("the upstream double got no request")
	}
	return d.requests[len(d.requests)-1]
}

func (d *upstreamDouble) calls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.requests)
}

func (d *upstreamDouble) sawCancel() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancelled
}

// sse starts an event stream response.
func sse(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
}

// event writes one event with data and flushes it.
func event(w http.ResponseWriter, data string) {
	fmt.Fprintf(w, "data: %s\n\n", data)
	w.(http.Flusher).Flush()
}

// contentChunk is a chat.completion.chunk carrying text, as vLLM sends
// it (with "usage": null, as when include_usage is set).
func contentChunk(text string) string {
	b, _ := json.Marshal(text)
	return `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":` + string(b) + `},"logprobs":null,"finish_reason":null}],"usage":null}`
}

func usageChunk(in, out int) string {
	return fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":%d,"total_tokens":%d,"completion_tokens":%d}}`, in, in+out, out)
}

// stream commands the double to stream pieces and then the usage (if
// not nil) and [DONE]. Before each piece it waits on gate, if set.
func (d *upstreamDouble) stream(pieces []string, u *usage, gate ...chan struct{}) {
	d.set(func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		sse(w)
		event(w, `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`)
		for i, p := range pieces {
			if i < len(gate) {
				select {
				case <-gate[i]:
				case <-r.Context().Done():
					return
				}
			}
			event(w, contentChunk(p))
		}
		event(w, `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`)
		if u != nil {
			event(w, usageChunk(int(u.input), int(u.output)))
		}
		event(w, "[DONE]")
	})
}

// raw commands the double to answer 200 with an event stream of exactly
// body.
func (d *upstreamDouble) raw(body string) {
	d.set(func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		sse(w)
		io.WriteString(w, body)
	})
}

// stallAfter commands the double to stream n pieces and then hang until
// the caller goes away.
func (d *upstreamDouble) stallAfter(n int) {
	d.set(func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		sse(w)
		w.(http.Flusher).Flush()
		for i := range n {
			event(w, contentChunk(fmt.Sprint("piece ", i)))
		}
		<-r.Context().Done()
	})
}

func testOpenAI(t *testing.T, d *upstreamDouble, edit func(*OpenAIConfig)) (*OpenAI, *lockedLog) {
	t.Helper()
	logs := &lockedLog{}
	cfg := OpenAIConfig{BaseURL: d.baseURL(), Model: "llama3.1:8b", Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&cfg)
	}
	o, err := NewOpenAI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Close)
	return o, logs
}

// lockedLog collects log output from concurrent writers.
type lockedLog struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// collect runs a task and returns what was emitted, piece by piece.
func collect(t *testing.T, o *OpenAI, ctx context.Context, task string, payload any) ([]string, proto.EndBody, error) {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	var pieces []string
	end, err := o.Serve(ctx, task, b, func(s string) error {
		pieces = append(pieces, s)
		return nil
	})
	return pieces, end, err
}

const promptCanary = "PROMPT-CANARY-7f3a"

func chat(content string) proto.ChatRequest {
	return proto.ChatRequest{Messages: []proto.ChatMessage{{Role: proto.RoleSystem, Content: "Be brief."}, {Role: proto.RoleUser, Content: content}}}
}

func TestOpenAIRefusesNonLoopbackUpstreams(t *testing.T) {
	tests := []struct{ name, url, wantErr string }{
		{"private address", "http://10.0.0.1:8000/v1", `found host "10.0.0.1", want a loopback host`},
		{"public name", "http://api.openai.com/v1", `found host "api.openai.com"`},
		{"public address over https", "https://8.8.8.8/v1", `found host "8.8.8.8"`},
		{"name that starts like localhost", "http://localhost.example.com:8000/v1", `found host "localhost.example.com"`},
		{"name that starts like a loopback address", "http://127.0.0.1.nip.io:8000/v1", `found host "127.0.0.1.nip.io"`},
		{"unspecified address", "http://0.0.0.0:8000/v1", `found host "0.0.0.0"`},
		{"mapped private address", "http://[::ffff:10.0.0.1]:8000/v1", "want a loopback host"},
		{"link-local address", "http://[fe80::1]:8000/v1", "want a loopback host"},
		{"other scheme", "ftp://127.0.0.1/v1", "want an http(s) URL"},
		{"no scheme", "127.0.0.1:8000", "want an http(s) URL"},
		{"empty", "", "want an http(s) URL"},
		{"user information", "http://user:secret@127.0.0.1:8000/v1", "user information"},
		{"query", "http://127.0.0.1:8000/v1?key=x", "query"},
		{"fragment", "http://127.0.0.1:8000/v1#x", "fragment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewOpenAI(OpenAIConfig{BaseURL: tt.url, Model: "m"})
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != "BaseURL" || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want a BaseURL ConfigError with %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error %q quotes the URL's password", err)
			}
		})
	}
	for url, want := range map[string]string{
		"http://127.0.0.1:8000/v1":    "http://127.0.0.1:8000/v1/chat/completions",
		"http://127.0.0.1:8000/v1/":   "http://127.0.0.1:8000/v1/chat/completions",
		"http://localhost:11434":      "http://localhost:11434/v1/chat/completions",
		"http://LocalHost:11434/":     "http://LocalHost:11434/v1/chat/completions",
		"http://[::1]:8080/v1":        "http://[::1]:8080/v1/chat/completions",
		"https://127.3.2.1:9443/api1": "https://127.3.2.1:9443/api1/chat/completions",
	} {
		o, err := NewOpenAI(OpenAIConfig{BaseURL: url, Model: "m"})
		if err != nil || o.endpoint != want {
			t.Errorf("%s: endpoint %v, %v, want %s", url, o, err, want)
		}
	}
	for _, bad := range []OpenAIConfig{
		{BaseURL: "http://127.0.0.1:1/v1"},
		{BaseURL: "http://127.0.0.1:1/v1", Model: "has space"},
		{BaseURL: "http://127.0.0.1:1/v1", Model: "m", MaxTokens: -1},
		{BaseURL: "http://127.0.0.1:1/v1", Model: "m", MaxInputBytes: proto.MaxRequestPayload + 1},
	} {
		if _, err := NewOpenAI(bad); err == nil {
			t.Errorf("NewOpenAI(%+v) succeeded", bad)
		}
	}
}

func TestOpenAIDialsOnlyLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:80": true, "127.9.9.9:80": true, "[::1]:80": true, "10.0.0.1:80": false, "[2001:db8::1]:443": false, "192.168.1.1:11434": false} {
		if err := loopbackOnly("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("loopbackOnly(%s) = %v, want allowed %v", addr, err, ok)
		}
	}
	// A name the URL check lets through ("localhost") is dialed only if
	// it resolves to the loopback: the dialer checks the address itself.
	o, err := NewOpenAI(OpenAIConfig{BaseURL: "http://localhost:1/v1", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	tr := o.client.Transport.(*http.Transport)
	if tr.Proxy != nil {
		t.Fatal("the backend's transport uses a proxy")
	}
	if _, err := tr.DialContext(context.Background(), "tcp", "192.0.2.1:80"); err == nil || !strings.Contains(err.Error(), "reaches only the loopback") {
		t.Fatalf("dialing a non-loopback address: %v", err)
	}
}

func TestOpenAIChatStreamsDeltasAsTheyArrive(t *testing.T) {
	d := newUpstreamDouble(t)
	o, _ := testOpenAI(t, d, nil)
	// The double holds back each piece after the first until the backend
	// has emitted the one before: output is relayed as it comes, not
	// buffered until the end.
	gates := []chan struct{}{nil, make(chan struct{}), make(chan struct{})}
	close0 := make(chan struct{})
	close(close0)
	gates[0] = close0
	d.stream([]string{"Hel", "lo", " world"}, &usage{input: 21, output: 3}, gates...)
	temp := 0.7
	req := chat("Say hello. " + promptCanary)
	req.MaxTokens, req.Temperature = 64, &temp
	payload, _ := json.Marshal(req)
	var pieces []string
	end, err := o.Serve(context.Background(), proto.TaskChat, payload, func(s string) error {
		pieces = append(pieces, s)
		if len(pieces) < len(gates) {
			close(gates[len(pieces)])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pieces, "|") != "Hel|lo| world" {
		t.Fatalf("emitted %q", pieces)
	}
	if end != (proto.EndBody{Backend: "openai", Model: "llama3.1:8b", InputUnits: 21, OutputUnits: 3}) {
		t.Fatalf("end %+v", end)
	}
	got := d.lastRequest(t)
	want := map[string]any{
		"model": "llama3.1:8b", "stream": true, "stream_options": map[string]any{"include_usage": true},
		"max_tokens": 64.0, "temperature": 0.7,
		"messages": []any{map[string]any{"role": "system", "content": "Be brief."}, map[string]any{"role": "user", "content": "Say hello. " + promptCanary}},
	}
	if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
		t.Fatalf("upstream got\n%s\nwant\n%s", g, w)
	}
}

func TestOpenAIPromptTemplates(t *testing.T) {
	d := newUpstreamDouble(t)
	o, _ := testOpenAI(t, d, func(c *OpenAIConfig) { c.MaxTokens = 512 })
	doc := "The report says {text} twice. " + promptCanary
	tests := []struct {
		name     string
		task     string
		payload  any
		system   string
		wantUser string
	}{
		{"summarize, sentences", proto.TaskSummarize, proto.SummarizeRequest{Text: doc, Sentences: 3}, SummarizeSystemPrompt,
			"Summarize the following document in at most 3 sentences.\n\n" + doc},
		{"summarize, one sentence", proto.TaskSummarize, proto.SummarizeRequest{Text: doc, Sentences: 1}, SummarizeSystemPrompt,
			"Summarize the following document in one sentence.\n\n" + doc},
		{"summarize, ratio", proto.TaskSummarize, proto.SummarizeRequest{Text: doc, Ratio: 0.25}, SummarizeSystemPrompt,
			"Summarize the following document in about 25% of its length.\n\n" + doc},
		{"summarize, default", proto.TaskSummarize, proto.SummarizeRequest{Text: doc}, SummarizeSystemPrompt,
			"Summarize the following document in a few sentences.\n\n" + doc},
		{"translate", proto.TaskTranslate, proto.TranslateRequest{Text: doc, From: "en", To: "es"}, TranslateSystemPrompt,
			"Translate the following text from English into Spanish.\n\n" + doc},
		{"translate, three-letter codes", proto.TaskTranslate, proto.TranslateRequest{Text: doc, From: "cat", To: "deu"}, TranslateSystemPrompt,
			"Translate the following text from Catalan into German.\n\n" + doc},
		{"translate, detected source", proto.TaskTranslate, proto.TranslateRequest{Text: doc, From: "auto", To: "fr"}, TranslateSystemPrompt,
			"Translate the following text from whatever language it is in into French.\n\n" + doc},
		{"translate, empty source", proto.TaskTranslate, proto.TranslateRequest{Text: doc, To: "fr"}, TranslateSystemPrompt,
			"Translate the following text from whatever language it is in into French.\n\n" + doc},
		{"translate, unnamed code", proto.TaskTranslate, proto.TranslateRequest{Text: doc, From: "en", To: "tlh"}, TranslateSystemPrompt,
			"Translate the following text from English into the language with ISO 639 code tlh.\n\n" + doc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d.stream([]string{"out"}, &usage{input: 5, output: 1})
			pieces, end, err := collect(t, o, context.Background(), tt.task, tt.payload)
			if err != nil || strings.Join(pieces, "") != "out" || end.Model != "llama3.1:8b" || end.OutputUnits != 1 {
				t.Fatalf("pieces %q, end %+v, err %v", pieces, end, err)
			}
			got := d.lastRequest(t)
			msgs := got["messages"].([]any)
			if len(msgs) != 2 || msgs[0].(map[string]any)["content"] != tt.system || msgs[0].(map[string]any)["role"] != "system" ||
				msgs[1].(map[string]any)["content"] != tt.wantUser || msgs[1].(map[string]any)["role"] != "user" {
				t.Fatalf("messages %q", msgs)
			}
			if got["temperature"] != TaskTemperature || got["max_tokens"] != 512.0 {
				t.Fatalf("temperature %v, max_tokens %v", got["temperature"], got["max_tokens"])
			}
		})
	}
}

func TestOpenAIRefusesBadRequestsWithoutCallingUpstream(t *testing.T) {
	d := newUpstreamDouble(t)
	o, _ := testOpenAI(t, d, func(c *OpenAIConfig) { c.MaxInputBytes, c.MaxTokens = 200, 100 })
	hot := 3.5
	long := strings.Repeat("x", 201)
	tests := []struct {
		name, task string
		payload    any
		wantCode   string
		wantMsg    string
	}{
		{"chat, not json", proto.TaskChat, "nope", "bad_request", "does not decode"},
		{"chat, unknown field", proto.TaskChat, map[string]any{"messages": []any{}, "prompt": "x"}, "bad_request", "does not decode"},
		{"chat, no messages", proto.TaskChat, proto.ChatRequest{}, "bad_request", "0 messages"},
		{"chat, bad role", proto.TaskChat, proto.ChatRequest{Messages: []proto.ChatMessage{{Role: "tool", Content: "x"}}}, "bad_request", `role "tool"`},
		{"chat, ends with assistant", proto.TaskChat, proto.ChatRequest{Messages: []proto.ChatMessage{{Role: "user", Content: "x"}, {Role: "assistant", Content: "y"}}}, "bad_request", "want a user turn"},
		{"chat, other model", proto.TaskChat, proto.ChatRequest{Model: "gpt-4o", Messages: []proto.ChatMessage{{Role: "user", Content: "x"}}}, "model_unavailable", `serves "llama3.1:8b"`},
		{"chat, too long", proto.TaskChat, chat(long), "too_large", "want at most 200"},
		{"chat, too many tokens", proto.TaskChat, proto.ChatRequest{MaxTokens: 101, Messages: []proto.ChatMessage{{Role: "user", Content: "x"}}}, "bad_request", "want at most 100"},
		{"chat, negative tokens", proto.TaskChat, proto.ChatRequest{MaxTokens: -1, Messages: []proto.ChatMessage{{Role: "user", Content: "x"}}}, "bad_request", "max_tokens"},
		{"chat, hot", proto.TaskChat, proto.ChatRequest{Temperature: &hot, Messages: []proto.ChatMessage{{Role: "user", Content: "x"}}}, "bad_request", "temperature"},
		{"summarize, empty", proto.TaskSummarize, proto.SummarizeRequest{Text: " \n"}, "bad_request", "empty"},
		{"summarize, too long", proto.TaskSummarize, proto.SummarizeRequest{Text: long}, "too_large", "text of 201 bytes"},
		{"summarize, ratio", proto.TaskSummarize, proto.SummarizeRequest{Text: "x", Ratio: 1.5}, "bad_request", "ratio"},
		{"summarize, sentences", proto.TaskSummarize, proto.SummarizeRequest{Text: "x", Sentences: -2}, "bad_request", "sentences"},
		{"translate, bad target", proto.TaskTranslate, proto.TranslateRequest{Text: "x", From: "en", To: "Spanish"}, "bad_request", "target language"},
		{"translate, bad source", proto.TaskTranslate, proto.TranslateRequest{Text: "x", From: "e1", To: "es"}, "bad_request", "source language"},
		{"other task", "embed", map[string]any{}, "unsupported_task", "not served"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := collect(t, o, context.Background(), tt.task, tt.payload)
			var te *TaskError
			if !errors.As(err, &te) || te.Code != tt.wantCode || !strings.Contains(te.Message, tt.wantMsg) {
				t.Fatalf("err = %v, want %s with %q", err, tt.wantCode, tt.wantMsg)
			}
			if strings.Contains(te.Message, "xxxxx") {
				t.Fatalf("message %q quotes the input", te.Message)
			}
		})
	}
	if n := d.calls(); n != 0 {
		t.Fatalf("the upstream was called %d times for refused requests", n)
	}
}

func TestOpenAIUpstreamFailures(t *testing.T) {
	status := func(code int) func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		return func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			io.WriteString(w, `{"error":{"message":"`+upstreamSecret+` your prompt was `+promptCanary+`","type":"x"}}`)
		}
	}
	tests := []struct {
		name     string
		handle   func(w http.ResponseWriter, r *http.Request, req map[string]any)
		raw      string // an event stream to send instead, if set
		edit     func(*OpenAIConfig)
		wantCode string
		wantMsg  string
	}{
		{name: "500", handle: status(500), wantCode: "backend_unavailable", wantMsg: "failed (HTTP 500)"},
		{name: "502", handle: status(502), wantCode: "backend_unavailable", wantMsg: "HTTP 502"},
		{name: "503", handle: status(503), wantCode: "backend_busy", wantMsg: "at capacity (HTTP 503)"},
		{name: "429", handle: status(429), wantCode: "backend_busy", wantMsg: "HTTP 429"},
		{name: "400", handle: status(400), wantCode: "bad_request", wantMsg: "refused the request (HTTP 400)"},
		{name: "413", handle: status(413), wantCode: "too_large", wantMsg: "HTTP 413"},
		{name: "404", handle: status(404), wantCode: "backend_unavailable", wantMsg: "HTTP 404"},
		{name: "401", handle: status(401), wantCode: "backend_unavailable", wantMsg: "HTTP 401"},
		{name: "504", handle: status(504), wantCode: "backend_timeout", wantMsg: "HTTP 504"},
		{name: "redirect not followed", handle: func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			http.Redirect(w, r, "http://192.0.2.1/v1/chat/completions?"+upstreamSecret, http.StatusTemporaryRedirect)
		}, wantCode: "backend_unavailable", wantMsg: "HTTP 307"},
		{name: "not streamed", handle: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"choices":[{"message":{"content":"`+upstreamSecret+`"}}]}`)
		}, wantCode: "backend_error", wantMsg: "did not answer with an event stream"},
		{name: "error json in the stream", raw: "data: " + contentChunk("a") + "\n\ndata: {\"error\":{\"message\":\"" + upstreamSecret + "\",\"code\":500}}\n\n", wantCode: "backend_error", wantMsg: "reported an error"},
		{name: "llama.cpp error field", raw: "error: {\"code\":500,\"message\":\"" + upstreamSecret + "\"}\n\n", wantCode: "backend_error", wantMsg: "reported an error"},
		{name: "error event type", raw: "event: error\ndata: {\"message\":\"" + upstreamSecret + "\"}\n\n", wantCode: "backend_error", wantMsg: "reported an error"},
		{name: "malformed json", raw: "data: {\"choices\":[" + upstreamSecret + "\n\n", wantCode: "backend_error", wantMsg: "malformed stream"},
		{name: "data not an object", raw: "data: [\"" + upstreamSecret + "\"]\n\n", wantCode: "backend_error", wantMsg: "malformed stream"},
		{name: "data null", raw: "data: null\n\n", wantCode: "backend_error", wantMsg: "malformed stream"},
		{name: "content not a string", raw: "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":7}}]}\n\n", wantCode: "backend_error", wantMsg: "malformed stream"},
		{name: "two choices", raw: "data: {\"choices\":[{\"index\":0,\"delta\":{}},{\"index\":1,\"delta\":{}}]}\n\n", wantCode: "backend_error", wantMsg: "malformed stream"},
		{name: "other choice index", raw: "data: {\"choices\":[{\"index\":3,\"delta\":{}}]}\n\n", wantCode: "backend_error", wantMsg: "malformed stream"},
		{name: "negative usage", raw: "data: " + usageChunk(-1, 2) + "\n\ndata: [DONE]\n\n", wantCode: "backend_error", wantMsg: "malformed stream"},
		{name: "usage without counts", raw: "data: {\"choices\":[],\"usage\":{}}\n\ndata: [DONE]\n\n", wantCode: "backend_error", wantMsg: "malformed stream"},
		{name: "unknown field", raw: "data: " + contentChunk("a") + "\n\nfoo: " + upstreamSecret + "\n\n", wantCode: "backend_error", wantMsg: "malformed stream"},
		{name: "unknown event type", raw: "event: delta\ndata: " + contentChunk("a") + "\n\n", wantCode: "backend_error", wantMsg: "malformed stream"},
		{name: "line too long", raw: "data: " + contentChunk(strings.Repeat("a", maxSSELine)) + "\n\n", wantCode: "backend_error", wantMsg: "malformed stream"},
		{name: "stream too large", raw: strings.Repeat("data: "+contentChunk("aaaa")+"\n\n", 100), edit: func(c *OpenAIConfig) { c.MaxStreamBytes = 4096 },
			wantCode: "backend_error", wantMsg: "exceeds this worker's limit"},
		{name: "no [DONE]", raw: "data: " + contentChunk("a") + "\n\ndata: " + usageChunk(1, 1) + "\n\n", wantCode: "backend_error", wantMsg: "ended early"},
		{name: "cut mid-line", raw: "data: " + contentChunk("a")[:20], wantCode: "backend_error", wantMsg: "ended early"},
		{name: "stall before the first token", handle: func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			sse(w)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, edit: func(c *OpenAIConfig) { c.FirstTokenTimeout = 100 * time.Millisecond }, wantCode: "backend_timeout", wantMsg: "produced nothing within 100ms"},
		{name: "stall before the headers", handle: func(_ http.ResponseWriter, r *http.Request, _ map[string]any) {
			<-r.Context().Done()
		}, edit: func(c *OpenAIConfig) { c.FirstTokenTimeout = 100 * time.Millisecond }, wantCode: "backend_timeout", wantMsg: "produced nothing within"},
		{name: "stall after a token", handle: func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			sse(w)
			event(w, contentChunk("a"))
			<-r.Context().Done()
		}, edit: func(c *OpenAIConfig) { c.StallTimeout = 100 * time.Millisecond }, wantCode: "backend_timeout", wantMsg: "stalled for 100ms"},
		{name: "keep-alives do not count as progress", handle: func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			sse(w)
			event(w, contentChunk("a"))
			for {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
					io.WriteString(w, ": keep-alive\n\n")
					w.(http.Flusher).Flush()
				}
			}
		}, edit: func(c *OpenAIConfig) { c.StallTimeout = 150 * time.Millisecond }, wantCode: "backend_timeout", wantMsg: "stalled"},
		{name: "too slow overall", handle: func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			sse(w)
			for {
				event(w, contentChunk("a"))
				select {
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}, edit: func(c *OpenAIConfig) { c.TotalTimeout = 200 * time.Millisecond }, wantCode: "backend_timeout", wantMsg: "did not finish within 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newUpstreamDouble(t)
			switch {
			case tt.raw != "":
				d.raw(tt.raw)
			default:
				d.set(tt.handle)
			}
			o, logs := testOpenAI(t, d, tt.edit)
			_, _, err := collect(t, o, context.Background(), proto.TaskChat, chat("Tell me. "+promptCanary))
			var te *TaskError
			if !errors.As(err, &te) || te.Code != tt.wantCode || !strings.Contains(te.Message, tt.wantMsg) {
				t.Fatalf("err = %v, want %s with %q", err, tt.wantCode, tt.wantMsg)
			}
			for what, s := range map[string]string{"the client's message": te.Message, "the log": logs.String()} {
				if strings.Contains(s, upstreamSecret) || strings.Contains(s, promptCanary) {
					t.Fatalf("%s quotes the upstream's body or the prompt: %s", what, s)
				}
			}
			if !strings.Contains(logs.String(), "upstream") {
				t.Fatalf("the failure was not logged: %q", logs.String())
			}
		})
	}
}

func TestOpenAIUnreachableUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	o, err := NewOpenAI(OpenAIConfig{BaseURL: "http://" + addr + "/v1", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	_, _, err = collect(t, o, context.Background(), proto.TaskChat, chat("hi"))
	var te *TaskError
	if !errors.As(err, &te) || te.Code != "backend_unavailable" || !strings.Contains(te.Message, "not reachable") {
		t.Fatalf("err = %v, want backend_unavailable", err)
	}
}

func TestOpenAICancellationReachesUpstream(t *testing.T) {
	d := newUpstreamDouble(t)
	o, _ := testOpenAI(t, d, nil)
	d.stallAfter(1)
	ctx, cancel := context.WithCancel(context.Background())
	payload, _ := json.Marshal(chat("hi"))
	done := make(chan error, 1)
	go func() {
		_, err := o.Serve(ctx, proto.TaskChat, payload, func(string) error {
			cancel() // the client went away after the first piece
			return nil
		})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context was cancelled")
	}
	deadline := time.Now().Add(5 * time.Second)
	for d.sawCancel() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the upstream call was not cancelled")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOpenAIEmitErrorStopsTheCall(t *testing.T) {
	d := newUpstreamDouble(t)
	o, _ := testOpenAI(t, d, nil)
	d.stallAfter(3)
	payload, _ := json.Marshal(chat("hi"))
	gone := errors.New("client connection lost")
	_, err := o.Serve(context.Background(), proto.TaskChat, payload, func(string) error { return gone })
	if !errors.Is(err, gone) {
		t.Fatalf("err = %v, want the emit error", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for d.sawCancel() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the upstream call outlived the failed emit")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOpenAIWithoutUsageCountsDeltas(t *testing.T) {
	d := newUpstreamDouble(t)
	o, _ := testOpenAI(t, d, nil)
	d.stream([]string{"a", "b", "c", "d"}, nil)
	_, end, err := collect(t, o, context.Background(), proto.TaskChat, chat("hi"))
	if err != nil || end.InputUnits != 0 || end.OutputUnits != 4 {
		t.Fatalf("end %+v, err %v; want 0 input and 4 output units", end, err)
	}
}

func TestOpenAIStreamFormats(t *testing.T) {
	// Variants the engines send, and the server-sent events format allows.
	tests := []struct{ name, stream, want string }{
		{"crlf line ends", "data: " + contentChunk("a") + "\r\n\r\ndata: " + contentChunk("b") + "\r\n\r\ndata: [DONE]\r\n\r\n", "ab"},
		{"byte order mark", "\xef\xbb\xbfdata: " + contentChunk("a") + "\n\ndata: [DONE]\n\n", "a"},
		{"comments and ids", ": ping\n\nid: 1\nretry: 100\ndata: " + contentChunk("a") + "\n\n: ping\n\ndata: [DONE]\n\n", "a"},
		{"no space after the colon", "data:" + contentChunk("a") + "\n\ndata:[DONE]\n\n", "a"},
		{"message event type", "event: message\ndata: " + contentChunk("a") + "\n\ndata: [DONE]\n\n", "a"},
		{"data over two lines", "data: {\"choices\":[{\"index\":0,\n" + "data: \"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n", "a"},
		{"role-only and null content", "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":null}}]}\n\ndata: " + contentChunk("a") + "\n\ndata: [DONE]\n\n", "a"},
		{"reasoning is not forwarded", "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\ndata: " + contentChunk("a") + "\n\ndata: [DONE]\n\n", "a"},
		{"llama.cpp final chunk", "data: " + contentChunk("a") + "\n\ndata: {\"choices\":[{\"finish_reason\":\"stop\",\"index\":0,\"delta\":{}}],\"usage\":{\"completion_tokens\":1,\"prompt_tokens\":9,\"total_tokens\":10},\"timings\":{\"predicted_n\":1}}\n\ndata: [DONE]\n\n", "a"},
		{"unicode", "data: " + contentChunk("¿qué? 日本") + "\n\ndata: [DONE]\n\n", "¿qué? 日本"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newUpstreamDouble(t)
			o, _ := testOpenAI(t, d, nil)
			d.raw(tt.stream)
			pieces, _, err := collect(t, o, context.Background(), proto.TaskChat, chat("hi"))
			if err != nil || strings.Join(pieces, "") != tt.want {
				t.Fatalf("pieces %q, err %v, want %q", pieces, err, tt.want)
			}
		})
	}
}

// FuzzSSEStream feeds arbitrary upstream streams through the reader and
// the chunk parser: they never panic, always end, and refuse with errors
// that quote nothing of the stream.
func FuzzSSEStream(f *testing.F) {
	fuzzseed.Add(f, []byte("data: "+contentChunk("a")+"\n\ndata: "+usageChunk(1, 1)+"\n\ndata: [DONE]\n\n"))
	fuzzseed.Add(f, []byte("event: error\ndata: {}\n\n"))
	fuzzseed.Add(f, []byte("data: {\"choices\":[{\"index\":0,\n"+"data: \"delta\":{\"content\":\"a\"}}]}\r\n\r\n"))
	fuzzseed.Add(f, []byte(": c\n\nerror: x\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := newSSEReader(bytes.NewReader(in), 1<<16)
		for range len(in) + 2 {
			data, err := r.next()
			if err != nil {
				var se *sseError
				if errors.As(err, &se) && len(in) > 24 && strings.Contains(se.client, string(in[len(in)/2:])) {
					t.Fatalf("error quotes the stream")
				}
				return
			}
			if data == nil {
				return
			}
			c, err := parseChunk(data)
			if err == nil && c.usage != nil && (c.usage.input < 0 || c.usage.output < 0) {
				t.Fatal("negative usage accepted")
			}
		}
		t.Fatal("the reader returned more events than the stream has bytes")
	})
}
