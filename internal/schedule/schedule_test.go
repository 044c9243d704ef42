package schedule

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

func TestPhasedNext(t *testing.T) {
	tests := []struct {
		interval, phase time.Duration
	}{
		{time.Second, 0},
		{time.Minute, 17*time.Second + 250*time.Millisecond},
		{90 * time.Second, 89 * time.Second},
		{time.Hour, 0},
	}
	base := time.Date(2026, 11, 23, 2, 14, 0, 0, time.UTC)
	for _, tt := range tests {
		p := phased{tt.interval, tt.phase}
		for _, off := range []time.Duration{0, time.Nanosecond, tt.phase, tt.phase + time.Nanosecond, tt.interval - 1} {
			at := base.Add(off)
			n := p.Next(at)
			if !n.After(at) || n.Sub(at) > tt.interval {
				t.Fatalf("%+v: Next(%s) = %s", tt, at, n)
			}
			if (n.UnixNano()-int64(tt.phase))%int64(tt.interval) != 0 {
				t.Fatalf("%+v: %s not on phase", tt, n)
			}
			if n2 := p.Next(n); n2.Sub(n) != tt.interval {
				t.Fatalf("%+v: consecutive %s -> %s", tt, n, n2)
			}
		}
	}
}

func TestCompile(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	at := time.Date(2026, 11, 23, 10, 0, 30, 0, time.UTC)
	tests := []struct {
		name    string
		sched   config.Schedule
		nflows  int
		wantErr bool
		check   func(time.Time) bool
	}{
		{name: "every", sched: config.Schedule{Every: time.Minute}, check: func(n time.Time) bool {
			return n.After(at) && n.Sub(at) <= time.Minute
		}},
		{name: "too fast", sched: config.Schedule{Every: 500 * time.Millisecond}, wantErr: true},
		{name: "none", sched: config.Schedule{}, wantErr: true},
		{name: "bad cron", sched: config.Schedule{Cron: "61 * * * *"}, wantErr: true},
		{name: "cron utc, one flow", sched: config.Schedule{Cron: "0 12 * * *"}, nflows: 1, check: func(n time.Time) bool {
			d := n.Sub(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
			return d >= 0 && d < 5*time.Millisecond
		}},
		{name: "cron berlin", sched: config.Schedule{Cron: "0 12 * * *", Location: berlin}, nflows: 1, check: func(n time.Time) bool {
			d := n.Sub(time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)) // 12:00 CET
			return d >= 0 && d < 5*time.Millisecond
		}},
		{name: "cron spread", sched: config.Schedule{Cron: "@hourly"}, nflows: 100000, check: func(n time.Time) bool {
			d := n.Sub(time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC))
			return d >= 0 && d < 10*time.Second
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile("checkout", tt.sched, tt.nflows)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := s.Next(at); !tt.check(n) {
				t.Fatalf("Next = %s", n)
			}
		})
	}
}

func TestSpreadIsDeterministicAndSpread(t *testing.T) {
	if a, b := offset("checkout", time.Minute), offset("checkout", time.Minute); a != b {
		t.Fatalf("not deterministic: %s then %s", a, b)
	}
	seconds := map[int64]int{}
	for i := 0; i < 600; i++ {
		seconds[int64(offset(string(rune('a'+i%26))+string(rune('A'+i/26)), time.Minute)/time.Second)]++
	}
	if len(seconds) < 40 { // 600 flows over 60 seconds: most seconds get some
		t.Fatalf("600 flows land in only %d distinct seconds", len(seconds))
	}
	if spreadWindow(1) != 5*time.Millisecond || spreadWindow(1e6) != 10*time.Second {
		t.Fatal("spread window")
	}
}

type hooks struct {
	mu                       sync.Mutex
	skipped, started, finish map[string]int
	skippedAt                map[string][]time.Time
	late                     []time.Duration
}

func newHooks() *hooks {
	return &hooks{skipped: map[string]int{}, started: map[string]int{}, finish: map[string]int{}, skippedAt: map[string][]time.Time{}}
}
func (h *hooks) Skipped(f string) {
	h.mu.Lock()
	h.skipped[f]++
	h.skippedAt[f] = append(h.skippedAt[f], time.Now())
	h.mu.Unlock()
}
func (h *hooks) Started(f string, late time.Duration) {
	h.mu.Lock()
	h.started[f]++
	h.late = append(h.late, late)
	h.mu.Unlock()
}
func (h *hooks) Finished(f string) { h.mu.Lock(); h.finish[f]++; h.mu.Unlock() }
func (h *hooks) get(m map[string]int, f string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return m[f]
}

