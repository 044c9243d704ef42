package metrics

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/prober-dev/prober/internal/result"
)

// Accept headers as clients send them.
const (
	acceptText = "text/plain;version=0.0.4"
	acceptOM1  = "application/openmetrics-text;version=1.0.0"
	// Prometheus 2.x's default scrape Accept header.
	acceptPrometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
	// Prometheus with native histograms: protobuf first.
	acceptProtoFirst = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.9,application/openmetrics-text;version=1.0.0;q=0.8,text/plain;version=0.0.4;q=0.5"
)

// genRun is a run of flow with steps s0..s{steps-1} (s2 calls dependency
// "gw"). failAt < 0: it passes; else step failAt fails with class and the
// later steps are skipped.
func genRun(flow string, steps, failAt int, class result.Class, trace string, d time.Duration, start time.Time) *result.Run {
	r := &result.Run{Flow: flow, TraceID: trace, Start: start, Planned: start, Duration: d, Status: result.Passed, Class: result.OK}
	for i := range steps {
		st := step(fmt.Sprintf("s%d", i), result.Passed, result.OK, d/time.Duration(steps))
		switch {
		case failAt >= 0 && i == failAt:
			st = step(st.Name, result.Failed, class, d/time.Duration(steps))
			st.Failures = []result.Failure{{Expectation: fmt.Sprintf(`json.status == "ok" # %s }`, class), Message: "m"}}
		case failAt >= 0 && i > failAt:
			st = step(st.Name, result.Skipped, result.OK, 0)
		}
		if i == 2 {
			st.Dependency = "gw"
		}
		r.Steps = append(r.Steps, st)
	}
	if failAt >= 0 {
		r.Status, r.Class, r.FailedStep = result.Failed, class, r.Steps[failAt].Name
	}
	return r
}

func genShape(flow string, steps int) FlowShape {
	s := FlowShape{Detailed: true, Name: flow}
	for i := range steps {
		ss := StepShape{Name: fmt.Sprintf("s%d", i)}
		if i == 2 {
			ss.Dependency = "gw"
		}
		s.Steps = append(s.Steps, ss)
	}
	return s
}

// populate gives m n flows of steps steps with varied histories: passing,
// failing in every class (exemplars on the failure counter), retried,
// skipped, never run, and slow runs whose exemplar lands on +Inf.
func populate(m *Metrics, n, steps int, announce bool) {
	var shapes []FlowShape
	for i := range n {
		shapes = append(shapes, genShape(fmt.Sprintf("flow-%05d", i), steps))
	}
	if announce {
		m.SetFlows(shapes)
	}
	classes := result.Classes[1:]
	for i, sh := range shapes {
		if i%7 == 6 {
			continue // never run: only the series made up front
		}
		trace := fmt.Sprintf("%032x", 0xabc000+i)
		m.Observe(genRun(sh.Name, steps, -1, "", trace, time.Duration(50+i%300)*time.Millisecond, t0))
		if i%3 == 0 {
			failAt := i % steps
			r := genRun(sh.Name, steps, failAt, classes[i%len(classes)], fmt.Sprintf("%032x", 0xdef000+i), 2*time.Second, t0.Add(time.Minute))
			if i%9 == 0 {
				retried := *r
				retried.Retried = true
				m.Observe(&retried)
			}
			m.Observe(r)
		}
		if i%50 == 0 {
			m.Observe(genRun(sh.Name, steps, -1, "", fmt.Sprintf("%032x", 0xfff000+i), 90*time.Second, t0.Add(2*time.Minute)))
		}
		if i%11 == 0 {
			m.Skipped(sh.Name)
		}
	}
}

// exposition is a body cut into families: each with its header lines and
// its series, a series being its consecutive lines (a histogram's buckets,
// sum and count).
type exposition struct {
	names   []string
	headers map[string][]string
	series  map[string][]string // sorted
	eof     bool
}

