package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCertExpiryRule(t *testing.T) {
	tests := []struct {
		name, rule string
		want       CertExpiryRule
		errs       []string
	}{
		{name: "defaults", rule: `cert_expiry: {}`,
			want: CertExpiryRule{Within: 14 * 24 * time.Hour, Critical: 3 * 24 * time.Hour}},
		{name: "days and hours", rule: `cert_expiry: {flows: [checkout], steps: [pay], within: 21d, critical: 36h}`,
			want: CertExpiryRule{Flows: []string{"checkout"}, Steps: []string{"pay"}, Within: 21 * 24 * time.Hour, Critical: 36 * time.Hour}},
		{name: "fractional days", rule: `cert_expiry: {within: 1.5d, critical: 12h}`,
			want: CertExpiryRule{Within: 36 * time.Hour, Critical: 12 * time.Hour}},
		{name: "critical not below within", rule: `cert_expiry: {within: 3d}`,
			errs: []string{"probes.yaml:8:18: critical (3d) must be shorter than within (3d): critical under critical, warning under within"}},
		{name: "unknown step", rule: `cert_expiry: {steps: [pya]}`,
			errs: []string{`probes.yaml:8:27: no step "pya" in the rule's flows (did you mean "pay"?)`}},
		{name: "bad duration", rule: `cert_expiry: {within: soon}`,
			errs: []string{`probes.yaml:8:27: expected a duration like 14d, 36h or 90m, got "soon"`}},
		{name: "negative days", rule: `cert_expiry: {within: -2d}`,
			errs: []string{`probes.yaml:8:27: within must be positive, got "-2d"`}},
		{name: "unknown field", rule: `cert_expiry: {withn: 3d}`,
			errs: []string{`probes.yaml:8:19: unknown field "withn" in cert_expiry (did you mean "within"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, errs := loadFiles(t, map[string]string{"f.yaml": alertFlow, "probes.yaml": probesWith("rules:\n  - name: cert\n    " + tt.rule + "\n")})
			if !slices.Equal(errs, tt.errs) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(tt.errs, "\n"))
			}
			if len(tt.errs) > 0 {
				return
			}
			r := cfg.Alerting.Rules[0]
			if r.Kind != CertExpiry || r.CertExpiry == nil {
				t.Fatalf("rule %+v", r)
			}
			got := *r.CertExpiry
			if !slices.Equal(got.Flows, tt.want.Flows) || !slices.Equal(got.Steps, tt.want.Steps) || got.Within != tt.want.Within || got.Critical != tt.want.Critical {
				t.Errorf("cert_expiry %+v, want %+v", got, tt.want)
			}
		})
	}
}
