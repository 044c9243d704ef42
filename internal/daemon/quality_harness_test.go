package daemon

// The alert-quality harness (see quality_test.go for the scenarios): the
// daemon as it ships (probes.yaml and flows/ of this repository, production
// durations) replayed on synctest's virtual clock. Everything from the
// scheduler down is the real code: schedule.Scheduler, the daemon's
// observe (metrics, log, store) and confirming retry, the evaluation loop
// (rules over the store, alert.Manager, the bbolt outbox, the Dispatcher,
// the heartbeat), the web handler. Only the edges are stand-ins: runs are
// made here instead of by HTTP (network I/O does not advance a synctest
// bubble's clock), judged by the shipped flows' own expectations; and the
// notifiers are in-process alert.Notifiers that record what they are sent.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
	"github.com/prober-dev/prober/internal/schedule"
)

// qRepo is the repository root: probes.yaml and flows/ as shipped.
const qRepo = "../.."

// qResp is what one step meets: an HTTP answer, or a transport failure.
type qResp struct {
	status int
	body   string
	dur    time.Duration
	// class and msg, when class is set, are a transport failure (dns,
	// tls, connect_refused) as the runner classifies it.
	class result.Class
	msg   string
}

// qHealthy is the sandbox shop's answer to each shipped step when all is
// well. A step the shipped flows gain later and this table lacks gets
// qDefault; the healthy warm-up then tells (qEnv.checkPremise).
var qHealthy = map[string]qResp{
	"login":        {status: 200, body: `{"token":"tok-synthetic"}`, dur: 120 * time.Millisecond},
	"create_order": {status: 201, body: `{"status":"created","id":"ord-1"}`, dur: 150 * time.Millisecond},
	"pay":          {status: 200, body: `{"status":"success"}`, dur: 700 * time.Millisecond},
	"confirm":      {status: 200, body: `{"status":"confirmed"}`, dur: 300 * time.Millisecond},
	"cancel_order": {status: 200, body: `{"status":"cancelled"}`, dur: 100 * time.Millisecond},
	"healthz":      {status: 200, body: `{"status":"ok"}`, dur: 20 * time.Millisecond},
}

var qDefault = qResp{status: 200, body: `{"status":"ok"}`, dur: 100 * time.Millisecond}

// qAttempt is one step of one run, as a scenario's fault sees it.
type qAttempt struct {
	flow, step, region string
	at                 time.Duration // since the scenario began
	slot               time.Duration // the schedule slot's planned time, since the scenario began
	attempt            int           // 0 for the scheduled run, n for its nth retry
}

// qNotifier stands in for a configured notifier: it accepts, or fails as
// fail says, and records what it accepted.
type qNotifier struct {
	name string
	typ  config.NotifierType
	rec  *qRecorder
	fail func(now time.Time) error
}

func (n *qNotifier) Name() string              { return n.name }
func (n *qNotifier) Type() config.NotifierType { return n.typ }

func (n *qNotifier) Send(_ context.Context, p *alert.Page, thread string) (string, error) {
	now := time.Now()
	if n.fail != nil {
		if err := n.fail(now); err != nil {
			n.rec.add(qDelivery{at: now, notifier: n.name, typ: n.typ, page: *p, err: err})
			return "", err
		}
	}
	n.rec.add(qDelivery{at: now, notifier: n.name, typ: n.typ, page: *p})
	if thread == "" {
		thread = "thread-" + p.DedupKey
	}
	return thread, nil
}

// Reach answers the dispatcher's reachability probe as the service would
// a GET: down while it fails sends with a temporary error (5xx, 429), up
// otherwise (a service refusing a routing key is up).
func (n *qNotifier) Reach(context.Context) error {
	if n.fail == nil {
		return nil
	}
	var de *alert.DeliveryError
	if err := n.fail(time.Now()); errors.As(err, &de) && !de.Permanent {
		return err
	}
	return nil
}

