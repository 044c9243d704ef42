package assert

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fuzzSeeds are expectations that exercise every part of the grammar.
var fuzzSeeds = []string{
	`status == 200`,
	`status in [200, 201, 204]`,
	`status !in [500]`,
	`json.order.id == {{order_id}}`,
	`{{ n }} < len(json.items)`,
	`duration < {{max}}`,
	`duration < 1m30s`,
	`body contains "ok"`,
	`body not matches "(?i)error"`,
	`header.Content-Type contains "json"`,
	`header["x-id"] == 'abc'`,
	`json.status == "success"`,
	`json.data.items[0].id >= 1`,
	`json.items[-1] != null`,
	`json["weird.key"] == "\u00e9\n"`,
	"match(body, `ref=(\\w+)`) == \"abc\"",
	`len(json.items) > 0`,
	`lower(trim(header.X)) in ["a", "b"]`,
	`exists(json.token)`,
	`!exists(json.error)`,
	`not exists(match(body, "x"))`,
	`json.ok`,
	`json.big == 12345678901234567890`,
	`json.f == -1.5e3`,
	`json.contains contains "contains"`,
	`json.a == json.b`,
	`json[""][-2]["x"].0 == true`,
	`stauts = "200"`,
	`len(len(`,
	`html("input[name=csrf]", "value") != ""`,
	`html("li.item:nth-child(2) .price") == "3.50"`,
	"count(html(`a[href^=\"/x\"], h1`)) >= 1",
	`!exists(html(".error"))`,
	`html("a[") == "x"`,
	`headers.Set-Cookie contains "sid="`,
	`count(header["set-cookie"]) == 2`,
	`cookie.connect.sid != ""`,
	`exists(cookie["__Host-id"])`,
}

var fuzzBodies = []string{
	``,
	`{}`,
	`[]`,
	`null`,
	`{"status":"success","data":{"items":[{"id":1},{"id":2}]},"items":[1,2,3],"ok":true,"big":12345678901234567890}`,
	`{"token":"abc","error":null,"weird.key":"é\n","":{"":[{"x":1},{"x":true}]},"contains":["contains"]}`,
	`{"a":[1,"1"],"b":[1,"1"],"f":-1500}`,
	`<html><body>Bad gateway</body></html>`,
	`{"status": "succ`,
	`"just a string"`,
	`ref=abc x`,
	`<form><input name="csrf" value="t"><li class="item"><span class="price">3.50</span></li></form>`,
}

func FuzzCompile(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	r := resp(200, fuzzBodies[4], time.Second, "Content-Type", "application/json", "X", " A ")
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Compile(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Compile(%q): %T is not a *SyntaxError", src, err)
			}
			if se.Offset < 0 || se.Offset > len(src) || se.Msg == "" {
				t.Fatalf("Compile(%q): bad error at %d: %q", src, se.Offset, se.Msg)
			}
		} else {
			canon := e.format()
			// String() compiles back to an equivalent expectation...
			e2, err := Compile(e.String())
			if err != nil || e2.format() != canon {
				t.Fatalf("Compile(%q).String() = %q recompiles to %v, %v", src, e.String(), e2, err)
			}
			// ...and so does the canonical form, to itself.
			e3, err := Compile(canon)
			if err != nil {
				t.Fatalf("canonical form %q of %q does not compile: %v", canon, src, err)
			}
			if e3.format() != canon || e3.Sources() != e.Sources() {
				t.Fatalf("canonical form %q of %q recompiles as %q", canon, src, e3.format())
			}
			e.Check(r)
		}
		v, err := CompileValue(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(src) || se.Msg == "" {
				t.Fatalf("CompileValue(%q): bad error %v", src, err)
			}
			return
		}
		v2, err := CompileValue(v.node.format())
		if err != nil || v2.node.format() != v.node.format() {
			t.Fatalf("value %q: canonical form %q recompiles to %v", src, v.node.format(), err)
		}
		v.Eval(r)
	})
}

