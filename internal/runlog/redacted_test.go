package runlog

import (
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
)

// daemonChain is the daemon's run log: runlog over the secret handler over
// JSON, with secrets configured.
func daemonChain() (*Logger, *atomic.Pointer[secret.Set]) {
	var cur atomic.Pointer[secret.Set]
	cur.Store(secret.NewSet(map[string]string{
		"SHOP_PASSWORD": "pw-7d1e-LeakCanary",
		"API_TOKEN":     "tok_93abC0ffee5eed42",
		"SLACK_TOKEN":   "xoxb-1234-5678-LeakCanary0042",
	}))
	return New(slog.New(secret.NewHandler(slog.NewJSONHandler(io.Discard, nil), cur.Load))), &cur
}

// oneStepRun is the issue 20 check: one GET that passed.
func oneStepRun() *result.Run {
	s := passed("home", 12*time.Millisecond)
	s.Method, s.Kind = "GET", "http"
	return &result.Run{ID: "b7ad6b7169203331", Flow: "shop-home", Region: "eu-west-1", TraceID: traceOK,
		Planned: t0, Start: t0, Duration: 13 * time.Millisecond, Status: result.Passed, Class: result.OK,
		Steps: []result.Step{s}}
}

// TestObserveRedactedAllocs: a run redacted by its runner's set, the set
// the daemon's handler holds, is not built again by the handler (was: 11
// allocations for the one-step run's two lines, 4 now; 36 for a failed four-step run, 17 now).
// After a reload to another set the handler redacts the lines again.
func TestObserveRedactedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts do not hold under the race detector")
	}
	lg, cur := daemonChain()
	set := cur.Load()
	for _, tc := range []struct {
		name string
		r    *result.Run
		max  float64
	}{
		{"one step", oneStepRun(), 5},
		{"failed, four steps", failingRun(), 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			handler := testing.AllocsPerRun(200, func() { lg.Observe(tc.r) })
			once := testing.AllocsPerRun(200, func() { lg.ObserveRedacted(tc.r, set) })
			t.Logf("allocations: %v redacted by the handler, %v redacted once", handler, once)
			if once > tc.max || once >= handler {
				t.Errorf("%v allocations a run redacted once (at most %v; %v redacted by the handler)", once, tc.max, handler)
			}
			cur.Store(secret.NewSet(map[string]string{"NEW": "new-Secret-Value"}))
			defer cur.Store(set)
			if again := testing.AllocsPerRun(200, func() { lg.ObserveRedacted(tc.r, set) }); again < handler {
				t.Errorf("after a reload: %v allocations, fewer than the handler's %v: lines passed unredacted", again, handler)
			}
		})
	}
}

// BenchmarkObserveRedacted: old is a run's lines redacted by the daemon's
// handler alone, new redacted once by runlog and passed on.
func BenchmarkObserveRedacted(b *testing.B) {
	lg, cur := daemonChain()
	set := cur.Load()
	for _, r := range []*result.Run{oneStepRun(), failingRun()} {
		name := map[bool]string{true: "one_step", false: "failed_four_steps"}[len(r.Steps) == 1]
		b.Run(name+"/old", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				lg.Observe(r)
			}
		})
		b.Run(name+"/new", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				lg.ObserveRedacted(r, set)
			}
		})
	}
}
