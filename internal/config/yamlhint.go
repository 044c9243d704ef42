package config

import (
	"strings"
	"unicode/utf8"
)

// The YAML comma trap: in a flow collection (expect: [...], capture:
// {...}) a comma ends the element, so an expression holding one (status in
// [200, 201], match(body, "re"), contains "a, b") breaks the collection.
// yaml.v3 then reports "did not find expected ',' or ']'" at the line
// before, which points nowhere useful. commaCulprit finds the element that
// holds the comma so the error can name it and say how to fix it.

// commaTrap is an element of a flow collection split by a comma.
type commaTrap struct {
	line, col int    // 1-based; col in runes, as yaml.v3 counts
	elem      string // the element as written, up to the end of its line
	mapping   bool   // inside {...}, not [...]
	braces    bool   // a {{name}}, not a comma, broke it
}

// maxTrapLines bounds the lines scanned after the line yaml.v3 reported.
const maxTrapLines = 50

// commaCulprit scans lines from the 1-based line from for the first element
// of a flow collection with a comma inside parentheses, brackets or a
// string, which YAML took as the element's end.
func commaCulprit(lines []string, from int) (commaTrap, bool) {
	if from < 1 {
		from = 1
	}
	var stack []byte // open flow collections: '[' or '{'
	for ln := from; ln <= len(lines) && ln < from+maxTrapLines; ln++ {
		s := lines[ln-1]
		i := 0
		if len(stack) == 0 {
			i = flowStart(s)
			if i < 0 {
				continue
			}
		}
		for i < len(s) {
			c := s[i]
			switch {
			case c == ' ' || c == '\t' || c == ',':
				i++
				continue
			case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
				i = len(s)
				continue
			case c == '[' || c == '{':
				stack = append(stack, c)
				i++
				continue
			case c == ']' || c == '}':
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
				i++
				if len(stack) == 0 {
					i = len(s) // what follows a flow collection is not ours
				}
				continue
			}
			// An element: scan to its end, a comma or closer at depth 0
			// outside strings. A YAML-quoted element ends at its quote.
			start := i
			if c == '"' || c == '\'' {
				i = skipQuoted(s, i)
				if i >= len(s) || !strings.HasPrefix(s[i:], ": ") {
					continue
				}
				i += 2
				for i < len(s) && s[i] == ' ' {
					i++
				}
				if i < len(s) && (s[i] == '[' || s[i] == '{') {
					continue // a nested collection as the value
				}
				start = i
			}
			if stack[len(stack)-1] == '{' && start == i {
				// key: [ or key: { opens a nested collection.
				if v := valueStart(s, i, elemEnd(s, i)); v > i && v < len(s) && (s[v] == '[' || s[v] == '{') {
					stack = append(stack, s[v])
					i = v + 1
					continue
				}
			}
			end, comma := scanElement(s, i, stack[len(stack)-1] == '{')
			if comma >= 0 {
				if v := valueStart(s, start, end); stack[len(stack)-1] == '{' {
					start = v
				}
				elem := strings.TrimSpace(s[start:elemEnd(s, start)])
				return commaTrap{line: ln, col: utf8.RuneCountInString(s[:start]) + 1, elem: elem,
					mapping: stack[len(stack)-1] == '{', braces: s[comma] == '{'}, true
			}
			i = end
		}
	}
	return commaTrap{}, false
}

// flowStart is the index of the [ or { opening a flow collection as a value
// on line s ("key: [", "- [", "- key: {"), or -1.
func flowStart(s string) int {
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i+1 < len(s) && s[i] == '-' && s[i+1] == ' ' {
			i += 2
			continue
		}
		break
	}
	if i < len(s) && (s[i] == '[' || s[i] == '{') {
		return i
	}
	k := strings.Index(s[i:], ": ")
	if k < 0 || strings.ContainsAny(s[i:i+k], "\"'#[{") {
		return -1
	}
	i += k + 2
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if i < len(s) && (s[i] == '[' || s[i] == '{') {
		return i
	}
	return -1
}

// skipQuoted returns the index after the YAML-quoted scalar at s[i].
func skipQuoted(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case q == '"' && s[j] == '\\':
			j++
		case q == '\'' && s[j] == '\'' && j+1 < len(s) && s[j+1] == '\'':
			j++
		case s[j] == q:
			return j + 1
		}
	}
	return len(s)
}

