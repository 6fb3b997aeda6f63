package builtin

import (
	"cmp"
	"math"
	"slices"
)

// Ranking parameters.
const (
	// damping is the PageRank damping factor: the probability of following
	// a similarity edge rather than jumping according to the prior.
	damping = 0.85
	// convergence stops PageRank once the scores move less than this in
	// total (L1 distance) between two iterations.
	convergence = 1e-6
	// maxIterations bounds the PageRank iterations.
	maxIterations = 100
	// maxNeighbors is how many of its most similar sentences each sentence
	// links to; with the reverse links the graph has at most
	// 2*maxNeighbors edges per sentence on average, so its memory is linear.
	maxNeighbors = 40
	// priorFloor keeps sentences unrelated to the centroid reachable.
	priorFloor = 0.05
	// positionBoost is the extra prior weight of the first sentence; it
	// falls linearly to zero at the last sentence.
	positionBoost = 0.25
	// minContentTerms is the number of content terms below which a
	// sentence's score is reduced in proportion.
	minContentTerms = 4
	// fragmentWeight scales the score of sentences without terminal
	// punctuation, which are mostly headings and list items.
	fragmentWeight = 0.5
)

// entry is one component of a sparse vector.
type entry struct {
	term   int32
	weight float64
}

// vector is a sparse, L2-normalized TF-IDF vector sorted by term.
type vector []entry

// dot returns the dot product of two vectors sorted by term; for
// normalized vectors it is their cosine similarity.
func dot(a, b vector) float64 {
	sum := 0.0
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i].term < b[j].term:
			i++
		case a[i].term > b[j].term:
			j++
		default:
			sum += a[i].weight * b[j].weight
			i++
			j++
		}
	}
	return sum
}

// edge is a weighted link to another sentence.
type edge struct {
	to     int32
	weight float64
}

// model is the vector space view of a list of sentences.
type model struct {
	vectors []vector
	// termCounts holds the number of content terms of each sentence,
	// counting repeats.
	termCounts []int
	// vocabulary is the number of distinct terms.
	vocabulary int
}

// buildModel turns sentences into TF-IDF vectors. Term frequency is
// dampened as 1+ln(tf) and inverse document frequency, computed over the
// sentences, is smoothed as 1+ln((1+n)/(1+df)).
func buildModel(sentences []sentence) model {
	ids := make(map[string]int32)
	bags := make([][]int32, len(sentences))
	var df []int
	for i, s := range sentences {
		for _, t := range terms(s.text) {
			id, ok := ids[t]
			if !ok {
				id = int32(len(ids))
				ids[t] = id
				df = append(df, 0)
			}
			bags[i] = append(bags[i], id)
		}
		slices.Sort(bags[i])
		for j, id := range bags[i] {
			if j == 0 || bags[i][j-1] != id {
				df[id]++
			}
		}
	}
	n := float64(len(sentences))
	m := model{
		vectors:    make([]vector, len(sentences)),
		termCounts: make([]int, len(sentences)),
		vocabulary: len(ids),
	}
	for i, bag := range bags {
		m.termCounts[i] = len(bag)
		m.vectors[i] = weigh(bag, func(id int32) float64 {
			return 1 + math.Log((1+n)/(1+float64(df[id])))
		})
	}
	return m
}

// weigh builds the normalized TF-IDF vector of a sorted bag of terms.
func weigh(bag []int32, idf func(int32) float64) vector {
	var v vector
	for j := 0; j < len(bag); {
		k := j
		for k < len(bag) && bag[k] == bag[j] {
			k++
		}
		tf := 1 + math.Log(float64(k-j))
		v = append(v, entry{term: bag[j], weight: tf * idf(bag[j])})
		j = k
	}
	norm := 0.0
	for _, e := range v {
		norm += e.weight * e.weight
	}
	norm = math.Sqrt(norm)
	for k := range v {
		v[k].weight /= norm
	}
	return v
}

// posting records that a sentence holds a term with the given weight.
type posting struct {
	sentence int32
	weight   float64
}

