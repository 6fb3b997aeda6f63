// Command sealgate-worker is the sealgate worker: it runs inside a TEE,
// registers with a gateway and serves sealed requests. It is the measured
// trusted computing base; imports_test.go keeps its imports to a reviewed
// allowlist.
//
// Usage:
//
//	sealgate-worker -gateway URL -id NAME [-listen ADDR] [-advertise URL] -insecure-simulated-tee
//
// This build has no hardware evidence source yet, so it refuses to start
// unless -insecure-simulated-tee is given. INSECURE: simulated evidence
// proves nothing about where the worker runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/enclave"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sealgate-worker:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("sealgate-worker", flag.ContinueOnError)
	gatewayURL := fs.String("gateway", "", "gateway base URL (required)")
	id := fs.String("id", "", "worker name at the gateway (required)")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve sealed requests on")
	advertise := fs.String("advertise", "", "base URL the gateway reaches this worker at (default http://LISTEN)")
	simulated := fs.Bool("insecure-simulated-tee", false, "INSECURE: use the simulated TEE (no hardware evidence source in this build)")
	reattest := fs.Duration("reattest", 5*time.Minute, "how often to rotate keys and register fresh evidence")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if !*simulated {
		return fmt.Errorf("no hardware TEE evidence source in this build; pass -insecure-simulated-tee to run with the INSECURE simulated TEE")
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	measurement, err := sim.MeasureExecutable()
	if err != nil {
		return err
	}
	w, err := enclave.New(enclave.Config{
		ID: *id, GatewayURL: *gatewayURL, AdvertiseURL: *advertise,
		Evidence:         enclave.SimulatedEvidence{Device: sim.NewDevice(sim.DeviceConfig{Measurement: measurement})},
		Logger:           log,
		ReattestInterval: *reattest,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	log.Info("worker listening", slog.String("addr", ln.Addr().String()))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return w.Run(ctx, ln)
}