// scanElement scans a plain element from i to its end (the index of the
// comma or closer at depth 0, or the end of the line) and returns the index
// of the first comma YAML would split it at while the expression still had a
// bracket or string open, or -1.
func scanElement(s string, i int, mapping bool) (end, comma int) {
	depth, quote := 0, byte(0)
	comma = -1
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			switch {
			case c == '\\' && quote != '`':
				i++
			case c == quote:
				quote = 0
			case c == ',' && comma < 0:
				comma = i
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '(' || c == '[':
			depth++
		case c == ')' || (c == ']' && depth > 0):
			depth--
		case c == ',' && depth > 0, c == '{' && i+1 < len(s) && s[i+1] == '{':
			// A comma inside brackets, or a {{name}} (YAML reads { as a
			// mapping), is where YAML breaks what the expression meant.
			if comma < 0 {
				comma = i
			}
		case c == ',' || c == ']' || c == '}':
			return i, comma
		case c == '#' && i > 0 && (s[i-1] == ' ' || s[i-1] == '\t'):
			return len(s), comma
		}
	}
	return len(s), comma
}

// valueStart is where the value of a "key: value" element starting at start
// begins, or start.
func valueStart(s string, start, end int) int {
	k := strings.Index(s[start:max(start, min(end, len(s)))], ": ")
	if k < 0 {
		return start
	}
	i := start + k + 2
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return i
}

// elemEnd is where the element at start ends when its commas are taken as
// part of it: the closer of the collection, or the next comma at depth 0.
func elemEnd(s string, start int) int {
	depth, quote := 0, byte(0)
	for i := start; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote != '`' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || (c == ']' || c == '}') && depth > 0:
			depth--
		case depth == 0 && (c == ']' || c == '}'):
			return i
		case depth == 0 && c == ',':
			return i
		}
	}
	return len(s)
}

// hint is the error for t.
func (t commaTrap) hint() string {
	switch {
	case t.braces && t.mapping:
		return "invalid YAML: " + quote(t.elem) + " holds {{...}}, which YAML reads as a mapping: quote it in a {...} mapping, or write the mapping one entry per line"
	case t.braces:
		return "invalid YAML: " + quote(t.elem) + " holds {{...}}, which YAML reads as a mapping: an expectation with a variable must be quoted in a [...] list, or written as a block list (- ...)"
	}
	if t.mapping {
		return "invalid YAML: " + quote(t.elem) + " holds a comma, which ends a value in a {...} mapping: quote it, or write the mapping one entry per line (name: expression)"
	}
	return "invalid YAML: " + quote(t.elem) + " holds a comma, which ends an element of a [...] list: an expectation containing a comma must be quoted in a [...] list, or written as a block list (- ...)"
}

// leadingBraces finds, from the 1-based line from, a value that starts with
// {{ (url: {{base}}/x, - {{id}} == json.id): YAML reads it as a flow
// mapping and fails somewhere after it.
func leadingBraces(lines []string, from, n int) (commaTrap, bool) {
	for ln := max(from, 1); ln <= len(lines) && ln < from+n; ln++ {
		s := lines[ln-1]
		i := 0
		for {
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
			if i+1 < len(s) && s[i] == '-' && s[i+1] == ' ' {
				i += 2
				continue
			}
			break
		}
		if !strings.HasPrefix(s[i:], "{{") {
			if k := strings.Index(s[i:], ": "); k >= 0 && !strings.ContainsAny(s[i:i+k], "\"'#[{") {
				i += k + 2
				for i < len(s) && s[i] == ' ' {
					i++
				}
			}
		}
		if strings.HasPrefix(s[i:], "{{") {
			elem := strings.TrimSpace(s[i:])
			if k := strings.Index(elem, " #"); k >= 0 {
				elem = strings.TrimSpace(elem[:k])
			}
			return commaTrap{line: ln, col: utf8.RuneCountInString(s[:i]) + 1, elem: elem}, true
		}
	}
	return commaTrap{}, false
}

// leadingHint is the error for a value starting with {{.
func (t commaTrap) leadingHint() string {
	return "invalid YAML: " + quote(t.elem) + " starts with {{, which YAML reads as a mapping: quote the value" +
		" (or, in an expectation, put the variable on the right: json.id == {{id}})"
}
