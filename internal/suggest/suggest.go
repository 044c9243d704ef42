// Package suggest finds the known name a mistyped one was probably meant to
// be, for "did you mean" hints in config and expectation errors.
package suggest

// Closest returns the candidate nearest to name within maxDist edits (and
// fewer edits than name has characters, so short names don't match
// anything), or "" when none is close enough to help. Ties go to the first.
func Closest(name string, candidates []string, maxDist int) string {
	if len(name) > 64 {
		return "" // not a typo of a short name; keep the computation cheap
	}
	n := len([]rune(name))
	best, bestDist := "", maxDist+1
	for _, c := range candidates {
		if c == name || len(c) > 64 {
			continue
		}
		if d := Distance(name, c); d < bestDist && d < n {
			best, bestDist = c, d
		}
	}
	return best
}

// Distance is the Levenshtein distance between a and b, in runes.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
