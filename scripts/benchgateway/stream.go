package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// Mode stream: one long response, streamed by a worker one chunk at a
// time with a pause between chunks (issue 9: 200 chunks, 1 ms apart), is
// read through the gateway, directly from the worker and, with -nginx,
// through nginx proxy_pass (configured as in mode hop), the paths taken
// in turn, one stream at a time, in one process on loopback (INSECURE
// plain HTTP, as mode hop's main paths). The worker is the real
// enclave.Worker, which seals every chunk; its backend is a test double,
// streamBackend, that records when it hands each chunk's event to the
// worker. A chunk's latency is from then to the moment the client has
// read the chunk's last byte, so the worker's pauses (whose length a busy
// machine stretches) are in no figure; the gateway's per-chunk relay
// overhead is its median chunk latency less the direct path's. Time to
// first byte is from the request's start to the first response byte.

// frameSize is one response chunk on the wire: its framing, the padded
// plaintext and the AEAD tag.
const frameSize = 5 + proto.ResponseChunkSize + proto.AEADOverhead

// streamEventData is the data size of an event whose encoding (5 bytes
// of type and length, then the data) is one byte more than a chunk
// holds, so that the worker's ResponseWriter sends one full chunk as each
// event arrives and keeps the remainder (one byte more each time) for the
// next; with its flush timer set long, each event is exactly one chunk.
const streamEventData = proto.ResponseChunkData + 1 - 5

// streamBackend is a test double of a model backend: it answers every
// request with chunks data events, gap apart, each filling one response
// chunk, and records when it handed each to the worker.
type streamBackend struct {
	chunks int
	gap    time.Duration

	mu   sync.Mutex  // guards sent
	sent []time.Time // when each event of the latest stream was handed over
}

func (*streamBackend) Tasks() []string { return []string{task} }

func (b *streamBackend) Serve(ctx context.Context, _ string, _ []byte, emit func(string) error) (proto.EndBody, error) {
	data := strings.Repeat("t", streamEventData)
	sent := make([]time.Time, 0, b.chunks)
	for i := range b.chunks {
		if i > 0 {
			select {
			case <-ctx.Done():
				return proto.EndBody{}, ctx.Err()
			case <-time.After(b.gap):
			}
		}
		sent = append(sent, time.Now())
		if err := emit(data); err != nil {
			return proto.EndBody{}, err
		}
	}
	b.mu.Lock()
	b.sent = sent
	b.mu.Unlock()
	n := int64(b.chunks * streamEventData)
	return proto.EndBody{Backend: "bench-stream", Model: "stream", OutputUnits: n}, nil
}

// takeSent returns the latest stream's hand-over times and forgets them.
func (b *streamBackend) takeSent() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sent
	b.sent = nil
	return s
}

// streamResults are mode stream's figures, in µs: medians over every
// measured stream (time to first byte) and every chunk of every measured
// stream (chunk latency).
type streamResults struct {
	Chunks         int     `json:"chunks"`
	GapUS          float64 `json:"gap_us"`
	Runs           int     `json:"runs"`
	DirectTTFB     float64 `json:"direct_ttfb_us"`
	GatewayTTFB    float64 `json:"gateway_ttfb_us"`
	DirectChunk    float64 `json:"direct_chunk_latency_us"`
	GatewayChunk   float64 `json:"gateway_chunk_latency_us"`
	AddedPerChunk  float64 `json:"added_per_chunk_us"`
	AddedChunkP99  float64 `json:"added_chunk_p99_us"`
	NginxTTFB      float64 `json:"nginx_ttfb_us,omitempty"`
	NginxChunk     float64 `json:"nginx_chunk_latency_us,omitempty"`
	NginxAdded     float64 `json:"nginx_added_per_chunk_us,omitempty"`
	DirectStreamMS float64 `json:"direct_stream_ms"`
	GatewayStream  float64 `json:"gateway_stream_ms"`
}

// streamPath is one way to the worker, and what its streams measured.
type streamPath struct {
	*target
	ttfb   []time.Duration
	chunk  []time.Duration
	stream []time.Duration // request start to the last data chunk
}

