package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// TestSecretsNeverLeak seeds distinct secret values everywhere a secret can
// go (a request body, a header, a URL query, a failing URL, the PagerDuty
// routing key, the Slack token, a heartbeat URL), drives an incident so that
// pages go out, and scans everything the prober emits: logs, metrics, every
// page of the status site and API, the pages PagerDuty and Slack received,
// `once` text/JSON/JUnit, `validate` and `rules` output, and the state file.
func TestSecretsNeverLeak(t *testing.T) {
	secrets := map[string]string{
		"SHOP_PASSWORD": "pw-LeakCanary-7d1e",
		"API_TOKEN":     "tok-LeakCanary-93ab",
		"QUERY_KEY":     "qk-LeakCanary-55f0",
		"PD_KEY":        "LEAKCANARY0123456789abcdefABCDEF",
		"SLACK_TOKEN":   "xoxb-LeakCanary-0042",
		"HB_TOKEN":      "hb-LeakCanary-c0de",
	}
	var beats atomic.Int32
	hb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { beats.Add(1) }))
	defer hb.Close()

	e := newPagingEnvWith(t, secrets, `
  - name: checkout_failing
    flow_failing: {flows: [checkout]}
    for: 2s
    keep_firing_for: 2s
`)
	// A second flow that carries secrets in a header and a query, and one
	// that fails on a URL with a secret in it (its error names the URL).
	os.WriteFile(filepath.Join(e.dir, "flows", "leaky.yaml"), []byte(`name: leaky
every: 2s
steps:
  - name: health
    request:
      url: "{{shop_url}}/healthz"
      headers: {X-Api-Token: "{{secret:API_TOKEN}}"}
      query: {key: "{{secret:QUERY_KEY}}"}
    expect: [status == 200]
  - name: broken
    request: {url: "http://127.0.0.1:1/x?key={{secret:QUERY_KEY}}"}
`), 0o644)
	cfg := read(t, e.cfg)
	cfg = strings.Replace(cfg, "flows: [flows/checkout.yaml]", "flows: [flows/checkout.yaml, flows/leaky.yaml]", 1)
	cfg = strings.Replace(cfg, "secrets:\n", "secrets:\n  API_TOKEN: {env: API_TOKEN}\n  QUERY_KEY: {env: QUERY_KEY}\n  HB_TOKEN: {env: HB_TOKEN}\n", 1)
	cfg = strings.Replace(cfg, "alerting:\n", fmt.Sprintf("alerting:\n  heartbeat: {url: \"%s/ping/{{secret:HB_TOKEN}}\", interval: 1s}\n", hb.URL), 1)
	os.WriteFile(e.cfg, []byte(cfg), 0o644)
	e.env = append(e.env, "API_TOKEN="+secrets["API_TOKEN"], "QUERY_KEY="+secrets["QUERY_KEY"], "HB_TOKEN="+secrets["HB_TOKEN"])

	p, base := e.startProber(t)
	waitRun(t, base, "checkout", 30*time.Second, passed)
	waitRun(t, base, "leaky", 30*time.Second, func(r *result.Run) bool { return r.FailedStep == "broken" })
	e.fault(t, `{"gateway_status":504,"swallow_errors":true}`)
	eventually(t, 30*time.Second, "a page", func() bool { return len(e.actions("trigger")) > 0 && len(e.topLevel()) > 0 })
	eventually(t, 10*time.Second, "a heartbeat", func() bool { return beats.Load() > 0 })

	var outputs []string
	add := func(what, s string) { outputs = append(outputs, what+"\x00"+s) }
	var trace string
	for _, path := range []string{"/", "/flows/checkout", "/flows/leaky", "/api/v1/results?limit=100", "/api/v1/flows",
		"/api/v1/alerts", "/api/v1/silences", "/metrics", "/readyz"} {
		_, body := get(t, base+path, "Accept", "application/openmetrics-text; version=1.0.0")
		add(path, body)
		if path == "/api/v1/results?limit=100" {
			trace = regexp.MustCompile(`"trace_id":"([0-9a-f]{32})"`).FindStringSubmatch(body)[1]
		}
	}
	_, runPage := get(t, base+"/runs/"+trace)
	add("/runs", runPage)
	for _, ev := range e.pd.Events() {
		// The routing key travels in the event, where it belongs; the rest
		// of the event (summary, details, links) must not carry it.
		add("pagerduty event", strings.Replace(string(ev.Raw), `"routing_key":"`+secrets["PD_KEY"]+`"`, "", 1))
	}
	for _, m := range e.slack.Messages() {
		b, _ := json.Marshal(m)
		add("slack message", string(b))
	}

	env := e.env
	junit := filepath.Join(t.TempDir(), "junit.xml")
	out, errOut, _ := runCmd(t, env, "once", "--config", e.cfg, "--junit", junit)
	add("once stdout", out)
	add("once stderr", errOut)
	add("junit", read(t, junit))
	out, errOut, _ = runCmd(t, env, "once", "--config", e.cfg, "--json")
	add("once --json", out+errOut)
	out, errOut, _ = runCmd(t, env, "validate", "--secrets", "--config", e.cfg)
	add("validate", out+errOut)
	out, errOut, _ = runCmd(t, env, "rules", "--config", e.cfg)
	add("rules", out+errOut)
	// A broken config with the secrets set: the errors must not quote them.
	bad := strings.Replace(cfg, "flows: [", "bogus: \"${env:SHOP_PASSWORD}\"\nflows: [", 1)
	badPath := filepath.Join(e.dir, "bad.yaml")
	os.WriteFile(badPath, []byte(bad), 0o644)
	out, errOut, code := runCmd(t, env, "validate", "--secrets", "--config", badPath)
	if code != 2 {
		t.Errorf("bad config: exit %d", code)
	}
	add("validate bad", out+errOut)

	p.stop(t, 30*time.Second)
	add("prober stdout", read(t, p.stdout))
	add("prober stderr", read(t, p.stderr))
	add("state db", read(t, filepath.Join(e.dir, "state", "prober.db")))
	add("run history", read(t, filepath.Join(e.dir, "state", "history.db")))

	for _, o := range outputs {
		what, text, _ := strings.Cut(o, "\x00")
		if text == "" && !strings.HasSuffix(what, "stderr") {
			t.Errorf("%s: empty (the scan would prove nothing)", what)
		}
		for name, v := range secrets {
			for _, form := range []string{v, url.QueryEscape(v)} {
				if strings.Contains(text, form) {
					i := strings.Index(text, form)
					t.Errorf("secret %s leaks in %s: …%s…", name, what, text[max(0, i-80):min(len(text), i+len(form)+20)])
				}
			}
		}
	}
	if !strings.Contains(strings.Join(outputs, ""), "[secret:QUERY_KEY]") {
		t.Error("the redaction marker never appears: the secret-bearing URL was not exercised")
	}
}
