// Package daemon wires the prober together: configuration, scheduler,
// runners, the run observers (metrics, log, store) and the HTTP endpoints;
// it reloads on request and shuts down gracefully.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/golden"
	"github.com/prober-dev/prober/internal/metrics"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runlog"
	"github.com/prober-dev/prober/internal/runner"
	"github.com/prober-dev/prober/internal/schedule"
	"github.com/prober-dev/prober/internal/secret"
	"github.com/prober-dev/prober/internal/store"
	"github.com/prober-dev/prober/internal/tracing"
	"github.com/prober-dev/prober/internal/web"
)

// Options configure a Daemon.
type Options struct {
	ConfigFS   fs.FS  // where probes.yaml and the flows are read from
	ConfigPath string // probes.yaml inside ConfigFS
	Load       config.Options
	Listen     string // overrides the config's listen address when set
	Version    string
	Revision   string
	Logger     *slog.Logger
	// Observers receive every run after metrics, log and store.
	Observers []result.Observer
	// ShutdownGrace bounds how long SIGTERM waits for runs in flight.
	ShutdownGrace time.Duration
	// LogSearchURL links trace ids on the status page ({trace_id} is replaced).
	LogSearchURL string
	// StateDir overrides alerting.state_dir (--state-dir).
	StateDir string
	// FreshState moves a corrupt state file aside (renamed, kept) and
	// starts with empty state (--fresh-state); a sound file is used as is.
	// Without it a corrupt file stops the daemon.
	FreshState bool
	// ConsoleWriter is where console notifiers write (default stderr).
	ConsoleWriter io.Writer
	// StatusURL is the status page's address as pages should link it.
	StatusURL string
	// Role is what this process does: RoleAll (default) probes and
	// evaluates over its own results; RoleProbe runs flows and exports
	// metrics, paging nothing; RoleEvaluate runs no flows and evaluates the
	// rules over the Prometheus where every region's metrics meet.
	Role Role
	// WebConfigFile is the Prometheus web configuration file (TLS, basic
	// auth) for the HTTP endpoints (--web.config.file); empty means plain
	// HTTP without authentication. See web.Serve.
	WebConfigFile string
	// Shard is this prober's part of the flows (--shard i/n): it runs and
	// exports only the flows it owns. Needs RoleProbe.
	Shard schedule.Shard
}

// Role is a daemon's part in a many-region deployment.
type Role string

const (
	RoleAll      Role = "all"
	RoleProbe    Role = "probe"
	RoleEvaluate Role = "evaluate"
)

// ParseRole checks a --role value.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAll, RoleProbe, RoleEvaluate:
		return r, nil
	case "":
		return RoleAll, nil
	}
	return "", fmt.Errorf("unknown role %q: want all, probe or evaluate", s)
}

// Daemon is a running prober.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	series  atomic.Int64 // the flows' series at the last load (setShapes)
	store   *store.Store
	archive *store.Archive // the run history on disk; nil in the evaluate role or with history off
	runlog  *runlog.Logger
	sched   *schedule.Scheduler
	handler http.Handler
	web     web.WebConfig   // what --web.config.file turns on, for the log
	alerts  *alerting       // nil without rules or notifiers
	tracer  *tracing.Tracer // nil unless probes.yaml has a tracing block
	// transports are shared by every flow's runs (runner.Transports).
	transports *runner.Transports

	mu       sync.RWMutex
	cfg      *config.Config
	flows    flowIndex // the configured flows (cfg's), by name
	loaded   atomic.Bool
	secrets  atomic.Pointer[secret.Set] // of the configuration in force, for the logs
	stopping atomic.Bool                // readiness fails during shutdown: load balancers stop sending
	// reloadFailed is why the last reload failed (redacted), nil once one
	// succeeds: the pages' banner and /readyz's note.
	reloadFailed atomic.Pointer[string]
	// uptime reads the regions' uptime from Prometheus for the flow page
	// (evaluate role; nil otherwise), remade with each configuration.
	uptime atomic.Pointer[golden.PromUptime]

	reloadMu sync.Mutex     // one reload at a time; guards the fields below
	jobs     []schedule.Job // until Serve hands them to the scheduler (which keeps its own)
	serving  bool           // Serve has handed the jobs to the scheduler
}

