package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// keptRun is a run whose pay step failed with a kept response.
func keptRun(body []byte, truncated bool, headers int) *result.Run {
	pay := passed("pay", "2222222222222222", 300*time.Millisecond)
	pay.Status, pay.Class, pay.HTTPStatus, pay.BodyBytes = result.Failed, result.HTTP5xx, 503, 10000
	pay.Failures = []result.Failure{{Message: "status 503"}}
	k := &result.Response{Proto: "HTTP/1.1", Status: 503, Body: body, Truncated: truncated}
	for i := range headers {
		k.Headers = append(k.Headers, result.Attr{Name: "X-H" + string(rune('a'+i)), Value: "v"})
	}
	k.Headers = append(k.Headers, result.Attr{Name: "Retry-After", Value: "5\x1b[2J"})
	pay.Response = k
	return &result.Run{ID: "r", Flow: "checkout", Region: "eu", TraceID: traceFail, Start: t0,
		Status: result.Failed, Class: result.HTTP5xx, FailedStep: "pay",
		Steps: []result.Step{passed("login", "1111111111111111", time.Millisecond), pay}}
}

// TestTextKeptResponse: once's story shows a failed step's status line, a
// few headers (the telling ones first) and the start of its body, escaped.
func TestTextKeptResponse(t *testing.T) {
	long := bytes.Repeat([]byte("line\n"), 100)
	for _, tc := range []struct {
		name      string
		run       *result.Run
		want, not []string
	}{
		{name: "short", run: keptRun([]byte("{\"error\":\"gateway\"}\x1b[31m"), false, 2),
			want: []string{
				"       -> status 503\n       < HTTP/1.1 503 Service Unavailable\n       < Retry-After: 5\\x1b[2J\n       < X-Ha: v\n       < X-Hb: v\n",
				"       | {\"error\":\"gateway\"}\\x1b[31m\n",
			},
			not: []string{"more headers", "…", "\x1b"}},
		{name: "many headers, truncated", run: keptRun([]byte("oops"), true, 9),
			want: []string{"< Retry-After", "< (5 more headers)\n", "| oops\n", "| … (kept 4 bytes of 10000: truncated at keep_response)\n"}},
		{name: "long body cut to an excerpt", run: keptRun(long, false, 0),
			want: []string{strings.Repeat("       | line\n", 20) + "       | … (kept all 500 bytes; once --json or --verbose shows more)\n"}},
		{name: "passed run shows none", run: passingRun(), not: []string{"< ", "| "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Text(&b, tc.run); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("story lacks %q:\n%s", w, b.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("story shows %q:\n%s", n, b.String())
				}
			}
		})
	}
}

// TestJUnitKeptResponse: JUnit's system-out of a failed step carries its
// whole kept response, escaped, in well-formed XML.
func TestJUnitKeptResponse(t *testing.T) {
	var b bytes.Buffer
	if err := JUnit(&b, []*result.Run{keptRun([]byte("<html>\x00\xffbad gateway</html>"), true, 1)}); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, b.String())
	}
	out := doc.Suites[0].Cases[1].SystemOut
	want := "http_status=503\n\nresponse:\nHTTP/1.1 503 Service Unavailable\nX-Ha: v\nRetry-After: 5\\x1b[2J\n\n<html>\\x00\\xffbad gateway</html>\n(kept 26 bytes of 10000: truncated at keep_response)"
	if !strings.HasSuffix(out, want) {
		t.Errorf("system-out %q, want it to end %q", out, want)
	}
	if strings.Contains(doc.Suites[0].Cases[0].SystemOut, "response") {
		t.Errorf("a passed step's system-out shows a response")
	}
}

// TestExchange: --verbose shows an attempt as curl -v does.
func TestExchange(t *testing.T) {
	var b bytes.Buffer
	req := &result.Sent{Method: "POST", URL: "http://shop.local:8080/api/login?k=[secret:K]", Proto: "HTTP/1.1",
		Headers: []result.Attr{{Name: "Authorization", Value: "Basic [secret:K]"}}, Body: []byte(`{"user":"u"}`)}
	resp := &result.Response{Proto: "HTTP/1.1", Status: 401, Headers: []result.Attr{{Name: "Www-Authenticate", Value: "Basic"}},
		Body: []byte("denied\x1b")}
	if err := Exchange(&b, "login", 2, req, resp); err != nil {
		t.Fatal(err)
	}
	want := `* step login, attempt 2
> POST /api/login?k=[secret:K] HTTP/1.1
> Host: shop.local:8080
> Authorization: Basic [secret:K]
>
{"user":"u"}
< HTTP/1.1 401 Unauthorized
< Www-Authenticate: Basic
<
denied\x1b
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	Exchange(&b, "banner", 1, &result.Sent{Method: "TCP", URL: "tcp://mail:25"}, &result.Response{Body: []byte("220 ok\r\n")})
	if want := "* step banner, attempt 1\n> TCP tcp://mail:25\n>\n<\n220 ok\n"; b.String() != want {
		t.Errorf("kind exchange %q, want %q", b.String(), want)
	}
}
