package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/audit"
	"github.com/sealgate/sealgate/translog"
)

// Exit codes of `sealgate audit replay`.
const (
	exitAuditFindings = 20 // the log holds entries that should not be there
	exitAuditLog      = 21 // the log itself failed a check: signature, tree, fork
)

// auditFindings reports that a replay found something.
type auditFindings struct{ n int }

func (e *auditFindings) Error() string { return fmt.Sprintf("audit: %d findings", e.n) }

const auditUsage = `usage: sealgate audit replay -log URL|DIR -log-key KEY [-from-checkpoint FILE] [-save-checkpoint FILE]
       sealgate audit mirror -log URL -log-key KEY -dir DIR`

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "replay" && args[0] != "mirror") {
		return &usageError{auditUsage}
	}
	mirror := args[0] == "mirror"
	fs := flag.NewFlagSet("sealgate audit "+args[0], flag.ContinueOnError)
	logURL := fs.String("log", "", "the gateway's base URL, whose public /v1/log routes are read, or (replay) a mirror directory that `audit mirror` keeps")
	dir := fs.String("dir", "", "mirror: the directory to keep the copy in (created if missing)")
	logKey := fs.String("log-key", os.Getenv("SEALGATE_LOG_KEY"), "the log's public key, origin+hash+base64 as the gateway logs it (env SEALGATE_LOG_KEY)")
	fromFile := fs.String("from-checkpoint", "", "the auditor's last saved checkpoint: the log must be consistent with it")
	saveFile := fs.String("save-checkpoint", "", "write the verified checkpoint here after a replay that found nothing wrong with the log")
	caFile := fs.String("gateway-ca", os.Getenv("SEALGATE_GATEWAY_CA"), "PEM file of the certificate or CA to trust for the gateway instead of the system roots (env SEALGATE_GATEWAY_CA)")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	var anchors anchorKeyList
	fs.Var(&anchors, "anchor-key", "the gateway's time-anchor key, base64 Ed25519 (repeatable); hardware evidence is judged against it")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *logURL == "" || *logKey == "" || fs.NArg() != 0 || mirror && *dir == "" {
		return &usageError{auditUsage}
	}
	remote := strings.HasPrefix(*logURL, "https://") || strings.HasPrefix(*logURL, "http://")
	if mirror && !remote {
		return &usageError{"audit mirror: -log: want the gateway's http(s) URL"}
	}
	v, err := translog.NewVerifier(*logKey)
	if err != nil {
		return err
	}
	var from []byte
	if *fromFile != "" {
		if from, err = os.ReadFile(*fromFile); err != nil {
			return err
		}
	}
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{Proxy: nil}}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("-gateway-ca %s: found no PEM certificate", *caFile)
		}
		hc.Transport = &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	var src audit.Source = &audit.DirSource{Dir: *logURL}
	if remote {
		src = &audit.HTTPSource{Base: *logURL, Client: hc}
	}
	start, last := time.Now(), time.Time{}
	progress := func(done, total uint64) {
		if now := time.Now(); now.Sub(last) >= time.Second || done == total {
			last = now
			fmt.Fprintf(stderr, "sealgate: audit: %d/%d entries (%.0f/s)\n", done, total, float64(done)/max(now.Sub(start).Seconds(), 1e-3))
		}
	}
	if *quiet {
		progress = nil
	}
	if mirror {
		n, err := audit.Mirror(ctx, src, v, *dir, progress)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d entries added\n", n)
		return nil
	}
	enc := json.NewEncoder(stdout)
	cfg := audit.Config{
		Source: src, Verifier: v, From: from, Progress: progress,
		VerifyOptions: attestation.Options{AnchorKeys: anchors},
		Finding:       func(f audit.Finding) { enc.Encode(f) },
	}
	signed, sum, err := audit.Replay(ctx, cfg)
	if err != nil {
		if errors.Is(err, audit.ErrLog) {
			enc.Encode(struct {
				LogError string `json:"log_error"`
			}{err.Error()})
		}
		return err
	}
	enc.Encode(struct {
		Summary audit.Summary `json:"summary"`
	}{sum})
	if *saveFile != "" {
		if err := os.WriteFile(*saveFile, signed, 0o644); err != nil {
			return err
		}
	}
	if sum.Findings > 0 {
		return &auditFindings{sum.Findings}
	}
	return nil
}
