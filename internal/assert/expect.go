package assert

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Expectation is a compiled check. It is immutable and safe for concurrent
// use; a Response, whose JSON facts it caches, is not.
type Expectation struct {
	src   string
	op    operator
	left  *node
	right *node          // nil for a lone operand
	list  []value        // in, !in: the list's values
	re    *regexp.Regexp // matches, !matches: compiled once
	srcs  Source
	vars  []VarRef
}

// Compile compiles an expectation such as `status == 200`. Errors are
// *SyntaxError, with the byte offset of the offending token in src.
func Compile(src string) (e *Expectation, err error) {
	defer catch(&err)
	p := &parser{src: src}
	return p.parseExpectation(), nil
}

// MustCompile is Compile for expectations known to be valid; it panics
// otherwise.
func MustCompile(src string) *Expectation {
	e, err := Compile(src)
	if err != nil {
		panic(fmt.Sprintf("assert: Compile(%q): %v (at offset %d)", src, err, err.(*SyntaxError).Offset))
	}
	return e
}

// String is the expectation's source text, trimmed.
func (e *Expectation) String() string { return e.src }

// Sources is the set of response parts the expectation reads.
func (e *Expectation) Sources() Source { return e.srcs }

// Vars lists the variables ({{name}}) the expectation reads, for the loader
// to check that each is defined before the step.
func (e *Expectation) Vars() []VarRef { return e.vars }

// Check checks r. It reports true if the expectation holds; otherwise the
// Failure explains. The pass path does not allocate for plain checks: it
// builds no explanations, and a failure is checked again to explain it.
func (e *Expectation) Check(r *Response) (Failure, bool) {
	if e.check(r, nil) {
		return Failure{}, true
	}
	var f Failure
	e.check(r, &f)
	return f, false
}

// check runs the expectation. If it fails and f is not nil, *f explains.
// Explanations go through pointers, not return values, so the pass path
// moves no large structs around.
func (e *Expectation) check(r *Response, f *Failure) bool {
	var why *problem
	if f != nil {
		why = new(problem)
	}
	var l, rv value
	if c := e.left.eval(r, &l, why); c != 0 {
		return e.fail(why, f)
	}
	rp := &rv
	ok := false
	switch e.op {
	case opTrue, opFalse:
		if l.k != kBool {
			e.left.wrongType(&l, "a boolean", why)
			return e.fail(why, f)
		}
		ok = l.b == (e.op == opTrue)
	case opIn, opNotIn:
		found, comparable := inList(&l, e.list)
		if !comparable {
			want := ""
			if why != nil {
				want = listKinds(e.list)
			}
			e.left.wrongType(&l, want, why)
			return e.fail(why, f)
		}
		ok = found == (e.op == opIn)
	case opMatches, opNotMatches:
		if l.k != kString {
			e.left.wrongType(&l, "a string", why)
			return e.fail(why, f)
		}
		ok = e.re.MatchString(l.s) == (e.op == opMatches)
	default:
		if e.right.op == nLit {
			rp = &e.right.lit // no need to copy a literal
		} else if c := e.right.eval(r, &rv, why); c != 0 {
			return e.fail(why, f)
		}
		// A variable is text: it takes the type of the other side.
		if e.right.op == nVar {
			coerceVar(rp, l.k)
		} else if e.left.op == nVar {
			coerceVar(&l, rp.k)
		}
		var c Cause
		if ok, c = e.compare(&l, rp, why); c != 0 {
			return e.fail(why, f)
		}
	}
	if !ok && f != nil {
		*f = e.mismatch(r, &l, rp)
	}
	return ok
}

// compare applies a binary operator other than in and matches.
func (e *Expectation) compare(l, rv *value, why *problem) (bool, Cause) {
	switch e.op {
	case opEQ, opNE:
		eq, comparable := equal(l, rv)
		if !comparable {
			return false, e.clash(l, rv, why)
		}
		return eq == (e.op == opEQ), 0
	case opLT, opLE, opGT, opGE:
		if l.k != kNumber && l.k != kDuration {
			return false, e.left.wrongType(l, "a number", why)
		}
		if rv.k != l.k {
			return false, e.right.wrongType(rv, kindNames[l.k], why)
		}
		var c int
		if l.k == kNumber {
			c = cmpNum(l, rv)
		} else {
			c = cmp3(l.i < rv.i, l.i > rv.i)
		}
		switch e.op {
		case opLT:
			return c < 0, 0
		case opLE:
			return c <= 0, 0
		case opGT:
			return c > 0, 0
		}
		return c >= 0, 0
	}
	// contains, !contains
	var found bool
	switch l.k {
	case kString:
		if rv.k != kString {
			if e.right.src == 0 {
				// A literal is what it is: the string should have been an array.
				return false, e.left.wrongType(l, "an array", why)
			}
			return false, e.right.wrongType(rv, "a string", why)
		}
		found = strings.Contains(l.s, rv.s)
	case kArray:
		var el value
		gjson.Parse(l.s).ForEach(func(_, v gjson.Result) bool {
			el.setResult(v)
			found, _ = equal(&el, rv)
			return !found
		})
	case kObject:
		if rv.k != kString {
			// Keys are strings: only an array could contain this.
			return false, e.left.wrongType(l, "an array", why)
		}
		found = hasKey(l.s, rv.s)
	default:
		return false, e.left.wrongType(l, "a string, an array or an object", why)
	}
	return found == (e.op == opContains), 0
}

