// Package metrics turns runs into Prometheus metrics: run and step outcomes,
// duration histograms whose exemplars carry the trace id, dependency calls,
// schedule health and the prober's own state. Label values are bounded: flow,
// step, region, class, dependency; never trace ids or URLs.
package metrics

import (
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prober-dev/prober/internal/result"
)

// Buckets for step and flow durations: loopback calls to slow gateways.
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Metrics is the prober's set of collectors. Safe for concurrent use.
type Metrics struct {
	runs         *prometheus.CounterVec
	runFailures  *prometheus.CounterVec
	depFailures  *prometheus.CounterVec
	flowDuration *prometheus.HistogramVec
	lastSuccess  *prometheus.GaugeVec
	lastRun      *prometheus.GaugeVec
	steps        *prometheus.CounterVec
	stepDuration *prometheus.HistogramVec
	stepPhase    *prometheus.GaugeVec
	dependency   *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	retries      *prometheus.CounterVec
	stateSince   *prometheus.GaugeVec
	failure      *prometheus.GaugeVec
	lateness     prometheus.Histogram
	inFlight     prometheus.Gauge
	flows        prometheus.Gauge
	reloads      *prometheus.CounterVec
	reloadOK     prometheus.Gauge
	reloadTime   prometheus.Gauge

	mu    sync.RWMutex
	cache map[string]*flowHandles // per flow, resolved children (label hashing off the hot path)
	// announced is set by the first SetFlows: from then on the cache holds
	// exactly the configured flows, and a run of any other flow (one still in
	// flight when a reload removed its flow) is not recorded, so that it
	// cannot bring the removed flow's series back.
	announced bool
}

type flowHandles struct {
	since       prometheus.Gauge
	state       atomic.Int32 // 0 unknown, 1 passing, 2 failing
	failMu      sync.Mutex
	lastFailure prometheus.Labels
	runsOK      prometheus.Counter
	runsFailed  prometheus.Counter
	duration    prometheus.Observer
	lastSuccess prometheus.Gauge
	lastRun     prometheus.Gauge
	steps       map[string]*stepHandles
}

type stepHandles struct {
	dependency string // as configured; "" for none
	okCount    prometheus.Counter
	duration   prometheus.Observer
	phases     [5]prometheus.Gauge // dns, connect, tls, processing, transfer
	depOK      prometheus.Counter  // nil without a dependency
	depFailed  prometheus.Counter
}

var phaseNames = [5]string{"dns", "connect", "tls", "processing", "transfer"}

// BuildInfo is reported as prober_build_info.
type BuildInfo struct {
	Version, Revision string
}

