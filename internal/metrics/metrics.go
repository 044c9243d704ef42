// Package metrics turns runs into Prometheus metrics: run and step outcomes,
// duration histograms whose exemplars carry the trace id, dependency calls,
// schedule health and the prober's own state. Label values are bounded: flow,
// step, region, class, dependency; never trace ids or URLs.
//
// A flow's series are within a budget at the default level (at most 15 for
// one step, 40 for four: FlowShape.Detailed, README "Metric levels"); the
// detailed level exports about a hundred for four steps. They are
// held in compact per-flow records and exposed by one collector, rather than
// as client_golang vectors whose children cost about 24 KB per such flow:
// 10,000 flows fit in about 15 MB instead of 240 MB. What a scrape sees is
// the same: names, labels, types, help, exemplars. /metrics (Handler)
// streams those series from the records a few hundred at a time, rather
// than having the registry build all million of them for each scrape.
package metrics

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/bits"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prober-dev/prober/internal/result"
)

// Buckets for step and flow durations: loopback calls to slow gateways.
var durationBuckets = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

const nBuckets = len(durationBuckets)

// coarse marks the durationBuckets that a histogram at the default metric
// level exposes (.1, .25, 1 and 5 s; +Inf always): four le buckets rather
// than thirteen keep a one-step flow within its budget of 15 series, and a
// latency rule's threshold adds its exact bucket (FlowShape.Bounds) where a
// question is asked. The counts are kept per standard bucket regardless:
// a coarse bucket's cumulative count is exact, only the exposure differs.
var coarse = func() (out [nBuckets]bool) {
	for i, b := range durationBuckets {
		out[i] = b == .1 || b == .25 || b == 1 || b == 5
	}
	return out
}()

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
	flows []*flowData // by name
	// announced is set by the first SetFlows: from then on flows holds
	// exactly the configured flows, and a run of any other flow (one still
	// in flight when a reload removed its flow) is not recorded, so that it
	// cannot bring the removed flow's series back.
	announced bool
	// Labels shared by every series with the same label and value (step
	// and dependency names repeat across flows). Guarded by mu.
	interned map[[2]string]*label
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
	famCertExpiry
	famStepRetries
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
		"Calls of steps marked with a dependency (e.g. a bank gateway) in final runs, by result (success, failure, as in prober_runs_total); both series exist from the start.",
		dto.MetricType_COUNTER, []string{"flow", "step", "dependency", "result"}},
	famDependencyFailures: {"prober_dependency_failures_total",
		"Failed calls of steps marked with a dependency (final runs), by failure class.",
		dto.MetricType_COUNTER, []string{"flow", "step", "dependency", "class"}},
	famCertExpiry: {"prober_cert_expiry_timestamp_seconds",
		"Unix time at which the leaf certificate of the step's last TLS handshake (tls steps, HTTPS requests) expires (its not-after), by the host it was read from.",
		dto.MetricType_GAUGE, []string{"flow", "step", "host"}},
	famStepRetries: {"prober_step_retries_total",
		"Requests that a step's retry: block sent again after a failed attempt (a 429, a 5xx, a refused connection), in every run, retried runs included; until polls are not counted. Exists only for steps with a retry: block.",
		dto.MetricType_COUNTER, []string{"flow", "step"}},
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
		"1 while the flow fails: where and how its last final run failed (when: prober_last_run_timestamp_seconds). Labels are bounded by the configuration.",
		dto.MetricType_GAUGE, []string{"flow", "step", "class", "dependency", "expectation"}},
}

var phaseNames = [5]string{"dns", "connect", "tls", "processing", "transfer"}

// Label pairs of fixed values, shared by every series.
var (
	lpSuccess = labelPair("result", "success")
	lpFailure = labelPair("result", "failure")
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
	// Label names that labels point to rather than each holding a copy.
	traceIDName, flowName, stepName, depName, hostName = "trace_id", "flow", "step", "dependency", "host"
)

// labelPair makes the pair name=value. Invalid UTF-8 in value (a flow or
// step name, an expectation) is replaced: the registry would fail the whole
// gather on it, and Prometheus the whole scrape.
func labelPair(name, value string) *dto.LabelPair {
	value = strings.ToValidUTF8(value, "\uFFFD")
	return &dto.LabelPair{Name: &name, Value: &value}
}

// label is a record's label pair (step, dependency or host; a flow's is
// made by each scrape, flowData.label) and the name it was made from: the
// pair's value has invalid UTF-8 replaced, and records are found by the
// name as runs give it. One allocation, rather than a
// pair, its two strings and the name in the record.
type label struct {
	lp  dto.LabelPair
	raw string
}

// newLabel makes the label *name=raw. name is one of the label names above.
func newLabel(name *string, raw string) *label {
	l := &label{raw: raw}
	l.lp.Name, l.lp.Value = name, &l.raw
	if !utf8.ValidString(raw) {
		v := strings.ToValidUTF8(raw, "\uFFFD")
		l.lp.Value = &v
	}
	return l
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
		interned: map[[2]string]*label{},
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
	// Bounds are bucket boundaries (seconds) that the flow's duration
	// histogram has besides the standard ones: the thresholds of latency
	// rules over the flow, so that a Prometheus rule can ask "how many runs
	// were slower than the threshold" of a le bucket exactly, rather than
	// interpolating within one. Only the histograms a rule reads get one:
	// each is one more series.
	Bounds []float64
	// Detailed: the flow exports the full detail (Level) rather than the
	// default level's budget.
	Detailed bool
	// Retries: the flow retries failed runs, so its retry counter exists
	// from the start at the default level too (rates see the first one).
	Retries bool
}

// StepShape is one step of a FlowShape.
type StepShape struct {
	Name, Dependency string
	Bounds           []float64 // of the step's duration histogram, as FlowShape.Bounds
	// Histogram: the step's duration histogram is exported at the default
	// level (a latency rule reads it); at the detailed level every step's is.
	// A step with Bounds has one anyway.
	Histogram bool
	// Cert: the step makes a TLS handshake when it runs (a tls step, an
	// HTTPS request), so its first run adds its certificate's expiry
	// series (at both levels). Only the series calculator reads it: the
	// series itself follows the runs.
	Cert bool
	// Retry: the step has a retry: block, so its retry counter
	// (prober_step_retries_total) exists from the start, at both levels.
	// A step without one has none: it cannot retry.
	Retry bool
}

// The metric levels. Default keeps what the rules, the dashboard and the
// exemplars need within a budget (at most 15 series for a one-step flow,
// 40 for four steps); detailed adds the per-class, per-phase and per-step
// detail. README: "Metric levels".
const (
	LevelDefault  = "default"
	LevelDetailed = "detailed"
)

// ---- per-flow state ----------------------------------------------------------

