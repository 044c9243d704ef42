package golden

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/rulekind"
	"github.com/prober-dev/prober/internal/store"
)

// sloRule is the shipped checkout_slo: 99%, min_runs 10, the workbook's
// four window pairs.
func sloRule(minRuns int) *config.Rule {
	r := rule("checkout_slo", config.BurnRate)
	r.BurnRate = &config.BurnRateRule{Flow: "checkout", SLO: 0.99, MinRuns: minRuns, Windows: config.DefaultBurnWindows}
	return r
}

// runFlow observes checkout in region a every interval over [from, to),
// each slot failing (confirmed by one retry) when fail says so.
func runFlow(st *store.Store, from, to time.Time, interval time.Duration, fail func(time.Time) bool) {
	for t := from; t.Before(to); t = t.Add(interval) {
		f := fail != nil && fail(t)
		observeSlot(st, "checkout", "a", t, !f, false, 1, fmt.Sprintf("t%d", t.Unix()))
	}
}

// storeEngine evaluates rs over st with the daemon's freshness bound for
// a flow run every interval (2×interval + a 30s timeout twice).
func storeEngine(st *store.Store, interval time.Duration, signals []*config.Signal, rs ...*config.Rule) *Engine {
	age := 2*interval + 60*time.Second
	return NewEngine(&config.Alerting{Rules: rs, Signals: signals}, NewStoreSource(st, func(string) time.Duration { return age }, nil), Options{})
}

// TestBurnRateNeedsEvidence: a burn-rate pair is judged only when the
// history covers its long window and the long window holds enough runs
// that one failure cannot cross its limit. One confirmed failure pages
// nothing, young history or not.
func TestBurnRateNeedsEvidence(t *testing.T) {
	start := now.Add(-7 * time.Hour)
	tests := []struct {
		name     string
		history  time.Duration // passing runs before the failure
		interval time.Duration
		minRuns  int
		value    string
	}{
		// The case: 11 runs after a start, then one failure. It
		// paged "burning 8.33x the error budget over 6h and 30m (limit
		// 6x)": 1 of 12 runs in both windows.
		{"young history", 11 * time.Minute, time.Minute, 10, "the flow's history does not cover 1h yet"},
		// Covered, but one run every 10 minutes: 1 of the 1h window's 6
		// runs is 16.7% > 14.4%, and the 5m window holds just the failure.
		// Fewer than 1/0.144 = 6.94 runs: the pair is not judged; the 6h
		// one is (36 runs, 1 failed: 2.78x).
		{"covered but sparse", 7 * time.Hour, 10 * time.Minute, 1, "burning 2.78x the error budget over 6h and 30m (limit 6x)"},
		// Covered and dense: one failure is far below every limit.
		{"covered", 7 * time.Hour, time.Minute, 10, "burning 1.67x the error budget over 1h and 5m (limit 14.4x)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := store.New(10)
			from := start.Add(7*time.Hour - tt.history)
			fail := from.Add(tt.history)
			runFlow(st, from, fail.Add(time.Second), tt.interval, func(t time.Time) bool { return !t.Before(fail) })
			// 40s after: the 1h window's first 1m bucket is less than half
			// inside, so the sparse flow's window holds 6 runs.
			at := fail.Add(40 * time.Second)
			ev := storeEngine(st, tt.interval, nil, sloRule(tt.minRuns)).Evaluate(context.Background(), at)[0]
			if ev.Status == Firing {
				t.Fatalf("one failure paged: %s %s %q", ev.Severity, ev.Value, ev.Summary)
			}
			if ev.Value != tt.value {
				t.Errorf("value %q, want %q", ev.Value, tt.value)
			}
		})
	}
}

// timeToPage evaluates every 10s from from until to, and returns when the
// rule first fired critical, and its value.
func timeToPage(t *testing.T, e *Engine, st *store.Store, from, to time.Time, interval time.Duration, fail func(time.Time) bool) (time.Duration, string) {
	t.Helper()
	next := from
	for at := from; !at.After(to); at = at.Add(10 * time.Second) {
		for ; !next.After(at.Add(-2 * time.Second)); next = next.Add(interval) {
			runFlow(st, next, next.Add(time.Second), interval, fail)
		}
		if ev := e.Evaluate(context.Background(), at)[0]; ev.Status == Firing && ev.Severity == "critical" {
			return at.Sub(from), ev.Value
		}
	}
	return -1, ""
}

