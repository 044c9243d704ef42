package schedule

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// summaryEvery is the least time between two runs_skipped log lines, and
// how long after its last skip the scheduler still counts as behind.
const summaryEvery = time.Minute

// topSkipped is how many flows a summary names.
const topSkipped = 5

// skipLog counts skipped runs and logs them as a summary: the first skip
// after a quiet minute at once, then at most one line a minute with the
// skips since the previous line. A prober asked for more than it can run
// skips thousands of runs a second; a line each would drown the log (and
// cost the CPU it lacks).
type skipLog struct {
	log *slog.Logger

	mu       sync.Mutex
	counts   map[string]int // skips per flow since the last line
	pending  int            // their sum
	since    time.Time      // the first skip since the last line
	total    int64          // skips since start
	lastLine time.Time
	lastSkip time.Time
	last     Backlog // what the last line said
	timer    *time.Timer
	stopped  bool
}

// Backlog is what the scheduler could not run on time: runs skipped
// because the flow's previous run was still going (the flow is slower than
// its interval, or the prober is overloaded: runs wait for a concurrency
// slot).
type Backlog struct {
	Skipped  int         // runs skipped from Since to LastSkip
	Since    time.Time   // the first of them
	LastSkip time.Time   // the latest skip
	Flows    int         // how many flows skipped
	Top      []FlowSkips // the most-skipped flows, most first (at most 5)
	Total    int64       // runs skipped since the scheduler started
}

// FlowSkips is one flow's skipped runs in a Backlog.
type FlowSkips struct {
	Flow    string
	Skipped int
}

// String is the backlog for people: "12 runs skipped since 10:04:05Z, 3
// flows (slow 8, b 3, c 1)".
func (b Backlog) String() string {
	top := make([]string, len(b.Top))
	for i, f := range b.Top {
		top[i] = fmt.Sprintf("%s %d", f.Flow, f.Skipped)
	}
	more := ""
	if b.Flows > len(b.Top) {
		more = ", ..."
	}
	return fmt.Sprintf("%d runs skipped since %s, %d flows (%s%s)", b.Skipped,
		b.Since.UTC().Format(time.RFC3339), b.Flows, strings.Join(top, ", "), more)
}

// note counts a skipped run of each of skipped at now.
func (l *skipLog) note(skipped []*entry, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = map[string]int{}
	}
	if l.pending == 0 {
		l.since = now
	}
	for _, e := range skipped {
		l.counts[e.name]++
	}
	l.pending += len(skipped)
	l.total += int64(len(skipped))
	l.lastSkip = now
	switch {
	case l.stopped:
		l.flush(now)
	case l.lastLine.IsZero() || now.Sub(l.lastLine) >= summaryEvery:
		l.flush(now)
	case l.timer == nil:
		l.timer = time.AfterFunc(l.lastLine.Add(summaryEvery).Sub(now), func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.timer = nil
			if !l.stopped {
				l.flush(time.Now())
			}
		})
	}
}

// flush logs the pending skips, if any. The caller holds l.mu.
func (l *skipLog) flush(now time.Time) {
	if l.pending == 0 {
		return
	}
	b := l.backlog()
	l.last = b
	l.counts, l.pending, l.lastLine = nil, 0, now
	if l.log == nil {
		return
	}
	top := make([]any, 0, len(b.Top))
	for _, f := range b.Top {
		top = append(top, slog.Int(f.Flow, f.Skipped))
	}
	l.log.Warn("runs_skipped", "skipped", b.Skipped, "flows", b.Flows, "since", b.Since.UTC().Format(time.RFC3339Nano),
		slog.Group("top", top...), "total", b.Total, "reason", "previous run still in progress")
}

// backlog is the pending skips as a Backlog. The caller holds l.mu.
func (l *skipLog) backlog() Backlog {
	b := Backlog{Skipped: l.pending, Since: l.since, LastSkip: l.lastSkip, Flows: len(l.counts), Total: l.total}
	for f, n := range l.counts {
		b.Top = append(b.Top, FlowSkips{f, n})
	}
	slices.SortFunc(b.Top, func(x, y FlowSkips) int {
		return cmp.Or(cmp.Compare(y.Skipped, x.Skipped), strings.Compare(x.Flow, y.Flow))
	})
	b.Top = b.Top[:min(len(b.Top), topSkipped)]
	return b
}

// stop logs what is pending and stops the timer.
func (l *skipLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.flush(time.Now())
}

// behind is the backlog while a run was skipped within the last minute.
func (l *skipLog) behind(now time.Time) (Backlog, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastSkip.IsZero() || now.Sub(l.lastSkip) >= summaryEvery {
		return Backlog{Total: l.total}, false
	}
	if l.pending > 0 {
		return l.backlog(), true
	}
	return l.last, true
}

// Behind says whether the scheduler is behind: a run was skipped in the
// last minute (its previous run was still going). The prober still runs
// what it can; see Backlog.
func (s *Scheduler) Behind(now time.Time) (Backlog, bool) { return s.skips.behind(now) }
