package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/prober-dev/prober/internal/daemon"
	probermetrics "github.com/prober-dev/prober/internal/metrics"
	"github.com/prober-dev/prober/internal/result"
)

// options of one load run.
type options struct {
	Flows, Steps int
	Every        time.Duration
	Duration     time.Duration // measured, after the warm-up
	Warmup       time.Duration // 0: one interval plus the start-up spread
	Segments     int           // the measured time is reported in this many parts
	Target       string        // "child" (default), "inproc" or a base URL
	TargetDelay  time.Duration // the target's own processing time per request
	Concurrency  int           // 0: the daemon's default
	Keep         int           // store.keep; 0: the daemon's default
	Scrape       time.Duration // scrape /metrics this often (0: never)
	View         time.Duration // open the status page this often (0: never)
	Rules        bool          // a flow_failing rule over every flow and a dependency rule
	LogFile      string        // the daemon's JSON log ("": formatted, then discarded)
	Reload       bool          // reload the configuration in the middle of the measured time
	Metrics      string        // the metric level (probes.yaml's metrics:); "": the default
	Bare         bool          // run the bare reference in a child process during the measured time
	// Saturate: after the measured time and the daemon's stop, the bare
	// loop at its own maximum (as many requests in flight as the daemon's
	// concurrency, each the moment the last ended) for as long, so the
	// prober's sustained rate reads as a ratio of the bare client's on
	// the same machine in the same run. Replaces the concurrent bare loop.
	Saturate bool
	// Ladder: after the measured time, raise the schedule's rate (the
	// same flows, a shorter interval, 1.25x a rung, by reload) until the
	// prober stops keeping up, then ask for every flow every second: the
	// prober's own maximum sustained rate and what overload does to it.
	// Implies Saturate, for the bare client's maximum beside it.
	Ladder     bool
	Rung       time.Duration // measured time of a ladder rung
	CPUProfile string
	MemProfile string
	Progress   io.Writer // one line per segment while running (nil: quiet)
}

func (o *options) defaults() {
	if o.Flows <= 0 {
		o.Flows = 10000
	}
	if o.Steps <= 0 {
		o.Steps = 4
	}
	if o.Every <= 0 {
		o.Every = time.Minute
	}
	if o.Duration <= 0 {
		o.Duration = 2 * time.Minute
	}
	if o.Warmup <= 0 {
		// Every flow first runs at its phase (before issue 20: once at
		// start, spread over up to 10s, then at its phase): after one
		// interval and the spread, the schedule is in its steady state.
		o.Warmup = o.Every + min(time.Duration(o.Flows)*5*time.Millisecond, 10*time.Second) + 2*time.Second
	}
	if o.Segments <= 0 {
		o.Segments = 4
	}
	if o.Target == "" {
		o.Target = "child"
	}
	if o.Ladder {
		o.Saturate = true
	}
	if o.Rung <= 0 {
		o.Rung = 10 * time.Second
	}
}

// segment is what the recorder saw in one part of the run.
type segment struct {
	lateness hist // scheduled runs: actual start - planned start
	stepDur  hist // executed steps: the duration the prober reported
	runs     atomic.Int64
	failed   atomic.Int64 // final runs that failed
	retried  atomic.Int64
	steps    atomic.Int64 // executed steps (retries included)
	late     atomic.Int64 // scheduled runs that started more than 10ms late
}

// recorder is an observer of every run the daemon completes.
type recorder struct {
	cur atomic.Pointer[segment]
	// Requests (executed steps) by the second they started in, from the
	// start of the schedule: the start-up rate against the steady one.
	origin time.Time
	perSec []atomic.Int64
}

func (r *recorder) Observe(run *result.Run) {
	for i := range run.Steps {
		if st := &run.Steps[i]; st.Status != result.Skipped {
			if k := int(st.Start.Sub(r.origin) / time.Second); st.Start.After(r.origin) && k < len(r.perSec) {
				r.perSec[k].Add(1)
			}
		}
	}
	s := r.cur.Load()
	if run.Retry == 0 {
		l := run.Start.Sub(run.Planned)
		s.lateness.add(l)
		if l > 10*time.Millisecond {
			s.late.Add(1)
		}
	}
	if run.Retried {
		s.retried.Add(1)
	} else {
		s.runs.Add(1)
		if !run.OK() {
			s.failed.Add(1)
		}
	}
	for i := range run.Steps {
		st := &run.Steps[i]
		if st.Status == result.Skipped {
			continue
		}
		s.steps.Add(1)
		s.stepDur.add(st.Duration)
	}
}

