package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/check"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/internal/devnet"
)

// TestCLIWorkers runs `sealgate workers` against a devnet of two simulated
// workers: accepted under the insecure policy, refused under the default
// one, which accepts hardware TEEs only.
func TestCLIWorkers(t *testing.T) {
	network, err := devnet.Start(context.Background(), devnet.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	cred, ca := networkFiles(t, network)
	conn := []string{"workers", "-gateway", network.GatewayURL, "-credential-file", cred, "-gateway-ca", ca}

	t.Run("table", func(t *testing.T) {
		r := sealgate(t, "", append(conn, "-insecure-allow-simulated")...)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "WORKER") || lines[3] != "2 verified, 0 refused, for task summarize" {
			t.Fatalf("want a header, two workers and a count:\n%s", r.stdout)
		}
		for _, l := range lines[1:3] {
			f := strings.Fields(l)
			if len(f) < 6 || !strings.HasPrefix(f[0], "sim-worker-") || f[2] != "sim" || f[3] != "ok" || len(f[5]) != measurementPrefix+len("…") {
				t.Errorf("worker line %q: want a sim worker, verdict ok and a measurement prefix", l)
			}
		}
		if !strings.Contains(r.stderr, "INSECURE") {
			t.Errorf("stderr %q: want the insecure policy's warning", r.stderr)
		}
	})

	t.Run("refused by the default policy", func(t *testing.T) {
		r := sealgate(t, "", conn...)
		if r.code != 3 {
			t.Fatalf("exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
		}
		if n := strings.Count(r.stdout, "REFUSED"); n != 2 || !strings.Contains(r.stdout, "allow_simulated: found simulated TEE evidence") || !strings.Contains(r.stdout, "0 verified, 2 refused") {
			t.Fatalf("want two REFUSED lines naming the allow_simulated check:\n%s", r.stdout)
		}
		if !strings.Contains(r.stderr, "no verified candidate: all 2 listed workers were refused") {
			t.Errorf("stderr %q", r.stderr)
		}
	})

	t.Run("json", func(t *testing.T) {
		r := sealgate(t, "", append(conn, "-insecure-allow-simulated", "-json")...)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		var out struct {
			Task              string
			Verified, Refused int
			Workers           []workerJSON
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("%v in %s", err, r.stdout)
		}
		if out.Task != "summarize" || out.Verified != 2 || out.Refused != 0 || len(out.Workers) != 2 {
			t.Fatalf("json %+v", out)
		}
		for _, w := range out.Workers {
			if w.Verdict != "ok" || w.Kind != "sim" || !w.Simulated || len(w.Measurement) != 96 || len(w.Evidence) != 64 ||
				w.EvidenceAgeSeconds == nil || *w.EvidenceAgeSeconds < 0 || len(w.ProviderKey) != 32 || w.Reason != "" {
				t.Errorf("worker %+v", w)
			}
		}
	})

	t.Run("json refused", func(t *testing.T) {
		r := sealgate(t, "", append(conn, "-json")...)
		var out struct{ Workers []workerJSON }
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 3 || len(out.Workers) != 2 {
			t.Fatalf("exit %d, %v, json %s", r.code, err, r.stdout)
		}
		for _, w := range out.Workers {
			if w.Verdict != "refused" || w.Code != string(check.CodePolicy) || w.Field == "" || w.Reason == "" || w.Measurement != "" {
				t.Errorf("worker %+v: want refused by policy, with a reason and no verified field", w)
			}
		}
	})

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"argument", []string{"extra"}, "takes no argument"},
		{"request-only flag", []string{"-k", "2"}, "flag provided but not defined: -k"},
		{"strict", []string{"-strict"}, "flag provided but not defined: -strict"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := sealgate(t, "", append(conn, tt.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, want 2; stderr %q lacks %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

// TestWorkerTable checks the table's columns with a frozen clock.
func TestWorkerTable(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := workerListing{
		Task: "summarize",
		Now:  now,
		Verified: []client.Worker{{
			ID: "w1", ProviderID: "acme", Kind: "tdx", Measurement: strings.Repeat("ab", 48),
			EvidenceTime: now.Add(-90 * time.Second), Region: "eu-west", Pool: "team-a",
		}},
		Refused: []client.Refusal{{WorkerID: "w2", Err: check.Fail(check.CodeStale, "evidence time", "2h old", "at most 10m")}},
	}
	var b strings.Builder
	if err := l.writeTable(&b); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"WORKER  PROVIDER  TEE  VERDICT  EVIDENCE AGE  MEASUREMENT        REGION   POOL    REASON\n" +
		"w1      acme      tdx  ok       1m30s         abababababababab…  eu-west  team-a  \n" +
		"w2      -         -    REFUSED  -             -                  -        -       attestation stale: evidence time: found 2h old, want at most 10m\n" +
		"1 verified, 1 refused, for task summarize\n"
	if b.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestWorkersExitCode: a listing with no verified candidate maps to exit 3
// whether the gateway listed none or all were refused.
func TestWorkersExitCode(t *testing.T) {
	for _, err := range []error{&client.NoCandidateError{}, &client.NoCandidateError{Reason: "all 2 listed workers were refused"}} {
		if !errors.Is(err, client.ErrNoCandidate) || exitCode(err) != 3 {
			t.Errorf("%v: exit %d, want 3", err, exitCode(err))
		}
	}
}
