package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
	"weak"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/golden"
	"github.com/prober-dev/prober/internal/secret"
	"github.com/prober-dev/prober/internal/web"
)

// alerting is the rules-to-pages half of the daemon: the engine evaluating
// rules over the store, the manager running the alert lifecycle, and the
// dispatcher delivering the outbox. It is rebuilt (but for the database) on
// reload.
type alerting struct {
	d    *Daemon
	dir  string // the state dir
	db   *alert.DB
	mgr  *alert.Manager
	kick chan struct{} // a run finished: evaluate soon
	// cycleTime is the duration of each evaluation cycle (rules and the
	// alert lifecycle): prober_rule_evaluation_seconds.
	cycleTime prometheus.Histogram

	mu        sync.Mutex
	cfg       *config.Config
	engine    *golden.Engine
	disp      *alert.Dispatcher
	dispStop  context.CancelFunc
	dispDone  chan struct{}
	lastBeat  time.Time
	beatInFly bool
	// spare is the last cycle's evaluations, whose memory the next reuses
	// (with 10,000 flows megabytes every few seconds); unset while a cycle
	// has it. Held weakly: dead between cycles, they are memory a
	// collection may take back (the next cycle then makes them anew).
	spare weak.Pointer[evalBuf]

	histMu sync.Mutex // one history save at a time (history.go)
}

// evalBuf is what alerting.spare points at.
type evalBuf struct{ evs []golden.Evaluation }

// openAlerting opens the state database and builds the pipeline for cfg.
func (d *Daemon) openAlerting(cfg *config.Config) (*alerting, error) {
	dir := d.stateDir(cfg)
	path := filepath.Join(dir, "prober.db")
	db, err := alert.OpenDB(path)
	if errors.Is(err, alert.ErrCorrupt) && d.opts.FreshState {
		aside, merr := alert.MoveAside(path, time.Now())
		if merr != nil {
			return nil, fmt.Errorf("opening the alert state: %w (%w)", err, merr)
		}
		d.log.Warn("alert_state_moved_aside", "path", path, "moved_to", aside, "reason", err.Error(),
			"consequence", "starting with empty alert state: firing alerts, silences and undelivered pages in the old file are not carried over")
		db, err = alert.OpenDB(path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the alert state: %w", err)
	}
	a := &alerting{d: d, dir: dir, db: db, kick: make(chan struct{}, 1)}
	a.cycleTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "prober_rule_evaluation_seconds",
		Help:    "Duration of evaluation cycles: every rule evaluated once and the alert lifecycle updated.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	if err := d.regionReg(cfg).Register(a.cycleTime); err != nil {
		db.Close()
		return nil, fmt.Errorf("registering prober_rule_evaluation_seconds: %w", err)
	}
	a.mgr = alert.NewManager(db, &cfg.Alerting, a.kickDispatch, alert.ManagerOptions{
		Logger:     d.log,
		Source:     "prober (region " + cfg.Region + ")",
		StatusURL:  d.opts.StatusURL,
		Registerer: d.regionReg(cfg),
	})
	a.cfg = cfg
	a.loadHistory(cfg, time.Now())
	return a, nil
}

// notifiers builds the enabled notifiers of cfg.
func (a *alerting) notifiers(cfg *config.Config) ([]alert.Notifier, error) {
	var out []alert.Notifier
	for _, n := range cfg.Alerting.Notifiers {
		if n.Disabled != "" {
			a.d.log.Info("notifier_disabled", "notifier", n.Name, "reason", n.Disabled)
			continue
		}
		w := a.d.opts.ConsoleWriter
		if w == nil {
			w = os.Stderr
		}
		o := alert.NotifierOptions{HTTPClient: &http.Client{Timeout: n.Timeout}, StatusURL: a.d.opts.StatusURL, Logger: a.d.log,
			Console: secret.Writer(w, a.d.secrets.Load)}
		p := NotifierPlugin(string(n.Type))
		if p == nil {
			// config accepted a type nobody builds: its pages would wait in
			// the outbox forever, so the config is refused.
			return nil, fmt.Errorf("notifier %s: type %s is configurable but not registered (daemon/notifiers.go)", n.Name, n.Type)
		}
		nt, err := p.New(n, o)
		if err != nil {
			return nil, fmt.Errorf("notifier %s: %w", n.Name, err)
		}
		out = append(out, nt)
	}
	return out, nil
}

