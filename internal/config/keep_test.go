package config

import (
	"slices"
	"testing"
)

// TestKeepResponse: keep_response defaults to 4 KiB, is set in defaults
// and per flow (the flow's wins), 0 keeps none, and a bad value is an
// error at its place.
func TestKeepResponse(t *testing.T) {
	flow := func(extra string) string {
		return "name: f\n" + extra + "steps:\n  - name: a\n    request: {url: \"http://x/\"}\n"
	}
	for _, tc := range []struct {
		name          string
		defaults, own string
		want          int64
		errs          []string
	}{
		{name: "default", want: 4096},
		{name: "in defaults", defaults: "16KiB", want: 16 << 10},
		{name: "the flow's wins", defaults: "16KiB", own: "keep_response: 100\n", want: 100},
		{name: "zero keeps none", own: "keep_response: 0\n", want: 0},
		{name: "zero in defaults", defaults: "0", want: 0},
		{name: "too large", own: "keep_response: 2MiB\n",
			errs: []string{`f.yaml:2:16: keep_response must be between 0 (keep none) and 1MiB, got "2MiB"`}},
		{name: "not a size", defaults: "lots",
			errs: []string{`probes.yaml:1:27: expected a size like 1MiB or 65536, got "lots"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"f.yaml": flow(tc.own)}
			if tc.defaults != "" {
				files["probes.yaml"] = "defaults: {keep_response: " + tc.defaults + "}\nflows: [f.yaml]\n"
			} else {
				files["probes.yaml"] = "flows: [f.yaml]\n"
			}
			cfg, errs := loadFiles(t, files)
			if !slices.Equal(errs, tc.errs) {
				t.Fatalf("errors %q, want %q", errs, tc.errs)
			}
			if errs == nil && cfg.Flows[0].HTTP.KeepResponse != tc.want {
				t.Errorf("keep_response %d, want %d", cfg.Flows[0].HTTP.KeepResponse, tc.want)
			}
		})
	}
}
