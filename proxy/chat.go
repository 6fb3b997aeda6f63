package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/proto"
)

// chatRequest is the part of OpenAI's chat completion request the proxy
// understands. Fields accepted only at their defaults are checked in
// toProto; any other field is refused.
type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []chatMessage  `json:"messages"`
	Stream              bool           `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	Temperature         *float64       `json:"temperature"`
	User                string         `json:"user"`

	N                *int            `json:"n"`
	TopP             *float64        `json:"top_p"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	Logprobs         *bool           `json:"logprobs"`
	Stop             json.RawMessage `json:"stop"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Name    string          `json:"name"`
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// chatFields are the fields of chatRequest, for naming a refused one.
var chatFields = []string{"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature", "user",
	"n", "top_p", "presence_penalty", "frequency_penalty", "logprobs", "stop"}

// decodeBody reads one JSON object of at most max bytes into v, refusing
// unknown fields and anything after the object. known, when set, lists
// v's fields so an unknown one is named in the error.
func decodeBody(w http.ResponseWriter, r *http.Request, max int64, v any, known []string) *apiError {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(readBodyTimeout)) // the server sets no ReadTimeout: it would end streams
	defer rc.SetReadDeadline(time.Time{})
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &apiError{status: http.StatusRequestEntityTooLarge, typ: typeInvalidRequest, code: "request_too_large", msg: fmt.Sprintf("request body larger than %d bytes", max), err: err}
		}
		return &apiError{status: http.StatusBadRequest, typ: typeInvalidRequest, code: "invalid_body", msg: "the request body could not be read", err: err}
	}
	if known != nil {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err == nil {
			for name := range fields {
				if !slices.Contains(known, name) {
					return badRequest("unsupported_parameter", name, "parameter %q is not supported by the sealgate proxy", clip(name, 64))
				}
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &apiError{status: http.StatusBadRequest, typ: typeInvalidRequest, code: "invalid_json", msg: "the request body is not the JSON object this endpoint takes: " + jsonProblem(err), err: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("invalid_json", "", "the request body has data after its JSON object")
	}
	return nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q: found a JSON %s, want %s", clip(typ.Field, 64), typ.Value, typ.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends early"
	}
	if s, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + clip(s, 64)
	}
	return "it does not decode"
}

// toProto converts an OpenAI request to the sealed payload, refusing what
// the proxy would otherwise have to ignore.
func (req *chatRequest) toProto() (proto.ChatRequest, *apiError) {
	var out proto.ChatRequest
	switch {
	case req.N != nil && *req.N != 1:
		return out, badRequest("unsupported_value", "n", "n: found %d, want 1: the proxy returns one choice", *req.N)
	case req.TopP != nil && *req.TopP != 1:
		return out, badRequest("unsupported_value", "top_p", "top_p: found %v, want 1 (unset): workers do not take it", *req.TopP)
	case req.PresencePenalty != nil && *req.PresencePenalty != 0:
		return out, badRequest("unsupported_value", "presence_penalty", "presence_penalty: found %v, want 0 (unset): workers do not take it", *req.PresencePenalty)
	case req.FrequencyPenalty != nil && *req.FrequencyPenalty != 0:
		return out, badRequest("unsupported_value", "frequency_penalty", "frequency_penalty: found %v, want 0 (unset): workers do not take it", *req.FrequencyPenalty)
	case req.Logprobs != nil && *req.Logprobs:
		return out, badRequest("unsupported_value", "logprobs", "logprobs: found true, want false: workers do not return them")
	case len(req.Stop) > 0 && !slices.Contains([]string{"null", "[]"}, string(bytes.TrimSpace(req.Stop))):
		return out, badRequest("unsupported_value", "stop", "stop: found stop sequences, want none: workers do not take them")
	case req.StreamOptions != nil && !req.Stream:
		return out, badRequest("invalid_value", "stream_options", "stream_options: only with stream: true")
	}
	out.Model = req.Model
	out.Temperature = req.Temperature
	max := req.MaxTokens
	if req.MaxCompletionTokens != nil {
		if max != nil && *max != *req.MaxCompletionTokens {
			return out, badRequest("invalid_value", "max_completion_tokens", "max_tokens %d and max_completion_tokens %d differ; give one", *max, *req.MaxCompletionTokens)
		}
		max = req.MaxCompletionTokens
	}
	if max != nil {
		if *max < 1 {
			return out, badRequest("invalid_value", "max_tokens", "max_tokens: found %d, want at least 1", *max)
		}
		out.MaxTokens = *max
	}
	if len(req.Messages) == 0 {
		return out, badRequest("invalid_value", "messages", "messages: found none, want at least one")
	}
	for i, m := range req.Messages {
		param := fmt.Sprintf("messages[%d]", i)
		role := m.Role
		switch role {
		case proto.RoleSystem, proto.RoleUser, proto.RoleAssistant:
		case "developer":
			role = proto.RoleSystem
		default:
			return out, badRequest("invalid_value", param+".role", "%s.role: found %.16q, want system, developer, user or assistant", param, m.Role)
		}
		text, e := content(m.Content, param)
		if e != nil {
			return out, e
		}
		out.Messages = append(out.Messages, proto.ChatMessage{Role: role, Content: text})
	}
	return out, nil
}

// content reads a message's content: a string, or a list of text parts
// joined.
func content(raw json.RawMessage, param string) (string, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", badRequest("invalid_value", param+".content", "%s.content: found none, want text", param)
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", badRequest("invalid_value", param+".content", "%s.content does not decode", param)
		}
		return s, nil
	}
	var parts []contentPart
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&parts); err != nil {
		return "", badRequest("invalid_value", param+".content", "%s.content: want a string or a list of {\"type\": \"text\", \"text\": ...} parts", param)
	}
	var b strings.Builder
	for j, p := range parts {
		if p.Type != "text" {
			return "", badRequest("unsupported_value", fmt.Sprintf("%s.content[%d].type", param, j), "%s.content[%d]: found a part of type %.16q, want text: the proxy sends text only", param, j, p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// chatCompletion is OpenAI's non-streamed answer.
type chatCompletion struct {
	ID       string         `json:"id"`
	Object   string         `json:"object"`
	Created  int64          `json:"created"`
	Model    string         `json:"model"`
	Choices  []choice       `json:"choices"`
	Usage    usage          `json:"usage"`
	Sealgate sealgateReport `json:"sealgate"`
}

type choice struct {
	Index        int             `json:"index"`
	Message      message         `json:"message"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs"`
}