// TestBurnRateOutagePagesInTime: a real outage (every run failing) still
// pages at 14.4x once the history covers the hour, within the SRE
// workbook's detection time: 14.4x of a 1% budget over 1h is 14.4% of the
// hour failed, 0.144 × 60 = 8.64 minutes; give or take one run interval
// and the 1h window's rounding to its 1m buckets.
func TestBurnRateOutagePagesInTime(t *testing.T) {
	const interval = 30 * time.Second
	st := store.New(10)
	outage := now.Add(-2 * time.Hour)
	runFlow(st, outage.Add(-2*time.Hour), outage, interval, nil)
	e := storeEngine(st, interval, nil, sloRule(10))
	took, value := timeToPage(t, e, st, outage, outage.Add(20*time.Minute), interval, func(time.Time) bool { return true })
	workbook := workbookTime
	if took < 0 || took > workbook+interval+30*time.Second || took < workbook-interval-30*time.Second {
		t.Fatalf("paged after %s (%q), want about %s", took, value, workbook)
	}
	if !strings.HasSuffix(value, "over 1h and 5m (limit 14.4x)") {
		t.Errorf("paged by %q, want the 1h and 5m pair", value)
	}
	t.Logf("100%% errors paged after %s (workbook: %s)", took, workbook)
}

// TestBurnRateAfterRestart: the history saved before a restart and loaded
// after it keeps the windows covered: one blip after the restart pages
// nothing (it paged critical with the history lost), and an outage after
// the restart still pages within the workbook's time (without the history
// the 1h window would not be judged for an hour).
func TestBurnRateAfterRestart(t *testing.T) {
	const interval = time.Minute
	before := store.New(10)
	restart := now.Add(-time.Hour)
	runFlow(before, restart.Add(-7*time.Hour), restart, interval, nil)
	snap := before.AppendHistory(nil, restart)

	load := func(t *testing.T) *store.Store {
		st := store.New(10)
		if err := st.RestoreHistory(snap, restart.Add(30*time.Second), 72*time.Hour); err != nil {
			t.Fatal(err)
		}
		return st
	}
	t.Run("one blip", func(t *testing.T) {
		st := load(t)
		blip := restart.Add(11 * time.Minute)
		runFlow(st, restart.Add(time.Minute), blip.Add(time.Second), interval, func(t time.Time) bool { return t.Equal(blip) })
		ev := storeEngine(st, interval, nil, sloRule(10)).Evaluate(context.Background(), blip.Add(5*time.Second))[0]
		if ev.Status != OK {
			t.Errorf("a blip after a restart: %s %s %q", ev.Status, ev.Severity, ev.Value)
		}
	})
	t.Run("outage", func(t *testing.T) {
		st := load(t)
		e := storeEngine(st, interval, nil, sloRule(10))
		from := restart.Add(time.Minute)
		took, value := timeToPage(t, e, st, from, from.Add(20*time.Minute), interval, func(time.Time) bool { return true })
		workbook := workbookTime
		if took < 0 || took > workbook+interval+30*time.Second {
			t.Fatalf("paged after %s (%q), want within %s", took, value, workbook+interval+30*time.Second)
		}
	})
	t.Run("history lost", func(t *testing.T) {
		st := store.New(10)
		runFlow(st, restart.Add(time.Minute), restart.Add(20*time.Minute), interval, func(time.Time) bool { return true })
		ev := storeEngine(st, interval, nil, sloRule(10)).Evaluate(context.Background(), restart.Add(20*time.Minute))[0]
		if ev.Status != Unknown || ev.Value != "the flow's history does not cover 1h yet" {
			t.Errorf("young history: %s %q", ev.Status, ev.Value)
		}
	})
}

