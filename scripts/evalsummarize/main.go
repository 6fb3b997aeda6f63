// Command evalsummarize scores the builtin summarizer (enclave/builtin)
// against reference summaries with ROUGE-1 and ROUGE-2 F1, next to a lead
// baseline computed in the same run: the text's first N sentences, where N
// is the number of sentences of the reference, which the summarizer is also
// asked for. It prints a Markdown table and the summarizer's mean scores as
// a ratio of the baseline's. scripts/eval-summarize runs it; the texts and
// their provenance are in testdata/ and its README.
//
//	go run ./scripts/evalsummarize [-dir scripts/evalsummarize/testdata] [-v]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sealgate/sealgate/enclave/builtin"
)

func main() {
	dir := flag.String("dir", "scripts/evalsummarize/testdata", "directory of NAME.txt texts and NAME.ref.txt reference summaries")
	verbose := flag.Bool("v", false, "also print each summary and baseline")
	flag.Parse()
	docs, err := load(*dir)
	if err == nil {
		var rows []row
		if rows, err = evaluate(docs); err == nil {
			report(os.Stdout, rows, *verbose)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "evalsummarize:", err)
		os.Exit(1)
	}
}

// doc is one text of the corpus and its reference summary.
type doc struct {
	name, text, ref string
}

// load reads every NAME.txt in dir with its NAME.ref.txt, sorted by name.
func load(dir string) ([]doc, error) {
	texts, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	var docs []doc
	for _, path := range texts {
		if strings.HasSuffix(path, ".ref.txt") {
			continue
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		refPath := strings.TrimSuffix(path, ".txt") + ".ref.txt"
		ref, err := os.ReadFile(refPath)
		if err != nil {
			return nil, fmt.Errorf("reference summary: %w", err)
		}
		docs = append(docs, doc{name: strings.TrimSuffix(filepath.Base(path), ".txt"), text: string(text), ref: string(ref)})
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: found no NAME.txt text, want at least one with its NAME.ref.txt", dir)
	}
	return docs, nil
}

// row is one text's scores.
type row struct {
	name            string
	sentences, want int // the text's sentences, and the summary's
	summary, lead   string
	sum1, sum2      score // the builtin summarizer's ROUGE-1 and ROUGE-2
	lead1, lead2    score // the baseline's
	sameAsLead      bool  // the summary is the baseline
}

// evaluate summarizes every text with the builtin summarizer and the lead
// baseline, asking both for as many sentences as the reference has.
func evaluate(docs []doc) ([]row, error) {
	var rows []row
	for _, d := range docs {
		sents, err := splitChecked(d.text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		n := len(sentences(d.ref))
		if n == 0 {
			return nil, fmt.Errorf("%s: reference summary has no sentence", d.name)
		}
		sum, err := builtin.Summarize(d.text, builtin.SummarizeOptions{Sentences: n})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		lead := strings.Join(sents[:min(n, len(sents))], " ")
		rows = append(rows, row{
			name: d.name, sentences: len(sents), want: n, summary: sum, lead: lead,
			sum1: rougeN(sum, d.ref, 1), sum2: rougeN(sum, d.ref, 2),
			lead1: rougeN(lead, d.ref, 1), lead2: rougeN(lead, d.ref, 2),
			sameAsLead: sum == lead,
		})
	}
	return rows, nil
}

// splitChecked splits text with sentences and checks that the builtin
// summarizer splits it the same way: asked to keep every sentence, it
// returns them all joined by single spaces. Otherwise the baseline's
// sentences would not be the summarizer's, and the comparison unfair.
func splitChecked(text string) ([]string, error) {
	sents := sentences(text)
	all, err := builtin.Summarize(text, builtin.SummarizeOptions{Ratio: 1})
	if err != nil {
		return nil, err
	}
	if joined := strings.Join(sents, " "); joined != all {
		i := 0
		for i < min(len(joined), len(all)) && joined[i] == all[i] {
			i++
		}
		return nil, fmt.Errorf("sentence split differs from the builtin summarizer's at byte %d: found %q, want %q (change the text so both split it alike)",
			i, excerpt(joined, i), excerpt(all, i))
	}
	return sents, nil
}

func excerpt(s string, i int) string {
	return s[max(0, i-30):min(len(s), i+30)]
}

// sentences splits text at terminal punctuation (. ! ?, with any closing
// quotes or brackets after it) followed by white space, and at line
// breaks. It knows no abbreviations: the corpus avoids them, and
// splitChecked catches a text where this split and the summarizer's differ.
func sentences(text string) []string {
	var out []string
	for line := range strings.Lines(text) {
		start := 0
		for i, r := range line {
			if i < start || !strings.ContainsRune(".!?", r) {
				continue
			}
			end := i + utf8.RuneLen(r)
			for end < len(line) {
				c, size := utf8.DecodeRuneInString(line[end:])
				if !strings.ContainsRune("\"')]\u201d\u2019", c) {
					break
				}
				end += size
			}
			if next, _ := utf8.DecodeRuneInString(line[end:]); end == len(line) || unicode.IsSpace(next) {
				if s := strings.TrimSpace(line[start:end]); s != "" {
					out = append(out, s)
				}
				start = end
			}
		}
		if s := strings.TrimSpace(line[start:]); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// report prints the table of rows, their means and the ratios.
func report(w io.Writer, rows []row, verbose bool) {
	fmt.Fprintln(w, "| text | sentences | summary | ROUGE-1 F1 builtin | ROUGE-1 F1 lead | ROUGE-2 F1 builtin | ROUGE-2 F1 lead |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	var s1, l1, s2, l2 float64
	for _, r := range rows {
		note := ""
		if r.sameAsLead {
			note = " (= lead)"
		}
		fmt.Fprintf(w, "| %s%s | %d | %d | %.3f | %.3f | %.3f | %.3f |\n", r.name, note, r.sentences, r.want, r.sum1.F, r.lead1.F, r.sum2.F, r.lead2.F)
		s1, l1, s2, l2 = s1+r.sum1.F, l1+r.lead1.F, s2+r.sum2.F, l2+r.lead2.F
	}
	n := float64(len(rows))
	fmt.Fprintf(w, "| **mean** | | | **%.3f** | **%.3f** | **%.3f** | **%.3f** |\n", s1/n, l1/n, s2/n, l2/n)
	fmt.Fprintf(w, "\nbuiltin / lead-N, mean F1 over %d texts: ROUGE-1 %s, ROUGE-2 %s\n", len(rows), ratio(s1, l1), ratio(s2, l2))
	if !verbose {
		return
	}
	for _, r := range rows {
		fmt.Fprintf(w, "\n## %s\n\nbuiltin: %s\n\nlead-%d: %s\n", r.name, r.summary, r.want, r.lead)
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a (baseline 0)"
	}
	return fmt.Sprintf("%.2f", a/b)
}
