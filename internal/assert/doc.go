// # The expectation language
//
// An expectation is one line: a comparison, or a lone condition. A list of
// expectations (as in a flow's expect:) holds when every one does.
//
//	status == 200
//	status in [200, 201, 204]
//	duration < 2s
//	header.Content-Type contains "json"
//	json.status == "success"
//	json.data.items[0].id != null
//	len(json.data.items) > 0
//	exists(json.token)
//	!exists(json.error)
//	body !contains "Exception"
//	match(body, `ref=(\w+)`) == "abc123"
//	html("input[name=csrf]", "value") != ""
//	count(html("li.item")) == 3
//	headers.Set-Cookie contains "sid="
//	cookie.sid != ""
//
// Operands:
//
//	status                    the status code (a number)
//	duration                  the response time (a duration)
//	body                      the body as text (a string)
//	header.Content-Type       a header (a string); names are case-insensitive;
//	header["content-type"]    if repeated, the first value
//	headers.Set-Cookie        every value of a header, one per line (a string)
//	cookie.sid                a cookie the runner holds for the response
//	cookie["connect.sid"]     (Response.Cookies); names are case-sensitive
//	json                      the body parsed as JSON (the whole document)
//	json.data.items[0].id     a JSON path: .key, ["any key"], [index],
//	json["weird.key"]         [-1] for the last element
//	json.items[-1]
//
// Literals: numbers (200, -1, 3.5, 1e3), strings ("double" with Go escapes,
// 'single' likewise, `back` raw, for regular expressions), true, false,
// null, durations (250ms, 2s, 1.5s, 1m30s; Go syntax, not negative), and
// lists ([200, 201]) after in only.
//
// Functions:
//
//	len(x)        bytes of a string, elements of a JSON array, keys of an object
//	lower(x)      a string lower-cased; upper(x), trim(x) likewise
//	exists(x)     whether a JSON path, header, cookie, match(...) or
//	              html(...) is present
//	match(x, re)  the first capture group of regular expression re in
//	              string x, or the whole match if re has no group; missing if
//	              x does not match
//	html(sel)     the text of the first element of the body (parsed as
//	              HTML) that CSS selector sel matches, white space folded;
//	              missing if none does
//	html(sel, a)  its attribute a; missing if it has none
//	count(x)      the values of a header (count(header.Set-Cookie)), or the
//	              elements html(sel) matches; 0 if none
//
// Operators: == != < <= > >= contains matches in, and the negations
// !contains !matches !in (or: not contains, not matches, not in). A lone
// boolean operand is a condition: exists(json.token), json.ok (json.ok ==
// true); ! or not negates it: !exists(json.error). Operator words are only
// operators between operands, so json.contains is a field.
//
// Types. status, len() are numbers; duration is a duration; body, headers,
// lower, upper, trim and match() are strings; exists() is a boolean. These
// are checked when the flow loads: status == "200" and duration < 2 are
// errors (write 200, and 2s or 2000ms). JSON values are checked when the
// response arrives; comparing different types fails as a wrong type (json.n
// == 3 when n is "3"), except that null equals only null and differs from
// everything. Numbers compare numerically (1 == 1.0) and large integers
// exactly.
//
//	== !=           any two values of the same type; JSON arrays and objects
//	                compare deeply
//	< <= > >=       numbers, or durations
//	contains        substring of a string; element of a JSON array; key of a
//	                JSON object
//	matches         string against a regular expression literal (RE2 syntax,
//	                unanchored: use ^ and $)
//	in              equal to an element of a list literal
//
// Absence. A JSON field, header, cookie, element or match that is absent
// fails the check as missing, whatever the operator: json.x != "a" fails if
// there is no x. Only !exists(...) passes on absence. Reading json from a
// body that is not JSON fails as invalid JSON, exists and !exists included;
// reading html() from one that is not HTML (a Content-Type other than
// text/html or application/xhtml+xml, or none and no leading <) fails as
// NotHTML likewise.
//
// Failures say what was seen: `json.status == "success": got "processing"`,
// `status == 200: got 503`, `duration < 2s: got 2.314s`, `json.count == 3:
// got "3" (a string, not a number)`, `json.id == 1: got nothing (no field
// "id")`, `json.status == "ok": body is not JSON (starts "<html>…")`.
//
// Captures use a single operand, rendered as text: strings as they are,
// numbers as written in the JSON, true/false, arrays and objects as JSON.
//
// For the runner: Expectations and Values are immutable and may be shared by
// goroutines. A Response caches whether its body is JSON, so one Response
// must not be checked from several goroutines at once, and must be Reset (or
// given a new Body slice) before it holds the next response. Header keys
// must be canonical, as net/http makes them. Sources tells which parts an
// expression reads; SourceJSON implies the body, SourceHTML comes with
// SourceBody. The body is parsed as HTML once per response, by the first
// html() read, and not at all for a response no html() reads.
package assert