// cutExposition cuts body, failing t if a family is not contiguous or a
// line follows OpenMetrics' # EOF.
func cutExposition(t *testing.T, body []byte) exposition {
	t.Helper()
	e := exposition{headers: map[string][]string{}, series: map[string][]string{}}
	cur, lastKey := "", ""
	var chunk []string
	flush := func() {
		if len(chunk) > 0 {
			e.series[cur] = append(e.series[cur], strings.Join(chunk, "\n"))
		}
		chunk = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if e.eof {
			t.Fatalf("line after # EOF: %q", line)
		}
		if line == "# EOF" {
			e.eof = true
			continue
		}
		if strings.HasPrefix(line, "# ") {
			f := strings.Fields(line)
			if len(f) < 3 {
				t.Fatalf("bad comment line %q", line)
			}
			if f[2] != cur {
				flush()
				if _, seen := e.headers[f[2]]; seen {
					t.Fatalf("family %s is not contiguous (header again at %q)", f[2], line)
				}
				cur, lastKey = f[2], ""
				e.names = append(e.names, cur)
				e.headers[cur] = nil
			}
			e.headers[cur] = append(e.headers[cur], line)
			continue
		}
		key := seriesKey(t, line)
		if key != lastKey {
			flush()
			lastKey = key
		}
		chunk = append(chunk, line)
	}
	flush()
	for _, s := range e.series {
		slices.Sort(s)
	}
	return e
}

// seriesKey is a sample line's series: its name less a histogram's
// suffixes and its labels less le.
func seriesKey(t *testing.T, line string) string {
	t.Helper()
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		t.Fatalf("bad sample line %q", line)
	}
	name := line[:i]
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		name = strings.TrimSuffix(name, suf)
	}
	if line[i] != '{' {
		return name
	}
	var pairs []string
	j, start, inQuote := i+1, i+1, false
	for ; j < len(line); j++ {
		switch c := line[j]; {
		case inQuote && c == '\\':
			j++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == ',' || c == '}'):
			if p := line[start:j]; p != "" && !strings.HasPrefix(p, "le=") {
				pairs = append(pairs, p)
			}
			start = j + 1
		}
		if !inQuote && line[j] == '}' {
			break
		}
	}
	if j == len(line) {
		t.Fatalf("unterminated labels in %q", line)
	}
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// sampleSet parses body with expfmt's text parser (OpenMetrics less its
// exemplars and # EOF, as in TestExemplarsServedAsOpenMetrics) into
// series -> value.
func sampleSet(t *testing.T, body []byte) map[string]float64 {
	t.Helper()
	var text bytes.Buffer
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "# EOF" || line == "" {
			continue
		}
		if i := strings.Index(line, " # {"); i >= 0 && !strings.HasPrefix(line, "#") {
			line = line[:i]
		}
		text.WriteString(line + "\n")
	}
	out := map[string]float64{}
	for _, smp := range decode(t, text.Bytes(), expfmt.NewFormat(expfmt.TypeTextPlain)) {
		k := smp.Metric.String()
		if _, dup := out[k]; dup {
			t.Errorf("series %s twice", k)
		}
		out[k] = float64(smp.Value)
	}
	return out
}

// get serves one request to h.
func get(h http.Handler, target, accept, acceptEncoding string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func oldHandler(reg prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// fixedCollector exposes fixed families around and among the per-flow
// ones, as other packages' metrics would.
func registerOthers(t *testing.T, reg *prometheus.Registry, region string) {
	t.Helper()
	first := prometheus.NewCounter(prometheus.CounterOpts{Name: "aaa_first_total", Help: "Sorts first."})
	last := prometheus.NewGauge(prometheus.GaugeOpts{Name: "zzz_last", Help: "Sorts last."})
	last.Set(3)
	between := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "prober_alerts_firing", Help: "Among the flow families."}, []string{"rule"})
	between.WithLabelValues("checkout_down").Set(1)
	first.Add(2)
	reg.MustRegister(first, last)
	prometheus.WrapRegistererWith(prometheus.Labels{"region": region}, reg).MustRegister(between)
	// The same family as the flows', from another region's collector:
	// one family in the output, its header once.
	other := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        familyInfo[famRuns].name,
		Help:        familyInfo[famRuns].help,
		ConstLabels: prometheus.Labels{"region": "us-east-1"},
	}, []string{"flow", "result"})
	other.WithLabelValues("elsewhere", "success").Add(7)
	reg.MustRegister(other)
}

