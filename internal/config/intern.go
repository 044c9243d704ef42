package config

import (
	"fmt"
	"slices"
	"strings"
)

// Sharing of equal immutable pieces across flows. A configuration of 10,000
// similar flows otherwise holds 10,000 copies of the same labels, vars and
// header lists (about 8 MB of a 30 MB configuration). What is shared is never
// written after loading: the daemon, runner and store only read it.

// interns holds the shared pieces of one Load. The zero value is ready.
type interns struct {
	maps    map[string]map[string]string
	headers map[string][]Header
	strs    map[string]string
}

// stringMap returns a map equal to m, shared with every earlier equal one.
func (in *interns) stringMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		// Lengths first: keys and values may hold any byte.
		fmt.Fprintf(&b, "%d:%s%d:%s", len(k), k, len(m[k]), m[k])
	}
	key := b.String()
	if in.maps == nil {
		in.maps = map[string]map[string]string{}
	}
	if c, ok := in.maps[key]; ok {
		return c
	}
	in.maps[key] = m
	return m
}

// headerList returns a list equal to hs (same names, same interned value
// templates, same order), shared with every earlier equal one.
func (in *interns) headerList(hs []Header) []Header {
	if len(hs) == 0 {
		return hs
	}
	var b strings.Builder
	for _, h := range hs {
		// Templates are interned, so the same pointer is the same value.
		fmt.Fprintf(&b, "%d:%s%p;", len(h.Name), h.Name, h.Value)
	}
	key := b.String()
	if in.headers == nil {
		in.headers = map[string][]Header{}
	}
	if c, ok := in.headers[key]; ok {
		return c
	}
	hs = slices.Clip(hs)
	in.headers[key] = hs
	return hs
}

// str returns s, sharing the storage of an earlier equal string: step names,
// methods and dependencies repeat across flows, and each one parsed from
// YAML is its own allocation.
func (in *interns) str(s string) string {
	if s == "" {
		return s
	}
	if in.strs == nil {
		in.strs = map[string]string{}
	}
	if c, ok := in.strs[s]; ok {
		return c
	}
	in.strs[s] = s
	return s
}

// share replaces fl's labels, vars and repeated names by shared equal
// ones, once the flow is complete (HTTPKind shares its header lists).
func (l *loader) share(fl *Flow) {
	in := &l.shared
	fl.Labels = in.stringMap(fl.Labels)
	fl.Vars = in.stringMap(fl.Vars)
	for _, s := range slices.Concat(fl.Steps, fl.Cleanup) {
		if s == nil {
			continue
		}
		s.Name, s.Method, s.Dependency = in.str(s.Name), in.str(s.Method), in.str(s.Dependency)
	}
}
