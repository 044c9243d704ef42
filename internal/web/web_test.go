package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

func newHandler(mod ...func(*Options)) http.Handler {
	o := Options{Region: "eu-west-1", Version: "1.2.3", Source: newFake(),
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "# EOF\n") }),
		Now:     func() time.Time { return testNow }}
	for _, m := range mod {
		m(&o)
	}
	return New(o)
}

func do(t *testing.T, h http.Handler, method, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestEndpoints(t *testing.T) {
	// A real server, for what it adds over a recorder: no body for HEAD.
	srv := httptest.NewServer(newHandler())
	defer srv.Close()
	const (
		html  = "text/html; charset=utf-8"
		plain = "text/plain; charset=utf-8"
		js    = "application/json"
	)
	tests := []struct {
		method, target string
		code           int
		ctype          string // "" = don't care
		body           string // substring
	}{
		{"GET", "/", 200, html, "checkout"},
		{"HEAD", "/", 200, html, ""},
		{"GET", "/flows/checkout", 200, html, "Configured steps"},
		{"GET", "/flows/fresh", 200, html, "No runs yet"},
		{"GET", "/flows/nope", 404, html, "No flow named &#34;nope&#34;"},
		{"GET", "/flows/", 404, "", ""},
		{"GET", "/runs/" + failTrace, 200, html, "Timings"},
		{"GET", "/runs/" + traceID("browse", 2), 200, html, "browse run"},
		{"GET", "/runs/0000000000000000000000000000dead", 404, html, "No kept run"},
		{"GET", "/api/v1/results", 200, js, `"region":"eu-west-1"`},
		{"GET", "/api/v1/results?flow=checkout&limit=3", 200, js, failTrace},
		{"GET", "/api/v1/results?flow=nope", 404, js, `"error":"unknown flow \"nope\""`},
		{"GET", "/api/v1/results?limit=abc", 400, js, `"error":"limit must be`},
		{"GET", "/api/v1/results?limit=0", 400, js, `"error"`},
		{"GET", "/api/v1/results?limit=1001", 400, js, `"error"`},
		{"GET", "/api/v1/results?limit=1000", 200, js, ""},
		{"GET", "/api/v1/flows", 200, js, `"name":"checkout"`},
		{"GET", "/healthz", 200, plain, "ok"},
		{"GET", "/favicon.ico", 200, "image/svg+xml", "<svg"},
		{"HEAD", "/healthz", 200, plain, ""},
		{"GET", "/readyz", 200, plain, "ready"},
		{"GET", "/metrics", 200, "", "# EOF"},
		{"GET", "/nope", 404, "", ""},
		{"GET", "/api/v1/nope", 404, "", ""},
		{"GET", "/index.html", 404, "", ""},
		{"POST", "/", 405, "", ""},
		{"DELETE", "/flows/checkout", 405, "", ""},
		{"PUT", "/api/v1/results", 405, "", ""},
		{"POST", "/healthz", 405, "", ""},
		{"POST", "/metrics", 405, "", ""},
		{"POST", "/nope", 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.target, nil)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			body := string(b)
			if res.StatusCode != tt.code {
				t.Fatalf("status %d, want %d; body:\n%.500s", res.StatusCode, tt.code, body)
			}
			if tt.ctype != "" && res.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type %q, want %q", res.Header.Get("Content-Type"), tt.ctype)
			}
			if !strings.Contains(body, tt.body) {
				t.Errorf("body lacks %q:\n%.1000s", tt.body, body)
			}
			if tt.method == "HEAD" && body != "" {
				t.Errorf("HEAD has a body")
			}
			if tt.code == 405 && !strings.Contains(res.Header.Get("Allow"), "GET") {
				t.Errorf("405 without Allow: GET (Allow %q)", res.Header.Get("Allow"))
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
			if res.Header.Get("Content-Type") == html {
				if csp := res.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'; style-src 'sha256-") {
					t.Errorf("CSP %q", csp)
				}
			}
		})
	}
}

func TestMetricsNil(t *testing.T) {
	res, _ := do(t, newHandler(func(o *Options) { o.Metrics = nil }), "GET", "/metrics")
	if res.StatusCode != 404 {
		t.Fatalf("status %d, want 404", res.StatusCode)
	}
}

func TestReadiness(t *testing.T) {
	tests := []struct {
		ready func() error
		code  int
		body  string
	}{
		{nil, 200, "ready"},
		{func() error { return nil }, 200, "ready"},
		{func() error { return errors.New("runs overdue for flows: checkout") }, 503,
			"not ready: runs overdue for flows: checkout"},
	}
	for _, tt := range tests {
		res, body := do(t, newHandler(func(o *Options) { o.Ready = tt.ready }), "GET", "/readyz")
		if res.StatusCode != tt.code || body != tt.body {
			t.Errorf("got %d %q, want %d %q", res.StatusCode, body, tt.code, tt.body)
		}
	}
	// Liveness does not depend on readiness.
	res, body := do(t, newHandler(func(o *Options) { o.Ready = func() error { return errors.New("x") } }), "GET", "/healthz")
	if res.StatusCode != 200 || body != "ok" {
		t.Errorf("healthz got %d %q", res.StatusCode, body)
	}
}

