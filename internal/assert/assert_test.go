package assert

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

const okBody = `{"status":"success","count":3,"count_s":"3","ratio":0.5,"ok":true,"off":false,"nothing":null,
 "data":{"items":[{"id":1,"name":"a"},{"id":2,"name":"b"}],"total":2},
 "tags":["x","y","z"],"empty":[],"obj":{},"weird.key":"w","contains":1,"a":{"b":"decoy"},
 "big":12345678901234567890,"bigneg":-12345678901234567890,"large":42000000,"f":1.0,"exp":1e3,
 "名前":"テスト","esc":"a\"b\\n","s":"  Padded Text  ","mixed":[1,"1",null,{"a":1}],"":"empty key"}
`

const htmlBody = "<html><body>Bad gateway</body></html>"

// resp builds a response; hdr is name, value pairs.
func resp(status int, body string, d time.Duration, hdr ...string) *Response {
	r := &Response{Status: status, Body: []byte(body), Duration: d, Header: http.Header{}}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func okResp() *Response {
	return resp(200, okBody, 150*time.Millisecond,
		"Content-Type", "application/json; charset=utf-8",
		"X-Request-Id", "abc",
		"Set-Cookie", "a=1", "Set-Cookie", "b=2")
}

func htmlResp() *Response { return resp(502, htmlBody, 2314*time.Millisecond+400*time.Microsecond) }

type checkCase struct {
	src    string
	r      func() *Response
	ok     bool
	cause  Cause
	msg    string // exact Message; "" to skip
	source Source // Failure.Source; 0 to skip
	actual string // exact Actual; "" to skip
}

func checkCases() []checkCase {
	ok := okResp
	html := htmlResp
	empty := func() *Response { return resp(204, "", 0) }
	truncated := func() *Response { return resp(200, `{"status": "succ`, 0) }
	processing := func() *Response { return resp(200, `{"status":"processing"}`, 0) }
	long := strings.Repeat("a", 300)
	longResp := func() *Response { return resp(200, long, 0) }
	needle := strings.Repeat("x", 200) + "ERROR here" + strings.Repeat("y", 200)
	needleResp := func() *Response { return resp(200, needle, 0) }
	uni := func() *Response { return resp(200, `{"msg":"héllo wörld ✓","arr":["ä"]}`, 0) }

	return []checkCase{
		// status
		{src: `status == 200`, r: ok, ok: true},
		{src: `status == 200`, r: html, cause: Mismatch, msg: `status == 200: got 502`, source: SourceStatus, actual: "502"},
		{src: `  status==200  `, r: html, cause: Mismatch, msg: `status==200: got 502`},
		{src: `status != 200`, r: html, ok: true},
		{src: `status < 300`, r: ok, ok: true},
		{src: `status <= 200`, r: ok, ok: true},
		{src: `status > 199`, r: ok, ok: true},
		{src: `status >= 500`, r: ok, cause: Mismatch, msg: `status >= 500: got 200`},
		{src: `status == 200.0`, r: ok, ok: true},
		{src: `status in [200, 201, 204]`, r: ok, ok: true},
		{src: `status in [200, 201, 204]`, r: html, cause: Mismatch, msg: `status in [200, 201, 204]: got 502`},
		{src: `status !in [500, 502]`, r: html, cause: Mismatch, msg: `status !in [500, 502]: got 502`},
		{src: `status not in [500]`, r: ok, ok: true},
		{src: `status ! in [500]`, r: ok, ok: true},
		{src: `200 == status`, r: html, cause: Mismatch, msg: `200 == status: got 502`},

		// duration
		{src: `duration < 2s`, r: html, cause: Mismatch, msg: `duration < 2s: got 2.314s`, source: SourceDuration, actual: "2.314s"},
		{src: `duration < 250ms`, r: ok, ok: true},
		{src: `duration >= 100ms`, r: ok, ok: true},
		{src: `duration == 150ms`, r: ok, ok: true},
		{src: `duration > 1m30s`, r: ok, cause: Mismatch, msg: `duration > 1m30s: got 150ms`},
		{src: `duration < 1.5s`, r: ok, ok: true},
		{src: `duration in [150ms, 1s]`, r: ok, ok: true},
		{src: `duration < 1ms`, r: func() *Response { return resp(200, "", 1500*time.Microsecond) }, cause: Mismatch, msg: `duration < 1ms: got 1.5ms`},
		{src: `duration < 1µs`, r: func() *Response { return resp(200, "", 1234567) }, cause: Mismatch, msg: `duration < 1µs: got 1.235ms`},
		{src: `duration < 1us`, r: func() *Response { return resp(200, "", 1234) }, cause: Mismatch, msg: `duration < 1us: got 1.234µs`},

		// body
		{src: `body contains "success"`, r: ok, ok: true},
		{src: `body contains "ok"`, r: html, cause: Mismatch, msg: `body contains "ok": got "<html><body>Bad gateway</body></html>"`, source: SourceBody},
		{src: `body contains "b"`, r: longResp, cause: Mismatch, msg: `body contains "b": got "` + long[:99] + `…" (300 bytes)`},
		{src: `body !contains "Bad"`, r: html, cause: Mismatch, msg: `body !contains "Bad": got "<html><body>Bad gateway</body></html>"`},
		{src: `body !contains "ERROR"`, r: needleResp, cause: Mismatch,
			msg: `body !contains "ERROR": got "…` + needle[160:260] + `…" (410 bytes, found at byte 200)`},
		{src: `body not contains "error"`, r: ok, ok: true},
		{src: `body !contains "` + strings.Repeat("b", 100) + `"`, r: func() *Response { return resp(200, "aaaaa"+strings.Repeat("b", 100)+"ccccc"+long, 0) }, cause: Mismatch,
			msg: `body !contains "` + strings.Repeat("b", 100) + `": got "aaaaa` + strings.Repeat("b", 100) + `…" (410 bytes, found at byte 5)`},
		{src: `body matches "^<html>"`, r: html, ok: true},
		{src: `body matches '^<html>$'`, r: html, cause: Mismatch, msg: `body matches '^<html>$': got "<html><body>Bad gateway</body></html>"`},
		{src: `body !matches "gate.ay"`, r: html, cause: Mismatch},
		{src: `body not matches "xyz"`, r: html, ok: true},
		{src: `body == ""`, r: empty, ok: true},
		{src: `len(body) == 37`, r: html, ok: true},
		{src: `len(body) > 0`, r: empty, cause: Mismatch, msg: `len(body) > 0: got 0`, source: SourceBody},
		{src: `body contains "✓"`, r: uni, ok: true},
		{src: `lower(body) contains "bad gateway"`, r: html, ok: true},
		{src: `upper(body) contains "BAD"`, r: html, ok: true},

		// headers
		{src: `header.Content-Type contains "json"`, r: ok, ok: true},
		{src: `header["content-type"] contains "json"`, r: ok, ok: true},
		{src: `header.content-type == "application/json; charset=utf-8"`, r: ok, ok: true},
		{src: `header.X-Missing == "a"`, r: ok, cause: Missing, msg: `header.X-Missing == "a": got nothing (no header "X-Missing")`, source: SourceHeader},
		{src: `header.x-missing != "a"`, r: ok, cause: Missing, msg: `header.x-missing != "a": got nothing (no header "X-Missing")`},
		{src: `header.Set-Cookie == "a=1"`, r: ok, ok: true},
		{src: `exists(header.X-Request-Id)`, r: ok, ok: true},
		{src: `!exists(header.X-Missing)`, r: ok, ok: true},
		{src: `exists(header.X-Missing)`, r: ok, cause: Missing, msg: `exists(header.X-Missing): got nothing (no header "X-Missing")`, source: SourceHeader},
		{src: `!exists(header.X-Request-Id)`, r: ok, cause: Mismatch, msg: `!exists(header.X-Request-Id): got "abc"`},
		{src: `header.X-Request-Id != "abc"`, r: ok, cause: Mismatch, msg: `header.X-Request-Id != "abc": got "abc"`},
		{src: `lower(header.X-REQUEST-ID) == "abc"`, r: ok, ok: true},
		{src: `header.X-Request-Id in ["abc", "def"]`, r: ok, ok: true},
		{src: `header.X-Request-Id matches "^a.c$"`, r: ok, ok: true},
		{src: `header.Content-Type == "x"`, r: func() *Response { return &Response{} }, cause: Missing}, // nil Header

		// json: values and types
		{src: `json.status == "success"`, r: ok, ok: true},
		{src: `json.status=="success"`, r: ok, ok: true},
		{src: `json.status == "success"`, r: processing, cause: Mismatch, msg: `json.status == "success": got "processing"`, source: SourceJSON, actual: `"processing"`},
		{src: `json.status == 'success'`, r: ok, ok: true},
		{src: "json.status == `success`", r: ok, ok: true},
		{src: `json.count == 3`, r: ok, ok: true},
		{src: `json.count == 3.0`, r: ok, ok: true},
		{src: `json.f == 1`, r: ok, ok: true},
		{src: `json.exp == 1000`, r: ok, ok: true},
		{src: `json.ratio < 1`, r: ok, ok: true},
		{src: `json.ratio == 0.5`, r: ok, ok: true},
		{src: `json.ratio > -0.5`, r: ok, ok: true},
		{src: `json.count_s == 3`, r: ok, cause: WrongType, msg: `json.count_s == 3: got "3" (a string, not a number)`, source: SourceJSON, actual: `"3" (a string, not a number)`},
		{src: `json.count == "3"`, r: ok, cause: WrongType, msg: `json.count == "3": got 3 (a number, not a string)`},
		{src: `json.count != "3"`, r: ok, cause: WrongType},
		{src: `json.status > 1`, r: ok, cause: WrongType, msg: `json.status > 1: got "success" (a string, not a number)`},
		{src: `json.nothing > 1`, r: ok, cause: WrongType, msg: `json.nothing > 1: got null (not a number)`},
		{src: `json.ok == true`, r: ok, ok: true},
		{src: `json.ok`, r: ok, ok: true},
		{src: `json.off`, r: ok, cause: Mismatch, msg: `json.off: got false`},
		{src: `!json.off`, r: ok, ok: true},
		{src: `not json.off`, r: ok, ok: true},
		{src: `!json.ok`, r: ok, cause: Mismatch, msg: `!json.ok: got true`},
		{src: `json.status`, r: ok, cause: WrongType, msg: `json.status: got "success" (a string, not a boolean)`},
		{src: `json.nothing == null`, r: ok, ok: true},
		{src: `json.status != null`, r: ok, ok: true},
		{src: `json.data != null`, r: ok, ok: true},
		{src: `json.nothing != null`, r: ok, cause: Mismatch, msg: `json.nothing != null: got null`},
		{src: `json.nothing == "a"`, r: ok, cause: Mismatch, msg: `json.nothing == "a": got null`},
		{src: `json["weird.key"] == "w"`, r: ok, ok: true},
		{src: `json.a.b == "decoy"`, r: ok, ok: true},
		{src: `json.contains == 1`, r: ok, ok: true},
		{src: `json.名前 == "テスト"`, r: ok, ok: true},
		{src: `json["名前"] == "テスト"`, r: ok, ok: true},
		{src: `json.esc == "a\"b\\n"`, r: ok, ok: true},
		{src: `json[""] == "empty key"`, r: ok, ok: true},
		{src: `json.msg == "héllo wörld ✓"`, r: uni, ok: true},
		{src: `json.arr contains "ä"`, r: uni, ok: true},
		{src: `json.msg == "x"`, r: uni, cause: Mismatch, msg: `json.msg == "x": got "héllo wörld ✓"`},

		// json: paths
		{src: `json.data.items[0].id == 1`, r: ok, ok: true},
		{src: `json.data.items[1].name == "b"`, r: ok, ok: true},
		{src: `json.data.items[-1].name == "b"`, r: ok, ok: true},
		{src: `json.data.items[-2].id == 1`, r: ok, ok: true},
		{src: `json.data.items[ 0 ]["name"] == "a"`, r: ok, ok: true},
		{src: `json.tags.1 == "y"`, r: ok, ok: true},
		{src: `json.data.items[-3].id == 1`, r: ok, cause: Missing, msg: `json.data.items[-3].id == 1: got nothing (json.data.items has 2 elements)`},
		{src: `json.data.items[5].id == 1`, r: ok, cause: Missing, msg: `json.data.items[5].id == 1: got nothing (json.data.items has 2 elements)`},
		{src: `json.empty[0] == 1`, r: ok, cause: Missing, msg: `json.empty[0] == 1: got nothing (json.empty has no elements)`},
		{src: `json.missing == 1`, r: ok, cause: Missing, msg: `json.missing == 1: got nothing (no field "missing")`, source: SourceJSON, actual: `nothing (no field "missing")`},
		{src: `json.missing != "a"`, r: ok, cause: Missing, msg: `json.missing != "a": got nothing (no field "missing")`},
		{src: `json.data.nope.x == 1`, r: ok, cause: Missing, msg: `json.data.nope.x == 1: got nothing (no field "nope" in json.data)`},
		{src: `json.data.nope == 1`, r: ok, cause: Missing, msg: `json.data.nope == 1: got nothing (no field "nope" in json.data)`},
		{src: `json.status.x == 1`, r: ok, cause: Missing, msg: `json.status.x == 1: got nothing (json.status is a string, not an object)`},
		{src: `json.data[0] == 1`, r: ok, cause: Missing, msg: `json.data[0] == 1: got nothing (json.data is an object, not an array)`},
		{src: `json.x == 1`, r: func() *Response { return resp(200, `[1,2]`, 0) }, cause: Missing, msg: `json.x == 1: got nothing (json is an array, not an object)`},
		{src: `json[1] == 2`, r: func() *Response { return resp(200, `[1,2]`, 0) }, ok: true},
		{src: `json == 42`, r: func() *Response { return resp(200, ` 42 `, 0) }, ok: true},
		{src: `json == "x"`, r: func() *Response { return resp(200, `"x"`, 0) }, ok: true},

		// json: invalid bodies
		{src: `json.status == "success"`, r: html, cause: InvalidJSON, msg: `json.status == "success": body is not JSON (starts "<html><body>Bad gat…")`, source: SourceJSON, actual: `"<html><body>Bad gat…"`},
		{src: `json.status == "success"`, r: empty, cause: InvalidJSON, msg: `json.status == "success": body is not JSON (it is empty)`},
		{src: `json.status == "success"`, r: truncated, cause: InvalidJSON, msg: `json.status == "success": body is not JSON (starts "{\"status\": \"succ")`},
		{src: `!exists(json.error)`, r: html, cause: InvalidJSON},
		{src: `exists(json.error)`, r: html, cause: InvalidJSON},
		{src: `status == json.code`, r: html, cause: InvalidJSON, source: SourceJSON},

		// contains, matches, in on JSON
		{src: `json.tags contains "y"`, r: ok, ok: true},
		{src: `json.tags contains "q"`, r: ok, cause: Mismatch, msg: `json.tags contains "q": got ["x","y","z"]`},
		{src: `json.tags !contains "q"`, r: ok, ok: true},
		{src: `json.mixed contains null`, r: ok, ok: true},
		{src: `json.mixed contains "1"`, r: ok, ok: true},
		{src: `json.mixed contains 1.0`, r: ok, ok: true},
		{src: `json.mixed contains true`, r: ok, cause: Mismatch},
		{src: `json.mixed contains json.data.items[0].id`, r: ok, ok: true},
		{src: `json.mixed contains json.a`, r: ok, cause: Mismatch},
		{src: `json.data contains "items"`, r: ok, ok: true},
		{src: `json.data contains "zzz"`, r: ok, cause: Mismatch, msg: `json.data contains "zzz": got {"items":[{"id":1,"name":"a"},{"id":2,"name":"b"}],"total":2}`},
		{src: `json contains "status"`, r: ok, ok: true},
		{src: `json.data contains 1`, r: ok, cause: WrongType, msg: `json.data contains 1: got {"items":[{"id":1,"name":"a"},{"id":2,"name":"b"}],"total":2} (an object, not an array)`},
		{src: `json.count contains 1`, r: ok, cause: WrongType, msg: `json.count contains 1: got 3 (a number, not a string, an array or an object)`},
		{src: `json.status contains "succ"`, r: ok, ok: true},
		{src: `json.status contains 1`, r: ok, cause: WrongType, msg: `json.status contains 1: got "success" (a string, not an array)`, source: SourceJSON},
		{src: `json.status contains json.count`, r: ok, cause: WrongType, msg: `json.status contains json.count: got 3 (a number, not a string)`},
		{src: `json.status matches "^succ"`, r: ok, ok: true},
		{src: `json.count matches "3"`, r: ok, cause: WrongType, msg: `json.count matches "3": got 3 (a number, not a string)`},
		{src: `json.status in ["success", "done"]`, r: ok, ok: true},
		{src: `json.count in [1, 2, 3]`, r: ok, ok: true},
		{src: `json.count in ["3"]`, r: ok, cause: WrongType, msg: `json.count in ["3"]: got 3 (a number, not a string)`},
		{src: `json.count in ["3", true]`, r: ok, cause: WrongType, msg: `json.count in ["3", true]: got 3 (a number, not a string or a boolean)`},
		{src: `json.count in ["3", null]`, r: ok, cause: Mismatch, msg: `json.count in ["3", null]: got 3`},
		{src: `json.count !in [1, 2]`, r: ok, ok: true},

		// functions
		{src: `len(json.tags) == 3`, r: ok, ok: true},
		{src: `len(json.data) == 2`, r: ok, ok: true},
		{src: `len(json.status) == 7`, r: ok, ok: true},
		{src: `len(json.empty) == 0`, r: ok, ok: true},
		{src: `len(json.obj) == 0`, r: ok, ok: true},
		{src: `len(json.名前) == 9`, r: ok, ok: true},
		{src: `len(json) > 5`, r: ok, ok: true},
		{src: `len(json.count) == 1`, r: ok, cause: WrongType, msg: `len(json.count) == 1: got 3 (a number, not a string, an array or an object)`},
		{src: `len(json.tags) > 5`, r: ok, cause: Mismatch, msg: `len(json.tags) > 5: got 3`, source: SourceJSON},
		{src: `len(json.missing) > 5`, r: ok, cause: Missing, msg: `len(json.missing) > 5: got nothing (no field "missing")`},
		{src: `lower(json.status) == "success"`, r: ok, ok: true},
		{src: `upper(json.status) == "SUCCESS"`, r: ok, ok: true},
		{src: `trim(json.s) == "Padded Text"`, r: ok, ok: true},
		{src: `lower(trim(json.s)) == "padded text"`, r: ok, ok: true},
		{src: `lower(json.count) == "3"`, r: ok, cause: WrongType, msg: `lower(json.count) == "3": got 3 (a number, not a string)`},
		{src: `exists(json.status)`, r: ok, ok: true},
		{src: `exists(json.nothing)`, r: ok, ok: true},
		{src: `exists(json.data.items[1])`, r: ok, ok: true},
		{src: `exists(json.missing)`, r: ok, cause: Missing, msg: `exists(json.missing): got nothing (no field "missing")`, source: SourceJSON},
		{src: `!exists(json.missing)`, r: ok, ok: true},
		{src: `not exists(json.missing)`, r: ok, ok: true},
		{src: `!exists(json.data)`, r: ok, cause: Mismatch, msg: `!exists(json.data): got {"items":[{"id":1,"name":"a"},{"id":2,"name":"b"}],"total":2}`},
		{src: `exists(json.missing) == false`, r: ok, ok: true},
		{src: `match(body, "\"status\":\"(\\w+)\"") == "success"`, r: ok, ok: true},
		{src: "match(body, `\"count\":(\\d+)`) == \"3\"", r: ok, ok: true},
		{src: `match(json.status, "succ") == "succ"`, r: ok, ok: true},
		{src: `match(json.status, "x(y)?") == ""`, r: func() *Response { return resp(200, `{"status":"x"}`, 0) }, ok: true},
		{src: `match(body, "zzz") == "a"`, r: ok, cause: Missing, msg: `match(body, "zzz") == "a": got nothing (no match for "zzz")`, source: SourceBody},
		{src: `exists(match(body, "zzz"))`, r: ok, cause: Missing},
		{src: `!exists(match(body, "zzz"))`, r: ok, ok: true},
		{src: `exists(match(header.X-Request-Id, "^a"))`, r: ok, ok: true},

		// big numbers
		{src: `json.big == 12345678901234567890`, r: ok, ok: true},
		{src: `json.big != 12345678901234567891`, r: ok, ok: true},
		{src: `json.big == 12345678901234567891`, r: ok, cause: Mismatch, msg: `json.big == 12345678901234567891: got 12345678901234567890`},
		{src: `json.big > 12345678901234567889`, r: ok, ok: true},
		{src: `json.big > 9223372036854775807`, r: ok, ok: true},
		{src: `json.bigneg < -9223372036854775808`, r: ok, ok: true},
		{src: `json.bigneg < json.big`, r: ok, ok: true},
		{src: `json.large == 42000000`, r: ok, ok: true},
		{src: `json.large != 42000000`, r: ok, cause: Mismatch, msg: `json.large != 42000000: got 42000000`},
		{src: `json.big == 1.2345678901234567e19`, r: ok, ok: true},
		{src: `json.big == 0012345678901234567890`, r: ok, ok: true},
		{src: `json.count == 000000000000000000003`, r: ok, ok: true}, // leading zeros do not make it big
		{src: `json.nothing != -00000000000000000000000`, r: ok, ok: true},
		{src: `json.ratio == 5e-1`, r: ok, ok: true},
		{src: `json.n == 9007199254740993`, r: func() *Response { return resp(200, `{"n":9007199254740993}`, 0) }, ok: true},
		{src: `json.n != 9007199254740992`, r: func() *Response { return resp(200, `{"n":9007199254740993}`, 0) }, ok: true},

		// two operands from the response
		{src: `json.count == len(json.tags)`, r: ok, ok: true},
		{src: `json.data.total == len(json.data.items)`, r: ok, ok: true},
		{src: `json.count == json.count_s`, r: ok, cause: WrongType, msg: `json.count == json.count_s: got 3 vs "3" (a number and a string)`, source: SourceJSON},
		{src: `status == json.count`, r: ok, cause: Mismatch, msg: `status == json.count: got 200 vs 3`, source: SourceStatus | SourceJSON},
		{src: `json.data == json.data`, r: ok, ok: true},
		{src: `json.mixed[3] == json.a`, r: ok, cause: Mismatch},
		{src: `header.X-Request-Id == json.status`, r: ok, cause: Mismatch, msg: `header.X-Request-Id == json.status: got "abc" vs "success"`},
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range checkCases() {
		e, err := Compile(tc.src)
		if err != nil {
			t.Errorf("Compile(%q): %v", tc.src, err)
			continue
		}
		f, ok := e.Check(tc.r())
		if ok != tc.ok {
			t.Errorf("%q: ok = %v, want %v (%s)", tc.src, ok, tc.ok, f.Message)
			continue
		}
		if ok {
			if f != (Failure{}) {
				t.Errorf("%q: passed with a non-zero Failure %+v", tc.src, f)
			}
			continue
		}
		if f.Cause != tc.cause {
			t.Errorf("%q: cause = %d, want %d (%s)", tc.src, f.Cause, tc.cause, f.Message)
		}
		if tc.msg != "" && f.Message != tc.msg {
			t.Errorf("%q:\n got message %s\nwant message %s", tc.src, f.Message, tc.msg)
		}
		if tc.actual != "" && f.Actual != tc.actual {
			t.Errorf("%q: Actual = %s, want %s", tc.src, f.Actual, tc.actual)
		}
		if tc.source != 0 && f.Source != tc.source {
			t.Errorf("%q: Source = %b, want %b", tc.src, f.Source, tc.source)
		}
		if f.Expectation != strings.TrimSpace(tc.src) {
			t.Errorf("%q: Expectation = %q", tc.src, f.Expectation)
		}
		if f.Cause != InvalidJSON && f.Message != f.Expectation+": got "+f.Actual {
			t.Errorf("%q: Message %q is not Expectation: got Actual", tc.src, f.Message)
		}
		if f.Source == 0 || f.Source&^e.Sources() != 0 {
			t.Errorf("%q: Source %b not within Sources %b", tc.src, f.Source, e.Sources())
		}
	}
}

// TestFailureDoesNotAliasBody: the runner reuses the body buffer, so a
// Failure kept after the next response must not change with it.
func TestFailureDoesNotAliasBody(t *testing.T) {
	r := resp(200, `{"n":12345,"s":"abc"}`, 0)
	f1, _ := MustCompile(`json.n == 1`).Check(r)
	f2, _ := MustCompile(`json.s == "x"`).Check(r)
	v, _ := CompileValue(`json.s`)
	s, _ := v.Eval(r)
	n, _ := MustValue(t, `json.n`).Eval(r)
	for i := range r.Body {
		r.Body[i] = 'Z'
	}
	if f1.Actual != "12345" || f2.Actual != `"abc"` || s != "abc" || n != "12345" {
		t.Errorf("values changed with the body: %q %q %q %q", f1.Actual, f2.Actual, s, n)
	}
}

func MustValue(t *testing.T, src string) *Value {
	t.Helper()
	v, err := CompileValue(src)
	if err != nil {
		t.Fatalf("CompileValue(%q): %v", src, err)
	}
	return v
}

func TestCompileErrors(t *testing.T) {
	deep := strings.Repeat("len(", 40) + "body" + strings.Repeat(")", 40) + " > 1"
	tests := []struct {
		src    string
		offset int
		msg    string // exact, or a prefix when it ends in "…"
	}{
		{``, 0, `empty expectation`},
		{`   `, 0, `empty expectation`},
		{`stauts == 200`, 0, `unknown operand "stauts" (did you mean "status"?)`},
		{`Status == 200`, 0, `unknown operand "Status" (did you mean "status"?)`},
		{`code == 200`, 0, `unknown operand "code" (did you mean "status"?)`},
		{`latency < 2s`, 0, `unknown operand "latency" (did you mean "duration"?)`},
		{`heder.X == "a"`, 0, `unknown operand "heder" (did you mean "header"?)`},
		{`foo == 1`, 0, `unknown operand "foo" (operands are status, duration, body, header.<name>, headers.<name>, json.<path>, cookie.<name>, and functions len, lower, upper, trim, exists, match, html, count)`},
		{`json.status == success`, 15, `unknown operand "success" (strings need quotes: "success")`},
		{`json.status = "x"`, 12, `expected an operator after json.status, found "=" (did you mean "=="?)`},
		{`json.status "x"`, 12, `expected an operator after json.status, found "x"`},
		{`status 200`, 7, `expected an operator after status, found "200"`},
		{`json.x is 1`, 7, `expected an operator after json.x, found "is" (did you mean "=="?)`},
		{`json.x =~ "a"`, 7, `expected an operator after json.x, found "=~" (did you mean "matches"?)`},
		{`json.x !~ "a"`, 7, `expected an operator after json.x, found "!~" (did you mean "!matches"?)`},
		{`json.x <> 1`, 7, `expected an operator after json.x, found "<>" (did you mean "!="?)`},
		{`json.x not 1`, 7, `expected an operator after json.x, found "not" (after "not" expected contains, matches or in)`},
		{`json.x ! 1`, 7, `expected an operator after json.x, found "!" (after "!" expected contains, matches or in)`},
		{`json .x == 1`, 5, `expected an operator after json, found ".x"`},
		{`status == 200 201`, 14, `unexpected "201" after status == 200`},
		{`status == 200 && body contains "x"`, 14, `unexpected "&&": an expectation is a single check; write several expectations (a list) instead of joining them`},
		{`status == 200 and json.ok`, 14, `unexpected "and": an expectation is a single check; write several expectations (a list) instead of joining them`},
		{`status == 200 || status == 201`, 14, `unexpected "||": …`},
		{`json.ok && json.x`, 8, `unexpected "&&": …`},
		{`len(body)) > 1`, 9, `unexpected ")"`},
		{`len(body) > 1)`, 13, `unexpected ")"`},
		{`)`, 0, `unexpected ")"`},
		{`status == )`, 10, `unexpected ")"`},
		{`status ==`, 9, `expected a value after ==, found end of expectation`},
		{`== 200`, 0, `expected a value, found "=="`},
		{`json.x == "abc`, 10, `unterminated string`},
		{`json.x == 'abc`, 10, `unterminated string`},
		{"json.x == `abc", 10, `unterminated string`},
		{`json.x == "a\qb"`, 12, "invalid escape \"\\\\q\" in string (write regular expressions in backquotes: `\\d+`)"},
		{`json.x matches "(a"`, 15, "invalid regular expression: missing closing ): `(a`"},
		{`json.x matches json.y`, 15, `matches needs a regular expression in quotes or backquotes, found json.y`},
		{`match(body, "(") == "a"`, 12, "invalid regular expression: missing closing ): `(`"},
		{`match(body) == "a"`, 10, `expected "," and a regular expression in match(), found ")"`},
		{`match(body, status) == "a"`, 12, `match() needs a regular expression in quotes or backquotes, found status`},
		{`status == "200"`, 10, `type mismatch: status is a number but "200" is a string (did you mean status == 200?)`},
		{`status < "300"`, 9, `type mismatch: status is a number but "300" is a string (did you mean status < 300?)`},
		{`"200" == status`, 0, `type mismatch: status is a number but "200" is a string (did you mean 200 == status?)`},
		{`status == "ok"`, 10, `type mismatch: status is a number but "ok" is a string`},
		{`duration < 2`, 11, `type mismatch: duration is a duration but 2 is a number (write a unit: 2s or 2000ms)`},
		{`duration < 0.5`, 11, `type mismatch: duration is a duration but 0.5 is a number (write a unit: 0.5s or 500ms)`},
		{`duration < 250`, 11, `type mismatch: duration is a duration but 250 is a number (write a unit: 250ms or 250s)`},
		{`status < 2s`, 9, `type mismatch: status is a number but 2s is a duration`},
		{`status == true`, 10, `type mismatch: status is a number but true is a boolean`},
		{`header.X == 5`, 12, `type mismatch: header.X is a string but 5 is a number (did you mean header.X == "5"?)`},
		{`header.X == null`, 12, `header.X is a string and is never null (to check that it is absent, write !exists(header.X))`},
		{`status == null`, 10, `status is a number and is never null`},
		{`exists(json.x) == "true"`, 18, `type mismatch: exists(json.x) is a boolean but "true" is a string (did you mean exists(json.x) == true?)`},
		{`status == body`, 10, `type mismatch: status is a number but body is a string`},
		{`json.x > 2s`, 9, `type mismatch: json.x is a JSON value but 2s is a duration; JSON has no durations (compare with a number)`},
		{`json.x == 2s`, 10, `type mismatch: json.x is a JSON value but 2s is a duration; JSON has no durations (compare with a number)`},
		{`body < 5`, 0, `< compares numbers or durations, but body is a string`},
		{`json.x < "a"`, 9, `< compares numbers or durations, but "a" is a string`},
		{`exists(json.x) >= true`, 0, `>= compares numbers or durations, but exists(json.x) is a boolean`},
		{`status contains "2"`, 0, `contains needs a string, or a JSON array or object, on its left, but status is a number`},
		{`body contains 5`, 14, `body is a string, so contains needs a string on its right, but 5 is a number (did you mean body contains "5"?)`},
		{`json.x contains 2s`, 16, `JSON has no durations: json.x cannot contain 2s`},
		{`status matches "2.."`, 0, `matches needs a string on its left, but status is a number`},
		{`status in 200`, 10, `expected a list after in, like [200, 201], found "200"`},
		{`status in []`, 11, `empty list: in needs at least one value`},
		{`status in [200,]`, 15, `unexpected "]"`},
		{`status in [200 201]`, 15, `expected "," or "]" in the list, found "201"`},
		{`status in [200, json.x]`, 16, `a list holds only literals (numbers, strings, durations, true, false, null), not json.x`},
		{`status in [200, "201"]`, 16, `type mismatch: status is a number but "201" is a string (did you mean status in [200, 201]?)`},
		{`status == [200, 201]`, 10, `a list can only follow in (did you mean status in [200, 201]?)`},
		{`null in [1]`, 0, `null cannot be in a list; compare with == null`},
		{`len(status) > 1`, 4, `len() takes a string or a JSON value, but status is a number`},
		{`lower(status) == "a"`, 6, `lower() takes a string, but status is a number`},
		{`exists(status)`, 7, `exists() takes a JSON path, a header, a cookie, match(...) or html(...), not status`},
		{`exists(json)`, 7, `exists() takes a JSON path, a header, a cookie, match(...) or html(...), not json`},
		{`len(body, body) == 1`, 8, `len() takes one argument`},
		{`len(body == 1`, 9, `expected ")" to close len(, found "=="`},
		{`len(`, 4, `expected a value in len(, found end of expectation`},
		{`lenn(body) == 1`, 0, `unknown function "lenn" (did you mean "len"?)`},
		{`size(body) == 1`, 0, `unknown function "size" (did you mean "len"?)`},
		{`status(1) == 1`, 0, `status is not a function`},
		{`len == 1`, 0, `len is a function: write len(...)`},
		{`status`, 0, `status is a number, not a condition: compare it with ==, <, >, in …`},
		{`body`, 0, `body is a string, not a condition: compare it with ==, contains, matches or in`},
		{`header.X`, 0, `header.X is a string, not a condition (did you mean exists(header.X)?)`},
		{`true`, 0, `true alone is a constant, not a check; compare a part of the response, e.g. status == 200`},
		{`!status`, 1, `status is a number, not a condition: compare it with ==, <, >, in …`},
		{`!json.ok == true`, 9, `unexpected "==": ! negates a condition and cannot be followed by an operator`},
		{`not json.ok == true`, 12, `unexpected "==": not negates a condition and cannot be followed by an operator`},
		{`1 == 1`, 0, `this compares two constants; one side must read the response (status, duration, body, header.<name>, json.<path>)`},
		{`len("abc") == 3`, 0, `this compares two constants; …`},
		{`json.`, 5, `expected a field name after "json.", found end of expectation (use json["..."] for names with other characters)`},
		{`json.a. == 1`, 7, `expected a field name after "json.a.", found "==" (use json["..."] for names with other characters)`},
		{`json.a[`, 7, `expected a field name in quotes or an array index, found end of expectation`},
		{`json.a[1.5] == 1`, 7, `an array index must be an integer, found "1.5"`},
		{`json.a["x" == 1`, 11, `expected "]", found "=="`},
		{`json.a[99999999999] == 1`, 7, `array index 99999999999 is too large`},
		{`header == "x"`, 0, `header needs a name: header.Content-Type or header["content-type"]`},
		{`header. == "x"`, 7, `expected a header name after "header.", found "=="`},
		{`header["bad name"] == "x"`, 7, `invalid header name "bad name"`},
		{`header[5] == "x"`, 7, `expected a header name in quotes, found "5"`},
		{`header.X.Y == "a"`, 8, `a header has no fields`},
		{`body.status == 1`, 4, `body has no fields (did you mean json.status?)`},
		{`status.x == 1`, 6, `status has no fields`},
		{`duration < 2x`, 11, `invalid duration "2x" (durations look like 250ms, 2s, 1.5s, 1m30s)`},
		{`duration < -2s`, 11, `a duration cannot be negative`},
		{`status == 1.2.3`, 10, `invalid number "1.2.3"`},
		{`status == 1e`, 10, `invalid number "1e"`},
		{`status == 1e999`, 10, `number 1e999 is out of range`},
		{`status == @`, 10, `expected a value after ==, found "@"`},
		{deep, 128, `too deeply nested`},
	}
	for _, tc := range tests {
		_, err := Compile(tc.src)
		if err == nil {
			t.Errorf("Compile(%q) succeeded, want error %q", tc.src, tc.msg)
			continue
		}
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Compile(%q): error %T is not a *SyntaxError", tc.src, err)
			continue
		}
		if prefix, ok := strings.CutSuffix(tc.msg, "…"); ok && !strings.HasSuffix(prefix, "…") {
			if !strings.HasPrefix(se.Msg, prefix) {
				t.Errorf("Compile(%q):\n got %s\nwant %s", tc.src, se.Msg, tc.msg)
			}
		} else if se.Msg != tc.msg {
			t.Errorf("Compile(%q):\n got %s\nwant %s", tc.src, se.Msg, tc.msg)
		}
		if se.Offset != tc.offset {
			t.Errorf("Compile(%q): offset %d, want %d (%s)", tc.src, se.Offset, tc.offset, se.Msg)
		}
	}
}

func TestMustCompilePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustCompile of a bad expectation did not panic")
		}
	}()
	MustCompile(`status ==`)
}

