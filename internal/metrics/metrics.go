// Package metrics turns runs into Prometheus metrics: run and step outcomes,
// duration histograms whose exemplars carry the trace id, dependency calls,
// schedule health and the prober's own state. Label values are bounded: flow,
// step, region, class, dependency; never trace ids or URLs.
//
// The per-flow series (about a hundred samples for a flow of four steps) are
// held in compact per-flow records and exposed by one collector, rather than
// as client_golang vectors whose children cost about 24 KB per such flow:
// 10,000 flows fit in about 20 MB instead of 240 MB. What a scrape sees is
// the same: names, labels, types, help, exemplars. /metrics (Handler)
// streams those series from the records a few hundred at a time, rather
// than having the registry build all million of them for each scrape.
package metrics

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prober-dev/prober/internal/result"
)

// Buckets for step and flow durations: loopback calls to slow gateways.
var durationBuckets = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

const nBuckets = len(durationBuckets)

// Metrics is the prober's set of collectors. Safe for concurrent use.
type Metrics struct {
	lateness   prometheus.Histogram
	inFlight   prometheus.Gauge
	flowsGauge prometheus.Gauge
	reloads    *prometheus.CounterVec
	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge

	d      [nFamilies]*prometheus.Desc
	region *dto.LabelPair
	// quiet > 0 while Handler gathers the registry: the per-flow families
	// are then streamed, not collected (see flowCollector.Collect).
	quiet atomic.Int32
	// batch overrides streamBatch (tests: many batches from few flows).
	batch int

	mu    sync.RWMutex
	flows map[string]*flowData
	// announced is set by the first SetFlows: from then on flows holds
	// exactly the configured flows, and a run of any other flow (one still
	// in flight when a reload removed its flow) is not recorded, so that it
	// cannot bring the removed flow's series back.
	announced bool
	// Label pairs shared by every series with the same label and value
	// (step and dependency names repeat across flows). Guarded by mu.
	interned map[[2]string]*dto.LabelPair
}

// family is one of the per-flow families; familyInfo describes each.
type family uint8

const (
	famRuns family = iota
	famRunFailures
	famRetries
	famSkipped
	famStateSince
	famFailure
	famFlowDuration
	famLastSuccess
	famLastRun
	famSteps
	famStepDuration
	famStepPhase
	famDependency
	famDependencyFailures
	nFamilies

	allFamilies = nFamilies // appendFlow: every family
)

// familyInfo is the one description of the per-flow families: their descs
// for the registry, and the names, help and types the stream writes.
var familyInfo = [nFamilies]struct {
	name, help string
	kind       dto.MetricType
	labels     []string // variable labels; region is constant
}{
	famRuns: {"prober_runs_total",
		"Final flow runs by result (success or failure); both series exist from the start so rates see the first failure. Failures carry trace_id exemplars.",
		dto.MetricType_COUNTER, []string{"flow", "result"}},
	famRunFailures: {"prober_run_failures_total", "Final failed flow runs by failure class.",
		dto.MetricType_COUNTER, []string{"flow", "class"}},
	famFlowDuration: {"prober_flow_duration_seconds",
		"Duration of flow runs (main steps, cleanup excluded). Exemplars carry trace_id.",
		dto.MetricType_HISTOGRAM, []string{"flow"}},
	famLastSuccess: {"prober_last_run_success", "1 if the flow's last run passed, 0 if it failed.",
		dto.MetricType_GAUGE, []string{"flow"}},
	famLastRun: {"prober_last_run_timestamp_seconds", "Unix time at which the flow's last run started.",
		dto.MetricType_GAUGE, []string{"flow"}},
	famSteps: {"prober_step_runs_total",
		"Executed steps by failure class (ok when the step passed). Skipped steps are not counted.",
		dto.MetricType_COUNTER, []string{"flow", "step", "class"}},
	famStepDuration: {"prober_step_duration_seconds", "Duration of steps, including polling. Exemplars carry trace_id.",
		dto.MetricType_HISTOGRAM, []string{"flow", "step"}},
	famStepPhase: {"prober_step_phase_seconds",
		"Phases of the last attempt of the step's last run: dns, connect, tls, processing (request sent to first byte), transfer.",
		dto.MetricType_GAUGE, []string{"flow", "step", "phase"}},
	famDependency: {"prober_dependency_calls_total",
		"Calls of steps marked with a dependency (e.g. a bank gateway) in final runs, by outcome; both series exist from the start.",
		dto.MetricType_COUNTER, []string{"flow", "step", "dependency", "outcome"}},
	famDependencyFailures: {"prober_dependency_failures_total",
		"Failed calls of steps marked with a dependency (final runs), by failure class.",
		dto.MetricType_COUNTER, []string{"flow", "step", "dependency", "class"}},
	famSkipped: {"prober_runs_skipped_total",
		"Scheduled runs not started because the previous run of the flow was still going.",
		dto.MetricType_COUNTER, []string{"flow"}},
	famRetries: {"prober_run_retries_total",
		"Failed runs retried at once to confirm the failure (the retry's outcome is counted in prober_runs_total).",
		dto.MetricType_COUNTER, []string{"flow"}},
	famStateSince: {"prober_flow_state_since_timestamp_seconds",
		"Unix time at which the flow's current state (passing or failing, final runs) began.",
		dto.MetricType_GAUGE, []string{"flow"}},
	famFailure: {"prober_last_failure_info",
		"Present while the flow fails: where and how its last final run failed (value: when). Labels are bounded by the configuration.",
		dto.MetricType_GAUGE, []string{"flow", "step", "class", "dependency", "expectation"}},
}

