//go:build race

package schedule

// raceEnabled: the race detector grows every allocation, so retained-heap
// bounds do not hold under it.
const raceEnabled = true
