package seal

import (
	"bytes"
	"crypto/hpke"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/sealgate/sealgate/proto"
)

// Benchmarks of Seal and Opener.Open against single-shot crypto/hpke
// Seal/Open of the same payload under the same suite, the floor any
// HPKE-based format pays. Each also reports the process's CPU time per
// operation (cpu-ns/op), which on a shared machine is steadier than the
// wall time: that counts the waits for a CPU other processes hold.

var benchSizes = []int{1 << 10, 16 << 10}

func benchName(suite proto.Suite, size int) string {
	return fmt.Sprintf("%s/%dKiB", suiteShortName(suite), size>>10)
}

func BenchmarkSeal(b *testing.B) { benchSeal(b, false) }

// BenchmarkSealTo is BenchmarkSeal with the recipients' keys parsed once,
// as a client sealing many requests to the same verified workers does; it
// is the fair comparison with BenchmarkRawHPKESeal, which also parses its
// key once.
func BenchmarkSealTo(b *testing.B) { benchSeal(b, true) }

func benchSeal(b *testing.B, parsedKeys bool) {
	for _, suite := range proto.Suites() {
		keys := testKeys(b, suite.KEM, 30, 3)
		for _, size := range benchSizes {
			payload := testPayload(size)
			for _, n := range []int{1, 3} {
				b.Run(fmt.Sprintf("%s/%dcand", benchName(suite, size), n), func(b *testing.B) {
					pubs := publics(keys[:n])
					var parsed []*PublicKey
					for _, k := range pubs {
						p, err := ParsePublicKey(k)
						if err != nil {
							b.Fatal(err)
						}
						parsed = append(parsed, p)
					}
					opts := Options{Now: fixedClock(testNow)}
					b.SetBytes(int64(size))
					b.ReportAllocs()
					cpu0 := processCPU()
					for b.Loop() {
						var err error
						if parsedKeys {
							_, err = SealTo(suite, parsed, "summarize", payload, opts)
						} else {
							_, err = Seal(suite, pubs, "summarize", payload, opts)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					reportCPU(b, cpu0)
				})
			}
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, suite := range proto.Suites() {
		keys := testKeys(b, suite.KEM, 31, 1)
		for _, size := range benchSizes {
			b.Run(benchName(suite, size), func(b *testing.B) {
				msg := forwardTo(b, sealTest(b, suite, keys, testPayload(size)), 0)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				cpu0 := processCPU()
				for b.Loop() {
					// A fresh Opener each time: the replay cache would
					// refuse the same request twice. Its cost is a map
					// allocation, far below one HPKE decapsulation.
					op, err := NewOpener(OpenerConfig{Keys: keys, Now: fixedClock(testNow)})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := op.Open(bytes.NewReader(msg)); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu0)
			})
		}
	}
}

// rawHPKE returns the crypto/hpke parts of suite and a key pair.
func rawHPKE(b *testing.B, suite proto.Suite) (hpke.PublicKey, hpke.PrivateKey, hpke.KDF, hpke.AEAD) {
	b.Helper()
	_, kdf, aead, err := suiteParts(suite)
	if err != nil {
		b.Fatal(err)
	}
	k := testKeys(b, suite.KEM, 32, 1)[0]
	return k.priv.PublicKey(), k.priv, kdf, aead
}

func BenchmarkRawHPKESeal(b *testing.B) {
	for _, suite := range proto.Suites() {
		pk, _, kdf, aead := rawHPKE(b, suite)
		for _, size := range benchSizes {
			b.Run(benchName(suite, size), func(b *testing.B) {
				payload := testPayload(size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				cpu0 := processCPU()
				for b.Loop() {
					if _, err := hpke.Seal(pk, kdf, aead, []byte(labelWrapInfo), payload); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu0)
			})
		}
	}
}

func BenchmarkRawHPKEOpen(b *testing.B) {
	for _, suite := range proto.Suites() {
		pk, sk, kdf, aead := rawHPKE(b, suite)
		for _, size := range benchSizes {
			b.Run(benchName(suite, size), func(b *testing.B) {
				ct, err := hpke.Seal(pk, kdf, aead, []byte(labelWrapInfo), testPayload(size))
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				cpu0 := processCPU()
				for b.Loop() {
					if _, err := hpke.Open(sk, kdf, aead, []byte(labelWrapInfo), ct); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu0)
			})
		}
	}
}

// reportCPU reports the process's CPU time per iteration since cpu0.
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