// qDelivery is one Send: accepted, or failed with err.
type qDelivery struct {
	at       time.Time
	notifier string
	typ      config.NotifierType
	page     alert.Page
	err      error
}

// qRecorder keeps every delivery and heartbeat ping, in order.
type qRecorder struct {
	mu    sync.Mutex
	sends []qDelivery
	pings []time.Time
}

func (r *qRecorder) add(d qDelivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sends = append(r.sends, d)
}

func (r *qRecorder) ping(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pings = append(r.pings, at)
}

func (r *qRecorder) deliveries() []qDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sends)
}

func (r *qRecorder) pingTimes() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pings)
}

// qPings routes the heartbeat's GETs (http.DefaultClient, see ping) to
// the recorder of the scenario whose URL they carry: no network.
type qPings struct {
	mu   sync.Mutex
	recs map[string]*qRecorder // by URL path
}

var qHeartbeats = &qPings{recs: map[string]*qRecorder{}}

func (p *qPings) RoundTrip(req *http.Request) (*http.Response, error) {
	p.mu.Lock()
	rec := p.recs[req.URL.Path]
	p.mu.Unlock()
	if rec == nil {
		return nil, fmt.Errorf("no heartbeat receiver for %s", req.URL.Path)
	}
	rec.ping(time.Now())
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
}

func (p *qPings) register(path string, rec *qRecorder) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recs[path] = rec
}

// qEnv is one scenario's prober: its state directory outlives restarts,
// the daemon built from it does not.
type qEnv struct {
	tb       testing.TB
	sc       *qScenario
	stateDir string
	env      map[string]string
	regions  []string
	t0       time.Time
	rec      *qRecorder
	outcome  *qOutcome

	d        *Daemon
	stopLoop context.CancelFunc
	loopDone chan struct{}
	traces   atomic.Uint64

	// firstFail is the first slot after the fault began whose final run
	// failed: when its first attempt began and its final run ended.
	failMu                     sync.Mutex
	firstFailFrom, firstFailTo time.Time
}

// qEnvFor is the environment the shipped probes.yaml reads: secrets of
// plausible shape, and the heartbeat URLs a shipped heartbeat might name.
func qEnvFor(name string) map[string]string {
	hb := "https://hc-ping.example/" + name
	return map[string]string{
		"SHOP_URL":              "https://shop.example",
		"SHOP_PASSWORD":         "synthetic-password",
		"PAGERDUTY_ROUTING_KEY": "0123456789abcdef0123456789abcdef",
		"SLACK_TOKEN":           "xoxb-1234567890-1234567890123-abcdefghijklmnopqrstuvwx",
		"SLACK_CHANNEL":         "#payments-alerts",
		"HEARTBEAT_URL":         hb,
		"PROBER_HEARTBEAT_URL":  hb,
	}
}

// qQuorum is the README's rule for probers in several regions ("Many
// regions"): an outage is failing in 2 of the 3, fewer is a regional
// degradation at warning. The shipped probes.yaml is for one region.
const qQuorum = "min_regions: 2, regions: [eu-west-1, us-east-1, ap-south-1], degraded_severity: warning"

// configFS is the repository, whose probes.yaml the three-region scenarios
// see with the README's multi-region quorum in place of min_regions: 1 (in
// checkout_failing and gateway_success, which must both have it).
func (e *qEnv) configFS() fs.FS {
	repo := os.DirFS(qRepo)
	if len(e.regions) < 3 {
		return repo
	}
	b, err := fs.ReadFile(repo, "probes.yaml")
	if err != nil {
		e.tb.Fatalf("reading the shipped configuration: %v", err)
	}
	if n := bytes.Count(b, []byte("min_regions: 1")); n != 2 {
		e.tb.Fatalf("the shipped probes.yaml has %d rules with min_regions: 1, want checkout_failing and gateway_success: update qQuorum's overlay", n)
	}
	return qOverlay{FS: repo, name: "probes.yaml", data: bytes.ReplaceAll(b, []byte("min_regions: 1"), []byte(qQuorum))}
}