var phaseNames = [5]string{"dns", "connect", "tls", "processing", "transfer"}

// Label pairs of fixed values, shared by every series.
var (
	lpSuccess = labelPair("result", "success")
	lpFailure = labelPair("result", "failure")
	lpOutSucc = labelPair("outcome", "success")
	lpOutFail = labelPair("outcome", "failure")
	lpClassOK = labelPair("class", string(result.OK))
	lpPhases  = func() (out [5]*dto.LabelPair) {
		for i, p := range phaseNames {
			out[i] = labelPair("phase", p)
		}
		return out
	}()
	lpClasses = func() map[string]*dto.LabelPair {
		m := map[string]*dto.LabelPair{}
		for _, c := range result.Classes {
			m[string(c)] = labelPair("class", string(c))
		}
		return m
	}()
	traceIDName = "trace_id"
)

// labelPair makes the pair name=value. Invalid UTF-8 in value (a flow or
// step name, an expectation) is replaced: the registry would fail the whole
// gather on it, and Prometheus the whole scrape.
func labelPair(name, value string) *dto.LabelPair {
	value = strings.ToValidUTF8(value, "\uFFFD")
	return &dto.LabelPair{Name: &name, Value: &value}
}

// classLP is the shared pair for a known class, or a new one.
func classLP(class string) *dto.LabelPair {
	if lp := lpClasses[class]; lp != nil {
		return lp
	}
	return labelPair("class", class)
}

// BuildInfo is reported as prober_build_info.
type BuildInfo struct {
	Version, Revision string
}

// New registers the collectors with reg. region is added to every series so
// that many regions' probers can share one Prometheus.
func New(reg prometheus.Registerer, region string, bi BuildInfo) *Metrics {
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"region": region}, reg)
	m := &Metrics{
		region: labelPair("region", region),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prober_schedule_lateness_seconds",
			Help:    "How late runs started against their planned time (scheduler and concurrency-limit delay).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 10},
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prober_runs_in_flight",
			Help: "Flow runs in progress.",
		}),
		flowsGauge: prometheus.NewGauge(prometheus.GaugeOpts{
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
		flows:    map[string]*flowData{},
		interned: map[[2]string]*dto.LabelPair{},
	}
	for f, fi := range familyInfo {
		m.d[f] = prometheus.NewDesc(fi.name, fi.help, fi.labels, prometheus.Labels{"region": region})
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "prober_build_info",
		Help:        "Build of the prober (always 1).",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": runtime.Version()},
	})
	info.Set(1)
	// The per-flow collector carries region as a constant label itself:
	// wrapping would allocate a label pair per series at every scrape.
	reg.MustRegister(flowCollector{m})
	wrapped.MustRegister(m.lateness, m.inFlight, m.flowsGauge, m.reloads, m.reloadOK, m.reloadTime, info)
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

