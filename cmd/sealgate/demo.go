package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/proto"
)

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sealgate demo", flag.ContinueOnError)
	sentences := fs.Int("sentences", 4, "sentences in the summary")
	verbose := fs.Bool("v", false, "show the gateway's and workers' logs")
	serve := fs.String("serve", "", "keep the network running until interrupted, and write what a client needs (gateway certificate, tenant credential, environment) into this directory")
	listen := fs.String("listen", "127.0.0.1:8443", "with -serve: the gateway's address")
	chatUpstream := fs.String("chat-upstream", "", "with -serve: also start a chat worker whose openai backend calls this OpenAI-compatible server on loopback, e.g. http://127.0.0.1:11434/v1 for Ollama")
	chatModel := fs.String("chat-model", "", "with -chat-upstream: the model the upstream serves, e.g. llama3.2:1b")
	chatDigest := fs.String("chat-model-digest", "", "with -chat-upstream: sha256:HEX digest of the model's weights to bind into the chat worker's evidence (default: none bound)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *serve == "" && (*chatUpstream != "" || *chatModel != "" || *chatDigest != "") {
		return &usageError{"-chat-upstream, -chat-model and -chat-model-digest need -serve"}
	}
	if (*chatUpstream == "") != (*chatModel == "") {
		return &usageError{"-chat-upstream and -chat-model go together"}
	}
	if *chatDigest != "" && *chatUpstream == "" {
		return &usageError{"-chat-model-digest needs -chat-upstream"}
	}
	dir, err := os.MkdirTemp("", "sealgate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	level := slog.LevelWarn + 4 // quiet: the demo prints its own account
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	fmt.Println("sealgate demo — INSECURE simulated TEE: the workers' evidence is signed by a published development key")
	ncfg := devnet.Config{Dir: dir, Workers: 2, Logger: logger}
	if *serve != "" {
		ncfg.Listen = *listen
	}
	var chat *enclave.OpenAI
	if *chatUpstream != "" {
		var digests []proto.ModelDigest
		if *chatDigest != "" {
			sum, err := proto.ParseModelDigest(*chatDigest)
			if err != nil {
				return &usageError{fmt.Sprintf("-chat-model-digest: %v", err)}
			}
			digests = []proto.ModelDigest{{Name: *chatModel, SHA256: sum}}
		}
		chat, err = enclave.NewOpenAI(enclave.OpenAIConfig{BaseURL: *chatUpstream, Model: *chatModel})
		if err != nil {
			return &usageError{fmt.Sprintf("-chat-upstream: %v", err)}
		}
		defer chat.Close()
		ncfg.Workers = 3
		ncfg.Backend = func(i int) enclave.Backend {
			if i == 2 {
				return chat
			}
			return nil
		}
		ncfg.Models = func(i int) []string {
			if i == 2 {
				return []string{*chatModel}
			}
			return nil
		}
		ncfg.ModelDigests = func(i int) []proto.ModelDigest {
			if i == 2 {
				return digests
			}
			return nil
		}
	}
	start := time.Now()
	network, err := devnet.Start(ctx, ncfg)
	if err != nil {
		return err
	}
	defer network.Close()
	fmt.Printf("started gateway at %s (TLS, self-signed development certificate) and %d workers on loopback (%v)\n", network.GatewayURL, len(network.Workers), time.Since(start).Round(time.Millisecond))
	for i, a := range network.WorkerAddrs {
		what := "summarize, translate (builtin)"
		if chat != nil && i == 2 {
			what = "chat " + *chatModel + " (openai backend, " + *chatUpstream + ")"
		}
		fmt.Printf("  worker sim-worker-%d at https://%s, enrolled by %s, mutual TLS with the gateway: %s\n", i+1, a, network.Providers[i%len(network.Providers)], what)
	}

	pol := policy.InsecureSimulated()
	c, err := client.New(network.ClientConfig(client.Config{Policy: pol, K: 2}))
	if err != nil {
		return err
	}
	workers, refused, err := c.Workers(ctx, "summarize")
	if err != nil {
		return err
	}
	fmt.Printf("\nclient verified each candidate's evidence itself under policy %q:\n", pol.Name)
	for _, w := range workers {
		fmt.Printf("  %-13s tee=%s measurement=%s… evidence=%s… made %s, endorsed by %s\n", w.ID, w.Kind, w.Measurement[:16], w.BundleHash[:16], w.EvidenceTime.Format(time.RFC3339), w.ProviderID)
	}
	for _, r := range refused {
		fmt.Printf("  %-13s REFUSED: %v\n", r.WorkerID, r.Err)
	}

	doc := devnet.SampleDocument
	fmt.Printf("\nsealing a %d-byte document (HPKE, ML-KEM-768+X25519) to %d workers and sending it through the gateway…\n", len(doc), min(2, len(workers)))
	res, err := c.Summarize(ctx, doc, client.SummarizeOptions{Sentences: *sentences})
	if err != nil {
		return err
	}
	fmt.Printf("answered by %s (tee=%s, backend=%s, model=%s), request %s\n", res.Worker.ID, res.Worker.Kind, res.End.Backend, res.End.Model, res.RequestID[:16])
	fmt.Printf("\nsummary:\n%s\n\n", wrap(res.Text, 78))
	if *serve != "" {
		if err := serveDemo(ctx, network, *serve); err != nil {
			return err
		}
	}
	if err := network.Close(); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	fmt.Printf("shut down cleanly; state in %s removed\n", filepath.Base(dir))
	return nil
}

