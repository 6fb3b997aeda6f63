package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/gateway"
)

func runGateway(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sealgate gateway", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	db := fs.String("db", "sealgate-gateway.db", "SQLite database file")
	policyFile := fs.String("policy", "", "admission policy file (default: the built-in hardware-only policy)")
	insecureSim := fs.Bool("insecure-allow-simulated", false, "INSECURE: admit workers on the simulated TEE (development only)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pol, err := loadPolicy(*policyFile, *insecureSim)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	gw, err := gateway.New(ctx, gateway.Config{DBPath: *db, AdmissionPolicy: pol, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		gw.Close()
		return err
	}
	log.Info("gateway listening", slog.String("addr", ln.Addr().String()), slog.String("policy", pol.Name))
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
