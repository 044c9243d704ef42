package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/assert"
)

func (fc *flowCtx) step(n *yaml.Node, cleanup bool) *stepInfo {
	f := fc.f
	n = f.node(n)
	s := &Step{StepDef: &StepDef{Cleanup: cleanup, Timeout: fc.stepTimeout}}
	info := &stepInfo{step: s}
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "expected a mapping for step, got %s", describe(n))
		return info
	}
	kinds := fc.l.stepKinds // HTTP's first
	keys := stepKeys
	for _, k := range kinds {
		keys = append(slices.Clip(keys), k.Name())
	}
	o := f.object(n, "step", keys)

	if v := o.get("name"); v == nil {
		f.errorf(n, "step needs a name")
	} else if name, ok := f.str(v, "a step name"); ok {
		name = fc.prefix + name // as: of the includes it is in
		switch first, dup := fc.stepNames[name]; {
		case !validStepName(name):
			f.errorf(v, "step name %s must match [A-Za-z0-9_-]+", quote(name))
		case dup && len(fc.includes) > 1:
			f.errorf(v, "duplicate step name %s (first defined at %s): give the include its own as: to prefix the names of its steps", quote(name), first)
		case dup:
			f.errorf(v, "duplicate step name %s (first defined at %s)", quote(name), first)
		default:
			fc.stepNames[name] = f.pos(v)
			s.Name = name
		}
	}
	// The step's kind: the one registered kind whose block it has.
	var kind StepKind
	for _, k := range kinds {
		if o.get(k.Name()) == nil {
			continue
		}
		if kind != nil {
			f.errorf(o.key(k.Name()), "a step is one of %s or %s (%s is already set)", kinds[0].Name(), kindNames(kinds[1:]), kind.Name())
			continue
		}
		kind = k
	}
	switch {
	case kind == nil && len(kinds) > 1:
		f.errorf(n, "step needs a %s (or one of %s)", kinds[0].Name(), kindNames(kinds[1:]))
	case kind == nil:
		f.errorf(n, "step needs a %s", kinds[0].Name())
	case kind.Name() != (HTTPKind{}).Name():
		s.Kind = kind.Name()
		fallthrough
	default:
		s.Method = strings.ToUpper(kind.Name()) // HTTP's Decode sets its method
	}
	// The timeout first: a kind's block may read it (Step()).
	if v := o.get("timeout"); v != nil {
		if t, ok := f.positive(v, "timeout"); ok {
			if t > fc.fl.Timeout {
				f.errorf(v, "step timeout %s is longer than the flow timeout %s", t, fc.fl.Timeout)
			} else {
				s.Timeout = t
			}
		}
	}
	if kind != nil {
		v := o.get(kind.Name())
		b := &StepBlock{fc: fc, f: f, o: f.object(v, kind.Name(), kind.Keys()), n: v, info: info}
		s.Spec = kind.Decode(b)
	} else {
		kind = kinds[0] // what the rest is checked against
	}
	var sources assert.Source
	if v := o.get("expect"); v != nil {
		s.Expect, sources = fc.expectations(v, kind, info)
	}
	if v := o.get("capture"); v != nil {
		fc.captures(v, info, kind)
	}
	if v := o.get("until"); v != nil {
		var src assert.Source
		s.Until, src = fc.until(v, kind, info)
		sources |= src
	}
	// Polling until a 404 must not fail at the first 404: until's
	// expectations count as checking the status too.
	s.StatusChecked = sources&assert.SourceStatus != 0
	s.ReadsAttrs = sources&assert.SourceAttr != 0
	for _, c := range s.Captures {
		s.ReadsAttrs = s.ReadsAttrs || c.Value.Sources()&assert.SourceAttr != 0
	}
	if v := o.get("retry"); v != nil {
		s.Retry = fc.retry(v, s)
	}
	if v := o.get("dependency"); v != nil {
		if d, ok := f.str(v, "a dependency name"); ok {
			if validSlug(d) {
				s.Dependency = d
			} else {
				f.errorf(v, "dependency %s must match [a-z0-9][a-z0-9_-]*", quote(d))
			}
		}
	}
	return info
}

