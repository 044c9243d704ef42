package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/prober-dev/prober/internal/result"
)

const (
	testRegion = "eu-west-1"
	traceOK    = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceFail  = "0af7651916cd43dd8448eb211c80319c"
)

func newTestMetrics(t testing.TB) (*prometheus.Registry, *Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return reg, New(reg, testRegion, BuildInfo{Version: "1.2.3", Revision: "abc123"})
}

// checkoutShape is the shipped checkout flow: four steps and one cleanup step.
func checkoutShape() FlowShape {
	return FlowShape{Detailed: true, Name: "checkout", Steps: []StepShape{
		{Name: "login"}, {Name: "create_order"}, {Name: "pay", Dependency: "bank-gateway"},
		{Name: "confirm"}, {Name: "cancel_order"},
	}}
}

func healthShape() FlowShape {
	return FlowShape{Detailed: true, Name: "health", Steps: []StepShape{{Name: "healthz"}}}
}

var t0 = time.Date(2026, 11, 3, 2, 14, 0, 0, time.UTC)

func step(name string, st result.Status, class result.Class, d time.Duration) result.Step {
	s := result.Step{
		Name: name, Status: st, Class: class, Duration: d, Method: "POST",
		SpanID: "00f067aa0ba902b7", Attempts: 1, Start: t0,
		URL:     "http://127.0.0.1:8080/api/orders/ord-123/" + name,
		Timings: result.Timings{DNS: time.Millisecond, Connect: 2 * time.Millisecond, Processing: d / 2, Transfer: time.Millisecond},
	}
	if st != result.Passed {
		s.Failures = []result.Failure{{Message: "boom"}}
	}
	if st == result.Skipped {
		s.SpanID, s.URL, s.Duration, s.Timings = "", "", 0, result.Timings{}
	}
	if st != result.Skipped {
		s.HTTPStatus = 200
	}
	return s
}

func passingRun() *result.Run {
	pay := step("pay", result.Passed, result.OK, 300*time.Millisecond)
	pay.Dependency = "bank-gateway"
	cancel := step("cancel_order", result.Passed, result.OK, 10*time.Millisecond)
	cancel.Cleanup = true
	return &result.Run{
		ID: "b7ad6b7169203331", Flow: "checkout", Region: testRegion, TraceID: traceOK,
		Planned: t0, Start: t0, Duration: 420 * time.Millisecond, Status: result.Passed, Class: result.OK,
		Steps: []result.Step{
			step("login", result.Passed, result.OK, 20*time.Millisecond),
			step("create_order", result.Passed, result.OK, 30*time.Millisecond),
			pay,
			step("confirm", result.Passed, result.OK, 70*time.Millisecond),
			cancel,
		},
	}
}

// failingRun: pay answers 200 "processing" (a swallowed gateway error), so
// confirm is skipped; the cleanup still runs and passes.
func failingRun() *result.Run {
	pay := step("pay", result.Failed, result.SwallowedError, 1500*time.Millisecond)
	pay.Dependency = "bank-gateway"
	pay.Failures = []result.Failure{{Expectation: `json.status == "success"`, Actual: `"processing"`,
		Message: `json.status == "success": got "processing"`}}
	cancel := step("cancel_order", result.Passed, result.OK, 10*time.Millisecond)
	cancel.Cleanup = true
	return &result.Run{
		ID: "a3ce929d0e0e4736", Flow: "checkout", Region: testRegion, TraceID: traceFail,
		Planned: t0.Add(time.Minute), Start: t0.Add(time.Minute), Duration: 1600 * time.Millisecond,
		Status: result.Failed, Class: result.SwallowedError, FailedStep: "pay",
		Steps: []result.Step{
			step("login", result.Passed, result.OK, 20*time.Millisecond),
			step("create_order", result.Passed, result.OK, 30*time.Millisecond),
			pay,
			step("confirm", result.Skipped, result.OK, 0),
			cancel,
		},
	}
}

// series is one expected series: its name and labels besides region (the
// helpers add region and require the label set to match exactly).
type series struct {
	name   string
	labels string // name, value, name, value... joined by labelSep (comparable, for map keys)
}

const labelSep = "\x1f"

func s(name string, kv ...string) series { return series{name, strings.Join(kv, labelSep)} }

func (x series) kv() []string {
	if x.labels == "" {
		return nil
	}
	return strings.Split(x.labels, labelSep)
}

func (x series) String() string { return x.name + "{" + strings.Join(x.kv(), ",") + "}" }

// samples gathers reg as flat samples (histograms as _bucket, _sum and
// _count), each with its name in __name__.
func samples(t testing.TB, reg prometheus.Gatherer) model.Vector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, mfs...)
	if err != nil {
		t.Fatalf("ExtractSamples: %v", err)
	}
	return vec
}

// lookup returns the series' value (a histogram's sample count) and whether
// it exists. The label set must match exactly, region included.
func lookup(t testing.TB, reg prometheus.Gatherer, x series) (float64, bool) {
	t.Helper()
	want := model.LabelSet{"region": testRegion}
	kv := x.kv()
	for i := 0; i+1 < len(kv); i += 2 {
		want[model.LabelName(kv[i])] = model.LabelValue(kv[i+1])
	}
	for _, name := range []string{x.name, x.name + "_count"} {
		want[model.MetricNameLabel] = model.LabelValue(name)
		for _, smp := range samples(t, reg) {
			if model.LabelSet(smp.Metric).Equal(want) {
				return float64(smp.Value), true
			}
		}
	}
	return 0, false
}

