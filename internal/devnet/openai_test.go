package devnet_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/internal/tap"
	"github.com/sealgate/sealgate/proto"
)

// modelServerDouble is a TEST DOUBLE of an OpenAI-compatible model server
// (vLLM, llama.cpp's server, Ollama, SGLang) on 127.0.0.1, standing in
// for the one a GPU worker runs inside its confidential VM. It streams a
// reply that quotes the last word of the last message in pieces, in
// OpenAI's chat.completion.chunk format with usage, and records the
// messages it was sent.
type modelServerDouble struct {
	srv *httptest.Server

	mu       sync.Mutex // guards messages
	messages [][]proto.ChatMessage
}

func newModelServerDouble(t *testing.T) *modelServerDouble {
	t.Helper()
	d := &modelServerDouble{}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model         string              `json:"model"`
			Messages      []proto.ChatMessage `json:"messages"`
			Stream        bool                `json:"stream"`
			StreamOptions struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		if r.URL.Path != "/v1/chat/completions" || json.NewDecoder(r.Body).Decode(&req) != nil || !req.Stream || !req.StreamOptions.IncludeUsage || req.Model != "llama-test:8b" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		d.mu.Lock()
		d.messages = append(d.messages, req.Messages)
		d.mu.Unlock()
		words := strings.Fields(req.Messages[len(req.Messages)-1].Content)
		pieces := []string{"Private ", "reply ", "about ", words[len(words)-1]}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, p := range pieces {
			b, _ := json.Marshal(p)
			fmt.Fprintf(w, "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s},\"finish_reason\":null}],\"usage\":null}\n\n", b)
			w.(http.Flusher).Flush()
		}
		fmt.Fprintf(w, "data: {\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n", 40+len(words), len(pieces), 40+len(words)+len(pieces))
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *modelServerDouble) last() []proto.ChatMessage {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.messages) == 0 {
		return nil
	}
	return d.messages[len(d.messages)-1]
}

// Chat and summarize go through the whole sealed path to workers whose
// openai backend calls a model server double: the client pins the
// model's digest in its policy, the evidence binds it, the end event
// names it, and the gateway sees neither the prompt nor the reply.
func TestOpenAIBackendThroughTheSealedPath(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	upstream := newModelServerDouble(t)
	model := proto.ModelDigest{Name: "llama-test:8b", SHA256: sha256.Sum256([]byte("llama-test weights"))}

	var taps []*tap.Tap
	defer func() {
		for _, tp := range taps {
			tp.Close()
		}
	}()
	var backends []*enclave.OpenAI
	defer func() {
		for _, b := range backends {
			b.Close()
		}
	}()
	network, err := devnet.Start(ctx, devnet.Config{
		Dir: t.TempDir(), Workers: 2, InsecurePlainHTTP: true,
		Backend: func(int) enclave.Backend {
			o, err := enclave.NewOpenAI(enclave.OpenAIConfig{BaseURL: upstream.srv.URL + "/v1", Model: model.Name})
			if err != nil {
				t.Error(err)
				return nil
			}
			backends = append(backends, o)
			return o
		},
		Models:       func(int) []string { return []string{model.Name} },
		ModelDigests: func(int) []proto.ModelDigest { return []proto.ModelDigest{model} },
		WorkerAdvertise: func(i int, addr string) string {
			tp, err := tap.New(addr)
			if err != nil {
				t.Error(err)
				return "http://" + addr
			}
			taps = append(taps, tp)
			return "http://" + tp.Addr
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()

	pinned := policy.InsecureSimulated()
	pinned.Models = &policy.ModelRules{AllowedDigests: []string{proto.FormatModelDigest(model.SHA256)}}
	c, err := client.New(network.ClientConfig(client.Config{Policy: pinned, K: 2}))
	if err != nil {
		t.Fatal(err)
	}
	canary := "canary" + rand.Text()
	stream, err := c.Chat(ctx, proto.ChatRequest{Model: model.Name, Messages: []proto.ChatMessage{
		{Role: proto.RoleSystem, Content: "Answer in four words."},
		{Role: proto.RoleUser, Content: "What is the secret word? It is " + canary},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var pieces []string
	for d, err := range stream.Deltas() {
		if err != nil {
			t.Fatal(err)
		}
		pieces = append(pieces, d)
	}
	reply := strings.Join(pieces, "")
	if reply != "Private reply about "+canary {
		t.Fatalf("reply %q", reply)
	}
	end, ok := stream.End()
	if !ok || end.Backend != "openai" || end.Model != model.Name || end.ModelDigest != proto.FormatModelDigest(model.SHA256) || end.InputUnits != 48 || end.OutputUnits != 4 {
		t.Fatalf("end %+v, %v", end, ok)
	}
	if got := upstream.last(); len(got) != 2 || !strings.HasSuffix(got[1].Content, canary) {
		t.Fatalf("the model server got %q", got)
	}

	// Summarize becomes the documented prompt on the same workers.
	doc := "The pilot sealed every prompt to attested workers. The gateway saw only ciphertext. Auditors confirmed it " + canary
	res, err := c.Summarize(ctx, doc, client.SummarizeOptions{Sentences: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "Private reply about "+canary || res.End.ModelDigest != proto.FormatModelDigest(model.SHA256) {
		t.Fatalf("summary %q, end %+v", res.Text, res.End)
	}
	if got := upstream.last(); len(got) != 2 || got[0].Content != enclave.SummarizeSystemPrompt || got[1].Content != "Summarize the following document in one sentence.\n\n"+doc {
		t.Fatalf("the model server got %q", got)
	}

	// A client pinning another digest refuses every worker.
	other := policy.InsecureSimulated()
	other.Models = &policy.ModelRules{AllowedDigests: []string{proto.FormatModelDigest(sha256.Sum256([]byte("other weights")))}}
	oc, err := client.New(network.ClientConfig(client.Config{Policy: other}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = oc.Summarize(ctx, "One sentence. Another one.", client.SummarizeOptions{})
	var ae *attestation.Error
	if !errors.Is(err, client.ErrNoCandidate) || !errors.As(err, &ae) || ae.Code != attestation.CodePolicy || ae.Field != "models.allowed_digests" {
		t.Fatalf("err = %v, want no candidate for a policy refusal on models.allowed_digests", err)
	}

	if err := network.Close(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	var tapped []byte
	for _, tp := range taps {
		tapped = append(tapped, tp.Bytes()...)
	}
	if len(tapped) == 0 {
		t.Fatal("the taps saw nothing: they are not on the path")
	}
	for _, secret := range []string{canary, "Private reply", "Answer in four words"} {
		if strings.Contains(string(tapped), secret) {
			t.Errorf("the gateway's connections to the workers carry %q", secret)
		}
	}
}
