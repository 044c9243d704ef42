package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/daemon"
	"github.com/prober-dev/prober/internal/golden"
	"github.com/prober-dev/prober/internal/metrics"
	"github.com/prober-dev/prober/internal/promrules"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/store"
)

// TestLatencyEngineAndPrometheusAgree (issue 12, item 7): one scenario,
// the shipped checkout with pay at 1.6s for 20 minutes and then at 2.4s,
// through both paths of the shipped pay_latency rule (p95 above 2s over
// 10m): the engine over the store, and the rule `prober rules` exports,
// run by promtool over the series our /metrics exposed after each run.
// Minute by minute they must say the same; quiet at 1.6s, firing at 2.4s.
// Before the threshold became a bucket boundary, Prometheus's
// histogram_quantile read a p95 of about 2.4s out of the (1, 2.5] bucket
// with every pay at 1.6s and fired; the engine did not.
func TestLatencyEngineAndPrometheusAgree(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("PROBER_REQUIRE_PROMETHEUS") != "" {
			t.Fatal("promtool not found; scripts/test.sh installs Debian's prometheus package")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	cfg, err := config.Load(os.DirFS(".."), "probes.yaml", config.Options{SkipSecrets: true, Notifiers: daemon.NotifierKinds(), StepKinds: daemon.StepKinds()})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(cfg.Alerting.Rules, func(r *config.Rule) bool { return r.Name == "pay_latency" })
	if i < 0 {
		t.Fatal("the shipped probes.yaml has no pay_latency rule")
	}
	// The rule's condition is compared, not the alert: for and
	// keep_firing_for are the alert lifecycle's, on both sides.
	rule := *cfg.Alerting.Rules[i]
	rule.For, rule.KeepFiringFor = 0, 0
	lat := rule.Latency
	if lat.Flow != "checkout" || lat.Step != "pay" || lat.Above != 2*time.Second {
		t.Fatalf("pay_latency reads %s/%s above %s; the scenario is written for checkout/pay above 2s", lat.Flow, lat.Step, lat.Above)
	}
	alerting := cfg.Alerting
	alerting.Rules = []*config.Rule{&rule}

	// The engine's path: the daemon's store.
	st := store.New(100)
	engine := golden.NewEngine(&alerting, golden.NewStoreSource(st, func(string) time.Duration { return 5 * time.Minute }, nil), golden.Options{})
	// Prometheus's path: the daemon's metrics, shaped as the daemon shapes them.
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "local", metrics.BuildInfo{Version: "test"})
	m.SetFlows(daemon.Shapes(cfg))
	handler := m.Handler(reg, metrics.HandlerOpts{})

	const minutes, slowFrom = 40, 21
	t0 := time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)
	values := map[string][]string{} // series -> one value a minute, from minute 0
	scrape := func() {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(rec.Body)
		if err != nil {
			t.Fatalf("parsing /metrics: %v", err)
		}
		vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()},
			mfs["prober_step_duration_seconds"], mfs["prober_flow_duration_seconds"])
		if err != nil {
			t.Fatal(err)
		}
		for _, smp := range vec {
			k := smp.Metric.String()
			values[k] = append(values[k], strconv.FormatFloat(float64(smp.Value), 'g', -1, 64))
		}
	}
	scrape() // minute 0: the series exist, at zero
	engineFires := make([]bool, minutes+1)
	for min := 1; min <= minutes; min++ {
		pay := 1600 * time.Millisecond
		if min >= slowFrom {
			pay = 2400 * time.Millisecond
		}
		end := t0.Add(time.Duration(min) * time.Minute)
		r := checkoutRun(end, pay)
		st.Observe(r)
		m.Observe(r)
		scrape()
		for _, ev := range engine.Evaluate(context.Background(), end) {
			if ev.Rule.Name == "pay_latency" && ev.Status == golden.Firing {
				engineFires[min] = true
			}
		}
	}
	// The engine itself: quiet at 1.6s, firing once the 2.4s pays are
	// more than 5% of the window (the first of them, 1 of 10).
	for min := 1; min <= minutes; min++ {
		if want := min >= slowFrom; engineFires[min] != want {
			t.Errorf("engine at minute %d: firing %v, want %v", min, engineFires[min], want)
		}
	}

	// The exported rule, without annotations (the condition is compared).
	rf, err := promrules.Rules(&config.Config{Flows: cfg.Flows, Alerting: alerting})
	if err != nil {
		t.Fatal(err)
	}
	var alertRule *promrules.Rule
	for gi := range rf.Groups {
		for ri := range rf.Groups[gi].Rules {
			if r := &rf.Groups[gi].Rules[ri]; r.Alert == "pay_latency" {
				r.Annotations = nil
				alertRule = r
			}
		}
	}
	if alertRule == nil {
		t.Fatal("no pay_latency alert in the exported rules")
	}
	dir := t.TempDir()
	rules, err := yaml.Marshal(rf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"flow": "checkout", "step": "pay"}
	for k, v := range alertRule.Labels {
		labels[k] = v
	}

	// As our text format spells le ("2"), and as Prometheus 3 stores it
	// (OpenMetrics' "2.0").
	leText := regexp.MustCompile(`le="([0-9]+)"`)
	for _, variant := range []struct {
		name string
		le   func(string) string
	}{
		{"text format", func(s string) string { return s }},
		{"Prometheus 3", func(s string) string { return leText.ReplaceAllString(s, `le="$1.0"`) }},
	} {
		t.Run(variant.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("rule_files: [rules.yaml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n")
			keys := make([]string, 0, len(values))
			for k := range values {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			sawThreshold := false
			for _, k := range keys {
				if len(values[k]) != minutes+1 {
					t.Fatalf("%s has %d values, want %d", k, len(values[k]), minutes+1)
				}
				if strings.Contains(k, `step="pay"`) && strings.Contains(k, `le="2"`) {
					sawThreshold = true
				}
				fmt.Fprintf(&b, "      - series: %q\n        values: %q\n", variant.le(k), strings.Join(values[k], " "))
			}
			if !sawThreshold {
				t.Errorf("/metrics has no le=\"2\" bucket for pay: the threshold is not a bucket boundary")
			}
			b.WriteString("    alert_rule_test:\n")
			for min := 1; min <= minutes; min++ {
				fmt.Fprintf(&b, "      - eval_time: %dm\n        alertname: pay_latency\n", min)
				if !engineFires[min] {
					b.WriteString("        exp_alerts: []\n")
					continue
				}
				b.WriteString("        exp_alerts:\n          - exp_labels:\n")
				for _, k := range slices.Sorted(maps.Keys(labels)) {
					fmt.Fprintf(&b, "              %s: %q\n", k, labels[k])
				}
			}
			test := filepath.Join(dir, strings.ReplaceAll(variant.name, " ", "_")+".test.yaml")
			if err := os.WriteFile(test, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(promtool, "test", "rules", test).CombinedOutput()
			if err != nil {
				t.Errorf("the exported rule and the engine disagree (promtool expects what the engine said):\n%s\nrules:\n%s", out, rules)
			}
		})
	}
}

