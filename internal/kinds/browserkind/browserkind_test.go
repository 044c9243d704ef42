package browserkind

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/result"
)

// newKind is a browser kind for a test, closed at its end. Without
// Chromium the test fails, unless PROBER_TEST_BROWSER_SKIP is set.
func newKind(t *testing.T) *Kind {
	t.Helper()
	if _, err := findChromium(""); err != nil {
		if os.Getenv("PROBER_TEST_BROWSER_SKIP") != "" {
			t.Skipf("PROBER_TEST_BROWSER_SKIP: %v", err)
		}
		t.Fatalf("%v (set PROBER_TEST_BROWSER_SKIP to skip the browser tests)", err)
	}
	k := New(Options{})
	t.Cleanup(func() { k.Close() })
	// Started before the steps run, whose timeouts are about pages: a
	// busy machine takes seconds to start Chromium.
	ctx, cancel := context.WithTimeout(t.Context(), StartTimeout)
	defer cancel()
	if _, err := k.b.get(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return k
}

// seen is what a test server got: per path, the trace headers.
type seen struct {
	mu    sync.Mutex
	trace map[string]string // path -> traceparent ("" when none)
	synth map[string]string // path -> X-Prober-Synthetic
	query map[string]string // path -> raw query
}

func (s *seen) note(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trace[r.URL.Path] = r.Header.Get("traceparent")
	s.synth[r.URL.Path] = r.Header.Get("X-Prober-Synthetic")
	s.query[r.URL.Path] = r.URL.RawQuery
}

func (s *seen) get(path string) (trace, synth string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	trace, ok = s.trace[path]
	return trace, s.synth[path], ok
}

func newSeen() *seen {
	return &seen{trace: map[string]string{}, synth: map[string]string{}, query: map[string]string{}}
}

// shop serves the pages of the tests; third is another origin (a CDN, a
// payment provider) the pages call.
func shop(t testing.TB) (first, third *httptest.Server, fs, ts *seen) {
	t.Helper()
	fs, ts = newSeen(), newSeen()
	third = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.note(r)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(third.Close)
	pages := map[string]string{
		"/login": `<title>Login</title><form action="/account" method="get">
<input id="user" name="user"><input id="pass" name="pass" type="password">
<button id="login" type="submit">Log in</button></form>
<script>fetch("/api/ping"); fetch("` + third.URL + `/pixel");</script>`,
		"/account": `<title>Account</title><p>Welcome back</p><span id="order" data-id="42">Order 42</span>
<script>fetch("/api/orders").then(r => r.text()).then(t => { document.getElementById("x").textContent = t; });</script><p id="x"></p>`,
		"/throws": `<title>Pay</title><p>pay</p><script>throw new Error("boom at pay");</script>`,
		"/slow":   `<title>Slow</title><script>setTimeout(() => { const b = document.createElement("button"); b.id = "pay"; b.textContent = "Pay now"; document.body.appendChild(b); }, 300);</script>`,
		"/search": `<title>Search</title><select id="size"><option value="s">S</option><option value="m">M</option></select>
<input id="q"><p id="out"></p><ul><li>a</li><li>b</li><li>c</li></ul><script>
document.getElementById("size").addEventListener("change", e => { out.textContent = "size " + e.target.value; });
q.addEventListener("keydown", e => { if (e.key === "Enter") out.textContent = "searched " + q.value; });</script>`,
		// The banner comes two frames after the first, so the h1 was painted
		// where it was before: a shift the browser counts even on a loaded
		// machine (a timer alone could fire before the first paint: no shift).
		"/shift": `<title>Shift</title><h1 style="font-size:64px">Big sale on shoes today</h1><p id="buy">Buy now</p><p id="state"></p>
<script>requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => { const b = document.createElement("div"); b.style.height = "400px"; b.textContent = "banner";
document.body.prepend(b); setTimeout(() => { state.textContent = "shifted"; }, 400); }, 100)));</script>`,
		"/spin": `<title>Spin</title><script>for (;;) {}</script>`,
		"/card": `<title>Card</title><input id="card" autocomplete="off"><p id="echo"></p>
<script>card.addEventListener("input", () => { echo.textContent = "card " + card.value; });</script>`,
		"/broken": `<title>Broken</title><script>fetch("/api/gateway").then(r => { console.error("gateway said no"); document.body.append("paid " + r.status); });</script>`,
	}
	first = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.note(r)
		switch p, ok := pages[r.URL.Path]; {
		case ok:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<!doctype html><html><body>"+p+"</body></html>")
		case r.URL.Path == "/remember": // a login: a cookie and local storage
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: "abc", Path: "/"})
			io.WriteString(w, `<!doctype html><title>In</title><script>localStorage.setItem("cart", "2 shoes")</script><p>in</p>`)
		case r.URL.Path == "/whoami":
			c, err := r.Cookie("sid")
			who := "cookie none"
			if err == nil {
				who = "cookie " + c.Value
			}
			io.WriteString(w, `<!doctype html><title>Who</title><p>`+who+`</p><p id="cart"></p>`+
				`<script>cart.textContent = "cart " + (localStorage.getItem("cart") || "empty")</script>`)
		case r.URL.Path == "/api/gateway":
			http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
		case r.URL.Path == "/hang": // a page that never answers
			<-r.Context().Done()
		case r.URL.Path == "/gone":
			http.Error(w, "gone", http.StatusServiceUnavailable)
		case strings.HasPrefix(r.URL.Path, "/api/"):
			io.WriteString(w, "orders: 1")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(first.Close)
	return first, third, fs, ts
}

