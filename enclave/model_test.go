package enclave

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/proto"
)

// writeTree creates files (relative path to content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// manifestDigest computes a model directory digest from SPEC.md §10.3's
// words, for files given in manifest order.
func manifestDigest(entries ...[2]string) [32]byte {
	m := "sealgate model manifest v1\n"
	for _, e := range entries {
		sum := sha256.Sum256([]byte(e[1]))
		m += fmt.Sprintf("%s %d %s\n", hex.EncodeToString(sum[:]), len(e[1]), e[0])
	}
	return sha256.Sum256([]byte(m))
}

func digestOf(t *testing.T, path string) ModelDirDigest {
	t.Helper()
	d, err := DigestModelDir(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDigestModelDirKnownAnswer(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("0123456789abcdef", (3*modelHashBuffer)/16+7) // crosses the read buffer
	writeTree(t, dir, map[string]string{
		"config.json":                      `{"architectures":["LlamaForCausalLM"]}`,
		"model-00001-of-00002.safetensors": big,
		"model-00002-of-00002.safetensors": "tail",
		"a.b":                              "dot sorts before slash",
		"a/b":                              "in a directory",
		".hidden":                          "counts too",
		"empty":                            "",
	})
	got := digestOf(t, dir)
	// Byte order of the whole path: "a.b" (0x2e) before "a/b" (0x2f),
	// although a directory walk visits "a" first.
	want := manifestDigest(
		[2]string{".hidden", "counts too"},
		[2]string{"a.b", "dot sorts before slash"},
		[2]string{"a/b", "in a directory"},
		[2]string{"config.json", `{"architectures":["LlamaForCausalLM"]}`},
		[2]string{"empty", ""},
		[2]string{"model-00001-of-00002.safetensors", big},
		[2]string{"model-00002-of-00002.safetensors", "tail"},
	)
	if got.SHA256 != want || got.Files != 7 || got.Bytes != int64(len(big))+4+22+14+10+38 {
		t.Fatalf("digest %x, %d files, %d bytes; want %x", got.SHA256, got.Files, got.Bytes, want)
	}
	// Deterministic, and sensitive to content, names and extra files.
	if again := digestOf(t, dir); again != got {
		t.Fatal("two digests of the same directory differ")
	}
	writeTree(t, dir, map[string]string{"a/b": "in a directorY"})
	changed := digestOf(t, dir)
	if changed.SHA256 == got.SHA256 {
		t.Fatal("changing a byte does not change the digest")
	}
	if err := os.Rename(filepath.Join(dir, "empty"), filepath.Join(dir, "empty2")); err != nil {
		t.Fatal(err)
	}
	if renamed := digestOf(t, dir); renamed.SHA256 == changed.SHA256 {
		t.Fatal("renaming a file does not change the digest")
	}
}

func TestDigestModelDirSingleFileAndLinks(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"blobs/0a1b": "weights", "model.gguf": "gguf weights"})
	// A single file is a directory holding only it.
	if got := digestOf(t, filepath.Join(dir, "model.gguf")); got.SHA256 != manifestDigest([2]string{"model.gguf", "gguf weights"}) || got.Files != 1 {
		t.Fatalf("single file: %+v", got)
	}
	// A Hugging Face snapshot: links into a blob store count as the
	// files they point to, under their own names.
	snap := filepath.Join(dir, "snapshots", "rev")
	if err := os.MkdirAll(snap, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../blobs/0a1b", filepath.Join(snap, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	if got := digestOf(t, snap); got.SHA256 != manifestDigest([2]string{"model.safetensors", "weights"}) {
		t.Fatalf("snapshot of links: %x", got.SHA256)
	}
	// A link to the whole directory is walked as the directory.
	current := filepath.Join(dir, "current")
	if err := os.Symlink(snap, current); err != nil {
		t.Fatal(err)
	}
	if got := digestOf(t, current); got.SHA256 != manifestDigest([2]string{"model.safetensors", "weights"}) {
		t.Fatalf("link to the snapshot: %x", got.SHA256)
	}
	// A link to a directory inside it is refused.
	if err := os.Symlink("../../blobs", filepath.Join(snap, "more")); err != nil {
		t.Fatal(err)
	}
	if _, err := DigestModelDir(context.Background(), snap); err == nil || !strings.Contains(err.Error(), "links to a directory") {
		t.Fatalf("link to a directory: %v", err)
	}
}