// New registers the collectors with reg. region is added to every series so
// that many regions' probers can share one Prometheus.
func New(reg prometheus.Registerer, region string, bi BuildInfo) *Metrics {
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"region": region}, reg)
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prober_runs_total",
			Help: "Final flow runs by result (success or failure); both series exist from the start so rates see the first failure. Failures carry trace_id exemplars.",
		}, []string{"flow", "result"}),
		runFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prober_run_failures_total",
			Help: "Final failed flow runs by failure class.",
		}, []string{"flow", "class"}),
		flowDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prober_flow_duration_seconds",
			Help:    "Duration of flow runs (main steps, cleanup excluded). Exemplars carry trace_id.",
			Buckets: durationBuckets,
		}, []string{"flow"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prober_last_run_success",
			Help: "1 if the flow's last run passed, 0 if it failed.",
		}, []string{"flow"}),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prober_last_run_timestamp_seconds",
			Help: "Unix time at which the flow's last run started.",
		}, []string{"flow"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prober_step_runs_total",
			Help: "Executed steps by failure class (ok when the step passed). Skipped steps are not counted.",
		}, []string{"flow", "step", "class"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prober_step_duration_seconds",
			Help:    "Duration of steps, including polling. Exemplars carry trace_id.",
			Buckets: durationBuckets,
		}, []string{"flow", "step"}),
		stepPhase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prober_step_phase_seconds",
			Help: "Phases of the last attempt of the step's last run: dns, connect, tls, processing (request sent to first byte), transfer.",
		}, []string{"flow", "step", "phase"}),
		dependency: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prober_dependency_calls_total",
			Help: "Calls of steps marked with a dependency (e.g. a bank gateway) in final runs, by outcome; both series exist from the start.",
		}, []string{"flow", "step", "dependency", "outcome"}),
		depFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prober_dependency_failures_total",
			Help: "Failed calls of steps marked with a dependency (final runs), by failure class.",
		}, []string{"flow", "step", "dependency", "class"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prober_runs_skipped_total",
			Help: "Scheduled runs not started because the previous run of the flow was still going.",
		}, []string{"flow"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prober_run_retries_total",
			Help: "Failed runs retried at once to confirm the failure (the retry's outcome is counted in prober_runs_total).",
		}, []string{"flow"}),
		stateSince: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prober_flow_state_since_timestamp_seconds",
			Help: "Unix time at which the flow's current state (passing or failing, final runs) began.",
		}, []string{"flow"}),
		failure: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prober_last_failure_info",
			Help: "Present while the flow fails: where and how its last final run failed (value: when). Labels are bounded by the configuration.",
		}, []string{"flow", "step", "class", "dependency", "expectation"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prober_schedule_lateness_seconds",
			Help:    "How late runs started against their planned time (scheduler and concurrency-limit delay).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 10},
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prober_runs_in_flight",
			Help: "Flow runs in progress.",
		}),
		flows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prober_flows_configured",
			Help: "Flows in the active configuration.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prober_config_reloads_total",
			Help: "Configuration loads (start and SIGHUP) by result.",
		}, []string{"result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prober_config_last_reload_successful",
			Help: "1 if the last configuration load succeeded (a failed reload keeps the previous configuration).",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prober_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load.",
		}),
		cache: map[string]*flowHandles{},
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "prober_build_info",
		Help:        "Build of the prober (always 1).",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": runtime.Version()},
	})
	info.Set(1)
	reg.MustRegister(m.runs, m.runFailures, m.depFailures, m.flowDuration, m.lastSuccess, m.lastRun, m.steps, m.stepDuration,
		m.stepPhase, m.dependency, m.skipped, m.retries, m.stateSince, m.failure, m.lateness, m.inFlight, m.flows, m.reloads,
		m.reloadOK, m.reloadTime, info)
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	return m
}

// FlowShape describes a flow for pre-creating its series.
type FlowShape struct {
	Name  string
	Steps []StepShape
}

// StepShape is one step of a FlowShape.
type StepShape struct {
	Name, Dependency string
}

// SetFlows makes the configured flows' series exist from the start (so rates
// and "absent" checks work before the first failure) and deletes the series
// of flows no longer configured, and of steps (and step dependencies) that a
// kept flow no longer has. Once SetFlows has been called, runs of flows not
// in the set are not recorded.
func (m *Metrics) SetFlows(flows []FlowShape) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.announced = true
	keep := map[string]bool{}
	for _, f := range flows {
		keep[f.Name] = true
		if old := m.cache[f.Name]; old != nil {
			m.deleteStaleSteps(f, old)
		}
		m.cache[f.Name] = m.newFlowHandles(f)
	}
	for name := range m.cache {
		if !keep[name] {
			delete(m.cache, name)
			l := prometheus.Labels{"flow": name}
			m.runs.DeletePartialMatch(l)
			m.runFailures.DeletePartialMatch(l)
			m.depFailures.DeletePartialMatch(l)
			m.flowDuration.DeletePartialMatch(l)
			m.lastSuccess.DeletePartialMatch(l)
			m.lastRun.DeletePartialMatch(l)
			m.steps.DeletePartialMatch(l)
			m.stepDuration.DeletePartialMatch(l)
			m.stepPhase.DeletePartialMatch(l)
			m.dependency.DeletePartialMatch(l)
			m.skipped.DeletePartialMatch(l)
			m.retries.DeletePartialMatch(l)
			m.stateSince.DeletePartialMatch(l)
			m.failure.DeletePartialMatch(l)
		}
	}
	m.flows.Set(float64(len(flows)))
}

