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
	"github.com/sealgate/sealgate/internal/devnet"
)

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sealgate demo", flag.ContinueOnError)
	sentences := fs.Int("sentences", 4, "sentences in the summary")
	verbose := fs.Bool("v", false, "show the gateway's and workers' logs")
	if err := parseFlags(fs, args); err != nil {
		return err
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
	start := time.Now()
	network, err := devnet.Start(ctx, devnet.Config{Dir: dir, Workers: 2, Logger: logger})
	if err != nil {
		return err
	}
	defer network.Close()
	fmt.Printf("started gateway at %s (TLS, self-signed development certificate) and %d workers on loopback (%v)\n", network.GatewayURL, len(network.Workers), time.Since(start).Round(time.Millisecond))
	for i, a := range network.WorkerAddrs {
		fmt.Printf("  worker sim-worker-%d at https://%s, enrolled by %s, mutual TLS with the gateway\n", i+1, a, network.Providers[i%len(network.Providers)])
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
	if err := network.Close(); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	fmt.Printf("shut down cleanly; state in %s removed\n", filepath.Base(dir))
	return nil
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
