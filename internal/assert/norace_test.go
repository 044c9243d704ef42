//go:build !race

package assert

const raceEnabled = false