// checkURL checks that a URL is plausible with its placeholders stood in
// for. A URL that starts with a placeholder ({{base_url}}/x) gets its
// scheme and host from it, so only the rest can be checked.
func checkURL(f *file, n *yaml.Node, ps []piece) {
	if len(ps) > 0 && ps[0].ph != "" {
		rest := pieceString(ps[1:], "x")
		if _, err := url.Parse("http://host" + rest); err != nil || strings.ContainsAny(rest, " \t\r\n") {
			f.errorf(n, "url %s is not a valid URL", quote(n.Value))
		}
		return
	}
	s := pieceString(ps, "x")
	u, err := url.Parse(s)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		f.errorf(n, "url %s is not a valid URL: %v", quote(n.Value), err)
	case !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https") || u.Host == "":
		f.errorf(n, "url %s must be an absolute http:// or https:// URL", quote(n.Value))
	case strings.ContainsAny(s, " \t\r\n"):
		f.errorf(n, "url %s contains white space; escape it as %%20", quote(n.Value))
	}
}

// params compiles query or form parameters: name: value, or name: [values]
// for a repeated parameter.
func (f *file) params(n *yaml.Node, what string, uses *[]use) []Param {
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "expected a mapping of %s, got %s", what, describe(n))
		return nil
	}
	var out []Param
	for _, p := range f.pairs(n) {
		if p.name == "" {
			f.errorf(p.key, "empty parameter name")
			continue
		}
		v := f.node(p.val)
		vals := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			vals = vals[:0]
			for _, c := range v.Content {
				vals = append(vals, f.node(c))
			}
		}
		for _, vn := range vals {
			if t, ok := f.tmpl(vn, "a string value", uses); ok {
				out = append(out, Param{Name: p.name, Value: t})
			}
		}
	}
	return out
}

// expectations compiles a list of expectation strings (or a single one).
func (fc *flowCtx) expectations(n *yaml.Node, kind StepKind, info *stepInfo) ([]*assert.Expectation, assert.Source) {
	f := fc.f
	var items []*yaml.Node
	switch n.Kind {
	case yaml.SequenceNode:
		items = n.Content
	case yaml.ScalarNode:
		items = []*yaml.Node{n}
	default:
		f.errorf(n, "expected a list of expectations, got %s", describe(n))
		return nil, 0
	}
	var out []*assert.Expectation
	var src assert.Source
	flowList := n.Kind == yaml.SequenceNode && n.Style&yaml.FlowStyle != 0
	split := false // the previous element was cut at a comma: this is its rest
	for _, it := range items {
		it = f.node(it)
		if !f.isScalar(it) {
			f.errorf(it, "expected an expectation like status == 200, got %s", describe(it))
			continue
		}
		cut := flowList && it.Style == 0 && unbalanced(it.Value)
		if split && cut {
			split = false
			continue
		}
		split = false
		e, err := f.l.compileExpectation(it.Value, kind)
		if err != nil && cut {
			// YAML cut the expression at a comma ([..., contains "a, b"]
			// parses as two elements): one error that says so, none for
			// the rest.
			f.errorf(it, "%s", commaTrap{elem: it.Value}.hint())
			split = true
			continue
		}
		if err != nil {
			f.assertError(it, err)
			continue
		}
		if e.Sources()&^kindSources(kind) != 0 {
			f.errorf(it, "%s steps cannot read that: their operands are %s", kind.Name(), operandList(kind))
			continue
		}
		// {{name}} is checked with the step's placeholders: defined by
		// vars, a built-in, or a capture of an earlier step.
		for _, v := range e.Vars() {
			info.uses = append(info.uses, use{name: v.Name, f: f, n: it, off: v.Offset, expect: true})
		}
		out = append(out, e)
		src |= e.Sources()
	}
	return out, src
}

