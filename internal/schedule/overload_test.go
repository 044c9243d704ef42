package schedule

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prober-dev/prober/internal/config"
)

// Items 1 and 2 of issue 20's overload work: asked for 25 times what it can
// run, the scheduler holds no goroutine per waiting flow (it held one each,
// with its stack: 466 MB of RSS at 12,000 flows a second), every flow
// still runs in turn, and what runs is fresh: a flow that waited through a
// tick runs for the newer one, so no run starts more than an interval after
// its planned time (before, the waiting runs' lateness grew without bound).
func TestOverloadBoundedAndFresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			flows       = 500
			concurrency = 2
			took        = 100 * time.Millisecond // 20 runs a second against 500 asked
			horizon     = 60 * time.Second
		)
		h := newHooks()
		s := New(Options{Concurrency: concurrency, Hooks: h})
		base := runtime.NumGoroutine()
		var (
			mu       sync.Mutex
			ran      = map[string]int{}
			late     time.Duration
			inFlight atomic.Int32
			most     atomic.Int32
		)
		jobs := make([]Job, flows)
		for i := range jobs {
			name := fmt.Sprintf("flow-%03d", i)
			jobs[i] = Job{Name: name, Schedule: config.Schedule{Every: time.Second}, Run: func(ctx context.Context, planned time.Time) {
				n := inFlight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				mu.Lock()
				ran[name]++
				late = max(late, time.Since(planned))
				mu.Unlock()
				time.Sleep(took)
				inFlight.Add(-1)
			}}
		}
		if err := s.Set(jobs); err != nil {
			t.Fatal(err)
		}
		extra := 0
		for at := time.Duration(0); at < horizon; at += 250 * time.Millisecond {
			time.Sleep(250 * time.Millisecond)
			extra = max(extra, runtime.NumGoroutine()-base)
		}
		synctest.Wait()
		if extra > concurrency+2 { // the runs' goroutines and the summary's timer
			t.Errorf("%d goroutines beyond the scheduler's own while %d flows wait for %d slots", extra, flows, concurrency)
		}
		if m := most.Load(); m != concurrency {
			t.Errorf("at most %d runs in flight, want %d", m, concurrency)
		}
		mu.Lock()
		total, never := 0, 0
		for i := range flows {
			n := ran[fmt.Sprintf("flow-%03d", i)]
			total += n
			if n == 0 {
				never++
			}
		}
		worst := late
		mu.Unlock()
		if want := int(horizon / took * concurrency); total < want*9/10 {
			t.Errorf("%d runs in %s, want about %d (the limit's maximum)", total, horizon, want)
		}
		if never > 0 {
			t.Errorf("%d of %d flows never ran in %s: waiting flows must take turns", never, flows, horizon)
		}
		if worst > time.Second+took {
			t.Errorf("a run started %s after its planned time: a waiting run must take its flow's newest tick", worst)
		}
		skipped := 0
		for i := range flows {
			skipped += h.get(h.skipped, fmt.Sprintf("flow-%03d", i))
		}
		// Every tick is either run or skipped (the last ticks may still wait).
		if asked := flows * int(horizon/time.Second); skipped+total < asked-flows || skipped+total > asked+flows {
			t.Errorf("%d runs and %d skips for %d ticks", total, skipped, asked)
		}
		if b, behind := s.Behind(time.Now()); !behind || int(b.Total) != skipped {
			t.Errorf("behind %v, %+v; the hooks counted %d skips", behind, b, skipped)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// A flow a reload removes while it waits for a slot does not run: it is no
// longer configured (before, its goroutine waited and ran it anyway).
func TestRemovedWhileWaitingDoesNotRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{Concurrency: 1})
		defer s.Stop(context.Background())
		var mu sync.Mutex
		var ran []string
		jobs := map[string]Job{}
		for _, name := range []string{"a", "b"} {
			jobs[name] = Job{Name: name, RunOnStart: true, Schedule: config.Schedule{Every: time.Hour}, Run: func(context.Context, time.Time) {
				mu.Lock()
				ran = append(ran, name)
				mu.Unlock()
				time.Sleep(time.Minute)
			}}
		}
		if err := s.Set([]Job{jobs["a"], jobs["b"]}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(spreadWindow(2))
		synctest.Wait()
		mu.Lock()
		first := slices.Clone(ran)
		mu.Unlock()
		if len(first) != 1 {
			t.Fatalf("ran %v with a limit of 1", first)
		}
		// The one running stays; the one waiting goes.
		if err := s.Set([]Job{jobs[first[0]]}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(ran) != 1 {
			t.Fatalf("ran %v: the second was removed while it waited", ran)
		}
	})
}

// Item 2: a skipped run costs next to nothing: no goroutine, no
// allocation (it was a goroutine each, parked and woken, and its closure).
// One flow holds the only slot; 2,000 others are due every second and wait
// or skip.
func TestSkipAllocatesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{Concurrency: 1})
		block := make(chan struct{})
		jobs := []Job{{Name: "busy", RunOnStart: true, Schedule: config.Schedule{Every: time.Hour}, Run: func(ctx context.Context, _ time.Time) {
			select {
			case <-block:
			case <-ctx.Done():
			}
		}}}
		for i := range 2000 {
			jobs = append(jobs, Job{Name: fmt.Sprintf("flow-%04d", i), Schedule: config.Schedule{Every: time.Second}, Run: func(context.Context, time.Time) {}})
		}
		if err := s.Set(jobs); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // every flow waiting; the summary's first line and timer made
		synctest.Wait()
		before, _ := s.Behind(time.Now())
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		runtime.ReadMemStats(&m1)
		after, _ := s.Behind(time.Now())
		skips := after.Total - before.Total
		if skips < 19000 {
			t.Fatalf("%d skips in 10s of 2,000 flows a second", skips)
		}
		per := float64(m1.Mallocs-m0.Mallocs) / float64(skips)
		t.Logf("%.4f allocations a skipped run (%d for %d)", per, m1.Mallocs-m0.Mallocs, skips)
		if per > 0.05 {
			t.Errorf("%.2f allocations a skipped run (%d for %d)", per, m1.Mallocs-m0.Mallocs, skips)
		}
		close(block)
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
