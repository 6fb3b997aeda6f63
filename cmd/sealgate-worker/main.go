// Command sealgate-worker is the sealgate worker: it runs inside a TEE,
// registers with a gateway and serves sealed requests. It is the measured
// trusted computing base; imports_test.go keeps its imports to a reviewed
// allowlist.
//
// Usage:
//
//	sealgate-worker -gateway URL -id NAME -tee tdx|snp [-gpus] [-listen ADDR] [-advertise URL]
//	sealgate-worker -gateway URL -id NAME -tee sim -insecure-simulated-tee
//
// With -tee tdx or snp the worker gets its evidence from the confidential
// VM's configfs-tsm (/sys/kernel/config/tsm) and the collateral from Intel
// PCS or AMD KDS. -gpus adds each GPU's evidence through NVML (in a
// build with -tags nvml), with RIMs and OCSP responses from NVIDIA. -tee sim is the INSECURE simulated TEE, which needs
// -insecure-simulated-tee as well: simulated evidence proves nothing about
// where the worker runs.
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

	"github.com/sealgate/sealgate/enclave"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sealgate-worker:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("sealgate-worker", flag.ContinueOnError)
	gatewayURL := fs.String("gateway", "", "gateway base URL (required)")
	id := fs.String("id", "", "worker name at the gateway (required)")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve sealed requests on")
	advertise := fs.String("advertise", "", "base URL the gateway reaches this worker at (default http://LISTEN)")
	tee := fs.String("tee", "", "TEE kind to collect evidence from: tdx, snp, or sim (required)")
	simulated := fs.Bool("insecure-simulated-tee", false, "INSECURE: allow -tee sim, the simulated TEE")
	gpus := fs.Bool("gpus", false, "also collect every GPU's confidential-computing evidence through NVML (needs a build with -tags nvml)")
	reattest := fs.Duration("reattest", 5*time.Minute, "how often to rotate keys and register fresh evidence")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tee == "" && *simulated {
		*tee = "sim" // -insecure-simulated-tee alone keeps working
	}
	evidence, err := evidenceSource(*tee, *simulated)
	if err != nil {
		return err
	}
	if *gpus {
		c, err := gpuCollector()
		if err != nil {
			return err
		}
		evidence = withGPUs{EvidenceSource: evidence, gpus: c}
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	w, err := enclave.New(enclave.Config{
		ID: *id, GatewayURL: *gatewayURL, AdvertiseURL: *advertise,
		Evidence:         evidence,
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