// ---- per-flow state ----------------------------------------------------------

// flowData is one flow's series, guarded by mu.
type flowData struct {
	name string
	lp   *dto.LabelPair // flow=name

	mu sync.Mutex
	// shaped: the flow's series exist (announced by SetFlows, or seen in an
	// ad-hoc run). A flow only ever skipped, ad hoc, has only its skips.
	// Changes only under Metrics.mu held for writing (and mu).
	shaped  bool
	removed bool // a reload removed it; a scrape in progress skips it

	runsOK, runsFailed uint64
	failedEx           exemplar // of the last failed final run
	failures           classCounts
	retries, skipped   uint64
	duration           histo
	lastSuccess        float64
	lastRun            float64
	since              float64
	state              int8      // 0 unknown, 1 passing, 2 failing
	lastFailure        *failInfo // prober_last_failure_info while failing
	steps              []*stepData
}

type failInfo struct {
	step, class, dependency, expectation string
	value                                float64
	// The series' labels, made once per distinct failure rather than at
	// every scrape.
	lps [4]*dto.LabelPair
}

type stepData struct {
	name string
	lp   *dto.LabelPair
	// shaped: the step's series exist. An unknown step of an ad-hoc flow
	// is only counted by class (in classes, ok included).
	shaped     bool
	dependency string // as configured (announced) or first seen (ad hoc)
	ok         uint64
	classes    classCounts // failure classes
	duration   histo
	phases     [5]float64
	deps       []*depData // the configured dependency first
}

type depData struct {
	name       string
	lp         *dto.LabelPair
	ok, failed uint64
	// Which outcome series exist: both from the start for a configured
	// dependency, as they occur for another one of an ad-hoc flow.
	hasOK, hasFailed bool
	failures         classCounts
}

type classCount struct {
	class string
	n     uint64
}

// classCounts counts by class: a few entries, searched linearly.
type classCounts []classCount

func (c *classCounts) inc(class string) {
	for i := range *c {
		if (*c)[i].class == class {
			(*c)[i].n++
			return
		}
	}
	*c = append(*c, classCount{class, 1})
}

func (c classCounts) get(class string) uint64 {
	for _, x := range c {
		if x.class == class {
			return x.n
		}
	}
	return 0
}

// exemplar is an observation's trace id, value and time (unix ns); no
// trace id: none.
type exemplar struct {
	trace string
	value float64
	at    int64
}

// histo is a classic histogram over durationBuckets, with the latest
// exemplar of each bucket hit.
type histo struct {
	// Per bucket, not cumulative; the last is +Inf. uint32, saturating
	// (136 years of one step a second): 40,000 steps' histograms are
	// 2.2 MB smaller than in uint64, and a step's record fits a smaller
	// allocation size class (240 bytes instead of 320).
	counts [nBuckets + 1]uint32
	count  uint64
	sum    float64
	ex     []bucketExemplar
}

type bucketExemplar struct {
	bucket int
	exemplar
}

func (h *histo) observe(v float64, ex exemplar) {
	i := sort.SearchFloat64s(durationBuckets[:], v) // le: the first bound >= v
	if h.counts[i] != math.MaxUint32 {
		h.counts[i]++
	}
	h.count++
	h.sum += v
	if ex.trace == "" {
		return
	}
	ex.value = v
	for j := range h.ex {
		if h.ex[j].bucket == i {
			h.ex[j].exemplar = ex
			return
		}
	}
	h.ex = append(h.ex, bucketExemplar{i, ex})
}

// validExemplar: client_golang panics on exemplar labels over 128 runes.
func validExemplar(trace string) bool {
	return trace != "" && utf8.ValidString(trace) && utf8.RuneCountInString(trace)+len(traceIDName) <= prometheus.ExemplarMaxRunes
}

// intern returns the shared label pair name=value. The caller holds mu for
// writing.
func (m *Metrics) intern(name, value string) *dto.LabelPair {
	k := [2]string{name, value}
	lp := m.interned[k]
	if lp == nil {
		lp = labelPair(name, value)
		m.interned[k] = lp
	}
	return lp
}