func checkValues(t *testing.T, reg prometheus.Gatherer, want map[series]float64) {
	t.Helper()
	keys := make([]series, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, x := range keys {
		got, ok := lookup(t, reg, x)
		if !ok {
			t.Errorf("%s: no such series", x)
			continue
		}
		if math.Abs(got-want[x]) > 1e-9 {
			t.Errorf("%s = %v, want %v", x, got, want[x])
		}
	}
}

func checkAbsent(t *testing.T, reg prometheus.Gatherer, absent []series) {
	t.Helper()
	for _, x := range absent {
		if v, ok := lookup(t, reg, x); ok {
			t.Errorf("%s exists (value %v), want no such series", x, v)
		}
	}
}

func TestObserve(t *testing.T) {
	tests := []struct {
		name   string
		runs   []*result.Run
		want   map[series]float64
		absent []series
	}{
		{
			name: "passing run",
			runs: []*result.Run{passingRun()},
			want: map[series]float64{
				s("prober_runs_total", "flow", "checkout", "result", "success"):                                                          1,
				s("prober_last_run_success", "flow", "checkout"):                                                                         1,
				s("prober_last_run_timestamp_seconds", "flow", "checkout"):                                                               float64(t0.Unix()),
				s("prober_flow_duration_seconds", "flow", "checkout"):                                                                    1,
				s("prober_step_runs_total", "flow", "checkout", "step", "login", "class", "ok"):                                          1,
				s("prober_step_runs_total", "flow", "checkout", "step", "confirm", "class", "ok"):                                        1,
				s("prober_step_runs_total", "flow", "checkout", "step", "cancel_order", "class", "ok"):                                   1,
				s("prober_step_duration_seconds", "flow", "checkout", "step", "pay"):                                                     1,
				s("prober_step_phase_seconds", "flow", "checkout", "step", "pay", "phase", "processing"):                                 0.15,
				s("prober_step_phase_seconds", "flow", "checkout", "step", "pay", "phase", "connect"):                                    0.002,
				s("prober_dependency_calls_total", "flow", "checkout", "step", "pay", "dependency", "bank-gateway", "result", "success"): 1,
			},
			absent: []series{
				s("prober_run_failures_total", "flow", "checkout", "class", "ok"),
			},
		},
		{
			name: "failing run",
			runs: []*result.Run{failingRun()},
			want: map[series]float64{
				s("prober_runs_total", "flow", "checkout", "result", "failure"):                                                                    1,
				s("prober_last_run_success", "flow", "checkout"):                                                                                   0,
				s("prober_last_run_timestamp_seconds", "flow", "checkout"):                                                                         float64(t0.Add(time.Minute).Unix()),
				s("prober_flow_duration_seconds", "flow", "checkout"):                                                                              1,
				s("prober_step_runs_total", "flow", "checkout", "step", "login", "class", "ok"):                                                    1,
				s("prober_step_runs_total", "flow", "checkout", "step", "pay", "class", "swallowed_error"):                                         1,
				s("prober_step_runs_total", "flow", "checkout", "step", "cancel_order", "class", "ok"):                                             1,
				s("prober_step_duration_seconds", "flow", "checkout", "step", "pay"):                                                               1,
				s("prober_dependency_calls_total", "flow", "checkout", "step", "pay", "dependency", "bank-gateway", "result", "failure"):           1,
				s("prober_run_failures_total", "flow", "checkout", "class", "swallowed_error"):                                                     1,
				s("prober_dependency_failures_total", "flow", "checkout", "step", "pay", "dependency", "bank-gateway", "class", "swallowed_error"): 1,
				// A failed step counts under its class, not ok; a skipped step not at all.
				s("prober_step_runs_total", "flow", "checkout", "step", "pay", "class", "ok"):                                            0,
				s("prober_step_runs_total", "flow", "checkout", "step", "confirm", "class", "ok"):                                        0,
				s("prober_step_duration_seconds", "flow", "checkout", "step", "confirm"):                                                 0,
				s("prober_dependency_calls_total", "flow", "checkout", "step", "pay", "dependency", "bank-gateway", "result", "success"): 0,
			},
			absent: []series{
				// A skipped step is counted under no failure class.
				s("prober_step_runs_total", "flow", "checkout", "step", "confirm", "class", "swallowed_error"),
			},
		},
		{
			name: "passing then failing",
			runs: []*result.Run{passingRun(), failingRun()},
			want: map[series]float64{
				s("prober_runs_total", "flow", "checkout", "result", "success"):                                                          1,
				s("prober_runs_total", "flow", "checkout", "result", "failure"):                                                          1,
				s("prober_last_run_success", "flow", "checkout"):                                                                         0,
				s("prober_flow_duration_seconds", "flow", "checkout"):                                                                    2,
				s("prober_step_runs_total", "flow", "checkout", "step", "login", "class", "ok"):                                          2,
				s("prober_step_runs_total", "flow", "checkout", "step", "pay", "class", "ok"):                                            1,
				s("prober_step_runs_total", "flow", "checkout", "step", "pay", "class", "swallowed_error"):                               1,
				s("prober_step_runs_total", "flow", "checkout", "step", "confirm", "class", "ok"):                                        1,
				s("prober_step_duration_seconds", "flow", "checkout", "step", "confirm"):                                                 1,
				s("prober_step_duration_seconds", "flow", "checkout", "step", "pay"):                                                     2,
				s("prober_dependency_calls_total", "flow", "checkout", "step", "pay", "dependency", "bank-gateway", "result", "success"): 1,
				s("prober_dependency_calls_total", "flow", "checkout", "step", "pay", "dependency", "bank-gateway", "result", "failure"): 1,
			},
		},
		{
			name: "failing then passing",
			runs: []*result.Run{failingRun(), passingRun()},
			want: map[series]float64{
				s("prober_last_run_success", "flow", "checkout"):           1,
				s("prober_last_run_timestamp_seconds", "flow", "checkout"): float64(t0.Unix()),
			},
		},
	}
	for _, tc := range tests {
		// Both with the flow announced by SetFlows (the daemon) and ad hoc
		// (a run of a flow the metrics were never told about).
		for _, announced := range []bool{true, false} {
			name := tc.name + "/ad-hoc"
			if announced {
				name = tc.name + "/announced"
			}
			t.Run(name, func(t *testing.T) {
				reg, m := newTestMetrics(t)
				if announced {
					m.SetFlows([]FlowShape{checkoutShape()})
				}
				for _, r := range tc.runs {
					m.Observe(r)
				}
				checkValues(t, reg, tc.want)
				checkAbsent(t, reg, tc.absent)
			})
		}
	}
}

// The same counters through testutil's own comparison, with the exposition
// text as a reader of /metrics would see it.
func TestObserveGatherAndCompare(t *testing.T) {
	reg, m := newTestMetrics(t)
	m.SetFlows([]FlowShape{checkoutShape()})
	m.Observe(passingRun())
	m.Observe(failingRun())
	m.Observe(failingRun())

	const want = `
# HELP prober_runs_total Final flow runs by result (success or failure); both series exist from the start so rates see the first failure. Failures carry trace_id exemplars.
# TYPE prober_runs_total counter
prober_runs_total{flow="checkout",region="eu-west-1",result="failure"} 2
prober_runs_total{flow="checkout",region="eu-west-1",result="success"} 1
# HELP prober_dependency_calls_total Calls of steps marked with a dependency (e.g. a bank gateway) in final runs, by result (success, failure, as in prober_runs_total); both series exist from the start.
# TYPE prober_dependency_calls_total counter
prober_dependency_calls_total{dependency="bank-gateway",flow="checkout",region="eu-west-1",result="failure",step="pay"} 2
prober_dependency_calls_total{dependency="bank-gateway",flow="checkout",region="eu-west-1",result="success",step="pay"} 1
# HELP prober_last_run_success 1 if the flow's last run passed, 0 if it failed.
# TYPE prober_last_run_success gauge
prober_last_run_success{flow="checkout",region="eu-west-1"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"prober_runs_total", "prober_dependency_calls_total", "prober_last_run_success"); err != nil {
		t.Error(err)
	}
	// The series the comparison above leaves out, as a second opinion.
	if got, _ := lookup(t, reg, s("prober_run_failures_total", "flow", "checkout", "class", "swallowed_error")); got != 2 {
		t.Errorf("run_failures{swallowed_error} = %v, want 2", got)
	}
	if got, _ := lookup(t, reg, s("prober_step_runs_total", "flow", "checkout", "step", "confirm", "class", "ok")); got != 1 {
		t.Errorf("step_runs{confirm,ok} = %v, want 1 (two skips must not count)", got)
	}
}

func TestHistogramSums(t *testing.T) {
	reg, m := newTestMetrics(t)
	m.SetFlows([]FlowShape{checkoutShape()})
	m.Observe(passingRun())
	m.Observe(failingRun())
	tests := []struct {
		name string
		x    series
		want float64
	}{
		{"flow duration: main steps only", s("prober_flow_duration_seconds_sum", "flow", "checkout"), 0.42 + 1.6},
		{"skipped step adds nothing", s("prober_step_duration_seconds_sum", "flow", "checkout", "step", "confirm"), 0.07},
		{"failed step observed", s("prober_step_duration_seconds_sum", "flow", "checkout", "step", "pay"), 1.8},
		{"cleanup step observed", s("prober_step_duration_seconds_sum", "flow", "checkout", "step", "cancel_order"), 0.02},
		{"bucket", s("prober_step_duration_seconds_bucket", "flow", "checkout", "step", "pay", "le", "1"), 1},
		{"bucket +Inf", s("prober_step_duration_seconds_bucket", "flow", "checkout", "step", "pay", "le", "+Inf"), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkValues(t, reg, map[series]float64{tc.x: tc.want})
		})
	}
}

func TestEverySeriesCarriesRegion(t *testing.T) {
	reg, m := newTestMetrics(t)
	m.SetFlows([]FlowShape{checkoutShape(), healthShape()})
	m.Observe(passingRun())
	m.Observe(failingRun())
	m.Skipped("checkout")
	m.Started("checkout", 3*time.Millisecond)
	m.Finished("checkout")
	m.ConfigLoaded(true, t0)
	n := 0
	for _, smp := range samples(t, reg) {
		n++
		if got := smp.Metric["region"]; got != testRegion {
			t.Errorf("%s: region=%q, want %q", smp.Metric, got, testRegion)
		}
	}
	if n < 50 {
		t.Errorf("only %d series gathered; the test is not looking at much", n)
	}
}

func TestSetFlows(t *testing.T) {
	steps := func(f FlowShape) []string {
		var out []string
		for _, st := range f.Steps {
			out = append(out, st.Name)
		}
		return out
	}
	// Series every announced flow has from the start, at zero.
	precreated := func(f FlowShape) map[series]float64 {
		want := map[series]float64{
			s("prober_runs_total", "flow", f.Name, "result", "success"): 0,
			s("prober_runs_skipped_total", "flow", f.Name):              0,
			s("prober_last_run_success", "flow", f.Name):                0,
			s("prober_flow_duration_seconds", "flow", f.Name):           0,
		}
		for _, st := range f.Steps {
			want[s("prober_step_runs_total", "flow", f.Name, "step", st.Name, "class", "ok")] = 0
			want[s("prober_step_duration_seconds", "flow", f.Name, "step", st.Name)] = 0
			want[s("prober_step_phase_seconds", "flow", f.Name, "step", st.Name, "phase", "dns")] = 0
			if st.Dependency != "" {
				want[s("prober_dependency_calls_total", "flow", f.Name, "step", st.Name,
					"dependency", st.Dependency, "result", "success")] = 0
			}
		}
		return want
	}
	// flowSeries lists every series labelled with flow=name.
	flowSeries := func(t *testing.T, reg prometheus.Gatherer, flow string) []string {
		var out []string
		for _, smp := range samples(t, reg) {
			if string(smp.Metric["flow"]) == flow {
				out = append(out, smp.Metric.String())
			}
		}
		return out
	}
	// checkout after an edit: confirm is gone and pay now goes to another gateway.
	edited := checkoutShape()
	edited.Steps = []StepShape{{Name: "login"}, {Name: "create_order"}, {Name: "pay", Dependency: "acquirer"}, {Name: "cancel_order"}}

	tests := []struct {
		name       string
		first      []FlowShape
		then       []FlowShape
		wantFlows  float64
		want       map[series]float64
		goneFlows  []string // no series at all with these flows
		goneSeries []series
	}{
		{
			name:      "pre-creates",
			first:     nil,
			then:      []FlowShape{checkoutShape(), healthShape()},
			wantFlows: 2,
			want:      merge(precreated(checkoutShape()), precreated(healthShape())),
		},
		{
			name:      "removed flow's series are deleted",
			first:     []FlowShape{checkoutShape(), healthShape()},
			then:      []FlowShape{healthShape()},
			wantFlows: 1,
			want:      precreated(healthShape()),
			goneFlows: []string{"checkout"},
		},
		{
			name:      "all flows removed",
			first:     []FlowShape{checkoutShape(), healthShape()},
			then:      nil,
			wantFlows: 0,
			goneFlows: []string{"checkout", "health"},
		},
		{
			name:      "kept flow keeps its counts",
			first:     []FlowShape{checkoutShape()},
			then:      []FlowShape{checkoutShape(), healthShape()},
			wantFlows: 2,
			want: map[series]float64{
				s("prober_runs_total", "flow", "checkout", "result", "success"):                 1,
				s("prober_runs_total", "flow", "checkout", "result", "failure"):                 1,
				s("prober_step_runs_total", "flow", "checkout", "step", "login", "class", "ok"): 2,
			},
		},
		{
			name:      "removed step and changed dependency of a kept flow",
			first:     []FlowShape{checkoutShape()},
			then:      []FlowShape{edited},
			wantFlows: 1,
			want: map[series]float64{
				s("prober_runs_total", "flow", "checkout", "result", "success"):                 1,
				s("prober_step_runs_total", "flow", "checkout", "step", "login", "class", "ok"): 2,
				s("prober_step_runs_total", "flow", "checkout", "step", "pay", "class", "ok"):   1,
				// the new dependency's series exists from the start
				s("prober_dependency_calls_total", "flow", "checkout", "step", "pay", "dependency", "acquirer", "result", "success"): 0,
			},
			goneSeries: []series{
				s("prober_step_runs_total", "flow", "checkout", "step", "confirm", "class", "ok"),
				s("prober_step_duration_seconds", "flow", "checkout", "step", "confirm"),
				s("prober_step_phase_seconds", "flow", "checkout", "step", "confirm", "phase", "processing"),
				s("prober_dependency_calls_total", "flow", "checkout", "step", "pay", "dependency", "bank-gateway", "result", "success"),
				s("prober_dependency_calls_total", "flow", "checkout", "step", "pay", "dependency", "bank-gateway", "result", "failure"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg, m := newTestMetrics(t)
			if tc.first != nil {
				m.SetFlows(tc.first)
				for _, f := range tc.first {
					if f.Name == "checkout" {
						m.Observe(passingRun())
						m.Observe(failingRun())
						m.Skipped("checkout")
					}
				}
			}
			m.SetFlows(tc.then)
			checkValues(t, reg, map[series]float64{s("prober_flows_configured"): tc.wantFlows})
			checkValues(t, reg, tc.want)
			checkAbsent(t, reg, tc.goneSeries)
			for _, f := range tc.goneFlows {
				if left := flowSeries(t, reg, f); len(left) > 0 {
					t.Errorf("flow %s removed, but %d series remain: %v", f, len(left), left)
				}
			}
			for _, f := range tc.then {
				if len(flowSeries(t, reg, f.Name)) == 0 {
					t.Errorf("flow %s (steps %v) has no series", f.Name, steps(f))
				}
			}
		})
	}
}

func merge(ms ...map[series]float64) map[series]float64 {
	out := map[series]float64{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// A run that was in flight when a reload removed its flow finishes after
// SetFlows: it must not bring the flow's series back.
func TestLateRunOfRemovedFlow(t *testing.T) {
	reg, m := newTestMetrics(t)
	m.SetFlows([]FlowShape{checkoutShape(), healthShape()})
	m.SetFlows([]FlowShape{healthShape()})
	m.Observe(failingRun())
	m.Skipped("checkout")
	for _, smp := range samples(t, reg) {
		if smp.Metric["flow"] == "checkout" {
			t.Errorf("%s is back after the flow was removed", smp.Metric)
		}
	}

	// Likewise a run of the old shape of a kept flow: the removed step and
	// the old dependency stay gone, the rest is counted.
	reg, m = newTestMetrics(t)
	edited := FlowShape{Detailed: true, Name: "checkout", Steps: []StepShape{{Name: "login"}, {Name: "create_order"}, {Name: "pay", Dependency: "acquirer"}, {Name: "cancel_order"}}}
	m.SetFlows([]FlowShape{checkoutShape()})
	m.SetFlows([]FlowShape{edited})
	m.Observe(passingRun())
	checkValues(t, reg, map[series]float64{
		s("prober_runs_total", "flow", "checkout", "result", "success"):                 1,
		s("prober_step_runs_total", "flow", "checkout", "step", "login", "class", "ok"): 1,
	})
	checkAbsent(t, reg, []series{
		s("prober_step_runs_total", "flow", "checkout", "step", "confirm", "class", "ok"),
		s("prober_dependency_calls_total", "flow", "checkout", "step", "pay", "dependency", "bank-gateway", "result", "success"),
	})
}

func TestSchedulingHooksAndReloads(t *testing.T) {
	type call func(m *Metrics)
	tests := []struct {
		name  string
		calls []call
		want  map[series]float64
	}{
		{
			name:  "skipped",
			calls: []call{func(m *Metrics) { m.Skipped("checkout"); m.Skipped("checkout"); m.Skipped("health") }},
			want: map[series]float64{
				s("prober_runs_skipped_total", "flow", "checkout"): 2,
				s("prober_runs_skipped_total", "flow", "health"):   1,
			},
		},
		{
			name: "started and finished",
			calls: []call{
				func(m *Metrics) { m.Started("checkout", 20*time.Millisecond) },
				func(m *Metrics) { m.Started("health", 0) },
				func(m *Metrics) { m.Finished("health") },
			},
			want: map[series]float64{
				s("prober_runs_in_flight"):            1,
				s("prober_schedule_lateness_seconds"): 2,
			},
		},
		{
			name: "all finished",
			calls: []call{
				func(m *Metrics) { m.Started("checkout", time.Millisecond) },
				func(m *Metrics) { m.Finished("checkout") },
			},
			want: map[series]float64{s("prober_runs_in_flight"): 0},
		},
		{
			name:  "config loaded",
			calls: []call{func(m *Metrics) { m.ConfigLoaded(true, t0) }},
			want: map[series]float64{
				s("prober_config_reloads_total", "result", "success"):    1,
				s("prober_config_reloads_total", "result", "failure"):    0,
				s("prober_config_last_reload_successful"):                1,
				s("prober_config_last_reload_success_timestamp_seconds"): float64(t0.Unix()),
			},
		},
		{
			name: "config reload failed",
			calls: []call{
				func(m *Metrics) { m.ConfigLoaded(true, t0) },
				func(m *Metrics) { m.ConfigLoaded(false, t0.Add(time.Hour)) },
			},
			want: map[series]float64{
				s("prober_config_reloads_total", "result", "success"): 1,
				s("prober_config_reloads_total", "result", "failure"): 1,
				s("prober_config_last_reload_successful"):             0,
				// the time of the last *successful* load stays
				s("prober_config_last_reload_success_timestamp_seconds"): float64(t0.Unix()),
			},
		},
		{
			name: "config fixed",
			calls: []call{
				func(m *Metrics) { m.ConfigLoaded(false, t0) },
				func(m *Metrics) { m.ConfigLoaded(true, t0.Add(time.Hour)) },
			},
			want: map[series]float64{
				s("prober_config_reloads_total", "result", "failure"):    1,
				s("prober_config_last_reload_successful"):                1,
				s("prober_config_last_reload_success_timestamp_seconds"): float64(t0.Add(time.Hour).Unix()),
			},
		},
		{
			name:  "build info",
			calls: nil,
			want: map[series]float64{
				s("prober_build_info", "version", "1.2.3", "revision", "abc123", "goversion", runtime.Version()): 1,
				s("prober_config_reloads_total", "result", "success"):                                            0,
				s("prober_config_reloads_total", "result", "failure"):                                            0,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg, m := newTestMetrics(t)
			for _, c := range tc.calls {
				c(m)
			}
			checkValues(t, reg, tc.want)
		})
	}

	// Lateness: a negative lateness (clock skew) counts as zero, not as a
	// negative observation that would break the histogram's sum.
	reg, m := newTestMetrics(t)
	m.Started("checkout", 250*time.Millisecond)
	m.Started("checkout", -time.Second)
	checkValues(t, reg, map[series]float64{
		s("prober_schedule_lateness_seconds_sum"):                   0.25,
		s("prober_schedule_lateness_seconds_count"):                 2,
		s("prober_schedule_lateness_seconds_bucket", "le", "0.001"): 1,
	})
}

// scrape serves m's /metrics as the daemon does and returns the response.
func scrape(t *testing.T, reg *prometheus.Registry, m *Metrics, accept string) (contentType string, body []byte) {
	t.Helper()
	srv := httptest.NewServer(m.Handler(reg, HandlerOpts{}))
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	return resp.Header.Get("Content-Type"), body
}

// decode parses exposition text with expfmt; it fails the test on any error.
func decode(t *testing.T, body []byte, format expfmt.Format) model.Vector {
	t.Helper()
	dec := &expfmt.SampleDecoder{
		Dec:  expfmt.NewDecoder(bytes.NewReader(body), format),
		Opts: &expfmt.DecodeOptions{Timestamp: model.Now()},
	}
	var all model.Vector
	for {
		var v model.Vector
		err := dec.Decode(&v)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("parsing %s: %v\n%s", format, err, body)
		}
		all = append(all, v...)
	}
	if len(all) == 0 {
		t.Fatalf("no samples in\n%s", body)
	}
	return all
}

var exemplarRE = regexp.MustCompile(`^(\S+\{[^}]*\}) (\S+) # \{trace_id="([0-9a-f]{32})"\} (\S+) (\S+)$`)

func TestExemplarsServedAsOpenMetrics(t *testing.T) {
	reg, m := newTestMetrics(t)
	m.SetFlows([]FlowShape{checkoutShape()})
	m.Observe(passingRun())
	m.Observe(failingRun())

	tests := []struct {
		name, accept string
		openMetrics  bool
	}{
		{"openmetrics", "application/openmetrics-text; version=1.0.0", true},
		{"openmetrics among others", "application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", true},
		{"no accept header", "", false},
		{"text format", "text/plain;version=0.0.4", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct, body := scrape(t, reg, m, tc.accept)
			text := string(body)
			if !tc.openMetrics {
				if !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("Content-Type = %q, want text/plain", ct)
				}
				if strings.Contains(text, "# {") || strings.Contains(text, "# EOF") {
					t.Errorf("text format carries OpenMetrics syntax:\n%s", text)
				}
				decode(t, body, expfmt.ResponseFormat(http.Header{"Content-Type": {ct}}))
				if !strings.Contains(text, "# TYPE prober_runs_total counter\n") {
					t.Errorf("prober_runs_total is not typed as a counter")
				}
				return
			}
			if !strings.HasPrefix(ct, "application/openmetrics-text") {
				t.Fatalf("Content-Type = %q, want application/openmetrics-text", ct)
			}
			if !strings.HasSuffix(text, "# EOF\n") {
				t.Errorf("OpenMetrics body does not end with # EOF")
			}
			// Exemplars: bucket lines of both duration histograms, with the
			// trace id of the run that was observed into that bucket.
			found := map[string]map[string]bool{} // metric -> trace ids
			var stripped strings.Builder
			sc := bufio.NewScanner(bytes.NewReader(body))
			for sc.Scan() {
				line := sc.Text()
				if line == "# EOF" {
					continue
				}
				if i := strings.Index(line, " # {"); i >= 0 && !strings.HasPrefix(line, "#") {
					mm := exemplarRE.FindStringSubmatch(line)
					if mm == nil {
						t.Errorf("malformed exemplar line: %s", line)
						continue
					}
					name := mm[1][:strings.Index(mm[1], "{")]
					if !strings.HasSuffix(name, "_bucket") && name != "prober_runs_total" {
						t.Errorf("exemplar on a non-bucket line: %s", line)
					}
					if found[name] == nil {
						found[name] = map[string]bool{}
					}
					found[name][mm[3]] = true
					line = line[:i]
				}
				stripped.WriteString(line + "\n")
			}
			for _, name := range []string{"prober_flow_duration_seconds_bucket", "prober_step_duration_seconds_bucket"} {
				for _, id := range []string{traceOK, traceFail} {
					if !found[name][id] {
						t.Errorf("no exemplar with trace_id %s on %s", id, name)
					}
				}
			}
			if !strings.Contains(text, `prober_flow_duration_seconds_bucket{flow="checkout",region="eu-west-1",le="0.5"} 1 # {trace_id="`+traceOK+`"} 0.42`) {
				t.Errorf("the passing run's exemplar is not on its bucket (le=0.5):\n%s", grepLines(text, "prober_flow_duration_seconds_bucket"))
			}
			// What remains without the exemplars and EOF must parse.
			decode(t, []byte(stripped.String()), expfmt.NewFormat(expfmt.TypeTextPlain))
		})
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

var (
	hexIDRE  = regexp.MustCompile(`^[0-9a-f]{16}$|^[0-9a-f]{32}$`)
	allowedL = map[string]bool{
		"region": true, "flow": true, "step": true, "class": true, "dependency": true,
		"result": true, "phase": true, "version": true, "revision": true, "goversion": true, "expectation": true,
		"host": true,
	}
)

// Cardinality is bounded: the only labels are the known ones, and no label
// value is a trace id, span id, run id or URL, whether the flow was announced
// by SetFlows or not.
func TestNoUnboundedLabels(t *testing.T) {
	for _, announced := range []bool{true, false} {
		t.Run(map[bool]string{true: "announced", false: "ad-hoc"}[announced], func(t *testing.T) {
			reg, m := newTestMetrics(t)
			if announced {
				m.SetFlows([]FlowShape{checkoutShape()})
			}
			ids := map[string]bool{}
			const runs = 40
			for i := range runs {
				r := passingRun()
				if i%2 == 1 {
					r = failingRun()
				}
				r.TraceID, r.ID = fmt.Sprintf("%032x", 0xabc000+i), fmt.Sprintf("%016x", 0xdef000+i)
				ids[r.TraceID], ids[r.ID] = true, true
				for j := range r.Steps {
					r.Steps[j].SpanID = fmt.Sprintf("%016x", 0x123000+100*i+j)
					// HTTPS: each step's certificate too, whatever the path.
					r.Steps[j].URL = fmt.Sprintf("https://127.0.0.1:8443/api/orders/ord-%d/%s", i, r.Steps[j].Name)
					r.Steps[j].Attrs = certAttrs(t0.Add(time.Duration(i) * time.Hour))
					ids[r.Steps[j].SpanID], ids[r.Steps[j].URL] = true, true
				}
				m.Observe(r)
			}
			total := 0
			for _, smp := range samples(t, reg) {
				total++
				for name, val := range smp.Metric {
					v := string(val)
					if name == model.MetricNameLabel || name == "le" {
						continue
					}
					if !allowedL[string(name)] {
						t.Errorf("%s: unexpected label %s", smp.Metric, name)
					}
					if ids[v] || hexIDRE.MatchString(v) || strings.Contains(v, "://") || strings.Contains(v, "/api/") {
						t.Errorf("%s: label %s=%q looks like an id or URL", smp.Metric, name, v)
					}
				}
			}
			// 40 runs with 40 trace ids must not have made 40 of anything.
			if n, err := testutil.GatherAndCount(reg, "prober_runs_total"); err != nil || n != 2 {
				t.Errorf("prober_runs_total has %d series (err %v), want 2", n, err)
			}
			if n, err := testutil.GatherAndCount(reg, "prober_step_duration_seconds"); err != nil || n != 5 {
				t.Errorf("prober_step_duration_seconds has %d series (err %v), want 5 (one per step)", n, err)
			}
			if n, err := testutil.GatherAndCount(reg, certFamily); err != nil || n != 5 {
				t.Errorf("%s has %d series (err %v), want 5 (one per step)", certFamily, n, err)
			}
			if total > 400 {
				t.Errorf("%d samples after %d runs of one flow; cardinality grows with runs", total, runs)
			}
		})
	}
}

// Runs observed while reloads add and remove their flow: no race, and once
// the flow is finally removed none of its series is left.
func TestConcurrentObserveAndSetFlows(t *testing.T) {
	reg, m := newTestMetrics(t)
	m.SetFlows([]FlowShape{checkoutShape(), healthShape()})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					m.Observe(failingRun())
					m.Observe(passingRun())
				}
			}
		}()
	}
	for i := range 200 {
		if i%2 == 0 {
			m.SetFlows([]FlowShape{healthShape()})
		} else {
			m.SetFlows([]FlowShape{checkoutShape(), healthShape()})
		}
	}
	m.SetFlows([]FlowShape{healthShape()})
	close(stop)
	wg.Wait()
	m.Observe(failingRun()) // and a late one after everything settled
	for _, smp := range samples(t, reg) {
		if smp.Metric["flow"] == "checkout" {
			t.Errorf("%s left after checkout was removed", smp.Metric)
		}
	}
}

