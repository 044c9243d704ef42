package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/metrics"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/shop"
)

// The Grafana dashboard in deploy/grafana, checked two ways: statically
// (it parses, every panel queries the ${datasource} variable, ids are
// unique, every metric and label it names exists), and live (every query,
// panels and template variables alike, returns data from a real Prometheus
// scraping a demo prober in the middle of an incident).

const dashboardPath = "../deploy/grafana/dashboards/prober.json"

type dashboard struct {
	UID           string           `json:"uid"`
	Title         string           `json:"title"`
	SchemaVersion int              `json:"schemaVersion"`
	Panels        []dashboardPanel `json:"panels"`
	Templating    struct {
		List []templateVar `json:"list"`
	} `json:"templating"`
}

type dashboardPanel struct {
	ID         int              `json:"id"`
	Type       string           `json:"type"`
	Title      string           `json:"title"`
	Desc       string           `json:"description"`
	Datasource *datasourceRef   `json:"datasource"`
	GridPos    gridPos          `json:"gridPos"`
	Targets    []panelTarget    `json:"targets"`
	Panels     []dashboardPanel `json:"panels"` // a collapsed row's panels
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct{ X, Y, W, H int }

type panelTarget struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Exemplar   bool           `json:"exemplar"`
	Datasource *datasourceRef `json:"datasource"`
}

type templateVar struct {
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	Query      json.RawMessage `json:"query"` // a string, or {"query": ...}
	Definition string          `json:"definition"`
	Datasource *datasourceRef  `json:"datasource"`
	AllValue   string          `json:"allValue"`
}

// queryText is the variable's query, in either of Grafana's forms.
func (v templateVar) queryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &o) == nil && o.Query != "" {
		return o.Query
	}
	return v.Definition
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

// allPanels flattens rows.
func (d dashboard) allPanels() []dashboardPanel {
	var out []dashboardPanel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// promQuery is one PromQL expression of the dashboard and where it is.
type promQuery struct {
	where    string
	expr     string
	exemplar bool
	// label is set for a label_values(...) variable: the label listed.
	label string
	// detailedOnly: its panel says it has data only with metrics: detailed.
	detailedOnly bool
	// panel is the panel's title ("" for a variable).
	panel string
}

// detailedOnlyMark is how a panel's description says it has data only at
// the detailed metric level.
const detailedOnlyMark = "Only with metrics: detailed"

var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// queries extracts every PromQL expression: panel targets, and template
// variables' label_values(...) as the equivalent instant query.
func (d dashboard) queries(t *testing.T) []promQuery {
	t.Helper()
	var out []promQuery
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q target %s has no expr", p.Title, tg.RefID)
				continue
			}
			out = append(out, promQuery{where: fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), expr: tg.Expr, exemplar: tg.Exemplar,
				detailedOnly: strings.Contains(p.Desc, detailedOnlyMark), panel: p.Title})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := v.queryText()
		m := labelValuesRE.FindStringSubmatch(q)
		if m == nil || m[1] == "" {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q)
			continue
		}
		out = append(out, promQuery{where: "variable " + v.Name, expr: fmt.Sprintf("group by (%s) (%s)", m[2], m[1]), label: m[2]})
	}
	return out
}

var grafanaVarRE = regexp.MustCompile(`\$\{([a-zA-Z0-9_]+)(?::[a-zA-Z]+)?\}|\$([a-zA-Z_][a-zA-Z0-9_]*)|\[\[([a-zA-Z0-9_]+)\]\]`)

