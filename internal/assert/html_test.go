package assert

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// loginPage is a form login page as a shop serves it.
const loginPage = `<!DOCTYPE html>
<html><head><title>Sign in</title>
<script>var csrf = "not-this-one";</script>
<style>.price { color: red }</style></head>
<body>
  <h1>
    Sign in,
    <em>please</em>
  </h1>
  <form method="post" action="/login">
    <input type="hidden" name="csrf" value="tok-123&amp;x">
    <input type="text" name="user" autofocus>
    <input type="password" name="password">
  </form>
  <ul class="items">
    <li class="item" data-sku="A-1"><span class="price">12.00&nbsp;EUR</span></li>
    <li class="item" data-sku="B-2"><span class="price">3.50 EUR</span></li>
    <li class="item sold-out" data-sku="C-3"></li>
  </ul>
  <div id="empty"></div>
</body></html>`

func htmlPage(body string, contentType ...string) *Response {
	hdr := []string{"Set-Cookie", "sid=abc; Path=/; HttpOnly", "Set-Cookie", "lang=en", "Vary", "Accept"}
	for _, ct := range contentType {
		hdr = append(hdr, "Content-Type", ct)
	}
	return resp(200, body, 10*time.Millisecond, hdr...)
}

func TestHTMLOperands(t *testing.T) {
	page := func() *Response { return htmlPage(loginPage, "text/html; charset=utf-8") }
	for _, tc := range []struct {
		src   string
		r     func() *Response
		ok    bool
		cause Cause
		msg   string // the failure message (exact), when it fails
	}{
		// The text of the first match, white space folded, scripts left out.
		{src: `html("h1") == "Sign in, please"`, r: page, ok: true},
		{src: `html("title") == "Sign in"`, r: page, ok: true},
		{src: `html("li.item .price") == "12.00\u00a0EUR"`, r: page, ok: true},
		{src: `html("li:nth-child(2) .price") == "3.50 EUR"`, r: page, ok: true},
		{src: `html("#empty") == ""`, r: page, ok: true},
		{src: `html("head") == "Sign in"`, r: page, ok: true}, // script and style are no text
		{src: `html("script") contains "not-this-one"`, r: page, ok: true},
		{src: `html("h2, h1") == "Sign in, please"`, r: page, ok: true}, // a group: the first in the document
		// An attribute of the first match; names are case-insensitive.
		{src: `html("input[name=csrf]", "value") == "tok-123&x"`, r: page, ok: true},
		{src: `html("input[name=csrf]", "VALUE") == "tok-123&x"`, r: page, ok: true},
		{src: `html("input[name=user]", "autofocus") == ""`, r: page, ok: true},
		{src: `html("li.item", "data-sku") == "A-1"`, r: page, ok: true},
		{src: `html("li.sold-out", "data-sku") in ["C-3"]`, r: page, ok: true},
		{src: `html(".price") matches "^[0-9.]+"`, r: page, ok: true},
		{src: `match(html(".price"), "[0-9]+[.][0-9]+") == "12.00"`, r: page, ok: true},
		{src: `exists(html("form[action='/login']"))`, r: page, ok: true},
		{src: `!exists(html(".error"))`, r: page, ok: true},
		{src: `!exists(html("input[name=user]", "value"))`, r: page, ok: true},
		// Counts: 0 when nothing matches, never missing.
		{src: `count(html("li.item")) == 3`, r: page, ok: true},
		{src: `count(html("li.item:not(.sold-out)")) == 2`, r: page, ok: true},
		{src: `count(html(".error")) == 0`, r: page, ok: true},
		{src: `count(html("li")) > 5`, r: page, msg: `count(html("li")) > 5: got 3`, cause: Mismatch},
		// A value that is not what was expected.
		{src: `html("h1") == "Welcome"`, r: page, msg: `html("h1") == "Welcome": got "Sign in, please"`, cause: Mismatch},
		// A missing element or attribute: missing, whatever the operator.
		{src: `html(".error") != "x"`, r: page, cause: Missing,
			msg: `html(".error") != "x": got nothing (no element matches ".error")`},
		{src: `html("input[name=user]", "value") == ""`, r: page, cause: Missing,
			msg: `html("input[name=user]", "value") == "": got nothing (<input type="text" name="user" autofocus> has no attribute "value")`},
		// The element is named by what identifies it; a value (a token) is not shown.
		{src: `html("input[name=csrf]", "data-x") == ""`, r: page, cause: Missing,
			msg: `html("input[name=csrf]", "data-x") == "": got nothing (<input type="hidden" name="csrf" value> has no attribute "data-x")`},
		{src: `exists(html(".error"))`, r: page, cause: Missing,
			msg: `exists(html(".error")): got nothing (no element matches ".error")`},
		// A body that is not HTML: a clear failure, exists included.
		{src: `html("h1") == "x"`, r: func() *Response { return htmlPage(`{"error":"down"}`, "application/json") }, cause: NotHTML,
			msg: `html("h1") == "x": body is not HTML (Content-Type "application/json"; starts "{\"error\":\"down\"}")`},
		{src: `!exists(html(".error"))`, r: func() *Response { return htmlPage(`{"error":"down"}`, "application/json") }, cause: NotHTML,
			msg: `!exists(html(".error")): body is not HTML (Content-Type "application/json"; starts "{\"error\":\"down\"}")`},
		{src: `count(html("li")) == 0`, r: func() *Response { return htmlPage(`%PDF-1.4 …`, "application/pdf") }, cause: NotHTML,
			msg: `count(html("li")) == 0: body is not HTML (Content-Type "application/pdf"; starts "%PDF-1.4 …")`},
		{src: `html("h1") == "x"`, r: func() *Response { return htmlPage(``, "text/html") }, cause: NotHTML,
			msg: `html("h1") == "x": body is not HTML (it is empty)`},
		{src: `html("h1") == "x"`, r: func() *Response { return htmlPage("plain text") }, cause: NotHTML,
			msg: `html("h1") == "x": body is not HTML (no Content-Type, and it does not start with <; starts "plain text")`},
		// Without a Content-Type, a body that starts with < is read.
		{src: `html("b") == "x"`, r: func() *Response { return htmlPage(" \n<p><b>x</b>") }, ok: true},
		{src: `html("b") == "x"`, r: func() *Response { return htmlPage("<p><b>x</b>", "application/xhtml+xml") }, ok: true},
		// Deeper than the parser's bound: refused, not a crash.
		{src: `count(html("div")) > 0`, r: func() *Response { return htmlPage(strings.Repeat("<div>", 600), "text/html") }, cause: NotHTML,
			msg: `count(html("div")) > 0: body is not HTML (it cannot be parsed: open stack of elements exceeds 512 nodes; starts "<div><div><div><div…")`},
	} {
		e, err := Compile(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if e.Sources()&SourceHTML == 0 || e.Sources()&SourceBody == 0 {
			t.Errorf("%s: Sources %b lacks SourceHTML|SourceBody", tc.src, e.Sources())
		}
		r := tc.r()
		f, ok := e.Check(r)
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v (%s)", tc.src, ok, tc.ok, f.Message)
			continue
		}
		if ok {
			continue
		}
		checkFailure(t, e, f, ok)
		if f.Cause != tc.cause || f.Message != tc.msg {
			t.Errorf("%s:\n got %v %s\nwant %v %s", tc.src, f.Cause, f.Message, tc.cause, tc.msg)
		}
	}
}