// The records below are cut to allocation size classes: at 10,000 flows of
// four steps, 10,000 flowData of 160 bytes, each with its steps in one
// array of 24 bytes a step (96 for four), and a flow found by binary search
// in a list by name: about 350 bytes a flow where there were 700 (a
// flowData of 256, its label of 80, a map entry, a 48-byte stepData and a
// pointer per step). TestRecordSizes pins their sizes,
// TestRetainedDefaultLevel what they keep.

// flowData is one flow's series, guarded by mu.
type flowData struct {
	// name is the flow's, as configured (the configuration holds the
	// string): its label pair is made by a scrape (label), not kept.
	name string

	mu sync.Mutex
	// shaped: the flow's series exist (announced by SetFlows, or seen in an
	// ad-hoc run). A flow only ever skipped, ad hoc, has only its skips.
	// Changes only under Metrics.mu held for writing (and mu).
	shaped  bool
	removed bool // a reload removed it; a scrape in progress skips it
	// state is 0 before the first final run, then 1 if the last passed, 2
	// if it failed: prober_last_run_success is 1 in state 1 only.
	state int8
	// opts are the shape's level options (optDetailed, optRetries).
	opts uint8
	// steps are nSteps records from steps0 (stepList), the configured
	// ones first (nShaped), whose series exist. A pointer and a count
	// rather than a slice: what takes flowData to 160 bytes.
	nSteps int32

	runsOK   uint64
	duration histo
	lastRun  float64
	since    float64
	steps0   *stepData
	// rare is what a flow that never failed, retried, skipped, saw a
	// certificate nor has a retry: block does without: nil for most.
	rare *flowRare
}

// flowRare is what few flows need (flowData.rare).
type flowRare struct {
	// unshaped is how many of the flow's last steps are not configured:
	// those of an ad-hoc flow that changed shape, only counted by class
	// (in classes, ok included).
	unshaped         int32
	runsFailed       uint64
	failedEx         exemplar // of the last failed final run
	failedOdd        *string  // its trace id when failedEx.id cannot hold it
	failures         classCounts
	retries, skipped uint64
	lastFailure      *failInfo // prober_last_failure_info while failing
	// certs: prober_cert_expiry_timestamp_seconds, one per shaped step
	// that has made a TLS handshake.
	certs *certData
	// stepRetries: prober_step_retries_total, one per shaped step with a
	// retry: block (StepShape.Retry), in the configured order.
	stepRetries *stepRetries
}

// stepList is fd's steps (fd's own storage). The caller holds fd.mu.
func (fd *flowData) stepList() []stepData { return unsafe.Slice(fd.steps0, fd.nSteps) }

// setSteps makes steps fd's steps. The caller holds fd.mu.
func (fd *flowData) setSteps(steps []stepData) {
	fd.steps0, fd.nSteps = nil, int32(len(steps))
	if len(steps) > 0 {
		fd.steps0 = &steps[0]
	}
}

// nShaped is how many of fd's steps are configured: the first ones. The
// caller holds fd.mu.
func (fd *flowData) nShaped() int {
	if fd.rare == nil {
		return int(fd.nSteps)
	}
	return int(fd.nSteps - fd.rare.unshaped)
}

// more is fd.rare, made if nil. The caller holds fd.mu.
func (fd *flowData) more() *flowRare {
	if fd.rare == nil {
		fd.rare = &flowRare{}
	}
	return fd.rare
}

// stepRetries counts the retries of one step's requests.
type stepRetries struct {
	step int32 // in the flow's steps
	n    uint64
	next *stepRetries
}

const (
	optDetailed uint8 = 1 << iota // FlowShape.Detailed
	optRetries                    // FlowShape.Retries
)

type failInfo struct {
	step, class, dependency, expectation string
	// The series' labels, made once per distinct failure rather than at
	// every scrape.
	lps [4]*dto.LabelPair
}

// certData is the certificate a step last saw: one series per step (the
// latest host: a step whose address changes moves its series, rather than
// growing one per host it ever saw).
type certData struct {
	step     int32  // in the flow's steps
	host     *label // host=...
	target   string // the step's URL the host was read from: the same one next run reuses host
	notAfter float64
	next     *certData
}

// stepData is one step's series, in its flow's array of steps.
type stepData struct {
	lbl *label // step=name, interned once configured
	ok  uint64
	// x is the rest, which most steps at the default level do without:
	// nil for a step with no dependency, no histogram shown and no failure.
	x *stepExt
}

// stepExt is what some steps have besides their ok count (stepData.x).
type stepExt struct {
	classes classCounts // failure classes
	deps    *depData    // the configured dependency first: once announced, the only one
	// detail is what a scrape shows only of some steps: nil for a step
	// at the default level that no rule reads, which a run does not
	// observe (10,000 four-step flows: 7 MB of live heap).
	detail *stepDetail
}

// ext is sd.x, made if nil. The caller holds the flow's mu.
func (sd *stepData) ext() *stepExt {
	if sd.x == nil {
		sd.x = &stepExt{}
	}
	return sd.x
}

// classes is sd's failure counts (nil: none).
func (sd *stepData) classes() *classCount {
	if sd.x == nil {
		return nil
	}
	return sd.x.classes.first
}

// deps is sd's dependencies (nil: none).
func (sd *stepData) deps() *depData {
	if sd.x == nil {
		return nil
	}
	return sd.x.deps
}

// detail is sd's histogram and phases (nil: none).
func (sd *stepData) detail() *stepDetail {
	if sd.x == nil {
		return nil
	}
	return sd.x.detail
}

// tidy drops sd.x when it holds nothing.
func (sd *stepData) tidy() {
	if x := sd.x; x != nil && x.classes.first == nil && x.deps == nil && x.detail == nil {
		sd.x = nil
	}
}

// stepDetail is a step's duration histogram (shown at the detailed level,
// or when a rule reads it) and its last phases (detailed only).
type stepDetail struct {
	duration histo
	phases   [5]time.Duration // in seconds when exposed: off the observe path
}

// depData is a step's calls of a dependency: 24 bytes, its failures and
// the rest in x, which a configured dependency that never failed does
// without.
type depData struct {
	lbl *label // dependency=name
	ok  uint64
	x   *depExt
}

type depExt struct {
	failed   uint64
	failures classCounts
	next     *depData
	// Which outcome series exist: both from the start for a configured
	// dependency (and when x is nil), as they occur for another one of an
	// ad-hoc flow.
	hasOK, hasFailed bool
}

// ext is d.x, made if nil (both series existing, as x nil says).
func (d *depData) ext() *depExt {
	if d.x == nil {
		d.x = &depExt{hasOK: true, hasFailed: true}
	}
	return d.x
}

// has says which of d's outcome series exist.
func (d *depData) has() (ok, failed bool) {
	if d.x == nil {
		return true, true
	}
	return d.x.hasOK, d.x.hasFailed
}

// next is the step's dependency after d, or nil.
func (d *depData) next() *depData {
	if d.x == nil {
		return nil
	}
	return d.x.next
}

