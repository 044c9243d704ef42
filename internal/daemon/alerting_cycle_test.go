package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/golden"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/store"
)

// benchProbes is the load harness's configuration (bench/load): every flow
// once a minute, a flow_failing rule over every flow and a gateway rule.
const benchProbes = `region: load
defaults: {every: 1m, timeout: 30s, step_timeout: 10s}
vars: {target: "http://127.0.0.1:1"}
flows: [flows/*.yaml]
notifiers:
  console: {type: console}
alerting:
  evaluation_interval: 5s
  routes: {critical: [console], warning: [console]}
rules:
  - name: any_flow_failing
    flow_failing: {}
    for: 90s
    severity: critical
  - name: gateway_success
    dependency_success: {dependency: bank-gateway, below: 95%, window: 5m, min_calls: 3}
    for: 1m
    severity: critical
`

// benchFlow is a four-step checkout-like flow, paying through bank-gateway.
func benchFlow(i int) string {
	const expect = `    expect: [status == 200, json.status == "success", duration < 2s]` + "\n"
	return fmt.Sprintf("name: load-%05d\nlabels: {team: load}\nsteps:\n", i) +
		"  - name: login\n    request: {method: POST, url: \"{{target}}/api/login\"}\n" + expect +
		"  - name: order\n    request: {method: POST, url: \"{{target}}/api/orders\"}\n" + expect +
		"  - name: pay\n    dependency: bank-gateway\n    request: {method: POST, url: \"{{target}}/api/pay\"}\n" + expect +
		"  - name: confirm\n    request: {url: \"{{target}}/api/orders/1\"}\n" + expect
}

// benchRun is a run of flow ending its four steps at start+800ms; when it
// fails, the gateway step's answer was swallowed into "processing".
func benchRun(flow string, start time.Time, ok bool, retry int) *result.Run {
	r := &result.Run{Flow: flow, Region: "load", TraceID: fmt.Sprintf("4bf92f3577b34da6a3ce929d0e0e%04d", retry),
		Start: start, Duration: 800 * time.Millisecond, Status: result.Passed, Class: result.OK, Retry: retry}
	for j, name := range []string{"login", "order", "pay", "confirm"} {
		st := result.Step{Name: name, Status: result.Passed, Class: result.OK,
			Start: start.Add(time.Duration(j) * 200 * time.Millisecond), Duration: 200 * time.Millisecond}
		if name == "pay" {
			st.Dependency = "bank-gateway"
		}
		r.Steps = append(r.Steps, st)
	}
	if !ok {
		r.Status, r.Class, r.FailedStep = result.Failed, result.SwallowedError, "pay"
		r.Steps[2].Status, r.Steps[2].Class = result.Failed, result.SwallowedError
		r.Steps[2].Failures = []result.Failure{{Expectation: `json.status == "success"`, Actual: `"processing"`,
			Message: `json.status == "success": got "processing"`}}
	}
	return r
}