func TestStringAndSources(t *testing.T) {
	tests := []struct {
		src     string
		sources Source
	}{
		{`  status == 200  `, SourceStatus},
		{`duration < 1s`, SourceDuration},
		{`body contains "x"`, SourceBody},
		{`len(body) > 1`, SourceBody},
		{`header.X == "a"`, SourceHeader},
		{`exists(header.X)`, SourceHeader},
		{`json.x == 1`, SourceJSON},
		{`!exists(json.x)`, SourceJSON},
		{`json.x == header.Y`, SourceJSON | SourceHeader},
		{`status == len(json.items)`, SourceStatus | SourceJSON},
		{`match(header.X, "a") == "a"`, SourceHeader},
		{`json.x in [1, 2]`, SourceJSON},
	}
	for _, tc := range tests {
		e := MustCompile(tc.src)
		if e.String() != strings.TrimSpace(tc.src) {
			t.Errorf("String() = %q", e.String())
		}
		if e.Sources() != tc.sources {
			t.Errorf("%q: Sources() = %b, want %b", tc.src, e.Sources(), tc.sources)
		}
	}
	v := MustValue(t, " match(header.Location, `id=(\\d+)`) ")
	if v.String() != "match(header.Location, `id=(\\d+)`)" || v.Sources() != SourceHeader {
		t.Errorf("Value: %q %b", v.String(), v.Sources())
	}
}

