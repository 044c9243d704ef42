package config

import (
	"strings"
	"testing"
	"testing/fstest"
)

// `metrics:` in probes.yaml sets every flow's level; a flow file's own
// overrides it; a wrong value is an error at its file:line:col.
func TestMetricsLevel(t *testing.T) {
	for _, tt := range []struct {
		name, probes string
		want         map[string]string
		global       string
	}{
		{"default", "flows: [a.yaml, d.yaml, p.yaml]\n",
			map[string]string{"a": MetricsDefault, "d": MetricsDetailed, "p": MetricsDefault}, MetricsDefault},
		{"detailed globally", "metrics: detailed\nflows: [a.yaml, d.yaml, p.yaml]\n",
			map[string]string{"a": MetricsDetailed, "d": MetricsDetailed, "p": MetricsDefault}, MetricsDetailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(fstest.MapFS{
				"probes.yaml": {Data: []byte(tt.probes)},
				"a.yaml":      {Data: []byte(okFlow("a"))},
				"d.yaml":      {Data: []byte(schedFlow("d", "metrics: detailed"))},
				"p.yaml":      {Data: []byte(schedFlow("p", "metrics: default"))},
			}, "probes.yaml", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Metrics != tt.global {
				t.Errorf("Config.Metrics %q, want %q", cfg.Metrics, tt.global)
			}
			for _, f := range cfg.Flows {
				if f.Metrics != tt.want[f.Name] {
					t.Errorf("%s: metrics %q, want %q", f.Name, f.Metrics, tt.want[f.Name])
				}
			}
		})
	}
	_, got := loadFiles(t, map[string]string{
		"probes.yaml": "metrics: full\nflows: [f.yaml]\n",
		"f.yaml":      "name: f\nmetrics: [detailed]\nsteps:\n  - name: a\n    request: {url: \"http://x/\"}\n",
	})
	want := []string{
		`f.yaml:2:10: expected a metric level, got a list`,
		`probes.yaml:1:10: metrics "full" must be default or detailed`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
