package golden

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

func eval(t *testing.T, src Source, a *config.Alerting) []Evaluation {
	t.Helper()
	return NewEngine(a, src, Options{}).Evaluate(context.Background(), now)
}

func one(t *testing.T, src Source, r *config.Rule, sigs ...*config.Signal) Evaluation {
	t.Helper()
	evs := eval(t, src, &config.Alerting{Rules: []*config.Rule{r}, Signals: sigs})
	if len(evs) != 1 {
		t.Fatalf("%d evaluations, want 1: %+v", len(evs), evs)
	}
	return evs[0]
}

func TestFlowFailing(t *testing.T) {
	tests := []struct {
		name       string
		rule       *config.Rule
		states     []RegionState
		status     Status
		severity   string
		value      string
		failing    []string
		known, tot int
		retries    int
		traces     []string
	}{
		{"all regions failing", flowFailingRule(2, nil, "warning", "checkout"),
			[]RegionState{failing("a", 2*time.Minute, 1, "a2", "a1"), failing("b", time.Minute, 1, "b2", "b1"), failing("c", 3*time.Minute, 1, "c2")},
			Firing, "critical", "failing in 3/3 regions", []string{"a", "b", "c"}, 3, 3, 3,
			// Regions by newest last run (b at -15s, a at -30s, c at -45s),
			// each region's newest first, interleaved.
			[]string{"b2", "a2", "c2", "b1", "a1"}},
		{"quorum met, not all", flowFailingRule(2, nil, "warning", "checkout"),
			[]RegionState{failing("c", time.Minute, 2, "c1"), passing("b"), failing("a", time.Minute, 0, "a1")},
			Firing, "critical", "failing in 2/3 regions", []string{"a", "c"}, 3, 3, 2, []string{"c1", "a1"}},
		{"regional degradation", flowFailingRule(2, nil, "warning", "checkout"),
			[]RegionState{passing("a"), failing("b", time.Minute, 1, "b1"), passing("c")},
			Firing, "warning", "degraded: failing in 1/3 regions (b)", []string{"b"}, 3, 3, 1, []string{"b1"}},
		{"below quorum, no degraded severity", flowFailingRule(2, nil, "", "checkout"),
			[]RegionState{passing("a"), failing("b", time.Minute, 1, "b1"), passing("c")},
			OK, "critical", "failing in 1/3 regions, fewer than the 2 needed", nil, 3, 3, 0, nil},
		{"one region, min 1", flowFailingRule(1, nil, "", "checkout"),
			[]RegionState{failing("local", time.Minute, 1, "t1")},
			Firing, "critical", "failing in 1/1 region", []string{"local"}, 1, 1, 1, []string{"t1"}},
		{"all passing", flowFailingRule(1, nil, "", "checkout"),
			[]RegionState{passing("a"), passing("b")},
			OK, "critical", "passing in 2/2 regions", nil, 2, 2, 0, nil},
		// A stale failing region is unknown, not failing.
		{"stale failure does not count", flowFailingRule(1, nil, "", "checkout"),
			[]RegionState{passing("a"), stale(failing("b", time.Hour, 1, "b1"))},
			OK, "critical", "passing in 1/2 regions (1 without fresh runs)", nil, 1, 2, 0, nil},
		{"nothing fresh: unknown, never OK", flowFailingRule(1, nil, "", "checkout"),
			[]RegionState{stale(passing("a")), stale(failing("b", time.Hour, 1))},
			Unknown, "critical", "no fresh runs in any of 2 regions", nil, 0, 2, 0, nil},
		{"no runs yet", flowFailingRule(1, nil, "", "checkout"), nil,
			Unknown, "critical", "no runs yet", nil, 0, 0, 0, nil},
		// Regions listed: M is 3 whoever reports; z is not expected.
		{"listed regions: missing ones unknown", flowFailingRule(2, []string{"a", "b", "c"}, "warning", "checkout"),
			[]RegionState{failing("a", time.Minute, 1, "a1"), failing("z", time.Minute, 1, "z1")},
			Firing, "warning", "degraded: failing in 1/3 regions (a)", []string{"a"}, 1, 3, 1, []string{"a1"}},
		{"listed regions: quorum", flowFailingRule(2, []string{"a", "b", "c"}, "warning", "checkout"),
			[]RegionState{failing("a", time.Minute, 1, "a1"), failing("b", time.Minute, 0, "b1")},
			Firing, "critical", "failing in 2/3 regions", []string{"a", "b"}, 2, 3, 1, []string{"a1", "b1"}},
		{"listed regions: none reporting", flowFailingRule(1, []string{"a"}, "", "checkout"),
			[]RegionState{failing("z", time.Minute, 1, "z1")},
			Unknown, "critical", "no fresh runs in any of 1 region", nil, 0, 1, 0, nil},
		// Trace ids are capped at five, duplicates dropped.
		{"traces capped", flowFailingRule(1, nil, "", "checkout"),
			[]RegionState{failing("a", time.Minute, 1, "t1", "t2", "t3", "t4", "t5", "t6"), failing("b", 2*time.Minute, 1, "t1", "u2")},
			Firing, "critical", "failing in 2/2 regions", []string{"a", "b"}, 2, 2, 2, []string{"t1", "t2", "u2", "t3", "t4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{states: map[string][]RegionState{"checkout": tt.states}}
			ev := one(t, src, tt.rule)
			if ev.Status != tt.status || ev.Severity != tt.severity || ev.Value != tt.value {
				t.Errorf("got %s %s %q, want %s %s %q", ev.Status, ev.Severity, ev.Value, tt.status, tt.severity, tt.value)
			}
			e := ev.Evidence
			if ev.Status == Firing {
				if !slices.Equal(e.RegionsFailing, tt.failing) || e.Retries != tt.retries || !slices.Equal(e.TraceIDs, tt.traces) {
					t.Errorf("evidence %v retries %d traces %v, want %v %d %v", e.RegionsFailing, e.Retries, e.TraceIDs, tt.failing, tt.retries, tt.traces)
				}
				if e.Step != "pay" || e.Class != "swallowed_error" || e.Actual != `"processing"` || e.Dependency != "bank-gateway" {
					t.Errorf("failure details %+v", e)
				}
				if ev.Summary == "" {
					t.Error("firing without a summary")
				}
			}
			if e.RegionsKnown != tt.known || e.RegionsTotal != tt.tot || e.Flow != "checkout" {
				t.Errorf("known/total %d/%d flow %q, want %d/%d", e.RegionsKnown, e.RegionsTotal, e.Flow, tt.known, tt.tot)
			}
			if ev.Labels["rule"] != "checkout_failing" || ev.Labels["flow"] != "checkout" || len(ev.Labels) != 2 {
				t.Errorf("labels %v", ev.Labels)
			}
		})
	}
}

