package proxy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/sealgate/sealgate/internal/fuzzseed"
	"github.com/sealgate/sealgate/proto"
)

// FuzzChatRequest feeds an OpenAI chat completion body (a local
// application's, but arbitrary) through decodeBody and toProto, as the
// chat endpoint does. Nothing may panic; a refusal is a 4xx with a short
// message; what is accepted is sealed as a payload that the worker's
// decoder (proto.DecodeTask) reads back unchanged, with every role one the
// worker knows.
func FuzzChatRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"Hello"}]}`,
		`{"messages":[{"role":"developer","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":5,"max_completion_tokens":5,"temperature":0.5,"n":1,"top_p":1,"stop":null,"user":"u"}`,
		`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}`,
		`{"messages":[{"role":"tool","content":"x"}],"seed":1}`,
		`{"messages":[{"role":"user","content":"x"}],"max_tokens":1,"max_completion_tokens":2}`,
		`{"messages":[],"stream_options":{}} {}`,
		`{"messages":[{"role":"user","content":"\ud800"}]}`,
	} {
		fuzzseed.Add(f, []byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
		var cr chatRequest
		if e := decodeBody(httptest.NewRecorder(), req, 1<<20, &cr, chatFields); e != nil {
			checkRefusal(t, e)
			return
		}
		out, e := cr.toProto()
		if e != nil {
			checkRefusal(t, e)
			return
		}
		if len(out.Messages) != len(cr.Messages) || len(out.Messages) == 0 || out.MaxTokens < 0 {
			t.Fatalf("accepted %+v", out)
		}
		for _, m := range out.Messages {
			if m.Role != proto.RoleSystem && m.Role != proto.RoleUser && m.Role != proto.RoleAssistant {
				t.Fatalf("role %q sealed", m.Role)
			}
		}
		payload, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		var back proto.ChatRequest
		if err := proto.DecodeTask(payload, &back); err != nil {
			t.Fatalf("the worker cannot decode what the proxy seals: %v", err)
		}
		if !reflect.DeepEqual(back, out) {
			t.Fatalf("sealed %+v, the worker reads %+v", out, back)
		}
	})
}

// FuzzTaskRequest feeds the summarize and translate endpoints' bodies to
// decodeBody: a refusal is a 4xx with a short message, and an accepted
// body decodes the same as encoding/json reads it.
func FuzzTaskRequest(f *testing.F) {
	fuzzseed.Add(f, []byte(`{"text":"One. Two. Three.","sentences":2}`))
	fuzzseed.Add(f, []byte(`{"text":"One.","ratio":0.5,"extra":1}`))
	fuzzseed.Add(f, []byte(`{"text":"Hola","from":"es","to":"en"}`))
	fuzzseed.Add(f, []byte(`{"text":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&summarizeRequest{}, &translateRequest{}} {
			req := httptest.NewRequest(http.MethodPost, "/v1/sealgate/summarize", bytes.NewReader(body))
			if e := decodeBody(httptest.NewRecorder(), req, 1<<20, v, nil); e != nil {
				checkRefusal(t, e)
				continue
			}
			again := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := json.Unmarshal(body, again); err != nil || !reflect.DeepEqual(again, v) {
				t.Fatalf("decodeBody accepted what encoding/json reads otherwise (%v)", err)
			}
		}
	})
}

// checkRefusal requires a client error with a bounded message: messages
// quote at most short clips of the body.
func checkRefusal(t *testing.T, e *apiError) {
	t.Helper()
	if e.status < 400 || e.status >= 500 || e.code == "" || len(e.msg) > 300 {
		t.Fatalf("refusal %d %q %q (%d bytes)", e.status, e.code, e.msg, len(e.msg))
	}
}