func BenchmarkObserve(b *testing.B) {
	reg := prometheus.NewRegistry()
	m := New(reg, testRegion, BuildInfo{Version: "bench"})
	shape := FlowShape{Detailed: true, Name: "checkout"}
	r := passingRun()
	r.Steps = r.Steps[:4]
	r.Steps = append(r.Steps, step("logout", result.Passed, result.OK, 5*time.Millisecond))
	for _, st := range r.Steps {
		shape.Steps = append(shape.Steps, StepShape{Name: st.Name, Dependency: st.Dependency})
	}
	m.SetFlows([]FlowShape{shape})
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(r)
	}
}

func TestStreakFailureInfoAndRetries(t *testing.T) {
	reg, m := newTestMetrics(t)
	m.SetFlows([]FlowShape{checkoutShape()})
	m.Observe(passingRun())
	since := s("prober_flow_state_since_timestamp_seconds", "flow", "checkout")
	checkValues(t, reg, map[series]float64{since: float64(t0.Unix())})

	// A failed run that a retry supersedes: a retry, not a run, not a call.
	retried := failingRun()
	retried.Retried = true
	m.Observe(retried)
	checkValues(t, reg, map[series]float64{
		s("prober_run_retries_total", "flow", "checkout"): 1,
		since: float64(t0.Unix()),
	})
	checkValues(t, reg, map[series]float64{
		s("prober_runs_total", "flow", "checkout", "result", "failure"):                                                          0,
		s("prober_dependency_calls_total", "flow", "checkout", "step", "pay", "dependency", "bank-gateway", "result", "failure"): 0,
	})

	// The confirming retry fails too: the streak turns, the failure shows.
	final := failingRun()
	final.Retry = 1
	m.Observe(final)
	info := s("prober_last_failure_info", "flow", "checkout", "step", "pay", "class", "swallowed_error",
		"dependency", "bank-gateway", "expectation", `json.status == "success"`)
	checkValues(t, reg, map[series]float64{
		since: float64(final.Start.Unix()),
		// An _info metric is 1; when is the last run's timestamp.
		info: 1,
		s("prober_last_run_timestamp_seconds", "flow", "checkout"):                                                               float64(final.Start.Unix()),
		s("prober_dependency_calls_total", "flow", "checkout", "step", "pay", "dependency", "bank-gateway", "result", "failure"): 1,
	})
	// Still failing: the streak keeps its start.
	later := failingRun()
	later.Start = later.Start.Add(time.Minute)
	m.Observe(later)
	checkValues(t, reg, map[series]float64{since: float64(final.Start.Unix()), info: 1,
		s("prober_last_run_timestamp_seconds", "flow", "checkout"): float64(later.Start.Unix())})

	// Healed: the failure info goes away, the streak restarts.
	ok := passingRun()
	ok.Start = t0.Add(5 * time.Minute)
	m.Observe(ok)
	checkAbsent(t, reg, []series{info})
	checkValues(t, reg, map[series]float64{since: float64(ok.Start.Unix())})
}

