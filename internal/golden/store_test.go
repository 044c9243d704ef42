package golden

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/store"
)

// storeRun is a checkout run in region starting at start: login, then pay
// through bank-gateway, which the shop swallows into "processing" when ok
// is false.
func storeRun(flow, region string, start time.Time, ok bool, trace string) *result.Run {
	r := &result.Run{Flow: flow, Region: region, TraceID: trace, Start: start, Duration: 800 * time.Millisecond,
		Status: result.Passed, Class: result.OK}
	r.Steps = []result.Step{
		{Name: "login", Status: result.Passed, Class: result.OK, Start: start, Duration: 200 * time.Millisecond},
		{Name: "pay", Dependency: "bank-gateway", Status: result.Passed, Class: result.OK,
			Start: start.Add(200 * time.Millisecond), Duration: 600 * time.Millisecond},
	}
	if !ok {
		r.Status, r.Class, r.FailedStep = result.Failed, result.SwallowedError, "pay"
		r.Steps[1].Status, r.Steps[1].Class = result.Failed, result.SwallowedError
		r.Steps[1].Failures = []result.Failure{{Expectation: `json.status == "success"`, Actual: `"processing"`,
			Message: `json.status == "success": got "processing"`}}
	}
	return r
}

// observeSlot runs one schedule slot as the daemon does: a failed run is
// retried at once (retries times) and only the last is final.
func observeSlot(st *store.Store, flow, region string, start time.Time, ok, retryOK bool, retries int, trace string) {
	r := storeRun(flow, region, start, ok, trace+"r0")
	for i := 1; !r.OK() && i <= retries; i++ {
		r.Retried = true
		st.Observe(r)
		prev := r
		r = storeRun(flow, region, start.Add(time.Duration(i)*time.Second), retryOK, fmt.Sprintf("%sr%d", trace, i))
		r.Retry, r.RetryOf = i, prev.TraceID
	}
	st.Observe(r)
}