// failed is d's count of failed calls.
func (d *depData) failed() uint64 {
	if d.x == nil {
		return 0
	}
	return d.x.failed
}

// classCount is one class's count in a list: most records count no class
// or one, for which a slice would take 24 bytes of header alone.
type classCount struct {
	class string
	n     uint64
	next  *classCount
}

// classCounts counts by class, in the order first counted.
type classCounts struct{ first *classCount }

func (c *classCounts) inc(class string) {
	p := &c.first
	for ; *p != nil; p = &(*p).next {
		if (*p).class == class {
			(*p).n++
			return
		}
	}
	*p = &classCount{class: class, n: 1}
}

// take removes class's count and returns it.
func (c *classCounts) take(class string) uint64 {
	for p := &c.first; *p != nil; p = &(*p).next {
		if (*p).class == class {
			n := (*p).n
			*p = (*p).next
			return n
		}
	}
	return 0
}

// traceID is a trace id of 32 lowercase hex digits (the runner's), decoded
// so that an exemplar holds no pointer: no string kept alive per exemplar,
// nothing for the GC to scan. Zero: no trace id, or one of another form,
// kept aside as a string by the exemplar's owner. Two words, not [16]byte:
// written and copied in 8-byte moves, it is read back without the
// store-forwarding stalls of byte stores read 16 at a time.
type traceID struct{ hi, lo uint64 }

const traceIDLen = 32 // hex digits

// parseTraceID decodes s if it is 32 lowercase hex digits, not all zero
// (so that the id encodes back to s, and zero stays free). It is on the
// path of every run: eight digits at a time, it costs less than the UTF-8
// checks of validExemplar it spares.
func parseTraceID(s string) (traceID, bool) {
	if len(s) != traceIDLen {
		return traceID{}, false
	}
	a, okA := unhex8(s[0:8])
	b, okB := unhex8(s[8:16])
	c, okC := unhex8(s[16:24])
	d, okD := unhex8(s[24:32])
	id := traceID{uint64(a)<<32 | uint64(b), uint64(c)<<32 | uint64(d)}
	if !(okA && okB && okC && okD) || id == (traceID{}) {
		return traceID{}, false
	}
	return id, true
}

// unhex8 decodes 8 lowercase hex digits, all bytes at once (SWAR).
func unhex8(s string) (uint32, bool) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// s[0] in the top byte. Every byte below 0x80 (checked), adding
	// 0x80-k sets a byte's top bit iff it is >= k, carrying into no other.
	_ = s[7]
	x := uint64(s[0])<<56 | uint64(s[1])<<48 | uint64(s[2])<<40 | uint64(s[3])<<32 |
		uint64(s[4])<<24 | uint64(s[5])<<16 | uint64(s[6])<<8 | uint64(s[7])
	ge := func(k uint64) uint64 { return (x + (0x80-k)*ones) & highs }
	digit := ge('0') &^ ge('9'+1)
	letter := ge('a') &^ ge('f'+1)
	if x&highs != 0 || digit|letter != highs {
		return 0, false
	}
	n := x&(0x0f*ones) + (letter>>7)*9  // each byte its digit's value
	n = (n | n>>4) & 0x00ff00ff00ff00ff // two digits a byte
	n = (n | n>>8) & 0x0000ffff0000ffff
	return uint32(n | n>>16), true
}

func (id traceID) String() string { return string(id.appendHex(nil)) }

func (id traceID) appendHex(b []byte) []byte {
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], id.hi)
	binary.BigEndian.PutUint64(raw[8:], id.lo)
	return hex.AppendEncode(b, raw[:])
}

// exemplar is an observation's trace id, value and time (unix ns). A zero
// id: none, or the odd trace id its owner keeps next to it.
type exemplar struct {
	id    traceID
	value float64
	at    int64
}

// runTrace is a run's trace id as its exemplars take it: id, or odd when
// the id is valid but not of the form a traceID holds. ok: either.
type runTrace struct {
	id  traceID
	odd string
	at  int64
	ok  bool
}

// newRunTrace returns literals: a local set field by field is returned
// through 16-byte copies that stall on its smaller stores.
func newRunTrace(s string) runTrace {
	if id, ok := parseTraceID(s); ok {
		return runTrace{id: id, at: time.Now().UnixNano(), ok: true}
	}
	if validExemplar(s) {
		return runTrace{odd: s, at: time.Now().UnixNano(), ok: true}
	}
	return runTrace{}
}

// histo is a classic histogram over durationBuckets, with the latest
// exemplar of each bucket hit.
type histo struct {
	// Per bucket, not cumulative; the last is +Inf. uint32, saturating
	// (136 years of one step a second): 40,000 steps' histograms are
	// 2.2 MB smaller than in uint64. The count is their sum (and ext's).
	counts [nBuckets + 1]uint32
	sum    float64
	// The exemplars of the buckets in exb, in bucket order, in an array
	// of exactly that many: most histograms hold one to three. A pointer
	// and a bit set rather than a slice (and a bucket in each): what takes
	// stepData down to the 160-byte size class and an exemplar to 32 bytes.
	ex  *exemplar
	ext *histoExt // nil but in the rare cases it holds
	exb uint16
	// view is what a scrape sees of it: every standard bucket (viewFull,
	// the zero value: a flow never shaped, or detailed), the coarse ones
	// (viewCoarse), or nothing (viewHidden: a step at the default level
	// that no rule reads). In the struct's padding: no record grows.
	view uint8
}

const (
	viewFull uint8 = iota
	viewCoarse
	viewHidden
)

// histoExt is what few histograms need: the count of observations a
// saturated bucket did not take, and trace ids that a traceID cannot hold.
type histoExt struct {
	over uint64
	odd  []string // by bucket, when the exemplar's id is zero; or nil
	// Bounds besides durationBuckets (FlowShape.Bounds), ascending, none
	// of them standard, each with the observations that fell in its
	// standard bucket at or below it: a le bucket of its own at the price
	// of a count, while the standard buckets stay one array for all.
	extra []extraBound
}

// extraBound is a bucket boundary besides the standard ones.
type extraBound struct {
	le  float64
	std int    // the standard bucket it lies in (nBuckets: above the last)
	n   uint64 // observations in that bucket and <= le
}

