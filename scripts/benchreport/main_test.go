package main

import (
	"bytes"
	"strings"
	"testing"
)

// benchOutput is go test -bench output in the shapes benchreport reads:
// two runs of a pair with a goal met, GOMAXPROCS suffixes, a package
// line, and an extra metric.
const benchOutput = `goos: linux
pkg: github.com/sealgate/sealgate/seal
BenchmarkRawHPKESeal/x25519/1KiB-2         	     200	    100000 ns/op
BenchmarkRawHPKESeal/x25519/1KiB-2         	     200	    120000 ns/op
BenchmarkSealTo/x25519/1KiB/3cand-2        	     200	    315000 ns/op
BenchmarkSealTo/x25519/1KiB/3cand-2        	     200	    345000 ns/op
PASS
pkg: github.com/sealgate/sealgate/gateway
BenchmarkRoute/candidates=2-2   	 1000000	      6000 ns/op	      4100 cpu-ns/op	       0 B/op	       0 allocs/op
ok  	github.com/sealgate/sealgate/gateway	3.0s
`

func TestParseAndRows(t *testing.T) {
	m := measurements{}
	if err := m.parse(strings.NewReader(benchOutput)); err != nil {
		t.Fatal(err)
	}
	if v, ok := m.ns("seal/BenchmarkRawHPKESeal/x25519/1KiB"); !ok || v != 110000 {
		t.Errorf("median raw seal: found %v (%v), want 110000", v, ok)
	}
	if v, ok := m.median("gateway/BenchmarkRoute/candidates=2", "cpu-ns/op"); !ok || v != 4100 {
		t.Errorf("route cpu-ns/op: found %v (%v), want 4100", v, ok)
	}
	var out bytes.Buffer
	writeTable(&out, buildRows(m, gatewayResults{}))
	got := out.String()
	for _, want := range []string{
		"| measurement | baseline (same run) | value | ratio / figure | goal | met? |",
		"| seal a 1KiB request to 3 candidates, X25519 (seal.SealTo) | 3 raw crypto/hpke seals: 330.0 µs | 330.0 µs | 1.00× | ≤ 1.1× | yes |",
		"| routing decision among 2 candidates, 10,000 workers | - | 6.0 µs | 6.0 µs (CPU 4.1 µs) | ≤ 5 µs | no |",
		"| gateway memory per idle stream | - | not measured | - | - | - |",
		"1 of 2 goals met.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the table lacks %q:\n%s", want, got)
		}
	}
}
