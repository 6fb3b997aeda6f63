package builtin

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// sentence is one sentence of the input.
type sentence struct {
	// text is the sentence exactly as it appears in the input, with
	// surrounding white space removed.
	text string
	// terminated reports whether the sentence ends with terminal
	// punctuation; headings and list items usually do not.
	terminated bool
}

// Abbreviation classes used by the splitter. Keys are lowercase and carry no
// trailing period.
var (
	// neverFinal abbreviations are always followed by more of the sentence.
	neverFinal = wordSet(
		"mr", "mrs", "ms", "mx", "dr", "prof", "rev", "fr", "gen", "sen",
		"rep", "gov", "pres", "mt", "capt", "col", "lt", "sgt", "cmdr",
		"hon", "messrs", "mme", "mlle",
		"e.g", "i.e", "vs", "cf", "viz", "approx", "ca", "esp", "incl",
		"fig", "figs", "eq", "eqs", "dept", "univ",
	)
	// beforeNumber abbreviations are not final when a number follows them,
	// as in "No. 5" or "pp. 10-12".
	beforeNumber = wordSet(
		"no", "nos", "vol", "vols", "p", "pp", "ch", "sec", "art", "para",
		"op", "ed", "nr",
	)
	// ambiguous abbreviations end a sentence only when the next word looks
	// like the start of a new one (a capitalized stopword such as "The").
	ambiguous = wordSet(
		"etc", "inc", "ltd", "co", "corp", "llc", "plc", "bros", "jr", "sr",
		"al", "a.m", "p.m", "st", "ave", "rd",
		"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
		"oct", "nov", "dec",
	)
)

// wordSet builds a set from its arguments.
func wordSet(words ...string) map[string]bool {
	set := make(map[string]bool, len(words))
	for _, w := range words {
		set[w] = true
	}
	return set
}

// splitSentences splits text into at most limit sentences. Fragments that
// contain no letter or digit are dropped.
func splitSentences(text string, limit int) []sentence {
	s := splitter{text: text, limit: limit}
	s.run()
	return s.out
}

// splitter holds the state of one splitSentences call.
type splitter struct {
	text      string
	limit     int
	out       []sentence
	start     int  // byte offset where the current sentence begins
	sawLetter bool // whether text[start:] has a letter before the scan point
}

// full reports whether the sentence limit has been reached.
func (s *splitter) full() bool { return len(s.out) >= s.limit }

// run scans the whole text.
func (s *splitter) run() {
	i := 0
	for i < len(s.text) && !s.full() {
		r, size := utf8.DecodeRuneInString(s.text[i:])
		switch {
		case r == '\n' || r == '\u2028' || r == '\u2029':
			i = s.lineBreak(i, size, r == '\u2029')
		case isTerminal(r):
			i = s.terminal(i)
		default:
			s.sawLetter = s.sawLetter || unicode.IsLetter(r)
			i += size
		}
	}
	if !s.full() {
		s.emit(len(s.text))
	}
}

// lineBreak ends the sentence at the line break of the given size at i,
// unless it is a single break followed by a lowercase letter (a hard-wrapped
// sentence); blank lines and paragraph separators always end it. It returns
// the offset to continue from.
func (s *splitter) lineBreak(i, size int, paragraph bool) int {
	next := i + size
	r, _ := utf8.DecodeRuneInString(strings.TrimLeft(s.text[next:], " \t\r\f\v"))
	blank := paragraph || r == '\n' || r == '\u2029'
	if blank || !unicode.IsLower(r) {
		s.emit(i)
		s.start = next
	}
	return next
}

// terminal handles the terminal punctuation starting at i and returns the
// offset to continue from.
func (s *splitter) terminal(i int) int {
	runEnd := i
	for runEnd < len(s.text) {
		r, size := utf8.DecodeRuneInString(s.text[runEnd:])
		if !isTerminal(r) {
			break
		}
		runEnd += size
	}
	end := runEnd
	for end < len(s.text) {
		r, size := utf8.DecodeRuneInString(s.text[end:])
		if !isCloser(r) {
			break
		}
		end += size
	}
	if s.isBoundary(i, runEnd, end) {
		s.emit(end)
		s.start = end
	}
	return end
}

