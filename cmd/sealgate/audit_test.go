package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/store"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
	"github.com/sealgate/sealgate/translog"
)

func TestCLIAuditReplay(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	skey, vkey, _ := translog.GenerateKey("cli.test/log")
	signer, _ := translog.NewSigner(skey)
	dir := t.TempDir()
	network, err := devnet.Start(ctx, devnet.Config{Dir: dir, InsecurePlainHTTP: true, Gateway: func(c *gateway.Config) { c.LogKey = signer }})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	saved := filepath.Join(dir, "checkpoint")
	args := []string{"audit", "replay", "-quiet", "-log", network.GatewayURL, "-log-key", vkey}

	r := sealgate(t, "", append(args, "-save-checkpoint", saved)...)
	if r.code != 0 || !strings.Contains(r.stdout, `"summary"`) {
		t.Fatalf("honest log: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = sealgate(t, "", append(args, "-from-checkpoint", saved)...); r.code != 0 {
		t.Fatalf("from the saved checkpoint: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mirror := filepath.Join(dir, "mirror")
	if r = sealgate(t, "", "audit", "mirror", "-quiet", "-log", network.GatewayURL, "-log-key", vkey, "-dir", mirror); r.code != 0 || !strings.Contains(r.stdout, "entries added") {
		t.Fatalf("mirror: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = sealgate(t, "", "audit", "replay", "-quiet", "-log", mirror, "-log-key", vkey); r.code != 0 {
		t.Fatalf("replay of the mirror: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	_, other, _ := translog.GenerateKey("cli.test/log")
	if r = sealgate(t, "", "audit", "replay", "-quiet", "-log", network.GatewayURL, "-log-key", other); r.code != exitAuditLog {
		t.Fatalf("another key: exit %d, want %d\n%s%s", r.code, exitAuditLog, r.stdout, r.stderr)
	}

	// A dishonest gateway logs an admission whose evidence is not signed
	// by the simulated TEE's root, straight into its own log.
	st, err := store.Open(ctx, filepath.Join(dir, "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := translog.New(ctx, translog.Config{Storage: st.(translog.Storage), Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := seal.GenerateKey(proto.KEMMLKEM768X25519)
	b := proto.Bundle{Kind: policy.KindSim, Keys: proto.WorkerKeys{HPKE: []proto.HPKEKey{k.Public()}, Signing: make([]byte, 32)}}
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	b.Report = sim.NewDevice(sim.DeviceConfig{SigningKey: forger}).Report(b.ReportData())
	raw, _ := b.Marshal()
	_, prov, _ := ed25519.GenerateKey(rand.Reader)
	pol, _ := json.Marshal(policy.InsecureSimulated())
	e, coll, err := translog.NewEvidence(translog.KindAdmission, time.Now(), "forged", "acme", prov.Public().(ed25519.PublicKey),
		ed25519.Sign(prov, proto.EndorsementMessage("forged", b.KeysHash())), translog.PolicyHashOf(pol), raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, translog.Pending{Entry: e, Collateral: coll}); err != nil {
		t.Fatal(err)
	}
	if r = sealgate(t, "", "audit", "mirror", "-quiet", "-log", network.GatewayURL, "-log-key", vkey, "-dir", mirror); r.code != 0 || !strings.HasPrefix(r.stdout, "1 entries added") {
		t.Fatalf("incremental mirror: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = sealgate(t, "", "audit", "replay", "-quiet", "-log", mirror, "-log-key", vkey); r.code != exitAuditFindings {
		t.Fatalf("replay of the mirror with the forged entry: exit %d, want %d\n%s%s", r.code, exitAuditFindings, r.stdout, r.stderr)
	}
	r = sealgate(t, "", append(args, "-from-checkpoint", saved)...)
	if r.code != exitAuditFindings || !strings.Contains(r.stdout, `"worker_id":"forged","time"`) || !strings.Contains(r.stdout, `"finding":"evidence_refused"`) {
		t.Fatalf("dishonest entry: exit %d, want %d\n%s%s", r.code, exitAuditFindings, r.stdout, r.stderr)
	}
}