// normBounds is bounds as histoExt.extra wants them: positive and finite,
// not standard, sorted, each once.
func normBounds(bounds []float64) []float64 {
	var out []float64
	for _, b := range bounds {
		if b > 0 && !math.IsInf(b, 0) && !slices.Contains(durationBuckets[:], b) && !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	slices.Sort(out)
	return out
}

// setBounds gives h the extra bounds (normalised by normBounds). A
// histogram whose bounds change starts again from zero, as it would in a
// new process: a new le bucket cannot know how many of the past
// observations it holds, and one that started at zero beside a count that
// did not would read as slow runs.
func (h *histo) setBounds(bounds []float64) {
	var have []float64
	if h.ext != nil {
		for _, x := range h.ext.extra {
			have = append(have, x.le)
		}
	}
	if slices.Equal(have, bounds) {
		return
	}
	*h = histo{}
	if len(bounds) == 0 {
		return
	}
	x := h.extend()
	x.extra = make([]extraBound, len(bounds))
	for i, b := range bounds {
		x.extra[i] = extraBound{le: b, std: bucketOf(b)}
	}
}

// withExtra inserts h's extra bounds into bs, its exposed buckets (in
// order, exemplars set, and +Inf last if an exemplar needed it), and moves
// an exemplar to the extra bucket it falls in, if any. cums are the
// cumulative counts of the standard buckets (eachBucket's).
func (h *histo) withExtra(bs []*dto.Bucket, cums *[nBuckets + 1]uint64) []*dto.Bucket {
	if h.ext == nil || len(h.ext.extra) == 0 {
		return bs
	}
	extra := h.ext.extra
	out := make([]*dto.Bucket, 0, len(bs)+len(extra))
	add := func(x extraBound) {
		le, cum := x.le, x.n
		if x.std > 0 { // and the standard buckets below its own
			cum += cums[x.std-1]
		}
		out = append(out, &dto.Bucket{UpperBound: &le, CumulativeCount: &cum})
	}
	j := 0
	for _, b := range bs {
		start := len(out)
		for ; j < len(extra) && extra[j].le < b.GetUpperBound(); j++ {
			add(extra[j])
		}
		if ex := b.Exemplar; ex != nil {
			for _, e := range out[start:] {
				if ex.GetValue() <= e.GetUpperBound() {
					e.Exemplar, b.Exemplar = ex, nil
					break
				}
			}
		}
		out = append(out, b)
	}
	for ; j < len(extra); j++ { // above the last standard bound, +Inf not spelled out
		add(extra[j])
	}
	return out
}

// eachBucket sets cums to the cumulative count of every standard bucket
// (+Inf last) and calls f, in order, with each standard bucket a scrape
// shows of h (all, or the coarse ones; nBuckets: +Inf, always) and the
// latest exemplar of the standard buckets it covers, if any (odd: see
// histoExt).
func (h *histo) eachBucket(cums *[nBuckets + 1]uint64, f func(i int, e *exemplar, odd string)) {
	var cum uint64
	for i := range nBuckets {
		cum += uint64(h.counts[i])
		cums[i] = cum
	}
	cums[nBuckets] = h.count()
	ex := h.exemplars()
	var best *exemplar
	bestOdd, k := "", 0
	for i := 0; i <= nBuckets; i++ {
		if h.exb&(1<<i) != 0 {
			e := &ex[k]
			k++
			if best == nil || e.at >= best.at {
				best, bestOdd = e, ""
				if h.ext != nil && h.ext.odd != nil {
					bestOdd = h.ext.odd[i]
				}
			}
		}
		if i < nBuckets && h.view == viewCoarse && !coarse[i] {
			continue // its exemplar, if the latest, goes to the next one shown
		}
		f(i, best, bestOdd)
		best, bestOdd = nil, ""
	}
}

// bucketOf is the bucket of v: the first bound >= v (le), as
// sort.SearchFloat64s finds it, but small enough to be inlined.
func bucketOf(v float64) int {
	i, j := 0, nBuckets
	for i < j {
		h := int(uint(i+j) >> 1)
		if !(durationBuckets[h] >= v) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i
}

// exemplars returns h's exemplars (h's own storage), in bucket order.
func (h *histo) exemplars() []exemplar { return unsafe.Slice(h.ex, bits.OnesCount16(h.exb)) }

func (h *histo) count() uint64 {
	var n uint64
	for _, c := range h.counts {
		n += uint64(c)
	}
	if h.ext != nil {
		n += h.ext.over
	}
	return n
}

func (h *histo) extend() *histoExt {
	if h.ext == nil {
		h.ext = &histoExt{}
	}
	return h.ext
}

func (h *histo) observe(v float64, t *runTrace) {
	i := bucketOf(v)
	if h.counts[i] != math.MaxUint32 {
		h.counts[i]++
	} else {
		h.extend().over++
	}
	h.sum += v
	if x := h.ext; x != nil {
		for k := range x.extra {
			if e := &x.extra[k]; e.std == i && v <= e.le {
				e.n++
			}
		}
	}
	if !t.ok {
		return
	}
	bit := uint16(1) << i
	k := bits.OnesCount16(h.exb & (bit - 1)) // bucket i's exemplar: the k-th
	ex := h.exemplars()
	if h.exb&bit == 0 {
		// Exactly one more: a histogram's buckets stop being new after
		// its first runs.
		grown := make([]exemplar, len(ex)+1)
		copy(grown, ex[:k])
		copy(grown[k+1:], ex[k:])
		h.ex, h.exb, ex = &grown[0], h.exb|bit, grown
	}
	// Field by field: a composite literal is built on the stack and copied
	// in 16-byte moves that stall on its 8-byte stores.
	e := &ex[k]
	e.id, e.value, e.at = t.id, v, t.at
	if t.odd != "" {
		x := h.extend()
		if x.odd == nil {
			x.odd = make([]string, nBuckets+1)
		}
		x.odd[i] = t.odd
	} else if h.ext != nil && h.ext.odd != nil {
		h.ext.odd[i] = "" // the id is the trace id now: the string goes
	}
}

// clone is a copy of h that shares nothing with it, its exemplars in exs
// when exs is not nil (storage the caller reuses).
func (h *histo) clone(exs *[]exemplar) histo {
	c := *h
	ex := h.exemplars()
	if exs != nil {
		start := len(*exs)
		*exs = append(*exs, ex...)
		ex = (*exs)[start:len(*exs):len(*exs)]
	} else {
		ex = slices.Clone(ex)
	}
	c.ex = nil
	if len(ex) > 0 {
		c.ex = &ex[0]
	}
	if h.ext != nil {
		x := *h.ext
		x.odd = slices.Clone(x.odd)
		x.extra = slices.Clone(x.extra)
		c.ext = &x
	}
	return c
}

// validExemplar: client_golang panics on exemplar labels over 128 runes.
func validExemplar(trace string) bool {
	return trace != "" && utf8.ValidString(trace) && utf8.RuneCountInString(trace)+len(traceIDName) <= prometheus.ExemplarMaxRunes
}

// intern returns the shared label *name=value. The caller holds mu for
// writing.
func (m *Metrics) intern(name *string, value string) *label {
	k := [2]string{*name, value}
	l := m.interned[k]
	if l == nil {
		l = newLabel(name, value)
		m.interned[k] = l
	}
	return l
}

// reshape gives fd the series of shape s, keeping the counts of the steps
// it keeps. Callers hold m.mu for writing and fd.mu.
func (m *Metrics) reshape(fd *flowData, s FlowShape) {
	fd.shaped = true
	steps := make([]stepData, 0, len(s.Steps))
	from := make([]int32, 0, len(s.Steps)) // each step's index in fd.steps, -1 if new
	had, nShaped := fd.stepList(), fd.nShaped()
	for _, ss := range s.Steps {
		if slices.ContainsFunc(steps, func(x stepData) bool { return x.lbl.raw == ss.Name }) {
			continue // a step name twice: one set of series
		}
		var sd stepData
		old, shaped := int32(-1), false
		for i := range had {
			if had[i].lbl.raw == ss.Name {
				sd, old, shaped = had[i], int32(i), i < nShaped
				break
			}
		}
		sd.lbl = m.intern(&stepName, ss.Name)
		bounds := normBounds(ss.Bounds)
		view := viewHidden
		switch {
		case s.Detailed:
			view = viewFull
		case ss.Histogram || len(bounds) > 0:
			view = viewCoarse
		}
		if view == viewHidden {
			// Not shown: not kept. Shown again after a reload, it starts
			// from zero, as a histogram whose bounds change does.
			if sd.x != nil {
				sd.x.detail = nil
			}
		} else {
			x := sd.ext()
			if x.detail == nil {
				x.detail = &stepDetail{}
			}
			x.detail.duration.setBounds(bounds)
			x.detail.duration.view = view
		}
		if !shaped && sd.x != nil { // counted ad hoc until now: its ok count moves over
			sd.ok += sd.x.classes.take(string(result.OK))
		}
		// Only the configured dependency's series: another one's (a
		// changed dependency, or one an ad-hoc run used) are dropped.
		var dep *depData
		for d := sd.deps(); d != nil; d = d.next() {
			if d.lbl.raw == ss.Dependency {
				dep = d
			}
		}
		if sd.x != nil {
			sd.x.deps = nil
		}
		if ss.Dependency != "" {
			if dep == nil {
				dep = &depData{}
			}
			dep.lbl = m.intern(&depName, ss.Dependency)
			if x := dep.x; x != nil {
				x.hasOK, x.hasFailed, x.next = true, true, nil
				if x.failed == 0 && x.failures.first == nil {
					dep.x = nil
				}
			}
			sd.ext().deps = dep
		}
		sd.tidy()
		steps = append(steps, sd)
		from = append(from, old)
	}
	fd.setSteps(steps)
	if fd.rare != nil {
		fd.rare.unshaped = 0
	}
	fd.reshapeSide(s, steps, from)
	fd.duration.setBounds(normBounds(s.Bounds))
	fd.opts, fd.duration.view = 0, viewCoarse
	if s.Detailed {
		fd.opts, fd.duration.view = optDetailed, viewFull
	}
	if s.Retries {
		fd.opts |= optRetries
	}
}

// reshapeSide keeps the side series of the steps the flow still has: a
// step the flow no longer has takes its certificate's series along, and
// only the steps with a retry: block keep (or get) a retry counter, its
// count kept across the reload. steps are the new steps, from their
// indices in fd.steps (-1: new). The caller holds fd.mu.
func (fd *flowData) reshapeSide(s FlowShape, steps []stepData, from []int32) {
	var certs *certData
	var old *stepRetries
	if fd.rare != nil {
		certs, old = fd.rare.certs, fd.rare.stepRetries
	}
	for p := &certs; *p != nil; {
		if i := slices.Index(from, (*p).step); i >= 0 {
			(*p).step = int32(i)
			p = &(*p).next
		} else {
			*p = (*p).next
		}
	}
	var retries *stepRetries
	tail := &retries
	for _, ss := range s.Steps {
		if !ss.Retry {
			continue
		}
		i := int32(slices.IndexFunc(steps, func(x stepData) bool { return x.lbl.raw == ss.Name })) // reshape made one for every configured name
		if retries.of(i) != nil {
			continue // a step name twice: one series
		}
		r := &stepRetries{step: i}
		for o := old; o != nil; o = o.next {
			if from[i] >= 0 && o.step == from[i] {
				r.n = o.n
			}
		}
		*tail = r
		tail = &r.next
	}
	if fd.rare != nil || certs != nil || retries != nil {
		x := fd.more()
		x.certs, x.stepRetries = certs, retries
		fd.tidyRare()
	}
}

// tidyRare drops fd.rare when it holds nothing. The caller holds fd.mu.
func (fd *flowData) tidyRare() {
	if fd.rare != nil && *fd.rare == (flowRare{}) {
		fd.rare = nil
	}
}

// of is the counter of step i in the list r, or nil.
func (r *stepRetries) of(i int32) *stepRetries {
	for ; r != nil && r.step != i; r = r.next {
	}
	return r
}

// flow is the record of flow name, or nil. The caller holds m.mu.
func (m *Metrics) flow(name string) *flowData {
	i, ok := slices.BinarySearchFunc(m.flows, name, func(fd *flowData, name string) int { return strings.Compare(fd.name, name) })
	if !ok {
		return nil
	}
	return m.flows[i]
}

// addFlow puts a new record for flow name in m.flows, where its name
// says. The caller holds m.mu for writing.
func (m *Metrics) addFlow(name string) *flowData {
	fd := &flowData{name: name}
	i, _ := slices.BinarySearchFunc(m.flows, name, func(fd *flowData, name string) int { return strings.Compare(fd.name, name) })
	m.flows = slices.Insert(m.flows, i, fd)
	return fd
}

// SetFlows makes the configured flows' series exist from the start (so rates
// and "absent" checks work before the first failure) and deletes the series
// of flows no longer configured, and of steps (and step dependencies) that a
// kept flow no longer has. Once SetFlows has been called, runs of flows not
// in the set are not recorded.
func (m *Metrics) SetFlows(flows []FlowShape) {
	// By name (stable: a name twice is reshaped twice, the later last,
	// as in the order given).
	order := make([]int32, len(flows))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return strings.Compare(flows[a].Name, flows[b].Name) })
	m.mu.Lock()
	defer m.mu.Unlock()
	m.announced = true
	m.interned = map[[2]string]*label{} // only what the new set uses stays
	next := make([]*flowData, 0, len(flows))
	for _, i := range order {
		f := &flows[i]
		var fd *flowData
		if n := len(next); n > 0 && next[n-1].name == f.Name {
			fd = next[n-1]
		} else {
			if fd = m.flow(f.Name); fd == nil {
				fd = &flowData{name: f.Name}
			}
			next = append(next, fd)
		}
		fd.mu.Lock()
		m.reshape(fd, *f)
		fd.mu.Unlock()
	}
	// Both by name: what the old list has and the new one lacks is gone.
	k := 0
	for _, fd := range m.flows {
		for k < len(next) && next[k].name < fd.name {
			k++
		}
		if k < len(next) && next[k] == fd {
			continue
		}
		fd.mu.Lock()
		fd.removed = true
		fd.mu.Unlock()
	}
	m.flows = next
	m.flowsGauge.Set(float64(len(flows)))
}

