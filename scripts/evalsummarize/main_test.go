package main

import (
	"slices"
	"strings"
	"testing"
)

// TestCorpus checks that every text has a reference summary and that the
// lead baseline splits each text exactly as the builtin summarizer does,
// so that a change to the corpus or to the summarizer's splitter that
// would make the evaluation unfair fails here rather than in a report.
func TestCorpus(t *testing.T) {
	docs, err := load("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 5 || len(docs) > 8 {
		t.Errorf("found %d texts, want 5 to 8", len(docs))
	}
	rows, err := evaluate(docs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.want < 1 || r.sentences <= 3*r.want {
			t.Errorf("%s: %d sentences for a summary of %d, want a text several times longer than its summary", r.name, r.sentences, r.want)
		}
	}
}

func TestSentences(t *testing.T) {
	text := "\"You are behind,\" she says. \"Be only a bit behind.\" It cost 2.1 million!\nHeading\n\nIs it? Yes (mostly.) End"
	want := []string{`"You are behind," she says.`, `"Be only a bit behind."`, "It cost 2.1 million!", "Heading", "Is it?", "Yes (mostly.)", "End"}
	if got := sentences(text); !slices.Equal(got, want) {
		t.Fatalf("sentences =\n%q\nwant\n%q", got, want)
	}
}

func TestReport(t *testing.T) {
	rows := []row{
		{name: "a", sentences: 10, want: 2, sum1: score{F: 0.4}, lead1: score{F: 0.2}, sum2: score{F: 0.1}, lead2: score{F: 0.1}},
		{name: "b", sentences: 12, want: 3, sum1: score{F: 0.2}, lead1: score{F: 0.2}, sum2: score{F: 0.1}, lead2: score{}, sameAsLead: true},
	}
	var b strings.Builder
	report(&b, rows, false)
	for _, want := range []string{
		"| a | 10 | 2 | 0.400 | 0.200 | 0.100 | 0.100 |",
		"| b (= lead) | 12 | 3 | 0.200 | 0.200 | 0.100 | 0.000 |",
		"| **mean** | | | **0.300** | **0.200** | **0.100** | **0.050** |",
		"ROUGE-1 1.50, ROUGE-2 2.00",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
