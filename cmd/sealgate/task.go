package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/proto"
)

// maxInput bounds what the CLI reads from a file or stdin.
const maxInput = 8 << 20

// clientFlags are the flags every task command shares.
type clientFlags struct {
	gateway        string
	credentialFile string
	gatewayCA      string
	insecurePlain  bool
	strict         bool
	policyFile     string
	insecureSim    bool
	k              int
	json           bool
	timeout        time.Duration
	anchorKeys     anchorKeyList
	logKey         string
	insecureNoLog  bool
	progress       progressFlags
}

// anchorKeyList collects -anchor-key flags: base64 Ed25519 public keys.
type anchorKeyList []ed25519.PublicKey

func (l *anchorKeyList) String() string { return fmt.Sprintf("%d keys", len(*l)) }

func (l *anchorKeyList) Set(v string) error {
	k, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return fmt.Errorf("found %q, want a base64 Ed25519 public key (%d bytes)", v, ed25519.PublicKeySize)
	}
	*l = append(*l, ed25519.PublicKey(k))
	return nil
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.gateway, "gateway", envOr("SEALGATE_GATEWAY", "https://127.0.0.1:8080"), "gateway base URL (env SEALGATE_GATEWAY)")
	fs.StringVar(&f.credentialFile, "credential-file", os.Getenv("SEALGATE_CREDENTIAL_FILE"), "file holding the tenant's API key (sgt_...), mode 0600 (env SEALGATE_CREDENTIAL_FILE); a key is never taken on the command line")
	fs.StringVar(&f.gatewayCA, "gateway-ca", os.Getenv("SEALGATE_GATEWAY_CA"), "PEM file of the certificate or CA to trust for the gateway instead of the system roots, such as a development gateway's self-signed certificate (env SEALGATE_GATEWAY_CA)")
	fs.BoolVar(&f.insecurePlain, "insecure-plain-http", false, "INSECURE: allow an http:// gateway on a loopback address; the API key travels unencrypted (development only)")
	fs.BoolVar(&f.strict, "strict", false, "before sealing, have each chosen worker prove its keys with evidence bound to a nonce of this client's own (one more round trip, rate-limited by the gateway)")
	fs.StringVar(&f.policyFile, "policy", "", "client attestation policy file (default: the built-in hardware-only policy)")
	fs.BoolVar(&f.insecureSim, "insecure-allow-simulated", false, "INSECURE: accept workers on the simulated TEE (development only)")
	fs.IntVar(&f.k, "k", 3, "number of verified workers to seal each request to")
	fs.BoolVar(&f.json, "json", false, "print a JSON result")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "give up after this long")
	f.progress.register(fs)
	fs.Var(&f.anchorKeys, "anchor-key", "pinned time-anchor key of the gateway, base64 Ed25519 (repeatable; env SEALGATE_ANCHOR_KEY); hardware evidence is refused without one")
	fs.StringVar(&f.logKey, "log-key", os.Getenv("SEALGATE_LOG_KEY"), "pinned transparency-log key of the gateway, origin+hash+base64 as the gateway logs it (env SEALGATE_LOG_KEY); with a hardware policy every worker is refused without one")
	fs.BoolVar(&f.insecureNoLog, "insecure-skip-log", false, "INSECURE: accept workers without checking the gateway's transparency log, so the gateway could serve evidence no auditor sees")
	if v := os.Getenv("SEALGATE_ANCHOR_KEY"); v != "" {
		if err := f.anchorKeys.Set(v); err != nil {
			fmt.Fprintln(os.Stderr, "sealgate: SEALGATE_ANCHOR_KEY:", err)
		}
	}
}