func TestFlowFailingAllFlows(t *testing.T) {
	src := &fakeSource{flows: []string{"checkout", "signup"}, states: map[string][]RegionState{
		"checkout": {failing("a", time.Minute, 1, trace1)}, "signup": {passing("a")}}}
	r := flowFailingRule(1, nil, "")
	r.Labels = map[string]string{"team": "payments", "flow": "not this"}
	evs := eval(t, src, &config.Alerting{Rules: []*config.Rule{r}})
	if len(evs) != 2 || evs[0].Status != Firing || evs[1].Status != OK {
		t.Fatalf("%+v", evs)
	}
	if l := evs[0].Labels; l["flow"] != "checkout" || l["team"] != "payments" || l["rule"] != "checkout_failing" {
		t.Errorf("labels %v: identity labels win over the rule's", l)
	}
	// The source cannot list flows: one Unknown with the error.
	src.flowsErr = errors.New("store gone")
	evs = eval(t, src, &config.Alerting{Rules: []*config.Rule{r}})
	if len(evs) != 1 || evs[0].Status != Unknown || evs[0].Err == nil || !strings.Contains(evs[0].Err.Error(), "store gone") {
		t.Errorf("%+v", evs)
	}
	// States unreadable: Unknown per flow.
	src.flowsErr, src.statesErr = nil, errors.New("timeout")
	evs = eval(t, src, &config.Alerting{Rules: []*config.Rule{r}})
	if len(evs) != 2 || evs[0].Status != Unknown || evs[0].Err == nil {
		t.Errorf("%+v", evs)
	}
}

