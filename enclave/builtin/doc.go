// Package builtin holds the CPU-only inference backends that ship inside the
// enclave worker binary itself, so that a request can be served without
// loading any model weights or leaving the trusted execution environment.
//
// The package depends on the Go standard library only: the worker's imports
// are allowlisted and every line of this package is part of the measured,
// attested code.
//
// # Summarization
//
// [Summarize] produces an extractive summary: it returns sentences copied
// verbatim from the input, never generated text. The pipeline is:
//
//  1. Sentence splitting. Boundaries are terminal punctuation (. ! ? and
//     ellipses, including any closing quotes or brackets that follow them),
//     blank lines, and single line breaks unless the next line starts with a
//     lowercase letter (a hard-wrapped sentence). Common abbreviations
//     (Mr., Dr., e.g., i.e., U.S., etc.), initials, list numbers and decimal
//     numbers such as 3.5 do not end a sentence.
//  2. Tokenization. Words are runs of Unicode letters and digits, lowercased;
//     English stopwords are dropped and a light suffix stemmer folds plural,
//     -ing and -ed forms together.
//  3. Ranking. Each sentence becomes a TF-IDF vector. Sentences are linked by
//     cosine similarity, keeping each sentence's strongest neighbours, and
//     ranked with personalized PageRank (TextRank) using damping 0.85. The
//     teleport distribution is a prior that blends similarity to the
//     document centroid with a gentle preference for earlier sentences.
//     Headings without terminal punctuation and sentences with very few
//     content words are down-weighted.
//  4. Selection. Sentences are taken in rank order, skipping near-duplicates
//     of sentences already taken, and returned in their original order.
//
// Ties are always broken by position, so the output is deterministic. Only
// the first 2000 sentences of a text are considered, which bounds the
// quadratic similarity computation. Memory use is linear: sentences are
// substrings of the input, vectors are sparse, and each sentence keeps only
// its 40 most similar neighbours in the graph.
package builtin