// TestHTMLParsedOnce: the body is parsed by the first HTML operand of a
// response and reused by the others; a new body (or Reset) parses again;
// a response no HTML operand reads is never parsed.
func TestHTMLParsedOnce(t *testing.T) {
	r := htmlPage(loginPage, "text/html")
	for _, src := range []string{`status == 200`, `body contains "csrf"`, `header.Vary == "Accept"`} {
		MustCompile(src).Check(r)
	}
	if r.html.state != htmlUnknown {
		t.Fatalf("parsed without an HTML operand: state %d", r.html.state)
	}
	MustCompile(`html("h1") != ""`).Check(r)
	doc := r.html.doc
	if doc == nil {
		t.Fatal("not parsed")
	}
	MustCompile(`count(html("li")) == 3`).Check(r)
	if _, ok := MustCompile(`html("title") == "Sign in"`).Check(r); !ok || r.html.doc != doc {
		t.Fatalf("parsed again (or failed): ok=%v", ok)
	}
	// The runner reuses the response: another page is read afresh.
	r.Body = []byte(`<title>Other</title>`)
	if f, ok := MustCompile(`html("title") == "Other"`).Check(r); !ok {
		t.Fatal(f.Message)
	}
	r.Reset()
	if r.html.doc != nil || r.html.state != htmlUnknown {
		t.Fatal("Reset kept the document")
	}
}