// TestDependencyRegionQuorum: the gateway is judged per region, as
// flow_failing judges the checkout: one region of three failing is a
// regional degradation (or nothing), all three an outage.
func TestDependencyRegionQuorum(t *testing.T) {
	mk := func(minRegions int, degraded string) *config.Rule {
		r := rule("gateway_success", config.DependencySuccess)
		r.DependencySuccess = &config.DependencySuccessRule{Dependency: "bank-gateway", Below: 0.95, Window: 5 * time.Minute,
			MinCalls: 3, MinFailures: 2, MinRegions: minRegions, DegradedSeverity: degraded}
		return r
	}
	tests := []struct {
		name     string
		failing  []string
		rule     *config.Rule
		status   Status
		severity string
		value    string
	}{
		// Summed over the regions this was 10 of 15 calls, 66.7% < 95%:
		// critical.
		{"1 of 3, degraded", []string{"b"}, mk(2, "warning"), Firing, "warning",
			"degraded: bank-gateway success 0% < 95% over 5m (5 calls) in 1/3 regions (b)"},
		{"1 of 3, no degraded severity", []string{"b"}, mk(2, ""), OK, "critical",
			"bank-gateway success below 95% in 1/3 regions (b), fewer than the 2 regions needed"},
		{"3 of 3", []string{"a", "b", "c"}, mk(2, "warning"), Firing, "critical",
			"bank-gateway success 0% < 95% over 5m (15 calls) in 3/3 regions"},
		{"1 of 3, quorum 1", []string{"c"}, mk(1, "warning"), Firing, "critical",
			"bank-gateway success 0% < 95% over 5m (5 calls) in 1/3 regions (c)"},
		{"healthy", nil, mk(2, "warning"), OK, "critical", "bank-gateway success 100% over 5m (15 calls)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := store.New(10)
			outage := now.Add(-5 * time.Minute)
			for m := -10; m < 5; m++ {
				at := outage.Add(time.Duration(m) * time.Minute)
				for _, region := range []string{"a", "b", "c"} {
					ok := m < 0 || !slices.Contains(tt.failing, region)
					observeSlot(st, "checkout", region, at, ok, false, 1, fmt.Sprintf("%s%d", region, m))
				}
			}
			ev := storeEngine(st, time.Minute, nil, tt.rule).Evaluate(context.Background(), now)[0]
			if ev.Status != tt.status || ev.Severity != tt.severity || ev.Value != tt.value {
				t.Errorf("got %s %s %q, want %s %s %q", ev.Status, ev.Severity, ev.Value, tt.status, tt.severity, tt.value)
			}
			if ev.Status == Firing && !slices.Equal(ev.Evidence.RegionsFailing, tt.failing) {
				t.Errorf("regions failing %v, want %v", ev.Evidence.RegionsFailing, tt.failing)
			}
		})
	}
}

// TestSignalWasBeforeFirstFailure: "(was X%)" is read over a window ending
// before the first failure, not one that already holds it; and a signal
// with nothing before says nothing about before.
func TestSignalWasBeforeFirstFailure(t *testing.T) {
	const interval = 10 * time.Second
	st := store.New(10)
	// Slots at :07, :17, ...; the failures begin at 02:14:07, inside the
	// 10s bucket [02:14:00, 02:14:10) that a window ending at 02:14:07
	// rounds up to.
	first := time.Date(2026, 11, 3, 2, 14, 7, 0, time.UTC)
	runFlow(st, first.Add(-30*time.Minute), now, interval, func(t time.Time) bool { return !t.Before(first) })
	sig := &config.Signal{Name: "checkout success", Flow: "checkout", Window: 5 * time.Minute}
	gw := &config.Signal{Name: "refund gateway", Dependency: "refund-gateway", Window: 5 * time.Minute}
	ev := storeEngine(st, interval, []*config.Signal{sig}, flowFailingRule(1, nil, "", "checkout")).Evaluate(context.Background(), now)[0]
	if ev.Status != Firing || !ev.Evidence.Since.Equal(first) || len(ev.Signals) != 1 {
		t.Fatalf("%s since %v, signals %+v", ev.Status, ev.Evidence.Since, ev.Signals)
	}
	// Now: 12 of the 30 runs of the last 5m failed.
	if s := ev.Signals[0]; s.Before != 1 || s.Text != "checkout success 60% (was 100%)" {
		t.Errorf("signal %q (before %v), want it read before 02:14:07", s.Text, s.Before)
	}
	// Nothing before the trouble: the value now alone, no "(no data before)".
	sv := SignalValue{Name: gw.Name, Unit: "ratio", Now: 0, HasNow: true}
	if got := signalText(&sv); got != "refund gateway 0%" {
		t.Errorf("signal without a before: %q", got)
	}
}