// New loads the configuration and prepares the daemon; it does not start
// running flows until Run or Serve. A bad configuration is an error
// (config.Errors).
func New(o Options) (*Daemon, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 30 * time.Second
	}
	if o.Load.Notifiers == nil {
		o.Load.Notifiers = NotifierKinds()
	}
	if o.Load.StepKinds == nil {
		o.Load.StepKinds = StepKinds()
	}
	cfg, err := config.Load(o.ConfigFS, o.ConfigPath, o.Load)
	if err != nil {
		return nil, err
	}
	webCfg, err := web.LoadWebConfig(o.WebConfigFile)
	if err != nil {
		return nil, err
	}
	if o.StatusURL == "" {
		listen := o.Listen
		if listen == "" {
			listen = cfg.Listen
		}
		o.StatusURL = "http://" + listen
		if webCfg.TLS {
			o.StatusURL = "https://" + listen
		}
	}
	d := &Daemon{opts: o, reg: prometheus.NewRegistry(), transports: runner.NewTransports(), web: webCfg}
	// Every line the daemon logs passes the redactor of the configuration
	// in force, whoever writes it (the runs, the scheduler, notifiers,
	// net/http's server).
	d.secrets.Store(cfg.Secrets)
	d.log = slog.New(secret.NewHandler(o.Logger.Handler(), d.secrets.Load))
	d.opts.Logger = d.log
	o.Logger = d.log
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.metrics = metrics.New(d.reg, cfg.Region, metrics.BuildInfo{Version: o.Version, Revision: o.Revision})
	d.store = store.New(cfg.Store.Keep)
	d.runlog = runlog.New(o.Logger)
	d.sched = schedule.New(schedule.Options{Concurrency: cfg.Concurrency, Logger: o.Logger, Hooks: d.metrics})
	if o.Role == "" {
		o.Role, d.opts.Role = RoleAll, RoleAll
	}
	if err := CheckShard(o.Shard, o.Role); err != nil {
		return nil, err
	}
	if o.Role == RoleEvaluate && cfg.Alerting.Prometheus == nil {
		return nil, config.Errors{{Pos: config.Pos{File: cfg.File}, Msg: "role evaluate reads every region's results from Prometheus: set prometheus: {url: ...}"}}
	}
	if err := d.openArchive(cfg); err != nil {
		return nil, err
	}
	if o.Role != RoleProbe && (len(cfg.Alerting.Rules) > 0 || len(cfg.Alerting.Notifiers) > 0) {
		if d.alerts, err = d.openAlerting(cfg); err != nil {
			d.closeArchive()
			return nil, err
		}
	}
	var history web.History
	if d.archive != nil {
		history = webHistory{d.archive}
	}
	var alertsView web.Alerts
	if d.alerts != nil {
		alertsView = webAlerts{d.alerts}
	}
	var regions web.RegionUptimes
	if o.Role == RoleEvaluate {
		regions = webRegions{d}
	}
	d.registerBehind(cfg)
	d.handler = web.New(web.Options{
		Region:  cfg.Region,
		Version: o.Version,
		Source:  d,
		// Failed browser steps' screenshots, the newest the store keeps.
		Screenshots: d.store.Screenshot,
		// The per-flow families are streamed from the metrics' records; the
		// rest of the registry is gathered. OpenMetrics is negotiated:
		// exemplars (trace ids) are only served in it.
		Metrics:       d.metrics.Handler(d.reg, metrics.HandlerOpts{ErrorLog: slogErrorLog{o.Logger}}),
		Ready:         d.ready,
		ReloadFailure: d.reloadFailure,
		Behind:        d.behindNote,
		Series:        func() int { return int(d.series.Load()) },
		LogSearchURL:  o.LogSearchURL,
		TraceURL:      d.traceURL,
		Alerts:        alertsView,
		History:       history,
		Regions:       regions,
	})
	d.handler = d.withBehind(d.handler)
	if cfg.Tracing != nil {
		if d.tracer, err = newTracer(cfg.Tracing, o.Version, d.log,
			prometheus.WrapRegistererWith(prometheus.Labels{"region": cfg.Region}, d.reg)); err != nil {
			if d.alerts != nil {
				d.alerts.db.Close()
			}
			d.closeArchive()
			return nil, err
		}
	}
	if err := d.apply(cfg); err != nil {
		if d.alerts != nil {
			d.alerts.db.Close()
		}
		d.closeArchive()
		d.stopTracer(context.Background())
		return nil, err
	}
	d.restoreRuns()
	return d, nil
}