// isBoundary reports whether the terminal punctuation text[i:runEnd],
// followed by closing quotes or brackets up to end, ends a sentence.
func (s *splitter) isBoundary(i, runEnd, end int) bool {
	if !s.sawLetter {
		return false // "1." in a numbered list, or a lone "..."
	}
	run := s.text[i:runEnd]
	if strings.ContainsAny(run, "。！？") {
		return true // CJK text has no space after its terminals
	}
	if end == len(s.text) {
		return true
	}
	if r, _ := utf8.DecodeRuneInString(s.text[end:]); !unicode.IsSpace(r) {
		return false // 3.5, U.S.A, example.com, "?!" inside a word
	}
	next := nextWord(s.text[end:])
	if run != "." || end > runEnd {
		// ! ? ellipses, and periods before a closing quote: a lowercase
		// continuation means the sentence goes on ("Why?" she asked).
		return !startsLower(next)
	}
	return !isAbbreviation(previousWord(s.text[s.start:i]), next)
}

// emit records text[s.start:end] as a sentence if it holds any word.
func (s *splitter) emit(end int) {
	text := strings.TrimSpace(s.text[s.start:end])
	s.start = end
	s.sawLetter = false
	if !strings.ContainsFunc(text, isWordRune) {
		return
	}
	trimmed := strings.TrimRightFunc(text, isCloser)
	last, _ := utf8.DecodeLastRuneInString(trimmed)
	s.out = append(s.out, sentence{
		text:       text,
		terminated: isTerminal(last),
	})
}

// isAbbreviation reports whether word, which is followed by a period and
// then by next, is an abbreviation that does not end the sentence.
func isAbbreviation(word, next string) bool {
	lower := strings.ToLower(word)
	switch {
	case word == "":
		return false
	case neverFinal[lower]:
		return true
	case beforeNumber[lower]:
		return startsDigit(next)
	case ambiguous[lower] || isInitialism(word):
		return !startsSentence(next)
	}
	return false
}

// isInitialism reports whether word is a single letter (an initial, as in
// "John F. Kennedy") or dotted letters such as "U.S" or "Ph.D".
func isInitialism(word string) bool {
	for part := range strings.SplitSeq(word, ".") {
		n := utf8.RuneCountInString(part)
		if n == 0 || n > 2 || !isAllLetters(part) {
			return false
		}
		if n == 2 && !strings.Contains(word, ".") {
			return false // a two-letter word such as "is" or "TV"
		}
	}
	return true
}

// isAllLetters reports whether s holds only letters.
func isAllLetters(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) {
			return false
		}
	}
	return true
}

// startsSentence reports whether word looks like the first word of a
// sentence: a capitalized common word such as "The", "It" or "However".
func startsSentence(word string) bool {
	r, _ := utf8.DecodeRuneInString(word)
	if !unicode.IsUpper(r) {
		return false
	}
	return stopwords[strings.ToLower(strings.TrimFunc(word, notWordRune))]
}

// previousWord returns the last white-space separated word of s, without
// surrounding punctuation other than interior periods.
func previousWord(s string) string {
	if i := strings.LastIndexFunc(s, unicode.IsSpace); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimFunc(s, notWordRune)
}

// nextWord returns the first white-space separated word of s, without
// leading opening quotes or brackets.
func nextWord(s string) string {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
		s = s[:i]
	}
	return strings.TrimLeftFunc(s, isOpener)
}

// startsLower reports whether s begins with a lowercase letter.
func startsLower(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsLower(r)
}

// startsDigit reports whether s begins with a digit.
func startsDigit(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsDigit(r)
}

// isTerminal reports whether r can end a sentence.
func isTerminal(r rune) bool {
	switch r {
	case '.', '!', '?', '…', '。', '！', '？':
		return true
	}
	return false
}

// isCloser reports whether r is a closing quote or bracket that belongs to
// the sentence before it.
func isCloser(r rune) bool {
	switch r {
	case '"', '\'', '”', '’', '»', '›', ')', ']', '}':
		return true
	}
	return false
}

// isOpener reports whether r is an opening quote or bracket.
func isOpener(r rune) bool {
	switch r {
	case '"', '\'', '“', '‘', '«', '‹', '(', '[', '{':
		return true
	}
	return false
}

// isWordRune reports whether r can be part of a word.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// notWordRune is the negation of isWordRune.
func notWordRune(r rune) bool { return !isWordRune(r) }
