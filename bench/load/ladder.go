package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prober-dev/prober/internal/daemon"
)

// The ladder (-ladder): the prober's own maximum sustained rate, not the
// rate its schedule happened to ask for. After the measured time (the
// first rung), the same flows are asked for 1.25x the rate, by a reload
// with a shorter interval, rung after rung until the prober no longer
// keeps up; then once for every flow every second (the most the schedule
// can ask of these flows): what overload does to the rate, the CPU per
// check and the memory, with the flows, and so the configuration and the
// history, the same on every rung.

// ladderStep is the factor between two rungs' rates.
const ladderStep = 1.25

// rung is the prober at one rate the schedule asked for.
type rung struct {
	every    time.Duration
	asked    float64 // steps/s the schedule asks for
	steps    int64   // steps done in the measured time
	skipped  int64   // runs skipped in it
	from, to sample
	latP99   time.Duration // scheduled runs' start lateness
}

func (g rung) wall() time.Duration { return g.to.at.Sub(g.from.at) }

func (g rung) rate() float64 { return float64(g.steps) / g.wall().Seconds() }

func (g rung) cpuPerStep() time.Duration {
	if g.steps == 0 {
		return 0
	}
	return (g.to.cpu - g.from.cpu) / time.Duration(g.steps)
}

// keptUp: no run skipped, and (nearly) every step the schedule asked for
// done.
func (g rung) keptUp() bool { return g.skipped == 0 && g.rate() >= 0.97*g.asked }

// skippedRuns is the scheduler's count of skipped runs since start.
func skippedRuns(d *daemon.Daemon) int64 {
	b, _ := d.Behind(time.Now())
	return b.Total
}

// climb measures the rungs above first (the measured time) and returns
// them all, first included.
func climb(ctx context.Context, d *daemon.Daemon, dir, base string, o options, rec *recorder, first rung,
	wait func(time.Duration) error, progress func(string, ...any)) ([]rung, error) {
	const top = time.Second // the shortest interval the configuration takes
	rungs := []rung{first}
	for last := first; last.every > top; last = rungs[len(rungs)-1] {
		every := top // not keeping up: ask for the most, once
		if last.keptUp() {
			every = max(top, time.Duration(float64(last.every)/ladderStep).Round(10*time.Millisecond))
		}
		g, err := measureRung(ctx, d, dir, base, o, rec, every, wait, progress)
		if err != nil {
			return nil, err
		}
		rungs = append(rungs, g)
	}
	rec.cur.Store(&segment{}) // whatever finishes during shutdown
	return rungs, nil
}

// measureRung reloads the configuration with every flow every every,
// lets the schedule settle, and measures o.Rung.
func measureRung(ctx context.Context, d *daemon.Daemon, dir, base string, o options, rec *recorder, every time.Duration,
	wait func(time.Duration) error, progress func(string, ...any)) (rung, error) {
	g := rung{every: every, asked: float64(o.Flows*o.Steps) / every.Seconds()}
	o.Every = every
	if err := writeProbes(dir, o, base); err != nil {
		return g, err
	}
	t0 := time.Now()
	if err := d.Reload(); err != nil {
		return g, fmt.Errorf("ladder: reload at every %s: %w", every, err)
	}
	progress("ladder: every %s (%.0f steps/s asked), reloaded in %s", every, g.asked, time.Since(t0).Round(time.Millisecond))
	// The reload's garbage (a whole configuration) is the harness's doing.
	runtime.GC()
	debug.FreeOSMemory()
	// The previous rung's runs end, and every flow comes to its phase in
	// the new interval within one.
	if err := wait(max(2*every, 3*time.Second)); err != nil {
		return g, err
	}
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // the rung's own peak RSS
	seg := &segment{}
	rec.cur.Store(seg)
	g.from = takeSample()
	skipped := skippedRuns(d)
	if err := wait(o.Rung); err != nil {
		return g, err
	}
	g.to = takeSample()
	g.skipped = skippedRuns(d) - skipped
	g.steps = seg.steps.Load()
	g.latP99 = seg.lateness.quantile(.99)
	progress("  %.1f steps/s, kept up %s, %d skipped, CPU %s a step, RSS %s (peak %s)", g.rate(), yesNo(g.keptUp()),
		g.skipped, us(g.cpuPerStep()), mb(g.to.rss), mb(g.to.hwm))
	return g, nil
}

