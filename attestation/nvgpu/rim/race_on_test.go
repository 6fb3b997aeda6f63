//go:build race

package rim_test

// raceEnabled thins the flip tests: the race detector slows the pure-Go
// P-384 arithmetic tenfold.
const raceEnabled = true
