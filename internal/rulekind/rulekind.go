// Package rulekind is the home of every rule kind: for each, its data
// needs (what it reads from a Source), its in-process evaluation (over a
// Cycle the engine runs), and its PromQL, built once for both the engine's
// Prometheus source and the exported Prometheus rules (`prober rules`).
// Kinds are registered in one table (Kinds). The engine's runtime (cycles,
// caches, sources) lives in golden, which imports this package; promrules
// imports it alone.
package rulekind

import (
	"context"
	"errors"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// Status of one rule for one label set.
type Status int

const (
	Unknown Status = iota // not enough data: neither healthy nor a page
	OK
	Firing // the condition holds now (the alert lifecycle applies `for`)
)

func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Firing:
		return "firing"
	}
	return "unknown"
}

// ErrNoPromQL is returned by sources that cannot run PromQL (the in-process
// store); promql rules and signals are then unknown.
var ErrNoPromQL = errors.New("no Prometheus configured for PromQL")

// RegionState is a flow's latest confirmed state in one region.
type RegionState struct {
	Region string
	// Known is false when the region has no final run fresh enough (within
	// two intervals plus the timeout): absent data is not health.
	Known   bool
	Failing bool
	// Since is when the current state (failing or passing) began: the start
	// of the streak of final runs with the same outcome.
	Since time.Time
	// Last is when the latest final run ended (zero when the source cannot
	// tell): the newest failing region's details lead a page.
	Last time.Time
	// Retries is how many immediate retries agreed with the last failure.
	Retries int
	// What failed, from the last final failed run (empty when unknown, e.g.
	// from a source that only has metrics).
	Step, Dependency, Class, Expectation, Actual, Message string
	// TraceIDs of the failing runs, newest first (retries included), at
	// most a few.
	TraceIDs []string
}

// Sample is one series of a PromQL result.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Source is where rules read their data: the in-process store (one prober)
// or a Prometheus-compatible API (many regions). at is the evaluation time;
// windows end at at.
type Source interface {
	// Flows lists the flows the source knows.
	Flows(ctx context.Context) ([]string, error)
	// FlowStates returns flow's state in every region reporting it.
	FlowStates(ctx context.Context, flow string, at time.Time) ([]RegionState, error)
	// FlowRatio counts a flow's final runs in (at-window, at] over all
	// regions: good ones and all.
	FlowRatio(ctx context.Context, flow string, window time.Duration, at time.Time) (good, total float64, err error)
	// DependencyRatio counts steps marked with dependency in (at-window, at].
	DependencyRatio(ctx context.Context, dependency string, window time.Duration, at time.Time) (good, total float64, err error)
	// Slower counts step durations (step "" = the flow's run durations)
	// in (at-window, at]: those above threshold, and all. Latency rules
	// read it: the q-quantile is above a threshold when more than 1-q of
	// the samples are, which a le bucket at the threshold tells Prometheus
	// exactly (see LatencySeries).
	Slower(ctx context.Context, flow, step string, threshold, window time.Duration, at time.Time) (slower, total float64, err error)
	// Query runs an instant PromQL query at at.
	Query(ctx context.Context, promql string, at time.Time) ([]Sample, error)
	// Regions lists the regions that reported any of flows (every flow
	// when flows is empty) in the day before at, sorted, with when each
	// last did: the regions an absent rule expects when it names none.
	Regions(ctx context.Context, flows []string, at time.Time) ([]RegionSeen, error)
}

// HistoryCoverage is a source that knows how far back a flow's data
// reaches (both sources do). A burn-rate window the data does not cover
// yet (a new flow, a prober just started without its history) holds fewer
// runs than its span, so that one failure weighs as many: it is not judged.
// A source without it is taken to cover every window.
type HistoryCoverage interface {
	// FlowCovers says whether flow's data reaches back to the start of
	// (at-window, at], within about one run interval.
	FlowCovers(ctx context.Context, flow string, window time.Duration, at time.Time) (bool, error)
}

// RegionRatio is what one region counted.
type RegionRatio struct {
	Region      string
	Good, Total float64
}

// DependencyRegions is a source that counts a dependency's calls per region
// (both sources do): dependency_success judges each region, as
// flow_failing does. A source without it is one region without a name.
type DependencyRegions interface {
	// DependencyRegionRatios is DependencyRatio per region, sorted by
	// region; regions without calls in the window may be left out.
	DependencyRegionRatios(ctx context.Context, dependency string, window time.Duration, at time.Time) ([]RegionRatio, error)
}

// FlowsByDependency is implemented by sources that know which flows call a
// dependency (the store does). Without it the engine looks through every
// flow's failing steps.
type FlowsByDependency interface {
	DependencyFlows(ctx context.Context, dependency string) ([]string, error)
}

// RegionSeen is a region that has reported, and when it last did (the
// newest final run of the flows asked about; zero when the region has
// reported no run yet, only its series).
type RegionSeen struct {
	Region string
	Last   time.Time
}

// SignalValue is a golden signal's value now and before the trouble.
type SignalValue struct {
	Name              string
	Unit              string // "ratio", "seconds" or ""
	Now, Before       float64
	HasNow, HasBefore bool
	Text              string // "gateway success 0% (was 99.8%)"
}

// Evidence is what a page says failed, how, and how sure we are.
type Evidence struct {
	Flow, Step, Dependency       string
	Class                        string
	Expectation, Actual, Message string
	RegionsFailing               []string // sorted
	RegionsKnown, RegionsTotal   int
	Retries                      int // immediate retries that agreed, over the failing regions
	Since                        time.Time
	TraceIDs                     []string // newest first, at most 5
}

// Evaluation is one rule's verdict for one label set.
type Evaluation struct {
	Rule *config.Rule
	// Labels identify the alert: rule, plus flow / dependency / step or
	// the PromQL series labels, plus the rule's own labels. Never region:
	// regions are evidence, not identity, so one incident spans them.
	// Shared by the evaluations of the same label set: read only.
	Labels map[string]string
	// Key is Options.Key of the rule's name and Labels, "" without one.
	Key      string
	Status   Status
	Severity string // the rule's, or its degraded/ticket severity
	// Value is the measured condition in words: "failing in 3/3 regions",
	// "gateway success 62.5% < 95% over 5m", "burning 20.1x over 1h and 5m".
	Value string
	// Summary is the page's one line (<= 1024 bytes), e.g. `checkout
	// failing in 3/3 regions since 02:14:03Z; step pay: json.status ==
	// "success": got "processing"; class swallowed_error; gateway success
	// 0% (was 99.8%); trace 4bf92f35...`.
	Summary  string
	Evidence Evidence
	Signals  []SignalValue
	// Err says why the status is Unknown, when it is an error.
	Err error
}
