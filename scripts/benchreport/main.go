// Command benchreport runs sealgate's Go benchmarks and gathers the
// figures of scripts/benchgateway's runs into one Markdown table, each
// row a measurement, its baseline measured in the same run, the ratio or
// figure, the goal issue 9 sets and whether it is met. scripts/bench
// runs it; see that script for the whole report.
//
// It runs, with go test: sealing to three candidates and opening, against
// raw crypto/hpke (./seal, the benchmarks scripts/bench-seal runs);
// the client's cold and cached verification per TEE kind (./client)
// against the vendor libraries' own verification (./attestation/tdx,
// ./attestation/snp; as scripts/bench-attestation) and one GPU's
// verification (./attestation/nvgpu); building a listing and routing
// over 10,000 workers (./gateway). Each package's test binary is built
// once. A measurement and its baseline run in rounds, each round every
// one in turn, and a ratio is the median of the rounds' ratios; values
// are medians over every run. The gateway hop, stream and idle-stream figures
// come from the JSON files scripts/benchgateway wrote (-json); a file
// not given leaves its rows out. The machines are shared and noisy:
// read the ratios.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "few, short runs: a smoke check of the report, not a measurement")
	flag.StringVar(&o.hop, "hop", "", "JSON of scripts/benchgateway -mode hop")
	flag.StringVar(&o.stream, "stream", "", "JSON of scripts/benchgateway -mode stream")
	flag.StringVar(&o.idle, "idle", "", "JSON of scripts/benchgateway -mode idle")
	flag.StringVar(&o.out, "out", "", "also write the table to this file")
	flag.StringVar(&o.note, "note", "", "a line to print under the table (how it was run)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

type options struct {
	quick             bool
	hop, stream, idle string
	out               string
	note              string
}

// goBench is one benchmark pattern of one package's test binary.
type goBench struct {
	what      string
	pkg       string // relative to the module root; its base name names its results
	pattern   string
	benchtime string
	// rounds runs the pattern once per round, every rounds pattern in
	// turn, so that a ratio is taken between runs seconds apart; the
	// others run count times in a row after the rounds.
	rounds bool
	count  int
}

func benches(quick bool) []goBench {
	t := func(full, q string) string {
		if quick {
			return q
		}
		return full
	}
	return []goBench{
		{"sealing and opening against raw crypto/hpke", "./seal", "Seal|Open", t("200x", "20x"), true, 1},
		{"TDX verification by go-tdx-guest", "./attestation/tdx", "LibraryVerify$", t("40x", "4x"), true, 1},
		{"SNP verification by go-sev-guest", "./attestation/snp", "LibraryVerify$", t("40x", "4x"), true, 1},
		{"the client's cold verification", "./client", "VerifyCold", t("40x", "4x"), true, 1},
		{"the client's cached verdict", "./client", "VerifyCached", t("5000x", "500x"), true, 1},
		{"one GPU's verification", "./attestation/nvgpu", "Verify$", t("10x", "2x"), false, 3},
		// Its fleet of 10,000 workers takes seconds to build in each
		// process: one process, count runs.
		{"listing and routing over 10,000 workers", "./gateway", "Listing|Route", t("1s", "200x"), false, 3},
	}
}

func run(o options) error {
	start := time.Now()
	m := measurements{}
	bin, err := os.MkdirTemp("", "benchreport-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	all := benches(o.quick)
	built := map[string]string{}
	for _, b := range all {
		if built[b.pkg] != "" {
			continue
		}
		exe := filepath.Join(bin, filepath.Base(b.pkg)+".test")
		fmt.Fprintf(os.Stderr, "bench: building the test binary of %s\n", b.pkg)
		cmd := exec.Command("go", "test", "-c", "-o", exe, b.pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go test -c %s: %w", b.pkg, err)
		}
		built[b.pkg] = exe
	}
	runBench := func(b goBench, round, count int) error {
		exe, err := filepath.Abs(built[b.pkg])
		if err != nil {
			return err
		}
		args := []string{"-test.run", "^$", "-test.bench", b.pattern, "-test.benchtime", b.benchtime, "-test.count", strconv.Itoa(count)}
		cmd := exec.Command(exe, args...)
		cmd.Dir = b.pkg // tests read their testdata relative to it
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Run(); err != nil {
			os.Stderr.Write(out.Bytes())
			return fmt.Errorf("%s %s: %w", b.pkg, strings.Join(args, " "), err)
		}
		return m.parse(&out, filepath.Base(b.pkg), round)
	}
	rounds := 7
	if o.quick {
		rounds = 1
	}
	for r := range rounds {
		fmt.Fprintf(os.Stderr, "bench: round %d of %d: sealing and opening, verification cold and cached (each against its baseline)\n", r+1, rounds)
		for _, b := range all {
			if b.rounds {
				if err := runBench(b, r, b.count); err != nil {
					return err
				}
			}
		}
	}
	for _, b := range all {
		if !b.rounds {
			fmt.Fprintf(os.Stderr, "bench: %s (%s, %d runs of %s)\n", b.what, b.pkg, b.count, b.benchtime)
			if err := runBench(b, 0, b.count); err != nil {
				return err
			}
		}
	}
	var gw gatewayResults
	for _, f := range []string{o.hop, o.stream, o.idle} {
		if f == "" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &gw); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	var table bytes.Buffer
	writeTable(&table, buildRows(m, gw))
	note := o.note
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			note = strings.TrimSpace(note + " load average " + strings.Join(f[:3], " ") + " at the end.")
		}
	}
	if note != "" {
		fmt.Fprintf(&table, "\n%s\n", note)
	}
	if o.quick {
		fmt.Fprintf(&table, "\n-quick: a smoke check of the report with few, short runs; these are not measurements.\n")
	}
	os.Stdout.Write(table.Bytes())
	if o.out != "" {
		if err := os.WriteFile(o.out, table.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %s\n", o.out)
	}
	fmt.Fprintf(os.Stderr, "bench: go benchmarks took %v\n", time.Since(start).Round(time.Second))
	return nil
}

// measurements are benchmark results by package base name and benchmark
// name, GOMAXPROCS suffix removed: "seal/BenchmarkSealTo/x25519/1KiB/3cand".
type measurements map[string][]sample

// sample is one benchmark line: its round and its metrics by unit
// ("ns/op", "cpu-ns/op").
type sample struct {
	round   int
	metrics map[string]float64
}

// parse reads go test -bench output of package pkg (its base name) in a
// round.
func (m measurements) parse(r io.Reader, pkg string, round int) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		s := sample{round: round, metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("benchmark line %q: %v", line, err)
			}
			s.metrics[f[i+1]] = v
		}
		m[pkg+"/"+name] = append(m[pkg+"/"+name], s)
	}
	return sc.Err()
}