// reshape gives fd the series of shape s, keeping the counts of the steps
// it keeps. Callers hold m.mu for writing and fd.mu.
func (m *Metrics) reshape(fd *flowData, s FlowShape) {
	fd.shaped = true
	steps := make([]*stepData, 0, len(s.Steps))
	for _, ss := range s.Steps {
		var sd *stepData
		for _, old := range fd.steps {
			if old.name == ss.Name {
				sd = old
				break
			}
		}
		if slices.ContainsFunc(steps, func(x *stepData) bool { return x.name == ss.Name }) {
			continue // a step name twice: one set of series
		}
		if sd == nil {
			sd = &stepData{name: ss.Name}
		}
		sd.lp = m.intern("step", ss.Name)
		if !sd.shaped { // counted ad hoc until now: its ok count moves over
			sd.shaped = true
			sd.ok += sd.classes.get(string(result.OK))
			sd.classes = slices.DeleteFunc(sd.classes, func(c classCount) bool { return c.class == string(result.OK) })
		}
		sd.dependency = ss.Dependency
		// Only the configured dependency's series: another one's (a
		// changed dependency, or one an ad-hoc run used) are dropped.
		var dep *depData
		for _, d := range sd.deps {
			if d.name == ss.Dependency {
				dep = d
			}
		}
		sd.deps = sd.deps[:0:0]
		if ss.Dependency != "" {
			if dep == nil {
				dep = &depData{name: ss.Dependency}
			}
			dep.lp = m.intern("dependency", ss.Dependency)
			dep.hasOK, dep.hasFailed = true, true
			sd.deps = append(sd.deps, dep)
		}
		steps = append(steps, sd)
	}
	fd.steps = steps
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
	m.interned = map[[2]string]*dto.LabelPair{} // only what the new set uses stays
	next := make(map[string]*flowData, len(flows))
	for _, f := range flows {
		fd := m.flows[f.Name]
		if fd == nil {
			fd = &flowData{name: f.Name, lp: labelPair("flow", f.Name)}
		}
		fd.mu.Lock()
		m.reshape(fd, f)
		fd.mu.Unlock()
		next[f.Name] = fd
	}
	for name, fd := range m.flows {
		if next[name] == nil {
			fd.mu.Lock()
			fd.removed = true
			fd.mu.Unlock()
		}
	}
	m.flows = next
	m.flowsGauge.Set(float64(len(flows)))
}