// substitute replaces Grafana variables as Grafana would; an unknown one
// is an error (a typo'd variable is a broken panel).
func substitute(expr string, vars map[string]string) (string, error) {
	var unknown []string
	out := grafanaVarRE.ReplaceAllStringFunc(expr, func(m string) string {
		sm := grafanaVarRE.FindStringSubmatch(m)
		name := sm[1] + sm[2] + sm[3]
		v, ok := vars[name]
		if !ok {
			unknown = append(unknown, name)
			return m
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown variables %v", unknown)
	}
	return out, nil
}

// builtins stand in for Grafana's interval variables.
var builtins = map[string]string{
	"__rate_interval": "30s", "__interval": "5s", "__interval_ms": "5000",
	"__range": "5m", "__range_s": "300", "__range_ms": "300000",
}

func withVars(vars map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range builtins {
		out[k] = v
	}
	for k, v := range vars {
		out[k] = v
	}
	return out
}

// TestGrafanaDashboardStatic needs no Prometheus.
func TestGrafanaDashboardStatic(t *testing.T) {
	d := loadDashboard(t)
	if d.UID != "prober" || d.SchemaVersion < 36 {
		t.Errorf("uid %q schemaVersion %d: want uid prober (probes.yaml links /d/prober/...) and a recent schema", d.UID, d.SchemaVersion)
	}
	vars := map[string]templateVar{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if ds := vars["datasource"]; ds.Type != "datasource" || ds.queryText() != "prometheus" {
		t.Errorf("no datasource variable of type prometheus: %+v", ds)
	}
	for _, name := range []string{"flow", "region", "step"} {
		v, ok := vars[name]
		switch {
		case !ok:
			t.Errorf("no variable %s", name)
		case v.Type != "query" || !strings.HasPrefix(strings.TrimSpace(v.queryText()), "label_values("):
			t.Errorf("variable %s is not a label_values query: %+v", name, v)
		case v.Datasource == nil || v.Datasource.UID != "${datasource}":
			t.Errorf("variable %s does not query ${datasource}: %+v", name, v.Datasource)
		}
	}

	ids := map[int]string{}
	var boxes []dashboardPanel
	for _, p := range d.allPanels() {
		if prev, dup := ids[p.ID]; dup || p.ID <= 0 {
			t.Errorf("panel %q: id %d (also %q)", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue // rows hold no queries
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q: datasource %+v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource != nil && tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q target %s: datasource %+v", p.Title, tg.RefID, tg.Datasource)
			}
		}
		for _, o := range boxes {
			a, b := p.GridPos, o.GridPos
			if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				t.Errorf("panels %q and %q overlap", p.Title, o.Title)
			}
		}
		boxes = append(boxes, p)
	}

	// The panels the dashboard promises.
	titles := strings.ToLower(strings.Join(slices.Collect(func(yield func(string) bool) {
		for _, p := range d.allPanels() {
			if !yield(p.Title) {
				return
			}
		}
	}), "\n"))
	for _, want := range []string{"synthetic success by flow and region", "last run status", "step latency", "dependency success",
		"failure classes", "alert states", "runs skipped and retries", "notifications sent and failed", "outbox",
		"schedule lateness p99", "config reload", "certificate expiry"} {
		if !strings.Contains(titles, want) {
			t.Errorf("no panel %q", want)
		}
	}
	exemplars := 0
	for _, q := range d.queries(t) {
		if q.exemplar {
			exemplars++
			if !strings.Contains(q.expr, "_bucket") {
				t.Errorf("%s: exemplars on a query that reads no histogram", q.where)
			}
		}
	}
	if exemplars == 0 {
		t.Error("no query has exemplars on")
	}

	// Every metric and matcher label the queries name exists.
	known := exportedMetrics(t)
	for _, q := range d.queries(t) {
		expr, err := substitute(q.expr, withVars(map[string]string{"flow": ".+", "region": ".+", "step": ".+"}))
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		sels := selectors(expr)
		if len(sels) == 0 {
			t.Errorf("%s: no metric in %q", q.where, expr)
		}
		for _, s := range sels {
			labels, ok := known[s.name]
			if !ok {
				t.Errorf("%s: metric %s is not exported by the prober", q.where, s.name)
				continue
			}
			for _, l := range s.labels {
				if !labels[l] {
					t.Errorf("%s: metric %s has no label %s", q.where, s.name, l)
				}
			}
		}
	}

	// The provisioning files beside it. Grafana expands environment
	// variables in every value before using it, so the checks read the
	// values as Grafana will (with no variable set).
	var ds struct {
		Datasources []struct {
			UID      string `yaml:"uid"`
			Type     string `yaml:"type"`
			URL      string `yaml:"url"`
			JSONData struct {
				Exemplars []struct {
					Name          string `yaml:"name"`
					URL           string `yaml:"url"`
					DatasourceUID string `yaml:"datasourceUid"`
				} `yaml:"exemplarTraceIdDestinations"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	readYAML(t, "../deploy/grafana/provisioning/datasources/prometheus.yaml", &ds)
	if len(ds.Datasources) == 0 || ds.Datasources[0].Type != "prometheus" || len(ds.Datasources[0].JSONData.Exemplars) == 0 ||
		ds.Datasources[0].JSONData.Exemplars[0].Name != "trace_id" {
		t.Errorf("datasource provisioning: %+v", ds)
	}
	tracing := map[string]string{} // uid -> URL of the provisioned tracing data sources
	for _, d := range ds.Datasources {
		if d.Type == "jaeger" || d.Type == "tempo" {
			tracing[grafanaExpand(d.UID)] = grafanaExpand(d.URL)
		}
	}
	logLinks, traceLinks := 0, 0
	for _, d := range ds.Datasources {
		for _, e := range d.JSONData.Exemplars {
			if e.URL != "" {
				logLinks++
				checkLogLink(t, "datasource exemplar link", grafanaExpand(e.URL), "${__value.raw}")
			}
			if e.DatasourceUID != "" {
				// An exemplar opening a data source opens the trace there:
				// one provisioned here, of a tracing type, with a URL.
				uid := grafanaExpand(e.DatasourceUID)
				u, ok := tracing[uid]
				if !ok {
					t.Errorf("exemplar destination %q: no tracing data source (jaeger, tempo) has that uid; provisioned: %v", uid, tracing)
					continue
				}
				if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
					t.Errorf("tracing data source %q: url %q is not an http URL", uid, u)
				}
				if e.Name != "trace_id" {
					t.Errorf("exemplar destination %q reads label %q, want trace_id", uid, e.Name)
				}
				traceLinks++
			}
		}
	}
	if traceLinks != 1 {
		t.Errorf("%d exemplar links to a tracing data source, want 1", traceLinks)
	}
	var probes struct {
		Alerting struct {
			Links struct {
				Logs string `yaml:"logs"`
			} `yaml:"links"`
		} `yaml:"alerting"`
	}
	readYAML(t, "../probes.yaml", &probes)
	if l := probes.Alerting.Links.Logs; l != "" {
		logLinks++
		checkLogLink(t, "probes.yaml alerting.links.logs", l, "{trace_id}")
	}
	if logLinks != 2 {
		t.Errorf("%d log links checked, want the exemplar's and probes.yaml's", logLinks)
	}
	checkTraceLinkExample(t, "../probes.yaml")
	var prov struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "../deploy/grafana/provisioning/dashboards/prober.yaml", &prov)
	if len(prov.Providers) == 0 || prov.Providers[0].Type != "file" || prov.Providers[0].Options.Path == "" {
		t.Errorf("dashboard provisioning: %+v", prov)
	}
}

// logQLLineFilter is a LogQL query that selects streams by labels and
// finds the trace id in the lines: {selector} |= "TRACE".
var logQLLineFilter = regexp.MustCompile(`^\{([^}]*)\}\s*\|=\s*"TRACE"$`)

// checkLogLink: a link from a trace id to the logs opens Grafana Explore (not
// Loki's API port, which has no UI) with a Loki query that searches the log
// lines for the trace id (placeholder), not a stream label: a label per trace
// would be one stream per probe run.
func checkLogLink(t *testing.T, where, link, placeholder string) {
	t.Helper()
	u, err := url.Parse(strings.ReplaceAll(link, placeholder, "TRACE"))
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if u.Path != "/explore" || u.Port() == "3100" || u.Query().Get("schemaVersion") != "1" {
		t.Errorf("%s: %s is not Grafana Explore (/explore?schemaVersion=1&panes=... on Grafana's port)", where, link)
		return
	}
	var panes map[string]struct {
		Queries []struct {
			Datasource struct {
				Type string `json:"type"`
			} `json:"datasource"`
			Expr string `json:"expr"`
		} `json:"queries"`
	}
	if err := json.Unmarshal([]byte(u.Query().Get("panes")), &panes); err != nil || len(panes) != 1 {
		t.Errorf("%s: panes %q: %v", where, u.Query().Get("panes"), err)
		return
	}
	for _, p := range panes {
		if len(p.Queries) != 1 || p.Queries[0].Datasource.Type != "loki" {
			t.Errorf("%s: want one Loki query, got %+v", where, p.Queries)
			continue
		}
		m := logQLLineFilter.FindStringSubmatch(p.Queries[0].Expr)
		if m == nil {
			t.Errorf("%s: query %q is not {selector} |= \"<trace id>\"", where, p.Queries[0].Expr)
		} else if strings.Contains(m[1], "trace") || strings.Contains(m[1], "TRACE") {
			t.Errorf("%s: query %q selects streams by the trace id", where, p.Queries[0].Expr)
		}
	}
}

// grafanaExpand is a provisioned value as Grafana reads it with no
// environment variable set: $NAME and ${NAME} expand (to nothing here),
// and $$ is a literal $.
func grafanaExpand(v string) string {
	parts := strings.Split(v, "$$")
	for i, p := range parts {
		parts[i] = os.Expand(p, func(string) string { return "" })
	}
	return strings.Join(parts, "$")
}

// checkTraceLinkExample: the shipped probes.yaml offers alerting.links.trace
// commented out (tracing is off by default, and a link is an HTTP URL or
// absent), and the line, uncommented, is a link to one trace by its id.
func checkTraceLinkExample(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for line := range strings.Lines(string(b)) {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "# trace:") {
			found = append(found, strings.TrimSpace(strings.TrimPrefix(l, "#")))
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d commented alerting.links.trace lines, want 1", path, len(found))
	}
	var link struct {
		Trace string `yaml:"trace"`
	}
	if err := yaml.Unmarshal([]byte(found[0]), &link); err != nil {
		t.Fatalf("%s: the commented trace link: %v", path, err)
	}
	u, err := url.Parse(strings.ReplaceAll(link.Trace, "{trace_id}", "TRACE"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.HasSuffix(u.Path, "/trace/TRACE") {
		t.Errorf("%s: trace link %q: want an http URL of Jaeger's trace view, .../trace/{trace_id}", path, link.Trace)
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// recordingRegisterer keeps the descriptors of what registers through it.
type recordingRegisterer struct {
	prometheus.Registerer
	descs []*prometheus.Desc
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		r.descs = append(r.descs, d)
	}
	return r.Registerer.Register(c)
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var (
	descNameRE   = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)
	descConstRE  = regexp.MustCompile(`constLabels: \{(.*)\}, variableLabels: \{([^}]*)\}\}$`)
	descLabelsRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
)

// exportedMetrics is every series name a prober exports (metrics.New, the
// alert manager and dispatcher on a fresh registry), with its labels and
// the ones Prometheus adds. A histogram's names are its _bucket, _sum and
// _count.
func exportedMetrics(t *testing.T) map[string]map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	rec := &recordingRegisterer{Registerer: reg}
	m := metrics.New(rec, "test", metrics.BuildInfo{Version: "v", Revision: "r"})
	// The alert metrics on a registry of their own: without a database
	// they can be described, not gathered.
	rec2 := &recordingRegisterer{Registerer: prometheus.NewRegistry()}
	alert.NewManager(nil, &config.Alerting{}, nil, alert.ManagerOptions{Registerer: rec2})
	alert.NewDispatcher(nil, nil, alert.DispatcherOptions{Registerer: rec2})

	// Give every vector a child, so that gathering tells the types.
	m.SetFlows([]metrics.FlowShape{{Name: "checkout", Detailed: true, Steps: []metrics.StepShape{{Name: "pay", Dependency: "bank-gateway"}}}})
	now := time.Now()
	m.Observe(&result.Run{Flow: "checkout", TraceID: strings.Repeat("a", 32), Start: now, Duration: time.Second, Status: result.Failed,
		Class: result.SwallowedError, FailedStep: "pay", Steps: []result.Step{{Name: "pay", Dependency: "bank-gateway", Status: result.Failed,
			Class: result.SwallowedError, Duration: time.Second, Failures: []result.Failure{{Expectation: "status == 200", Message: "m"}}}}})
	m.Started("checkout", time.Millisecond)
	m.Skipped("checkout")
	m.ConfigLoaded(true, now)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	histogram := map[string]bool{}
	for _, f := range families {
		if f.GetType() == dto.MetricType_HISTOGRAM {
			histogram[f.GetName()] = true
		}
	}
	out := map[string]map[string]bool{}
	for _, d := range append(rec.descs, rec2.descs...) {
		s := d.String()
		nm := descNameRE.FindStringSubmatch(s)
		lm := descConstRE.FindStringSubmatch(s)
		if nm == nil || lm == nil {
			t.Fatalf("cannot read %s", s)
		}
		labels := map[string]bool{"job": true, "instance": true}
		for _, l := range descLabelsRE.FindAllStringSubmatch(lm[1], -1) {
			labels[l[1]] = true
		}
		for _, l := range strings.Split(lm[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels[l] = true
			}
		}
		name := nm[1]
		if histogram[name] {
			for _, suffix := range []string{"_sum", "_count"} {
				out[name+suffix] = labels
			}
			bucket := map[string]bool{"le": true}
			for l := range labels {
				bucket[l] = true
			}
			out[name+"_bucket"] = bucket
			continue
		}
		out[name] = labels
	}
	for _, want := range []string{"prober_runs_total", "prober_step_duration_seconds_bucket", "prober_alerts", "prober_outbox_pending", "prober_notifications_total"} {
		if out[want] == nil {
			t.Fatalf("the registry has no %s: %v", want, slices.Sorted(func(yield func(string) bool) {
				for k := range out {
					if !yield(k) {
						return
					}
				}
			}))
		}
	}
	return out
}

var grouping = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// selector is a metric a query reads and the labels its matchers name.
type selector struct {
	name   string
	labels []string
}

var promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true,
	"ignoring": true, "group_left": true, "group_right": true, "bool": true, "offset": true, "inf": true, "nan": true, "atan2": true,
	// aggregations, which may be followed by a grouping clause before "("
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
	"count_values": true, "bottomk": true, "topk": true, "quantile": true}

// selectors reads the metric selectors of a PromQL expression: a small
// lexer (strings, ranges, numbers, function calls and grouping clauses
// skipped), enough for the dashboard's queries.
func selectors(expr string) []selector {
	var out []selector
	s := expr
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
	}
	skipSpace := func(i int) int {
		for i < len(s) && strings.ContainsRune(" \t\n\r", rune(s[i])) {
			i++
		}
		return i
	}
	skipString := func(i int) int { // s[i] is the opening quote
		q := s[i]
		for i++; i < len(s) && s[i] != q; i++ {
			if s[i] == '\\' && q != '`' {
				i++
			}
		}
		return i + 1
	}
	// matchers reads {a="x", b=~"y"} from s[i] == '{' and returns the label names.
	matchers := func(i int) ([]string, int) {
		var names []string
		i++
		for i < len(s) && s[i] != '}' {
			i = skipSpace(i)
			j := i
			for j < len(s) && isIdent(s[j], j == i) {
				j++
			}
			if j > i {
				names = append(names, s[i:j])
			}
			i = j
			for i < len(s) && s[i] != '"' && s[i] != '\'' && s[i] != '`' && s[i] != '}' {
				i++
			}
			if i < len(s) && s[i] != '}' {
				i = skipString(i)
			}
			i = skipSpace(i)
			if i < len(s) && s[i] == ',' {
				i++
			}
		}
		return names, i + 1
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(i)
		case c == '[':
			i = strings.IndexByte(s[i:], ']') + i + 1
		case c >= '0' && c <= '9' || (c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9'):
			for i < len(s) && (isIdent(s[i], false) || s[i] == '.') {
				if (s[i] == 'e' || s[i] == 'E') && i+1 < len(s) && (s[i+1] == '-' || s[i+1] == '+') {
					i++
				}
				i++
			}
		case c == '{':
			_, i = matchers(i)
		case isIdent(c, true):
			j := i
			for j < len(s) && isIdent(s[j], false) {
				j++
			}
			word := s[i:j]
			k := skipSpace(j)
			switch {
			case promKeywords[strings.ToLower(word)]:
				if grouping[strings.ToLower(word)] && k < len(s) && s[k] == '(' { // by (...), on (...): label lists
					j = strings.IndexByte(s[k:], ')') + k + 1
				}
			case k < len(s) && s[k] == '(':
				// a function call: its arguments are read as the loop goes on
			case k < len(s) && s[k] == '{':
				names, end := matchers(k)
				out = append(out, selector{word, names})
				j = end
			default:
				out = append(out, selector{name: word})
			}
			i = j
		default:
			i++
		}
	}
	return out
}

