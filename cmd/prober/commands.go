package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/daemon"
	"github.com/prober-dev/prober/internal/metrics"
	"github.com/prober-dev/prober/internal/report"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
	"github.com/prober-dev/prober/internal/schedule"
	"github.com/prober-dev/prober/internal/secret"
	"github.com/prober-dev/prober/internal/web"
)

// probeFailed makes once exit 1.
type probeFailed struct{ n int }

func (p probeFailed) Error() string { return fmt.Sprintf("%d flow(s) failed", p.n) }

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("run", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var cf configFlags
	cf.register(fl)
	listen := fl.String("listen", "", "HTTP listen address (default the config's listen, 127.0.0.1:8315)")
	logLevel := fl.String("log-level", "info", "debug, info, warn or error")
	logSearch := fl.String("log-search-url", "", "URL linking trace ids on the status page; {trace_id} is replaced")
	grace := fl.Duration("shutdown-grace", 30*time.Second, "how long SIGTERM waits for runs in flight and undelivered pages")
	stateDir := fl.String("state-dir", "", "directory of the durable alert state and outbox (default the config's alerting.state_dir)")
	externalURL := fl.String("external-url", "", "the status page's address as pages link it (default http://<listen>)")
	freshState := fl.Bool("fresh-state", false, "if the alert state file is corrupt, rename it aside (prober.db.corrupt-<time>) and start with empty state; a sound file is used as is")
	roleFlag := fl.String("role", "all", "all (probe and evaluate), probe (run flows, export metrics, page nothing) or evaluate (no flows; rules over prometheus:)")
	webConfig := fl.String("web.config.file", "", "Prometheus web configuration file: TLS and basic auth for every endpoint (default plain HTTP, no auth)")
	shardFlag := fl.String("shard", "", "`i/n`: run only this prober's part of the flows when n probers share them (rendezvous hashing of the flow name); "+
		"auto/n takes i from the hostname's ordinal (prober-2 is 2, as in a StatefulSet); needs --role probe")
	memRatio := memoryLimitFlag(fl)
	if err := parse(fl, args); err != nil {
		return err
	}
	var shard schedule.Shard
	if *shardFlag != "" {
		host, _ := os.Hostname()
		var err error
		if shard, err = schedule.ParseShard(*shardFlag, host); err != nil {
			return usageError{fmt.Errorf("--shard: %w", err)}
		}
	}
	log, err := newLogger(stdout, *logLevel)
	if err != nil {
		return err
	}
	applyMemoryLimit(log, memRatio)
	// Checked before anything starts: a bad file is bad configuration (exit
	// 2), not an HTTP server that fails after the flows began.
	if _, err := web.LoadWebConfig(*webConfig); err != nil {
		return usageError{err}
	}
	role, err := daemon.ParseRole(*roleFlag)
	if err != nil {
		return usageError{err}
	}
	if err := daemon.CheckShard(shard, role); err != nil {
		return usageError{err}
	}
	fsys, path, err := cf.source(false, stderr)
	if err != nil {
		return err
	}
	d, err := daemon.New(daemon.Options{
		ConfigFS: fsys, ConfigPath: path, Load: cf.loadOptions(), Listen: *listen,
		Version: version, Revision: commit, Logger: log, ShutdownGrace: *grace, LogSearchURL: *logSearch,
		StateDir: *stateDir, FreshState: *freshState, StatusURL: *externalURL, Role: role, WebConfigFile: *webConfig, Shard: shard,
	})
	if err != nil {
		return err
	}
	defer routeStdLog(d.Logger())()
	ctx, stop := signalContext(func() { _ = d.Reload() })
	defer stop()
	return d.Run(ctx)
}

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("validate", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var cf configFlags
	cf.register(fl)
	secrets := fl.Bool("secrets", false, "also resolve every secret (needs the environment and files the daemon has)")
	webConfig := fl.String("web.config.file", "", "also check this Prometheus web configuration file (TLS, basic auth)")
	scrape := fl.Duration("scrape-interval", 15*time.Second, "Prometheus' scrape interval, for the samples a month the series cost")
	if err := parse(fl, args); err != nil {
		return err
	}
	if *scrape <= 0 {
		return usageError{fmt.Errorf("--scrape-interval %s: must be positive", *scrape)}
	}
	wc, err := web.LoadWebConfig(*webConfig)
	if err != nil {
		return usageError{err}
	}
	fsys, path, err := cf.source(false, stderr)
	if err != nil {
		return err
	}
	o := cf.loadOptions()
	o.SkipSecrets = !*secrets
	cfg, err := config.Load(fsys, path, o)
	if err != nil {
		return err
	}
	if *secrets {
		if errs := secretShapes(cfg); len(errs) > 0 {
			return errs
		}
	}
	steps := 0
	for _, f := range cfg.Flows {
		steps += len(f.Steps) + len(f.Cleanup)
	}
	note := "secrets declared, not read (use --secrets to resolve them)"
	if *secrets {
		note = "secrets resolved"
	}
	fmt.Fprintf(stdout, "%s: ok: %d flow(s), %d step(s); %s\n", path, len(cfg.Flows), steps, note)
	for _, f := range cfg.Flows {
		fmt.Fprintf(stdout, "  %-20s %-28s %d step(s)  %s\n", f.Name, daemon.DescribeSchedule(f.Schedule),
			len(f.Steps)+len(f.Cleanup), f.File)
	}
	writeSeries(stdout, cfg, *scrape)
	if *webConfig != "" {
		scheme := "plain HTTP"
		if wc.TLS {
			scheme = "TLS"
		}
		fmt.Fprintf(stdout, "%s: ok: %s, %d basic auth user(s)\n", *webConfig, scheme, len(wc.Users))
	}
	a := cfg.Alerting
	if len(a.Rules) > 0 {
		fmt.Fprintf(stdout, "%d rule(s):\n", len(a.Rules))
		for _, r := range a.Rules {
			fmt.Fprintf(stdout, "  %-20s %-20s %-9s for %s\n", r.Name, r.Kind, r.Severity, r.For)
		}
	}
	if a.Heartbeat != nil && a.Heartbeat.URL != "" {
		fmt.Fprintf(stdout, "heartbeat: every %s, withheld while a page waits over %s or failed\n", a.Heartbeat.Interval, a.Heartbeat.MaxPageDelay)
	} else if *secrets {
		fmt.Fprintln(stdout, "heartbeat: off (no heartbeat url): nobody is paged if this prober dies")
	}
	if len(a.Notifiers) > 0 {
		fmt.Fprintf(stdout, "%d notifier(s):\n", len(a.Notifiers))
		for _, n := range a.Notifiers {
			state := "enabled"
			if n.Disabled != "" {
				state = "disabled: " + n.Disabled
			}
			fmt.Fprintf(stdout, "  %-20s %-12s %s\n", n.Name, n.Type, state)
		}
	}
	return nil
}

