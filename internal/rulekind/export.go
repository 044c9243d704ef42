package rulekind

import (
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/prober-dev/prober/internal/config"
)

// AlertRule is a Prometheus recording rule (Record set) or alerting rule
// (Alert set), as a rule file holds it.
type AlertRule struct {
	Record        string            `yaml:"record,omitempty"`
	Alert         string            `yaml:"alert,omitempty"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for,omitempty"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`
}

// NewExport starts an export of cfg's rules to Prometheus rules: each
// rule's kind adds its alerting rules (Kind.Export), and Recording then
// holds the recording rules they read.
func NewExport(cfg *config.Config) *Export {
	x := &Export{cfg: cfg, flows: map[string]*config.Flow{}}
	for _, f := range cfg.Flows {
		if f != nil {
			x.flows[f.Name] = f
			x.flowNames = append(x.flowNames, f.Name)
		}
	}
	return x
}

const (
	recFlowSuccess = "prober:flow_success:ratio_rate" // by flow, region
	recFlowError   = "prober:flow_error:ratio_rate"   // by flow, all regions: burn rates
	recFlowRuns    = "prober:flow_runs:increase"      // by flow: the min_runs guard
	// By dependency and region (of the probers calling it), over all
	// flows: dependency_success judges each region, as flow_failing does.
	recDepSuccess  = "prober:dependency_success:ratio_rate" // the ratio compared with below
	recDepCalls    = "prober:dependency_calls:increase"     // the min_calls guard
	recDepFailures = "prober:dependency_failures:increase"  // the min_failures guard
)

// minCoverageSlack is the least slack of a burn-rate window's coverage
// test (a scrape interval and then some), as the engine's Prometheus
// source allows.
const minCoverageSlack = 2 * time.Minute

// defaultFreshness is the daemon's bound for a flow it knows nothing about.
const defaultFreshness = 5 * time.Minute

// absentLookback is how far back an absent rule without listed regions
// looks for the regions expected to report, as the engine does.
const absentLookback = 24 * time.Hour

// Export is one generation: the config, and the recording rules its alerts need.
type Export struct {
	cfg       *config.Config
	flows     map[string]*config.Flow
	flowNames []string // in config order

	flowErrWindows  map[time.Duration]bool
	flowRunsWindows map[time.Duration]bool
	depWindows      map[time.Duration]bool
}

// --- recording --------------------------------------------------------------

func (g *Export) Recording() []AlertRule {
	out := []AlertRule{{
		// Per region, for dashboards and for reading an alert.
		Record: recFlowSuccess + "5m",
		Expr: "sum by (flow, region) (rate(prober_runs_total{result=\"success\"}[5m]))\n/\n" +
			"sum by (flow, region) (rate(prober_runs_total[5m]))",
	}}
	for _, w := range sortedKeys(g.flowErrWindows) {
		d := dur(w)
		out = append(out, AlertRule{
			Record: recFlowError + d,
			// Failures "or" zero: the failure series appear only at the
			// first failure, and a healthy flow's ratio is 0, not absent.
			// Comparing this ratio (not 1 - success) keeps a burn exactly
			// at its limit from firing on rounding noise.
			Expr: "sum by (flow) (\n" +
				"  rate(prober_runs_total{result=\"failure\"}[" + d + "])\n" +
				"  or\n" +
				"  rate(prober_runs_total{result=\"success\"}[" + d + "]) * 0\n" +
				")\n/\n" +
				"sum by (flow) (rate(prober_runs_total[" + d + "]))",
		})
	}
	for _, w := range sortedKeys(g.flowRunsWindows) {
		d := dur(w)
		out = append(out, AlertRule{Record: recFlowRuns + d, Expr: "sum by (flow) (increase(prober_runs_total[" + d + "]))"})
	}
	for _, w := range sortedKeys(g.depWindows) {
		d := dur(w)
		out = append(out,
			AlertRule{
				Record: recDepSuccess + d,
				// Successes "or" zero: a region whose every call fails
				// has no success series, and its ratio is 0, not absent.
				Expr: "sum by (dependency, region) (\n" +
					"  rate(prober_dependency_calls_total{result=\"success\"}[" + d + "])\n" +
					"  or\n" +
					"  rate(prober_dependency_calls_total{result=\"failure\"}[" + d + "]) * 0\n" +
					")\n/\n" +
					"sum by (dependency, region) (rate(prober_dependency_calls_total[" + d + "]))",
			},
			AlertRule{Record: recDepCalls + d, Expr: "sum by (dependency, region) (increase(prober_dependency_calls_total[" + d + "]))"},
			AlertRule{
				Record: recDepFailures + d,
				Expr: "sum by (dependency, region) (\n" +
					"  increase(prober_dependency_calls_total{result=\"failure\"}[" + d + "])\n" +
					"  or\n" +
					"  increase(prober_dependency_calls_total{result=\"success\"}[" + d + "]) * 0\n" +
					")",
			})
	}
	return out
}

func need(m *map[time.Duration]bool, d time.Duration) {
	if *m == nil {
		*m = map[time.Duration]bool{}
	}
	(*m)[d] = true
}

// --- alerts -----------------------------------------------------------------

// alert builds an alerting rule: alertname and label rule are the rule's
// name; severity; the group; the rule's own labels, except those the
// expression sets (ident), which identify the alert as in the engine.
func (g *Export) alert(r *config.Rule, sev, expr, summary, desc string, ident ...string) AlertRule {
	return g.build(r, sev, expr, summary, desc, ident, nil)
}

