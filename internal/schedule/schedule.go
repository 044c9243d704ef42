// Package schedule decides when each flow runs: on its interval or cron spec
// (robfig/cron/v3's parser and schedules), from its first planned instant
// (a start or reload never bursts: the first run comes at the flow's
// phase, unless the flow asks to run on start), with no run overlapping the
// previous run of the same flow (skips are counted and summarised), and a
// global limit on runs in flight. Which flows run here is decided by Shard.
//
// The timing loop is ours rather than cron.Cron's: that one sorts every
// entry at every wake and times the next wake from the time of the previous
// one. With 10,000 flows spread over a minute it wakes about 170 times a
// second, each time sorting 10,000 entries (a quarter of the prober's CPU),
// and a reload that keeps them all re-adds and removes each (seconds, during
// which nothing runs). Here a heap orders the entries: a wake costs
// O(log n) per due flow, a reload O(n log n).
package schedule

import (
	"container/heap"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/prober-dev/prober/internal/config"
)

// Job is one flow to schedule.
type Job struct {
	Name     string
	Schedule config.Schedule
	// Run performs one run; planned is when it was meant to start. It must
	// return promptly once ctx is done.
	Run func(ctx context.Context, planned time.Time)
	// RunOnStart runs the flow once soon after it is first scheduled (start
	// or the reload that adds it), spread over a short window, besides its
	// schedule. Without it the first run is the first planned one.
	RunOnStart bool
}

// Hooks receive scheduling events (metrics implement them).
type Hooks interface {
	Skipped(flow string)
	Started(flow string, lateness time.Duration)
	Finished(flow string)
}

// Options configure a Scheduler.
type Options struct {
	Concurrency int // runs in flight at most; default 16
	Logger      *slog.Logger
	Hooks       Hooks
}

// Scheduler runs jobs. Set replaces the job list (on reload) while keeping
// each flow's running state, so a reload never makes a flow overlap itself.
type Scheduler struct {
	opts   Options
	log    *slog.Logger
	sem    chan struct{}
	runCtx context.Context
	abort  context.CancelFunc
	wake   chan struct{} // the heap changed: the loop recomputes its timer
	done   chan struct{} // the loop has returned

	mu      sync.Mutex
	entries map[string]*entry
	queue   queue // entries with a next time, soonest first
	stopped bool
	wg      sync.WaitGroup

	skips skipLog // runs skipped, summarised in the log at most once a minute
}

type entry struct {
	name    string
	run     atomic.Pointer[func(context.Context, time.Time)]
	running atomic.Bool

	// Guarded by Scheduler.mu.
	index   int             // in the queue, -1 when not in it
	next    time.Time       // the next planned run by the schedule (zero: never)
	startAt time.Time       // the start-up run, when still due (zero: none)
	spec    config.Schedule // as configured: a reload keeps next when it is unchanged
	added   time.Time       // when first scheduled: Overdue counts from it until the first run

	mu    sync.Mutex
	sched cron.Schedule
	last  time.Time // last actual start
}

// due is when e is next due: its start-up run or its next planned one.
func (e *entry) due() time.Time {
	if !e.startAt.IsZero() && (e.next.IsZero() || e.startAt.Before(e.next)) {
		return e.startAt
	}
	return e.next
}

// queue is a min-heap of entries by due time.
type queue []*entry

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].due().Before(q[j].due()) }
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *queue) Push(x any) {
	e := x.(*entry)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	e.index = -1
	return e
}

// requeue puts e where its due time says, in or out of the queue. The
// caller holds s.mu.
func (s *Scheduler) requeue(e *entry) {
	switch {
	case e.due().IsZero() && e.index >= 0:
		heap.Remove(&s.queue, e.index)
	case e.due().IsZero():
	case e.index >= 0:
		heap.Fix(&s.queue, e.index)
	default:
		heap.Push(&s.queue, e)
	}
}

