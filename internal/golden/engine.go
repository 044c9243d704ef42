package golden

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"weak"

	"github.com/prober-dev/prober/internal/config"
)

// Options tune an Engine.
type Options struct {
	Logger *slog.Logger
	// Key, when set, names a rule's label set (the alert lifecycle passes
	// its dedup key, alert.Key). The engine computes it once per label set
	// rather than every cycle, and carries it in Evaluation.Key, so that
	// 10,000 label sets are not serialised again every few seconds.
	Key func(rule string, labels map[string]string) string
}

// Engine evaluates a configuration's rules over a Source. It keeps no
// verdicts between evaluations (the alert lifecycle does), so it is safe
// for concurrent use and cheap to rebuild on reload. What it does keep is
// derived from its configuration alone (label sets and their keys) and
// reusable buffers.
type Engine struct {
	a   *config.Alerting
	src Source
	log *slog.Logger
	key func(rule string, labels map[string]string) string
	// scratch is what the previous cycle leaves the next: a cycle takes it
	// (another running at the same time builds its own) and gives it back.
	scratch atomic.Pointer[scratch]
}

// NewEngine returns an engine for a's rules and signals over src.
func NewEngine(a *config.Alerting, src Source, o Options) *Engine {
	l := o.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Engine{a: a, src: src, log: l, key: o.Key}
}

// scratch is memory cycles reuse, so that a cycle over 10,000 flows
// allocates next to nothing per flow: label sets (built once, then shared
// by every evaluation of them, this cycle and later ones: read only), and
// where the flows' region states are read to.
type scratch struct {
	gen uint64 // cycles that used it
	// flows are what rules read of each flow, with one lookup a flow.
	flows  map[string]*flowRec
	nflows int // flows used this cycle
	idents map[*config.Rule]*ruleIdents
	// buf holds the region states read this cycle. Between cycles only
	// spare points at it, weakly: dead then, it is megabytes at 10,000
	// flows that a collection may take back (the next cycle then makes one
	// of bufLen), and that the next cycle reuses when none did.
	buf    []RegionState
	held   *stateBuf // spare's, while a cycle has it
	spare  weak.Pointer[stateBuf]
	bufLen int
}

// stateBuf is what scratch.spare points at.
type stateBuf struct{ rs []RegionState }

// flowRec is one flow's entry in the scratch: 64 bytes, kept for every flow
// from one cycle to the next.
type flowRec struct {
	used uint64 // the last cycle that used it
	// read is the last cycle that read its region states: buf[lo:hi], or
	// the error in cycle.errs. Valid in that cycle only.
	read   uint64
	lo, hi int32
	age    time.Duration // its maximum age, from a store source (0: not yet asked)
	// r is the first flow_failing rule over it, and id its label set under
	// r; other rules over it (few) keep theirs in their ruleIdents.
	r  *config.Rule
	id labelSet
}

// ruleIdents are the label sets of a rule that has one (burn rate,
// dependency, latency), or many: by region (absent), by flow (a
// flow_failing rule second over a flow).
type ruleIdents struct {
	fixed *ident
	by    map[string]*ident
	used  int // entries of by used this cycle
}

// labelSet is a label set and its key (Options.Key; "" without).
type labelSet struct {
	labels map[string]string
	key    string
}

// ident is a label set of ruleIdents.
type ident struct {
	labelSet
	gen uint64 // the last cycle that used it
}

// takeScratch returns the engine's scratch for one cycle.
func (e *Engine) takeScratch() *scratch {
	s := e.scratch.Swap(nil)
	if s == nil {
		s = &scratch{flows: map[string]*flowRec{}, idents: map[*config.Rule]*ruleIdents{}}
	}
	s.gen++
	s.nflows = 0
	if s.held = s.spare.Value(); s.held != nil {
		s.buf = s.held.rs[:0]
	} else {
		s.buf = make([]RegionState, 0, s.bufLen)
	}
	return s
}

// putScratch gives s back. The region states read are held weakly
// (evaluations hold copies of what they need); flows and regions not seen
// this cycle (gone from the configuration or the source) are dropped, unless
// the cycle saw none (it could not list them: they are kept for when it can
// again).
func (e *Engine) putScratch(s *scratch) {
	if s.held == nil {
		s.held = &stateBuf{}
		s.spare = weak.Make(s.held)
	}
	s.held.rs, s.bufLen = s.buf, len(s.buf)
	s.held, s.buf = nil, nil
	if s.nflows > 0 && len(s.flows) > s.nflows {
		for f, fr := range s.flows {
			if fr.used != s.gen {
				delete(s.flows, f)
			}
		}
	}
	for _, ri := range s.idents {
		if ri.used > 0 && len(ri.by) > ri.used {
			for k, id := range ri.by {
				if id.gen != s.gen {
					delete(ri.by, k)
				}
			}
		}
		ri.used = 0
	}
	e.scratch.Store(s)
}

// maxTraceIDs bounds the trace ids in a page's evidence.
const maxTraceIDs = 5

// burnEpsilon keeps a burn rate that equals its factor (0.144/0.01 against
// 14.4 is 14.399999999999999 or 14.400000000000002 in floating point)
// from firing on rounding noise: exactly at the limit is not over it.
const burnEpsilon = 1e-9

// Evaluate judges every rule for every label set at at. It never panics: a
// rule that cannot be judged (a source error, a panic, an odd rule) is
// Unknown with Err set. Firing evaluations carry evidence, signals and a
// summary; OK and Unknown ones only what the alert lifecycle needs to
// resolve or hold (Value, and Err).
//
// Evaluations' Labels maps are shared (by evaluations of the same label set
// in this and later cycles): read only.
func (e *Engine) Evaluate(ctx context.Context, at time.Time) []Evaluation {
	return e.AppendEvaluations(ctx, nil, at)
}

// AppendEvaluations is Evaluate appending to dst: a caller evaluating every
// few seconds can reuse one slice (with 10,000 flows it is megabytes).
func (e *Engine) AppendEvaluations(ctx context.Context, dst []Evaluation, at time.Time) []Evaluation {
	if e == nil || e.a == nil {
		return dst
	}
	if ctx == nil {
		ctx = context.Background()
	}
	c := &cycle{e: e, ctx: ctx, at: at, s: e.takeScratch()}
	defer e.putScratch(c.s)
	out := slices.Grow(dst, c.expected())
	for _, r := range e.a.Rules {
		if r != nil {
			n := len(out)
			out = c.evalRule(r, out)
			c.keys(out[n:])
		}
	}
	return out
}

