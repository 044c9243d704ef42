package schedule

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// runLog records every run's planned and actual start, per flow.
type runLog struct {
	mu      sync.Mutex
	planned map[string][]time.Time
	actual  map[string][]time.Time
}

func newRunLog() *runLog {
	return &runLog{planned: map[string][]time.Time{}, actual: map[string][]time.Time{}}
}

func (r *runLog) job(name string, sc config.Schedule, onStart bool) Job {
	return Job{Name: name, Schedule: sc, RunOnStart: onStart, Run: func(_ context.Context, planned time.Time) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.planned[name] = append(r.planned[name], planned)
		r.actual[name] = append(r.actual[name], time.Now())
	}}
}

func (r *runLog) runs(name string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.actual[name]...)
}

// perSecond counts the runs that started in each second from t0, for n seconds.
func (r *runLog) perSecond(t0 time.Time, n int) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int, n)
	for _, ts := range r.actual {
		for _, t := range ts {
			if i := int(t.Sub(t0) / time.Second); t.Sub(t0) >= 0 && i < n {
				out[i]++
			}
		}
	}
	return out
}

// Item 2 of issue 20: starting with many flows ran every one of them within
// the first seconds (200 flows every 10s: all 200 in the first second, then
// only their phased runs). Each flow's first run must be at its phase, so
// that the first interval looks exactly like the next ones.
func TestStartRunsEachFlowAtItsPhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(3700 * time.Millisecond) // start at no round instant
		const flows, every = 200, 10 * time.Second
		rl := newRunLog()
		jobs := make([]Job, flows)
		for i := range jobs {
			jobs[i] = rl.job(fmt.Sprintf("flow-%03d", i), config.Schedule{Every: every}, false)
		}
		s := New(Options{})
		start := time.Now()
		if err := s.Set(jobs); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3*every - time.Millisecond)
		synctest.Wait()
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			runs := rl.runs(j.Name)
			want := phased{interval: every, phase: offset(j.Name, every)}.Next(start)
			if len(runs) != 3 {
				t.Fatalf("%s ran %d times in 3 intervals, want 3: %v", j.Name, len(runs), runs)
			}
			if !runs[0].Equal(want) {
				t.Fatalf("%s first ran %s after start, want at its phase, %s after", j.Name, runs[0].Sub(start), want.Sub(start))
			}
		}
		// The start-up interval, second by second, is the steady one.
		sec := rl.perSecond(start, 30)
		for i := range 10 {
			if sec[i] != sec[i+10] || sec[i] != sec[i+20] {
				t.Fatalf("runs per second differ between the first interval and the next: %v", sec)
			}
		}
		if peak := max(sec[0], sec[1]); peak > flows/5 {
			t.Fatalf("%d runs in a start-up second, steady %v", peak, sec[10:20])
		}
	})
}

// A restarted prober keeps each flow's instants: they differ from the
// previous process's by whole intervals.
func TestRestartKeepsPhases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first := map[string]time.Time{}
		for round := range 2 {
			rl := newRunLog()
			var jobs []Job
			for _, n := range []string{"checkout", "login", "search"} {
				jobs = append(jobs, rl.job(n, config.Schedule{Every: 7 * time.Second}, false))
			}
			s := New(Options{})
			if err := s.Set(jobs); err != nil {
				t.Fatal(err)
			}
			time.Sleep(7 * time.Second)
			_ = s.Stop(context.Background())
			for _, j := range jobs {
				r := rl.runs(j.Name)
				if len(r) != 1 {
					t.Fatalf("round %d: %s ran %d times in one interval", round, j.Name, len(r))
				}
				if round == 0 {
					first[j.Name] = r[0]
				} else if d := r[0].Sub(first[j.Name]); d%(7*time.Second) != 0 {
					t.Fatalf("%s moved by %s after a restart", j.Name, d)
				}
			}
			time.Sleep(12345 * time.Millisecond) // down for a while
		}
	})
}

