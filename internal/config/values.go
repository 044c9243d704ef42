package config

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/template"
)

// Scalar readers. Each reports its own error at the node and returns ok=false;
// callers keep going so that every problem is found in one pass.

func (f *file) isScalar(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && !isNull(n) }

// str accepts any non-null scalar as text: `port: 8080` is the string "8080".
func (f *file) str(n *yaml.Node, want string) (string, bool) {
	if !f.isScalar(n) {
		f.errorf(n, "expected %s, got %s", want, describe(n))
		return "", false
	}
	return n.Value, true
}

// envText is the text of a string scalar with ${env:...} resolved, so that
// booleans, numbers, sizes and durations can come from the environment
// (`run_on_start: ${env:RUN_ON_START:-false}`). ok is false after an
// error (reported) in a reference; fromEnv tells the messages to quote the
// source, not the value.
func (f *file) envText(n *yaml.Node) (text string, fromEnv, ok bool) {
	if n.ShortTag() != strTag || !strings.Contains(n.Value, "${env:") {
		return n.Value, false, true
	}
	v, ok := f.env(n, n.Value, 0)
	return v, true, ok
}

// fromEnvNote says where a bad value came from without showing it: an
// environment value may be something that should not be echoed.
func fromEnvNote(fromEnv bool) string {
	if fromEnv {
		return " (from the environment)"
	}
	return ""
}

func (f *file) duration(n *yaml.Node) (time.Duration, bool) {
	env := false
	if f.isScalar(n) {
		s, fromEnv, ok := f.envText(n)
		if !ok {
			return 0, false
		}
		if d, err := time.ParseDuration(strings.TrimSpace(s)); err == nil {
			return d, true
		}
		env = fromEnv
	}
	f.errorf(n, "expected a duration like 30s or 500ms, got %s%s", describe(n), fromEnvNote(env))
	return 0, false
}

// positive is a duration that must be > 0.
func (f *file) positive(n *yaml.Node, what string) (time.Duration, bool) {
	d, ok := f.duration(n)
	if ok && d <= 0 {
		f.errorf(n, "%s must be positive, got %s", what, d)
		return 0, false
	}
	return d, ok
}

// integer accepts YAML integers (1_000, 0x10) and, leniently, quoted decimal
// ones: "16" is not worth an error.
func (f *file) integer(n *yaml.Node, what string, lo, hi int64) (int64, bool) {
	var v int64
	ok, env := false, false
	if f.isScalar(n) {
		switch n.ShortTag() {
		case intTag:
			ok = n.Decode(&v) == nil
		case strTag:
			s, fromEnv, good := f.envText(n)
			if !good {
				return 0, false
			}
			var err error
			v, err = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			ok, env = err == nil, fromEnv
		}
	}
	if !ok {
		f.errorf(n, "expected an integer, got %s%s", describe(n), fromEnvNote(env))
		return 0, false
	}
	if v < lo || v > hi {
		f.errorf(n, "%s must be between %d and %d, got %d", what, lo, hi, v)
		return 0, false
	}
	return v, true
}

func (f *file) boolean(n *yaml.Node) (bool, bool) {
	env := false
	if f.isScalar(n) {
		switch n.ShortTag() {
		case boolTag:
			var b bool
			if n.Decode(&b) == nil {
				return b, true
			}
		case strTag:
			s, fromEnv, ok := f.envText(n)
			if !ok {
				return false, false
			}
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "true":
				return true, true
			case "false":
				return false, true
			}
			env = fromEnv
		}
	}
	f.errorf(n, "expected true or false, got %s%s", describe(n), fromEnvNote(env))
	return false, false
}

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// size reads a byte count: an integer, or a string with a unit (B, KB, MB,
// GB, KiB, MiB, GiB; case-insensitive). It must be in 1 byte .. 1 GiB.
func (f *file) size(n *yaml.Node, what string) (int64, bool) {
	v, ok, env := int64(0), false, false
	if f.isScalar(n) {
		if n.ShortTag() == intTag {
			ok = n.Decode(&v) == nil
		} else {
			s, fromEnv, good := f.envText(n)
			if !good {
				return 0, false
			}
			v, ok = parseSize(s)
			env = fromEnv
		}
	}
	if !ok {
		f.errorf(n, "expected a size like 1MiB or 65536, got %s%s", describe(n), fromEnvNote(env))
		return 0, false
	}
	if v < 1 || v > gib {
		f.errorf(n, "%s must be between 1 byte and 1GiB, got %s", what, describe(n))
		return 0, false
	}
	return v, true
}

func parseSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 0 || i > 15 { // 15 digits cannot overflow even times GiB
		return 0, false
	}
	num, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, false
	}
	var mult int64
	switch strings.ToLower(strings.TrimSpace(s[i:])) {
	case "", "b":
		mult = 1
	case "kb":
		mult = 1000
	case "mb":
		mult = 1000 * 1000
	case "gb":
		mult = 1000 * 1000 * 1000
	case "kib":
		mult = kib
	case "mib":
		mult = mib
	case "gib":
		mult = gib
	default:
		return 0, false
	}
	if num > (1<<62)/mult {
		return 0, false
	}
	return num * mult, true
}

// env expands ${env:...} in s, the value of scalar n starting at byte base,
// reporting a bad or unset reference at its position.
func (f *file) env(n *yaml.Node, s string, base int) (string, bool) {
	v, err := template.ExpandEnv(s, f.l.env)
	if err != nil {
		var ee *template.EnvError
		if errors.As(err, &ee) {
			f.l.errorAt(f.posIn(n, base+ee.Offset), "%s", ee.Msg)
		} else {
			f.errorf(n, "%v", err)
		}
		return s, false
	}
	return v, true
}

// plain reads a string that may use ${env:...} but no placeholders: its value
// is needed at load time. noPlaceholders is the message if it has one.
func (f *file) plain(n *yaml.Node, want, noPlaceholders string) (string, bool) {
	s, ok := f.str(n, want)
	if !ok {
		return "", false
	}
	if i := strings.Index(s, "{{"); i >= 0 {
		f.l.errorAt(f.posIn(n, i), "%s", noPlaceholders)
		return "", false
	}
	return f.env(n, s, 0)
}

// use is one {{...}} placeholder found in a flow, checked once all the names
// the flow defines are known.
type use struct {
	name   string
	secret bool
	expect bool // in an expectation, not a request
	// Where: the position is computed only when reported, as it costs a
	// scan of the scalar.
	f   *file
	n   *yaml.Node
	off int
}

func (u use) pos() Pos { return u.f.posIn(u.n, u.off) }

// piece is a run of literal text (with ${env:...} already resolved) or one
// placeholder, as written ("{{ name }}").
type piece struct {
	lit, ph string
}

// pieces splits the string scalar n into literal text and placeholders,
// recording each placeholder in uses. Env references are resolved in the
// literal text only, so an environment value is data, never a placeholder.
func (f *file) pieces(n *yaml.Node, want string, uses *[]use) ([]piece, bool) {
	s, ok := f.str(n, want)
	if !ok {
		return nil, false
	}
	t, err := template.Parse(s)
	if err != nil {
		var se *template.SyntaxError
		if errors.As(err, &se) {
			f.l.errorAt(f.posIn(n, se.Offset), "%s", se.Msg)
		} else {
			f.errorf(n, "%v", err)
		}
		return nil, false
	}
	var ps []piece
	prev := 0
	lit := func(end int) {
		if prev < end {
			v, good := f.env(n, s[prev:end], prev)
			ok = ok && good
			ps = append(ps, piece{lit: v})
		}
	}
	for _, r := range t.Refs() {
		j := strings.Index(s[r.Offset+2:], "}}")
		if j < 0 { // cannot happen after a successful Parse
			return nil, false
		}
		end := r.Offset + 2 + j + 2
		lit(r.Offset)
		ps = append(ps, piece{ph: s[r.Offset:end]})
		*uses = append(*uses, use{name: r.Name, secret: r.Secret, f: f, n: n, off: r.Offset})
		prev = end
	}
	lit(len(s))
	return ps, ok
}

// tmpl compiles a string scalar into a template whose placeholders expand raw.
func (f *file) tmpl(n *yaml.Node, want string, uses *[]use) (*template.Template, bool) {
	ps, ok := f.pieces(n, want, uses)
	if !ok {
		return nil, false
	}
	return f.l.joinPieces(ps, template.Raw), true
}

// joinPieces is joinPieces interned.
func (l *loader) joinPieces(ps []piece, esc template.Escape) *template.Template {
	return l.templates.Intern(joinPieces(ps, esc))
}

