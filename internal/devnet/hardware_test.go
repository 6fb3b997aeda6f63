package devnet_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	test "github.com/google/go-sev-guest/testing"
	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/nvgpu/nvgputest"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/snp"
	"github.com/sealgate/sealgate/attestation/snp/snptest"
	"github.com/sealgate/sealgate/attestation/tdx/tdxtest"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/proto"
)

// fixtureTDX is a TEST DOUBLE for a TDX guest: it signs quotes with the
// tdxtest fixture PKI for whatever REPORT_DATA the worker asks for.
type fixtureTDX struct{ f *tdxtest.Fixture }

func (fixtureTDX) Kind() string { return policy.KindTDX }

func (s fixtureTDX) Evidence(_ context.Context, rd [proto.ReportDataSize]byte) ([]byte, []byte, error) {
	return s.f.Evidence(rd)
}

// tdxPolicy accepts exactly the fixture TD.
func tdxPolicy(mrtd [48]byte) *policy.Policy {
	return &policy.Policy{
		Version: policy.Version, Name: "e2e-tdx", TEEKinds: []string{policy.KindTDX},
		MaxEvidenceAge: policy.Duration{Duration: 15 * time.Minute},
		TDX:            &policy.TDXRules{Measurements: []policy.TDXMeasurement{{MRTD: hex.EncodeToString(mrtd[:])}}},
	}
}