func (f *clientFlags) client() (*client.Client, error) {
	pol, err := loadPolicy(f.policyFile, f.insecureSim)
	if err != nil {
		return nil, err
	}
	if pol.AllowSimulated {
		fmt.Fprintln(os.Stderr, "sealgate: WARNING: INSECURE policy accepts simulated TEE workers; their evidence proves nothing")
	}
	if _, err := gatewayURL(f.gateway, f.insecurePlain); err != nil { // the flags' wording; client.New checks again
		return nil, err
	}
	cfg := client.Config{GatewayURL: f.gateway, Policy: pol, K: f.k, Strict: f.strict, InsecurePlainHTTP: f.insecurePlain, AttestationOptions: attestation.Options{AnchorKeys: f.anchorKeys},
		LogKey: f.logKey, InsecureSkipLog: f.insecureNoLog}
	if f.insecureNoLog {
		fmt.Fprintln(os.Stderr, "sealgate: WARNING: INSECURE: the transparency log is not checked")
	}
	if f.credentialFile != "" {
		if cfg.Credential, err = readTenantCredential(f.credentialFile); err != nil {
			return nil, err
		}
	}
	if f.gatewayCA != "" {
		if cfg.GatewayCA, err = readLimited(f.gatewayCA, maxCAFile); err != nil {
			return nil, fmt.Errorf("-gateway-ca: %v", err)
		}
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	if f.insecurePlain && strings.HasPrefix(f.gateway, "http:") {
		fmt.Fprintln(os.Stderr, "sealgate: WARNING: INSECURE plain http to the gateway; the API key travels unencrypted")
	}
	return c, nil
}

// tenantCredential is the credential the task commands send.
var tenantCredential = credentialKind{"tenant", proto.CredentialTenant}

// readTenantCredential reads the tenant's API key from a file that only
// its owner may read (readCredential checks its form). No error quotes
// the file's content.
func readTenantCredential(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("credential file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return "", fmt.Errorf("credential file %s: found mode %#o, want 0600 (run chmod 600 on it): others may have read the key", path, perm)
	}
	return readCredential(path, tenantCredential)
}

func runSummarize(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sealgate summarize", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	sentences := fs.Int("sentences", 0, "sentences wanted (0: the worker chooses from -ratio)")
	ratio := fs.Float64("ratio", 0, "share of sentences kept when -sentences is 0 (0: the worker's default)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return cf.run(ctx, fs.Args(), func(ctx context.Context, c *client.Client, text string) (*client.Result, error) {
		return c.Summarize(ctx, text, client.SummarizeOptions{Sentences: *sentences, Ratio: *ratio})
	})
}

func runTranslate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sealgate translate", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	from := fs.String("from", "", "source language, such as en (required)")
	to := fs.String("to", "", "target language, such as es (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return &usageError{"translate needs -from and -to"}
	}
	return cf.run(ctx, fs.Args(), func(ctx context.Context, c *client.Client, text string) (*client.Result, error) {
		return c.Translate(ctx, text, *from, *to)
	})
}

// run makes a client from the flags, reads the input named by args, calls
// task within the timeout and prints the result, reporting progress on
// stderr as the flags and the input's size say.
func (f *clientFlags) run(ctx context.Context, args []string, task func(context.Context, *client.Client, string) (*client.Result, error)) error {
	p, err := f.progress.start(os.Stderr, os.Stdin)
	if err != nil {
		return err
	}
	defer p.close()
	c, err := f.client() // first, so that its warnings come before any progress line
	if err != nil {
		return err
	}
	text, err := readInput(args, p)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	res, err := task(p.watch(ctx), c, text)
	if err != nil {
		return err
	}
	p.done(len(res.Text))
	return printResult(res, f.json)
}

// readInput reads the one named file, or stdin for none or "-", counting
// the bytes read on p (which may be nil).
func readInput(args []string, p *progress) (string, error) {
	var r io.Reader = os.Stdin
	switch {
	case len(args) > 1:
		return "", &usageError{fmt.Sprintf("one input file at most, found %d", len(args))}
	case len(args) == 1 && args[0] != "-":
		f, err := os.Open(args[0])
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(p.reader(r), maxInput+1))
	if err != nil {
		return "", err
	}
	if len(data) > maxInput {
		return "", fmt.Errorf("input larger than %d bytes", maxInput)
	}
	if len(data) == 0 {
		return "", errors.New("input is empty")
	}
	return string(data), nil
}

func printResult(res *client.Result, asJSON bool) error {
	if !asJSON {
		fmt.Println(res.Text)
		return nil
	}
	out := struct {
		Text      string `json:"text"`
		RequestID string `json:"request_id"`
		Worker    struct {
			ID          string    `json:"id"`
			Kind        string    `json:"kind"`
			Simulated   bool      `json:"simulated"`
			Measurement string    `json:"measurement"`
			Evidence    string    `json:"evidence_sha256"`
			Time        time.Time `json:"evidence_time"`
			Policy      string    `json:"policy"`
			ProviderID  string    `json:"provider_id"`
			Strict      bool      `json:"strict"`
		} `json:"worker"`
		Candidates []string `json:"candidates"`
		Backend    string   `json:"backend"`
		Model      string   `json:"model"`
	}{Text: res.Text, RequestID: res.RequestID, Backend: res.End.Backend, Model: res.End.Model}
	w := res.Worker
	out.Worker.ID, out.Worker.Kind, out.Worker.Simulated = w.ID, w.Kind, w.Simulated
	out.Worker.Measurement, out.Worker.Evidence, out.Worker.Time, out.Worker.Policy = w.Measurement, w.BundleHash, w.EvidenceTime, w.Policy
	out.Worker.ProviderID, out.Worker.Strict = w.ProviderID, w.Strict
	for _, c := range res.Candidates {
		out.Candidates = append(out.Candidates, c.ID)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