type message struct {
	Role    string          `json:"role"`
	Content string          `json:"content"`
	Refusal json.RawMessage `json:"refusal"`
}

type usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// chunk is one server-sent event of a streamed answer.
type chunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *usage        `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int             `json:"index"`
	Delta        delta           `json:"delta"`
	FinishReason *string         `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs"`
}

type delta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

var jsonNull = json.RawMessage("null")

// sealgateReport names, in JSON answers, who served the request.
type sealgateReport struct {
	RequestID  string   `json:"request_id"`
	WorkerID   string   `json:"worker_id"`
	TEE        string   `json:"tee"`
	Simulated  bool     `json:"simulated"`
	Evidence   string   `json:"evidence_sha256"`
	Provider   string   `json:"provider_id"`
	Strict     bool     `json:"strict"`
	Candidates []string `json:"candidates"`
	Backend    string   `json:"backend"`
	Model      string   `json:"model"`
}

func report(requestID string, w client.Worker, candidates []client.Worker, end proto.EndBody) sealgateReport {
	r := sealgateReport{RequestID: requestID, WorkerID: w.ID, TEE: w.Kind, Simulated: w.Simulated, Evidence: w.BundleHash,
		Provider: w.ProviderID, Strict: w.Strict, Backend: end.Backend, Model: end.Model, Candidates: []string{}}
	for _, c := range candidates {
		r.Candidates = append(r.Candidates, c.ID)
	}
	return r
}

// workerHeaders names the worker that answered.
func workerHeaders(h http.Header, requestID string, w client.Worker) {
	h.Set("X-Sealgate-Request-Id", headerValue(requestID))
	h.Set("X-Sealgate-Worker", headerValue(w.ID))
	h.Set("X-Sealgate-Tee", headerValue(w.Kind))
	h.Set("X-Sealgate-Evidence-Sha256", headerValue(w.BundleHash))
}

