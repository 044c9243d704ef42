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
//
// Runs beyond the concurrency limit wait in a FIFO of flows, not in a
// goroutine each: a prober asked for three times what it can run held a
// goroutine (its stack, its g, a channel waiter) for every flow, 466 MB of
// RSS instead of 186 at 12,000 flows a second, and spent a goroutine on
// every skipped run. Now at most Concurrency goroutines run flows, each
// taking the next waiting flow when its run ends, a flow waits at most
// once (a tick while it waits skips the older run and keeps the newer
// planned time, so what runs is the freshest), and a skip is a count.
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
	runCtx context.Context
	abort  context.CancelFunc
	wake   chan struct{} // the heap changed: the loop recomputes its timer
	done   chan struct{} // the loop has returned

	mu      sync.Mutex
	entries map[string]*entry
	queue   queue // entries with a next time, soonest first
	waiting fifo  // entries due but beyond the concurrency limit, oldest first
	workers int   // goroutines running flows, at most opts.Concurrency
	// Skipped in the current wake, counted once s.mu is released. Only
	// the loop's goroutine uses it.
	skipped []*entry
	stopped bool
	wg      sync.WaitGroup

	skips skipLog // runs skipped, summarised in the log at most once a minute
}

type entry struct {
	name string
	run  atomic.Pointer[func(context.Context, time.Time)]

	// Guarded by Scheduler.mu.
	state   state
	planned time.Time       // while waiting: the run's planned start
	removed bool            // a reload removed the flow: a waiting run is dropped
	index   int             // in the queue, -1 when not in it
	at      int64           // due() in Unix ns, kept by requeue: the heap compares it often
	next    time.Time       // the next planned run by the schedule (zero: never)
	startAt time.Time       // the start-up run, when still due (zero: none)
	spec    config.Schedule // as configured: a reload keeps next when it is unchanged
	added   time.Time       // when first scheduled: Overdue counts from it until the first run

	mu    sync.Mutex
	sched cron.Schedule
	last  time.Time // last actual start
}

// state is where a flow's run is: none, waiting for a slot, or running.
type state uint8

const (
	idle state = iota
	waiting
	running
)

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
func (q queue) Less(i, j int) bool { return q[i].at < q[j].at }
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
	due := e.due()
	e.at = due.UnixNano()
	switch {
	case due.IsZero() && e.index >= 0:
		heap.Remove(&s.queue, e.index)
	case due.IsZero():
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
				// Wall clock only, like next: the heap orders by UnixNano.
				e.startAt = now.Add(offset(j.Name, window)).Round(0)
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
			e.removed = true
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
		for len(s.queue) > 0 && s.queue[0].at <= now.UnixNano() {
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
			wait = time.Duration(s.queue[0].at - time.Now().UnixNano()) // from now, not from the wake: sorting took time
		}
		s.mu.Unlock()
		s.countSkips(s.skipped, now)
		s.skipped = s.skipped[:0]
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

// launch starts e's run planned at planned: in a goroutine of its own if
// fewer than Concurrency are running flows, else after the runs before it
// (see work). A flow whose run is still going or waiting skips this one:
// a run never overlaps the flow's previous one, and a flow waits at most
// once. The caller holds s.mu.
func (s *Scheduler) launch(e *entry, planned time.Time) {
	switch e.state {
	case running:
		s.skipped = append(s.skipped, e)
	case waiting:
		// The waiting run is the one skipped: the newer is what it
		// would have measured, and its lateness starts now.
		s.skipped = append(s.skipped, e)
		e.planned = planned
	case idle:
		if s.workers < s.opts.Concurrency {
			s.workers++
			e.state = running
			s.wg.Add(1)
			go s.work(e, planned)
			return
		}
		e.state, e.planned = waiting, planned
		s.waiting.push(e)
	}
}

// countSkips counts skipped runs in the hooks and the summary, outside
// s.mu: under overload that is thousands a second, and the hooks take
// their own locks.
func (s *Scheduler) countSkips(skipped []*entry, now time.Time) {
	if len(skipped) == 0 {
		return
	}
	for _, e := range skipped {
		s.opts.Hooks.Skipped(e.name)
	}
	s.skips.note(skipped, now)
	clear(skipped) // the entries may be removed by a reload: hold none
}

// work runs e, then the waiting flows one after the other until none
// waits: a goroutine of the Concurrency allowed keeps its slot (and its
// grown stack) while there is work for it.
func (s *Scheduler) work(e *entry, planned time.Time) {
	defer s.wg.Done()
	for {
		s.fire(e, planned)
		s.mu.Lock()
		e.state = idle
		e = nil
		for !s.stopped {
			w := s.waiting.pop()
			if w == nil {
				break
			}
			if w.removed {
				w.state = idle
				continue
			}
			e, planned = w, w.planned
			e.state, e.planned = running, time.Time{}
			break
		}
		if e == nil {
			s.workers--
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// fire runs e's run planned at planned.
func (s *Scheduler) fire(e *entry, planned time.Time) {
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

// fifo is a queue of entries, oldest first.
type fifo struct {
	items []*entry
	head  int
}

func (f *fifo) push(e *entry) {
	if f.head > 0 && f.head == len(f.items) {
		f.items, f.head = f.items[:0], 0
	}
	f.items = append(f.items, e)
}

func (f *fifo) pop() *entry {
	if f.head == len(f.items) {
		return nil
	}
	e := f.items[f.head]
	f.items[f.head] = nil
	f.head++
	if f.head > 1024 && f.head > len(f.items)/2 { // keep the backing array from creeping forward
		n := copy(f.items, f.items[f.head:])
		clear(f.items[n:])
		f.items, f.head = f.items[:n], 0
	}
	return e
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
		if e.state != idle {
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