// A bucket saturates rather than wrapping: a counter never goes down.
func TestHistoBucketSaturates(t *testing.T) {
	var h histo
	h.counts[0] = math.MaxUint32 - 1 // and so the count
	for range 3 {
		h.observe(0.001, &runTrace{})
	}
	d := h.dto()
	if got := d.GetBucket()[0].GetCumulativeCount(); got != math.MaxUint32 {
		t.Errorf("bucket 0 cumulative %d, want %d (saturated)", got, uint64(math.MaxUint32))
	}
	if got := d.GetSampleCount(); got != math.MaxUint32+2 {
		t.Errorf("count %d, want %d", got, uint64(math.MaxUint32)+2)
	}
}

// seriesCount is how many series a scrape of /metrics holds.
func seriesCount(t *testing.T, reg *prometheus.Registry, m *Metrics) int {
	t.Helper()
	_, body := scrape(t, reg, m, "")
	return len(decode(t, body, expfmt.NewFormat(expfmt.TypeTextPlain)))
}

// A latency rule's threshold is a bucket boundary of the histogram the rule
// reads, and of no other (issue 12, item 7): le="2" on checkout's pay, not
// on its other steps, its flow duration or another flow; one series more
// for each threshold, none for one that is already standard.
func TestRuleBoundsAreBuckets(t *testing.T) {
	plain := []FlowShape{checkoutShape(), healthShape()}
	reg0, m0 := newTestMetrics(t)
	m0.SetFlows(plain)
	before := seriesCount(t, reg0, m0)

	withRule := []FlowShape{checkoutShape(), healthShape()}
	withRule[0].Steps[2].Bounds = []float64{2, 2, 2.5, 0, math.Inf(1)} // 2.5 is standard; 0 and +Inf are no bounds
	reg, m := newTestMetrics(t)
	m.SetFlows(withRule)
	if after := seriesCount(t, reg, m); after != before+1 {
		t.Errorf("%d series with the rule's bound, %d without: want exactly one more", after, before)
	}
	t.Logf("series: %d without the latency rule's bound, %d with it", before, before+1)

	for _, d := range []time.Duration{1600 * time.Millisecond, 2 * time.Second, 2400 * time.Millisecond} {
		r := passingRun()
		r.Steps[2].Duration = d
		m.Observe(r)
	}
	pay := func(le string) series {
		return s("prober_step_duration_seconds_bucket", "flow", "checkout", "step", "pay", "le", le)
	}
	checkValues(t, reg, map[series]float64{
		pay("1"): 0, pay("2"): 2, pay("2.5"): 3, pay("+Inf"): 3, // 2s itself is at or below 2
	})
	checkAbsent(t, reg, []series{
		s("prober_step_duration_seconds_bucket", "flow", "checkout", "step", "login", "le", "2"),
		s("prober_flow_duration_seconds_bucket", "flow", "checkout", "le", "2"),
		s("prober_step_duration_seconds_bucket", "flow", "health", "step", "healthz", "le", "2"),
	})

	// The /metrics stream has it too, in order, in both formats.
	for _, accept := range []string{"", acceptPrometheus} {
		_, body := scrape(t, reg, m, accept)
		lines := grepLines(string(body), `prober_step_duration_seconds_bucket{flow="checkout",`)
		want := regexp.MustCompile(`step="pay"[^\n]*le="1(\.0)?"[^\n]*\n[^\n]*le="2(\.0)?"} 2\b[^\n]*\n[^\n]*le="2\.5"} 3`)
		if !want.MatchString(lines) {
			t.Errorf("Accept %q: pay's buckets lack le=2 between 1 and 2.5:\n%s", accept, lines)
		}
	}
}

