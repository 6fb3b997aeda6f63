package proto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"
)

// Task names.
const (
	TaskSummarize = "summarize"
	TaskTranslate = "translate"
	TaskChat      = "chat"
)

// Chat roles.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Limits on a chat request.
const (
	MaxChatMessages = 256
	MaxModelName    = 128
)

// ChatMessage is one turn of a conversation.
type ChatMessage struct {
	// Role is RoleSystem, RoleUser or RoleAssistant.
	Role string `json:"role"`
	// Content is the message text, UTF-8.
	Content string `json:"content"`
}

// ChatRequest is the sealed payload of a chat task. The worker streams the
// assistant's reply as data events, each a piece of text, and names the
// model and the token counts in its end event.
type ChatRequest struct {
	// Messages is the conversation so far, 1 to MaxChatMessages turns,
	// ending with a user turn.
	Messages []ChatMessage `json:"messages"`
	// Model asks for a model by name; empty means the worker's default.
	// A worker that does not serve the named model refuses the request.
	Model string `json:"model,omitempty"`
	// MaxTokens bounds the reply; zero means the worker's default.
	MaxTokens int `json:"max_tokens,omitempty"`
	// Temperature, when set, is the sampling temperature, 0 to 2.
	Temperature *float64 `json:"temperature,omitempty"`
}

// SummarizeRequest is the sealed payload of a summarize task.
type SummarizeRequest struct {
	// Text is the document to summarize, UTF-8.
	Text string `json:"text"`
	// Sentences is the number of sentences wanted; zero lets the worker
	// choose from Ratio.
	Sentences int `json:"sentences,omitempty"`
	// Ratio is the share of sentences kept when Sentences is zero; zero
	// means the backend's default.
	Ratio float64 `json:"ratio,omitempty"`
}

// TranslateRequest is the sealed payload of a translate task.
type TranslateRequest struct {
	// Text is the text to translate, UTF-8.
	Text string `json:"text"`
	// From and To are ISO 639 language codes such as "en" and "es".
	From string `json:"from"`
	To   string `json:"to"`
}

// DecodeTask decodes a task payload strictly: one JSON object, no unknown
// fields, nothing after it, valid UTF-8.
func DecodeTask(payload []byte, v any) error {
	if !utf8.Valid(payload) {
		return fmt.Errorf("%w task payload: not valid UTF-8", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w task payload: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w task payload: data after the JSON object", ErrMalformed)
	}
	return nil
}