func TestSummaries(t *testing.T) {
	gateway := &config.Signal{Name: "gateway success", Dependency: "bank-gateway", Window: 5 * time.Minute}
	three := []RegionState{failing("a", 2*time.Minute, 1, trace1, "a0"), failing("b", 2*time.Minute, 1, "b1"), failing("c", 2*time.Minute, 1, "c1")}
	three[0].Last = ago(10 * time.Second) // a is the newest
	tests := []struct {
		name string
		rule *config.Rule
		src  *fakeSource
		sigs []*config.Signal
		want string
	}{
		{"the 2 AM page", flowFailingRule(2, nil, "warning", "checkout"),
			&fakeSource{states: map[string][]RegionState{"checkout": three}, depRatio: gatewaySignal},
			[]*config.Signal{gateway},
			`checkout failing in 3/3 regions for 2m; step pay: json.status == "success": got "processing"; class swallowed_error; confirmed by 3 retries; gateway success 0% (was 99.8%); trace 4bf92f3577b34da6a3ce929d0e0e4736`},
		{"regional degradation", flowFailingRule(2, nil, "warning", "checkout"),
			&fakeSource{states: map[string][]RegionState{"checkout": {passing("a"), failing("b", time.Minute, 1, trace1), passing("c")}}}, nil,
			`checkout degraded: failing in 1/3 regions (b) for 1m; step pay: json.status == "success": got "processing"; class swallowed_error; confirmed by 1 retry; trace 4bf92f3577b34da6a3ce929d0e0e4736`},
		{"quorum, regions named", flowFailingRule(2, nil, "warning", "checkout"),
			&fakeSource{states: map[string][]RegionState{"checkout": {failing("a", 65*time.Minute, 0, trace1), passing("b"), failing("c", time.Minute, 0)}}}, nil,
			`checkout failing in 2/3 regions (a, c) for 1h5m; step pay: json.status == "success": got "processing"; class swallowed_error; trace 4bf92f3577b34da6a3ce929d0e0e4736`},
		{"rule summary prefix", func() *config.Rule {
			r := flowFailingRule(1, nil, "", "checkout")
			r.Summary = "Customers cannot pay"
			return r
		}(), &fakeSource{states: map[string][]RegionState{"checkout": {failing("a", 47*time.Minute, 2, trace1)}}}, nil,
			`Customers cannot pay: checkout failing in 1/1 region for 47m; step pay: json.status == "success": got "processing"; class swallowed_error; confirmed by 2 retries; trace 4bf92f3577b34da6a3ce929d0e0e4736`},
		{"dependency", func() *config.Rule {
			r := rule("gateway_success", config.DependencySuccess)
			r.DependencySuccess = &config.DependencySuccessRule{Dependency: "bank-gateway", Below: 0.95, Window: 5 * time.Minute, MinCalls: 3, MinFailures: 2}
			return r
		}(), &fakeSource{flows: []string{"checkout", "signup"},
			states: map[string][]RegionState{"checkout": {failing("a", 2*time.Minute, 1, trace1)}, "signup": {passing("a")}},
			depRatio: func(dep string, w time.Duration, at time.Time) (float64, float64, error) {
				if at.Equal(now) {
					return 1, 8, nil
				}
				return 998, 1000, nil
			}},
			[]*config.Signal{gateway},
			`bank-gateway success 12.5% < 95% over 5m (8 calls); failing flows: checkout at pay (swallowed_error); gateway success 12.5% (was 99.8%); trace 4bf92f3577b34da6a3ce929d0e0e4736`},
		{"latency", func() *config.Rule {
			r := rule("pay_slow", config.Latency)
			r.Latency = &config.LatencyRule{Flow: "checkout", Step: "pay", Quantile: 0.95, Above: 2 * time.Second, Window: 10 * time.Minute, MinSamples: 5}
			return r
		}(), &fakeSource{slower: func(string, string, time.Duration, time.Duration, time.Time) (float64, float64, error) {
			return 12, 57, nil
		}, flowRatio: func(string, time.Duration, time.Time) (float64, float64, error) { return 10, 10, nil }},
			[]*config.Signal{{Name: "checkout success", Flow: "checkout", Window: 5 * time.Minute}},
			`checkout step pay p95 > 2s over 10m: 21.1% of 57 samples slower than 2s (limit 5%); checkout success 100% (was 100%)`},
		{"promql", func() *config.Rule {
			r := rule("shop_errors", config.PromQL)
			r.PromQL = &config.PromQLRule{Query: `sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))`, Op: ">", Value: 0.05}
			return r
		}(), &fakeSource{query: func(q string, at time.Time) ([]Sample, error) {
			if strings.HasPrefix(q, "sum") {
				return []Sample{{Labels: map[string]string{"__name__": "x", "job": "shop"}, Value: 0.21}}, nil
			}
			if at.Equal(now) {
				return []Sample{{Value: 0.21}}, nil
			}
			return []Sample{{Value: 0.002}}, nil
		}},
			[]*config.Signal{{Name: "shop 5xx ratio", PromQLQuery: "shop:5xx_ratio", Window: 5 * time.Minute}},
			`shop_errors {job="shop"}: 0.21 > 0.05; shop 5xx ratio 0.21 (was 0.002)`},
		{"burn rate", func() *config.Rule {
			r := rule("checkout_slo", config.BurnRate)
			r.BurnRate = &config.BurnRateRule{Flow: "checkout", SLO: 0.995, MinRuns: 10, Windows: config.DefaultBurnWindows[:1]}
			return r
		}(), &fakeSource{states: map[string][]RegionState{"checkout": {failing("a", 12*time.Minute, 1, trace1)}},
			// 1h: 54/60 good: 10% errors / 0.5% budget = 20x; 5m: 0/5 good:
			// 100% / 0.5% = 200x. Both over 14.4x; the lower is 20x.
			flowRatio: byWindow(map[time.Duration][2]float64{time.Hour: {54, 60}, 5 * time.Minute: {0, 5}})}, nil,
			`checkout burning 20x the error budget over 1h and 5m (limit 14.4x); success 90% over 1h against an SLO of 99.5%; failing now in 1/1 region for 12m; step pay: json.status == "success": got "processing"; class swallowed_error; confirmed by 1 retry; trace 4bf92f3577b34da6a3ce929d0e0e4736`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := one(t, tt.src, tt.rule, tt.sigs...)
			if ev.Status != Firing {
				t.Fatalf("status %s (%s, %v)", ev.Status, ev.Value, ev.Err)
			}
			if ev.Summary != tt.want {
				t.Errorf("summary\n got %s\nwant %s", ev.Summary, tt.want)
			}
		})
	}
}