// The streamed /metrics equals what the registry path (Collect, Gather,
// promhttp) serves, family by family and series by series, exemplars
// included, in text and OpenMetrics, for varied flows.
func TestStreamEqualsRegistryPath(t *testing.T) {
	scenarios := []struct {
		name  string
		setup func(t *testing.T, reg *prometheus.Registry, m *Metrics)
	}{
		{"no flows", func(t *testing.T, reg *prometheus.Registry, m *Metrics) {}},
		{"announced, many batches", func(t *testing.T, reg *prometheus.Registry, m *Metrics) {
			m.batch = 7
			populate(m, 150, 4, true)
		}},
		{"announced, default batches", func(t *testing.T, reg *prometheus.Registry, m *Metrics) {
			populate(m, 520, 1, true) // each flow family in two batches or more
		}},
		{"checkout, reloads, removed and edited flows", func(t *testing.T, reg *prometheus.Registry, m *Metrics) {
			gone := FlowShape{Detailed: true, Name: "gone", Steps: []StepShape{{Name: "a"}}}
			m.SetFlows([]FlowShape{checkoutShape(), healthShape(), gone, genShape("edited", 4)})
			m.Observe(passingRun())
			m.Observe(failingRun())
			m.Observe(genRun("gone", 1, 0, result.HTTP5xx, traceFail, time.Second, t0))
			m.Observe(genRun("edited", 4, 2, result.Timeout, traceFail, time.Second, t0))
			m.Skipped("health")
			// edited loses s3 and its dependency changes; gone goes.
			m.SetFlows([]FlowShape{checkoutShape(), healthShape(), {Detailed: true, Name: "edited", Steps: []StepShape{
				{Name: "s0"}, {Name: "s1"}, {Name: "s2", Dependency: "acquirer"}}}})
			m.Observe(genRun("gone", 1, -1, "", traceOK, time.Second, t0))   // late run of a removed flow
			m.Observe(genRun("edited", 4, -1, "", traceOK, time.Second, t0)) // late run of the old shape
			m.Skipped("gone")
		}},
		{"rule thresholds as extra bounds", func(t *testing.T, reg *prometheus.Registry, m *Metrics) {
			c := checkoutShape()
			c.Bounds = []float64{0.003, 2, 90}
			c.Steps[2].Bounds = []float64{2}
			m.SetFlows([]FlowShape{c, healthShape()})
			slow := passingRun()
			slow.Steps[2].Duration, slow.Duration = 1600*time.Millisecond, 95*time.Second
			m.Observe(slow)
			m.Observe(failingRun())
		}},
		{"ad hoc", func(t *testing.T, reg *prometheus.Registry, m *Metrics) {
			populate(m, 40, 3, false)
			m.Observe(passingRun())
			f := failingRun()
			f.Steps = append(f.Steps, step("new_step", result.Failed, result.Assertion, time.Second)) // shape changed: unshaped step
			f.Steps[2].Dependency = "other-gateway"
			m.Observe(f)
			m.Skipped("only-skipped") // never run: its skips only
			weird := genRun("we\"ird\\flow\n\xff", 2, 1, result.DNS, traceFail, 100*time.Second, t0)
			weird.Steps[0].Name = "st}ep,\"x\""
			m.Observe(weird)
		}},
		{"other registrations", func(t *testing.T, reg *prometheus.Registry, m *Metrics) {
			m.batch = 5
			registerOthers(t, reg, testRegion)
			populate(m, 30, 4, true)
		}},
	}
	formats := []struct {
		name, accept string
		om           bool
	}{
		{"text", acceptText, false},
		{"openmetrics", acceptPrometheus, true}, // 0.0.1 and escaping variants: TestStreamNegotiation
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			reg, m := newTestMetrics(t)
			sc.setup(t, reg, m)
			for _, f := range formats {
				t.Run(f.name, func(t *testing.T) {
					old := get(oldHandler(reg), "/metrics", f.accept, "")
					stream := get(m.Handler(reg, HandlerOpts{}), "/metrics", f.accept, "")
					if old.Code != 200 || stream.Code != 200 {
						t.Fatalf("status old %d, stream %d\n%s", old.Code, stream.Code, stream.Body)
					}
					if o, s := old.Header().Get("Content-Type"), stream.Header().Get("Content-Type"); o != s {
						t.Errorf("Content-Type %q, want %q", s, o)
					}
					compareBodies(t, old.Body.Bytes(), stream.Body.Bytes(), f.om)
				})
			}
		})
	}
}

