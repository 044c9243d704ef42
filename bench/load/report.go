package main

import (
	"fmt"
	"io"
	"math"
	"time"
)

// Derived numbers, for the table and for the test's thresholds.

func (r *report) measured() time.Duration { return r.end.at.Sub(r.warm.at) }

func (r *report) cpu() time.Duration { return r.end.cpu - r.warm.cpu }

// cores is the average CPU use over the measured time.
func (r *report) cores() float64 { return r.cpu().Seconds() / r.measured().Seconds() }

func (r *report) steps() int64 { return r.total.steps.Load() }

func (r *report) stepsPerSec() float64 { return float64(r.steps()) / r.measured().Seconds() }

// expectedStepsPerSec is what the schedule asks for.
func (r *report) expectedStepsPerSec() float64 {
	return float64(r.opts.Flows*r.opts.Steps) / r.opts.Every.Seconds()
}

// cpuPerStep is the process CPU per executed step: everything the daemon
// does (scheduling, runs, metrics, log, store, rules, scrapes) divided by
// the steps.
func (r *report) cpuPerStep() time.Duration {
	if r.steps() == 0 {
		return 0
	}
	return r.cpu() / time.Duration(r.steps())
}

// latenessGrowth compares the last segment's p99 start lateness with the first's.
func (r *report) latenessGrowth() (first, last time.Duration) {
	if len(r.segs) == 0 {
		return 0, 0
	}
	return r.segs[0].latP99, r.segs[len(r.segs)-1].latP99
}

// keptUp: no skipped runs, (nearly) every scheduled run done, and start
// lateness not growing from the first to the last segment.
func (r *report) keptUp() (bool, string) {
	first, last := r.latenessGrowth()
	ratio := r.stepsPerSec() / r.expectedStepsPerSec()
	growing := last > 2*first+5*time.Millisecond
	ok := r.skipped == 0 && ratio > 0.97 && !growing
	why := fmt.Sprintf("%.0f skipped runs, %.1f%% of the scheduled steps done, p99 lateness %s in the first segment, %s in the last",
		r.skipped, 100*ratio, ms(first), ms(last))
	return ok, why
}

// evalQuantile estimates a quantile of the rule cycles' durations: the upper
// bound of the bucket holding it.
func (r *report) evalQuantile(q float64) float64 {
	if r.evalCount == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(r.evalCount)))
	for _, b := range r.evalBuckets {
		if b.GetCumulativeCount() >= rank {
			return b.GetUpperBound()
		}
	}
	return math.Inf(1)
}

func (r *report) evalMean() time.Duration {
	if r.evalCount == 0 {
		return 0
	}
	return time.Duration(r.evalSum / float64(r.evalCount) * 1e9)
}

