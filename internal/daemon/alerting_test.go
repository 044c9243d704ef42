package daemon

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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