// deleteStaleSteps deletes the series of old's steps that f no longer has,
// and the dependency series of steps whose dependency changed.
func (m *Metrics) deleteStaleSteps(f FlowShape, old *flowHandles) {
	now := make(map[string]string, len(f.Steps)) // step -> dependency
	for _, s := range f.Steps {
		now[s.Name] = s.Dependency
	}
	for name, sh := range old.steps {
		dep, ok := now[name]
		l := prometheus.Labels{"flow": f.Name, "step": name}
		if !ok {
			m.steps.DeletePartialMatch(l)
			m.stepDuration.DeletePartialMatch(l)
			m.stepPhase.DeletePartialMatch(l)
			m.dependency.DeletePartialMatch(l)
			m.depFailures.DeletePartialMatch(l)
			continue
		}
		if sh.dependency != "" && sh.dependency != dep {
			l["dependency"] = sh.dependency
			m.dependency.DeletePartialMatch(l)
			m.depFailures.DeletePartialMatch(l)
		}
	}
}

func (m *Metrics) newFlowHandles(f FlowShape) *flowHandles {
	h := &flowHandles{
		runsOK:      m.runs.WithLabelValues(f.Name, "success"),
		runsFailed:  m.runs.WithLabelValues(f.Name, "failure"),
		duration:    m.flowDuration.WithLabelValues(f.Name),
		lastSuccess: m.lastSuccess.WithLabelValues(f.Name),
		lastRun:     m.lastRun.WithLabelValues(f.Name),
		since:       m.stateSince.WithLabelValues(f.Name),
		steps:       make(map[string]*stepHandles, len(f.Steps)),
	}
	if old := m.cache[f.Name]; old != nil { // a reload: the streak goes on
		h.state.Store(old.state.Load())
		old.failMu.Lock()
		h.lastFailure = old.lastFailure
		old.failMu.Unlock()
	}
	m.skipped.WithLabelValues(f.Name)
	m.retries.WithLabelValues(f.Name)
	for _, s := range f.Steps {
		sh := &stepHandles{
			dependency: s.Dependency,
			okCount:    m.steps.WithLabelValues(f.Name, s.Name, string(result.OK)),
			duration:   m.stepDuration.WithLabelValues(f.Name, s.Name),
		}
		for i, p := range phaseNames {
			sh.phases[i] = m.stepPhase.WithLabelValues(f.Name, s.Name, p)
		}
		if s.Dependency != "" {
			sh.depOK = m.dependency.WithLabelValues(f.Name, s.Name, s.Dependency, "success")
			sh.depFailed = m.dependency.WithLabelValues(f.Name, s.Name, s.Dependency, "failure")
		}
		h.steps[s.Name] = sh
	}
	return h
}