// closed is a URL of a loopback port nothing listens on.
func closed(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	return "http://" + ln.Addr().String() + "/"
}

func flow(steps string) string {
	return "name: f\nsteps:\n" + steps
}

// TestLoginFlow: a login form filled (a secret as the password), a click,
// waits for a URL and a text, an extracted attribute captured, and
// expectations on the page; the trace headers on the first party's
// document and XHR, not on the third party's; no secret in the result.
func TestLoginFlow(t *testing.T) {
	k := newKind(t)
	first, third, fs, ts := shop(t)
	run := kindtest.Run(t, "", flow(`  - name: login
    timeout: 25s
    browser:
      actions:
        - goto: `+first.URL+`/login
        - fill: {selector: "#user", value: alice}
        - fill: {selector: "#pass", value: "{{secret:S}}"}
        - click: "#login"
        - wait_for: {url: /account}
        - wait_for: {text: Welcome back}
        - wait_for: "#order"
        - extract: {name: order_id, selector: "#order", attr: data-id}
        - extract: {name: label, selector: "#order"}
    expect:
      - status == 200
      - page.title == "Account"
      - page.url contains "/account?user=alice"
      - page.text contains "Order 42"
      - console.errors == 0
      - requests.failed == 0
      - json.values.order_id == "42"
      - json.values.label == "Order 42"
      - page.load < 10s
    capture:
      order_id: json.values.order_id
  - name: use
    request:
      url: `+first.URL+`/api/use?order={{order_id}}
`), k)
	if run.Status != result.Passed {
		t.Fatalf("run %s: %s", run.Status, run.Summary())
	}
	fs.mu.Lock()
	q := fs.query["/account"]
	use := fs.query["/api/use"]
	fs.mu.Unlock()
	if q != "user=alice&pass=s3cr3t-value" {
		t.Errorf("the form sent %q", q)
	}
	if use != "order=42" {
		t.Errorf("the captures sent %q", use)
	}
	for _, path := range []string{"/login", "/account", "/api/ping", "/api/orders"} {
		tp, synth, ok := fs.get(path)
		if !ok {
			t.Errorf("%s not requested", path)
			continue
		}
		if !strings.HasPrefix(tp, "00-"+run.TraceID+"-"+run.Steps[0].SpanID+"-") || synth != "true" {
			t.Errorf("%s: traceparent %q synthetic %q, want the run's trace %s and span %s", path, tp, synth, run.TraceID, run.Steps[0].SpanID)
		}
	}
	if tp, synth, ok := ts.get("/pixel"); !ok || tp != "" || synth != "" {
		t.Errorf("third party: requested %v, traceparent %q, synthetic %q; want requested without", ok, tp, synth)
	}
	_ = third
	s := run.Steps[0]
	if s.Kind != "browser" || s.Attr("title") != "Account" || s.Attr("load") == "" || s.Timings.FirstByte <= 0 {
		t.Errorf("step: kind %q attrs %v first byte %s", s.Kind, s.Attrs, s.Timings.FirstByte)
	}
	data, _ := json.Marshal(run)
	if strings.Contains(string(data), "s3cr3t-value") {
		t.Errorf("the secret is in the result: %s", data)
	}
}

