package metrics

import (
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// stepRetriesOf is the value of every prober_step_retries_total series in
// a scrape of m, by flow/step.
func stepRetriesOf(t *testing.T, reg *prometheus.Registry, m *Metrics) map[string]float64 {
	t.Helper()
	_, body := scrape(t, reg, m, "")
	out := map[string]float64{}
	for _, s := range decode(t, body, expfmt.NewFormat(expfmt.TypeTextPlain)) {
		if s.Metric["__name__"] == "prober_step_retries_total" {
			out[string(s.Metric["flow"])+"/"+string(s.Metric["step"])] = float64(s.Value)
		}
	}
	return out
}

// withRetry is shapes with a retry: block on checkout's pay.
func withRetry(shapes []FlowShape) []FlowShape {
	out := cloneShapes(shapes)
	for i := range out {
		if out[i].Name == "checkout" {
			out[i].Steps[2].Retry = true
		}
	}
	return out
}

// cloneShapes copies shapes and their steps.
func cloneShapes(shapes []FlowShape) []FlowShape {
	out := append([]FlowShape(nil), shapes...)
	for i := range out {
		out[i].Steps = append([]StepShape(nil), out[i].Steps...)
	}
	return out
}

// A step with a retry: block has a retry counter from the start, at both
// levels, which counts the requests its retry: sent again (a 429 then a
// 200: one); until polls are not retries. A step or flow without a
// retry: block has no such series, and no side record: its memory is as
// before. The series calculator counts the one series.
func TestStepRetries(t *testing.T) {
	for _, detailed := range []bool{false, true} {
		base := defaultShapes()
		for i := range base {
			base[i].Detailed = detailed
		}
		shapes := withRetry(base)
		before, after := SeriesOf(base), SeriesOf(shapes)
		if after["checkout"] != before["checkout"]+1 || after["health"] != before["health"] {
			t.Errorf("detailed %v: SeriesOf with pay's retry %v, without %v: want checkout +1, health the same", detailed, after, before)
		}

		reg, m := newTestMetrics(t)
		m.SetFlows(shapes)
		if got := scrapeCounts(t, reg, m); !maps.Equal(got, after) {
			t.Errorf("detailed %v: scrape %v, calculator %v", detailed, got, after)
		}
		want := map[string]float64{"checkout/pay": 0}
		if got := stepRetriesOf(t, reg, m); !maps.Equal(got, want) {
			t.Fatalf("detailed %v: before runs %v, want %v", detailed, got, want)
		}
		if m.flow("health").rare != nil {
			t.Errorf("health, no retry: block, has a rare record")
		}

		// pay: 429, then 200.
		r := passingRun()
		r.Steps[2].Attempts, r.Steps[2].Retries = 2, 1
		m.Observe(r)
		want["checkout/pay"] = 1
		if got := stepRetriesOf(t, reg, m); !maps.Equal(got, want) {
			t.Errorf("detailed %v: after a 429 then a 200: %v, want %v", detailed, got, want)
		}
		// Polls (until) are attempts, not retries; a step without a
		// retry: block is not counted even if a run says so.
		r = passingRun()
		r.Steps[2].Attempts = 5
		r.Steps[1].Attempts, r.Steps[1].Retries = 3, 2
		m.Observe(r)
		if got := stepRetriesOf(t, reg, m); !maps.Equal(got, want) {
			t.Errorf("detailed %v: after polls: %v, want %v", detailed, got, want)
		}
		if live := m.Series(); !maps.Equal(live, after) {
			t.Errorf("detailed %v: Series %v, want %v", detailed, live, after)
		}

		// A reload keeps the count; one that drops the retry: block
		// drops the series.
		m.SetFlows(shapes)
		if got := stepRetriesOf(t, reg, m); !maps.Equal(got, want) {
			t.Errorf("detailed %v: after a reload: %v, want %v", detailed, got, want)
		}
		m.SetFlows(base)
		if got := stepRetriesOf(t, reg, m); len(got) != 0 {
			t.Errorf("detailed %v: retry: removed, still %v", detailed, got)
		}
		if m.flow("checkout").rare != nil {
			t.Errorf("detailed %v: retry: removed, checkout keeps a rare record", detailed)
		}
	}
}

// A tool that never announces its flows (ad hoc) gets the counter with
// the first retry, as its other series.
func TestStepRetriesAdhoc(t *testing.T) {
	reg, m := newTestMetrics(t)
	m.Observe(passingRun())
	if got := stepRetriesOf(t, reg, m); len(got) != 0 {
		t.Fatalf("no retry yet: %v", got)
	}
	r := passingRun()
	r.Steps[2].Attempts, r.Steps[2].Retries = 3, 2
	m.Observe(r)
	if got, want := stepRetriesOf(t, reg, m), map[string]float64{"checkout/pay": 2}; !maps.Equal(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
}
