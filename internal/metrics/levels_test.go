package metrics

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// scrapeCounts counts the sample lines of each flow in a real /metrics
// scrape (text format), by the flow label.
func scrapeCounts(t *testing.T, reg *prometheus.Registry, m *Metrics) map[string]int {
	t.Helper()
	_, body := scrape(t, reg, m, "")
	out := map[string]int{}
	for _, smp := range decode(t, body, expfmt.NewFormat(expfmt.TypeTextPlain)) {
		if f := string(smp.Metric["flow"]); f != "" && strings.HasPrefix(string(smp.Metric["__name__"]), "prober_") {
			out[f]++
		}
	}
	return out
}

// defaultShapes are the shipped flows at the default level: checkout's pay
// with the pay_latency rule's 2s bound, both flows retrying.
func defaultShapes() []FlowShape {
	c, h := checkoutShape(), healthShape()
	c.Detailed, h.Detailed = false, false
	c.Retries, h.Retries = true, true
	c.Steps = append([]StepShape(nil), c.Steps...)
	c.Steps[2].Bounds = []float64{2}
	return []FlowShape{c, h}
}

// The default level exports what the rules, the dashboard and exemplars
// need and no more (issue 20): per-step outcomes, the flow's histogram in
// coarse buckets, a step histogram only where a rule reads it; the detailed
// level everything. Series (the calculator's count) equals a real scrape's
// count at both levels, before and after runs.
func TestLevels(t *testing.T) {
	detailed := defaultShapes()
	for i := range detailed {
		detailed[i].Detailed = true
	}
	for _, c := range []struct {
		name                 string
		shapes               []FlowShape
		checkout, health     int // series before any run
		present, absent      []string
		checkoutAfterFailing int
	}{
		{name: "default", shapes: defaultShapes(),
			// runs 2, last success/run/since 3, retries 1, step ok 5,
			// dependency calls 2, flow histogram 4+1 buckets +2, pay's
			// 4+1+1 (le=2) +2.
			checkout: 28,
			// runs 2, gauges 3, retries 1, step ok 1, histogram 7.
			health: 14,
			present: []string{
				`prober_step_duration_seconds_bucket{flow="checkout",region="eu-west-1",step="pay",le="2"}`,
				`prober_flow_duration_seconds_bucket{flow="checkout",region="eu-west-1",le="0.25"}`,
				`prober_step_runs_total{class="swallowed_error",flow="checkout",region="eu-west-1",step="pay"}`,
			},
			absent: []string{
				`prober_step_duration_seconds_bucket{flow="checkout",region="eu-west-1",step="login"`,
				`prober_flow_duration_seconds_bucket{flow="checkout",region="eu-west-1",le="0.5"}`,
				`prober_step_phase_seconds`, `prober_run_failures_total`, `prober_dependency_failures_total`,
				`prober_runs_skipped_total`,
			},
			// + the step's class, the failure info.
			checkoutAfterFailing: 30,
		},
		{name: "detailed", shapes: detailed,
			checkout: 2 + 3 + 1 + 1 + 16 + 5*(1+16+5) + 2 + 1, // + skipped, pay's le=2
			health:   2 + 3 + 1 + 1 + 16 + 1 + 16 + 5,
			present: []string{
				`prober_step_duration_seconds_bucket{flow="checkout",region="eu-west-1",step="login",le="0.5"}`,
				`prober_step_phase_seconds{flow="checkout",phase="dns",region="eu-west-1",step="pay"}`,
				`prober_run_failures_total{class="swallowed_error",flow="checkout",region="eu-west-1"}`,
				`prober_runs_skipped_total{flow="checkout",region="eu-west-1"}`,
			},
			// + step, flow and dependency class, failure info.
			checkoutAfterFailing: 2 + 3 + 1 + 1 + 16 + 5*(1+16+5) + 2 + 1 + 4,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg, m := newTestMetrics(t)
			m.SetFlows(c.shapes)
			want := map[string]int{"checkout": c.checkout, "health": c.health}
			if got := SeriesOf(c.shapes); !maps.Equal(got, want) {
				t.Errorf("SeriesOf: %v, want %v", got, want)
			}
			if got := scrapeCounts(t, reg, m); !maps.Equal(got, want) {
				t.Errorf("scrape before runs: %v, want %v", got, want)
			}
			m.Observe(passingRun())
			m.Observe(failingRun())
			want["checkout"] = c.checkoutAfterFailing
			got := scrapeCounts(t, reg, m)
			if !maps.Equal(got, want) {
				t.Errorf("scrape after a failing run: %v, want %v", got, want)
			}
			if live := m.Series(); !maps.Equal(live, got) {
				t.Errorf("Series: %v, scrape %v", live, got)
			}
			_, body := scrape(t, reg, m, "")
			text := strings.ReplaceAll(string(body), `le="2.0"`, `le="2"`)
			for _, p := range c.present {
				if !strings.Contains(text, p) {
					t.Errorf("no %s in\n%s", p, text)
				}
			}
			for _, a := range c.absent {
				if strings.Contains(text, a) {
					t.Errorf("%s exported: %s", a, grepLines(text, a))
				}
			}
		})
	}
}

// A coarse histogram's buckets are the full one's at its bounds, counts
// exact; each shows the latest exemplar of the standard buckets it covers,
// and a rule's bound keeps its own count and exemplar.
func TestCoarseBuckets(t *testing.T) {
	full, coarse := histo{}, histo{view: viewCoarse}
	full.setBounds([]float64{2})
	coarse.setBounds([]float64{2})
	coarse.view = viewCoarse
	at := time.Unix(1_800_000_000, 0)
	for i, d := range []float64{.004, .03, .2, .06, 1.5, 1.9, 3, 70} {
		tr := runTrace{id: traceID{1, uint64(i + 1)}, at: at.Add(time.Duration(i) * time.Second).UnixNano(), ok: true}
		full.observe(d, &tr)
		coarse.observe(d, &tr)
	}
	cum := map[float64]uint64{}
	for _, b := range full.dto().GetBucket() {
		cum[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	type want struct {
		cum   uint64
		trace uint64 // traceID.lo of the exemplar, 0 none
	}
	got := map[float64]want{}
	for _, b := range coarse.dto().GetBucket() {
		w := want{cum: b.GetCumulativeCount()}
		if ex := b.GetExemplar(); ex != nil {
			id, _ := parseTraceID(ex.GetLabel()[0].GetValue())
			w.trace = id.lo
		}
		got[b.GetUpperBound()] = w
		if c, ok := cum[b.GetUpperBound()]; !ok || c != w.cum {
			t.Errorf("le=%g: %d, the full histogram %d (%v)", b.GetUpperBound(), w.cum, c, ok)
		}
	}
	wantB := map[float64]want{
		.1:  {3, 4}, // .004, .03, .06: .06's (the 4th) is the latest
		.25: {4, 3},
		1:   {4, 0},
		2:   {6, 0}, // the rule's bound: 1.5 and 1.9, whose exemplar (of le=2.5) went to le=5 with 3s's, the later
		5:   {7, 7},
		// +Inf spelled out for 70s's exemplar.
	}
	for le, w := range wantB {
		if got[le] != w {
			t.Errorf("le=%g: %+v, want %+v", le, got[le], w)
		}
	}
	if len(got) != len(wantB)+1 {
		t.Errorf("buckets %v, want %v and +Inf", got, wantB)
	}
}
