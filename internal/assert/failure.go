package assert

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on what failure messages quote, in bytes including the ellipsis.
const (
	maxShown     = 120 // a string value
	maxBodyShown = 100 // the body
	maxSnippet   = 20  // the start of a body that is not JSON
	windowBefore = 40  // context shown before an unwanted match
)

// problem explains why an operand could not be read or compared. It is only
// built when explaining a failure, so it may allocate.
type problem struct {
	cause  Cause
	src    Source
	node   *node  // the operand at fault, nil if two are
	actual string // Failure.Actual
	detail string // the sentence after "<operand>: " in an EvalError
}

func (p *problem) evalError() *EvalError {
	what := "value"
	if p.node != nil {
		what = p.node.text
	}
	return &EvalError{Cause: p.cause, Msg: what + ": " + p.detail}
}

// fail reports a failed check, explained by p into *f if f is not nil. It
// always returns false.
func (e *Expectation) fail(p *problem, f *Failure) bool {
	if f != nil {
		*f = e.failure(p)
	}
	return false
}

// failure turns a problem into a Failure. Not inlined: its string building
// would bloat the stack frame of check, which every probe step runs.
//
//go:noinline
func (e *Expectation) failure(p *problem) Failure {
	msg := e.src + ": got " + p.actual
	if p.cause == InvalidJSON || p.cause == NotHTML {
		msg = e.src + ": " + p.detail
	}
	src := p.src
	if src == 0 { // blamed on a literal: say what the check read
		src = e.srcs
	}
	return Failure{Expectation: e.src, Actual: p.actual, Message: msg, Cause: p.cause, Source: src}
}

// missing is the problem of an absent JSON field, header or regex match.
func (n *node) missing(r *Response, p *problem) Cause {
	if p == nil {
		return Missing
	}
	*p = problem{cause: Missing, src: n.src, node: n}
	switch n.op {
	case nHeader, nHeaders:
		p.actual = "nothing (no header " + strconv.Quote(n.key) + ")"
		p.detail = "no such header"
	case nCookie:
		if r.Cookies == nil {
			p.actual = "nothing (this response has no cookies)"
		} else {
			p.actual = "nothing (no cookie " + strconv.Quote(n.key) + ")"
		}
		p.detail = "no such cookie"
	case nHTML:
		// Only asked once the document parsed: find where it breaks.
		doc, _ := r.htmlDoc()
		if el := first(doc, n.sel); el != nil {
			p.actual = "nothing (" + describeElement(el) + " has no attribute " + strconv.Quote(n.key) + ")"
			p.detail = "no such attribute (" + describeElement(el) + ")"
		} else {
			p.actual = "nothing (no element matches " + n.selLit.format() + ")"
			p.detail = "no element matches"
		}
	case nAttr:
		p.actual = "nothing (" + n.key + " is not known for this response)"
		p.detail = "not known for this response"
	case nVar:
		p.actual = "nothing (variable " + n.key + " is not set)"
		p.detail = "variable not set"
	case nMatch:
		p.actual = "nothing (no match for " + n.reLit.format() + ")"
		p.detail = "no match"
	case nJSON:
		reason, parent := n.path.explainMissing(r.bodyString())
		p.actual = "nothing (" + reason + ")"
		steps := n.path.steps
		p.detail = "no such field"
		last := len(steps) > 0 && steps[len(steps)-1].isIdx // json alone has no steps
		if last {
			p.detail = "no such element"
		}
		if parent || last {
			p.detail += " (" + reason + ")"
		}
	}
	return Missing
}

// invalidJSON is the problem of reading JSON from a body that is not JSON.
func (n *node) invalidJSON(r *Response, p *problem) Cause {
	if p == nil {
		return InvalidJSON
	}
	*p = problem{cause: InvalidJSON, src: n.src, node: n}
	if len(r.Body) == 0 {
		p.actual = "nothing (empty body)"
		p.detail = "body is not JSON (it is empty)"
	} else {
		p.actual = quoteTrunc(r.bodyString(), maxSnippet, false)
		p.detail = "body is not JSON (starts " + p.actual + ")"
	}
	return InvalidJSON
}

// notHTML is the problem of reading html() from a body that is not HTML,
// for the reason why.
func (n *node) notHTML(r *Response, why string, p *problem) Cause {
	if p == nil {
		return NotHTML
	}
	*p = problem{cause: NotHTML, src: n.src, node: n}
	if len(r.Body) == 0 {
		p.actual = "nothing (empty body)"
		p.detail = "body is not HTML (it is empty)"
		return NotHTML
	}
	p.actual = quoteTrunc(r.bodyString(), maxSnippet, false)
	p.detail = "body is not HTML (" + why + "; starts " + p.actual + ")"
	return NotHTML
}

// wrongType is the problem of n having the value v where want was needed.
func (n *node) wrongType(v *value, want string, p *problem) Cause {
	if p == nil {
		return WrongType
	}
	*p = problem{cause: WrongType, src: n.src, node: n}
	if v.k == kNull {
		p.actual = "null (not " + want + ")"
	} else {
		p.actual = show(*v, n) + " (" + v.k.String() + ", not " + want + ")"
	}
	p.detail = "got " + p.actual
	return WrongType
}