// sample is the process at one instant.
type sample struct {
	at       time.Time
	cpu      time.Duration // user + system, this process
	rss, hwm int64         // bytes
	// RSS by kind: anonymous (the Go heap, stacks, runtime) and file
	// pages mapped (the binary, the run history's mmap), bytes.
	rssAnon, rssFile int64
	liveHeap         uint64  // heap live after the last GC
	gcCPU            float64 // CPU seconds the GC used (estimate, runtime/metrics)
	allocated        uint64  // bytes allocated on the heap, cumulative
	goroutines       int
	// What the Go runtime holds of the RSS: heap spans with objects,
	// free heap not yet returned to the OS, goroutine stacks, and the
	// rest (runtime metadata, buffers), bytes.
	heapInUse, heapFree, stacks, runtimeOther uint64
}

func takeSample() sample {
	s := sample{at: time.Now(), cpu: processCPU(), goroutines: runtime.NumGoroutine()}
	s.rss, s.hwm, s.rssAnon, s.rssFile = procStatus()
	ms := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/memory/classes/os-stacks:bytes"}, {Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(ms)
	u := func(i int) uint64 {
		if ms[i].Value.Kind() == metrics.KindUint64 {
			return ms[i].Value.Uint64()
		}
		return 0
	}
	s.heapInUse = u(3) + u(4)
	s.heapFree = u(5)
	s.stacks = u(6) + u(7)
	if mapped := u(8) - u(9); mapped > s.heapInUse+s.heapFree+s.stacks {
		s.runtimeOther = mapped - s.heapInUse - s.heapFree - s.stacks
	}
	if ms[0].Value.Kind() == metrics.KindUint64 {
		s.liveHeap = ms[0].Value.Uint64()
	}
	if ms[1].Value.Kind() == metrics.KindFloat64 {
		s.gcCPU = ms[1].Value.Float64()
	}
	if ms[2].Value.Kind() == metrics.KindUint64 {
		s.allocated = ms[2].Value.Uint64()
	}
	return s
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatus reads VmRSS, VmHWM (peak RSS), RssAnon and RssFile of this
// process.
func procStatus() (rss, hwm, anon, file int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		case "RssAnon":
			anon = n << 10
		case "RssFile":
			file = n << 10
		}
	}
	return rss, hwm, anon, file
}

// segResult is one measured part of the run.
type segResult struct {
	from, to         sample
	runs, steps      int64
	failed, retried  int64
	late             int64
	latP50, latP99   time.Duration
	latMax           time.Duration
	stepP50, stepP99 time.Duration
}

// report is everything a load run measured.
type report struct {
	opts        options
	loadTime    time.Duration // daemon.New: configuration load and set-up
	reloadTime  time.Duration // Reload, when asked
	base        sample        // before the configuration was loaded
	configured  sample        // after the daemon was built, before any run
	warm        sample        // end of the warm-up
	end         sample
	segs        []segResult
	total       *segment // the whole measured time
	server      *hist    // target-side durations over the measured time (nil if unknown)
	skipped     float64  // prober_runs_skipped_total at the end
	evalCount   uint64   // rule evaluation cycles during the measured time
	evalSum     float64  // seconds spent in them
	evalBuckets []*dto.Bucket
	scrapes     polls          // of /metrics
	series      map[string]int // per flow, as the calculator counts them
	views       polls          // of the status page
	perSec      []int64        // requests started in each second from the start of the schedule
	log         *countingWriter
	readyCode   int         // /readyz at the end of the measured time
	readyBody   string      // and what it said
	bare        *bareResult // the bare reference (nil without -bare)
	bareMax     *bareResult // the bare loop at its maximum (nil without -saturate)
	bareWorkers int
	// Runs skipped (the scheduler's count) at the start and the end of
	// the measured time.
	skippedWarm, skippedEnd int64
	ladder                  []rung // with -ladder: the measured time, then each rung
}