// TestFormatRoundTrip: the canonical form of every expectation in the tests
// compiles back to the same canonical form, and to the same verdicts.
func TestFormatRoundTrip(t *testing.T) {
	for _, tc := range checkCases() {
		e := MustCompile(tc.src)
		canon := e.format()
		e2, err := Compile(canon)
		if err != nil {
			t.Errorf("%q formats as %q, which does not compile: %v", tc.src, canon, err)
			continue
		}
		if e2.format() != canon {
			t.Errorf("%q: format %q then %q", tc.src, canon, e2.format())
		}
		f1, ok1 := e.Check(tc.r())
		f2, ok2 := e2.Check(tc.r())
		if ok1 != ok2 || f1.Cause != f2.Cause || f1.Actual != f2.Actual {
			t.Errorf("%q and %q disagree: %v %+v / %v %+v", tc.src, canon, ok1, f1, ok2, f2)
		}
	}
}

func TestValueEval(t *testing.T) {
	ok := okResp()
	tests := []struct {
		src  string
		r    *Response
		want string
	}{
		{`json.status`, ok, "success"},
		{`json.count`, ok, "3"},
		{`json.ratio`, ok, "0.5"},
		{`json.big`, ok, "12345678901234567890"},
		{`json.large`, ok, "42000000"},
		{`json.f`, ok, "1.0"},
		{`json.ok`, ok, "true"},
		{`json.off`, ok, "false"},
		{`json.nothing`, ok, "null"},
		{`json.tags`, ok, `["x","y","z"]`},
		{`json.data.items[0]`, ok, `{"id":1,"name":"a"}`},
		{`json.data.items[-1].name`, ok, `b`},
		{`json.esc`, ok, "a\"b\\n"},
		{`json.名前`, ok, "テスト"},
		{`json["weird.key"]`, ok, "w"},
		{`json`, resp(200, " {\"a\": 1}\n", 0), `{"a": 1}`},
		{`header.X-Request-Id`, ok, "abc"},
		{`header["x-request-id"]`, ok, "abc"},
		{`header.Set-Cookie`, ok, "a=1"},
		{`status`, ok, "200"},
		{`duration`, ok, "150ms"},
		{`duration`, htmlResp(), "2.3144s"},
		{`body`, htmlResp(), htmlBody},
		{`len(json.tags)`, ok, "3"},
		{`len(body)`, htmlResp(), "37"},
		{`match(body, "\"status\":\"(\\w+)\"")`, ok, "success"},
		{`match(body, "Bad \\w+")`, htmlResp(), "Bad gateway"},
		{`lower(header.Content-Type)`, ok, "application/json; charset=utf-8"},
		{`upper(json.status)`, ok, "SUCCESS"},
		{`trim(json.s)`, ok, "Padded Text"},
		{`exists(json.token)`, ok, "false"},
		{`exists(json.status)`, ok, "true"},
	}
	for _, tc := range tests {
		v := MustValue(t, tc.src)
		got, err := v.Eval(tc.r)
		if err != nil || got != tc.want {
			t.Errorf("%q: Eval = %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
}

func TestValueEvalErrors(t *testing.T) {
	ok := okResp()
	tests := []struct {
		src   string
		r     *Response
		cause Cause
		msg   string
	}{
		{`json.id`, ok, Missing, `json.id: no such field`},
		{`json.data.id`, ok, Missing, `json.data.id: no such field`},
		{`json.data.x.y`, ok, Missing, `json.data.x.y: no such field (no field "x" in json.data)`},
		{`json.status.y`, ok, Missing, `json.status.y: no such field (json.status is a string, not an object)`},
		{`json.data.items[9]`, ok, Missing, `json.data.items[9]: no such element (json.data.items has 2 elements)`},
		{`header.Location`, ok, Missing, `header.Location: no such header`},
		{`match(body, "zzz")`, ok, Missing, `match(body, "zzz"): no match`},
		{`json.id`, htmlResp(), InvalidJSON, `json.id: body is not JSON (starts "<html><body>Bad gat…")`},
		{`json.id`, resp(200, "", 0), InvalidJSON, `json.id: body is not JSON (it is empty)`},
		{`lower(json.count)`, ok, WrongType, `json.count: got 3 (a number, not a string)`},
		{`len(json.ok)`, ok, WrongType, `json.ok: got true (a boolean, not a string, an array or an object)`},
		{`upper(json.missing)`, ok, Missing, `json.missing: no such field`},
	}
	for _, tc := range tests {
		v := MustValue(t, tc.src)
		got, err := v.Eval(tc.r)
		var ee *EvalError
		if !errors.As(err, &ee) {
			t.Errorf("%q: Eval = %q, %v; want an *EvalError", tc.src, got, err)
			continue
		}
		if ee.Cause != tc.cause || ee.Msg != tc.msg {
			t.Errorf("%q: error %d %q, want %d %q", tc.src, ee.Cause, ee.Msg, tc.cause, tc.msg)
		}
	}
}

func TestCompileValueErrors(t *testing.T) {
	tests := []struct {
		src    string
		offset int
		msg    string
	}{
		{``, 0, `empty value`},
		{`json.token == "x"`, 11, `a capture is a value, not a check: unexpected "=="`},
		{`json.items contains 1`, 11, `a capture is a value, not a check: unexpected "contains"`},
		{`!exists(json.x)`, 0, `a capture is a value, not a check: unexpected "!"`},
		{`"abc"`, 0, `"abc" is a constant; a capture must read the response (status, duration, body, header.<name>, json.<path>)`},
		{`json.token json.id`, 11, `unexpected "json.id" after json.token`},
		{`jsn.token`, 0, `unknown operand "jsn" (did you mean "json"?)`},
	}
	for _, tc := range tests {
		_, err := CompileValue(tc.src)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("CompileValue(%q): %v, want a *SyntaxError", tc.src, err)
			continue
		}
		if se.Msg != tc.msg || se.Offset != tc.offset {
			t.Errorf("CompileValue(%q): %d %q, want %d %q", tc.src, se.Offset, se.Msg, tc.offset, tc.msg)
		}
	}
}

// TestResetClearsJSONCache: validity is computed once per response and
// cached; Reset forgets it. The second body has the same buffer and length,
// so only Reset tells the cache apart.
func TestResetClearsJSONCache(t *testing.T) {
	e := MustCompile(`json.status == "ok"`)
	html := []byte(htmlBody)
	jsonBody := []byte(`{"status":"ok"}`)
	jsonBody = append(jsonBody, strings.Repeat(" ", len(html)-len(jsonBody))...)

	r := &Response{Status: 200, Body: append(make([]byte, 0, 64), html...)}
	if f, _ := e.Check(r); f.Cause != InvalidJSON {
		t.Fatalf("HTML body: %+v", f)
	}
	if r.json.state != jsonInvalid {
		t.Fatalf("cache state %d after validating", r.json.state)
	}

	// Overwritten in place without Reset: the cached verdict is (by design)
	// reused.
	copy(r.Body, jsonBody)
	if f, _ := e.Check(r); f.Cause != InvalidJSON {
		t.Fatalf("without Reset the cache should still say invalid: %+v", f)
	}

	r.Reset()
	if r.json != (jsonCache{}) || len(r.Body) != 0 || cap(r.Body) != 64 {
		t.Fatalf("Reset left %+v, len %d cap %d", r.json, len(r.Body), cap(r.Body))
	}
	r.Status = 200
	r.Body = append(r.Body, jsonBody...)
	if f, ok := e.Check(r); !ok {
		t.Fatalf("after Reset: %s", f.Message)
	}

	// A new Body slice (without Reset) is noticed.
	r.Body = []byte("not json")
	if f, _ := e.Check(r); f.Cause != InvalidJSON {
		t.Fatalf("replaced body: %+v", f)
	}
}

// TestJSONValidatedOnce: several JSON expectations on one response validate
// the body once.
func TestJSONValidatedOnce(t *testing.T) {
	r := okResp()
	for _, src := range []string{`json.status == "success"`, `json.count == 3`, `exists(json.data)`} {
		MustCompile(src).Check(r)
		if r.json.state != jsonValid || r.json.n != len(r.Body) {
			t.Fatalf("after %s: cache %+v", src, r.json)
		}
	}
}

func TestZeroAllocPass(t *testing.T) {
	r := okResp()
	for _, src := range []string{
		`status == 200`,
		`status in [200, 201, 204]`,
		`duration < 2s`,
		`header.Content-Type contains "json"`,
		`header["x-request-id"] == "abc"`,
		`exists(header.X-Request-Id)`,
		`!exists(header.X-Nope)`,
		`json.status == "success"`,
		`json.data.items[1].id >= 2`,
		`json.data.items[-1].id == 2`,
		`len(json.tags) == 3`,
		`json.tags contains "z"`,
		`json.big == 12345678901234567890`,
		`!exists(json.nope)`,
		`body contains "success"`,
		`body matches "succ[e]ss"`,
	} {
		e := MustCompile(src)
		if f, ok := e.Check(r); !ok {
			t.Fatalf("%s: %s", src, f.Message)
		}
		if raceEnabled && strings.Contains(src, "matches") {
			continue // regexp's pooled matcher: see raceEnabled
		}
		if n := testing.AllocsPerRun(200, func() { e.Check(r) }); n != 0 {
			t.Errorf("%s: %v allocations per passing check, want 0", src, n)
		}
	}
	// Including validation of a fresh body.
	e := MustCompile(`json.status == "success"`)
	if n := testing.AllocsPerRun(200, func() {
		r.json = jsonCache{}
		e.Check(r)
	}); n != 0 {
		t.Errorf("json check with validation: %v allocations, want 0", n)
	}
}

// TestConcurrentUse: an Expectation or Value is shared by every run of a
// flow; each goroutine has its own Response. Run with -race.
func TestConcurrentUse(t *testing.T) {
	e := MustCompile(`json.data.items[-1].name == "b"`)
	m := MustCompile(`body matches "succ(e)ss"`)
	v := MustValue(t, `match(body, "\"status\":\"(\\w+)\"")`)
	done := make(chan string)
	for i := range 8 {
		go func() {
			msg := ""
			for range 200 {
				r := okResp()
				if i%2 == 1 {
					r = htmlResp()
				}
				_, ok1 := e.Check(r)
				_, ok2 := m.Check(r)
				s, err := v.Eval(r)
				if ok1 != (i%2 == 0) || ok2 != (i%2 == 0) || (err == nil) != (i%2 == 0) || (err == nil && s != "success") {
					msg = "wrong verdict"
				}
			}
			done <- msg
		}()
	}
	for range 8 {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}
