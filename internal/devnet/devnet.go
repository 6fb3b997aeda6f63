// Package devnet runs a whole sealgate network in one process on loopback
// sockets: a gateway with its SQLite store and workers on the simulated
// TEE. It backs `sealgate demo` and the end-to-end tests.
//
// INSECURE: the workers use the simulated TEE and the gateway admits them
// under policy.InsecureSimulated. Nothing here is for production.
package devnet

import (
	"context"
	"crypto/ed25519"
	_ "embed"
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
	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/gateway"
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
	// Now is every component's clock. Nil means time.Now.
	Now func() time.Time
	// KeyLog receives the workers' keys and secrets. INSECURE: tests only.
	KeyLog io.Writer
	// RegisterTimeout bounds the wait for every worker to register. Zero
	// means 30 seconds.
	RegisterTimeout time.Duration
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
	gw, err := gateway.New(runCtx, gateway.Config{
		DBPath:          filepath.Join(cfg.Dir, "gateway.db"),
		AdmissionPolicy: cfg.AdmissionPolicy,
		VerifyOptions:   cfg.VerifyOptions,
		Now:             cfg.Now,
		Logger:          cfg.Logger.With(slog.String("component", "gateway")),
	})
	if err != nil {
		cancel()
		return nil, err
	}
	n.Gateway = gw
	n.AnchorKey = gw.AnchorPublicKey()
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		gw.Close()
		return nil, err
	}
	n.GatewayURL = "http://" + gln.Addr().String()
	n.goRun(func() error { return gw.Serve(runCtx, gln) })

	for i := range cfg.Workers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			n.Close()
			return nil, err
		}
		addr := ln.Addr().String()
		advertise := "http://" + addr
		if cfg.WorkerAdvertise != nil {
			advertise = cfg.WorkerAdvertise(i, addr)
		}
		var ev enclave.EvidenceSource = enclave.SimulatedEvidence{Device: sim.NewDevice(sim.DeviceConfig{Measurement: cfg.Measurement, Now: cfg.Now})}
		if cfg.Evidence != nil {
			ev = cfg.Evidence(i)
		}
		w, err := enclave.New(enclave.Config{
			ID:           fmt.Sprintf("%s-worker-%d", ev.Kind(), i+1),
			GatewayURL:   n.GatewayURL,
			AdvertiseURL: advertise,
			Evidence:     ev,
			Now:          cfg.Now,
			Logger:       cfg.Logger.With(slog.String("component", "worker")),
			KeyLog:       cfg.KeyLog,
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
