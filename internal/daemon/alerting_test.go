package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/fakes"
	"github.com/prober-dev/prober/internal/web"
)

// TestHeartbeatAndAlertsAPI: the heartbeat pings while the prober is
// healthy, carries its secret only on the wire, and the alerts API answers.
func TestHeartbeatAndAlertsAPI(t *testing.T) {
	var pings atomic.Int32
	var path atomic.Value
	hb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pings.Add(1)
		path.Store(r.URL.Path)
	}))
	defer hb.Close()
	stateDir := t.TempDir()
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml": strings.Replace(probes("health"), "secrets:\n", "secrets:\n  HB: {env: SHOP_PASSWORD}\n", 1) + `
notifiers: {console: {type: console}}
alerting:
  state_dir: ` + filepath.ToSlash(stateDir) + `
  evaluation_interval: 200ms
  heartbeat: {url: "` + hb.URL + `/ping/{{secret:HB}}", interval: 300ms}
rules:
  - name: health_failing
    flow_failing: {flows: [health]}
`,
		"flows/health.yaml": healthFlow("health"),
	}})
	f.serve()
	waitFor(t, 10*time.Second, "two heartbeats", func() bool { return pings.Load() >= 2 })
	if p, _ := path.Load().(string); p != "/ping/"+password {
		t.Errorf("heartbeat path %q", p)
	}
	code, ctype, body := f.get("/api/v1/alerts", "")
	if code != 200 || !strings.HasPrefix(ctype, "application/json") || !strings.Contains(body, `"alerts":[]`) {
		t.Errorf("alerts API %d %s %s", code, ctype, body)
	}
	hb.Close() // the heartbeat target goes away: failures are logged, redacted
	waitFor(t, 10*time.Second, "a heartbeat failure logged", func() bool { return len(f.log.find(t, "heartbeat_failed")) > 0 })
	f.stop()
	for _, l := range f.log.lines(t) {
		for _, v := range l {
			if s, ok := v.(string); ok && strings.Contains(s, password) {
				t.Fatalf("secret in log line %v", l)
			}
		}
	}
}

// Evaluations after runs: soon for cheap rules, at most 1/dutyFactor of a
// core for expensive ones, never later than the periodic evaluation.
func TestKickDelay(t *testing.T) {
	now := time.Date(2026, 11, 3, 2, 14, 0, 0, time.UTC)
	tests := []struct {
		name      string
		sinceLast time.Duration // since the last cycle began
		took      time.Duration // how long it took
		want      time.Duration
	}{
		{"cheap rules, long idle", time.Minute, 200 * time.Microsecond, kickSettle},
		{"cheap rules, just evaluated", 0, 200 * time.Microsecond, kickSettle},
		{"10,000 flows, just evaluated", 25 * time.Millisecond, 20 * time.Millisecond, time.Second - 25*time.Millisecond},
		{"10,000 flows, a while ago", 2 * time.Second, 20 * time.Millisecond, kickSettle},
		{"slower than the interval allows", 0, time.Second, 5 * time.Second},
		{"first evaluation", 0, 0, kickSettle},
	}
	for _, tc := range tests {
		last := now.Add(-tc.sinceLast)
		if tc.name == "first evaluation" {
			last = time.Time{}
		}
		if got := kickDelay(now, last, tc.took, 5*time.Second); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestUndeliverablePagesStopTheHeartbeat: PagerDuty refuses the routing key
// (400). The page is not only logged: the alerts API says failed with
// PagerDuty's error, the status page shows it, the dead-letter gauge counts
// it, and the heartbeat stops, so the dead man's switch pages someone.
func TestUndeliverablePagesStopTheHeartbeat(t *testing.T) {
	const (
		goodKey = "G00DR0UT1NGKEYabcdefABCDEF012345"
		badKey  = "BADR0UT1NGKEYxyzXYZ0123456789abc"
	)
	pd := fakes.NewPagerDuty(goodKey)
	defer pd.Close()
	var pings atomic.Int32
	hb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { pings.Add(1) }))
	defer hb.Close()
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"pd.key": badKey,
		"probes.yaml": strings.Replace(probes("broken"), "secrets:\n", "secrets:\n  PD_KEY: {file: pd.key}\n", 1) + `
notifiers: {pd: {type: pagerduty, url: "` + pd.URL + `", routing_key: "{{secret:PD_KEY}}"}}
alerting:
  state_dir: ` + filepath.ToSlash(t.TempDir()) + `
  evaluation_interval: 200ms
  heartbeat: {url: "` + hb.URL + `/ping", interval: 300ms}
  routes: {critical: [pd]}
rules:
  - name: broken_failing
    flow_failing: {flows: [broken]}
    for: 0s
    severity: critical
`,
		"flows/broken.yaml": `name: broken
every: 1s
steps:
  - name: healthz
    request: {url: "{{shop_url}}/healthz"}
    expect: [status == 418]
`,
	}})
	f.serve()
	waitFor(t, 20*time.Second, "PagerDuty to refuse the page", func() bool { return len(pd.Rejected()) > 0 })
	waitFor(t, 10*time.Second, "the heartbeat to be withheld", func() bool { return len(f.log.find(t, "heartbeat_withheld")) > 0 })
	before, withheld := pings.Load(), len(f.log.find(t, "heartbeat_withheld"))
	// Due five more times (every evaluation, as it never beat), withheld each time.
	waitFor(t, 10*time.Second, "five more withheld heartbeats", func() bool {
		return len(f.log.find(t, "heartbeat_withheld")) >= withheld+5
	})
	if got := pings.Load(); got != before {
		t.Errorf("the heartbeat pinged %d times while no page could be delivered", got-before)
	}
	w := f.log.find(t, "heartbeat_withheld")[0]
	if r := fmt.Sprint(w["reason"]); !strings.Contains(r, "pd: 1 page(s) failed for good") || !strings.Contains(r, "Invalid routing key") {
		t.Errorf("heartbeat_withheld reason %q", r)
	}

	code, _, body := f.get("/api/v1/alerts", "")
	var got struct{ Alerts []web.AlertInfo }
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 || len(got.Alerts) != 1 {
		t.Fatalf("alerts API %d %s (%v)", code, body, err)
	}
	a := got.Alerts[0]
	if slices.Contains(a.Notified, "pd") || len(a.Failed) != 1 || a.Failed[0].Notifier != "pd" || a.Failed[0].Attempts != 1 ||
		!strings.Contains(a.Failed[0].Error, "HTTP 400") || !strings.Contains(a.Failed[0].Error, "Invalid routing key") {
		t.Errorf("alerts API: notified %v, failed %+v", a.Notified, a.Failed)
	}
	if _, _, page := f.get("/", ""); !strings.Contains(page, "PAGE NOT DELIVERED: pd trigger of broken_failing") {
		t.Error("the status page does not show the undelivered page")
	}
	if _, _, m := f.get("/metrics", ""); !strings.Contains(m, `prober_notifications_dead_letters{notifier="pd",region="`+region+`"} 1`) {
		t.Error("no prober_notifications_dead_letters 1 for pd in /metrics")
	}

	// The key is fixed and the failed page sent again: it is delivered,
	// and the heartbeat resumes.
	f.write(map[string]string{"pd.key": goodKey})
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	resp, err := f.client.Post(f.base+"/api/v1/deliveries/retry?notifier=pd", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("retry: %s", resp.Status)
	}
	waitFor(t, 10*time.Second, "the page delivered", func() bool { return len(pd.Events()) == 1 })
	resumed := pings.Load()
	waitFor(t, 10*time.Second, "the heartbeat to resume", func() bool { return pings.Load() > resumed })
	f.stop()
	for _, l := range f.log.lines(t) {
		for _, v := range l {
			if s, ok := v.(string); ok && (strings.Contains(s, badKey) || strings.Contains(s, goodKey)) {
				t.Fatalf("routing key in log line %v", l)
			}
		}
	}
}

// The heartbeat watches the notifiers a critical alert can go to.
func TestPagingNotifiers(t *testing.T) {
	cfg := &config.Config{Alerting: config.Alerting{
		Routes: map[string][]string{"critical": {"pagerduty", "slack"}, "warning": {"tickets"}},
		Notifiers: []*config.Notifier{{Name: "pagerduty"}, {Name: "slack"}, {Name: "tickets"}, {Name: "oncall"},
			{Name: "burn"}, {Name: "off", Disabled: "optional secret X is not set"}},
		Rules: []*config.Rule{
			{Name: "warn", Severity: "warning", Notify: []string{"tickets"}},
			{Name: "crit", Severity: "critical", Notify: []string{"oncall", "off"}},
			{Name: "slo", Severity: "warning", Notify: []string{"burn"},
				BurnRate: &config.BurnRateRule{Windows: []config.BurnWindow{{Severity: "critical"}, {Severity: "warning"}}}},
		},
	}}
	got := pagingNotifiers(cfg)
	if want := []string{"burn", "oncall", "pagerduty", "slack"}; !slices.Equal(got, want) {
		t.Errorf("pagingNotifiers = %v, want %v", got, want)
	}
}
