package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/anchortest"
	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/attestation/nvgpu/nvgputest"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/internal/vectors"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// binary is the sealgate command built once for the scripted runs;
// testRootsBinary is the same with the sealgatetestroots tag, which lets
// `attest verify` pin fixture roots.
var binary, testRootsBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sealgate-cli-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "sealgate")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	testRootsBinary = filepath.Join(dir, "sealgate-testroots")
	if out, err := exec.Command("go", "build", "-tags", "sealgatetestroots", "-o", testRootsBinary, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func sealgate(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runBinary(t, binary, stdin, args...)
}

func runBinary(t *testing.T, bin, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func TestCLIScripted(t *testing.T) {
	network, err := devnet.Start(context.Background(), devnet.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	cred, ca := networkFiles(t, network)
	gw := network.GatewayURL
	doc := filepath.Join(t.TempDir(), "doc.txt")
	if err := os.WriteFile(doc, []byte(devnet.SampleDocument), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty.txt")
	os.WriteFile(empty, nil, 0o600)

	tests := []struct {
		name       string
		stdin      string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no command", wantCode: 2, wantStderr: "usage: sealgate"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantStderr: `unknown command "frobnicate"`},
		{name: "version", args: []string{"version"}, wantStdout: "sealgate "},
		{name: "summarize a file", args: []string{"summarize", "-gateway", gw, "-credential-file", cred, "-gateway-ca", ca, "-insecure-allow-simulated", "-sentences", "2", doc},
			wantStdout: "patient records", wantStderr: "INSECURE"},
		{name: "summarize stdin", stdin: devnet.SampleDocument, args: []string{"summarize", "-gateway", gw, "-credential-file", cred, "-gateway-ca", ca, "-insecure-allow-simulated", "-"},
			wantStdout: "confidential computing"},
		{name: "default policy refuses simulated workers", args: []string{"summarize", "-gateway", gw, "-credential-file", cred, "-gateway-ca", ca, doc},
			wantCode: 3, wantStderr: "allow_simulated"},
		{name: "gateway unreachable", args: []string{"summarize", "-gateway", "https://127.0.0.1:1", "-credential-file", cred, "-insecure-allow-simulated", doc},
			wantCode: 1, wantStderr: "listing candidates"},
		{name: "empty input", args: []string{"summarize", "-gateway", gw, "-credential-file", cred, "-gateway-ca", ca, "-insecure-allow-simulated", empty},
			wantCode: 1, wantStderr: "input is empty"},
		{name: "missing file", args: []string{"summarize", "-gateway", gw, "-credential-file", cred, "-gateway-ca", ca, "-insecure-allow-simulated", "/nonexistent/doc.txt"},
			wantCode: 1, wantStderr: "no such file"},
		{name: "two files", args: []string{"summarize", "-gateway", gw, "-credential-file", cred, "-gateway-ca", ca, doc, doc}, wantCode: 2, wantStderr: "one input file"},
		{name: "bad ratio travels sealed", args: []string{"summarize", "-gateway", gw, "-credential-file", cred, "-gateway-ca", ca, "-insecure-allow-simulated", "-ratio", "7", doc},
			wantCode: 5, wantStderr: "ratio"},
		{name: "translate needs languages", args: []string{"translate", "-gateway", gw, "-credential-file", cred, "-gateway-ca", ca, doc}, wantCode: 2, wantStderr: "-from and -to"},
		{name: "gateway flags conflict", args: []string{"gateway", "-policy", "p.json", "-insecure-allow-simulated"}, wantCode: 2, wantStderr: "exclusive"},
		{name: "bad flag", args: []string{"summarize", "-nope"}, wantCode: 2, wantStderr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sealgate(t, tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			if !strings.Contains(strings.ToLower(r.stdout), strings.ToLower(tt.wantStdout)) {
				t.Errorf("stdout %q does not contain %q", r.stdout, tt.wantStdout)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.wantStderr)
			}
		})
	}
}

func TestCLIJSONNamesTheVerifiedWorker(t *testing.T) {
	network, err := devnet.Start(context.Background(), devnet.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	cred, ca := networkFiles(t, network)
	r := sealgate(t, devnet.SampleDocument, "summarize", "-gateway", network.GatewayURL, "-credential-file", cred, "-gateway-ca", ca, "-insecure-allow-simulated", "-json", "-sentences", "3")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var out struct {
		Text   string
		Worker struct {
			ID, Kind    string
			Simulated   bool
			Measurement string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v in %s", err, r.stdout)
	}
	if out.Text == "" || out.Worker.Kind != "sim" || !out.Worker.Simulated || !strings.HasPrefix(out.Worker.ID, "sim-worker-") || len(out.Worker.Measurement) != 96 {
		t.Fatalf("json %+v", out)
	}
}

// Without Apertium in the worker, translate fails with a message naming
// the Debian package; with it, it translates.
func TestCLITranslate(t *testing.T) {
	_, lookErr := exec.LookPath("apertium")
	network, err := devnet.Start(context.Background(), devnet.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	cred, ca := networkFiles(t, network)
	r := sealgate(t, "The house is red.", "translate", "-gateway", network.GatewayURL, "-credential-file", cred, "-gateway-ca", ca, "-insecure-allow-simulated", "-from", "en", "-to", "es")
	switch {
	case lookErr != nil && (r.code != 5 || !strings.Contains(r.stderr, "apertium-eng-spa")):
		t.Fatalf("exit %d stderr %q, want exit 5 naming apertium-eng-spa", r.code, r.stderr)
	case lookErr == nil && r.code == 0 && !strings.Contains(strings.ToLower(r.stdout), "casa"):
		t.Fatalf("translation %q does not contain casa", r.stdout)
	case lookErr == nil && r.code != 0 && !strings.Contains(r.stderr, "apertium-eng-spa"):
		t.Fatalf("exit %d stderr %q, want a translation or a message naming apertium-eng-spa", r.code, r.stderr)
	}
}

func TestCLIAttest(t *testing.T) {
	network, err := devnet.Start(context.Background(), devnet.Config{Dir: t.TempDir(), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	bundle := network.Workers[0].Bundle()
	network.Close()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.bundle", bundle)
	sigFlip := append([]byte{}, bundle...)
	sigFlip[len(sigFlip)-proto.AnchorSize-2-1-4-1] ^= 1 // the report signature's last byte: before an empty collateral, the GPU count and the anchor
	tampered := write("tampered.bundle", sigFlip)
	truncated := write("truncated.bundle", bundle[:len(bundle)/2])

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
	}{
		{"valid simulated", []string{"attest", "verify", "-insecure-allow-simulated", good}, 0, "verified: sim evidence"},
		{"default policy refuses simulated", []string{"attest", "verify", good}, 16, "FAIL tee kind"},
		{"tampered signature", []string{"attest", "verify", "-insecure-allow-simulated", tampered}, 12, "FAIL sim report"},
		{"truncated", []string{"attest", "verify", "-insecure-allow-simulated", truncated}, 10, "FAIL bundle"},
		{"too old", []string{"attest", "verify", "-insecure-allow-simulated", "-at", time.Now().Add(time.Hour).Format(time.RFC3339), good}, 18, "FAIL freshness"},
		{"bad time", []string{"attest", "verify", "-at", "yesterday", good}, 2, ""},
		{"no bundle", []string{"attest", "verify"}, 2, ""},
		{"missing file", []string{"attest", "verify", filepath.Join(dir, "nope")}, 1, ""},
		{"inspect", []string{"attest", "inspect", good}, 0, "INSECURE simulated TEE"},
		{"inspect truncated", []string{"attest", "inspect", truncated}, 10, ""},
		{"unknown subcommand", []string{"attest", "frob"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sealgate(t, "", tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.stdout, tt.wantStdout) {
				t.Fatalf("exit %d, want %d; stdout %q does not contain %q; stderr %s", r.code, tt.wantCode, r.stdout, tt.wantStdout, r.stderr)
			}
		})
	}

	r := sealgate(t, "", "attest", "verify", "-json", good)
	var rec struct {
		OK     bool
		Code   string
		Checks []struct {
			Check string
			OK    bool
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil || rec.OK || rec.Code != "policy" || len(rec.Checks) != 2 {
		t.Fatalf("json audit %+v (%v) from %s", rec, err, r.stdout)
	}
}

// startGateway runs `sealgate gateway` until it logs that it listens, and
// returns that log line's anchor public key and a stop function.
func startGateway(t *testing.T, dir string) (string, func()) {
	t.Helper()
	cmd := exec.Command(binary, "gateway", "-listen", "127.0.0.1:0", "-db", filepath.Join(dir, "gw.db"),
		"-anchor-key-file", filepath.Join(dir, "anchor.key"), "-admin-credential-file", filepath.Join(dir, "admin.cred"),
		"-dev-tls-dir", filepath.Join(dir, "tls"), "-insecure-allow-simulated")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	dec := json.NewDecoder(stderr)
	for {
		var line struct {
			Msg       string `json:"msg"`
			AnchorKey string `json:"anchor_public_key"`
		}
		if err := dec.Decode(&line); err != nil {
			stop()
			t.Fatalf("gateway exited before listening: %v", err)
		}
		if line.Msg == "gateway listening" {
			go io.Copy(io.Discard, stderr)
			return line.AnchorKey, stop
		}
	}
}

func TestCLIGatewayKeepsItsAnchorKey(t *testing.T) {
	dir := t.TempDir()
	first, stop := startGateway(t, dir)
	stop()
	info, err := os.Stat(filepath.Join(dir, "anchor.key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("anchor key file: %v, mode %v; want mode 0600", err, info.Mode())
	}
	second, stop := startGateway(t, dir)
	stop()
	if first == "" || first != second {
		t.Fatalf("anchor public key %q after restart, want %q", second, first)
	}
	os.WriteFile(filepath.Join(dir, "anchor.key"), []byte("not a key\n"), 0o600)
	r := sealgate(t, "", "gateway", "-listen", "127.0.0.1:0", "-db", filepath.Join(dir, "gw.db"), "-anchor-key-file", filepath.Join(dir, "anchor.key"),
		"-admin-credential-file", filepath.Join(dir, "admin.cred"), "-dev-tls-dir", filepath.Join(dir, "tls"))
	if r.code != 1 || !strings.Contains(r.stderr, "base64 Ed25519 seed") {
		t.Fatalf("corrupt key file: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestCLIVectors drives every attestation vector through `sealgate attest
// verify` and checks the exit code of its verdict class.
func TestCLIVectors(t *testing.T) {
	anchor := base64.StdEncoding.EncodeToString(anchortest.PublicKey())
	for _, v := range vectors.Load(t) {
		t.Run(v.Kind+"/"+v.Name, func(t *testing.T) {
			args := []string{"attest", "verify", "-policy", v.PolicyPath, "-at", v.VerifyAt.Format(time.RFC3339), "-anchor-key", anchor}
			if v.RootsPEM != "" {
				args = append(args, "-insecure-test-roots-kind", v.RootsKind, "-insecure-test-roots", v.RootsPEM)
			}
			r := runBinary(t, testRootsBinary, "", append(args, v.Path)...)
			want := 0
			if v.Want.Code != "ok" {
				want = attestExit[check.Code(v.Want.Code)]
			}
			if r.code != want {
				t.Fatalf("exit %d, want %d (%s on %q)\n%s%s", r.code, want, v.Want.Code, v.Want.Field, r.stdout, r.stderr)
			}
		})
	}
}

func TestProductionBuildHasNoTestRoots(t *testing.T) {
	r := sealgate(t, "", "attest", "verify", "-insecure-test-roots", "x.pem", "x.bundle")
	if r.code != 2 || !strings.Contains(r.stderr, "flag provided but not defined") {
		t.Fatalf("production build accepted -insecure-test-roots: exit %d %s", r.code, r.stderr)
	}
}

func TestCLIInspectHardware(t *testing.T) {
	dir := vectors.Dir(t)
	for _, tt := range []struct{ file, want string }{
		{"tdx/valid.bundle", "mrtd          a34c97df"},
		{"tdx/recorded-intel-spr-e4.bundle", "tdx collateral  tcb info"},
		{"snp/recorded-milan.bundle", "policy        debug true"},
	} {
		r := sealgate(t, "", "attest", "inspect", filepath.Join(dir, tt.file))
		if r.code != 0 || !strings.Contains(r.stdout, tt.want) {
			t.Errorf("inspect %s: exit %d, stdout lacks %q:\n%s%s", tt.file, r.code, tt.want, r.stdout, r.stderr)
		}
	}
	r := sealgate(t, "", "attest", "inspect", filepath.Join(dir, "tdx/truncated-quote.bundle"))
	if r.code != 10 {
		t.Errorf("truncated quote: exit %d, want 10\n%s", r.code, r.stderr)
	}
}

func TestCLIInspectGPU(t *testing.T) {
	b := proto.Bundle{Kind: "sim", Keys: proto.WorkerKeys{Signing: make([]byte, proto.SigningKeySize)}}
	k, err := seal.GenerateKey(proto.KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	b.Keys.HPKE = []proto.HPKEKey{k.Public()}
	b.GPU = [][]byte{nvgputest.New("cli inspect", time.Now()).Evidence(proto.GPUNonce(b.Nonce, 0))}
	b.Report = sim.NewDevice(sim.DeviceConfig{}).Report(b.ReportData())
	enc, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gpu.bundle")
	os.WriteFile(path, enc, 0o600)
	r := sealgate(t, "", "attest", "inspect", path)
	if r.code != 0 || !strings.Contains(r.stdout, "gpu 0           SPDM report") || !strings.Contains(r.stdout, "cc mode true") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// networkFiles writes the devnet's tenant credential and gateway
// certificate to files, as a user of the CLI would hold them.
func networkFiles(t *testing.T, network *devnet.Network) (cred, ca string) {
	t.Helper()
	dir := t.TempDir()
	cred, ca = filepath.Join(dir, "tenant.cred"), filepath.Join(dir, "gateway.pem")
	if err := os.WriteFile(cred, []byte(network.TenantCredential+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, network.GatewayCA, 0o600); err != nil {
		t.Fatal(err)
	}
	return cred, ca
}