// benchConfig is benchProbes over flows flows, with more of the
// flow_failing rule's settings (YAML lines indented by four).
func benchConfig(tb testing.TB, flows int, rule string) (*config.Config, []string) {
	tb.Helper()
	probes := strings.Replace(benchProbes, "    for: 90s\n", "    for: 90s\n"+rule, 1)
	fsys := fstest.MapFS{"probes.yaml": {Data: []byte(probes)}}
	names := make([]string, flows)
	for i := range names {
		names[i] = fmt.Sprintf("load-%05d", i)
		fsys[fmt.Sprintf("flows/%s.yaml", names[i])] = &fstest.MapFile{Data: []byte(benchFlow(i))}
	}
	cfg, err := config.Load(fsys, "probes.yaml", config.Options{Notifiers: NotifierKinds(), Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		tb.Fatal(err)
	}
	return cfg, names
}

// benchAlerting is the daemon's alerting half over flows flows (one in a
// hundred failing for the last three minutes before t0) in a store filled
// with ten minutes of runs, as the daemon builds it.
func benchAlerting(tb testing.TB, flows int, t0 time.Time) *alerting {
	tb.Helper()
	cfg, names := benchConfig(tb, flows, "")
	d := &Daemon{opts: Options{StateDir: tb.TempDir(), ConsoleWriter: io.Discard}, log: slog.New(slog.DiscardHandler),
		reg: prometheus.NewRegistry(), store: store.New(cfg.Store.Keep)}
	d.store.Retain(names, cfg.Store.Keep)
	for m := 10; m > 0; m-- {
		at := t0.Add(-time.Duration(m) * time.Minute)
		for i, f := range names {
			ok := i%100 != 0 || m > 3
			r := benchRun(f, at, ok, 0)
			if !ok { // retried once, as the daemon does, and failing again
				r.Retried = true
				d.store.Observe(r)
				r = benchRun(f, at.Add(time.Second), ok, 1)
			}
			d.store.Observe(r)
		}
	}
	a, err := d.openAlerting(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.db.Close() })
	if err := a.apply(cfg); err != nil {
		tb.Fatal(err)
	}
	return a
}

// phases counts alerts by phase.
func phases(tb testing.TB, a *alerting) map[alert.Phase]int {
	tb.Helper()
	states, err := a.mgr.Alerts()
	if err != nil {
		tb.Fatal(err)
	}
	n := map[alert.Phase]int{}
	for _, s := range states {
		n[s.Phase]++
	}
	return n
}

// BenchmarkAlertingCycle is one evaluation cycle as the daemon runs it
// (prober_rule_evaluation_seconds): the rules over the store, then the
// alert lifecycle in one transaction of the state database. 10,000 flows,
// 100 of them failing and firing, the rest passing with no alert.
func BenchmarkAlertingCycle(b *testing.B) {
	t0 := time.Date(2026, 11, 3, 2, 16, 0, 0, time.UTC)
	a := benchAlerting(b, 10000, t0)
	ctx := context.Background()
	a.evaluate(ctx, t0) // 100 pending
	at := t0.Add(91 * time.Second)
	a.evaluate(ctx, at) // ... firing
	if n := phases(b, a); n[alert.Firing] != 100 || n[alert.Pending] != 0 {
		b.Fatalf("alerts by phase: %v", n)
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at = at.Add(time.Millisecond)
		a.evaluate(ctx, at)
	}
	b.StopTimer()
	if n := phases(b, a); n[alert.Firing] != 100 || len(n) != 1 {
		b.Fatalf("alerts by phase after: %v", n)
	}
}

