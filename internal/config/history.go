package config

import "time"

// HistoryConfig bounds the run history kept on disk in the state dir
// (probes.yaml's history:). The uptime buckets are bounded by their spans
// (a day of 5-minute ones, 30 days of hourly ones), not by these.
type HistoryConfig struct {
	// Off turns the history on disk off (enabled: false): no file, no
	// uptime, graph or uptime badges, the runs strip empty after a restart.
	Off bool
	// RunsFor is how long runs are kept (default 48h; 0 keeps none, only
	// the uptime and latency buckets).
	RunsFor time.Duration
	// MaxSizeMB bounds the kept runs' size over all flows, in MiB
	// (default 256), shared equally by the flows.
	MaxSizeMB int
}

// Defaults of HistoryConfig.
const (
	DefaultHistoryRunsFor   = 48 * time.Hour
	DefaultHistoryMaxSizeMB = 256
)

// history reads probes.yaml's history: block into h.
func (f *file) history(o *object, h *HistoryConfig) {
	if n := o.get("enabled"); n != nil {
		if b, ok := f.boolean(n); ok {
			h.Off = !b
		}
	}
	if n := o.get("runs_for"); n != nil {
		if d, ok := f.duration(n); ok {
			if d < 0 {
				f.errorf(n, "history.runs_for must not be negative, got %s", d)
			} else {
				h.RunsFor = d
			}
		}
	}
	if n := o.get("max_size_mb"); n != nil {
		if v, ok := f.integer(n, "history.max_size_mb", 1, 1<<20); ok {
			h.MaxSizeMB = int(v)
		}
	}
}
