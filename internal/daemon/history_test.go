package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prober-dev/prober/internal/store"
)

// historyDaemon is the daemon's alerting half over the bench configuration
// (a burn-rate rule added) with its state in dir, its store holding an hour
// of runs of each flow when filled.
func historyDaemon(t *testing.T, dir string, filled bool) (*Daemon, *logBuf, *alerting, []string) {
	t.Helper()
	cfg, names := benchConfig(t, 3, "")
	lb := &logBuf{}
	d := &Daemon{opts: Options{StateDir: dir, ConsoleWriter: io.Discard}, log: slog.New(slog.NewJSONHandler(lb, nil)),
		reg: prometheus.NewRegistry(), store: store.New(cfg.Store.Keep)}
	if filled {
		start := time.Now().Add(-time.Hour).Truncate(time.Minute)
		for m := range 60 {
			for _, f := range names {
				d.store.Observe(benchRun(f, start.Add(time.Duration(m)*time.Minute), true, 0))
			}
		}
	}
	a, err := d.openAlerting(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.db.Close() })
	d.store.Retain(names, cfg.Store.Keep)
	if err := a.apply(cfg); err != nil {
		t.Fatal(err)
	}
	return d, lb, a, names
}

// TestHistoryAcrossRestarts: the history is saved at shutdown and loaded at
// the next start; an unreadable snapshot is one log line and a fresh
// history.
func TestHistoryAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	d1, _, a1, names := historyDaemon(t, dir, true)
	since := d1.store.FlowHistorySince(names[0])
	_, total := d1.store.FlowCounts(names[0], time.Hour, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a1.shutdown(ctx)

	d2, log2, a2, _ := historyDaemon(t, dir, false)
	if got := d2.store.FlowHistorySince(names[0]); !got.Equal(since) || since.IsZero() {
		t.Errorf("history since %v after the restart, want %v", got, since)
	}
	if _, n := d2.store.FlowCounts(names[0], time.Hour, time.Now()); n != total || n == 0 {
		t.Errorf("%d runs over the last hour after the restart, want %d", n, total)
	}
	if len(log2.find(t, "rule_history_loaded")) != 1 {
		t.Errorf("no rule_history_loaded line: %v", log2.lines(t))
	}

	a2.db.Close() // the next start opens it

	path := filepath.Join(dir, historyFile)
	for name, content := range map[string][]byte{"garbage": []byte("not a snapshot"), "empty": nil} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			d3, log3, _, _ := historyDaemon(t, dir, false)
			lines := log3.find(t, "rule_history_unreadable")
			if len(lines) != 1 || lines[0]["level"] != "WARN" {
				t.Fatalf("want one rule_history_unreadable warning, got %v", log3.lines(t))
			}
			if !d3.store.FlowHistorySince(names[0]).IsZero() {
				t.Error("an unreadable snapshot loaded history")
			}
		})
	}
}

// TestHistorySavedEveryMinute: the loop saves the history every minute
// while the prober runs, so that a crash (no shutdown save) loses a minute.
func TestHistorySavedEveryMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		st := store.New(10)
		d := &Daemon{log: slog.New(slog.DiscardHandler), store: st}
		a := &alerting{d: d, dir: dir}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); a.historyLoop(ctx) }()
		st.Observe(benchRun("load-00000", time.Now(), true, 0))
		path := filepath.Join(dir, historyFile)
		time.Sleep(historyEvery - time.Second)
		synctest.Wait()
		if _, err := os.Stat(path); err == nil {
			t.Fatal("saved before a minute passed")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		fresh := store.New(10)
		if err := fresh.LoadHistory(path, time.Now(), time.Hour); err != nil {
			t.Fatalf("after a minute: %v", err)
		}
		if got := fresh.FlowHistorySince("load-00000"); !got.Equal(st.FlowHistorySince("load-00000")) {
			t.Errorf("saved history since %v", got)
		}
		cancel()
		<-done
	})
}
