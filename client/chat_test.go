package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client/internal/gatewaytest"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// chatFleet is fleet with every worker listed for chat, worker i with
// models[i] (a comma-separated list) when given.
func chatFleet(t *testing.T, layout string, models ...string) []*gatewaytest.Worker {
	t.Helper()
	ws := fleet(t, layout)
	for i, w := range ws {
		w.Tasks = []string{proto.TaskChat}
		if i < len(models) && models[i] != "" {
			w.Models = strings.Split(models[i], ",")
		}
	}
	return ws
}

func userSays(text string) proto.ChatRequest {
	return proto.ChatRequest{Messages: []proto.ChatMessage{{Role: proto.RoleUser, Content: text}}}
}

// deltas ranges over s and returns every delta and the error that ended
// the sequence.
func deltas(s *ChatStream) ([]string, error) {
	var out []string
	for d, err := range s.Deltas() {
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

func TestChatStreamsDeltas(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: chatFleet(t, "AB")})
	c := clientOf(t, g, func(c *Config) { c.K = 2 })
	req := userSays("the enclave keeps it")
	req.Messages = append([]proto.ChatMessage{{Role: proto.RoleSystem, Content: "Be brief."}}, req.Messages...)
	s, err := c.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if s.Worker.ID != "A0" || s.Worker.Kind != "sim" || len(s.Worker.BundleHash) != 64 || ids(s.Candidates) != "A0 B1" || s.RequestID == "" {
		t.Fatalf("stream names worker %+v, candidates %s, request %q", s.Worker, ids(s.Candidates), s.RequestID)
	}
	if _, ok := s.End(); ok {
		t.Fatal("End reports a summary before the stream was read")
	}
	got, err := deltas(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"You", " said:", " the", " enclave", " keeps", " it"}; !slices.Equal(got, want) {
		t.Fatalf("deltas %q, want %q", got, want)
	}
	end, ok := s.End()
	if !ok || end.Model != "echo-double" || end.InputUnits != 6 || end.OutputUnits != 6 {
		t.Fatalf("end %+v, %v", end, ok)
	}
	if again, err := deltas(s); len(again) != 0 || err != nil {
		t.Fatalf("a second range gave %q, %v", again, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.End(); !ok {
		t.Fatal("Close after the end forgot the summary")
	}
}

func TestChatCollect(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: chatFleet(t, "A")})
	c := clientOf(t, g, func(c *Config) { c.Strict = true })
	s, err := c.Chat(context.Background(), userSays("hello there"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Collect()
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "You said: hello there" || res.End.Backend != "gatewaytest" || !res.Worker.Strict || res.Worker.ID != "A0" || res.RequestID != s.RequestID {
		t.Fatalf("result %+v", res)
	}

	s, err = c.Chat(context.Background(), userSays("hello there"))
	if err != nil {
		t.Fatal(err)
	}
	for range s.Deltas() {
		break
	}
	if _, err := s.Collect(); err == nil {
		t.Fatal("Collect after a delta was read returned a partial reply")
	}
}

// Do still collects, now through the same stream, and a chat through Do
// gets the same reply.
func TestDoChat(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: chatFleet(t, "A")})
	res, err := clientOf(t, g, nil).Do(context.Background(), proto.TaskChat, []byte(`{"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil || res.Text != "You said: hi" || res.End.OutputUnits != 3 {
		t.Fatalf("do chat: %+v, %v", res, err)
	}
}

// A model narrows the candidates to the workers listed with it.
func TestChatModel(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: chatFleet(t, "ABC", "small", "small,large", "")})
	c := clientOf(t, g, nil)
	req := userSays("which model")
	req.Model = "large"
	res, err := mustChat(t, c, req).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if ids(res.Candidates) != "B1" || res.End.Model != "large" {
		t.Fatalf("sealed to %s, model %q; want B1 only, large", ids(res.Candidates), res.End.Model)
	}
	req.Model = "small"
	if res, err = mustChat(t, c, req).Collect(); err != nil || ids(res.Candidates) != "A0 B1" {
		t.Fatalf("model small: sealed to %s (%v), want A0 B1", ids(res.Candidates), err)
	}
	req.Model = "huge"
	_, err = c.Chat(context.Background(), req)
	var nc *NoCandidateError
	if !errors.Is(err, ErrNoCandidate) || !errors.As(err, &nc) || nc.Model != "huge" || !strings.Contains(err.Error(), `model "huge"`) {
		t.Fatalf("err = %v, want a NoCandidateError naming model huge", err)
	}
	if g.Calls(proto.PathRequests) != 2 {
		t.Fatalf("%d requests sent, want 2", g.Calls(proto.PathRequests))
	}
}

func mustChat(t *testing.T, c *Client, req proto.ChatRequest) *ChatStream {
	t.Helper()
	s, err := c.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A stream cut after some deltas ends the sequence with ErrTruncated:
// the caller never mistakes a short reply for a whole one.
func TestChatTruncatedMidStream(t *testing.T) {
	var pieces []string
	for i := range 200 {
		pieces = append(pieces, fmt.Sprintf("piece %03d of a long reply. ", i))
	}
	reply := func(string, []byte) ([]string, proto.EndBody, error) {
		return pieces, proto.EndBody{Backend: "gatewaytest", Model: "m"}, nil
	}
	header, chunk := proto.ResponseHeaderSize, 5+proto.ResponseChunkSize+proto.AEADOverhead
	for _, abort := range []bool{false, true} {
		t.Run(fmt.Sprintf("abort=%v", abort), func(t *testing.T) {
			g := startDouble(t, gatewaytest.Config{Workers: chatFleet(t, "A"), Reply: reply, CutAfter: header + 2*chunk + 10, Abort: abort})
			c := clientOf(t, g, nil)
			got, err := deltas(mustChat(t, c, userSays("long")))
			var te *TruncatedError
			if !errors.Is(err, ErrTruncated) || !errors.As(err, &te) || te.WorkerID != "A0" {
				t.Fatalf("err = %v, want a TruncatedError naming A0", err)
			}
			if len(got) == 0 || len(got) == len(pieces) || te.Received != len(strings.Join(got, "")) {
				t.Fatalf("%d of %d deltas before the cut, %d bytes; error says %d", len(got), len(pieces), len(strings.Join(got, "")), te.Received)
			}
			if !abort && !errors.Is(err, seal.ErrTruncated) {
				t.Fatalf("err = %v, want seal.ErrTruncated inside", err)
			}
			res, err := mustChat(t, c, userSays("long")).Collect()
			if res != nil || !errors.Is(err, ErrTruncated) {
				t.Fatalf("collect: %v, %v; want no result and ErrTruncated", res, err)
			}
		})
	}
}

// A task that fails in the worker ends the sequence with a *TaskError.
func TestChatTaskError(t *testing.T) {
	reply := func(string, []byte) ([]string, proto.EndBody, error) {
		return nil, proto.EndBody{}, errors.New("no such model")
	}
	g := startDouble(t, gatewaytest.Config{Workers: chatFleet(t, "A"), Reply: reply})
	got, err := deltas(mustChat(t, clientOf(t, g, nil), userSays("x")))
	var te *TaskError
	if len(got) != 0 || !errors.As(err, &te) || te.WorkerID != "A0" || te.Message != "no such model" {
		t.Fatalf("deltas %q, err %v; want a TaskError from A0", got, err)
	}
}

// A UTF-8 sequence split between two pieces arrives whole, in one delta.
func TestChatSplitRune(t *testing.T) {
	text := "Ça coûte 5 € — d'accord? 日本語"
	b := []byte(text)
	var pieces []string
	for i := 0; i < len(b); i += 3 { // cuts inside most multi-byte runes
		pieces = append(pieces, string(b[i:min(i+3, len(b))]))
	}
	reply := func(string, []byte) ([]string, proto.EndBody, error) { return pieces, proto.EndBody{}, nil }
	g := startDouble(t, gatewaytest.Config{Workers: chatFleet(t, "A"), Reply: reply})
	got, err := deltas(mustChat(t, clientOf(t, g, nil), userSays("x")))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range got {
		if !utf8.ValidString(d) {
			t.Fatalf("delta %q is not valid UTF-8", d)
		}
	}
	if strings.Join(got, "") != text {
		t.Fatalf("deltas join to %q", strings.Join(got, ""))
	}
}

// Stopping the loop closes the stream; it cannot be resumed.
func TestChatBreakCloses(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: chatFleet(t, "A")})
	s := mustChat(t, clientOf(t, g, nil), userSays("one two three"))
	for range s.Deltas() {
		break
	}
	if got, err := deltas(s); len(got) != 0 || err == nil {
		t.Fatalf("after a break: %q, %v; want an error", got, err)
	}
	if _, ok := s.End(); ok {
		t.Fatal("End reports a summary of a stream closed early")
	}
}

func TestChatRequestChecked(t *testing.T) {
	temp := func(v float64) *float64 { return &v }
	user := proto.ChatMessage{Role: proto.RoleUser, Content: "hi"}
	tests := []struct {
		name  string
		req   proto.ChatRequest
		field string
	}{
		{"no messages", proto.ChatRequest{}, "messages"},
		{"too many", proto.ChatRequest{Messages: slices.Repeat([]proto.ChatMessage{user}, proto.MaxChatMessages+1)}, "messages"},
		{"unknown role", proto.ChatRequest{Messages: []proto.ChatMessage{{Role: "tool", Content: "x"}, user}}, "messages[0].role"},
		{"ends with the assistant", proto.ChatRequest{Messages: []proto.ChatMessage{user, {Role: proto.RoleAssistant, Content: "x"}}}, "messages"},
		{"invalid utf-8", proto.ChatRequest{Messages: []proto.ChatMessage{{Role: proto.RoleUser, Content: "\xff"}}}, "messages[0].content"},
		{"model with a space", proto.ChatRequest{Messages: []proto.ChatMessage{user}, Model: "a b"}, "model"},
		{"negative max tokens", proto.ChatRequest{Messages: []proto.ChatMessage{user}, MaxTokens: -1}, "max_tokens"},
		{"temperature too high", proto.ChatRequest{Messages: []proto.ChatMessage{user}, Temperature: temp(2.5)}, "temperature"},
	}
	g := startDouble(t, gatewaytest.Config{Workers: chatFleet(t, "A")})
	c := clientOf(t, g, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Chat(context.Background(), tt.req)
			var re *RequestError
			if !errors.Is(err, ErrInvalidRequest) || !errors.As(err, &re) || re.Field != tt.field {
				t.Fatalf("err = %v, want a RequestError on %s", err, tt.field)
			}
		})
	}
	if n := g.Calls(proto.PathCandidates); n != 0 {
		t.Fatalf("%d calls to the gateway for malformed requests", n)
	}
}

func TestChatGatewayRefusal(t *testing.T) {
	g := startDouble(t, gatewaytest.Config{Workers: chatFleet(t, "A"), Fail: func(path string) (int, string) {
		if path == proto.PathRequests {
			return 503, "7"
		}
		return 0, ""
	}})
	_, err := clientOf(t, g, nil).Chat(context.Background(), userSays("x"))
	var oe *OverloadedError
	if !errors.As(err, &oe) || oe.RetryAfter.Seconds() != 7 {
		t.Fatalf("err = %v, want an OverloadedError with retry after 7s", err)
	}
}

// The end event's model digest must be the one the answering worker's
// verified evidence binds; under a policy that pins model digests, the
// answering model must be bound.
func TestChatModelDigest(t *testing.T) {
	m1 := proto.ModelDigest{Name: "m1", SHA256: [32]byte{1}}
	digest := proto.FormatModelDigest(m1.SHA256)
	worker := func(t *testing.T) []*gatewaytest.Worker {
		ws := chatFleet(t, "A", "m1,m2")
		if err := ws[0].BindModels(m1); err != nil {
			t.Fatal(err)
		}
		return ws
	}
	claims := func(model, digest string) func(string, []byte) ([]string, proto.EndBody, error) {
		return func(string, []byte) ([]string, proto.EndBody, error) {
			return []string{"an", " answer"}, proto.EndBody{Model: model, ModelDigest: digest}, nil
		}
	}
	pinned := func(c *Config) {
		p := *c.Policy
		p.Models = &policy.ModelRules{AllowedDigests: []string{digest}}
		c.Policy = &p
	}
	tests := []struct {
		name    string
		reply   func(string, []byte) ([]string, proto.EndBody, error)
		edit    func(*Config)
		wantErr bool
	}{
		{"bound model, set by the worker", nil, nil, false},
		{"bound model, pinned", nil, pinned, false},
		{"wrong digest", claims("m1", "sha256:"+strings.Repeat("0", 64)), nil, true},
		{"no digest for a bound model", claims("m1", ""), nil, true},
		{"a digest for an unbound model", claims("m2", digest), nil, true},
		{"unbound model, not pinned", claims("m2", ""), nil, false},
		{"unbound model, pinned", claims("m2", ""), pinned, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startDouble(t, gatewaytest.Config{Workers: worker(t), Reply: tt.reply})
			req := userSays("which model")
			req.Model = "m1"
			s := mustChat(t, clientOf(t, g, tt.edit), req)
			got, err := deltas(s)
			var me *ModelError
			if tt.wantErr != errors.Is(err, ErrModel) || tt.wantErr && (!errors.As(err, &me) || me.WorkerID != "A0") {
				t.Fatalf("err = %v, want a ModelError: %v", err, tt.wantErr)
			}
			if _, ok := s.End(); ok == tt.wantErr || len(got) == 0 {
				t.Fatalf("End ok %v after %q", ok, got)
			}
			if !tt.wantErr && tt.reply == nil {
				if end, _ := s.End(); end.ModelDigest != digest {
					t.Fatalf("end %+v, want digest %s", end, digest)
				}
			}
		})
	}
}