func TestStatusPage(t *testing.T) {
	_, body := do(t, newHandler(), "GET", "/")
	wants := []string{
		`<meta http-equiv="refresh" content="10">`,
		"region <b>eu-west-1</b>", "version 1.2.3", "2026-03-14 15:09:26 UTC",
		"2 of 4 flows failing",
		`<a href="/flows/checkout">checkout</a>`, `<a href="/flows/browse">browse</a>`,
		`<a href="/flows/search">search</a>`, `<a href="/flows/fresh">fresh</a>`,
		// The failing story line, with the full trace id copyable.
		`<b>pay failed:</b> json.status == &#34;success&#34;: got &#34;processing&#34; (swallowed_error) · trace <code class="sel tid" title="` + failTrace + `">` + failTrace + `</code>`,
		// Trace id and start time of the last run.
		`<code class="sel">` + failTrace + `</code>`, `href="/runs/` + failTrace + `?flow=checkout"`,
		"Last run 46s ago (2026-03-14 15:08:40 UTC), took 201ms",
		// State, since, ratio.
		`<span class="badge fail">FAILING</span>`, `<span class="badge pass">PASSING</span>`, `<span class="badge nodata">NO DATA</span>`,
		"failing since 2026-03-14 15:07:40 UTC (1m46s ago, 2 runs)", "66.7% of the last 6 runs passed, over 5m46s",
		"passing since at least 2026-03-14 15:05:26 UTC (4m00s ago, all 4 kept runs)", "100.0% of the last 4 runs passed, over 4m00s",
		"failing since at least 2026-03-14 15:08:56 UTC (30s ago, the only kept run)", "0.0% of the last 1 run passed, over 30s",
		"waiting for the first run", "every 1m0s", "cron */5 * * * * (UTC)",
		`<span class="label">team=payments</span>`,
		// The steps table: status as text, attempts, http status, skipped, cleanup, span id, more failures.
		`<th scope="col">Step</th>`, "✗ failed (2 attempts)", "– skipped", `<span class="tag">cleanup</span>`,
		`<span class="tag">dep bank-gateway</span>`, "<td>201</td>", "<code>00000000000000a2</code>",
		`+1 more</a>`,
		// Strip: oldest first, a tooltip with time, duration, outcome and class.
		`title="2026-03-14 15:08:40 UTC · 201ms · failed at pay (swallowed_error)">✗</a></li></ol>`,
		`title="2026-03-14 15:03:40 UTC · 201ms · passed">✓</a>`,
		// Markup in data is escaped.
		"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;", "&lt;i&gt;search&lt;/i&gt;", "note=&lt;b&gt;bold&lt;/b&gt;",
	}
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	for _, bad := range []string{"<script", "<i>search", "<b>bold", "<b>nope"} {
		if strings.Contains(withoutOwnScript(body), bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	// Failing flows first (by name), then the rest by name.
	var order []string
	for _, m := range regexp.MustCompile(`<h2><span class="badge \w+">[A-Z ]+</span> <a href="/flows/([^"]+)">`).FindAllStringSubmatch(body, -1) {
		order = append(order, m[1])
	}
	if want := []string{"checkout", "search", "browse", "fresh"}; !slices.Equal(order, want) {
		t.Errorf("flow order %v, want %v", order, want)
	}
	// No log links unless configured.
	if strings.Contains(body, ">logs</a>") {
		t.Error("log link without LogSearchURL")
	}
}

func TestOverall(t *testing.T) {
	pass := &fakeSource{flows: []FlowInfo{{Name: "a"}, {Name: "b"}}, runs: map[string][]*result.Run{
		"a": {simpleRun("a", testNow, traceID("a", 0), true, "")},
		"b": {simpleRun("b", testNow, traceID("b", 0), true, "")},
	}}
	half := &fakeSource{flows: pass.flows, runs: map[string][]*result.Run{"a": pass.runs["a"]}}
	tests := []struct {
		name string
		src  Source
		want string
	}{
		{"all passing", pass, "all 2 flows passing"},
		{"some no data", half, "1 of 2 flows passing, 1 with no runs yet"},
		{"none", &fakeSource{}, "no flows configured"},
		{"nil source", nil, "no flows configured"},
		{"failing", newFake(), "2 of 4 flows failing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := do(t, newHandler(func(o *Options) { o.Source = tt.src }), "GET", "/")
			if res.StatusCode != 200 || !strings.Contains(body, tt.want) {
				t.Errorf("status %d, page lacks %q", res.StatusCode, tt.want)
			}
		})
	}
}

func TestLogSearchURL(t *testing.T) {
	h := newHandler(func(o *Options) { o.LogSearchURL = "https://logs.example/search?q=trace_id%3D{trace_id}" })
	link := `<a href="https://logs.example/search?q=trace_id%3D` + failTrace + `">logs</a>`
	for _, target := range []string{"/", "/flows/checkout", "/runs/" + failTrace} {
		if _, body := do(t, h, "GET", target); !strings.Contains(body, link) {
			t.Errorf("%s lacks %s", target, link)
		}
	}
	// A javascript: URL from config is neutralised by html/template.
	h = newHandler(func(o *Options) { o.LogSearchURL = "javascript:alert('{trace_id}')" })
	if _, body := do(t, h, "GET", "/"); strings.Contains(body, "javascript:") {
		t.Error("javascript: URL rendered")
	}
}

// TestTraceURL: with alerting.links.trace set, the status, flow and run
// pages link the trace id to the tracing backend, and follow a reload.
func TestTraceURL(t *testing.T) {
	var link atomic.Pointer[string]
	set := func(s string) { link.Store(&s) }
	set("http://jaeger.test:16686/trace/{trace_id}")
	h := newHandler(func(o *Options) { o.TraceURL = func() string { return *link.Load() } })
	want := `<a href="http://jaeger.test:16686/trace/` + failTrace + `">trace</a>`
	for _, target := range []string{"/", "/flows/checkout", "/runs/" + failTrace} {
		if _, body := do(t, h, "GET", target); !strings.Contains(body, want) {
			t.Errorf("%s lacks %s", target, want)
		}
	}
	set("")
	for _, target := range []string{"/", "/flows/checkout", "/runs/" + failTrace} {
		if _, body := do(t, h, "GET", target); strings.Contains(body, ">trace</a>") {
			t.Errorf("%s links a trace with the link unset", target)
		}
	}
}

func TestCSPAllowsTheStyleSheetAndRefreshScript(t *testing.T) {
	js, err := assets.ReadFile("refresh.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/", "/flows/checkout", "/runs/" + failTrace} {
		res, body := do(t, newHandler(), "GET", target)
		csp := res.Header.Get("Content-Security-Policy")
		m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("%s: no <style>", target)
		}
		sum := sha256.Sum256([]byte(m[1]))
		if want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q lacks %q", target, csp, want)
		}
		// The only script is the refresh, byte for byte, on the pages that
		// refresh; the CSP allows it by hash and nothing else.
		scripts := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindAllStringSubmatch(body, -1)
		wantScripts := 1
		if strings.HasPrefix(target, "/runs/") {
			wantScripts = 0
		}
		if len(scripts) != wantScripts || strings.Count(body, "<script") != wantScripts {
			t.Fatalf("%s: %d scripts, want %d", target, len(scripts), wantScripts)
		}
		for _, sc := range scripts {
			if sc[1] != string(js) {
				t.Errorf("%s: the script is not refresh.js as it is: %q", target, sc[1])
			}
			sum := sha256.Sum256([]byte(sc[1]))
			if want := "script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", target, csp, want)
			}
		}
		if strings.Contains(body, " style=") || strings.Contains(body, " on") && regexp.MustCompile(` on[a-z]+=`).MatchString(body) {
			t.Errorf("%s: inline style or event handler attribute on the page", target)
		}
		// Without script, the page still refreshes.
		if refresh := strings.Contains(body, `<noscript><meta http-equiv="refresh" content="10"></noscript>`); refresh != (wantScripts == 1) {
			t.Errorf("%s: meta refresh for no-script browsers: %v", target, refresh)
		}
	}
}

