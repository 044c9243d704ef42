package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/prober-dev/prober/internal/result"
)

// The operator's pages in a real browser: headless Chromium (Debian's
// chromium, which scripts/test.sh installs) renders the status, flow, run and
// alerts pages of a running prober whose checkout fails and pages, creates a
// silence through the alerts page's own form and expires it through its
// button, and nothing on any page may reach the console: no script error, no
// CSP violation (Chromium reports those as "Refused to ..." log entries, and
// the page's securitypolicyviolation event is echoed to the console too), no
// failed load.

// chromiumPath is Debian's chromium, or PROBER_CHROMIUM's. The test fails
// without it unless PROBER_TEST_BROWSER_SKIP is set: a missing browser must
// not pass silently.
func chromiumPath(t *testing.T) string {
	t.Helper()
	want := os.Getenv("PROBER_CHROMIUM")
	if want == "" {
		want = "chromium"
	}
	path, err := exec.LookPath(want)
	if err == nil {
		return path
	}
	if os.Getenv("PROBER_TEST_BROWSER_SKIP") != "" {
		t.Skipf("%v; PROBER_TEST_BROWSER_SKIP is set", err)
	}
	t.Fatalf("%v: install Debian's chromium (scripts/test.sh does), or set PROBER_TEST_BROWSER_SKIP=1 to skip", err)
	return ""
}

// consoleLog keeps what the pages wrote to the console, from the listener's
// goroutine.
type consoleLog struct {
	mu   sync.Mutex
	msgs []string
}

func (c *consoleLog) add(ev any) {
	var m string
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range e.Args {
			if a.Value != nil {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		m = fmt.Sprintf("console.%s: %s", e.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		m = fmt.Sprintf("exception: %s %s (%s:%d)", d.Text, descr(d.Exception), d.URL, d.LineNumber)
	case *log.EventEntryAdded:
		m = fmt.Sprintf("log %s/%s: %s (%s)", e.Entry.Source, e.Entry.Level, e.Entry.Text, e.Entry.URL)
	default:
		return
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func descr(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	return o.Description
}

// take returns the messages since the last take.
func (c *consoleLog) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.msgs
	c.msgs = nil
	return m
}

// cspEcho runs in every document before its own scripts (DevTools-injected,
// so the page's CSP does not apply to it) and turns each CSP violation into a
// console error, which the listener sees.
const cspEcho = `document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI + " at " + e.sourceFile + ":" + e.lineNumber);
});`

type browser struct {
	t       *testing.T
	ctx     context.Context
	console *consoleLog
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.DisableGPU, chromedp.NoSandbox,
		chromedp.Flag("no-proxy-server", true), chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	b := &browser{t: t, console: &consoleLog{}}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(b.console.add),
		chromedp.WithErrorf(func(f string, a ...any) { t.Logf("chromedp: "+f, a...) }))
	t.Cleanup(cancel)
	b.ctx = ctx
	// The first Run starts the browser and so carries no timeout of its own
	// (a timeout there would end the browser); a watchdog bounds it instead.
	started := make(chan error, 1)
	go func() {
		started <- chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspEcho})
			return err
		}))
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting chromium: %v", err)
		}
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("chromium did not start within 30s")
	}
	return b
}

// do runs actions with a timeout, failing the test with what was being done.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// text is the text content of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// eval evaluates a JavaScript expression on the current page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// until polls a boolean expression until it holds, across the reloads the
// page makes on its own (an evaluation during one fails and is retried).
func (b *browser) until(within time.Duration, what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("%s: not within %s (last error: %v)", what, within, lastErr)
}

// open loads url and waits for its main element.
func (b *browser) open(url string) {
	b.t.Helper()
	b.do("opening "+url, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("main")))
}

// clean fails the test for every console message since the last check, after
// a moment for late events (a blocked style is reported after load).
func (b *browser) clean(page string) {
	b.t.Helper()
	// A round trip through the page flushes the events sent before it.
	eval[bool](b, "true")
	for _, m := range b.console.take() {
		b.t.Errorf("%s: %s", page, m)
	}
}

