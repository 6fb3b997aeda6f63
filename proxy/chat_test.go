package proxy

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sealgate/sealgate/proto"
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