// adhoc resolves the children of a run's flow that SetFlows did not announce
// (tools that never call SetFlows). Once SetFlows has been called it does
// nothing: the run's flow was removed by a reload.
func (m *Metrics) adhoc(r *result.Run) {
	shape := FlowShape{Name: r.Flow}
	for _, s := range r.Steps {
		shape.Steps = append(shape.Steps, StepShape{s.Name, s.Dependency})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.announced && m.cache[r.Flow] == nil {
		m.cache[r.Flow] = m.newFlowHandles(shape)
	}
}

// Observe records a completed run.
//
// The read lock is held throughout so that a concurrent SetFlows cannot
// delete a flow's series halfway through and see some of them come back.
func (m *Metrics) Observe(r *result.Run) {
	m.mu.RLock()
	h, announced := m.cache[r.Flow], m.announced
	if h == nil && !announced {
		m.mu.RUnlock()
		m.adhoc(r)
		m.mu.RLock()
		h, announced = m.cache[r.Flow], m.announced
	}
	defer m.mu.RUnlock()
	if h == nil {
		return // a late run of a flow a reload removed
	}
	ex := prometheus.Labels{"trace_id": r.TraceID}
	switch {
	case r.Retried:
		// Not the final word on its slot: the retry that follows is. The
		// run counters (and so success ratios and burn rates) see each slot
		// once; a blip the retry clears is only a retry.
		m.retries.WithLabelValues(r.Flow).Inc()
	case r.OK():
		h.runsOK.Inc()
		h.lastSuccess.Set(1)
	default:
		// The exemplar lets an evaluator far away find the trace ids of
		// failing runs (query_exemplars) without a label per trace.
		if ea, ok := h.runsFailed.(prometheus.ExemplarAdder); ok {
			ea.AddWithExemplar(1, ex)
		} else {
			h.runsFailed.Inc()
		}
		m.runFailures.WithLabelValues(r.Flow, string(r.Class)).Inc()
		h.lastSuccess.Set(0)
	}
	if !r.Retried {
		h.lastRun.Set(float64(r.Start.UnixNano()) / 1e9)
		observe(h.duration, r.Duration, ex)
		m.streak(h, r)
	}
	for i := range r.Steps {
		s := &r.Steps[i]
		if s.Status == result.Skipped {
			continue
		}
		sh := h.steps[s.Name]
		if sh == nil {
			// A step the configured flow does not have: a late run of the
			// flow's previous shape (not recorded, its series were
			// deleted), or an ad-hoc flow that changed shape (counted).
			if !announced {
				m.steps.WithLabelValues(r.Flow, s.Name, string(s.Class)).Inc()
			}
			continue
		}
		if s.Status == result.Passed {
			sh.okCount.Inc()
		} else {
			m.steps.WithLabelValues(r.Flow, s.Name, string(s.Class)).Inc()
		}
		observe(sh.duration, s.Duration, ex)
		t := s.Timings
		for j, d := range [5]time.Duration{t.DNS, t.Connect, t.TLS, t.Processing, t.Transfer} {
			sh.phases[j].Set(d.Seconds())
		}
		// Dependency calls count final runs only, as the rules do: a blip a
		// retry cleared is not a gateway failure.
		if s.Dependency != "" && !r.Retried && (s.Dependency == sh.dependency || !announced) {
			switch {
			case s.Dependency == sh.dependency && s.Status == result.Passed:
				sh.depOK.Inc()
			case s.Dependency == sh.dependency:
				sh.depFailed.Inc()
			default: // an ad-hoc flow whose step changed its dependency
				m.dependency.WithLabelValues(r.Flow, s.Name, s.Dependency, outcome(s)).Inc()
			}
			if s.Status != result.Passed {
				m.depFailures.WithLabelValues(r.Flow, s.Name, s.Dependency, string(s.Class)).Inc()
			}
		}
	}
}

func outcome(s *result.Step) string {
	if s.Status == result.Passed {
		return "success"
	}
	return "failure"
}

func observe(o prometheus.Observer, d time.Duration, ex prometheus.Labels) {
	if eo, ok := o.(prometheus.ExemplarObserver); ok {
		eo.ObserveWithExemplar(d.Seconds(), ex)
		return
	}
	o.Observe(d.Seconds())
}

// Skipped counts a run not started because the previous one was running.
// Like Observe, it records nothing for a flow a reload removed.
func (m *Metrics) Skipped(flow string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.announced && m.cache[flow] == nil {
		return
	}
	m.skipped.WithLabelValues(flow).Inc()
}

// Started records a run's start and how late it was.
func (m *Metrics) Started(_ string, lateness time.Duration) {
	m.inFlight.Inc()
	m.lateness.Observe(max(lateness, 0).Seconds())
}

// Finished records the end of a run started with Started.
func (m *Metrics) Finished(string) { m.inFlight.Dec() }

// ConfigLoaded records a configuration load.
func (m *Metrics) ConfigLoaded(ok bool, at time.Time) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.reloadOK.Set(1)
		m.reloadTime.Set(float64(at.Unix()))
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.reloadOK.Set(0)
}

// streak keeps the state-since gauge and the failure info of a flow: what
// an evaluator reading Prometheus needs to tell "failing since 02:14 at
// step pay (swallowed_error)" without the prober's memory.
func (m *Metrics) streak(h *flowHandles, r *result.Run) {
	state := int32(1)
	if !r.OK() {
		state = 2
	}
	if h.state.Swap(state) != state {
		h.since.Set(float64(r.Start.UnixNano()) / 1e9)
	}
	if r.OK() {
		m.failure.DeletePartialMatch(prometheus.Labels{"flow": r.Flow})
		return
	}
	s := r.Failed()
	if s == nil {
		return
	}
	exp := ""
	if len(s.Failures) > 0 {
		exp = s.Failures[0].Expectation
	}
	labels := prometheus.Labels{"flow": r.Flow, "step": s.Name, "class": string(s.Class), "dependency": s.Dependency, "expectation": exp}
	h.failMu.Lock()
	defer h.failMu.Unlock()
	if h.lastFailure != nil && !maps.Equal(h.lastFailure, labels) {
		m.failure.Delete(h.lastFailure)
	}
	h.lastFailure = labels
	m.failure.With(labels).Set(float64(r.Start.UnixNano()) / 1e9)
}