// A reload keeps every unchanged flow's next run: no extra run, none lost,
// even for a cron flow whose spread offset the number of flows changes; a
// flow the reload adds first runs at its phase.
func TestReloadAddsNoRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rl := newRunLog()
		cronSpec := config.Schedule{Cron: "* * * * *"}
		// With 2000 flows the cron spread is 10s; this flow's offset in it
		// must be past the instant of the reload for the test to mean
		// anything.
		if d := offset("c", spreadWindow(2000)); d < 2*time.Second {
			t.Fatalf("offset of c in 10s is %s: pick another name", d)
		}
		time.Sleep(30 * time.Second) // start in the middle of a minute
		s := New(Options{})
		defer s.Stop(context.Background())
		jobs := []Job{rl.job("a", config.Schedule{Every: 10 * time.Second}, false), rl.job("c", cronSpec, false)}
		if err := s.Set(jobs); err != nil {
			t.Fatal(err)
		}
		// Just after c's run at the next minute (its offset among 2 flows
		// is under 10ms), reload with many more flows.
		time.Sleep(31 * time.Second)
		synctest.Wait()
		if n := len(rl.runs("c")); n != 1 {
			t.Fatalf("c ran %d times in its first minute", n)
		}
		reload := time.Now()
		more := []Job{rl.job("a", config.Schedule{Every: 10 * time.Second}, false), rl.job("c", cronSpec, false),
			rl.job("new", config.Schedule{Every: 10 * time.Second}, false)}
		for i := range 1997 {
			more = append(more, rl.job(fmt.Sprintf("yearly-%d", i), config.Schedule{Cron: "0 0 1 1 *"}, false))
		}
		if err := s.Set(more); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2*time.Minute + 15*time.Second)
		synctest.Wait()
		if n := len(rl.runs("c")); n != 3 {
			t.Fatalf("c ran %d times over 3 minute marks, reloaded once: %v", n, rl.runs("c"))
		}
		a := rl.runs("a")
		for i := 1; i < len(a); i++ {
			if d := a[i].Sub(a[i-1]); d != 10*time.Second {
				t.Fatalf("a's runs %s apart across the reload", d)
			}
		}
		n := rl.runs("new")
		if want := (phased{interval: 10 * time.Second, phase: offset("new", 10*time.Second)}).Next(reload); len(n) == 0 || !n[0].Equal(want) {
			t.Fatalf("the added flow first ran at %v, want its phase %s", n, want)
		}
	})
}

// run_on_start runs the flow at once (spread over a short window), then at
// its phase; a reload does not run it again, but runs a flow it adds.
func TestRunOnStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rl := newRunLog()
		var jobs []Job
		for i := range 100 {
			jobs = append(jobs, rl.job(fmt.Sprintf("hourly-%d", i), config.Schedule{Every: time.Hour}, true))
		}
		jobs = append(jobs, rl.job("daily-cron", config.Schedule{Cron: "0 3 * * *"}, true), rl.job("quiet", config.Schedule{Every: time.Hour}, false))
		s := New(Options{})
		defer s.Stop(context.Background())
		start := time.Now()
		if err := s.Set(jobs); err != nil {
			t.Fatal(err)
		}
		time.Sleep(spreadWindow(101))
		synctest.Wait()
		for _, j := range jobs[:101] {
			if n := len(rl.runs(j.Name)); n != 1 {
				t.Fatalf("%s (run_on_start) ran %d times in the start-up window", j.Name, n)
			}
		}
		if n := len(rl.runs("quiet")); n != 0 {
			t.Fatalf("quiet (no run_on_start) ran %d times at once", n)
		}
		time.Sleep(10 * time.Minute)
		if err := s.Set(append(jobs, rl.job("added", config.Schedule{Every: time.Hour}, true))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(rl.runs("added")); n != 1 {
			t.Fatalf("a run_on_start flow added by a reload ran %d times", n)
		}
		for _, j := range jobs[:101] {
			r := rl.runs(j.Name)
			next := phased{interval: time.Hour, phase: offset(j.Name, time.Hour)}.Next(start)
			if len(r) != 1 && !(len(r) == 2 && r[1].Equal(next)) {
				t.Fatalf("%s ran %v: the reload ran it again", j.Name, r)
			}
		}
	})
}

