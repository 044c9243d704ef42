package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// A strict walker over yaml.v3 node trees. Decoding into structs would stop
// at the first problem and lose columns; walking the nodes ourselves lets
// every error carry file:line:col and all of them be collected.

const (
	// maxFileSize bounds a config file. Real ones are a few KiB; the bound
	// keeps a mistaken path (a log file, a binary) from being parsed at all.
	maxFileSize = 1 << 20
	// aliasBudget bounds how much data alias expansion may produce per file,
	// in nodes plus scalar bytes, beyond the file itself: "billion laughs"
	// documents and self-referencing anchors must fail fast, not hang.
	aliasBudget = 1 << 20
	// saturated stands for "too big to count" in expansion sizes.
	saturated = 1 << 40
)

const (
	nullTag  = "!!null"
	boolTag  = "!!bool"
	intTag   = "!!int"
	floatTag = "!!float"
	strTag   = "!!str"
	mergeTag = "!!merge"
)

// file is one parsed YAML file and what is needed to report positions in it.
type file struct {
	l     *loader
	name  string   // path inside the loader's fs.FS
	dir   string   // path.Dir(name): relative paths in the file are resolved against it
	lines []string // source lines, to place errors inside scalars

	budget         int                // alias expansion left, see aliasBudget
	sizes          map[*yaml.Node]int // memoized expansion sizes; -1 while being computed
	budgetReported bool
}

func (l *loader) newFile(name string, data []byte) *file {
	lines := strings.Split(string(data), "\n")
	for i, s := range lines {
		lines[i] = strings.TrimSuffix(s, "\r")
	}
	return &file{
		l:      l,
		name:   name,
		dir:    path.Dir(name),
		lines:  lines,
		budget: aliasBudget + len(data),
		sizes:  map[*yaml.Node]int{},
	}
}

func (f *file) pos(n *yaml.Node) Pos { return mkPos(f.name, n.Line, n.Column) }

// mkPos is a Pos, its line and column saturated at 32 bits.
func mkPos(file string, line, col int) Pos {
	return Pos{File: file, Line: i32(line), Col: i32(col)}
}

func i32(n int) int32 { return int32(min(max(n, math.MinInt32), math.MaxInt32)) }

func (f *file) errorf(n *yaml.Node, format string, args ...any) {
	f.l.errorAt(f.pos(n), format, args...)
}

// parse decodes data as a single YAML document and returns its root node, or
// nil after reporting why there is none.
func (l *loader) parse(name string, data []byte) (*file, *yaml.Node) {
	f := l.newFile(name, data)
	if len(data) > maxFileSize {
		l.errorAt(Pos{File: name}, "file is larger than %d bytes", maxFileSize)
		return f, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := decodeNode(dec, &doc); {
	case errors.Is(err, io.EOF):
		l.errorAt(Pos{File: name}, "file is empty")
		return f, nil
	case err != nil:
		f.yamlError(err)
		return f, nil
	}
	var extra yaml.Node
	switch err := decodeNode(dec, &extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		f.yamlError(err)
		return f, nil
	default:
		f.errorf(&extra, "a file holds one YAML document; found another here")
		return f, nil
	}
	root := f.node(&doc)
	if isNull(root) && len(doc.Content) == 0 {
		l.errorAt(Pos{File: name}, "file is empty")
		return f, nil
	}
	return f, root
}

// decodeNode is Decode with the parser's internal panics turned into errors:
// the input is untrusted and a crash would take the daemon down.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

// yamlError reports a yaml.v3 error, which carries at most a line number
// ("yaml: line 3: mapping values are not allowed in this context").
func (f *file) yamlError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Pos{File: f.name}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil && n > 0 {
				p.Line, p.Col, msg = i32(n), 1, rest[i+2:]
			}
		}
	}
	if p.Line > 0 {
		// The line yaml.v3 names is often before the culprit.
		if t, ok := leadingBraces(f.lines, int(p.Line), 3); ok {
			f.l.errorAt(mkPos(f.name, t.line, t.col), "%s", t.leadingHint())
			return
		}
		if t, ok := commaCulprit(f.lines, int(p.Line)); ok && isFlowError(msg) {
			f.l.errorAt(mkPos(f.name, t.line, t.col), "%s", t.hint())
			return
		}
	}
	f.l.errorAt(p, "invalid YAML: %s", msg)
}

// isFlowError tells yaml.v3's errors inside a flow collection ([...],
// {...}), where a comma in an expression is the usual cause.
func isFlowError(msg string) bool {
	return strings.Contains(msg, "expected ',' or ']'") || strings.Contains(msg, "expected ',' or '}'") ||
		strings.Contains(msg, "flow sequence") || strings.Contains(msg, "flow mapping") ||
		strings.Contains(msg, "cannot start any token") // a `regexp` after the comma
}

