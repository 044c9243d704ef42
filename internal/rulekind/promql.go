package rulekind

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/prober-dev/prober/internal/config"
)

// promql: a golden signal of the system itself, a PromQL query compared
// with a value; each series of the answer is an alert of its own.
//
// Data: Source.Query (Prometheus, or nothing in process: ErrNoPromQL).
// PromQL: the query itself (promqlExport).
type promqlKind struct{}

func (promqlKind) Name() config.RuleKind   { return config.PromQL }
func (promqlKind) Has(r *config.Rule) bool { return r.PromQL != nil }

func (promqlKind) Evaluate(c Cycle, r *config.Rule, out []Evaluation) []Evaluation {
	p := r.PromQL
	samples, err := c.Source().Query(c.Context(), p.Query, c.At())
	if err != nil {
		return append(out, UnknownEval(r, Labels(r), "cannot run the query", err))
	}
	if len(samples) == 0 {
		return append(out, UnknownEval(r, Labels(r), "the query returned no data", nil))
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
		ev := Evaluation{Rule: r, Labels: lab, Severity: Severity(r)}
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
			ev = c.Fire(r, ev, head+": "+ev.Value)
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

// --- promql -----------------------------------------------------------------

// Export: the query, compared.
func (promqlKind) Export(g *Export, r *config.Rule) ([]AlertRule, error) {
	p := r.PromQL
	if !slices.Contains([]string{">", ">=", "<", "<=", "==", "!="}, p.Op) {
		return nil, fmt.Errorf("unknown comparison %q", p.Op)
	}
	if strings.TrimSpace(p.Query) == "" {
		return nil, errors.New("no query")
	}
	q := "(\n" + indent(strings.TrimSpace(p.Query), 2) + "\n)"
	expr := q + " " + p.Op + " " + pqNumber(p.Value)
	if p.Op == "!=" {
		// NaN != x holds in PromQL; the engine never fires on NaN (and
		// NaN == NaN does not hold).
		expr += "\nand\n" + q + " == " + q
	}
	summary := r.Name + ": {{ $value | humanize }} " + p.Op + " " + pqNumber(p.Value)
	desc := "The query of rule " + r.Name + " returns {{ $value }}, " + p.Op + " " + pqNumber(p.Value) + ".\nQuery: " + strings.TrimSpace(p.Query)
	return []AlertRule{g.alert(r, Severity(r), expr, summary, desc)}, nil
}
