package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/fakes"
)

// The 2 AM story, end to end: a healthy shop pages nobody; the bank gateway
// fails and the shop swallows it into 200 "processing"; PagerDuty gets one
// trigger whose summary names the pay step, the class and a trace id that is
// in the shop's logs, and Slack the same; after healing, one resolve each.

const (
	pdKey    = "R0UT1NGKEY0123456789abcdefABCDEF" // 32 characters, like a real one
	slackTok = "xoxb-e2e-slack-token-0000000001"
)

// pagingEnv is a shop process, fakes, and a config directory for a prober
// that probes the shop every 2s and pages through the fakes.
type pagingEnv struct {
	shopURL, shopLog string
	pd               *fakes.PagerDuty
	slack            *fakes.Slack
	dir, cfg         string
	env              []string
}

func newPagingEnv(t *testing.T, rules string) *pagingEnv {
	t.Helper()
	return newPagingEnvWith(t, map[string]string{"SHOP_PASSWORD": secretPW, "PD_KEY": pdKey, "SLACK_TOKEN": slackTok}, rules)
}

// newPagingEnvWith is newPagingEnv with the given secret values.
func newPagingEnvWith(t *testing.T, secrets map[string]string, rules string) *pagingEnv {
	t.Helper()
	e := &pagingEnv{pd: fakes.NewPagerDuty(secrets["PD_KEY"]), slack: fakes.NewSlack(secrets["SLACK_TOKEN"], "#payments-oncall")}
	t.Cleanup(e.pd.Close)
	t.Cleanup(e.slack.Close)
	shopAddr := freeAddr(t)
	e.shopURL = "http://" + shopAddr
	e.shopLog = filepath.Join(t.TempDir(), "shop.log")
	e.env = []string{"SHOP_PASSWORD=" + secrets["SHOP_PASSWORD"], "SHOP_URL=" + e.shopURL,
		"PD_KEY=" + secrets["PD_KEY"], "SLACK_TOKEN=" + secrets["SLACK_TOKEN"]}
	start(t, e.env, "shop", "--listen", shopAddr, "--log", e.shopLog, "--settle-delay", "100ms")
	waitHTTP(t, e.shopURL+"/healthz")

	e.dir = t.TempDir()
	os.MkdirAll(filepath.Join(e.dir, "flows"), 0o755)
	b, err := os.ReadFile("../flows/checkout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "every: 60s", "every: 2s", 1))
	os.WriteFile(filepath.Join(e.dir, "flows", "checkout.yaml"), b, 0o644)
	if rules == "" {
		rules = `
  - name: checkout_failing
    flow_failing: {flows: [checkout]}
    for: 4s
    keep_firing_for: 4s
    group: checkout
  - name: gateway_success
    dependency_success: {dependency: bank-gateway, below: 95%, window: 20s, min_calls: 3}
    for: 4s
    keep_firing_for: 4s
    group: checkout
`
	}
	e.cfg = filepath.Join(e.dir, "probes.yaml")
	os.WriteFile(e.cfg, []byte(fmt.Sprintf(`vars: {shop_url: "${env:SHOP_URL}", shop_user: synthetic-1}
secrets:
  SHOP_PASSWORD: {env: SHOP_PASSWORD}
  PD_KEY: {env: PD_KEY}
  SLACK_TOKEN: {env: SLACK_TOKEN}
flows: [flows/checkout.yaml]
notifiers:
  pagerduty: {type: pagerduty, url: %q, routing_key: "{{secret:PD_KEY}}"}
  slack: {type: slack, url: %q, token: "{{secret:SLACK_TOKEN}}", channel: "#payments-oncall"}
alerting:
  state_dir: %q
  evaluation_interval: 1s
  links: {logs: "https://logs.example/search?q=trace_id%%3D{trace_id}"}
signals:
  - {name: gateway success, dependency: bank-gateway, window: 20s}
rules:%s`, e.pd.URL, e.slack.APIURL, filepath.Join(e.dir, "state"), rules)), 0o644)
	return e
}

func (e *pagingEnv) startProber(t *testing.T) (*proc, string) {
	t.Helper()
	addr := freeAddr(t)
	p := start(t, e.env, "run", "--config", e.cfg, "--listen", addr, "--shutdown-grace", "10s")
	return p, "http://" + addr
}

func (e *pagingEnv) fault(t *testing.T, body string) {
	t.Helper()
	if body == "" {
		do(t, "DELETE", e.shopURL+"/admin/faults", "")
		return
	}
	do(t, "PUT", e.shopURL+"/admin/faults", body)
}

func (e *pagingEnv) actions(action string) []fakes.PDEvent {
	var out []fakes.PDEvent
	for _, ev := range e.pd.Events() {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

func (e *pagingEnv) topLevel() []fakes.SlackMessage {
	var out []fakes.SlackMessage
	for _, m := range e.slack.Messages() {
		if m.ThreadTS == "" || m.ThreadTS == m.TS {
			out = append(out, m)
		}
	}
	return out
}

// eventually polls cond until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, within)
	return 0
}

// steady asserts cond holds for the whole of d.
func steady(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var traceRE = regexp.MustCompile(`\b[0-9a-f]{32}\b`)

func TestTwoAMStory(t *testing.T) {
	e := newPagingEnv(t, "")
	p, base := e.startProber(t)
	waitRun(t, base, "checkout", 30*time.Second, passed)

	// Healthy for a while: nobody is paged.
	steady(t, 6*time.Second, "paged while healthy", func() bool { return len(e.pd.Events()) == 0 && len(e.slack.Messages()) == 0 })

	// 02:14: the gateway answers 504, the shop swallows it.
	e.fault(t, `{"gateway_status":504,"swallow_errors":true}`)
	took := eventually(t, 2*time.Second+4*time.Second+10*time.Second, "PagerDuty trigger", func() bool { return len(e.actions("trigger")) > 0 })
	t.Logf("paged %s after the fault", took.Round(100*time.Millisecond))
	trig := e.actions("trigger")[0]
	for _, want := range []string{"pay", "swallowed_error", `got "processing"`} {
		if !strings.Contains(trig.Summary, want) {
			t.Errorf("summary lacks %q: %s", want, trig.Summary)
		}
	}
	trace := traceRE.FindString(trig.Summary)
	if trace == "" {
		t.Fatalf("no trace id in the summary: %s", trig.Summary)
	}
	if lines := logLines(t, e.shopLog, trace); len(lines) == 0 {
		t.Errorf("trace %s from the page is not in the shop's log", trace)
	}
	if trig.Severity != "critical" || trig.DedupKey == "" || trig.Class != "swallowed_error" || trig.Component == "" {
		t.Errorf("trigger fields: %+v", trig)
	}
	eventually(t, 10*time.Second, "Slack message", func() bool { return len(e.topLevel()) > 0 })
	if msg := e.topLevel()[0]; !strings.Contains(msg.Text, "pay") || !strings.Contains(msg.Text, trace) {
		t.Errorf("slack message: %q", msg.Text)
	}

	// Still failing for a while: still exactly one trigger, one incident.
	steady(t, 8*time.Second, "a second page for the same incident", func() bool {
		return len(e.actions("trigger")) == 1 && len(e.pd.Incidents()) == 1 && len(e.topLevel()) == 1
	})

	// Healed: one resolve each, threaded in Slack.
	e.fault(t, "")
	eventually(t, 60*time.Second, "PagerDuty resolve", func() bool { return len(e.actions("resolve")) > 0 })
	if r := e.actions("resolve")[0]; r.DedupKey != trig.DedupKey {
		t.Errorf("resolve dedup key %q, trigger %q", r.DedupKey, trig.DedupKey)
	}
	eventually(t, 10*time.Second, "Slack resolve in thread", func() bool {
		for _, m := range e.slack.Thread(e.topLevel()[0].TS) {
			if strings.Contains(strings.ToLower(m.Text), "resolved") {
				return true
			}
		}
		return false
	})
	steady(t, 4*time.Second, "more than one trigger and one resolve", func() bool {
		return len(e.actions("trigger")) == 1 && len(e.actions("resolve")) == 1 && len(e.pd.Incidents()) == 1 && len(e.topLevel()) == 1
	})
	p.stop(t, 30*time.Second)
	assertNoSecret(t, pdKey, read(t, p.stdout), read(t, p.stderr))
	assertNoSecret(t, slackTok, read(t, p.stdout), read(t, p.stderr))
}

// TestPagerDutyOutageAndCrash: PagerDuty answers 503 for a long stretch and
// 429 in bursts while the incident starts; the prober is killed -9 while the
// page is pending and restarted; then everything is delivered, once.
func TestPagerDutyOutageAndCrash(t *testing.T) {
	e := newPagingEnv(t, "")
	p, base := e.startProber(t)
	waitRun(t, base, "checkout", 30*time.Second, passed)

	e.pd.FailFor(503, 15*time.Second)
	e.slack.FailNext(3, 429, time.Second)
	e.fault(t, `{"gateway_status":504,"swallow_errors":true}`)
	// The page is decided and waiting in the outbox; PagerDuty refuses it.
	eventually(t, 20*time.Second, "PagerDuty attempts", func() bool { return e.pd.Requests() >= 2 })
	if n := len(e.actions("trigger")); n != 0 {
		t.Fatalf("%d triggers accepted during the outage", n)
	}
	// Crash with the page undelivered, and come back.
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil
	p2, _ := e.startProber(t)

	eventually(t, 40*time.Second, "trigger after the outage", func() bool { return len(e.actions("trigger")) > 0 })
	e.pd.FailNext(2, 429, time.Second)
	steady(t, 6*time.Second, "a second incident", func() bool { return len(e.pd.Incidents()) == 1 })

	// Crash again mid-incident, after the trigger was delivered.
	p2.cmd.Process.Signal(syscall.SIGKILL)
	<-p2.done
	p2.done <- nil
	p3, _ := e.startProber(t)
	e.fault(t, "")
	eventually(t, 60*time.Second, "resolve", func() bool { return len(e.actions("resolve")) > 0 })
	steady(t, 4*time.Second, "duplicate incidents", func() bool { return len(e.pd.Incidents()) == 1 })
	if inc := e.pd.Incidents()[0]; inc.Status != "resolved" {
		t.Errorf("incident %+v", inc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.slack.WaitMessages(ctx, 2); err != nil {
		t.Errorf("slack: %v (messages %+v)", err, e.slack.Messages())
	}
	if n := len(e.topLevel()); n != 1 {
		t.Errorf("%d top-level Slack messages, want 1", n)
	}
	p3.stop(t, 30*time.Second)
}

// TestBlipDoesNotPage: a fault short enough to fail one run (its retry
// included) pages nobody.
func TestBlipDoesNotPage(t *testing.T) {
	e := newPagingEnv(t, "")
	p, base := e.startProber(t)
	waitRun(t, base, "checkout", 30*time.Second, passed)
	e.fault(t, `{"gateway_status":504,"for":"1s"}`)
	steady(t, 25*time.Second, "paged for a blip", func() bool { return len(e.pd.Events()) == 0 && len(e.slack.Messages()) == 0 })
	p.stop(t, 30*time.Second)
}
