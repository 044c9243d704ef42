// Package template holds the small placeholder language of flows:
// {{name}} for variables and captures, {{secret:NAME}} for secrets, parsed
// once at load and expanded per run without re-parsing. It also expands
// ${env:NAME} and ${env:NAME:-default}, which config resolves at load time.
package template

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Escape says how an expanded value is written into the output.
type Escape uint8

const (
	Raw        Escape = iota // as is
	JSONString               // escaped for the inside of a JSON string literal
)

// Ref is one placeholder in a template.
type Ref struct {
	Name   string
	Secret bool
	Offset int // byte offset of "{{" in the source
}

// Scope supplies values at expansion time.
type Scope interface {
	// Var returns a variable or capture.
	Var(name string) (string, bool)
	// Secret returns a secret's value.
	Secret(name string) (string, bool)
}

// MissingError is returned by Expand when the scope lacks a referenced name.
type MissingError struct {
	Name   string
	Secret bool
}

func (e *MissingError) Error() string {
	if e.Secret {
		return fmt.Sprintf("secret %q is not defined", e.Name)
	}
	return fmt.Sprintf("variable %q is not defined", e.Name)
}

// SyntaxError is a malformed placeholder.
type SyntaxError struct {
	Offset int // byte offset into the source
	Msg    string
}

func (e *SyntaxError) Error() string { return e.Msg }

type segment struct {
	lit string
	ref int // index into refs, or -1 for a literal
	esc Escape
}

// Template is a parsed string with placeholders. The zero value expands to "".
// A template without placeholders is its source alone (24 bytes): a
// configuration of many flows keeps thousands of such bodies, such as each
// login's, that differ in a user.
type Template struct {
	src string
	p   *parsed // nil without placeholders: it expands to src
}

// parsed is a template's placeholders, and the literals between them.
type parsed struct {
	segs []segment
	refs []Ref
}

// segments are t's segments, a literal one for a template without
// placeholders.
func (t *Template) segments() []segment {
	if t.p == nil {
		if t.src == "" {
			return nil
		}
		return []segment{{lit: t.src, ref: -1}}
	}
	return t.p.segs
}

// Parse parses src. Placeholders are {{name}} or {{secret:NAME}}, with
// optional spaces inside the braces. Names are letters, digits, '_', '-' and
// '.', starting with a letter or '_'.
func Parse(src string) (*Template, error) {
	t := &Template{src: src}
	var (
		segs []segment
		refs []Ref
	)
	rest, base := src, 0
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if refs == nil {
				return t, nil // no placeholders: src
			}
			if rest != "" {
				segs = append(segs, segment{lit: rest, ref: -1})
			}
			t.p = &parsed{segs: segs, refs: refs}
			return t, nil
		}
		if i > 0 {
			segs = append(segs, segment{lit: rest[:i], ref: -1})
		}
		open := base + i
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			return nil, &SyntaxError{Offset: open, Msg: `unclosed "{{": want {{name}} or {{secret:NAME}}`}
		}
		inner := rest[i+2 : i+2+j]
		name := strings.TrimSpace(inner)
		secret := false
		if after, ok := strings.CutPrefix(name, "secret:"); ok {
			secret, name = true, strings.TrimSpace(after)
		}
		if err := checkName(name); err != nil {
			return nil, &SyntaxError{Offset: open, Msg: fmt.Sprintf("bad placeholder {{%s}}: %v", inner, err)}
		}
		refs = append(refs, Ref{Name: name, Secret: secret, Offset: open})
		segs = append(segs, segment{ref: len(refs) - 1})
		consumed := i + 2 + j + 2
		rest, base = rest[consumed:], base+consumed
	}
}

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	for i, r := range name {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '.'):
		default:
			return fmt.Errorf("unexpected %q in name %q", r, name)
		}
	}
	return nil
}

// MustParse is Parse for sources known to be valid (tests, built-in flows).
func MustParse(src string) *Template {
	t, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return t
}

// Literal returns a template that expands to s verbatim, even if s contains "{{".
func Literal(s string) *Template {
	return &Template{src: s}
}

// Part is one piece of a joined template.
type Part struct {
	T   *Template
	Esc Escape // how the values of T's placeholders are written
}

// Join concatenates parts into one template; literals are copied verbatim and
// each part's placeholders are expanded with that part's escaping. Config uses
// it to pre-encode a JSON body once and splice escaped values in per run.
func Join(parts ...Part) *Template {
	out := &Template{}
	var o parsed
	var src strings.Builder
	n := 0
	for _, p := range parts {
		if p.T != nil {
			n += len(p.T.src)
		}
	}
	src.Grow(n) // kept: its own size, not the last doubling's
	for _, p := range parts {
		if p.T == nil {
			continue
		}
		off := src.Len()
		src.WriteString(p.T.src)
		for _, s := range p.T.segments() {
			if s.ref < 0 {
				// Merge adjacent literals so expansion does fewer appends.
				if n := len(o.segs); n > 0 && o.segs[n-1].ref < 0 {
					o.segs[n-1].lit += s.lit
					continue
				}
				o.segs = append(o.segs, s)
				continue
			}
			r := p.T.p.refs[s.ref]
			r.Offset += off
			o.refs = append(o.refs, r)
			o.segs = append(o.segs, segment{ref: len(o.refs) - 1, esc: p.Esc})
		}
	}
	out.src = src.String()
	if o.refs == nil {
		return out // it expands to src
	}
	out.p = &parsed{segs: o.segs, refs: o.refs} // o stays on the stack
	// Each literal is in src too (parts' literals are their sources'
	// text): point it into src rather than keep a second copy. A
	// configuration of many flows keeps every body that differs between
	// them, such as a login's user.
	for i, sg := range o.segs {
		if sg.ref < 0 {
			if j := strings.Index(out.src, sg.lit); j >= 0 {
				o.segs[i].lit = out.src[j : j+len(sg.lit)]
			}
		}
	}
	return out
}