// stepTimeout is the steps' of TestFailures: roomy, as a page takes
// seconds to open on a loaded CI machine under -race.
const stepTimeout = 10 * time.Second

// TestFailures: each way a page fails has its class, and the message
// names the action and where it is.
func TestFailures(t *testing.T) {
	k := newKind(t)
	first, _, _, _ := shop(t)
	for _, tc := range []struct {
		name, actions, expect string
		class                 result.Class
		msg                   string
	}{
		{"script error", "- goto: " + first.URL + "/throws", "", result.ScriptError, "uncaught exception on the page: Error: boom at pay"},
		{"script error expected", "- goto: " + first.URL + "/throws", "[console.errors == 1]", "", ""},
		{"dead after a script error", "- goto: " + first.URL + "/throws\n        - click: \"#pay\"", "[console.errors == 0]", result.ScriptError,
			`click "#pay" (flows/f.yaml:8:18): no visible element matched within the step's timeout; the page threw: Error: boom at pay`},
		{"slow element", "- goto: " + first.URL + "/slow\n        - click: \"#pay\"", "", "", ""},
		{"missing element", "- goto: " + first.URL + "/slow\n        - click: \"#nothing\"", "", result.SelectorTimeout, `click "#nothing" (flows/f.yaml:8:18): no visible element matched`},
		{"text never seen", "- goto: " + first.URL + "/slow\n        - wait_for: {text: never}", "", result.Timeout, `wait_for text "never" (flows/f.yaml:8:21): not seen`},
		{"refused", "- goto: " + closed(t), "", result.Navigation, "net::ERR_CONNECTION_REFUSED"},
		{"select press js", "- goto: " + first.URL + "/search\n        - select: {selector: \"#size\", value: m}\n        - wait_for: {text: size m}" +
			"\n        - fill: {selector: \"#q\", value: shoes}\n        - press: {selector: \"#q\", key: Enter}\n        - wait_for: {text: searched shoes}" +
			"\n        - js: {name: items, expression: \"document.querySelectorAll('li').length\"}", `[json.values.items == "3"]`, "", ""},
		{"no such option", "- goto: " + first.URL + "/search\n        - select: {selector: \"#size\", value: xl}", "", result.Assertion, `select "#size" (flows/f.yaml:8:19): no option with that value`},
		{"js throws", "- goto: " + first.URL + "/search\n        - js: {name: x, expression: \"nope.nope\"}", "", result.ScriptError, "js x (flows/f.yaml:8:15): "},
		{"hung page", "- goto: " + first.URL + "/hang", "", result.Timeout, "goto " + first.URL + "/hang (flows/f.yaml:7:17): the page did not load within the step's timeout"},
		{"document 503", "- goto: " + first.URL + "/gone", "", result.HTTP5xx, "HTTP 503"},
		{"document 503 expected", "- goto: " + first.URL + "/gone", "[status == 503]", "", ""},
		{"failed request", "- goto: " + first.URL + "/broken\n        - wait_for: {text: \"paid\"}", "[requests.failed == 0]", result.Assertion, "requests.failed == 0: got 1"},
		{"console error", "- goto: " + first.URL + "/broken\n        - wait_for: {text: \"paid\"}", "[console.errors == 0]", result.Assertion, "console.errors == 0: got 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := "  - name: s\n    timeout: " + stepTimeout.String() + "\n    browser:\n      actions:\n        " + tc.actions + "\n"
			if tc.expect != "" {
				steps += "    expect: " + tc.expect + "\n"
			}
			start := time.Now()
			run := kindtest.Run(t, "", flow(steps), k)
			s := run.Steps[0]
			if tc.class == "" {
				if run.Status != result.Passed {
					t.Fatalf("run %s: %s", run.Status, run.Summary())
				}
				return
			}
			if s.Class != tc.class || !strings.Contains(s.Message(), tc.msg) {
				t.Errorf("class %s %q, want %s containing %q", s.Class, s.Message(), tc.class, tc.msg)
			}
			if d := time.Since(start); d > stepTimeout+5*time.Second {
				t.Errorf("took %s for a %s step", d, stepTimeout)
			}
			if n := openPages(t, k); n != 0 {
				t.Errorf("%d pages left open after the step", n)
			}
		})
	}
}

