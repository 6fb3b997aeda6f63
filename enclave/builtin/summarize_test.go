package builtin

import (
	"errors"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/sealgate/sealgate/internal/fuzzseed"
)

// readSample returns the demo document.
func readSample(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile("../../internal/devnet/sample.txt") // the demo document, shared with devnet
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// startsUpper reports whether s begins with an uppercase letter.
func startsUpper(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsUpper(r)
}

// syntheticText returns n pseudo-random sentences over a vocabulary of a
// few hundred made-up words, deterministically.
func syntheticText(n int) string {
	syllables := []string{"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qui", "dor"}
	state := uint32(1)
	next := func(k int) int {
		state = state*1664525 + 1013904223
		return int(state>>8) % k
	}
	word := func() string {
		w := syllables[next(len(syllables))] + syllables[next(len(syllables))]
		if next(3) == 0 {
			w += syllables[next(len(syllables))]
		}
		return w
	}
	var b strings.Builder
	for i := range n {
		b.WriteString("The")
		for range 8 + next(12) {
			b.WriteString(" " + word())
		}
		b.WriteString(".")
		if i%6 == 5 {
			b.WriteString("\n\n")
		} else {
			b.WriteString(" ")
		}
	}
	return b.String()
}

// sentenceTexts returns the texts of the sentences of text.
func sentenceTexts(text string) []string {
	var out []string
	for _, s := range splitSentences(text, maxScoredSentences) {
		out = append(out, s.text)
	}
	return out
}

func TestSummarizeErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		opts    SummarizeOptions
		wantErr string
		wantIs  error
	}{
		{name: "empty", input: "", wantErr: "empty input", wantIs: ErrEmptyInput},
		{name: "white space only", input: " \n\t\r\n ", wantErr: "empty input", wantIs: ErrEmptyInput},
		{name: "punctuation only", input: "... !!! ? -- «»", wantErr: "text has no words", wantIs: ErrEmptyInput},
		{name: "invalid utf-8", input: "Hello there.\xff\xfe More text.", wantErr: "not valid utf-8"},
		{name: "negative sentences", input: "Hi.", opts: SummarizeOptions{Sentences: -1}, wantErr: "sentences is -1, want 0 or more"},
		{name: "ratio above one", input: "Hi.", opts: SummarizeOptions{Ratio: 1.5}, wantErr: "ratio is 1.5, want a value in [0, 1]"},
		{name: "negative ratio", input: "Hi.", opts: SummarizeOptions{Ratio: -0.1}, wantErr: "ratio is -0.1, want a value in [0, 1]"},
		{name: "nan ratio", input: "Hi.", opts: SummarizeOptions{Ratio: math.NaN()}, wantErr: "ratio is NaN"},
		{name: "infinite ratio", input: "Hi.", opts: SummarizeOptions{Ratio: math.Inf(1)}, wantErr: "ratio is +Inf"},
		{name: "options checked before text", input: "", opts: SummarizeOptions{Sentences: -3}, wantErr: "sentences is -3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Summarize(tt.input, tt.opts)
			if err == nil {
				t.Fatalf("Summarize() = %q, want error containing %q", got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			if msg := err.Error(); startsUpper(msg) || strings.HasSuffix(msg, ".") {
				t.Errorf("error %q should start lowercase and not end with a period", msg)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
		})
	}
}

func TestSummarizeSample(t *testing.T) {
	text := readSample(t)
	all := sentenceTexts(text)
	if len(all) < 25 {
		t.Fatalf("sample splits into %d sentences, want at least 25", len(all))
	}
	const want = 4
	got, err := summarizeSentences(text, SummarizeOptions{Sentences: want})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != want {
		t.Fatalf("got %d sentences, want %d: %q", len(got), want, got)
	}
	last := -1
	for _, s := range got {
		if !strings.Contains(text, s) {
			t.Errorf("sentence %q is not verbatim input text", s)
		}
		i := slices.Index(all, s)
		if i < 0 {
			t.Fatalf("%q is not one of the input's sentences", s)
		}
		if i <= last {
			t.Errorf("sentence %d (%q) comes after sentence %d: not in original order", i, s, last)
		}
		last = i
	}
	if slices.Equal(got, all[:want]) {
		t.Errorf("summary is just the first %d sentences", want)
	}
	summary, err := Summarize(text, SummarizeOptions{Sentences: want})
	if err != nil {
		t.Fatal(err)
	}
	if summary != strings.Join(got, " ") {
		t.Errorf("Summarize() = %q, want the sentences joined by spaces", summary)
	}
	// The sample plants its key mechanism, its verification step and its
	// conclusion in sentences that do not open the article.
	for _, phrase := range []string{"hardware enclave", "Remote attestation", "act of trust"} {
		if !strings.Contains(summary, phrase) {
			t.Errorf("summary misses the sentence with %q:\n%s", phrase, summary)
		}
	}
}

func TestSummarizeSampleDefault(t *testing.T) {
	text := readSample(t)
	n := len(sentenceTexts(text))
	got, err := summarizeSentences(text, SummarizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := int(math.Round(0.2 * float64(n))); len(got) != want {
		t.Errorf("default summary has %d sentences, want %d", len(got), want)
	}
	joined := strings.Join(got, " ")
	t.Logf("default summary of the sample:\n%s", joined)
	for _, phrase := range []string{"real obstacle", "hardware enclave", "Remote attestation", "act of trust"} {
		if !strings.Contains(joined, phrase) {
			t.Errorf("default summary misses %q:\n%s", phrase, joined)
		}
	}
	if strings.Contains(joined, "Sealed Records") {
		t.Errorf("default summary includes the heading:\n%s", joined)
	}
}

func TestSummarizeLength(t *testing.T) {
	text := readSample(t)
	n := len(sentenceTexts(text))
	tests := []struct {
		name string
		opts SummarizeOptions
		want int
	}{
		{name: "one sentence", opts: SummarizeOptions{Sentences: 1}, want: 1},
		{name: "more than available", opts: SummarizeOptions{Sentences: 1000}, want: n},
		{name: "ratio half", opts: SummarizeOptions{Ratio: 0.5}, want: int(math.Round(0.5 * float64(n)))},
		{name: "ratio one keeps all", opts: SummarizeOptions{Ratio: 1}, want: n},
		{name: "tiny ratio keeps one", opts: SummarizeOptions{Ratio: 0.001}, want: 1},
		{name: "sentences win over ratio", opts: SummarizeOptions{Sentences: 2, Ratio: 0.9}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := summarizeSentences(text, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Errorf("got %d sentences, want %d", len(got), tt.want)
			}
		})
	}
}

func TestWant(t *testing.T) {
	tests := []struct {
		opts SummarizeOptions
		n    int
		want int
	}{
		{SummarizeOptions{}, 1, 1},
		{SummarizeOptions{}, 4, 1},
		{SummarizeOptions{}, 10, 2},
		{SummarizeOptions{}, 31, 6},
		{SummarizeOptions{}, 1000, 8},
		{SummarizeOptions{Ratio: 0.2}, 1000, 200},
		{SummarizeOptions{Ratio: 1}, 7, 7},
		{SummarizeOptions{Sentences: 3}, 1, 3},
	}
	for _, tt := range tests {
		if got := tt.opts.want(tt.n); got != tt.want {
			t.Errorf("%+v.want(%d) = %d, want %d", tt.opts, tt.n, got, tt.want)
		}
	}
}

func TestSummarizeShortText(t *testing.T) {
	text := "Confidential computing protects data in use. Attestation proves which code runs."
	got, err := Summarize(text, SummarizeOptions{Sentences: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got != text {
		t.Errorf("Summarize() = %q, want the whole text %q", got, text)
	}
}

func TestSummarizeSkipsDuplicates(t *testing.T) {
	text := "The enclave encrypts patient records in memory. " +
		"The enclave encrypts patient records in memory! " +
		"THE ENCLAVE ENCRYPTS PATIENT RECORDS IN MEMORY. " +
		"Auditors review the measured code before release."
	got, err := summarizeSentences(text, SummarizeOptions{Sentences: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"The enclave encrypts patient records in memory.",
		"Auditors review the measured code before release.",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSummarizeCapsSentences(t *testing.T) {
	// Every sentence has its own term, so the graph has no edges and the
	// test stays fast under the race detector.
	var b strings.Builder
	for i := range maxScoredSentences + 500 {
		b.WriteString("Entry" + strconv.Itoa(i) + " is here. ")
	}
	text := b.String()
	all := splitSentences(text, math.MaxInt)
	if len(all) != maxScoredSentences+500 {
		t.Fatalf("synthetic text has %d sentences, want %d", len(all), maxScoredSentences+500)
	}
	position := make(map[string]int, len(all))
	for i, s := range all {
		position[s.text] = i
	}
	got, err := summarizeSentences(text, SummarizeOptions{Ratio: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != maxScoredSentences {
		t.Errorf("got %d sentences, want %d", len(got), maxScoredSentences)
	}
	for _, s := range got {
		if i := position[s]; i >= maxScoredSentences {
			t.Fatalf("sentence %d (%q) is beyond the first %d", i, s, maxScoredSentences)
		}
	}
}

func TestSummarizeDeterministic(t *testing.T) {
	text := readSample(t)
	// Many sentences with identical scores exercise the tie-breaks.
	ties := strings.Repeat("Alpha beta gamma delta. Epsilon zeta eta theta. ", 3) + "Iota kappa lambda mu."
	for _, input := range []string{text, ties} {
		want, err := Summarize(input, SummarizeOptions{Sentences: 3})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		results := make([]string, 16)
		for i := range results {
			wg.Go(func() {
				results[i], _ = Summarize(input, SummarizeOptions{Sentences: 3})
			})
		}
		wg.Wait()
		for i, got := range results {
			if got != want {
				t.Fatalf("run %d = %q, want %q", i, got, want)
			}
		}
	}
	got, _ := Summarize("Alpha beta gamma. Delta epsilon zeta. Eta theta iota.", SummarizeOptions{Sentences: 1})
	if got != "Alpha beta gamma." {
		t.Errorf("tie between unrelated sentences = %q, want the first one", got)
	}
}

func TestSplitSentences(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{
			name:  "titles",
			input: "Mr. Smith met Dr. Jones and Prof. Lee. They talked.",
			want:  []string{"Mr. Smith met Dr. Jones and Prof. Lee.", "They talked."},
		},
		{
			name:  "decimals",
			input: "Prices rose 3.5% in 2023. Analysts expected 2.75 instead.",
			want:  []string{"Prices rose 3.5% in 2023.", "Analysts expected 2.75 instead."},
		},
		{
			name:  "latin abbreviations",
			input: "Use tools, e.g. hammers, i.e. heavy ones. Then stop.",
			want:  []string{"Use tools, e.g. hammers, i.e. heavy ones.", "Then stop."},
		},
		{
			name:  "acronym inside sentence",
			input: "The U.S. Congress met on Monday. It voted.",
			want:  []string{"The U.S. Congress met on Monday.", "It voted."},
		},
		{
			name:  "acronym ends sentence",
			input: "She moved to the U.S. The move was hard.",
			want:  []string{"She moved to the U.S.", "The move was hard."},
		},
		{
			name:  "initials",
			input: "John F. Kennedy spoke. Crowds cheered.",
			want:  []string{"John F. Kennedy spoke.", "Crowds cheered."},
		},
		{
			name:  "number abbreviation",
			input: "See No. 5 for details. Say no. Then leave.",
			want:  []string{"See No. 5 for details.", "Say no.", "Then leave."},
		},
		{
			name:  "dates and streets",
			input: "It opened on Jan. 5 on Main St. The crowd came to St. Louis. It rained.",
			want:  []string{"It opened on Jan. 5 on Main St.", "The crowd came to St. Louis.", "It rained."},
		},
		{
			name:  "etc",
			input: "Bring pens, paper, etc. The rest is provided.",
			want:  []string{"Bring pens, paper, etc.", "The rest is provided."},
		},
		{
			name:  "ellipses",
			input: "Wait... what? Really… Yes!",
			want:  []string{"Wait... what?", "Really…", "Yes!"},
		},
		{
			name:  "quote after period",
			input: `He said "stop." Then he left. It was 'over.' Fine.`,
			want:  []string{`He said "stop."`, "Then he left.", "It was 'over.'", "Fine."},
		},
		{
			name:  "question in quotes continues",
			input: `"Is it safe?" she asked. “It is!” He smiled.`,
			want:  []string{`"Is it safe?" she asked.`, "“It is!”", "He smiled."},
		},
		{
			name:  "closing bracket",
			input: "The data stays sealed (by design.) Keys never leave.",
			want:  []string{"The data stays sealed (by design.)", "Keys never leave."},
		},
		{
			name:  "urls and versions",
			input: "Visit example.com or v1.2.3 today. Thanks.",
			want:  []string{"Visit example.com or v1.2.3 today.", "Thanks."},
		},
		{
			name:  "line breaks",
			input: "A Heading\nFirst sentence here. Second one\n\nNew paragraph without period\n- item one\n- item two",
			want:  []string{"A Heading", "First sentence here.", "Second one", "New paragraph without period", "- item one", "- item two"},
		},
		{
			name:  "hard wrapped line",
			input: "This sentence is wrapped\nacross two lines. Next.",
			want:  []string{"This sentence is wrapped\nacross two lines.", "Next."},
		},
		{
			name:  "windows line endings",
			input: "First line.\r\n\r\nSecond paragraph.\r\n",
			want:  []string{"First line.", "Second paragraph."},
		},
		{
			name:  "numbered list",
			input: "1. First item\n2. Second item",
			want:  []string{"1. First item", "2. Second item"},
		},
		{
			name:  "cjk",
			input: "你好。世界！",
			want:  []string{"你好。", "世界！"},
		},
		{
			name:  "punctuation fragments dropped",
			input: "Hello.\n...\n--\nBye.",
			want:  []string{"Hello.", "Bye."},
		},
		{
			name:  "no terminal punctuation",
			input: "  just some words  ",
			want:  []string{"just some words"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sentenceTexts(tt.input)
			if !slices.Equal(got, tt.want) {
				t.Errorf("split(%q)\n got %q\nwant %q", tt.input, got, tt.want)
			}
		})
	}
}

func TestSplitSentencesTerminated(t *testing.T) {
	got := splitSentences("Title\nLead. More.\n\n\nNext para.\n \nLast one", maxScoredSentences)
	var terminated []bool
	for _, s := range got {
		terminated = append(terminated, s.terminated)
	}
	if want := []bool{false, true, true, true, false}; !slices.Equal(terminated, want) {
		t.Errorf("terminated = %v, want %v", terminated, want)
	}
}

func TestSplitSentencesLimit(t *testing.T) {
	got := sentenceTexts("One. Two. Three. Four.")
	if len(got) != 4 {
		t.Fatalf("got %q, want 4 sentences", got)
	}
	limited := splitSentences("One. Two. Three. Four.", 2)
	if len(limited) != 2 || limited[1].text != "Two." {
		t.Errorf("limit 2 gave %+v", limited)
	}
}

func TestTerms(t *testing.T) {
	tests := []struct {
		input string
		want  []string
	}{
		{"The hospitals are sending records", []string{"hospital", "send", "record"}},
		{"Patient records, recorded; a record.", []string{"patient", "record", "record", "record"}},
		{"Sharing shares; computing computes.", []string{"shar", "shar", "comput", "comput"}},
		{"Policies processes boxes status analysis", []string{"policy", "process", "box", "status", "analysis"}},
		{"Running stopped copied", []string{"run", "stop", "copy"}},
		{"The hospital’s data isn't shared", []string{"hospital", "data", "shar"}},
		{"It costs 3.5 or 1,000 dollars", []string{"cost", "3.5", "1,000", "dollar"}},
		{"Ünïcödé wörds und 東京 stay", []string{"ünïcödé", "wörds", "und", "東京", "stay"}},
		{"not never no", []string{"not", "never", "no"}},
	}
	for _, tt := range tests {
		if got := terms(tt.input); !slices.Equal(got, tt.want) {
			t.Errorf("terms(%q) = %q, want %q", tt.input, got, tt.want)
		}
	}
}

func FuzzSummarize(f *testing.F) {
	// Seeds stay short: the fuzzer minimizes every new interesting input,
	// which takes quadratic time in its length.
	fuzzseed.Add(f, "Yet most hospitals still hesitate to send patient records to cloud AI services. Dr. Alvarez puts it bluntly: \"We are asked to trust.\"\n\nThe worry is well founded.", 3, 0.0)
	fuzzseed.Add(f, "Mr. Smith paid $3.5 million to the U.S. Treasury. It was late... Really? Yes!", 0, 0.5)
	fuzzseed.Add(f, "1. one\n2. two\n\n“Quoted.” he said. (Aside.) 東京。終わり！", 2, 0.0)
	fuzzseed.Add(f, "a. b. c. d. e. f.", 0, 0.0)
	fuzzseed.Add(f, "...!!!???", 1, 1.0)
	f.Fuzz(func(t *testing.T, text string, sentences int, ratio float64) {
		if !utf8.ValidString(text) {
			if _, err := Summarize(text, SummarizeOptions{}); err == nil {
				t.Fatal("invalid utf-8 accepted")
			}
			return
		}
		opts := SummarizeOptions{Sentences: sentences % 50, Ratio: ratio}
		got, err := summarizeSentences(text, opts)
		if opts.validate() != nil {
			if err == nil {
				t.Fatalf("invalid options %+v accepted", opts)
			}
			return
		}
		hasWord := strings.ContainsFunc(text, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) })
		if !hasWord {
			if !errors.Is(err, ErrEmptyInput) {
				t.Fatalf("text without words: err = %v, want ErrEmptyInput", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Summarize(%q, %+v): %v", text, opts, err)
		}
		if len(got) == 0 {
			t.Fatal("empty summary of a text with words")
		}
		if opts.Sentences > 0 && len(got) > opts.Sentences {
			t.Fatalf("got %d sentences, asked for %d", len(got), opts.Sentences)
		}
		for _, s := range got {
			if s == "" || !strings.Contains(text, s) {
				t.Fatalf("sentence %q is not a substring of the input", s)
			}
		}
		joined, err := Summarize(text, opts)
		if err != nil || joined != strings.Join(got, " ") {
			t.Fatalf("Summarize() = %q, %v; want the joined sentences", joined, err)
		}
	})
}

func BenchmarkSummarize(b *testing.B) {
	text := readSample(b)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Summarize(text, SummarizeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSummarizeMaxSentences(b *testing.B) {
	text := syntheticText(maxScoredSentences)
	if n := len(sentenceTexts(text)); n != maxScoredSentences {
		b.Fatalf("synthetic text has %d sentences, want %d", n, maxScoredSentences)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Summarize(text, SummarizeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
