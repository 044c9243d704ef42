package config

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// CertExpiry is the kind of rule that watches the TLS certificates steps
// see (tls steps, and HTTPS steps that read their connection).
const CertExpiry RuleKind = "cert_expiry"

// CertExpiryRule fires when the leaf certificate a step saw expires within
// Within (warning) or Critical (critical; also once expired): one alert per
// flow, step and host.
type CertExpiryRule struct {
	Flows    []string // empty = every flow
	Steps    []string // empty = every step of those flows
	Within   time.Duration
	Critical time.Duration
}

// Defaults of cert_expiry.
const (
	defaultCertWithin   = 14 * 24 * time.Hour
	defaultCertCritical = 3 * 24 * time.Hour
)

func (l *loader) certExpiry(f *file, n *yaml.Node, sc ruleScope) *CertExpiryRule {
	o := f.object(n, "cert_expiry", []string{"flows", "steps", "within", "critical"})
	r := &CertExpiryRule{Within: defaultCertWithin, Critical: defaultCertCritical}
	for _, it := range f.list(o.get("flows"), "a list of flow names") {
		if s := l.flowRef(f, it, sc); s != "" {
			r.Flows = append(r.Flows, s)
		}
	}
	for _, it := range f.list(o.get("steps"), "a list of step names") {
		s, ok := f.str(it, "a step name")
		if !ok {
			continue
		}
		var names []string
		for name, fl := range sc.flows {
			if len(r.Flows) > 0 && !slices.Contains(r.Flows, name) {
				continue
			}
			for _, st := range append(slices.Clone(fl.Steps), fl.Cleanup...) {
				if !slices.Contains(names, st.Name) {
					names = append(names, st.Name)
				}
			}
		}
		slices.Sort(names)
		if !slices.Contains(names, s) {
			f.errorf(it, "no step %s in the rule's flows%s", quote(s), didYouMean(s, names))
			continue
		}
		r.Steps = append(r.Steps, s)
	}
	if v := o.get("within"); v != nil {
		if d, ok := f.days(v, "within"); ok {
			r.Within = d
		}
	}
	if v := o.get("critical"); v != nil {
		if d, ok := f.days(v, "critical"); ok {
			r.Critical = d
		}
	}
	if r.Critical >= r.Within {
		f.errorf(n, "critical (%s) must be shorter than within (%s): critical under critical, warning under within", days(r.Critical), days(r.Within))
	}
	return r
}

// days reads a positive duration that may be in days: 14d, 36h, 1.5d.
func (f *file) days(n *yaml.Node, what string) (time.Duration, bool) {
	if f.isScalar(n) {
		if s, ok := strings.CutSuffix(strings.TrimSpace(n.Value), "d"); ok {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				if v <= 0 {
					f.errorf(n, "%s must be positive, got %s", what, describe(n))
					return 0, false
				}
				return time.Duration(v * float64(24*time.Hour)), true
			}
		}
		if d, err := time.ParseDuration(strings.TrimSpace(n.Value)); err == nil {
			if d <= 0 {
				f.errorf(n, "%s must be positive, got %s", what, d)
				return 0, false
			}
			return d, true
		}
	}
	f.errorf(n, "expected a duration like 14d, 36h or 90m, got %s", describe(n))
	return 0, false
}

// days shows a duration in days when it is whole days.
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}