// closeArchive closes the run history of a daemon that will not serve.
func (d *Daemon) closeArchive() {
	if d.archive != nil {
		d.archive.Close()
	}
}

// Config returns the active configuration.
func (d *Daemon) Config() *config.Config {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.cfg
}

// Logger is the daemon's logger: every record passes the redactor of the
// configuration in force.
func (d *Daemon) Logger() *slog.Logger { return d.log }

// srvErrorLog is the HTTP server's error log: its lines (which may quote
// what a client sent) become redacted records of the daemon's log.
func (d *Daemon) srvErrorLog() *log.Logger { return secret.StdLog(d.log, "http_server") }

// Handler serves /, /metrics, /healthz, /readyz and the API.
func (d *Daemon) Handler() http.Handler { return d.handler }

// Registry is the daemon's Prometheus registry (for more collectors).
func (d *Daemon) Registry() *prometheus.Registry { return d.reg }

// Store is the daemon's store of recent runs.
func (d *Daemon) Store() *store.Store { return d.store }

// apply makes cfg the active configuration: builds runners, replaces the
// scheduled jobs (once Serve has started the schedule). On error the
// previous configuration stays active. The caller holds reloadMu, or is New.
func (d *Daemon) apply(cfg *config.Config) error {
	switch {
	case d.alerts != nil:
		if err := d.alerts.apply(cfg); err != nil {
			return fmt.Errorf("alerting: %w", err)
		}
	case len(cfg.Alerting.Rules) > 0 && d.opts.Role != RoleProbe:
		d.log.Warn("alerting_added_on_reload", "note", "rules take effect at the next restart")
	}
	var uptime *golden.PromUptime
	if d.opts.Role == RoleEvaluate {
		api, err := golden.NewPromAPI(cfg.Alerting.Prometheus, d.log)
		if err != nil {
			return fmt.Errorf("prometheus: %w", err)
		}
		uptime = golden.NewPromUptime(api, d.log)
	}
	cfg = d.ownFlows(cfg)
	ropts := runner.Options{Version: d.opts.Version, Region: cfg.Region, Secrets: cfg.Secrets, Transports: d.transports}
	if d.tracer != nil {
		ropts.Sampled = d.tracer.Sampled // traceparents say whether the run is exported
	}
	jobs := make([]schedule.Job, 0, len(cfg.Flows))
	names := make([]string, 0, len(cfg.Flows))
	run := &runCtx{d: d, secrets: ropts.Secrets} // one for every flow's job
	for _, f := range cfg.Flows {
		rf, err := runner.New(f, ropts)
		if err != nil {
			return fmt.Errorf("preparing flow %s: %w", f.Name, err)
		}
		jobs = append(jobs, schedule.Job{Name: f.Name, Schedule: f.Schedule, RunOnStart: f.RunOnStart, Run: run.runFunc(rf)})
		names = append(names, f.Name)
	}
	// Series first, so that a new flow's first run finds them.
	if d.opts.Role == RoleEvaluate {
		jobs = nil // an evaluator probes nothing; its flows are what the rules name
	}
	// Shapes and the status page's flow list are made from the
	// configuration when needed rather than kept: at 10,000 flows they
	// would hold 4 MB that is read once, or on a page view.
	d.setShapes(cfg)
	if d.serving {
		if err := d.sched.Set(jobs); err != nil {
			d.setShapes(d.Config()) // back to the configuration kept
			return fmt.Errorf("scheduling: %w", err)
		}
	}
	d.jobs = jobs
	if d.serving {
		d.jobs = nil // the scheduler has them: 64 bytes a flow not kept twice
	}
	flows := newFlowIndex(cfg.Flows)
	d.mu.Lock()
	d.cfg, d.flows = cfg, flows
	d.uptime.Store(uptime)
	d.secrets.Store(cfg.Secrets)
	d.store.Retain(names, cfg.Store.Keep) // under mu: see observe
	if d.archive != nil {
		d.archive.SetFlows(len(names))
	}
	sampled, age := latencySamples(cfg)
	if d.opts.Role == RoleProbe {
		sampled = []string{} // its rules are evaluated elsewhere, over Prometheus
	}
	d.store.SetSampledFlows(sampled)
	d.store.SetSampleRetention(age, store.DefaultSamples)
	d.mu.Unlock()
	d.loaded.Store(true)
	d.metrics.ConfigLoaded(true, time.Now())
	steps := 0
	for _, f := range cfg.Flows {
		steps += len(f.Steps) + len(f.Cleanup)
	}
	d.log.Info("config_loaded", "file", cfg.File, "role", string(d.opts.Role), "region", cfg.Region, "flows", len(cfg.Flows),
		"steps", steps, "secrets", cfg.Secrets.Len())
	return nil
}

