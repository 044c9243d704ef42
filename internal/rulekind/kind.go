package rulekind

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// Kind is one rule kind: what a rule of it means, in process and in PromQL.
// Its settings are decoded by config (Rule's field of the kind's name).
type Kind interface {
	// Name is the kind's key in a rule (config.Rule.Kind).
	Name() config.RuleKind
	// Has says whether r carries the kind's settings; the engine and the
	// export refuse a rule without them.
	Has(r *config.Rule) bool
	// Evaluate judges r at c's time, appending an evaluation per label set
	// to out. Errors are Unknown evaluations, never panics (the engine
	// recovers one anyway).
	Evaluate(c Cycle, r *config.Rule, out []Evaluation) []Evaluation
	// Export returns r's Prometheus alerting rules (`prober rules`),
	// asking x for the recording rules they read.
	Export(x *Export, r *config.Rule) ([]AlertRule, error)
}

// Sizer is a kind that makes more than one evaluation per rule: the engine
// sizes a cycle's result with it.
type Sizer interface {
	Expected(c Cycle, r *config.Rule) int
}

// Kinds is the one table of rule kinds: adding a kind is its home (a file
// here, and its settings in config) and one line.
func Kinds() []Kind {
	return []Kind{
		flowFailingKind{},
		burnRateKind{},
		dependencyKind{},
		latencyKind{},
		promqlKind{},
		absentKind{},
		certExpiryKind{},
	}
}

// MaxTraceIDs bounds the trace ids in a page's evidence.
const MaxTraceIDs = 5

const maxTraceIDs = MaxTraceIDs

// Ident is a label set and its key (the alert lifecycle's dedup key, "" when
// the engine has none), shared by every evaluation of it: read only.
type Ident struct {
	Labels map[string]string
	Key    string
}

// Cycle is one evaluation of every rule at one time, as the engine runs
// it: the source, and what several rules read once per cycle (flows, their
// region states, label sets and keys, kept from one cycle to the next).
// Slices it returns are valid during the cycle only: evaluations copy what
// they keep.
type Cycle interface {
	Context() context.Context
	// At is the evaluation time; windows end at it.
	At() time.Time
	Source() Source
	Logger() *slog.Logger
	// Flows lists the source's flows, once per cycle.
	Flows() ([]string, error)
	// FlowStates are flow's region states, read once per cycle.
	FlowStates(flow string) ([]RegionState, error)
	// FlowRule is r's label set for flow (Labels(r, "flow", flow)) with
	// flow's states: for rules judging thousands of flows. Its Labels may
	// be nil when it has a Key: an evaluation that fires builds them
	// (Labels), one that does not carries the key alone.
	FlowRule(r *config.Rule, flow string) (Ident, []RegionState, error)
	// Ident is r's one label set, Labels(r, kv...): kv must be the same on
	// every call with r.
	Ident(r *config.Rule, kv ...string) Ident
	// IdentBy is r's label set Labels(r, kv...), one of many: the names
	// in kv must be the same on every call with r.
	IdentBy(r *config.Rule, kv ...string) Ident
	// Text is format(a, b), made once per cycle for each name and pair:
	// thousands of passing flows share a handful of strings. format must
	// be the same for every call with name.
	Text(name string, a, b int, format func(a, b int) string) string
	// Fire completes a Firing evaluation: the golden signals, then the
	// summary from parts, the signals and the newest trace id. By value:
	// an evaluation whose address went to an interface method would be
	// allocated on the heap for every flow, firing or not.
	Fire(r *config.Rule, ev Evaluation, parts ...string) Evaluation
}

// Labels are the rule's own labels, then identity labels (which win), then
// rule.
func Labels(r *config.Rule, kv ...string) map[string]string {
	m := make(map[string]string, len(r.Labels)+1+len(kv)/2)
	for k, v := range r.Labels {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	m["rule"] = r.Name
	return m
}

// Unknown is r's verdict when it cannot be judged.
func UnknownEval(r *config.Rule, labels map[string]string, value string, err error) Evaluation {
	return Evaluation{Rule: r, Labels: labels, Status: Unknown, Severity: Severity(r), Value: value, Err: err}
}

// Incomplete is r's verdict when it lacks its kind's settings.
func Incomplete(r *config.Rule) Evaluation {
	return UnknownEval(r, Labels(r), "the rule is incomplete",
		fmt.Errorf("rule %s of kind %s has no %s settings", r.Name, r.Kind, r.Kind))
}

// Severity is r's severity (critical by default).
func Severity(r *config.Rule) string {
	if r.Severity == "" {
		return "critical"
	}
	return r.Severity
}

// SeverityRank orders severities: critical > error > warning > info.
func SeverityRank(s string) int {
	switch s {
	case "critical":
		return 4
	case "error":
		return 3
	case "warning":
		return 2
	case "info":
		return 1
	}
	return 0
}

// forText is " for 2m" since the trouble began, or "".
func forText(c Cycle, since time.Time) string {
	if since.IsZero() || since.After(c.At()) {
		return ""
	}
	return " for " + human(c.At().Sub(since))
}