// A flow added by a reload is not overdue before its first phase.
func TestOverdueCountsFromWhenAdded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{})
		defer s.Stop(context.Background())
		noop := func(context.Context, time.Time) {}
		_ = s.Set([]Job{{Name: "a", Schedule: config.Schedule{Every: time.Minute}, Run: noop}})
		time.Sleep(2 * time.Hour)
		_ = s.Set([]Job{{Name: "a", Schedule: config.Schedule{Every: time.Minute}, Run: noop},
			{Name: "b", Schedule: config.Schedule{Every: time.Hour}, Run: noop}})
		for range 6 {
			if late := s.Overdue(time.Now(), 30*time.Second); len(late) > 0 {
				t.Fatalf("overdue: %v", late)
			}
			time.Sleep(10 * time.Minute)
		}
	})
}

// Item 3 of issue 20: runs that take longer than their interval wrote a
// run_skipped warning per skip (208,757 lines in 25s under overload). Now
// the skips are summarised: one line at the first, then at most one a
// minute, and the scheduler says it is behind while it skips.
func TestSkipsSummarisedOncePerMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		var bufMu sync.Mutex
		log := slog.New(slog.NewJSONHandler(lockedWriter{&bufMu, &buf}, nil))
		h := newHooks()
		s := New(Options{Logger: log, Hooks: h})
		var slow atomic.Bool
		slow.Store(true)
		var jobs []Job
		for _, n := range []string{"a", "b", "c"} {
			jobs = append(jobs, Job{Name: n, Schedule: config.Schedule{Every: time.Second}, Run: func(ctx context.Context, _ time.Time) {
				if slow.Load() {
					time.Sleep(5 * time.Second)
				}
			}})
		}
		if err := s.Set(jobs); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		if b, behind := s.Behind(time.Now()); !behind || b.Skipped == 0 {
			t.Fatalf("not behind while skipping: %+v", b)
		}
		time.Sleep(3*time.Minute + 27*time.Second)
		slow.Store(false)
		time.Sleep(10 * time.Second)
		if b, behind := s.Behind(time.Now()); !behind || b.Flows != 3 || b.Top[0].Skipped == 0 {
			t.Fatalf("not behind just after skipping: %+v", b)
		} else if got := b.String(); !bytes.Contains([]byte(got), []byte("runs skipped since")) {
			t.Fatalf("backlog %q", got)
		}
		time.Sleep(summaryEvery)
		if b, behind := s.Behind(time.Now()); behind {
			t.Fatalf("still behind a minute after the last skip: %+v", b)
		}
		running := time.Now()
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}

		bufMu.Lock()
		defer bufMu.Unlock()
		var lines []map[string]any
		dec := json.NewDecoder(&buf)
		for dec.More() {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, m)
		}
		skipped := 0
		for _, n := range []string{"a", "b", "c"} {
			skipped += h.get(h.skipped, n)
		}
		if skipped < 3*150 {
			t.Fatalf("only %d skips counted", skipped)
		}
		var prev time.Time
		logged := 0
		for i, m := range lines {
			if m["msg"] != "runs_skipped" || m["level"] != "WARN" {
				t.Fatalf("line %d: %v (want only runs_skipped summaries)", i, m)
			}
			at, _ := time.Parse(time.RFC3339Nano, m["time"].(string))
			if i > 0 && at.Sub(prev) < summaryEvery && at.Before(running) {
				t.Fatalf("summaries %s apart: %v", at.Sub(prev), lines)
			}
			prev = at
			logged += int(m["skipped"].(float64))
			if top, ok := m["top"].(map[string]any); !ok || len(top) == 0 {
				t.Fatalf("line %d names no flows: %v", i, m)
			}
		}
		// About 3.5 minutes of skipping: the first skip, then a line a minute.
		if len(lines) < 4 || len(lines) > 5 {
			t.Fatalf("%d summary lines for %d skips in 3.5 minutes, want 4 or 5", len(lines), skipped)
		}
		if logged != skipped {
			t.Fatalf("the summaries count %d skips, the metric %d", logged, skipped)
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