// TestStoreStory is the 2 AM story through a real store holding three
// regions: an hour of passing runs once a minute, then the gateway fails
// at 02:14 everywhere (confirmed by a retry), while region c also had a
// blip at 02:05 that its retry cleared.
func TestStoreStory(t *testing.T) {
	st := store.New(10)
	start := now.Add(-time.Hour)
	for m := 0; m <= 61; m++ { // 01:16 .. 02:17... up to 02:15
		at := start.Add(time.Duration(m) * time.Minute)
		if !at.Before(now) {
			break
		}
		for _, region := range []string{"a", "b", "c"} {
			ok := at.Before(ago(2 * time.Minute))
			trace := fmt.Sprintf("%s%02d", region, m)
			blip := region == "c" && at.Equal(ago(11*time.Minute))
			switch {
			case blip:
				observeSlot(st, "checkout", region, at, false, true, 1, trace)
			default:
				observeSlot(st, "checkout", region, at, ok, false, 1, trace)
			}
			observeSlot(st, "signup", region, at, true, true, 1, trace)
		}
	}
	gateway := &config.Signal{Name: "gateway success", Dependency: "bank-gateway", Window: 5 * time.Minute}
	dep := rule("gateway_success", config.DependencySuccess)
	dep.DependencySuccess = &config.DependencySuccessRule{Dependency: "bank-gateway", Below: 0.95, Window: 5 * time.Minute, MinCalls: 3, MinFailures: 2}
	burn := rule("checkout_slo", config.BurnRate)
	burn.BurnRate = &config.BurnRateRule{Flow: "checkout", SLO: 0.995, MinRuns: 10, Windows: config.DefaultBurnWindows}
	lat := rule("pay_slow", config.Latency)
	lat.Latency = &config.LatencyRule{Flow: "checkout", Step: "pay", Quantile: 0.95, Above: 500 * time.Millisecond, Window: 10 * time.Minute, MinSamples: 5}
	a := &config.Alerting{Rules: []*config.Rule{flowFailingRule(2, nil, "warning"), dep, burn, lat}, Signals: []*config.Signal{gateway}}
	src := NewStoreSource(st, func(string) time.Duration { return 3 * time.Minute }, nil)
	evs := NewEngine(a, src, Options{}).Evaluate(context.Background(), now)
	got := map[string]Evaluation{}
	for _, ev := range evs {
		got[ev.Rule.Name+"/"+ev.Labels["flow"]] = ev
	}
	if len(evs) != 5 {
		t.Fatalf("%d evaluations: %v", len(evs), got)
	}

	ff := got["checkout_failing/checkout"]
	// Minutes 58 and 59 (02:14, 02:15) failed in every region, each
	// confirmed by one retry. The gateway over (02:11, 02:16]: 5 slots x 3
	// regions x 2 flows = 30 calls, 6 failed: 80%; over the 5m before
	// 02:14 none failed. Traces: each region's final run, newest first
	// (all ended together: region order), then the first attempts.
	wantFF := `checkout failing in 3/3 regions for 2m; step pay: json.status == "success": got "processing"; class swallowed_error; confirmed by 3 retries; gateway success 80% (was 100%); trace a59r1`
	if ff.Status != Firing || ff.Summary != wantFF {
		t.Errorf("flow failing: %s\n got %s\nwant %s", ff.Status, ff.Summary, wantFF)
	}
	if e := ff.Evidence; !e.Since.Equal(ago(2*time.Minute)) || !slices.Equal(e.RegionsFailing, []string{"a", "b", "c"}) ||
		!slices.Equal(e.TraceIDs, []string{"a59r1", "b59r1", "c59r1", "a59r0", "b59r0"}) {
		t.Errorf("evidence %+v", e)
	}
	// The blip at 02:05 in c was cleared by its retry: signup and the
	// earlier checkout streak never counted as failing.
	if s := got["checkout_failing/signup"]; s.Status != OK || s.Value != "passing in 3/3 regions" {
		t.Errorf("signup: %s %q", s.Status, s.Value)
	}

	// The gateway, as above: 24/30.
	g, n := st.DependencyCounts("bank-gateway", 5*time.Minute, now)
	d := got["gateway_success/"]
	wantDep := fmt.Sprintf("bank-gateway success %s < 95%% over 5m (%d calls) in 3/3 regions", percent(float64(g)/float64(n)), n)
	if d.Status != Firing || d.Value != wantDep || !strings.Contains(d.Summary, "failing flows: checkout at pay (swallowed_error)") {
		t.Errorf("dependency: %s %q (want %q)\n%s", d.Status, d.Value, wantDep, d.Summary)
	}
	if g != 24 || n != 30 {
		t.Errorf("gateway counts %d/%d", g, n)
	}

	// Burn rate against 99.5% (a 0.5% budget). The store holds an hour:
	// 60 slots x 3 regions = 180 final runs, 6 failed = 3.33% = 6.67x.
	// 1h&5m: 6.67x < 14.4x: OK. The 6h, 1d and 3d windows would hold the
	// same 180 runs (6.67x > 6x, 3x, 1x) but the history covers one hour
	// of them: not judged (they paged critical before they had to cover).
	if b := got["checkout_slo/checkout"]; b.Status != OK ||
		b.Value != "burning 6.67x the error budget over 1h and 5m (limit 14.4x)" {
		t.Errorf("burn: %s %s %q", b.Status, b.Severity, b.Value)
	}
	// Latency: pay takes 600ms in every run (retried ones too).
	if l := got["pay_slow/checkout"]; l.Status != Firing || !strings.HasPrefix(l.Value, "p95 > 500ms over 10m: 100% of ") {
		t.Errorf("latency: %s %q", l.Status, l.Value)
	}

	// An hour later with no runs: every region is stale: Unknown.
	later := NewEngine(a, src, Options{}).Evaluate(context.Background(), now.Add(time.Hour))
	for _, ev := range later {
		if ev.Rule.Name == "checkout_failing" && ev.Status != Unknown {
			t.Errorf("stale %s: %s %q", ev.Labels["flow"], ev.Status, ev.Value)
		}
	}
}

