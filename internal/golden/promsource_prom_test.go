package golden

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// fakeProber serves, as OpenMetrics (exemplars need it), what a prober in
// region exports about one flow, checkout, running once a second since
// start: failing at pay (the gateway swallowed) or passing.
type fakeProber struct {
	region  string
	start   time.Time
	failing bool
}

func (p *fakeProber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	n := int(now.Sub(p.start).Seconds()) + 1
	ok, fail := n, 0
	success := 1
	if p.failing {
		ok, fail, success = 0, n, 0
	}
	l := func(kv ...string) string {
		parts := []string{`flow="checkout"`, fmt.Sprintf(`region=%q`, p.region)}
		for i := 0; i+1 < len(kv); i += 2 {
			parts = append(parts, fmt.Sprintf("%s=%q", kv[i], kv[i+1]))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	ts := func(t time.Time) string { return fmt.Sprintf("%.3f", float64(t.UnixMilli())/1000) }
	var b strings.Builder
	fmt.Fprintf(&b, "# TYPE prober_last_run_timestamp_seconds gauge\nprober_last_run_timestamp_seconds%s %s\n", l(), ts(now.Add(-500*time.Millisecond)))
	fmt.Fprintf(&b, "# TYPE prober_last_run_success gauge\nprober_last_run_success%s %d\n", l(), success)
	fmt.Fprintf(&b, "# TYPE prober_flow_state_since_timestamp_seconds gauge\nprober_flow_state_since_timestamp_seconds%s %s\n", l(), ts(p.start))
	b.WriteString("# TYPE prober_last_failure_info gauge\n")
	if p.failing {
		fmt.Fprintf(&b, "prober_last_failure_info%s %s\n", l("step", "pay", "class", "swallowed_error", "dependency", "bank-gateway",
			"expectation", `json.status == "success"`), ts(now.Add(-500*time.Millisecond)))
	}
	b.WriteString("# TYPE prober_runs counter\n")
	fmt.Fprintf(&b, "prober_runs_total%s %d\n", l("result", "success", "class", "ok"), ok)
	fmt.Fprintf(&b, "prober_runs_total%s %d", l("result", "failure", "class", "swallowed_error"), fail)
	if p.failing {
		fmt.Fprintf(&b, " # {trace_id=\"%s%031x\"} 1 %s", p.region, n, ts(now.Add(-400*time.Millisecond)))
	}
	b.WriteString("\n# TYPE prober_run_retries counter\n")
	fmt.Fprintf(&b, "prober_run_retries_total%s %d\n", l(), fail)
	b.WriteString("# TYPE prober_dependency_calls counter\n")
	fmt.Fprintf(&b, "prober_dependency_calls_total%s %d\n", l("step", "pay", "dependency", "bank-gateway", "result", "success", "class", "ok"), ok)
	fmt.Fprintf(&b, "prober_dependency_calls_total%s %d\n", l("step", "pay", "dependency", "bank-gateway", "result", "failure", "class", "swallowed_error"), fail)
	b.WriteString("# TYPE prober_step_duration_seconds histogram\n")
	step := func(kv ...string) string { return l(append([]string{"step", "pay"}, kv...)...) }
	fmt.Fprintf(&b, "prober_step_duration_seconds_bucket%s 0\n", step("le", "0.5"))
	fmt.Fprintf(&b, "prober_step_duration_seconds_bucket%s %d\n", step("le", "1.0"), n)
	fmt.Fprintf(&b, "prober_step_duration_seconds_bucket%s %d\n", step("le", "+Inf"), n)
	fmt.Fprintf(&b, "prober_step_duration_seconds_sum%s %.1f\n", step(), 0.8*float64(n))
	fmt.Fprintf(&b, "prober_step_duration_seconds_count%s %d\n", step(), n)
	b.WriteString("# EOF\n")
	w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
	w.Write([]byte(b.String()))
}

// startPrometheus runs Debian's prometheus scraping targets every second,
// with exemplar storage, on a free loopback port; killed at cleanup.
func startPrometheus(t *testing.T, targets []string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("PROBER_REQUIRE_PROMETHEUS") != "" {
			t.Fatal("prometheus not found on PATH (apt-get install prometheus)")
		}
		t.Skip("prometheus not on PATH (apt-get install prometheus); PROBER_REQUIRE_PROMETHEUS=1 makes this a failure")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: prober\n"+
		"    static_configs:\n      - targets: [%s]\n", `"`+strings.Join(targets, `", "`)+`"`)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var stderr strings.Builder
	var mu sync.Mutex
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr,
		"--enable-feature=exemplar-storage", "--storage.tsdb.retention.time=1h", "--log.level=warn")
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return stderr.Write(p) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			mu.Lock()
			t.Logf("prometheus stderr:\n%s", stderr.String())
			mu.Unlock()
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("prometheus exited:\n%s", stderr.String())
		default:
		}
		if resp, err := http.Get(url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("prometheus not ready within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// waitFor polls cond (which says what it saw) until it holds or within
// passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, within, saw)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestPromSourceRealPrometheus: three regions' probers (hand-written
// metrics in the prober's shape) scraped by a real Prometheus; region a
// fails at pay. The source reads states, failure details, trace ids,
// ratios through it; then region c's prober stops answering,
// and c becomes unknown and silent.
func TestPromSourceRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus")
	}
	start := time.Now().Add(-time.Second)
	var targets []string
	servers := map[string]*httptest.Server{}
	for _, region := range []string{"a", "b", "c"} {
		srv := httptest.NewServer(&fakeProber{region: region, start: start, failing: region == "a"})
		t.Cleanup(srv.Close)
		servers[region] = srv
		targets = append(targets, strings.TrimPrefix(srv.URL, "http://"))
	}
	url := startPrometheus(t, targets)
	api, err := NewPromAPI(&config.Prometheus{URL: url, Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := NewPromSource(api, PromSourceOptions{MaxAge: func(string) time.Duration { return 30 * time.Second }})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Wait until three regions are fresh, a's trace ids arrived, and the
	// counters have enough samples for increase().
	var states []RegionState
	waitFor(t, 40*time.Second, "three regions with trace ids and counts", func() (bool, string) {
		var err error
		states, err = src.FlowStates(ctx, "checkout", time.Now())
		if err != nil {
			return false, err.Error()
		}
		known := 0
		for _, s := range states {
			if s.Known {
				known++
			}
		}
		// Both outcomes counted in every region: a few scrapes of each.
		g, n, err := src.FlowRatio(ctx, "checkout", time.Minute, time.Now())
		dg, dn, err2 := src.DependencyRatio(ctx, "bank-gateway", time.Minute, time.Now())
		return known == 3 && len(states[0].TraceIDs) > 0 && states[0].Retries > 0 && g > 0 && g < n && dg > 0 && dg < dn &&
				err == nil && err2 == nil,
			fmt.Sprint(statesString(states), " runs ", g, "/", n, " calls ", dg, "/", dn, " ", err, err2)
	})
	a := states[0]
	if a.Region != "a" || !a.Failing || a.Step != "pay" || a.Class != "swallowed_error" || a.Dependency != "bank-gateway" ||
		a.Message != `json.status == "success" failed` || a.Retries != 1 || !strings.HasPrefix(a.TraceIDs[0], "a") ||
		len(a.TraceIDs[0]) != 32 || a.Since.Sub(start).Abs() > 2*time.Millisecond {
		t.Errorf("region a: %s", stateString(a))
	}
	for _, s := range states[1:] {
		if !s.Known || s.Failing || s.TraceIDs != nil {
			t.Errorf("region %s: %s", s.Region, stateString(s))
		}
	}
	nowT := time.Now()
	good, total, err := src.FlowRatio(ctx, "checkout", time.Minute, nowT)
	// b and c pass, a fails: 2/3, give or take increase()'s extrapolation
	// over series younger than the window.
	if err != nil || total <= 0 || good/total < 0.3 || good/total > 0.9 {
		t.Errorf("flow ratio %v of %v (%v)", good, total, err)
	}
	good, total, err = src.DependencyRatio(ctx, "bank-gateway", time.Minute, nowT)
	if err != nil || total <= 0 || good/total < 0.3 || good/total > 0.9 {
		t.Errorf("gateway ratio %v of %v (%v)", good, total, err)
	}
	// Per region: a's calls fail, b's and c's pass. Coverage: the counters
	// are seconds old, so an hour is not covered; a window starting just
	// now (2m of slack) is.
	rr, err := src.(DependencyRegions).DependencyRegionRatios(ctx, "bank-gateway", time.Minute, nowT)
	if err != nil || len(rr) < 2 || rr[0].Region != "a" || rr[0].Good > 0.5*rr[0].Total {
		t.Errorf("gateway per region %+v (%v)", rr, err)
	}
	for _, r := range rr[min(1, len(rr)):] { // b, c (a region may lack two samples yet)
		if r.Good < 0.5*r.Total {
			t.Errorf("gateway in %s: %+v", r.Region, r)
		}
	}
	// The flow page's uptime per region (evaluate role): a's final runs
	// fail, b's and c's pass.
	up, err := NewPromUptime(api, nil).RegionUptime(ctx, "checkout", 24*time.Hour, nowT)
	if err != nil || len(up) < 2 || up[0].Region != "a" || up[0].Total <= 0 || up[0].Good != 0 {
		t.Errorf("uptime per region %+v (%v)", up, err)
	}
	for _, r := range up[min(1, len(up)):] {
		if r.Total <= 0 || r.Good != r.Total {
			t.Errorf("uptime in %s: %+v", r.Region, r)
		}
	}
	hc := src.(HistoryCoverage)
	if ok, err := hc.FlowCovers(ctx, "checkout", time.Hour, nowT); ok || err != nil {
		t.Errorf("an hour covered by seconds of data (%v)", err)
	}
	if ok, err := hc.FlowCovers(ctx, "checkout", 2*time.Minute+time.Second, nowT); !ok || err != nil {
		t.Errorf("2m1s not covered (%v)", err)
	}
	if flows, err := src.Flows(ctx); err != nil || len(flows) != 1 || flows[0] != "checkout" {
		t.Errorf("flows %v %v", flows, err)
	}

	ff := flowFailingRule(2, nil, "warning", "checkout")
	abs := rule("region_silent", config.Absent)
	abs.Absent = &config.AbsentRule{}
	e := NewEngine(&config.Alerting{Rules: []*config.Rule{ff, abs}}, src, Options{})
	evs := e.Evaluate(ctx, time.Now())
	if len(evs) != 4 || evs[0].Status != Firing || evs[0].Severity != "warning" || evs[0].Value != "degraded: failing in 1/3 regions (a)" {
		t.Fatalf("%+v", evs)
	}
	mustContain(t, "summary", evs[0].Summary, `step pay: json.status == "success" failed; class swallowed_error; confirmed by 1 retry; trace a`)
	for _, ev := range evs[1:] {
		if ev.Status != OK {
			t.Errorf("absent %v: %s %q", ev.Labels, ev.Status, ev.Value)
		}
	}

	// Region c's prober stops answering: Prometheus marks its series stale
	// at the next failed scrape; c is unknown, then silent.
	stopped := time.Now()
	servers["c"].Close()
	waitFor(t, 20*time.Second, "region c silent", func() (bool, string) {
		evs = e.Evaluate(ctx, time.Now())
		var saw []string
		for _, ev := range evs {
			saw = append(saw, fmt.Sprintf("%v %s %q", ev.Labels, ev.Status, ev.Value))
		}
		return len(evs) == 4 && evs[3].Labels["silent_region"] == "c" && evs[3].Status == Firing, strings.Join(saw, "; ")
	})
	mustContain(t, "summary", evs[3].Summary, "region c silent: no results from checkout for ", "(last at ")
	if evs[1].Status != OK || evs[2].Status != OK {
		t.Errorf("a, b: %s %s", evs[1].Status, evs[2].Status)
	}
	if evs[0].Value != "degraded: failing in 1/3 regions (a)" || evs[0].Evidence.RegionsKnown != 2 {
		t.Errorf("flow failing with c gone: %q %+v", evs[0].Value, evs[0].Evidence)
	}
	states, err = src.FlowStates(ctx, "checkout", time.Now())
	if err != nil || len(states) != 3 || states[2].Known || states[2].Last.After(stopped) || stopped.Sub(states[2].Last) > 5*time.Second {
		t.Errorf("after c stopped: %v %v", statesString(states), err)
	}
}
