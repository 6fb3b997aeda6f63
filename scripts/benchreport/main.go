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
// over 10,000 workers (./gateway). Each benchmark runs -count times and
// its median is used. The gateway hop, stream and idle-stream figures
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

// goBench is one go test invocation.
type goBench struct {
	what      string
	pkgs      []string
	pattern   string
	benchtime string
	count     int
}

func benches(quick bool) []goBench {
	c := func(full int) int {
		if quick {
			return 1
		}
		return full
	}
	t := func(full, q string) string {
		if quick {
			return q
		}
		return full
	}
	return []goBench{
		{"sealing and opening against raw crypto/hpke", []string{"./seal"}, "Seal|Open", t("200x", "20x"), c(7)},
		{"TDX and SNP verification by the vendor libraries", []string{"./attestation/tdx", "./attestation/snp"}, "LibraryVerify$", t("40x", "4x"), c(5)},
		{"one GPU's verification", []string{"./attestation/nvgpu"}, "Verify$", t("10x", "2x"), c(5)},
		{"the client's cold verification", []string{"./client"}, "VerifyCold", t("40x", "4x"), c(5)},
		{"the client's cached verdict", []string{"./client"}, "VerifyCached", t("5000x", "500x"), c(5)},
		{"listing and routing over 10,000 workers", []string{"./gateway"}, "Listing|Route", t("1s", "200x"), c(3)},
	}
}

func run(o options) error {
	start := time.Now()
	m := measurements{}
	for _, b := range benches(o.quick) {
		fmt.Fprintf(os.Stderr, "bench: %s (%s, %d runs of %s)...\n", b.what, strings.Join(b.pkgs, " "), b.count, b.benchtime)
		args := append([]string{"test", "-run", "^$", "-bench", b.pattern, "-benchtime", b.benchtime, "-count", strconv.Itoa(b.count)}, b.pkgs...)
		cmd := exec.Command("go", args...)
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			os.Stderr.Write(out.Bytes())
			return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
		}
		if err := m.parse(&out); err != nil {
			return err
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
type measurements map[string][]result

// result is one benchmark line's metrics by unit ("ns/op", "cpu-ns/op").
type result map[string]float64

// parse reads go test -bench output.
func (m measurements) parse(r io.Reader) error {
	pkg := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = p[strings.LastIndexByte(p, '/')+1:]
			continue
		}
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
		res := result{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("benchmark line %q: %v", line, err)
			}
			res[f[i+1]] = v
		}
		m[pkg+"/"+name] = append(m[pkg+"/"+name], res)
	}
	return sc.Err()
}