// benchStore holds flows flows with an hour of one run a minute each, one
// in a hundred failing now.
func benchStore(flows int) (*store.Store, []string) {
	st := store.New(1)
	names := make([]string, flows)
	for i := range names {
		names[i] = fmt.Sprintf("flow-%05d", i)
	}
	for m := 60; m > 0; m-- {
		at := now.Add(-time.Duration(m) * time.Minute)
		for i, f := range names {
			ok := i%100 != 0 || m > 3
			observeSlot(st, f, "eu-west-1", at, ok, false, 1, "4bf92f3577b34da6a3ce929d0e0e47")
		}
	}
	return st, names
}

// BenchmarkEvaluate: 10,000 flows under one flow_failing rule over every
// flow, a dependency rule, 100 burn-rate rules and a latency rule, with a
// gateway signal on every page (100 flows are failing).
func BenchmarkEvaluate(b *testing.B) {
	st, names := benchStore(10000)
	rules := []*config.Rule{flowFailingRule(1, nil, "")}
	dep := rule("gateway_success", config.DependencySuccess)
	dep.DependencySuccess = &config.DependencySuccessRule{Dependency: "bank-gateway", Below: 0.95, Window: 5 * time.Minute, MinCalls: 3, MinFailures: 2}
	rules = append(rules, dep)
	for i := 0; i < 100; i++ {
		r := rule(fmt.Sprintf("slo_%d", i), config.BurnRate)
		r.BurnRate = &config.BurnRateRule{Flow: names[i*100], SLO: 0.995, MinRuns: 10, Windows: config.DefaultBurnWindows}
		rules = append(rules, r)
	}
	lat := rule("pay_slow", config.Latency)
	lat.Latency = &config.LatencyRule{Flow: names[1], Step: "pay", Quantile: 0.95, Above: time.Second, Window: 10 * time.Minute, MinSamples: 5}
	rules = append(rules, lat)
	a := &config.Alerting{Rules: rules, Signals: []*config.Signal{{Name: "gateway success", Dependency: "bank-gateway", Window: 5 * time.Minute}}}
	e := NewEngine(a, NewStoreSource(st, nil, nil), Options{})
	evs := e.Evaluate(context.Background(), now)
	firing := 0
	for _, ev := range evs {
		if ev.Status == Firing {
			firing++
		}
	}
	if len(evs) != 10000+1+100+1 || firing < 100 {
		b.Fatalf("%d evaluations, %d firing", len(evs), firing)
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Evaluate(context.Background(), now)
	}
}

// retainedByEngine is what an engine keeps live after two cycles over a
// store of flows flows (one in a hundred failing), with a flow_failing rule
// over every flow and a dependency rule: its label sets and keys, and its
// entry for each flow (plus the store's sorted list of flows, made on first
// use).
func retainedByEngine(tb testing.TB, flows int) int64 {
	tb.Helper()
	st := store.New(1)
	for m := 3; m > 0; m-- {
		at := now.Add(-time.Duration(m) * time.Minute)
		for i := range flows {
			observeSlot(st, fmt.Sprintf("flow-%05d", i), "eu-west-1", at, i%100 != 0, false, 1, "4bf92f3577b34da6a3ce929d0e0e47")
		}
	}
	dep := rule("gateway_success", config.DependencySuccess)
	dep.DependencySuccess = &config.DependencySuccessRule{Dependency: "bank-gateway", Below: 0.95, Window: 5 * time.Minute, MinCalls: 3}
	a := &config.Alerting{Rules: []*config.Rule{flowFailingRule(1, nil, ""), dep}}
	before := liveHeap()
	e := NewEngine(a, NewStoreSource(st, nil, nil), Options{Key: testKey})
	for range 2 {
		if evs := e.Evaluate(context.Background(), now); len(evs) != flows+1 || evs[0].Status != Firing {
			tb.Fatalf("%d evaluations, the first %s", len(evs), evs[0].Status)
		}
	}
	after := liveHeap()
	runtime.KeepAlive(e)
	runtime.KeepAlive(st)
	return int64(after) - int64(before)
}