// nullAt is a null scalar standing in for a node that could not be used.
func nullAt(n *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: nullTag, Line: n.Line, Column: n.Column}
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == nullTag || n.Kind == 0
}

// node resolves documents and aliases. Every alias dereference is charged its
// expanded size against the file's budget; once that is spent, aliases read as
// null, so a malicious document costs bounded work.
func (f *file) node(n *yaml.Node) *yaml.Node {
	for hops := 0; n != nil; hops++ {
		switch {
		case n.Kind == yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nullAt(n)
			}
			n = n.Content[0]
		case n.Kind == yaml.AliasNode:
			if n.Alias == nil || hops > 100 {
				return nullAt(n)
			}
			cost := f.expandedSize(n.Alias)
			if cost > f.budget {
				if !f.budgetReported {
					f.budgetReported = true
					f.errorf(n, "alias *%s: aliases expand to too much data here (an alias bomb, or an anchor that contains itself)", n.Value)
				}
				f.budget = 0
				return nullAt(n)
			}
			f.budget -= cost
			n = n.Alias
		default:
			return n
		}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: nullTag}
}

// expandedSize is the number of nodes plus scalar bytes n stands for with all
// aliases expanded, saturating; a node that contains itself is infinite.
func (f *file) expandedSize(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	if s, ok := f.sizes[n]; ok {
		if s < 0 {
			return saturated
		}
		return s
	}
	f.sizes[n] = -1
	size := 1 + len(n.Value)
	if n.Kind == yaml.AliasNode {
		size += f.expandedSize(n.Alias)
	}
	for _, c := range n.Content {
		size = min(size+f.expandedSize(c), saturated)
	}
	size = min(size, saturated)
	f.sizes[n] = size
	return size
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case isNull(n):
		return "null"
	}
	return quote(n.Value)
}

// quote quotes s for a message, shortened: values can be long and the
// position already says where they are.
func quote(s string) string {
	const max = 60
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

// pair is one key/value of a mapping; the key is a scalar.
type pair struct {
	key, val *yaml.Node
	name     string
}

// pairs returns the entries of mapping n in document order, with merge keys
// (<<: *anchor) expanded and explicit keys winning over merged ones. It
// reports duplicate and non-scalar keys and leaves them out.
func (f *file) pairs(n *yaml.Node) []pair { return f.pairsDepth(n, 0) }

func (f *file) pairsDepth(n *yaml.Node, depth int) []pair {
	explicit := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := f.node(n.Content[i])
		if k.Kind == yaml.ScalarNode && k.ShortTag() == mergeTag {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			f.errorf(k, "mapping keys must be strings, got %s", describe(k))
			continue
		}
		if first, dup := explicit[k.Value]; dup {
			f.errorf(k, "duplicate key %s (first at %s)", quote(k.Value), f.pos(first))
			continue
		}
		explicit[k.Value] = k
	}
	var out []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := f.node(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			continue
		}
		if k.ShortTag() == mergeTag {
			for _, p := range f.merged(k, v, depth) {
				if explicit[p.name] == nil && !seen[p.name] {
					seen[p.name] = true
					out = append(out, p)
				}
			}
			continue
		}
		if explicit[k.Value] != k {
			continue // a duplicate, reported above
		}
		seen[k.Value] = true
		out = append(out, pair{key: k, val: v, name: k.Value})
	}
	return out
}

// merged returns the entries a merge key brings in: from a mapping, or from a
// list of mappings where earlier ones win.
func (f *file) merged(k, v *yaml.Node, depth int) []pair {
	if depth > 20 {
		f.errorf(k, "merge keys nested too deeply")
		return nil
	}
	v = f.node(v)
	var srcs []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		srcs = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, c := range v.Content {
			srcs = append(srcs, f.node(c))
		}
	default:
		if !isNull(v) {
			f.errorf(v, "merge key << needs a mapping or a list of mappings, got %s", describe(v))
		}
		return nil
	}
	var out []pair
	for _, s := range srcs {
		if s.Kind != yaml.MappingNode {
			f.errorf(s, "merge key << needs a mapping or a list of mappings, got %s", describe(s))
			continue
		}
		out = append(out, f.pairsDepth(s, depth+1)...)
	}
	return out
}

// isMapping reports whether the root of a file is a mapping; anything else
// would only produce a cascade of "missing field" errors.
func (f *file) isMapping(root *yaml.Node, what string) bool {
	if root.Kind == yaml.MappingNode {
		return true
	}
	f.errorf(root, "expected a mapping for %s, got %s", what, describe(root))
	return false
}