// compileExpectation and compileValue compile each distinct source once per
// load (equal expressions are shared: they are immutable).
func (l *loader) compileExpectation(src string, kind StepKind) (*assert.Expectation, error) {
	return compileOnce(l.expects, kind.Name(), src, func() (*assert.Expectation, error) {
		return assert.CompileWith(src, kind.Operands())
	})
}

func (l *loader) compileValue(src string, kind StepKind) (*assert.Value, error) {
	return compileOnce(l.values, kind.Name(), src, func() (*assert.Value, error) {
		return assert.CompileValueWith(src, kind.Operands())
	})
}

// kindNames lists the registered kinds for messages: "tls or tcp".
func kindNames(ks []StepKind) string {
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = k.Name()
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// compileOnce returns the cached compilation of src for kind or compiles
// and caches it, shielding Load from a panic in the expression compiler:
// config input is fuzzed, and a crash would take the daemon down on reload.
func compileOnce[T any](cache map[string]T, kind, src string, compile func() (T, error)) (out T, err error) {
	key := kind + "\x00" + src
	if c, ok := cache[key]; ok {
		return c, nil
	}
	defer func() {
		if r := recover(); r != nil {
			var zero T
			out, err = zero, fmt.Errorf("internal error compiling %s (please report): %v", quote(src), r)
		}
		if err == nil {
			cache[key] = out
		}
	}()
	return compile()
}

func (f *file) assertError(n *yaml.Node, err error) {
	var se *assert.SyntaxError
	if errors.As(err, &se) {
		f.l.errorAt(f.posIn(n, se.Offset), "%s", se.Msg)
		return
	}
	f.errorf(n, "%v", err)
}

func (fc *flowCtx) captures(n *yaml.Node, info *stepInfo, kind StepKind) {
	f := fc.f
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "expected a mapping of captures (name: expression), got %s", describe(n))
		return
	}
	for _, p := range f.pairs(n) {
		switch _, isVar := fc.fl.Vars[p.name]; {
		case !validIdent(p.name):
			f.errorf(p.key, "capture name %s must match [A-Za-z_][A-Za-z0-9_]*", quote(p.name))
			continue
		case isBuiltin(p.name):
			f.errorf(p.key, "capture %s shadows the built-in variable of that name", quote(p.name))
		case isVar:
			f.errorf(p.key, "capture %s shadows the flow variable of that name", quote(p.name))
		}
		// Recorded even when the expression is bad, so that its uses are
		// not reported as undefined on top.
		info.caps = append(info.caps, p.name)
		v := f.node(p.val)
		if !f.isScalar(v) {
			f.errorf(v, "expected a value expression like json.token, got %s", describe(v))
			continue
		}
		val, err := f.l.compileValue(v.Value, kind)
		if err != nil {
			f.assertError(v, err)
			continue
		}
		if val.Sources()&^kindSources(kind) != 0 {
			f.errorf(v, "%s steps cannot read that: their operands are %s", kind.Name(), operandList(kind))
			continue
		}
		info.step.Captures = append(info.step.Captures, Capture{Name: p.name, Value: val})
	}
}

func (fc *flowCtx) until(n *yaml.Node, kind StepKind, info *stepInfo) (*Until, assert.Source) {
	f := fc.f
	o := f.object(n, "until", []string{"expect", "interval", "within"})
	u := &Until{Interval: defaultInterval, Within: min(defaultWithin, fc.fl.Timeout)}
	var src assert.Source
	if v := o.get("expect"); v == nil {
		if n.Kind == yaml.MappingNode {
			f.errorf(n, "until needs expect: the conditions to wait for")
		}
	} else {
		u.Expect, src = fc.expectations(v, kind, info)
	}
	withinNode := o.get("within")
	if withinNode != nil {
		if d, ok := f.positive(withinNode, "until.within"); ok {
			if d > fc.fl.Timeout {
				f.errorf(withinNode, "until.within %s is longer than the flow timeout %s", d, fc.fl.Timeout)
			} else {
				u.Within = d
			}
		}
	}
	if v := o.get("interval"); v != nil {
		if d, ok := f.positive(v, "until.interval"); ok {
			if d > u.Within {
				f.errorf(v, "until.interval %s is longer than until.within %s", d, u.Within)
			} else {
				u.Interval = d
			}
		}
	} else {
		u.Interval = min(u.Interval, u.Within)
	}
	return u, src
}