// inList reports whether v equals an element of list, and whether any
// element was comparable with it at all.
func inList(v *value, list []value) (found, comparable bool) {
	for i := range list {
		eq, c := equal(v, &list[i])
		if eq {
			return true, true
		}
		comparable = comparable || c
	}
	return false, comparable
}

// listKinds names the kinds of a list's values: "a number or a string".
func listKinds(list []value) string {
	var names []string
	for _, x := range list {
		name := x.k.String()
		found := false
		for _, n := range names {
			found = found || n == name
		}
		if !found {
			names = append(names, name)
		}
	}
	return strings.Join(names, " or ")
}

// Value is a compiled value expression, as used by captures: `json.token`,
// `header.Location`, `status`, `match(body, "ref=(\\w+)")`. It is immutable
// and safe for concurrent use.
type Value struct {
	src  string
	node *node
}

// CompileValue compiles a value expression. Errors are *SyntaxError.
func CompileValue(src string) (v *Value, err error) {
	defer catch(&err)
	p := &parser{src: src}
	return &Value{src: strings.TrimSpace(src), node: p.parseValue()}, nil
}

// String is the value's source text, trimmed.
func (v *Value) String() string { return v.src }

// Sources is the set of response parts the value reads.
func (v *Value) Sources() Source { return v.node.src }

// Eval reads the value from r, as text for templating: strings as they are,
// numbers in their shortest form (JSON numbers as written), booleans as
// true/false, JSON arrays and objects as JSON, durations as Go durations.
// Errors are *EvalError.
func (v *Value) Eval(r *Response) (string, error) {
	var x value
	if c := v.node.eval(r, &x, nil); c != 0 {
		var why problem
		v.node.eval(r, &x, &why)
		return "", why.evalError()
	}
	return x.render(), nil
}

// parseValue parses a value expression: one operand, no comparison.
func (p *parser) parseValue() *node {
	p.skipSpace()
	if p.eof() {
		p.fail(0, "empty value")
	}
	if p.peek() == '!' {
		p.fail(p.pos, "a capture is a value, not a check: unexpected %q", "!")
	}
	n := p.parseTerm("")
	p.skipSpace()
	if !p.eof() {
		at := p.pos
		w := p.word()
		p.pos = at
		if strings.IndexByte("=!<>", p.peek()) >= 0 || w == "contains" || w == "matches" || w == "in" || w == "not" {
			p.fail(at, "a capture is a value, not a check: unexpected %s", p.found(at))
		}
		p.trailing()
	}
	if n.src == 0 {
		p.fail(n.pos, "%s is a constant; a capture must read the response (status, duration, body, header.<name>, json.<path>)", n.text)
	}
	return n
}