// write prints the report as markdown.
func (r *report) write(w io.Writer) {
	o := r.opts
	fmt.Fprintf(w, "## prober load: %d flows × %d steps every %s\n\n", o.Flows, o.Steps, o.Every)
	fmt.Fprintf(w, "%s measured after a %s warm-up; target %s (delay %s); concurrency %s; store.keep %s; rules %v; scrape %s; status page views %s; GOMAXPROCS %d; %s\n\n",
		r.measured().Round(time.Second), o.Warmup, o.Target, o.TargetDelay, orDefault(o.Concurrency), orDefault(o.Keep), o.Rules,
		orNever(o.Scrape), orNever(o.View), runtimeProcs(), gcSettings())
	ok, why := r.keptUp()
	fmt.Fprintf(w, "| measure | value | target |\n|---|---|---|\n")
	row := func(k, v, t string) { fmt.Fprintf(w, "| %s | %s | %s |\n", k, v, t) }
	row("steps/s sustained", fmt.Sprintf("%.1f (schedule: %.1f)", r.stepsPerSec(), r.expectedStepsPerSec()), "")
	row("kept up", yesNo(ok)+": "+why, "keeps up")
	row("CPU per step (process)", us(r.cpuPerStep()), "")
	if b := r.bare; b != nil {
		ratio := "-"
		if b.perRequest() > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(r.cpuPerStep())/float64(b.perRequest()))
		}
		row("bare net/http, a new connection per request, same target, rate and time (child process): CPU per request; ours/bare",
			fmt.Sprintf("%s (%d requests, %d failed); **%s**", us(b.perRequest()), b.Requests, b.Failed, ratio), "≤ 1.5x at 100 checks/s")
	}
	if b := r.bareMax; b != nil && b.Wall > 0 {
		rate := float64(b.Requests-b.Failed) / b.Wall.Seconds()
		row(fmt.Sprintf("bare net/http at its maximum, %d in flight, a new connection per request, after the prober stopped, same target and time (child process): requests/s, CPU per request; ours/bare", r.bareWorkers),
			fmt.Sprintf("%.1f/s (%d requests, %d failed), %s; **%.2fx** the rate, %.2fx the CPU", rate, b.Requests, b.Failed, us(b.perRequest()),
				r.stepsPerSec()/rate, float64(r.cpuPerStep())/float64(max(b.perRequest(), 1))), "at saturation: ≥ 12,000 checks/s on 2 cores")
	}
	row("cores used, average", fmt.Sprintf("%.3f (%.1f CPU s in %.1f s)", r.cores(), r.cpu().Seconds(), r.measured().Seconds()), "< 0.5")
	// The GC's share and the allocation rate say what a smaller GOGC or a
	// GOMEMLIMIT near the live heap would cost.
	if gc := r.end.gcCPU - r.warm.gcCPU; r.cpu() > 0 {
		alloc := float64(r.end.allocated - r.warm.allocated)
		row("GC share of CPU; heap allocated", fmt.Sprintf("%.1f%% (%.1f CPU s); %s/s, %s per step", 100*gc/r.cpu().Seconds(), gc,
			mb(int64(alloc/r.measured().Seconds())), fmt.Sprintf("%.1f KB", alloc/float64(max(r.steps(), 1))/1e3)), "")
	}
	t := r.total
	row("start jitter p50 / p99 / max", fmt.Sprintf("%s / %s / %s (%d of %d runs > 10 ms)", ms(t.lateness.quantile(.5)),
		ms(t.lateness.quantile(.99)), ms(t.lateness.quantile(1)), t.late.Load(), t.lateness.count()), "p99 < 10 ms")
	row("RSS peak / end", fmt.Sprintf("%s / %s", mb(r.end.hwm), mb(r.end.rss)), "< 100 MB")
	row("RSS at end: anonymous / file pages", fmt.Sprintf("%s / %s", mb(r.end.rssAnon), mb(r.end.rssFile)), "")
	row("Go memory at end: heap in use / free, not returned / stacks / runtime", fmt.Sprintf("%s / %s / %s / %s",
		mbu(r.end.heapInUse), mbu(r.end.heapFree), mbu(r.end.stacks), mbu(r.end.runtimeOther)), "")
	row("RSS before load / configured", fmt.Sprintf("%s / %s", mb(r.base.rss), mb(r.configured.rss)), "")
	row("live heap: before load / configured / warm / end", fmt.Sprintf("%s / %s / %s / %s",
		mbu(r.base.liveHeap), mbu(r.configured.liveHeap), mbu(r.warm.liveHeap), mbu(r.end.liveHeap)), "no growth")
	row("goroutines: warm / end", fmt.Sprintf("%d / %d", r.warm.goroutines, r.end.goroutines), "no growth")
	row("runs (final) / failed / retried", fmt.Sprintf("%d / %d / %d", t.runs.Load(), t.failed.Load(), t.retried.Load()), "")
	row("step duration as reported p50 / p90 / p99 / mean", fmt.Sprintf("%s / %s / %s / %s", ms(t.stepDur.quantile(.5)),
		ms(t.stepDur.quantile(.9)), ms(t.stepDur.quantile(.99)), ms(t.stepDur.mean())), "")
	if s := r.server; s != nil && s.count() > 0 {
		row("same requests as the target measured p50 / p90 / p99 / mean", fmt.Sprintf("%s / %s / %s / %s (%d requests)", ms(s.quantile(.5)),
			ms(s.quantile(.9)), ms(s.quantile(.99)), ms(s.mean()), s.count()), "")
		row("reported minus target-measured, mean", ms(t.stepDur.mean()-s.mean())+" (client, loopback, and the target's own scheduling)", "")
	}
	if r.evalCount > 0 {
		row("rule evaluation per cycle: mean / p99 (bucket bound)", fmt.Sprintf("%s / ≤ %s", ms(r.evalMean()), secs(r.evalQuantile(.99))), "< 50 ms")
		row("rule cycles", fmt.Sprintf("%d (%.2f/s, %.1f%% of a core)", r.evalCount, float64(r.evalCount)/r.measured().Seconds(),
			100*r.evalSum/r.measured().Seconds()), "")
	}
	if len(r.series) > 0 {
		total, most := 0, 0
		for _, n := range r.series {
			total += n
			most = max(most, n)
		}
		row("series: per flow (most) / total (prober validate's count)", fmt.Sprintf("%d / %d", most, total), "≤ 40 for 4 steps")
	}
	if p := r.scrapes; p.n > 0 {
		row("/metrics scrapes: count / mean wall / size", fmt.Sprintf("%d / %s / %s", p.n,
			ms(p.wall/time.Duration(p.n)), mb(p.bytes)), "")
	}
	if p := r.views; p.n > 0 {
		row("status page views: count / mean wall / size", fmt.Sprintf("%d / %s / %s", p.n,
			ms(p.wall/time.Duration(p.n)), mb(p.bytes)), "")
	}
	if first, second, ok := r.startupRate(); ok {
		row("requests/s at the target, start-up: first interval after start peak / mean; second interval peak / mean",
			fmt.Sprintf("%d / %.1f; %d / %.1f (busiest second of the first: %d)", first.peak, first.mean, second.peak, second.mean, first.at), "first peak ≤ steady peak")
	}
	row("overload: runs skipped; log lines about skips / all lines / log bytes", fmt.Sprintf("%.0f; %d / %d / %s",
		r.skipped, r.log.skips.Load(), r.log.lines.Load(), mb(r.log.bytes.Load())), "a summary a minute")
	row("/readyz at the end", fmt.Sprintf("%d %q", r.readyCode, r.readyBody), "")
	row("configuration load (daemon.New)", ms(r.loadTime), "")
	if o.Reload {
		row("reload (same configuration)", ms(r.reloadTime), "")
	}
	fmt.Fprintf(w, "\n| segment | steps/s | cores | jitter p50 | jitter p99 | jitter max | step p50 | step p99 | live heap | goroutines | RSS |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, s := range r.segs {
		fmt.Fprintf(w, "| %d | %s |\n", i+1, s.cells())
	}
	r.writeLadder(w)
}