// alertWith is alert for an expression without identity labels: static
// holds them, as rule labels (annotations cannot read those as $labels).
func (g *Export) alertWith(r *config.Rule, sev, expr, summary, desc string, static map[string]string) AlertRule {
	return g.build(r, sev, expr, summary, desc, slices.Sorted(maps.Keys(static)), static)
}

func (g *Export) build(r *config.Rule, sev, expr, summary, desc string, ident []string, static map[string]string) AlertRule {
	labels := map[string]string{}
	for k, v := range r.Labels {
		if slices.Contains(ident, k) || k == "alertname" {
			continue
		}
		labels[k] = escapeTemplate(v)
	}
	for k, v := range static {
		labels[k] = escapeTemplate(v)
	}
	if r.Group != "" {
		labels["group"] = escapeTemplate(r.Group)
	}
	labels["rule"] = r.Name
	labels["severity"] = sev
	if r.Summary != "" {
		summary = escapeTemplate(r.Summary) + ": " + summary
	}
	ann := map[string]string{"summary": summary, "description": desc}
	for _, l := range g.cfg.Alerting.Links {
		if u, ok := linkTemplate(l.URL, r.Name, ident, static); ok {
			ann[annotationName(l.Name)] = u
		}
	}
	out := AlertRule{Alert: r.Name, Expr: expr, Labels: labels, Annotations: ann}
	if r.For > 0 {
		out.For = dur(r.For)
	}
	if r.KeepFiringFor > 0 {
		out.KeepFiringFor = dur(r.KeepFiringFor)
	}
	return out
}

var placeholder = regexp.MustCompile(`\{([a-z_]+)\}`)

// linkTemplate turns a link's {placeholders} into alert templates. Like
// the prober's pages, a link whose placeholder the alert cannot fill (a
// trace id; a flow for a dependency alert) is left out.
func linkTemplate(u, rule string, ident []string, static map[string]string) (string, bool) {
	ok := true
	out := placeholder.ReplaceAllStringFunc(escapeTemplate(u), func(m string) string {
		name := m[1 : len(m)-1]
		switch {
		case name == "rule":
			return url.QueryEscape(rule)
		case name == "region" && static["silent_region"] != "":
			return url.QueryEscape(static["silent_region"])
		case name == "region" && slices.Contains(ident, "silent_region"):
			return "{{ $labels.silent_region | urlquery }}"
		case name != "region" && slices.Contains(ident, name):
			return "{{ $labels." + name + " | urlquery }}"
		case slices.Contains([]string{"flow", "step", "trace_id", "region", "dependency"}, name):
			ok = false
		}
		return m
	})
	return out, ok
}

var notLabelChar = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// annotationName is a link's name as an annotation name (as the prober's
// Alertmanager notifier names them: dashboard, logs, runbook).
func annotationName(s string) string {
	s = notLabelChar.ReplaceAllString(s, "_")
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "link_" + s
	}
	return s
}

// escapeTemplate keeps configured text literal: Prometheus expands labels
// and annotations as templates.
func escapeTemplate(s string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	return strings.ReplaceAll(s, "{{", "{{ `{{` }}")
}

// --- PromQL text ------------------------------------------------------------

func eq(label, v string) string { return label + "=" + strconv.Quote(v) }

// oneOf matches any of vs: = for one, an anchored alternation for more.
func oneOf(label string, vs []string) string {
	if len(vs) == 1 {
		return eq(label, vs[0])
	}
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = regexp.QuoteMeta(v)
	}
	return label + "=~" + strconv.Quote(strings.Join(q, "|"))
}

func braces(m []string) string {
	if len(m) == 0 {
		return ""
	}
	return "{" + strings.Join(m, ",") + "}"
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

func prepend(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// orJoin joins alternatives with "or", each in parentheses when there are
// several ("and" binds tighter than "or", but readers should not need to know).
func orJoin(parts []string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	wrapped := make([]string, len(parts))
	for i, p := range parts {
		wrapped[i] = "(\n" + indent(p, 2) + "\n)"
	}
	return strings.Join(wrapped, "\nor\n")
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}

// Window is a window in PromQL's syntax (1h, 5m, 1d); at least a second.
func Window(d time.Duration) string {
	return model.Duration(max(d, time.Second).Round(time.Millisecond)).String()
}

// dur is a duration as Prometheus writes it: 5m, 1h30m, 1d.
func dur(d time.Duration) string { return model.Duration(d).String() }

// human is a duration for text: 1m30s, 2s, 1.5s, 250ms.
func pqHuman(d time.Duration) string {
	if d%time.Second != 0 {
		return d.String()
	}
	return dur(d)
}

func seconds(d time.Duration) string { return pqNumber(d.Seconds()) }

func pqNumber(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// ratio is a threshold, rounded to 12 significant digits so that
// 14.4 × 0.01 is written 0.144, not 0.14400000000000002.
func pqRatio(v float64) string {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
	return pqNumber(r)
}

// percent is 99.5%, 95%, 0.1%.
func pqPercent(v float64) string {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(v*100, 'g', 12, 64), 64)
	if math.IsNaN(p) {
		return "NaN"
	}
	return pqNumber(p) + "%"
}

func cmpOr(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func sortedKeys[V any](m map[time.Duration]V) []time.Duration {
	return slices.Sorted(maps.Keys(m))
}
