package daemon

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/store"
)

func TestLatencySamples(t *testing.T) {
	lat := func(flow string, w time.Duration) *config.Rule {
		return &config.Rule{Name: "slow_" + flow, Kind: config.Latency, Latency: &config.LatencyRule{Flow: flow, Step: "pay", Quantile: .95, Window: w}}
	}
	tests := []struct {
		name  string
		rules []*config.Rule
		flows []string
		age   time.Duration
	}{
		{"no rules: no samples, not every flow's", nil, []string{}, store.DefaultSampleAge},
		{"other kinds read counts", []*config.Rule{{Name: "x", Kind: config.FlowFailing, FlowFailing: &config.FlowFailingRule{}}, nil}, []string{}, store.DefaultSampleAge},
		{"latency rules name their flows once", []*config.Rule{lat("checkout", 10*time.Minute), lat("search", 5*time.Minute), lat("checkout", 30*time.Minute)},
			[]string{"checkout", "search"}, store.DefaultSampleAge},
		{"a window over an hour keeps that long", []*config.Rule{lat("checkout", 3*time.Hour)}, []string{"checkout"}, 3 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{Alerting: config.Alerting{Rules: tt.rules}}
			flows, age := latencySamples(cfg)
			if flows == nil || !slices.Equal(flows, tt.flows) || age != tt.age {
				t.Errorf("got %#v for %s, want %#v for %s", flows, age, tt.flows, tt.age)
			}
		})
	}
}

// TestServeSamplesOnlyLatencyFlows: through the daemon, the store keeps
// durations for the flow a latency rule reads, not for the others, and a
// reload that removes the rule drops them.
func TestServeSamplesOnlyLatencyFlows(t *testing.T) {
	withRule := probes("health", "other") + `
notifiers: {console: {type: console}}
alerting:
  state_dir: ` + filepath.ToSlash(t.TempDir()) + `
  evaluation_interval: 200ms
rules:
  - name: health_slow
    latency: {flow: health, step: healthz, quantile: 0.95, above: 5s, window: 10m}
`
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":       withRule,
		"flows/health.yaml": healthFlow("health"),
		"flows/other.yaml":  healthFlow("other"),
	}})
	f.serve()
	st := f.d.Store()
	samples := func(flow string) int {
		_, n := st.Slower(flow, "healthz", 0, time.Hour, time.Now().Add(time.Second))
		return n
	}
	waitFor(t, 10*time.Second, "health's durations sampled", func() bool { return samples("health") > 0 })
	if st.Latest("other") == nil {
		waitFor(t, 10*time.Second, "a run of other", func() bool { return st.Latest("other") != nil })
	}
	if n := samples("other"); n != 0 {
		t.Errorf("other has %d duration samples; no rule reads them", n)
	}
	f.write(map[string]string{"probes.yaml": strings.Replace(withRule, "health_slow", "health_failing", 1)[:strings.Index(withRule, "  - name: health_slow")] +
		"  - name: health_failing\n    flow_failing: {flows: [health]}\n"})
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := samples("health"); n != 0 {
		t.Errorf("the latency rule is gone but health keeps %d samples", n)
	}
}

// TestShapesTakeLatencyThresholds: the metrics shapes carry each latency
// rule's threshold as a bucket boundary of the histogram the rule reads
// (a step's, or the flow's), and nothing for flows and steps no rule reads.
func TestShapesTakeLatencyThresholds(t *testing.T) {
	lat := func(flow, step string, above time.Duration) *config.Rule {
		return &config.Rule{Name: "slow", Kind: config.Latency, Latency: &config.LatencyRule{Flow: flow, Step: step, Quantile: .95, Above: above}}
	}
	flow := func(name string, steps ...string) *config.Flow {
		f := &config.Flow{Name: name, FlowDef: &config.FlowDef{}}
		for _, s := range steps {
			f.Steps = append(f.Steps, &config.Step{StepDef: &config.StepDef{Name: s}})
		}
		return f
	}
	cfg := &config.Config{
		Flows: []*config.Flow{flow("checkout", "login", "pay"), flow("health", "healthz")},
		Alerting: config.Alerting{Rules: []*config.Rule{
			lat("checkout", "pay", 2*time.Second), lat("checkout", "pay", 1500*time.Millisecond),
			lat("checkout", "", 5*time.Second), lat("search", "pay", time.Second), nil,
			{Name: "f", Kind: config.FlowFailing, FlowFailing: &config.FlowFailingRule{}},
		}},
	}
	got := map[string][]float64{}
	for _, s := range Shapes(cfg) {
		if len(s.Bounds) > 0 {
			got[s.Name] = s.Bounds
		}
		for _, st := range s.Steps {
			if len(st.Bounds) > 0 {
				got[s.Name+"/"+st.Name] = st.Bounds
			}
		}
	}
	want := map[string][]float64{"checkout": {5}, "checkout/pay": {2, 1.5}}
	if len(got) != len(want) || !slices.Equal(got["checkout"], want["checkout"]) || !slices.Equal(got["checkout/pay"], want["checkout/pay"]) {
		t.Errorf("bounds %v, want %v", got, want)
	}
}