// rate is requests per second over one interval of the schedule.
type rate struct {
	peak int64   // the busiest second
	at   int     // which second it was, from the start of the schedule
	mean float64 // over the interval
}

// startupRate is the request rate in the first interval after start and in
// the second (steady, by then) one.
func (r *report) startupRate() (first, second rate, ok bool) {
	n := int(r.opts.Every / time.Second)
	if n < 1 || len(r.perSec) < 2*n {
		return rate{}, rate{}, false
	}
	over := func(from int) rate {
		var out rate
		var sum int64
		for i := from; i < from+n; i++ {
			sum += r.perSec[i]
			if r.perSec[i] > out.peak {
				out.peak, out.at = r.perSec[i], i
			}
		}
		out.mean = float64(sum) / float64(n)
		return out
	}
	return over(0), over(n), true
}

func (s segResult) wall() time.Duration { return s.to.at.Sub(s.from.at) }

func (s segResult) cells() string {
	return fmt.Sprintf("%.1f | %.3f | %s | %s | %s | %s | %s | %s | %d | %s",
		float64(s.steps)/s.wall().Seconds(), (s.to.cpu-s.from.cpu).Seconds()/s.wall().Seconds(),
		ms(s.latP50), ms(s.latP99), ms(s.latMax), ms(s.stepP50), ms(s.stepP99), mbu(s.to.liveHeap), s.to.goroutines, mb(s.to.rss))
}

func (s segResult) line() string {
	return fmt.Sprintf("steps/s %.1f, cores %.3f, jitter p50 %s p99 %s max %s, live heap %s, goroutines %d, RSS %s",
		float64(s.steps)/s.wall().Seconds(), (s.to.cpu-s.from.cpu).Seconds()/s.wall().Seconds(),
		ms(s.latP50), ms(s.latP99), ms(s.latMax), mbu(s.to.liveHeap), s.to.goroutines, mb(s.to.rss))
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f µs", float64(d)/1e3)
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/1e3) }

func secs(s float64) string {
	if math.IsInf(s, 1) {
		return "+Inf"
	}
	return ms(time.Duration(s * 1e9))
}

func mb(b int64) string   { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
func mbu(b uint64) string { return mb(int64(b)) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func orDefault(n int) string {
	if n <= 0 {
		return "default"
	}
	return fmt.Sprint(n)
}

func orNever(d time.Duration) string {
	if d <= 0 {
		return "none"
	}
	return "every " + d.String()
}
