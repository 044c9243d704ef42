package assert

import (
	"fmt"
	"math"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/andybalholm/cascadia"

	"github.com/prober-dev/prober/internal/suggest"
)

// typ is the static type of an operand, known at compile time.
type typ uint8

const (
	tNumber typ = iota + 1
	tString
	tBool
	tNull
	tDuration
	tJSON // a JSON value: its type is only known at run time
)

var typNames = [...]string{
	tNumber:   "a number",
	tString:   "a string",
	tBool:     "a boolean",
	tNull:     "null",
	tDuration: "a duration",
	tJSON:     "a JSON value",
}

func (t typ) String() string { return typNames[t] }

// opcode is what a node reads or computes.
type opcode uint8

const (
	nLit opcode = iota
	nStatus
	nDuration
	nBody
	nHeader
	nJSON
	nLen
	nLower
	nUpper
	nTrim
	nExists
	nMatch
	nAttr    // a step kind's operand (key: its dotted name)
	nVar     // {{name}}: a flow variable or capture (key: its name), read at run time
	nHTML    // html("sel") or html("sel", "attr"): the first match's text or attribute (key: the attribute)
	nCount   // count(x): the values of a header, the matches of html("sel")
	nHeaders // headers.Name: every value of a header, one per line (key: canonical name)
	nCookie  // cookie.name: a cookie of the run (key: its name)
)

// funcNames maps function names to opcodes (a constant table).
var funcNames = map[string]opcode{
	"len":    nLen,
	"lower":  nLower,
	"upper":  nUpper,
	"trim":   nTrim,
	"exists": nExists,
	"match":  nMatch,
	"html":   nHTML,
	"count":  nCount,
}

// node is an operand: something read from the response, a literal, or a
// function of another node.
type node struct {
	op       opcode
	typ      typ
	src      Source // response parts read, 0 for constants
	pos, end int    // byte span in the source
	text     string // the source text of the node, for messages

	lit    value          // nLit
	litSrc string         // nLit: canonical source form
	isList bool           // nLit is a list (only after in)
	key    string         // nHeader: canonical header key
	path   *jsonPath      // nJSON
	arg    *node          // functions
	re     *regexp.Regexp // nMatch: compiled once
	reLit  *node          // nMatch: the regex literal

	sel     cascadia.Matcher // nHTML: compiled once (a SelectorGroup, boxed once)
	selLit  *node            // nHTML: the selector literal
	attrLit *node            // nHTML: the attribute name literal, nil for the text

	listElems []*node // a list literal's elements
}

// operator is the comparison of an expectation.
type operator uint8

const (
	opTrue  operator = iota // a lone boolean operand: it must be true
	opFalse                 // !operand: it must be false
	opEQ
	opNE
	opLT
	opLE
	opGT
	opGE
	opContains
	opNotContains
	opMatches
	opNotMatches
	opIn
	opNotIn
)

var opText = [...]string{
	opTrue:        "",
	opFalse:       "!",
	opEQ:          "==",
	opNE:          "!=",
	opLT:          "<",
	opLE:          "<=",
	opGT:          ">",
	opGE:          ">=",
	opContains:    "contains",
	opNotContains: "!contains",
	opMatches:     "matches",
	opNotMatches:  "!matches",
	opIn:          "in",
	opNotIn:       "!in",
}

// maxDepth bounds function nesting, so a hostile source cannot exhaust the
// stack.
const maxDepth = 32

// parser is a recursive descent parser working directly on the source, as
// what a word means depends on where it is (json.contains is a field).
type parser struct {
	src   string
	pos   int
	depth int
	ops   Operands // a step kind's operands, besides the built-in ones
	vars  []VarRef // the {{name}} placeholders, in order
}

// bailout carries a syntax error up the parser's stack.
type bailout struct{ err *SyntaxError }

func (p *parser) fail(off int, format string, args ...any) {
	panic(bailout{&SyntaxError{Offset: off, Msg: fmt.Sprintf(format, args...)}})
}

// catch turns a bailout into an error; any other panic is a bug and goes on.
func catch(err *error) {
	if x := recover(); x != nil {
		b, ok := x.(bailout)
		if !ok {
			panic(x)
		}
		*err = b.err
	}
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *parser) peekAt(i int) byte {
	if i < len(p.src) {
		return p.src[i]
	}
	return 0
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) && isSpace(p.src[p.pos]) {
		p.pos++
	}
}

func isSpace(c byte) bool  { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isWordByte(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '_'
}

// word reads a run of letters, digits and '_' (a keyword or function name).
func (p *parser) word() string {
	start := p.pos
	for p.pos < len(p.src) && isWordByte(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos]
}

// found describes what is at off, for "found ..." in messages.
func (p *parser) found(off int) string {
	for off < len(p.src) && isSpace(p.src[off]) {
		off++
	}
	t := p.tokenAt(off)
	switch {
	case t == "":
		return "end of expectation"
	case t[0] == '"' || t[0] == '\'' || t[0] == '`':
		return t // already quoted
	}
	return strconv.Quote(t)
}

// tokenAt is the token starting at off, roughly, for messages.
func (p *parser) tokenAt(off int) string {
	s := p.src[off:]
	if s == "" {
		return ""
	}
	end := 1
	switch c := s[0]; {
	case c == '"' || c == '\'' || c == '`':
		for end < len(s) && s[end] != c {
			if s[end] == '\\' && c != '`' {
				end++
			}
			end++
		}
		end = min(end+1, len(s))
	case isKeyByte(c) || c == '.':
		for end < len(s) && (isKeyByte(s[end]) || s[end] == '.') {
			end++
		}
	case strings.IndexByte("=!<>&|~", c) >= 0:
		for end < len(s) && end < 3 && strings.IndexByte("=!<>&|~", s[end]) >= 0 {
			end++
		}
	default:
		_, end = utf8.DecodeRuneInString(s)
	}
	if end > 40 {
		end = 40
		for end > 0 && !utf8.RuneStart(s[end]) {
			end--
		}
		return s[:end] + "…"
	}
	return s[:end]
}

// parseExpectation parses a whole expectation and type-checks it.
func (p *parser) parseExpectation() *Expectation {
	p.skipSpace()
	if p.eof() {
		p.fail(0, "empty expectation")
	}
	e := &Expectation{src: strings.TrimSpace(p.src)}
	defer func() { e.vars = p.vars }()

	// A leading "!" or "not" negates a lone boolean operand.
	negAt := -1
	if p.peek() == '!' && p.peekAt(p.pos+1) != '=' {
		negAt = p.pos
		p.pos++
	} else if strings.HasPrefix(p.src[p.pos:], "not") && isSpace(p.peekAt(p.pos+3)) {
		negAt = p.pos
		p.pos += 3
	}
	e.left = p.parseTerm("")
	p.skipSpace()
	if p.eof() {
		e.op = opTrue
		if negAt >= 0 {
			e.op = opFalse
		}
		p.checkCondition(e.left)
		e.srcs = e.left.src
		return e
	}
	if negAt >= 0 {
		neg := "!"
		if p.src[negAt] == 'n' {
			neg = "not"
		}
		p.fail(p.pos, "unexpected %s: %s negates a condition and cannot be followed by an operator", p.found(p.pos), neg)
	}

	opAt := p.pos
	e.op = p.parseOperator(e.left)
	opEnd := p.pos
	p.skipSpace()
	switch e.op {
	case opIn, opNotIn:
		if p.peek() != '[' {
			p.fail(p.pos, "expected a list after %s, like [200, 201], found %s", opText[e.op], p.found(p.pos))
		}
		e.right = p.parseList()
	default:
		if p.peek() == '[' {
			p.fail(p.pos, "a list can only follow in (did you mean %s?)",
				strings.TrimSpace(p.src[:opAt]+"in"+p.src[opEnd:]))
		}
		e.right = p.parseTerm("after " + p.src[opAt:opEnd])
	}
	p.skipSpace()
	if !p.eof() {
		p.trailing()
	}
	p.checkBinary(e)
	e.srcs = e.left.src | e.right.src
	if e.srcs == 0 {
		p.fail(0, "this compares two constants; one side must read the response (status, duration, body, header.<name>, json.<path>)")
	}
	return e
}

// trailing reports what follows a complete expectation.
func (p *parser) trailing() {
	at := p.pos
	t := p.tokenAt(at)
	switch strings.ToLower(t) {
	case "&&", "||", "and", "or", "&", "|":
		p.fail(at, "unexpected %q: an expectation is a single check; write several expectations (a list) instead of joining them", t)
	}
	if c := p.src[at]; c == ')' || c == ']' {
		p.fail(at, "unexpected %q", string(c))
	}
	p.fail(at, "unexpected %s after %s", p.found(at), strings.TrimSpace(p.src[:at]))
}

// parseOperator reads the operator after left.
func (p *parser) parseOperator(left *node) operator {
	start := p.pos
	after := left.text
	bad := func(hint string) {
		p.fail(start, "expected an operator after %s, found %s%s", after, p.found(start), hint)
	}
	c := p.peek()
	c1 := p.peekAt(p.pos + 1)
	switch {
	case c == '=' && c1 == '=':
		p.pos += 2
		return opEQ
	case c == '=' && c1 == '~':
		bad(` (did you mean "matches"?)`)
	case c == '=':
		bad(` (did you mean "=="?)`)
	case c == '!' && c1 == '=':
		p.pos += 2
		return opNE
	case c == '!' && c1 == '~':
		bad(` (did you mean "!matches"?)`)
	case c == '!':
		p.pos++
		p.skipSpace()
		switch p.word() {
		case "contains":
			return opNotContains
		case "matches":
			return opNotMatches
		case "in":
			return opNotIn
		}
		bad(` (after "!" expected contains, matches or in)`)
	case c == '<' && c1 == '=':
		p.pos += 2
		return opLE
	case c == '<' && c1 == '>':
		bad(` (did you mean "!="?)`)
	case c == '<':
		p.pos++
		return opLT
	case c == '>' && c1 == '=':
		p.pos += 2
		return opGE
	case c == '>':
		p.pos++
		return opGT
	case c == ')' || c == ']':
		p.fail(start, "unexpected %q", string(c))
	case isLetter(c):
		w := p.word()
		switch w {
		case "contains":
			return opContains
		case "matches":
			return opMatches
		case "in":
			return opIn
		case "not":
			p.skipSpace()
			switch p.word() {
			case "contains":
				return opNotContains
			case "matches":
				return opNotMatches
			case "in":
				return opNotIn
			}
			bad(` (after "not" expected contains, matches or in)`)
		case "is", "equals", "eq":
			bad(` (did you mean "=="?)`)
		case "and", "or", "AND", "OR":
			p.pos = start
			p.trailing()
		}
		bad("")
	case c == '&' || c == '|':
		p.trailing()
	}
	bad("")
	return 0
}

// parseList reads [literal, ...] after in.
func (p *parser) parseList() *node {
	start := p.pos
	p.pos++ // '['
	n := &node{op: nLit, isList: true, pos: start}
	var elems []*node
	for {
		p.skipSpace()
		if p.peek() == ']' && len(elems) == 0 {
			p.fail(p.pos, "empty list: in needs at least one value")
		}
		el := p.parseTerm("in the list")
		if el.op != nLit || el.isList {
			p.fail(el.pos, "a list holds only literals (numbers, strings, durations, true, false, null), not %s", el.text)
		}
		elems = append(elems, el)
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
			continue
		case ']':
			p.pos++
			n.end = p.pos
			n.text = p.src[start:p.pos]
			n.listElems = elems
			return n
		}
		p.fail(p.pos, `expected "," or "]" in the list, found %s`, p.found(p.pos))
	}
}

