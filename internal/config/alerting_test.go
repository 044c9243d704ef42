package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const alertFlow = `name: checkout
steps:
  - name: pay
    dependency: bank-gateway
    request: {url: "{{base}}/pay"}
`

// probesWith is baseProbes plus alerting sections.
func probesWith(extra string) string {
	return `vars: {base: "http://shop.test"}
secrets:
  TOKEN: {env: TOKEN}
  PD: {env: PD_KEY, optional: true}
flows: [f.yaml]
` + extra
}

func TestAlertingLoads(t *testing.T) {
	cfg, errs := loadFiles(t, map[string]string{"f.yaml": alertFlow, "probes.yaml": probesWith(`
notifiers:
  pd: {type: pagerduty, routing_key: "{{secret:TOKEN}}"}
  slack: {type: slack, token: "{{secret:TOKEN}}", channel: "#alerts", url: "http://127.0.0.1:1/api"}
  off: {type: pagerduty, routing_key: "{{secret:PD}}"}
  console: {type: console}
alerting:
  state_dir: /var/lib/prober
  evaluation_interval: 2s
  repeat_interval: 0s
  links: {logs: "https://logs.test/search?q={trace_id}", dash: "https://grafana.test/d/x?var-flow={flow}"}
  heartbeat: {url: "https://hc.test/ping/{{secret:TOKEN}}", interval: 30s}
  silences:
    - {matchers: {flow: checkout}, starts: 2026-11-23T00:00:00Z, ends: 2026-11-24T00:00:00Z, comment: deploy}
  maintenance:
    - {matchers: {rule: slo}, cron: "0 2 * * SUN", duration: 2h, timezone: Europe/Berlin}
prometheus: {url: "http://127.0.0.1:9090", basic_auth: {user: u, password: "{{secret:TOKEN}}"}}
signals:
  - {name: gateway success, dependency: bank-gateway}
  - {name: shop errors, promql: "sum(rate(x[5m]))", unit: ""}
rules:
  - name: failing
    flow_failing: {flows: [checkout], min_regions: 2, regions: [a, b, c]}
    for: 30s
    group: checkout
    notify: [pd, off]
  - name: gateway
    dependency_success: {dependency: bank-gateway, below: 95%, window: 10m, min_regions: 2, regions: [a, b, c], degraded_severity: info}
    inhibits: [failing]
  - name: slo
    burn_rate: {flow: checkout, slo: 99.5%}
  - name: slow
    latency: {flow: checkout, step: pay, above: 2s, quantile: 0.99}
    severity: warning
  - name: errors
    promql: {query: "sum(rate(x[5m]))", above: 0.05}
`)})
	if errs != nil {
		t.Fatalf("errors: %v", errs)
	}
	a := cfg.Alerting
	if a.StateDir != "/var/lib/prober" || a.EvaluationInterval != 2*time.Second || a.RepeatInterval != 0 {
		t.Errorf("alerting basics %+v", a)
	}
	if len(a.Notifiers) != 4 || a.Notifiers[0].Spec.(map[string]string)["routing_key"] != testEnv["TOKEN"] || a.Notifiers[1].Spec.(map[string]string)["url"] != "http://127.0.0.1:1/api" {
		t.Errorf("notifiers %+v %+v", a.Notifiers[0], a.Notifiers[1])
	}
	if a.Notifiers[2].Disabled == "" || a.Notifiers[3].Type != "console" {
		t.Errorf("optional notifier not disabled: %+v", a.Notifiers[2])
	}
	// Default routes: PagerDuty only for critical and error.
	if !slices.Contains(a.Routes["critical"], "pd") || slices.Contains(a.Routes["warning"], "pd") || !slices.Contains(a.Routes["warning"], "slack") {
		t.Errorf("routes %v", a.Routes)
	}
	if len(a.Links) != 2 || a.Links[0].Name != "logs" || a.Heartbeat.Interval != 30*time.Second || !strings.HasSuffix(a.Heartbeat.URL, testEnv["TOKEN"]) {
		t.Errorf("links/heartbeat %+v %+v", a.Links, a.Heartbeat)
	}
	if len(a.Silences) != 1 || len(a.Maintenance) != 1 || a.Maintenance[0].Location.String() != "Europe/Berlin" {
		t.Errorf("silences %+v maintenance %+v", a.Silences, a.Maintenance)
	}
	if a.Prometheus == nil || a.Prometheus.BasicAuthPass != testEnv["TOKEN"] || len(a.Signals) != 2 || a.Signals[0].Unit != "ratio" {
		t.Errorf("prometheus/signals %+v %+v", a.Prometheus, a.Signals)
	}
	r := a.Rules
	if len(r) != 5 {
		t.Fatalf("%d rules", len(r))
	}
	if r[0].Kind != FlowFailing || r[0].For != 30*time.Second || r[0].FlowFailing.MinRegions != 2 || r[0].Group != "checkout" ||
		!slices.Equal(r[0].Notify, []string{"pd", "off"}) || r[0].KeepFiringFor != defaultKeepFiring {
		t.Errorf("rule 0 %+v %+v", r[0], r[0].FlowFailing)
	}
	if d := r[1].DependencySuccess; d.Below != 0.95 || d.Window != 10*time.Minute || d.MinCalls != 3 || !slices.Equal(r[1].Inhibits, []string{"failing"}) ||
		d.MinRegions != 2 || !slices.Equal(d.Regions, []string{"a", "b", "c"}) || d.DegradedSeverity != "info" {
		t.Errorf("rule 1 %+v", d)
	}
	if b := r[2].BurnRate; b.SLO != 0.995 || len(b.Windows) != 4 || r[2].For != 0 {
		t.Errorf("rule 2 %+v", b)
	}
	if l := r[3].Latency; l.Above != 2*time.Second || l.Quantile != 0.99 || l.Step != "pay" || r[3].Severity != "warning" {
		t.Errorf("rule 3 %+v", l)
	}
	if p := r[4].PromQL; p.Op != ">" || p.Value != 0.05 {
		t.Errorf("rule 4 %+v", p)
	}
}