// clash is the problem of == or != between values of different kinds.
func (e *Expectation) clash(l, rv *value, p *problem) Cause {
	switch {
	case e.right.src == 0:
		return e.left.wrongType(l, kindNames[rv.k], p)
	case e.left.src == 0:
		return e.right.wrongType(rv, kindNames[l.k], p)
	}
	if p != nil {
		*p = problem{cause: WrongType, src: e.srcs,
			actual: show(*l, e.left) + " vs " + show(*rv, e.right) + " (" + l.k.String() + " and " + rv.k.String() + ")"}
	}
	return WrongType
}

// mismatch explains a check that read its values but did not hold.
func (e *Expectation) mismatch(r *Response, l, rv *value) Failure {
	f := Failure{Expectation: e.src, Cause: Mismatch, Source: e.srcs}
	switch {
	case e.left.op == nExists:
		// Show what exists, or why it does not.
		var why problem
		var a value
		if c := e.left.arg.eval(r, &a, &why); c != 0 {
			return e.failure(&why)
		}
		f.Actual = show(a, e.left.arg)
	case e.op == opNotContains && l.k == kString:
		f.Actual = showAround(l.s, strings.Index(l.s, rv.s), len(rv.s), e.left)
	case e.op == opNotMatches:
		m := e.re.FindStringIndex(l.s)
		f.Actual = showAround(l.s, m[0], m[1]-m[0], e.left)
	case e.right == nil || e.right.src == 0:
		f.Actual = show(*l, e.left)
	case e.left.src == 0:
		f.Actual = show(*rv, e.right)
	default:
		f.Actual = show(*l, e.left) + " vs " + show(*rv, e.right)
	}
	f.Message = e.src + ": got " + f.Actual
	// Say what the variable held: the source only names it.
	if e.right != nil && e.right.op == nVar {
		f.Message += " (" + e.right.key + " is " + show(*rv, e.right) + ")"
	} else if e.right != nil && e.left.op == nVar {
		f.Message += " (" + e.left.key + " is " + show(*l, e.left) + ")"
	}
	return f
}

// show is a value as people read it in a failure: strings quoted and
// shortened, durations rounded. It never aliases the body.
func show(v value, n *node) string {
	switch v.k {
	case kString:
		limit := maxShown
		if n != nil && n.op == nBody {
			limit = maxBodyShown
		}
		return quoteTrunc(v.s, limit, true)
	case kArray, kObject:
		return showJSON(v.s)
	case kDuration:
		return showDuration(time.Duration(v.i))
	case kNone:
		return "nothing"
	}
	return v.render()
}

// showDuration rounds to the millisecond from a second up, and keeps three
// decimals below: 2.314s, 150.5ms, 1.234µs.
func showDuration(d time.Duration) string {
	switch a := max(d, -d); {
	case a >= time.Second:
		return d.Round(time.Millisecond).String()
	case a >= time.Millisecond:
		return d.Round(time.Microsecond).String()
	}
	return d.String()
}

// showJSON is raw JSON compacted and shortened.
func showJSON(raw string) string {
	var b bytes.Buffer
	s := strings.TrimSpace(raw)
	if json.Compact(&b, []byte(s)) == nil {
		s = b.String()
	}
	if len(s) <= maxShown {
		return strings.Clone(s)
	}
	return s[:runeCut(s, maxShown-len("…"))] + "… (" + strconv.Itoa(len(raw)) + " bytes)"
}

// quoteTrunc quotes s, shortening it to about limit bytes with an ellipsis
// (and its full length, if noteLen).
func quoteTrunc(s string, limit int, noteLen bool) string {
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	q := strconv.Quote(s[:runeCut(s, limit-1)])
	q = q[:len(q)-1] + "…\""
	if noteLen {
		q += " (" + strconv.Itoa(len(s)) + " bytes)"
	}
	return q
}

// showAround shows s around the unwanted part at [at, at+n), so that a
// failed !contains on a long body shows what was found, not just its start.
func showAround(s string, at, n int, node *node) string {
	limit := maxShown
	if node != nil && node.op == nBody {
		limit = maxBodyShown
	}
	if at < 0 || at+n <= limit-1 {
		return quoteTrunc(s, limit, true)
	}
	start := max(0, at-windowBefore)
	for start > 0 && !utf8.RuneStart(s[start]) {
		start--
	}
	end := min(len(s), start+limit)
	end = at + n + runeCut(s[at+n:], max(0, end-(at+n)))
	q := strconv.Quote(s[start:end])
	if end < len(s) {
		q = q[:len(q)-1] + "…\""
	}
	if start > 0 {
		q = `"…` + q[1:]
	}
	return q + " (" + strconv.Itoa(len(s)) + " bytes, found at byte " + strconv.Itoa(at) + ")"
}

// runeCut is the largest cut <= limit of s that does not split a rune.
func runeCut(s string, limit int) int {
	if limit >= len(s) {
		return len(s)
	}
	for limit > 0 && !utf8.RuneStart(s[limit]) {
		limit--
	}
	return limit
}
