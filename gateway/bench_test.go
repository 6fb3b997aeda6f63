package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation"
	"github.com/sealgate/sealgate/attestation/policy"
	"github.com/sealgate/sealgate/attestation/sim"
	"github.com/sealgate/sealgate/gateway/breaker"
	"github.com/sealgate/sealgate/proto"
	"github.com/sealgate/sealgate/seal"
)

// Benchmarks of the two registry operations on the request path, over a
// registry of benchWorkers admitted workers: building a tenant's
// candidate listing and routing a request among its candidates; and of
// one relay through Gateway.Relay to a worker double on loopback.
//
//	go test -run '^$' -bench 'Listing|Route|Relay' ./gateway

const (
	benchWorkers   = 10000
	benchProviders = 100 // distinct endorsement keys, for the listing's diversity
)

// benchT0 is when the benchmark workers' simulated evidence was made.
var benchT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// benchFleet is a registry of benchWorkers workers and the key id of each,
// built once per test binary: every worker has its own ML-KEM key, bound
// by simulated evidence (INSECURE, attestation/sim) that passed
// attestation.Verify under policy.InsecureSimulated.
type benchFleet struct {
	reg  *registry
	keys []proto.KeyID
	now  time.Time
}

var (
	benchFleetOnce sync.Once
	benchFleetVal  *benchFleet
	benchFleetErr  error
)

func fleet(b *testing.B) *benchFleet {
	b.Helper()
	benchFleetOnce.Do(func() { benchFleetVal, benchFleetErr = newBenchFleet() })
	if benchFleetErr != nil {
		b.Fatal(benchFleetErr)
	}
	return benchFleetVal
}