func TestSummaryTruncated(t *testing.T) {
	st := failing("a", time.Minute, 0, trace1)
	st.Message = strings.Repeat("é", 600) // 1200 bytes of two-byte runes
	ev := one(t, &fakeSource{states: map[string][]RegionState{"checkout": {st}}}, flowFailingRule(1, nil, "", "checkout"))
	if len(ev.Summary) > 1024 || !strings.HasPrefix(ev.Summary, "checkout failing") || !utf8Valid(ev.Summary) {
		t.Errorf("summary of %d bytes, valid %v", len(ev.Summary), utf8Valid(ev.Summary))
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// TestBurnRate checks hand-computed cases. The SLO is 99%, so the error
// budget is 1% and burn = error ratio / 1%. The default windows: 14.4x over
// 1h and 5m (critical), 6x over 6h and 30m (critical), 3x over 1d and 2h
// (warning), 1x over 3d and 6h (warning).
func TestBurnRate(t *testing.T) {
	const (
		m5  = 5 * time.Minute
		m30 = 30 * time.Minute
		h1  = time.Hour
		h2  = 2 * time.Hour
		h6  = 6 * time.Hour
		d1  = 24 * time.Hour
		d3  = 72 * time.Hour
	)
	tests := []struct {
		name     string
		windows  []config.BurnWindow
		minRuns  int
		data     map[time.Duration][2]float64 // window: good, total
		status   Status
		severity string
		value    string
	}{
		// One run a minute, all failing for the last 12 minutes:
		// 5m 0/5 bad 100% = 100x; 30m 12/30 = 40%, 40x; 1h 12/60 = 20%,
		// 20x; 2h 12/120 = 10x; 6h 12/360 = 3.33x; 1d 12/1440 = 0.83x;
		// 3d 12/4320 = 0.28x. Only 1h&5m fires: min(20, 100) = 20 > 14.4.
		{"fast burn pages", nil, 10, map[time.Duration][2]float64{
			m5: {0, 5}, m30: {18, 30}, h1: {48, 60}, h2: {108, 120}, h6: {348, 360}, d1: {1428, 1440}, d3: {4308, 4320}},
			Firing, "critical", "burning 20x the error budget over 1h and 5m (limit 14.4x)"},
		// Exactly at the limit is not over it: 1h 18 bad of 125 = 14.4%,
		// 14.4x (14.399999999999999 in floating point, but an exact
		// 14.4000000001 would not fire either); 5m 10/10 bad.
		{"exactly at threshold", config.DefaultBurnWindows[:1], 10, map[time.Duration][2]float64{
			m5: {0, 10}, h1: {107, 125}},
			OK, "critical", "burning 14.4x the error budget over 1h and 5m (limit 14.4x)"},
		// One more bad run: 19/125 = 15.2% = 15.2x > 14.4.
		{"just over threshold", config.DefaultBurnWindows[:1], 10, map[time.Duration][2]float64{
			m5: {0, 10}, h1: {106, 125}},
			Firing, "critical", "burning 15.2x the error budget over 1h and 5m (limit 14.4x)"},
		// A new flow with 8 runs: every long window has 8 < 10 runs.
		{"min runs guard", nil, 10, map[time.Duration][2]float64{
			m5: {0, 5}, m30: {0, 8}, h1: {0, 8}, h2: {0, 8}, h6: {0, 8}, d1: {0, 8}, d3: {0, 8}},
			Unknown, "critical", "8 runs over 1h, fewer than the 10 needed"},
		// Min runs met only by the slower windows: the fast pair is
		// unknown, the others judged (and OK).
		{"min runs per pair", nil, 100, map[time.Duration][2]float64{
			m5: {5, 5}, m30: {30, 30}, h1: {60, 60}, h2: {120, 120}, h6: {360, 360}, d1: {1440, 1440}, d3: {4320, 4320}},
			OK, "critical", "burning 0x the error budget over 6h and 30m (limit 6x)"},
		// 20 failures an hour ago, healed 40 minutes ago: 1h 20/60 bad =
		// 33.3x > 14.4, but 5m 0/5 = 0x: the short window says it is
		// over. 30m 0/30 = 0x; 6h 20/360 = 5.56x < 6; 1d 20/1440 = 1.39x
		// < 3; 3d 20/4320 = 0.46x < 1. OK.
		{"short window saves a false alarm", nil, 10, map[time.Duration][2]float64{
			m5: {5, 5}, m30: {30, 30}, h1: {40, 60}, h2: {100, 120}, h6: {340, 360}, d1: {1420, 1440}, d3: {4300, 4320}},
			OK, "", ""},
		// A slow burn for tickets: 5% errors everywhere = 5x. 1h&5m: 5 <
		// 14.4; 6h&30m: 5 < 6; 1d&2h: 5 > 3 fires (warning); 3d&6h: 5 > 1
		// fires (warning). Same severity: the first listed names it.
		{"slow burn tickets", nil, 10, map[time.Duration][2]float64{
			m5: {19, 20}, m30: {114, 120}, h1: {57, 60}, h2: {114, 120}, h6: {342, 360}, d1: {1368, 1440}, d3: {4104, 4320}},
			Firing, "warning", "burning 5x the error budget over 1d and 2h (limit 3x)"},
		// Both a warning and a critical pair fire: the critical one wins,
		// wherever it is listed. 50% errors = 50x.
		{"most severe pair wins", []config.BurnWindow{
			{Long: d1, Short: h2, Factor: 3, Severity: "warning"},
			{Long: h1, Short: m5, Factor: 14.4, Severity: "critical"},
			{Long: h6, Short: m30, Factor: 6, Severity: "error"}}, 10, map[time.Duration][2]float64{
			m5: {10, 20}, m30: {60, 120}, h1: {30, 60}, h2: {60, 120}, h6: {180, 360}, d1: {720, 1440}},
			Firing, "critical", "burning 50x the error budget over 1h and 5m (limit 14.4x)"},
		// The flow stopped: runs in the long window but none in the short.
		{"no runs in the short window", config.DefaultBurnWindows[:1], 10, map[time.Duration][2]float64{
			m5: {0, 0}, h1: {0, 40}},
			Unknown, "critical", "no runs over 5m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rule("checkout_slo", config.BurnRate)
			r.BurnRate = &config.BurnRateRule{Flow: "checkout", SLO: 0.99, MinRuns: tt.minRuns, Windows: tt.windows}
			ev := one(t, &fakeSource{flowRatio: byWindow(tt.data)}, r)
			if ev.Status != tt.status || (tt.severity != "" && ev.Severity != tt.severity) || (tt.value != "" && ev.Value != tt.value) {
				t.Errorf("got %s %s %q (%v), want %s %s %q", ev.Status, ev.Severity, ev.Value, ev.Err, tt.status, tt.severity, tt.value)
			}
			if ev.Labels["flow"] != "checkout" || ev.Labels["rule"] != "checkout_slo" {
				t.Errorf("labels %v", ev.Labels)
			}
		})
	}
	// A source error makes the rule Unknown with the error; a bad SLO too.
	r := rule("checkout_slo", config.BurnRate)
	r.BurnRate = &config.BurnRateRule{Flow: "checkout", SLO: 0.99, MinRuns: 10}
	ev := one(t, &fakeSource{flowRatio: func(string, time.Duration, time.Time) (float64, float64, error) {
		return 0, 0, errors.New("prometheus down")
	}}, r)
	if ev.Status != Unknown || ev.Err == nil || !strings.Contains(ev.Err.Error(), "prometheus down") {
		t.Errorf("source error: %+v", ev)
	}
	for _, slo := range []float64{0, 1, -1, math.NaN()} {
		r.BurnRate.SLO = slo
		if ev := one(t, &fakeSource{}, r); ev.Status != Unknown || ev.Err == nil {
			t.Errorf("slo %v: %+v", slo, ev)
		}
	}
}

func TestDependencySuccess(t *testing.T) {
	mk := func(minFailures int) *config.Rule {
		r := rule("gateway_success", config.DependencySuccess)
		r.DependencySuccess = &config.DependencySuccessRule{Dependency: "bank-gateway", Below: 0.95, Window: 5 * time.Minute, MinCalls: 3, MinFailures: minFailures}
		return r
	}
	ratio := func(g, n float64, err error) func(string, time.Duration, time.Time) (float64, float64, error) {
		return func(string, time.Duration, time.Time) (float64, float64, error) { return g, n, err }
	}
	tests := []struct {
		name        string
		minFailures int
		good, total float64
		err         error
		status      Status
		value       string
	}{
		{"too few calls", 2, 0, 2, nil, Unknown, "2 calls over 5m, fewer than the 3 needed"},
		{"no calls", 2, 0, 0, nil, Unknown, "0 calls over 5m, fewer than the 3 needed"},
		{"failing", 2, 1, 8, nil, Firing, "bank-gateway success 12.5% < 95% over 5m (8 calls)"},
		{"one failure never pages", 2, 2, 3, nil, OK, "bank-gateway success 66.7% over 5m (3 calls), but 1 failure, fewer than the 2 that page"},
		{"one failure pages when allowed", 1, 2, 3, nil, Firing, "bank-gateway success 66.7% < 95% over 5m (3 calls)"},
		{"at the threshold", 2, 95, 100, nil, OK, "bank-gateway success 95% over 5m (100 calls)"},
		{"healthy", 2, 998, 1000, nil, OK, "bank-gateway success 99.8% over 5m (1000 calls)"},
		{"source error", 2, 0, 0, errors.New("boom"), Unknown, "cannot count the dependency's calls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := one(t, &fakeSource{depRatio: ratio(tt.good, tt.total, tt.err)}, mk(tt.minFailures))
			if ev.Status != tt.status || ev.Value != tt.value || (tt.err != nil) != (ev.Err != nil) {
				t.Errorf("got %s %q %v, want %s %q", ev.Status, ev.Value, ev.Err, tt.status, tt.value)
			}
			if ev.Labels["dependency"] != "bank-gateway" || ev.Evidence.Dependency != "bank-gateway" {
				t.Errorf("labels %v evidence %+v", ev.Labels, ev.Evidence)
			}
		})
	}
	// Evidence without FlowsByDependency: every flow is looked at; only
	// failures at a step calling the dependency count.
	other := failing("b", time.Minute, 1, "other")
	other.Dependency, other.Step = "sms-gateway", "notify"
	src := &fakeSource{flows: []string{"checkout", "refund", "signup"}, depRatio: ratio(0, 10, nil),
		states: map[string][]RegionState{
			"checkout": {failing("a", 3*time.Minute, 1, "c1"), failing("b", time.Minute, 2, "c2")},
			"refund":   {failing("a", 2*time.Minute, 0, "r1")},
			"signup":   {other},
		}}
	ev := one(t, src, mk(2))
	e := ev.Evidence
	if ev.Status != Firing || !slices.Equal(e.RegionsFailing, []string{"a", "b"}) || e.Retries != 3 ||
		!e.Since.Equal(ago(3*time.Minute)) || e.Step != "pay" || slices.Contains(e.TraceIDs, "other") || len(e.TraceIDs) != 3 {
		t.Errorf("evidence %+v", e)
	}
	if !strings.Contains(ev.Summary, "failing flows: checkout at pay (swallowed_error), refund at pay (swallowed_error)") {
		t.Errorf("summary %s", ev.Summary)
	}
}

