package rulekind

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// latency: a flow's (or a step's) q-quantile duration is above a
// threshold over a window: more than 1-q of the samples are slower.
//
// Data: the durations above the threshold, and all (Source.Slower: the
// store's samples, or LatencySeries in Prometheus: the duration
// histogram's le bucket at the threshold, which the daemon adds for the
// rule). PromQL: latencyExport.
type latencyKind struct{}

func (latencyKind) Name() config.RuleKind   { return config.Latency }
func (latencyKind) Has(r *config.Rule) bool { return r.Latency != nil }

func (latencyKind) Evaluate(c Cycle, r *config.Rule, out []Evaluation) []Evaluation {
	return append(out, latencyEval(c, r))
}

func latencyEval(c Cycle, r *config.Rule) Evaluation {
	l := r.Latency
	var id Ident
	if l.Step != "" {
		id = c.Ident(r, "flow", l.Flow, "step", l.Step)
	} else {
		id = c.Ident(r, "flow", l.Flow)
	}
	ev := Evaluation{Rule: r, Labels: id.Labels, Key: id.Key, Severity: Severity(r)}
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
	slower, total, err := c.Source().Slower(c.Context(), l.Flow, l.Step, l.Above, window, c.At())
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
		ev = c.Fire(r, ev, what+" "+ev.Value)
		return ev
	}
	ev.Status = OK
	ev.Value = fmt.Sprintf("%s <= %s over %s: %s", quantileName(q), latency(l.Above), span(window), share)
	return ev
}

// --- latency ----------------------------------------------------------------

// Export: the share of durations within the threshold (its le bucket)
// against q.
func (latencyKind) Export(g *Export, r *config.Rule) ([]AlertRule, error) {
	return []AlertRule{g.latency(r)}, nil
}

func (g *Export) latency(r *config.Rule) AlertRule {
	l := r.Latency
	q := l.Quantile
	if !(q > 0 && q <= 1) {
		q = 0.95
	}
	window := l.Window
	if window <= 0 {
		window = 10 * time.Minute
	}
	w := dur(window)
	by, what, ident := "flow", "{{ $labels.flow }}", []string{"flow"}
	if l.Step != "" {
		by, what, ident = "flow, step", "{{ $labels.flow }} step {{ $labels.step }}", []string{"flow", "step"}
	}
	// The q-quantile is above the threshold when more than 1-q of the
	// durations are: counted exactly from the le bucket at the threshold,
	// which the prober adds to the histogram for this rule, as the engine
	// counts them (histogram_quantile would interpolate within a bucket:
	// with every pay at 1.6s it read a p95 of 2.35s from the (1, 2.5]
	// bucket). Compared as the share within against q, as the engine
	// does; the value is the share slower.
	bucket, count := LatencySeries(l.Flow, l.Step, l.Above)
	sum := func(f, series string) string { return "sum by (" + by + ") (" + f + "(" + series + "[" + w + "]))" }
	expr := "1 - (\n" +
		indent(sum("rate", bucket)+"\n/\n"+sum("rate", count)+"\n< "+pqNumber(q), 2) + "\n)\nand\n" +
		sum("increase", count) + " >= " + strconv.Itoa(max(l.MinSamples, 1))
	qn := "p" + pqNumber(q*100)
	limit := pqPercent(1 - q)
	summary := what + " " + qn + " > " + pqHuman(l.Above) + " over " + w + ": {{ $value | humanizePercentage }} of samples slower than " +
		pqHuman(l.Above) + " (limit " + limit + ")"
	desc := "More than " + limit + " of " + what + " durations over " + w + " were slower than " + pqHuman(l.Above) +
		" ({{ $value | humanizePercentage }}): the " + qn + " is above it. Counted from the duration histogram's le=\"" +
		pqNumber(l.Above.Seconds()) + "\" bucket, which probers running this rule export; pages from " +
		strconv.Itoa(max(l.MinSamples, 1)) + " samples."
	return g.alert(r, Severity(r), expr, summary, desc, ident...)
}

// LatencySeries are the series a latency rule over flow (and step, if not
// "") with threshold above reads, in Prometheus: the bucket of durations
// at or below the threshold (a bucket boundary of that histogram: the
// daemon makes it one), and the count of all. The engine over Prometheus
// and the exported rules (promrules) both read these.
func LatencySeries(flow, step string, above time.Duration) (bucket, count string) {
	metric, sel := "prober_flow_duration_seconds", `flow=`+strconv.Quote(flow)
	if step != "" {
		metric, sel = "prober_step_duration_seconds", sel+`,step=`+strconv.Quote(step)
	}
	// le as the text format writes it ("2") or as OpenMetrics and
	// Prometheus 3 do ("2.0").
	le := strconv.FormatFloat(above.Seconds(), 'g', -1, 64)
	alts := regexp.QuoteMeta(le)
	if !strings.ContainsAny(le, ".e") {
		alts += `|` + regexp.QuoteMeta(le+".0")
	}
	return metric + `_bucket{` + sel + `,le=~` + strconv.Quote(alts) + `}`, metric + `_count{` + sel + `}`
}