// New returns a stopped scheduler; call Set to give it jobs.
func New(o Options) *Scheduler {
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Hooks == nil {
		o.Hooks = nopHooks{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Scheduler{
		opts:    o,
		log:     o.Logger,
		sem:     make(chan struct{}, o.Concurrency),
		runCtx:  ctx,
		abort:   cancel,
		entries: map[string]*entry{},
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	s.skips.log = o.Logger
	go s.loop()
	return s
}

type nopHooks struct{}

func (nopHooks) Skipped(string)                {}
func (nopHooks) Started(string, time.Duration) {}
func (nopHooks) Finished(string)               {}

// Set makes jobs the scheduled set. A new flow's first run is its first
// planned one (an interval flow's phase, a cron flow's next time), so that
// starting or reloading with many flows runs them at the steady rate, not
// all at once; a flow with RunOnStart also runs once soon (spread over a
// short window when many do). Flows already scheduled keep their next run
// (unless their schedule changed) and running state: a reload adds no run.
// Flows not in jobs stop being scheduled (a run in flight finishes).
func (s *Scheduler) Set(jobs []Job) error {
	scheds := make([]cron.Schedule, len(jobs))
	for i, j := range jobs {
		sc, err := Compile(j.Name, j.Schedule, len(jobs))
		if err != nil {
			return err
		}
		scheds[i] = sc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("scheduler stopped")
	}
	now := time.Now()
	onStart := 0
	for _, j := range jobs {
		if j.RunOnStart && s.entries[j.Name] == nil {
			onStart++
		}
	}
	window := spreadWindow(onStart)
	keep := make(map[string]bool, len(jobs))
	for i, j := range jobs {
		keep[j.Name] = true
		e := s.entries[j.Name]
		fresh := e == nil
		if fresh {
			e = &entry{name: j.Name, index: -1, added: now}
			s.entries[j.Name] = e
			if j.RunOnStart {
				e.startAt = now.Add(offset(j.Name, window))
			}
		}
		run := j.Run
		e.run.Store(&run)
		if !fresh && sameSchedule(e.spec, j.Schedule) {
			// Unchanged: keep the compiled schedule too. A cron flow's
			// spread offset depends on the number of flows; taking the new
			// one would move its next run (a second run in one period).
			s.requeue(e)
			continue
		}
		e.mu.Lock()
		e.sched = scheds[i]
		e.mu.Unlock()
		if !e.startAt.IsZero() {
			e.next = firstAfterStart(scheds[i], e.startAt)
		} else {
			e.next = scheds[i].Next(now)
		}
		e.spec = j.Schedule
		s.requeue(e)
	}
	for name, e := range s.entries {
		if !keep[name] {
			if e.index >= 0 {
				heap.Remove(&s.queue, e.index)
			}
			delete(s.entries, name)
		}
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// sameSchedule: a and b plan the same runs (a cron flow's spread offset may
// still move with the number of flows; its next run is kept regardless).
func sameSchedule(a, b config.Schedule) bool {
	return a.Every == b.Every && a.Cron == b.Cron && a.Location.String() == b.Location.String()
}

// firstAfterStart is the first planned run after a start-up run at start.
// A tick that would come less than half a period after it is skipped: the
// flow has just run, and running again (or being counted as skipped because
// the start-up run is still going) tells nobody anything.
func firstAfterStart(sched cron.Schedule, start time.Time) time.Time {
	n := sched.Next(start)
	if n.IsZero() {
		return n
	}
	if after := sched.Next(n); !after.IsZero() && n.Sub(start) < after.Sub(n)/2 {
		return after
	}
	return n
}

// loop starts the runs that are due and sleeps until the next one is, until
// Stop.
func (s *Scheduler) loop() {
	defer close(s.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		now := time.Now()
		for len(s.queue) > 0 && !s.queue[0].due().After(now) {
			e := s.queue[0]
			if !e.startAt.IsZero() && !e.startAt.After(now) {
				planned := e.startAt
				e.startAt = time.Time{}
				s.launch(e, planned)
			}
			if !e.next.IsZero() && !e.next.After(now) {
				planned := e.next
				e.mu.Lock()
				e.next = e.sched.Next(now)
				e.mu.Unlock()
				if now.Sub(planned) > time.Minute {
					planned = now // the clock jumped, or the process was stopped: don't invent lateness
				}
				s.launch(e, planned)
			}
			s.requeue(e)
		}
		var wait time.Duration = time.Hour
		if len(s.queue) > 0 {
			wait = time.Until(s.queue[0].due()) // from now, not from the wake: sorting took time
		}
		s.mu.Unlock()
		t.Reset(wait)
		select {
		case <-t.C:
		case <-s.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
	}
}

// launch starts e's run in its own goroutine (it may wait for the
// concurrency limit). The caller holds s.mu.
func (s *Scheduler) launch(e *entry, planned time.Time) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.fire(e, planned)
	}()
}

// fire runs e unless its previous run is still going.
func (s *Scheduler) fire(e *entry, planned time.Time) {
	if !e.running.CompareAndSwap(false, true) {
		// Counted per flow in the metric; in the log, summarised: under
		// overload a line per skip would be thousands a second.
		s.opts.Hooks.Skipped(e.name)
		s.skips.note(e.name, time.Now())
		return
	}
	defer e.running.Store(false)
	select {
	case s.sem <- struct{}{}:
	case <-s.runCtx.Done():
		return
	}
	defer func() { <-s.sem }()
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return
	}
	started := time.Now()
	e.mu.Lock()
	e.last = started
	e.mu.Unlock()
	s.opts.Hooks.Started(e.name, started.Sub(planned))
	defer s.opts.Hooks.Finished(e.name)
	defer func() {
		if p := recover(); p != nil { // a panicking run must not take the daemon down
			s.log.Error("run_panicked", "flow", e.name, "panic", fmt.Sprint(p))
		}
	}()
	(*e.run.Load())(s.runCtx, planned)
}

// Stop stops scheduling and waits for runs in flight. If ctx ends first, the
// runs are cancelled (they fail as cancelled) and Stop waits for them to
// return.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-s.done // no run is launched after this
	s.skips.stop()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.abort()
		return nil
	case <-ctx.Done():
		s.abort()
		<-done
		return fmt.Errorf("runs in flight cancelled: %w", ctx.Err())
	}
}

// Overdue lists flows whose next planned run is more than grace in the past
// and that are not running: the scheduler has stalled for them.
func (s *Scheduler) Overdue(now time.Time, grace time.Duration) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, e := range s.entries {
		if e.running.Load() {
			continue
		}
		e.mu.Lock()
		last, sched := e.last, e.sched
		e.mu.Unlock()
		if last.IsZero() {
			last = e.added // not the scheduler's start: a flow added by a reload runs at its phase
		}
		next := sched.Next(last)
		if !next.IsZero() && now.Sub(next) > grace {
			out = append(out, name)
		}
	}
	return out
}