// qOverlay is an FS with one file replaced.
type qOverlay struct {
	fs.FS
	name string
	data []byte
}

func (o qOverlay) Open(name string) (fs.File, error) {
	if name == o.name {
		return fstest.MapFS{name: {Data: o.data, Mode: 0o644}}.Open(name)
	}
	return o.FS.Open(name)
}

// start builds the daemon from the shipped configuration and the state
// directory, as `prober run` does after a restart, and starts its schedule
// and evaluation loop. A history that survives restarts is whatever
// daemon.New restores from StateDir.
func (e *qEnv) start() {
	e.tb.Helper()
	d, err := New(Options{
		ConfigFS:      e.configFS(),
		ConfigPath:    "probes.yaml",
		Load:          config.Options{Region: e.regions[0], Env: func(k string) (string, bool) { v, ok := e.env[k]; return v, ok }},
		StateDir:      e.stateDir,
		ConsoleWriter: io.Discard,
		StatusURL:     "http://prober.test",
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		e.tb.Fatalf("starting the daemon on the shipped configuration: %v", err)
	}
	if d.alerts == nil {
		e.tb.Fatal("the shipped configuration has no alerting")
	}
	cfg := d.Config()
	// Seam: the daemon builds its notifiers from the configuration with
	// no way to inject others, so the dispatcher apply built is replaced
	// before the loop starts it, by one over stand-ins of the same names
	// and types (enabled ones only, as apply does).
	var nts []alert.Notifier
	for _, n := range cfg.Alerting.Notifiers {
		if n.Disabled != "" {
			continue
		}
		nts = append(nts, &qNotifier{name: n.Name, typ: n.Type, rec: e.rec, fail: e.sc.failFor(n, e.t0)})
	}
	a := d.alerts
	a.mu.Lock()
	a.disp = alert.NewDispatcher(a.db, nts, alert.DispatcherOptions{Logger: d.log, Registerer: d.regionReg(cfg)})
	a.mu.Unlock()
	// The schedule as Serve sets it, with runs made here.
	jobs := make([]schedule.Job, 0, len(cfg.Flows))
	for _, f := range cfg.Flows {
		jobs = append(jobs, schedule.Job{Name: f.Name, Schedule: f.Schedule, Run: e.job(d, f)})
	}
	if err := d.sched.Set(jobs); err != nil {
		e.tb.Fatalf("scheduling: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.loop(ctx) }()
	e.d, e.stopLoop, e.loopDone = d, cancel, done
}

// stop ends the daemon: graceful is SIGTERM (Serve's shutdown: runs in
// flight finish, one last evaluation, the outbox drained within the
// grace); otherwise the process dies (kill -9: nothing more happens).
func (e *qEnv) stop(graceful bool) {
	d := e.d
	if d == nil {
		return
	}
	e.d = nil
	d.stopping.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), d.opts.ShutdownGrace)
	defer cancel()
	if graceful {
		_ = d.sched.Stop(sctx)
	} else {
		kctx, kcancel := context.WithCancel(context.Background())
		kcancel()
		_ = d.sched.Stop(kctx)
	}
	e.stopLoop()
	<-e.loopDone
	if graceful && d.archive != nil {
		_ = d.archive.Flush() // as Serve's shutdown does
	}
	d.closeArchive()
	a := d.alerts
	if graceful {
		a.shutdown(sctx)
		return
	}
	a.mu.Lock()
	a.stopDispatcher()
	a.mu.Unlock()
	_ = a.db.Close()
}

// restart is a deploy: SIGTERM, then a new process on the same state.
func (e *qEnv) restart() {
	e.stop(true)
	e.start()
}

// job runs one schedule slot of flow f in every region at once, as each
// region's prober would.
func (e *qEnv) job(d *Daemon, f *config.Flow) func(context.Context, time.Time) {
	return func(ctx context.Context, planned time.Time) {
		var wg sync.WaitGroup
		for _, region := range e.regions {
			wg.Go(func() { e.slot(ctx, d, f, region, planned) })
		}
		wg.Wait()
	}
}

// slot is the daemon's runFunc over made-up runs: a failed run is retried
// at once to confirm it, the failed one marked Retried, the retry carrying
// Retry and RetryOf; every run is observed, then an evaluation is asked for.
func (e *qEnv) slot(ctx context.Context, d *Daemon, f *config.Flow, region string, planned time.Time) {
	began := time.Now()
	r := e.run(ctx, f, region, planned, planned, 0, "")
	for i := 1; !r.OK() && i <= f.Retries && ctx.Err() == nil; i++ {
		r.Retried = true
		d.observe(r)
		prev := r
		r = e.run(ctx, f, region, time.Time{}, planned, i, prev.TraceID)
	}
	d.observe(r)
	if !r.OK() && f.Name == "checkout" && !began.Before(e.t0.Add(e.sc.faultAt)) {
		e.failMu.Lock()
		if e.firstFailTo.IsZero() {
			e.firstFailFrom, e.firstFailTo = began, time.Now()
		}
		e.failMu.Unlock()
	}
	d.alerts.runFinished()
}

// qHash is a deterministic uniform draw in [0, 1) for a scenario's random
// faults: the same whatever order goroutines run in.
func qHash(parts ...any) float64 {
	h := fnv.New64a()
	for _, p := range parts {
		fmt.Fprint(h, p, "|")
	}
	return float64(h.Sum64()>>11) / (1 << 53)
}

// run makes one run of f as the runner would report it: each step meets
// the scenario's fault or the healthy shop, is judged by the flow's own
// expectations (classified as the runner classifies), steps after a failure
// are skipped, cleanup always runs. The run takes its steps' time.
func (e *qEnv) run(ctx context.Context, f *config.Flow, region string, planned, slot time.Time, attempt int, retryOf string) *result.Run {
	r := e.make(f, region, planned, slot, time.Now(), attempt, retryOf)
	// The run takes its time on the virtual clock; a shutdown cuts it
	// short as the runner's context would.
	select {
	case <-time.After(r.Duration):
	case <-ctx.Done():
	}
	return r
}

// make is run's record of a run that began at start.
func (e *qEnv) make(f *config.Flow, region string, planned, slot, start time.Time, attempt int, retryOf string) *result.Run {
	n := e.traces.Add(1)
	r := &result.Run{ID: fmt.Sprintf("%016x", n), Flow: f.Name, Region: region, Labels: f.Labels,
		TraceID: fmt.Sprintf("4bf92f3577b34da6%016x", n), Planned: planned, Start: start,
		Status: result.Passed, Class: result.OK, Retry: attempt, RetryOf: retryOf}
	at := start
	failed := false
	for i, st := range slices.Concat(f.Steps, f.Cleanup) {
		s := result.Step{Name: st.Name, Dependency: st.Dependency, Cleanup: st.Cleanup,
			SpanID: fmt.Sprintf("%012x%04x", n, i), Method: st.Method, URL: stepTarget(st), Start: at}
		if failed && !st.Cleanup {
			s.Status, s.Class = result.Skipped, result.OK
			r.Steps = append(r.Steps, s)
			continue
		}
		q := qAttempt{flow: f.Name, step: st.Name, region: region, at: at.Sub(e.t0), slot: slot.Sub(e.t0), attempt: attempt}
		resp, ok := qHealthy[st.Name]
		if !ok {
			resp = qDefault
		}
		if e.sc.fault != nil {
			if fr := e.sc.fault(q); fr != nil {
				resp = *fr
			}
		}
		s.Attempts, s.Duration = 1, resp.dur
		at = at.Add(resp.dur)
		if resp.class != "" {
			s.Status, s.Class = result.Failed, resp.class
			s.Failures = []result.Failure{{Message: resp.msg}}
		} else {
			s.HTTPStatus, s.BodyBytes = resp.status, int64(len(resp.body))
			qJudge(st, &s, &assert.Response{Status: resp.status, Body: []byte(resp.body), Duration: resp.dur})
		}
		if s.Status == result.Failed && !st.Cleanup && !failed {
			failed = true
			r.Status, r.Class, r.FailedStep = result.Failed, s.Class, s.Name
		}
		r.Steps = append(r.Steps, s)
	}
	r.Duration = at.Sub(start)
	return r
}

// prefill gives the store the history of a prober that has been running
// for history before the scenario (the scenario's faults apply to it too,
// at negative times): the rules' longest windows are 3 days, and a prober
// younger than them is a scenario of its own (young_windows_restart). Runs
// are observed as the daemon observes them (metrics, log, store), retries
// included, but without evaluations in between.
func (e *qEnv) prefill(history time.Duration) {
	for _, f := range e.d.Config().Flows {
		every := f.Schedule.Every
		if every <= 0 {
			every = time.Minute
		}
		for at := -history.Truncate(every); at < 0; at += every {
			planned := e.t0.Add(at)
			for _, region := range e.regions {
				r := e.make(f, region, planned, planned, planned, 0, "")
				for i := 1; !r.OK() && i <= f.Retries; i++ {
					r.Retried = true
					e.d.observe(r)
					r = e.make(f, region, time.Time{}, planned, r.Start.Add(r.Duration), i, r.TraceID)
				}
				e.d.observe(r)
			}
		}
	}
}

// qJudge is the runner's evaluate without until and captures: the status
// policy, then the step's expectations (status failures first), the first
// failure naming the class.
func qJudge(st *config.Step, s *result.Step, resp *assert.Response) {
	var class result.Class
	add := func(c result.Class, f result.Failure) {
		if class == "" {
			class = c
		}
		s.Failures = append(s.Failures, f)
	}
	if !st.StatusChecked && resp.Status >= 400 {
		add(runner.StatusClass(resp.Status), result.Failure{Expectation: "status < 400", Actual: fmt.Sprint(resp.Status),
			Message: fmt.Sprintf("status %d (without a status expectation, 4xx and 5xx fail)", resp.Status)})
	}
	var rest []assert.Failure
	for _, ex := range st.Expect {
		f, ok := ex.Check(resp)
		if ok {
			continue
		}
		if f.Source&assert.SourceStatus != 0 {
			add(runner.FailureClass(resp, f), result.Failure{Expectation: f.Expectation, Actual: f.Actual, Message: f.Message})
			continue
		}
		rest = append(rest, f)
	}
	for _, f := range rest {
		add(runner.FailureClass(resp, f), result.Failure{Expectation: f.Expectation, Actual: f.Actual, Message: f.Message})
	}
	if class == "" {
		s.Status, s.Class = result.Passed, result.OK
		return
	}
	s.Status, s.Class = result.Failed, class
}

// get serves one request from the daemon's handler, in process.
func (e *qEnv) get(path string) (int, string) {
	rec := httptest.NewRecorder()
	e.d.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://prober.test"+path, nil))
	return rec.Code, rec.Body.String()
}

// qStateDir is where a scenario keeps its state: tmpfs when there is one.
// Each evaluation commits a bbolt transaction with fsync (alert.OpenDB
// takes no options), which on a disk costs more than the rest of a cycle.
func qStateDir(tb testing.TB) string {
	tb.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "prober-quality-")
		if err == nil {
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return filepath.Join(dir, "state")
		}
	}
	return filepath.Join(tb.TempDir(), "state")
}

// errQ is a stand-in notifier's failure.
func errQ(permanent bool, status int, msg string) error {
	return &alert.DeliveryError{Permanent: permanent, Status: status, Msg: msg}
}