func compareBodies(t *testing.T, oldBody, newBody []byte, om bool) {
	t.Helper()
	want, got := cutExposition(t, oldBody), cutExposition(t, newBody)
	if got.eof != om || want.eof != om {
		t.Errorf("# EOF: stream %v, registry %v, want %v", got.eof, want.eof, om)
	}
	if !slices.Equal(got.names, want.names) {
		t.Fatalf("families\n%v\nwant\n%v", got.names, want.names)
	}
	for _, name := range want.names {
		if !slices.Equal(got.headers[name], want.headers[name]) {
			t.Errorf("%s: header\n%s\nwant\n%s", name, strings.Join(got.headers[name], "\n"), strings.Join(want.headers[name], "\n"))
		}
		g, w := got.series[name], want.series[name]
		if !slices.Equal(g, w) {
			n := 0
			for _, x := range g {
				if _, ok := slices.BinarySearch(w, x); !ok && n < 5 {
					t.Errorf("%s: streamed, not in the registry's:\n%s", name, x)
					n++
				}
			}
			for _, x := range w {
				if _, ok := slices.BinarySearch(g, x); !ok && n < 10 {
					t.Errorf("%s: in the registry's, not streamed:\n%s", name, x)
					n++
				}
			}
			t.Errorf("%s: %d series streamed, %d by the registry", name, len(g), len(w))
		}
	}
	// And through the library's parser, as values.
	ws, gs := sampleSet(t, oldBody), sampleSet(t, newBody)
	if len(ws) != len(gs) {
		t.Errorf("%d samples parsed, want %d", len(gs), len(ws))
	}
	for k, v := range ws {
		if g, ok := gs[k]; !ok || (g != v && !(g != g && v != v)) {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

// Exemplars on +Inf and on the failure counter reach the stream, and the
// invalid UTF-8 of an ad-hoc flow's name does not break the exposition.
func TestStreamExemplarsAndOddNames(t *testing.T) {
	reg, m := newTestMetrics(t)
	m.Observe(genRun("slow\xff", 2, 1, result.Timeout, traceFail, 100*time.Second, t0))
	body := get(m.Handler(reg, HandlerOpts{}), "/metrics", acceptOM1, "").Body.String()
	for _, want := range []string{
		`prober_flow_duration_seconds_bucket{flow="slow` + "\uFFFD" + `",region="eu-west-1",le="+Inf"} 1 # {trace_id="` + traceFail + `"} 100.0 `,
		`prober_runs_total{flow="slow` + "\uFFFD" + `",region="eu-west-1",result="failure"} 1.0 # {trace_id="` + traceFail + `"} 1.0 `,
		`prober_last_failure_info{class="timeout",dependency="",expectation="json.status == \"ok\" # timeout }",flow="slow` + "\uFFFD",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no line with %s in\n%s", want, grepLines(body, "slow"))
		}
	}
	sampleSet(t, []byte(body))
}

// Content negotiation and compression as promhttp's, except that protobuf
// is not offered.
func TestStreamNegotiation(t *testing.T) {
	reg, m := newTestMetrics(t)
	populate(m, 3, 4, true)
	tests := []struct {
		accept, acceptEncoding string
		wantType               string // "": as promhttp
		wantGzip               bool
	}{
		{accept: "", acceptEncoding: ""},
		{accept: acceptText, acceptEncoding: "gzip", wantGzip: true},
		{accept: acceptPrometheus, acceptEncoding: "gzip", wantGzip: true},
		{accept: acceptOM1, acceptEncoding: "gzip;q=0"},
		{accept: acceptOM1, acceptEncoding: "identity;q=0.5, gzip", wantGzip: true},
		{accept: acceptOM1, acceptEncoding: "gzip, identity"}, // a tie goes to identity
		{accept: acceptOM1, acceptEncoding: "*"},
		{accept: acceptOM1, acceptEncoding: "br, deflate"},
		{accept: "text/plain;version=0.0.4;escaping=allow-utf-8"},
		{accept: "application/openmetrics-text;version=1.0.0;escaping=underscores"},
		{accept: "application/openmetrics-text;version=2.0.0,text/plain;q=0.2"},
		{accept: acceptProtoFirst, wantType: string(expfmt.FmtOpenMetrics_1_0_0) + "; escaping=underscores"},
		{accept: "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
			wantType: string(expfmt.FmtText) + "; escaping=underscores"},
	}
	for _, tc := range tests {
		t.Run(tc.accept+"|"+tc.acceptEncoding, func(t *testing.T) {
			old := get(oldHandler(reg), "/metrics", tc.accept, tc.acceptEncoding)
			rec := get(m.Handler(reg, HandlerOpts{}), "/metrics", tc.accept, tc.acceptEncoding)
			want := tc.wantType
			if want == "" {
				want = old.Header().Get("Content-Type")
			}
			if got := rec.Header().Get("Content-Type"); got != want {
				t.Errorf("Content-Type %q, want %q", got, want)
			}
			if got, old := rec.Header().Get("Content-Encoding"), old.Header().Get("Content-Encoding"); got != old {
				t.Errorf("Content-Encoding %q, promhttp's %q", got, old)
			}
			if got, want := rec.Header().Values("Vary"), old.Header().Values("Vary"); !slices.Equal(got, want) {
				t.Errorf("Vary %q, want %q", got, want)
			}
			body := rec.Body.Bytes()
			if rec.Header().Get("Content-Encoding") == "gzip" {
				if !tc.wantGzip {
					t.Errorf("gzip, not asked for")
				}
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
				plain := get(m.Handler(reg, HandlerOpts{}), "/metrics", tc.accept, "").Body.Bytes()
				if !bytes.Equal(body, plain) {
					t.Errorf("gzipped body differs from the plain one")
				}
			} else if tc.wantGzip {
				t.Errorf("not gzipped")
			}
			if tc.wantType == "" && old.Header().Get("Content-Encoding") == "" {
				compareBodies(t, old.Body.Bytes(), body, strings.HasPrefix(want, expfmt.OpenMetricsType))
			}
		})
	}
}

// promhttp's name[] filter.
func TestStreamNameFilter(t *testing.T) {
	reg, m := newTestMetrics(t)
	registerOthers(t, reg, testRegion)
	populate(m, 20, 4, true)
	target := "/metrics?name[]=prober_runs_total&name[]=zzz_last&name[]=prober_step_duration_seconds"
	for _, accept := range []string{acceptText, acceptOM1} {
		old := get(oldHandler(reg), target, accept, "")
		rec := get(m.Handler(reg, HandlerOpts{}), target, accept, "")
		compareBodies(t, old.Body.Bytes(), rec.Body.Bytes(), accept == acceptOM1)
		if got := cutExposition(t, rec.Body.Bytes()).names; len(got) != 3 {
			t.Errorf("families %v, want 3", got)
		}
	}
}

type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Println(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintln(v...))
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "")
}