func TestGrafanaSelectors(t *testing.T) {
	got := selectors(`sum by (flow, region) (rate(prober_runs_total{result="success",flow=~"a|b"}[5m])) / on (flow) group_left ` +
		`histogram_quantile(0.95, x_bucket{le!="+Inf"} offset 1m) * 1e-3 > bool 2 and up`)
	want := []selector{{"prober_runs_total", []string{"result", "flow"}}, {"x_bucket", []string{"le"}}, {name: "up"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("selectors = %v, want %v", got, want)
	}
}

// TestGrafanaDashboardQueries runs every query of the dashboard against a
// real Prometheus scraping a demo prober whose bank gateway has failed
// long enough to page: every panel must have data, and the panels with
// exemplars must find trace ids. The same Prometheus loads the rules
// `prober rules` generates from the shipped probes.yaml, and fires the
// gateway alert too. It does so at both metric levels (issue 20): at the
// default level a panel marked detailed-only may be empty, but its queries
// must still be valid.
func TestGrafanaDashboardQueries(t *testing.T) {
	for _, level := range []string{config.MetricsDefault, config.MetricsDetailed} {
		t.Run(level, func(t *testing.T) { testGrafanaDashboardQueries(t, level) })
	}
}

func testGrafanaDashboardQueries(t *testing.T, level string) {
	prometheusBinary(t)
	d := loadDashboard(t)
	queries := d.queries(t)

	rules := filepath.Join(t.TempDir(), "prober.rules.yml")
	if _, errOut, code := runCmd(t, nil, "rules", "--config", "../probes.yaml", "--out", rules); code != 0 {
		t.Fatalf("prober rules: exit %d: %s", code, errOut)
	}

	addr, shopAddr := freeAddr(t), freeAddr(t)
	start(t, []string{"SHOP_PASSWORD=" + secretPW, "PROBER_METRICS=" + level}, "demo", "--browser=false", "--every", "2s", "--listen", addr,
		"--shop-listen", shopAddr, "--dir", t.TempDir())
	ps := startPrometheus(t, map[string][]string{"prober": {addr}}, time.Second, rules)
	base := "http://" + addr
	waitRun(t, base, "checkout", 60*time.Second, passed)
	freshPanels(t, ps, queries, level)

	// The 2 AM story: failure classes, failure info and pages exist only
	// once something fails, and a dashboard is for those nights.
	do(t, "PUT", "http://"+shopAddr+"/admin/faults", `{"gateway_status":504,"swallow_errors":true}`)
	waitRun(t, base, "checkout", 30*time.Second, func(r *result.Run) bool { return r.Class == result.SwallowedError })
	// The gateway pages through the console notifier, in the prober and,
	// from the generated rules (gateway_success, for 1m), in Prometheus.
	// checkout_slo does not: a burn-rate window is judged only once the
	// flow's runs cover it, and this demo is minutes old.
	ps.waitSeries(t, `prober_notifications_total{notifier="console",result="sent"} > 0`, 90*time.Second)
	ps.waitSeries(t, `ALERTS{alertname="gateway_success",alertstate="firing",severity="critical",dependency="bank-gateway"}`, 150*time.Second)

	for _, pass := range []struct {
		name string
		vars map[string]string
	}{
		{"all values", map[string]string{"flow": ".+", "region": ".+", "step": ".+"}},
		{"one value each", map[string]string{"flow": "checkout", "region": "local", "step": "pay"}},
	} {
		vars := withVars(pass.vars)
		checked := 0
		for _, q := range queries {
			expr, err := substitute(q.expr, vars)
			if err != nil {
				t.Errorf("%s: %s: %v", pass.name, q.where, err)
				continue
			}
			within := 30 * time.Second
			if q.detailedOnly && level != config.MetricsDetailed {
				within = 0 // valid, and empty at this level
			}
			r := waitData(t, ps, expr, within)
			if r.Status != "success" {
				t.Errorf("%s: %s: %s\n  %s", pass.name, q.where, r.Error, expr)
				continue
			}
			if q.detailedOnly && level != config.MetricsDetailed {
				if len(r.Data.Result) > 0 {
					t.Errorf("%s: %s has data at the %s level: is it detailed-only?\n  %s", pass.name, q.where, level, expr)
				}
				continue
			}
			if len(r.Data.Result) == 0 {
				t.Errorf("%s: %s returns nothing\n  %s", pass.name, q.where, expr)
				continue
			}
			if allNaN(r) {
				t.Errorf("%s: %s returns only NaN\n  %s", pass.name, q.where, expr)
			}
			if q.label != "" {
				values := map[string]bool{}
				for _, s := range r.Data.Result {
					values[s.Metric[q.label]] = true
				}
				if want := pass.vars[q.label]; want != ".+" && !values[want] {
					t.Errorf("%s: %s lists %v, not %s", pass.name, q.where, values, want)
				}
			}
			if q.exemplar {
				waitExemplar(t, ps, q.where, expr)
			}
			checked++
		}
		t.Logf("%s: %d of %d queries return data", pass.name, checked, len(queries))
	}

	// The certificate panel shows the sandbox shop's HTTPS certificate,
	// made to expire 10 days after the demo starts: in the warning band.
	found := false
	for _, p := range d.allPanels() {
		if p.Title != "Certificate expiry" {
			continue
		}
		found = true
		expr, err := substitute(p.Targets[0].Expr, withVars(map[string]string{"flow": ".+", "region": "local", "step": ".+"}))
		if err != nil {
			t.Fatal(err)
		}
		r := waitData(t, ps, expr, 30*time.Second)
		if len(r.Data.Result) != 1 || !strings.HasPrefix(r.Data.Result[0].Metric["host"], "127.0.0.1:") {
			t.Fatalf("certificate panel: %+v, want the sandbox shop's host", r.Data.Result)
		}
		v, _ := r.Data.Result[0].Value[1].(string)
		days, err := strconv.ParseFloat(v, 64)
		if want := shop.DefaultCertValidity.Hours() / 24; err != nil || days > want || days < want-1 {
			t.Errorf("certificate panel: %s days left, want just under %g", v, want)
		}
	}
	if !found {
		t.Error("no panel \"Certificate expiry\"")
	}
}

// freshPanels: on a fresh, healthy prober (a run or two, nothing failed,
// no alert, no notification) every panel shows a value, 0 where nothing
// happened, not "No data": an operator cannot tell "none" from "not
// collected". A panel has data when one of its targets has (a table's
// failure column may be empty beside the others). Panels only the
// detailed level fills are left out at the default level.
func freshPanels(t *testing.T, ps *promServer, queries []promQuery, level string) {
	t.Helper()
	ps.waitSeries(t, `prober_last_run_success{flow="checkout"}`, 30*time.Second)
	vars := withVars(map[string]string{"flow": ".+", "region": ".+", "step": ".+"})
	pending := map[string][]string{} // panel -> its expressions
	for _, q := range queries {
		if q.panel == "" || (q.detailedOnly && level != config.MetricsDetailed) {
			continue
		}
		expr, err := substitute(q.expr, vars)
		if err != nil {
			t.Fatalf("%s: %v", q.where, err)
		}
		pending[q.panel] = append(pending[q.panel], expr)
	}
	// Rates need two scrapes of a series: a few seconds at a 1s interval.
	deadline := time.Now().Add(20 * time.Second)
	for len(pending) > 0 && time.Now().Before(deadline) {
		for panel, exprs := range pending {
			for _, expr := range exprs {
				if r := ps.query(t, expr); r.Status == "success" && len(r.Data.Result) > 0 && !allNaN(r) {
					delete(pending, panel)
					break
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	for panel, exprs := range pending {
		t.Errorf("fresh prober: panel %q shows No data (nothing failed yet: it should show 0)\n  %s", panel, strings.Join(exprs, "\n  "))
	}
}

// waitData runs q until it answers with data (series appear a scrape or
// two after the run that makes them) or within passes; it returns the last
// answer either way.
func waitData(t *testing.T, ps *promServer, q string, within time.Duration) promResult {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := ps.query(t, q)
		if r.Status != "success" || (len(r.Data.Result) > 0 && !allNaN(r)) || time.Now().After(deadline) {
			return r
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func allNaN(r promResult) bool {
	for _, s := range r.Data.Result {
		v, _ := s.Value[1].(string)
		if f, err := strconv.ParseFloat(v, 64); err != nil || !math.IsNaN(f) {
			return false
		}
	}
	return len(r.Data.Result) > 0
}

// waitExemplar checks that Prometheus has exemplars with a trace id for
// the query's series: what Grafana shows as dots linking to the trace.
func waitExemplar(t *testing.T, ps *promServer, where, expr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		now := time.Now()
		_, body := get(t, ps.URL+"/api/v1/query_exemplars?query="+url.QueryEscape(expr)+
			fmt.Sprintf("&start=%d&end=%d", now.Add(-10*time.Minute).Unix(), now.Unix()))
		var r struct {
			Status string `json:"status"`
			Data   []struct {
				Exemplars []struct {
					Labels map[string]string `json:"labels"`
				} `json:"exemplars"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &r); err == nil && r.Status == "success" {
			var ids []string
			for _, s := range r.Data {
				for _, e := range s.Exemplars {
					if traceRE.MatchString(e.Labels["trace_id"]) {
						ids = append(ids, e.Labels["trace_id"])
					}
				}
			}
			if len(ids) > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: no exemplar with a trace_id: %.500s", where, body)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}
