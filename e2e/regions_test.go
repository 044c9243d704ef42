package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/fakes"
)

// Many regions: three probers (role probe, regions a, b, c) against one
// shop, a real Prometheus scraping them, and evaluators (role evaluate)
// reading every region there and paging through the fakes.
type regionsEnv struct {
	shopURL      string
	pd           *fakes.PagerDuty
	slack        *fakes.Slack
	cfg          string
	env          []string
	probers      map[string]*proc
	proberAddrs  map[string]string
	prom         *promServer
	stateDirBase string
}

func newRegionsEnv(t *testing.T) *regionsEnv {
	t.Helper()
	prometheusBinary(t)
	e := &regionsEnv{pd: fakes.NewPagerDuty(pdKey), slack: fakes.NewSlack(slackTok, "#payments-oncall"),
		probers: map[string]*proc{}, proberAddrs: map[string]string{}, stateDirBase: t.TempDir()}
	t.Cleanup(e.pd.Close)
	t.Cleanup(e.slack.Close)
	shopAddr := freeAddr(t)
	e.shopURL = "http://" + shopAddr
	e.env = []string{"SHOP_PASSWORD=" + secretPW, "SHOP_URL=" + e.shopURL, "PD_KEY=" + pdKey, "SLACK_TOKEN=" + slackTok}
	start(t, e.env, "shop", "--listen", shopAddr, "--log", filepath.Join(t.TempDir(), "shop.log"), "--settle-delay", "100ms")
	waitHTTP(t, e.shopURL+"/healthz")

	// Prometheus first (the evaluators need its URL), scraping probers on
	// addresses chosen now.
	for _, r := range []string{"a", "b", "c"} {
		e.proberAddrs[r] = freeAddr(t)
	}
	e.prom = startPrometheus(t, map[string][]string{"prober": {e.proberAddrs["a"], e.proberAddrs["b"], e.proberAddrs["c"]}}, time.Second)

	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "flows"), 0o755)
	b, err := os.ReadFile("../flows/checkout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	flow := strings.Replace(string(b), "every: 60s", "every: 2s", 1)
	flow = strings.Replace(flow, "timeout: 30s", "timeout: 5s", 1)
	flow = strings.Replace(flow, "timeout: 8s", "timeout: 4s", 1) // the pay step's, under the flow's
	flow = strings.Replace(flow, "within: 10s", "within: 3s", 1)
	os.WriteFile(filepath.Join(dir, "flows", "checkout.yaml"), []byte(flow), 0o644)
	e.cfg = filepath.Join(dir, "probes.yaml")
	os.WriteFile(e.cfg, []byte(fmt.Sprintf(`vars: {shop_url: "${env:SHOP_URL}", shop_user: synthetic-1}
secrets:
  SHOP_PASSWORD: {env: SHOP_PASSWORD}
  PD_KEY: {env: PD_KEY}
  SLACK_TOKEN: {env: SLACK_TOKEN}
flows: [flows/checkout.yaml]
prometheus: {url: %q, timeout: 5s}
notifiers:
  pagerduty: {type: pagerduty, url: %q, routing_key: "{{secret:PD_KEY}}"}
  slack: {type: slack, url: %q, token: "{{secret:SLACK_TOKEN}}", channel: "#payments-oncall"}
alerting:
  evaluation_interval: 1s
  routes: {critical: [pagerduty, slack], warning: [slack]}
rules:
  - name: checkout_failing
    flow_failing: {flows: [checkout], min_regions: 2, regions: [a, b, c], degraded_severity: warning}
    for: 4s
    keep_firing_for: 6s
  - name: region_silent
    absent: {regions: [a, b, c]}
    for: 4s
    keep_firing_for: 4s
`, e.prom.URL, e.pd.URL, e.slack.APIURL)), 0o644)

	for _, r := range []string{"a", "b", "c"} {
		e.probers[r] = start(t, e.env, "run", "--role", "probe", "--region", r, "--config", e.cfg, "--listen", e.proberAddrs[r],
			"--state-dir", filepath.Join(e.stateDirBase, "probe-"+r))
	}
	for _, r := range []string{"a", "b", "c"} {
		e.prom.waitSeries(t, fmt.Sprintf(`prober_last_run_success{flow="checkout",region=%q} == 1`, r), 60*time.Second)
	}
	return e
}

func (e *regionsEnv) evaluator(t *testing.T, name string) *proc {
	t.Helper()
	return start(t, e.env, "run", "--role", "evaluate", "--region", "global", "--config", e.cfg, "--listen", freeAddr(t),
		"--state-dir", filepath.Join(e.stateDirBase, "eval-"+name), "--shutdown-grace", "5s")
}

func (e *regionsEnv) triggers(rule string) []fakes.PDEvent {
	var out []fakes.PDEvent
	for _, ev := range e.pd.Events() {
		if ev.Action == "trigger" && strings.Contains(ev.DedupKey, rule) {
			out = append(out, ev)
		}
	}
	return out
}

func (e *regionsEnv) incidents(rule string) []fakes.PDIncident {
	var out []fakes.PDIncident
	for _, inc := range e.pd.Incidents() {
		if strings.Contains(inc.DedupKey, rule) {
			out = append(out, inc)
		}
	}
	return out
}

func (e *regionsEnv) topLevel() []fakes.SlackMessage {
	var out []fakes.SlackMessage
	for _, m := range e.slack.Messages() {
		if m.ThreadTS == "" || m.ThreadTS == m.TS {
			out = append(out, m)
		}
	}
	return out
}

func TestManyRegions(t *testing.T) {
	e := newRegionsEnv(t)
	ev1 := e.evaluator(t, "1")

	// Healthy: nothing.
	steady(t, 6*time.Second, "paged while healthy", func() bool { return len(e.pd.Events()) == 0 && len(e.slack.Messages()) == 0 })

	// A fault in region b only: a regional degradation, a Slack warning, no page.
	do(t, "PUT", e.shopURL+"/admin/faults?region=b", `{"gateway_status":504,"swallow_errors":true}`)
	eventually(t, 30*time.Second, "Slack regional warning", func() bool { return len(e.topLevel()) == 1 })
	warn := e.topLevel()[0]
	if !strings.Contains(warn.Text, "1/3") && !strings.Contains(warn.Text, "(b)") {
		t.Errorf("warning does not name the region: %q", warn.Text)
	}
	steady(t, 6*time.Second, "PagerDuty paged for one region", func() bool { return len(e.pd.Events()) == 0 && len(e.topLevel()) == 1 })
	do(t, "DELETE", e.shopURL+"/admin/faults", "")
	eventually(t, 40*time.Second, "the warning resolved", func() bool {
		for _, m := range e.slack.Thread(warn.TS) {
			if strings.Contains(strings.ToLower(m.Text), "resolved") {
				return true
			}
		}
		return false
	})

	// A fault in every region, with a second evaluator replica running:
	// exactly one PagerDuty incident.
	ev2 := e.evaluator(t, "2")
	time.Sleep(3 * time.Second)
	do(t, "PUT", e.shopURL+"/admin/faults", `{"gateway_status":504,"swallow_errors":true}`)
	eventually(t, 40*time.Second, "PagerDuty trigger", func() bool { return len(e.triggers("checkout_failing")) > 0 })
	trig := e.triggers("checkout_failing")[0]
	if !strings.Contains(trig.Summary, "pay") || !strings.Contains(trig.Summary, "swallowed_error") {
		t.Errorf("summary: %s", trig.Summary)
	}
	steady(t, 5*time.Second, "a second incident", func() bool { return len(e.incidents("checkout_failing")) == 1 })

	// The first evaluator is killed and restarted mid-incident: no second incident.
	ev1.cmd.Process.Signal(syscall.SIGKILL)
	<-ev1.done
	ev1.done <- nil
	ev1 = e.evaluator(t, "1")
	steady(t, 8*time.Second, "a second incident after the restart", func() bool { return len(e.incidents("checkout_failing")) == 1 })

	// Healed: resolved, still one incident.
	do(t, "DELETE", e.shopURL+"/admin/faults", "")
	eventually(t, 60*time.Second, "resolve", func() bool {
		inc := e.incidents("checkout_failing")
		return len(inc) == 1 && inc[0].Status == "resolved"
	})

	// Region c's prober stops: the absent rule pages once.
	e.probers["c"].stop(t, 20*time.Second)
	eventually(t, 60*time.Second, "region silent page", func() bool { return len(e.triggers("region_silent")) > 0 })
	if s := e.triggers("region_silent")[0]; !strings.Contains(s.DedupKey, "silent_region=c") {
		t.Errorf("absent page for the wrong region: %+v", s)
	}
	steady(t, 6*time.Second, "more than one silent-region incident", func() bool {
		return len(e.incidents("region_silent")) == 1 && len(e.incidents("checkout_failing")) == 1
	})
	ev1.stop(t, 20*time.Second)
	ev2.stop(t, 20*time.Second)
}