func TestBrowserPages(t *testing.T) {
	b := newBrowser(t) // first: without chromium, fail before starting anything
	e := newPagingEnv(t, "")
	_, base := e.startProber(t)
	waitRun(t, base, "checkout", 30*time.Second, passed)

	e.fault(t, `{"gateway_status":504,"swallow_errors":true}`)
	failed := waitRun(t, base, "checkout", 20*time.Second, func(r *result.Run) bool { return !r.OK() })
	eventually(t, 20*time.Second, "checkout_failing firing", func() bool {
		_, body := get(t, base+"/api/v1/alerts")
		return strings.Contains(body, "checkout_failing") && strings.Contains(body, "firing")
	})
	// The history is written every 2 s: let the failed runs reach it.
	eventually(t, 10*time.Second, "uptime below 100%", func() bool {
		_, body := get(t, base+"/flows/checkout")
		return strings.Contains(body, `class="uptimes"`) && !strings.Contains(body, "No runs yet")
	})

	// The status page: the overall state, the checkout flow and its alert.
	b.open(base + "/")
	if h := b.text("h1.overall"); !strings.Contains(strings.ToLower(h), "failing") {
		t.Errorf("status page heading %q, want a failing state", h)
	}
	if s := b.text("main"); !strings.Contains(s, "checkout") {
		t.Errorf("status page lacks the checkout flow: %.500s", s)
	}
	if s := b.text("section.alerts"); !strings.Contains(s, "checkout_failing") {
		t.Errorf("status page alerts: %q", s)
	}
	b.clean("status page")

	// Its filter form submits to the page itself (form-action 'self').
	b.do("filtering the status page",
		chromedp.SendKeys(chromedp.CSS("#q"), "checkout"),
		chromedp.Evaluate[chromedp.Void](`window.beforeSubmit = true`),
		chromedp.Click(chromedp.CSS("form.find button[type=submit]")))
	b.until(10*time.Second, "filtered status page", `!window.beforeSubmit && document.readyState === "complete" && location.search.includes("q=checkout")`)
	if s := b.text("main"); !strings.Contains(s, "checkout") {
		t.Errorf("filtered status page lacks the checkout flow: %.500s", s)
	}
	b.clean("filtered status page")

	// The flow page: uptime figures and the latency graph.
	b.open(base + "/flows/checkout")
	if n := eval[int](b, `document.querySelectorAll("p.uptimes .up").length`); n != 3 {
		t.Errorf("flow page: %d uptime figures, want 3 (24h, 7d, 30d)", n)
	}
	if s := b.text("p.uptimes"); !strings.Contains(s, "%") {
		t.Errorf("flow page uptime figures: %q", s)
	}
	if n := eval[int](b, `document.querySelectorAll("figure.graph svg.latency path, figure.graph svg.latency polyline, figure.graph svg.latency rect").length`); n == 0 {
		t.Error("flow page: no latency graph drawn")
	}
	if w := eval[float64](b, `document.querySelector("figure.graph svg.latency").getBoundingClientRect().width`); w < 100 {
		t.Errorf("flow page: the latency graph is %.0f px wide", w)
	}
	if n := eval[int](b, `document.querySelectorAll("section.runblock").length`); n == 0 {
		t.Error("flow page: no runs listed")
	}
	b.clean("flow page")

	// The badges it links to, opened as the SVG documents they are.
	badges := eval[[]string](b, `Array.from(document.querySelectorAll("a[href^='/badges/']"), a => a.getAttribute("href"))`)
	if len(badges) == 0 {
		t.Error("flow page links no badges")
	}
	for _, href := range badges {
		b.do("opening badge "+href, chromedp.Navigate(base+href))
		if label := eval[string](b, `document.documentElement.localName + " " + document.documentElement.getAttribute("aria-label")`); !strings.HasPrefix(label, "svg ") || !strings.Contains(label, ":") {
			t.Errorf("badge %s: %q", href, label)
		}
		b.clean("badge " + href)
	}

	// The failed run's page: the story and the response the pay step got.
	b.open(base + "/runs/" + failed.TraceID)
	if s := b.text("p.story"); !strings.Contains(s, "pay") {
		t.Errorf("run page story: %q", s)
	}
	if s := b.text("pre.resp"); !strings.Contains(s, "processing") {
		t.Errorf("run page kept response: %q", s)
	}
	b.clean("run page")

	// The alerts page: the firing alert.
	b.open(base + "/alerts")
	if s := b.text("table.alertlist"); !strings.Contains(s, "checkout_failing") {
		t.Errorf("alerts page: %q", s)
	}
	if eval[bool](b, `document.querySelector("#silence-form button[type=submit]").offsetParent === null`) {
		t.Fatal("alerts page: the form's submit button is not shown")
	}
	b.clean("alerts page")

	// A duration the API refuses: the page says why and keeps the form.
	b.do("sending a bad silence",
		chromedp.SendKeys(chromedp.CSS("#silence-matchers"), "rule=checkout_failing"),
		chromedp.Clear(chromedp.CSS("#silence-duration")),
		chromedp.SendKeys(chromedp.CSS("#silence-duration"), "two hours"),
		chromedp.Click(chromedp.CSS("#silence-form button[type=submit]")))
	b.until(10*time.Second, "refusal shown", `document.querySelector("#silence-status").textContent.startsWith("Refused (HTTP 400)")`)
	if sil := apiSilences(t, base); len(sil) != 0 {
		t.Fatalf("a refused silence was created: %+v", sil)
	}
	if v := eval[string](b, `document.querySelector("#silence-matchers").value`); v != "rule=checkout_failing" {
		t.Errorf("the form lost its matchers after a refusal: %q", v)
	}
	// The 400 answer is the page's own business, not a console error... but
	// Chromium logs every failed fetch as "Failed to load resource"; only
	// that one entry is expected.
	for _, m := range b.console.take() {
		if !strings.Contains(m, "Failed to load resource") || !strings.Contains(m, "400") {
			t.Errorf("alerts page after a refused silence: %s", m)
		}
	}
	b.open(base + "/alerts")

	// A silence through the page's form, as a user makes one.
	const comment = "e2e browser silence"
	b.do("filling the silence form",
		chromedp.SendKeys(chromedp.CSS("#silence-matchers"), "rule=checkout_failing"),
		chromedp.Clear(chromedp.CSS("#silence-duration")),
		chromedp.SendKeys(chromedp.CSS("#silence-duration"), "30m"),
		chromedp.SendKeys(chromedp.CSS("#silence-comment"), comment),
		chromedp.SendKeys(chromedp.CSS("#silence-by"), "webe2e"),
		chromedp.Evaluate[chromedp.Void](`window.beforeSubmit = true`),
		chromedp.Click(chromedp.CSS("#silence-form button[type=submit]")))
	// The script reloads the page when the API accepts the silence.
	b.until(15*time.Second, "silence listed after the form's reload",
		`!window.beforeSubmit && document.readyState === "complete" && !!document.querySelector("table.silencelist") && document.querySelector("table.silencelist").textContent.includes(`+jsString(comment)+`)`)
	if s := b.text("#silence-status"); s != "" {
		t.Errorf("silence status after creating: %q", s)
	}
	id := eval[string](b, `document.querySelector("table.silencelist button[data-expire]").getAttribute("data-expire")`)
	if id == "" {
		t.Fatal("no expire button for the new silence")
	}
	sil := apiSilences(t, base)
	if len(sil) != 1 || sil[0].ID != id || sil[0].Comment != comment || sil[0].CreatedBy != "webe2e" || sil[0].Matchers["rule"] != "checkout_failing" {
		t.Fatalf("silences API after the form: %+v (page id %s)", sil, id)
	}
	if d := sil[0].Ends.Sub(sil[0].Starts); d < 29*time.Minute || d > 31*time.Minute {
		t.Errorf("silence lasts %s, the form said 30m", d)
	}
	b.clean("alerts page after creating a silence")

	// The alert is held by it: the page says so once the manager has
	// evaluated (every second here); the page does not refresh by itself.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.open(base + "/alerts")
		if strings.Contains(b.text("table.alertlist"), "silenced") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts page does not show the alert silenced: %q", b.text("table.alertlist"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.clean("alerts page with the alert silenced")

	// Expired through the page's button: gone from the page and the API.
	b.do("expiring the silence",
		chromedp.Evaluate[chromedp.Void](`window.beforeSubmit = true`),
		chromedp.Click(chromedp.CSS(`button[data-expire="`+id+`"]`)))
	b.until(15*time.Second, "silence gone after the button's reload",
		`!window.beforeSubmit && document.readyState === "complete" && !document.querySelector("button[data-expire]") && !document.body.textContent.includes(`+jsString(comment)+`)`)
	if sil := apiSilences(t, base); len(sil) != 0 {
		t.Errorf("silences API after expiring: %+v", sil)
	}
	b.clean("alerts page after expiring the silence")

	// The watch itself: an inline style, which the CSP refuses, is reported.
	eval[bool](b, `(function () { var s = document.createElement("style"); s.textContent = "body { color: red }"; document.head.appendChild(s); return true; })()`)
	eval[bool](b, "true")
	got := b.console.take()
	if !slices.ContainsFunc(got, func(m string) bool { return strings.Contains(m, "CSP violation: style-src") }) {
		t.Errorf("an inline style the CSP refuses was not reported; console: %q", got)
	}
}