// median is the median of unit over name's samples, of round if it is
// not negative, and whether there were any.
func (m measurements) median(name, unit string, round int) (float64, bool) {
	var v []float64
	for _, s := range m[name] {
		if x, ok := s.metrics[unit]; ok && (round < 0 || s.round == round) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	return medianOf(v), true
}

func medianOf(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// ns is the median ns/op of name over every round.
func (m measurements) ns(name string) (float64, bool) { return m.median(name, "ns/op", -1) }

// ratio is the median over the rounds of f(a's unit/op, b's unit/op) in
// the same round: the baseline b ran seconds from a, whatever the
// machine's load did between rounds.
func (m measurements) ratio(unit, a, b string, f func(a, b float64) float64) (float64, bool) {
	rounds := map[int]bool{}
	for _, s := range m[a] {
		rounds[s.round] = true
	}
	var v []float64
	for r := range rounds {
		x, ok1 := m.median(a, unit, r)
		y, ok2 := m.median(b, unit, r)
		if ok1 && ok2 {
			v = append(v, f(x, y))
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	return medianOf(v), true
}

// cpuUnit is the unit goals are judged in when every benchmark compared
// reports it: the process's CPU time per operation, which on a shared
// machine does not count the waits for a CPU that other processes hold.
// The wall time is shown beside it.
const cpuUnit = "cpu-ns/op"

// unitFor is cpuUnit if each of names reports it, else ns/op.
func (m measurements) unitFor(names ...string) string {
	for _, n := range names {
		if _, ok := m.median(n, cpuUnit, -1); !ok {
			return "ns/op"
		}
	}
	return cpuUnit
}

// timed describes name's median time per operation with format: CPU and
// wall time when it reports both.
func (m measurements) timed(name string, format func(float64) string) string {
	wall, _ := m.ns(name)
	if cpu, ok := m.median(name, cpuUnit, -1); ok {
		return fmt.Sprintf("%s CPU (%s wall)", format(cpu), format(wall))
	}
	return format(wall)
}

// ratioText is the ratio of a to b in the unit goals are judged in,
// with the wall-time ratio beside it when that unit is CPU time.
func (m measurements) ratioText(a, b string, f func(a, b float64) float64) (string, float64) {
	unit := m.unitFor(a, b)
	r, _ := m.ratio(unit, a, b, f)
	if unit != cpuUnit {
		return times(r), r
	}
	w, _ := m.ratio("ns/op", a, b, f)
	return fmt.Sprintf("%s CPU (%s wall)", times(r), times(w)), r
}

// times formats a ratio, with four decimals below 0.1.
func times(r float64) string {
	if r < 0.1 {
		return fmt.Sprintf("%.4f×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}

// gatewayResults mirror scripts/benchgateway's results JSON (the fields
// used here).
type gatewayResults struct {
	Hop *struct {
		Conns                  int     `json:"conns"`
		DirectRPS              float64 `json:"direct_rps"`
		GatewayRPS             float64 `json:"gateway_rps"`
		NginxRPS               float64 `json:"nginx_rps"`
		GatewayOverNginx       float64 `json:"gateway_over_nginx"`
		GatewayOverNginxPerCPU float64 `json:"gateway_over_nginx_per_cpu"`
		DirectP50              float64 `json:"direct_p50_us"`
		GatewayP50             float64 `json:"gateway_p50_us"`
		GatewayAddedP50        float64 `json:"gateway_added_p50_us"`
		NginxAddedP50          float64 `json:"nginx_added_p50_us"`
	} `json:"hop"`
	Stream *struct {
		Chunks        int     `json:"chunks"`
		GapUS         float64 `json:"gap_us"`
		Runs          int     `json:"runs"`
		DirectTTFB    float64 `json:"direct_ttfb_us"`
		GatewayTTFB   float64 `json:"gateway_ttfb_us"`
		DirectChunk   float64 `json:"direct_chunk_latency_us"`
		GatewayChunk  float64 `json:"gateway_chunk_latency_us"`
		AddedPerChunk float64 `json:"added_per_chunk_us"`
		NginxChunk    float64 `json:"nginx_chunk_latency_us"`
		NginxAdded    float64 `json:"nginx_added_per_chunk_us"`
	} `json:"stream"`
	Idle *struct {
		Streams int `json:"streams"`
		Before  struct {
			RSS int64 `json:"rss"`
		} `json:"before"`
		Open struct {
			RSS        int64 `json:"rss"`
			Goroutines int   `json:"goroutines"`
		} `json:"open"`
		RSSPerStream  float64 `json:"rss_per_stream"`
		HeapPerStream float64 `json:"heap_per_stream"`
	} `json:"idle"`
}

// row is one line of the report.
type row struct {
	measurement string
	baseline    string
	value       string
	figure      string // the ratio to the baseline, or the figure the goal judges
	goal        string
	met         string // "yes", "no" or "-" when there is no goal
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func div(a, b float64) float64 { return a / b }

func us(ns float64) string { return fmt.Sprintf("%.1f µs", ns/1e3) }
func ms(ns float64) string { return fmt.Sprintf("%.2f ms", ns/1e6) }

var suites = []struct{ name, bench string }{{"ML-KEM-768+X25519", "mlkem768x25519"}, {"X25519", "x25519"}}
var sizes = []string{"1KiB", "16KiB"}

func buildRows(m measurements, gw gatewayResults) []row {
	var rows []row
	missing := func(what string) { rows = append(rows, row{what, "-", "not measured", "-", "-", "-"}) }

	for _, s := range suites {
		for _, z := range sizes {
			raw, k3 := "seal/BenchmarkRawHPKESeal/"+s.bench+"/"+z, "seal/BenchmarkSealTo/"+s.bench+"/"+z+"/3cand"
			what := fmt.Sprintf("seal a %s request to 3 candidates, %s (seal.SealTo)", z, s.name)
			if len(m[raw]) == 0 || len(m[k3]) == 0 {
				missing(what)
				continue
			}
			text, r := m.ratioText(k3, raw, func(a, b float64) float64 { return a / (3 * b) })
			rows = append(rows, row{what, "3 raw crypto/hpke seals, each " + m.timed(raw, us), m.timed(k3, us), text, "≤ 1.1×", yesNo(r <= 1.1)})
		}
	}
	for _, s := range suites {
		for _, z := range sizes {
			raw, op := "seal/BenchmarkRawHPKEOpen/"+s.bench+"/"+z, "seal/BenchmarkOpen/"+s.bench+"/"+z
			what := fmt.Sprintf("open a %s request, %s (seal.Opener)", z, s.name)
			if len(m[raw]) == 0 || len(m[op]) == 0 {
				missing(what)
				continue
			}
			text, _ := m.ratioText(op, raw, div)
			rows = append(rows, row{what, "raw crypto/hpke open: " + m.timed(raw, us), m.timed(op, us), text, "none set", "-"})
		}
	}
	for _, k := range []struct{ kind, pkg, lib, sub string }{
		{"TDX", "tdx", "go-tdx-guest", "tdx"}, {"SEV-SNP", "snp", "go-sev-guest", "snp"}, {"TDX with one GPU's evidence (62 KiB bundle)", "", "", "tdx#01"},
	} {
		lib := k.pkg + "/BenchmarkLibraryVerify"
		cold, cached := "client/BenchmarkVerifyCold/"+k.sub, "client/BenchmarkVerifyCached/"+k.sub
		if len(m[cold]) == 0 {
			if k.pkg != "" {
				missing(k.kind + " cold verification")
			}
			continue
		}
		if k.pkg != "" {
			if len(m[lib]) == 0 {
				missing(k.kind + " cold verification against " + k.lib)
			} else {
				text, _ := m.ratioText(cold, lib, div)
				rows = append(rows, row{fmt.Sprintf("%s cold verification by the client (bundle, signatures, chains, binding, policy)", k.kind),
					k.lib + "'s own verify: " + m.timed(lib, ms), m.timed(cold, ms), text, "none set", "-"})
			}
		}
		if len(m[cached]) == 0 {
			missing(k.kind + " cached verdict")
			continue
		}
		text, _ := m.ratioText(cached, cold, div)
		v, _ := m.median(cached, m.unitFor(cached), -1)
		rows = append(rows, row{fmt.Sprintf("%s cached verdict (client cache hit)", k.kind), "cold: " + m.timed(cold, ms), m.timed(cached, us),
			text + " of cold", "≤ 10 µs", yesNo(v <= 10e3)})
	}
	if g := "nvgpu/BenchmarkVerify"; len(m[g]) > 0 {
		rows = append(rows, row{"one NVIDIA GPU's evidence, cold (report, chain, OCSP, RIMs)", "no offline library exists", m.timed(g, ms), "-", "none set", "-"})
	}

	if h := gw.Hop; h != nil {
		if h.NginxRPS > 0 {
			rows = append(rows, row{fmt.Sprintf("gateway hop throughput at %d connections (sealed 2 KiB echo, plain HTTP/1.1)", h.Conns),
				fmt.Sprintf("nginx proxy_pass: %.0f req/s", h.NginxRPS), fmt.Sprintf("%.0f req/s", h.GatewayRPS),
				fmt.Sprintf("%.2f× (per CPU second: %.2f×)", h.GatewayOverNginx, h.GatewayOverNginxPerCPU), "≥ 1.0× nginx", yesNo(h.GatewayOverNginx >= 1.0)})
		} else {
			missing("gateway hop throughput against nginx (run without nginx)")
		}
		rows = append(rows, row{fmt.Sprintf("gateway hop throughput at %d connections, against going direct", h.Conns),
			fmt.Sprintf("direct to the worker: %.0f req/s", h.DirectRPS), fmt.Sprintf("%.0f req/s", h.GatewayRPS),
			fmt.Sprintf("%.2f×", h.GatewayRPS/h.DirectRPS), "none set", "-"})
		nginx := ""
		if h.NginxRPS > 0 {
			nginx = fmt.Sprintf(" (nginx: %+.1f µs)", h.NginxAddedP50)
		}
		rows = append(rows, row{"gateway hop latency at 1 connection, p50", fmt.Sprintf("direct: %.1f µs", h.DirectP50),
			fmt.Sprintf("%.1f µs", h.GatewayP50), fmt.Sprintf("%+.1f µs added%s", h.GatewayAddedP50, nginx), "≤ 60 µs added", yesNo(h.GatewayAddedP50 <= 60)})
	} else {
		missing("gateway hop (throughput against nginx, added latency)")
	}
	if s := gw.Stream; s != nil {
		rows = append(rows, row{fmt.Sprintf("time to first byte of a %d-chunk stream, p50", s.Chunks), fmt.Sprintf("direct: %.1f µs", s.DirectTTFB),
			fmt.Sprintf("%.1f µs", s.GatewayTTFB), fmt.Sprintf("%+.1f µs added", s.GatewayTTFB-s.DirectTTFB), "none set", "-"})
		nginx := ""
		if s.NginxChunk > 0 {
			nginx = fmt.Sprintf(" (nginx: %+.1f µs)", s.NginxAdded)
		}
		rows = append(rows, row{fmt.Sprintf("relay latency per chunk, %d chunks %.0f ms apart, p50", s.Chunks, s.GapUS/1e3), fmt.Sprintf("direct: %.1f µs", s.DirectChunk),
			fmt.Sprintf("%.1f µs", s.GatewayChunk), fmt.Sprintf("%+.1f µs added%s", s.AddedPerChunk, nginx), "≤ 10 µs added", yesNo(s.AddedPerChunk <= 10)})
	} else {
		missing("stream time to first byte and per-chunk relay latency")
	}
	if i := gw.Idle; i != nil {
		rows = append(rows, row{fmt.Sprintf("gateway memory per idle stream, %d streams open (TLS on both links)", i.Streams),
			fmt.Sprintf("gateway RSS before: %.1f MiB", float64(i.Before.RSS)/(1<<20)), fmt.Sprintf("RSS %.1f MiB", float64(i.Open.RSS)/(1<<20)),
			fmt.Sprintf("%.1f KiB/stream RSS (Go heap + stacks: %.1f KiB)", i.RSSPerStream/1024, i.HeapPerStream/1024), "≤ 64 KiB", yesNo(i.RSSPerStream <= 64<<10)})
	} else {
		missing("gateway memory per idle stream")
	}

	for _, n := range []int{8, 16} {
		if name := fmt.Sprintf("gateway/BenchmarkListing/summarize/%d", n); len(m[name]) > 0 {
			rows = append(rows, row{fmt.Sprintf("build a listing of %d candidates over 10,000 workers", n), "-", m.timed(name, us), "-", "none set", "-"})
		}
	}
	for _, n := range []int{2, 4, 8} {
		name := fmt.Sprintf("gateway/BenchmarkRoute/candidates=%d", n)
		if len(m[name]) == 0 {
			missing(fmt.Sprintf("routing decision, %d candidates", n))
			continue
		}
		v, _ := m.median(name, m.unitFor(name), -1)
		rows = append(rows, row{fmt.Sprintf("routing decision among %d candidates, 10,000 workers", n), "-", m.timed(name, us), "-", "≤ 5 µs", yesNo(v <= 5e3)})
	}
	return rows
}

// writeTable writes rows as a Markdown table and a count of the goals met.
func writeTable(w io.Writer, rows []row) {
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	fmt.Fprintln(w, "| measurement | baseline (same run) | value | ratio / figure | goal | met? |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- |")
	var goals, met int
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", esc(r.measurement), esc(r.baseline), esc(r.value), esc(r.figure), esc(r.goal), esc(r.met))
		if r.met == "yes" || r.met == "no" {
			goals++
			if r.met == "yes" {
				met++
			}
		}
	}
	fmt.Fprintf(w, "\n%d of %d goals met. Benchmarks that report the process's CPU time per operation (cpu-ns/op) are judged by it, as the machine is shared; their wall time is shown beside it. The network rows are wall time.\n", met, goals)
}
