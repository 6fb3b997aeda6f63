package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/proxy"
)

const tenantCredential = "sgt_dGVzdC1jcmVkZW50aWFsLW9mLTQzLWNoYXJhY3RlcnM"

// fakeGateway is a test double of a gateway that answers every call with
// status and a JSON error (with Retry-After when given), or, for status
// 200, an empty candidate listing. It counts the calls.
type fakeGateway struct {
	*httptest.Server
	calls atomic.Int32
}

func startFakeGateway(t *testing.T, status int, retryAfter string) *fakeGateway {
	t.Helper()
	g := &fakeGateway{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		g.calls.Add(1)
		rw.Header().Set("Content-Type", "application/json")
		if status == http.StatusOK {
			json.NewEncoder(rw).Encode(proto.CandidateList{})
			return
		}
		if retryAfter != "" {
			rw.Header().Set("Retry-After", retryAfter)
		}
		rw.WriteHeader(status)
		rw.Write([]byte(`{"error":{"code":"test","message":"the test double says no"}}`))
	}))
	t.Cleanup(g.Close)
	return g
}

func newProxy(t *testing.T, gatewayURL string, edit func(*proxy.Config)) *proxy.Proxy {
	t.Helper()
	c, err := client.New(client.Config{GatewayURL: gatewayURL, Credential: tenantCredential, InsecurePlainHTTP: true, Policy: policy.InsecureSimulated()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := proxy.Config{Client: c}
	if edit != nil {
		edit(&cfg)
	}
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// call sends a request to h as a local OpenAI client would, with edits.
func call(h http.Handler, method, path, body string, edit func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Host = "127.0.0.1:8080"
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if edit != nil {
		edit(r)
	}
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, r)
	return rw
}

// openaiError decodes an answer in OpenAI's error shape, failing the test
// if it is not one.
func openaiError(t *testing.T, rw *httptest.ResponseRecorder) (typ, code, param, msg string) {
	t.Helper()
	var body struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    string  `json:"code"`
		} `json:"error"`
	}
	dec := json.NewDecoder(rw.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Error.Type == "" || body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("answer %d %q is not an OpenAI error (%v)", rw.Code, rw.Body.String(), err)
	}
	if ct := rw.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error answered as %q", ct)
	}
	if body.Error.Param != nil {
		param = *body.Error.Param
	}
	return body.Error.Type, body.Error.Code, param, body.Error.Message
}

const hello = `{"model":"m","messages":[{"role":"user","content":"hello"}]`

