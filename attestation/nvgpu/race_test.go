//go:build race

package nvgpu_test

// raceEnabled thins the flip tests under the race detector, which makes
// every ECDSA verification many times slower: the race run is there for
// the concurrency, the plain run flips every byte.
const raceEnabled = true
