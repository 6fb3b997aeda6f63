package main

import (
	"strings"
	"unicode"
)

// score is a ROUGE-N result: clipped n-gram precision, recall and their
// harmonic mean (F1), each in [0, 1].
type score struct {
	P, R, F float64
}

// rougeN scores candidate against reference by n-gram overlap (Lin 2004,
// "ROUGE: A Package for Automatic Evaluation of Summaries"), without
// stemming or stopword removal. Both texts are tokenized by tokens. An
// n-gram counts at most as many times as it occurs in the reference
// (clipping), so repeating a matching word earns nothing. Precision is the
// overlap over the candidate's n-grams, recall the overlap over the
// reference's; a side with no n-gram scores zero.
func rougeN(candidate, reference string, n int) score {
	cand, ref := ngrams(tokens(candidate), n), ngrams(tokens(reference), n)
	var overlap, candTotal, refTotal int
	for g, c := range cand {
		overlap += min(c, ref[g])
		candTotal += c
	}
	for _, c := range ref {
		refTotal += c
	}
	if overlap == 0 {
		return score{}
	}
	p, r := float64(overlap)/float64(candTotal), float64(overlap)/float64(refTotal)
	return score{P: p, R: r, F: 2 * p * r / (p + r)}
}

// tokens lowercases s and returns its words: maximal runs of Unicode
// letters and digits. Punctuation, apostrophes and hyphens separate words,
// so "three-two-one" is three tokens and "Ellerby's" two.
func tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// ngrams counts the n-grams of words.
func ngrams(words []string, n int) map[string]int {
	out := make(map[string]int)
	for i := 0; i+n <= len(words); i++ {
		out[strings.Join(words[i:i+n], " ")]++
	}
	return out
}