// flowMaxAges returns how old a region's last final run of each of cfg's
// flows may be (5m for a flow not in cfg). A flow's is its FlowDef's: one
// for all the flows of a template, found by name in a sorted list rather
// than kept in a map of every flow's (430 kB at 10,000 flows).
func flowMaxAges(cfg *config.Config) func(flow string) time.Duration {
	flows, ages := newFlowIndex(cfg.Flows), map[*config.FlowDef]time.Duration{}
	for _, f := range cfg.Flows {
		if _, ok := ages[f.FlowDef]; !ok {
			ages[f.FlowDef] = maxAge(f.FlowDef)
		}
	}
	return func(flow string) time.Duration {
		if f := flows.get(flow); f != nil {
			return ages[f.FlowDef]
		}
		return 5 * time.Minute
	}
}

// maxAge is how old a region's last final run of a flow with d may be: a
// region is unknown once it missed two runs, more than a blip, less than a
// page about the wrong thing.
func maxAge(d *config.FlowDef) time.Duration {
	interval := d.Schedule.Every
	if interval == 0 {
		now := time.Now()
		interval = d.Schedule.Next(d.Schedule.Next(now)).Sub(d.Schedule.Next(now))
	}
	return 2*interval + d.Timeout*time.Duration(1+d.Retries)
}

// apply builds the engine and notifiers of cfg; the dispatcher restarts
// with the new notifiers when running.
func (a *alerting) apply(cfg *config.Config) error {
	nts, err := a.notifiers(cfg)
	if err != nil {
		return err
	}
	var promql golden.Querier
	if cfg.Alerting.Prometheus != nil {
		if promql, err = golden.NewPromQL(cfg.Alerting.Prometheus, a.d.log); err != nil {
			return fmt.Errorf("prometheus: %w", err)
		}
	}
	age := flowMaxAges(cfg)
	var src golden.Source
	if a.d.opts.Role == RoleEvaluate {
		// Every region's results meet in Prometheus; read them all there.
		api, err := golden.NewPromAPI(cfg.Alerting.Prometheus, a.d.log)
		if err != nil {
			return fmt.Errorf("prometheus: %w", err)
		}
		src = golden.NewPromSource(api, golden.PromSourceOptions{MaxAge: age, Logger: a.d.log})
	} else {
		src = golden.NewStoreSource(a.d.store, age, promql)
	}
	// The engine keys each label set once, not the manager every cycle.
	engine := golden.NewEngine(&cfg.Alerting, src, golden.Options{Logger: a.d.log, Key: alert.Key})
	disp := alert.NewDispatcher(a.db, nts, alert.DispatcherOptions{Logger: a.d.log, Registerer: a.d.regionReg(cfg)})

	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg, a.engine = cfg, engine
	a.mgr.SetConfig(&cfg.Alerting)
	running := a.dispStop != nil
	if running {
		a.stopDispatcher()
	}
	a.disp = disp
	if running {
		a.startDispatcher()
	}
	return nil
}

// dispatcher lifecycle; callers hold mu.
func (a *alerting) startDispatcher() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.dispStop, a.dispDone = cancel, done
	disp := a.disp
	go func() { defer close(done); disp.Run(ctx) }()
}

func (a *alerting) stopDispatcher() {
	if a.dispStop != nil {
		a.dispStop()
		<-a.dispDone
		a.dispStop, a.dispDone = nil, nil
	}
}

func (a *alerting) kickDispatch() {
	a.mu.Lock()
	disp := a.disp
	a.mu.Unlock()
	if disp != nil {
		disp.Kick()
	}
}

