package main

import (
	"math"
	"slices"
	"testing"
)

// TestRougeN checks rougeN against counts worked out by hand.
func TestRougeN(t *testing.T) {
	tests := []struct {
		name, cand, ref string
		n               int
		want            score
	}{
		// ref unigrams: the×2 cat sat on mat (6); cand: the×2 cat lay on
		// mat (6). Overlap: the 2 + cat + on + mat = 5.
		{"unigrams", "The cat lay on the mat.", "the cat sat on the mat", 1, score{5. / 6, 5. / 6, 5. / 6}},
		// ref bigrams: the-cat cat-sat sat-on on-the the-mat (5); cand:
		// the-cat cat-lay lay-on on-the the-mat (5). Overlap 3.
		{"bigrams", "The cat lay on the mat.", "the cat sat on the mat", 2, score{3. / 5, 3. / 5, 3. / 5}},
		// "the" occurs once in the reference, so four of them match once:
		// P = 1/4, R = 1/2, F = 2·(1/8)/(3/4) = 1/3.
		{"clipped", "the the the the", "the cat", 1, score{1. / 4, 1. / 2, 1. / 3}},
		// cand bigrams: a-b b-c c-d (3); ref: a-b b-c (2). Overlap 2:
		// P = 2/3, R = 1, F = 2·(2/3)/(5/3) = 4/5.
		{"unequal lengths", "a b c d", "A, B; C!", 2, score{2. / 3, 1, 4. / 5}},
		{"no overlap", "red green", "blue", 1, score{}},
		{"candidate shorter than n", "word", "word word", 2, score{}},
		{"empty reference", "some words", "", 1, score{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rougeN(tt.cand, tt.ref, tt.n)
			if !near(got.P, tt.want.P) || !near(got.R, tt.want.R) || !near(got.F, tt.want.F) {
				t.Fatalf("rougeN(%q, %q, %d) = %+v, want %+v", tt.cand, tt.ref, tt.n, got, tt.want)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	got := tokens(`"Thirty centimetres," said Ellerby's three-two-one Café 2.1`)
	want := []string{"thirty", "centimetres", "said", "ellerby", "s", "three", "two", "one", "café", "2", "1"}
	if !slices.Equal(got, want) {
		t.Fatalf("tokens = %q, want %q", got, want)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
