// Package secret holds resolved secret values and the redactor that keeps them
// out of everything the prober emits. A Set never prints its values: its
// String and GoString name the secrets only.
package secret

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// Set is an immutable set of named secrets. The nil *Set is empty.
type Set struct {
	values   map[string]string
	replacer *strings.Replacer
}

// NewSet copies values. Empty values are kept for lookup but never redacted
// (there is nothing to find).
func NewSet(values map[string]string) *Set {
	s := &Set{values: make(map[string]string, len(values))}
	type pair struct{ old, name string }
	var pairs []pair
	seen := map[string]bool{}
	for name, v := range values {
		s.values[name] = v
		if v == "" {
			continue
		}
		// The forms a value takes on its way out: as is, in a URL query or
		// path, and inside a JSON string.
		for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v), jsonInner(v)} {
			if !seen[form] {
				seen[form] = true
				pairs = append(pairs, pair{form, name})
			}
		}
	}
	if len(pairs) == 0 {
		return s
	}
	// Longest first, so a secret that contains another is masked whole.
	slices.SortFunc(pairs, func(a, b pair) int {
		if d := len(b.old) - len(a.old); d != 0 {
			return d
		}
		return strings.Compare(a.old, b.old)
	})
	args := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, p.old, "[secret:"+p.name+"]")
	}
	s.replacer = strings.NewReplacer(args...)
	return s
}

func jsonInner(v string) string {
	b, _ := json.Marshal(v)
	return string(b[1 : len(b)-1])
}

// Get returns the named secret's value.
func (s *Set) Get(name string) (string, bool) {
	if s == nil {
		return "", false
	}
	v, ok := s.values[name]
	return v, ok
}

// Names lists the secrets, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.values))
	for n := range s.values {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Len is the number of secrets.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.values)
}

// Redact replaces every occurrence of a secret value in str with
// [secret:NAME].
func (s *Set) Redact(str string) string {
	if s == nil || s.replacer == nil || str == "" {
		return str
	}
	return s.replacer.Replace(str)
}

// String never shows values.
func (s *Set) String() string { return "secret.Set(" + strings.Join(s.Names(), ",") + ")" }

// GoString never shows values, even under %#v.
func (s *Set) GoString() string { return s.String() }
