// Package schedule decides when each flow runs: once at start, then on its
// interval or cron spec (robfig/cron/v3), with start times spread
// deterministically, no run overlapping the previous run of the same flow
// (skips are counted), and a global limit on runs in flight.
package schedule

import (
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
	cron   *cron.Cron
	sem    chan struct{}
	runCtx context.Context
	abort  context.CancelFunc
	start  time.Time

	mu      sync.Mutex
	entries map[string]*entry
	timers  []*time.Timer
	stopped bool
	wg      sync.WaitGroup
}

type entry struct {
	name    string
	run     atomic.Pointer[func(context.Context, time.Time)]
	id      cron.EntryID // guarded by Scheduler.mu
	running atomic.Bool

	mu       sync.Mutex
	sched    cron.Schedule
	expected time.Time // the next planned time, as cron will fire it
	last     time.Time // last actual start
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
		start:   time.Now(),
	}
	// Recover first: without it a panicking job kills the process.
	s.cron = cron.New(
		cron.WithLocation(time.UTC),
		cron.WithLogger(cronLogger{o.Logger}),
		cron.WithChain(cron.Recover(cronLogger{o.Logger})),
	)
	s.cron.Start()
	return s
}

type nopHooks struct{}

func (nopHooks) Skipped(string)                {}
func (nopHooks) Started(string, time.Duration) {}
func (nopHooks) Finished(string)               {}

// Set makes jobs the scheduled set. New flows run once right away (spread
// over a short window when there are many), then on schedule; flows already
// scheduled keep their rhythm and running state; flows not in jobs stop being
// scheduled (a run in flight finishes).
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
	window := spreadWindow(len(jobs))
	keep := map[string]bool{}
	for i, j := range jobs {
		keep[j.Name] = true
		e := s.entries[j.Name]
		fresh := e == nil
		if fresh {
			e = &entry{name: j.Name}
			s.entries[j.Name] = e
		} else {
			s.cron.Remove(e.id)
		}
		run := j.Run
		e.run.Store(&run)
		e.mu.Lock()
		e.sched = scheds[i]
		e.expected = e.sched.Next(now)
		e.mu.Unlock()
		e.id = s.cron.Schedule(scheds[i], cron.FuncJob(func() { s.fromCron(e) }))
		if fresh {
			delay := offset(j.Name, window)
			planned := now.Add(delay)
			s.timers = append(s.timers, time.AfterFunc(delay, func() { s.fire(e, planned) }))
		}
	}
	for name, e := range s.entries {
		if !keep[name] {
			s.cron.Remove(e.id)
			delete(s.entries, name)
		}
	}
	return nil
}

// fromCron is called by cron at a planned time. It recovers the planned time
// from the entry's bookkeeping so lateness can be measured.
func (s *Scheduler) fromCron(e *entry) {
	now := time.Now()
	e.mu.Lock()
	planned := e.expected
	e.expected = e.sched.Next(now)
	e.mu.Unlock()
	if planned.IsZero() || planned.After(now) || now.Sub(planned) > time.Minute {
		planned = now // bookkeeping lost track (clock jump); don't invent lateness
	}
	s.fire(e, planned)
}

// fire runs e unless its previous run is still going.
func (s *Scheduler) fire(e *entry, planned time.Time) {
	if !e.running.CompareAndSwap(false, true) {
		s.opts.Hooks.Skipped(e.name)
		s.log.Warn("run_skipped", "flow", e.name, "reason", "previous run still in progress",
			"planned", planned.UTC().Format(time.RFC3339Nano))
		return
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		e.running.Store(false)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer e.running.Store(false)

	select {
	case s.sem <- struct{}{}:
	case <-s.runCtx.Done():
		return
	}
	defer func() { <-s.sem }()
	started := time.Now()
	e.mu.Lock()
	e.last = started
	e.mu.Unlock()
	s.opts.Hooks.Started(e.name, started.Sub(planned))
	defer s.opts.Hooks.Finished(e.name)
	defer func() {
		if p := recover(); p != nil {
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
	for _, t := range s.timers {
		t.Stop()
	}
	s.mu.Unlock()
	// Not waiting for cron's own "jobs done": a cron-started run that is
	// stuck would hold Stop past the grace. Every run is in wg (fire adds
	// to it under mu, and no run starts once stopped is set).
	s.cron.Stop()

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
			last = s.start
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

// cronLogger adapts slog to cron's logger; cron's Info chatter goes to Debug.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "error", err.Error())...)
}