// keys names the evaluations whose label sets are not cached (errors,
// PromQL series).
func (c *cycle) keys(evs []Evaluation) {
	if c.e.key == nil {
		return
	}
	for i := range evs {
		if ev := &evs[i]; ev.Key == "" {
			ev.Key = c.e.key(ev.Rule.Name, ev.Labels)
		}
	}
}

// cycle is one Evaluate call: its time, and what several rules read once.
type cycle struct {
	e   *Engine
	ctx context.Context
	at  time.Time
	s   *scratch

	flows     []string
	flowsErr  error
	flowsDone bool
	sigs      map[sigKey]sigVal
	values    map[[2]int]string
	lastPass  [2]int // the last passing known/total, and its Value
	lastValue string
	errs      map[*flowRec]error // flows whose states could not be read
}

type sigKey struct {
	i   int
	end int64
}

type sigVal struct {
	v  float64
	ok bool
}

// expected estimates how many evaluations the rules make, so that the
// result is allocated once (with 10,000 flows it is megabytes).
func (c *cycle) expected() int {
	n := 0
	for _, r := range c.e.a.Rules {
		switch {
		case r == nil:
		case r.Kind == config.FlowFailing && r.FlowFailing != nil && len(r.FlowFailing.Flows) > 0:
			n += len(r.FlowFailing.Flows)
		case r.Kind == config.Absent && r.Absent != nil && len(r.Absent.Regions) > 0:
			n += len(r.Absent.Regions)
		case r.Kind == config.FlowFailing && c.e.src != nil:
			if c.ctx.Err() == nil {
				flows, _ := c.allFlows()
				n += len(flows)
			}
			n++
		default:
			n++
		}
	}
	return n
}

func (c *cycle) allFlows() ([]string, error) {
	if !c.flowsDone {
		c.flowsDone = true
		func() {
			// Also called outside any rule (sizing the result): a
			// panicking source is an error here too.
			defer func() {
				if p := recover(); p != nil {
					c.flows, c.flowsErr = nil, fmt.Errorf("listing flows: panic: %v", p)
				}
			}()
			c.flows, c.flowsErr = c.e.src.Flows(c.ctx)
		}()
	}
	return c.flows, c.flowsErr
}

// flow returns flow's entry in the scratch.
func (c *cycle) flow(flow string) *flowRec {
	fr := c.s.flows[flow]
	if fr == nil {
		fr = &flowRec{}
		c.s.flows[flow] = fr
	}
	if fr.used != c.s.gen {
		fr.used = c.s.gen
		c.s.nflows++
	}
	return fr
}

// flowStates reads a flow's region states once per cycle: several rules
// (flow failing, burn rate evidence, dependency evidence) look at them.
func (c *cycle) flowStates(flow string) ([]RegionState, error) {
	return c.flowRecStates(flow, c.flow(flow))
}

// flowRecStates is flowStates with flow's entry at hand. States are read
// into the scratch buffer, which the next cycle reuses: nothing that
// outlives the cycle may keep them (evidence copies).
func (c *cycle) flowRecStates(flow string, fr *flowRec) ([]RegionState, error) {
	if fr.read != c.s.gen {
		fr.read = c.s.gen
		start := len(c.s.buf)
		if sa, ok := c.e.src.(stateAppender); ok {
			if fr.age == 0 {
				fr.age = sa.flowMaxAge(flow)
			}
			c.s.buf = sa.appendFlowStates(c.s.buf, flow, c.at.Add(-fr.age))
		} else if rs, err := c.e.src.FlowStates(c.ctx, flow, c.at); err != nil {
			if c.errs == nil {
				c.errs = map[*flowRec]error{}
			}
			c.errs[fr] = err
		} else {
			c.s.buf = append(c.s.buf, rs...)
		}
		fr.lo, fr.hi = int32(start), int32(len(c.s.buf))
	}
	if fr.hi > fr.lo {
		return c.s.buf[fr.lo:fr.hi:fr.hi], nil // capped: an append cannot reach the next flow's
	}
	return nil, c.errs[fr]
}

// flowIdent is flow's label set under r, a flow_failing rule:
// ruleLabels(r, "flow", flow), built on first use.
func (c *cycle) flowIdent(r *config.Rule, flow string, fr *flowRec) labelSet {
	switch fr.r {
	case r:
	case nil:
		fr.r, fr.id = r, c.newLabelSet(r, "flow", flow)
	default:
		return c.byIdent(c.ruleIdents(r), r, "flow", flow).labelSet
	}
	return fr.id
}

// ruleIdents returns r's label sets.
func (c *cycle) ruleIdents(r *config.Rule) *ruleIdents {
	ri := c.s.idents[r]
	if ri == nil {
		ri = &ruleIdents{}
		c.s.idents[r] = ri
	}
	return ri
}

// fixedIdent is the label set of a rule with one: ruleLabels(r, kv...),
// built on first use. kv must be the same for every call with r.
func (c *cycle) fixedIdent(r *config.Rule, kv ...string) *ident {
	ri := c.ruleIdents(r)
	if ri.fixed == nil {
		ri.fixed = &ident{labelSet: c.newLabelSet(r, kv...)}
	}
	return ri.fixed
}

// byIdent is r's label set ruleLabels(r, name, value), built on first use;
// name must be the same for every call with ri.
func (c *cycle) byIdent(ri *ruleIdents, r *config.Rule, name, value string) *ident {
	id := ri.by[value]
	if id == nil {
		id = &ident{labelSet: c.newLabelSet(r, name, value)}
		if ri.by == nil {
			ri.by = map[string]*ident{}
		}
		ri.by[value] = id
	}
	if id.gen != c.s.gen {
		id.gen = c.s.gen
		ri.used++
	}
	return id
}

func (c *cycle) newLabelSet(r *config.Rule, kv ...string) labelSet {
	ls := labelSet{labels: ruleLabels(r, kv...)}
	if c.e.key != nil {
		ls.key = c.e.key(r.Name, ls.labels)
	}
	return ls
}