func TestAlertingDefaults(t *testing.T) {
	cfg, errs := loadFiles(t, map[string]string{"f.yaml": alertFlow})
	if errs != nil {
		t.Fatal(errs)
	}
	a := cfg.Alerting
	if a.StateDir != defaultStateDir || a.EvaluationInterval != defaultEvalInterval || a.RepeatInterval != defaultRepeat ||
		len(a.Rules) != 0 || cfg.Flows[0].Retries != 1 {
		t.Errorf("defaults %+v retries %d", a, cfg.Flows[0].Retries)
	}
}

func TestAlertingErrors(t *testing.T) {
	tests := []struct {
		name, extra string
		flow        string
		want        []string
	}{
		{name: "unknown notifier type", extra: `notifiers: {x: {type: pager}}`,
			want: []string{`probes.yaml:6:23: unknown notifier type "pager": want pagerduty, slack, console or alertmanager`}},
		{name: "field of another notifier type", extra: `notifiers: {x: {type: console, channel: "#a"}}`,
			want: []string{`probes.yaml:6:32: channel does not apply to a console notifier`}},
		{name: "secret not as placeholder", extra: `notifiers: {x: {type: pagerduty, routing_key: "{{base}}"}}`,
			want: []string{`probes.yaml:6:48: only {{secret:NAME}} placeholders can be used here, not {{base}}`}},
		{name: "undeclared secret", extra: `notifiers: {x: {type: pagerduty, routing_key: "{{secret:NOPE}}"}}`,
			want: []string{`probes.yaml:6:48: undefined secret "NOPE" (declare it under secrets: in probes.yaml)`}},
		{name: "rule without kind", extra: "rules:\n  - {name: r}",
			want: []string{`probes.yaml:7:5: a rule needs one of flow_failing, burn_rate, dependency_success, latency, promql, absent, cert_expiry`}},
		{name: "rule with two kinds", extra: "rules:\n  - {name: r, flow_failing: {}, burn_rate: {flow: checkout, slo: 99%}}",
			want: []string{`probes.yaml:7:33: a rule has one kind; it already is flow_failing`}},
		{name: "unknown flow with suggestion", extra: "rules:\n  - {name: r, flow_failing: {flows: [chekout]}}",
			want: []string{`probes.yaml:7:38: unknown flow "chekout" (did you mean "checkout"?)`}},
		{name: "unknown dependency", extra: "rules:\n  - {name: r, dependency_success: {dependency: bank, below: 0.9}}",
			want: []string{`probes.yaml:7:48: no step has dependency "bank"`}},
		{name: "bad ratio", extra: "rules:\n  - {name: r, dependency_success: {dependency: bank-gateway, below: 120%}}",
			want: []string{`probes.yaml:7:69: below must be between 0 and 1 (or 0% and 100%), got "120%"`}},
		{name: "unknown step", extra: "rules:\n  - {name: r, latency: {flow: checkout, step: py, above: 1s}}",
			want: []string{`probes.yaml:7:47: flow checkout has no step "py" (did you mean "pay"?)`}},
		{name: "duplicate rule", extra: "rules:\n  - {name: r, flow_failing: {}}\n  - {name: r, flow_failing: {}}",
			want: []string{`probes.yaml:8:12: duplicate rule name "r" (first defined at probes.yaml:7:12)`}},
		{name: "unknown notifier in notify", extra: "notifiers: {pd: {type: console}}\nrules:\n  - {name: r, flow_failing: {}, notify: [pdd]}",
			want: []string{`probes.yaml:8:42: unknown notifier "pdd" (did you mean "pd"?)`}},
		{name: "inhibits unknown rule", extra: "rules:\n  - {name: r, flow_failing: {}, inhibits: [q]}",
			want: []string{`probes.yaml:7:44: unknown rule "q"`}},
		{name: "promql without prometheus", extra: "rules:\n  - {name: r, promql: {query: up, above: 1}}",
			want: []string{`probes.yaml:7:23: a promql rule needs prometheus: {url: ...} in probes.yaml`}},
		{name: "bad severity", extra: "rules:\n  - {name: r, flow_failing: {}, severity: urgent}",
			want: []string{`probes.yaml:7:43: unknown severity "urgent": want critical, error, warning or info`}},
		{name: "min regions above listed", extra: "rules:\n  - {name: r, flow_failing: {min_regions: 3, regions: [a, b]}}",
			want: []string{`probes.yaml:7:43: min_regions 3 is more than the 2 regions listed`}},
		{name: "dependency min regions above listed", extra: "rules:\n  - {name: r, dependency_success: {dependency: bank-gateway, below: 95%, min_regions: 3, regions: [a, b]}}",
			want: []string{`probes.yaml:7:87: min_regions 3 is more than the 2 regions listed`}},
		{name: "dependency bad degraded severity", extra: "rules:\n  - {name: r, dependency_success: {dependency: bank-gateway, below: 95%, degraded_severity: meh}}",
			want: []string{`probes.yaml:7:93: unknown severity "meh": want critical, error, warning or info`}},
		{name: "silence without matchers", extra: "alerting:\n  silences: [{starts: 2026-01-01T00:00:00Z, ends: 2026-01-02T00:00:00Z}]",
			want: []string{`probes.yaml:7:14: a silence needs matchers (e.g. {flow: checkout}); an empty one would mute everything`}},
		{name: "silence ends first", extra: "alerting:\n  silences: [{matchers: {flow: x}, starts: 2026-01-02T00:00:00Z, ends: 2026-01-01T00:00:00Z}]",
			want: []string{`probes.yaml:7:72: a silence must end after it starts`}},
		{name: "bad link reference", extra: "alerting:\n  links: {logs: \"https://l.test/{trace}\"}",
			want: []string{`probes.yaml:7:17: link logs: unknown reference {trace} (known: {flow}, {step}, {trace_id}, {rule}, {region}, {dependency})`}},
		{name: "unknown route severity", extra: "notifiers: {c: {type: console}}\nalerting:\n  routes: {critcal: [c]}",
			want: []string{`probes.yaml:8:12: unknown severity "critcal": want critical, error, warning or info (did you mean "critical"?)`}},
		{name: "flow uses an unset optional secret", flow: "name: checkout\nsteps:\n  - name: pay\n    request: {url: \"{{base}}/{{secret:PD}}\"}\n",
			want: []string{`f.yaml:4:30: secret "PD" is optional and not set, but this flow needs it`}},
		{name: "retries out of range", flow: "name: checkout\nretries: 9\nsteps:\n  - name: pay\n    request: {url: \"{{base}}/x\"}\n",
			want: []string{`f.yaml:2:10: retries must be between 0 and 3, got 9`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl := tt.flow
			if fl == "" {
				fl = alertFlow
			}
			_, errs := loadFiles(t, map[string]string{"f.yaml": fl, "probes.yaml": probesWith(tt.extra)})
			if !slices.Equal(errs, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestAlertingSecretsNotInErrors(t *testing.T) {
	_, errs := loadFiles(t, map[string]string{"f.yaml": alertFlow, "probes.yaml": probesWith(`
notifiers: {x: {type: slack, webhook_url: "{{secret:TOKEN}}/{{base}}"}}
alerting: {heartbeat: {url: "{{secret:TOKEN}}"}}
`)})
	for _, e := range errs {
		if strings.Contains(e, testEnv["TOKEN"]) {
			t.Fatalf("secret in error: %s", e)
		}
	}
	if len(errs) != 2 {
		t.Fatalf("want 2 errors, got %v", errs)
	}
}
