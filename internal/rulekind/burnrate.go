package rulekind

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// burn_rate: a flow's synthetic success SLO burns its error budget too
// fast, over a long and a short window at once (multiwindow,
// multi-burn-rate), once the data covers the long window and it holds
// enough runs.
//
// Data: the flow's final runs counted over windows (Source.FlowRatio:
// FlowRatioQuery in Prometheus), how far its history reaches
// (HistoryCoverage: CoverageQuery), and its region states for the page.
// PromQL: burnRateExport.
type burnRateKind struct{}

func (burnRateKind) Name() config.RuleKind   { return config.BurnRate }
func (burnRateKind) Has(r *config.Rule) bool { return r.BurnRate != nil }

// FlowRunsQuery counts flow's final runs over window by result (success,
// failure): Source.FlowRatio in Prometheus.
func FlowRunsQuery(flow string, window time.Duration) string {
	return `sum by (result) (increase(prober_runs_total{` + eq("flow", flow) + `}[` + Window(window) + `]))`
}

// FlowRegionRunsQuery counts flow's final runs over window by region and
// result: the flow page's uptime per region in the evaluate role.
func FlowRegionRunsQuery(flow string, window time.Duration) string {
	return `sum by (region, result) (increase(prober_runs_total{` + eq("flow", flow) + `}[` + Window(window) + `]))`
}

// CoverageQuery is whether flow's runs counter had a sample within slack
// before the query's time: asked at a window's start plus slack, whether
// the flow's data covers the window (HistoryCoverage in Prometheus). The
// exported rule asks the same with an offset.
func CoverageQuery(flow string, slack time.Duration) string {
	return "group(" + runsPresent(eq("flow", flow), slack, 0) + ")"
}

// runsPresent is whether the runs counter of the flows sel matches had a
// sample within slack before offset.
func runsPresent(sel string, slack, offset time.Duration) string {
	q := "present_over_time(prober_runs_total{" + sel + "}[" + Window(slack) + "]"
	if offset > 0 {
		q += " offset " + dur(offset)
	}
	return q + ")"
}

// burnEpsilon keeps a burn rate that equals its factor (0.144/0.01 against
// 14.4 is 14.399999999999999 or 14.400000000000002 in floating point)
// from firing on rounding noise: exactly at the limit is not over it.
const burnEpsilon = 1e-9

type burnPair struct {
	w            config.BurnWindow
	severity     string
	burnL, burnS float64
	goodL, nL    float64
	firing       bool
}

func (burnRateKind) Evaluate(c Cycle, r *config.Rule, out []Evaluation) []Evaluation {
	return append(out, burnRate(c, r))
}