func (c *cycle) evalRule(r *config.Rule, out []Evaluation) (res []Evaluation) {
	n := len(out)
	defer func() {
		if p := recover(); p != nil {
			c.e.log.Error("rule_evaluation_panic", "rule", r.Name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res = append(out[:n], unknown(r, ruleLabels(r), "the rule could not be evaluated",
				fmt.Errorf("evaluating rule %s: panic: %v", r.Name, p)))
		}
	}()
	if c.e.src == nil {
		return append(out, unknown(r, ruleLabels(r), "no data source", errors.New("no data source configured")))
	}
	if err := c.ctx.Err(); err != nil {
		return append(out, unknown(r, ruleLabels(r), "evaluation cancelled", err))
	}
	missing := func(part string) []Evaluation {
		return append(out, unknown(r, ruleLabels(r), "the rule is incomplete",
			fmt.Errorf("rule %s of kind %s has no %s settings", r.Name, r.Kind, part)))
	}
	switch r.Kind {
	case config.FlowFailing:
		if r.FlowFailing == nil {
			return missing("flow_failing")
		}
		return c.flowFailing(r, out)
	case config.BurnRate:
		if r.BurnRate == nil {
			return missing("burn_rate")
		}
		return append(out, c.burnRate(r))
	case config.DependencySuccess:
		if r.DependencySuccess == nil {
			return missing("dependency_success")
		}
		return append(out, c.dependency(r))
	case config.Latency:
		if r.Latency == nil {
			return missing("latency")
		}
		return append(out, c.latency(r))
	case config.PromQL:
		if r.PromQL == nil {
			return missing("promql")
		}
		return c.promql(r, out)
	case config.Absent:
		if r.Absent == nil {
			return missing("absent")
		}
		return c.absent(r, out)
	}
	return append(out, unknown(r, ruleLabels(r), "unknown rule kind", fmt.Errorf("rule %s: unknown kind %q", r.Name, r.Kind)))
}

// ruleLabels are the rule's own labels, then identity labels (which win),
// then rule.
func ruleLabels(r *config.Rule, kv ...string) map[string]string {
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

func unknown(r *config.Rule, labels map[string]string, value string, err error) Evaluation {
	return Evaluation{Rule: r, Labels: labels, Status: Unknown, Severity: severity(r), Value: value, Err: err}
}

func severity(r *config.Rule) string {
	if r.Severity == "" {
		return "critical"
	}
	return r.Severity
}

// severityRank orders severities: critical > error > warning > info.
func severityRank(s string) int {
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

// --- flow failing -----------------------------------------------------------

func (c *cycle) flowFailing(r *config.Rule, out []Evaluation) []Evaluation {
	ff := r.FlowFailing
	flows := ff.Flows
	if len(flows) == 0 {
		all, err := c.allFlows()
		if err != nil {
			return append(out, unknown(r, ruleLabels(r), "cannot list flows", fmt.Errorf("listing flows: %w", err)))
		}
		flows = all
	}
	out = slices.Grow(out, len(flows))
	for _, f := range flows {
		out = append(out, c.flowFailingOne(r, ff, f))
	}
	return out
}

func (c *cycle) flowFailingOne(r *config.Rule, ff *config.FlowFailingRule, flow string) Evaluation {
	fr := c.flow(flow)
	id := c.flowIdent(r, flow, fr)
	ev := Evaluation{Rule: r, Labels: id.labels, Key: id.key, Severity: severity(r)}
	ev.Evidence.Flow = flow
	if err := c.ctx.Err(); err != nil {
		ev.Value, ev.Err = "evaluation cancelled", err
		return ev
	}
	states, err := c.flowRecStates(flow, fr)
	if err != nil {
		ev.Value, ev.Err = "cannot read the flow's state", fmt.Errorf("flow %s: %w", flow, err)
		return ev
	}
	q := quorumOf(states, ff.Regions)
	ev.Evidence.RegionsKnown, ev.Evidence.RegionsTotal = q.known, q.total
	need := max(ff.MinRegions, 1)
	nf := len(q.failing)
	switch {
	case nf >= need:
		ev.Status = Firing
		ev.Evidence = evidenceOf(flow, q)
		ev.Value = fmt.Sprintf("failing in %d/%d %s", nf, q.total, plural(q.total, "region", "regions"))
		head := flow + " " + ev.Value
		if nf < q.total {
			head += " (" + strings.Join(ev.Evidence.RegionsFailing, ", ") + ")"
		}
		c.fire(r, &ev, append([]string{head + c.forText(ev.Evidence.Since)}, failureParts(&ev.Evidence)...)...)
	case nf > 0 && ff.DegradedSeverity != "":
		// Failing somewhere, but fewer regions than confirm an outage: a
		// regional degradation, at its own (lower) severity.
		ev.Status, ev.Severity = Firing, ff.DegradedSeverity
		ev.Evidence = evidenceOf(flow, q)
		ev.Value = fmt.Sprintf("degraded: failing in %d/%d %s (%s)", nf, q.total, plural(q.total, "region", "regions"),
			strings.Join(ev.Evidence.RegionsFailing, ", "))
		c.fire(r, &ev, append([]string{flow + " " + ev.Value + c.forText(ev.Evidence.Since)}, failureParts(&ev.Evidence)...)...)
	case nf > 0:
		// No degraded severity: a failure below the quorum is not an alert.
		ev.Status = OK
		ev.Value = fmt.Sprintf("failing in %d/%d %s, fewer than the %d needed", nf, q.total, plural(q.total, "region", "regions"), need)
	case q.known == 0:
		ev.Status = Unknown
		switch {
		case len(states) == 0:
			ev.Value = "no runs yet"
		default:
			ev.Value = fmt.Sprintf("no fresh runs in any of %d %s", q.total, plural(q.total, "region", "regions"))
		}
	default:
		ev.Status = OK
		ev.Value = c.passing(q.known, q.total)
	}
	return ev
}

// passing is the Value of a passing flow, made once per cycle for each
// known/total: thousands of passing flows share a handful of strings.
func (c *cycle) passing(known, total int) string {
	k := [2]int{known, total}
	if k == c.lastPass && c.lastValue != "" {
		return c.lastValue // most flows report in as many regions as the last
	}
	if v, ok := c.values[k]; ok {
		c.lastPass, c.lastValue = k, v
		return v
	}
	v := fmt.Sprintf("passing in %d/%d %s", known, total, plural(total, "region", "regions"))
	if known < total {
		v += fmt.Sprintf(" (%d without fresh runs)", total-known)
	}
	if c.values == nil {
		c.values = map[[2]int]string{}
	}
	c.values[k] = v
	c.lastPass, c.lastValue = k, v
	return v
}

// quorum is a flow's regions as a rule sees them: how many it expects
// (total), how many reported fresh final runs (known), and which of those
// failed.
type quorum struct {
	total, known int
	failing      []*RegionState
}

// quorumOf counts states. With regions listed, those are the M regions
// expected (a region outside the list is ignored; a listed one not
// reporting is unknown, not failing); else M is the regions reporting.
func quorumOf(states []RegionState, regions []string) quorum {
	q := quorum{total: len(states)}
	if len(regions) > 0 {
		q.total = len(regions)
	}
	for i := range states {
		s := &states[i]
		if len(regions) > 0 && !slices.Contains(regions, s.Region) {
			continue
		}
		if s.Known {
			q.known++
			if s.Failing {
				q.failing = append(q.failing, s)
			}
		}
	}
	return q
}

// evidenceOf describes a flow's failing regions: the newest failure's
// details, the regions, retries that agreed, the earliest streak start,
// and trace ids.
func evidenceOf(flow string, q quorum) Evidence {
	ev := Evidence{Flow: flow, RegionsKnown: q.known, RegionsTotal: q.total}
	addFailures(&ev, q.failing)
	return ev
}

// addFailures adds failing region states to ev.
func addFailures(ev *Evidence, failing []*RegionState) {
	if len(failing) == 0 {
		return
	}
	byNewest := slices.Clone(failing)
	slices.SortStableFunc(byNewest, func(a, b *RegionState) int { return b.Last.Compare(a.Last) })
	n := byNewest[0]
	ev.Step, ev.Class, ev.Expectation, ev.Actual, ev.Message = n.Step, n.Class, n.Expectation, n.Actual, n.Message
	if ev.Dependency == "" {
		ev.Dependency = n.Dependency
	}
	for _, s := range failing {
		if !slices.Contains(ev.RegionsFailing, s.Region) {
			ev.RegionsFailing = append(ev.RegionsFailing, s.Region)
		}
		ev.Retries += s.Retries
		if !s.Since.IsZero() && (ev.Since.IsZero() || s.Since.Before(ev.Since)) {
			ev.Since = s.Since
		}
	}
	slices.Sort(ev.RegionsFailing)
	// Newest first within each region; regions interleaved newest region
	// first, so that a page's few trace ids span the regions failing.
	for i := 0; len(ev.TraceIDs) < maxTraceIDs; i++ {
		more := false
		for _, s := range byNewest {
			if i < len(s.TraceIDs) {
				more = true
				if t := s.TraceIDs[i]; t != "" && !slices.Contains(ev.TraceIDs, t) && len(ev.TraceIDs) < maxTraceIDs {
					ev.TraceIDs = append(ev.TraceIDs, t)
				}
			}
		}
		if !more {
			break
		}
	}
}

// failureParts tells what failed: the step and its expectation, the
// class, and how many retries agreed.
func failureParts(ev *Evidence) []string {
	var parts []string
	switch {
	case ev.Step != "" && ev.Message != "":
		parts = append(parts, "step "+ev.Step+": "+ev.Message)
	case ev.Step != "":
		parts = append(parts, "step "+ev.Step+" failed")
	}
	if ev.Class != "" && ev.Class != "ok" {
		parts = append(parts, "class "+ev.Class)
	}
	if ev.Retries > 0 {
		parts = append(parts, fmt.Sprintf("confirmed by %d %s", ev.Retries, plural(ev.Retries, "retry", "retries")))
	}
	return parts
}

// forText is " for 2m" since the trouble began, or "".
func (c *cycle) forText(since time.Time) string {
	if since.IsZero() || since.After(c.at) {
		return ""
	}
	return " for " + human(c.at.Sub(since))
}

// fire completes a Firing evaluation: signals, then the summary from
// parts, the signals and the newest trace id.
func (c *cycle) fire(r *config.Rule, ev *Evaluation, parts ...string) {
	ev.Signals = c.signals(ev.Evidence.Since)
	var b strings.Builder
	if r.Summary != "" {
		b.WriteString(r.Summary)
		b.WriteString(": ")
	}
	first := true
	add := func(s string) {
		if s == "" {
			return
		}
		if !first {
			b.WriteString("; ")
		}
		first = false
		b.WriteString(s)
	}
	for _, p := range parts {
		add(p)
	}
	for _, s := range ev.Signals {
		add(s.Text)
	}
	if len(ev.Evidence.TraceIDs) > 0 {
		add("trace " + ev.Evidence.TraceIDs[0])
	}
	ev.Summary = truncate(b.String(), maxSummary)
}

// --- burn rate --------------------------------------------------------------

type burnPair struct {
	w            config.BurnWindow
	severity     string
	burnL, burnS float64
	goodL, nL    float64
	firing       bool
}

func (c *cycle) burnRate(r *config.Rule) Evaluation {
	br := r.BurnRate
	id := c.fixedIdent(r, "flow", br.Flow)
	ev := Evaluation{Rule: r, Labels: id.labels, Key: id.key, Severity: severity(r)}
	ev.Evidence.Flow = br.Flow
	if !(br.SLO > 0 && br.SLO < 1) {
		ev.Value, ev.Err = "the rule is incomplete", fmt.Errorf("rule %s: slo %v must be between 0 and 1", r.Name, br.SLO)
		return ev
	}
	budget := 1 - br.SLO
	windows := br.Windows
	if len(windows) == 0 {
		windows = config.DefaultBurnWindows
	}
	minRuns := float64(max(br.MinRuns, 1))
	// A window may serve two pairs (6h is one's long and another's short).
	type ratio struct {
		w       time.Duration
		good, n float64
		err     error
	}
	var ratios []ratio
	get := func(w time.Duration) (float64, float64, error) {
		for _, x := range ratios {
			if x.w == w {
				return x.good, x.n, x.err
			}
		}
		g, n, err := c.e.src.FlowRatio(c.ctx, br.Flow, w, c.at)
		ratios = append(ratios, ratio{w, g, n, err})
		return g, n, err
	}
	var (
		best, closest *burnPair
		why           string
		firstErr      error
	)
	for _, w := range windows {
		if w.Long <= 0 || w.Short <= 0 || w.Factor <= 0 {
			continue
		}
		gL, nL, err := get(w.Long)
		gS, nS, err2 := get(w.Short)
		if err = errors.Join(err, err2); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("flow %s: %w", br.Flow, err)
			}
			continue
		}
		// Evidence: one failure alone must not fire the pair. Both windows
		// must cross the limit, so it is enough that the long one holds
		// more than 1/(factor×budget) runs (one failure is then below the
		// limit there) and at least min_runs; requiring it of the short
		// window too would blind the 14.4x pair of a flow run once a
		// minute in one region (5 runs in 5m, 7 needed).
		need := max(minRuns, math.Floor(1/(w.Factor*budget))+1)
		if nL < need {
			if why == "" {
				why = fmt.Sprintf("%s over %s, fewer than the %s needed", runs(nL), span(w.Long), number(need))
			}
			continue
		}
		// And the data must cover the long window: a young history (a new
		// flow, a restart without the saved history) counts its few runs
		// as if they were the window's.
		if covered, err := c.covers(br.Flow, w.Long); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("flow %s: %w", br.Flow, err)
			}
			continue
		} else if !covered {
			if why == "" {
				why = fmt.Sprintf("the flow's history does not cover %s yet", span(w.Long))
			}
			continue
		}
		if nS <= 0 {
			if why == "" {
				why = fmt.Sprintf("no runs over %s", span(w.Short))
			}
			continue
		}
		p := &burnPair{w: w, severity: w.Severity, goodL: gL, nL: nL,
			burnL: (nL - gL) / nL / budget, burnS: (nS - gS) / nS / budget}
		if p.severity == "" {
			p.severity = severity(r)
		}
		limit := w.Factor * budget * (1 + burnEpsilon)
		p.firing = (nL-gL)/nL > limit && (nS-gS)/nS > limit
		if p.firing && (best == nil || severityRank(p.severity) > severityRank(best.severity)) {
			best = p
		}
		if closest == nil || min(p.burnL, p.burnS)/p.w.Factor > min(closest.burnL, closest.burnS)/closest.w.Factor {
			closest = p
		}
	}
	describe := func(p *burnPair) string {
		return fmt.Sprintf("burning %s the error budget over %s and %s (limit %s)",
			times(min(p.burnL, p.burnS)), span(p.w.Long), span(p.w.Short), times(p.w.Factor))
	}
	switch {
	case best != nil:
		ev.Status, ev.Severity, ev.Value = Firing, best.severity, describe(best)
		parts := []string{br.Flow + " " + ev.Value,
			fmt.Sprintf("success %s over %s against an SLO of %s", percent(best.goodL/best.nL), span(best.w.Long), percent(br.SLO))}
		if states, err := c.flowStates(br.Flow); err == nil {
			q := quorumOf(states, nil)
			ev.Evidence = evidenceOf(br.Flow, q)
			if n := len(q.failing); n > 0 {
				parts = append(parts, fmt.Sprintf("failing now in %d/%d %s%s", n, q.total, plural(q.total, "region", "regions"),
					c.forText(ev.Evidence.Since)))
				parts = append(parts, failureParts(&ev.Evidence)...)
			}
		}
		c.fire(r, &ev, parts...)
	case closest != nil:
		ev.Status, ev.Value = OK, describe(closest)
	default:
		ev.Status, ev.Err = Unknown, firstErr
		switch {
		case firstErr != nil:
			ev.Value = "cannot count the flow's runs"
		case why != "":
			ev.Value = why
		default:
			ev.Value = "no burn windows"
		}
	}
	return ev
}