// openPages counts the browser's pages besides the first (blank) tab.
func openPages(t *testing.T, k *Kind) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(k.b.ctx, 10*time.Second)
	defer cancel()
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := -1
	for _, i := range infos {
		if i.Type == "page" {
			n++
		}
	}
	return n
}

// TestLoadErrors: a bad block is an error at its file:line:col.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ block, want string }{
		{"{}", "flows/f.yaml:4:14: browser needs actions"},
		{"{actions: [{click: '#a'}]}", "flows/f.yaml:4:25: the first action must be goto"},
		{"{actions: [{goto: 'ftp://x/'}]}", "flows/f.yaml:4:32: goto: \"ftp://x/\" is not an http(s) URL"},
		{"{actions: [{goto: 'http://a/', click: '#b'}]}", "flows/f.yaml:4:25: an action is one of goto, click, fill, select, press, wait_for, extract, js"},
		{"{actions: [{goto: 'http://a/'}, {fill: '#b'}]}", "flows/f.yaml:4:53: fill needs {selector: ..., value: ...}"},
		{"{actions: [{goto: 'http://a/'}, {fill: {selector: '#b'}}]}", "flows/f.yaml:4:53: fill needs a value"},
		{"{actions: [{goto: 'http://a/'}, {wait_for: {text: a, url: b}}]}", "flows/f.yaml:4:57: wait_for needs one of selector, text or url"},
		{"{actions: [{goto: 'http://a/'}, {extract: {name: 1a, selector: x}}]}", "flows/f.yaml:4:63: extract name \"1a\" must match"},
		{"{actions: [{goto: 'http://a/'}, {tap: x}]}", "flows/f.yaml:4:47: unknown field \"tap\" in action"},
		{"{actions: [{goto: 'http://a/'}, {press: F13}]}", `key "F13" is not one character or one of ArrowDown`},
		{"{actions: [{goto: 'http://a/'}, {js: {name: a}}]}", "js needs {name: ..., expression: ...}"},
		{"{actions: [{goto: 'http://a/'}, {select: {selector: '#a'}}]}", "select needs a value"},
		{"{actions: [{goto: 'http://a/'}], origins: ['http://a/b']}", "flows/f.yaml:4:56: origin \"http://a/b\" is not scheme://host[:port]"},
		{"{actions: [{goto: 'http://a/'}, {wait_for: {url: '{{nope}}'}}]}", "nope"},
	} {
		_, err := kindtest.Load(t, "", flow("  - name: s\n    browser: "+tc.block+"\n"), New(Options{}))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.block, err, tc.want)
		}
	}
}