// object is a mapping with a fixed set of known fields.
type object struct {
	f     *file
	n     *yaml.Node // the mapping, or what stood in its place
	known map[string]pair
}

// object checks that n is a mapping (null counts as an empty one) holding
// only the given fields, reporting the others with a suggestion.
func (f *file) object(n *yaml.Node, what string, fields []string) *object {
	return f.objectExt(n, what, fields, false)
}

// topObject is object for the root of a file, which may also hold fields
// named x-...: a place for anchors to be shared (as in docker-compose).
func (f *file) topObject(n *yaml.Node, what string, fields []string) *object {
	return f.objectExt(n, what, fields, true)
}

func (f *file) objectExt(n *yaml.Node, what string, fields []string, extensions bool) *object {
	n = f.node(n)
	o := &object{f: f, n: n, known: map[string]pair{}}
	if n.Kind != yaml.MappingNode {
		if !isNull(n) {
			f.errorf(n, "expected a mapping for %s, got %s", what, describe(n))
		}
		return o
	}
	for _, p := range f.pairs(n) {
		if extensions && strings.HasPrefix(p.name, "x-") {
			continue
		}
		if !slices.Contains(fields, p.name) {
			f.errorf(p.key, "unknown field %s in %s%s", quote(p.name), what, didYouMean(p.name, fields))
			continue
		}
		o.known[p.name] = p
	}
	return o
}

// get returns the value of field name with aliases resolved, or nil when the
// field is absent or null: null means "not set" everywhere in the config.
func (o *object) get(name string) *yaml.Node {
	p, ok := o.known[name]
	if !ok {
		return nil
	}
	v := o.f.node(p.val)
	if isNull(v) {
		return nil
	}
	return v
}

// key returns the key node of field name, or nil.
func (o *object) key(name string) *yaml.Node { return o.known[name].key }

// posIn is the position of byte off of scalar n's value. It is exact for
// plain and quoted scalars on one line and for literal block scalars;
// otherwise (escapes before off, folding) it falls back to the scalar itself.
func (f *file) posIn(n *yaml.Node, off int) Pos {
	p := f.pos(n)
	base := p
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		p.Col++ // the value starts after the quote
	}
	v := n.Value
	// Past maxExact bytes, stay at the start: the scan below is linear, and
	// a giant scalar with many errors must not make reporting quadratic.
	const maxExact = 4096
	if off < 0 || off > len(v) || off > maxExact || n.Line < 1 || n.Line > len(f.lines) || n.Column < 1 {
		return p
	}
	prefix := v[:off]
	rest, ok := afterColumn(f.lines[n.Line-1], n.Column)
	if !ok {
		return p
	}
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if strings.HasPrefix(rest, `"`+prefix) && !strings.ContainsAny(prefix, "\"\\\n") {
			p.Col = base.Col + 1 + i32(utf8.RuneCountInString(prefix))
		}
	case n.Style&yaml.SingleQuotedStyle != 0:
		esc := strings.ReplaceAll(prefix, "'", "''")
		if strings.HasPrefix(rest, "'"+esc) && !strings.Contains(prefix, "\n") {
			p.Col = base.Col + 1 + i32(utf8.RuneCountInString(esc))
		}
	case n.Style&yaml.LiteralStyle != 0:
		// Value line k is source line n.Line+1+k, indented by the block's
		// indentation; check that, to stay exact or not move at all.
		k := strings.Count(prefix, "\n")
		ln := n.Line + 1 + k
		if ln > len(f.lines) {
			return p
		}
		lineStart := strings.LastIndexByte(prefix, '\n') + 1
		valueLine, _, _ := strings.Cut(v[lineStart:], "\n")
		src := f.lines[ln-1]
		ind := len(src) - len(valueLine)
		if ind >= 0 && src[ind:] == valueLine && strings.Trim(src[:ind], " ") == "" {
			return mkPos(f.name, ln, utf8.RuneCountInString(src[:ind])+utf8.RuneCountInString(prefix[lineStart:])+1)
		}
	case n.Style&yaml.FoldedStyle != 0:
	default:
		if strings.HasPrefix(rest, prefix) && !strings.Contains(prefix, "\n") {
			p.Col += i32(utf8.RuneCountInString(prefix))
		}
	}
	return p
}

// afterColumn returns line from 1-based rune column col on.
func afterColumn(line string, col int) (string, bool) {
	i := 0
	for c := 1; c < col; c++ {
		if i >= len(line) {
			return "", false
		}
		_, size := utf8.DecodeRuneInString(line[i:])
		i += size
	}
	return line[i:], true
}