// covers says whether the source's data of flow covers window; a source
// that cannot tell covers every window.
func (c *cycle) covers(flow string, window time.Duration) (bool, error) {
	hc, ok := c.e.src.(HistoryCoverage)
	if !ok {
		return true, nil
	}
	return hc.FlowCovers(c.ctx, flow, window, c.at)
}

func runs(n float64) string {
	if n == 1 {
		return "1 run"
	}
	return number(n) + " runs"
}

// --- dependency success -----------------------------------------------------

func (c *cycle) dependency(r *config.Rule) Evaluation {
	d := r.DependencySuccess
	id := c.fixedIdent(r, "dependency", d.Dependency)
	ev := Evaluation{Rule: r, Labels: id.labels, Key: id.key, Severity: severity(r)}
	ev.Evidence.Dependency = d.Dependency
	window := d.Window
	if window <= 0 {
		window = 5 * time.Minute
	}
	regions, named, err := c.dependencyRegions(d.Dependency, window)
	if err != nil {
		ev.Value, ev.Err = "cannot count the dependency's calls", fmt.Errorf("dependency %s: %w", d.Dependency, err)
		return ev
	}
	// Each region is judged on its own calls, as flow_failing judges a
	// flow's: one region's gateway failing is a regional degradation, not
	// the outage that summing the regions' calls (77% < 95% with one of
	// three failing) would make it.
	minCalls := float64(max(d.MinCalls, 1))
	minFailures := float64(max(d.MinFailures, 1))
	var (
		failing, judged []RegionRatio
		all, fl         RegionRatio // sums: every region listed, and the failing
		below           *RegionRatio
		total           = len(regions)
	)
	if len(d.Regions) > 0 {
		total = len(d.Regions)
	}
	for i := range regions {
		x := &regions[i]
		if len(d.Regions) > 0 && !slices.Contains(d.Regions, x.Region) {
			continue
		}
		all.Good, all.Total = all.Good+x.Good, all.Total+x.Total
		if x.Total < minCalls {
			continue // too few calls to judge: unknown, not healthy
		}
		judged = append(judged, *x)
		switch {
		case x.Good/x.Total >= d.Below:
		case x.Total-x.Good >= minFailures:
			failing = append(failing, *x)
			fl.Good, fl.Total = fl.Good+x.Good, fl.Total+x.Total
		case below == nil:
			below = x
		}
	}
	if len(judged) == 0 {
		ev.Value = fmt.Sprintf("%s over %s, fewer than the %s needed", calls(all.Total), span(window), number(minCalls))
		if named && len(regions) > 1 {
			ev.Value += " in any region"
		}
		return ev
	}
	inRegions := func(n int, list []RegionRatio) string {
		if !named || total <= 1 {
			return ""
		}
		names := make([]string, len(list))
		for i, x := range list {
			names[i] = x.Region
		}
		s := fmt.Sprintf(" in %d/%d %s", n, total, plural(total, "region", "regions"))
		if n < total {
			s += " (" + strings.Join(names, ", ") + ")"
		}
		return s
	}
	need := max(d.MinRegions, 1)
	nf := len(failing)
	firing := func(prefix string) {
		ev.Status = Firing
		ev.Value = fmt.Sprintf("%s%s success %s < %s over %s (%s)%s", prefix, d.Dependency, percent(fl.Good/fl.Total),
			percent(d.Below), span(window), calls(fl.Total), inRegions(nf, failing))
		parts := []string{ev.Value}
		if f := c.dependencyEvidence(&ev.Evidence, d.Dependency); f != "" {
			parts = append(parts, "failing flows: "+f)
		}
		if named {
			// The regions whose calls fail, as counted: flows' states may
			// be stale or fail elsewhere.
			ev.Evidence.RegionsFailing = ev.Evidence.RegionsFailing[:0]
			for _, x := range failing {
				ev.Evidence.RegionsFailing = append(ev.Evidence.RegionsFailing, x.Region)
			}
			ev.Evidence.RegionsKnown, ev.Evidence.RegionsTotal = len(judged), total
		}
		c.fire(r, &ev, parts...)
	}
	switch {
	case nf >= need:
		firing("")
	case nf > 0 && d.DegradedSeverity != "":
		ev.Severity = d.DegradedSeverity
		firing("degraded: ")
	case nf > 0:
		ev.Status = OK
		ev.Value = fmt.Sprintf("%s success below %s%s, fewer than the %d %s needed", d.Dependency, percent(d.Below),
			inRegions(nf, failing), need, plural(need, "region", "regions"))
	default:
		ev.Status = OK
		ev.Value = fmt.Sprintf("%s success %s over %s (%s)", d.Dependency, percent(all.Good/all.Total), span(window), calls(all.Total))
		if below != nil {
			fails := below.Total - below.Good
			where := ""
			if named && total > 1 {
				where = " in " + below.Region
			}
			ev.Value += fmt.Sprintf(", but %s %s%s, fewer than the %d that page", number(fails),
				plural(int(fails), "failure", "failures"), where, max(d.MinFailures, 1))
		}
	}
	return ev
}

