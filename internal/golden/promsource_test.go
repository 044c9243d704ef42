package golden

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/store"
)

// clockAt is 02:mm:ss on the day of now.
func clockAt(h, m, s int) time.Time { return time.Date(2026, 11, 3, h, m, s, 0, time.UTC) }

func fakePromSource(t testing.TB, f *promAPIFake, maxAge map[string]time.Duration) Source {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	api, err := NewPromAPI(&config.Prometheus{URL: srv.URL, Timeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return NewPromSource(api, PromSourceOptions{MaxAge: func(flow string) time.Duration { return maxAge[flow] }})
}

// failingProbe is flow failing in region at pay through the bank gateway,
// the shop swallowing the gateway's 504.
func failingProbe(flow, region string, last, since time.Time, labels ...string) probe {
	return probe{flow: flow, region: region, last: last, since: since, step: "pay", class: "swallowed_error",
		dep: "bank-gateway", exp: `json.status == "success"`, labels: labels}
}

func passingProbe(flow, region string, last time.Time, labels ...string) probe {
	return probe{flow: flow, region: region, last: last, since: clockAt(1, 0, 0), ok: true, labels: labels}
}

func stateString(rs RegionState) string {
	s := fmt.Sprintf("%s known=%v failing=%v last=%s", rs.Region, rs.Known, rs.Failing, rs.Last.UTC().Format("15:04:05"))
	if !rs.Since.IsZero() {
		s += " since=" + rs.Since.UTC().Format("15:04:05")
	}
	if rs.Failing {
		s += fmt.Sprintf(" step=%s class=%s dep=%s msg=%q", rs.Step, rs.Class, rs.Dependency, rs.Message)
	}
	if rs.Retries > 0 || len(rs.TraceIDs) > 0 {
		s += fmt.Sprintf(" retries=%d traces=%v", rs.Retries, rs.TraceIDs)
	}
	return s
}

func statesString(rs []RegionState) []string {
	var out []string
	for _, s := range rs {
		out = append(out, stateString(s))
	}
	return out
}

const retries3m = `sum by (flow, region) (increase(prober_run_retries_total[3m])) / sum by (flow, region) (increase(prober_runs_total{result="failure"}[3m]) > 0)`
const retries5m = `sum by (flow, region) (increase(prober_run_retries_total[5m])) / sum by (flow, region) (increase(prober_runs_total{result="failure"}[5m]) > 0)`

// TestPromSourceFlowStates reads fresh, stale, vanished and restarted
// regions, failure details, trace ids and retries, and asserts the PromQL
// sent: one round of queries per evaluation time, whatever the flows.
func TestPromSourceFlowStates(t *testing.T) {
	f := newPromAPIFake()
	f.setProbes(
		failingProbe("checkout", "a", clockAt(2, 15, 30), clockAt(2, 14, 3), "instance", "a:9100"),
		// The same region from a replaced prober, older: the newest speaks.
		passingProbe("checkout", "a", clockAt(2, 10, 0), "instance", "a2:9100"),
		failingProbe("checkout", "b", clockAt(2, 15, 40), clockAt(2, 14, 10)),
		passingProbe("checkout", "c", clockAt(2, 15, 20)),
		passingProbe("signup", "a", clockAt(2, 15, 50)),
		// Fresh series, old run: unknown by age (5m), its failure kept.
		failingProbe("signup", "b", clockAt(2, 9, 0), clockAt(2, 0, 0)),
		// The target went away: stale series, in the day's list only.
		probe{flow: "signup", region: "c", last: clockAt(2, 5, 0), ok: true, gone: true},
		// Restarted, no run yet (0), ran at 02:10 before that.
		probe{flow: "signup", region: "d", seenLast: clockAt(2, 10, 0), ok: true},
	)
	f.answer(retries3m, ser(7, "flow", "checkout", "region", "a"), ser(1.2, "flow", "checkout", "region", "b"))
	f.setExemplars(
		exemplar{"checkout", "a", "a-old", clockAt(2, 13, 0)}, // before the streak
		exemplar{"checkout", "a", "a1", clockAt(2, 14, 5)},
		exemplar{"checkout", "a", "a2", clockAt(2, 15, 31)},
		exemplar{"checkout", "b", "b1", clockAt(2, 14, 11)},
		exemplar{"checkout", "b", "b3", clockAt(2, 14, 40)},
		exemplar{"checkout", "b", "b2", clockAt(2, 14, 20)},
		exemplar{"checkout", "b", "b4", clockAt(2, 15, 0)},
		exemplar{"checkout", "b", "b5", clockAt(2, 15, 20)},
		exemplar{"checkout", "b", "b6", clockAt(2, 15, 41)},
		exemplar{"checkout", "b", "b6", clockAt(2, 15, 41)}, // twice: once in the page
		exemplar{"signup", "b", "s1", clockAt(2, 8, 0)},
	)
	src := fakePromSource(t, f, map[string]time.Duration{"checkout": 3 * time.Minute})
	ctx := context.Background()

	tests := []struct {
		flow string
		want []string
	}{
		{"checkout", []string{
			`a known=true failing=true last=02:15:30 since=02:14:03 step=pay class=swallowed_error dep=bank-gateway msg="json.status == \"success\" failed" retries=3 traces=[a2 a1]`,
			`b known=true failing=true last=02:15:40 since=02:14:10 step=pay class=swallowed_error dep=bank-gateway msg="json.status == \"success\" failed" retries=1 traces=[b6 b5 b4 b3 b2]`,
			`c known=true failing=false last=02:15:20 since=01:00:00`,
		}},
		{"signup", []string{
			`a known=true failing=false last=02:15:50 since=01:00:00`,
			`b known=false failing=true last=02:09:00 since=02:00:00 step=pay class=swallowed_error dep=bank-gateway msg="json.status == \"success\" failed"`,
			`c known=false failing=false last=02:05:00`,
			`d known=false failing=false last=02:10:00`,
		}},
		{"unheard-of", nil},
	}
	for _, tt := range tests {
		t.Run(tt.flow, func(t *testing.T) {
			rs, err := src.FlowStates(ctx, tt.flow, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := statesString(rs); !slices.Equal(got, tt.want) {
				t.Errorf("states\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}

	calls := f.takeCalls()
	want := []string{exemplarSelector, queryFailure, queryLastRun, querySuccess, querySince, querySeen, retries3m}
	slices.Sort(want)
	if got := queries(calls); !slices.Equal(got, want) {
		t.Errorf("queries\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range calls {
		switch c.Path {
		case "/api/v1/query":
			if c.Time != at(now) {
				t.Errorf("%s at %s, want the evaluation time %s", c.Query, c.Time, at(now))
			}
		case "/api/v1/query_exemplars":
			// From the earliest failing streak (less a second), to now.
			if c.Start != at(clockAt(2, 14, 2)) || c.End != at(now) {
				t.Errorf("exemplars over [%s, %s]", c.Start, c.End)
			}
		}
	}
	// The same evaluation time again: from the snapshot, no query.
	if _, err := src.FlowStates(ctx, "checkout", now); err != nil {
		t.Fatal(err)
	}
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Errorf("a second read sent %v", queries(calls))
	}
	// Flows and regions seen: from the day's list.
	flows, err := src.Flows(ctx)
	if err != nil || !slices.Equal(flows, []string{"checkout", "signup"}) {
		t.Errorf("flows %v %v", flows, err)
	}
	regions, err := src.Regions(ctx, []string{"signup"}, now)
	if err != nil || fmt.Sprint(regions) != fmt.Sprint([]RegionSeen{{Region: "a", Last: clockAt(2, 15, 50)}, {Region: "b", Last: clockAt(2, 9, 0)},
		{Region: "c", Last: clockAt(2, 5, 0)}, {Region: "d", Last: clockAt(2, 10, 0)}}) {
		t.Errorf("regions %v %v", regions, err)
	}
	f.takeCalls()
	// The next cycle: the state queries again; the day's list is reused
	// (within a minute), and nothing failing means no exemplar or retry
	// lookups.
	f.setProbes(passingProbe("checkout", "a", now.Add(4*time.Second)))
	rs, err := src.FlowStates(ctx, "checkout", now.Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want = []string{queryFailure, queryLastRun, querySuccess, querySince}
	slices.Sort(want)
	if got := queries(f.takeCalls()); !slices.Equal(got, want) {
		t.Errorf("next cycle sent %v", got)
	}
	// b and c are gone from the live series but reported in the last day.
	if got := statesString(rs); !slices.Equal(got, []string{`a known=true failing=false last=02:16:04 since=01:00:00`,
		`b known=false failing=false last=02:15:40`, `c known=false failing=false last=02:15:20`}) {
		t.Errorf("next cycle: %v", got)
	}

}

// TestPromSourceConcurrent: evaluators asking at once at one evaluation
// time share one round of queries.
func TestPromSourceConcurrent(t *testing.T) {
	f := newPromAPIFake()
	f.setProbes(passingProbe("checkout", "a", ago(10*time.Second)), failingProbe("checkout", "b", ago(10*time.Second), ago(time.Minute)))
	f.answer(retries5m, ser(1, "flow", "checkout", "region", "b"))
	f.delay = 50 * time.Millisecond
	src := fakePromSource(t, f, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			rs, err := src.FlowStates(context.Background(), "checkout", now)
			if err != nil || len(rs) != 2 || rs[1].Retries != 1 {
				t.Errorf("%v %v", statesString(rs), err)
			}
		})
	}
	wg.Wait()
	if n := len(f.takeCalls()); n != 7 {
		t.Errorf("%d queries, want 7 (4 states, the day's list, exemplars, retries)", n)
	}
}

// TestPromSourceRatios asserts the count queries and how their
// answers are read.
func TestPromSourceRatios(t *testing.T) {
	f := newPromAPIFake()
	const (
		runs1h  = `sum by (result) (increase(prober_runs_total{flow="checkout"}[1h]))`
		runs3d  = `sum by (result) (increase(prober_runs_total{flow="checkout"}[3d]))`
		runsNew = `sum by (result) (increase(prober_runs_total{flow="new"}[5m]))`
		gw5m    = `sum by (result) (increase(prober_dependency_calls_total{dependency="bank-gateway"}[5m]))`
		gw90s   = `sum by (result) (increase(prober_dependency_calls_total{dependency="bank-gateway"}[1m30s]))`
	)
	f.answer(runs1h, ser(57.5, "result", "success"), ser(2.5, "result", "failure"))
	f.answer(runs3d, ser(4320, "result", "success"))
	f.answer(runsNew)
	f.answer(gw5m, ser(0, "result", "success"), ser(8.2, "result", "failure"))
	f.answer(gw90s, ser(3, "result", "success"))
	src := fakePromSource(t, f, nil)
	ctx := context.Background()

	ratios := []struct {
		name        string
		call        func() (float64, float64, error)
		good, total float64
	}{
		{"flow 1h", func() (float64, float64, error) { return src.FlowRatio(ctx, "checkout", time.Hour, now) }, 57.5, 60},
		{"flow 3d", func() (float64, float64, error) { return src.FlowRatio(ctx, "checkout", 72*time.Hour, now) }, 4320, 4320},
		{"flow without runs", func() (float64, float64, error) { return src.FlowRatio(ctx, "new", 5*time.Minute, now) }, 0, 0},
		{"gateway 5m", func() (float64, float64, error) { return src.DependencyRatio(ctx, "bank-gateway", 5*time.Minute, now) }, 0, 8.2},
		{"gateway 90s", func() (float64, float64, error) {
			return src.DependencyRatio(ctx, "bank-gateway", 90*time.Second, now)
		}, 3, 3},
	}
	for _, tt := range ratios {
		t.Run(tt.name, func(t *testing.T) {
			g, n, err := tt.call()
			if err != nil || g != tt.good || n != tt.total {
				t.Errorf("%v of %v (%v), want %v of %v", g, n, err, tt.good, tt.total)
			}
		})
	}
	// Latency rules: the le bucket at the threshold (as the text format
	// or OpenMetrics spells it) against the count.
	payCount := `sum(increase(prober_step_duration_seconds_count{flow="checkout",step="pay"}[10m]))`
	f.answer(`sum(increase(prober_step_duration_seconds_bucket{flow="checkout",step="pay",le=~"2|2\\.0"}[10m]))`, ser(17))
	f.answer(payCount, ser(20))
	f.answer(`sum(increase(prober_flow_duration_seconds_count{flow="checkout"}[1h]))`, ser(60))
	f.answer(`sum(increase(prober_flow_duration_seconds_bucket{flow="checkout",le=~"1\\.5"}[1h]))`, ser(60))
	f.answer(`sum(increase(prober_step_duration_seconds_count{flow="nobucket",step="pay"}[10m]))`, ser(20))
	f.answer(`sum(increase(prober_step_duration_seconds_bucket{flow="nobucket",step="pay",le=~"1|1\\.0"}[10m]))`) // empty
	f.answer(`sum(increase(prober_step_duration_seconds_count{flow="idle",step="x"}[10m]))`, ser(0))
	f.answer(`sum(increase(prober_step_duration_seconds_bucket{flow="idle",step="x",le=~"1|1\\.0"}[10m]))`, ser(0))
	slowers := []struct {
		flow, step    string
		above, w      time.Duration
		slower, total float64
		err           bool
	}{
		{"checkout", "pay", 2 * time.Second, 10 * time.Minute, 3, 20, false},
		{"checkout", "", 1500 * time.Millisecond, time.Hour, 0, 60, false},
		{"idle", "x", time.Second, 10 * time.Minute, 0, 0, false},      // no samples
		{"nobucket", "pay", time.Second, 10 * time.Minute, 0, 0, true}, // no le bucket at the threshold: not "all slow"
	}
	for _, tt := range slowers {
		t.Run("slower "+tt.flow+" "+tt.step, func(t *testing.T) {
			slower, total, err := src.Slower(ctx, tt.flow, tt.step, tt.above, tt.w, now)
			if (err != nil) != tt.err || slower != tt.slower || total != tt.total {
				t.Errorf("%v of %v (%v), want %v of %v (error %v)", slower, total, err, tt.slower, tt.total, tt.err)
			}
		})
	}
	// Passthrough.
	f.answer(`sum(rate(shop_http_requests_total{code=~"5.."}[5m]))`, ser(0.21, "job", "shop"))
	s, err := src.Query(ctx, `sum(rate(shop_http_requests_total{code=~"5.."}[5m]))`, now)
	if err != nil || len(s) != 1 || s[0].Value != 0.21 || s[0].Labels["job"] != "shop" {
		t.Errorf("query: %v %v", s, err)
	}
	for _, c := range f.takeCalls() {
		if c.Time != at(now) {
			t.Errorf("%s at %s", c.Query, c.Time)
		}
	}
}

// TestPromSourceErrors: a Prometheus that fails, times out or is gone makes
// the rules Unknown, never OK; exemplars or retries that cannot be read
// only leave the evidence thinner.
func TestPromSourceErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("state query fails", func(t *testing.T) {
		f := newPromAPIFake()
		f.setProbes(passingProbe("checkout", "a", ago(10*time.Second)))
		f.fail(querySince, http.StatusServiceUnavailable)
		src := fakePromSource(t, f, nil)
		if _, err := src.FlowStates(ctx, "checkout", now); err == nil {
			t.Fatal("no error")
		} else {
			mustContain(t, "error", err.Error(), querySince, "503")
		}
		// Through the engine: every flow-reading rule is unknown.
		ff := flowFailingRule(1, nil, "", "checkout")
		abs := rule("region_silent", config.Absent)
		abs.Absent = &config.AbsentRule{Regions: []string{"a", "b"}}
		for _, ev := range eval(t, src, &config.Alerting{Rules: []*config.Rule{ff, abs}}) {
			if ev.Status != Unknown || ev.Err == nil {
				t.Errorf("%s %v: %s %q %v", ev.Rule.Name, ev.Labels, ev.Status, ev.Value, ev.Err)
			}
		}
		// The error is kept for the cycle: 1,000 flows do not make 1,000
		// failing rounds of queries.
		f.takeCalls()
		src.FlowStates(ctx, "other", now)
		if calls := f.takeCalls(); len(calls) != 0 {
			t.Errorf("retried within the cycle: %v", queries(calls))
		}
	})
	t.Run("counts fail", func(t *testing.T) {
		f := newPromAPIFake()
		src := fakePromSource(t, f, nil)
		burn := rule("checkout_slo", config.BurnRate)
		burn.BurnRate = &config.BurnRateRule{Flow: "checkout", SLO: 0.995, MinRuns: 1}
		dep := rule("gateway", config.DependencySuccess)
		dep.DependencySuccess = &config.DependencySuccessRule{Dependency: "bank-gateway", Below: 0.95, Window: 5 * time.Minute}
		lat := rule("pay_slow", config.Latency)
		lat.Latency = &config.LatencyRule{Flow: "checkout", Step: "pay", Quantile: 0.95, Above: time.Second, Window: 10 * time.Minute}
		for _, q := range []string{
			`sum by (result) (increase(prober_runs_total{flow="checkout"}[1h]))`,
			`sum by (result) (increase(prober_dependency_calls_total{dependency="bank-gateway"}[5m]))`,
			`sum(increase(prober_step_duration_seconds_count{flow="checkout",step="pay"}[10m]))`,
		} {
			f.fail(q, http.StatusInternalServerError)
		}
		for _, ev := range eval(t, src, &config.Alerting{Rules: []*config.Rule{burn, dep, lat}}) {
			if ev.Status != Unknown || ev.Err == nil {
				t.Errorf("%s: %s %q %v", ev.Rule.Name, ev.Status, ev.Value, ev.Err)
			}
		}
	})
	t.Run("timeout", func(t *testing.T) {
		f := newPromAPIFake()
		f.setProbes(passingProbe("checkout", "a", ago(10*time.Second)))
		f.delay = 3 * time.Second
		srv := httptest.NewServer(f)
		defer srv.Close()
		api, _ := NewPromAPI(&config.Prometheus{URL: srv.URL, Timeout: 200 * time.Millisecond}, nil)
		src := NewPromSource(api, PromSourceOptions{})
		start := time.Now()
		_, err := src.FlowStates(ctx, "checkout", now)
		if err == nil || !strings.Contains(err.Error(), "no answer within 200ms") || time.Since(start) > 2*time.Second {
			t.Errorf("%v after %s", err, time.Since(start))
		}
	})
	t.Run("gone", func(t *testing.T) {
		srv := httptest.NewServer(newPromAPIFake())
		srv.Close()
		api, _ := NewPromAPI(&config.Prometheus{URL: srv.URL, Timeout: time.Second}, nil)
		src := NewPromSource(api, PromSourceOptions{})
		ev := one(t, src, flowFailingRule(1, nil, "", "checkout"))
		if ev.Status != Unknown || ev.Err == nil || !strings.Contains(ev.Err.Error(), "connect") {
			t.Errorf("%s %v", ev.Status, ev.Err)
		}
		if _, err := src.Flows(ctx); err == nil {
			t.Error("flows: no error")
		}
	})
	t.Run("exemplars and retries unavailable", func(t *testing.T) {
		f := newPromAPIFake()
		f.setProbes(failingProbe("checkout", "a", ago(20*time.Second), ago(2*time.Minute)))
		f.exStatus = http.StatusInternalServerError // e.g. a backend without the endpoint
		f.fail(retries5m, http.StatusInternalServerError)
		src := fakePromSource(t, f, nil)
		rs, err := src.FlowStates(ctx, "checkout", now)
		if err != nil || len(rs) != 1 || !rs[0].Known || !rs[0].Failing || rs[0].TraceIDs != nil || rs[0].Retries != 0 ||
			rs[0].Step != "pay" {
			t.Errorf("%v %v", statesString(rs), err)
		}
	})
	t.Run("exemplar storage off", func(t *testing.T) {
		f := newPromAPIFake() // answers [] to query_exemplars, as Prometheus does then
		f.setProbes(failingProbe("checkout", "a", ago(20*time.Second), ago(2*time.Minute)))
		f.answer(retries5m)
		src := fakePromSource(t, f, nil)
		rs, err := src.FlowStates(ctx, "checkout", now)
		if err != nil || len(rs) != 1 || !rs[0].Failing || len(rs[0].TraceIDs) != 0 {
			t.Errorf("%v %v", statesString(rs), err)
		}
	})
}

// TestPromSourceQuorum runs flow_failing rules over three regions through
// the engine: the story's page, a regional degradation, a vanished region.
func TestPromSourceQuorum(t *testing.T) {
	fail := func(region string) probe {
		return failingProbe("checkout", region, ago(20*time.Second), clockAt(2, 14, 3))
	}
	pass := func(region string) probe { return passingProbe("checkout", region, ago(25*time.Second)) }
	retries := []series{ser(1, "flow", "checkout", "region", "a"), ser(1, "flow", "checkout", "region", "b"),
		ser(1, "flow", "checkout", "region", "c")}
	tests := []struct {
		name     string
		probes   []probe
		status   Status
		severity string
		value    string
		summary  string
	}{
		{"3/3 failing", []probe{fail("a"), fail("b"), fail("c")}, Firing, "critical", "failing in 3/3 regions",
			`checkout failing in 3/3 regions for 2m; step pay: json.status == "success" failed; class swallowed_error; ` +
				`confirmed by 3 retries; trace t-a`},
		{"2/3 failing", []probe{fail("a"), pass("b"), fail("c")}, Firing, "critical", "failing in 2/3 regions",
			`checkout failing in 2/3 regions (a, c) for 2m; step pay`},
		{"1/3 failing: a regional warning", []probe{pass("a"), fail("b"), pass("c")}, Firing, "warning",
			"degraded: failing in 1/3 regions (b)", `checkout degraded: failing in 1/3 regions (b) for 2m`},
		{"a vanished region is unknown, not failing", []probe{fail("a"), pass("b"),
			{flow: "checkout", region: "c", last: ago(3 * time.Minute), gone: true}}, Firing, "warning",
			"degraded: failing in 1/3 regions (a)", ""},
		{"all passing", []probe{pass("a"), pass("b"), pass("c")}, OK, "critical", "passing in 3/3 regions", ""},
		{"all stale: unknown", []probe{{flow: "checkout", region: "a", last: ago(time.Hour), ok: true},
			{flow: "checkout", region: "b", last: ago(2 * time.Hour), ok: true, gone: true}}, Unknown, "critical",
			"no fresh runs in any of 2 regions", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newPromAPIFake()
			f.setProbes(tt.probes...)
			f.answer(retries5m, retries...)
			var ex []exemplar
			for _, p := range tt.probes {
				ex = append(ex, exemplar{"checkout", p.region, "t-" + p.region, p.last.Add(time.Second)})
			}
			f.setExemplars(ex...)
			ev := one(t, fakePromSource(t, f, nil), flowFailingRule(2, nil, "warning", "checkout"))
			if ev.Status != tt.status || ev.Severity != tt.severity || ev.Value != tt.value || ev.Err != nil {
				t.Errorf("%s %s %q %v", ev.Status, ev.Severity, ev.Value, ev.Err)
			}
			if !strings.HasPrefix(ev.Summary, tt.summary) {
				t.Errorf("summary %q, want it to begin %q", ev.Summary, tt.summary)
			}
		})
	}
}

// TestAbsentRule: one evaluation per expected region; silent regions fire,
// with when they last reported.
func TestAbsentRule(t *testing.T) {
	absent := func(regions []string, flows ...string) *config.Rule {
		r := rule("region_silent", config.Absent)
		r.Absent = &config.AbsentRule{Flows: flows, Regions: regions}
		return r
	}
	type want struct {
		region  string
		status  Status
		value   string
		summary string
	}
	check := func(t *testing.T, evs []Evaluation, ws []want) {
		t.Helper()
		if len(evs) != len(ws) {
			t.Fatalf("%d evaluations, want %d: %+v", len(evs), len(ws), evs)
		}
		for i, w := range ws {
			ev := evs[i]
			if ev.Labels["silent_region"] != w.region || ev.Labels["rule"] != "region_silent" || ev.Labels["region"] != "" {
				t.Errorf("labels %v", ev.Labels)
			}
			if ev.Status != w.status || ev.Value != w.value || ev.Summary != w.summary {
				t.Errorf("%s: %s %q %q\nwant %s %q %q", w.region, ev.Status, ev.Value, ev.Summary, w.status, w.value, w.summary)
			}
			if ev.Status == Firing && (!slices.Equal(ev.Evidence.RegionsFailing, []string{w.region})) {
				t.Errorf("evidence %+v", ev.Evidence)
			}
		}
	}

	t.Run("store", func(t *testing.T) {
		st := store.New(5)
		for m := 20; m >= 0; m-- {
			start := ago(time.Duration(m)*time.Minute + 10*time.Second)
			for _, region := range []string{"a", "b", "c"} {
				if region == "b" && start.After(clockAt(2, 10, 7)) {
					continue // b's prober died after its 02:10 runs
				}
				for _, flow := range []string{"checkout", "shop_health"} {
					st.Observe(storeRun(flow, region, start, true, fmt.Sprintf("%s%s%d", flow, region, m)))
				}
			}
		}
		src := NewStoreSource(st, nil, nil)
		evs := eval(t, src, &config.Alerting{Rules: []*config.Rule{absent(nil)}})
		check(t, evs, []want{
			{"a", OK, "region a reporting: 2 of 2 flows fresh", ""},
			{"b", Firing, "region b silent: no fresh results from 2 flows",
				"region b silent: no results from checkout, shop_health for 6m (last at 02:09:50Z)"},
			{"c", OK, "region c reporting: 2 of 2 flows fresh", ""},
		})
		// Listed regions: d never reported; one flow only.
		evs = eval(t, src, &config.Alerting{Rules: []*config.Rule{absent([]string{"b", "d", "b"}, "checkout")}})
		check(t, evs, []want{
			{"b", Firing, "region b silent: no fresh results from 1 flow",
				"region b silent: no results from checkout for 6m (last at 02:09:50Z)"},
			{"d", Firing, "region d silent: no fresh results from 1 flow", "region d silent: no results from checkout"},
		})
		// Nothing ever reported, no regions listed: unknown, not a page.
		evs = eval(t, NewStoreSource(store.New(1), nil, nil), &config.Alerting{Rules: []*config.Rule{absent(nil)}})
		if len(evs) != 1 || evs[0].Status != Unknown || evs[0].Value != "no region has reported in the last day" {
			t.Errorf("%+v", evs)
		}
	})

	t.Run("prometheus", func(t *testing.T) {
		f := newPromAPIFake()
		f.setProbes(
			passingProbe("checkout", "a", ago(20*time.Second)), passingProbe("shop_health", "a", ago(5*time.Second)),
			// b: one flow fresh is enough.
			passingProbe("checkout", "b", ago(10*time.Minute)), passingProbe("shop_health", "b", ago(5*time.Second)),
			// c: its target went away at 02:12.
			probe{flow: "checkout", region: "c", last: clockAt(2, 12, 0), ok: true, gone: true},
			probe{flow: "shop_health", region: "c", last: clockAt(2, 11, 30), ok: true, gone: true},
			// e: scraped, but its runs stopped (a stuck scheduler).
			passingProbe("checkout", "e", clockAt(2, 9, 0)), passingProbe("shop_health", "e", clockAt(2, 8, 0)),
		)
		src := fakePromSource(t, f, nil)
		evs := eval(t, src, &config.Alerting{Rules: []*config.Rule{absent(nil)}})
		check(t, evs, []want{
			{"a", OK, "region a reporting: 2 of 2 flows fresh", ""},
			{"b", OK, "region b reporting: 1 of 2 flows fresh", ""},
			{"c", Firing, "region c silent: no fresh results from 2 flows",
				"region c silent: no results from checkout, shop_health for 4m (last at 02:12:00Z)"},
			{"e", Firing, "region e silent: no fresh results from 2 flows",
				"region e silent: no results from checkout, shop_health for 7m (last at 02:09:00Z)"},
		})
		if evs[2].Evidence.RegionsKnown != 2 || evs[2].Evidence.RegionsTotal != 4 {
			t.Errorf("evidence %+v", evs[2].Evidence)
		}
		// The rule's flows only, and a region listed that never reported.
		evs = eval(t, src, &config.Alerting{Rules: []*config.Rule{absent([]string{"a", "d"}, "checkout")}})
		check(t, evs, []want{
			{"a", OK, "region a reporting: 1 of 1 flow fresh", ""},
			{"d", Firing, "region d silent: no fresh results from 1 flow", "region d silent: no results from checkout"},
		})
		// Prometheus failing: unknown, per listed region, or for the rule.
		f.fail(queryLastRun, http.StatusServiceUnavailable)
		f.fail(querySeen, http.StatusServiceUnavailable)
		src = fakePromSource(t, f, nil)
		at := now.Add(time.Minute)
		evs = NewEngine(&config.Alerting{Rules: []*config.Rule{absent([]string{"a", "c"}, "checkout"), absent(nil, "checkout")}},
			src, Options{}).Evaluate(context.Background(), at)
		if len(evs) != 3 {
			t.Fatalf("%+v", evs)
		}
		for _, ev := range evs {
			if ev.Status != Unknown || ev.Err == nil {
				t.Errorf("%v: %s %q %v", ev.Labels, ev.Status, ev.Value, ev.Err)
			}
		}
	})

	t.Run("fake source", func(t *testing.T) {
		fs := &fakeSource{flows: []string{"checkout"}, states: map[string][]RegionState{
			"checkout": {passing("a"), {Region: "b", Last: ago(3 * time.Minute)}}}}
		fs.regions = []RegionSeen{{Region: "a", Last: ago(time.Minute)}, {Region: "b", Last: ago(2 * time.Minute)}}
		check(t, eval(t, fs, &config.Alerting{Rules: []*config.Rule{absent(nil)}}), []want{
			{"a", OK, "region a reporting: 1 of 1 flow fresh", ""},
			{"b", Firing, "region b silent: no fresh results from 1 flow", "region b silent: no results from checkout for 2m (last at 02:14:00Z)"},
		})
		fs.regionsErr = fmt.Errorf("boom")
		evs := eval(t, fs, &config.Alerting{Rules: []*config.Rule{absent(nil)}})
		if len(evs) != 1 || evs[0].Status != Unknown || evs[0].Err == nil {
			t.Errorf("%+v", evs)
		}
		fs.regionsErr, fs.statesErr = nil, fmt.Errorf("boom")
		evs = eval(t, fs, &config.Alerting{Rules: []*config.Rule{absent(nil)}})
		if len(evs) != 2 || evs[0].Status != Unknown || evs[1].Status != Unknown {
			t.Errorf("%+v", evs)
		}
		// A rule without its part is unknown, not a panic.
		r := rule("region_silent", config.Absent)
		if ev := one(t, fs, r); ev.Status != Unknown || ev.Err == nil {
			t.Errorf("%+v", ev)
		}
	})
}

// BenchmarkPromSource evaluates every flow of 1,000 in three regions (ten
// failing everywhere) and an absent rule through the PromSource against a
// fake Prometheus: how many queries a cycle sends, and how long it takes
// (each iteration is a new evaluation time, so nothing comes from the
// previous cycle's snapshot; the day-long list is reused within a minute,
// as in the daemon).
func BenchmarkPromSource(b *testing.B) {
	f := newPromAPIFake()
	var ps []probe
	var ex []exemplar
	var rt []series
	for i := range 1000 {
		flow := fmt.Sprintf("flow-%04d", i)
		for _, region := range []string{"a", "b", "c"} {
			if i < 10 {
				ps = append(ps, failingProbe(flow, region, ago(20*time.Second), ago(3*time.Minute),
					"instance", "prober-"+region+":9100", "job", "prober"))
				ex = append(ex, exemplar{flow, region, fmt.Sprintf("%032x", i), ago(19 * time.Second)})
				rt = append(rt, ser(1, "flow", flow, "region", region))
				continue
			}
			ps = append(ps, passingProbe(flow, region, ago(20*time.Second), "instance", "prober-"+region+":9100", "job", "prober"))
		}
	}
	f.setProbes(ps...)
	f.setExemplars(ex...)
	f.answer(retries5m, rt...)
	src := fakePromSource(b, f, nil)
	ff := flowFailingRule(2, nil, "warning")
	abs := rule("region_silent", config.Absent)
	abs.Absent = &config.AbsentRule{}
	e := NewEngine(&config.Alerting{Rules: []*config.Rule{ff, abs}}, src, Options{})
	f.takeCalls()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		evs := e.Evaluate(context.Background(), now.Add(time.Duration(i)*time.Second))
		if len(evs) != 1003 || evs[0].Status != Firing || evs[999].Status != OK {
			b.Fatalf("%d evaluations: %s %q", len(evs), evs[0].Status, evs[0].Value)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(f.takeCalls()))/float64(b.N), "queries/cycle")
}
