package rulekind

import (
	"fmt"
	"math"
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
		c.Fire(r, &ev, what+" "+ev.Value)
		return ev
	}
	ev.Status = OK
	ev.Value = fmt.Sprintf("%s <= %s over %s: %s", quantileName(q), latency(l.Above), span(window), share)
	return ev
}