// runFinished asks for an evaluation soon (a page should not wait a whole
// evaluation interval after the run that proves it).
func (a *alerting) runFinished() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Kicked evaluations (after runs) wait kickSettle for a burst of runs finishing
// together to land, and start no sooner than dutyFactor times the last
// cycle's duration after it began: with 10,000 flows runs finish all the
// time, and evaluating after each would spend a core on rules that change
// nothing. Rules over a few flows (a cycle well under a millisecond) still
// evaluate within kickSettle of the run; 10,000 flows (about 20 ms a cycle)
// about once a second. Either way at most 1/dutyFactor of a core.
const (
	kickSettle = 50 * time.Millisecond
	dutyFactor = 50
)

// kickDelay is how long a kicked evaluation waits, given when the last
// cycle began and how long it took.
func kickDelay(now, lastStart time.Time, lastTook, interval time.Duration) time.Duration {
	gap := min(max(kickSettle, dutyFactor*lastTook), interval)
	return max(kickSettle, lastStart.Add(gap).Sub(now))
}

// loop evaluates rules every interval and after runs, until ctx is done.
func (a *alerting) loop(ctx context.Context) {
	a.mu.Lock()
	a.startDispatcher()
	a.mu.Unlock()
	var hist sync.WaitGroup
	hist.Go(func() { a.historyLoop(ctx) })
	defer hist.Wait()
	var lastStart time.Time
	var lastTook time.Duration
	for {
		a.mu.Lock()
		interval := a.cfg.Alerting.EvaluationInterval
		a.mu.Unlock()
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-a.kick:
			t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-time.After(kickDelay(time.Now(), lastStart, lastTook, interval)):
			}
		case <-t.C:
		}
		lastStart = time.Now()
		a.cycle(ctx)
		lastTook = time.Since(lastStart)
	}
}

// cycle is one evaluation: rules, lifecycle, heartbeat.
func (a *alerting) cycle(ctx context.Context) {
	now := time.Now()
	cfg := a.evaluate(ctx, now)
	a.cycleTime.Observe(time.Since(now).Seconds())
	a.heartbeat(cfg, now)
}

// evaluate runs the rules and the alert lifecycle at now (tests and the
// benchmark choose the time), and returns the configuration it used.
func (a *alerting) evaluate(ctx context.Context, now time.Time) *config.Config {
	a.mu.Lock()
	engine, cfg, buf := a.engine, a.cfg, a.spare.Value()
	a.spare = weak.Pointer[evalBuf]{}
	a.mu.Unlock()
	if buf == nil {
		buf = &evalBuf{}
	}
	evals := engine.AppendEvaluations(ctx, buf.evs[:0], now)
	if err := a.mgr.Process(ctx, evals, now); err != nil {
		a.d.log.Error("alert_processing_failed", "error", err.Error())
	}
	// Nothing keeps evaluations past Process. The next cycle overwrites
	// them; what a longer cycle left beyond them must not hold memory
	// while the buffer lives.
	clear(evals[len(evals):cap(evals)])
	buf.evs = evals
	a.mu.Lock()
	a.spare = weak.Make(buf)
	a.mu.Unlock()
	return cfg
}

// heartbeat pings the configured URL when the prober is healthy, so that
// silence from it alerts elsewhere (a dead man's switch).
func (a *alerting) heartbeat(cfg *config.Config, now time.Time) {
	hb := cfg.Alerting.Heartbeat
	if hb == nil || hb.URL == "" {
		return
	}
	a.mu.Lock()
	due := !a.beatInFly && now.Sub(a.lastBeat) >= hb.Interval
	if due {
		a.beatInFly = true
	}
	a.mu.Unlock()
	if !due {
		return
	}
	err := a.d.ready()
	if err == nil {
		err = a.canPage(cfg)
	}
	if err != nil {
		a.mu.Lock()
		a.beatInFly = false
		a.mu.Unlock()
		a.d.log.Warn("heartbeat_withheld", "reason", cfg.Secrets.Redact(err.Error()),
			"note", "the dead man's switch pages when pings stop")
		return
	}
	go func() {
		err := ping(hb.URL)
		a.mu.Lock()
		a.beatInFly = false
		if err == nil {
			a.lastBeat = now
		}
		a.mu.Unlock()
		if err != nil {
			// The URL may hold a secret: say what failed, not where.
			a.d.log.Warn("heartbeat_failed", "error", cfg.Secrets.Redact(err.Error()))
		}
	}()
}