// Interner shares equal templates: a configuration of many similar flows
// repeats the same URLs, headers and bodies, and templates are immutable.
// The zero value is ready; not safe for concurrent use.
type Interner struct{ m map[string][]*Template }

// Intern returns a template equal to t (same source, same placeholders and
// escaping) interned before, or t.
func (in *Interner) Intern(t *Template) *Template {
	if in == nil || t == nil {
		return t
	}
	if in.m == nil {
		in.m = map[string][]*Template{}
	}
	for _, c := range in.m[t.src] {
		if (c.p == nil) == (t.p == nil) && (c.p == nil || slices.Equal(c.p.segs, t.p.segs) && slices.Equal(c.p.refs, t.p.refs)) {
			return c
		}
	}
	in.m[t.src] = append(in.m[t.src], t)
	return t
}

// String returns the source text.
func (t *Template) String() string {
	if t == nil {
		return ""
	}
	return t.src
}

// Refs lists the placeholders in source order.
func (t *Template) Refs() []Ref {
	if t == nil || t.p == nil {
		return nil
	}
	return t.p.refs
}

// IsLiteral reports whether t has no placeholders.
func (t *Template) IsLiteral() bool { return t == nil || t.p == nil }

// Expand appends the expansion of t to dst.
func (t *Template) Expand(dst []byte, s Scope) ([]byte, error) {
	if t == nil {
		return dst, nil
	}
	if t.p == nil {
		return append(dst, t.src...), nil
	}
	for _, seg := range t.p.segs {
		if seg.ref < 0 {
			dst = append(dst, seg.lit...)
			continue
		}
		r := t.p.refs[seg.ref]
		var v string
		var ok bool
		if r.Secret {
			v, ok = s.Secret(r.Name)
		} else {
			v, ok = s.Var(r.Name)
		}
		if !ok {
			return dst, &MissingError{Name: r.Name, Secret: r.Secret}
		}
		switch seg.esc {
		case JSONString:
			dst = AppendJSONString(dst, v)
		default:
			dst = append(dst, v...)
		}
	}
	return dst, nil
}

// ExpandString is Expand into a new string.
func (t *Template) ExpandString(s Scope) (string, error) {
	if t.IsLiteral() {
		return t.String(), nil
	}
	b, err := t.Expand(make([]byte, 0, len(t.src)+32), s)
	return string(b), err
}

const hex = "0123456789abcdef"

// AppendJSONString writes v as the inside of a JSON string literal, with the
// same escaping as encoding/json (minus HTML escaping, which bodies don't
// need). Config uses it for the literal parts of JSON bodies so that literal
// and expanded parts look alike.
func AppendJSONString(dst []byte, v string) []byte {
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			dst = append(dst, v[i:i+size]...)
		}
		i += size
	}
	return dst
}

// EnvError is a bad or unresolvable ${env:...} reference.
type EnvError struct {
	Offset int
	Name   string
	Msg    string
}

func (e *EnvError) Error() string { return e.Msg }

// ExpandEnv replaces ${env:NAME} and ${env:NAME:-default} in s using lookup.
// An unset variable without a default is an error naming the variable. "$$"
// is not special; only "${env:" starts a reference.
func ExpandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${env:") {
		return s, nil
	}
	var b strings.Builder
	rest, base := s, 0
	for {
		i := strings.Index(rest, "${env:")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:i])
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return "", &EnvError{Offset: base + i, Msg: `unclosed "${env:": want ${env:NAME} or ${env:NAME:-default}`}
		}
		body := rest[i+len("${env:") : i+end]
		name, def, hasDef := strings.Cut(body, ":-")
		if err := checkEnvName(name); err != nil {
			return "", &EnvError{Offset: base + i, Name: name, Msg: err.Error()}
		}
		v, ok := lookup(name)
		if !ok || v == "" && hasDef {
			if !hasDef {
				return "", &EnvError{Offset: base + i, Name: name,
					Msg: fmt.Sprintf("environment variable %s is not set (use ${env:%s:-default} for a default)", name, name)}
			}
			v = def
		}
		b.WriteString(v)
		consumed := i + end + 1
		rest, base = rest[consumed:], base+consumed
	}
}

func checkEnvName(name string) error {
	if name == "" {
		return fmt.Errorf("empty environment variable name in ${env:}")
	}
	for i, r := range name {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return fmt.Errorf("bad environment variable name %s", strconv.Quote(name))
		}
	}
	return nil
}