// flowList is a repeatable --flow.
type flowList []string

func (f *flowList) String() string { return strings.Join(*f, ",") }
func (f *flowList) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*f = append(*f, p)
		}
	}
	return nil
}

func cmdOnce(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("once", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var cf configFlags
	cf.register(fl)
	var flows flowList
	fl.Var(&flows, "flow", "flow to run (repeatable or comma-separated; default all)")
	junit := fl.String("junit", "", "write a JUnit XML report to this file")
	asJSON := fl.Bool("json", false, "print the runs as JSON instead of text")
	verbose := fl.Bool("verbose", false, "print each request and response as curl -v would, redacted, cookie values as fingerprints (on stderr with --json)")
	noRetry := fl.Bool("no-retry", false, "run each flow once: no immediate retry of a failed run (by default a flow's retries: apply, as in the daemon)")
	if err := parse(fl, args); err != nil {
		return err
	}
	fsys, path, err := cf.source(true, stderr)
	if err != nil {
		return err
	}
	lo := cf.loadOptions()
	defer daemon.CloseKinds(lo.StepKinds) // a browser started for the runs stops
	cfg, err := config.Load(fsys, path, lo)
	if err != nil {
		return err
	}
	// Everything once writes passes the redactor as a whole: the runs'
	// text, JSON and JUnit, and the standard library's messages on stderr.
	secrets := func() *secret.Set { return cfg.Secrets }
	defer routeStdLog(slog.New(secret.NewHandler(slog.NewJSONHandler(stderr, nil), secrets)))()
	stdout = secret.Writer(stdout, secrets)
	var selected []*config.Flow
	for _, f := range cfg.Flows {
		if len(flows) == 0 || slices.Contains(flows, f.Name) {
			selected = append(selected, f)
		}
	}
	for _, name := range flows {
		if !slices.ContainsFunc(cfg.Flows, func(f *config.Flow) bool { return f.Name == name }) {
			var names []string
			for _, f := range cfg.Flows {
				names = append(names, f.Name)
			}
			return usageError{fmt.Errorf("no flow %q (configured: %s)", name, strings.Join(names, ", "))}
		}
	}
	ctx, stop := signalContext(nil)
	defer stop()
	// Captured values are shown: what the next step sends is half of why
	// it failed. Redacted like everything else.
	ropts := runner.Options{Version: version, Region: cfg.Region, Secrets: cfg.Secrets, ShowCaptures: true}
	if *verbose {
		ropts.Verbose = onceVerbose(stdout, secret.Writer(stderr, secrets), *asJSON)
	}
	var runs []*result.Run
	failed := 0
	for i, f := range selected {
		rf, err := runner.New(f, ropts)
		if err != nil {
			return err
		}
		r, retried := runRetried(ctx, rf, *noRetry)
		rf.Close()
		runs = append(runs, r)
		if !r.OK() {
			failed++
		}
		if *asJSON {
			continue
		}
		var buf bytes.Buffer // one write: the redactor sees the text whole
		if i > 0 {
			buf.WriteString("\n")
		}
		// The final run's story first (its trace id is the one to search
		// for), then the runs it retried.
		if err := report.Text(&buf, r); err != nil {
			return err
		}
		for n, prev := range retried {
			fmt.Fprintf(&buf, "run %d FAILED in %s  trace_id=%s: %s\n  retried at once (retries: %d, as the daemon does)\n",
				n+1, result.Round(prev.Duration), prev.TraceID, prev.Summary(), f.Retries)
		}
		switch {
		case r.Retry > 0 && r.OK():
			fmt.Fprintf(&buf, "passed on retry %d: the failure was not confirmed, and the daemon would not count it\n", r.Retry)
		case r.Retry > 0:
			fmt.Fprintf(&buf, "failure confirmed by %d immediate %s, as the daemon confirms it\n", r.Retry, plural(r.Retry, "retry", "retries"))
		case !r.OK() && f.Retries > 0 && *noRetry:
			fmt.Fprintf(&buf, "not retried (--no-retry; the daemon retries this flow %d %s)\n", f.Retries, plural(f.Retries, "time", "times"))
		}
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	if *asJSON {
		b, err := json.MarshalIndent(runs, "", "  ")
		if err != nil {
			return err
		}
		if _, err := stdout.Write(append(b, '\n')); err != nil {
			return err
		}
	}
	if *junit != "" {
		if err := writeJUnit(*junit, runs, cfg.Secrets); err != nil {
			return err
		}
	}
	if failed > 0 {
		return probeFailed{failed}
	}
	return nil
}

// runRetried runs a flow as the daemon does: a failed run is retried at
// once, up to the flow's retries, to confirm it (unless noRetry). It
// returns the final run (Retry and RetryOf set on a retry) and the failed
// runs before it, marked Retried.
func runRetried(ctx context.Context, rf *runner.Flow, noRetry bool) (*result.Run, []*result.Run) {
	r := rf.Run(ctx, time.Time{})
	retries := rf.Config().Retries
	if noRetry {
		retries = 0
	}
	var before []*result.Run
	for i := 1; !r.OK() && i <= retries && ctx.Err() == nil; i++ {
		r.Retried = true
		before = append(before, r)
		prev := r
		r = rf.Run(ctx, time.Time{})
		r.Retry, r.RetryOf = i, prev.TraceID
	}
	return r, before
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// onceVerbose shows each exchange as it ends, curl -v style: on stdout
// before the run's story, or on stderr when stdout is JSON. Both writers
// redact; each exchange is one write, so the redactor sees it whole.
func onceVerbose(stdout, stderr io.Writer, asJSON bool) func(string, int, *result.Sent, *result.Response) {
	w := stdout
	if asJSON {
		w = stderr
	}
	return func(step string, attempt int, req *result.Sent, resp *result.Response) {
		var buf bytes.Buffer
		_ = report.Exchange(&buf, step, attempt, req, resp) // a bytes.Buffer never fails
		_, _ = w.Write(buf.Bytes())                         // a failing stdout fails the story's write too
	}
}

func writeJUnit(path string, runs []*result.Run, secrets *secret.Set) error {
	var buf bytes.Buffer
	if err := report.JUnit(&buf, runs); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing JUnit report: %w", err)
	}
	if _, err := io.WriteString(f, secrets.Redact(buf.String())); err != nil {
		f.Close()
		return fmt.Errorf("writing JUnit report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing JUnit report: %w", err)
	}
	return nil
}

// writeSeries is the series calculator: how many series each flow exports
// at its metric level (counted by the metrics package from the shapes the
// daemon announces, as a scrape of it would count them) and the samples a
// month they cost at one scrape every interval.
func writeSeries(w io.Writer, cfg *config.Config, interval time.Duration) {
	counts := metrics.SeriesOf(daemon.Shapes(cfg))
	total := 0
	for _, n := range counts {
		total += n
	}
	const month = 30 * 24 * time.Hour
	samples := float64(total) * float64(month/interval)
	fmt.Fprintf(w, "series: %d from %d flow(s) (metrics: %s); %s samples a month at a %s scrape\n",
		total, len(cfg.Flows), cfg.Metrics, humanCount(samples), interval)
	for _, f := range cfg.Flows {
		fmt.Fprintf(w, "  %-20s %-8s %4d series\n", f.Name, f.Metrics, counts[f.Name])
	}
}

// humanCount is n in thousands, millions or billions.
func humanCount(n float64) string {
	for _, u := range []struct {
		div  float64
		name string
	}{{1e9, " billion"}, {1e6, " million"}, {1e3, " thousand"}} {
		if n >= u.div {
			x, prec := n/u.div, 0
			if x < 10 {
				prec = 1
			}
			return strconv.FormatFloat(x, 'f', prec, 64) + u.name
		}
	}
	return strconv.FormatFloat(n, 'f', 0, 64)
}