func TestLatency(t *testing.T) {
	mk := func(step string) *config.Rule {
		r := rule("pay_slow", config.Latency)
		r.Latency = &config.LatencyRule{Flow: "checkout", Step: step, Quantile: 0.99, Above: 2 * time.Second, Window: 10 * time.Minute, MinSamples: 5}
		return r
	}
	// p99: fires when more than 1% of the samples are slower than 2s.
	tests := []struct {
		name   string
		step   string
		slower float64
		n      float64
		err    error
		status Status
		value  string
	}{
		{"slow", "pay", 2, 100, nil, Firing, "p99 > 2s over 10m: 2% of 100 samples slower than 2s (limit 1%)"},
		{"at the limit", "pay", 1, 100, nil, OK, "p99 <= 2s over 10m: 1% of 100 samples slower than 2s (limit 1%)"},
		{"one of ten", "pay", 1, 10, nil, Firing, "p99 > 2s over 10m: 10% of 10 samples slower than 2s (limit 1%)"},
		{"fast", "", 0, 60, nil, OK, "p99 <= 2s over 10m: 0% of 60 samples slower than 2s (limit 1%)"},
		{"Prometheus's extrapolated counts", "", 0.9, 102.3, nil, OK, "p99 <= 2s over 10m: 0.9% of 102 samples slower than 2s (limit 1%)"},
		{"too few samples", "pay", 4, 4, nil, Unknown, "4 samples over 10m, fewer than the 5 needed"},
		{"error", "pay", 0, 0, errors.New("x"), Unknown, "cannot read durations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotAbove time.Duration
			src := &fakeSource{slower: func(_, _ string, above, _ time.Duration, _ time.Time) (float64, float64, error) {
				gotAbove = above
				return tt.slower, tt.n, tt.err
			}}
			ev := one(t, src, mk(tt.step))
			if gotAbove != 2*time.Second {
				t.Errorf("read durations above %s, want the rule's 2s", gotAbove)
			}
			if ev.Status != tt.status || ev.Value != tt.value {
				t.Errorf("got %s %q, want %s %q", ev.Status, ev.Value, tt.status, tt.value)
			}
			_, hasStep := ev.Labels["step"]
			if ev.Labels["flow"] != "checkout" || hasStep != (tt.step != "") {
				t.Errorf("labels %v", ev.Labels)
			}
		})
	}
}

