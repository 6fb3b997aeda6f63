package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"

	"github.com/sealgate/sealgate/proxy"
)

// proxyOmitsFlags are the task commands' flags that mean nothing to a
// server: it prints no result and reports no progress. -timeout stays,
// and bounds each request.
var proxyOmitsFlags = map[string]bool{"json": true, "progress": true, "quiet": true}

// maxAPIKeyFile bounds the proxy's API key file.
const maxAPIKeyFile = 4 << 10

// runProxy serves the OpenAI-compatible proxy until ctx is done (SIGINT
// or SIGTERM).
func runProxy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sealgate proxy", flag.ContinueOnError)
	var cf clientFlags
	all := flag.NewFlagSet("", flag.ContinueOnError)
	cf.register(all)
	all.VisitAll(func(f *flag.Flag) {
		if !proxyOmitsFlags[f.Name] {
			usage := f.Usage
			if f.Name == "timeout" {
				usage = "give up on one request after this long"
			}
			fs.Var(f.Value, f.Name, usage)
		}
	})
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve OpenAI's API on; a loopback address unless -insecure-listen-any")
	listenAny := fs.Bool("insecure-listen-any", false, "INSECURE: allow a -listen address that is not loopback; the proxy serves plaintext prompts and completions, on the tenant's credential, to whoever connects")
	apiKeyFile := fs.String("api-key-file", "", "file (mode 0600) holding the API key local OpenAI clients must send as their bearer key (default: none asked for)")
	maxBody := fs.Int64("max-body", proxy.DefaultMaxBodyBytes, "largest request body accepted, in bytes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("proxy takes no argument, found %q", fs.Args())}
	}
	if err := proxy.CheckListenAddr(*listen, *listenAny); err != nil {
		return &usageError{strings.TrimPrefix(err.Error(), "proxy: ") + " (or -insecure-listen-any)"}
	}
	if u, err := gatewayURL(cf.gateway, cf.insecurePlain); err == nil && u.Host == *listen {
		return &usageError{fmt.Sprintf("-gateway %s is the proxy's own -listen address: give the gateway's URL", u.Redacted())}
	}
	if *maxBody <= 0 {
		return &usageError{fmt.Sprintf("-max-body: found %d, want a positive number of bytes", *maxBody)}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var apiKey string
	if *apiKeyFile != "" {
		if apiKey, err = readAPIKey(*apiKeyFile); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg := proxy.Config{Client: c, APIKey: apiKey, InsecureListenAny: *listenAny, MaxBodyBytes: *maxBody, RequestTimeout: cf.timeout, Logger: log}
	p, err := proxy.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if *listenAny {
		log.Warn("INSECURE: the proxy serves plaintext prompts and completions, on the tenant's credential, to whoever reaches this address", slog.String("addr", ln.Addr().String()))
	}
	log.Info("proxy listening", slog.String("addr", ln.Addr().String()), slog.String("base_url", "http://"+ln.Addr().String()+"/v1"), slog.Any("config", cfg))
	return p.Serve(ctx, ln)
}

// readAPIKey reads the proxy's API key from a file only its owner may
// read. No error quotes the file's content.
func readAPIKey(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("-api-key-file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return "", fmt.Errorf("-api-key-file %s: found mode %#o, want 0600 (run chmod 600 on it): others may have read the key", path, perm)
	}
	data, err := readLimited(path, maxAPIKeyFile)
	if err != nil {
		return "", fmt.Errorf("-api-key-file: %v", err)
	}
	key := strings.TrimSpace(string(data))
	if key == "" || strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return "", errors.New("-api-key-file " + path + ": want one key of printable ASCII without spaces")
	}
	return key, nil
}
