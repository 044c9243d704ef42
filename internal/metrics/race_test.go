//go:build race

package metrics

// raceEnabled: the race detector grows every allocation, so retained-heap
// bounds do not hold under it.
const raceEnabled = true
