package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/store"
	"github.com/prober-dev/prober/internal/web"
)

// The run history on disk (store.Archive): every run and the uptime and
// latency buckets, in the state dir beside the alert state, so that a
// restart keeps them. Runs are queued as they are observed and written
// every archiveFlushEvery in one transaction, never on the runner's path;
// pruning to the history: limits runs every archivePruneEvery. An
// evaluator runs no flows and keeps none.
const (
	archiveFile       = "history.db"
	archiveFlushEvery = 2 * time.Second
	archivePruneEvery = 5 * time.Minute
)

// stateDir is where the durable state lives: --state-dir, else
// alerting.state_dir (default prober-state).
func (d *Daemon) stateDir(cfg *config.Config) string {
	if d.opts.StateDir != "" {
		return d.opts.StateDir
	}
	return cfg.Alerting.StateDir
}

// openArchive opens the run history. One that cannot be read is moved
// aside (kept for a look) with a log line, and a fresh one started: it is
// evidence for pages, not alert state (as rule-history.snap). A history
// locked by another prober is an error.
func (d *Daemon) openArchive(cfg *config.Config) error {
	if d.opts.Role == RoleEvaluate || cfg.History.Off {
		return nil
	}
	path := filepath.Join(d.stateDir(cfg), archiveFile)
	lim := store.ArchiveLimits{RunAge: cfg.History.RunsFor, MaxBytes: int64(cfg.History.MaxSizeMB) << 20}
	if lim.RunAge == 0 {
		lim.RunAge = -1 // runs_for: 0 keeps no runs
	}
	a, err := store.OpenArchive(path, lim)
	if errors.Is(err, store.ErrBadArchive) {
		aside := path + ".unreadable-" + time.Now().UTC().Format("20060102T150405Z")
		if rerr := os.Rename(path, aside); rerr != nil {
			return fmt.Errorf("opening the run history: %w (moving it aside: %w)", err, rerr)
		}
		d.log.Warn("run_history_unreadable", "path", path, "moved_to", aside, "error", err.Error(),
			"consequence", "starting with a fresh run history: uptime and the latency graph start again")
		a, err = store.OpenArchive(path, lim)
	}
	if err != nil {
		return fmt.Errorf("opening the run history: %w", err)
	}
	d.archive = a
	if lim.RunAge > 0 {
		// The runs older than those the store holds in full are read
		// from the file, not kept in memory as summaries.
		d.store.SetOlder(a)
	}
	return nil
}

// restoreRuns puts each configured flow's newest archived runs back into
// the store's ring (the status page's state; the strip and the run pages
// read the older ones from the file).
func (d *Daemon) restoreRuns() {
	if d.archive == nil {
		return
	}
	d.mu.RLock()
	names := make([]string, 0, len(d.flows))
	for _, f := range d.flows {
		names = append(names, f.Name)
	}
	d.mu.RUnlock()
	n, keep := 0, d.store.HeldPerFlow()
	for _, f := range names {
		runs := d.archive.Recent(f, keep)
		d.store.Restore(f, runs)
		n += len(runs)
	}
	if n > 0 {
		d.log.Info("run_history_loaded", "path", d.archive.Path(), "runs", n, "flows", len(names))
	}
}

// archiveLoop writes the queued runs every archiveFlushEvery and prunes
// every archivePruneEvery until ctx is done; then writes what is left and
// closes the file. A failed write is logged when it starts and ends
// failing (the runs stay queued, within the queue's bound).
func (d *Daemon) archiveLoop(ctx context.Context) {
	a := d.archive
	t := time.NewTicker(archiveFlushEvery)
	defer t.Stop()
	failing := false
	flush := func() {
		err := a.Flush()
		switch {
		case err != nil && !failing:
			d.log.Error("run_history_write_failed", "path", a.Path(), "error", err.Error(), "note", "runs are kept queued in memory and written when it works again")
		case err == nil && failing:
			d.log.Info("run_history_write_recovered", "path", a.Path())
		}
		failing = err != nil
	}
	prune := func(now time.Time) {
		if err := a.Prune(now); err != nil {
			d.log.Warn("run_history_prune_failed", "error", err.Error())
		}
	}
	prune(time.Now())
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			flush()
			if err := a.Close(); err != nil {
				d.log.Error("run_history_close_failed", "error", err.Error())
			}
			return
		case now := <-t.C:
			flush()
			if now.Sub(lastPrune) >= archivePruneEvery {
				prune(now)
				lastPrune = now
			}
		}
	}
}

// webHistory is the archive as the pages read it.
type webHistory struct{ a *store.Archive }

func (h webHistory) Uptime(flow string, window time.Duration, at time.Time) (good, total int) {
	return h.a.Uptime(flow, window, at)
}

func (h webHistory) Latency(flow string, from, to time.Time) []web.LatencyPoint {
	bs := h.a.Buckets(flow, store.FineBucket, from, to)
	out := make([]web.LatencyPoint, len(bs))
	for i, b := range bs {
		out[i] = web.LatencyPoint{Start: b.Start, Width: store.FineBucket, Runs: b.Runs, Failed: b.Failed, Mean: b.Mean, Max: b.Max}
	}
	return out
}