// adhoc gives the series of a run's flow that SetFlows did not announce
// (tools that never call SetFlows). Once SetFlows has been called it does
// nothing: the run's flow was removed by a reload.
func (m *Metrics) adhoc(r *result.Run) {
	// No configuration says what it needs: everything, as ever.
	shape := FlowShape{Name: r.Flow, Detailed: true}
	for _, s := range r.Steps {
		shape.Steps = append(shape.Steps, StepShape{Name: s.Name, Dependency: s.Dependency})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.announced {
		return
	}
	fd := m.flow(r.Flow)
	if fd == nil {
		fd = m.addFlow(r.Flow)
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
	fd, announced := m.flow(r.Flow), m.announced
	if (fd == nil || !fd.shaped) && !announced {
		m.mu.RUnlock()
		m.adhoc(r)
		m.mu.RLock()
		fd, announced = m.flow(r.Flow), m.announced
	}
	defer m.mu.RUnlock()
	if fd == nil || !fd.shaped {
		return // a late run of a flow a reload removed
	}
	t := newRunTrace(r.TraceID)
	fd.mu.Lock()
	defer fd.mu.Unlock()
	switch {
	case r.Retried:
		// Not the final word on its slot: the retry that follows is. The
		// run counters (and so success ratios and burn rates) see each slot
		// once; a blip the retry clears is only a retry.
		fd.more().retries++
	case r.OK():
		fd.runsOK++
	default:
		// The exemplar lets an evaluator far away find the trace ids of
		// failing runs (query_exemplars) without a label per trace.
		x := fd.more()
		x.runsFailed++
		if t.ok {
			x.failedEx, x.failedOdd = exemplar{t.id, 1, t.at}, nil
			if t.odd != "" {
				odd := t.odd
				x.failedOdd = &odd
			}
		}
		x.failures.inc(string(r.Class))
	}
	if !r.Retried {
		fd.lastRun = float64(r.Start.UnixNano()) / 1e9
		fd.duration.observe(r.Duration.Seconds(), &t)
		streak(fd, r)
	}
	for i := range r.Steps {
		s := &r.Steps[i]
		if s.Status == result.Skipped {
			continue
		}
		// Steps run in the configured order: the i-th is tried first.
		steps := fd.stepList()
		j := i
		if j >= len(steps) || steps[j].lbl.raw != s.Name {
			j = slices.IndexFunc(steps, func(x stepData) bool { return x.lbl.raw == s.Name })
		}
		if j < 0 {
			// A step the configured flow does not have: a late run of the
			// flow's previous shape (not recorded, its series were
			// deleted), or an ad-hoc flow that changed shape (counted).
			if !announced {
				steps = append(steps, stepData{lbl: newLabel(&stepName, s.Name)}) // under m.mu for reading, but ad hoc: SetFlows was never called
				steps[len(steps)-1].ext().classes.inc(string(s.Class))
				fd.setSteps(steps)
				fd.more().unshaped++
			}
			continue
		}
		sd := &steps[j]
		if j >= fd.nShaped() {
			sd.ext().classes.inc(string(s.Class))
			continue
		}
		if s.Status == result.Passed {
			sd.ok++
		} else {
			sd.ext().classes.inc(string(s.Class))
		}
		if d := sd.detail(); d != nil {
			d.duration.observe(s.Duration.Seconds(), &t)
			tm := &s.Timings
			d.phases = [5]time.Duration{tm.DNS, tm.Connect, tm.TLS, tm.Processing, tm.Transfer}
		}
		if v := s.Attr(certNotAfter); v != "" {
			fd.cert(int32(j), s.URL, v)
		}
		if s.Retries > 0 {
			fd.retried(int32(j), s.Retries, !announced)
		}
		// Dependency calls count final runs only, as the rules do: a blip a
		// retry cleared is not a gateway failure. Once announced, only the
		// configured dependency (deps' first) is counted.
		if s.Dependency == "" || r.Retried || (announced && (sd.deps() == nil || sd.deps().lbl.raw != s.Dependency)) {
			continue
		}
		p := &sd.ext().deps // its first, the configured one, once announced
		for *p != nil && (*p).lbl.raw != s.Dependency {
			p = &(*p).ext().next
		}
		dep := *p
		if dep == nil { // an ad-hoc flow whose step changed its dependency
			dep = &depData{lbl: newLabel(&depName, s.Dependency), x: &depExt{}}
			*p = dep
		}
		if s.Status == result.Passed {
			dep.ok++
			if dep.x != nil {
				dep.x.hasOK = true
			}
		} else {
			x := dep.ext()
			x.failed++
			x.hasFailed = true
			x.failures.inc(string(s.Class))
		}
	}
}

// retried counts n retries of step i's requests, if it has a retry
// counter (a retry: block), or adhoc (no configuration says which steps
// have one: the first retry makes it). The caller holds fd.mu.
func (fd *flowData) retried(i int32, n int, adhoc bool) {
	var r *stepRetries
	if fd.rare != nil {
		r = fd.rare.stepRetries.of(i)
	}
	if r == nil {
		if !adhoc {
			return
		}
		p := &fd.more().stepRetries
		for *p != nil {
			p = &(*p).next
		}
		r = &stepRetries{step: i}
		*p = r
	}
	r.n += uint64(n)
}

// certNotAfter is the attribute in which tls steps and HTTPS steps record
// the leaf certificate's not-after (internal/certinfo), RFC 3339.
const certNotAfter = "cert.not_after"

// cert records that step i, whose target was target (tls://host:port,
// https://host/path), saw a certificate expiring at notAfter (RFC 3339).
// A certificate that no longer verifies (expired) is recorded all the
// same: that is when the series matters most. The caller holds fd.mu.
func (fd *flowData) cert(i int32, target, notAfter string) {
	t, err := time.Parse(time.RFC3339, notAfter)
	if err != nil {
		return // not a date (a redaction hit it): keep the last one
	}
	p := &fd.more().certs
	for *p != nil && (*p).step != i {
		p = &(*p).next
	}
	c := *p
	if c == nil {
		c = &certData{step: i}
		*p = c
	}
	if c.host == nil || c.target != target {
		if h := certHost(target); c.host == nil || c.host.raw != h {
			c.host = newLabel(&hostName, h)
		}
		c.target = target
	}
	c.notAfter = float64(t.Unix())
}

// certHost is the host of a step's target as a label: host, or host:port
// when the port is not 443. Never the path or query (bounded labels, and
// no URL in a label).
func certHost(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return ""
	}
	if u.Port() == "443" {
		return strings.TrimSuffix(u.Host, ":443")
	}
	return u.Host
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
		if fd.rare != nil {
			fd.rare.lastFailure = nil
		}
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
	x := fd.more()
	if f := x.lastFailure; f != nil && f.step == s.Name && f.class == string(s.Class) && f.dependency == s.Dependency && f.expectation == exp {
		return // the same failure again: its labels stay
	}
	x.lastFailure = &failInfo{step: s.Name, class: string(s.Class), dependency: s.Dependency, expectation: exp,
		lps: [4]*dto.LabelPair{labelPair("step", s.Name), classLP(string(s.Class)),
			labelPair("dependency", s.Dependency), labelPair("expectation", exp)}}
}

// Skipped counts a run not started because the previous one was running.
// Like Observe, it records nothing for a flow a reload removed.
func (m *Metrics) Skipped(flow string) {
	m.mu.RLock()
	fd := m.flow(flow)
	if fd == nil {
		announced := m.announced
		m.mu.RUnlock()
		if announced {
			return
		}
		m.mu.Lock()
		if fd = m.flow(flow); fd == nil && !m.announced {
			fd = m.addFlow(flow)
		}
		m.mu.Unlock()
		if fd == nil {
			return
		}
		m.mu.RLock()
	}
	defer m.mu.RUnlock()
	fd.mu.Lock()
	fd.more().skipped++
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
	// The series are sent, and read by the registry after this returns, so
	// never reused: each flow's are cut from a chunk shared by the flows
	// of this Collect, their exemplars from one slice, rather than grown
	// from nothing per flow (1, 2, 4, 8 samples of 216 bytes, and 16: 3.2
	// KB in 4 allocations for a one-step flow's 7 at the default level, 6.7
	// KB in 5 for a four-step flow's 12, per gather).
	// The flows' label pairs, which the records do not keep, likewise.
	var chunk []sample
	var exs []exemplar
	var lps []dto.LabelPair
	for _, fd := range m.flowList() {
		if cap(chunk)-len(chunk) < collectChunk/4 {
			chunk = make([]sample, 0, collectChunk)
		}
		if len(lps) == cap(lps) {
			lps = make([]dto.LabelPair, 0, collectChunk/8)
		}
		lps = lps[:len(lps)+1]
		free := chunk[len(chunk):len(chunk):cap(chunk)]
		batch := m.appendFlow(free, fd, allFamilies, &exs, &lps[len(lps)-1])
		if cap(batch) == cap(free) { // in the chunk (a flow larger than its rest grew its own)
			chunk = chunk[:len(chunk)+len(batch)]
		}
		for i := range batch {
			ch <- &batch[i]
		}
	}
}

// collectChunk is how many samples flowCollector allocates at once: 55
// KB, the series of about twenty flows at the default level. A flow is
// started in a new chunk when fewer than a quarter of it are left.
const collectChunk = 256

// flowList returns the flows, sorted by name.
func (m *Metrics) flowList() []*flowData {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.flows)
}

