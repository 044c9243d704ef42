package rulekind

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// dependency_success: the steps marked with a dependency (a payment
// gateway) succeed less than a threshold over a window, each region judged
// on its own calls.
//
// Data: the dependency's final calls counted per region
// (DependencyRegions: DependencyRegionsQuery in Prometheus; or
// Source.DependencyRatio over all regions), and the flows failing at a
// step calling it, for the page. PromQL: dependencyExport.
type dependencyKind struct{}

// DependencyCallsQuery counts dependency's final calls over window, by
// the labels by (result; region, result): Source.DependencyRatio and
// DependencyRegions in Prometheus.
func DependencyCallsQuery(dependency string, window time.Duration, by ...string) string {
	return `sum by (` + strings.Join(by, ", ") + `) (increase(prober_dependency_calls_total{` + eq("dependency", dependency) +
		`}[` + Window(window) + `]))`
}

func (dependencyKind) Name() config.RuleKind   { return config.DependencySuccess }
func (dependencyKind) Has(r *config.Rule) bool { return r.DependencySuccess != nil }

func (dependencyKind) Evaluate(c Cycle, r *config.Rule, out []Evaluation) []Evaluation {
	return append(out, dependency(c, r))
}

func dependency(c Cycle, r *config.Rule) Evaluation {
	d := r.DependencySuccess
	id := c.Ident(r, "dependency", d.Dependency)
	ev := Evaluation{Rule: r, Labels: id.Labels, Key: id.Key, Severity: Severity(r)}
	ev.Evidence.Dependency = d.Dependency
	window := d.Window
	if window <= 0 {
		window = 5 * time.Minute
	}
	regions, named, err := dependencyRegions(c, d.Dependency, window)
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
		if f := dependencyEvidence(c, &ev.Evidence, d.Dependency); f != "" {
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
		ev = c.Fire(r, ev, parts...)
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
func dependencyRegions(c Cycle, dependency string, window time.Duration) (rs []RegionRatio, named bool, err error) {
	if dr, ok := c.Source().(DependencyRegions); ok {
		rs, err = dr.DependencyRegionRatios(c.Context(), dependency, window, c.At())
		return rs, true, err
	}
	good, n, err := c.Source().DependencyRatio(c.Context(), dependency, window, c.At())
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
func dependencyEvidence(c Cycle, ev *Evidence, dependency string) string {
	var flows []string
	var err error
	if fd, ok := c.Source().(FlowsByDependency); ok {
		flows, err = fd.DependencyFlows(c.Context(), dependency)
	} else {
		flows, err = c.Flows()
	}
	if err != nil {
		c.Logger().Warn("dependency_evidence_failed", "dependency", dependency, "error", err.Error())
		return ""
	}
	var (
		failing []*RegionState
		list    []string
		regions = map[string]bool{}
		known   = map[string]bool{}
	)
	for _, f := range flows {
		states, err := c.FlowStates(f)
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

// --- dependency success -----------------------------------------------------

// Export: the regions whose calls fail, over recording rules per
// dependency and region.
func (dependencyKind) Export(g *Export, r *config.Rule) ([]AlertRule, error) {
	return g.dependency(r), nil
}

func (g *Export) dependency(r *config.Rule) []AlertRule {
	d := r.DependencySuccess
	window := d.Window
	if window <= 0 {
		window = 5 * time.Minute
	}
	need(&g.depWindows, window)
	w := dur(window)
	m := []string{eq("dependency", d.Dependency)}
	if len(d.Regions) > 0 {
		// A region outside the list is ignored, as the engine does.
		m = append(m, oneOf("region", d.Regions))
	}
	sel := braces(m)
	// Each region judged on its own calls: failing regions, counted.
	failing := "count by (dependency) (\n" +
		"  " + recDepSuccess + w + sel + " < " + pqRatio(d.Below) + "\n  and\n" +
		"  " + recDepCalls + w + sel + " >= " + strconv.Itoa(max(d.MinCalls, 1)) + "\n  and\n" +
		"  " + recDepFailures + w + sel + " >= " + strconv.Itoa(max(d.MinFailures, 1)) + "\n)"
	n := max(d.MinRegions, 1)
	total := ""
	if len(d.Regions) > 0 {
		total = strconv.Itoa(len(d.Regions))
	} else {
		total = "{{ with printf `count(" + recDepCalls + w + "{dependency=%q} > 0)` $labels.dependency | query }}" +
			"{{ . | first | value }}{{ else }}?{{ end }}"
	}
	regions := "{{ range printf `" + recDepSuccess + w + "{dependency=%q} < " + pqRatio(d.Below) + "` $labels.dependency | query | sortByLabel \"region\" }}" +
		"\n- {{ .Labels.region }}: success {{ .Value | humanizePercentage }}{{ end }}"
	desc := "Steps marked dependency: {{ $labels.dependency }} failed in {{ $value }} of " + total + " regions over " + w +
		" (a region counts from " + strconv.Itoa(max(d.MinCalls, 1)) + " calls and " + strconv.Itoa(max(d.MinFailures, 1)) +
		" failures with success below " + pqPercent(d.Below) + ")." + regions +
		"{{ range printf `prober_last_failure_info{dependency=%q}` $labels.dependency | query }}\n" +
		"- {{ .Labels.flow }} at {{ .Labels.step }} ({{ .Labels.class }}) in {{ .Labels.region }}{{ with .Labels.expectation }}: {{ . }} failed{{ end }}{{ end }}"
	out := []AlertRule{g.alert(r, Severity(r), failing+" >= "+strconv.Itoa(n),
		"{{ $labels.dependency }} success < "+pqPercent(d.Below)+" over "+w+" in {{ $value }}/"+total+" regions", desc, "dependency")}
	if n > 1 && d.DegradedSeverity != "" {
		// Fewer regions than the quorum: a regional degradation at its
		// own severity (count never returns 0).
		out = append(out, g.alert(r, d.DegradedSeverity, failing+" < "+strconv.Itoa(n),
			"{{ $labels.dependency }} degraded: success < "+pqPercent(d.Below)+" over "+w+" in {{ $value }}/"+total+" regions",
			"{{ $labels.dependency }} fails in fewer than the "+strconv.Itoa(n)+" regions that make an outage: a regional degradation. "+desc,
			"dependency"))
	}
	return out
}