// checkoutRun is a passing run of the shipped checkout ending at end, with
// pay taking pay.
func checkoutRun(end time.Time, pay time.Duration) *result.Run {
	steps := []struct {
		name, dep string
		d         time.Duration
	}{{"login", "", 20 * time.Millisecond}, {"create_order", "", 30 * time.Millisecond}, {"pay", "bank-gateway", pay},
		{"confirm", "", 300 * time.Millisecond}}
	var total time.Duration
	for _, s := range steps {
		total += s.d
	}
	start := end.Add(-total - 10*time.Millisecond)
	r := &result.Run{Flow: "checkout", Region: "local", TraceID: fmt.Sprintf("%032x", end.Unix()), Planned: start, Start: start,
		Duration: total, Status: result.Passed, Class: result.OK}
	at := start
	for _, s := range steps {
		r.Steps = append(r.Steps, result.Step{Name: s.name, Dependency: s.dep, Status: result.Passed, Class: result.OK,
			Start: at, Duration: s.d, Attempts: 1})
		at = at.Add(s.d)
	}
	r.Steps = append(r.Steps, result.Step{Name: "cancel_order", Cleanup: true, Status: result.Passed, Class: result.OK,
		Start: at, Duration: 10 * time.Millisecond, Attempts: 1})
	return r
}
