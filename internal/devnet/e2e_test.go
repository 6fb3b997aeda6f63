package devnet_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/client"
	"github.com/sealgate/sealgate/internal/devnet"
	"github.com/sealgate/sealgate/internal/tap"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writers (loggers and
// key logs are written from many goroutines).
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

func jsonLogger(w *lockedBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// canaryDocument builds a multi-paragraph text in which every sentence
// carries a random canary word, and returns the text and the canaries.
func canaryDocument(t *testing.T) (string, []string) {
	t.Helper()
	topics := []string{
		"The hospital board reviewed the confidential inference pilot",
		"Encrypted prompts reached the attested workers without exposure",
		"The gateway routed every sealed request without reading it",
		"Auditors replayed the evidence and confirmed each admission",
		"Patients asked whether their records ever left the enclave",
		"The pilot measured latency and cost against the old system",
	}
	var doc strings.Builder
	var canaries []string
	for p := range 4 {
		for s := range 5 {
			c := "canary" + rand.Text()[:16]
			canaries = append(canaries, c)
			fmt.Fprintf(&doc, "%s and noted %s in round %d. ", topics[(p+s)%len(topics)], c, p*5+s)
		}
		doc.WriteString("\n\n")
	}
	return doc.String(), canaries
}

// forms returns the byte strings a secret could appear as: raw, hex (both
// cases) and base64 (standard and URL alphabets, at every alignment, with
// the alignment-dependent edges trimmed).
func forms(secret []byte) [][]byte {
	out := [][]byte{secret, []byte(hex.EncodeToString(secret)), []byte(strings.ToUpper(hex.EncodeToString(secret)))}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for off := range 3 {
			if len(secret)-off < 9 {
				continue
			}
			s := strings.TrimRight(enc.EncodeToString(secret[off:]), "=")
			out = append(out, []byte(s[1:len(s)-2]))
		}
	}
	return out
}

func assertAbsent(t *testing.T, where string, haystack []byte, name string, secret []byte) {
	t.Helper()
	for _, f := range forms(secret) {
		if bytes.Contains(haystack, f) {
			t.Errorf("%s contains %s (as %q…)", where, name, f[:min(len(f), 12)])
			return
		}
	}
}

func TestEndToEndGatewaySeesNoSecrets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	var logs, keys lockedBuffer
	logger := jsonLogger(&logs)

	var taps []*tap.Tap
	defer func() {
		for _, tp := range taps {
			tp.Close()
		}
	}()
	var tapErr error
	network, err := devnet.Start(ctx, devnet.Config{
		// Plain HTTP on every link, so that the taps see exactly what
		// the gateway handles rather than TLS records.
		Dir: dir, Workers: 2, Logger: logger, KeyLog: &keys, InsecurePlainHTTP: true,
		WorkerAdvertise: func(i int, addr string) string {
			tp, err := tap.New(addr)
			if err != nil {
				tapErr = err
				return "http://" + addr
			}
			taps = append(taps, tp)
			return "http://" + tp.Addr
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	if tapErr != nil {
		t.Fatal(tapErr)
	}
	clientTap, err := tap.New(strings.TrimPrefix(network.GatewayURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	taps = append(taps, clientTap)

	var clientKeys lockedBuffer
	cc := network.ClientConfig(client.Config{Policy: policy.InsecureSimulated(), K: 2, KeyLog: &clientKeys})
	cc.GatewayURL = "http://" + clientTap.Addr
	c, err := client.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	doc, canaries := canaryDocument(t)
	res, err := c.Summarize(ctx, doc, client.SummarizeOptions{Sentences: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text == "" || !strings.Contains(res.Text, "canary") {
		t.Fatalf("summary %q does not come from the document", res.Text)
	}
	if !res.Worker.Simulated || res.Worker.Kind != "sim" || len(res.Candidates) != 2 {
		t.Fatalf("worker %+v, candidates %d", res.Worker, len(res.Candidates))
	}
	if err := network.Close(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	var tapped []byte
	for _, tp := range taps {
		tapped = append(tapped, tp.Bytes()...)
	}
	if len(tapped) < len(doc) {
		t.Fatalf("taps recorded %d bytes, less than the %d-byte document: the taps are not on the path", len(tapped), len(doc))
	}
	var db []byte
	files, _ := filepath.Glob(filepath.Join(dir, "gateway.db*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		db = append(db, b...)
	}
	if len(db) == 0 {
		t.Fatal("no gateway database found")
	}
	places := map[string][]byte{"the gateway's connections": tapped, "the logs": logs.Bytes(), "the gateway database": db}

	var secrets int
	for _, kl := range [][]byte{keys.Bytes(), clientKeys.Bytes()} {
		sc := bufio.NewScanner(bytes.NewReader(kl))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				t.Fatalf("key log line %q", sc.Text())
			}
			secret, err := hex.DecodeString(f[2])
			if err != nil || len(secret) < 16 {
				t.Fatalf("key log secret in %q", sc.Text())
			}
			secrets++
			for where, hay := range places {
				assertAbsent(t, where, hay, f[0], secret)
			}
		}
	}
	// Private keys of 2 workers × 2 suites, the data key on both sides, and
	// exporter and response keys on both sides.
	if secrets < 4+2+2+2 {
		t.Fatalf("only %d secrets in the key logs: the hook is not wired", secrets)
	}
	for where, hay := range places {
		for _, c := range canaries {
			assertAbsent(t, where, hay, "a prompt canary", []byte(c))
		}
		for _, sentence := range strings.SplitAfter(res.Text, ". ") {
			if s := strings.TrimSpace(sentence); len(s) > 12 {
				assertAbsent(t, where, hay, "a summary sentence", []byte(s))
			}
		}
	}
}

func TestEndToEndPolicyRefusesSimulated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	network, err := devnet.Start(ctx, devnet.Config{Dir: t.TempDir(), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer network.Close()
	c, err := client.New(network.ClientConfig(client.Config{})) // default policy: hardware only
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Summarize(ctx, "A sentence to summarize. Another one here.", client.SummarizeOptions{})
	if !errors.Is(err, client.ErrNoCandidate) {
		t.Fatalf("err = %v, want ErrNoCandidate", err)
	}
	var ae *attestation.Error
	if !errors.As(err, &ae) || ae.Code != attestation.CodePolicy || ae.Field != "allow_simulated" {
		t.Fatalf("err = %v, want an attestation policy error on allow_simulated", err)
	}
}