// dependencyRegions counts dependency's calls per region, or over all of
// them as one region without a name (named false) when the source cannot
// tell regions apart.
func (c *cycle) dependencyRegions(dependency string, window time.Duration) (rs []RegionRatio, named bool, err error) {
	if dr, ok := c.e.src.(DependencyRegions); ok {
		rs, err = dr.DependencyRegionRatios(c.ctx, dependency, window, c.at)
		return rs, true, err
	}
	good, n, err := c.e.src.DependencyRatio(c.ctx, dependency, window, c.at)
	if err != nil {
		return nil, false, err
	}
	return []RegionRatio{{Good: good, Total: n}}, false, nil
}

func calls(n float64) string {
	if n == 1 {
		return "1 call"
	}
	return number(n) + " calls"
}

// dependencyEvidence fills ev from the flows failing now at a step calling
// dependency, and lists them: "checkout at pay (swallowed_error)".
func (c *cycle) dependencyEvidence(ev *Evidence, dependency string) string {
	var flows []string
	var err error
	if fd, ok := c.e.src.(FlowsByDependency); ok {
		flows, err = fd.DependencyFlows(c.ctx, dependency)
	} else {
		flows, err = c.allFlows()
	}
	if err != nil {
		c.e.log.Warn("dependency_evidence_failed", "dependency", dependency, "error", err.Error())
		return ""
	}
	var (
		failing []*RegionState
		list    []string
		regions = map[string]bool{}
		known   = map[string]bool{}
	)
	for _, f := range flows {
		states, err := c.flowStates(f)
		if err != nil {
			continue
		}
		var newest *RegionState
		for i := range states {
			s := &states[i]
			calls := s.Dependency == dependency
			if !calls && s.Dependency != "" {
				continue // fails elsewhere: not evidence about this dependency
			}
			regions[s.Region] = true
			if s.Known {
				known[s.Region] = true
			}
			if s.Known && s.Failing && calls {
				failing = append(failing, s)
				if newest == nil || s.Last.After(newest.Last) {
					newest = s
				}
			}
		}
		if newest != nil {
			item := f
			if newest.Step != "" {
				item += " at " + newest.Step
			}
			if newest.Class != "" {
				item += " (" + newest.Class + ")"
			}
			list = append(list, item)
		}
	}
	ev.RegionsKnown, ev.RegionsTotal = len(known), len(regions)
	addFailures(ev, failing)
	const show = 5
	if len(list) > show {
		list = append(list[:show], fmt.Sprintf("and %d more", len(list)-show))
	}
	return strings.Join(list, ", ")
}

