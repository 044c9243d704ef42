package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// String formats p as file:line:col, leaving out the parts that are unknown
// (a YAML error without a line, a file that could not be read).
func (p Pos) String() string {
	switch {
	case p.Line <= 0:
		return p.File
	case p.Col <= 0:
		return p.File + ":" + strconv.Itoa(int(p.Line))
	}
	return p.File + ":" + strconv.Itoa(int(p.Line)) + ":" + strconv.Itoa(int(p.Col))
}

// Error is one problem in the configuration, at the place it was found.
type Error struct {
	Pos Pos
	Msg string
}

func (e Error) Error() string {
	if p := e.Pos.String(); p != "" {
		return p + ": " + e.Msg
	}
	return e.Msg
}

// Errors is every problem Load found, sorted by position.
type Errors []Error

// Error lists the problems one per line.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// sorted orders es by file, line and column, keeping the order in which
// problems were found for ties, and drops exact duplicates (a probes.yaml
// header checked once per flow reports the same problem each time).
func (es Errors) sorted() Errors {
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b Error) int {
		return cmp.Or(
			strings.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
		)
	})
	seen := make(map[Error]bool, len(out))
	j := 0
	for _, e := range out {
		if seen[e] {
			continue
		}
		seen[e] = true
		out[j] = e
		j++
	}
	return out[:j]
}