// checkRefs checks every placeholder of the flow against what defines it:
// built-ins, the flow's vars, captures of steps that run earlier, and the
// secrets declared in probes.yaml.
func (fc *flowCtx) checkRefs() {
	// capturedBy[name] lists the indexes (in run order: main steps, then
	// cleanup) of the steps capturing name.
	capturedBy := map[string][]int{}
	for i, s := range fc.steps {
		for _, c := range s.caps {
			capturedBy[c] = append(capturedBy[c], i)
		}
	}
	// Flow-level headers are sent on every step, the first included, so
	// they can use no capture.
	for _, u := range slices.Concat(fc.c.defs.headerUses, fc.headerUses) {
		fc.checkUse(u, -1, capturedBy)
	}
	for i, s := range fc.steps {
		for _, u := range s.uses {
			fc.checkUse(u, i, capturedBy)
		}
	}
}

// checkUse checks one placeholder of step index i (-1: flow-level header).
func (fc *flowCtx) checkUse(u use, i int, capturedBy map[string][]int) {
	if fc.l.tooManyErrors() {
		return
	}
	if u.secret {
		if !fc.c.secrets[u.name] {
			if s := closest(u.name, sortedKeys(fc.c.secrets)); s != "" {
				fc.l.errorAt(u.pos(), "undefined secret %s (did you mean %s?)", quote(u.name), quote(s))
			} else {
				fc.l.errorAt(u.pos(), "undefined secret %s (declare it under secrets: in probes.yaml)", quote(u.name))
			}
		} else if fc.l.optionalUnset[u.name] {
			fc.l.errorAt(u.pos(), "secret %s is optional and not set, but this flow needs it", quote(u.name))
		}
		return
	}
	if _, ok := fc.fl.Vars[u.name]; ok || isBuiltin(u.name) {
		return
	}
	caps := capturedBy[u.name]
	if len(caps) > 0 && caps[0] < i {
		return
	}
	if len(caps) > 0 {
		by := fc.steps[caps[0]].step.Name
		switch {
		case i < 0:
			fc.l.errorAt(u.pos(), "variable %s is captured by step %s, but flow headers cannot use captures (they are sent on every step); set the header on the steps after it", quote(u.name), quote(by))
		case caps[0] == i && u.expect:
			fc.l.errorAt(u.pos(), "variable %s is captured by this step, after its expectations are checked, so they cannot use it", quote(u.name))
		case caps[0] == i:
			fc.l.errorAt(u.pos(), "variable %s is captured by this step, from its response, so its request cannot use it", quote(u.name))
		default:
			fc.l.errorAt(u.pos(), "variable %s is captured by step %s, which runs after this step", quote(u.name), quote(by))
		}
		return
	}
	// Suggest among the names this use could see.
	known := slices.Clone(Builtins)
	known = append(known, sortedKeys(fc.fl.Vars)...)
	for name, idx := range capturedBy {
		if idx[0] < i {
			known = append(known, name)
		}
	}
	slices.Sort(known[len(Builtins):])
	fc.l.errorAt(u.pos(), "undefined variable %s%s", quote(u.name), didYouMean(u.name, known))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// unbalanced tells an expression with a string or a bracket left open, as
// YAML leaves one it cut at a comma in a [...] list.
func unbalanced(src string) bool {
	depth, quote := 0, byte(0)
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case quote != 0:
			if c == '\\' && quote != '`' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		}
	}
	return quote != 0 || depth != 0
}