func joinPieces(ps []piece, esc template.Escape) *template.Template {
	parts := make([]template.Part, 0, len(ps))
	for _, p := range ps {
		if p.ph == "" {
			lit := p.lit
			if esc == template.JSONString {
				lit = string(template.AppendJSONString(nil, lit))
			}
			parts = append(parts, template.Part{T: template.Literal(lit)})
			continue
		}
		if t, err := template.Parse(p.ph); err == nil {
			parts = append(parts, template.Part{T: t, Esc: esc})
		}
	}
	return template.Join(parts...)
}

// pieceString is the text of ps with placeholders replaced by stand-in,
// for checks on the shape of a value (is this URL plausible?).
func pieceString(ps []piece, standIn string) string {
	var b strings.Builder
	for _, p := range ps {
		if p.ph != "" {
			b.WriteString(standIn)
		} else {
			b.WriteString(p.lit)
		}
	}
	return b.String()
}

// jsonBody pre-encodes a YAML value as JSON text once, at load: literal text
// accumulates in lit and each placeholder inside a string becomes its own
// JSON-escaped template part.
type jsonBody struct {
	f     *file
	uses  *[]use
	parts []template.Part
	lit   []byte
	ok    bool
}

func (f *file) jsonTemplate(n *yaml.Node, uses *[]use) (*template.Template, bool) {
	j := &jsonBody{f: f, uses: uses, ok: true}
	j.value(n)
	j.flush()
	return f.l.templates.Intern(template.Join(j.parts...)), j.ok
}

func (j *jsonBody) flush() {
	if len(j.lit) > 0 {
		j.parts = append(j.parts, template.Part{T: template.Literal(string(j.lit))})
		j.lit = j.lit[:0]
	}
}

func (j *jsonBody) value(n *yaml.Node) {
	n = j.f.node(n)
	switch n.Kind {
	case yaml.MappingNode:
		j.lit = append(j.lit, '{')
		for i, p := range j.f.pairs(n) {
			if i > 0 {
				j.lit = append(j.lit, ',')
			}
			j.str(p.key)
			j.lit = append(j.lit, ':')
			j.value(p.val)
		}
		j.lit = append(j.lit, '}')
	case yaml.SequenceNode:
		j.lit = append(j.lit, '[')
		for i, c := range n.Content {
			if i > 0 {
				j.lit = append(j.lit, ',')
			}
			j.value(c)
		}
		j.lit = append(j.lit, ']')
	case yaml.ScalarNode:
		j.scalar(n)
	default:
		j.lit = append(j.lit, "null"...)
	}
}

func (j *jsonBody) scalar(n *yaml.Node) {
	switch n.ShortTag() {
	case nullTag:
		j.lit = append(j.lit, "null"...)
		return
	case boolTag:
		var b bool
		if n.Decode(&b) == nil {
			j.lit = strconv.AppendBool(j.lit, b)
			return
		}
	case intTag, floatTag:
		if s, ok := jsonNumber(n); ok {
			j.lit = append(j.lit, s...)
			return
		}
		j.f.errorf(n, "%s cannot be written as a JSON number", quote(n.Value))
		j.ok = false
		return
	}
	j.str(n)
}

// jsonNumber renders a YAML number as JSON, keeping the source text when it
// already is valid JSON (so 1.0 and long integers pass through unchanged).
func jsonNumber(n *yaml.Node) (string, bool) {
	s := strings.TrimSpace(n.Value)
	if isJSONNumber(s) {
		return s, true
	}
	var v any
	if n.Decode(&v) != nil {
		return "", false
	}
	switch v := v.(type) {
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	case float64:
		if v != v || v > 1.7976931348623157e308 || v < -1.7976931348623157e308 {
			return "", false // NaN and infinities have no JSON form
		}
		return strconv.FormatFloat(v, 'g', -1, 64), true
	}
	return "", false
}

// isJSONNumber checks the JSON number grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	i := 0
	digits := func() int {
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		return i - start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

func (j *jsonBody) str(n *yaml.Node) {
	ps, ok := j.f.pieces(n, "a string", j.uses)
	if !ok {
		j.ok = false
		return
	}
	j.lit = append(j.lit, '"')
	for _, p := range ps {
		if p.ph == "" {
			j.lit = template.AppendJSONString(j.lit, p.lit)
			continue
		}
		j.flush()
		if t, err := template.Parse(p.ph); err == nil {
			j.parts = append(j.parts, template.Part{T: t, Esc: template.JSONString})
		}
	}
	j.lit = append(j.lit, '"')
}
