package promrules

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/golden"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/rulekind"
	"github.com/prober-dev/prober/internal/store"
)

// compareRules are judged by the engine and by Prometheus over the same
// runs. for and keep_firing_for are 0: the engine's verdict is the
// condition now (the alert lifecycle applies for), as an alert without for
// fires at once.
const compareRules = `
  - name: pay_slow
    latency: {flow: checkout, step: pay, quantile: 0.9, above: 2s, window: 5m, min_samples: 5}
    for: 0s
    keep_firing_for: 0s
  - name: checkout_failing
    flow_failing: {flows: [checkout], min_regions: 2}
    for: 0s
    keep_firing_for: 0s
  - name: gateway
    dependency_success: {dependency: bank-gateway, below: 90%, window: 5m, min_calls: 3, min_failures: 2}
    for: 0s
    keep_firing_for: 0s
`

// compareRun is what one region's run at a minute does: pay passes or
// fails (its gateway call with it) and takes pay.
type compareRun struct {
	payOK bool
	pay   time.Duration
}

// TestEngineAgreesWithPrometheus runs one scenario through the engine (runs
// in the in-process store) and through `promtool test rules` (the exported
// rules over the series a prober exports for the same runs): the alerts
// Prometheus fires at each evaluation time must be the engine's Firing
// verdicts, labels and severity included.
func TestEngineAgreesWithPrometheus(t *testing.T) {
	bin := promtool(t)
	cfg := load(t, compareRules, "")
	regions := []string{"a", "b"}
	// One run a minute in each region: healthy, then pay slow in a (15-24),
	// then pay failing in a (25-34), then in both (35-40), then healthy.
	scenario := func(region string, k int) compareRun {
		switch {
		case k >= 15 && k < 25 && region == "a":
			return compareRun{payOK: true, pay: 3 * time.Second}
		case k >= 25 && k < 35 && region == "a", k >= 35 && k <= 40:
			return compareRun{payOK: false, pay: 500 * time.Millisecond}
		}
		return compareRun{payOK: true, pay: 500 * time.Millisecond}
	}
	const minutes = 50
	evals := []int{12, 22, 32, 39, 49}
	// What the scenario means, so that agreeing on nothing cannot pass.
	want := map[int][]string{
		12: nil,
		22: {"pay_slow"},
		32: {"checkout_failing/warning", "gateway"},
		39: {"checkout_failing/critical", "gateway"},
		49: nil,
	}

	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	at := func(k int) time.Time { return base.Add(time.Duration(k) * time.Minute) }
	runOf := func(region string, k int) *result.Run {
		c := scenario(region, k)
		start := at(k).Add(-2 * time.Second) // ends just before minute k: in minute k's sample
		pay := result.Step{Name: "pay", Dependency: "bank-gateway", Status: result.Passed, Class: result.OK, Duration: c.pay}
		run := &result.Run{ID: fmt.Sprintf("%s-%d", region, k), Flow: "checkout", Region: region, Start: start,
			Duration: time.Second, Status: result.Passed, Class: result.OK,
			TraceID: fmt.Sprintf("%032x", k*16+len(region))}
		if !c.payOK {
			pay.Status, pay.Class = result.Failed, result.HTTP5xx
			pay.Failures = []result.Failure{{Message: "status == 200: got 502"}}
			run.Status, run.Class, run.FailedStep = result.Failed, result.HTTP5xx, "pay"
		}
		run.Steps = []result.Step{{Name: "login", Status: result.Passed, Class: result.OK, Duration: 100 * time.Millisecond}, pay}
		return run
	}
	flows := map[string]*config.Flow{}
	for _, f := range cfg.Flows {
		flows[f.Name] = f
	}
	maxAge := func(flow string) time.Duration { return rulekind.Freshness(flows[flow]) }

	// The engine: each evaluation time over a store holding the runs
	// before it.
	engine := map[int][]alertLabels{}
	for _, e := range evals {
		st := store.New(100)
		for k := 1; k <= e; k++ {
			for _, reg := range regions {
				st.Observe(runOf(reg, k))
			}
		}
		eng := golden.NewEngine(&cfg.Alerting, golden.NewStoreSource(st, maxAge, nil), golden.Options{})
		var got []string
		for _, ev := range eng.Evaluate(context.Background(), at(e)) {
			if ev.Err != nil {
				t.Fatalf("at %dm: %s: %v", e, ev.Rule.Name, ev.Err)
			}
			if ev.Status != golden.Firing {
				continue
			}
			l := maps.Clone(ev.Labels)
			l["severity"] = ev.Severity
			engine[e] = append(engine[e], alertLabels{ev.Rule.Name, l})
			name := ev.Rule.Name
			if ev.Rule.Kind == config.FlowFailing {
				name += "/" + ev.Severity
			}
			got = append(got, name)
		}
		slices.Sort(got)
		if !slices.Equal(got, want[e]) {
			t.Errorf("engine at %dm fires %v, want %v", e, got, want[e])
		}
	}

	// Prometheus: the series the probers export for the same runs, one
	// sample a minute (sample k after run k), and the alerts expected
	// where the engine fires.
	series := map[string][]string{}
	add := func(s string, k int, v float64) {
		if series[s] == nil {
			series[s] = slices.Repeat([]string{"_"}, minutes+1)
		}
		series[s][k] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	for _, reg := range regions {
		var ok, failed, within, count, calls, callsFailed float64
		for k := 0; k <= minutes; k++ {
			if k > 0 {
				r := runOf(reg, k)
				if r.OK() {
					ok++
				} else {
					failed++
				}
				pay := r.Steps[1]
				count++
				if pay.Duration <= 2*time.Second {
					within++
				}
				calls++
				if pay.Status != result.Passed {
					callsFailed++
				}
				add(fmt.Sprintf(`prober_last_run_success{flow="checkout",region=%q}`, reg), k, map[bool]float64{true: 1}[r.OK()])
				add(fmt.Sprintf(`prober_last_run_timestamp_seconds{flow="checkout",region=%q}`, reg), k, float64(k*60-2))
			}
			add(fmt.Sprintf(`prober_runs_total{flow="checkout",region=%q,result="success"}`, reg), k, ok)
			add(fmt.Sprintf(`prober_runs_total{flow="checkout",region=%q,result="failure"}`, reg), k, failed)
			add(fmt.Sprintf(`prober_step_duration_seconds_bucket{flow="checkout",region=%q,step="pay",le="2"}`, reg), k, within)
			add(fmt.Sprintf(`prober_step_duration_seconds_bucket{flow="checkout",region=%q,step="pay",le="+Inf"}`, reg), k, count)
			add(fmt.Sprintf(`prober_step_duration_seconds_count{flow="checkout",region=%q,step="pay"}`, reg), k, count)
			add(fmt.Sprintf(`prober_dependency_calls_total{dependency="bank-gateway",region=%q,result="success"}`, reg), k, calls-callsFailed)
			add(fmt.Sprintf(`prober_dependency_calls_total{dependency="bank-gateway",region=%q,result="failure"}`, reg), k, callsFailed)
		}
	}
	runPromtool(t, bin, cfg, series, evals, engine)
}

// TestCertExpiryAgreesWithPrometheus: cert_expiry judged by the engine
// from the certificates runs recorded and by Prometheus from the gauge of
// the same not-afters agree as region a's certificate is replaced by ones
// expiring sooner (region b's stays far: the earliest counts).
func TestCertExpiryAgreesWithPrometheus(t *testing.T) {
	bin := promtool(t)
	cfg := load(t, `
  - name: cert
    cert_expiry: {flows: [checkout], steps: [pay], within: 14d, critical: 3d}
    for: 0s
    keep_firing_for: 0s
`, "")
	const day = 24 * time.Hour
	notAfter := func(region string, k int) time.Duration { // from the start
		switch {
		case region == "b":
			return 60 * day
		case k < 10:
			return 20 * day
		case k < 20:
			return 10 * day
		}
		return 2 * day
	}
	const minutes = 30
	evals := []int{8, 15, 25}
	want := map[int]string{8: "", 15: "warning", 25: "critical"}
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	at := func(k int) time.Time { return base.Add(time.Duration(k) * time.Minute) }
	engine := map[int][]alertLabels{}
	for _, e := range evals {
		st := store.New(100)
		for k := 1; k <= e; k++ {
			for _, reg := range []string{"a", "b"} {
				st.Observe(&result.Run{Flow: "checkout", Region: reg, Start: at(k).Add(-2 * time.Second), Duration: time.Second,
					Status: result.Passed, Class: result.OK, Steps: []result.Step{
						{Name: "login", URL: "https://shop.test/api/login", Status: result.Passed, Class: result.OK},
						{Name: "pay", URL: "https://shop.test/api/pay", Status: result.Passed, Class: result.OK, Attrs: []result.Attr{
							{Name: "cert.not_after", Value: base.Add(notAfter(reg, k)).Format(time.RFC3339)}}},
					}})
			}
		}
		eng := golden.NewEngine(&cfg.Alerting, golden.NewStoreSource(st, nil, nil), golden.Options{})
		got := ""
		for _, ev := range eng.Evaluate(context.Background(), at(e)) {
			if ev.Err != nil || ev.Status == golden.Unknown {
				t.Fatalf("at %dm: %s %q %v", e, ev.Status, ev.Value, ev.Err)
			}
			if ev.Status == golden.Firing {
				l := maps.Clone(ev.Labels)
				l["severity"] = ev.Severity
				engine[e] = append(engine[e], alertLabels{ev.Rule.Name, l})
				got += ev.Severity
			}
		}
		if got != want[e] {
			t.Errorf("engine at %dm fires %q, want %q", e, got, want[e])
		}
	}
	series := map[string][]string{}
	for _, reg := range []string{"a", "b"} {
		s := fmt.Sprintf(`prober_cert_expiry_timestamp_seconds{flow="checkout",step="pay",host="shop.test",region=%q}`, reg)
		series[s] = []string{"_"}
		for k := 1; k <= minutes; k++ {
			series[s] = append(series[s], strconv.FormatFloat(notAfter(reg, k).Seconds(), 'f', -1, 64))
		}
	}
	runPromtool(t, bin, cfg, series, evals, engine)
}

// alertLabels is one alert the engine fires: its rule and labels.
type alertLabels struct {
	rule   string
	labels map[string]string
}

// runPromtool writes the rules generated from cfg (annotations left out:
// verdicts are compared, not texts) and a unit test of series whose
// expected alerts are the engine's, and runs promtool on them.
func runPromtool(t *testing.T, bin string, cfg *config.Config, series map[string][]string, evals []int, engine map[int][]alertLabels) {
	t.Helper()
	f, err := Rules(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Groups {
		for j := range f.Groups[i].Rules {
			f.Groups[i].Rules[j].Annotations = nil
		}
	}
	rules, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	type expAlert struct {
		ExpLabels map[string]string `yaml:"exp_labels"`
	}
	type alertTest struct {
		EvalTime  string     `yaml:"eval_time"`
		Alertname string     `yaml:"alertname"`
		ExpAlerts []expAlert `yaml:"exp_alerts"`
	}
	type inputSeries struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	var in []inputSeries
	for _, s := range slices.Sorted(maps.Keys(series)) {
		in = append(in, inputSeries{s, strings.Join(series[s], " ")})
	}
	var tests []alertTest
	for _, e := range evals {
		for _, r := range cfg.Alerting.Rules {
			at := alertTest{EvalTime: fmt.Sprintf("%dm", e), Alertname: r.Name, ExpAlerts: []expAlert{}}
			for _, a := range engine[e] {
				if a.rule == r.Name {
					at.ExpAlerts = append(at.ExpAlerts, expAlert{a.labels})
				}
			}
			tests = append(tests, at)
		}
	}
	unit, err := yaml.Marshal(map[string]any{
		"rule_files":          []string{"rules.yaml"},
		"evaluation_interval": "1m",
		"group_eval_order":    []string{RecordingGroup, AlertingGroup},
		"tests":               []any{map[string]any{"interval": "1m", "input_series": in, "alert_rule_test": tests}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"rules.yaml": rules, "compare.test.yaml": unit} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "test", "rules", "compare.test.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("Prometheus disagrees with the engine (promtool test rules: %v):\n%s", err, out)
	}
}