// writeLadder prints the rungs and what they say: the prober's maximum
// sustained rate, what asking for more did to it, and the bare client's
// maximum beside them.
func (r *report) writeLadder(w io.Writer) {
	if len(r.ladder) == 0 {
		return
	}
	o := r.opts
	fmt.Fprintf(w, "\n## ladder: %d flows × %d steps, the interval shortened 1.25x a rung until not kept up, then every 1s; %s measured a rung (the first: the measured time above)\n\n",
		o.Flows, o.Steps, o.Rung)
	fmt.Fprintf(w, "| rung | every | asked steps/s | sustained steps/s | kept up | runs skipped | start lateness p99 | CPU per step | cores | RSS end / peak | live heap | goroutines |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var kept, best *rung
	for i := range r.ladder {
		g := &r.ladder[i]
		fmt.Fprintf(w, "| %d | %s | %.1f | %.1f | %s | %d | %s | %s | %.3f | %s / %s | %s | %d |\n", i, g.every, g.asked, g.rate(),
			yesNo(g.keptUp()), g.skipped, ms(g.latP99), us(g.cpuPerStep()), (g.to.cpu-g.from.cpu).Seconds()/g.wall().Seconds(),
			mb(g.to.rss), mb(g.to.hwm), mbu(g.to.liveHeap), g.to.goroutines)
		if g.keptUp() && (kept == nil || g.rate() > kept.rate()) {
			kept = g
		}
		if best == nil || g.rate() > best.rate() {
			best = g
		}
	}
	fmt.Fprintf(w, "\n| measure | value | target |\n|---|---|---|\n")
	row := func(k, v, t string) { fmt.Fprintf(w, "| %s | %s | %s |\n", k, v, t) }
	if kept != nil {
		row("max sustained while keeping up: steps/s; CPU per step", fmt.Sprintf("%.1f (every %s); %s", kept.rate(), kept.every, us(kept.cpuPerStep())), "")
	} else {
		row("max sustained while keeping up", "none of the rungs kept up: start lower (a longer -every)", "")
	}
	row("max sustained: steps/s; CPU per step", fmt.Sprintf("%.1f (asked %.1f); %s", best.rate(), best.asked, us(best.cpuPerStep())), "")
	if last := r.ladder[len(r.ladder)-1]; !last.keptUp() && kept != nil {
		row(fmt.Sprintf("overloaded: asked %.1f steps/s, %.1fx the max kept up: sustained; CPU per step; RSS peak", last.asked, last.asked/kept.rate()),
			fmt.Sprintf("%.1f, **%.2fx** the max kept up; %s, %.2fx; %s against %s", last.rate(), last.rate()/kept.rate(),
				us(last.cpuPerStep()), float64(last.cpuPerStep())/float64(max(kept.cpuPerStep(), 1)), mb(last.to.hwm), mb(kept.to.hwm)),
			"≥ 1x the rate, ≈ 1x the memory")
	} else if last.keptUp() {
		row("overloaded", fmt.Sprintf("never: kept up at every flow every %s; more -flows to find the maximum", last.every), "")
	}
	if b := r.bareMax; b != nil && b.Wall > 0 {
		rate := float64(b.Requests-b.Failed) / b.Wall.Seconds()
		row(fmt.Sprintf("bare net/http at its maximum (%d in flight, same run): requests/s, CPU per request; max sustained / bare", r.bareWorkers),
			fmt.Sprintf("%.1f/s, %s; **%.2fx** the rate, %.2fx the CPU", rate, us(b.perRequest()), best.rate()/rate,
				float64(best.cpuPerStep())/float64(max(b.perRequest(), 1))), "at saturation: ≥ 12,000 checks/s on 2 cores")
	}
}