// canPage says why pages cannot be trusted to reach a paging notifier
// (one a critical alert goes to): a page failed for good since the
// notifier last delivered, or one waits longer than the heartbeat's
// max_page_delay. The heartbeat then stops, so that the dead man's switch
// pages someone by another path.
func (a *alerting) canPage(cfg *config.Config) error {
	a.mu.Lock()
	disp := a.disp
	a.mu.Unlock()
	if disp == nil {
		return nil
	}
	maxDelay := cmp.Or(cfg.Alerting.Heartbeat.MaxPageDelay, 5*time.Minute)
	why, err := disp.DeliveryTrouble(pagingNotifiers(cfg), maxDelay)
	if err != nil {
		return fmt.Errorf("cannot tell whether pages are delivered: %w", err)
	}
	if why != "" {
		return fmt.Errorf("pages are not being delivered: %s", why)
	}
	return nil
}

// pagingNotifiers are the enabled notifiers a critical alert goes to: the
// critical route, and those named by rules that can fire critical.
func pagingNotifiers(cfg *config.Config) []string {
	a := &cfg.Alerting
	names := slices.Clone(a.Routes["critical"])
	for _, r := range a.Rules {
		critical := r.Severity == "critical"
		if r.BurnRate != nil {
			critical = critical || slices.ContainsFunc(r.BurnRate.Windows, func(w config.BurnWindow) bool { return w.Severity == "critical" })
		}
		if critical {
			names = append(names, r.Notify...)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	return slices.DeleteFunc(names, func(n string) bool {
		return !slices.ContainsFunc(a.Notifiers, func(nt *config.Notifier) bool { return nt.Name == n && nt.Disabled == "" })
	})
}

func ping(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("heartbeat request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("heartbeat: HTTP %d", resp.StatusCode)
	}
	return nil
}

// shutdown evaluates once more (runs that finished during shutdown may
// change a page), flushes the outbox within ctx, and closes the database.
func (a *alerting) shutdown(ctx context.Context) {
	a.cycle(ctx)
	a.saveHistory(time.Now())
	// Drain beside the running dispatcher, so that a send in flight is
	// waited for rather than cut short and sent again.
	a.mu.Lock()
	disp := a.disp
	a.mu.Unlock()
	if err := disp.Drain(ctx); err != nil {
		a.d.log.Warn("outbox_not_empty_at_exit", "error", err.Error(), "note", "delivered after the next start")
	}
	a.mu.Lock()
	a.stopDispatcher()
	a.mu.Unlock()
	if err := a.db.Close(); err != nil {
		a.d.log.Error("alert_state_close_failed", "error", err.Error())
	}
}

// webAlerts adapts the alert manager to the web package's view of it.
type webAlerts struct{ a *alerting }

func (w webAlerts) Alerts() ([]web.AlertInfo, error) {
	states, err := w.a.mgr.Alerts()
	if err != nil {
		return nil, err
	}
	und, err := w.undelivered()
	if err != nil {
		return nil, err
	}
	out := make([]web.AlertInfo, 0, len(states))
	for _, s := range states {
		info := web.AlertInfo{Key: s.Key, Rule: s.Rule, Severity: s.Severity, Phase: string(s.Phase),
			Held: s.Held, Summary: s.Page.Summary, Labels: s.Labels, Since: s.ActiveSince, FiredAt: s.FiredAt}
		// Notified is what was delivered, not what was meant to be.
		for _, c := range alert.Channels(s, und) {
			switch c.State {
			case alert.DeliveryDelivered:
				info.Notified = append(info.Notified, c.Notifier)
			case alert.DeliverySending:
				info.Sending = append(info.Sending, c.Notifier)
			case alert.DeliveryRetrying:
				info.Retrying = append(info.Retrying, deliveryInfo(c.Last))
			case alert.DeliveryFailed:
				info.Failed = append(info.Failed, deliveryInfo(c.Last))
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// Deliveries lists the pages retrying, and those failed for good since
// their notifier last delivered (web.DeliveryLister).
func (w webAlerts) Deliveries() ([]web.DeliveryInfo, error) {
	und, err := w.undelivered()
	if err != nil {
		return nil, err
	}
	var out []web.DeliveryInfo
	for _, u := range und {
		if u.State == alert.DeliveryRetrying || (u.State == alert.DeliveryFailed && u.Open) {
			out = append(out, deliveryInfo(u))
		}
	}
	return out, nil
}

// RetryFailed sends the pages that failed for good again (web.DeliveryRetrier).
func (w webAlerts) RetryFailed(notifier string) (int, error) {
	w.a.mu.Lock()
	disp := w.a.disp
	w.a.mu.Unlock()
	if disp == nil {
		return 0, errors.New("alerting is not running")
	}
	return disp.RetryFailed(notifier)
}

func (w webAlerts) undelivered() ([]alert.Undelivered, error) {
	w.a.mu.Lock()
	disp := w.a.disp
	w.a.mu.Unlock()
	if disp == nil {
		return nil, nil
	}
	return disp.Undelivered()
}

func deliveryInfo(u alert.Undelivered) web.DeliveryInfo {
	return web.DeliveryInfo{Notifier: u.Notifier, State: u.State, Kind: string(u.Kind), Rule: u.Rule, Severity: u.Severity,
		AlertKey: u.AlertKey, Attempts: u.Attempts, Queued: u.Created, NextAttempt: u.NextAttempt, FailedAt: u.Failed, Error: u.Error}
}

func (w webAlerts) Silences() ([]web.SilenceInfo, error) {
	var out []web.SilenceInfo
	w.a.mu.Lock()
	cfg := w.a.cfg
	w.a.mu.Unlock()
	now := time.Now()
	for _, s := range cfg.Alerting.Silences {
		if now.Before(s.Ends) {
			out = append(out, web.SilenceInfo{Matchers: s.Matchers, Starts: s.Starts, Ends: s.Ends, Comment: s.Comment, Origin: "config"})
		}
	}
	recs, err := w.a.mgr.Silences()
	for _, s := range recs {
		out = append(out, web.SilenceInfo{ID: s.ID, Matchers: s.Matchers, Starts: s.Starts, Ends: s.Ends,
			Comment: s.Comment, CreatedBy: s.CreatedBy, Origin: "api"})
	}
	return out, err
}

func (w webAlerts) AddSilence(s web.SilenceInfo) (web.SilenceInfo, error) {
	rec, err := w.a.mgr.AddSilence(alert.SilenceRecord{Matchers: s.Matchers, Starts: s.Starts, Ends: s.Ends,
		Comment: s.Comment, CreatedBy: s.CreatedBy})
	if err != nil {
		return web.SilenceInfo{}, err
	}
	return web.SilenceInfo{ID: rec.ID, Matchers: rec.Matchers, Starts: rec.Starts, Ends: rec.Ends,
		Comment: rec.Comment, CreatedBy: rec.CreatedBy, Origin: "api"}, nil
}

func (w webAlerts) RemoveSilence(id string) error { return w.a.mgr.RemoveSilence(id) }

// regionReg registers with the region label, like every prober series.
func (d *Daemon) regionReg(cfg *config.Config) prometheus.Registerer {
	return prometheus.WrapRegistererWith(prometheus.Labels{"region": cfg.Region}, d.reg)
}
