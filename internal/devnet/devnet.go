// Package devnet runs a whole sealgate network in one process on loopback
// sockets: a gateway with its SQLite store, serving TLS with a
// self-signed development certificate; two providers with endorsement
// keys; a tenant; and workers on the simulated TEE, enrolled by the
// providers and reached over mutual TLS. It backs `sealgate demo` and the
// end-to-end tests.
//
// INSECURE: the workers use the simulated TEE and the gateway admits them
// under policy.InsecureSimulated. Nothing here is for production.
package devnet

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/internal/tlspin"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/translog"
)

// Config configures a Network. Only Dir is required.
type Config struct {
	// Dir holds the gateway's database.
	Dir string
	// Workers is how many simulated workers to start. Zero means 2.
	Workers int
	// Logger receives every component's logs. Nil discards them.
	Logger *slog.Logger
	// WorkerAdvertise, when set, returns the URL the gateway should use to
	// reach worker i listening on addr (tests put a tap there). Nil means
	// "http://" + addr.
	WorkerAdvertise func(i int, addr string) string
	// Measurement is what the simulated TEE reports for every worker. The
	// zero value means the SHA-384 of the running binary.
	Measurement [sim.MeasurementSize]byte
	// AdmissionPolicy is the gateway's admission policy. Nil means
	// policy.InsecureSimulated.
	AdmissionPolicy *policy.Policy
	// VerifyOptions are the gateway's attestation options (tests pin
	// fixture roots here). The zero value pins the vendors' roots.
	VerifyOptions attestation.Options
	// Evidence returns worker i's evidence source. Nil means the simulated
	// TEE.
	Evidence func(i int) enclave.EvidenceSource
	// Backend returns worker i's backend. Nil, or a nil result, means
	// enclave.Builtin{}.
	Backend func(i int) enclave.Backend
	// Models returns the models worker i advertises. Nil advertises none.
	Models func(i int) []string
	// ModelDigests returns the model digests worker i's evidence binds
	// (enclave.Config.ModelDigests). Nil binds none.
	ModelDigests func(i int) []proto.ModelDigest
	// Now is every component's clock. Nil means time.Now.
	Now func() time.Time
	// KeyLog receives the workers' keys and secrets. INSECURE: tests only.
	KeyLog io.Writer
	// RegisterTimeout bounds the wait for every worker to register. Zero
	// means 30 seconds.
	RegisterTimeout time.Duration
	// InsecurePlainHTTP runs every link in plain HTTP, so that a tap on a
	// connection sees exactly the bytes the gateway handles. INSECURE:
	// credentials travel in clear; tests only.
	InsecurePlainHTTP bool
	// Database, when set, is the gateway's store (a postgres:// DSN, say)
	// instead of a SQLite file in Dir.
	Database string
	// Gateway, when set, edits the gateway's Config before it starts.
	Gateway func(*gateway.Config)
	// Listen is the gateway's listen address. Empty means a free port on
	// 127.0.0.1.
	Listen string
}

// Network is a running gateway and its workers.
type Network struct {
	// GatewayURL is the gateway's base URL.
	GatewayURL string
	// Workers are the running workers, in start order.
	Workers []*enclave.Worker
	// WorkerAddrs are the workers' listening addresses.
	WorkerAddrs []string
	// Gateway is the running gateway.
	Gateway *gateway.Gateway
	// AnchorKey is the gateway's time-anchor key, for clients to pin.
	AnchorKey ed25519.PublicKey
	// LogKey is the gateway's transparency-log public key, for clients
	// to pin.
	LogKey string
	// GatewayCA is the PEM of the gateway's self-signed certificate, for
	// clients to trust; nil with Config.InsecurePlainHTTP.
	GatewayCA []byte
	// AdminCredential and TenantCredential are the operator's and the
	// tenant "devnet-tenant"'s credentials.
	AdminCredential  string
	TenantCredential string
	// Providers are the providers' ids, in the order workers alternate
	// between them.
	Providers []string
	// plain records Config.InsecurePlainHTTP.
	plain bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex // guards errs
	errs   []error
}

