package enclave

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/internal/leakcheck"
	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
)

// badInputBound is how long a bad-input case may take before it counts
// as a hang; settleBound, how long the worker has to release what a case
// held. Neither is a timing the test asserts.
const (
	badInputBound = 20 * time.Second
	settleBound   = 10 * time.Second
)

// TestBadInput sends malformed, oversized and slow input to a worker's
// real mutual-TLS listener on 127.0.0.1: from strangers (plain HTTP, no
// client certificate, another certificate, a connection that says
// nothing) and from the gateway it pins, which the worker does not trust
// with anything but availability (malformed HTTP, oversized heads and
// bodies, sealed bodies and JSON that do not parse, a body dribbled
// slowly). Each must get a clear 4xx or have its connection closed, and
// leave no goroutine or file descriptor behind once its connection is
// closed (counted in this process, polled until settled).
func TestBadInput(t *testing.T) {
	pub, priv := testProviderKey(t)
	g := newFakeGateway(t, pub)
	w := runWorker(t, g, priv, Config{BodyReadTimeout: 2 * time.Second}, nil)
	reg := g.nextRegistration(t)
	u, err := url.Parse(reg.URL)
	if err != nil {
		t.Fatal(err)
	}
	addr := u.Host
	pin, err := tlspin.ParsePin(reg.TLSPin)
	if err != nil {
		t.Fatal(err)
	}
	asGateway := tlspin.ClientConfig(g.cert.Load(), pin)
	asGateway.NextProtos = []string{"http/1.1"}
	noCert := tlspin.ClientConfig(nil, pin)
	stranger, err := tlspin.SelfSigned(nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	asStranger := tlspin.ClientConfig(&stranger, pin)
	// The worker holds its keys once the gateway has admitted it.
	for deadline := time.Now().Add(wait); w.Bundle() == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the worker has no keys after its registration")
		}
	}
	_, fwd := sealTo(t, w, proto.TaskSummarize, []byte(`{"text":"Bad input gets a clear answer. Nothing is left behind.","sentences":1}`))

	request := func(method, path, contentType string, body []byte) []byte {
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, addr)
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
	withHeader := func(head []byte, line string) []byte {
		return append(head[:len(head)-2:len(head)-2], line+"\r\n\r\n"...)
	}

	cases := []struct {
		name string
		tls  *tls.Config // nil: plain TCP
		send []byte      // written at once
		slow []byte      // then dribbled, one byte every 100 ms
		want int         // the status, or 0 when the connection must be closed without one
	}{
		{name: "plain HTTP to the TLS port", send: request("GET", proto.PathHealth, "", nil), want: 400},
		{name: "silent connection (no TLS handshake)", want: 0},
		{name: "no client certificate", tls: noCert, send: request("GET", proto.PathHealth, "", nil), want: 0},
		{name: "a stranger's certificate", tls: asStranger, send: request("GET", proto.PathHealth, "", nil), want: 0},
		{name: "garbage request line", tls: asGateway, send: []byte("\x00\x01 GARBAGE\r\n\r\n"), want: 400},
		{name: "huge header", tls: asGateway, send: withHeader(request("GET", proto.PathHealth, "", nil), "X-Big: "+strings.Repeat("b", 64<<10)), want: 431},
		{name: "unknown route", tls: asGateway, send: request("GET", "/v1/nothing", "", nil), want: 404},
		{name: "sealed body of garbage", tls: asGateway, send: request("POST", proto.PathServe, proto.MediaTypeForward, []byte("not a sealed request")), want: 400},
		{name: "sealed body empty", tls: asGateway, send: request("POST", proto.PathServe, proto.MediaTypeForward, []byte{}), want: 400},
		{name: "sealed body truncated", tls: asGateway, send: request("POST", proto.PathServe, proto.MediaTypeForward, fwd[:len(fwd)/2]), want: 400},
		{name: "sealed body over its limit", tls: asGateway, send: withHeader(request("POST", proto.PathServe, proto.MediaTypeForward, nil), fmt.Sprintf("Content-Length: %d", maxForwardBody+1)), want: 413},
		{name: "challenge not JSON", tls: asGateway, send: request("POST", proto.PathAttest, "application/json", []byte("nonce=1")), want: 400},
		{name: "challenge with an unknown field", tls: asGateway, send: request("POST", proto.PathAttest, "application/json", []byte(`{"root":true}`)), want: 400},
		{name: "challenge of the wrong type", tls: asGateway, send: request("POST", proto.PathAttest, "text/plain", []byte(`{}`)), want: 415},
		{name: "evidence request over its limit", tls: asGateway, send: request("POST", proto.PathQuote, "application/json", []byte(`{"nonce":"`+strings.Repeat("A", 1<<20)+`"}`)), want: 413},
		{name: "slow-loris sealed body", tls: asGateway, send: withHeader(request("POST", proto.PathServe, proto.MediaTypeForward, nil), fmt.Sprintf("Content-Length: %d", len(fwd))), slow: fwd, want: 408},
		{name: "slow-loris challenge", tls: asGateway, send: withHeader(request("POST", proto.PathAttest, "application/json", nil), "Content-Length: 100"), slow: []byte(`{"nonce":"` + strings.Repeat("A", 88) + `"}`), want: 408},
	}
	g.srv.Client().CloseIdleConnections()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base, err := leakcheck.Settle(settleBound, nil)
			if err != nil {
				t.Fatal(err)
			}
			status, err := exchange(addr, c.tls, c.send, c.slow)
			switch {
			case c.want == 0 && err == nil:
				t.Fatalf("answered %d, want the connection closed", status)
			case c.want == 0 && errors.Is(err, os.ErrDeadlineExceeded):
				t.Fatalf("the connection is still open after %v: no timeout covers this", badInputBound)
			case c.want != 0 && err != nil:
				t.Fatalf("no answer: %v; want %d", err, c.want)
			case status != c.want:
				t.Fatalf("answered %d, want %d", status, c.want)
			}
			if _, err := leakcheck.Settle(settleBound, &base); err != nil {
				t.Fatal(err)
			}
		})
	}

	// The worker still serves its gateway.
	resp, err := client(t, g.cert.Load(), reg.TLSPin).Get(reg.URL + proto.PathHealth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz after the bad input: %d", resp.StatusCode)
	}
}

// exchange opens a connection to addr (TLS with cfg, plain TCP when cfg is
// nil), writes send, dribbles slow, and reads one response. It returns the
// status, or the error that ended the exchange: the connection closed, or
// os.ErrDeadlineExceeded after badInputBound. The connection is closed
// when it returns.
func exchange(addr string, cfg *tls.Config, send, slow []byte) (int, error) {
	var conn net.Conn
	var err error
	if cfg == nil {
		conn, err = net.Dial("tcp", addr)
	} else {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: badInputBound}, "tcp", addr, cfg)
	}
	if err != nil {
		return 0, fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(badInputBound))
	written := make(chan struct{})
	go func() {
		defer close(written)
		if _, err := conn.Write(send); err != nil {
			return
		}
		for i := range slow {
			if _, err := conn.Write(slow[i : i+1]); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	defer func() { conn.Close(); <-written }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}
