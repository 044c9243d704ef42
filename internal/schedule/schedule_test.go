package schedule

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
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
}

func newHooks() *hooks {
	return &hooks{skipped: map[string]int{}, started: map[string]int{}, finish: map[string]int{}}
}
func (h *hooks) Skipped(f string) { h.mu.Lock(); h.skipped[f]++; h.mu.Unlock() }
func (h *hooks) Started(f string, late time.Duration) {
	h.mu.Lock()
	h.started[f]++
	h.mu.Unlock()
}
func (h *hooks) Finished(f string) { h.mu.Lock(); h.finish[f]++; h.mu.Unlock() }
func (h *hooks) get(m map[string]int, f string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return m[f]
}

func TestRunsAtStartThenOnSchedule(t *testing.T) {
	h := newHooks()
	s := New(Options{Hooks: h})
	var runs atomic.Int32
	var plannedOK atomic.Bool
	plannedOK.Store(true)
	err := s.Set([]Job{{Name: "a", RunOnStart: true, Schedule: config.Schedule{Every: time.Second}, Run: func(ctx context.Context, planned time.Time) {
		if d := time.Since(planned); d < 0 || d > 600*time.Millisecond { // loose: shared, loaded machines
			plannedOK.Store(false)
		}
		runs.Add(1)
	}}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if runs.Load() != 1 {
		t.Fatalf("%d runs right after start, want 1", runs.Load())
	}
	// The first tick after the start-up run comes 0.5s to 1.5s later (a
	// tick closer than half a period is skipped), the next 1s after that.
	time.Sleep(2100 * time.Millisecond)
	if n := runs.Load(); n < 2 || n > 3 {
		t.Fatalf("%d runs after 2.2s of every 1s, want 2 or 3", n)
	}
	if !plannedOK.Load() {
		t.Error("planned time far from the actual start")
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := runs.Load()
	time.Sleep(1100 * time.Millisecond)
	if runs.Load() != n {
		t.Fatal("ran after Stop")
	}
	if h.get(h.started, "a") != int(n) || h.get(h.finish, "a") != int(n) {
		t.Fatalf("hooks %v %v, runs %d", h.started, h.finish, n)
	}
}

func TestNoOverlapAndSkipsCounted(t *testing.T) {
	h := newHooks()
	s := New(Options{Hooks: h})
	var inFlight, maxInFlight, runs atomic.Int32
	err := s.Set([]Job{{Name: "slow", RunOnStart: true, Schedule: config.Schedule{Every: time.Second}, Run: func(ctx context.Context, _ time.Time) {
		n := inFlight.Add(1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		runs.Add(1)
		select {
		case <-time.After(2500 * time.Millisecond):
		case <-ctx.Done():
		}
		inFlight.Add(-1)
	}}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3200 * time.Millisecond)
	if maxInFlight.Load() != 1 {
		t.Fatalf("flow overlapped itself: %d in flight", maxInFlight.Load())
	}
	if h.get(h.skipped, "slow") < 2 {
		t.Fatalf("skips %d, want >= 2", h.get(h.skipped, "slow"))
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if inFlight.Load() != 0 {
		t.Fatal("Stop returned with a run in flight")
	}
}

func TestConcurrencyLimit(t *testing.T) {
	s := New(Options{Concurrency: 2})
	var inFlight, maxInFlight, runs atomic.Int32
	var jobs []Job
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		jobs = append(jobs, Job{Name: name, RunOnStart: true, Schedule: config.Schedule{Every: time.Hour}, Run: func(context.Context, time.Time) {
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
		}})
	}
	if err := s.Set(jobs); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for runs.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if runs.Load() != 5 || maxInFlight.Load() != 2 {
		t.Fatalf("runs %d, max in flight %d (limit 2)", runs.Load(), maxInFlight.Load())
	}
	_ = s.Stop(context.Background())
}

func TestStopCancelsAfterGrace(t *testing.T) {
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
	if err := s.Stop(ctx); err == nil {
		t.Fatal("Stop reported no cancellation")
	}
	if !cancelled.Load() {
		t.Fatal("run not cancelled")
	}
}

func TestSetReplacesWithoutRerunningOrOverlapping(t *testing.T) {
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
	if a1.Load() != 1 || a2.Load() != 0 || b.Load() != 1 {
		t.Fatalf("a old %d, a new %d, b %d", a1.Load(), a2.Load(), b.Load())
	}
	_ = s.Set(nil)
	if got := s.Overdue(time.Now().Add(48*time.Hour), time.Minute); len(got) != 0 {
		t.Fatalf("removed flows still tracked: %v", got)
	}
}

func TestPanicDoesNotKill(t *testing.T) {
	s := New(Options{})
	var after atomic.Int32
	_ = s.Set([]Job{
		{Name: "boom", RunOnStart: true, Schedule: config.Schedule{Every: time.Hour}, Run: func(context.Context, time.Time) { panic("bug") }},
		{Name: "fine", RunOnStart: true, Schedule: config.Schedule{Every: time.Hour}, Run: func(context.Context, time.Time) { after.Add(1) }},
	})
	time.Sleep(200 * time.Millisecond)
	if after.Load() != 1 {
		t.Fatal("other flow did not run")
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestOverdue(t *testing.T) {
	s := New(Options{})
	defer s.Stop(context.Background())
	_ = s.Set([]Job{{Name: "a", RunOnStart: true, Schedule: config.Schedule{Every: time.Minute}, Run: func(context.Context, time.Time) {}}})
	time.Sleep(50 * time.Millisecond)
	if got := s.Overdue(time.Now(), 30*time.Second); len(got) != 0 {
		t.Fatalf("overdue right after a run: %v", got)
	}
	if got := s.Overdue(time.Now().Add(3*time.Minute), 30*time.Second); len(got) != 1 || got[0] != "a" {
		t.Fatalf("not overdue three minutes later: %v", got)
	}
}

// A run started by cron (not the start-up run) that is stuck must not hold
// Stop past its grace.
func TestStopGraceForCronStartedRun(t *testing.T) {
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
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Stop took %s with a 200ms grace", took)
	}
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