// TestHTMLCapture: captures read the same operands, as text.
func TestHTMLCapture(t *testing.T) {
	r := htmlPage(loginPage, "text/html")
	for _, tc := range []struct{ src, want, err string }{
		{src: `html("input[name=csrf]", "value")`, want: "tok-123&x"},
		{src: `html(".price")`, want: "12.00\u00a0EUR"},
		{src: `count(html("li.item"))`, want: "3"},
		{src: `trim(html("h1 em"))`, want: "please"},
		{src: `html("input[name=token]", "value")`, err: `html("input[name=token]", "value"): no element matches`},
		{src: `html("input[name=user]", "value")`, err: `html("input[name=user]", "value"): no such attribute (<input type="text" name="user" autofocus>)`},
	} {
		v, err := CompileValue(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		got, err := v.Eval(r)
		if tc.err != "" {
			var ee *EvalError
			if !errors.As(err, &ee) || ee.Cause != Missing || ee.Msg != tc.err {
				t.Errorf("%s: err %v, want %q", tc.src, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
	v, _ := CompileValue(`html("h1")`)
	_, err := v.Eval(htmlPage(`{"a":1}`, "application/json"))
	var ee *EvalError
	if !errors.As(err, &ee) || ee.Cause != NotHTML || !strings.Contains(ee.Msg, "body is not HTML") {
		t.Errorf("capture from JSON: %v", err)
	}
}

// TestHTMLCompileErrors: a bad selector or argument is a compile error at
// the offending literal, so the loader reports file:line:col.
func TestHTMLCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		src  string
		at   int
		want string
	}{
		{`html("input[name=") == "x"`, 5, `invalid CSS selector "input[name=": unexpected EOF in attribute selector`},
		{`html("div >") != ""`, 5, `invalid CSS selector "div >": expected selector, found EOF instead`},
		{`html("::before") != ""`, 5, `invalid CSS selector "::before"`},
		{`html("a)b") != ""`, 7, `invalid CSS selector "a)b": unexpected ")b"`}, // at the ")" in the literal
		{`html("") != ""`, 5, `needs a CSS selector, found an empty string`},
		{`html(body) != ""`, 5, `needs a CSS selector in quotes`},
		{`html("a", 1) != ""`, 10, `attribute name in quotes`},
		{`html("a", "on click") != ""`, 10, `invalid attribute name "on click"`},
		{`html("a", "href", "x") != ""`, 16, `takes a CSS selector and, optionally, an attribute name`},
		{`html("a"`, 8, `expected ")" to close html(`},
		{`html("h1")`, 0, `html("h1") is a string, not a condition (did you mean exists(html("h1"))?)`},
		{`html("h1") == 1`, 14, `type mismatch`},
		{`html("h1") == null`, 14, `never null (to check that it is absent, write !exists(html("h1")))`},
		{`html == "x"`, 0, `html is a function: write html(...)`},
		{`count(json.items) == 2`, 6, `for a JSON array write len(json.items)`},
		{`count(html("a", "href")) == 2`, 6, `count() counts the elements a selector matches`},
		{`count(body) == 1`, 6, `count() counts the values of a header or the matches of html(...), not body`},
		{`count(html("a")) == "2"`, 20, `type mismatch`},
	} {
		_, err := Compile(tc.src)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: err %v, want a SyntaxError", tc.src, err)
			continue
		}
		if se.Offset != tc.at || !strings.Contains(se.Msg, tc.want) {
			t.Errorf("%s: at %d %q; want at %d %q", tc.src, se.Offset, se.Msg, tc.at, tc.want)
		}
	}
}

type cookieMap map[string]string

func (m cookieMap) Cookie(name string) (string, bool) { v, ok := m[name]; return v, ok }

func TestHeadersAndCookies(t *testing.T) {
	page := func() *Response {
		r := htmlPage(loginPage, "text/html")
		r.Cookies = cookieMap{"sid": "abc", "connect.sid": "s%3Axyz", "__Host-id": "h"}
		return r
	}
	for _, tc := range []struct {
		src   string
		ok    bool
		cause Cause
		msg   string
	}{
		// header.X stays the first value; headers.X is all, one per line.
		{src: `header.Set-Cookie == "sid=abc; Path=/; HttpOnly"`, ok: true},
		{src: `headers.Set-Cookie == "sid=abc; Path=/; HttpOnly\nlang=en"`, ok: true},
		{src: `headers["set-cookie"] contains "lang=en"`, ok: true},
		{src: `headers.Set-Cookie matches "(?m)^sid=[^;\n]+;.*HttpOnly$"`, ok: true},
		{src: `headers.Vary == "Accept"`, ok: true},
		{src: `headers.Set-Cookie !contains "lang=fr"`, ok: true},
		{src: `count(header.Set-Cookie) == 2`, ok: true},
		{src: `count(headers["Set-Cookie"]) == 2`, ok: true},
		{src: `count(header.X-Missing) == 0`, ok: true},
		{src: `exists(headers.Vary)`, ok: true},
		{src: `!exists(headers.X-Missing)`, ok: true},
		{src: `headers.X-Missing == ""`, cause: Missing, msg: `headers.X-Missing == "": got nothing (no header "X-Missing")`},
		{src: `headers.Set-Cookie contains "lang=fr"`, cause: Mismatch,
			msg: `headers.Set-Cookie contains "lang=fr": got "sid=abc; Path=/; HttpOnly\nlang=en"`},
		// Cookies by name, case-sensitive, dots in the name allowed.
		{src: `cookie.sid == "abc"`, ok: true},
		{src: `cookie["sid"] != ""`, ok: true},
		{src: `cookie.connect.sid == "s%3Axyz"`, ok: true},
		{src: `cookie.__Host-id == "h"`, ok: true},
		{src: `exists(cookie.sid)`, ok: true},
		{src: `!exists(cookie.SID)`, ok: true},
		{src: `cookie.sid == "x"`, cause: Mismatch, msg: `cookie.sid == "x": got "abc"`},
		{src: `cookie.token != ""`, cause: Missing, msg: `cookie.token != "": got nothing (no cookie "token")`},
	} {
		e, err := Compile(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		f, ok := e.Check(page())
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v (%s)", tc.src, ok, tc.ok, f.Message)
			continue
		}
		if ok {
			continue
		}
		checkFailure(t, e, f, ok)
		if f.Cause != tc.cause || f.Message != tc.msg {
			t.Errorf("%s:\n got %v %s\nwant %v %s", tc.src, f.Cause, f.Message, tc.cause, tc.msg)
		}
	}
	// A response without cookies (another kind's) says so.
	f, ok := MustCompile(`cookie.sid == "abc"`).Check(resp(200, "", 0))
	if ok || f.Message != `cookie.sid == "abc": got nothing (this response has no cookies)` {
		t.Errorf("no cookies: %v %s", ok, f.Message)
	}
	if e := MustCompile(`cookie.sid == "abc"`); e.Sources() != SourceCookie {
		t.Errorf("cookie Sources = %b", e.Sources())
	}
	// Captures.
	for src, want := range map[string]string{`cookie.sid`: "abc", `headers.Set-Cookie`: "sid=abc; Path=/; HttpOnly\nlang=en", `count(header.Set-Cookie)`: "2"} {
		v, err := CompileValue(src)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := v.Eval(page()); err != nil || got != want {
			t.Errorf("capture %s = %q, %v; want %q", src, got, err, want)
		}
	}
	// Errors at the name.
	for _, tc := range []struct {
		src  string
		at   int
		want string
	}{
		{`cookie == "x"`, 0, `cookie needs a name`},
		{`cookie. == "x"`, 7, `expected a cookie name after "cookie."`},
		{`cookie.sid[0] == "x"`, 10, `a cookie has no fields`},
		{`cookie["a b"] == "x"`, 7, `invalid cookie name "a b"`},
		{`cookie.sid`, 0, `did you mean exists(cookie.sid)?`},
		{`headers == "x"`, 0, `headers needs a name`},
		{`headers.X.count == 1`, 9, `a header has no fields`},
		{`cookies.sid == "x"`, 0, `did you mean "cookie"?`},
		{`header.X-Missing == null`, 20, `write !exists(header.X-Missing)`},
	} {
		_, err := Compile(tc.src)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Offset != tc.at || !strings.Contains(se.Msg, tc.want) {
			t.Errorf("%s: %v (at %d); want at %d %q", tc.src, err, offsetOf(err), tc.at, tc.want)
		}
	}
}

func offsetOf(err error) int {
	var se *SyntaxError
	if errors.As(err, &se) {
		return se.Offset
	}
	return -1
}

// TestNewOperandsCanonical: the new operands print in a form that
// compiles back to themselves.
func TestNewOperandsCanonical(t *testing.T) {
	for src, want := range map[string]string{
		`html( 'a[href^="/x"]' , 'HREF' ) == "x"`: `html("a[href^=\"/x\"]", "href") == "x"`,
		"html(`h1`) == 'x'":                       `html("h1") == "x"`,
		`count( html("li") ) >= 1`:                `count(html("li")) >= 1`,
		`headers["set-cookie"] contains "a"`:      `headers.Set-Cookie contains "a"`,
		`headers["x.y"] contains "a"`:             `headers["X.y"] contains "a"`,
		`cookie["sid"] == "a"`:                    `cookie.sid == "a"`,
		`cookie["a.b"] == "a"`:                    `cookie.a.b == "a"`,
		`cookie["a!b"] == "a"`:                    `cookie["a!b"] == "a"`,
		`cookie["x."] == "a"`:                     `cookie["x."] == "a"`,
		`!exists(cookie.sid)`:                     `!exists(cookie.sid)`,
	} {
		e := MustCompile(src)
		if got := e.format(); got != want {
			t.Errorf("%s: format %q, want %q", src, got, want)
		}
		if again := MustCompile(e.format()).format(); again != want {
			t.Errorf("%s: canonical recompiles as %q", src, again)
		}
	}
}

// FuzzHTMLSelector runs arbitrary selectors through compile (an error at
// an offset inside the source, never a panic) and what compiles against a
// page (no panic, a well-formed failure).
func FuzzHTMLSelector(f *testing.F) {
	for _, s := range []string{`input[name=csrf]`, `li.item:nth-child(2n+1) > span`, `a[href^="/x"], h1`,
		`:not(.a)`, `div:has(> p)`, `p:contains("x")`, `[data-x~=y]`, `#id.c1.c2`, `*`, `a[`, `::before`,
		`:nth-child(`, `\\`, `a)b`, `p:matches(^\d+$)`, `:root`, `input:checked`, `é`} {
		f.Add(s, "value")
	}
	page := htmlPage(loginPage, "text/html")
	f.Fuzz(func(t *testing.T, sel, attr string) {
		for _, src := range []string{
			`html("` + sel + `") == "x"`,
			"html(`" + sel + "`, `" + attr + "`) != \"\"",
			"count(html(`" + sel + "`)) > 1",
		} {
			e, err := Compile(src)
			if err != nil {
				var se *SyntaxError
				if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(src) || se.Msg == "" {
					t.Fatalf("%q: bad error %v", src, err)
				}
				continue
			}
			fl, ok := e.Check(page)
			checkFailure(t, e, fl, ok)
			canon := e.format()
			if e2, err := Compile(canon); err != nil || e2.format() != canon {
				t.Fatalf("%q: canonical %q recompiles to %v", src, canon, err)
			}
		}
	})
}

// BenchmarkHTML measures a page's parse (once per response) and the
// operands read from it afterwards.
func BenchmarkHTML(b *testing.B) {
	page := []byte(strings.Replace(loginPage, `<div id="empty"></div>`,
		strings.Repeat(`<div class="row"><a href="/p/1">Product <b>one</b></a><span class="price">9.99</span></div>`, 200), 1))
	csrf := MustCompile(`html("input[name=csrf]", "value") != ""`)
	count := MustCompile(`count(html("div.row")) == 200`)
	b.Run("parse+2", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		b.ReportAllocs()
		r := &Response{Status: 200, Header: http.Header{"Content-Type": {"text/html"}}}
		for b.Loop() {
			r.Reset()
			r.Body = page
			if _, ok := csrf.Check(r); !ok {
				b.Fatal("csrf")
			}
			if f, ok := count.Check(r); !ok {
				b.Fatal(f.Message)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		r := &Response{Status: 200, Body: page, Header: http.Header{"Content-Type": {"text/html"}}}
		csrf.Check(r)
		b.ReportAllocs()
		for b.Loop() {
			csrf.Check(r)
		}
	})
}