type apiSilence struct {
	ID        string            `json:"id"`
	Matchers  map[string]string `json:"matchers"`
	Starts    time.Time         `json:"starts"`
	Ends      time.Time         `json:"ends"`
	Comment   string            `json:"comment"`
	CreatedBy string            `json:"created_by"`
}

// apiSilences returns the silences the API lists.
func apiSilences(t *testing.T, base string) []apiSilence {
	t.Helper()
	code, body := get(t, base+"/api/v1/silences")
	if code != 200 {
		t.Fatalf("silences API %d: %s", code, body)
	}
	var out struct {
		Silences []apiSilence `json:"silences"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("silences API: %v: %s", err, body)
	}
	return out.Silences
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBrowserDemoPages walks the demo as a new user does in a browser: the
// status page, every flow's page and newest run, and the alerts page (the
// demo's 10-day sandbox certificate raises a warning), each without a
// console message.
func TestBrowserDemoPages(t *testing.T) {
	b := newBrowser(t)
	addr := freeAddr(t)
	start(t, []string{"SHOP_PASSWORD=" + secretPW}, "demo", "--listen", addr, "--dir", t.TempDir())
	base := "http://" + addr
	waitRun(t, base, "checkout", 60*time.Second, passed)

	var flows []struct {
		Name string `json:"name"`
	}
	code, body := get(t, base+"/api/v1/flows")
	if err := json.Unmarshal([]byte(body), &flows); code != 200 || err != nil {
		t.Fatalf("flows API %d: %v: %.500s", code, err, body)
	}
	if len(flows) < 2 {
		t.Fatalf("demo has %d flows", len(flows))
	}

	b.open(base + "/")
	b.clean("demo status page")
	for _, f := range flows {
		r := waitRun(t, base, f.Name, 30*time.Second, func(*result.Run) bool { return true })
		b.open(base + "/flows/" + f.Name)
		if h := b.text("h1"); !strings.Contains(h, f.Name) {
			t.Errorf("flow page of %s: heading %q", f.Name, h)
		}
		if n := eval[int](b, `document.querySelectorAll("section.runblock").length`); n == 0 {
			t.Errorf("flow page of %s lists no runs", f.Name)
		}
		b.clean("demo flow page " + f.Name)
		b.open(base + "/runs/" + r.TraceID)
		if s := b.text("dl.facts"); !strings.Contains(s, r.TraceID) {
			t.Errorf("run page of %s: facts %q", f.Name, s)
		}
		b.clean("demo run page of " + f.Name)
	}
	// The certificate rule's alert appears once its flow has run.
	deadline := time.Now().Add(15 * time.Second)
	for {
		b.open(base + "/alerts")
		if eval[bool](b, `!!document.querySelector("table.alertlist") && document.querySelector("table.alertlist").textContent.includes("shop_certificate_expiry")`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo alerts page lacks the certificate alert: %.1000s", b.text("main"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.clean("demo alerts page")
}