// workbookTime is the SRE workbook's detection time of the 14.4x pair at
// 100% errors: 14.4 × 1% of an hour = 8.64 minutes.
const workbookTime = 518400 * time.Millisecond

// TestPromSourceEvidence: the Prometheus-backed source has the same
// guards: a burn-rate window is judged only once the flow's run counter
// reaches back to its start, and the dependency is judged per region.
func TestPromSourceEvidence(t *testing.T) {
	const (
		runs1h = `sum by (result) (increase(prober_runs_total{flow="checkout"}[1h]))`
		runs5m = `sum by (result) (increase(prober_runs_total{flow="checkout"}[5m]))`
		gw5m   = `sum by (region, result) (increase(prober_dependency_calls_total{dependency="bank-gateway"}[5m]))`
	)
	burn := sloRule(10)
	burn.BurnRate.Windows = config.DefaultBurnWindows[:1]
	// 3 regions, one run a minute each for 12 minutes, all failing the
	// last 5: 1h 15 of 36 failed (41.7x); 5m 15 of 15.
	for _, tt := range []struct {
		name    string
		covered bool
		status  Status
		value   string
	}{
		{"young", false, Unknown, "the flow's history does not cover 1h yet"},
		{"covered", true, Firing, "burning 41.7x the error budget over 1h and 5m (limit 14.4x)"},
	} {
		t.Run("burn "+tt.name, func(t *testing.T) {
			f := newPromAPIFake()
			f.answer(runs1h, ser(21, "result", "success"), ser(15, "result", "failure"))
			f.answer(runs5m, ser(15, "result", "failure"))
			if tt.covered {
				f.answer(rulekind.CoverageQuery("checkout", 2*time.Minute), ser(1))
			} else {
				f.answer(rulekind.CoverageQuery("checkout", 2*time.Minute))
			}
			ev := one(t, fakePromSource(t, f, map[string]time.Duration{"checkout": 3 * time.Minute}), burn)
			if ev.Status != tt.status || ev.Value != tt.value {
				t.Errorf("%s %q (%v), want %s %q", ev.Status, ev.Value, ev.Err, tt.status, tt.value)
			}
			// The coverage query is asked where the window begins, plus the
			// slack: max(half of 3m, 2m).
			var asked bool
			for _, c := range f.takeCalls() {
				if c.Query == rulekind.CoverageQuery("checkout", 2*time.Minute) {
					asked = c.Time == at(now.Add(-time.Hour+2*time.Minute))
				}
			}
			if !asked {
				t.Error("coverage not asked at the window's start")
			}
		})
	}
	for _, tt := range []struct {
		name     string
		failing  []string
		severity string
		value    string
	}{
		{"1 of 3", []string{"b"}, "warning", "degraded: bank-gateway success 0% < 95% over 5m (5 calls) in 1/3 regions (b)"},
		{"3 of 3", []string{"a", "b", "c"}, "critical", "bank-gateway success 0% < 95% over 5m (15 calls) in 3/3 regions"},
	} {
		t.Run("dependency "+tt.name, func(t *testing.T) {
			f := newPromAPIFake()
			var ss []series
			for _, region := range []string{"a", "b", "c"} {
				outcome := "success"
				if slices.Contains(tt.failing, region) {
					outcome = "failure"
				}
				ss = append(ss, ser(5, "region", region, "result", outcome))
			}
			f.answer(gw5m, ss...)
			r := rule("gateway_success", config.DependencySuccess)
			r.DependencySuccess = &config.DependencySuccessRule{Dependency: "bank-gateway", Below: 0.95, Window: 5 * time.Minute,
				MinCalls: 3, MinFailures: 2, MinRegions: 2, DegradedSeverity: "warning"}
			ev := one(t, fakePromSource(t, f, nil), r)
			if ev.Status != Firing || ev.Severity != tt.severity || ev.Value != tt.value {
				t.Errorf("%s %s %q (%v), want %s %q", ev.Status, ev.Severity, ev.Value, ev.Err, tt.severity, tt.value)
			}
			if !slices.Equal(ev.Evidence.RegionsFailing, tt.failing) {
				t.Errorf("regions failing %v", ev.Evidence.RegionsFailing)
			}
		})
	}
}
