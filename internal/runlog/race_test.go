//go:build race

package runlog

// raceEnabled: the race detector adds allocations of its own, so
// allocation counts do not hold under it.
const raceEnabled = true