// parseTerm reads an operand: a literal, a response part or a function call.
// ctx says where, for messages ("after ==").
func (p *parser) parseTerm(ctx string) *node {
	p.depth++
	defer func() { p.depth-- }()
	p.skipSpace()
	start := p.pos
	if p.depth > maxDepth {
		p.fail(start, "too deeply nested")
	}
	where := ""
	if ctx != "" {
		where = " " + ctx
	}
	if p.eof() {
		p.fail(start, "expected a value%s, found end of expectation", where)
	}
	var n *node
	c := p.src[p.pos]
	switch {
	case c == '"' || c == '\'' || c == '`':
		n = p.parseString()
	case isDigit(c) || c == '-' && isDigit(p.peekAt(p.pos+1)):
		n = p.parseNumber()
	case c == '{' && p.peekAt(p.pos+1) == '{':
		n = p.parseVar()
	case c == '[':
		p.fail(start, "a list can only follow in")
	case c == ')' || c == ']' || c == ',':
		p.fail(start, "unexpected %q", string(c))
	case isLetter(c) || c == '_':
		n = p.parseName(ctx != "")
	default:
		p.fail(start, "expected a value%s, found %s", where, p.found(start))
	}
	n.pos, n.end = start, p.pos
	n.text = p.src[start:p.pos]
	return n
}