func TestFlowPage(t *testing.T) {
	_, body := do(t, newHandler(), "GET", "/flows/checkout")
	wants := []string{
		`<span class="badge fail">FAILING</span> checkout</h1>`,
		"<code>{{shop_url}}/api/orders/{{order_id}}/pay</code></td><td>bank-gateway</td><td>no</td>",
		"<code>{{shop_url}}/api/orders/{{order_id}}</code></td><td></td><td>yes</td>",
		"defined in <code>flows/checkout.yaml</code>",
		`<meta http-equiv="refresh"`,
	}
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("flow page lacks %q", w)
		}
	}
	// Every kept run, newest first, each with its steps table.
	var traces []string
	for _, m := range regexp.MustCompile(`<h3><span class="badge \w+">\w+</span> <a href="/runs/(\w+)\?flow=checkout">`).FindAllStringSubmatch(body, -1) {
		traces = append(traces, m[1])
	}
	var want []string
	for _, r := range newFake().runs["checkout"] {
		want = append(want, r.TraceID)
	}
	if !slices.Equal(traces, want) {
		t.Errorf("runs %v, want %v", traces, want)
	}
	if n := strings.Count(body, `<table class="steps">`); n != 6 {
		t.Errorf("%d steps tables, want 6", n)
	}
	_, body = do(t, newHandler(), "GET", "/flows/search")
	if !strings.Contains(body, "<code>{{shop_url}}/search?q=&lt;x&gt;</code>") {
		t.Error("URL template not escaped")
	}
}

