package web

import (
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// TestRunPageKindAttrs: a step kind's attributes show under its step on the
// run page, escaped, whatever the kind.
func TestRunPageKindAttrs(t *testing.T) {
	f := newFake()
	r := simpleRun("browse", testNow.Add(-10*time.Second), traceID("browse", 9), true, "")
	r.Steps[0] = result.Step{Name: "cert", Kind: "tls", Method: "TLS", URL: "tls://shop.local:443", SpanID: "00f067aa0ba902b7",
		Status: result.Passed, Class: result.OK, Attempts: 1, Start: r.Start,
		Attrs: []result.Attr{{Name: "cert.not_after", Value: "2027-01-02T03:04:05Z"}, {Name: "cert.subject", Value: "CN=<shop>"}}}
	f.runs["browse"] = append([]*result.Run{r}, f.runs["browse"]...)
	_, body := do(t, newHandler(func(o *Options) { o.Source = f }), "GET", "/runs/"+r.TraceID)
	for _, w := range []string{"<code>TLS tls://shop.local:443</code>", "<small>cert.not_after: 2027-01-02T03:04:05Z</small>", "<small>cert.subject: CN=&lt;shop&gt;</small>"} {
		if !strings.Contains(body, w) {
			t.Errorf("run page lacks %q", w)
		}
	}
}

// TestRunPageScreenshot: a failed browser step's screenshot shows in its
// failures with the page's last title and URL, served as a PNG under the
// run while the store has it (CSP img-src 'self'), and said to be gone
// when it does not.
func TestRunPageScreenshot(t *testing.T) {
	f := newFake()
	r := simpleRun("browse", testNow.Add(-10*time.Second), traceID("browse", 3), false, "")
	r.Steps[0] = result.Step{Name: "pay", Kind: "browser", Method: "BROWSER", URL: "https://shop.local/pay", SpanID: "00f067aa0ba902b7",
		Status: result.Failed, Class: result.SelectorTimeout, Attempts: 1, Start: r.Start,
		Failures:   []result.Failure{{Message: `click "#pay": no visible element matched`}},
		Attrs:      []result.Attr{{Name: "url", Value: "https://shop.local/pay?x=<1>"}, {Name: "title", Value: "Pay <now>"}},
		Screenshot: &result.Screenshot{Bytes: 2048, Width: 1280, Height: 800}}
	f.runs["browse"] = append([]*result.Run{r}, f.runs["browse"]...)
	png := []byte("\x89PNG\r\n\x1a\nfake")
	kept := true
	h := newHandler(func(o *Options) {
		o.Source = f
		o.Screenshots = func(trace, span string) ([]byte, bool) {
			return png, kept && trace == r.TraceID && span == "00f067aa0ba902b7"
		}
	})
	src := "/runs/" + r.TraceID + "/screenshots/00f067aa0ba902b7"
	res, body := do(t, h, "GET", "/runs/"+r.TraceID)
	for _, w := range []string{`<img src="` + src + `" width="640" height="400"`, "<q>Pay &lt;now&gt;</q>", "<code>https://shop.local/pay?x=&lt;1&gt;</code>", "2.0 KiB, secrets masked"} {
		if !strings.Contains(body, w) {
			t.Errorf("run page lacks %q", w)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self'") {
		t.Errorf("CSP %q does not allow the image", csp)
	}
	res, got := do(t, h, "GET", src)
	if res.StatusCode != 200 || got != string(png) || res.Header.Get("Content-Type") != "image/png" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("screenshot: %d %q %v", res.StatusCode, got, res.Header)
	}
	if res, _ := do(t, h, "GET", "/runs/"+r.TraceID+"/screenshots/0000000000000001"); res.StatusCode != 404 {
		t.Errorf("another span's screenshot: %d", res.StatusCode)
	}
	kept = false
	_, body = do(t, h, "GET", "/runs/"+r.TraceID)
	if strings.Contains(body, "<img") || !strings.Contains(body, "No longer kept") {
		t.Errorf("a screenshot the store dropped: %s", body[strings.Index(body, "Screenshot"):])
	}
}
