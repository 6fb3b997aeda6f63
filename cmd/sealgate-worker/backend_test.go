package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/proto"
)

func TestRunRefusesBadBackendFlags(t *testing.T) {
	dir := t.TempDir()
	base := append([]string{"-gateway", "https://127.0.0.1:1", "-id", "w", "-tee", "sim", "-insecure-simulated-tee"}, secrets(t)...)
	openai := []string{"-backend", "openai", "-upstream", "http://127.0.0.1:8000/v1", "-model", "llama3.1:8b"}
	digest := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown backend", []string{"-backend", "vllm"}, `-backend: found "vllm", want builtin or openai`},
		{"openai without upstream", []string{"-backend", "openai", "-model", "m"}, "-upstream: found none"},
		{"openai without model", []string{"-backend", "openai", "-upstream", "http://127.0.0.1:8000/v1"}, "-model: found none"},
		{"non-loopback upstream", []string{"-backend", "openai", "-upstream", "http://10.1.2.3:8000/v1", "-model", "m"}, `-upstream: found host "10.1.2.3", want a loopback host`},
		{"upstream with a password", []string{"-backend", "openai", "-upstream", "http://u:pw@127.0.0.1:8000/v1", "-model", "m"}, "-upstream: found a URL with user information"},
		{"bad model name", []string{"-backend", "openai", "-upstream", "http://127.0.0.1:8000/v1", "-model", "a b"}, "-model: found byte 0x20"},
		{"model with builtin", []string{"-model", "m"}, `-model: found "m" with -backend builtin`},
		{"model digest with builtin", []string{"-model-digest", digest}, "-model-digest: found"},
		{"both model flags", append(openai, "-model-dir", dir, "-model-digest", digest), "found both"},
		{"bad model digest", append(openai, "-model-digest", "sha256:abc"), `-model-digest: found "sha256:abc"`},
		{"uppercase model digest", append(openai, "-model-digest", strings.ToUpper(digest)), "-model-digest"},
		{"missing model dir", append(openai, "-model-dir", filepath.Join(dir, "nope")), "-model-dir: model directory"},
		{"empty model dir", append(openai, "-model-dir", dir), "holds no files"},
		{"size not a number", []string{"-max-input-bytes", "lots"}, `-max-input-bytes: found "lots" for *`},
		{"size zero", []string{"-max-input-bytes", "chat=0"}, `found "0" for chat`},
		{"size too large", []string{"-max-input-bytes", "17MiB"}, `found "17MiB"`},
		{"task twice", []string{"-max-input-bytes", "chat=1KiB,chat=2KiB"}, `found "chat" twice`},
		{"bad task name", []string{"-max-input-bytes", "Chat=1KiB"}, `-max-input-bytes: found task "Chat"`},
		{"request timeout", []string{"-request-timeout", "0s"}, "-request-timeout: found 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(append(append([]string{}, base...), tt.args...))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Fatalf("error %q quotes the upstream's password", err)
			}
		})
	}
}

func TestParseInputLimits(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]int
		largest int
	}{
		{"", nil, 0},
		{"4096", map[string]int{"*": 4096}, 4096},
		{"2MiB", map[string]int{"*": 2 << 20}, 2 << 20},
		{"chat=256KiB, summarize=4MiB,*=1MiB", map[string]int{"chat": 256 << 10, "summarize": 4 << 20, "*": 1 << 20}, 4 << 20},
		{"16MiB", nil, 0}, // refused: above proto.MaxRequestPayload
	}
	for _, tt := range tests {
		got, largest, err := parseInputLimits(tt.in)
		if tt.in == "16MiB" {
			if err == nil {
				t.Errorf("%q: accepted a limit above %d", tt.in, proto.MaxRequestPayload)
			}
			continue
		}
		if err != nil || largest != tt.largest || len(got) != len(tt.want) {
			t.Errorf("%q: %v, %d, %v; want %v, %d", tt.in, got, largest, err, tt.want, tt.largest)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%q: %s = %d, want %d", tt.in, k, got[k], v)
			}
		}
	}
}

func TestBuildBackend(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.gguf"), []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := enclave.DigestModelDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := buildBackend(context.Background(), backendFlags{kind: "openai", upstream: "http://localhost:11434", model: "llama3.1:8b", modelDir: dir, maxInput: "chat=64KiB"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.backend.(*enclave.OpenAI); !ok {
		t.Fatalf("backend %T, want *enclave.OpenAI", s.backend)
	}
	if len(s.digests) != 1 || s.digests[0] != (proto.ModelDigest{Name: "llama3.1:8b", SHA256: want.SHA256}) {
		t.Fatalf("digests %v", s.digests)
	}
	if len(s.advertise) != 1 || s.advertise[0] != "llama3.1:8b" || s.limits["chat"] != 64<<10 {
		t.Fatalf("advertise %v, limits %v", s.advertise, s.limits)
	}
	s, err = buildBackend(context.Background(), backendFlags{kind: "openai", upstream: "http://127.0.0.1:8000/v1", model: "m", modelDigest: "sha256:" + strings.Repeat("0f", 32)}, log)
	if err != nil || len(s.digests) != 1 || s.digests[0].SHA256[0] != 0x0f || s.digests[0].Name != "m" {
		t.Fatalf("digest flag: %v, %v", s, err)
	}
	s, err = buildBackend(context.Background(), backendFlags{kind: "builtin", maxInput: "2MiB"}, log)
	if err != nil || s.backend != (enclave.Builtin{MaxInputBytes: 2 << 20}) || s.digests != nil || s.advertise != nil {
		t.Fatalf("builtin: %+v, %v", s, err)
	}

	var printed string
	if err := printModelDigest(context.Background(), dir, func(s string) { printed = s }); err != nil || printed != proto.FormatModelDigest(want.SHA256) {
		t.Fatalf("printed %q, %v", printed, err)
	}
}
