// Command load is prober's load harness: it generates N flows of K steps,
// runs the real daemon (scheduler, runner, metrics, log, store, rules) in
// this process against a minimal HTTP target in a child process, for a
// bounded time, and prints what it measured as a markdown table: CPU per
// step, cores used, RSS, scheduler start jitter, steps per second, step
// durations against what the target measured, goroutines and heap over
// time, the rule evaluation time per cycle, and the CPU per request of a
// bare net/http loop (a new connection each) against the same target at the
// same rate in the same time, as a ratio.
//
//	go run ./bench/load                                  # 10,000 flows × 4 steps every 1m, 2m measured
//	go run ./bench/load -flows 1000 -every 6s -duration 10m    # the same steps/s, time compressed 10x: leak check
//	go run ./bench/load -cpuprofile cpu.out -memprofile mem.out
//	go run ./bench/load -q -rules=false -ladder -flows 12000 -steps 1 -every 4s -warmup 10s -duration 10s -segments 1   # the maximum sustained rate
//	go run ./bench/load -serve 127.0.0.1:8081             # only the target
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"strings"
	"time"
)

func main() {
	// The child process serving as the target.
	if addr := os.Getenv(targetEnv); addr != "" {
		delay, _ := time.ParseDuration(os.Getenv("PROBER_LOAD_TARGET_DELAY"))
		if err := serveTarget(addr, delay); err != nil {
			fmt.Fprintln(os.Stderr, "target:", err)
			os.Exit(1)
		}
		return
	}
	// The child process running the bare reference loop.
	if spec := os.Getenv(bareEnv); spec != "" {
		if err := runBare(spec); err != nil {
			fmt.Fprintln(os.Stderr, "bare:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	serve := flag.String("serve", "", "only serve the target on this address (for -target URL from another process)")
	flag.IntVar(&o.Flows, "flows", 10000, "flows to configure")
	flag.IntVar(&o.Steps, "steps", 4, "steps per flow")
	flag.DurationVar(&o.Every, "every", time.Minute, "every flow's interval (compress time with a shorter one, e.g. -flows 1000 -every 6s)")
	flag.DurationVar(&o.Duration, "duration", 2*time.Minute, "measured time, after the warm-up")
	flag.DurationVar(&o.Warmup, "warmup", 0, "warm-up before measuring (default: one interval plus the start-up spread)")
	flag.IntVar(&o.Segments, "segments", 4, "report the measured time in this many parts (growth shows between them)")
	flag.StringVar(&o.Target, "target", "child", "the system under test: child (this binary in a child process), inproc, or a base URL")
	flag.DurationVar(&o.TargetDelay, "target-delay", 0, "the target's processing time per request")
	flag.IntVar(&o.Concurrency, "concurrency", 0, "the daemon's concurrency (default: the daemon's default)")
	flag.IntVar(&o.Keep, "keep", 0, "store.keep (default: the daemon's default)")
	flag.DurationVar(&o.Scrape, "scrape", 0, "scrape /metrics this often, as Prometheus would (0: never)")
	flag.DurationVar(&o.View, "view", 0, "open the status page (/) this often, as someone paged would (0: never)")
	flag.BoolVar(&o.Rules, "rules", true, "configure a flow_failing rule over every flow and a dependency_success rule")
	flag.StringVar(&o.LogFile, "log", "", "write the daemon's JSON log here (default: formatted and discarded)")
	flag.BoolVar(&o.Reload, "reload", false, "reload the configuration half-way through the measured time")
	flag.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured time")
	flag.StringVar(&o.MemProfile, "memprofile", "", "write a heap profile at the end (and FILE.configured before the first run)")
	flag.StringVar(&o.Metrics, "metrics", "", "the metric level: default or detailed (every flow's series as before the levels)")
	flag.BoolVar(&o.Bare, "bare", true, "run the bare reference (net/http, a new connection per request, same target and rate) in a child process during the measured time")
	flag.BoolVar(&o.Saturate, "saturate", false, "after the measured time, the bare loop at its maximum (the daemon's concurrency in flight) for as long: the prober's sustained rate against the bare client's (replaces -bare's concurrent loop)")
	flag.BoolVar(&o.Ladder, "ladder", false, "after the measured time, raise the schedule's rate (the same flows, the interval 1.25x shorter a rung, by reload) until the prober stops keeping up, then ask for every flow every 1s: the prober's maximum sustained rate and what overload does to it, beside the bare client's maximum (implies -saturate)")
	flag.DurationVar(&o.Rung, "rung", 10*time.Second, "measured time of a -ladder rung (after its settling time: two intervals, 3s at least)")
	writeCfg := flag.String("write-config", "", "only write the generated configuration (probes.yaml and flows/) into this directory, for -target URL, and exit: for running the real binary on it (bench/rss.sh)")
	quiet := flag.Bool("q", false, "no progress lines on stderr")
	flag.Parse()

	if *serve != "" {
		delay := o.TargetDelay
		if err := serveTarget(*serve, delay); err != nil {
			fmt.Fprintln(os.Stderr, "target:", err)
			os.Exit(1)
		}
		return
	}
	if *writeCfg != "" {
		if !strings.HasPrefix(o.Target, "http://") && !strings.HasPrefix(o.Target, "https://") {
			fmt.Fprintln(os.Stderr, "load: -write-config needs -target URL")
			os.Exit(2)
		}
		if err := writeConfig(*writeCfg, o, strings.TrimSuffix(o.Target, "/")); err != nil {
			fmt.Fprintln(os.Stderr, "load: writing the configuration:", err)
			os.Exit(1)
		}
		return
	}
	if !*quiet {
		o.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	rep.write(os.Stdout)
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// gcSettings says how the collector trades memory for CPU in this run
// (GOGC and GOMEMLIMIT from the environment): RSS means little without it.
func gcSettings() string {
	ms := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(ms)
	limit := "none"
	if l := ms[1].Value.Uint64(); l != math.MaxInt64 {
		limit = fmt.Sprintf("%.0f MiB", float64(l)/(1<<20))
	}
	return fmt.Sprintf("GOGC %d, memory limit %s", ms[0].Value.Uint64(), limit)
}