// runCtx is what every job of one configuration runs with: the daemon and
// the secrets its runners redact with, kept once rather than in each
// flow's closure.
type runCtx struct {
	d       *Daemon
	secrets *secret.Set
}

// runFunc runs rf, whose runner redacts with rc.secrets.
func (rc *runCtx) runFunc(rf *runner.Flow) func(context.Context, time.Time) {
	return func(ctx context.Context, planned time.Time) {
		d, secrets := rc.d, rc.secrets
		r := rf.Run(ctx, planned)
		// A failed run is retried at once to confirm it: a blip the retry
		// clears never counts as a failure, and a confirmed one says so.
		for i := 1; !r.OK() && i <= rf.Config().Retries && ctx.Err() == nil; i++ {
			r.Retried = true
			d.observeRedacted(r, secrets)
			prev := r
			r = rf.Run(ctx, time.Time{})
			r.Retry, r.RetryOf = i, prev.TraceID
		}
		d.observeRedacted(r, secrets)
		if d.alerts != nil {
			d.alerts.runFinished()
		}
	}
}

// observe hands a run to every observer, in data-flow order. A run that was
// in flight when a reload removed its flow is logged and passed on, but kept
// out of metrics (Metrics drops it) and the store, where it would bring the
// removed flow back.
func (d *Daemon) observe(r *result.Run) { d.observeRedacted(r, nil) }

// observeRedacted is observe for a run whose runner redacted with secrets:
// its log lines are redacted once, by runlog, and the log's handler passes
// them on unless a reload has changed the set since (runlog.ObserveRedacted).
func (d *Daemon) observeRedacted(r *result.Run, secrets *secret.Set) {
	d.metrics.Observe(r)
	d.runlog.ObserveRedacted(r, secrets)
	d.mu.RLock()
	if d.flows.has(r.Flow) {
		d.store.Observe(r)
		if d.archive != nil {
			d.archive.Observe(r)
		}
	}
	d.mu.RUnlock()
	if d.tracer != nil {
		d.tracer.Observe(r) // never waits on the tracing backend
	}
	for _, o := range d.opts.Observers {
		o.Observe(r)
	}
}

// Reload re-reads the configuration. A bad configuration is logged and
// reported and the running one is kept.
func (d *Daemon) Reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, err := config.Load(d.opts.ConfigFS, d.opts.ConfigPath, d.opts.Load)
	if err == nil {
		old := d.Config()
		if cfg.Region != old.Region || cfg.Listen != old.Listen {
			d.log.Warn("config_reload_partial", "reason", "region and listen apply at restart",
				"region", old.Region, "listen", old.Listen)
			cfg.Region, cfg.Listen = old.Region, old.Listen
		}
		if !reflect.DeepEqual(cfg.Tracing, old.Tracing) {
			// The exporter is built once: its queue holds spans in flight.
			d.log.Warn("config_reload_partial", "reason", "tracing applies at restart")
			cfg.Tracing = old.Tracing
		}
		err = d.apply(cfg)
	}
	if err != nil {
		now := time.Now()
		d.metrics.ConfigLoaded(false, now)
		d.log.Error("config_reload_failed", "error", err.Error(), "kept", "previous configuration")
		// The error may quote the file; masked as the log masks it.
		note := "configuration reload failed at " + now.UTC().Format("2006-01-02 15:04:05 UTC") + ": " +
			d.secrets.Load().Redact(err.Error()) + "; running the previous configuration"
		d.reloadFailed.Store(&note)
		return err
	}
	d.reloadFailed.Store(nil)
	return nil
}

// reloadFailure is why the last reload failed, "" if it did not.
func (d *Daemon) reloadFailure() string {
	if p := d.reloadFailed.Load(); p != nil {
		return *p
	}
	return ""
}