// times records instants, safe for concurrent use.
type times struct {
	mu sync.Mutex
	ts []time.Time
}

func (r *times) add(t time.Time) { r.mu.Lock(); r.ts = append(r.ts, t); r.mu.Unlock() }
func (r *times) get() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ts)
}

func equalTimes(a, b []time.Time) bool {
	return slices.EqualFunc(a, b, time.Time.Equal)
}

// In virtual time every instant is exact: the start-up run comes at the
// flow's offset in the start-up window, the first tick after it is the
// first at least half a period later, the next a period after that, each
// run starting at its planned instant; nothing runs after Stop.
func TestRunsAtStartThenOnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHooks()
		s := New(Options{Hooks: h})
		var planned, actual times
		start := time.Now()
		err := s.Set([]Job{{Name: "a", RunOnStart: true, Schedule: config.Schedule{Every: time.Second}, Run: func(ctx context.Context, p time.Time) {
			planned.add(p)
			actual.add(time.Now())
		}}})
		if err != nil {
			t.Fatal(err)
		}
		s0 := start.Add(offset("a", spreadWindow(1)))
		t1 := firstAfterStart(phased{interval: time.Second, phase: offset("a", time.Second)}, s0)
		want := []time.Time{s0, t1, t1.Add(time.Second)}
		time.Sleep(want[2].Sub(start) + 500*time.Millisecond) // half-way to the next tick
		synctest.Wait()
		if got := actual.get(); !equalTimes(got, want) {
			t.Fatalf("runs at %v after start, want %v", since(start, got), since(start, want))
		}
		if got := planned.get(); !equalTimes(got, want) {
			t.Fatalf("planned %v after start, want %v", since(start, got), since(start, want))
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		if n := len(actual.get()); n != len(want) {
			t.Fatalf("%d runs, %d after Stop", n, n-len(want))
		}
		if h.get(h.started, "a") != len(want) || h.get(h.finish, "a") != len(want) {
			t.Fatalf("hooks %v %v, runs %d", h.started, h.finish, len(want))
		}
		for _, l := range h.late {
			if l != 0 {
				t.Fatalf("lateness %s, want 0 (virtual time)", l)
			}
		}
	})
}

func since(t0 time.Time, ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t.Sub(t0)
	}
	return out
}

// A run slower than the interval is never overlapped: every tick while it
// goes is skipped (and counted), the first tick after it ends runs.
func TestNoOverlapAndSkipsCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const took, horizon = 2500 * time.Millisecond, 6200 * time.Millisecond
		h := newHooks()
		s := New(Options{Hooks: h})
		var inFlight, maxInFlight atomic.Int32
		var runs times
		start := time.Now()
		err := s.Set([]Job{{Name: "slow", RunOnStart: true, Schedule: config.Schedule{Every: time.Second}, Run: func(ctx context.Context, _ time.Time) {
			n := inFlight.Add(1)
			for {
				m := maxInFlight.Load()
				if n <= m || maxInFlight.CompareAndSwap(m, n) {
					break
				}
			}
			runs.add(time.Now())
			select {
			case <-time.After(took):
			case <-ctx.Done():
			}
			inFlight.Add(-1)
		}}})
		if err != nil {
			t.Fatal(err)
		}
		// What should happen: the start-up run, then the ticks; a tick
		// within a run is skipped. (No tick falls on a run's end: runs
		// take 2.5s, the ticks are 1s apart and the start-up run is not
		// on their phase for this name.)
		s0 := start.Add(offset("slow", spreadWindow(1)))
		every := phased{interval: time.Second, phase: offset("slow", time.Second)}
		wantRuns, wantSkips := []time.Time{s0}, []time.Time{}
		busy := s0.Add(took)
		for tick := firstAfterStart(every, s0); tick.Before(start.Add(horizon)); tick = every.Next(tick) {
			if tick.Equal(busy) {
				t.Fatal("a tick falls on a run's end: pick another name")
			}
			if tick.Before(busy) {
				wantSkips = append(wantSkips, tick)
				continue
			}
			wantRuns = append(wantRuns, tick)
			busy = tick.Add(took)
		}
		if len(wantRuns) < 3 || len(wantSkips) < 3 {
			t.Fatalf("the horizon is too short to mean anything: runs %v, skips %v", wantRuns, wantSkips)
		}
		time.Sleep(horizon)
		synctest.Wait()
		if maxInFlight.Load() != 1 {
			t.Fatalf("flow overlapped itself: %d in flight", maxInFlight.Load())
		}
		if got := runs.get(); !equalTimes(got, wantRuns) {
			t.Fatalf("runs at %v, want %v", since(start, got), since(start, wantRuns))
		}
		h.mu.Lock()
		skips := slices.Clone(h.skippedAt["slow"])
		h.mu.Unlock()
		if !equalTimes(skips, wantSkips) || h.get(h.skipped, "slow") != len(wantSkips) {
			t.Fatalf("skips at %v, want %v", since(start, skips), since(start, wantSkips))
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if inFlight.Load() != 0 {
			t.Fatal("Stop returned with a run in flight")
		}
		if last := wantRuns[len(wantRuns)-1]; time.Now().Before(last.Add(took)) {
			t.Fatalf("Stop returned %s after start, before the run started at %s ended", time.Since(start), last.Sub(start))
		}
	})
}

