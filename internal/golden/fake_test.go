package golden

import (
	"context"
	"fmt"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// now is the evaluation time of the tests: 02:16, two minutes after the
// 02:14 of the story.
var now = time.Date(2026, 11, 3, 2, 16, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return now.Add(-d) }

const trace1 = "4bf92f3577b34da6a3ce929d0e0e4736"

// fakeSource answers from functions; nil ones have no data.
type fakeSource struct {
	flows      []string
	flowsErr   error
	states     map[string][]RegionState
	statesErr  error
	flowRatio  func(flow string, w time.Duration, at time.Time) (float64, float64, error)
	depRatio   func(dep string, w time.Duration, at time.Time) (float64, float64, error)
	slower     func(flow, step string, threshold, w time.Duration, at time.Time) (float64, float64, error)
	query      func(q string, at time.Time) ([]Sample, error)
	regions    []RegionSeen
	regionsErr error
	queries    int
	panicOn    string // a method that panics
}

func (f *fakeSource) Regions(ctx context.Context, flows []string, at time.Time) ([]RegionSeen, error) {
	return f.regions, f.regionsErr
}

func (f *fakeSource) Flows(ctx context.Context) ([]string, error) {
	if f.panicOn == "Flows" {
		panic("boom")
	}
	return f.flows, f.flowsErr
}

func (f *fakeSource) FlowStates(ctx context.Context, flow string, at time.Time) ([]RegionState, error) {
	if f.panicOn == "FlowStates" {
		var m map[string]int
		//lint:ignore SA5000 the nil map write is the point: a panic like a real bug's
		m["x"]++
	}
	return f.states[flow], f.statesErr
}

func (f *fakeSource) FlowRatio(ctx context.Context, flow string, w time.Duration, at time.Time) (float64, float64, error) {
	if f.flowRatio == nil {
		return 0, 0, nil
	}
	return f.flowRatio(flow, w, at)
}

func (f *fakeSource) DependencyRatio(ctx context.Context, dep string, w time.Duration, at time.Time) (float64, float64, error) {
	if f.depRatio == nil {
		return 0, 0, nil
	}
	return f.depRatio(dep, w, at)
}

func (f *fakeSource) Slower(ctx context.Context, flow, step string, threshold, w time.Duration, at time.Time) (float64, float64, error) {
	if f.slower == nil {
		return 0, 0, nil
	}
	return f.slower(flow, step, threshold, w, at)
}

func (f *fakeSource) Query(ctx context.Context, q string, at time.Time) ([]Sample, error) {
	f.queries++
	if f.query == nil {
		return nil, ErrNoPromQL
	}
	return f.query(q, at)
}

// failing is a region failing at pay since `since`, with retries and trace
// ids (newest first).
func failing(region string, since time.Duration, retries int, traces ...string) RegionState {
	return RegionState{Region: region, Known: true, Failing: true, Since: ago(since), Last: ago(since / 4),
		Retries: retries, Step: "pay", Dependency: "bank-gateway", Class: "swallowed_error",
		Expectation: `json.status == "success"`, Actual: `"processing"`,
		Message: `json.status == "success": got "processing"`, TraceIDs: traces}
}

func passing(region string) RegionState {
	return RegionState{Region: region, Known: true, Since: ago(time.Hour), Last: ago(30 * time.Second)}
}

func stale(rs RegionState) RegionState { rs.Known = false; return rs }

func rule(name string, kind config.RuleKind) *config.Rule {
	return &config.Rule{Name: name, Kind: kind, Severity: "critical"}
}

func flowFailingRule(minRegions int, regions []string, degraded string, flows ...string) *config.Rule {
	r := rule("checkout_failing", config.FlowFailing)
	r.FlowFailing = &config.FlowFailingRule{Flows: flows, MinRegions: minRegions, Regions: regions, DegradedSeverity: degraded}
	return r
}

// byWindow answers ratios from a table keyed by window.
func byWindow(t map[time.Duration][2]float64) func(string, time.Duration, time.Time) (float64, float64, error) {
	return func(_ string, w time.Duration, _ time.Time) (float64, float64, error) {
		v, ok := t[w]
		if !ok {
			return 0, 0, fmt.Errorf("no window %s in the test table", w)
		}
		return v[0], v[1], nil
	}
}

// gatewaySignal answers the gateway: 0 of 8 now, 998 of 1000 before.
func gatewaySignal(dep string, w time.Duration, at time.Time) (float64, float64, error) {
	if at.Equal(now) {
		return 0, 8, nil
	}
	return 998, 1000, nil
}
