// Command sealgate-worker is the sealgate worker: it runs inside a TEE,
// enrolls with a gateway and serves sealed requests to it over mutual
// TLS. It is the measured trusted computing base; imports_test.go keeps
// its imports to a reviewed allowlist.
//
// Usage:
//
//	sealgate-worker -gateway https://HOST:PORT -id NAME -tee tdx|snp \
//		-credential-file FILE -provider-key-file FILE [-gateway-ca FILE] \
//		[-gpus] [-listen ADDR] [-advertise URL] [-capacity N] [-region R] [-models M1,M2] [-reattest D]
//	sealgate-worker ... -tee sim -insecure-simulated-tee [-insecure-plain-http]
//
// -credential-file holds the provider's API key (sgp_...), which the
// worker sends with every call to the gateway. -provider-key-file holds the
// provider's Ed25519 endorsement key as 'sealgate provider keygen' writes
// it (PKCS#8 PEM); the worker signs each new key generation with it. Keep
// both files mode 0600. -gateway-ca names PEM certificates to trust for the
// gateway, such as a development gateway's self-signed certificate; by
// default the system roots.
//
// The worker makes a TLS certificate at start, in memory, sends its pin
// when it enrolls, and serves only the gateway whose certificate it saw
// while enrolling. The gateway re-challenges it every -reattest (which
// must match the gateway's); if no challenge comes within twice that, the
// worker enrolls again. -capacity is how many requests it serves at once
// and advertises. -insecure-plain-http serves plain HTTP to anyone and
// registers without a TLS pin: INSECURE, for tests and benchmarks only.
//
// With -tee tdx or snp the worker gets its evidence from the confidential
// VM's configfs-tsm (/sys/kernel/config/tsm) and the collateral from Intel
// PCS or AMD KDS. -gpus adds each GPU's evidence through NVML (in a
// build with -tags nvml), with RIMs and OCSP responses from NVIDIA. -tee
// sim is the INSECURE simulated TEE, which needs -insecure-simulated-tee
// as well: simulated evidence proves nothing about where the worker runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/proto"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sealgate-worker:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("sealgate-worker", flag.ContinueOnError)
	gatewayURL := fs.String("gateway", "", "gateway base URL, https (required)")
	id := fs.String("id", "", "worker name at the gateway (required)")
	credentialFile := fs.String("credential-file", "", "file holding the provider's credential, sgp_... (required)")
	providerKeyFile := fs.String("provider-key-file", "", "the provider's Ed25519 endorsement key, PKCS#8 PEM as 'sealgate provider keygen' writes (required)")
	gatewayCA := fs.String("gateway-ca", "", "PEM certificates to trust for the gateway, such as its development self-signed certificate (default: the system roots)")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve sealed requests on")
	advertise := fs.String("advertise", "", "base URL the gateway reaches this worker at (default https://LISTEN)")
	capacity := fs.Int("capacity", 8, "requests served at once, advertised to the gateway")
	region := fs.String("region", "", "placement label to advertise, [a-z0-9-], such as eu-west")
	models := fs.String("models", "", "comma-separated models to advertise")
	tee := fs.String("tee", "", "TEE kind to collect evidence from: tdx, snp, or sim (required)")
	simulated := fs.Bool("insecure-simulated-tee", false, "INSECURE: allow -tee sim, the simulated TEE")
	plainHTTP := fs.Bool("insecure-plain-http", false, "INSECURE: serve plain HTTP without mutual TLS, to anyone (tests and benchmarks only)")
	gpus := fs.Bool("gpus", false, "also collect every GPU's confidential-computing evidence through NVML (needs a build with -tags nvml)")
	reattest := fs.Duration("reattest", 3*time.Minute, "interval the gateway re-challenges this worker at (must match the gateway's); the worker enrolls again after twice this without a challenge")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("found argument %q, want only flags", fs.Arg(0))
	}
	if *capacity < 1 || *capacity > proto.MaxCapacity {
		return fmt.Errorf("-capacity: found %d, want 1 to %d", *capacity, proto.MaxCapacity)
	}
	if *reattest <= 0 {
		return fmt.Errorf("-reattest: found %v, want a positive duration", *reattest)
	}
	credential, err := readCredential(*credentialFile)
	if err != nil {
		return err
	}
	providerKey, err := readProviderKey(*providerKeyFile)
	if err != nil {
		return err
	}
	gatewayTLS, err := readGatewayCA(*gatewayCA)
	if err != nil {
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
	for name, path := range map[string]string{"-credential-file": *credentialFile, "-provider-key-file": *providerKeyFile} {
		if othersCanRead(path) {
			log.Warn("a secret file is readable by its group or others; make it mode 0600", slog.String("flag", name), slog.String("path", path))
		}
	}
	w, err := enclave.New(enclave.Config{
		ID: *id, GatewayURL: *gatewayURL, AdvertiseURL: *advertise,
		Credential:        credential,
		ProviderKey:       providerKey,
		GatewayTLS:        gatewayTLS,
		Region:            *region,
		Models:            splitModels(*models),
		MaxConcurrent:     *capacity,
		InsecurePlainHTTP: *plainHTTP,
		Evidence:          evidence,
		Logger:            log,
		ReattestInterval:  *reattest,
	})
	var ce *enclave.ConfigError
	if errors.As(err, &ce) && configFlags[ce.Field] != "" {
		return fmt.Errorf("%s: %s", configFlags[ce.Field], ce.Msg)
	}
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("-listen: %v", err)
	}
	log.Info("worker listening", slog.String("addr", ln.Addr().String()))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return w.Run(ctx, ln)
}
