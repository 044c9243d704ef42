package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/certinfo"
	"github.com/prober-dev/prober/internal/template"
)

func (fc *flowCtx) step(n *yaml.Node, cleanup bool) *stepInfo {
	f := fc.f
	n = f.node(n)
	s := &Step{
		Pos:             f.pos(n),
		Cleanup:         cleanup,
		Method:          "GET",
		Timeout:         fc.stepTimeout,
		FollowRedirects: fc.fl.HTTP.FollowRedirects,
		Headers:         fc.headers,
	}
	info := &stepInfo{step: s}
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "expected a mapping for step, got %s", describe(n))
		return info
	}
	keys := stepKeys
	for _, k := range fc.l.stepKinds {
		keys = append(slices.Clip(keys), k.Name())
	}
	o := f.object(n, "step", keys)

	if v := o.get("name"); v == nil {
		f.errorf(n, "step needs a name")
	} else if name, ok := f.str(v, "a step name"); ok {
		switch first, dup := fc.stepNames[name]; {
		case !validStepName(name):
			f.errorf(v, "step name %s must match [A-Za-z0-9_-]+", quote(name))
		case dup:
			f.errorf(v, "duplicate step name %s (first defined at %s)", quote(name), first)
		default:
			fc.stepNames[name] = f.pos(v)
			s.Name = name
		}
	}
	// The step's kind: request: (HTTP), or one registered kind's block.
	var kind StepKind
	kindKey := ""
	if o.get("request") != nil {
		kindKey = "request"
	}
	for _, k := range fc.l.stepKinds {
		if o.get(k.Name()) == nil {
			continue
		}
		if kindKey != "" {
			f.errorf(o.key(k.Name()), "a step is one of request or %s (%s is already set)", kindNames(fc.l.stepKinds), kindKey)
			continue
		}
		kindKey, kind = k.Name(), k
	}
	switch {
	case kind != nil:
		s.Kind, s.Method, s.Headers, s.FollowRedirects = kind.Name(), strings.ToUpper(kind.Name()), nil, false
	case kindKey == "" && len(fc.l.stepKinds) > 0:
		f.errorf(n, "step needs a request (or one of %s)", kindNames(fc.l.stepKinds))
	case kindKey == "":
		f.errorf(n, "step needs a request")
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
	if v := o.get("request"); v != nil && kindKey == "request" {
		fc.request(v, info)
	}
	if kind != nil {
		v := o.get(kind.Name())
		b := &StepBlock{f: f, o: f.object(v, kind.Name(), kind.Keys()), n: v, info: info}
		s.Spec = kind.Decode(b)
	}
	var sources assert.Source
	if v := o.get("expect"); v != nil {
		s.Expect, sources = fc.expectations(v, kind)
	}
	if v := o.get("capture"); v != nil {
		fc.captures(v, info, kind)
	}
	if v := o.get("until"); v != nil {
		var src assert.Source
		s.Until, src = fc.until(v, kind)
		sources |= src
	}
	// Polling until a 404 must not fail at the first 404: until's
	// expectations count as checking the status too.
	s.StatusChecked = sources&assert.SourceStatus != 0
	if kind == nil {
		s.ReadsConn = sources&assert.SourceAttr != 0
		for _, c := range s.Captures {
			s.ReadsConn = s.ReadsConn || c.Value.Sources()&assert.SourceAttr != 0
		}
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

func (fc *flowCtx) request(n *yaml.Node, info *stepInfo) {
	f, s := fc.f, info.step
	o := f.object(n, "request", []string{
		"method", "url", "headers", "query", "json", "form", "body", "content_type", "basic_auth", "follow_redirects",
	})
	if v := o.get("method"); v != nil {
		if m, ok := f.plain(v, "an HTTP method", "method cannot use {{...}}"); ok {
			if validToken(m) {
				s.Method = strings.ToUpper(m)
			} else {
				f.errorf(v, "invalid HTTP method %s", quote(m))
			}
		}
	}
	if v := o.get("url"); v == nil {
		if n.Kind == yaml.MappingNode {
			f.errorf(n, "request needs a url")
		}
	} else if ps, ok := f.pieces(v, "a URL", &info.uses); ok {
		s.URL = f.l.joinPieces(ps, template.Raw)
		checkURL(f, v, ps)
	}
	if v := o.get("headers"); v != nil {
		s.Headers = overlayHeaders(fc.headers, f.headers(v, &info.uses))
	}
	if v := o.get("query"); v != nil {
		s.Query = f.params(v, "query parameters", &info.uses)
	}

	// The body kinds in document order, so that the second one is blamed.
	kinds := slices.DeleteFunc([]string{"json", "form", "body"}, func(k string) bool { return o.get(k) == nil })
	slices.SortFunc(kinds, func(a, b string) int {
		ka, kb := o.key(a), o.key(b)
		if ka.Line != kb.Line {
			return ka.Line - kb.Line
		}
		return ka.Column - kb.Column
	})
	var bodyKey *yaml.Node
	for _, k := range kinds {
		v := o.get(k)
		if bodyKey != nil {
			f.errorf(o.key(k), "request can have only one of json, form and body (%s is already set)", bodyKey.Value)
			continue
		}
		bodyKey = o.key(k)
		switch k {
		case "json":
			if t, ok := f.jsonTemplate(v, &info.uses); ok {
				s.Body = Body{Kind: JSONBody, Template: t, ContentType: "application/json"}
			}
		case "form":
			s.Body = Body{Kind: FormBody, Form: f.params(v, "form fields", &info.uses), ContentType: "application/x-www-form-urlencoded"}
		case "body":
			if t, ok := f.tmpl(v, "a request body", &info.uses); ok {
				s.Body = Body{Kind: RawBody, Template: t, ContentType: "text/plain"}
			}
		}
	}
	if v := o.get("content_type"); v != nil {
		if ct, ok := f.plain(v, "a content type", "content_type cannot use {{...}}"); ok {
			if bodyKey == nil {
				f.errorf(v, "content_type needs a body (json, form or body)")
			} else {
				s.Body.ContentType = ct
			}
		}
	}
	if v := o.get("basic_auth"); v != nil {
		ao := f.object(v, "basic_auth", []string{"user", "password"})
		ba := &BasicAuth{Password: template.Literal("")}
		if u := ao.get("user"); u == nil {
			if v.Kind == yaml.MappingNode {
				f.errorf(v, "basic_auth needs a user")
			}
		} else if t, ok := f.tmpl(u, "a user name", &info.uses); ok {
			ba.User = t
		}
		if p := ao.get("password"); p != nil {
			if t, ok := f.tmpl(p, "a password", &info.uses); ok {
				ba.Password = t
			}
		}
		if ba.User != nil {
			s.BasicAuth = ba
		}
	}
	if v := o.get("follow_redirects"); v != nil {
		if b, ok := f.boolean(v); ok {
			s.FollowRedirects = b
		}
	}
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
func (fc *flowCtx) expectations(n *yaml.Node, kind StepKind) ([]*assert.Expectation, assert.Source) {
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
	for _, it := range items {
		it = f.node(it)
		if !f.isScalar(it) {
			f.errorf(it, "expected an expectation like status == 200, got %s", describe(it))
			continue
		}
		e, err := f.l.compileExpectation(it.Value, kind)
		if err != nil {
			f.assertError(it, err)
			continue
		}
		if kind != nil && e.Sources()&^kindSources(kind) != 0 {
			f.errorf(it, "%s steps cannot read that: their operands are %s", kind.Name(), operandList(kind))
			continue
		}
		out = append(out, e)
		src |= e.Sources()
	}
	return out, src
}

// compileExpectation and compileValue compile each distinct source once per
// load (equal expressions are shared: they are immutable).
func (l *loader) compileExpectation(src string, kind StepKind) (*assert.Expectation, error) {
	if kind == nil { // HTTP: HTTPS steps read their connection's certificate
		return compileOnce(l.expects, src, func(src string) (*assert.Expectation, error) {
			return assert.CompileWith(src, certinfo.Operands)
		})
	}
	return compileOnce(l.expects, kind.Name()+"\x00"+src, func(string) (*assert.Expectation, error) {
		return assert.CompileWith(src, kind.Operands())
	})
}

func (l *loader) compileValue(src string, kind StepKind) (*assert.Value, error) {
	if kind == nil {
		return compileOnce(l.values, src, func(src string) (*assert.Value, error) {
			return assert.CompileValueWith(src, certinfo.Operands)
		})
	}
	return compileOnce(l.values, kind.Name()+"\x00"+src, func(string) (*assert.Value, error) {
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

// compileOnce returns cache[src] or compiles and caches it, shielding Load
// from a panic in the expression compiler: config input is fuzzed, and a
// crash would take the daemon down on reload.
func compileOnce[T any](cache map[string]T, src string, compile func(string) (T, error)) (out T, err error) {
	if c, ok := cache[src]; ok {
		return c, nil
	}
	defer func() {
		if r := recover(); r != nil {
			var zero T
			out, err = zero, fmt.Errorf("internal error compiling %s (please report): %v", quote(src), r)
		}
		if err == nil {
			cache[src] = out
		}
	}()
	return compile(src)
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
		if kind != nil && val.Sources()&^kindSources(kind) != 0 {
			f.errorf(v, "%s steps cannot read that: their operands are %s", kind.Name(), operandList(kind))
			continue
		}
		info.step.Captures = append(info.step.Captures, Capture{Name: p.name, Value: val})
	}
}

func (fc *flowCtx) until(n *yaml.Node, kind StepKind) (*Until, assert.Source) {
	f := fc.f
	o := f.object(n, "until", []string{"expect", "interval", "within"})
	u := &Until{Interval: defaultInterval, Within: min(defaultWithin, fc.fl.Timeout)}
	var src assert.Source
	if v := o.get("expect"); v == nil {
		if n.Kind == yaml.MappingNode {
			f.errorf(n, "until needs expect: the conditions to wait for")
		}
	} else {
		u.Expect, src = fc.expectations(v, kind)
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