// Compile turns a flow's schedule into a cron.Schedule. Intervals are aligned
// to a per-flow phase (a hash of the name) so that many flows spread across
// the interval, and the same flow fires at the same instants in every region
// and after every restart. Cron specs are delayed by a per-flow offset
// within a window that grows with the number of flows (up to 10s).
func Compile(name string, sc config.Schedule, nflows int) (cron.Schedule, error) {
	switch {
	case sc.Every > 0:
		if sc.Every < time.Second {
			return nil, fmt.Errorf("flow %s: every %s is below the 1s minimum", name, sc.Every)
		}
		return phased{interval: sc.Every, phase: offset(name, sc.Every)}, nil
	case sc.Cron != "":
		spec, err := parseCron(sc.Cron)
		if err != nil {
			return nil, fmt.Errorf("flow %s: cron %q: %w", name, sc.Cron, err)
		}
		loc := sc.Location
		if loc == nil {
			loc = time.UTC
		}
		if ss, ok := spec.(*cron.SpecSchedule); ok {
			ss.Location = loc
		}
		return delayed{inner: spec, delay: offset(name, spreadWindow(nflows))}, nil
	}
	return nil, fmt.Errorf("flow %s: no schedule", name)
}

func parseCron(spec string) (s cron.Schedule, err error) {
	defer func() {
		if p := recover(); p != nil { // the parser panics on some inputs
			err = fmt.Errorf("invalid spec: %v", p)
		}
	}()
	return cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor).Parse(spec)
}

// spreadWindow is how widely start-up runs and cron runs are spread: enough
// that many flows don't fire in the same instant, short for a few flows.
func spreadWindow(nflows int) time.Duration {
	return min(time.Duration(nflows)*5*time.Millisecond, 10*time.Second)
}

// offset is a deterministic point in [0, window) for a flow.
func offset(name string, window time.Duration) time.Duration {
	if window <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(window))
}

// phased fires at every instant t with (t - epoch - phase) a multiple of interval.
type phased struct {
	interval, phase time.Duration
}

func (p phased) Next(t time.Time) time.Time {
	n := t.UnixNano() - int64(p.phase)
	k := n/int64(p.interval) + 1
	if n < 0 && n%int64(p.interval) != 0 {
		k--
	}
	return time.Unix(0, k*int64(p.interval)+int64(p.phase)).In(t.Location())
}

// delayed shifts another schedule by a fixed delay.
type delayed struct {
	inner cron.Schedule
	delay time.Duration
}

func (d delayed) Next(t time.Time) time.Time {
	n := d.inner.Next(t.Add(-d.delay))
	if n.IsZero() {
		return n
	}
	return n.Add(d.delay)
}