// Start starts the gateway, then the workers, and returns once every
// worker has registered. Close stops everything.
func Start(ctx context.Context, cfg Config) (*Network, error) {
	if cfg.Dir == "" {
		return nil, errors.New("devnet: dir: found empty, want a directory for the gateway database")
	}
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Measurement == ([sim.MeasurementSize]byte{}) {
		m, err := sim.MeasureExecutable()
		if err != nil {
			return nil, fmt.Errorf("devnet: measuring the binary: %w", err)
		}
		cfg.Measurement = m
	}
	if cfg.RegisterTimeout == 0 {
		cfg.RegisterTimeout = 30 * time.Second
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n := &Network{cancel: cancel}

	if cfg.AdmissionPolicy == nil {
		cfg.AdmissionPolicy = policy.InsecureSimulated()
	}
	n.plain = cfg.InsecurePlainHTTP
	n.AdminCredential = gateway.NewCredential(proto.CredentialAdmin)
	gcfg := gateway.Config{
		Database:             cfg.Database,
		AdmissionPolicy:      cfg.AdmissionPolicy,
		VerifyOptions:        cfg.VerifyOptions,
		Now:                  cfg.Now,
		Logger:               cfg.Logger.With(slog.String("component", "gateway")),
		AdminCredentialHash:  gateway.HashCredential(n.AdminCredential),
		InsecurePlainHTTP:    cfg.InsecurePlainHTTP,
		InsecurePlainWorkers: cfg.InsecurePlainHTTP,
	}
	if gcfg.Database == "" {
		gcfg.Database = filepath.Join(cfg.Dir, "gateway.db")
	}
	var gatewayTLS *tls.Config
	if !cfg.InsecurePlainHTTP {
		// TLS checks certificates at the wall clock, whatever cfg.Now says.
		cert, err := tlspin.SelfSigned(nil, time.Now(), 24*time.Hour)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("devnet: gateway certificate: %w", err)
		}
		gcfg.TLSCertificate = &cert
		n.GatewayCA = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
		pool := x509.NewCertPool()
		pool.AddCert(cert.Leaf)
		gatewayTLS = tlspin.TrustConfig(pool)
	}
	// One log key for the network, set before cfg.Gateway sees the
	// configuration, so that a replica built from it signs the same log
	// with the same key.
	skey, _, err := translog.GenerateKey(gateway.DefaultLogOrigin)
	if err == nil {
		gcfg.LogKey, err = translog.NewSigner(skey)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	if cfg.Gateway != nil {
		cfg.Gateway(&gcfg)
	}
	gw, err := gateway.New(runCtx, gcfg)
	if err != nil {
		cancel()
		return nil, err
	}
	n.Gateway = gw
	n.AnchorKey = gw.AnchorPublicKey()
	n.LogKey = gw.LogPublicKey()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	gln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		cancel()
		gw.Close()
		return nil, err
	}
	n.GatewayURL = "https://" + gln.Addr().String()
	if cfg.InsecurePlainHTTP {
		n.GatewayURL = "http://" + gln.Addr().String()
	}
	n.goRun(func() error { return gw.Serve(runCtx, gln) })

	// Accounts, through the domain: two providers with endorsement keys,
	// and one tenant.
	type provider struct {
		cred string
		key  ed25519.PrivateKey
	}
	var providers []provider
	for _, id := range []string{"devnet-provider-a", "devnet-provider-b"} {
		acct, err := gw.CreateAccount(ctx, n.AdminCredential, "provider", proto.NewAccount{ID: id})
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("devnet: creating provider %s: %w", id, err)
		}
		pub, key, _ := ed25519.GenerateKey(rand.Reader)
		if _, err := gw.SetProviderKey(ctx, acct.Credential, proto.ProviderKey{PublicKey: pub}); err != nil {
			n.Close()
			return nil, fmt.Errorf("devnet: registering provider %s's key: %w", id, err)
		}
		providers = append(providers, provider{cred: acct.Credential, key: key})
		n.Providers = append(n.Providers, id)
	}
	tenant, err := gw.CreateAccount(ctx, n.AdminCredential, "tenant", proto.NewAccount{ID: "devnet-tenant"})
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("devnet: creating the tenant: %w", err)
	}
	n.TenantCredential = tenant.Credential

	for i := range cfg.Workers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			n.Close()
			return nil, err
		}
		addr := ln.Addr().String()
		scheme := "https://"
		if cfg.InsecurePlainHTTP {
			scheme = "http://"
		}
		advertise := scheme + addr
		if cfg.WorkerAdvertise != nil {
			advertise = cfg.WorkerAdvertise(i, addr)
		}
		var ev enclave.EvidenceSource = enclave.SimulatedEvidence{Device: sim.NewDevice(sim.DeviceConfig{Measurement: cfg.Measurement, Now: cfg.Now})}
		if cfg.Evidence != nil {
			ev = cfg.Evidence(i)
		}
		p := providers[i%len(providers)]
		var backend enclave.Backend
		if cfg.Backend != nil {
			backend = cfg.Backend(i)
		}
		var models []string
		if cfg.Models != nil {
			models = cfg.Models(i)
		}
		var digests []proto.ModelDigest
		if cfg.ModelDigests != nil {
			digests = cfg.ModelDigests(i)
		}
		w, err := enclave.New(enclave.Config{
			ID:                fmt.Sprintf("%s-worker-%d", ev.Kind(), i+1),
			GatewayURL:        n.GatewayURL,
			AdvertiseURL:      advertise,
			Credential:        p.cred,
			ProviderKey:       p.key,
			GatewayTLS:        gatewayTLS,
			InsecurePlainHTTP: cfg.InsecurePlainHTTP,
			Region:            "local",
			Models:            models,
			ModelDigests:      digests,
			Backend:           backend,
			Evidence:          ev,
			Now:               cfg.Now,
			ReattestInterval:  cmp.Or(gcfg.ReattestInterval, gateway.DefaultReattestInterval),
			Logger:            cfg.Logger.With(slog.String("component", "worker")),
			KeyLog:            cfg.KeyLog,
		})
		if err != nil {
			ln.Close()
			n.Close()
			return nil, err
		}
		n.Workers = append(n.Workers, w)
		n.WorkerAddrs = append(n.WorkerAddrs, addr)
		n.goRun(func() error { return w.Run(runCtx, ln) })
	}

	deadline := time.Now().Add(cfg.RegisterTimeout)
	for _, w := range n.Workers {
		for w.Bundle() == nil {
			if time.Now().After(deadline) {
				n.Close()
				return nil, fmt.Errorf("devnet: workers did not register within %v", cfg.RegisterTimeout)
			}
			select {
			case <-ctx.Done():
				n.Close()
				return nil, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return n, nil
}

// ClientConfig returns c with what a client of this network needs (the
// transparency log's key too, unless c pins one or skips the log): the
// gateway's URL, the tenant's credential, and trust in the gateway's
// development certificate (or, with Config.InsecurePlainHTTP, plain
// HTTP).
func (n *Network) ClientConfig(c client.Config) client.Config {
	c.GatewayURL, c.Credential = n.GatewayURL, n.TenantCredential
	if c.LogKey == "" && !c.InsecureSkipLog {
		c.LogKey = n.LogKey
	}
	if n.plain {
		c.InsecurePlainHTTP = true
	} else {
		c.GatewayCA = n.GatewayCA
	}
	return c
}

func (n *Network) goRun(f func() error) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := f(); err != nil {
			n.mu.Lock()
			n.errs = append(n.errs, err)
			n.mu.Unlock()
		}
	}()
}

// Close stops the workers and the gateway and waits for them, returning
// any error they stopped with.
func (n *Network) Close() error {
	n.cancel()
	n.wg.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	return errors.Join(n.errs...)
}

// SampleDocument is the demo's document: an original article written for
// this repository, used by `sealgate demo` and the summarizer's tests.
//
//go:embed sample.txt
var SampleDocument string
