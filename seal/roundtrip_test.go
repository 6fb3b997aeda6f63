package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/proto"
)

func TestRoundTrip(t *testing.T) {
	for _, suite := range proto.Suites() {
		t.Run(suite.String(), func(t *testing.T) {
			var keys []*PrivateKey
			for range 3 {
				k, err := GenerateKey(suite.KEM)
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
			}
			payload := []byte(strings.Repeat("confidential prompt ", 2000))
			req, err := Seal(suite, publics(keys), "summarize", payload, Options{})
			if err != nil {
				t.Fatal(err)
			}
			fwd := forwardTo(t, req, 1)
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
			events := []proto.Event{
				{Type: proto.EventData, Data: bytes.Repeat([]byte("x"), 5000)},
				{Type: proto.EventEnd, Data: []byte("{}")},
			}
			resp, got, err := readResponse(req, writeResponse(t, opened, events))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Candidate() != 1 {
				t.Fatalf("candidate %d, want 1", resp.Candidate())
			}
			if !equalEvents(got, events) {
				t.Fatal("events differ")
			}
			if _, err := op.Open(bytes.NewReader(fwd)); !errors.Is(err, ErrReplay) {
				t.Fatalf("replay: %v", err)
			}
		})
	}
}