// label makes lp the pair flow=name, with invalid UTF-8 replaced (the
// registry would fail the whole gather on it, and Prometheus the whole
// scrape): made by each scrape rather than kept, 80 bytes a flow.
func (fd *flowData) label(lp *dto.LabelPair) *dto.LabelPair {
	lp.Name, lp.Value = &flowName, &fd.name
	if !utf8.ValidString(fd.name) {
		v := strings.ToValidUTF8(fd.name, "\uFFFD")
		lp.Value = &v
	}
	return lp
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
	exOdd  string // ex's trace id if its id is zero
	h      histo  // a copy; its exemplars too
}

func (s *sample) Desc() *prometheus.Desc { return s.desc }

func (s *sample) Write(out *dto.Metric) error {
	// A fresh slice, exactly as long: a wrapping registry appends to it.
	out.Label = slices.Clone(s.labels[:s.n])
	slices.SortFunc(out.Label, compareLabels)
	switch s.kind {
	case dto.MetricType_COUNTER:
		out.Counter = &dto.Counter{Value: &s.value, Exemplar: s.ex.dto(s.exOdd)}
	case dto.MetricType_GAUGE:
		out.Gauge = &dto.Gauge{Value: &s.value}
	case dto.MetricType_HISTOGRAM:
		out.Histogram = s.h.dto()
	}
	return nil
}

