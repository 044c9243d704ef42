package config

import "time"

// Alerting is probes.yaml's alerting: section with its rules, signals and
// notifiers: what decides that users are hurt, and whom to tell.
type Alerting struct {
	// StateDir holds the durable alert state and outbox (a bbolt file).
	// Default "prober-state" (relative to the working directory);
	// --state-dir overrides it.
	StateDir string
	// EvaluationInterval is how often rules are evaluated (also after
	// every run). Default 5s.
	EvaluationInterval time.Duration
	// RepeatInterval re-notifies a still-firing alert (Slack thread
	// reminder; PagerDuty keeps its incident). 0 = never. Default 4h.
	RepeatInterval time.Duration
	// Routes maps a severity to the notifiers it goes to, for rules that do
	// not name their own. Severities: critical, error, warning, info.
	Routes map[string][]string
	// Links are URL templates added to every page; {flow}, {step},
	// {trace_id}, {rule}, {region}, {dependency} are replaced (URL-escaped).
	Links []Link
	// Heartbeat pings a URL each evaluation cycle that finds the prober
	// healthy (runs happening on schedule), healthchecks.io-style.
	Heartbeat   *Heartbeat
	Silences    []Silence
	Maintenance []Maintenance
	Notifiers   []*Notifier // in file order
	Signals     []*Signal   // golden signals added to every page
	Rules       []*Rule
	// Prometheus is where promql rules and signals are read from.
	Prometheus *Prometheus
}

// Link is a named URL template.
type Link struct {
	Name string // "dashboard", "logs", "runbook", ...
	URL  string
}

// Heartbeat is a dead man's switch: silence from the prober alerts elsewhere.
type Heartbeat struct {
	URL      string // may hold a secret (resolved; redacted everywhere)
	Interval time.Duration
	// MaxPageDelay: the heartbeat stops while a page to a paging notifier
	// waits longer than this, or failed for good (default 5m).
	MaxPageDelay time.Duration
}

// Silence mutes notifications of matching alerts between Starts and Ends.
// Matchers are label equalities: rule, flow, dependency, severity, or any
// rule label.
type Silence struct {
	Pos          Pos
	Matchers     map[string]string
	Starts, Ends time.Time
	Comment      string
}

// Maintenance is a recurring silence: from each time Cron fires, for Duration.
type Maintenance struct {
	Pos      Pos
	Matchers map[string]string
	Cron     string
	Location *time.Location
	Duration time.Duration
	Comment  string
}

// NotifierType names a kind of notifier: a registered NotifierKind's Type.
type NotifierType string

// Notifier is one configured destination.
type Notifier struct {
	Name    string
	Pos     Pos
	Type    NotifierType
	Timeout time.Duration
	// Spec is its kind's own settings, as NotifierKind.Decode returned
	// them (secrets in it resolved, and so redacted wherever they would
	// appear).
	Spec any
	// Traits are what the lifecycle and the default routes know of it.
	Traits NotifierTraits
	// Disabled says why the notifier is off: an optional secret it needs
	// is not set. Rules routing to it skip it.
	Disabled string
}

// RuleKind names what a rule watches.
type RuleKind string

const (
	FlowFailing       RuleKind = "flow_failing"
	BurnRate          RuleKind = "burn_rate"
	DependencySuccess RuleKind = "dependency_success"
	Latency           RuleKind = "latency"
	PromQL            RuleKind = "promql"
	Absent            RuleKind = "absent"
)

// Rule is one alerting rule. Exactly one of the kind-specific parts is set,
// as Kind says.
type Rule struct {
	Name          string
	Pos           Pos
	Kind          RuleKind
	For           time.Duration // the condition must hold this long to fire; default 1m (0 for promql/latency: their windows smooth)
	KeepFiringFor time.Duration // a firing alert resolves only after the condition is false this long; default 2m
	Severity      string        // critical (default), error, warning, info
	Labels        map[string]string
	Notify        []string // notifier names; default Alerting.Routes[severity]
	// Group makes alerts page as one incident: while any alert of a group
	// fires, later alerts of the group join its incident instead of paging
	// again, and the incident resolves when the last of them does. Default
	// "": each alert is its own incident.
	Group string
	// Inhibits names rules whose alerts this rule's firing alerts hold back
	// (for flow_failing targets: only those failing at a step whose
	// dependency is this rule's dependency, when it has one).
	Inhibits []string
	Summary  string // optional fixed text prefixed to the page's summary

	FlowFailing       *FlowFailingRule
	BurnRate          *BurnRateRule
	DependencySuccess *DependencySuccessRule
	Latency           *LatencyRule
	PromQL            *PromQLRule
	Absent            *AbsentRule
	CertExpiry        *CertExpiryRule
}

