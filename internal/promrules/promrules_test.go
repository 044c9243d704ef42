package promrules

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/daemon"
	"github.com/prober-dev/prober/internal/rulekind"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// Flows with different schedules, so that freshness bounds differ.
var testFlows = map[string]string{
	"flows/checkout.yaml": `name: checkout
every: 60s
timeout: 30s
steps:
  - name: login
    request: {method: POST, url: "{{base}}/api/login"}
  - name: pay
    dependency: bank-gateway
    request: {method: POST, url: "{{base}}/api/pay"}
`,
	"flows/health.yaml": `name: shop_health
every: 30s
timeout: 10s
steps:
  - name: healthz
    request: {url: "{{base}}/healthz"}
`,
	"flows/nightly.yaml": `name: nightly_report
cron: "0 2 * * 1-5"
timeout: 5m
retries: 0
steps:
  - name: report
    request: {url: "{{base}}/report"}
`,
}

// load builds a configuration with the test flows and rules (the YAML
// under rules:) plus extra top-level sections.
func load(t *testing.T, rules, extra string) *config.Config {
	t.Helper()
	fsys := fstest.MapFS{"probes.yaml": {Data: []byte(`vars: {base: "http://shop.test"}
flows: [flows/checkout.yaml, flows/health.yaml, flows/nightly.yaml]
prometheus: {url: "http://127.0.0.1:9090"}
` + extra + "rules:\n" + rules)}}
	for name, body := range testFlows {
		fsys[name] = &fstest.MapFile{Data: []byte(body)}
	}
	cfg, err := config.Load(fsys, "probes.yaml", config.Options{SkipSecrets: true, Notifiers: daemon.NotifierKinds()})
	if err != nil {
		t.Fatalf("loading the test config: %v", err)
	}
	return cfg
}

// goldenCases cover every rule kind and its variants.
var goldenCases = []struct {
	name, rules, extra string
}{
	{name: "flow_failing_quorum", rules: `
  - name: checkout_failing
    flow_failing: {flows: [checkout], min_regions: 2, regions: [eu-west-1, us-east-1, ap-south-1], degraded_severity: warning}
    for: 90s
    keep_firing_for: 2m
    group: checkout
    labels: {team: payments, flow: ignored}
`},
	{name: "flow_failing_every_flow", rules: `
  - name: any_failing
    flow_failing: {}
    for: 2m
    keep_firing_for: 0s
    severity: error
`},
	{name: "burn_rate_default_windows", rules: `
  - name: checkout_slo
    burn_rate: {flow: checkout, slo: 99.5%}
`},
	{name: "burn_rate_custom_windows", rules: `
  - name: checkout_slo
    burn_rate:
      flow: checkout
      slo: 0.99
      min_runs: 20
      windows:
        - {long: 1h, short: 5m, factor: 10}
        - {long: 12h, short: 1h, factor: 2, severity: info}
    for: 2m
`},
	{name: "dependency_success", rules: `
  - name: gateway_success
    dependency_success: {dependency: bank-gateway, below: 95%, window: 10m, min_calls: 4, min_failures: 3}
    for: 1m
    group: checkout
`},
	{name: "dependency_success_quorum", rules: `
  - name: gateway_success
    dependency_success: {dependency: bank-gateway, below: 95%, min_regions: 2, regions: [eu-west-1, us-east-1, ap-south-1], degraded_severity: warning}
    group: checkout
`},
	{name: "latency_step", rules: `
  - name: pay_latency
    latency: {flow: checkout, step: pay, quantile: 0.95, above: 2s, window: 10m, min_samples: 5}
    severity: warning
`},
	{name: "latency_flow", rules: `
  - name: checkout_latency
    latency: {flow: checkout, quantile: 0.999, above: 1500ms}
    for: 0s
`},
	{name: "promql_above", rules: `
  - name: shop_errors
    promql: {query: 'sum(rate(shop_http_requests_total{code=~"5.."}[5m])) / sum(rate(shop_http_requests_total[5m]))', above: 0.05}
    severity: warning
    summary: Shop 5xx
`},
	{name: "promql_not_equal", rules: `
  - name: replicas
    promql: {query: 'count by (job) (up{job="shop"} == 1)', op: "!=", value: 3}
`},
	{name: "absent_regions", rules: `
  - name: region_silent
    absent: {regions: [eu-west-1, us-east-1]}
    for: 2m
`},
	{name: "absent_seen_regions", rules: `
  - name: region_silent
    absent: {flows: [checkout, shop_health]}
`},
	{name: "cert_expiry", rules: `
  - name: cert_expiring
    cert_expiry: {flows: [checkout], steps: [pay], within: 21d, critical: 2d}
    labels: {team: payments}
`},
	{name: "links_and_labels", extra: `alerting:
  links:
    dashboard: "https://grafana.test/d/prober/synthetics?var-flow={flow}&rule={rule}"
    logs: "https://logs.test/search?q=trace_id%3D{trace_id}"
    runbook: "https://wiki.test/runbooks/{rule}"
    region-view: "https://grafana.test/d/region?var-region={region}"
`, rules: `
  - name: checkout_failing
    flow_failing: {flows: [checkout]}
    labels: {team: payments, tier: critical}
  - name: gateway
    dependency_success: {dependency: bank-gateway, below: 0.9}
  - name: silent
    absent: {regions: [eu-west-1]}
`},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Generate(load(t, tc.rules, tc.extra))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", tc.name+".yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs from the output (go test -update rewrites it):\n%s", path, got)
			}
		})
	}
}