// run performs one load run.
func run(ctx context.Context, o options) (*report, error) {
	o.defaults()
	rep := &report{opts: o}
	base, stopTarget, err := startTarget(o)
	if err != nil {
		return nil, err
	}
	defer stopTarget()

	dir, err := os.MkdirTemp("", "prober-load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := writeConfig(dir, o, base); err != nil {
		return nil, err
	}

	logw := io.Discard
	if o.LogFile != "" {
		f, err := os.Create(o.LogFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		bw := bufio.NewWriterSize(f, 64<<10)
		defer bw.Flush() // after the daemon stopped (deferred later, runs first)
		logw = bw        // slog's handler serialises its writes
	}
	rep.log = &countingWriter{w: logw}
	logw = rep.log
	// Two intervals of start-up and steady rate, a few minutes at most.
	rec := &recorder{perSec: make([]atomic.Int64, min(2*int(o.Every/time.Second)+2, 1200))}
	rec.cur.Store(&segment{})
	if o.MemProfile != "" {
		runtime.MemProfileRate = 4096 // finer than the default 512 KiB, to see per-flow costs
	}

	runtime.GC()
	rep.base = takeSample()
	t0 := time.Now()
	d, err := daemon.New(daemon.Options{
		ConfigFS: os.DirFS(dir), ConfigPath: "probes.yaml", Version: "load",
		Logger:        slog.New(slog.NewJSONHandler(logw, nil)),
		Observers:     []result.Observer{rec},
		StateDir:      filepath.Join(dir, "state"),
		ConsoleWriter: io.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	rep.series = probermetrics.SeriesOf(daemon.Shapes(d.Config()))
	rep.loadTime = time.Since(t0)
	runtime.GC()
	rep.configured = takeSample()
	if o.MemProfile != "" {
		if err := writeHeapProfile(o.MemProfile + ".configured"); err != nil {
			return nil, err
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	dctx, stopDaemon := context.WithCancel(context.Background())
	rec.origin = time.Now()
	served := make(chan error, 1)
	go func() { served <- d.Serve(dctx, ln) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stopDaemon()
		return <-served
	}
	defer stop()

	// Scrapes, as a Prometheus would (OpenMetrics, gzip), and views of
	// the status page, as someone paged would.
	daemonURL := "http://" + ln.Addr().String()
	scrapes := startPoller(ctx, o.Scrape, daemonURL+"/metrics", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
	defer scrapes.stop()
	views := startPoller(ctx, o.View, daemonURL+"/", "text/html")
	defer views.stop()

	wait := func(d time.Duration) error {
		if d <= 0 {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	progress("load: %d flows of %d steps every %s, configured in %s; warming up for %s",
		o.Flows, o.Steps, o.Every, rep.loadTime.Round(time.Millisecond), o.Warmup)
	if err := wait(o.Warmup); err != nil {
		return nil, err
	}

	// The measured time, in segments.
	evalBefore := evalHistogram(d)
	// That gather of every series is the harness's, not the load's: give
	// its garbage back and restart the peak-RSS count, so that what is
	// reported is the daemon's (run with -scrape to include scrapes).
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // 5: reset VmHWM
	targetReset(ctx, base)
	scrapes.reset()
	views.reset()
	rep.total = &segment{}
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	var bare *bareChild
	if o.Bare && !o.Saturate {
		if bare, err = startBare(base+"/api/login", rep.expectedStepsPerSec(), o.Duration); err != nil {
			return nil, err
		}
		defer bare.kill()
	}
	rep.warm = takeSample()
	rep.skippedWarm = skippedRuns(d)
	prev := rep.warm
	segLen := o.Duration / time.Duration(o.Segments)
	all := &multiSegment{}
	for i := 0; i < o.Segments; i++ {
		seg := &segment{}
		all.add(seg)
		rec.cur.Store(seg)
		if o.Reload && i == o.Segments/2 {
			t := time.Now()
			if err := d.Reload(); err != nil {
				return nil, fmt.Errorf("reload: %w", err)
			}
			rep.reloadTime = time.Since(t)
		}
		if err := wait(time.Until(rep.warm.at.Add(time.Duration(i+1) * segLen))); err != nil {
			return nil, err
		}
		now := takeSample()
		rep.segs = append(rep.segs, segResult{from: prev, to: now,
			runs: seg.runs.Load(), steps: seg.steps.Load(), failed: seg.failed.Load(), retried: seg.retried.Load(),
			late: seg.late.Load(), latP50: seg.lateness.quantile(.5), latP99: seg.lateness.quantile(.99),
			latMax: seg.lateness.quantile(1), stepP50: seg.stepDur.quantile(.5), stepP99: seg.stepDur.quantile(.99)})
		r := rep.segs[len(rep.segs)-1]
		progress("  %s", r.line())
		prev = now
	}
	rec.cur.Store(&segment{}) // whatever finishes during shutdown
	if o.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	rep.end = prev
	rep.skippedEnd = skippedRuns(d)
	rep.total = all.merge()
	if bare != nil {
		if rep.bare, err = bare.wait(); err != nil {
			return nil, err
		}
	}
	rep.server = targetStats(ctx, base)
	rep.readyCode, rep.readyBody = getText(ctx, daemonURL+"/readyz")
	for i := range rec.perSec {
		rep.perSec = append(rep.perSec, rec.perSec[i].Load())
	}
	rep.scrapes, rep.views = scrapes.stop(), views.stop()
	for _, p := range []struct {
		what string
		polls
	}{{"/metrics scrapes", rep.scrapes}, {"status page views", rep.views}} {
		if p.failed > 0 {
			return nil, fmt.Errorf("%d of %d %s failed, the last: %s", p.failed, p.failed+p.n, p.what, p.last)
		}
	}

	// What only the daemon's metrics know; gathered once, after the
	// measured time (a gather of 10,000 flows' series is not free).
	fams, err := d.Registry().Gather()
	if err != nil {
		return nil, err
	}
	for _, mf := range fams {
		if mf.GetName() == "prober_runs_skipped_total" {
			for _, m := range mf.GetMetric() {
				rep.skipped += m.GetCounter().GetValue()
			}
		}
	}
	if after := evalHistogram(d); after != nil {
		rep.evalCount = after.GetSampleCount()
		rep.evalSum = after.GetSampleSum()
		var prevCounts map[float64]uint64
		if evalBefore != nil {
			rep.evalCount -= evalBefore.GetSampleCount()
			rep.evalSum -= evalBefore.GetSampleSum()
			prevCounts = map[float64]uint64{}
			for _, b := range evalBefore.GetBucket() {
				prevCounts[b.GetUpperBound()] = b.GetCumulativeCount()
			}
		}
		for _, b := range after.GetBucket() {
			c := b.GetCumulativeCount() - prevCounts[b.GetUpperBound()]
			rep.evalBuckets = append(rep.evalBuckets, &dto.Bucket{UpperBound: b.UpperBound, CumulativeCount: &c})
		}
	}
	if o.MemProfile != "" {
		if err := writeHeapProfile(o.MemProfile); err != nil {
			return nil, err
		}
	}
	if o.Ladder {
		first := rung{every: o.Every, asked: rep.expectedStepsPerSec(), steps: rep.steps(), skipped: rep.skippedEnd - rep.skippedWarm,
			from: rep.warm, to: rep.end, latP99: rep.total.lateness.quantile(.99)}
		if rep.ladder, err = climb(ctx, d, dir, base, o, rec, first, wait, progress); err != nil {
			return nil, err
		}
	}
	if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	if o.Saturate {
		rep.bareWorkers = o.Concurrency
		if rep.bareWorkers <= 0 {
			rep.bareWorkers = defaultConcurrency
		}
		progress("bare loop at its maximum, %d in flight, %s", rep.bareWorkers, o.Duration)
		c, err := startBareMax(base+"/api/login", rep.bareWorkers, o.Duration)
		if err != nil {
			return nil, err
		}
		defer c.kill()
		if rep.bareMax, err = c.wait(); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// defaultConcurrency is the daemon's default (config: concurrency).
const defaultConcurrency = 16

func writeHeapProfile(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}

// evalHistogram reads prober_rule_evaluation_seconds (nil without rules).
func evalHistogram(d *daemon.Daemon) *dto.Histogram {
	fams, err := d.Registry().Gather()
	if err != nil {
		return nil
	}
	for _, mf := range fams {
		if mf.GetName() == "prober_rule_evaluation_seconds" && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	return nil
}

// multiSegment merges segments' histograms for the whole measured time.
type multiSegment struct{ segs []*segment }

func (m *multiSegment) add(s *segment) { m.segs = append(m.segs, s) }

func (m *multiSegment) merge() *segment {
	out := &segment{}
	for _, s := range m.segs {
		for i := range s.lateness.counts {
			out.lateness.counts[i].Add(s.lateness.counts[i].Load())
			out.stepDur.counts[i].Add(s.stepDur.counts[i].Load())
		}
		for _, p := range [][2]*hist{{&out.lateness, &s.lateness}, {&out.stepDur, &s.stepDur}} {
			p[0].n.Add(p[1].n.Load())
			p[0].sum.Add(p[1].sum.Load())
			p[0].max.Store(max(p[0].max.Load(), p[1].max.Load()))
		}
		out.runs.Add(s.runs.Load())
		out.failed.Add(s.failed.Load())
		out.retried.Add(s.retried.Load())
		out.steps.Add(s.steps.Load())
		out.late.Add(s.late.Load())
	}
	return out
}

// startTarget starts the target and returns its base URL.
func startTarget(o options) (string, func(), error) {
	switch {
	case o.Target == "child":
		c, err := startChildTarget(o.TargetDelay)
		if err != nil {
			return "", nil, err
		}
		return c.url, c.stop, nil
	case o.Target == "inproc":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		t := &target{delay: o.TargetDelay}
		t.server.Store(&hist{})
		srv := &http.Server{Handler: t, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
	case strings.HasPrefix(o.Target, "http://") || strings.HasPrefix(o.Target, "https://"):
		return strings.TrimSuffix(o.Target, "/"), func() {}, nil
	}
	return "", nil, fmt.Errorf("-target %q: want child, inproc or a URL", o.Target)
}

// writeConfig writes probes.yaml and one file per flow into dir.
func writeConfig(dir string, o options, base string) error {
	if err := os.MkdirAll(filepath.Join(dir, "flows"), 0o755); err != nil {
		return err
	}
	if err := writeProbes(dir, o, base); err != nil {
		return err
	}
	for i := 0; i < o.Flows; i++ {
		if err := os.WriteFile(filepath.Join(dir, "flows", fmt.Sprintf("load-%05d.yaml", i)), flowYAML(i, o.Steps), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeProbes writes probes.yaml into dir: every flow every o.Every.
func writeProbes(dir string, o options, base string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "region: load\nlisten: 127.0.0.1:0\n")
	if o.Concurrency > 0 {
		fmt.Fprintf(&b, "concurrency: %d\n", o.Concurrency)
	}
	if o.Keep > 0 {
		fmt.Fprintf(&b, "store: {keep: %d}\n", o.Keep)
	}
	if o.Metrics != "" {
		fmt.Fprintf(&b, "metrics: %s\n", o.Metrics)
	}
	fmt.Fprintf(&b, "defaults: {every: %s, timeout: 30s, step_timeout: 10s, headers: {Accept: application/json}}\n", o.Every)
	fmt.Fprintf(&b, "vars: {target: %q}\n", base)
	b.WriteString("flows: [flows/*.yaml]\n")
	if o.Rules {
		b.WriteString(`notifiers:
  console: {type: console}
alerting:
  evaluation_interval: 5s
  routes: {critical: [console], warning: [console]}
rules:
  - name: any_flow_failing
    flow_failing: {}
    for: 90s
    severity: critical
  - name: gateway_success
    dependency_success: {dependency: bank-gateway, below: 95%, window: 5m, min_calls: 3}
    for: 1m
    severity: critical
`)
	}
	return os.WriteFile(filepath.Join(dir, "probes.yaml"), []byte(b.String()), 0o644)
}

// flowYAML is a checkout-like flow: log in (capture a token), fetch an
// order with it (capture its id), pay through the gateway (a dependency),
// then more reads; three expectations on every step.
func flowYAML(i, steps int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "name: load-%05d\nlabels: {team: load}\nsteps:\n", i)
	for j := 0; j < steps; j++ {
		const expect = `    expect: [status == 200, json.status == "success", duration < 2s]` + "\n"
		switch j {
		case 0:
			fmt.Fprintf(&b, "  - name: login\n    request: {method: POST, url: \"{{target}}/api/login\", json: {user: synthetic-%d, password: not-a-secret}}\n%s    capture: {token: json.token}\n", i, expect)
		case 1:
			fmt.Fprintf(&b, "  - name: order\n    request: {method: POST, url: \"{{target}}/api/orders\", headers: {Authorization: \"Bearer {{token}}\"}, json: {sku: SENTINEL-SKU-1}}\n%s    capture: {order_id: json.order.id}\n", expect)
		case 2:
			fmt.Fprintf(&b, "  - name: pay\n    dependency: bank-gateway\n    request: {method: POST, url: \"{{target}}/api/orders/{{order_id}}/pay\", headers: {Authorization: \"Bearer {{token}}\", Idempotency-Key: \"{{idempotency_key}}\"}, json: {card: \"4242424242424242\", mode: sandbox}}\n%s", expect)
		default:
			fmt.Fprintf(&b, "  - name: confirm%d\n    request: {url: \"{{target}}/api/orders/{{order_id}}\", headers: {Authorization: \"Bearer {{token}}\"}}\n%s", j, expect)
		}
	}
	return []byte(b.String())
}

// polls is what a poller saw: how many answers, their wall time, and the
// size of the last one.
type polls struct {
	n      int
	wall   time.Duration
	bytes  int64
	failed int    // answers that were not 200, or no answer
	last   string // the last failure
}

// poller GETs one URL at an interval until stopped.
type poller struct {
	n, nanos, bytes atomic.Int64
	failed          atomic.Int64
	last            atomic.Value // string: the last failure
	cancel          context.CancelFunc
	done            chan struct{}
	stopped         *polls
}

func startPoller(ctx context.Context, every time.Duration, url, accept string) *poller {
	ctx, cancel := context.WithCancel(ctx)
	p := &poller{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if every <= 0 {
			return
		}
		client := &http.Client{Timeout: time.Minute}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			t0 := time.Now()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			req.Header.Set("Accept", accept)
			resp, err := client.Do(req) // the transport asks for gzip and decodes it
			if err != nil {
				if ctx.Err() == nil {
					p.failed.Add(1)
					p.last.Store(err.Error())
				}
				continue
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || err != nil {
				p.failed.Add(1)
				p.last.Store(fmt.Sprintf("%s: status %d (body read: %v)", url, resp.StatusCode, err))
				continue
			}
			p.n.Add(1)
			p.nanos.Add(int64(time.Since(t0)))
			p.bytes.Store(n)
		}
	}()
	return p
}

// reset starts the counts again (at the start of the measured time).
func (p *poller) reset() {
	p.n.Store(0)
	p.nanos.Store(0)
	p.failed.Store(0)
}

// stop ends the polling and returns what it saw; later calls return the same.
func (p *poller) stop() polls {
	if p.stopped == nil {
		p.stopped = &polls{n: int(p.n.Load()), wall: time.Duration(p.nanos.Load()), bytes: p.bytes.Load(), failed: int(p.failed.Load())}
		if p.stopped.failed > 0 {
			p.stopped.last, _ = p.last.Load().(string)
		}
		p.cancel()
		<-p.done
	}
	return *p.stopped
}

// countingWriter counts the daemon's log: lines, bytes, and the lines about
// skipped runs (run_skipped, one a skip, before issue 20; runs_skipped, a
// summary at most once a minute, after). slog writes a line a Write.
type countingWriter struct {
	w                   io.Writer
	lines, bytes, skips atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.lines.Add(1)
	c.bytes.Add(int64(len(p)))
	if bytes.Contains(p, []byte(`"msg":"run_skipped"`)) || bytes.Contains(p, []byte(`"msg":"runs_skipped"`)) {
		c.skips.Add(1)
	}
	return c.w.Write(p)
}

// getText GETs url and returns its status and (the start of) its body.
func getText(ctx context.Context, url string) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	return resp.StatusCode, strings.TrimSpace(string(b))
}