// With a limit of 2, five 100ms start-up runs run two at a time: the last
// ends no sooner than 300ms after the first starts.
func TestConcurrencyLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{Concurrency: 2})
		var inFlight, maxInFlight, runs atomic.Int32
		var starts, ends times
		var jobs []Job
		for _, name := range []string{"a", "b", "c", "d", "e"} {
			jobs = append(jobs, Job{Name: name, RunOnStart: true, Schedule: config.Schedule{Every: time.Hour}, Run: func(context.Context, time.Time) {
				starts.add(time.Now())
				n := inFlight.Add(1)
				for {
					m := maxInFlight.Load()
					if n <= m || maxInFlight.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(100 * time.Millisecond)
				inFlight.Add(-1)
				runs.Add(1)
				ends.add(time.Now())
			}})
		}
		if err := s.Set(jobs); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if runs.Load() != 5 || maxInFlight.Load() != 2 {
			t.Fatalf("runs %d, max in flight %d (limit 2)", runs.Load(), maxInFlight.Load())
		}
		if span := slices.MaxFunc(ends.get(), time.Time.Compare).Sub(slices.MinFunc(starts.get(), time.Time.Compare)); span < 300*time.Millisecond {
			t.Fatalf("five 100ms runs two at a time took %s", span)
		}
		_ = s.Stop(context.Background())
	})
}

// A run that ignores the end of Stop's grace is cancelled exactly when the
// grace ends.
func TestStopCancelsAfterGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{})
		started := make(chan struct{})
		var cancelled atomic.Bool
		_ = s.Set([]Job{{Name: "stuck", RunOnStart: true, Schedule: config.Schedule{Every: time.Hour}, Run: func(ctx context.Context, _ time.Time) {
			close(started)
			<-ctx.Done()
			cancelled.Store(true)
		}}})
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		begin := time.Now()
		if err := s.Stop(ctx); err == nil {
			t.Fatal("Stop reported no cancellation")
		}
		if took := time.Since(begin); took != 100*time.Millisecond {
			t.Fatalf("Stop took %s with a 100ms grace", took)
		}
		if !cancelled.Load() {
			t.Fatal("run not cancelled")
		}
	})
}

func TestSetReplacesWithoutRerunningOrOverlapping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{})
		defer s.Stop(context.Background())
		var a1, a2, b atomic.Int32
		release := make(chan struct{})
		_ = s.Set([]Job{{Name: "a", RunOnStart: true, Schedule: config.Schedule{Every: time.Hour}, Run: func(context.Context, time.Time) {
			a1.Add(1)
			<-release
		}}})
		time.Sleep(100 * time.Millisecond)
		// Reload while a's first run is in flight: a is not run again at once,
		// the new flow b is.
		_ = s.Set([]Job{
			{Name: "a", RunOnStart: true, Schedule: config.Schedule{Every: time.Hour}, Run: func(context.Context, time.Time) { a2.Add(1) }},
			{Name: "b", RunOnStart: true, Schedule: config.Schedule{Every: time.Hour}, Run: func(context.Context, time.Time) { b.Add(1) }},
		})
		time.Sleep(100 * time.Millisecond)
		close(release)
		synctest.Wait()
		if a1.Load() != 1 || a2.Load() != 0 || b.Load() != 1 {
			t.Fatalf("a old %d, a new %d, b %d", a1.Load(), a2.Load(), b.Load())
		}
		_ = s.Set(nil)
		if got := s.Overdue(time.Now().Add(48*time.Hour), time.Minute); len(got) != 0 {
			t.Fatalf("removed flows still tracked: %v", got)
		}
	})
}