// operandNames are the names a term may start with, for suggestions.
var operandNames = []string{"status", "duration", "body", "header", "headers", "json", "cookie", "true", "false", "null",
	"len", "lower", "upper", "trim", "exists", "match", "html", "count"}

// aliases are names people reach for, and what we have instead.
var aliases = map[string]string{
	"code": "status", "status_code": "status", "statuscode": "status", "status-code": "status", "statusCode": "status",
	"latency": "duration", "time": "duration", "elapsed": "duration", "took": "duration", "response_time": "duration",
	"text": "body", "content": "body", "response": "body", "cookies": "cookie", "css": "html", "select": "html",
	"length": "len", "size": "len", "lowercase": "lower", "uppercase": "upper",
	"strip": "trim", "has": "exists", "defined": "exists", "regex": "match",
}

// parseName reads a term starting with a letter. rhs says it follows an
// operator, where an unknown word is probably an unquoted string.
func (p *parser) parseName(rhs bool) *node {
	start := p.pos
	for p.pos < len(p.src) && (isWordByte(p.src[p.pos]) || p.src[p.pos] == '-') {
		p.pos++
	}
	name := p.src[start:p.pos]
	j := p.pos
	for j < len(p.src) && isSpace(p.src[j]) {
		j++
	}
	if j < len(p.src) && p.src[j] == '(' {
		if op, ok := funcNames[name]; ok {
			p.pos = j + 1
			return p.parseCall(name, op)
		}
		switch name {
		case "status", "duration", "body", "header", "headers", "json", "cookie", "true", "false", "null":
			p.fail(start, "%s is not a function", name)
		}
		p.fail(start, "unknown function %q%s", name, didYouMean(name, true))
	}
	var n *node
	switch name {
	case "status":
		n = &node{op: nStatus, typ: tNumber, src: SourceStatus}
	case "duration":
		n = &node{op: nDuration, typ: tDuration, src: SourceDuration}
	case "body":
		n = &node{op: nBody, typ: tString, src: SourceBody}
	case "header":
		return p.parseHeader(start, nHeader)
	case "headers":
		return p.parseHeader(start, nHeaders)
	case "cookie":
		return p.parseCookie(start)
	case "json":
		return p.parseJSONPath(start)
	case "true", "false":
		n = &node{op: nLit, typ: tBool, lit: value{k: kBool, b: name == "true"}, litSrc: name}
	case "null":
		n = &node{op: nLit, typ: tNull, lit: value{k: kNull}, litSrc: name}
	default:
		if n := p.parseOperand(start); n != nil {
			return n
		}
		if _, ok := funcNames[name]; ok {
			p.fail(start, "%s is a function: write %s(...)", name, name)
		}
		hint := p.operandHint(name)
		if hint == "" {
			hint = didYouMean(name, false)
		}
		if hint == "" && rhs {
			hint = fmt.Sprintf(" (strings need quotes: %q)", name)
		}
		if hint == "" {
			hint = " (operands are status, duration, body, header.<name>, headers.<name>, json.<path>, cookie.<name>, and functions len, lower, upper, trim, exists, match, html, count)"
		}
		p.fail(start, "unknown operand %q%s", name, hint)
	}
	if c := p.peek(); c == '.' || c == '[' {
		if name == "body" {
			p.fail(p.pos, "body has no fields (did you mean json%s?)", p.tokenAt(p.pos))
		}
		p.fail(p.pos, "%s has no fields", name)
	}
	return n
}

