package assert

import (
	"fmt"
	"strconv"
	"strings"
)

// checkCondition checks that a lone operand is a condition: a boolean, or a
// JSON value that must be one at run time.
func (p *parser) checkCondition(n *node) {
	if n.src == 0 {
		p.fail(n.pos, "%s alone is a constant, not a check; compare a part of the response, e.g. status == 200", n.text)
	}
	switch n.typ {
	case tBool, tJSON:
		return
	case tString:
		switch n.op {
		case nHeader, nHeaders, nCookie, nHTML:
			p.fail(n.pos, "%s is a string, not a condition (did you mean exists(%s)?)", n.text, n.text)
		}
		p.fail(n.pos, "%s is a string, not a condition: compare it with ==, contains, matches or in", n.text)
	}
	p.fail(n.pos, "%s is %s, not a condition: compare it with ==, <, >, in …", n.text, n.typ)
}

// checkBinary type-checks a comparison where types are static, so that most
// mistakes are reported when the flow is loaded, not at 3 a.m.
func (p *parser) checkBinary(e *Expectation) {
	l, r := e.left, e.right
	op := opText[e.op]
	switch e.op {
	case opEQ, opNE:
		p.compatible(l, r)
	case opLT, opLE, opGT, opGE:
		// Blame a response part first (body < 5), then a literal, unless
		// the literal only has the wrong type (status < "300").
		orderable := func(x *node) {
			if x.typ != tNumber && x.typ != tDuration && x.typ != tJSON {
				p.fail(x.pos, "%s compares numbers or durations, but %s is %s", op, x.text, x.typ)
			}
		}
		for _, x := range []*node{l, r} {
			if x.op != nLit {
				orderable(x)
			}
		}
		p.compatible(l, r)
		orderable(l)
		orderable(r)
	case opContains, opNotContains:
		switch l.typ {
		case tString:
			if r.typ != tString && r.typ != tJSON {
				p.fail(r.pos, "%s is a string, so %s needs a string on its right, but %s is %s%s", l.text, op, r.text, r.typ, p.hint(l, r))
			}
		case tJSON:
			if r.typ == tDuration {
				p.fail(r.pos, "JSON has no durations: %s cannot contain %s", l.text, r.text)
			}
		default:
			p.fail(l.pos, "%s needs a string, or a JSON array or object, on its left, but %s is %s", op, l.text, l.typ)
		}
	case opMatches, opNotMatches:
		if l.typ != tString && l.typ != tJSON {
			p.fail(l.pos, "%s needs a string on its left, but %s is %s", op, l.text, l.typ)
		}
		if r.op == nVar {
			p.fail(r.pos, "%s needs a regular expression literal; compare a variable with == or contains", op)
		}
		e.re = p.regexLiteral(r, op)
	case opIn, opNotIn:
		if l.typ == tNull {
			p.fail(l.pos, "null cannot be in a list; compare with == null")
		}
		e.list = make([]value, len(r.listElems))
		for i, el := range r.listElems {
			p.compatible(l, el)
			e.list[i] = el.lit
		}
	}
}

// compatible checks that l and r can be compared for equality or order.
func (p *parser) compatible(l, r *node) {
	if l.typ == r.typ {
		return
	}
	if l.typ == tJSON || r.typ == tJSON {
		j, o := l, r
		if r.typ == tJSON {
			j, o = r, l
		}
		if o.typ == tDuration && j.op != nVar {
			p.fail(o.pos, "type mismatch: %s is a JSON value but %s is a duration; JSON has no durations (compare with a number)", j.text, o.text)
		}
		return
	}
	// Blame a literal: the response part is what it is.
	bad, other := r, l
	if l.op == nLit && r.op != nLit {
		bad, other = l, r
	}
	if bad.typ == tNull {
		hint := ""
		if other.op == nHeader || other.op == nHeaders || other.op == nCookie || other.op == nHTML {
			hint = fmt.Sprintf(" (to check that it is absent, write !exists(%s))", other.text)
		}
		p.fail(bad.pos, "%s is %s and is never null%s", other.text, other.typ, hint)
	}
	p.fail(bad.pos, "type mismatch: %s is %s but %s is %s%s", other.text, other.typ, bad.text, bad.typ, p.hint(other, bad))
}

// hint suggests a fix when literal bad has the wrong type for other.
func (p *parser) hint(other, bad *node) string {
	if bad.op != nLit {
		return ""
	}
	switch {
	case other.typ == tNumber && bad.typ == tString && isNumberText(strings.TrimSpace(bad.lit.s)):
		return " (did you mean " + p.splice(bad, strings.TrimSpace(bad.lit.s)) + "?)"
	case other.typ == tBool && bad.typ == tString && (bad.lit.s == "true" || bad.lit.s == "false"):
		return " (did you mean " + p.splice(bad, bad.lit.s) + "?)"
	case other.typ == tString && (bad.typ == tNumber || bad.typ == tBool):
		return " (did you mean " + p.splice(bad, strconv.Quote(bad.text)) + "?)"
	case other.typ == tDuration && bad.typ == tNumber:
		n := strings.TrimPrefix(bad.text, "-")
		ms := strconv.FormatFloat(bad.lit.f*1000, 'f', -1, 64)
		if bad.lit.f >= 100 {
			// 250 is more likely milliseconds than seconds.
			return fmt.Sprintf(" (write a unit: %sms or %ss)", n, n)
		}
		return fmt.Sprintf(" (write a unit: %ss or %sms)", n, ms)
	}
	return ""
}

// splice is the source with n replaced by repl, for "did you mean".
func (p *parser) splice(n *node, repl string) string {
	return strings.TrimSpace(p.src[:n.pos] + repl + p.src[n.end:])
}
