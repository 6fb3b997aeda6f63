// Package tap is a test helper: a TCP relay on loopback that records every
// byte passing through it in both directions. End-to-end tests put one on
// each of the gateway's connections to prove what the gateway handles.
package tap

import (
	"bytes"
	"net"
	"sync"
)

// Tap relays connections from its listener to Target and records them.
type Tap struct {
	// Addr is the address clients connect to.
	Addr   string
	target string
	ln     net.Listener

	mu    sync.Mutex // guards buf and conns
	buf   bytes.Buffer
	conns []net.Conn
	wg    sync.WaitGroup
}

// New starts a tap on 127.0.0.1 relaying to target.
func New(target string) (*Tap, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &Tap{Addr: ln.Addr().String(), target: target, ln: ln}
	t.wg.Add(1)
	go t.accept()
	return t, nil
}

func (t *Tap) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", t.target)
		if err != nil {
			c.Close()
			continue
		}
		t.mu.Lock()
		t.conns = append(t.conns, c, up)
		t.mu.Unlock()
		t.wg.Add(2)
		go t.pipe(up, c)
		go t.pipe(c, up)
	}
}

func (t *Tap) pipe(dst, src net.Conn) {
	defer t.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			t.mu.Lock()
			t.buf.Write(buf[:n])
			t.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	// Half-close: the other direction may still be carrying a response.
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// Bytes returns a copy of everything recorded so far.
func (t *Tap) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf.Bytes())
}

// Close stops the tap and closes every relayed connection.
func (t *Tap) Close() {
	t.ln.Close()
	t.mu.Lock()
	for _, c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}