// promtool finds promtool, or skips; with PROBER_REQUIRE_PROMETHEUS set
// (scripts/test.sh) a missing one fails.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("PROBER_REQUIRE_PROMETHEUS") != "" {
			t.Fatal("promtool not found; scripts/test.sh installs Debian's prometheus package")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	return p
}

func checkRules(t *testing.T, files ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), append([]string{"check", "rules"}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// TestPromtoolCheckGolden: every golden output (every kind, every variant)
// is a valid rule file.
func TestPromtoolCheckGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.yaml"))
	if len(files) < len(goldenCases) {
		t.Fatalf("%d golden files for %d cases", len(files), len(goldenCases))
	}
	checkRules(t, files...)
}

// TestPromtoolCheckShipped: the rules of the shipped probes.yaml, and of a
// configuration using every kind at once.
func TestPromtoolCheckShipped(t *testing.T) {
	promtool(t)
	dir := t.TempDir()
	shipped, err := config.Load(os.DirFS("../.."), "probes.yaml", config.Options{SkipSecrets: true, Notifiers: daemon.NotifierKinds(), StepKinds: daemon.StepKinds()})
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, tc := range goldenCases {
		if tc.extra == "" {
			// Rule names must be unique in one config.
			all.WriteString(strings.ReplaceAll(tc.rules, "- name: ", "- name: "+tc.name+"_"))
		}
	}
	every := load(t, all.String(), "")
	kinds := map[config.RuleKind]bool{}
	for _, r := range every.Alerting.Rules {
		kinds[r.Kind] = true
	}
	if len(kinds) != len(rulekind.Kinds()) {
		t.Fatalf("the every-kind config has kinds %v", kinds)
	}
	var files []string
	for name, cfg := range map[string]*config.Config{"shipped.yaml": shipped, "every.yaml": every} {
		b, err := Generate(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	checkRules(t, files...)
}

// TestShippedRulesFile: deploy/prometheus/prober.rules.yml is what
// `prober rules` prints for the shipped probes.yaml.
func TestShippedRulesFile(t *testing.T) {
	cfg, err := config.Load(os.DirFS("../.."), "probes.yaml", config.Options{SkipSecrets: true, Notifiers: daemon.NotifierKinds(), StepKinds: daemon.StepKinds()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "deploy", "prometheus", "prober.rules.yml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s is out of date: run `prober rules --out %s` (or go test ./internal/promrules -update)", path, path)
	}
}

// TestPromtoolUnit runs promtool's rule unit tests (testdata/unit/*.test.yaml)
// over the rules generated from testdata/unit/probes.yaml: the alerts
// fire when they should, with the right labels and text, and not when
// they should not.
func TestPromtoolUnit(t *testing.T) {
	bin := promtool(t)
	cfg, err := config.Load(os.DirFS(filepath.Join("testdata", "unit")), "probes.yaml", config.Options{SkipSecrets: true, Notifiers: daemon.NotifierKinds()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, _ := filepath.Glob(filepath.Join("testdata", "unit", "*.test.yaml"))
	if len(tests) == 0 {
		t.Fatal("no unit tests")
	}
	var args []string
	for _, src := range tests {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Base(src))
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, dst)
	}
	out, err := exec.Command(bin, append([]string{"test", "rules"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s\nrules:\n%s", err, out, b)
	}
	t.Logf("%s", out)
}

func TestFreshness(t *testing.T) {
	cfg := load(t, "", "")
	want := map[string]time.Duration{
		"checkout":       2*time.Minute + 2*30*time.Second, // two intervals, timeout and one retry's
		"shop_health":    time.Minute + 2*10*time.Second,
		"nightly_report": 2*72*time.Hour + 5*time.Minute, // longest gap: Friday 02:00 to Monday 02:00
	}
	for _, f := range cfg.Flows {
		if got := rulekind.Freshness(f); got != want[f.Name] {
			t.Errorf("Freshness(%s) = %s, want %s", f.Name, got, want[f.Name])
		}
	}
}

func TestErrors(t *testing.T) {
	if _, err := Generate(nil); err == nil {
		t.Error("nil config: no error")
	}
	cfg := &config.Config{Alerting: config.Alerting{Rules: []*config.Rule{
		{Name: "a", Kind: config.BurnRate},
		{Name: "b", Kind: "nope"},
		{Name: "c", Kind: config.PromQL, PromQL: &config.PromQLRule{Query: "up", Op: "~"}},
	}}}
	_, err := Generate(cfg)
	if err == nil {
		t.Fatal("bad rules: no error")
	}
	for _, s := range []string{"rule a: kind burn_rate has no burn_rate settings", `rule b: unknown kind "nope"`, `rule c: unknown comparison "~"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

// TestPrometheusExampleConfig: deploy/prometheus/prometheus.yml is a valid
// configuration, its rule file included.
func TestPrometheusExampleConfig(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "config", filepath.Join("..", "..", "deploy", "prometheus", "prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}