func FuzzCheck(f *testing.F) {
	for i, s := range fuzzSeeds {
		for j, b := range fuzzBodies {
			if (i+j)%3 == 0 {
				f.Add(s, []byte(b), 200, "text/plain")
			}
		}
	}
	f.Fuzz(func(t *testing.T, src string, body []byte, status int, hdr string) {
		e, err := Compile(src)
		if err != nil {
			return
		}
		orig := bytes.Clone(body)
		r := &Response{Status: status, Body: body, Duration: 1500 * time.Millisecond,
			Header: http.Header{"X": {hdr}, "Content-Type": {hdr}}}
		fail, ok := e.Check(r)
		checkFailure(t, e, fail, ok)

		// The same verdict again (cache warm), on a fresh response, and from
		// the canonical form.
		fail2, ok2 := e.Check(r)
		r3 := &Response{Status: status, Body: bytes.Clone(body), Duration: r.Duration, Header: r.Header}
		fail3, ok3 := e.Check(r3)
		if ok2 != ok || fail2 != fail || ok3 != ok || fail3 != fail {
			t.Fatalf("%q: verdicts differ: %v %+v / %v %+v / %v %+v", src, ok, fail, ok2, fail2, ok3, fail3)
		}
		ec := MustCompile(e.format())
		failc, okc := ec.Check(r)
		if okc != ok || failc.Cause != fail.Cause || failc.Actual != fail.Actual {
			t.Fatalf("%q and canonical %q disagree: %v %+v / %v %+v", src, e.format(), ok, fail, okc, failc)
		}
		if !bytes.Equal(body, orig) {
			t.Fatalf("%q: Check modified the body", src)
		}

		if v, err := CompileValue(src); err == nil {
			s, err := v.Eval(r)
			if err != nil {
				var ee *EvalError
				if !errors.As(err, &ee) || ee.Cause < Mismatch || ee.Cause > NotHTML || ee.Msg == "" || s != "" {
					t.Fatalf("%q: Eval error %v", src, err)
				}
			}
		}
	})
}

func checkFailure(t *testing.T, e *Expectation, f Failure, ok bool) {
	t.Helper()
	if ok {
		if f != (Failure{}) {
			t.Fatalf("%q passed with Failure %+v", e, f)
		}
		return
	}
	if f.Cause < Mismatch || f.Cause > NotHTML {
		t.Fatalf("%q: bad cause %d", e, f.Cause)
	}
	if f.Expectation != e.String() || !strings.HasPrefix(f.Message, e.String()+": ") || f.Actual == "" {
		t.Fatalf("%q: bad failure %+v", e, f)
	}
	if f.Source == 0 || f.Source&^e.Sources() != 0 {
		t.Fatalf("%q: failure Source %b outside Sources %b", e, f.Source, e.Sources())
	}
}

// TestGrammarCombinations compiles every pairing of a set of operands with
// every operator and checks each that compiles against several bodies: no
// panics, well-formed failures, a stable canonical form.
func TestGrammarCombinations(t *testing.T) {
	operands := []string{`status`, `duration`, `body`, `header.X`, `header.Missing`,
		`json.s`, `json.n`, `json.b`, `json.nul`, `json.arr`, `json.obj`, `json.missing`, `json`,
		`json.arr[-1]`, `len(json.arr)`, `len(body)`, `lower(json.s)`, `exists(json.s)`, `exists(header.Missing)`,
		`match(body, "a(b)?")`, `1`, `-2.5`, `"a"`, `true`, `null`, `2s`, `12345678901234567890`}
	ops := []string{`==`, `!=`, `<`, `<=`, `>`, `>=`, `contains`, `!contains`, `matches`, `not matches`}
	lists := []string{`[1, "a", null]`, `[2s, 1ms]`, `["s"]`, `[true]`}
	bodies := []string{`{"s":"s","n":1,"b":true,"nul":null,"arr":[1,"a",{"k":1}],"obj":{"s":1}}`,
		`[1,2]`, `"ab"`, htmlBody, ``}
	var srcs []string
	for _, l := range operands {
		srcs = append(srcs, l, "!"+l)
		for _, op := range ops {
			for _, r := range operands {
				srcs = append(srcs, l+" "+op+" "+r)
			}
		}
		for _, list := range lists {
			srcs = append(srcs, l+" in "+list, l+" !in "+list)
		}
	}
	compiled := 0
	for _, src := range srcs {
		e, err := Compile(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(src) {
				t.Fatalf("%q: %v", src, err)
			}
			continue
		}
		compiled++
		ec, err := Compile(e.format())
		if err != nil || ec.format() != e.format() {
			t.Fatalf("%q: canonical %q: %v", src, e.format(), err)
		}
		for _, b := range bodies {
			r := resp(200, b, time.Second, "X", "ab")
			f, ok := e.Check(r)
			checkFailure(t, e, f, ok)
			fc, okc := ec.Check(r)
			if ok != okc || f.Actual != fc.Actual {
				t.Fatalf("%q and %q disagree on %s", src, e.format(), b)
			}
		}
	}
	t.Logf("%d of %d combinations compile", compiled, len(srcs))
}
