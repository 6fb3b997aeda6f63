package seal

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/proto"
)

func TestRoundTrip(t *testing.T) {
	for _, suite := range proto.Suites() {
		t.Run(suite.String(), func(t *testing.T) {
			var keys []*PrivateKey
			var pubs []proto.HPKEKey
			for range 3 {
				k, err := GenerateKey(suite.KEM)
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
				pubs = append(pubs, k.Public())
			}
			payload := []byte(strings.Repeat("confidential prompt ", 2000))
			req, err := Seal(suite, pubs, "summarize", payload, Options{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := proto.ReadRequestPreamble(bytes.NewReader(req.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			rest := req.Bytes()[8+len(p.HeaderBytes)+3*proto.WrapSize:]
			fwd := proto.AppendForwardPreamble(nil, p.HeaderBytes, 1, p.Wraps[1])
			fwd = append(fwd, rest...)
			op, err := NewOpener(OpenerConfig{Keys: keys[1:2]})
			if err != nil {
				t.Fatal(err)
			}
			opened, err := op.Open(bytes.NewReader(fwd))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(opened.Payload, payload) {
				t.Fatal("payload mismatch")
			}
			var out bytes.Buffer
			rw, err := opened.NewResponseWriter(&out, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			big := bytes.Repeat([]byte("x"), 5000)
			if err := rw.WriteEvent(proto.Event{Type: proto.EventData, Data: big}); err != nil {
				t.Fatal(err)
			}
			if err := rw.Finish(proto.Event{Type: proto.EventEnd, Data: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
			resp, err := req.OpenResponse(&out)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Candidate() != 1 {
				t.Fatalf("candidate %d, want 1", resp.Candidate())
			}
			e, err := resp.Next()
			if err != nil || !bytes.Equal(e.Data, big) {
				t.Fatalf("event: %v", err)
			}
			e, err = resp.Next()
			if err != nil || e.Type != proto.EventEnd {
				t.Fatalf("end: %v %v", e.Type, err)
			}
			if _, err := resp.Next(); err != io.EOF {
				t.Fatalf("after end: %v", err)
			}
			if _, err := op.Open(bytes.NewReader(fwd)); err != ErrReplay {
				t.Fatalf("replay: %v", err)
			}
		})
	}
}
