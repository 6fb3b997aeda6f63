package rim_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sealgate/sealgate/attestation/nvgpu/rim"
	"github.com/sealgate/sealgate/attestation/nvgpu/rim/rimtest"
	"golang.org/x/crypto/ocsp"
)

var update = flag.Bool("update", false, "rewrite attestation/nvgpu/rim/testdata from rimtest")

// The synthetic testdata: one fixture PKI, a driver and a VBIOS RIM it
// signs, and OCSP responses about its signing certificate. TestTestdata
// regenerates every file from these and requires the committed bytes.
const (
	testdataSeed = "sealgate rim testdata v1"
	// Synthetic versions, chosen to be recognizably not NVIDIA's.
	testdataDriverVersion = "999.01.02"
	testdataVBIOSVersion  = "96.00.AA.00.01"
)

// testdataNow is the time the synthetic testdata is made for and
// verified at (the recorded NVIDIA data's time, for symmetry).
var testdataNow = time.Date(2025, 9, 1, 1, 0, 0, 0, time.UTC)

func fixturePKI(tb testing.TB) *rimtest.PKI {
	tb.Helper()
	return rimtest.NewPKI(testdataSeed, testdataNow)
}

// golden is the synthetic golden value of a measurement index and
// alternative.
func golden(component string, index, alt int) []byte {
	h := sha512.Sum384(fmt.Appendf(nil, "%s\x00%s\x00%d\x00%d", testdataSeed, component, index, alt))
	return h[:]
}

// testdataSpec returns the synthetic driver or VBIOS RIM: 16 indexes,
// each RIM active on its own (as NVIDIA's split them), inactive ones
// zero, one active index per RIM with two alternatives.
func testdataSpec(component string) rimtest.Spec {
	active := map[string]map[int]int{ // index -> alternatives
		"driver": {7: 1, 9: 1, 10: 2, 11: 1},
		"vbios":  {0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 8: 1, 12: 2},
	}[component]
	version := map[string]string{"driver": testdataDriverVersion, "vbios": testdataVBIOSVersion}[component]
	s := rimtest.Spec{ID: "sealgate-fixture-" + component + "-" + version, ColloquialVersion: version}
	for i := range 16 {
		m := rim.Measurement{Index: i, Size: 48, Active: active[i] > 0}
		if m.Active {
			for k := range active[i] {
				m.Alternatives = append(m.Alternatives, golden(component, i, k))
			}
		} else {
			m.Alternatives = [][]byte{make([]byte, 48)}
		}
		s.Measurements = append(s.Measurements, m)
	}
	return s
}

// testdataFiles returns every file of testdata/ but PROVENANCE.md.
func testdataFiles(tb testing.TB) map[string][]byte {
	p := fixturePKI(tb)
	this, next := testdataNow.Add(-time.Hour), testdataNow.Add(7*24*time.Hour)
	return map[string][]byte{
		"fixture_root.pem":      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.Raw}),
		"driver.xml":            rimtest.Sign(tb, testdataSpec("driver"), p.LeafKey, p.Chain()),
		"vbios.xml":             rimtest.Sign(tb, testdataSpec("vbios"), p.LeafKey, p.Chain()),
		"ocsp_leaf_good.der":    p.OCSP(tb, p.Leaf, ocsp.Good, this, next),
		"ocsp_leaf_revoked.der": p.OCSP(tb, p.Leaf, ocsp.Revoked, this, next),
		"ocsp_leaf_unknown.der": p.OCSP(tb, p.Leaf, ocsp.Unknown, this, next),
	}
}

// TestTestdata regenerates testdata/ and compares it with the committed
// files; with -update it rewrites them:
//
//	go test ./attestation/nvgpu/rim -run TestTestdata -update
func TestTestdata(t *testing.T) {
	files := testdataFiles(t)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		path := filepath.Join("testdata", n)
		if *update {
			if err := os.WriteFile(path, files[n], 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, files[n]) {
			t.Errorf("testdata/%s differs from what rimtest makes now (deterministic generation broke, or run with -update)", n)
		}
	}
	// Two runs give the same bytes.
	again := testdataFiles(t)
	for _, n := range names {
		if !bytes.Equal(again[n], files[n]) {
			t.Errorf("%s: generation is not deterministic", n)
		}
	}
}

func testdata(tb testing.TB, name string) []byte {
	tb.Helper()
	return read(tb, filepath.Join("testdata", name))
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
