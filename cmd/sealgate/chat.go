package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/proto"
)

// optionalFloat is a float flag that remembers whether it was set.
type optionalFloat struct{ v *float64 }

func (f *optionalFloat) String() string {
	if f.v == nil {
		return ""
	}
	return strconv.FormatFloat(*f.v, 'g', -1, 64)
}

func (f *optionalFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return errors.New("want a number")
	}
	f.v = &v
	return nil
}

// runChat sends one user message, with an optional system message, to a
// verified chat worker and streams the reply to stdout as it arrives.
// With -json it prints one JSON object once the reply is whole instead.
// A reply that breaks off mid-stream has been partly printed: the command
// then says on stderr that it is incomplete and exits 6 (truncated or
// forged) or 5 (the task failed), never 0.
func runChat(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sealgate chat", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: sealgate chat [flags] [message ...]\n\nThe user's message is the arguments, joined by spaces; with none, the -file or stdin.\n\n")
		fs.PrintDefaults()
	}
	var cf clientFlags
	cf.register(fs)
	file := fs.String("file", "", `read the user's message from this file ("-" for stdin)`)
	system := fs.String("system", "", "system message sent before the user's")
	model := fs.String("model", "", "model to ask for; only workers the gateway lists with it are sealed to (default: the worker's)")
	maxTokens := fs.Int("max-tokens", 0, "most tokens in the reply (0: the worker's default)")
	var temperature optionalFloat
	fs.Var(&temperature, "temperature", "sampling temperature, 0 to 2 (default: the worker's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 && *file != "" {
		return &usageError{"give the message as arguments or -file, not both"}
	}
	p, err := cf.progress.start(os.Stderr, os.Stdin)
	if err != nil {
		return err
	}
	defer p.close()
	c, err := cf.client() // first, so that its warnings come before any progress line
	if err != nil {
		return err
	}
	var text string
	switch {
	case fs.NArg() > 0:
		text = strings.Join(fs.Args(), " ")
		if strings.TrimSpace(text) == "" {
			return errors.New("input is empty")
		}
	case *file != "":
		text, err = readInput([]string{*file}, p)
	default:
		text, err = readInput(nil, p)
	}
	if err != nil {
		return err
	}
	req := proto.ChatRequest{Model: *model, MaxTokens: *maxTokens, Temperature: temperature.v}
	if *system != "" {
		req.Messages = append(req.Messages, proto.ChatMessage{Role: proto.RoleSystem, Content: *system})
	}
	req.Messages = append(req.Messages, proto.ChatMessage{Role: proto.RoleUser, Content: text})

	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	stream, err := c.Chat(p.watch(ctx), req)
	if errors.Is(err, client.ErrInvalidRequest) {
		return &usageError{err.Error()}
	}
	if err != nil {
		return err
	}
	defer stream.Close()
	if cf.json {
		res, err := stream.Collect()
		if err != nil {
			return err
		}
		p.done(len(res.Text))
		return printChatJSON(stdout, res)
	}
	p.close() // the reply takes over the terminal
	var printed int
	var last string
	for delta, err := range stream.Deltas() {
		if err != nil {
			if printed > 0 {
				fmt.Fprintln(stdout)
				return fmt.Errorf("the reply above is incomplete: %w", err)
			}
			return err
		}
		if _, err := io.WriteString(stdout, delta); err != nil {
			return err
		}
		printed += len(delta)
		last = delta
	}
	if !strings.HasSuffix(last, "\n") {
		fmt.Fprintln(stdout)
	}
	return nil
}

// chatJSON is what `sealgate chat -json` prints.
type chatJSON struct {
	Text      string         `json:"text"`
	RequestID string         `json:"request_id"`
	TEE       string         `json:"tee"`
	Worker    chatWorkerJSON `json:"worker"`
	// Candidates are the ids of the workers the request was sealed to.
	Candidates []string `json:"candidates"`
	Backend    string   `json:"backend"`
	Model      string   `json:"model"`
	Usage      struct {
		// In the backend's units: tokens for models.
		InputUnits  int64 `json:"input_units"`
		OutputUnits int64 `json:"output_units"`
	} `json:"usage"`
}

// chatWorkerJSON names the worker that answered, as the sealed reply proves,
// with the fields summarize's -json prints.
type chatWorkerJSON struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Simulated   bool      `json:"simulated"`
	Measurement string    `json:"measurement"`
	Evidence    string    `json:"evidence_sha256"`
	Time        time.Time `json:"evidence_time"`
	Policy      string    `json:"policy"`
	ProviderID  string    `json:"provider_id"`
	Strict      bool      `json:"strict"`
}

func printChatJSON(w io.Writer, res *client.Result) error {
	out := chatJSON{Text: res.Text, RequestID: res.RequestID, TEE: res.Worker.Kind, Backend: res.End.Backend, Model: res.End.Model, Candidates: []string{}}
	rw := res.Worker
	out.Worker = chatWorkerJSON{ID: rw.ID, Kind: rw.Kind, Simulated: rw.Simulated, Measurement: rw.Measurement, Evidence: rw.BundleHash,
		Time: rw.EvidenceTime, Policy: rw.Policy, ProviderID: rw.ProviderID, Strict: rw.Strict}
	for _, c := range res.Candidates {
		out.Candidates = append(out.Candidates, c.ID)
	}
	out.Usage.InputUnits, out.Usage.OutputUnits = res.End.InputUnits, res.End.OutputUnits
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