type badCollector struct{}

func (badCollector) Describe(ch chan<- *prometheus.Desc) {}
func (badCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(prometheus.NewDesc("bad", "Bad.", nil, nil), fmt.Errorf("broken collector"))
}

// Errors are served and logged as promhttp does; after a failed gather
// the registry sees the flows again.
func TestStreamErrors(t *testing.T) {
	t.Run("gather", func(t *testing.T) {
		reg, m := newTestMetrics(t)
		m.SetFlows([]FlowShape{checkoutShape()})
		reg.MustRegister(badCollector{})
		var log logRecorder
		rec := get(m.Handler(reg, HandlerOpts{ErrorLog: &log}), "/metrics", acceptOM1, "gzip")
		if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Encoding") != "" ||
			!strings.Contains(rec.Body.String(), "broken collector") {
			t.Errorf("got %d %q %q", rec.Code, rec.Header().Get("Content-Encoding"), rec.Body)
		}
		if !strings.Contains(log.String(), "error gathering metrics:") {
			t.Errorf("log %q", log.String())
		}
		if m.quiet.Load() != 0 {
			t.Errorf("the flow collector is still quiet")
		}
	})
	t.Run("client gone", func(t *testing.T) {
		reg, m := newTestMetrics(t)
		m.batch = 10
		populate(m, 200, 4, true)
		var log logRecorder
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/metrics", nil)
		rec := httptest.NewRecorder()
		m.Handler(reg, HandlerOpts{ErrorLog: &log}).ServeHTTP(rec, req)
		if !strings.Contains(log.String(), "context canceled") {
			t.Errorf("log %q", log.String())
		}
		if strings.Contains(rec.Body.String(), "flow-00199") {
			t.Errorf("went on writing for a client gone")
		}
	})
	t.Run("write", func(t *testing.T) {
		reg, m := newTestMetrics(t)
		populate(m, 50, 4, true)
		var log logRecorder
		w := &failingWriter{ResponseWriter: httptest.NewRecorder(), after: 3000}
		m.Handler(reg, HandlerOpts{ErrorLog: &log}).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if !strings.Contains(log.String(), "error encoding and sending metric family:") || !strings.Contains(log.String(), "connection reset") {
			t.Errorf("log %q", log.String())
		}
	})
}

