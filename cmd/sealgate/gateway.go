package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/gateway"
)

func runGateway(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sealgate gateway", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	db := fs.String("db", "sealgate-gateway.db", "SQLite database file")
	policyFile := fs.String("policy", "", "admission policy file (default: the built-in hardware-only policy)")
	insecureSim := fs.Bool("insecure-allow-simulated", false, "INSECURE: admit workers on the simulated TEE (development only)")
	anchorFile := fs.String("anchor-key-file", "sealgate-anchor.key", "file holding the time-anchor signing key (created, mode 0600, if missing)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pol, err := loadPolicy(*policyFile, *insecureSim)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	anchorKey, err := loadAnchorKey(*anchorFile)
	if err != nil {
		return err
	}
	gw, err := gateway.New(ctx, gateway.Config{DBPath: *db, AdmissionPolicy: pol, Logger: log, AnchorKey: anchorKey})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		gw.Close()
		return err
	}
	log.Info("gateway listening", slog.String("addr", ln.Addr().String()), slog.String("policy", pol.Name),
		slog.String("anchor_public_key", base64.StdEncoding.EncodeToString(gw.AnchorPublicKey())))
	return gw.Serve(ctx, ln)
}

// loadPolicy reads a policy file, or picks a built-in one. The simulated
// policy is only ever chosen by an explicit insecure flag.
func loadPolicy(file string, insecureSim bool) (*policy.Policy, error) {
	switch {
	case file != "" && insecureSim:
		return nil, &usageError{"-policy and -insecure-allow-simulated are exclusive: put allow_simulated in the policy file instead"}
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		p, err := policy.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return p, nil
	case insecureSim:
		return policy.InsecureSimulated(), nil
	}
	return policy.Default(), nil
}

// loadAnchorKey reads the anchor key's seed (base64) from path, creating
// the file with a new key if it does not exist.
func loadAnchorKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		seed := make([]byte, ed25519.SeedSize)
		rand.Read(seed)
		if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(seed)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("creating anchor key: %w", err)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading anchor key: %w", err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("anchor key %s: want a base64 Ed25519 seed of %d bytes", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
