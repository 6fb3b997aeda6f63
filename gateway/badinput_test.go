package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/internal/leakcheck"
	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
)

// Bounds of the bad-input test's waits: how long a case may take before
// it counts as a hang, and how long the gateway has to release what a
// case held. Neither is a timing the test asserts.
const (
	badInputBound = 15 * time.Second
	settleBound   = 10 * time.Second
)

// badInput is one malformed, oversized or slow request, written on a
// fresh TLS connection to the gateway by send (which may dribble), and
// what the gateway must answer: want, a 4xx status, or 0 when it must
// close the connection without an answer (the server's timeouts, or a
// connection that never was HTTP).
type badInput struct {
	name string
	send func(conn net.Conn) error
	want int
	code string // the error body's code, when the handler answers
}

// TestBadInput sends a table of malformed HTTP requests, oversized bodies
// and headers, slow-loris clients, invalid JSON and invalid or huge
// evidence to a real gateway serving TLS on 127.0.0.1, each on its own
// raw connection. Each must get a clear 4xx, or have its connection
// closed by the server's timeouts, and must leave no goroutine and no
// file descriptor behind once its connection is closed: the test counts
// both in this process (runtime.NumGoroutine, /proc/self/fd) and polls
// until they are back to where they were before the case.
//
// The gateway's header and body read timeouts are one and two seconds
// here, so that the slow clients are cut off quickly; production's are
// longer (gateway.DefaultReadHeaderTimeout, DefaultBodyReadTimeout).
func TestBadInput(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) {
		c.ReadHeaderTimeout = time.Second
		c.BodyReadTimeout = 2 * time.Second
	})
	w := newWorkerDouble(t, "w1", e.clock)
	reg := e.registration(w, proto.TaskSummarize)
	addr := strings.TrimPrefix(e.url, "https://")
	tlsConfig := tlspin.PinOnlyTrustConfig(tlspin.PinOf(e.cert.Leaf))
	tlsConfig.NextProtos = []string{"http/1.1"}

	// request is an HTTP/1.1 request's head with the credential cred
	// ("" for none), and body.
	request := func(method, path, cred, contentType string, body []byte) []byte {
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, addr)
		if cred != "" {
			fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", cred)
		}
		if contentType != "" {
			fmt.Fprintf(&b, "Content-Type: %s\r\n", contentType)
		}
		if body != nil {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
		}
		b.WriteString("\r\n")
		b.Write(body)
		return b.Bytes()
	}
	raw := func(b []byte) func(net.Conn) error {
		return func(c net.Conn) error { _, err := c.Write(b); return err }
	}
	// dribble writes b one byte every 100 ms, until the server closes the
	// connection (or all of b is written, which it must not come to).
	dribble := func(head, b []byte) func(net.Conn) error {
		return func(c net.Conn) error {
			if _, err := c.Write(head); err != nil {
				return err
			}
			for i := range b {
				if _, err := c.Write(b[i : i+1]); err != nil {
					return err
				}
				time.Sleep(100 * time.Millisecond)
			}
			return nil
		}
	}
	// chunked streams prefix and then filler, n bytes in all, as a
	// chunked body after head, until the server stops reading.
	chunked := func(head, prefix []byte, n int) func(net.Conn) error {
		return func(c net.Conn) error {
			if _, err := c.Write(head); err != nil {
				return err
			}
			if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(prefix), prefix); err != nil {
				return err
			}
			chunk := bytes.Repeat([]byte("A"), 64<<10)
			for sent := 0; sent < n; sent += len(chunk) {
				if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
					return err
				}
			}
			_, err := c.Write([]byte("0\r\n\r\n"))
			return err
		}
	}
	// withHeader adds a header line to a request head.
	withHeader := func(head []byte, line string) []byte {
		return append(head[:len(head)-2:len(head)-2], line+"\r\n\r\n"...)
	}
	chunkedHead := func(method, path, cred, contentType string) []byte {
		return withHeader(request(method, path, cred, contentType, nil), "Transfer-Encoding: chunked")
	}
	jsonOf := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	admin, tenant, provider := e.admin, e.tenant, e.provider.cred
	sealed := e.seal(proto.TaskSummarize, "a sealed request", w.key()).Bytes()
	badBundle := reg
	badBundle.Bundle = []byte("not an evidence bundle")
	// A bundle far larger than any real one but within the JSON limit:
	// parsed and refused, not stored.
	hugeBundle := reg
	hugeBundle.Bundle = bytes.Repeat([]byte{0xA5}, 2<<20)
	// One over the limit, refused for its declared length.
	tooHugeBundle := reg
	tooHugeBundle.Bundle = bytes.Repeat([]byte{0xA5}, proto.MaxJSONBody/4*3+1024)
	truncatedBundle := reg
	truncatedBundle.Bundle = reg.Bundle[:len(reg.Bundle)/2]

	cases := []badInput{
		// Not HTTP, or not TLS.
		{name: "garbage request line", send: raw([]byte("\x00\x01 GARBAGE\r\n\r\n")), want: 400},
		{name: "no method", send: raw([]byte(" /healthz HTTP/1.1\r\nHost: x\r\n\r\n")), want: 400},
		{name: "missing Host", send: raw([]byte("GET /healthz HTTP/1.1\r\n\r\n")), want: 400},
		{name: "header without colon", send: raw([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n")), want: 400},
		{name: "control byte in header", send: raw([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n")), want: 400},
		{name: "bad Content-Length", send: raw([]byte("POST /v1/admin/tenants HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n")), want: 400},
		{name: "two Content-Lengths", send: raw([]byte("POST /v1/admin/tenants HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}")), want: 400},
		{name: "bad chunk size", send: raw(append(chunkedHead("POST", proto.PathAdminTenants, admin, "application/json"), "zz\r\n{}\r\n0\r\n\r\n"...)), want: 400, code: "bad_request"},
		{name: "body on a route that takes none", send: raw(request("GET", "/healthz", "", "application/json", []byte("{}"))), want: 200},
		{name: "unknown route", send: raw(request("GET", "/v1/nothing", "", "", nil)), want: 404, code: "not_found"},
		{name: "wrong method", send: raw(request("PATCH", proto.PathRequests, tenant, "", nil)), want: 405, code: "method_not_allowed"},

		// Oversized heads and bodies.
		{name: "huge header", send: raw(withHeader(request("GET", "/healthz", "", "", nil), "X-Big: "+strings.Repeat("b", 64<<10))), want: 431},
		{name: "huge URL", send: raw([]byte("GET /healthz?" + strings.Repeat("a", 64<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n")), want: 431},
		{name: "huge credential", send: raw(request("GET", proto.PathStatus, strings.Repeat("x", 4<<10), "", nil)), want: 401, code: "unauthorized"},
		{name: "account body over its limit", send: raw(request("POST", proto.PathAdminTenants, admin, "application/json", jsonOf(proto.NewAccount{ID: strings.Repeat("a", 80<<10)}))), want: 413, code: "too_large"},
		{name: "chunked account body over its limit", send: chunked(chunkedHead("POST", proto.PathAdminTenants, admin, "application/json"), []byte(`{"id":"`), 1<<20), want: 413, code: "too_large"},
		{name: "sealed request over its limit (declared)", send: raw(withHeader(request("POST", proto.PathRequests, tenant, proto.MediaTypeRequest, nil), fmt.Sprintf("Content-Length: %d", gateway.DefaultMaxRequestBody+1))), want: 413, code: "too_large"},
		{name: "huge sealed garbage (chunked)", send: chunked(chunkedHead("POST", proto.PathRequests, tenant, proto.MediaTypeRequest), nil, int(gateway.DefaultMaxRequestBody)+1<<20), want: 400, code: "bad_request"},

		// Invalid JSON and sealed bodies.
		{name: "not JSON", send: raw(request("POST", proto.PathAdminTenants, admin, "application/json", []byte("id=t9"))), want: 400, code: "bad_request"},
		{name: "truncated JSON", send: raw(request("POST", proto.PathAdminTenants, admin, "application/json", []byte(`{"id":"t9"`))), want: 400, code: "bad_request"},
		{name: "JSON array", send: raw(request("POST", proto.PathAdminTenants, admin, "application/json", []byte(`["t9"]`))), want: 400, code: "bad_request"},
		{name: "unknown field", send: raw(request("POST", proto.PathAdminTenants, admin, "application/json", []byte(`{"id":"t9","root":true}`))), want: 400, code: "bad_request"},
		{name: "wrong type", send: raw(request("POST", proto.PathAdminTenants, admin, "application/json", []byte(`{"id":9}`))), want: 400, code: "bad_request"},
		{name: "two objects", send: raw(request("POST", proto.PathAdminTenants, admin, "application/json", []byte(`{"id":"t9"}{"id":"t10"}`))), want: 400, code: "bad_request"},
		{name: "deeply nested", send: raw(request("POST", proto.PathAdminTenants, admin, "application/json", []byte(`{"id":`+strings.Repeat("[", 20000)))), want: 400, code: "bad_request"},
		{name: "invalid UTF-8 and NUL", send: raw(request("POST", proto.PathAdminTenants, admin, "application/json", []byte("{\"id\":\"\xff\x00\"}"))), want: 400, code: "bad_request"},
		{name: "body shorter than declared", send: func(c net.Conn) error {
			h := request("POST", proto.PathAdminTenants, admin, "application/json", []byte(`{"id":"t9"}`))
			h = bytes.Replace(h, []byte("Content-Length: 11"), []byte("Content-Length: 99"), 1)
			if _, err := c.Write(h); err != nil {
				return err
			}
			return c.(*tls.Conn).CloseWrite()
		}, want: 400, code: "bad_request"},
		{name: "wrong Content-Type", send: raw(request("POST", proto.PathAdminTenants, admin, "text/plain", []byte(`{"id":"t9"}`))), want: 415, code: "unsupported_media_type"},
		{name: "no Content-Type", send: raw(request("POST", proto.PathAdminTenants, admin, "", []byte(`{"id":"t9"}`))), want: 415, code: "unsupported_media_type"},
		{name: "sealed request of garbage", send: raw(request("POST", proto.PathRequests, tenant, proto.MediaTypeRequest, []byte("not a sealed request"))), want: 400, code: "bad_request"},
		{name: "sealed request empty", send: raw(request("POST", proto.PathRequests, tenant, proto.MediaTypeRequest, []byte{})), want: 400, code: "bad_request"},
		{name: "candidates without a task", send: raw(request("GET", proto.PathCandidates, tenant, "", nil)), want: 400, code: "bad_request"},
		{name: "candidates with a bad max", send: raw(request("GET", proto.PathCandidates+"?task=summarize&max=1e9", tenant, "", nil)), want: 400, code: "bad_request"},

		// Evidence at registration.
		{name: "registration with a garbage bundle", send: raw(request("POST", proto.PathRegister, provider, "application/json", jsonOf(badBundle))), want: 400, code: "bad_request"},
		{name: "registration with a truncated bundle", send: raw(request("POST", proto.PathRegister, provider, "application/json", jsonOf(truncatedBundle))), want: 400, code: "bad_request"},
		{name: "registration with a huge bundle", send: raw(request("POST", proto.PathRegister, provider, "application/json", jsonOf(hugeBundle))), want: 400, code: "bad_request"},
		{name: "registration over the limit", send: raw(request("POST", proto.PathRegister, provider, "application/json", jsonOf(tooHugeBundle))), want: 413, code: "too_large"},
		{name: "registration bundle not base64", send: raw(request("POST", proto.PathRegister, provider, "application/json", []byte(`{"worker_id":"w1","bundle":"!!!"}`))), want: 400, code: "bad_request"},
		{name: "registration without a credential", send: raw(request("POST", proto.PathRegister, "", "application/json", jsonOf(reg))), want: 401, code: "unauthorized"},

		// Slow clients: the server's timeouts close the connection, or
		// the body's read timeout ends the request.
		{name: "slow-loris head", send: dribble([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"), []byte("X-Slow: "+strings.Repeat("a", 100)+"\r\n\r\n")), want: 0},
		{name: "slow-loris JSON body", send: dribble(withHeader(request("POST", proto.PathAdminTenants, admin, "application/json", nil), "Content-Length: 200"), []byte(`{"id":"`+strings.Repeat("s", 190)+`"}`)), want: 408, code: "request_timeout"},
		{name: "slow-loris sealed body", send: dribble(withHeader(request("POST", proto.PathRequests, tenant, proto.MediaTypeRequest, nil), fmt.Sprintf("Content-Length: %d", len(sealed))), sealed), want: 408, code: "request_timeout"},
		{name: "slow-loris body after a refusal", send: dribble(withHeader(request("POST", proto.PathAdminTenants, "", "application/json", nil), "Content-Length: 200"), bytes.Repeat([]byte("s"), 200)), want: 401, code: "unauthorized"},
		{name: "slow-loris body on a route that takes none", send: dribble(withHeader(request("GET", "/healthz", "", "application/json", nil), "Content-Length: 200"), bytes.Repeat([]byte("s"), 200)), want: 200},
		{name: "silent connection (no TLS handshake)"},
		{name: "not TLS"},
	}
	e.client.CloseIdleConnections()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := settled(t, nil)
			switch c.name {
			case "silent connection (no TLS handshake)", "not TLS":
				checkClosedRaw(t, addr, c.name == "not TLS")
			default:
				checkBadInput(t, addr, tlsConfig, c)
			}
			settled(t, &base)
		})
	}

	// The gateway still serves, and nothing the cases sent was stored.
	resp, body := e.do(http.MethodGet, proto.PathAdminStatus, "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin status after the bad input: %d %s", resp.StatusCode, body)
	}
	var st proto.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Workers) != 0 {
		t.Errorf("workers after the bad input: %+v, want none", st.Workers)
	}
	if strings.Contains(e.logs.String(), `"level":"ERROR"`) {
		t.Errorf("the gateway logged an error for bad input:\n%s", lastErrorLines(e.logs.String()))
	}
}

// checkBadInput writes c's request on a fresh TLS connection and checks
// the answer: c.want, or the connection closed by the server when c.want
// is 0. The connection is closed when it returns.
func checkBadInput(t *testing.T, addr string, cfg *tls.Config, c badInput) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(badInputBound))
	sent := make(chan error, 1)
	go func() { sent <- c.send(conn) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if c.want == 0 {
		switch {
		case err == nil:
			t.Fatalf("answered %s, want the connection closed by the server's timeout", resp.Status)
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Fatalf("no answer and the connection still open after %v: the server has no timeout for this", badInputBound)
		}
		if serr := <-sent; serr == nil {
			t.Fatal("the whole slow request was written before the server closed the connection")
		}
		return
	}
	if err != nil {
		t.Fatalf("reading the answer: %v, want %d", err, c.want)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != c.want {
		t.Fatalf("answered %s (%.200q), want %d", resp.Status, body, c.want)
	}
	if c.code != "" {
		if got := errorCode(body); got != c.code {
			t.Errorf("error code %q (body %.200q), want %q", got, body, c.code)
		}
	}
	conn.Close()
	<-sent // a write still in progress ends with the closed connection
}

// checkClosedRaw opens a plain TCP connection to the TLS port and either
// says nothing or sends bytes that are not TLS; the server must close it.
func checkClosedRaw(t *testing.T, addr string, garbage bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(badInputBound))
	if garbage {
		if _, err := conn.Write(bytes.Repeat([]byte{0x16, 0x03, 0x01, 0xff, 0xff}, 1000)); err != nil {
			return // closed already
		}
	}
	_, err = io.Copy(io.Discard, conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection is still open after %v: the server has no timeout for this", badInputBound)
	}
}

// settled waits until this process's goroutines and file descriptors
// settle, at most base's when base is not nil, and returns the reading.
func settled(t *testing.T, base *leakcheck.Resources) leakcheck.Resources {
	t.Helper()
	r, err := leakcheck.Settle(settleBound, base)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// lastErrorLines returns the log lines at level ERROR.
func lastErrorLines(logs string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
