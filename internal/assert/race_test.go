//go:build race

package assert

// raceEnabled: the race detector drops sync.Pool items at random, so pooled
// allocations (regexp's matchers) show up as allocations.
const raceEnabled = true
