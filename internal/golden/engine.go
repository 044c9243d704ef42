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
	"github.com/prober-dev/prober/internal/rulekind"
)

// Options tune an Engine.
type Options struct {
	Logger *slog.Logger
	// Key, when set, names a rule's label set (the alert lifecycle passes
	// its dedup key, alert.Key). The engine computes it once per label set
	// rather than every cycle, and carries it in Evaluation.Key, so that
	// 10,000 label sets are not serialised again every few seconds. With
	// it, a flow's label set under a flow_failing rule is its key alone
	// unless the evaluation fires (Evaluation.Labels nil): the lifecycle
	// reads only a firing evaluation's labels, and 10,000 maps of some 340
	// bytes are then neither kept nor built again every collection.
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
	// kinds are the rule kinds by name (rulekind.Kinds).
	kinds map[config.RuleKind]rulekind.Kind
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
	kinds := map[config.RuleKind]rulekind.Kind{}
	for _, k := range rulekind.Kinds() {
		kinds[k.Name()] = k
	}
	return &Engine{a: a, src: src, log: l, key: o.Key, kinds: kinds}
}

// scratch is memory cycles reuse, so that a cycle over 10,000 flows
// allocates next to nothing per flow: label sets (built once, then shared
// by every evaluation of them, this cycle and later ones: read only), and
// where the flows' region states are read to.
type scratch struct {
	gen uint32 // cycles that used it (wraps after 136 years of 1s cycles)
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

// flowRec is one flow's entry in the scratch: 48 bytes, kept for every flow
// from one cycle to the next (not its label map: see flowIdent).
type flowRec struct {
	used uint32 // the last cycle that used it
	// read is the last cycle that read its region states: buf[lo:hi], or
	// the error in cycle.errs. Valid in that cycle only.
	read   uint32
	lo, hi int32
	age    time.Duration // its maximum age, from a store source (0: not yet asked)
	// r is the first flow_failing rule over it, key its label set's key
	// under r; other rules over it (few) keep theirs in their ruleIdents.
	r   *config.Rule
	key string
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
	gen uint32 // the last cycle that used it
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
const maxTraceIDs = rulekind.MaxTraceIDs

// Evaluate judges every rule for every label set at at. It never panics: a
// rule that cannot be judged (a source error, a panic, an odd rule) is
// Unknown with Err set. Firing evaluations carry evidence, signals and a
// summary; OK and Unknown ones only what the alert lifecycle needs to
// resolve or hold (Value, and Err).
//
// Evaluations' Labels maps may be shared (by evaluations of the same label
// set in this and later cycles): read only. With Options.Key, a flow's
// evaluation under a flow_failing rule has them only when it fires.
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
	texts     map[textKey]string
	lastText  textKey // the last Text asked for, and its value
	lastValue string
	errs      map[*flowRec]error // flows whose states could not be read
}

type textKey struct {
	name string
	a, b int
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
		if r == nil {
			continue
		}
		k := c.e.kinds[r.Kind]
		if sz, ok := k.(rulekind.Sizer); ok && c.e.src != nil && k.Has(r) {
			n += sz.Expected(c, r)
		} else {
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

// The rule kinds read through the cycle (rulekind.Cycle).

func (c *cycle) Context() context.Context { return c.ctx }
func (c *cycle) At() time.Time            { return c.at }
func (c *cycle) Source() Source           { return c.e.src }
func (c *cycle) Logger() *slog.Logger     { return c.e.log }
func (c *cycle) Flows() ([]string, error) { return c.allFlows() }

func (c *cycle) FlowStates(flow string) ([]RegionState, error) { return c.flowStates(flow) }

func (c *cycle) FlowRule(r *config.Rule, flow string) (rulekind.Ident, []RegionState, error) {
	fr := c.flow(flow)
	id := c.flowIdent(r, flow, fr)
	states, err := c.flowRecStates(flow, fr)
	return rulekind.Ident{Labels: id.labels, Key: id.key}, states, err
}

func (c *cycle) Ident(r *config.Rule, kv ...string) rulekind.Ident {
	id := c.fixedIdent(r, kv...)
	return rulekind.Ident{Labels: id.labels, Key: id.key}
}

func (c *cycle) IdentBy(r *config.Rule, kv ...string) rulekind.Ident {
	var id *ident
	if len(kv) == 2 {
		id = c.byIdent(c.ruleIdents(r), r, kv[0], kv[1])
	} else {
		id = c.byIdents(c.ruleIdents(r), r, kv)
	}
	return rulekind.Ident{Labels: id.labels, Key: id.key}
}

func (c *cycle) Text(name string, a, b int, format func(a, b int) string) string {
	k := textKey{name, a, b}
	if k == c.lastText && c.lastValue != "" {
		return c.lastValue // most flows report in as many regions as the last
	}
	v, ok := c.texts[k]
	if !ok {
		v = format(a, b)
		if c.texts == nil {
			c.texts = map[textKey]string{}
		}
		c.texts[k] = v
	}
	c.lastText, c.lastValue = k, v
	return v
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
// ruleLabels(r, "flow", flow) and its key. With a key, the key alone (its
// map is built once, for the key): the kind builds the map of an
// evaluation that fires (rulekind.Cycle.FlowRule), and a map kept for
// every flow, or built again for each after a collection, would be
// megabytes at 10,000 flows that nothing reads. Without one, the map,
// built every cycle.
func (c *cycle) flowIdent(r *config.Rule, flow string, fr *flowRec) labelSet {
	switch {
	case c.e.key == nil:
		return labelSet{labels: ruleLabels(r, "flow", flow)}
	case fr.r == r:
		return labelSet{key: fr.key}
	case fr.r == nil:
		fr.r, fr.key = r, c.newLabelSet(r, "flow", flow).key
		return labelSet{key: fr.key}
	default:
		return c.byIdent(c.ruleIdents(r), r, "flow", flow).labelSet
	}
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

// byIdents is byIdent for label sets of several identity labels
// (flow, step and host), keyed by their values.
func (c *cycle) byIdents(ri *ruleIdents, r *config.Rule, kv []string) *ident {
	var b strings.Builder
	for i := 1; i < len(kv); i += 2 {
		b.WriteString(kv[i])
		b.WriteByte(0)
	}
	k := b.String()
	id := ri.by[k]
	if id == nil {
		id = &ident{labelSet: c.newLabelSet(r, kv...)}
		if ri.by == nil {
			ri.by = map[string]*ident{}
		}
		ri.by[k] = id
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
	k := c.e.kinds[r.Kind]
	switch {
	case k == nil:
		return append(out, unknown(r, ruleLabels(r), "unknown rule kind", fmt.Errorf("rule %s: unknown kind %q", r.Name, r.Kind)))
	case !k.Has(r):
		return append(out, rulekind.Incomplete(r))
	}
	return k.Evaluate(c, r, out)
}

// ruleLabels is rulekind.Labels, called directly (through a func variable
// its kv would escape: an allocation per flow).
func ruleLabels(r *config.Rule, kv ...string) map[string]string { return rulekind.Labels(r, kv...) }

func unknown(r *config.Rule, labels map[string]string, value string, err error) Evaluation {
	return rulekind.UnknownEval(r, labels, value, err)
}

// fire completes a Firing evaluation: signals, then the summary from
// parts, the signals and the newest trace id.
func (c *cycle) Fire(r *config.Rule, ev Evaluation, parts ...string) Evaluation {
	c.fire(r, &ev, parts...)
	return ev
}

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