// didYouMean proposes a known name close to an unknown one.
func didYouMean(name string, funcsOnly bool) string {
	if a, ok := aliases[name]; ok {
		if _, isFunc := funcNames[a]; isFunc == funcsOnly || !funcsOnly {
			return fmt.Sprintf(" (did you mean %q?)", a)
		}
	}
	best, bestD := "", 3
	lower := strings.ToLower(name)
	for _, cand := range operandNames {
		if _, isFunc := funcNames[cand]; funcsOnly && !isFunc {
			continue
		}
		d := suggest.Distance(lower, cand)
		if d < bestD && d <= max(1, len(cand)/3) {
			best, bestD = cand, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// parseHeader reads header.Name or header["name"] (op nHeader), or
// headers.Name or headers["name"] (op nHeaders).
func (p *parser) parseHeader(start int, op opcode) *node {
	word := "header"
	if op == nHeaders {
		word = "headers"
	}
	var name string
	switch p.peek() {
	case '.':
		p.pos++
		ks := p.pos
		for p.pos < len(p.src) && (isWordByte(p.src[p.pos]) || p.src[p.pos] == '-') {
			p.pos++
		}
		if ks == p.pos {
			p.fail(ks, `expected a header name after "%s.", found %s`, word, p.found(ks))
		}
		name = p.src[ks:p.pos]
	case '[':
		name = p.bracketName("header")
	default:
		p.fail(start, `%s needs a name: %s.Content-Type or %s["content-type"]`, word, word, word)
	}
	if c := p.peek(); c == '.' || c == '[' {
		p.fail(p.pos, "a header has no fields")
	}
	// Canonical at compile time, so a check is a plain map lookup.
	return &node{op: op, typ: tString, src: SourceHeader, key: textproto.CanonicalMIMEHeaderKey(name)}
}

// bracketName reads ["name"], a header's or a cookie's: an RFC 9110 token.
func (p *parser) bracketName(what string) string {
	p.pos++ // '['
	p.skipSpace()
	ks := p.pos
	c := p.peek()
	if c != '"' && c != '\'' && c != '`' {
		p.fail(ks, `expected a %s name in quotes, found %s`, what, p.found(ks))
	}
	name := p.parseString().lit.s
	if !validHeaderName(name) {
		p.fail(ks, "invalid %s name %q", what, name)
	}
	p.skipSpace()
	if p.peek() != ']' {
		p.fail(p.pos, `expected "]", found %s`, p.found(p.pos))
	}
	p.pos++
	return name
}

// parseCookie reads cookie.name or cookie["name"]. A dotted name may hold
// dots itself (cookie.connect.sid): cookies have no fields.
func (p *parser) parseCookie(start int) *node {
	var name string
	switch p.peek() {
	case '.':
		p.pos++
		ks := p.pos
		name = p.src[ks : ks+dottedCookieLen(p.src[ks:])]
		if name == "" {
			p.fail(ks, `expected a cookie name after "cookie.", found %s (use cookie["..."] for names with other characters)`, p.found(ks))
		}
		p.pos += len(name)
	case '[':
		name = p.bracketName("cookie")
	default:
		p.fail(start, `cookie needs a name: cookie.session or cookie["session"]`)
	}
	if c := p.peek(); c == '.' || c == '[' {
		p.fail(p.pos, "a cookie has no fields")
	}
	// Cookie names are case-sensitive: kept as written.
	return &node{op: nCookie, typ: tString, src: SourceCookie, key: name}
}

// dottedCookieLen is the length of the cookie name that starts s in the
// cookie.name form: letters, digits, _ - and inner dots.
func dottedCookieLen(s string) int {
	n := 0
	for n < len(s) && (isWordByte(s[n]) || s[n] == '-' || s[n] == '.' && n > 0) {
		n++
	}
	for n > 0 && s[n-1] == '.' {
		n--
	}
	return n
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !isDigit(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// maxIndex bounds array indexes; larger ones are surely typos.
const maxIndex = 1 << 30

// parseJSONPath reads the steps after json: .key, ["key"], [0], [-1].
func (p *parser) parseJSONPath(start int) *node {
	var steps []pathStep
	for {
		switch p.peek() {
		case '.':
			p.pos++
			ks := p.pos
			p.pos += keyLen(p.src[ks:])
			if ks == p.pos {
				p.fail(ks, `expected a field name after %q, found %s (use json["..."] for names with other characters)`, p.src[start:ks], p.found(ks))
			}
			steps = append(steps, pathStep{key: p.src[ks:p.pos]})
			continue
		case '[':
			p.pos++
			p.skipSpace()
			ks := p.pos
			switch c := p.peek(); {
			case c == '"' || c == '\'' || c == '`':
				steps = append(steps, pathStep{key: p.parseString().lit.s})
			case isDigit(c) || c == '-' && isDigit(p.peekAt(p.pos+1)):
				if c == '-' {
					p.pos++
				}
				for isDigit(p.peek()) {
					p.pos++
				}
				if isKeyByte(p.peek()) || p.peek() == '.' {
					p.fail(ks, "an array index must be an integer, found %s", p.found(ks))
				}
				i, err := strconv.Atoi(p.src[ks:p.pos])
				if err != nil || i > maxIndex || i < -maxIndex {
					p.fail(ks, "array index %s is too large", p.src[ks:p.pos])
				}
				steps = append(steps, pathStep{index: i, isIdx: true})
			default:
				p.fail(ks, "expected a field name in quotes or an array index, found %s", p.found(ks))
			}
			p.skipSpace()
			if p.peek() != ']' {
				p.fail(p.pos, `expected "]", found %s`, p.found(p.pos))
			}
			p.pos++
			continue
		}
		break
	}
	return &node{op: nJSON, typ: tJSON, src: SourceJSON, path: newJSONPath(steps)}
}

// parseCall reads the arguments of a function, after "(".
func (p *parser) parseCall(name string, op opcode) *node {
	if op == nHTML {
		return p.parseHTML()
	}
	n := &node{op: op}
	n.arg = p.parseTerm("in " + name + "(")
	p.skipSpace()
	if op == nMatch {
		if p.peek() != ',' {
			p.fail(p.pos, `expected "," and a regular expression in match(), found %s`, p.found(p.pos))
		}
		p.pos++
		p.skipSpace()
		n.reLit = p.parseTerm("in match(")
		n.re = p.regexLiteral(n.reLit, "match()")
		p.skipSpace()
	}
	switch p.peek() {
	case ')':
		p.pos++
	case ',':
		p.fail(p.pos, "%s() takes one argument", name)
	default:
		p.fail(p.pos, `expected ")" to close %s(, found %s`, name, p.found(p.pos))
	}
	a := n.arg
	n.src = a.src
	switch op {
	case nLen:
		n.typ = tNumber
		if a.typ != tString && a.typ != tJSON {
			p.fail(a.pos, "len() takes a string or a JSON value, but %s is %s", a.text, a.typ)
		}
	case nLower, nUpper, nTrim, nMatch:
		n.typ = tString
		if a.typ != tString && a.typ != tJSON {
			p.fail(a.pos, "%s() takes a string, but %s is %s", name, a.text, a.typ)
		}
	case nExists:
		n.typ = tBool
		switch {
		case a.op == nHeader, a.op == nHeaders, a.op == nCookie, a.op == nMatch, a.op == nHTML:
		case a.op == nJSON && len(a.path.steps) > 0:
		default:
			p.fail(a.pos, "exists() takes a JSON path, a header, a cookie, match(...) or html(...), not %s", a.text)
		}
	case nCount:
		n.typ = tNumber
		switch {
		case a.op == nHeader, a.op == nHeaders, a.op == nHTML && a.attrLit == nil:
		case a.op == nHTML:
			p.fail(a.pos, `count() counts the elements a selector matches: write count(html(%s)) (a selector such as "a[href]" keeps those with an attribute)`, a.selLit.text)
		case a.typ == tJSON:
			p.fail(a.pos, "count() counts the values of a header or the matches of html(...); for a JSON array write len(%s)", a.text)
		default:
			p.fail(a.pos, "count() counts the values of a header or the matches of html(...), not %s", a.text)
		}
	}
	return n
}

// parseHTML reads the arguments of html(, after "(": a CSS selector and
// optionally an attribute name, both string literals, compiled now.
func (p *parser) parseHTML() *node {
	n := &node{op: nHTML, typ: tString, src: SourceHTML | SourceBody}
	n.selLit = p.parseTerm("in html(")
	n.sel = p.compileSelector(n.selLit)
	p.skipSpace()
	if p.peek() == ',' {
		p.pos++
		p.skipSpace()
		a := p.parseTerm("in html(")
		if a.op != nLit || a.typ != tString {
			p.fail(a.pos, `html()'s second argument is an attribute name in quotes, like html("input[name=csrf]", "value"), found %s`, a.text)
		}
		if !validAttrName(a.lit.s) {
			p.fail(a.pos, "invalid attribute name %s", strconv.Quote(a.lit.s))
		}
		n.attrLit = a
		// The parser lower-cases HTML's attribute names.
		n.key = strings.ToLower(a.lit.s)
		p.skipSpace()
	}
	switch p.peek() {
	case ')':
		p.pos++
	case ',':
		p.fail(p.pos, "html() takes a CSS selector and, optionally, an attribute name")
	default:
		p.fail(p.pos, `expected ")" to close html(, found %s`, p.found(p.pos))
	}
	return n
}

// validAttrName reports whether s can be an HTML attribute's name: no
// white space, quotes, "=", ">", "/" or control characters.
func validAttrName(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("\"'>/=", r) {
			return false
		}
	}
	return true
}

// regexLiteral compiles the string literal n as a regular expression.
func (p *parser) regexLiteral(n *node, what string) *regexp.Regexp {
	if n.op != nLit || n.typ != tString {
		p.fail(n.pos, "%s needs a regular expression in quotes or backquotes, found %s", what, n.text)
	}
	re, err := regexp.Compile(n.lit.s)
	if err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "error parsing regexp: ")
		p.fail(n.pos, "invalid regular expression: %s", msg)
	}
	return re
}

// parseString reads a quoted string: "..." and '...' with Go escapes, or
// `...` raw.
func (p *parser) parseString() *node {
	start := p.pos
	q := p.src[p.pos]
	p.pos++
	if q == '`' {
		end := strings.IndexByte(p.src[p.pos:], '`')
		if end < 0 {
			p.fail(start, "unterminated string")
		}
		s := p.src[p.pos : p.pos+end]
		p.pos += end + 1
		return strLit(s)
	}
	var buf []byte
	for {
		if p.pos >= len(p.src) {
			p.fail(start, "unterminated string")
		}
		c := p.src[p.pos]
		switch c {
		case q:
			p.pos++
			return strLit(string(buf))
		case '\\':
			// Either quote may be escaped in either kind of string.
			if nc := p.peekAt(p.pos + 1); nc == '"' || nc == '\'' {
				buf = append(buf, nc)
				p.pos += 2
				continue
			}
			v, multi, tail, err := strconv.UnquoteChar(p.src[p.pos:], q)
			if err != nil {
				p.fail(p.pos, "invalid escape %s in string (write regular expressions in backquotes: `\\d+`)", p.escapeText())
			}
			if v < utf8.RuneSelf || !multi {
				buf = append(buf, byte(v))
			} else {
				buf = utf8.AppendRune(buf, v)
			}
			p.pos = len(p.src) - len(tail)
		default:
			// Copy raw bytes, even invalid UTF-8: a literal means its bytes.
			buf = append(buf, c)
			p.pos++
		}
	}
}

func (p *parser) escapeText() string {
	s := p.src[p.pos:]
	n := min(len(s), 2)
	if n == 2 && (s[1] == 'x' || s[1] == 'u' || s[1] == 'U' || isDigit(s[1])) {
		n = min(len(s), 4)
	}
	return strconv.Quote(s[:n])
}

func strLit(s string) *node {
	return &node{op: nLit, typ: tString, lit: value{k: kString, s: s}, litSrc: strconv.Quote(s)}
}

// parseNumber reads a number or a duration literal.
func (p *parser) parseNumber() *node {
	start := p.pos
	if p.peek() == '-' {
		p.pos++
	}
	unit := false
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case isDigit(c) || c == '.':
		case (c == '+' || c == '-') && !unit && (p.src[p.pos-1] == 'e' || p.src[p.pos-1] == 'E'):
		case isLetter(c) || c == '_' || c >= 0x80:
			if c != 'e' && c != 'E' {
				unit = true
			}
		default:
			goto done
		}
		p.pos++
	}
done:
	tok := p.src[start:p.pos]
	if unit {
		d, err := time.ParseDuration(tok)
		if err != nil {
			p.fail(start, "invalid duration %q (durations look like 250ms, 2s, 1.5s, 1m30s)", tok)
		}
		if d < 0 {
			p.fail(start, "a duration cannot be negative")
		}
		return &node{op: nLit, typ: tDuration, lit: value{k: kDuration, i: int64(d)}, litSrc: d.String()}
	}
	if !isNumberText(tok) {
		p.fail(start, "invalid number %q", tok)
	}
	n := &node{op: nLit, typ: tNumber}
	if isIntText(tok) {
		// Drop leading zeros first, so that the int64 range decides the
		// form: 000…01 is 1, not a big number.
		neg := tok[0] == '-'
		digits := strings.TrimLeft(strings.TrimPrefix(tok, "-"), "0")
		if digits == "" {
			digits = "0"
		}
		if neg && digits != "0" {
			digits = "-" + digits
		}
		if i, ok := parseInt(digits); ok {
			n.lit.setInt(i)
			n.litSrc = strconv.FormatInt(i, 10)
			return n
		}
		f, _ := strconv.ParseFloat(digits, 64)
		n.lit = value{k: kNumber, form: numBig, f: f, s: digits}
		n.litSrc = digits
		return n
	}
	f, err := strconv.ParseFloat(tok, 64)
	if err != nil {
		p.fail(start, "number %s is out of range", tok)
	}
	// Whole numbers are held as integers: 1.0 is 1, exactly.
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		n.lit.setInt(int64(f))
		n.litSrc = strconv.FormatInt(int64(f), 10)
		return n
	}
	n.lit = value{k: kNumber, form: numFloat, f: f}
	n.litSrc = strconv.FormatFloat(f, 'g', -1, 64)
	return n
}