// buildGraph links every sentence to its maxNeighbors most similar
// sentences (cosine similarity, ties broken by position) and adds the
// reverse links, giving an undirected graph. Similarities are accumulated
// through an inverted index, so only pairs that share a term are visited.
func buildGraph(m model) [][]edge {
	n := len(m.vectors)
	postings := make([][]posting, m.vocabulary)
	for i, v := range m.vectors {
		for _, e := range v {
			postings[e.term] = append(postings[e.term], posting{int32(i), e.weight})
		}
	}
	adj := make([][]edge, n)
	acc := make([]float64, n)
	var touched []int32
	row := make([]edge, 0, maxNeighbors+1)
	for i, v := range m.vectors {
		for _, e := range v {
			for _, p := range postings[e.term] {
				if int(p.sentence) == i {
					continue
				}
				if acc[p.sentence] == 0 {
					touched = append(touched, p.sentence)
				}
				acc[p.sentence] += e.weight * p.weight
			}
		}
		row = row[:0]
		for _, j := range touched {
			row = keepBest(row, edge{to: j, weight: acc[j]})
			acc[j] = 0
		}
		touched = touched[:0]
		for _, e := range row {
			adj[i] = append(adj[i], e)
			adj[e.to] = append(adj[e.to], edge{to: int32(i), weight: e.weight})
		}
	}
	for i := range adj {
		adj[i] = uniqueEdges(adj[i])
	}
	return adj
}

// keepBest inserts e into best, which is sorted by byWeightThenPosition,
// and trims it to the maxNeighbors best edges.
func keepBest(best []edge, e edge) []edge {
	if len(best) == maxNeighbors && byWeightThenPosition(e, best[maxNeighbors-1]) >= 0 {
		return best // the common case in a large text: not among the best
	}
	i, _ := slices.BinarySearchFunc(best, e, byWeightThenPosition)
	best = slices.Insert(best, i, e)
	return best[:min(len(best), maxNeighbors)]
}

// byWeightThenPosition orders edges by decreasing weight, then by target.
func byWeightThenPosition(a, b edge) int {
	if c := cmp.Compare(b.weight, a.weight); c != 0 {
		return c
	}
	return cmp.Compare(a.to, b.to)
}

// uniqueEdges sorts edges by target and drops the duplicates created when
// two sentences chose each other.
func uniqueEdges(edges []edge) []edge {
	slices.SortFunc(edges, func(a, b edge) int { return cmp.Compare(a.to, b.to) })
	return slices.CompactFunc(edges, func(a, b edge) bool { return a.to == b.to })
}

// prior returns the teleport distribution of the personalized PageRank:
// each sentence's cosine similarity to the document centroid plus
// priorFloor, scaled by a position weight that falls linearly from
// 1+positionBoost for the first sentence to 1 for the last. It sums to one.
func prior(m model) []float64 {
	centroid := make([]float64, m.vocabulary)
	for _, v := range m.vectors {
		for _, e := range v {
			centroid[e.term] += e.weight
		}
	}
	norm := 0.0
	for _, c := range centroid {
		norm += c * c
	}
	norm = math.Sqrt(norm)
	n := len(m.vectors)
	p := make([]float64, n)
	total := 0.0
	for i, v := range m.vectors {
		sim := 0.0
		if norm > 0 {
			for _, e := range v {
				sim += e.weight * centroid[e.term]
			}
			sim /= norm
		}
		position := 1 + positionBoost*float64(n-1-i)/float64(max(n-1, 1))
		p[i] = (priorFloor + sim) * position
		total += p[i]
	}
	for i := range p {
		p[i] /= total
	}
	return p
}

// pageRank runs weighted personalized PageRank on the undirected graph adj
// with the given teleport distribution. The mass of sentences without
// edges is redistributed according to the prior. It stops when the scores
// converge or after maxIterations.
func pageRank(adj [][]edge, teleport []float64) []float64 {
	n := len(adj)
	strength := make([]float64, n)
	for i, edges := range adj {
		for _, e := range edges {
			strength[i] += e.weight
		}
	}
	score := slices.Clone(teleport)
	next := make([]float64, n)
	for range maxIterations {
		dangling := 0.0
		for i, s := range score {
			if strength[i] == 0 {
				dangling += s
			}
		}
		for i := range next {
			next[i] = (1 - damping + damping*dangling) * teleport[i]
		}
		for i, edges := range adj {
			if strength[i] == 0 {
				continue
			}
			share := damping * score[i] / strength[i]
			for _, e := range edges {
				next[e.to] += share * e.weight
			}
		}
		delta := 0.0
		for i := range score {
			delta += math.Abs(next[i] - score[i])
		}
		score, next = next, score
		if delta < convergence {
			break
		}
	}
	return score
}

// rank returns a score for every sentence: its PageRank, reduced for
// sentences with fewer than minContentTerms content terms and for
// fragments without terminal punctuation.
func rank(sentences []sentence, m model) []float64 {
	scores := pageRank(buildGraph(m), prior(m))
	for i, s := range sentences {
		scores[i] *= min(1, float64(m.termCounts[i])/minContentTerms)
		if !s.terminated {
			scores[i] *= fragmentWeight
		}
	}
	return scores
}