func burnRate(c Cycle, r *config.Rule) Evaluation {
	br := r.BurnRate
	id := c.Ident(r, "flow", br.Flow)
	ev := Evaluation{Rule: r, Labels: id.Labels, Key: id.Key, Severity: Severity(r)}
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
		g, n, err := c.Source().FlowRatio(c.Context(), br.Flow, w, c.At())
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
		if covered, err := covers(c, br.Flow, w.Long); err != nil {
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
			p.severity = Severity(r)
		}
		limit := w.Factor * budget * (1 + burnEpsilon)
		p.firing = (nL-gL)/nL > limit && (nS-gS)/nS > limit
		if p.firing && (best == nil || SeverityRank(p.severity) > SeverityRank(best.severity)) {
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
		if states, err := c.FlowStates(br.Flow); err == nil {
			q := quorumOf(states, nil)
			ev.Evidence = evidenceOf(br.Flow, q)
			if n := len(q.failing); n > 0 {
				parts = append(parts, fmt.Sprintf("failing now in %d/%d %s%s", n, q.total, plural(q.total, "region", "regions"),
					forText(c, ev.Evidence.Since)))
				parts = append(parts, failureParts(&ev.Evidence)...)
			}
		}
		ev = c.Fire(r, ev, parts...)
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
func covers(c Cycle, flow string, window time.Duration) (bool, error) {
	hc, ok := c.Source().(HistoryCoverage)
	if !ok {
		return true, nil
	}
	return hc.FlowCovers(c.Context(), flow, window, c.At())
}

func runs(n float64) string {
	if n == 1 {
		return "1 run"
	}
	return number(n) + " runs"
}

// --- burn rate --------------------------------------------------------------

// Export: one alert per severity, its window pairs or-ed, over the
// recording rules of failed-run ratios and run counts.
func (burnRateKind) Export(g *Export, r *config.Rule) ([]AlertRule, error) {
	br := r.BurnRate
	if !(br.SLO > 0 && br.SLO < 1) {
		return nil, fmt.Errorf("slo %v must be between 0 and 1", br.SLO)
	}
	budget := 1 - br.SLO
	windows := br.Windows
	if len(windows) == 0 {
		windows = config.DefaultBurnWindows
	}
	minRuns := max(br.MinRuns, 1)
	flow := eq("flow", br.Flow)
	// One alert per severity, its window pairs or-ed (the SRE workbook's
	// form): the engine pages at the most severe pair that fires.
	type sev struct {
		name  string
		pairs []config.BurnWindow
	}
	var sevs []*sev
	for _, w := range windows {
		if w.Long <= 0 || w.Short <= 0 || w.Factor <= 0 {
			continue
		}
		s := cmpOr(w.Severity, Severity(r))
		i := slices.IndexFunc(sevs, func(x *sev) bool { return x.name == s })
		if i < 0 {
			sevs = append(sevs, &sev{name: s})
			i = len(sevs) - 1
		}
		sevs[i].pairs = append(sevs[i].pairs, w)
		need(&g.flowErrWindows, w.Long)
		need(&g.flowErrWindows, w.Short)
		need(&g.flowRunsWindows, w.Long)
	}
	if len(sevs) == 0 {
		return nil, errors.New("no burn windows")
	}
	// Coverage slack: half the flow's freshness bound (about one
	// interval), at least a scrape or two.
	slack := minCoverageSlack
	if f := g.flows[br.Flow]; f != nil {
		slack = max(Freshness(f)/2, minCoverageSlack)
	}
	var out []AlertRule
	for _, s := range sevs {
		var parts, limits, now []string
		for _, w := range s.pairs {
			limit := pqRatio(w.Factor * budget)
			// As the engine: the long window holds more runs than one
			// failure could push over the limit, and at least min_runs.
			need := max(minRuns, int(math.Floor(1/(w.Factor*budget)))+1)
			part := recFlowError + dur(w.Long) + "{" + flow + "} > " + limit + "\nand\n" +
				recFlowError + dur(w.Short) + "{" + flow + "} > " + limit + "\nand\n" +
				recFlowRuns + dur(w.Long) + "{" + flow + "} >= " + strconv.Itoa(need)
			if slack < w.Long {
				// And the flow's runs counter reaches back to the long
				// window's start: a flow younger than the window counts
				// its few runs as the window's.
				part += "\nand\n" + "group by (flow) (" + runsPresent(flow, slack, w.Long-slack) + ")"
			}
			parts = append(parts, part)
			limits = append(limits, fmt.Sprintf("%sx over %s and %s", pqNumber(w.Factor), dur(w.Long), dur(w.Short)))
			now = append(now, fmt.Sprintf("%s and %s (limit %s)", failedOver(w.Long), failedOver(w.Short), pqPercent(w.Factor*budget)))
		}
		summary := "{{ $labels.flow }} burning its error budget too fast: {{ $value | humanizePercentage }} of runs failed" +
			" (SLO " + pqPercent(br.SLO) + ", limit " + strings.Join(limits, " or ") + ")"
		desc := "The synthetic success SLO of {{ $labels.flow }} is " + pqPercent(br.SLO) + " (a budget of " + pqPercent(budget) +
			" failed runs). Runs failed: " + strings.Join(now, "; ") + ". A long window is judged once the flow's runs cover it" +
			" and it holds at least " + strconv.Itoa(minRuns) + " runs, and more than one failure could push over its limit."
		out = append(out, g.alert(r, s.name, orJoin(parts), summary, desc, "flow"))
	}
	return out, nil
}

// failedOver is a template for the flow's failed-run ratio over w, read
// from its recording rule when the alert is rendered.
func failedOver(w time.Duration) string {
	return "{{ with printf `" + recFlowError + dur(w) + "{flow=%q}` $labels.flow | query }}{{ . | first | value | humanizePercentage }}{{ else }}?{{ end }} over " + dur(w)
}
