package daemon

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/store"
)

// The rules' history (the store's bucketed counts, see store.SaveHistory)
// is saved in the state dir every historyEvery and at shutdown, and loaded
// at start: a restart or a deploy keeps the burn-rate windows covered,
// rather than leaving every window young (not judged) for up to three
// days. Only the prober that evaluates its own store keeps it: an
// evaluator reads Prometheus, which keeps its own.
const (
	historyFile  = "rule-history.snap"
	historyEvery = time.Minute
)

// historyPath is where the history is kept, "" when this prober keeps none.
func (a *alerting) historyPath() string {
	if a.d.opts.Role == RoleEvaluate || a.dir == "" {
		return ""
	}
	return filepath.Join(a.dir, historyFile)
}

// longestWindow is the longest window cfg's rules and signals read from the
// store's counts: what is older is dropped at load.
func longestWindow(cfg *config.Config) time.Duration {
	var w time.Duration
	for _, r := range cfg.Alerting.Rules {
		switch {
		case r.BurnRate != nil:
			windows := r.BurnRate.Windows
			if len(windows) == 0 {
				windows = config.DefaultBurnWindows
			}
			for _, bw := range windows {
				w = max(w, bw.Long)
			}
		case r.DependencySuccess != nil:
			w = max(w, r.DependencySuccess.Window)
		}
	}
	for _, s := range cfg.Alerting.Signals {
		if s != nil {
			w = max(w, s.Window)
		}
	}
	return min(max(w, time.Hour), store.HistorySpan)
}

// loadHistory reads the saved history into the store. A missing file is a
// first start; an unreadable one is one log line and a fresh history (it
// is evidence, not alert state).
func (a *alerting) loadHistory(cfg *config.Config, now time.Time) {
	path := a.historyPath()
	if path == "" {
		return
	}
	err := a.d.store.LoadHistory(path, now, longestWindow(cfg))
	switch {
	case err == nil:
		a.d.log.Info("rule_history_loaded", "path", path)
	case errors.Is(err, fs.ErrNotExist):
	default:
		a.d.log.Warn("rule_history_unreadable", "error", err.Error(),
			"note", "starting with a fresh history: burn-rate windows are judged once the runs cover them")
	}
}

// saveHistory writes the history; a failure is logged (the next save may
// succeed) and never stops the prober.
func (a *alerting) saveHistory(now time.Time) {
	path := a.historyPath()
	if path == "" {
		return
	}
	a.histMu.Lock()
	defer a.histMu.Unlock()
	if err := a.d.store.SaveHistory(path, now); err != nil {
		a.d.log.Warn("rule_history_save_failed", "error", err.Error())
	}
}

// historyLoop saves the history every historyEvery until ctx is done.
func (a *alerting) historyLoop(ctx context.Context) {
	if a.historyPath() == "" {
		return
	}
	t := time.NewTicker(historyEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			a.saveHistory(now)
		}
	}
}