// eval computes a node's value into v, or returns the cause why it cannot.
// If why is not nil, it also explains the cause: callers ask only once they
// know there is a failure, so the pass path builds no text and allocates
// nothing.
func (n *node) eval(r *Response, v *value, why *problem) Cause {
	switch n.op {
	case nLit:
		*v = n.lit
		return 0
	case nStatus:
		v.setInt(int64(r.Status))
		return 0
	case nDuration:
		*v = value{k: kDuration, i: int64(r.Duration)}
		return 0
	case nBody:
		*v = value{k: kString, s: r.bodyString()}
		return 0
	case nHeader:
		// Direct map access: the key was canonicalised at compile time.
		vs := r.Header[n.key]
		if len(vs) == 0 {
			return n.missing(r, why)
		}
		*v = value{k: kString, s: vs[0]}
		return 0
	case nHeaders:
		vs := r.Header[n.key]
		switch len(vs) {
		case 0:
			return n.missing(r, why)
		case 1:
			*v = value{k: kString, s: vs[0]}
		default:
			*v = value{k: kString, s: strings.Join(vs, "\n")}
		}
		return 0
	case nCookie:
		if r.Cookies == nil {
			return n.missing(r, why)
		}
		s, ok := r.Cookies.Cookie(n.key)
		if !ok {
			return n.missing(r, why)
		}
		*v = value{k: kString, s: s}
		return 0
	case nHTML:
		doc, notHTML := r.htmlDoc()
		if doc == nil {
			return n.notHTML(r, notHTML, why)
		}
		el := first(doc, n.sel)
		if el == nil {
			return n.missing(r, why)
		}
		if n.attrLit == nil {
			*v = value{k: kString, s: elementText(el)}
			return 0
		}
		s, ok := attrOf(el, n.key)
		if !ok {
			return n.missing(r, why)
		}
		*v = value{k: kString, s: s}
		return 0
	case nCount:
		if a := n.arg; a.op == nHTML {
			doc, notHTML := r.htmlDoc()
			if doc == nil {
				return a.notHTML(r, notHTML, why)
			}
			v.setInt(int64(countMatches(doc, a.sel)))
		} else {
			v.setInt(int64(len(r.Header[a.key])))
		}
		return 0
	case nJSON:
		if !r.isJSON() {
			return n.invalidJSON(r, why)
		}
		res, ok := n.path.get(r.bodyString())
		if !ok {
			return n.missing(r, why)
		}
		v.setResult(res)
		return 0
	case nAttr:
		a, ok := r.attr(n.key)
		if !ok {
			return n.missing(r, why)
		}
		*v = a
		return 0
	case nVar:
		if r.Vars == nil {
			return n.missing(r, why)
		}
		s, ok := r.Vars.Var(n.key)
		if !ok {
			return n.missing(r, why)
		}
		*v = value{k: kString, s: s}
		return 0
	}

	// A function: compute the argument into v, then transform it in place.
	c := n.arg.eval(r, v, why)
	if n.op == nExists {
		switch c {
		case 0:
			*v = value{k: kBool, b: true}
		case Missing:
			*v = value{k: kBool}
		default:
			return c
		}
		return 0
	}
	if c != 0 {
		return c
	}
	if n.op == nLen {
		switch v.k {
		case kString:
			v.setInt(int64(len(v.s)))
		case kArray, kObject:
			v.setInt(int64(count(v.s)))
		default:
			return n.arg.wrongType(v, "a string, an array or an object", why)
		}
		return 0
	}
	if v.k != kString {
		return n.arg.wrongType(v, "a string", why)
	}
	switch n.op {
	case nLower:
		v.s = strings.ToLower(v.s)
	case nUpper:
		v.s = strings.ToUpper(v.s)
	case nTrim:
		v.s = strings.TrimSpace(v.s)
	case nMatch:
		m := n.re.FindStringSubmatchIndex(v.s)
		switch {
		case m == nil:
			return n.missing(r, why)
		case len(m) < 4: // no group: the whole match
			v.s = v.s[m[0]:m[1]]
		case m[2] < 0: // the first group did not take part
			v.s = ""
		default:
			v.s = v.s[m[2]:m[3]]
		}
	}
	return 0
}

// format prints the node in canonical source form; Compile of the result
// gives the same node.
func (n *node) format() string {
	switch n.op {
	case nLit:
		if n.isList {
			parts := make([]string, len(n.listElems))
			for i, el := range n.listElems {
				parts[i] = el.format()
			}
			return "[" + strings.Join(parts, ", ") + "]"
		}
		return n.litSrc
	case nStatus:
		return "status"
	case nDuration:
		return "duration"
	case nBody:
		return "body"
	case nHeader:
		if isHeaderWord(n.key) {
			return "header." + n.key
		}
		return "header[" + fmt.Sprintf("%q", n.key) + "]"
	case nJSON:
		return n.path.text
	case nAttr:
		return n.key
	case nVar:
		return "{{" + n.key + "}}"
	case nHeaders:
		if isHeaderWord(n.key) {
			return "headers." + n.key
		}
		return "headers[" + fmt.Sprintf("%q", n.key) + "]"
	case nCookie:
		if dottedCookieLen(n.key) == len(n.key) {
			return "cookie." + n.key
		}
		return "cookie[" + strconv.Quote(n.key) + "]"
	case nHTML:
		if n.attrLit != nil {
			return "html(" + n.selLit.format() + ", " + strconv.Quote(n.key) + ")"
		}
		return "html(" + n.selLit.format() + ")"
	case nMatch:
		return "match(" + n.arg.format() + ", " + n.reLit.format() + ")"
	}
	for name, op := range funcNames {
		if op == n.op {
			return name + "(" + n.arg.format() + ")"
		}
	}
	return "?"
}

func isHeaderWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isWordByte(c) && c != '-' {
			return false
		}
	}
	return s != ""
}

// format prints the expectation in canonical form, for tests: whatever the
// spelling, equivalent expectations format the same.
func (e *Expectation) format() string {
	switch e.op {
	case opTrue:
		return e.left.format()
	case opFalse:
		return "!" + e.left.format()
	}
	return e.left.format() + " " + opText[e.op] + " " + e.right.format()
}

// coerceVar converts a variable's text to kind k where it reads as one
// ("42" for a number, "true", "null", "2s"); otherwise it stays a string,
// and the comparison fails as a wrong type.
func coerceVar(v *value, k kind) {
	s := strings.TrimSpace(v.s)
	switch k {
	case kNumber:
		if isNumberText(s) {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				v.setNumber(s, f)
			}
		}
	case kBool:
		if s == "true" || s == "false" {
			*v = value{k: kBool, b: s == "true"}
		}
	case kNull:
		if s == "null" {
			*v = value{k: kNull}
		}
	case kDuration:
		if d, err := time.ParseDuration(s); err == nil {
			*v = value{k: kDuration, i: int64(d)}
		}
	}
}
