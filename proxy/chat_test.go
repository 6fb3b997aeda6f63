package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// Parameters at their defaults are accepted, content parts are joined,
// the developer role is sent as system, and "user" is not forwarded.
func TestToProtoAcceptsDefaults(t *testing.T) {
	body := `{"model":"m","user":"u-123","n":1,"top_p":1,"presence_penalty":0,"frequency_penalty":0,"logprobs":false,"stop":null,
		"max_completion_tokens":64,"temperature":0.2,
		"messages":[{"role":"developer","content":"Be brief."},{"role":"user","name":"ann","content":[{"type":"text","text":"Hello, "},{"type":"text","text":"world"}]}]}`
	var req chatRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	got, e := req.toProto()
	if e != nil {
		t.Fatalf("%+v", e)
	}
	temp := 0.2
	want := proto.ChatRequest{Model: "m", MaxTokens: 64, Temperature: &temp, Messages: []proto.ChatMessage{
		{Role: proto.RoleSystem, Content: "Be brief."}, {Role: proto.RoleUser, Content: "Hello, world"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	payload, _ := json.Marshal(got)
	var check map[string]any
	json.Unmarshal(payload, &check)
	if _, ok := check["user"]; ok {
		t.Fatal("the user field is forwarded")
	}
}

func TestFinishReason(t *testing.T) {
	for _, tt := range []struct {
		max  int
		out  int64
		want string
	}{{0, 100, "stop"}, {10, 9, "stop"}, {10, 10, "length"}} {
		if got := finishReason(proto.ChatRequest{MaxTokens: tt.max}, proto.EndBody{OutputUnits: tt.out}); got != tt.want {
			t.Errorf("max %d out %d: %q, want %q", tt.max, tt.out, got, tt.want)
		}
	}
}

func TestHeaderValueIsClean(t *testing.T) {
	if got := headerValue("worker\r\nX-Evil: 1\x00é"); got != "workerX-Evil: 1" {
		t.Fatalf("%q", got)
	}
}

// Errors the fake gateway of proxy_test cannot produce.
func TestErrorForIntegrity(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
		code   string
	}{
		{&client.ModelError{WorkerID: "w", Model: "m", Found: "x", Want: "y"}, 502, "model_mismatch"},
		{&client.TruncatedError{WorkerID: "w", Err: seal.ErrTruncated}, 502, "truncated"},
		{fmt.Errorf("client: %w", seal.ErrAuthentication), 502, "integrity_failure"},
		{&client.TaskError{Code: "deadline", Message: "slow", WorkerID: "w"}, 504, "deadline"},
		{&client.TaskError{Code: "model_not_found", Message: "no", WorkerID: "w"}, 404, "model_not_found"},
		{&client.GatewayError{Status: 413, Code: "too_large"}, 413, "request_too_large"},
		{context.DeadlineExceeded, 504, "timeout"},
	} {
		if e := errorFor(tt.err); e.status != tt.status || e.code != tt.code {
			t.Errorf("%v: %d %s, want %d %s", tt.err, e.status, e.code, tt.status, tt.code)
		}
	}
}