// A reload that drops flows and relabels the rule: the cycle after it
// evaluates the new flow set under the new labels and keys only, resolves
// the alerts of the old ones, and keeps no evaluation of the old set alive.
func TestAlertingCycleAfterReload(t *testing.T) {
	t0 := time.Date(2026, 11, 3, 2, 16, 0, 0, time.UTC)
	a := benchAlerting(t, 300, t0) // load-00000, -00100 and -00200 failing
	ctx := context.Background()
	// The evaluations are kept weakly: no collection may take them (and
	// with them, what the test looks for) before they are looked at.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	a.evaluate(ctx, t0)
	a.evaluate(ctx, t0.Add(91*time.Second))
	keys := func() map[string]alert.Phase {
		states, err := a.mgr.Alerts()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]alert.Phase{}
		for _, s := range states {
			out[s.Key] = s.Phase
		}
		return out
	}
	want := map[string]alert.Phase{"prober/any_flow_failing/flow=load-00000": alert.Firing,
		"prober/any_flow_failing/flow=load-00100": alert.Firing, "prober/any_flow_failing/flow=load-00200": alert.Firing}
	if got := keys(); !maps.Equal(got, want) {
		t.Fatalf("before the reload: %v", got)
	}
	// keep_firing_for 0s: alerts no longer evaluated resolve at once.
	cfg, names := benchConfig(t, 150, "    labels: {team: payments}\n    keep_firing_for: 0s\n")
	a.d.store.Retain(names, cfg.Store.Keep)
	if err := a.apply(cfg); err != nil {
		t.Fatal(err)
	}
	a.evaluate(ctx, t0.Add(96*time.Second))
	want = map[string]alert.Phase{"prober/any_flow_failing/flow=load-00000/team=payments": alert.Pending,
		"prober/any_flow_failing/flow=load-00100/team=payments": alert.Pending}
	if got := keys(); !maps.Equal(got, want) {
		t.Errorf("after the reload: %v", got)
	}
	evs := a.spare.Value().evs
	if len(evs) != 151 {
		t.Fatalf("%d evaluations after the reload, want 150 flows and the gateway", len(evs))
	}
	for _, ev := range evs {
		labels := ev.Labels
		if labels == nil && ev.Rule.Name == "any_flow_failing" && ev.Status != golden.Firing {
			// A flow that does not fire is its key alone (golden.Options.Key).
			labels = map[string]string{"rule": ev.Rule.Name, "team": "payments", "flow": ev.Evidence.Flow}
		}
		if ev.Rule.Name == "any_flow_failing" && labels["team"] != "payments" || ev.Key != alert.Key(ev.Rule.Name, labels) {
			t.Errorf("evaluation %v (%s) keyed %q", ev.Labels, ev.Status, ev.Key)
		}
	}
	for i, ev := range evs[len(evs):cap(evs)] {
		if ev.Rule != nil || ev.Labels != nil {
			t.Fatalf("evaluation %d of the larger cycle before is still held: %v", len(evs)+i, ev.Labels)
		}
	}
}

// liveHeap is the heap in use by live objects, after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// retainedByAlerting is what a (benchAlerting of flows flows at t0) keeps
// live between cycles: the live heap after cycles cycles (at least two:
// pending, then firing) less that before the first.
func retainedByAlerting(tb testing.TB, a *alerting, flows int, t0 time.Time, cycles int) int64 {
	tb.Helper()
	ctx := context.Background()
	before := liveHeap()
	a.evaluate(ctx, t0)
	at := t0.Add(91 * time.Second)
	for range max(cycles-1, 1) {
		a.evaluate(ctx, at)
		at = at.Add(time.Millisecond)
	}
	after := liveHeap()
	if n := phases(tb, a); n[alert.Firing] != flows/100 || len(n) != 1 {
		tb.Fatalf("alerts by phase: %v", n)
	}
	return int64(after) - int64(before)
}

// Between cycles the alerting half keeps the engine's label sets, keys and
// flow entries, not the evaluations (nor the region states read), whose
// buffers it holds only weakly: about 570 bytes a flow, 1,260 when it held
// them.
func TestAlertingRetainedMemory(t *testing.T) {
	const flows, limit = 2000, 800
	t0 := time.Date(2026, 11, 3, 2, 16, 0, 0, time.UTC)
	a := benchAlerting(t, flows, t0)
	if got := retainedByAlerting(t, a, flows, t0, 3) / flows; got > limit {
		t.Errorf("alerting keeps %d bytes a flow between cycles, more than %d", got, limit)
	}
}

// BenchmarkAlertingRetained reports what BenchmarkAlertingCycle's pipeline
// keeps live between cycles over 10,000 flows (retained-B, and per flow):
// beside the store, most of the daemon's heap at that scale. ns/op is a
// cycle, with the first two (pending, firing) and two full collections.
func BenchmarkAlertingRetained(b *testing.B) {
	t0 := time.Date(2026, 11, 3, 2, 16, 0, 0, time.UTC)
	a := benchAlerting(b, 10000, t0)
	b.ReportAllocs()
	b.ResetTimer()
	retained := retainedByAlerting(b, a, 10000, t0, b.N)
	b.StopTimer()
	b.ReportMetric(float64(retained), "retained-B")
	b.ReportMetric(float64(retained)/10000, "retained-B/flow")
}