func TestRunPage(t *testing.T) {
	_, body := do(t, newHandler(), "GET", "/runs/"+failTrace)
	wants := []string{
		`<span class="badge fail">FAILED</span> checkout run at 2026-03-14 15:08:40 UTC`,
		`<b>pay failed:</b>`,
		"<dt>Run id</dt><dd><code class=\"sel\">run-4bf92f35</code>",
		"started 3ms late",
		"<code>POST http://shop.local/api/orders/42/pay</code>",
		"new connection</td><td class=\"num\">2ms</td><td class=\"num\">1ms</td><td class=\"num\">5ms</td><td class=\"num\">20ms</td>",
		"reused connection</td><td class=\"num\">—</td>",
		`<td colspan="8" class="muted">not run</td>`,
		`<h2 id="failures">Failures</h2>`,
		"json.paid == true: got false", "expected <code>json.paid == true</code> got <code>false</code>",
		"&#43;80ms", "512 B",
		`<a href="/flows/checkout">← checkout</a>`,
	}
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("run page lacks %q", w)
		}
	}
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("a run never changes; its page should not refresh")
	}
	_, body = do(t, newHandler(), "GET", "/runs/"+traceID("browse", 0))
	if !strings.Contains(body, "<p>None.</p>") || strings.Contains(body, `class="story"`) {
		t.Error("passing run shows failures")
	}
}

type apiResponse struct {
	Region      string    `json:"region"`
	GeneratedAt time.Time `json:"generated_at"`
	Flows       []struct {
		Name        string            `json:"name"`
		Description string            `json:"description"`
		Schedule    string            `json:"schedule"`
		Labels      map[string]string `json:"labels"`
		State       string            `json:"state"`
		Runs        []result.Run      `json:"runs"`
	} `json:"flows"`
}

func TestAPIResults(t *testing.T) {
	src := newFake()
	tests := []struct {
		query  string
		flows  []string // in config order
		states []string
		runs   []int
	}{
		{"", []string{"fresh", "checkout", "search", "browse"}, []string{"no_data", "failing", "failing", "passing"}, []int{0, 1, 1, 1}},
		{"?limit=3", []string{"fresh", "checkout", "search", "browse"}, []string{"no_data", "failing", "failing", "passing"}, []int{0, 3, 1, 3}},
		{"?flow=checkout", []string{"checkout"}, []string{"failing"}, []int{1}},
		{"?flow=checkout&limit=1000", []string{"checkout"}, []string{"failing"}, []int{6}},
		{"?flow=fresh&limit=5", []string{"fresh"}, []string{"no_data"}, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			res, body := do(t, newHandler(), "GET", "/api/v1/results"+tt.query)
			if res.StatusCode != 200 {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			var got apiResponse
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if got.Region != "eu-west-1" || !got.GeneratedAt.Equal(testNow) {
				t.Errorf("region %q generated_at %v", got.Region, got.GeneratedAt)
			}
			if len(got.Flows) != len(tt.flows) {
				t.Fatalf("%d flows, want %d", len(got.Flows), len(tt.flows))
			}
			for i, f := range got.Flows {
				if f.Name != tt.flows[i] || f.State != tt.states[i] || len(f.Runs) != tt.runs[i] {
					t.Errorf("flow %d: %s %s %d runs, want %s %s %d", i, f.Name, f.State, len(f.Runs), tt.flows[i], tt.states[i], tt.runs[i])
				}
				if f.Labels == nil {
					t.Errorf("flow %s: labels null, want {}", f.Name)
				}
				// The runs decode back to what the source holds, newest first.
				for j, r := range f.Runs {
					want := src.runs[f.Name][j]
					if r.TraceID != want.TraceID || r.Status != want.Status || r.Duration != want.Duration ||
						len(r.Steps) != len(want.Steps) {
						t.Errorf("%s run %d: %+v, want %+v", f.Name, j, r, want)
						continue
					}
					for k := range r.Steps {
						g, w := r.Steps[k], want.Steps[k]
						if g.Name != w.Name || g.SpanID != w.SpanID || g.Status != w.Status || g.Class != w.Class ||
							g.Duration != w.Duration || g.Timings != w.Timings || g.Message() != w.Message() || g.Cleanup != w.Cleanup {
							t.Errorf("%s run %d step %d: %+v, want %+v", f.Name, j, k, g, w)
						}
					}
				}
			}
			if strings.Contains(body, `"runs":null`) {
				t.Error("runs encoded as null")
			}
		})
	}
}

