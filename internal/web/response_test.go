package web

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
)

// TestRunPageResponse: a failed step's kept response shows on the run
// page, status line, headers and body in a <pre>, escaped (markup and
// terminal escapes alike), with how much of the body is shown; the
// results API carries it; a step without one shows none.
func TestRunPageResponse(t *testing.T) {
	f := newFake()
	r := simpleRun("browse", testNow.Add(-10*time.Second), traceID("browse", 7), false, "")
	r.Steps[0].Status, r.Steps[0].Class, r.Steps[0].BodyBytes = result.Failed, result.HTTP5xx, 10000
	r.Steps[0].Failures = []result.Failure{{Message: "status 503"}}
	r.Steps[0].Response = &result.Response{Proto: "HTTP/1.1", Status: 503, Truncated: true,
		Headers: []result.Attr{{Name: "Content-Type", Value: "text/html"}, {Name: "X-Evil", Value: "<b>\x1b[2J"}},
		Body:    []byte("<script>alert(1)</script>\x1b[31m\xff gateway timeout")}
	f.runs["browse"] = append([]*result.Run{r}, f.runs["browse"]...)
	h := newHandler(func(o *Options) { o.Source = f })
	_, body := do(t, h, "GET", "/runs/"+r.TraceID)
	for _, w := range []string{
		`<pre class="resp">HTTP/1.1 503 Service Unavailable
Content-Type: text/html
X-Evil: &lt;b&gt;\x1b[2J
`,
		`&lt;script&gt;alert(1)&lt;/script&gt;\x1b[31m\xff gateway timeout</pre>`,
		"Body: truncated at 47 bytes (of 10000); redacted.",
	} {
		if !strings.Contains(body, w) {
			t.Errorf("run page lacks %q", w)
		}
	}
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "\x1b") || strings.Contains(body, "\xff") {
		t.Errorf("run page shows the response unescaped")
	}
	if n := strings.Count(body, `<pre class="resp">`); n != 1 {
		t.Errorf("%d responses shown, want the failed step's only", n)
	}

	_, api := do(t, h, "GET", "/api/v1/results?flow=browse&limit=1")
	var got struct {
		Flows []struct {
			Runs []struct {
				Steps []struct {
					Response *struct {
						Status    int    `json:"status"`
						Body      string `json:"body"`
						Base64    string `json:"body_base64"`
						Truncated bool   `json:"truncated"`
					} `json:"response"`
				} `json:"steps"`
			} `json:"runs"`
		} `json:"flows"`
	}
	if err := json.Unmarshal([]byte(api), &got); err != nil {
		t.Fatalf("%v: %s", err, api)
	}
	if len(got.Flows) != 1 || len(got.Flows[0].Runs) != 1 || got.Flows[0].Runs[0].Steps[0].Response == nil {
		t.Fatalf("API lacks the response: %s", api)
	}
	if k := got.Flows[0].Runs[0].Steps[0].Response; k.Status != 503 || !k.Truncated || k.Base64 == "" {
		t.Errorf("API response %+v (a body that is not UTF-8 goes as base64)", k)
	}
}

// TestRunPageResponseCookies: the run page shows a kept response's cookie
// values as fingerprints, also from a run stored before the runner
// fingerprinted them (whole values in its Set-Cookie), and leaves ones
// already masked as they are.
func TestRunPageResponseCookies(t *testing.T) {
	const session = "Zq8xv3Lr5Tn2Wm7Kp4Hd9Gs6" // a stored run's whole session id
	f := newFake()
	r := simpleRun("browse", testNow.Add(-10*time.Second), traceID("browse", 8), false, "")
	r.Steps[0].Status, r.Steps[0].Class = result.Failed, result.HTTP5xx
	r.Steps[0].Failures = []result.Failure{{Message: "status 503"}}
	r.Steps[0].Response = &result.Response{Proto: "HTTP/1.1", Status: 503, Headers: []result.Attr{
		{Name: "Set-Cookie", Value: "sid=" + session + "; Path=/; HttpOnly"},
		{Name: "Set-Cookie", Value: "tok=[secret:TOKEN]; Path=/"},
	}}
	f.runs["browse"] = append([]*result.Run{r}, f.runs["browse"]...)
	h := newHandler(func(o *Options) { o.Source = f })
	_, body := do(t, h, "GET", "/runs/"+r.TraceID)
	if strings.Contains(body, session[:8]) {
		t.Errorf("the run page shows the session cookie")
	}
	for _, w := range []string{"Set-Cookie: sid=" + secret.Fingerprint(session) + "; Path=/; HttpOnly", "Set-Cookie: tok=[secret:TOKEN]; Path=/"} {
		if !strings.Contains(body, w) {
			t.Errorf("run page lacks %q", w)
		}
	}
}
