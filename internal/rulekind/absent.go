package rulekind

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// absent: a region's results stop arriving (its prober died, lost its
// network, or is no longer scraped).
//
// Data: the flows' region states (fresh or not), and the regions seen
// reporting in the last day (Source.Regions: SeenQuery in Prometheus).
// PromQL: absentExport.
type absentKind struct{}

func (absentKind) Name() config.RuleKind   { return config.Absent }
func (absentKind) Has(r *config.Rule) bool { return r.Absent != nil }

// Expected: one evaluation per region.
func (absentKind) Expected(c Cycle, r *config.Rule) int { return max(len(r.Absent.Regions), 1) }

// absent judges each expected region: silent (Firing) when none of the
// rule's flows has a fresh final run there, reporting (OK) when one has,
// Unknown when the data cannot tell. One evaluation per region, labelled
// silent_region (not region, which alert keys drop: each silent region is
// its own alert).
func (absentKind) Evaluate(c Cycle, r *config.Rule, out []Evaluation) []Evaluation {
	a := r.Absent
	flows := a.Flows
	if len(flows) == 0 {
		all, err := c.Flows()
		if err != nil {
			return append(out, UnknownEval(r, Labels(r), "cannot list flows", fmt.Errorf("listing flows: %w", err)))
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
		if err := c.Context().Err(); err != nil {
			statesErr = err
			break
		}
		states, err := c.FlowStates(f)
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
	seen, seenErr := c.Source().Regions(c.Context(), a.Flows, c.At())
	var expected []string
	for _, reg := range a.Regions {
		if !slices.Contains(expected, reg) {
			expected = append(expected, reg)
		}
	}
	if len(expected) == 0 {
		if seenErr != nil {
			return append(out, UnknownEval(r, Labels(r), "cannot list the regions reporting", fmt.Errorf("listing regions: %w", seenErr)))
		}
		for _, s := range seen {
			expected = append(expected, s.Region)
		}
		if len(expected) == 0 {
			return append(out, UnknownEval(r, Labels(r), "no region has reported in the last day", nil))
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
	for _, reg := range expected {
		v := at(reg)
		id := c.IdentBy(r, "silent_region", reg)
		ev := Evaluation{Rule: r, Labels: id.Labels, Key: id.Key, Severity: Severity(r)}
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
				head += forText(c, v.last) + " (last at " + clock(v.last, c.At()) + ")"
			}
			ev = c.Fire(r, ev, head)
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

// --- absent -----------------------------------------------------------------

// Export: absent() per listed region, or the regions seen in the last
// day without a fresh run.
func (absentKind) Export(g *Export, r *config.Rule) ([]AlertRule, error) {
	return g.absent(r), nil
}

func (g *Export) absent(r *config.Rule) []AlertRule {
	a := r.Absent
	groups := g.freshGroups(a.Flows)
	names := a.Flows
	if len(names) == 0 {
		names = g.flowNames
	}
	what := flowList(names)
	flowsSel := ""
	if len(a.Flows) > 0 {
		flowsSel = oneOf("flow", a.Flows)
	}
	// fresh is the series with a final run recent enough: by value, so a
	// prober still scraped whose scheduler stalled is silent too, and a
	// dead or unscraped one (its series stale) is silent at once.
	fresh := func(region []string) string {
		var parts []string
		for _, fg := range groups {
			parts = append(parts, "time() - prober_last_run_timestamp_seconds"+braces(append(fg.matchers(), region...))+" <= "+seconds(fg.maxAge))
		}
		return orJoin(parts)
	}
	if len(a.Regions) > 0 {
		var out []AlertRule
		for _, region := range a.Regions {
			last := "{{ with query `max(max_over_time(prober_last_run_timestamp_seconds" + braces(append(nonEmpty(flowsSel), eq("region", region))) +
				"[" + dur(absentLookback) + "]) > 0)` }}{{ . | first | value | humanizeTimestamp }}{{ else }}none in the last day{{ end }}"
			// absent() has no labels to carry the region: it is a static
			// label, one alerting rule per region.
			out = append(out, g.alertWith(r, Severity(r), "absent(\n"+indent(fresh([]string{eq("region", region)}), 2)+"\n)",
				"region "+region+" silent: no results from "+what+" (last at "+last+")",
				"The prober in "+region+" died, lost its network, or is no longer scraped: no final run of "+what+
					" is recent enough. Its last run started at "+last+".",
				map[string]string{"silent_region": region}))
		}
		return out
	}
	// Without a list, the regions expected are those that reported in the
	// last day.
	// > 0: a prober that has not run a flow yet exports 0.
	seen := "max by (region) (max_over_time(prober_last_run_timestamp_seconds" + braces(nonEmpty(flowsSel)) + "[" + dur(absentLookback) + "])) > 0"
	expr := "max by (silent_region) (\n  label_replace(\n" +
		indent(seen, 4) + "\n    unless on (region)\n" + indent("(\n"+indent(fresh(nil), 2)+"\n)", 4) + ",\n" +
		"    \"silent_region\", \"$1\", \"region\", \"(.+)\"\n  )\n)"
	return []AlertRule{g.alert(r, Severity(r), expr,
		"region {{ $labels.silent_region }} silent: no results from "+what+" (last at {{ $value | humanizeTimestamp }})",
		"The prober in {{ $labels.silent_region }} died, lost its network, or is no longer scraped: no final run of "+what+
			" is recent enough. It reported within the last day; its last run started at {{ $value | humanizeTimestamp }}.",
		"silent_region")}
}