// Requests the proxy refuses itself, before any call to the gateway.
func TestRequestsRefused(t *testing.T) {
	g := startFakeGateway(t, http.StatusServiceUnavailable, "")
	p := newProxy(t, g.URL, func(c *proxy.Config) { c.MaxBodyBytes = 4096 })
	keyed := newProxy(t, g.URL, func(c *proxy.Config) { c.APIKey = "sk-local" })
	chat := "/v1/chat/completions"
	tests := []struct {
		name       string
		h          http.Handler
		method     string
		path       string
		body       string
		edit       func(*http.Request)
		wantStatus int
		wantCode   string
		wantParam  string
	}{
		{"unknown endpoint", p, "GET", "/v1/completions", "", nil, 404, "not_found", ""},
		{"wrong method", p, "GET", chat, "", nil, 405, "method_not_allowed", ""},
		{"form post", p, "POST", chat, hello + "}", func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 415, "unsupported_media_type", ""},
		{"web page", p, "POST", chat, hello + "}", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, 403, "origin_not_allowed", ""},
		{"rebound host", p, "POST", chat, hello + "}", func(r *http.Request) { r.Host = "evil.example:8080" }, 403, "host_not_allowed", ""},
		{"no api key", keyed, "GET", "/v1/models", "", nil, 401, "invalid_api_key", ""},
		{"wrong api key", keyed, "GET", "/v1/models", "", func(r *http.Request) { r.Header.Set("Authorization", "Bearer sk-other") }, 401, "invalid_api_key", ""},
		{"not json", p, "POST", chat, `{"model":`, nil, 400, "invalid_json", ""},
		{"two objects", p, "POST", chat, hello + "}{}", nil, 400, "invalid_json", ""},
		{"wrong type", p, "POST", chat, `{"model":7,"messages":[]}`, nil, 400, "invalid_json", ""},
		{"too large", p, "POST", chat, hello + `,"user":"` + strings.Repeat("x", 5000) + `"}`, nil, 413, "request_too_large", ""},
		{"tools", p, "POST", chat, hello + `,"tools":[]}`, nil, 400, "unsupported_parameter", "tools"},
		{"two choices", p, "POST", chat, hello + `,"n":2}`, nil, 400, "unsupported_value", "n"},
		{"top_p", p, "POST", chat, hello + `,"top_p":0.5}`, nil, 400, "unsupported_value", "top_p"},
		{"stop sequences", p, "POST", chat, hello + `,"stop":["\n"]}`, nil, 400, "unsupported_value", "stop"},
		{"logprobs", p, "POST", chat, hello + `,"logprobs":true}`, nil, 400, "unsupported_value", "logprobs"},
		{"stream options without stream", p, "POST", chat, hello + `,"stream_options":{"include_usage":true}}`, nil, 400, "invalid_value", "stream_options"},
		{"unknown stream option", p, "POST", chat, hello + `,"stream":true,"stream_options":{"foo":1}}`, nil, 400, "invalid_json", ""},
		{"no messages", p, "POST", chat, `{"model":"m","messages":[]}`, nil, 400, "invalid_value", "messages"},
		{"tool role", p, "POST", chat, `{"model":"m","messages":[{"role":"tool","content":"x"}]}`, nil, 400, "invalid_value", "messages[0].role"},
		{"tool calls", p, "POST", chat, `{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[]}]}`, nil, 400, "invalid_json", ""},
		{"no content", p, "POST", chat, `{"model":"m","messages":[{"role":"user","content":null}]}`, nil, 400, "invalid_value", "messages[0].content"},
		{"image part", p, "POST", chat, `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}`, nil, 400, "invalid_value", "messages[0].content"},
		{"audio part", p, "POST", chat, `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","text":""}]}]}`, nil, 400, "unsupported_value", "messages[0].content[0].type"},
		{"ends with the assistant", p, "POST", chat, `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`, nil, 400, "invalid_value", "messages"},
		{"zero max tokens", p, "POST", chat, hello + `,"max_tokens":0}`, nil, 400, "invalid_value", "max_tokens"},
		{"two maxima", p, "POST", chat, hello + `,"max_tokens":5,"max_completion_tokens":6}`, nil, 400, "invalid_value", "max_completion_tokens"},
		{"hot", p, "POST", chat, hello + `,"temperature":2.5}`, nil, 400, "invalid_value", "temperature"},
		{"model with a space", p, "POST", chat, `{"model":"a b","messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_value", "model"},
		{"summarize nothing", p, "POST", "/v1/sealgate/summarize", `{"text":"  "}`, nil, 400, "invalid_value", "text"},
		{"summarize unknown field", p, "POST", "/v1/sealgate/summarize", `{"text":"x","length":3}`, nil, 400, "invalid_json", ""},
		{"translate without languages", p, "POST", "/v1/sealgate/translate", `{"text":"hola"}`, nil, 400, "invalid_value", "from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rw := call(tt.h, tt.method, tt.path, tt.body, tt.edit)
			if rw.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rw.Code, tt.wantStatus, rw.Body)
			}
			_, code, param, _ := openaiError(t, rw)
			if code != tt.wantCode || param != tt.wantParam {
				t.Fatalf("code %q param %q, want %q %q", code, param, tt.wantCode, tt.wantParam)
			}
		})
	}
	if n := g.calls.Load(); n != 0 {
		t.Fatalf("the gateway got %d calls for requests the proxy refuses", n)
	}
}

// What the gateway answers reaches the caller with OpenAI's statuses,
// Retry-After passed through, on every endpoint that calls it.
func TestGatewayAnswersMapped(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		wantStatus int
		wantType   string
		wantCode   string
	}{
		{401, "", 401, "authentication_error", "gateway_refused_credential"},
		{403, "", 403, "permission_error", "gateway_forbidden"},
		{429, "7", 429, "rate_limit_error", "rate_limit_exceeded"},
		{503, "3", 503, "server_error", "overloaded"},
		{500, "", 502, "server_error", "gateway_error"},
		{200, "", 503, "server_error", "no_verified_worker"}, // an empty listing
	}
	requests := []struct{ method, path, body string }{
		{"POST", "/v1/chat/completions", hello + "}"},
		{"POST", "/v1/chat/completions", hello + `,"stream":true}`},
		{"GET", "/v1/models", ""},
		{"POST", "/v1/sealgate/summarize", `{"text":"One. Two."}`},
		{"POST", "/v1/sealgate/translate", `{"text":"One.","from":"en","to":"es"}`},
	}
	for _, tt := range tests {
		g := startFakeGateway(t, tt.status, tt.retryAfter)
		p := newProxy(t, g.URL, nil)
		for _, req := range requests {
			t.Run(http.StatusText(tt.status)+" "+req.path+" "+req.body[min(len(req.body), 60):], func(t *testing.T) {
				rw := call(p, req.method, req.path, req.body, nil)
				if tt.status == http.StatusOK && req.path == "/v1/models" {
					if rw.Code != http.StatusOK || strings.TrimSpace(rw.Body.String()) != `{"object":"list","data":[]}` {
						t.Fatalf("models of an empty listing: %d %s", rw.Code, rw.Body)
					}
					return
				}
				if rw.Code != tt.wantStatus || rw.Header().Get("Retry-After") != tt.retryAfter {
					t.Fatalf("status %d Retry-After %q, want %d %q: %s", rw.Code, rw.Header().Get("Retry-After"), tt.wantStatus, tt.retryAfter, rw.Body)
				}
				typ, code, _, msg := openaiError(t, rw)
				if typ != tt.wantType || code != tt.wantCode {
					t.Fatalf("type %q code %q, want %q %q", typ, code, tt.wantType, tt.wantCode)
				}
				if strings.Contains(msg, tenantCredential) {
					t.Fatal("the message quotes the credential")
				}
			})
		}
	}
}

func TestCheckListenAddr(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.8.9.10:80", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{":8080", false},
		{"192.0.2.7:8080", false},
		{"proxy.example:8080", false},
		{"127.0.0.1", false},
	} {
		err := proxy.CheckListenAddr(tt.addr, false)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok %v", tt.addr, err, tt.ok)
		}
		if err := proxy.CheckListenAddr(tt.addr, true); err != nil {
			t.Errorf("%s with listen-any: %v", tt.addr, err)
		}
	}
}

// fakeListener reports an address and accepts nothing.
type fakeListener struct {
	addr   net.Addr
	closed atomic.Bool
}

func (l *fakeListener) Accept() (net.Conn, error) { return nil, errors.New("fake") }
func (l *fakeListener) Close() error              { l.closed.Store(true); return nil }
func (l *fakeListener) Addr() net.Addr            { return l.addr }

func TestServeRefusesNonLoopback(t *testing.T) {
	g := startFakeGateway(t, 503, "")
	ln := &fakeListener{addr: &net.TCPAddr{IP: net.IPv4zero, Port: 8080}}
	err := newProxy(t, g.URL, nil).Serve(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "loopback") || !ln.closed.Load() {
		t.Fatalf("serve on 0.0.0.0: %v (listener closed %v)", err, ln.closed.Load())
	}
}

// Serve stops when its context ends, with nothing in flight.
func TestServeStops(t *testing.T) {
	g := startFakeGateway(t, 200, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- newProxy(t, g.URL, nil).Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"object":"list"`) {
		t.Fatalf("models: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	if _, err := proxy.New(proxy.Config{}); err == nil {
		t.Fatal("New accepted a config without a client")
	}
	c, err := client.New(client.Config{GatewayURL: "https://gw.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proxy.New(proxy.Config{Client: c, APIKey: "two words"}); err == nil {
		t.Fatal("New accepted an API key with a space")
	}
	if _, err := proxy.New(proxy.Config{Client: c, MaxBodyBytes: -1}); err == nil {
		t.Fatal("New accepted a negative body limit")
	}
}