// AbsentRule fires when a region's results stop arriving: none of its flows
// has a final run fresh enough (two intervals plus the timeout). One alert
// per silent region, labelled silent_region: a prober that died, lost its
// network, or stopped being scraped.
type AbsentRule struct {
	Flows   []string // empty = every flow
	Regions []string // the regions expected; default those seen reporting in the last day
}

// FlowFailingRule fires when a flow's runs fail, confirmed by an immediate
// retry, in at least MinRegions regions; failing in fewer than that is a
// regional degradation at DegradedSeverity.
type FlowFailingRule struct {
	Flows      []string // empty = every flow
	MinRegions int      // N; default 1
	// Regions are the M regions expected to report; default the regions
	// seen reporting. A missing region counts as unknown, not failing.
	Regions          []string
	DegradedSeverity string // default warning; "" with min_regions 1
}

// BurnWindow is one multiwindow burn-rate condition: the error budget burns
// faster than Factor over both Long and Short.
type BurnWindow struct {
	Long, Short time.Duration
	Factor      float64
	Severity    string
}

// BurnRateRule watches a flow's synthetic success SLO.
type BurnRateRule struct {
	Flow    string
	SLO     float64 // target success ratio, e.g. 0.995
	MinRuns int     // in the long window, else unknown; default 10
	Windows []BurnWindow
}

// DefaultBurnWindows are the Google SRE workbook's multiwindow,
// multi-burn-rate alerts: page at 14.4x over 1h and 5m and 6x over 6h and
// 30m; ticket at 3x over 1d and 2h and 1x over 3d and 6h.
var DefaultBurnWindows = []BurnWindow{
	{Long: time.Hour, Short: 5 * time.Minute, Factor: 14.4, Severity: "critical"},
	{Long: 6 * time.Hour, Short: 30 * time.Minute, Factor: 6, Severity: "critical"},
	{Long: 24 * time.Hour, Short: 2 * time.Hour, Factor: 3, Severity: "warning"},
	{Long: 72 * time.Hour, Short: 6 * time.Hour, Factor: 1, Severity: "warning"},
}

// DependencySuccessRule fires when the success ratio of steps marked with
// Dependency falls below Below over Window, given at least MinCalls calls
// and MinFailures failures. Calls are counted from final runs: a blip an
// immediate retry cleared is not a failure.
type DependencySuccessRule struct {
	Dependency  string
	Below       float64 // ratio 0..1
	Window      time.Duration
	MinCalls    int // default 3
	MinFailures int // default 2: one failed call alone never pages
	// Each region (of the probers making the calls) is judged on its own
	// calls, as flow_failing judges them: failing in at least MinRegions
	// regions is the rule's severity, in fewer DegradedSeverity.
	MinRegions       int      // default 1
	Regions          []string // the M regions expected; default those with calls
	DegradedSeverity string   // default warning
}

// LatencyRule fires when the Quantile of a step's (or, with Step empty, the
// flow's) duration exceeds Above over Window, given MinSamples.
type LatencyRule struct {
	Flow, Step string
	Quantile   float64 // 0..1, e.g. 0.95
	Above      time.Duration
	Window     time.Duration
	MinSamples int // default 5
}

// PromQLRule fires when the query's value compares true against Value. A
// query that returns no data is unknown. Several series are several alerts,
// labelled by their series labels.
type PromQLRule struct {
	Query string
	Op    string // >, >=, <, <=, ==, !=
	Value float64
}

// Signal is a golden signal whose value (now, and before the alert began)
// goes into every page that concerns it.
type Signal struct {
	Name string
	Pos  Pos
	// One of:
	Dependency  string // success ratio of steps with this dependency
	Flow        string // success ratio of this flow's runs
	PromQLQuery string // a value from the system's own Prometheus
	Window      time.Duration
	Unit        string // "ratio" (shown as %), "seconds", "" (a number)
}

// Prometheus is a Prometheus-compatible query API.
type Prometheus struct {
	URL             string
	BearerTokenFile string
	BasicAuthUser   string
	BasicAuthPass   string // resolved secret
	Timeout         time.Duration
	CAPEM           []byte
}