// serveDemo writes what a client of network needs into dir, says how to
// use it, and waits for ctx to end (SIGINT or SIGTERM).
func serveDemo(ctx context.Context, network *devnet.Network, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	ca, cred, admin := filepath.Join(abs, "gateway-ca.pem"), filepath.Join(abs, "tenant.cred"), filepath.Join(abs, "admin.cred")
	env := fmt.Sprintf("# sealgate demo network (INSECURE simulated TEE); source this file\n"+
		"export SEALGATE_GATEWAY=%s\nexport SEALGATE_GATEWAY_CA=%s\nexport SEALGATE_CREDENTIAL_FILE=%s\nexport SEALGATE_LOG_KEY=%s\n",
		network.GatewayURL, ca, cred, network.LogKey)
	for _, f := range []struct {
		path string
		data []byte
	}{
		{ca, network.GatewayCA},
		{cred, []byte(network.TenantCredential + "\n")},
		{admin, []byte(network.AdminCredential + "\n")},
		{filepath.Join(abs, "env"), []byte(env)},
	} {
		if err := writeFileAtomic(f.path, f.data); err != nil {
			return err
		}
	}
	fmt.Printf("serving until interrupted (Ctrl-C). In another shell:\n\n"+
		"  . %s/env\n"+
		"  sealgate summarize -insecure-allow-simulated document.txt\n"+
		"  echo 'The house is red.' | sealgate translate -insecure-allow-simulated -from en -to es\n"+
		"  sealgate proxy -insecure-allow-simulated -listen 127.0.0.1:8080   # then OPENAI_BASE_URL=http://127.0.0.1:8080/v1\n"+
		"  sealgate admin status -credential-file %s\n\n", abs, admin)
	<-ctx.Done()
	fmt.Println("\ninterrupted; shutting down")
	return nil
}

// writeFileAtomic writes data to path with mode 0600 through a temporary
// file and a rename, so a reader never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// wrap breaks text into lines of at most width columns at spaces.
func wrap(text string, width int) string {
	var out []byte
	col := 0
	word := []byte{}
	flush := func() {
		if len(word) == 0 {
			return
		}
		if col > 0 && col+1+len(word) > width {
			out = append(out, '\n')
			col = 0
		} else if col > 0 {
			out = append(out, ' ')
			col++
		}
		out = append(out, word...)
		col += len(word)
		word = word[:0]
	}
	for i := 0; i < len(text); i++ {
		switch c := text[i]; c {
		case ' ', '\n', '\t':
			flush()
		default:
			word = append(word, c)
		}
	}
	flush()
	return string(out)
}
