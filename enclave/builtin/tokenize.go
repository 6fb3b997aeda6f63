package builtin

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// stopwords are common English words that carry little topical meaning.
// Negations (no, not, nor, never) are deliberately kept as content words.
var stopwords = wordSet(
	"a", "about", "above", "after", "again", "against", "all", "also", "am",
	"an", "and", "any", "are", "aren't", "as", "at", "be", "because", "been",
	"before", "being", "below", "between", "both", "but", "by", "can",
	"can't", "cannot", "could", "couldn't", "did", "didn't", "do", "does",
	"doesn't", "doing", "don't", "down", "during", "each", "either", "else",
	"even", "ever", "every", "few", "for", "from", "further", "had",
	"hadn't", "has", "hasn't", "have", "haven't", "having", "he", "he'd",
	"he'll", "he's", "her", "here", "here's", "hers", "herself", "him",
	"himself", "his", "how", "how's", "however", "i", "i'd", "i'll", "i'm",
	"i've", "if", "in", "into", "is", "isn't", "it", "it's", "its",
	"itself", "just", "let's", "may", "me", "might", "more", "most",
	"much", "must", "mustn't", "my", "myself", "of", "off", "on", "once",
	"one", "only", "or", "other", "ought", "our", "ours", "ourselves",
	"out", "over", "own", "same", "shall", "shan't", "she", "she'd",
	"she'll", "she's", "should", "shouldn't", "since", "so", "some",
	"such", "than", "that", "that's", "the", "their", "theirs", "them",
	"themselves", "then", "there", "there's", "these", "they", "they'd",
	"they'll", "they're", "they've", "this", "those", "though", "through",
	"thus", "to", "too", "under", "until", "up", "upon", "us", "very",
	"was", "wasn't", "we", "we'd", "we'll", "we're", "we've", "well",
	"were", "weren't", "what", "what's", "when", "when's", "where",
	"where's", "whether", "which", "while", "who", "who's", "whom",
	"whose", "why", "why's", "will", "with", "within", "without", "won't",
	"would", "wouldn't", "yet", "you", "you'd", "you'll", "you're",
	"you've", "your", "yours", "yourself", "yourselves",
)

// words returns the lowercase words of s. A word is a run of Unicode
// letters, digits and combining marks; an apostrophe between letters
// ("don't") and a period or comma between digits ("3.5", "1,000") stay
// inside the word. Curly apostrophes are folded to straight ones.
func words(s string) []string {
	var out []string
	start := -1
	for i, r := range s {
		switch {
		case isTokenRune(r):
			if start < 0 {
				start = i
			}
		case start >= 0 && isJoiner(s, i, r):
			// keep going: the joiner is inside the word
		default:
			if start >= 0 {
				out = append(out, normalizeWord(s[start:i]))
				start = -1
			}
		}
	}
	if start >= 0 {
		out = append(out, normalizeWord(s[start:]))
	}
	return out
}

// isTokenRune reports whether r is a letter, digit or combining mark.
func isTokenRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

// isJoiner reports whether r, found at byte offset i of s right after a
// word rune, joins that rune to the next one: an apostrophe between letters
// or a decimal separator between digits.
func isJoiner(s string, i int, r rune) bool {
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	next, _ := utf8.DecodeRuneInString(s[i+utf8.RuneLen(r):])
	switch r {
	case '\'', '’':
		return unicode.IsLetter(prev) && unicode.IsLetter(next)
	case '.', ',':
		return unicode.IsDigit(prev) && unicode.IsDigit(next)
	}
	return false
}

// normalizeWord lowercases w and folds curly apostrophes.
func normalizeWord(w string) string {
	return strings.ReplaceAll(strings.ToLower(w), "’", "'")
}

// terms returns the content terms of s: its words without stopwords and
// single letters, stemmed.
func terms(s string) []string {
	ws := words(s)
	out := ws[:0]
	for _, w := range ws {
		if stopwords[w] {
			continue
		}
		if utf8.RuneCountInString(w) == 1 && !unicode.IsDigit([]rune(w)[0]) {
			continue
		}
		out = append(out, stem(w))
	}
	return out
}

// stem strips common English inflectional suffixes from w so that, for
// example, "record", "records" and "recorded" share a stem. It is a light
// stemmer in the spirit of the first step of Porter's algorithm, applied
// only to words made of ASCII letters, after dropping a possessive 's.
func stem(w string) string {
	w = strings.TrimSuffix(w, "'s")
	if !isLowerASCII(w) || len(w) <= 3 {
		return w
	}
	w = stripPlural(w)
	w = stripVerbSuffix(w)
	if len(w) > 4 && strings.HasSuffix(w, "e") {
		w = w[:len(w)-1] // "share" and "sharing" both become "shar"
	}
	return w
}

// stripPlural removes a plural -s or -es ending.
func stripPlural(w string) string {
	switch {
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		return w[:len(w)-3] + "y" // policies -> policy
	case strings.HasSuffix(w, "sses"):
		return w[:len(w)-2] // processes -> process
	case hasAnySuffix(w, "xes", "ches", "shes", "zzes"):
		return w[:len(w)-2] // boxes -> box, patches -> patch
	case hasAnySuffix(w, "ss", "us", "is"):
		return w // process, status, analysis
	case strings.HasSuffix(w, "s"):
		return w[:len(w)-1]
	}
	return w
}

// stripVerbSuffix removes an -ing or -ed ending when a plausible stem of at
// least three letters with a vowel remains, then undoubles a final
// consonant ("running" -> "run").
func stripVerbSuffix(w string) string {
	for _, suffix := range []string{"ing", "ed"} {
		base, ok := strings.CutSuffix(w, suffix)
		if !ok || len(base) < 3 || !strings.ContainsAny(base, "aeiouy") {
			continue
		}
		if strings.HasSuffix(base, "i") && suffix == "ed" {
			return base[:len(base)-1] + "y" // copied -> copy
		}
		return undouble(base)
	}
	return w
}

// undouble removes one of a doubled final consonant, except l, s and z.
func undouble(w string) string {
	n := len(w)
	if n < 2 || w[n-1] != w[n-2] {
		return w
	}
	if strings.ContainsRune("aeiouylsz", rune(w[n-1])) {
		return w
	}
	return w[:n-1]
}

// hasAnySuffix reports whether s ends with any of the suffixes.
func hasAnySuffix(s string, suffixes ...string) bool {
	for _, suffix := range suffixes {
		if strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}

// isLowerASCII reports whether s is non-empty and holds only lowercase
// ASCII letters.
func isLowerASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