func TestPanicDoesNotKill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{})
		var after atomic.Int32
		_ = s.Set([]Job{
			{Name: "boom", RunOnStart: true, Schedule: config.Schedule{Every: time.Hour}, Run: func(context.Context, time.Time) { panic("bug") }},
			{Name: "fine", RunOnStart: true, Schedule: config.Schedule{Every: time.Hour}, Run: func(context.Context, time.Time) { after.Add(1) }},
		})
		time.Sleep(spreadWindow(2))
		synctest.Wait()
		if after.Load() != 1 {
			t.Fatal("other flow did not run")
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// A flow is overdue once its next planned run after its last run is more
// than the grace in the past: not a nanosecond sooner.
func TestOverdue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{})
		defer s.Stop(context.Background())
		var ran times
		_ = s.Set([]Job{{Name: "a", RunOnStart: true, Schedule: config.Schedule{Every: time.Minute}, Run: func(context.Context, time.Time) { ran.add(time.Now()) }}})
		time.Sleep(spreadWindow(1))
		synctest.Wait()
		r := ran.get()
		if len(r) != 1 {
			t.Fatalf("%d start-up runs", len(r))
		}
		const grace = 30 * time.Second
		if got := s.Overdue(time.Now(), grace); len(got) != 0 {
			t.Fatalf("overdue right after a run: %v", got)
		}
		next := phased{interval: time.Minute, phase: offset("a", time.Minute)}.Next(r[0])
		if got := s.Overdue(next.Add(grace), grace); len(got) != 0 {
			t.Fatalf("overdue at exactly the grace: %v", got)
		}
		if got := s.Overdue(next.Add(grace+time.Nanosecond), grace); len(got) != 1 || got[0] != "a" {
			t.Fatalf("not overdue just past the grace: %v", got)
		}
	})
}

// A run started by cron (not the start-up run) that is stuck must not hold
// Stop past its grace.
func TestStopGraceForCronStartedRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{})
		var n atomic.Int32
		stuck := make(chan struct{})
		_ = s.Set([]Job{{Name: "j", RunOnStart: true, Schedule: config.Schedule{Every: time.Second}, Run: func(ctx context.Context, _ time.Time) {
			if n.Add(1) == 2 { // the first cron-started run
				close(stuck)
				<-ctx.Done()
			}
		}}})
		select {
		case <-stuck:
		case <-time.After(5 * time.Second):
			t.Fatal("no cron-started run")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := s.Stop(ctx); err == nil {
			t.Error("Stop reported no cancellation")
		}
		if took := time.Since(start); took != 200*time.Millisecond {
			t.Fatalf("Stop took %s with a 200ms grace", took)
		}
	})
}

func TestFirstAfterStart(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	every10 := phased{interval: 10 * time.Second}
	for _, tc := range []struct {
		name  string
		start time.Time
		want  time.Time
	}{
		{"tick 9s later is kept", base.Add(1 * time.Second), base.Add(10 * time.Second)},
		{"tick exactly half a period later is kept", base.Add(5 * time.Second), base.Add(10 * time.Second)},
		{"tick 1s later is skipped", base.Add(9 * time.Second), base.Add(20 * time.Second)},
		{"tick 1ms later is skipped", base.Add(9999 * time.Millisecond), base.Add(20 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstAfterStart(every10, tc.start); !got.Equal(tc.want) {
				t.Fatalf("got %s, want %s", got.Sub(base), tc.want.Sub(base))
			}
		})
	}
	if got := firstAfterStart(never{}, base); !got.IsZero() {
		t.Fatalf("a schedule that never fires: got %s", got)
	}
}

type never struct{}

func (never) Next(time.Time) time.Time { return time.Time{} }