func finishReason(req proto.ChatRequest, end proto.EndBody) string {
	if req.MaxTokens > 0 && end.OutputUnits >= int64(req.MaxTokens) {
		return "length"
	}
	return "stop"
}

func usageOf(end proto.EndBody) usage {
	return usage{PromptTokens: end.InputUnits, CompletionTokens: end.OutputUnits, TotalTokens: end.InputUnits + end.OutputUnits}
}

// chat serves POST /v1/chat/completions.
func (p *Proxy) chat(w http.ResponseWriter, r *http.Request, rec *record) *apiError {
	var req chatRequest
	if e := decodeBody(w, r, p.cfg.MaxBodyBytes, &req, chatFields); e != nil {
		return e
	}
	preq, e := req.toProto()
	if e != nil {
		return e
	}
	rec.stream = req.Stream
	s, err := p.cfg.Client.Chat(r.Context(), preq)
	if err != nil {
		return errorFor(err)
	}
	defer s.Close()
	rec.workerID, rec.requestID = s.Worker.ID, s.RequestID
	id, created := "chatcmpl-"+s.RequestID, p.cfg.Now().Unix()
	if !req.Stream {
		res, err := s.Collect()
		if err != nil {
			return errorFor(err)
		}
		model := preq.Model
		if res.End.Model != "" {
			model = res.End.Model
		}
		workerHeaders(w.Header(), res.RequestID, res.Worker)
		writeJSON(w, chatCompletion{
			ID: id, Object: "chat.completion", Created: created, Model: model,
			Choices: []choice{{Message: message{Role: proto.RoleAssistant, Content: res.Text, Refusal: jsonNull}, FinishReason: finishReason(preq, res.End), Logprobs: jsonNull}},
			Usage:   usageOf(res.End), Sealgate: report(res.RequestID, res.Worker, res.Candidates, res.End),
		})
		return nil
	}

	ev := &eventWriter{w: w, rc: http.NewResponseController(w)}
	base := chunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: preq.Model}
	started := false
	begin := func() error {
		started = true
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		workerHeaders(h, s.RequestID, s.Worker)
		w.WriteHeader(http.StatusOK)
		empty := ""
		c := base
		c.Choices = []chunkChoice{{Delta: delta{Role: proto.RoleAssistant, Content: &empty}, Logprobs: jsonNull}}
		return ev.send(c)
	}
	for d, err := range s.Deltas() {
		if err != nil {
			e := errorFor(err)
			if !started {
				return e
			}
			rec.code, rec.err = e.code, e.err
			ev.send(e.body()) // an error event, and no [DONE]: OpenAI clients report it
			return nil
		}
		if !started {
			if err := begin(); err != nil {
				rec.code, rec.err = "client_closed", err
				return nil
			}
		}
		c := base
		c.Choices = []chunkChoice{{Delta: delta{Content: &d}, Logprobs: jsonNull}}
		if err := ev.send(c); err != nil {
			rec.code, rec.err = "client_closed", err
			return nil
		}
	}
	if !started {
		if err := begin(); err != nil {
			rec.code, rec.err = "client_closed", err
			return nil
		}
	}
	end, _ := s.End()
	stop := finishReason(preq, end)
	c := base
	if end.Model != "" {
		c.Model = end.Model
	}
	c.Choices = []chunkChoice{{FinishReason: &stop, Logprobs: jsonNull}}
	ev.send(c)
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		u := usageOf(end)
		c.Choices, c.Usage = []chunkChoice{}, &u
		ev.send(c)
	}
	if err := ev.done(); err != nil {
		rec.code, rec.err = "client_closed", err
	}
	return nil
}

// eventWriter writes server-sent events, flushing each. After a write
// fails, every later one fails too.
type eventWriter struct {
	w   io.Writer
	rc  *http.ResponseController
	err error
}

func (e *eventWriter) send(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.write("data: " + string(data) + "\n\n")
}

func (e *eventWriter) done() error { return e.write("data: [DONE]\n\n") }

func (e *eventWriter) write(s string) error {
	if e.err != nil {
		return e.err
	}
	if _, e.err = io.WriteString(e.w, s); e.err == nil {
		e.err = e.rc.Flush()
	}
	return e.err
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(v)
}
