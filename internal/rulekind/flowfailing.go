package rulekind

import (
	"fmt"
	"slices"
	"strings"

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
		c.Fire(r, &ev, append([]string{head + forText(c, ev.Evidence.Since)}, failureParts(&ev.Evidence)...)...)
	case nf > 0 && ff.DegradedSeverity != "":
		// Failing somewhere, but fewer regions than confirm an outage: a
		// regional degradation, at its own (lower) severity.
		ev.Status, ev.Severity = Firing, ff.DegradedSeverity
		ev.Evidence = evidenceOf(flow, q)
		ev.Value = fmt.Sprintf("degraded: failing in %d/%d %s (%s)", nf, q.total, plural(q.total, "region", "regions"),
			strings.Join(ev.Evidence.RegionsFailing, ", "))
		c.Fire(r, &ev, append([]string{flow + " " + ev.Value + forText(c, ev.Evidence.Since)}, failureParts(&ev.Evidence)...)...)
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
