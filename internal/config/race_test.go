//go:build race

package config

// raceEnabled: the race detector grows every allocation, so retained-heap
// bounds are not checked under it.
const raceEnabled = true