// --- latency ----------------------------------------------------------------

func (c *cycle) latency(r *config.Rule) Evaluation {
	l := r.Latency
	var id *ident
	if l.Step != "" {
		id = c.fixedIdent(r, "flow", l.Flow, "step", l.Step)
	} else {
		id = c.fixedIdent(r, "flow", l.Flow)
	}
	ev := Evaluation{Rule: r, Labels: id.labels, Key: id.key, Severity: severity(r)}
	ev.Evidence.Flow, ev.Evidence.Step = l.Flow, l.Step
	q := l.Quantile
	if !(q > 0 && q <= 1) {
		q = 0.95
	}
	window := l.Window
	if window <= 0 {
		window = 10 * time.Minute
	}
	// The q-quantile is above the threshold when more than 1-q of the
	// samples are: the nearest-rank quantile, what Prometheus reads exactly
	// from the le bucket at the threshold (promrules exports the same
	// comparison). Compared as the share at or below it against q, as the
	// exported rule does, so that a share exactly at the limit does not
	// fire on rounding: 19 of 20 within is 0.95, not above 1-0.95.
	slower, total, err := c.e.src.Slower(c.ctx, l.Flow, l.Step, l.Above, window, c.at)
	if err != nil {
		ev.Value, ev.Err = "cannot read durations", fmt.Errorf("flow %s step %q: %w", l.Flow, l.Step, err)
		return ev
	}
	n := int(math.Round(total))
	if need := max(l.MinSamples, 1); n < need || total <= 0 {
		ev.Value = fmt.Sprintf("%d %s over %s, fewer than the %d needed", n, plural(n, "sample", "samples"), span(window), need)
		return ev
	}
	what := l.Flow
	if l.Step != "" {
		what += " step " + l.Step
	}
	share := fmt.Sprintf("%s of %d %s slower than %s (limit %s)", percent(slower/total), n, plural(n, "sample", "samples"),
		latency(l.Above), percent(1-q))
	if (total-slower)/total < q {
		ev.Status = Firing
		ev.Value = fmt.Sprintf("%s > %s over %s: %s", quantileName(q), latency(l.Above), span(window), share)
		c.fire(r, &ev, what+" "+ev.Value)
		return ev
	}
	ev.Status = OK
	ev.Value = fmt.Sprintf("%s <= %s over %s: %s", quantileName(q), latency(l.Above), span(window), share)
	return ev
}