func TestPromQLRule(t *testing.T) {
	mk := func(op string, v float64) *config.Rule {
		r := rule("shop_errors", config.PromQL)
		r.Labels = map[string]string{"team": "shop"}
		r.PromQL = &config.PromQLRule{Query: "shop:5xx_ratio", Op: op, Value: v}
		return r
	}
	series := []Sample{
		{Labels: map[string]string{"__name__": "shop:5xx_ratio", "job": "shop", "instance": "a"}, Value: 0.21},
		{Labels: map[string]string{"__name__": "shop:5xx_ratio", "job": "shop", "instance": "b"}, Value: 0.01},
		{Labels: map[string]string{"job": "shop", "instance": "c"}, Value: math.NaN()},
	}
	src := &fakeSource{query: func(string, time.Time) ([]Sample, error) { return series, nil }}
	evs := eval(t, src, &config.Alerting{Rules: []*config.Rule{mk(">", 0.05)}})
	if len(evs) != 3 {
		t.Fatalf("%d evaluations", len(evs))
	}
	want := []struct {
		status Status
		value  string
	}{{Firing, "0.21 > 0.05"}, {OK, "0.01, not > 0.05"}, {Unknown, "the query returned NaN"}}
	for i, w := range want {
		ev := evs[i]
		if ev.Status != w.status || ev.Value != w.value {
			t.Errorf("%d: %s %q, want %s %q", i, ev.Status, ev.Value, w.status, w.value)
		}
		if _, ok := ev.Labels["__name__"]; ok || ev.Labels["job"] != "shop" || ev.Labels["team"] != "shop" ||
			ev.Labels["rule"] != "shop_errors" || ev.Labels["instance"] == "" {
			t.Errorf("%d: labels %v", i, ev.Labels)
		}
	}
	for _, c := range []struct {
		op   string
		v    float64
		fire bool
	}{{">=", 0.21, true}, {"<", 0.3, true}, {"<=", 0.2, false}, {"==", 0.21, true}, {"!=", 0.21, false}} {
		src.query = func(string, time.Time) ([]Sample, error) { return series[:1], nil }
		ev := one(t, src, mk(c.op, c.v))
		if (ev.Status == Firing) != c.fire {
			t.Errorf("0.21 %s %v: %s", c.op, c.v, ev.Status)
		}
	}
	// No data, no Prometheus, an error, an odd operator: Unknown.
	src.query = func(string, time.Time) ([]Sample, error) { return nil, nil }
	if ev := one(t, src, mk(">", 1)); ev.Status != Unknown || ev.Value != "the query returned no data" {
		t.Errorf("no data: %+v", ev)
	}
	src.query = nil
	if ev := one(t, src, mk(">", 1)); ev.Status != Unknown || !errors.Is(ev.Err, ErrNoPromQL) {
		t.Errorf("no prometheus: %+v", ev)
	}
	src.query = func(string, time.Time) ([]Sample, error) { return series[:1], nil }
	if ev := one(t, src, mk("~", 1)); ev.Status != Unknown || ev.Err == nil {
		t.Errorf("odd op: %+v", ev)
	}
}

