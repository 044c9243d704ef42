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
	"log/slog"
	"slices"
	"strings"
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
	entries []*entry // by name
	queue   queue    // entries with a next time, soonest first
	waiting fifo     // entries due but beyond the concurrency limit, oldest first
	workers int      // goroutines running flows, at most opts.Concurrency
	// Skipped in the current wake, counted once s.mu is released. Only
	// the loop's goroutine uses it.
	skipped []*entry
	stopped bool
	wg      sync.WaitGroup

	skips skipLog // runs skipped, summarised in the log at most once a minute
}

// entry is one scheduled flow. It is cut to 80 bytes (TestRetainedPerFlow):
// times are Unix nanoseconds (0: none), an interval flow's plan is its
// interval (its phase follows from its name) rather than a boxed
// cron.Schedule and its spec, and only a cron flow points to more. At
// 10,000 flows the entries were 3 MB.
type entry struct {
	name string
	// run is the flow's run, replaced by a reload. Guarded by
	// Scheduler.mu: a run reads it when it is started.
	run func(ctx context.Context, planned time.Time)
	// An interval flow's plan: phased every ns, at the phase offset gives
	// its name. 0 for any other flow, planned by cron.
	every int64
	cron  *cronPlan

	// Guarded by Scheduler.mu. Unix ns, 0 for none.
	planned int64 // while waiting: the run's planned start
	next    int64 // the next planned run by the schedule (0: never)
	startAt int64 // the start-up run, when still due (0: none)
	index   int32 // in the queue, -1 when not in it
	state   state
	removed bool // a reload removed the flow: a waiting run is dropped

	// last is the last actual start in Unix ns (set by the run, read by
	// Overdue), or before the first when the flow was first scheduled:
	// Overdue counts from then, not from the scheduler's start (a flow
	// added by a reload runs at its phase).
	last atomic.Int64
}

// cronPlan is the plan of a flow that is not a plain interval: its spec as
// configured (a reload keeps next when it is unchanged) and compiled.
type cronPlan struct {
	spec  config.Schedule
	sched cron.Schedule
}

// unixNano is t in Unix ns, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// unixTime is the time of Unix ns (0: the zero time), in Local as the
// plans give them (phased and cron's Next return times in their
// argument's location, time.Now()'s).
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// nextAfter is e's first planned run after t (zero: never).
func (e *entry) nextAfter(t time.Time) time.Time {
	if e.cron != nil {
		return e.cron.sched.Next(t)
	}
	every := time.Duration(e.every)
	return phased{interval: every, phase: offset(e.name, every)}.Next(t)
}

// setPlan gives e the plan of spec, compiled as sched.
func (e *entry) setPlan(spec config.Schedule, sched cron.Schedule) {
	if p, ok := sched.(phased); ok && spec.Cron == "" && spec.Location == nil && p.phase == offset(e.name, p.interval) {
		e.every, e.cron = int64(p.interval), nil
		return
	}
	e.every, e.cron = 0, &cronPlan{spec: spec, sched: sched}
}

// samePlan: e plans the runs of spec (see sameSchedule).
func (e *entry) samePlan(spec config.Schedule) bool {
	if e.cron != nil {
		return sameSchedule(e.cron.spec, spec)
	}
	return sameSchedule(config.Schedule{Every: time.Duration(e.every)}, spec)
}

// state is where a flow's run is: none, waiting for a slot, or running.
type state uint8

const (
	idle state = iota
	waiting
	running
)

// due is when e is next due (Unix ns, 0: never): its start-up run or its
// next planned one.
func (e *entry) due() int64 {
	if e.startAt != 0 && (e.next == 0 || e.startAt < e.next) {
		return e.startAt
	}
	return e.next
}