func newBenchFleet() (*benchFleet, error) {
	dev := sim.NewDevice(sim.DeviceConfig{Now: func() time.Time { return benchT0 }})
	now := benchT0.Add(time.Minute)
	pol := policy.InsecureSimulated()
	provKeys := make([]ed25519.PublicKey, benchProviders)
	for i := range provKeys {
		provKeys[i], _, _ = ed25519.GenerateKey(rand.Reader)
	}
	signing, _, _ := ed25519.GenerateKey(rand.Reader)
	f := &benchFleet{reg: newRegistry(breaker.Config{}), now: now}
	verified := make([]*attestation.Verified, benchWorkers)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < benchWorkers; i += 4 {
				k, err := seal.GenerateKey(proto.KEMMLKEM768X25519)
				if err != nil {
					errs <- err
					return
				}
				bundle := proto.Bundle{Kind: policy.KindSim, Keys: proto.WorkerKeys{HPKE: []proto.HPKEKey{k.Public()}, Signing: signing}}
				rand.Read(bundle.Nonce[:])
				bundle.Report = dev.Report(bundle.ReportData())
				raw, err := bundle.Marshal()
				if err != nil {
					errs <- err
					return
				}
				if verified[i], err = attestation.Verify(raw, pol, attestation.Options{Now: now}); err != nil {
					errs <- fmt.Errorf("worker %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	for i, v := range verified {
		id := fmt.Sprintf("worker-%05d", i)
		tasks := []string{proto.TaskSummarize}
		if i%2 == 0 {
			tasks = append(tasks, proto.TaskTranslate)
		}
		w := f.reg.admit(id, workerAt{
			providerID: fmt.Sprintf("provider-%03d", i%benchProviders), providerKey: provKeys[i%benchProviders],
			endorsement: make([]byte, ed25519.SignatureSize), url: "http://" + id, serveURL: "http://" + id + proto.PathServe,
			tasks: tasks, region: "bench", capacity: 8, verified: v, admittedAt: now, attestedAt: now, state: stateActive,
		})
		// Some load, never full, so that the orderings have work to do.
		w.outstanding.Store(int64(mrand.IntN(8)))
		for _, k := range v.HPKEKeys() {
			f.keys = append(f.keys, k.ID())
		}
	}
	return f, nil
}

// BenchmarkListing builds the candidate listing a tenant without a pool
// is given: DefaultListed (and the protocol's maximum) workers for a task
// served by all or half of the 10,000.
func BenchmarkListing(b *testing.B) {
	f := fleet(b)
	for _, task := range []string{proto.TaskSummarize, proto.TaskTranslate} {
		for _, n := range []int{DefaultListed, proto.MaxListed} {
			b.Run(fmt.Sprintf("%s/%d", task, n), func(b *testing.B) {
				b.ReportAllocs()
				cpu0 := processCPU()
				for b.Loop() {
					if got := f.reg.listing(task, "tenant", n, f.now); len(got) != n {
						b.Fatalf("listing: found %d workers, want %d", len(got), n)
					}
				}
				reportCPU(b, cpu0)
			})
		}
	}
}

// BenchmarkRoute is the routing decision for a request sealed to 2, 4 or
// 8 candidates among the 10,000 workers.
func BenchmarkRoute(b *testing.B) {
	f := fleet(b)
	for _, n := range []int{2, 4, 8} {
		b.Run(fmt.Sprintf("candidates=%d", n), func(b *testing.B) {
			// Many requests, so that the candidates' map entries are not
			// all in the cache.
			reqs := make([][]proto.Candidate, 4096)
			for i := range reqs {
				for range n {
					reqs[i] = append(reqs[i], proto.Candidate{KeyID: f.keys[mrand.IntN(len(f.keys))]})
				}
			}
			b.ReportAllocs()
			i := 0
			cpu0 := processCPU()
			for b.Loop() {
				if got, _ := f.reg.route(reqs[i%len(reqs)], "tenant", f.now); len(got) == 0 {
					b.Fatal("route: no candidate")
				}
				i++
			}
			reportCPU(b, cpu0)
		})
	}
}

// BenchmarkRelay relays one sealed request (a 2 KiB padded plaintext,
// sealed to one ML-KEM-768+X25519 key) through Gateway.Relay, the domain
// side of POST /v1/requests, to a worker double on loopback that answers
// the way a worker answers a 2 KiB echo: a response header and three
// chunks, each flushed. The double neither opens the request nor checks
// its id, so one sealed request serves every iteration; the gateway's
// HTTP server side is not included.
func BenchmarkRelay(b *testing.B) {
	piece := func(n int) []byte { return bytes.Repeat([]byte{0x5a}, n) }
	answer := [][]byte{piece(56), piece(1045), piece(1045), piece(1045)}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rw.Header().Set("Content-Type", proto.MediaTypeResponse)
		rc := http.NewResponseController(rw)
		for _, p := range answer {
			rw.Write(p)
			rc.Flush()
		}
	}))
	b.Cleanup(srv.Close)

	ctx := context.Background()
	admin := NewCredential(proto.CredentialAdmin)
	g, err := New(ctx, Config{
		Database:             filepath.Join(b.TempDir(), "gateway.db"),
		AdmissionPolicy:      policy.InsecureSimulated(),
		AdminCredentialHash:  HashCredential(admin),
		InsecurePlainHTTP:    true,
		InsecurePlainWorkers: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	acct, err := g.CreateAccount(ctx, admin, "tenant", proto.NewAccount{ID: "bench-tenant",
		RequestsPerSecond: 1e6, BurstRequests: 1e6, BytesPerSecond: 1 << 40, BurstBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	k, err := seal.GenerateKey(proto.KEMMLKEM768X25519)
	if err != nil {
		b.Fatal(err)
	}
	signing, _, _ := ed25519.GenerateKey(rand.Reader)
	bundle := proto.Bundle{Kind: policy.KindSim, Keys: proto.WorkerKeys{HPKE: []proto.HPKEKey{k.Public()}, Signing: signing}}
	bundle.Report = sim.NewDevice(sim.DeviceConfig{}).Report(bundle.ReportData())
	raw, err := bundle.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	v, err := attestation.Verify(raw, policy.InsecureSimulated(), attestation.Options{Now: now})
	if err != nil {
		b.Fatal(err)
	}
	g.reg.admit("bench-worker", workerAt{
		providerID: "bench-provider", url: srv.URL, serveURL: serveURL(srv.URL), tasks: []string{"echo"},
		capacity: 256, client: g.workerClient(nil), verified: v, admittedAt: now, attestedAt: now, state: stateActive,
	})
	req, err := seal.Seal(proto.SuiteMLKEM768X25519, []proto.HPKEKey{k.Public()}, "echo", make([]byte, 2<<10-4), seal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	msg := req.Bytes()
	var want int
	for _, p := range answer {
		want += len(p)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		var sink countingSink
		if err := g.Relay(ctx, acct.Credential, bytes.NewReader(msg), &sink); err != nil {
			b.Fatal(err)
		}
		if sink.n != want {
			b.Fatalf("relayed %d bytes, want %d", sink.n, want)
		}
	}
	reportCPU(b, cpu0)
}

// reportCPU reports the process's CPU time per iteration since cpu0. On a
// shared machine it is steadier than the wall time per iteration, which
// counts the waits for a CPU other processes hold; for the relay it
// counts the gateway and the worker double.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the user and system CPU time of the test binary so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countingSink is an api.Sink that counts and drops the stream.
type countingSink struct{ n int }

func (s *countingSink) Start(string) error          { return nil }
func (s *countingSink) Write(p []byte) (int, error) { s.n += len(p); return len(p), nil }
func (s *countingSink) Flush() error                { return nil }
