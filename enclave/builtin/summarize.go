package builtin

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// Summarization limits and defaults.
const (
	// maxScoredSentences is the number of sentences, counted from the start
	// of the text, that are split, scored and eligible for the summary;
	// the rest of a longer text is ignored. It bounds the O(n²) similarity
	// computation.
	maxScoredSentences = 2000
	// defaultRatio is the share of sentences kept when both Sentences and
	// Ratio are zero.
	defaultRatio = 0.2
	// defaultMaxSentences caps the summary length when both Sentences and
	// Ratio are zero.
	defaultMaxSentences = 8
	// redundancy is the cosine similarity at or above which a sentence is a
	// near-duplicate of one already selected and is skipped.
	redundancy = 0.8
)

// ErrEmptyInput is returned by Summarize when the text is empty, holds only
// white space, or has no words at all.
var ErrEmptyInput = errors.New("builtin: empty input")

// SummarizeOptions controls the length of a summary. The zero value asks
// for a fifth of the sentences, between one and eight of them.
type SummarizeOptions struct {
	// Sentences is the number of sentences wanted. Zero means the number is
	// derived from Ratio. Negative values are rejected. A text with fewer
	// distinct sentences yields all of them.
	Sentences int
	// Ratio is the share of the text's sentences kept when Sentences is
	// zero, rounded to the nearest whole number but at least one sentence;
	// it must lie in [0, 1] and is ignored when Sentences is set. Zero
	// means 0.2, and in that case the summary is also capped at eight
	// sentences, so a default summary of a long text stays readable. An
	// explicit Ratio is not capped: 1 keeps every sentence.
	Ratio float64
}

// validate reports the first invalid option.
func (o SummarizeOptions) validate() error {
	if o.Sentences < 0 {
		return fmt.Errorf("builtin: invalid options: sentences is %d, want 0 or more", o.Sentences)
	}
	if !(o.Ratio >= 0 && o.Ratio <= 1) { // also rejects NaN
		return fmt.Errorf("builtin: invalid options: ratio is %v, want a value in [0, 1]", o.Ratio)
	}
	return nil
}

// want returns the number of sentences to select from a text of n
// sentences.
func (o SummarizeOptions) want(n int) int {
	if o.Sentences > 0 {
		return o.Sentences
	}
	ratio, limit := o.Ratio, n
	if ratio == 0 {
		ratio, limit = defaultRatio, defaultMaxSentences
	}
	k := int(math.Round(ratio * float64(n)))
	return min(max(k, 1), limit)
}

// Summarize returns an extractive summary of text: the highest ranked
// sentences, in their original order, joined by single spaces. Every
// sentence of the summary appears verbatim in text.
//
// Sentences are ranked with TextRank (personalized PageRank over a TF-IDF
// cosine similarity graph, see the package documentation); near-duplicates
// of an already chosen sentence are skipped, so a text with fewer distinct
// sentences than requested yields all of its distinct sentences. Only the
// first 2000 sentences of text are considered.
//
// Summarize fails with ErrEmptyInput when text has no words, and with a
// descriptive error when text is not valid UTF-8 or opts is out of range.
// The result depends only on its arguments.
func Summarize(text string, opts SummarizeOptions) (string, error) {
	selected, err := summarizeSentences(text, opts)
	if err != nil {
		return "", err
	}
	return strings.Join(selected, " "), nil
}

// summarizeSentences returns the sentences of the summary of text, in their
// original order.
func summarizeSentences(text string, opts SummarizeOptions) ([]string, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if !utf8.ValidString(text) {
		return nil, errors.New("builtin: text is not valid utf-8")
	}
	if strings.TrimSpace(text) == "" {
		return nil, ErrEmptyInput
	}
	sentences := splitSentences(text, maxScoredSentences)
	if len(sentences) == 0 {
		return nil, fmt.Errorf("%w: text has no words", ErrEmptyInput)
	}
	m := buildModel(sentences)
	chosen := selectSentences(sentences, m, rank(sentences, m), opts.want(len(sentences)))
	out := make([]string, len(chosen))
	for i, c := range chosen {
		out[i] = sentences[c].text
	}
	return out, nil
}

// selectSentences returns the indexes, in increasing order, of up to k
// sentences taken by decreasing score (ties by position), skipping any
// sentence that repeats the words of one already taken or whose cosine
// similarity to it reaches the redundancy threshold.
func selectSentences(sentences []sentence, m model, scores []float64, k int) []int {
	order := make([]int, len(sentences))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	var chosen []int
	seen := make(map[string]bool)
	for _, i := range order {
		if len(chosen) == k {
			break
		}
		key := strings.Join(words(sentences[i].text), " ")
		if seen[key] || redundant(m, chosen, i) {
			continue
		}
		seen[key] = true
		chosen = append(chosen, i)
	}
	slices.Sort(chosen)
	return chosen
}

// redundant reports whether sentence i nearly duplicates a chosen one.
func redundant(m model, chosen []int, i int) bool {
	for _, c := range chosen {
		if dot(m.vectors[c], m.vectors[i]) >= redundancy {
			return true
		}
	}
	return false
}