type failingWriter struct {
	http.ResponseWriter
	after int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, fmt.Errorf("connection reset")
	}
	return w.ResponseWriter.Write(p)
}

// The stream skips the encoder's escaping pass (stream.go): it holds only
// while the families' names and label names are legacy names.
func TestFamiliesNeedNoEscaping(t *testing.T) {
	for _, fi := range familyInfo {
		if !model.LegacyValidation.IsValidMetricName(fi.name) {
			t.Errorf("%s needs escaping", fi.name)
		}
		for _, l := range append([]string{"region", "le"}, fi.labels...) {
			if !model.LegacyValidation.IsValidLabelName(l) {
				t.Errorf("%s: label %s needs escaping", fi.name, l)
			}
		}
	}
}

func TestHeaderFilter(t *testing.T) {
	tests := []struct {
		name, in, want string
		drop           bool
	}{
		{"kept", "# HELP x X.\n# TYPE x counter\nx 1\n", "# HELP x X.\n# TYPE x counter\nx 1\n", false},
		{"dropped", "# HELP x X.\n# TYPE x counter\nx 1\nx{a=\"# b\"} 2\n", "x 1\nx{a=\"# b\"} 2\n", true},
		{"openmetrics", "# HELP x X.\n# TYPE x counter\n# UNIT x seconds\nx_total 1.0 # {trace_id=\"a\"} 1.0 1.5\n", "x_total 1.0 # {trace_id=\"a\"} 1.0 1.5\n", true},
		{"no header", "x 1\n", "x 1\n", true},
	}
	for _, tc := range tests {
		// Every way of cutting the input into two writes.
		for cut := range len(tc.in) + 1 {
			var out bytes.Buffer
			f := &headerFilter{w: &out}
			if tc.drop {
				f.dropHeader()
			}
			for _, part := range []string{tc.in[:cut], tc.in[cut:]} {
				if n, err := f.Write([]byte(part)); n != len(part) || err != nil {
					t.Fatalf("%s: Write = %d, %v", tc.name, n, err)
				}
			}
			if out.String() != tc.want {
				t.Errorf("%s, cut at %d: %q, want %q", tc.name, cut, out.String(), tc.want)
			}
		}
	}
}