// --- promql -----------------------------------------------------------------

func (c *cycle) promql(r *config.Rule, out []Evaluation) []Evaluation {
	p := r.PromQL
	samples, err := c.e.src.Query(c.ctx, p.Query, c.at)
	if err != nil {
		return append(out, unknown(r, ruleLabels(r), "cannot run the query", err))
	}
	if len(samples) == 0 {
		return append(out, unknown(r, ruleLabels(r), "the query returned no data", nil))
	}
	for _, s := range samples {
		series := make(map[string]string, len(s.Labels))
		for k, v := range s.Labels {
			if k != "__name__" {
				series[k] = v
			}
		}
		lab := make(map[string]string, len(r.Labels)+len(series)+1)
		for k, v := range r.Labels {
			lab[k] = v
		}
		for k, v := range series {
			lab[k] = v
		}
		lab["rule"] = r.Name
		ev := Evaluation{Rule: r, Labels: lab, Severity: severity(r)}
		hit, ok := compare(s.Value, p.Op, p.Value)
		switch {
		case !ok:
			ev.Value, ev.Err = "the rule is incomplete", fmt.Errorf("rule %s: unknown comparison %q", r.Name, p.Op)
		case math.IsNaN(s.Value):
			ev.Value = "the query returned NaN"
		case hit:
			ev.Status = Firing
			ev.Value = fmt.Sprintf("%s %s %s", number(s.Value), p.Op, number(p.Value))
			head := r.Name
			if ls := labelString(series); ls != "" {
				head += " " + ls
			}
			c.fire(r, &ev, head+": "+ev.Value)
		default:
			ev.Status = OK
			ev.Value = fmt.Sprintf("%s, not %s %s", number(s.Value), p.Op, number(p.Value))
		}
		out = append(out, ev)
	}
	return out
}

func compare(v float64, op string, x float64) (hit, ok bool) {
	switch op {
	case ">":
		return v > x, true
	case ">=":
		return v >= x, true
	case "<":
		return v < x, true
	case "<=":
		return v <= x, true
	case "==":
		return v == x, true
	case "!=":
		return v != x, true
	}
	return false, false
}

// --- absent -----------------------------------------------------------------

// absent judges each expected region: silent (Firing) when none of the
// rule's flows has a fresh final run there, reporting (OK) when one has,
// Unknown when the data cannot tell. One evaluation per region, labelled
// silent_region (not region, which alert keys drop: each silent region is
// its own alert).
func (c *cycle) absent(r *config.Rule, out []Evaluation) []Evaluation {
	a := r.Absent
	flows := a.Flows
	if len(flows) == 0 {
		all, err := c.allFlows()
		if err != nil {
			return append(out, unknown(r, ruleLabels(r), "cannot list flows", fmt.Errorf("listing flows: %w", err)))
		}
		flows = all
	}
	type regionView struct {
		fresh int       // flows with a fresh final run
		last  time.Time // newest final run seen, fresh or not
	}
	view := map[string]*regionView{}
	at := func(region string) *regionView {
		v := view[region]
		if v == nil {
			v = &regionView{}
			view[region] = v
		}
		return v
	}
	// States before regions seen: reading them tells a source of regions
	// that just began reporting.
	var statesErr error
	for _, f := range flows {
		if err := c.ctx.Err(); err != nil {
			statesErr = err
			break
		}
		states, err := c.flowStates(f)
		if err != nil {
			if statesErr == nil {
				statesErr = fmt.Errorf("flow %s: %w", f, err)
			}
			continue
		}
		for i := range states {
			s := &states[i]
			v := at(s.Region)
			if s.Known {
				v.fresh++
			}
			if s.Last.After(v.last) {
				v.last = s.Last
			}
		}
	}
	// Seen regions are read even when the rule lists its own: they tell
	// when a region that vanished from the live series last reported.
	seen, seenErr := c.e.src.Regions(c.ctx, a.Flows, c.at)
	var expected []string
	for _, reg := range a.Regions {
		if !slices.Contains(expected, reg) {
			expected = append(expected, reg)
		}
	}
	if len(expected) == 0 {
		if seenErr != nil {
			return append(out, unknown(r, ruleLabels(r), "cannot list the regions reporting", fmt.Errorf("listing regions: %w", seenErr)))
		}
		for _, s := range seen {
			expected = append(expected, s.Region)
		}
		if len(expected) == 0 {
			return append(out, unknown(r, ruleLabels(r), "no region has reported in the last day", nil))
		}
	}
	for _, s := range seen {
		if v := at(s.Region); s.Last.After(v.last) {
			v.last = s.Last
		}
	}
	reporting := 0
	for _, reg := range expected {
		if at(reg).fresh > 0 {
			reporting++
		}
	}
	from := flowList(flows)
	out = slices.Grow(out, len(expected))
	ri := c.ruleIdents(r)
	for _, reg := range expected {
		v := at(reg)
		id := c.byIdent(ri, r, "silent_region", reg)
		ev := Evaluation{Rule: r, Labels: id.labels, Key: id.key, Severity: severity(r)}
		ev.Evidence.RegionsKnown, ev.Evidence.RegionsTotal = reporting, len(expected)
		switch {
		case v.fresh > 0:
			ev.Status = OK
			ev.Value = fmt.Sprintf("region %s reporting: %d of %d %s fresh", reg, v.fresh, len(flows), plural(len(flows), "flow", "flows"))
		case statesErr != nil:
			// Silent in what was read, but a flow that could not be read
			// may be reporting: not a page.
			ev.Value, ev.Err = "cannot read the flows' state", statesErr
		default:
			ev.Status = Firing
			ev.Evidence.RegionsFailing = []string{reg}
			ev.Evidence.Since = v.last
			ev.Value = fmt.Sprintf("region %s silent: no fresh results from %d %s", reg, len(flows), plural(len(flows), "flow", "flows"))
			if len(flows) == 0 {
				ev.Value = fmt.Sprintf("region %s silent: no flow reports anywhere", reg)
			}
			head := fmt.Sprintf("region %s silent: no results from %s", reg, from)
			if !v.last.IsZero() {
				head += c.forText(v.last) + " (last at " + clock(v.last, c.at) + ")"
			}
			c.fire(r, &ev, head)
		}
		out = append(out, ev)
	}
	return out
}