// liveHeap is the heap in use by live objects, after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// An engine over 10,000 flows keeps their keys and entries between cycles,
// not their label maps (about 340 bytes each; built only for an evaluation
// that fires) nor the region states it read (weakly held, a collection may
// have them). It kept about 850 bytes a flow with the states and maps, 520
// with the maps, 188 with 64-byte entries and the maps weakly held, 172
// now.
func TestEngineRetainedMemory(t *testing.T) {
	const flows, limit = 10000, 180
	got := retainedByEngine(t, flows) / flows
	t.Logf("the engine keeps %d bytes a flow between cycles", got)
	if got > limit {
		t.Errorf("the engine keeps %d bytes a flow between cycles, more than %d", got, limit)
	}
}

// BenchmarkEngineRetained reports retainedByEngine over 10,000 flows
// (retained-B, and per flow); ns/op is filling the store and two cycles.
func BenchmarkEngineRetained(b *testing.B) {
	for range b.N {
		r := retainedByEngine(b, 10000)
		b.ReportMetric(float64(r), "retained-B")
		b.ReportMetric(float64(r)/10000, "retained-B/flow")
	}
}

// TestNothingRebuiltAfterCollection: the cycle after a collection
// allocates next to nothing per flow, as any other: no flow's label map is
// built again (they were held weakly, and 10,000 were built again after
// every collection, just when the collector had set its goal).
func TestNothingRebuiltAfterCollection(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	const flows = 2000
	st := store.New(1)
	for i := range flows {
		observeSlot(st, fmt.Sprintf("flow-%05d", i), "eu-west-1", now.Add(-time.Minute), i != 0, false, 1, "4bf92f3577b34da6a3ce929d0e0e47")
	}
	e := NewEngine(&config.Alerting{Rules: []*config.Rule{flowFailingRule(1, nil, "")}}, NewStoreSource(st, nil, nil), Options{Key: testKey})
	out := e.AppendEvaluations(context.Background(), nil, now) // keys and buffers made
	for range 2 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out = e.AppendEvaluations(context.Background(), out[:0], now)
		runtime.ReadMemStats(&after)
		if n := after.Mallocs - before.Mallocs; n > flows/10 {
			t.Errorf("%d allocations in the cycle after a collection, over %d flows", n, flows)
		}
	}
	// The firing flow has its labels; the passing ones their keys.
	if len(out) != flows || out[0].Status != Firing || out[0].Labels["flow"] != "flow-00000" || out[1].Status != OK ||
		out[1].Key != testKey(out[1].Rule.Name, map[string]string{"flow": "flow-00001", "rule": out[1].Rule.Name}) {
		t.Errorf("%d evaluations: %+v %+v", len(out), out[0], out[1])
	}
}

// TestEvaluateAllocsPerFlow: a cycle over thousands of passing flows
// allocates next to nothing per flow once their label sets exist (the kind
// seam once cost an allocation per flow: an evaluation's address handed to
// an interface, a variadic call through a func variable).
func TestEvaluateAllocsPerFlow(t *testing.T) {
	const flows = 2000
	st := store.New(1)
	for i := range flows {
		observeSlot(st, fmt.Sprintf("flow-%05d", i), "eu-west-1", now.Add(-time.Minute), true, false, 1, "4bf92f3577b34da6a3ce929d0e0e47")
	}
	e := NewEngine(&config.Alerting{Rules: []*config.Rule{flowFailingRule(1, nil, "")}}, NewStoreSource(st, nil, nil), Options{Key: testKey})
	var out []Evaluation
	out = e.AppendEvaluations(context.Background(), out[:0], now) // label sets and buffers made
	allocs := testing.AllocsPerRun(5, func() { out = e.AppendEvaluations(context.Background(), out[:0], now) })
	if len(out) != flows || allocs > flows/10 {
		t.Errorf("%d evaluations, %.0f allocations a cycle over %d flows", len(out), allocs, flows)
	}
}