// isNumberText reports whether s is -?digits(.digits)?([eE][+-]?digits)?.
func isNumberText(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		return i > j
	}
	if !digits() {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}

// parseVar reads {{name}}: a variable (the flow's vars, a capture of an
// earlier step, a built-in), compared as the type of the other side when
// the step runs. Secrets are refused: a failure shows the values compared.
func (p *parser) parseVar() *node {
	start := p.pos
	end := strings.Index(p.src[p.pos:], "}}")
	if end < 0 {
		p.fail(start, "unclosed {{: write {{name}}")
	}
	inner := p.src[p.pos+2 : p.pos+end]
	name := strings.TrimSpace(inner)
	off := p.pos + 2 + strings.Index(inner, name)
	if strings.HasPrefix(name, "secret:") {
		p.fail(start, "secrets cannot be used in expectations: a failed check shows the values it compared")
	}
	if name == "" || !isWordByte(name[0]) || isDigit(name[0]) || strings.IndexFunc(name, func(r rune) bool { return r > 127 || !isWordByte(byte(r)) }) >= 0 {
		p.fail(start, "expected a variable name in {{...}}, found %s", strconv.Quote(inner))
	}
	p.pos += end + 2
	p.vars = append(p.vars, VarRef{Name: name, Offset: off})
	return &node{op: nVar, typ: tJSON, key: name}
}
