package daemon

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/store"
)

// TestAlertingApplyRetained bounds what the alerting half keeps a flow
// once a configuration is applied (before any cycle): the flows' maximum
// ages are their FlowDefs', found by name in a sorted list of the flows (8
// bytes a flow), not a map of every flow's (about 43 bytes a flow).
func TestAlertingApplyRetained(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector grows every allocation")
	}
	const flows = 5000
	cfg, names := benchConfig(t, flows, "")
	d := &Daemon{opts: Options{StateDir: t.TempDir(), ConsoleWriter: io.Discard}, log: slog.New(slog.DiscardHandler),
		reg: prometheus.NewRegistry(), store: store.New(cfg.Store.Keep)}
	d.store.Retain(names, cfg.Store.Keep)
	a, err := d.openAlerting(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.db.Close() })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := a.apply(cfg); err != nil { // its fixed part (engine, dispatcher) is a few kB
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perFlow := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / flows
	t.Logf("alerting.apply keeps %d bytes a flow", perFlow)
	if perFlow > 16 {
		t.Errorf("alerting.apply keeps %d bytes a flow, want <= 16", perFlow)
	}
	runtime.KeepAlive(cfg)
}

// TestFlowMaxAges: each flow's maximum age is its own schedule's and
// timeout's, whichever FlowDef it shares; an unknown flow's the default.
func TestFlowMaxAges(t *testing.T) {
	def := func(every, timeout time.Duration, cron string, retries int) *config.FlowDef {
		return &config.FlowDef{Schedule: config.Schedule{Every: every, Cron: cron}, Timeout: timeout, Retries: retries}
	}
	shared := def(time.Minute, 30*time.Second, "", 1)
	cfg := &config.Config{Flows: []*config.Flow{
		{Name: "b", FlowDef: shared},
		{Name: "a", FlowDef: shared},
		{Name: "c", FlowDef: def(10*time.Second, 5*time.Second, "", 0)},
		{Name: "hourly", FlowDef: def(0, 10*time.Second, "@hourly", 2)},
	}}
	age := flowMaxAges(cfg)
	for flow, want := range map[string]time.Duration{
		"a": 3 * time.Minute, "b": 3 * time.Minute, "c": 25 * time.Second,
		"hourly": 2*time.Hour + 30*time.Second, "gone": 5 * time.Minute,
	} {
		if got := age(flow); got != want {
			t.Errorf("%s: %s, want %s", flow, got, want)
		}
	}
}

// TestJobsHandedOver: once Serve has given the jobs to the scheduler (and
// after a reload while serving) the daemon keeps none (64 bytes a flow
// the scheduler holds too); a run of every flow still happens.
func TestJobsHandedOver(t *testing.T) {
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":       probes("health"),
		"flows/health.yaml": healthFlow("health"),
	}})
	jobs := func() int {
		f.d.reloadMu.Lock()
		defer f.d.reloadMu.Unlock()
		return len(f.d.jobs)
	}
	if n := jobs(); n != 1 {
		t.Fatalf("%d jobs before Serve, want 1", n)
	}
	f.serve()
	waitFor(t, 15*time.Second, "a run of health", func() bool { return f.d.Store().Latest("health") != nil })
	if n := jobs(); n != 0 {
		t.Errorf("%d jobs kept after Serve", n)
	}
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := jobs(); n != 0 {
		t.Errorf("%d jobs kept after a reload", n)
	}
}
