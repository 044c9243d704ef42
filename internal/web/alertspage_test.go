package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// hostileAlerts holds alerts and silences whose labels and texts are HTML.
type hostileAlerts struct {
	fakeAlerts
	silences []SilenceInfo
}

func (f *hostileAlerts) Silences() ([]SilenceInfo, error) { return f.silences, nil }

const hostile = `<script>alert(1)</script>`

// The alerts page lists alerts (state, severity, since, summary, held,
// labels, delivery per channel) and silences, escaping what the labels
// and texts hold.
func TestAlertsPageRendersAlertsAndSilences(t *testing.T) {
	fa := &hostileAlerts{fakeAlerts: fakeAlerts{alerts: []AlertInfo{
		{Key: "pending-key", Rule: "latency_high", Severity: "warning", Phase: "pending", Summary: "p95 above 2s",
			Held: "waiting for 2 of 3 regions", Since: testNow.Add(-90 * time.Second)},
		{Key: "firing-key", Rule: "checkout_failing", Severity: "critical", Phase: "firing", Summary: "checkout " + hostile,
			Labels: map[string]string{"team": hostile}, Since: testNow.Add(-5 * time.Minute), FiredAt: testNow.Add(-3 * time.Minute),
			Notified: []string{"console"}, Sending: []string{"webhook"},
			Retrying: []DeliveryInfo{{Notifier: "slack", State: "retrying", Attempts: 4, NextAttempt: testNow.Add(70 * time.Second), Error: "HTTP 503"}},
			Failed:   []DeliveryInfo{{Notifier: "pagerduty", State: "failed", Attempts: 1, FailedAt: testNow.Add(-time.Minute), Error: "HTTP 400: " + hostile}}},
	}}, silences: []SilenceInfo{
		{ID: "s1", Matchers: map[string]string{"rule": hostile}, Starts: testNow.Add(-time.Hour), Ends: testNow.Add(time.Hour),
			Comment: "deploy " + hostile, CreatedBy: "ana", Origin: "api"},
		{ID: "cfg-0", Matchers: map[string]string{"flow": "search"}, Starts: testNow.Add(-time.Hour), Ends: testNow.Add(48 * time.Hour), Origin: "config"},
	}}
	res, body := do(t, newHandler(func(o *Options) { o.Alerts = fa }), http.MethodGet, "/alerts")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("/alerts: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if strings.Contains(body, hostile) || strings.Count(body, "&lt;script&gt;alert(1)&lt;/script&gt;") != 5 {
		t.Errorf("hostile text not escaped (or not shown) 5 times:\n%s", body)
	}
	for _, want := range []string{
		`<span class="badge fail">firing</span> critical`,
		`<th scope="row">checkout_failing<br><code class="muted">firing-key</code> <span class="label">team=&lt;script&gt;`,
		`3m00s ago<br><span class="muted">2026-03-14 15:06:26 UTC</span>`,
		`delivered: console<br>sending: webhook<br><span class="fail">retrying slack: 4 attempt(s), next in 1m10s: HTTP 503</span>`,
		`<span class="fail">NOT DELIVERED pagerduty: failed for good 1m00s ago after 1 attempt(s): HTTP 400: &lt;script&gt;`,
		`<span class="badge nodata">pending</span> warning`,
		`<i>held: waiting for 2 of 3 regions</i>`,
		`<button type="button" class="js-only" hidden data-expire="s1">Expire</button>`,
		`<code class="sel">curl -X DELETE http://example.com/api/v1/silences/s1</code>`,
		`<span class="label">flow=search</span>`, `from probes.yaml`,
		`<form id="silence-form"`, `name="matchers"`, `name="duration"`, `name="comment"`, `name="created_by"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/alerts lacks %q", want)
		}
	}
	if strings.Index(body, "firing-key") > strings.Index(body, "pending-key") {
		t.Error("firing alerts are not listed first")
	}
	if strings.Contains(body, `data-expire="cfg-0"`) {
		t.Error("a silence from probes.yaml has an expire button")
	}
	if strings.Contains(body, `id="silence-token"`) {
		t.Error("token field without an API token configured")
	}

	// The status page links here, not to the raw JSON.
	if _, body := do(t, newHandler(func(o *Options) { o.Alerts = fa }), http.MethodGet, "/"); !strings.Contains(body, `<a href="/alerts">alerts and silences</a>`) {
		t.Error("status page does not link to /alerts")
	}
	// Without alerting the page says so.
	if res, body := do(t, newHandler(), http.MethodGet, "/alerts"); res.StatusCode != 200 || !strings.Contains(body, "Alerting is not configured") {
		t.Errorf("/alerts without alerting: %d", res.StatusCode)
	}
}

// The alerts page's one script is silences.js as it is, allowed by its hash;
// it may fetch this origin and nothing else; the style sheet is allowed by
// its hash as on every page.
func TestAlertsPageCSPAllowsItsScript(t *testing.T) {
	js, err := assets.ReadFile("silences.js")
	if err != nil {
		t.Fatal(err)
	}
	res, body := do(t, newHandler(func(o *Options) { o.Alerts = &silenceAlerts{} }), http.MethodGet, "/alerts")
	csp := res.Header.Get("Content-Security-Policy")
	scripts := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindAllStringSubmatch(body, -1)
	if len(scripts) != 1 || strings.Count(body, "<script") != 1 {
		t.Fatalf("%d scripts, want 1", len(scripts))
	}
	if scripts[0][1] != string(js) {
		t.Errorf("the script is not silences.js as it is: %q", scripts[0][1])
	}
	sum := sha256.Sum256(js)
	if want := "script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "';"; !strings.Contains(csp, want) {
		t.Errorf("CSP %q lacks %q", csp, want)
	}
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
	sum = sha256.Sum256([]byte(m[1]))
	if want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) {
		t.Errorf("CSP %q lacks %q", csp, want)
	}
	for _, want := range []string{"default-src 'none'", "connect-src 'self'", "form-action 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if regexp.MustCompile(` on[a-z]+=| style=`).MatchString(body) {
		t.Error("inline event handler or style on the page")
	}
	// The other pages keep their CSP: no fetch, no silences.js.
	res, _ = do(t, newHandler(), http.MethodGet, "/flows/checkout")
	if csp := res.Header.Get("Content-Security-Policy"); strings.Contains(csp, "connect-src") {
		t.Errorf("flow page CSP %q allows fetch", csp)
	}
}

// The page's form, sent as silences.js sends it (a same-origin fetch of
// JSON built from the form's fields), creates a silence through the real
// handler, the page lists it, and its expire button's request removes it.
// The same form posted as a browser would without the script, or from
// another site, changes nothing.
func TestAlertsPageFormCreatesAndExpiresSilence(t *testing.T) {
	sa := &silenceAlerts{}
	srv := httptest.NewServer(newHandler(func(o *Options) { o.Alerts = sa }))
	defer srv.Close()
	get := func() string {
		res, err := http.Get(srv.URL + "/alerts")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	page := get()
	js, _ := assets.ReadFile("silences.js")
	// What the script sends: the fields it reads exist in the form, and it
	// posts JSON to the silences API with the matchers parsed as k=v.
	for _, field := range regexp.MustCompile(`form\.elements\.([a-z_]+)`).FindAllStringSubmatch(string(js), -1) {
		if !strings.Contains(page, `name="`+field[1]+`"`) {
			t.Errorf("the script reads form field %q, which the page lacks", field[1])
		}
	}
	for _, want := range []string{`send("POST", "/api/v1/silences", {matchers: matchers, duration:`, `"Content-Type": "application/json"`,
		`send("DELETE", "/api/v1/silences/" + encodeURIComponent(id))`, `getAttribute("data-expire")`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("silences.js lacks %q", want)
		}
	}
	send := func(method, path, ctype, site, body string) int {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Sec-Fetch-Site", site)
		req.Header.Set("Origin", srv.URL)
		if site == "cross-site" {
			req.Header.Set("Origin", "https://evil.example")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	form := `{"matchers":{"rule":"checkout_failing","region":"eu-west-1"},"duration":"30m","comment":"deploy <b>","created_by":"ana"}`
	if code := send("POST", "/api/v1/silences", "application/x-www-form-urlencoded", "same-origin", "matchers=rule%3Dx&duration=2h"); code != http.StatusUnsupportedMediaType {
		t.Errorf("form-encoded post: %d, want 415", code)
	}
	if code := send("POST", "/api/v1/silences", "application/json", "cross-site", form); code != http.StatusForbidden {
		t.Errorf("cross-site post: %d, want 403", code)
	}
	if sa.count() != 0 {
		t.Fatal("a refused request made a silence")
	}
	if code := send("POST", "/api/v1/silences", "application/json", "same-origin", form); code != http.StatusCreated {
		t.Fatalf("the page's post: %d, want 201", code)
	}
	sil, _ := sa.Silences()
	if len(sil) != 1 || sil[0].Matchers["region"] != "eu-west-1" || sil[0].CreatedBy != "ana" || sil[0].Ends.Sub(sil[0].Starts) != 30*time.Minute {
		t.Fatalf("silence = %+v", sil)
	}
	page = get()
	button := regexp.MustCompile(`data-expire="([^"]+)"`).FindStringSubmatch(page)
	if button == nil || button[1] != sil[0].ID || !strings.Contains(page, "deploy &lt;b&gt;") {
		t.Fatalf("the page does not list the new silence with its expire button")
	}
	if code := send("DELETE", "/api/v1/silences/"+button[1], "", "cross-site", ""); code != http.StatusForbidden {
		t.Errorf("cross-site expire: %d, want 403", code)
	}
	if code := send("DELETE", "/api/v1/silences/"+button[1], "application/json", "same-origin", ""); code != http.StatusNoContent {
		t.Fatalf("the page's expire: %d, want 204", code)
	}
	if sa.count() != 0 || strings.Contains(get(), "data-expire=") {
		t.Error("the silence is still there")
	}
	var api struct{ Silences []SilenceInfo }
	res, _ := http.Get(srv.URL + "/api/v1/silences")
	json.NewDecoder(res.Body).Decode(&api)
	res.Body.Close()
	if len(api.Silences) != 0 {
		t.Errorf("API lists %d silences", len(api.Silences))
	}
}

// With an API token the form asks for it, and the curl command shows where.
func TestAlertsPageAsksForTheToken(t *testing.T) {
	_, body := do(t, newHandler(func(o *Options) { o.Alerts = &silenceAlerts{}; o.APIToken = "s3cret-token" }), http.MethodGet, "/alerts")
	if !strings.Contains(body, `id="silence-token" name="token" type="password"`) || !strings.Contains(body, `Authorization: Bearer $PROBER_API_TOKEN`) {
		t.Error("no token field or curl header")
	}
	if strings.Contains(body, "s3cret-token") {
		t.Error("the token is on the page")
	}
}
