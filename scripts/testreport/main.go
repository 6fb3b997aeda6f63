// Command testreport reads `go test -json` output on stdin and prints what
// a person needs: one line per package, the output of every failed test,
// every skipped test with its reason, and a closing line
// "N passed, N failed, N skipped". With -ci=true any skipped test is a
// failure, so CI cannot pass on tests that did not run.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	ci := flag.Bool("ci", false, "fail when any test is skipped")
	flag.Parse()
	type key struct{ pkg, test string }
	output := map[key]*strings.Builder{}
	var passed, failed, skipped int
	var failures, skips []key
	pkgStatus := map[string]string{}
	var pkgs []string

	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			fmt.Println(string(line)) // build errors arrive as plain text
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "build-output":
			fmt.Print(e.Output)
		case "build-fail":
			failures = append(failures, k)
		case "output":
			b := output[k]
			if b == nil {
				b = &strings.Builder{}
				output[k] = b
			}
			if b.Len() < 64<<10 {
				b.WriteString(e.Output)
			}
		case "pass", "fail", "skip":
			if e.Test == "" {
				if _, seen := pkgStatus[e.Package]; !seen {
					pkgs = append(pkgs, e.Package)
				}
				pkgStatus[e.Package] = fmt.Sprintf("%s\t%s\t%.2fs", e.Action, e.Package, e.Elapsed)
				if e.Action == "fail" {
					failures = append(failures, k)
				}
				continue
			}
			if strings.Contains(e.Test, "/") { // count top-level tests only
				if e.Action == "fail" {
					failures = append(failures, k)
				}
				continue
			}
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failed++
				failures = append(failures, k)
			case "skip":
				skipped++
				skips = append(skips, k)
			}
		}
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		if !strings.HasPrefix(pkgStatus[p], "skip") { // packages without tests
			fmt.Println(pkgStatus[p])
		}
	}
	for _, k := range failures {
		if b := output[k]; b != nil {
			fmt.Printf("\n--- FAIL %s %s\n%s", k.pkg, k.test, b.String())
		}
	}
	for _, k := range skips {
		reason := ""
		if b := output[k]; b != nil {
			reason = strings.TrimSpace(b.String())
		}
		fmt.Printf("SKIP %s %s: %s\n", k.pkg, k.test, reason)
	}
	fmt.Printf("\n%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || len(failures) > 0 {
		os.Exit(1)
	}
	if *ci && skipped > 0 {
		fmt.Println("CI=true: skipped tests count as failures; install what they need in scripts/setup")
		os.Exit(1)
	}
}