func TestSignals(t *testing.T) {
	gw := &config.Signal{Name: "gateway success", Dependency: "bank-gateway", Window: 5 * time.Minute}
	fl := &config.Signal{Flow: "checkout", Window: 5 * time.Minute}
	lat := &config.Signal{Name: "shop p99", PromQLQuery: "shop:p99", Unit: "seconds"}
	cnt := &config.Signal{Name: "shop rps", PromQLQuery: "shop:rps"}
	var depEnds []time.Time
	src := &fakeSource{
		states: map[string][]RegionState{"a": {failing("x", 2*time.Minute, 0, "t1")}, "b": {failing("x", 2*time.Minute, 0, "t2")},
			"c": {failing("x", 10*time.Minute, 0, "t3")}},
		depRatio: func(dep string, w time.Duration, at time.Time) (float64, float64, error) {
			depEnds = append(depEnds, at)
			if w != 5*time.Minute {
				t.Errorf("window %s", w)
			}
			if at.Equal(now) {
				return 0, 8, nil
			}
			return 998, 1000, nil
		},
		flowRatio: func(string, time.Duration, time.Time) (float64, float64, error) { return 0, 0, nil }, // no data
		query: func(q string, at time.Time) ([]Sample, error) {
			if q == "shop:rps" {
				return nil, errors.New("down")
			}
			if at.Equal(now) {
				return []Sample{{Value: 2.5}, {Value: 9}}, nil
			}
			return []Sample{{Value: 0.25}}, nil
		},
	}
	r := flowFailingRule(1, nil, "", "a", "b", "c")
	evs := eval(t, src, &config.Alerting{Rules: []*config.Rule{r}, Signals: []*config.Signal{gw, fl, nil, lat, cnt}})
	if len(evs) != 3 {
		t.Fatalf("%d evaluations", len(evs))
	}
	sv := evs[0].Signals
	if len(sv) != 4 {
		t.Fatalf("signals %+v", sv)
	}
	wantText := []string{"gateway success 0% (was 99.8%)", "checkout no data", "shop p99 2.5s (was 250ms)", "shop rps no data"}
	for i, w := range wantText {
		if sv[i].Text != w {
			t.Errorf("signal %d: %q, want %q", i, sv[i].Text, w)
		}
	}
	if !sv[0].HasNow || !sv[0].HasBefore || sv[0].Now != 0 || sv[0].Before != 0.998 || sv[0].Unit != "ratio" {
		t.Errorf("gateway signal %+v", sv[0])
	}
	// Now is read once per cycle; before once per distinct start of
	// trouble (a and b began together).
	if len(depEnds) != 3 || !depEnds[0].Equal(now) || !depEnds[1].Equal(ago(2*time.Minute)) || !depEnds[2].Equal(ago(10*time.Minute)) {
		t.Errorf("dependency reads at %v", depEnds)
	}
	// PromQL: now, before at the minute, and the failing shop:rps once
	// for now and once for each minute.
	if src.queries != 6 {
		t.Errorf("%d queries", src.queries)
	}
	// Without a known start, before is an hour ago.
	depEnds = nil
	lr := rule("slow", config.Latency)
	lr.Latency = &config.LatencyRule{Flow: "checkout", Quantile: 0.5, Above: time.Second, Window: time.Minute, MinSamples: 1}
	src.slower = func(string, string, time.Duration, time.Duration, time.Time) (float64, float64, error) {
		return 2, 3, nil
	}
	ev := one(t, src, lr, gw)
	if ev.Status != Firing || len(depEnds) != 2 || !depEnds[1].Equal(ago(time.Hour)) {
		t.Errorf("before without since: %v %s", depEnds, ev.Status)
	}
	// OK and Unknown evaluations carry no signals.
	src.slower = func(string, string, time.Duration, time.Duration, time.Time) (float64, float64, error) {
		return 1, 3, nil
	}
	if ev := one(t, src, lr, gw); ev.Status != OK || ev.Signals != nil || ev.Summary != "" {
		t.Errorf("OK evaluation with signals: %+v", ev)
	}
}