func TestAPIFlows(t *testing.T) {
	_, body := do(t, newHandler(), "GET", "/api/v1/flows")
	var got []FlowInfo
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := newFake().flows
	if len(got) != len(want) {
		t.Fatalf("%d flows, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Name != want[i].Name || got[i].Schedule != want[i].Schedule || !slices.Equal(got[i].Steps, want[i].Steps) {
			t.Errorf("flow %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	_, body = do(t, newHandler(func(o *Options) { o.Source = &fakeSource{} }), "GET", "/api/v1/flows")
	if strings.TrimSpace(body) != "[]" {
		t.Errorf("no flows: %q, want []", body)
	}
}

func TestAgo(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "in the future (clock skew?)"},
		{500 * time.Millisecond, "just now"},
		{12 * time.Second, "12s ago"},
		{3*time.Minute + 5*time.Second, "3m05s ago"},
		{2*time.Hour + 10*time.Minute, "2h10m ago"},
		{76 * time.Hour, "3d4h ago"},
	}
	for _, tt := range tests {
		if got := ago(testNow, testNow.Add(-tt.d)); got != tt.want {
			t.Errorf("ago(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// discard is a ResponseWriter that only counts, so that the benchmark measures
// the handler rather than a recorder growing a 6 MB buffer.
type discard struct {
	h    http.Header
	code int
	n    int
}

func (d *discard) Header() http.Header { return d.h }
func (d *discard) WriteHeader(c int)   { d.code = c }
func (d *discard) Write(b []byte) (int, error) {
	d.n += len(b)
	return len(b), nil
}

// The page must render well under 100 ms for 1,000 flows × 30 runs, and
// stay cheap at 10,000 flows (a supported scale).
//
//   - cold: nothing memoized (the first request after start).
//   - steady: a new run for 1 in 6 flows between requests (flows every
//     minute, a browser refreshing every 10 s).
//   - unchanged: no new runs since the last request.
//
// Besides time and allocation, cold reports the page's size (MB/page), the
// runs the source returned per view (runs/op: the store decodes each of them),
// the heap a view leaves behind (MB-retained) and of that the memoized
// fragments (frags, MB-frags). The default page shows 100 flows; per_page=1000
// is the largest page.
func BenchmarkStatusPage(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		src := bigSource(n)
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) { benchStatusPage(b, src, "/") })
		b.Run(fmt.Sprintf("flows=%d,per_page=1000", n), func(b *testing.B) { benchStatusPage(b, src, "/?per_page=1000") })
	}
}

func benchStatusPage(b *testing.B, src *fakeSource, target string) {
	req := httptest.NewRequest("GET", target, nil)
	serve := func(b *testing.B, h http.Handler) int {
		w := &discard{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatal(w.code)
		}
		return w.n
	}
	opts := func(src Source) Options {
		return Options{Region: "r", Version: "v", Source: src, Now: func() time.Time { return testNow }}
	}
	b.Run("cold", func(b *testing.B) {
		var size int
		src.returned.Store(0)
		for b.Loop() {
			b.StopTimer()
			h := New(opts(src))
			b.StartTimer()
			size = serve(b, h)
		}
		b.ReportMetric(float64(size)/1e6, "MB/page")
		b.ReportMetric(float64(src.returned.Load())/float64(b.N), "runs/op")
		srv, h := newServer(opts(src))
		b.ReportMetric(retainedMB(b, serve, h), "MB-retained")
		frags, size := 0, 0
		for _, fr := range srv.frags.get() {
			frags++
			size += len(fr.strip) + len(fr.table)
		}
		b.ReportMetric(float64(frags), "frags")
		b.ReportMetric(float64(size)/1e6, "MB-frags")
	})
	b.Run("steady", func(b *testing.B) {
		// A copy to change: new runs replace the per-flow slices, never the
		// runs or arrays src shares with the other cases.
		src := &fakeSource{flows: src.flows, runs: maps.Clone(src.runs)}
		h := New(opts(src))
		serve(b, h)
		i := 0
		for b.Loop() {
			b.StopTimer()
			for range len(src.flows) / 6 {
				f := src.flows[i%len(src.flows)].Name
				i++
				r := *src.runs[f][0]
				r.TraceID = traceID(f, 1000+i)
				src.runs[f] = append([]*result.Run{&r}, src.runs[f][:len(src.runs[f])-1]...)
			}
			b.StartTimer()
			serve(b, h)
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		h := New(opts(src))
		serve(b, h)
		for b.Loop() {
			serve(b, h)
		}
	})
}

// retainedMB is the heap one view of a fresh handler leaves reachable, in MB:
// live heap after a collection, before vs after the view (a fresh handler's
// free list of page buffers is empty, so a buffer it keeps counts too).
func retainedMB(b *testing.B, serve func(*testing.B, http.Handler) int, h http.Handler) float64 {
	b.StopTimer()
	defer b.StartTimer()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	serve(b, h)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(h)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / 1e6
}

// Memoized fragments must never show stale runs: after any change, a warm
// handler renders exactly what a fresh one does.
func TestStatusPageMemoized(t *testing.T) {
	src := bigSource(100) // several chunks
	opts := Options{Region: "r", Source: src, Now: func() time.Time { return testNow }}
	warm := New(opts)
	get := func(h http.Handler) string {
		_, body := do(t, h, "GET", "/")
		return body
	}
	if a, b := get(warm), get(warm); a != b {
		t.Fatal("two renders of unchanged data differ")
	}
	// A new failing run for one flow, a new passing run for another, a flow
	// removed and one added without runs.
	add := func(name string, ok bool, trace string) {
		r := checkoutRun(testNow, trace, !ok)
		r.Flow = name
		src.runs[name] = append([]*result.Run{r}, src.runs[name]...)
	}
	add("flow-0001", false, failTrace)
	add("flow-0002", true, traceID("new", 2))
	src.flows = append(src.flows[:50:50], src.flows[51:]...)
	src.flows = append(src.flows, FlowInfo{Name: "flow-new"})
	got, want := get(warm), get(New(opts))
	if got != want {
		t.Fatal("memoized page differs from a fresh render")
	}
	if !strings.Contains(got, failTrace) || strings.Contains(got, "flow-0050") || !strings.Contains(got, "flow-new") {
		t.Error("page does not reflect the changes")
	}
}

func TestConcurrentRequests(t *testing.T) {
	src := bigSource(80)
	h := New(Options{Source: src})
	done := make(chan string)
	for i := range 8 {
		go func() {
			target := []string{"/", "/api/v1/results?limit=5", "/flows/flow-0003", "/runs/" + traceID("flow-0004", 3)}[i%4]
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
			if rec.Code != 200 {
				done <- target + ": " + rec.Result().Status
				return
			}
			done <- ""
		}()
	}
	for range 8 {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}

// An older run the store keeps as a summary: its page says so and shows
// what failed, without the tables of steps, requests and timings.
func TestSummarizedRunPage(t *testing.T) {
	src := newFake()
	old := src.runs["checkout"][1]
	sum := &result.Run{ID: old.ID, Flow: old.Flow, Region: old.Region, TraceID: old.TraceID, Labels: old.Labels,
		Planned: old.Planned, Start: old.Start, Duration: old.Duration, Status: old.Status, Class: old.Class,
		FailedStep: "pay", Summarized: true, Steps: []result.Step{{Name: "pay", Status: result.Failed,
			Class: result.SwallowedError, Failures: []result.Failure{{Message: payMessage}}}}}
	src.runs["checkout"][1] = sum
	h := newHandler(func(o *Options) { o.Source = src })
	_, body := do(t, h, "GET", "/runs/"+old.TraceID)
	for _, w := range []string{`<b>pay failed:</b>`, "Kept as a summary, without its steps", `json.status == &#34;success&#34;: got &#34;processing&#34;`} {
		if !strings.Contains(body, w) {
			t.Errorf("summarized run page lacks %q", w)
		}
	}
	for _, no := range []string{"<h2>Timings</h2>", "<h2>Requests</h2>", `<table class="steps">`} {
		if strings.Contains(body, no) {
			t.Errorf("summarized run page shows %q", no)
		}
	}
	_, body = do(t, h, "GET", "/flows/checkout")
	if strings.Count(body, "Kept as a summary") != 1 || strings.Count(body, `<table class="steps">`) != 5 {
		t.Errorf("flow page: %d summaries, %d step tables", strings.Count(body, "Kept as a summary"), strings.Count(body, `<table class="steps">`))
	}
}

// The streamed answer is byte for byte (whitespace aside) what encoding the
// whole apiResults at once gives.
func TestAPIResultsStreamedAsOneDocument(t *testing.T) {
	src := bigSource(50)
	h := New(Options{Region: "eu-west-1", Source: src, Now: func() time.Time { return testNow }})
	for _, q := range []string{"", "?limit=30", "?flow=flow-0007&limit=5"} {
		_, body := do(t, h, "GET", "/api/v1/results"+q)
		want := apiResults{Region: "eu-west-1", GeneratedAt: testNow, Flows: []apiFlowRuns{}}
		limit := 1
		if q == "?limit=30" {
			limit = 30
		}
		for _, f := range src.flows {
			if q == "?flow=flow-0007&limit=5" {
				if f.Name != "flow-0007" {
					continue
				}
				limit = 5
			}
			runs := src.runs[f.Name][:limit]
			want.Flows = append(want.Flows, apiFlowRuns{Name: f.Name, Description: f.Description, Schedule: f.Schedule,
				Labels: f.Labels, State: stateOf(runs).API, Runs: runs})
		}
		wb, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := json.Compact(&got, []byte(body)); err != nil {
			t.Fatalf("%s: not one JSON document: %v", q, err)
		}
		if !bytes.Equal(got.Bytes(), wb) {
			t.Errorf("%s: streamed answer differs from the whole one (%d vs %d bytes)", q, got.Len(), len(wb))
		}
	}
}

// withoutOwnScript is body without the page's one script, the refresh (the
// CSP allows it by hash), so that a test can look for injected ones.
func withoutOwnScript(body string) string {
	js, err := assets.ReadFile("refresh.js")
	if err != nil {
		panic(err)
	}
	return strings.Replace(body, "<script>"+string(js)+"</script>", "", 1)
}

// A client that goes away mid-answer stops the store reads for it.
func TestAPIResultsStopsWhenTheClientLeaves(t *testing.T) {
	src := bigSource(200)
	h := New(Options{Region: "r", Source: src, Now: func() time.Time { return testNow }})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", "/api/v1/results?limit=30", nil).WithContext(ctx)
	w := &leavingWriter{ResponseRecorder: httptest.NewRecorder(), after: 64 << 10, cancel: cancel}
	h.ServeHTTP(w, req)
	if n := src.recentN.Load(); n == 0 || n >= 200 {
		t.Errorf("%d flows read after the client left, want some but not all 200", n)
	}
}

// leavingWriter cancels its request once after bytes are written, as a
// client hanging up would.
type leavingWriter struct {
	*httptest.ResponseRecorder
	after  int
	cancel context.CancelFunc
}

func (w *leavingWriter) Write(b []byte) (int, error) {
	if w.after -= len(b); w.after <= 0 {
		w.cancel()
	}
	return w.ResponseRecorder.Write(b)
}

// retrySource: checkout whose newest run is a retry confirming the failure
// of the run before it, and earlier a blip that its retry cleared. Six runs,
// four final: three passed.
func retrySource() (f *fakeSource, confirmed, retry, blip, cleared string) {
	f = newFake()
	confirmed, retry, blip, cleared = traceID("r", 1), traceID("r", 0), traceID("r", 4), traceID("r", 3)
	at := func(min int) time.Time { return testNow.Add(-time.Duration(min) * time.Minute) }
	runs := []*result.Run{
		checkoutRun(at(1).Add(2*time.Second), retry, true),
		checkoutRun(at(1), confirmed, true),
		checkoutRun(at(2), traceID("r", 2), false),
		checkoutRun(at(3).Add(2*time.Second), cleared, false),
		checkoutRun(at(3), blip, true),
		checkoutRun(at(4), traceID("r", 5), false),
	}
	runs[0].Retry, runs[0].RetryOf = 1, confirmed
	runs[1].Retried = true
	runs[3].Retry, runs[3].RetryOf = 1, blip
	runs[4].Retried = true
	f.runs["checkout"] = runs
	return f, confirmed, retry, blip, cleared
}

// Retries are marked wherever runs are listed, and ratios and streaks
// count final runs, as the rules do (issue 12, item 11): the run and its
// confirming retry are one failed slot, not two failed runs.
func TestRetriesMarked(t *testing.T) {
	f, confirmed, retry, blip, cleared := retrySource()
	h := newHandler(func(o *Options) { o.Source = f })
	wants := map[string][]string{
		"/": {
			"75.0% of the last 4 runs passed, over 4m00s (a failure retried at once counts once)",
			// The streak began with the confirmed run's first attempt: one slot.
			"failing since 2026-03-14 15:08:26 UTC (1m00s ago, 1 run)",
			// The last run is the retry, and says so.
			`took 201ms <span class="tag retry"><a href="/runs/` + confirmed + `?flow=checkout">retry 1 of run ` + confirmed[:8] + `</a></span> · trace`,
			// In the strip: the superseded attempts are ↻, named in their titles.
			`<a class="r" href="/runs/` + confirmed + `?flow=checkout" title="2026-03-14 15:08:26 UTC · 201ms · failed at pay (swallowed_error) · superseded by retry 1, run ` + retry[:8] + ` (not counted)">↻</a>`,
			`<a class="r" href="/runs/` + blip + `?flow=checkout"`,
			`aria-label="last 4 runs and 2 superseded attempts, oldest first"`,
			`href="/runs/` + cleared + `?flow=checkout" title="2026-03-14 15:06:28 UTC · 201ms · passed · retry 1 of run ` + blip[:8] + `">✓</a>`,
		},
		"/flows/checkout": {
			"75.0% of the last 4 runs passed",
			`<span class="tag retry"><a href="/runs/` + retry + `?flow=checkout">superseded by retry 1, run ` + retry[:8] + ` (not counted)</a></span></h3>`,
			`<span class="tag retry"><a href="/runs/` + confirmed + `?flow=checkout">retry 1 of run ` + confirmed[:8] + `</a></span></h3>`,
			`<span class="tag retry"><a href="/runs/` + blip + `?flow=checkout">retry 1 of run ` + blip[:8] + `</a></span></h3>`,
		},
		"/runs/" + confirmed: {`<dt>Retry</dt><dd><span class="tag retry"><a href="/runs/` + retry + `?flow=checkout">superseded by retry 1, run ` + retry[:8] + ` (not counted)</a></span></dd>`},
		"/runs/" + retry:     {`<dt>Retry</dt><dd><span class="tag retry"><a href="/runs/` + confirmed + `?flow=checkout">retry 1 of run ` + confirmed[:8] + `</a></span></dd>`},
	}
	for target, ws := range wants {
		_, body := do(t, h, "GET", target)
		for _, w := range ws {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", target, w)
			}
		}
		if strings.Contains(body, "6 runs") {
			t.Errorf("%s counts the 6 runs kept, attempts included, as runs", target)
		}
	}
	// The results API carries the same facts as fields.
	if _, body := do(t, h, "GET", "/api/v1/results?flow=checkout&limit=10"); !strings.Contains(body, `"retry":1,"retry_of":"`+confirmed+`"`) ||
		!strings.Contains(body, `"retried":true`) {
		t.Errorf("/api/v1/results lacks the retry fields:\n%s", body)
	}
	// A run that is neither has no mark.
	if _, body := do(t, h, "GET", "/runs/"+traceID("r", 2)); strings.Contains(body, "<dt>Retry</dt>") {
		t.Errorf("a plain run is marked as a retry")
	}

	// While the retry confirming a failure is going, the flow's state is
	// its last final run's: not yet failing.
	f.runs["checkout"] = f.runs["checkout"][1:]
	_, body := do(t, h, "GET", "/")
	for _, w := range []string{"100.0% of the last 3 runs passed", "passing since at least 2026-03-14 15:05:26 UTC",
		`<span class="badge pass">PASSING</span> <a href="/flows/checkout">`} {
		if !strings.Contains(body, w) {
			t.Errorf("with the retry in flight, the status page lacks %q", w)
		}
	}
}

// With two retries, the middle attempt is both a retry and superseded.
func TestMarkRetryChain(t *testing.T) {
	a := &result.Run{TraceID: traceID("c", 0), Retried: true}
	b := &result.Run{TraceID: traceID("c", 1), Retry: 1, RetryOf: a.TraceID, Retried: true}
	c := &result.Run{TraceID: traceID("c", 2), Retry: 2, RetryOf: b.TraceID}
	plain := &result.Run{TraceID: traceID("c", 3)}
	runs := []*result.Run{c, b, a, plain}
	tests := []struct {
		r    *result.Run
		want string
	}{
		{a, "superseded by retry 1, run " + b.TraceID[:8] + " (not counted)"},
		{b, "retry 1 of run " + a.TraceID[:8] + ", superseded by retry 2, run " + c.TraceID[:8] + " (not counted)"},
		{c, "retry 2 of run " + b.TraceID[:8]},
		{plain, ""},
		{&result.Run{Retried: true}, "superseded by its retry (not counted)"}, // its retry is not kept
	}
	for _, tt := range tests {
		if got := markRetry(tt.r, runs).String(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.r.TraceID, got, tt.want)
		}
	}
}

// TestRunPageFlowHint: a run's link says its flow (?flow=), and its page
// reads only that flow's runs, which may come from the history on disk;
// without the hint, or with a wrong one, every flow's until it is found.
func TestRunPageFlowHint(t *testing.T) {
	src := newFake()
	h := newHandler(func(o *Options) { o.Source = src })
	trace := traceID("browse", 2)
	for _, tt := range []struct {
		target string
		only   bool // only the browse flow's runs were read
	}{
		{"/runs/" + trace + "?flow=browse", true},
		{"/runs/" + trace, false},
		{"/runs/" + trace + "?flow=checkout", false},
		{"/runs/" + trace + "?flow=nope", false},
	} {
		src.track()
		res, body := do(t, h, "GET", tt.target)
		if res.StatusCode != 200 || !strings.Contains(body, "browse run") {
			t.Errorf("%s: %d", tt.target, res.StatusCode)
		}
		calls := src.fullCalls()
		if got := len(calls) == 1 && calls["browse"] == 1; got != tt.only {
			t.Errorf("%s: flows read %v", tt.target, calls)
		}
	}
	// The pages link runs with the hint.
	if _, body := do(t, h, "GET", "/flows/browse"); !strings.Contains(body, `href="/runs/`+trace+`?flow=browse"`) {
		t.Errorf("flow page links no run with ?flow=browse")
	}
}