func TestDigestModelDirRefuses(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string
		wantErr string
	}{
		{"missing", func(_ *testing.T, dir string) string { return filepath.Join(dir, "nope") }, "no such file"},
		{"empty directory", func(_ *testing.T, dir string) string { return dir }, "holds no files"},
		{"only directories", func(t *testing.T, dir string) string { os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); return dir }, "holds no files"},
		{"control byte in a name", func(t *testing.T, dir string) string {
			writeTree(t, dir, map[string]string{"a\nb": "x"})
			return dir
		}, "control byte 0x0a"},
		{"name not utf-8", func(t *testing.T, dir string) string {
			writeTree(t, dir, map[string]string{"a\xffb": "x"})
			return dir
		}, "not valid UTF-8"},
		{"dangling link", func(t *testing.T, dir string) string {
			os.Symlink("nowhere", filepath.Join(dir, "w"))
			return dir
		}, "link w"},
		{"named pipe", func(t *testing.T, dir string) string {
			if runtime.GOOS != "linux" {
				t.Skip("mkfifo")
			}
			writeTree(t, dir, map[string]string{"w": "x"})
			if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
				t.Skip(err)
			}
			return dir
		}, "pipe is a named pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			_, err := DigestModelDir(context.Background(), path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	// Cancellation stops the hashing.
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a": "x", "b": "y"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := DigestModelDir(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
}

// staticBackend serves every task with fixed output and end body.
type staticBackend struct{ end proto.EndBody }

func (staticBackend) Tasks() []string { return []string{proto.TaskChat, proto.TaskSummarize} }

func (b staticBackend) Serve(_ context.Context, _ string, _ []byte, emit func(string) error) (proto.EndBody, error) {
	return b.end, emit("out")
}

// serveEvents seals payload for task to w and returns the events.
func serveEvents(t *testing.T, w *Worker, srvURL string, task string, payload []byte) []proto.Event {
	t.Helper()
	req, fwd := sealTo(t, w, task, payload)
	resp, err := http.Post(srvURL+proto.PathServe, proto.MediaTypeForward, bytes.NewReader(fwd))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return events(t, req, resp.Body)
}

func TestWorkerBindsModelDigests(t *testing.T) {
	llama := proto.ModelDigest{Name: "llama3.1:8b", SHA256: sha256.Sum256([]byte("llama"))}
	alpha := proto.ModelDigest{Name: "alpha", SHA256: sha256.Sum256([]byte("alpha"))}
	w, srv := testWorker(t, Config{
		ModelDigests: []proto.ModelDigest{llama, alpha}, // the worker sorts them
		Backend:      staticBackend{end: proto.EndBody{Backend: "test", Model: "llama3.1:8b", ModelDigest: "sha256:made-up-by-the-backend"}},
	})
	b, err := proto.ParseBundle(w.Bundle())
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Keys.Models) != 2 || b.Keys.Models[0] != alpha || b.Keys.Models[1] != llama {
		t.Fatalf("bundle binds %v", b.Keys.Models)
	}
	p := policy.InsecureSimulated()
	p.Models = &policy.ModelRules{AllowedDigests: []string{proto.FormatModelDigest(llama.SHA256), proto.FormatModelDigest(alpha.SHA256)}}
	v, err := attestation.Verify(w.Bundle(), p, attestation.Options{Now: time.Now()})
	if err != nil {
		t.Fatalf("verify under a policy pinning both digests: %v", err)
	}
	if d, ok := v.ModelDigest("llama3.1:8b"); !ok || d != llama.SHA256 {
		t.Fatal("the verified evidence does not name the model's digest")
	}
	p.Models.AllowedDigests = p.Models.AllowedDigests[:1]
	if _, err := attestation.Verify(w.Bundle(), p, attestation.Options{Now: time.Now()}); attestation.CodeOf(err) != attestation.CodePolicy {
		t.Fatalf("verify with alpha not pinned: %v, want a policy failure", err)
	}

	// The end event carries the digest the evidence binds for the model
	// it names, not what the backend said.
	evs := serveEvents(t, w, srv.URL, proto.TaskChat, []byte(`{}`))
	var end proto.EndBody
	if last := evs[len(evs)-1]; last.Type != proto.EventEnd || json.Unmarshal(last.Data, &end) != nil {
		t.Fatalf("events %v", evs)
	}
	if end.ModelDigest != proto.FormatModelDigest(llama.SHA256) {
		t.Fatalf("end names digest %q, want the bound one", end.ModelDigest)
	}

	// A model the evidence binds no digest for gets none.
	w2, srv2 := testWorker(t, Config{ModelDigests: []proto.ModelDigest{alpha}, Backend: staticBackend{end: proto.EndBody{Model: "other", ModelDigest: "sha256:made-up"}}})
	evs = serveEvents(t, w2, srv2.URL, proto.TaskChat, []byte(`{}`))
	end = proto.EndBody{}
	json.Unmarshal(evs[len(evs)-1].Data, &end)
	if end.Model != "other" || end.ModelDigest != "" {
		t.Fatalf("end %+v, want no digest", end)
	}

	// A worker binding no model encodes its keys as before models existed.
	w3, _ := testWorker(t, Config{})
	b3, err := proto.ParseBundle(w3.Bundle())
	if err != nil || len(b3.Keys.Models) != 0 {
		t.Fatalf("worker without models binds %v (%v)", b3.Keys.Models, err)
	}
}