// queue is a min-heap of entries by due time.
type queue []*entry

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].due() < q[j].due() }
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = int32(i), int32(j)
}
func (q *queue) Push(x any) {
	e := x.(*entry)
	e.index = int32(len(*q))
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
	switch {
	case due == 0 && e.index >= 0:
		heap.Remove(&s.queue, int(e.index))
	case due == 0:
	case e.index >= 0:
		heap.Fix(&s.queue, int(e.index))
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
		opts:   o,
		log:    o.Logger,
		runCtx: ctx,
		abort:  cancel,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
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
	// The jobs by name (stable: of two jobs of one name the later wins,
	// as it did when each replaced the other in turn).
	order := make([]int32, len(jobs))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return strings.Compare(jobs[a].Name, jobs[b].Name) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("scheduler stopped")
	}
	now := time.Now()
	onStart := 0
	for _, j := range jobs {
		if j.RunOnStart && s.find(j.Name) == nil {
			onStart++
		}
	}
	window := spreadWindow(onStart)
	entries := make([]*entry, 0, len(jobs))
	for _, i := range order {
		j := &jobs[i]
		var e *entry
		if n := len(entries); n > 0 && entries[n-1].name == j.Name {
			e = entries[n-1] // a name twice: one entry
		} else if e = s.find(j.Name); e != nil {
			entries = append(entries, e)
		}
		fresh := e == nil
		if fresh {
			e = &entry{name: j.Name, index: -1}
			e.last.Store(now.UnixNano())
			entries = append(entries, e)
			if j.RunOnStart {
				e.startAt = now.Add(offset(j.Name, window)).UnixNano()
			}
		}
		e.run = j.Run
		if !fresh && e.samePlan(j.Schedule) {
			// Unchanged: keep the compiled schedule too. A cron flow's
			// spread offset depends on the number of flows; taking the new
			// one would move its next run (a second run in one period).
			s.requeue(e)
			continue
		}
		e.setPlan(j.Schedule, scheds[i])
		if e.startAt != 0 {
			e.next = unixNano(firstAfterStart(scheds[i], unixTime(e.startAt)))
		} else {
			e.next = unixNano(scheds[i].Next(now))
		}
		s.requeue(e)
	}
	// Both sorted by name: what the old list has and the new one lacks is
	// removed.
	k := 0
	for _, e := range s.entries {
		for k < len(entries) && entries[k].name < e.name {
			k++
		}
		if k < len(entries) && entries[k] == e {
			continue
		}
		if e.index >= 0 {
			heap.Remove(&s.queue, int(e.index))
		}
		e.removed = true
	}
	s.entries = entries
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// find is the entry of flow name, or nil. The caller holds s.mu.
func (s *Scheduler) find(name string) *entry {
	i, ok := slices.BinarySearchFunc(s.entries, name, func(e *entry, name string) int { return strings.Compare(e.name, name) })
	if !ok {
		return nil
	}
	return s.entries[i]
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
		nowNs := now.UnixNano()
		for len(s.queue) > 0 && s.queue[0].due() <= nowNs {
			e := s.queue[0]
			if e.startAt != 0 && e.startAt <= nowNs {
				planned := e.startAt
				e.startAt = 0
				s.launch(e, planned)
			}
			if e.next != 0 && e.next <= nowNs {
				planned := e.next
				e.next = unixNano(e.nextAfter(now))
				if nowNs-planned > int64(time.Minute) {
					planned = nowNs // the clock jumped, or the process was stopped: don't invent lateness
				}
				s.launch(e, planned)
			}
			s.requeue(e)
		}
		var wait time.Duration = time.Hour
		if len(s.queue) > 0 {
			wait = time.Duration(s.queue[0].due() - time.Now().UnixNano()) // from now, not from the wake: sorting took time
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
func (s *Scheduler) launch(e *entry, planned int64) {
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
			go s.work(e, e.run, planned)
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
func (s *Scheduler) work(e *entry, run func(context.Context, time.Time), planned int64) {
	defer s.wg.Done()
	for {
		s.fire(e, run, planned)
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
			e, run, planned = w, w.run, w.planned
			e.state, e.planned = running, 0
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

// fire runs run, e's run planned at planned (Unix ns).
func (s *Scheduler) fire(e *entry, run func(context.Context, time.Time), planned int64) {
	started := time.Now()
	e.last.Store(started.UnixNano())
	s.opts.Hooks.Started(e.name, time.Duration(started.UnixNano()-planned))
	defer s.opts.Hooks.Finished(e.name)
	defer func() {
		if p := recover(); p != nil { // a panicking run must not take the daemon down
			s.log.Error("run_panicked", "flow", e.name, "panic", fmt.Sprint(p))
		}
	}()
	run(s.runCtx, unixTime(planned))
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
	for _, e := range s.entries {
		if e.state != idle {
			continue
		}
		next := e.nextAfter(unixTime(e.last.Load()))
		if !next.IsZero() && now.Sub(next) > grace {
			out = append(out, e.name)
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
	// FNV-1a, as hash/fnv's New64a, without its allocations: an
	// interval flow's phase is worked out at each of its runs.
	h := uint64(14695981039346656037)
	for i := range len(name) {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	return time.Duration(h % uint64(window))
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