// panicky is a Source whose every method panics.
type panicky struct{ Source }

func TestNeverPanics(t *testing.T) {
	rules := []*config.Rule{
		nil,
		{Name: "no_parts", Kind: config.FlowFailing},
		{Name: "no_parts_br", Kind: config.BurnRate},
		{Name: "no_parts_dep", Kind: config.DependencySuccess},
		{Name: "no_parts_lat", Kind: config.Latency},
		{Name: "no_parts_pq", Kind: config.PromQL},
		{Name: "odd_kind", Kind: "bogus"},
		{Name: "zero_everything", Kind: config.FlowFailing, FlowFailing: &config.FlowFailingRule{}},
		{Name: "zero_br", Kind: config.BurnRate, BurnRate: &config.BurnRateRule{SLO: 0.99}},
		{Name: "zero_dep", Kind: config.DependencySuccess, DependencySuccess: &config.DependencySuccessRule{}},
		{Name: "zero_lat", Kind: config.Latency, Latency: &config.LatencyRule{}},
		{Name: "zero_pq", Kind: config.PromQL, PromQL: &config.PromQLRule{}},
	}
	a := &config.Alerting{Rules: rules, Signals: []*config.Signal{nil, {}}}
	for _, src := range []Source{nil, &fakeSource{}, &fakeSource{flows: []string{"x"}, panicOn: "FlowStates"},
		&fakeSource{panicOn: "Flows"}, panicky{}} {
		evs := NewEngine(a, src, Options{}).Evaluate(context.Background(), now)
		for _, ev := range evs {
			if ev.Rule == nil {
				t.Errorf("evaluation without a rule: %+v", ev)
			}
			if ev.Status == Firing {
				t.Errorf("%s fired on nothing: %+v", ev.Rule.Name, ev)
			}
		}
		if len(evs) < len(rules)-2 {
			t.Errorf("source %T: %d evaluations for %d rules", src, len(evs), len(rules))
		}
	}
	// A panicking source: each rule is Unknown with the panic as its error.
	evs := NewEngine(a, panicky{}, Options{}).Evaluate(context.Background(), now)
	for _, ev := range evs {
		if ev.Status != Unknown || ev.Err == nil {
			t.Errorf("%s: %s %v", ev.Rule.Name, ev.Status, ev.Err)
		}
	}
	var nilEngine *Engine
	if nilEngine.Evaluate(context.Background(), now) != nil || NewEngine(nil, nil, Options{}).Evaluate(context.Background(), now) != nil {
		t.Error("nil engine or config evaluated")
	}
	// A cancelled context: Unknown, not OK.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src := &fakeSource{states: map[string][]RegionState{"checkout": {passing("a")}}}
	evs = NewEngine(&config.Alerting{Rules: []*config.Rule{flowFailingRule(1, nil, "", "checkout")}}, src, Options{}).Evaluate(ctx, now)
	if len(evs) != 1 || evs[0].Status != Unknown || !errors.Is(evs[0].Err, context.Canceled) {
		t.Errorf("cancelled: %+v", evs)
	}
}

func ExampleEngine_Evaluate() {
	src := &fakeSource{states: map[string][]RegionState{"checkout": {
		failing("eu", 2*time.Minute, 1, trace1), failing("us", 2*time.Minute, 1), failing("ap", 2*time.Minute, 1)}}}
	a := &config.Alerting{Rules: []*config.Rule{flowFailingRule(2, nil, "warning", "checkout")}}
	for _, ev := range NewEngine(a, src, Options{}).Evaluate(context.Background(), now) {
		fmt.Println(ev.Status, ev.Severity, ev.Value)
		fmt.Println(ev.Summary)
	}
	// Output:
	// firing critical failing in 3/3 regions
	// checkout failing in 3/3 regions for 2m; step pay: json.status == "success": got "processing"; class swallowed_error; confirmed by 3 retries; trace 4bf92f3577b34da6a3ce929d0e0e4736
}
