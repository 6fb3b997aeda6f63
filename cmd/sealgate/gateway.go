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
	"path/filepath"
	"strings"
	"time"

	"crypto/tls"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

func runGateway(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("sealgate gateway", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8443", "address to listen on")
	db := fs.String("db", "sealgate-gateway.db", "SQLite database file, or a postgres:// DSN shared by replicas (default from $SEALGATE_DATABASE when set, so a DSN's password stays off the command line)")
	policyFile := fs.String("policy", "", "admission policy file (default: the built-in hardware-only policy)")
	insecureSim := fs.Bool("insecure-allow-simulated", false, "INSECURE: admit workers on the simulated TEE (development only)")
	anchorFile := fs.String("anchor-key-file", "sealgate-anchor.key", "file holding the time-anchor signing key (created, mode 0600, if missing); replicas share it")
	logKeyFile := fs.String("log-key-file", "", "file holding the transparency log's signing key (created, mode 0600, if missing, for -log-origin); replicas share it (default: sealgate-log.key in -anchor-key-file's directory)")
	logOrigin := fs.String("log-origin", gateway.DefaultLogOrigin, "the transparency log's name, used only when -log-key-file is created (for example gateway.example.com/log)")
	adminFile := fs.String("admin-credential-file", "sealgate-admin.cred", "file holding the admin credential (created, mode 0600, if missing)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate chain to serve (with -tls-key); replicas share it, and workers pin it")
	tlsKey := fs.String("tls-key", "", "PEM private key of -tls-cert")
	devTLS := fs.String("dev-tls-dir", "", "development: serve a self-signed certificate kept in this directory (created if missing); clients and workers must be given its dev-tls-cert.pem")
	plainHTTP := fs.Bool("insecure-plain-http", false, "INSECURE: serve plain HTTP, so credentials travel in clear (tests and benchmarks on loopback only)")
	plainWorkers := fs.Bool("insecure-plain-workers", false, "INSECURE: admit workers on plain HTTP, which serve anyone who reaches them")
	reattest := fs.Duration("reattest", gateway.DefaultReattestInterval, "how often each worker must re-attest (workers' -reattest must match)")
	evictAfter := fs.Duration("evict-after", gateway.DefaultEvictAfter, "how long a drained worker is kept before it is evicted")
	maxInFlight := fs.Int("max-in-flight", gateway.DefaultMaxInFlight, "sealed requests relayed at once; more are refused with 503 and Retry-After")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if env := getenv("SEALGATE_DATABASE"); env != "" && !flagSet(fs, "db") {
		*db = env
	}
	pol, err := loadPolicy(*policyFile, *insecureSim)
	if err != nil {
		return err
	}
	cert, certPath, err := gatewayCertificate(*tlsCert, *tlsKey, *devTLS, *plainHTTP)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	anchorKey, err := loadAnchorKey(*anchorFile)
	if err != nil {
		return err
	}
	if *logKeyFile == "" {
		*logKeyFile = filepath.Join(filepath.Dir(*anchorFile), "sealgate-log.key")
	}
	logKey, err := loadLogKey(*logKeyFile, *logOrigin)
	if err != nil {
		return err
	}
	adminHash, created, err := loadAdminCredential(*adminFile)
	if err != nil {
		return err
	}
	if created {
		log.Info("admin credential created; it is shown nowhere else", slog.String("file", *adminFile))
	}
	gw, err := gateway.New(ctx, gateway.Config{
		Database: *db, AdmissionPolicy: pol, Logger: log, AnchorKey: anchorKey, LogKey: logKey, AdminCredentialHash: adminHash,
		TLSCertificate: cert, InsecurePlainHTTP: *plainHTTP, InsecurePlainWorkers: *plainWorkers,
		ReattestInterval: *reattest, EvictAfter: *evictAfter, MaxInFlight: *maxInFlight,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		gw.Close()
		return err
	}
	attrs := []any{slog.String("addr", ln.Addr().String()), slog.String("policy", pol.Name),
		slog.String("anchor_public_key", base64.StdEncoding.EncodeToString(gw.AnchorPublicKey())),
		slog.String("log_public_key", gw.LogPublicKey())}
	if certPath != "" {
		attrs = append(attrs, slog.String("dev_tls_cert", certPath))
	}
	log.Info("gateway listening", attrs...)
	return gw.Serve(ctx, ln)
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// gatewayCertificate picks the gateway's TLS certificate: files, a
// development certificate, or none (plain HTTP, which must be asked for).
// certPath is the development certificate's file, for the log.
func gatewayCertificate(certFile, keyFile, devDir string, plain bool) (*tls.Certificate, string, error) {
	modes := 0
	for _, on := range []bool{certFile != "" || keyFile != "", devDir != "", plain} {
		if on {
			modes++
		}
	}
	switch {
	case modes == 0:
		return nil, "", &usageError{"want -tls-cert and -tls-key, -dev-tls-dir DIR, or -insecure-plain-http"}
	case modes > 1:
		return nil, "", &usageError{"-tls-cert/-tls-key, -dev-tls-dir and -insecure-plain-http are exclusive"}
	case plain:
		return nil, "", nil
	case devDir != "":
		if err := os.MkdirAll(devDir, 0o700); err != nil {
			return nil, "", fmt.Errorf("-dev-tls-dir: %w", err)
		}
		cert, path, _, err := tlspin.LoadOrCreateDev(devDir, nil, time.Now())
		if err != nil {
			return nil, "", fmt.Errorf("-dev-tls-dir: %w", err)
		}
		return &cert, path, nil
	case certFile == "" || keyFile == "":
		return nil, "", &usageError{"-tls-cert and -tls-key go together"}
	}
	cert, err := tlspin.LoadPEMFile(certFile, keyFile)
	if err != nil {
		return nil, "", err
	}
	return &cert, "", nil
}

// loadAdminCredential returns the hash of the admin credential in path,
// creating the file with a new credential if it does not exist.
func loadAdminCredential(path string) (hash [32]byte, created bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		f, err := createSecretFile(path)
		if err != nil {
			return hash, false, fmt.Errorf("creating the admin credential: %w", err)
		}
		cred := gateway.NewCredential(proto.CredentialAdmin)
		_, werr := f.WriteString(cred + "\n")
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			return hash, false, fmt.Errorf("writing the admin credential: %w", err)
		}
		return gateway.HashCredential(cred), true, nil
	}
	cred, err := readCredential(path, adminCredential)
	if err != nil {
		return hash, false, err
	}
	return gateway.HashCredential(cred), false, nil
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

// loadLogKey reads the transparency log's private key (note's text form)
// from path, creating it for origin with mode 0600 if it is missing.
func loadLogKey(path, origin string) (*translog.Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		skey, _, err := translog.GenerateKey(origin)
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("creating log key: %w", err)
		}
		_, werr := f.WriteString(skey + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, fmt.Errorf("creating log key: %w", werr)
		}
		return translog.NewSigner(skey)
	}
	if err != nil {
		return nil, fmt.Errorf("reading log key: %w", err)
	}
	s, err := translog.NewSigner(string(data))
	if err != nil {
		return nil, fmt.Errorf("log key %s: %w", path, err)
	}
	return s, nil
}