func compareLabels(a, b *dto.LabelPair) int { return cmp.Compare(a.GetName(), b.GetName()) }

// dto is e as a message, odd its trace id if its id is zero; nil if none.
func (e exemplar) dto(odd string) *dto.Exemplar {
	trace := odd
	if e.id != (traceID{}) {
		trace = e.id.String()
	} else if odd == "" {
		return nil
	}
	v := e.value
	return &dto.Exemplar{
		Label:     []*dto.LabelPair{{Name: &traceIDName, Value: &trace}},
		Value:     &v,
		Timestamp: timestamppb.New(time.Unix(0, e.at)),
	}
}

func (h *histo) dto() *dto.Histogram {
	count, sum := h.count(), h.sum
	out := &dto.Histogram{SampleCount: &count, SampleSum: &sum, Bucket: make([]*dto.Bucket, 0, nBuckets+1)}
	cums := new([nBuckets + 1]uint64)
	h.eachBucket(cums, func(i int, e *exemplar, odd string) {
		var ub *float64
		if i < nBuckets {
			ub = &durationBuckets[i]
		} else if e != nil {
			// An exemplar on +Inf needs that bucket spelled out, as client_golang does.
			inf := math.Inf(1)
			ub = &inf
		} else {
			return
		}
		b := &dto.Bucket{CumulativeCount: &cums[i], UpperBound: ub}
		if e != nil {
			b.Exemplar = e.dto(odd)
		}
		out.Bucket = append(out.Bucket, b)
	})
	out.Bucket = h.withExtra(out.Bucket, cums)
	return out
}