func runStream(ctx context.Context, o options) error {
	if o.streamChunks < 1 || o.streamChunks > 1000 {
		return fmt.Errorf("-stream-chunks: found %d, want 1 to 1000", o.streamChunks)
	}
	if o.streamRuns < 1 {
		return fmt.Errorf("-stream-runs: found %d, want at least 1", o.streamRuns)
	}
	dir, err := os.MkdirTemp("", "benchgateway-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	backend := &streamBackend{chunks: o.streamChunks, gap: o.streamGap}
	// The flush timer must not cut a chunk of its own: the stream's
	// chunks are full, and the remainder waits for the final one.
	n, err := startNetwork(ctx, filepath.Join(dir, "stream"), netOptions{backend: backend, flushInterval: time.Hour})
	if err != nil {
		return err
	}
	defer n.stop()
	direct := &streamPath{target: &target{name: "direct to worker", url: n.workerURL + proto.PathServe, contentType: proto.MediaTypeForward,
		client: newClient(nil), key: n.key, body: forwardBody}}
	gw := &streamPath{target: &target{name: "sealgate gateway", url: n.gatewayURL + proto.PathRequests, contentType: proto.MediaTypeRequest,
		cred: n.tenant, client: newClient(nil), key: n.key, body: requestBody}}
	paths := []*streamPath{direct, gw}
	var ngx *streamPath
	if o.nginx != "" && strings.Contains(o.paths, "nginx") {
		nx, err := startNginx(ctx, o.nginx, filepath.Join(dir, "nginx"), n.workerAddr)
		if err != nil {
			return err
		}
		defer nx.stop()
		ngx = &streamPath{target: &target{name: "nginx proxy_pass", url: "http://" + nx.addr + proto.PathServe, contentType: proto.MediaTypeForward,
			client: newClient(nil), key: n.key, body: forwardBody}}
		paths = append(paths, ngx)
	}
	for _, p := range paths {
		if err := p.checkStream(o.streamChunks); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		backend.takeSent()
	}
	fmt.Fprintf(os.Stderr, "stream: %d chunks of %d bytes, %v apart; %d streams on each path after 2 to warm up, the paths in turn; GOMAXPROCS %d\n",
		o.streamChunks, frameSize, o.streamGap, o.streamRuns, runtime.GOMAXPROCS(0))
	const warm = 2
	for i := range o.streamRuns + warm {
		order := slices.Clone(paths)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, p := range order {
			if err := p.streamOnce(backend, o.streamChunks, i >= warm); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
		}
		if i >= warm && (i-warm+1)%5 == 0 {
			fmt.Fprintf(os.Stderr, "stream: %d of %d streams on each path\n", i-warm+1, o.streamRuns)
		}
	}
	res := &streamResults{Chunks: o.streamChunks, GapUS: micros(o.streamGap), Runs: o.streamRuns,
		DirectTTFB: micros(percentile(direct.ttfb, 0.5)), GatewayTTFB: micros(percentile(gw.ttfb, 0.5)),
		DirectChunk: micros(percentile(direct.chunk, 0.5)), GatewayChunk: micros(percentile(gw.chunk, 0.5)),
		AddedChunkP99:  micros(percentile(gw.chunk, 0.99) - percentile(direct.chunk, 0.99)),
		DirectStreamMS: micros(percentile(direct.stream, 0.5)) / 1000, GatewayStream: micros(percentile(gw.stream, 0.5)) / 1000,
	}
	res.AddedPerChunk = res.GatewayChunk - res.DirectChunk
	if ngx != nil {
		res.NginxTTFB, res.NginxChunk = micros(percentile(ngx.ttfb, 0.5)), micros(percentile(ngx.chunk, 0.5))
		res.NginxAdded = res.NginxChunk - res.DirectChunk
	}
	fmt.Printf("| path | TTFB p50 µs | chunk latency p50 µs | chunk latency p99 µs | stream p50 ms |\n| --- | --- | --- | --- | --- |\n")
	for _, p := range paths {
		fmt.Printf("| %s | %.1f | %.1f | %.1f | %.2f |\n", p.name, micros(percentile(p.ttfb, 0.5)),
			micros(percentile(p.chunk, 0.5)), micros(percentile(p.chunk, 0.99)), micros(percentile(p.stream, 0.5))/1000)
	}
	fmt.Printf("\n- gateway added time to first byte: %.1f µs (p50)\n", res.GatewayTTFB-res.DirectTTFB)
	fmt.Printf("- gateway added latency per chunk: %.1f µs at p50 (goal ≤ 10), %.1f µs at p99\n", res.AddedPerChunk, res.AddedChunkP99)
	if ngx != nil {
		fmt.Printf("- nginx proxy_pass added latency per chunk: %.1f µs at p50; time to first byte: %.1f µs\n", res.NginxAdded, res.NginxTTFB-res.DirectTTFB)
	}
	return writeJSON(o.jsonOut, results{Stream: res})
}

// checkStream sends one request and opens the response: chunks data
// events and an end event, authenticated.
func (p *streamPath) checkStream(chunks int) error {
	r, err := seal.SealTo(proto.SuiteMLKEM768X25519, []*seal.PublicKey{p.key}, task, payload, seal.Options{})
	if err != nil {
		return err
	}
	body, err := p.body(r.Bytes())
	if err != nil {
		return err
	}
	resp, err := p.client.Do(p.request(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	sr, err := r.OpenResponse(resp.Body)
	if err != nil {
		return fmt.Errorf("opening the response: %w", err)
	}
	var data, ends int
	for {
		ev, err := sr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the response: %w", err)
		}
		switch ev.Type {
		case proto.EventData:
			data++
		case proto.EventEnd:
			ends++
		}
	}
	if data != chunks || ends != 1 {
		return fmt.Errorf("response: found %d data events and %d end events, want %d and 1", data, ends, chunks)
	}
	return nil
}

// streamOnce sends one fresh request and reads its response, noting when
// each data chunk's last byte arrived; record keeps the figures.
func (p *streamPath) streamOnce(b *streamBackend, chunks int, record bool) error {
	reqs, err := p.seal(1)
	if err != nil {
		return err
	}
	arrived := make([]time.Time, 0, chunks)
	buf := make([]byte, 64<<10)
	var first time.Time
	start := time.Now()
	resp, err := p.client.Do(p.request(reqs[0]))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var got int
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			now := time.Now()
			if got == 0 {
				first = now
			}
			got += n
			for len(arrived) < chunks && got >= proto.ResponseHeaderSize+(len(arrived)+1)*frameSize {
				arrived = append(arrived, now)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	sent := b.takeSent()
	if len(arrived) != chunks || len(sent) != chunks {
		return fmt.Errorf("stream: %d chunks read and %d sent, want %d", len(arrived), len(sent), chunks)
	}
	if !record {
		return nil
	}
	p.ttfb = append(p.ttfb, first.Sub(start))
	p.stream = append(p.stream, arrived[chunks-1].Sub(start))
	for i := range chunks {
		p.chunk = append(p.chunk, arrived[i].Sub(sent[i]))
	}
	return nil
}