// flowList names flows for a summary: "checkout, shop_health", or the
// first few and how many more.
func flowList(flows []string) string {
	const show = 5
	switch {
	case len(flows) == 0:
		return "any flow"
	case len(flows) > show:
		return strings.Join(flows[:show], ", ") + fmt.Sprintf(" and %d more", len(flows)-show)
	}
	return strings.Join(flows, ", ")
}

// clock is t in UTC as a page shows it: 02:10:07Z the same day as at,
// with the date when further back.
func clock(t, at time.Time) string {
	t = t.UTC()
	if at.Sub(t) < 20*time.Hour {
		return t.Format("15:04:05Z")
	}
	return t.Format("2006-01-02 15:04:05Z")
}

// --- signals ----------------------------------------------------------------

// beforeEnder is a source whose windows' ends are rounded (the store's
// buckets): beforeEnd is the end of a window that holds nothing after t.
type beforeEnder interface {
	beforeEnd(t time.Time, window time.Duration, at time.Time) time.Time
}

// signals reads every configured signal over its window ending now and
// over its window ending before the trouble began (before its first
// failure: a window ending later holds the failures, and "was 66.7%" of a
// gateway failing since is not what it was; an hour ago when that is not
// known).
func (c *cycle) signals(since time.Time) []SignalValue {
	sigs := c.e.a.Signals
	if len(sigs) == 0 {
		return nil
	}
	known := !since.IsZero() && !since.After(c.at)
	out := make([]SignalValue, 0, len(sigs))
	for i, s := range sigs {
		if s == nil {
			continue
		}
		sv := SignalValue{Name: s.Name, Unit: s.Unit}
		if s.Dependency != "" || s.Flow != "" {
			sv.Unit = "ratio"
		}
		if sv.Name == "" {
			sv.Name = cmpOr(s.Dependency, s.Flow, "signal")
		}
		before := c.at.Add(-time.Hour)
		if known {
			// Windows are (end-w, end]: the first failing run started at
			// since and ended after it.
			before = since
			if be, ok := c.e.src.(beforeEnder); ok {
				w := s.Window
				if w <= 0 {
					w = 5 * time.Minute
				}
				before = be.beforeEnd(since, w, c.at)
			}
		}
		sv.Now, sv.HasNow = c.signalValue(i, s, c.at)
		sv.Before, sv.HasBefore = c.signalValue(i, s, before)
		sv.Text = signalText(&sv)
		out = append(out, sv)
	}
	return out
}

func cmpOr(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// signalValue reads signal i over its window ending at end, once per cycle
// and end. PromQL signals ending in the past are read at the minute, so that
// many alerts that began within a minute share one query.
func (c *cycle) signalValue(i int, s *config.Signal, end time.Time) (float64, bool) {
	if s.PromQLQuery != "" && !end.Equal(c.at) {
		end = end.Truncate(time.Minute)
	}
	k := sigKey{i, end.UnixNano()}
	if v, ok := c.sigs[k]; ok {
		return v.v, v.ok
	}
	if c.sigs == nil {
		c.sigs = map[sigKey]sigVal{}
	}
	window := s.Window
	if window <= 0 {
		window = 5 * time.Minute
	}
	var (
		v   sigVal
		err error
	)
	switch {
	case s.Dependency != "" || s.Flow != "":
		var good, n float64
		if s.Dependency != "" {
			good, n, err = c.e.src.DependencyRatio(c.ctx, s.Dependency, window, end)
		} else {
			good, n, err = c.e.src.FlowRatio(c.ctx, s.Flow, window, end)
		}
		if err == nil && n > 0 {
			v = sigVal{good / n, true}
		}
	case s.PromQLQuery != "":
		var samples []Sample
		samples, err = c.e.src.Query(c.ctx, s.PromQLQuery, end)
		if err == nil && len(samples) > 0 && !math.IsNaN(samples[0].Value) {
			v = sigVal{samples[0].Value, true}
		}
	}
	if err != nil {
		c.e.log.Debug("signal_unavailable", "signal", s.Name, "error", err.Error())
	}
	c.sigs[k] = v
	return v.v, v.ok
}

// signalText is "gateway success 0% (was 99.8%)".
func signalText(sv *SignalValue) string {
	f := func(v float64) string {
		switch sv.Unit {
		case "ratio":
			return percent(v)
		case "seconds":
			if math.Abs(v) < 1e6 {
				return latency(time.Duration(v * float64(time.Second)))
			}
		}
		return number(v)
	}
	switch {
	case sv.HasNow && sv.HasBefore:
		return fmt.Sprintf("%s %s (was %s)", sv.Name, f(sv.Now), f(sv.Before))
	case sv.HasNow:
		// Nothing before the trouble (a new flow, or a signal read since
		// it began): no comparison, rather than a "no data before" that
		// reads like a second failure.
		return fmt.Sprintf("%s %s", sv.Name, f(sv.Now))
	case sv.HasBefore:
		return fmt.Sprintf("%s no data (was %s)", sv.Name, f(sv.Before))
	}
	return sv.Name + " no data"
}