// Extra bounds below the first standard one and above the last, with
// exemplars moved to the extra bucket they fall in; a histogram whose
// bounds change starts again from zero.
func TestExtraBoundsEdges(t *testing.T) {
	var h histo
	h.setBounds(normBounds([]float64{90, 0.003, 2}))
	tr := newRunTrace(traceOK)
	// 200 then 70: one exemplar per standard bucket (the last), and 70's
	// moves from +Inf to the extra bucket le=90.
	for _, v := range []float64{0.001, 1.5, 200, 70} {
		h.observe(v, &tr)
	}
	type bucket struct {
		le  float64
		cum uint64
		ex  float64 // exemplar value, 0 for none
	}
	var got []bucket
	for _, b := range h.dto().GetBucket() {
		got = append(got, bucket{b.GetUpperBound(), b.GetCumulativeCount(), b.GetExemplar().GetValue()})
	}
	want := []bucket{{0.003, 1, 0.001}, {0.005, 1, 0}, {0.01, 1, 0}, {0.025, 1, 0}, {0.05, 1, 0}, {0.1, 1, 0}, {0.25, 1, 0},
		{0.5, 1, 0}, {1, 1, 0}, {2, 2, 1.5}, {2.5, 2, 0}, {5, 2, 0}, {10, 2, 0}, {30, 2, 0}, {60, 2, 0}, {90, 3, 70},
		{math.Inf(1), 4, 0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("buckets\n got %v\nwant %v", got, want)
	}

	h.setBounds(normBounds([]float64{2, 0.003, 90, 90})) // the same: kept
	if h.count() != 4 {
		t.Errorf("count %d after setting the same bounds, want 4", h.count())
	}
	h.setBounds(normBounds([]float64{3}))
	if h.count() != 0 || h.sum != 0 || len(h.exemplars()) != 0 {
		t.Errorf("count %d, sum %v, %d exemplars after the bounds changed: want a fresh histogram", h.count(), h.sum, len(h.exemplars()))
	}
}