// adhoc gives the series of a run's flow that SetFlows did not announce
// (tools that never call SetFlows). Once SetFlows has been called it does
// nothing: the run's flow was removed by a reload.
func (m *Metrics) adhoc(r *result.Run) {
	shape := FlowShape{Name: r.Flow}
	for _, s := range r.Steps {
		shape.Steps = append(shape.Steps, StepShape{s.Name, s.Dependency})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.announced {
		return
	}
	fd := m.flows[r.Flow]
	if fd == nil {
		fd = &flowData{name: r.Flow, lp: labelPair("flow", r.Flow)}
		m.flows[r.Flow] = fd
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if !fd.shaped {
		m.reshape(fd, shape)
	}
}

// Observe records a completed run.
//
// The read lock is held throughout so that a concurrent SetFlows cannot
// remove a flow's series halfway through and see some of them come back.
func (m *Metrics) Observe(r *result.Run) {
	m.mu.RLock()
	fd, announced := m.flows[r.Flow], m.announced
	if (fd == nil || !fd.shaped) && !announced {
		m.mu.RUnlock()
		m.adhoc(r)
		m.mu.RLock()
		fd, announced = m.flows[r.Flow], m.announced
	}
	defer m.mu.RUnlock()
	if fd == nil || !fd.shaped {
		return // a late run of a flow a reload removed
	}
	var ex exemplar
	if validExemplar(r.TraceID) {
		ex = exemplar{trace: r.TraceID, at: time.Now().UnixNano()}
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	switch {
	case r.Retried:
		// Not the final word on its slot: the retry that follows is. The
		// run counters (and so success ratios and burn rates) see each slot
		// once; a blip the retry clears is only a retry.
		fd.retries++
	case r.OK():
		fd.runsOK++
		fd.lastSuccess = 1
	default:
		// The exemplar lets an evaluator far away find the trace ids of
		// failing runs (query_exemplars) without a label per trace.
		fd.runsFailed++
		if ex.trace != "" {
			fd.failedEx = ex
			fd.failedEx.value = 1
		}
		fd.failures.inc(string(r.Class))
		fd.lastSuccess = 0
	}
	if !r.Retried {
		fd.lastRun = float64(r.Start.UnixNano()) / 1e9
		fd.duration.observe(r.Duration.Seconds(), ex)
		streak(fd, r)
	}
	for i := range r.Steps {
		s := &r.Steps[i]
		if s.Status == result.Skipped {
			continue
		}
		var sd *stepData
		for _, x := range fd.steps {
			if x.name == s.Name {
				sd = x
				break
			}
		}
		if sd == nil {
			// A step the configured flow does not have: a late run of the
			// flow's previous shape (not recorded, its series were
			// deleted), or an ad-hoc flow that changed shape (counted).
			if !announced {
				sd = &stepData{name: s.Name, lp: labelPair("step", s.Name)}
				fd.steps = append(fd.steps, sd) // under m.mu for reading, but ad hoc: SetFlows was never called
				sd.classes.inc(string(s.Class))
			}
			continue
		}
		if !sd.shaped {
			sd.classes.inc(string(s.Class))
			continue
		}
		if s.Status == result.Passed {
			sd.ok++
		} else {
			sd.classes.inc(string(s.Class))
		}
		sd.duration.observe(s.Duration.Seconds(), ex)
		t := s.Timings
		for j, d := range [5]time.Duration{t.DNS, t.Connect, t.TLS, t.Processing, t.Transfer} {
			sd.phases[j] = d.Seconds()
		}
		// Dependency calls count final runs only, as the rules do: a blip a
		// retry cleared is not a gateway failure.
		if s.Dependency == "" || r.Retried || (s.Dependency != sd.dependency && announced) {
			continue
		}
		var dep *depData
		for _, d := range sd.deps {
			if d.name == s.Dependency {
				dep = d
				break
			}
		}
		if dep == nil { // an ad-hoc flow whose step changed its dependency
			dep = &depData{name: s.Dependency, lp: labelPair("dependency", s.Dependency)}
			sd.deps = append(sd.deps, dep)
		}
		if s.Status == result.Passed {
			dep.ok++
			dep.hasOK = true
		} else {
			dep.failed++
			dep.hasFailed = true
			dep.failures.inc(string(s.Class))
		}
	}
}

// streak keeps the state-since gauge and the failure info of a flow: what
// an evaluator reading Prometheus needs to tell "failing since 02:14 at
// step pay (swallowed_error)" without the prober's memory. The caller holds
// fd.mu.
func streak(fd *flowData, r *result.Run) {
	state := int8(1)
	if !r.OK() {
		state = 2
	}
	if fd.state != state {
		fd.state = state
		fd.since = float64(r.Start.UnixNano()) / 1e9
	}
	if r.OK() {
		fd.lastFailure = nil
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
	at := float64(r.Start.UnixNano()) / 1e9
	if f := fd.lastFailure; f != nil && f.step == s.Name && f.class == string(s.Class) && f.dependency == s.Dependency && f.expectation == exp {
		f.value = at // the same failure again: its labels stay
		return
	}
	fd.lastFailure = &failInfo{step: s.Name, class: string(s.Class), dependency: s.Dependency, expectation: exp, value: at,
		lps: [4]*dto.LabelPair{labelPair("step", s.Name), classLP(string(s.Class)),
			labelPair("dependency", s.Dependency), labelPair("expectation", exp)}}
}

// Skipped counts a run not started because the previous one was running.
// Like Observe, it records nothing for a flow a reload removed.
func (m *Metrics) Skipped(flow string) {
	m.mu.RLock()
	fd := m.flows[flow]
	if fd == nil {
		announced := m.announced
		m.mu.RUnlock()
		if announced {
			return
		}
		m.mu.Lock()
		if fd = m.flows[flow]; fd == nil && !m.announced {
			fd = &flowData{name: flow, lp: labelPair("flow", flow)}
			m.flows[flow] = fd
		}
		m.mu.Unlock()
		if fd == nil {
			return
		}
		m.mu.RLock()
	}
	defer m.mu.RUnlock()
	fd.mu.Lock()
	fd.skipped++
	fd.mu.Unlock()
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

// ---- exposition ---------------------------------------------------------------
//
// Two paths read the records, both through appendFlow: flowCollector, for
// whoever gathers the registry (tests, tools, the load harness), and the
// /metrics Handler (stream.go), which streams the same series family by
// family without building them all at once.

// flowCollector exposes every flow's series to the registry. It stays
// registered so that the registry checks names against it and a Gather
// still sees every series; Handler silences it while it gathers.
type flowCollector struct{ m *Metrics }

func (c flowCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.m.d {
		ch <- d
	}
}

func (c flowCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	if m.quiet.Load() > 0 {
		// Handler is gathering the rest of the registry and streams these
		// families itself. A Gather by anyone else at that moment misses
		// them too: the daemon has no such gatherer while serving.
		return
	}
	for _, fd := range m.flowList(false) {
		// One allocation per flow for its series: they are sent, and
		// read by the registry after this returns, so never reused.
		batch := m.appendFlow(nil, fd, allFamilies, nil)
		for i := range batch {
			ch <- &batch[i]
		}
	}
}

// flowList returns the flows, sorted by name when sorted is set.
func (m *Metrics) flowList(sorted bool) []*flowData {
	m.mu.RLock()
	fds := make([]*flowData, 0, len(m.flows))
	for _, fd := range m.flows {
		fds = append(fds, fd)
	}
	m.mu.RUnlock()
	if sorted {
		slices.SortFunc(fds, func(a, b *flowData) int { return strings.Compare(a.name, b.name) })
	}
	return fds
}

// sample is one series: labels (region, then variable labels in any
// order), and a counter or gauge value or a histogram. As a
// prometheus.Metric it is what flowCollector sends.
type sample struct {
	desc   *prometheus.Desc
	kind   dto.MetricType
	labels [6]*dto.LabelPair
	n      int
	value  float64
	ex     exemplar
	h      histo // a copy; its exemplars too
}

func (s *sample) Desc() *prometheus.Desc { return s.desc }

func (s *sample) Write(out *dto.Metric) error {
	// A fresh slice, exactly as long: a wrapping registry appends to it.
	out.Label = slices.Clone(s.labels[:s.n])
	slices.SortFunc(out.Label, compareLabels)
	switch s.kind {
	case dto.MetricType_COUNTER:
		out.Counter = &dto.Counter{Value: &s.value, Exemplar: s.ex.dto()}
	case dto.MetricType_GAUGE:
		out.Gauge = &dto.Gauge{Value: &s.value}
	case dto.MetricType_HISTOGRAM:
		out.Histogram = s.h.dto()
	}
	return nil
}

func compareLabels(a, b *dto.LabelPair) int { return cmp.Compare(a.GetName(), b.GetName()) }

func (e exemplar) dto() *dto.Exemplar {
	if e.trace == "" {
		return nil
	}
	v, trace := e.value, e.trace
	return &dto.Exemplar{
		Label:     []*dto.LabelPair{{Name: &traceIDName, Value: &trace}},
		Value:     &v,
		Timestamp: timestamppb.New(time.Unix(0, e.at)),
	}
}

func (h *histo) dto() *dto.Histogram {
	count, sum := h.count, h.sum
	out := &dto.Histogram{SampleCount: &count, SampleSum: &sum, Bucket: make([]*dto.Bucket, nBuckets, nBuckets+1)}
	cums := make([]uint64, nBuckets+1)
	var cum uint64
	for i := range durationBuckets {
		cum += uint64(h.counts[i])
		cums[i] = cum
		out.Bucket[i] = &dto.Bucket{CumulativeCount: &cums[i], UpperBound: &durationBuckets[i]}
	}
	cums[nBuckets] = count
	for _, e := range h.ex {
		if e.bucket < nBuckets {
			out.Bucket[e.bucket].Exemplar = e.exemplar.dto()
			continue
		}
		// An exemplar on +Inf needs that bucket spelled out, as client_golang does.
		inf := math.Inf(1)
		out.Bucket = append(out.Bucket, &dto.Bucket{CumulativeCount: &cums[nBuckets], UpperBound: &inf, Exemplar: e.exemplar.dto()})
	}
	return out
}

// appendFlow appends to out fd's series of family only, or of every family
// (allFamilies), copied under fd's lock. Histogram exemplars are copied to
// *exs when exs is not nil (storage the caller reuses), else to fresh
// slices.
func (m *Metrics) appendFlow(out []sample, fd *flowData, only family, exs *[]bucketExemplar) []sample {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if fd.removed {
		return out
	}
	want := func(f family) bool { return only == allFamilies || only == f }
	add := func(f family, v float64, lps ...*dto.LabelPair) *sample {
		out = append(out, sample{desc: m.d[f], kind: familyInfo[f].kind, value: v})
		s := &out[len(out)-1]
		s.labels[0], s.labels[1] = m.region, fd.lp
		s.n = 2 + copy(s.labels[2:], lps)
		return s
	}
	addHisto := func(f family, h *histo, lps ...*dto.LabelPair) {
		s := add(f, 0, lps...)
		s.h = *h
		if exs == nil {
			s.h.ex = slices.Clone(h.ex)
			return
		}
		start := len(*exs)
		*exs = append(*exs, h.ex...)
		s.h.ex = (*exs)[start:len(*exs):len(*exs)]
	}
	if want(famSkipped) && (fd.skipped > 0 || fd.shaped) {
		add(famSkipped, float64(fd.skipped))
	}
	if !fd.shaped {
		return out
	}
	if want(famRuns) {
		add(famRuns, float64(fd.runsOK), lpSuccess)
		add(famRuns, float64(fd.runsFailed), lpFailure).ex = fd.failedEx
	}
	if want(famRunFailures) {
		for _, c := range fd.failures {
			add(famRunFailures, float64(c.n), classLP(c.class))
		}
	}
	if want(famRetries) {
		add(famRetries, float64(fd.retries))
	}
	if want(famStateSince) {
		add(famStateSince, fd.since)
	}
	if want(famLastSuccess) {
		add(famLastSuccess, fd.lastSuccess)
	}
	if want(famLastRun) {
		add(famLastRun, fd.lastRun)
	}
	if want(famFlowDuration) {
		addHisto(famFlowDuration, &fd.duration)
	}
	if f := fd.lastFailure; f != nil && want(famFailure) {
		add(famFailure, f.value, f.lps[:]...)
	}
	if !want(famSteps) && !want(famStepDuration) && !want(famStepPhase) && !want(famDependency) && !want(famDependencyFailures) {
		return out
	}
	for _, sd := range fd.steps {
		if want(famSteps) {
			if sd.shaped {
				add(famSteps, float64(sd.ok), sd.lp, lpClassOK)
			}
			for _, c := range sd.classes {
				add(famSteps, float64(c.n), sd.lp, classLP(c.class))
			}
		}
		if !sd.shaped {
			continue
		}
		if want(famStepDuration) {
			addHisto(famStepDuration, &sd.duration, sd.lp)
		}
		if want(famStepPhase) {
			for i, v := range sd.phases {
				add(famStepPhase, v, sd.lp, lpPhases[i])
			}
		}
		for _, dep := range sd.deps {
			if want(famDependency) {
				if dep.hasOK {
					add(famDependency, float64(dep.ok), sd.lp, dep.lp, lpOutSucc)
				}
				if dep.hasFailed {
					add(famDependency, float64(dep.failed), sd.lp, dep.lp, lpOutFail)
				}
			}
			if want(famDependencyFailures) {
				for _, c := range dep.failures {
					add(famDependencyFailures, float64(c.n), sd.lp, dep.lp, classLP(c.class))
				}
			}
		}
	}
	return out
}