// Scrapes while runs are observed and reloads add and remove flows: no
// race, and every body is well formed.
func TestStreamConcurrent(t *testing.T) {
	reg, m := newTestMetrics(t)
	m.batch = 50
	populate(m, 150, 4, true)
	var shapes []FlowShape
	for i := range 150 {
		shapes = append(shapes, genShape(fmt.Sprintf("flow-%05d", i), 4))
	}
	h := m.Handler(reg, HandlerOpts{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m.Observe(genRun(fmt.Sprintf("flow-%05d", i%150), 4, i%5-1, result.HTTP5xx, traceFail, time.Second, t0))
			if i%100 == 0 { // one flow out, and back at the next reload
				m.SetFlows(slices.Delete(slices.Clone(shapes), i/100%150, i/100%150+1))
			}
		}
	})
	wg.Go(func() { // someone gathering the registry meanwhile
		for {
			select {
			case <-stop:
				return
			default:
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
				}
			}
		}
	})
	for i := range 4 {
		accept := []string{acceptText, acceptOM1}[i%2]
		body := get(h, "/metrics", accept, "").Body.Bytes()
		e := cutExposition(t, body)
		// A flow a reload removes during the scrape is left out of the
		// families written after that: as many as reloads, at most.
		if n := len(e.series[familyInfo[famStepDuration].name]); n == 0 || n > 150*4 {
			t.Errorf("%d step duration series of 150 flows", n)
		}
		sampleSet(t, body)
	}
	close(stop)
	wg.Wait()
}

// ---- benchmark -----------------------------------------------------------------

// discard is a ResponseWriter that counts and drops the body.
type discard struct {
	h http.Header
	n int64
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }

// heapPeak samples the heap (live and not yet swept objects, read without
// stopping the world) every half millisecond until stopped.
func heapPeak() (stop func() (peak uint64)) {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(500 * time.Microsecond)
		defer tick.Stop()
		for {
			rtmetrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// BenchmarkScrape: one /metrics scrape of 10,000 flows of 4 steps (a third
// of them failing, exemplars on every bucket hit, some on +Inf), through the
// registry path (promhttp over Collect and Gather, as before) and the
// stream. peak-heap-MB is the heap's growth over the heap after setup.
//
//	go test -run '^$' -bench BenchmarkScrape -benchtime 5x ./internal/metrics/
func BenchmarkScrape(b *testing.B) {
	reg := prometheus.NewRegistry()
	m := New(reg, testRegion, BuildInfo{Version: "bench"})
	populate(m, 10000, 4, true)
	for _, bc := range []struct {
		name, accept, encoding string
		h                      http.Handler
	}{
		{"registry/openmetrics", acceptPrometheus, "", oldHandler(reg)},
		{"stream/openmetrics", acceptPrometheus, "", m.Handler(reg, HandlerOpts{})},
		{"registry/text", acceptText, "", oldHandler(reg)},
		{"stream/text", acceptText, "", m.Handler(reg, HandlerOpts{})},
		{"registry/openmetrics+gzip", acceptPrometheus, "gzip", oldHandler(reg)},
		{"stream/openmetrics+gzip", acceptPrometheus, "gzip", m.Handler(reg, HandlerOpts{})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept", bc.accept)
			if bc.encoding != "" {
				req.Header.Set("Accept-Encoding", bc.encoding)
			}
			runtime.GC()
			base := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
			rtmetrics.Read(base)
			stop := heapPeak()
			b.ReportAllocs()
			var w *discard
			for b.Loop() {
				w = &discard{h: http.Header{}}
				bc.h.ServeHTTP(w, req)
			}
			peak := stop()
			b.ReportMetric(float64(peak-min(peak, base[0].Value.Uint64()))/1e6, "peak-heap-MB")
			b.ReportMetric(float64(w.n)/1e6, "body-MB")
		})
	}
}