// TestRestartAfterCrash: a browser killed between runs is started again
// by the next run; Close stops it.
func TestRestartAfterCrash(t *testing.T) {
	k := newKind(t)
	first, _, _, _ := shop(t)
	f := flow("  - name: s\n    timeout: 25s\n    browser:\n      actions:\n        - goto: " + first.URL + "/slow\n        - wait_for: \"#pay\"\n")
	if run := kindtest.Run(t, "", f, k); run.Status != result.Passed {
		t.Fatalf("first run: %s", run.Summary())
	}
	pid := k.b.pid()
	if pid == 0 {
		t.Fatal("no browser process after a run")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for k.b.pid() != 0 && time.Now().Before(deadline) { // the connection drops
		time.Sleep(20 * time.Millisecond)
	}
	if run := kindtest.Run(t, "", f, k); run.Status != result.Passed {
		t.Fatalf("run after the crash: %s", run.Summary())
	}
	if k.b.starts != 2 {
		t.Errorf("%d browser starts, want 2", k.b.starts)
	}
	pid = k.b.pid()
	k.Close()
	if err := syscall.Kill(pid, 0); err == nil {
		// Reaped by the allocator's cancel: a live pid would be a leak.
		t.Errorf("browser %d alive after Close", pid)
	}
	if run := kindtest.Run(t, "", f, k); run.Steps[0].Class != result.Browser {
		t.Errorf("after Close: %s %q, want class browser", run.Steps[0].Class, run.Steps[0].Message())
	}
}

// TestRunContext: a run's browser steps share its incognito context
// (the cookie and local storage of one step are there in the next), a
// second run starts without them, and a run's context is gone when the
// run ends.
func TestRunContext(t *testing.T) {
	k := newKind(t)
	first, _, _, _ := shop(t)
	step := func(name, path string, expect ...string) string {
		s := "  - name: " + name + "\n    timeout: " + stepTimeout.String() + "\n    browser:\n      actions:\n        - goto: " + first.URL + path + "\n"
		if len(expect) > 0 {
			s += "    expect: [" + strings.Join(expect, ", ") + "]\n"
		}
		return s
	}
	f := flow(step("before", "/whoami", `page.text contains "cookie none"`, `page.text contains "cart empty"`) +
		step("login", "/remember") +
		step("after", "/whoami", `page.text contains "cookie abc"`, `page.text contains "cart 2 shoes"`))
	for i := range 2 {
		if run := kindtest.Run(t, "", f, k); run.Status != result.Passed {
			t.Fatalf("run %d: %s", i+1, run.Summary())
		}
		if n := browserContexts(t, k); n != 0 {
			t.Errorf("run %d: %d browser contexts left after the run", i+1, n)
		}
	}
}

// browserContexts counts the incognito contexts the browser has.
func browserContexts(t *testing.T, k *Kind) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(k.b.ctx, 10*time.Second)
	defer cancel()
	ids, err := cdp.Call(ctx, chromedp.FromContext(k.b.ctx).Browser, target.GetBrowserContexts, cdp.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	return len(ids.BrowserContextIDs)
}

// TestWebVitals: Largest Contentful Paint and Cumulative Layout Shift
// are operands and attributes: a banner pushing the page down shifts
// it, a still page does not. A failed step's screenshot is taken without
// a secret field to mask.
func TestWebVitals(t *testing.T) {
	k := newKind(t)
	first, _, _, _ := shop(t)
	run := kindtest.Run(t, "", flow(`  - name: shifty
    timeout: 20s
    browser:
      actions:
        - goto: `+first.URL+`/shift
        - wait_for: {text: shifted}
    expect: [page.cls > 0.05, page.lcp > 0ms, page.lcp < 15s]
  - name: still
    timeout: 20s
    browser:
      actions:
        - goto: `+first.URL+`/search
    expect: [page.cls == 0]
`), k)
	if run.Status != result.Passed {
		t.Fatalf("run: %s; attrs %v %v", run.Summary(), run.Steps[0].Attrs, run.Steps[len(run.Steps)-1].Attrs)
	}
	if s := run.Steps[0]; s.Attr("lcp") == "" || s.Attr("cls") == "" || s.Attr("cls") == "0.0000" {
		t.Errorf("attrs %v", s.Attrs)
	}
	run = kindtest.Run(t, "", flow(`  - name: s
    timeout: 20s
    browser:
      actions:
        - goto: `+first.URL+`/shift
    expect: [page.cls > 5]
`), k)
	if s := run.Steps[0]; s.Class != result.Assertion || s.Screenshot == nil {
		t.Errorf("class %s, screenshot %v, attrs %v", s.Class, s.Screenshot != nil, s.Attrs)
	}
}

// TestConcurrencyBound: browser_concurrency pages at most; a step that
// waits longer than its timeout for one fails as a timeout.
func TestConcurrencyBound(t *testing.T) {
	k := New(Options{Concurrency: 1})
	rel, err := k.b.acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	run := kindtest.Run(t, "", flow("  - name: s\n    timeout: 300ms\n    browser:\n      actions: [{goto: 'http://127.0.0.1:1/'}]\n"), k)
	if s := run.Steps[0]; s.Class != result.Timeout || !strings.Contains(s.Message(), "browser_concurrency 1") {
		t.Errorf("class %s %q", s.Class, s.Message())
	}
}

// TestOrigin: origins are written as the browser writes request URLs, so
// that the Fetch patterns of the trace headers match them.
func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"http://Shop.Example:80/login":  "http://shop.example",
		"https://shop.example:443/":     "https://shop.example",
		"https://shop.example:8443/a?b": "https://shop.example:8443",
		"http://[::1]:80/":              "http://[::1]",
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080",
	} {
		if got, err := origin(in); got != want || err != nil {
			t.Errorf("origin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x/", "/relative", "http://", "::"} {
		if got, err := origin(bad); err == nil {
			t.Errorf("origin(%q) = %q, want an error", bad, got)
		}
	}
}
