package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/sealgate/sealgate/enclave"
	"github.com/sealgate/sealgate/proto"
)

// backendFlags are the flags that choose and configure the backend.
type backendFlags struct {
	kind        string // -backend
	upstream    string // -upstream
	model       string // -model
	modelDir    string // -model-dir
	modelDigest string // -model-digest
	maxInput    string // -max-input-bytes
}

// backendSetup is what the flags make: the backend, the model digests to
// bind, and the per-task input limits.
type backendSetup struct {
	backend   enclave.Backend
	digests   []proto.ModelDigest
	limits    map[string]int
	advertise []string // models to advertise when -models is not given
}

// buildBackend reads the backend flags. With -model-dir it hashes the
// model's files, which can take minutes for large weights; ctx stops it.
func buildBackend(ctx context.Context, f backendFlags, log *slog.Logger) (*backendSetup, error) {
	limits, largest, err := parseInputLimits(f.maxInput)
	if err != nil {
		return nil, err
	}
	s := &backendSetup{limits: limits}
	switch f.kind {
	case "builtin":
		for name, v := range map[string]string{"-upstream": f.upstream, "-model": f.model, "-model-dir": f.modelDir, "-model-digest": f.modelDigest} {
			if v != "" {
				return nil, fmt.Errorf("%s: found %q with -backend builtin, want it only with -backend openai", name, v)
			}
		}
		s.backend = enclave.Builtin{MaxInputBytes: largest}
		return s, nil
	case "openai":
	default:
		return nil, fmt.Errorf("-backend: found %q, want builtin or openai", f.kind)
	}
	if f.upstream == "" {
		return nil, fmt.Errorf("-upstream: found none, want the model server's base URL on the loopback, such as http://127.0.0.1:8000/v1")
	}
	if f.model == "" {
		return nil, fmt.Errorf("-model: found none, want the model's served name, such as llama3.1:8b")
	}
	o, err := enclave.NewOpenAI(enclave.OpenAIConfig{
		BaseURL: f.upstream, Model: f.model, MaxInputBytes: largest,
		Logger: log.With(slog.String("component", "backend")),
	})
	if err != nil {
		return nil, flagError(err)
	}
	s.backend, s.advertise = o, []string{f.model}
	switch {
	case f.modelDir != "" && f.modelDigest != "":
		return nil, fmt.Errorf("-model-dir and -model-digest: found both, want at most one")
	case f.modelDigest != "":
		d, err := proto.ParseModelDigest(f.modelDigest)
		if err != nil {
			return nil, fmt.Errorf("-model-digest: found %q, want sha256: and 64 lowercase hex digits", f.modelDigest)
		}
		s.digests = []proto.ModelDigest{{Name: f.model, SHA256: d}}
	case f.modelDir != "":
		start := time.Now()
		log.Info("hashing the model's files", slog.String("model_dir", f.modelDir))
		d, err := enclave.DigestModelDir(ctx, f.modelDir)
		if err != nil {
			return nil, fmt.Errorf("-model-dir: %v", err)
		}
		log.Info("model digest", slog.String("model", f.model), slog.String("digest", proto.FormatModelDigest(d.SHA256)),
			slog.Int("files", d.Files), slog.Int64("bytes", d.Bytes), slog.Duration("took", time.Since(start).Round(time.Millisecond)))
		s.digests = []proto.ModelDigest{{Name: f.model, SHA256: d.SHA256}}
	default:
		log.Warn("no -model-dir or -model-digest: the evidence binds no model digest, so clients cannot pin the model this worker serves")
	}
	return s, nil
}

// parseInputLimits reads -max-input-bytes: empty (the backends'
// defaults), one size for every task, or task=size pairs separated by
// commas, where the task "*" covers tasks not named. A size is a number of
// bytes, optionally with the suffix KiB or MiB. It returns the limits and
// the largest of them (0 for none).
func parseInputLimits(s string) (map[string]int, int, error) {
	const flag = "-max-input-bytes"
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, 0, nil
	}
	limits := map[string]int{}
	largest := 0
	for _, part := range strings.Split(s, ",") {
		task, size, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			task, size = "*", task
		}
		if _, dup := limits[task]; dup {
			return nil, 0, fmt.Errorf("%s: found %q twice, want each task once", flag, task)
		}
		n, err := parseSize(size)
		if err != nil || n < 1 || n > proto.MaxRequestPayload {
			return nil, 0, fmt.Errorf("%s: found %q for %s, want 1 to %d bytes (a number, optionally with KiB or MiB)", flag, size, task, proto.MaxRequestPayload)
		}
		limits[task] = n
		largest = max(largest, n)
	}
	return limits, largest, nil
}

func parseSize(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "KiB"):
		s, mult = strings.TrimSuffix(s, "KiB"), 1<<10
	case strings.HasSuffix(s, "MiB"):
		s, mult = strings.TrimSuffix(s, "MiB"), 1<<20
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > proto.MaxRequestPayload/mult {
		return 0, fmt.Errorf("bad size")
	}
	return n * mult, nil
}

// printModelDigest computes the model directory digest of path and
// prints it, for operators and for clients that pin it.
func printModelDigest(ctx context.Context, path string, out func(string)) error {
	d, err := enclave.DigestModelDir(ctx, path)
	if err != nil {
		return fmt.Errorf("-print-model-digest: %v", err)
	}
	out(proto.FormatModelDigest(d.SHA256))
	return nil
}

// flagError names the flag behind an enclave.ConfigError's field.
func flagError(err error) error {
	var ce *enclave.ConfigError
	if errors.As(err, &ce) && configFlags[ce.Field] != "" {
		return fmt.Errorf("%s: %s", configFlags[ce.Field], ce.Msg)
	}
	return err
}
