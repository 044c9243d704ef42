package config

import (
	"slices"
	"testing"
	"time"
)

func TestHistoryConfig(t *testing.T) {
	const flow = "name: f\nsteps:\n  - name: a\n    request: {url: \"http://x/\"}\n"
	tests := []struct {
		name    string
		history string
		want    HistoryConfig
		errs    []string
	}{
		{name: "defaults", want: HistoryConfig{RunsFor: 48 * time.Hour, MaxSizeMB: 256}},
		{name: "set", history: "history: {runs_for: 6h, max_size_mb: 32}\n", want: HistoryConfig{RunsFor: 6 * time.Hour, MaxSizeMB: 32}},
		{name: "off", history: "history: {enabled: false}\n", want: HistoryConfig{Off: true, RunsFor: 48 * time.Hour, MaxSizeMB: 256}},
		{name: "no runs", history: "history: {runs_for: 0s}\n", want: HistoryConfig{MaxSizeMB: 256}},
		{name: "bad", history: "history: {runs_for: -1h, max_size_mb: 0, keep: 3}\n", errs: []string{
			`probes.yaml:1:42: unknown field "keep" in history`,
			`probes.yaml:1:21: history.runs_for must not be negative, got -1h0m0s`,
			`probes.yaml:1:39: history.max_size_mb must be between 1 and 1048576, got 0`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, errs := loadFiles(t, map[string]string{"probes.yaml": tc.history + "flows: [f.yaml]\n", "f.yaml": flow})
			if tc.errs != nil {
				slices.Sort(errs)
				slices.Sort(tc.errs)
				if !slices.Equal(errs, tc.errs) {
					t.Fatalf("errors:\n%q\nwant\n%q", errs, tc.errs)
				}
				return
			}
			if errs != nil {
				t.Fatal(errs)
			}
			if cfg.History != tc.want {
				t.Errorf("history %+v, want %+v", cfg.History, tc.want)
			}
		})
	}
}
