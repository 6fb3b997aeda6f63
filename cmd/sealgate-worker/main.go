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
//	sealgate-worker ... -backend openai -upstream http://127.0.0.1:8000/v1 -model NAME \
//		[-model-dir DIR | -model-digest sha256:HEX] [-max-input-bytes SIZE|TASK=SIZE,...] [-request-timeout D]
//	sealgate-worker -print-model-digest DIR
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
//
// -backend builtin (the default) serves summarize and translate on the
// CPU. -backend openai forwards chat, summarize and translate to an
// OpenAI-compatible model server inside the confidential VM (vLLM,
// llama.cpp's server, Ollama, SGLang) at -upstream, which must be on the
// loopback, serving the model named by -model (advertised unless -models
// says otherwise). -model-dir hashes the model's weight files at start
// (proto/SPEC.md §10.3; a directory or one file) and -model-digest takes
// the serving engine's manifest digest instead; either way the evidence
// binds the digest under the model's name, so clients can pin it, and
// every end event names it. -print-model-digest DIR prints a directory's
// digest and exits, for operators and clients that pin it.
//
// -max-input-bytes bounds each task's input (its sealed JSON request): one
// size for every task, or TASK=SIZE pairs where the task * covers the
// rest, sizes in bytes or with KiB or MiB. -request-timeout bounds each
// request; an openai backend's own timeouts (1 minute to the first token,
// 30 seconds between tokens, 10 minutes in all) apply within it.
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
	var bf backendFlags
	fs.StringVar(&bf.kind, "backend", "builtin", "inference backend: builtin (CPU summarize and translate) or openai (a model server on the loopback)")
	fs.StringVar(&bf.upstream, "upstream", "", "with -backend openai: the model server's OpenAI-compatible base URL on the loopback, such as http://127.0.0.1:8000/v1")
	fs.StringVar(&bf.model, "model", "", "with -backend openai: the model's served name, sent upstream and named in responses")
	fs.StringVar(&bf.modelDir, "model-dir", "", "with -backend openai: the model's weight files (a directory or one file), hashed at start and bound into the evidence")
	fs.StringVar(&bf.modelDigest, "model-digest", "", "with -backend openai: sha256:HEX, the serving engine's model manifest digest, bound into the evidence (instead of -model-dir)")
	fs.StringVar(&bf.maxInput, "max-input-bytes", "", "bound on each task's input: SIZE for every task, or TASK=SIZE,... with * for the rest; SIZE in bytes or with KiB or MiB (default: each backend's 1 MiB of text)")
	requestTimeout := fs.Duration("request-timeout", 2*time.Minute, "bound on each request, from its first byte to its last")
	printDigest := fs.String("print-model-digest", "", "print the model digest of a directory or file (sha256:HEX) and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("found argument %q, want only flags", fs.Arg(0))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *printDigest != "" {
		return printModelDigest(ctx, *printDigest, func(s string) { fmt.Println(s) })
	}
	if *requestTimeout <= 0 {
		return fmt.Errorf("-request-timeout: found %v, want a positive duration", *requestTimeout)
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
	backend, err := buildBackend(ctx, bf, log)
	if err != nil {
		return err
	}
	advertised := splitModels(*models)
	if advertised == nil {
		advertised = backend.advertise
	}
	w, err := enclave.New(enclave.Config{
		ID: *id, GatewayURL: *gatewayURL, AdvertiseURL: *advertise,
		Credential:        credential,
		ProviderKey:       providerKey,
		GatewayTLS:        gatewayTLS,
		Region:            *region,
		Models:            advertised,
		ModelDigests:      backend.digests,
		Backend:           backend.backend,
		MaxInputBytes:     backend.limits,
		MaxConcurrent:     *capacity,
		RequestTimeout:    *requestTimeout,
		InsecurePlainHTTP: *plainHTTP,
		Evidence:          evidence,
		Logger:            log,
		ReattestInterval:  *reattest,
	})
	if err != nil {
		return flagError(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("-listen: %v", err)
	}
	log.Info("worker listening", slog.String("addr", ln.Addr().String()))
	return w.Run(ctx, ln)
}
