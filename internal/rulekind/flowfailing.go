package rulekind

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// flow_failing: a flow fails in N of M regions, its final runs (after the
// immediate retries) confirming it.
//
// Data: the flows' region states (Source.FlowStates: the store's latest
// final runs, or prober_last_run_success, prober_last_run_timestamp_seconds,
// prober_flow_state_since_timestamp_seconds and prober_last_failure_info).
// PromQL: flowFailingExport.
type flowFailingKind struct{}

func (flowFailingKind) Name() config.RuleKind   { return config.FlowFailing }
func (flowFailingKind) Has(r *config.Rule) bool { return r.FlowFailing != nil }

// Expected: one evaluation per flow.
func (flowFailingKind) Expected(c Cycle, r *config.Rule) int {
	if n := len(r.FlowFailing.Flows); n > 0 {
		return n
	}
	n := 1
	if c.Context().Err() == nil {
		flows, _ := c.Flows()
		n += len(flows)
	}
	return n
}

// --- flow failing -----------------------------------------------------------

func (flowFailingKind) Evaluate(c Cycle, r *config.Rule, out []Evaluation) []Evaluation {
	ff := r.FlowFailing
	flows := ff.Flows
	if len(flows) == 0 {
		all, err := c.Flows()
		if err != nil {
			return append(out, UnknownEval(r, Labels(r), "cannot list flows", fmt.Errorf("listing flows: %w", err)))
		}
		flows = all
	}
	out = slices.Grow(out, len(flows))
	for _, f := range flows {
		out = append(out, flowFailingOne(c, r, ff, f))
	}
	return out
}

func flowFailingOne(c Cycle, r *config.Rule, ff *config.FlowFailingRule, flow string) Evaluation {
	id, states, err := c.FlowRule(r, flow)
	ev := Evaluation{Rule: r, Labels: id.Labels, Key: id.Key, Severity: Severity(r)}
	ev.Evidence.Flow = flow
	if err := c.Context().Err(); err != nil {
		ev.Value, ev.Err = "evaluation cancelled", err
		return ev
	}
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
		ev = c.Fire(r, ev, append([]string{head + forText(c, ev.Evidence.Since)}, failureParts(&ev.Evidence)...)...)
	case nf > 0 && ff.DegradedSeverity != "":
		// Failing somewhere, but fewer regions than confirm an outage: a
		// regional degradation, at its own (lower) severity.
		ev.Status, ev.Severity = Firing, ff.DegradedSeverity
		ev.Evidence = evidenceOf(flow, q)
		ev.Value = fmt.Sprintf("degraded: failing in %d/%d %s (%s)", nf, q.total, plural(q.total, "region", "regions"),
			strings.Join(ev.Evidence.RegionsFailing, ", "))
		ev = c.Fire(r, ev, append([]string{flow + " " + ev.Value + forText(c, ev.Evidence.Since)}, failureParts(&ev.Evidence)...)...)
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
		ev.Value = c.Text("passing", q.known, q.total, passing)
	}
	if ev.Labels == nil && (ev.Status == Firing || ev.Key == "") {
		ev.Labels = Labels(r, "flow", flow) // the cycle left them to a firing evaluation
	}
	return ev
}