// TestEndToEndTDX runs the whole path with workers presenting synthetic
// TDX evidence (signed by fixture roots, bound to their keys and to the
// gateway's time anchor): the gateway admits them under its TDX policy and
// the client verifies them under its own. A client whose policy names
// another TD refuses them.
func TestEndToEndTDX(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fx, err := tdxtest.New("sealgate e2e tdx", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := attestation.Options{TDXRoots: fx.PKI.Roots()}
	pol := tdxPolicy(fx.TD.MRTD)
	network, clientOpts, res := hardwareRun(t, ctx, pol, roots, fixtureTDX{fx})
	if res.Worker.Kind != policy.KindTDX || res.Worker.Simulated || res.Worker.Measurement != hex.EncodeToString(fx.TD.MRTD[:]) || res.Text == "" {
		t.Fatalf("worker %+v, text %q", res.Worker, res.Text)
	}

	// Without the gateway's anchor key pinned, the evidence's age is unknown.
	unanchored, _ := client.New(network.ClientConfig(client.Config{Policy: pol, AttestationOptions: roots}))
	_, err = unanchored.Summarize(ctx, "One sentence. Two sentences.", client.SummarizeOptions{})
	if attestation.CodeOf(firstRefusal(t, err)) != attestation.CodeStale {
		t.Fatalf("err = %v, want a stale refusal without a pinned anchor key", err)
	}

	// A client policy naming another TD refuses both workers.
	strict := tdxPolicy(tdxtest.Measurement("another td"))
	refusing, _ := client.New(network.ClientConfig(client.Config{Policy: strict, AttestationOptions: clientOpts}))
	_, err = refusing.Summarize(ctx, "One sentence. Two sentences.", client.SummarizeOptions{})
	var ae *attestation.Error
	if !errors.Is(err, client.ErrNoCandidate) || !errors.As(err, &ae) || ae.Code != attestation.CodePolicy || ae.Field != "mrtd" {
		t.Fatalf("err = %v, want a policy refusal on mrtd", err)
	}
}

// TestEndToEndGatewayRefusesUnboundTDX: a worker whose quote does not bind
// its keys (recorded evidence, or a compromised guest replaying another's
// quote) is never admitted.
func TestEndToEndGatewayRefusesUnboundTDX(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fx, err := tdxtest.New("sealgate e2e tdx", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	_, err = devnet.Start(ctx, devnet.Config{
		Dir: t.TempDir(), Workers: 1, AdmissionPolicy: tdxPolicy(fx.TD.MRTD), VerifyOptions: attestation.Options{TDXRoots: fx.PKI.Roots()},
		Evidence:        func(int) enclave.EvidenceSource { return replayedTDX{fx} },
		Logger:          jsonLogger(&logs),
		RegisterTimeout: 2 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "did not register") {
		t.Fatalf("devnet.Start = %v, want the worker refused", err)
	}
	if !strings.Contains(string(logs.Bytes()), "report_data") {
		t.Fatalf("gateway logs do not name the binding failure:\n%s", logs.Bytes())
	}
}

// replayedTDX is a TEST DOUBLE for a guest that presents a quote made for
// other REPORT_DATA than the worker's keys and nonce.
type replayedTDX struct{ f *tdxtest.Fixture }

func (replayedTDX) Kind() string { return policy.KindTDX }

func (s replayedTDX) Evidence(context.Context, [proto.ReportDataSize]byte) ([]byte, []byte, error) {
	return s.f.Evidence([proto.ReportDataSize]byte{1, 2, 3})
}

// firstRefusal returns the first attestation refusal inside a
// NoCandidateError.
func firstRefusal(t *testing.T, err error) error {
	t.Helper()
	var nc *client.NoCandidateError
	if !errors.As(err, &nc) || len(nc.Refusals) == 0 {
		t.Fatalf("err = %v, want a NoCandidateError with refusals", err)
	}
	return nc.Refusals[0].Err
}

// fixtureSNP is a TEST DOUBLE for an SEV-SNP guest: it signs reports with
// the snptest fixture VCEK for whatever REPORT_DATA the worker asks for.
type fixtureSNP struct {
	tb     testing.TB
	signer *test.AmdSigner
	coll   []byte
}

func (fixtureSNP) Kind() string { return policy.KindSNP }

func (s fixtureSNP) Evidence(_ context.Context, rd [proto.ReportDataSize]byte) ([]byte, []byte, error) {
	return snptest.BuildReport(s.tb, s.signer, snptest.ReportSpec{ReportData: rd}), s.coll, nil
}

// TestEndToEndSNP is TestEndToEndTDX for SEV-SNP workers.
func TestEndToEndSNP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	signer := snptest.NewSigner(t, nil)
	crl := snptest.BuildCRL(t, signer.Ark, signer.Keys.Ark, time.Now().Add(30*24*time.Hour))
	ev := fixtureSNP{tb: t, signer: signer, coll: snptest.Encode(t, snptest.Chain(signer, snp.KeyVCEK, crl))}
	roots := attestation.Options{SNPRoots: snptest.Roots(signer)}
	pol := snptest.Policy()
	network, clientOpts, res := hardwareRun(t, ctx, pol, roots, ev)
	if res.Worker.Kind != policy.KindSNP || res.Worker.Measurement != hex.EncodeToString(snptest.Measurement[:]) {
		t.Fatalf("worker %+v", res.Worker)
	}
	// A client pinning AMD's real roots refuses the fixture chain.
	amd := attestation.Options{AnchorKeys: clientOpts.AnchorKeys}
	refusing, _ := client.New(network.ClientConfig(client.Config{Policy: pol, AttestationOptions: amd}))
	_, err := refusing.Summarize(ctx, "One sentence. Two sentences.", client.SummarizeOptions{})
	if attestation.CodeOf(firstRefusal(t, err)) != attestation.CodeChain {
		t.Fatalf("err = %v, want a chain refusal under AMD's roots", err)
	}
}

// hardwareRun starts two workers on ev under pol (fixture roots in roots)
// and summarizes the sample document through a client that pins the
// gateway's anchor key. It returns the network (closed at the test's end),
// the client's attestation options and the result.
func hardwareRun(t *testing.T, ctx context.Context, pol *policy.Policy, roots attestation.Options, ev enclave.EvidenceSource) (*devnet.Network, attestation.Options, *client.Result) {
	t.Helper()
	network, err := devnet.Start(ctx, devnet.Config{
		Dir: t.TempDir(), Workers: 2, AdmissionPolicy: pol, VerifyOptions: roots,
		Evidence: func(int) enclave.EvidenceSource { return ev },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { network.Close() })
	clientOpts := roots
	clientOpts.AnchorKeys = []ed25519.PublicKey{network.AnchorKey}
	c, err := client.New(network.ClientConfig(client.Config{Policy: pol, AttestationOptions: clientOpts}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Summarize(ctx, devnet.SampleDocument, client.SummarizeOptions{Sentences: 2})
	if err != nil {
		t.Fatal(err)
	}
	return network, clientOpts, res
}

// fixtureTDXWithGPUs is a TEST DOUBLE for a TDX guest with GPUs in CC
// mode: GPU i's evidence is made for proto.GPUNonce(nonce, i) unless
// wrongNonce is set. (A quote that binds other GPU evidence than the
// bundle carries fails the REPORT_DATA binding, which
// TestEndToEndGatewayRefusesUnboundTDX shows.)
type fixtureTDXWithGPUs struct {
	tdx        fixtureTDX
	gpu        *nvgputest.Fixture
	gpus       int
	wrongNonce bool
}

func (f fixtureTDXWithGPUs) Kind() string { return policy.KindTDX }

func (f fixtureTDXWithGPUs) Evidence(ctx context.Context, rd [proto.ReportDataSize]byte) ([]byte, []byte, error) {
	return f.tdx.Evidence(ctx, rd)
}

func (f fixtureTDXWithGPUs) GPUEvidence(_ context.Context, nonce [proto.NonceSize]byte) ([][]byte, error) {
	var out [][]byte
	for i := range f.gpus {
		n := proto.GPUNonce(nonce, i)
		if f.wrongNonce {
			n = proto.GPUNonce(nonce, i+1)
		}
		out = append(out, f.gpu.Evidence(n))
	}
	return out, nil
}

// TestEndToEndGPU runs TDX workers with two GPUs each under a policy that
// requires GPU evidence: the client verifies every GPU's report, chain,
// OCSP and RIMs and its nonce derivation; workers without GPU evidence, or
// with GPU evidence for another nonce, are refused.
func TestEndToEndGPU(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	now := time.Now()
	fx, err := tdxtest.New("sealgate e2e tdx", now)
	if err != nil {
		t.Fatal(err)
	}
	gpu := nvgputest.New("sealgate e2e gpu", now)
	roots := attestation.Options{TDXRoots: fx.PKI.Roots(), GPURoots: gpu.PKI.DeviceRoots(), RIMRoots: gpu.PKI.RIMRoots()}
	pol := tdxPolicy(fx.TD.MRTD)
	rules := nvgputest.DefaultRules()
	pol.RequireGPU, pol.GPU = true, &rules

	_, _, res := hardwareRun(t, ctx, pol, roots, fixtureTDXWithGPUs{tdx: fixtureTDX{fx}, gpu: gpu, gpus: 2})
	if res.Worker.Kind != policy.KindTDX || res.Text == "" {
		t.Fatalf("worker %+v", res.Worker)
	}

	for _, tt := range []struct {
		name      string
		ev        enclave.EvidenceSource
		wantCode  attestation.Code
		wantField string
	}{
		{"no gpu evidence", fixtureTDX{fx}, attestation.CodePolicy, "gpu evidence"},
		{"gpu evidence for another nonce", fixtureTDXWithGPUs{tdx: fixtureTDX{fx}, gpu: gpu, gpus: 2, wrongNonce: true}, attestation.CodeBinding, "gpu[0] gpu nonce"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The gateway admits under a policy without GPU rules; the
			// client's own policy requires GPUs and refuses.
			cpuOnly := tdxPolicy(fx.TD.MRTD)
			network, err := devnet.Start(ctx, devnet.Config{Dir: t.TempDir(), Workers: 1, AdmissionPolicy: cpuOnly, VerifyOptions: roots,
				Evidence: func(int) enclave.EvidenceSource { return tt.ev }})
			if err != nil {
				t.Fatal(err)
			}
			defer network.Close()
			opts := roots
			opts.AnchorKeys = []ed25519.PublicKey{network.AnchorKey}
			c, _ := client.New(network.ClientConfig(client.Config{Policy: pol, AttestationOptions: opts}))
			_, err = c.Summarize(ctx, "One sentence. Two sentences.", client.SummarizeOptions{})
			var ae *attestation.Error
			if !errors.As(firstRefusal(t, err), &ae) || ae.Code != tt.wantCode || !strings.Contains(ae.Field, tt.wantField) {
				t.Fatalf("err = %v, want %s on %q", err, tt.wantCode, tt.wantField)
			}
		})
	}
}
