package rulekind

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// cert_expiry: the leaf certificate a step saw (a tls step, or an HTTPS
// step that read its connection) expires soon: a warning under within, a
// page under critical (and once expired). One alert per flow, step and
// host.
//
// Data: the certificates the flows' latest runs saw (Certificates: the
// store's cert.* attributes of the steps, or CertExpiryQuery over
// prober_cert_expiry_timestamp_seconds in Prometheus). PromQL:
// certExpiryExport.
type certExpiryKind struct{}

func (certExpiryKind) Name() config.RuleKind   { return config.CertExpiry }
func (certExpiryKind) Has(r *config.Rule) bool { return r.CertExpiry != nil }

// CertExpiryMetric is the gauge of a step's leaf certificate's not-after
// (Unix seconds), labelled flow, step and host.
const CertExpiryMetric = "prober_cert_expiry_timestamp_seconds"

// Certificate is a leaf certificate a flow's step saw.
type Certificate struct {
	Flow, Step, Host string
	// Issuer and Subject are empty when the source cannot tell
	// (Prometheus).
	Issuer, Subject string
	// NotAfter is the earliest over the regions that saw the host.
	NotAfter time.Time
}

// Certificates is a source that knows the certificates steps saw (both
// sources do; a source without it cannot judge cert_expiry rules).
type Certificates interface {
	// Certificates are the leaf certificates flows' steps (every flow's
	// when flows is empty) saw in their latest runs before at: one per
	// flow, step and host, sorted so.
	Certificates(ctx context.Context, flows []string, at time.Time) ([]Certificate, error)
}

// CertExpiryQuery is the earliest not-after per flow, step and host over
// the regions, of flows and steps (every one when empty): Certificates in
// Prometheus, and what the exported rules compare with time().
func CertExpiryQuery(flows, steps []string) string {
	var m []string
	if len(flows) > 0 {
		m = append(m, oneOf("flow", flows))
	}
	if len(steps) > 0 {
		m = append(m, oneOf("step", steps))
	}
	return "min by (flow, step, host) (" + CertExpiryMetric + braces(m) + ")"
}

func (certExpiryKind) Evaluate(c Cycle, r *config.Rule, out []Evaluation) []Evaluation {
	ce := r.CertExpiry
	src, ok := c.Source().(Certificates)
	if !ok {
		return append(out, UnknownEval(r, Labels(r), "the source cannot tell certificates",
			fmt.Errorf("rule %s: the data source has no certificates", r.Name)))
	}
	certs, err := src.Certificates(c.Context(), ce.Flows, c.At())
	if err != nil {
		return append(out, UnknownEval(r, Labels(r), "cannot read the certificates", fmt.Errorf("reading certificates: %w", err)))
	}
	n := len(out)
	for _, ct := range certs {
		if len(ce.Steps) > 0 && !slices.Contains(ce.Steps, ct.Step) {
			continue
		}
		out = append(out, certExpiryOne(c, r, ce, ct))
	}
	if len(out) == n {
		// No TLS step ran yet (or none is selected): not healthy, not a page.
		return append(out, UnknownEval(r, Labels(r), "no certificate seen yet", nil))
	}
	return out
}

func certExpiryOne(c Cycle, r *config.Rule, ce *config.CertExpiryRule, ct Certificate) Evaluation {
	id := c.IdentBy(r, "flow", ct.Flow, "step", ct.Step, "host", ct.Host)
	ev := Evaluation{Rule: r, Labels: id.Labels, Key: id.Key, Severity: "warning"}
	ev.Evidence.Flow, ev.Evidence.Step = ct.Flow, ct.Step
	left := ct.NotAfter.Sub(c.At())
	date := ct.NotAfter.UTC().Format("2006-01-02 15:04Z")
	switch {
	case left < ce.Critical:
		ev.Status, ev.Severity = Firing, "critical"
	case left < ce.Within:
		ev.Status = Firing
	default:
		ev.Status = OK
		ev.Value = fmt.Sprintf("certificate of %s expires in %s (%s), after the %s warned of", ct.Host, inDays(left), date, inDays(ce.Within))
		return ev
	}
	ev.Value = fmt.Sprintf("certificate of %s %s (%s)", ct.Host, expiresIn(left), date)
	what := ct.Flow + " step " + ct.Step + ": certificate of " + ct.Host
	if ct.Issuer != "" {
		what += " (issuer " + ct.Issuer + ")"
	}
	ev = c.Fire(r, ev, fmt.Sprintf("%s %s, on %s", what, expiresIn(left), date))
	return ev
}

// expiresIn is "expires in 9 days", "expires in 5h", "expired 2 days ago".
func expiresIn(left time.Duration) string {
	if left <= 0 {
		return "expired " + inDays(-left) + " ago"
	}
	return "expires in " + inDays(left)
}

// inDays is a time left in whole days from two days on (9 days), else
// to the hour or minute (1d5h, 5h, 40m).
func inDays(d time.Duration) string {
	if d >= 48*time.Hour {
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	}
	return human(d)
}

// Export: the earliest not-after per flow, step and host, minus now, under
// critical (critical) and between critical and within (warning).
func (certExpiryKind) Export(g *Export, r *config.Rule) ([]AlertRule, error) {
	ce := r.CertExpiry
	left := CertExpiryQuery(ce.Flows, ce.Steps) + " - time()"
	date := "{{ with printf `min(" + CertExpiryMetric + "{flow=%q,step=%q,host=%q})` $labels.flow $labels.step $labels.host | query }}" +
		"{{ . | first | value | humanizeTimestamp }}{{ end }}"
	summary := "{{ $labels.flow }} step {{ $labels.step }}: certificate of {{ $labels.host }} expires in {{ $value | humanizeDuration }}, on " + date
	desc := "The leaf certificate {{ $labels.host }} presents to step {{ $labels.step }} of {{ $labels.flow }} expires on " + date +
		" (in {{ $value | humanizeDuration }}; a negative time: expired). cert_expiry warns under " + days(ce.Within) +
		" and pages under " + days(ce.Critical) + ": renew it, or check that its automatic renewal runs."
	return []AlertRule{
		g.alert(r, "critical", left+" < "+wholeSeconds(ce.Critical), summary, desc, "flow", "step", "host"),
		g.alert(r, "warning", "(\n  "+left+" < "+wholeSeconds(ce.Within)+"\n) >= "+wholeSeconds(ce.Critical), summary, desc, "flow", "step", "host"),
	}, nil
}

// days is a threshold in days when whole (14d), else as Go writes it.
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return strings.TrimSuffix(d.String(), "0s")
}

// wholeSeconds is d in seconds without an exponent: 1209600, not 1.2096e+06.
func wholeSeconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }
