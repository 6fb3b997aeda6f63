package main

import (
	"bytes"
	"strings"
	"testing"
)

// benchOutput is go test -bench output in the shapes benchreport reads:
// two runs of a pair with a goal met, GOMAXPROCS suffixes, a package
// line, and an extra metric.
const sealOutput = `goos: linux
pkg: github.com/sealgate/sealgate/seal
BenchmarkRawHPKESeal/x25519/1KiB-2         	     200	    100000 ns/op
BenchmarkRawHPKESeal/x25519/1KiB-2         	     200	    120000 ns/op
BenchmarkSealTo/x25519/1KiB/3cand-2        	     200	    315000 ns/op
BenchmarkSealTo/x25519/1KiB/3cand-2        	     200	    345000 ns/op
PASS
`

const gatewayOutput = `pkg: github.com/sealgate/sealgate/gateway
BenchmarkRoute/candidates=2-2   	 1000000	      6000 ns/op	      4100 cpu-ns/op	       0 B/op	       0 allocs/op
ok  	github.com/sealgate/sealgate/gateway	3.0s
`

func TestParseAndRows(t *testing.T) {
	m := measurements{}
	if err := m.parse(strings.NewReader(sealOutput), "seal", 0); err != nil {
		t.Fatal(err)
	}
	// A second round, twice as slow: the ratio stays the rounds' own.
	if err := m.parse(strings.NewReader(strings.ReplaceAll(sealOutput, "000 ns/op", "0000 ns/op")), "seal", 1); err != nil {
		t.Fatal(err)
	}
	if err := m.parse(strings.NewReader(gatewayOutput), "gateway", 0); err != nil {
		t.Fatal(err)
	}
	if v, ok := m.median("seal/BenchmarkRawHPKESeal/x25519/1KiB", "ns/op", 0); !ok || v != 110000 {
		t.Errorf("median raw seal in round 0: found %v (%v), want 110000", v, ok)
	}
	if v, ok := m.median("gateway/BenchmarkRoute/candidates=2", "cpu-ns/op", -1); !ok || v != 4100 {
		t.Errorf("route cpu-ns/op: found %v (%v), want 4100", v, ok)
	}
	var out bytes.Buffer
	writeTable(&out, buildRows(m, gatewayResults{}))
	got := out.String()
	for _, want := range []string{
		"| measurement | baseline (same run) | value | ratio / figure | goal | met? |",
		"| seal a 1KiB request to 3 candidates, X25519 (seal.SealTo) | 3 raw crypto/hpke seals, each 560.0 µs | 1747.5 µs | 1.00× | ≤ 1.1× | yes |",
		// Judged by its CPU time, not the wall time a busy machine stretched.
		"| routing decision among 2 candidates, 10,000 workers | - | 4.1 µs CPU (6.0 µs wall) | - | ≤ 5 µs | yes |",
		"| gateway memory per idle stream | - | not measured | - | - | - |",
		"2 of 2 goals met.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the table lacks %q:\n%s", want, got)
		}
	}
}