// median is the median of unit over name's runs, and whether there were
// any.
func (m measurements) median(name, unit string) (float64, bool) {
	var v []float64
	for _, r := range m[name] {
		if x, ok := r[unit]; ok {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

// ns is the median ns/op of name; missing is NaN-free zero with ok false.
func (m measurements) ns(name string) (float64, bool) { return m.median(name, "ns/op") }

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

func us(ns float64) string { return fmt.Sprintf("%.1f µs", ns/1e3) }
func ms(ns float64) string { return fmt.Sprintf("%.2f ms", ns/1e6) }

var suites = []struct{ name, bench string }{{"ML-KEM-768+X25519", "mlkem768x25519"}, {"X25519", "x25519"}}
var sizes = []string{"1KiB", "16KiB"}

func buildRows(m measurements, gw gatewayResults) []row {
	var rows []row
	missing := func(what string) { rows = append(rows, row{what, "-", "not measured", "-", "-", "-"}) }

	for _, s := range suites {
		for _, z := range sizes {
			raw, ok1 := m.ns("seal/BenchmarkRawHPKESeal/" + s.bench + "/" + z)
			k3, ok2 := m.ns("seal/BenchmarkSealTo/" + s.bench + "/" + z + "/3cand")
			what := fmt.Sprintf("seal a %s request to 3 candidates, %s (seal.SealTo)", z, s.name)
			if !ok1 || !ok2 {
				missing(what)
				continue
			}
			r := k3 / (3 * raw)
			rows = append(rows, row{what, "3 raw crypto/hpke seals: " + us(3*raw), us(k3), fmt.Sprintf("%.2f×", r), "≤ 1.1×", yesNo(r <= 1.1)})
		}
	}
	for _, s := range suites {
		for _, z := range sizes {
			raw, ok1 := m.ns("seal/BenchmarkRawHPKEOpen/" + s.bench + "/" + z)
			op, ok2 := m.ns("seal/BenchmarkOpen/" + s.bench + "/" + z)
			what := fmt.Sprintf("open a %s request, %s (seal.Opener)", z, s.name)
			if !ok1 || !ok2 {
				missing(what)
				continue
			}
			rows = append(rows, row{what, "raw crypto/hpke open: " + us(raw), us(op), fmt.Sprintf("%.2f×", op/raw), "none set", "-"})
		}
	}
	for _, k := range []struct{ kind, pkg, lib string }{{"TDX", "tdx", "go-tdx-guest"}, {"SEV-SNP", "snp", "go-sev-guest"}} {
		lib, ok1 := m.ns(k.pkg + "/BenchmarkLibraryVerify")
		cold, ok2 := m.ns("client/BenchmarkVerifyCold/" + k.pkg)
		cached, ok3 := m.ns("client/BenchmarkVerifyCached/" + k.pkg)
		if ok1 && ok2 {
			rows = append(rows, row{fmt.Sprintf("%s cold verification by the client (bundle, signatures, chains, binding, policy)", k.kind),
				k.lib + "'s own verify: " + ms(lib), ms(cold), fmt.Sprintf("%.2f×", cold/lib), "none set", "-"})
		} else {
			missing(k.kind + " cold verification")
		}
		if ok2 && ok3 {
			rows = append(rows, row{fmt.Sprintf("%s cached verdict (client cache hit)", k.kind), "cold: " + ms(cold), us(cached),
				fmt.Sprintf("%.1f µs (%.4f× cold)", cached/1e3, cached/cold), "≤ 10 µs", yesNo(cached <= 10e3)})
		} else {
			missing(k.kind + " cached verdict")
		}
	}
	if g, ok := m.ns("nvgpu/BenchmarkVerify"); ok {
		rows = append(rows, row{"one NVIDIA GPU's evidence, cold (report, chain, OCSP, RIMs)", "no offline library exists", ms(g), ms(g), "none set", "-"})
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
			nginx = fmt.Sprintf(" (nginx adds %.1f µs)", h.NginxAddedP50)
		}
		rows = append(rows, row{"gateway hop latency at 1 connection, p50", fmt.Sprintf("direct: %.1f µs", h.DirectP50),
			fmt.Sprintf("%.1f µs", h.GatewayP50), fmt.Sprintf("+%.1f µs added%s", h.GatewayAddedP50, nginx), "≤ 60 µs added", yesNo(h.GatewayAddedP50 <= 60)})
	} else {
		missing("gateway hop (throughput against nginx, added latency)")
	}
	if s := gw.Stream; s != nil {
		rows = append(rows, row{fmt.Sprintf("time to first byte of a %d-chunk stream, p50", s.Chunks), fmt.Sprintf("direct: %.1f µs", s.DirectTTFB),
			fmt.Sprintf("%.1f µs", s.GatewayTTFB), fmt.Sprintf("+%.1f µs added", s.GatewayTTFB-s.DirectTTFB), "none set", "-"})
		nginx := ""
		if s.NginxChunk > 0 {
			nginx = fmt.Sprintf(" (nginx adds %.1f µs)", s.NginxAdded)
		}
		rows = append(rows, row{fmt.Sprintf("relay latency per chunk, %d chunks %.0f ms apart, p50", s.Chunks, s.GapUS/1e3), fmt.Sprintf("direct: %.1f µs", s.DirectChunk),
			fmt.Sprintf("%.1f µs", s.GatewayChunk), fmt.Sprintf("+%.1f µs added%s", s.AddedPerChunk, nginx), "≤ 10 µs added", yesNo(s.AddedPerChunk <= 10)})
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
		if v, ok := m.ns(fmt.Sprintf("gateway/BenchmarkListing/summarize/%d", n)); ok {
			cpu, _ := m.median(fmt.Sprintf("gateway/BenchmarkListing/summarize/%d", n), "cpu-ns/op")
			rows = append(rows, row{fmt.Sprintf("build a listing of %d candidates over 10,000 workers", n), "-", us(v), fmt.Sprintf("%s (CPU %s)", us(v), us(cpu)), "none set", "-"})
		}
	}
	for _, n := range []int{2, 4, 8} {
		name := fmt.Sprintf("gateway/BenchmarkRoute/candidates=%d", n)
		v, ok := m.ns(name)
		if !ok {
			missing(fmt.Sprintf("routing decision, %d candidates", n))
			continue
		}
		cpu, _ := m.median(name, "cpu-ns/op")
		rows = append(rows, row{fmt.Sprintf("routing decision among %d candidates, 10,000 workers", n), "-", us(v), fmt.Sprintf("%s (CPU %s)", us(v), us(cpu)), "≤ 5 µs", yesNo(v <= 5e3)})
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
	fmt.Fprintf(w, "\n%d of %d goals met.\n", met, goals)
}