// passing is the Value of a passing flow (made once per cycle for each
// known/total: Cycle.Text).
func passing(known, total int) string {
	v := fmt.Sprintf("passing in %d/%d %s", known, total, plural(total, "region", "regions"))
	if known < total {
		v += fmt.Sprintf(" (%d without fresh runs)", total-known)
	}
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

// --- flow failing -----------------------------------------------------------

// Export: the regions failing a fresh final run, counted per flow.
func (flowFailingKind) Export(g *Export, r *config.Rule) ([]AlertRule, error) {
	return g.flowFailing(r), nil
}

func (g *Export) flowFailing(r *config.Rule) []AlertRule {
	ff := r.FlowFailing
	var extra []string
	if len(ff.Regions) > 0 {
		// A region outside the list is ignored; a listed one not
		// reporting is unknown, never failing.
		extra = append(extra, oneOf("region", ff.Regions))
	}
	var parts []string
	for _, fg := range g.freshGroups(ff.Flows) {
		m := append(fg.matchers(), extra...)
		// The same series' timestamp (plain "and" matches every label):
		// a failure counts only while its prober still reports it.
		parts = append(parts, "prober_last_run_success"+braces(m)+" == 0\nand\n"+
			"time() - prober_last_run_timestamp_seconds"+braces(m)+" <= "+seconds(fg.maxAge))
	}
	// Regions, not series: two probers in one region count once.
	failing := "count by (flow) (\n  count by (flow, region) (\n" + indent(orJoin(parts), 4) + "\n  )\n)"
	n := max(ff.MinRegions, 1)

	total := ""
	if len(ff.Regions) > 0 {
		total = strconv.Itoa(len(ff.Regions))
	} else {
		// M is the regions reporting the flow, as the engine counts them
		// (0 is a prober that has not run it yet).
		total = "{{ with printf `count(count by (region) (prober_last_run_timestamp_seconds{flow=%q} > 0))` $labels.flow | query }}" +
			"{{ . | first | value }}{{ else }}?{{ end }}"
	}
	infoSel := "prober_last_failure_info{flow=%q" + strings.Join(prepend(",", extra), "") + "}"
	failures := "{{ range printf `" + infoSel + "` $labels.flow | query }}\n" +
		"- {{ .Labels.region }}: step {{ .Labels.step }}{{ with .Labels.expectation }}: {{ . }} failed{{ end }}" +
		" (class {{ .Labels.class }}{{ with .Labels.dependency }}, dependency {{ . }}{{ end }}){{ end }}"
	forText := ""
	if r.For > 0 {
		forText = " for at least " + pqHuman(r.For)
	}
	desc := "{{ $labels.flow }} has failed in {{ $value }} of " + total + " regions" + forText +
		" (final runs: a blip an immediate retry cleared does not count)." + failures
	// What failed, from one failing region: the page's "step pay: ...; class ...".
	what := "{{ with printf `" + infoSel + "` $labels.flow | query }}{{ with . | first }}; step {{ .Labels.step }}" +
		"{{ with .Labels.expectation }}: {{ . }}{{ end }} failed; class {{ .Labels.class }}{{ end }}{{ end }}"
	out := []AlertRule{g.alert(r, Severity(r), failing+" >= "+strconv.Itoa(n),
		"{{ $labels.flow }} failing in {{ $value }}/"+total+" regions"+what, desc, "flow")}
	if n > 1 && ff.DegradedSeverity != "" {
		// Fewer regions than the quorum: a regional degradation at its own
		// severity. count never returns 0, so this also means ">= 1".
		out = append(out, g.alert(r, ff.DegradedSeverity, failing+" < "+strconv.Itoa(n),
			"{{ $labels.flow }} degraded: failing in {{ $value }}/"+total+" regions"+what,
			"{{ $labels.flow }} fails in fewer than the "+strconv.Itoa(n)+" regions that make an outage: a regional degradation."+failures,
			"flow"))
	}
	return out
}

// freshGroup is flows that share a freshness bound.
type freshGroup struct {
	maxAge time.Duration
	flows  []string // nil: every flow (no configured flows to name)
}

func (fg freshGroup) matchers() []string {
	if len(fg.flows) == 0 {
		return nil
	}
	return []string{oneOf("flow", fg.flows)}
}

// freshGroups groups flows (every configured flow when empty) by how old
// their last final run may be, shortest first, so that one selector per
// group carries the right bound.
func (g *Export) freshGroups(flows []string) []freshGroup {
	if len(flows) == 0 {
		flows = g.flowNames
	}
	if len(flows) == 0 {
		return []freshGroup{{maxAge: defaultFreshness}}
	}
	by := map[time.Duration][]string{}
	for _, f := range flows {
		d := defaultFreshness
		if fl := g.flows[f]; fl != nil {
			d = Freshness(fl)
		}
		if !slices.Contains(by[d], f) {
			by[d] = append(by[d], f)
		}
	}
	var out []freshGroup
	for _, d := range sortedKeys(by) {
		out = append(out, freshGroup{maxAge: d, flows: by[d]})
	}
	return out
}

// Freshness is how old a region's last final run of f may be before the
// region is unknown: two intervals plus the timeout of the run and of each
// immediate retry, as the daemon computes it. For a cron schedule the
// interval is its longest gap (a weekday-only flow is not "absent" every
// weekend).
func Freshness(f *config.Flow) time.Duration {
	interval := f.Schedule.Every
	if interval <= 0 {
		interval = cronGap(f.Schedule)
	}
	if interval <= 0 {
		return defaultFreshness
	}
	return 2*interval + f.Timeout*time.Duration(1+max(f.Retries, 0))
}

// cronRef makes the generated file the same on every run.
var cronRef = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// cronGap is the longest gap between runs of a cron schedule over a year
// from cronRef (at least two runs, at most a few thousand).
func cronGap(s config.Schedule) time.Duration {
	end := cronRef.AddDate(1, 0, 0)
	prev := s.Next(cronRef)
	if prev.IsZero() {
		return 0
	}
	var gap time.Duration
	for i := 0; i < 5000; i++ {
		next := s.Next(prev)
		if next.IsZero() {
			break
		}
		gap = max(gap, next.Sub(prev))
		prev = next
		if prev.After(end) {
			break
		}
	}
	return gap
}