// Run serves HTTP and runs flows until ctx is done, then stops scheduling,
// waits (up to ShutdownGrace) for runs in flight and stops serving.
func (d *Daemon) Run(ctx context.Context) error {
	addr := d.opts.Listen
	if addr == "" {
		addr = d.Config().Listen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return d.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (d *Daemon) Serve(ctx context.Context, ln net.Listener) error {
	d.reloadMu.Lock()
	d.serving = true
	err := d.sched.Set(d.jobs)
	if err == nil {
		d.jobs = nil // the scheduler keeps its own
	}
	d.reloadMu.Unlock()
	if err != nil {
		ln.Close()
		return fmt.Errorf("scheduling: %w", err)
	}
	srv := &http.Server{
		Handler:           d.handler,
		ErrorLog:          d.srvErrorLog(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- web.Serve(ln, srv, d.opts.WebConfigFile, d.log) }()
	d.log.Info("listening", "addr", ln.Addr().String(), "tls", d.web.TLS, "basic_auth", len(d.web.Users) > 0)
	archCtx, stopArchive := context.WithCancel(context.Background())
	archDone := make(chan struct{})
	if d.archive != nil {
		go func() { defer close(archDone); d.archiveLoop(archCtx) }()
	} else {
		close(archDone)
	}
	alertCtx, stopAlerts := context.WithCancel(context.Background())
	alertsDone := make(chan struct{})
	if d.alerts != nil {
		go func() { defer close(alertsDone); d.alerts.loop(alertCtx) }()
	} else {
		close(alertsDone)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	d.stopping.Store(true)
	d.log.Info("shutting_down", "grace", d.opts.ShutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), d.opts.ShutdownGrace)
	defer cancel()
	if err := d.sched.Stop(sctx); err != nil {
		d.log.Warn("shutdown_runs_cancelled", "error", err.Error())
	}
	stopArchive() // after the runs in flight: their results are written
	<-archDone
	// The runs are over: what kinds started for them (a browser) stops.
	if err := CloseKinds(d.opts.Load.StepKinds); err != nil {
		d.log.Warn("closing_step_kinds", "error", err.Error())
	}
	stopAlerts()
	<-alertsDone
	if d.alerts != nil {
		d.alerts.shutdown(sctx)
	}
	d.stopTracer(sctx) // after the last run: its spans are queued
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	_ = srv.Shutdown(hctx)
	d.log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP: %w", serveErr)
	}
	return nil
}

// ready is the readiness check: a configuration is loaded and no flow is
// overdue (the scheduler has not stalled).
func (d *Daemon) ready() error {
	if !d.loaded.Load() {
		return errors.New("configuration not loaded")
	}
	if d.stopping.Load() {
		return errors.New("shutting down")
	}
	cfg := d.Config()
	grace := 30 * time.Second
	for _, f := range cfg.Flows {
		grace = max(grace, f.Timeout)
	}
	if late := d.sched.Overdue(time.Now(), grace); len(late) > 0 {
		slices.Sort(late)
		return fmt.Errorf("runs overdue for flows: %s", strings.Join(late, ", "))
	}
	return nil
}

// Flows implements web.Source.
func (d *Daemon) Flows() []web.FlowInfo {
	cfg := d.Config()
	if cfg == nil {
		return nil
	}
	n := 0
	for _, f := range cfg.Flows {
		n += len(f.Steps) + len(f.Cleanup)
	}
	infos := make([]web.FlowInfo, len(cfg.Flows))
	steps := make([]web.StepInfo, 0, n) // one allocation for every flow's steps
	for i, f := range cfg.Flows {
		first := len(steps)
		for _, st := range slices.Concat(f.Steps, f.Cleanup) {
			steps = append(steps, web.StepInfo{Name: st.Name, Method: st.Method, URL: stepTarget(st),
				Dependency: st.Dependency, Cleanup: st.Cleanup})
		}
		infos[i] = web.FlowInfo{Name: f.Name, Description: f.Description, File: f.File, Labels: f.Labels,
			Schedule: DescribeSchedule(f.Schedule), Steps: steps[first:len(steps):len(steps)]}
	}
	return infos
}

var _ web.NewestFinalSource = (*Daemon)(nil)

// NewestFinal implements web.NewestFinalSource.
func (d *Daemon) NewestFinal(flow string) (passed, ok bool) { return d.store.NewestFinal(flow) }

// Recent implements web.Source.
func (d *Daemon) Recent(flow string, n int) []*result.Run { return d.store.Recent(flow, n) }

// latencySamples are the flows whose durations the store keeps, and for how
// long: those a latency rule reads from it, over its window (at least the
// default hour). A prober without such rules (or one whose rules read
// Prometheus) keeps none: nothing else reads them.
func latencySamples(cfg *config.Config) ([]string, time.Duration) {
	flows, age := []string{}, store.DefaultSampleAge
	for _, r := range cfg.Alerting.Rules {
		if r == nil || r.Kind != config.Latency || r.Latency == nil {
			continue
		}
		if !slices.Contains(flows, r.Latency.Flow) {
			flows = append(flows, r.Latency.Flow)
		}
		age = max(age, r.Latency.Window)
	}
	return flows, age
}

// setShapes announces cfg's flows to the metrics and counts the series
// they export, for the status page's footer: counted once a load, from the
// records a scrape reads, plus the certificate series the flows' first
// runs add (as prober validate counts them).
func (d *Daemon) setShapes(cfg *config.Config) {
	shapes := Shapes(cfg)
	d.metrics.SetFlows(shapes)
	n := 0
	for _, c := range d.metrics.Expected(shapes) {
		n += c
	}
	d.series.Store(int64(n))
}

// Shapes are cfg's flows as the metrics pre-create their series, with
// the bucket boundaries its latency rules need.
func Shapes(cfg *config.Config) []metrics.FlowShape {
	if cfg == nil {
		return nil
	}
	// Each latency rule's threshold becomes a bucket boundary of the
	// histogram it reads (the flow's, or one step's), so that the rule
	// exported to Prometheus counts the runs above it exactly, as the
	// engine does.
	// A step's histogram is exported at the default level only where a
	// latency rule reads it (read: the key is there).
	type hist struct{ flow, step string }
	bounds := map[hist][]float64{}
	for _, r := range cfg.Alerting.Rules {
		if r != nil && r.Kind == config.Latency && r.Latency != nil {
			k := hist{r.Latency.Flow, r.Latency.Step}
			b := bounds[k]
			if r.Latency.Above > 0 {
				b = append(b, r.Latency.Above.Seconds())
			}
			bounds[k] = b
		}
	}
	out := make([]metrics.FlowShape, len(cfg.Flows))
	for i, f := range cfg.Flows {
		out[i].Name = f.Name
		out[i].Bounds = bounds[hist{f.Name, ""}]
		out[i].Detailed = f.Metrics == config.MetricsDetailed
		out[i].Retries = f.Retries > 0
		out[i].Steps = make([]metrics.StepShape, 0, len(f.Steps)+len(f.Cleanup))
		for _, st := range slices.Concat(f.Steps, f.Cleanup) {
			b, read := bounds[hist{f.Name, st.Name}]
			out[i].Steps = append(out[i].Steps, metrics.StepShape{Name: st.Name, Dependency: st.Dependency,
				Bounds: b, Histogram: read, Cert: handshakes(st, f.Vars), Retry: st.Retry != nil})
		}
	}
	return out
}

// DescribeSchedule is a schedule for people: "every 1m0s", "cron */5 * * * * (UTC)".
func DescribeSchedule(s config.Schedule) string {
	if s.Every > 0 {
		return "every " + s.Every.String()
	}
	loc := "UTC"
	if s.Location != nil {
		loc = s.Location.String()
	}
	return "cron " + s.Cron + " (" + loc + ")"
}

// slogErrorLog adapts promhttp's error log to slog.
type slogErrorLog struct{ l *slog.Logger }

func (s slogErrorLog) Println(v ...any) { s.l.Error("metrics_handler", "error", fmt.Sprint(v...)) }

// flowIndex finds a configuration's flows by name: its flows sorted by
// name, 8 bytes a flow where a map of their names was about 40 (10,000
// flows), read under a lock or immutable once made.
type flowIndex []*config.Flow

func newFlowIndex(flows []*config.Flow) flowIndex {
	x := slices.Clone(flows)
	slices.SortFunc(x, func(a, b *config.Flow) int { return strings.Compare(a.Name, b.Name) })
	return x
}

// get is the flow named name, nil if none.
func (x flowIndex) get(name string) *config.Flow {
	if i, ok := slices.BinarySearchFunc(x, name, func(f *config.Flow, name string) int { return strings.Compare(f.Name, name) }); ok {
		return x[i]
	}
	return nil
}

func (x flowIndex) has(name string) bool { return x.get(name) != nil }
