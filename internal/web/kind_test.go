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