// appendFlow appends to out fd's series of family only, or of every family
// (allFamilies), copied under fd's lock. Histogram exemplars are copied to
// *exs when exs is not nil (storage the caller reuses), else to fresh
// slices. The series' flow label is flp, which appendFlow fills.
func (m *Metrics) appendFlow(out []sample, fd *flowData, only family, exs *[]exemplar, flp *dto.LabelPair) []sample {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if fd.removed {
		return out
	}
	fd.label(flp)
	want := func(f family) bool { return only == allFamilies || only == f }
	add := func(f family, v float64, lps ...*dto.LabelPair) *sample {
		out = append(out, sample{desc: m.d[f], kind: familyInfo[f].kind, value: v})
		s := &out[len(out)-1]
		s.labels[0], s.labels[1] = m.region, flp
		s.n = 2 + copy(s.labels[2:], lps)
		return s
	}
	addHisto := func(f family, h *histo, lps ...*dto.LabelPair) {
		add(f, 0, lps...).h = h.clone(exs)
	}
	detailed := fd.opts&optDetailed != 0
	rare := fd.rare
	if rare == nil {
		rare = &noRare
	}
	// At the default level the skip counter appears with the first skip:
	// an overloaded prober is rare, and its rate is still seen from then.
	if want(famSkipped) && (rare.skipped > 0 || (fd.shaped && detailed)) {
		add(famSkipped, float64(rare.skipped))
	}
	if !fd.shaped {
		return out
	}
	if want(famRuns) {
		add(famRuns, float64(fd.runsOK), lpSuccess)
		s := add(famRuns, float64(rare.runsFailed), lpFailure)
		s.ex = rare.failedEx
		if rare.failedOdd != nil {
			s.exOdd = *rare.failedOdd
		}
	}
	if want(famRunFailures) && detailed { // per step, by class, at both levels
		for c := rare.failures.first; c != nil; c = c.next {
			add(famRunFailures, float64(c.n), classLP(c.class))
		}
	}
	if want(famRetries) && (detailed || fd.opts&optRetries != 0 || rare.retries > 0) {
		add(famRetries, float64(rare.retries))
	}
	if want(famStateSince) {
		add(famStateSince, fd.since)
	}
	if want(famLastSuccess) {
		lastSuccess := 0.0
		if fd.state == 1 {
			lastSuccess = 1
		}
		add(famLastSuccess, lastSuccess)
	}
	if want(famLastRun) {
		add(famLastRun, fd.lastRun)
	}
	if want(famFlowDuration) {
		addHisto(famFlowDuration, &fd.duration)
	}
	if f := rare.lastFailure; f != nil && want(famFailure) {
		// An info metric is 1: when the failure happened is the last
		// run's timestamp (the info exists only while that run failed).
		add(famFailure, 1, f.lps[:]...)
	}
	if want(famCertExpiry) {
		for c := rare.certs; c != nil; c = c.next {
			add(famCertExpiry, c.notAfter, &fd.stepList()[c.step].lbl.lp, &c.host.lp)
		}
	}
	if want(famStepRetries) {
		for r := rare.stepRetries; r != nil; r = r.next {
			add(famStepRetries, float64(r.n), &fd.stepList()[r.step].lbl.lp)
		}
	}
	if !want(famSteps) && !want(famStepDuration) && !want(famStepPhase) && !want(famDependency) && !want(famDependencyFailures) {
		return out
	}
	steps, nShaped := fd.stepList(), fd.nShaped()
	for i := range steps {
		sd := &steps[i]
		shaped, slp := i < nShaped, &sd.lbl.lp
		if want(famSteps) {
			if shaped {
				add(famSteps, float64(sd.ok), slp, lpClassOK)
			}
			for c := sd.classes(); c != nil; c = c.next {
				add(famSteps, float64(c.n), slp, classLP(c.class))
			}
		}
		if !shaped {
			continue
		}
		detail := sd.detail()
		if want(famStepDuration) && detail != nil && detail.duration.view != viewHidden {
			addHisto(famStepDuration, &detail.duration, slp)
		}
		if want(famStepPhase) && detailed && detail != nil {
			for i, d := range detail.phases {
				add(famStepPhase, d.Seconds(), slp, lpPhases[i])
			}
		}
		for dep := sd.deps(); dep != nil; dep = dep.next() {
			if want(famDependency) {
				hasOK, hasFailed := dep.has()
				if hasOK {
					add(famDependency, float64(dep.ok), slp, &dep.lbl.lp, lpSuccess)
				}
				if hasFailed {
					add(famDependency, float64(dep.failed()), slp, &dep.lbl.lp, lpFailure)
				}
			}
			if want(famDependencyFailures) && detailed && dep.x != nil {
				for c := dep.x.failures.first; c != nil; c = c.next {
					add(famDependencyFailures, float64(c.n), slp, &dep.lbl.lp, classLP(c.class))
				}
			}
		}
	}
	return out
}

// noRare stands for a flow's rare part when it has none (read only).
var noRare flowRare

// ---- series counts -------------------------------------------------------------

// Series counts the series a scrape shows of each flow now, by flow name:
// every sample line of the per-flow families, histograms' buckets, _sum
// and _count included. It reads the same records through the same code
// (appendFlow) as /metrics does.
func (m *Metrics) Series() map[string]int {
	fds := m.flowList()
	out := make(map[string]int, len(fds))
	var batch []sample
	var exs []exemplar
	var lp dto.LabelPair
	for _, fd := range fds {
		batch = m.appendFlow(batch[:0], fd, allFamilies, &exs, &lp)
		n := 0
		for i := range batch {
			n += batch[i].lines()
		}
		exs = exs[:0] // the batch's, read by lines only
		if n > 0 {
			out[fd.name] = n
		}
	}
	return out
}

// lines is how many sample lines s is in the text formats.
func (s *sample) lines() int {
	if s.kind != dto.MetricType_HISTOGRAM {
		return 1
	}
	// The buckets dto makes, counted without making them (Series reads
	// every histogram of every flow at each load): the standard ones shown,
	// +Inf when an exemplar spells it out, and the extra bounds.
	var cums [nBuckets + 1]uint64
	n, inf := 0, false
	s.h.eachBucket(&cums, func(i int, e *exemplar, _ string) {
		if i < nBuckets {
			n++
		} else if e != nil {
			n, inf = n+1, true
		}
	})
	if x := s.h.ext; x != nil {
		n += len(x.extra)
	}
	n += 2 // _sum, _count
	if !inf {
		n++ // +Inf, written by the encoders when not spelled out
	}
	return n
}

// SeriesOf counts the series that a prober configured with flows exports
// per flow once each has passed a run (as Series would then): the series
// calculator of `prober validate`. That is the series that exist before
// the first run plus a certificate's expiry per step that makes a TLS
// handshake (StepShape.Cert). Runs add to it only as they fail: a series
// per failure class seen per step (and per flow and dependency when
// detailed) and the failure info while failing; the first skip (or retry,
// in a flow without retries) adds its counter.
func SeriesOf(flows []FlowShape) map[string]int {
	m := New(prometheus.NewRegistry(), "", BuildInfo{})
	m.SetFlows(flows)
	return m.Expected(flows)
}

// Expected is Series plus, for each of flows (as last given to SetFlows),
// the certificate series its steps that make a TLS handshake
// (StepShape.Cert) will export and do not yet: the count once every flow
// has passed a run, whether they have or not (a reload counts a kept
// step's series once).
func (m *Metrics) Expected(flows []FlowShape) map[string]int {
	out := m.Series()
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, f := range flows {
		fd := m.flow(f.Name)
		if fd == nil {
			continue
		}
		fd.mu.Lock()
		counted := map[string]bool{} // a step name twice is one set of series
		if fd.rare != nil {
			for c := fd.rare.certs; c != nil; c = c.next {
				counted[fd.stepList()[c.step].lbl.raw] = true
			}
		}
		for _, s := range f.Steps {
			if s.Cert && !counted[s.Name] {
				counted[s.Name] = true
				out[f.Name]++
			}
		}
		fd.mu.Unlock()
	}
	return out
}