func TestWorkerInputLimits(t *testing.T) {
	w, srv := testWorker(t, Config{
		Backend:       staticBackend{end: proto.EndBody{Backend: "test", Model: "m"}},
		MaxInputBytes: map[string]int{proto.TaskSummarize: 40, "*": 100},
	})
	small := []byte(`{"text":"short enough"}`)
	tests := []struct {
		name, task string
		payload    []byte
		wantCode   string // empty: served
	}{
		{"summarize within its limit", proto.TaskSummarize, small, ""},
		{"summarize over its limit", proto.TaskSummarize, []byte(`{"text":"` + strings.Repeat("a", 40) + `"}`), "too_large"},
		{"chat within the default", proto.TaskChat, []byte(`{"text":"` + strings.Repeat("a", 80) + `"}`), ""},
		{"chat over the default", proto.TaskChat, []byte(`{"text":"` + strings.Repeat("a", 100) + `"}`), "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := serveEvents(t, w, srv.URL, tt.task, tt.payload)
			last := evs[len(evs)-1]
			if tt.wantCode == "" {
				if last.Type != proto.EventEnd {
					t.Fatalf("last event %v %s, want end", last.Type, last.Data)
				}
				return
			}
			var body proto.ErrorBody
			if last.Type != proto.EventError || json.Unmarshal(last.Data, &body) != nil || body.Code != tt.wantCode || !strings.Contains(body.Message, "limit of") {
				t.Fatalf("last event %v %s, want error %s", last.Type, last.Data, tt.wantCode)
			}
			if len(evs) != 1 {
				t.Fatalf("%d events, want only the error: the backend ran", len(evs))
			}
		})
	}
}

func TestNewRejectsBadModelConfig(t *testing.T) {
	ev := SimulatedEvidence{Device: sim.NewDevice(sim.DeviceConfig{})}
	_, pk := testProviderKey(t)
	ok := func(f func(*Config)) Config {
		c := Config{ID: "w", GatewayURL: "https://gw.example", Credential: testCredential, ProviderKey: pk, Evidence: ev}
		f(&c)
		return c
	}
	many := make([]proto.ModelDigest, proto.MaxModels+1)
	for i := range many {
		many[i].Name = fmt.Sprint("m", i)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"model digest without a name", ok(func(c *Config) { c.ModelDigests = []proto.ModelDigest{{}} }), "ModelDigests: model 0: found 0 bytes"},
		{"model digest name with a space", ok(func(c *Config) { c.ModelDigests = []proto.ModelDigest{{Name: "a b"}} }), "ModelDigests: model 0"},
		{"model digest twice", ok(func(c *Config) { c.ModelDigests = []proto.ModelDigest{{Name: "a"}, {Name: "a", SHA256: [32]byte{1}}} }), "twice"},
		{"too many model digests", ok(func(c *Config) { c.ModelDigests = many }), "ModelDigests: found 17"},
		{"input limit of zero", ok(func(c *Config) { c.MaxInputBytes = map[string]int{"chat": 0} }), "MaxInputBytes: chat: found 0"},
		{"input limit too large", ok(func(c *Config) { c.MaxInputBytes = map[string]int{"*": proto.MaxRequestPayload + 1} }), "MaxInputBytes"},
		{"input limit of a bad task name", ok(func(c *Config) { c.MaxInputBytes = map[string]int{"Chat": 10} }), `found task "Chat"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want a ConfigError with %q", err, tt.wantErr)
			}
		})
	}
	// The worker keeps copies: editing the caller's slice and map later
	// changes nothing.
	digests := []proto.ModelDigest{{Name: "b"}, {Name: "a"}}
	limits := map[string]int{"chat": 10}
	w, err := New(ok(func(c *Config) { c.ModelDigests, c.MaxInputBytes = digests, limits }))
	if err != nil {
		t.Fatal(err)
	}
	digests[0].Name, limits["chat"] = "z", 99
	if w.cfg.ModelDigests[0].Name != "a" || w.cfg.ModelDigests[1].Name != "b" || w.inputLimit("chat") != 10 || w.inputLimit("summarize") != 0 {
		t.Fatalf("worker config changed with the caller's: %v %v", w.cfg.ModelDigests, w.cfg.MaxInputBytes)
	}
}
