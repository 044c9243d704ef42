package metrics

import (
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prober-dev/prober/internal/result"
)

// The records are cut to allocation size classes (runtime/sizeclasses.go):
// flowData to 160 bytes, full; steps are 24 bytes each in their flow's
// array, a configured dependency 24. A field more moves 10,000 flows (or
// 40,000 steps) to the next class: change these numbers knowing that.
func TestRecordSizes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes of 64-bit platforms")
	}
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"stepData", unsafe.Sizeof(stepData{}), 24}, // in an array: failures, dependency and histogram are in stepExt
		{"stepExt", unsafe.Sizeof(stepExt{}), 24},
		{"stepDetail", unsafe.Sizeof(stepDetail{}), 128},
		{"flowData", unsafe.Sizeof(flowData{}), 160}, // the 160-byte class, full (what few flows have is in flowRare)
		{"depData", unsafe.Sizeof(depData{}), 24},    // failures in depExt
		{"depExt", unsafe.Sizeof(depExt{}), 32},
		{"histo", unsafe.Sizeof(histo{}), 88},
		{"exemplar", unsafe.Sizeof(exemplar{}), 32}, // 1, 2, 4 of them: size classes
		{"classCount", unsafe.Sizeof(classCount{}), 32},
		{"label", unsafe.Sizeof(label{}), 72},
	} {
		if c.got != c.want {
			t.Errorf("%s is %d bytes, want %d", c.name, c.got, c.want)
		}
	}
	// Exemplar arrays are not scanned by the GC, nor keep strings alive.
	if p := pointerPath(reflect.TypeFor[exemplar](), "exemplar"); p != "" {
		t.Errorf("%s is a pointer", p)
	}
}

// pointerPath names a field of t that holds a pointer, or is "".
func pointerPath(t reflect.Type, path string) string {
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if p := pointerPath(t.Field(i).Type, path+"."+t.Field(i).Name); p != "" {
				return p
			}
		}
		return ""
	case reflect.Array:
		return pointerPath(t.Elem(), path+"[]")
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return ""
	}
	return path
}

// parseTraceID takes exactly 32 lowercase hex digits, not all zero, and
// gives them back as they were: every byte at every position against a
// digit-by-digit decoder.
func TestParseTraceID(t *testing.T) {
	ref := func(s string) (traceID, bool) {
		if len(s) != 32 {
			return traceID{}, false
		}
		var id traceID
		for i := range len(s) {
			c := s[i]
			var v uint64
			switch {
			case '0' <= c && c <= '9':
				v = uint64(c - '0')
			case 'a' <= c && c <= 'f':
				v = uint64(c - 'a' + 10)
			default:
				return traceID{}, false
			}
			if i < 16 {
				id.hi = id.hi<<4 | v
			} else {
				id.lo = id.lo<<4 | v
			}
		}
		return id, id != traceID{}
	}
	check := func(s string) {
		t.Helper()
		got, ok := parseTraceID(s)
		want, wantOK := ref(s)
		if got != want || ok != wantOK {
			t.Fatalf("parseTraceID(%q) = %x, %v; want %x, %v", s, got, ok, want, wantOK)
		}
		if ok && got.String() != s {
			t.Fatalf("parseTraceID(%q) encodes back as %q", s, got.String())
		}
	}
	for _, base := range []string{"0123456789abcdeffedcba9876543210", "00000000000000000000000000000000"} {
		for pos := range len(base) {
			for c := range 256 {
				b := []byte(base)
				b[pos] = byte(c)
				check(string(b))
			}
		}
	}
	for _, s := range []string{traceOK, traceFail, "", "0", traceOK[:31], traceOK + "0", "ffffffffffffffffffffffffffffffff",
		strings.ToUpper(traceOK), "4bf92f3577b34da6-3ce929d0e0e4736", "4bf92f3577b34da6a3ce929d0e0e473\u00e9"} {
		check(s)
	}
}

// Trace ids of another form than the runner's (uppercase, all zero,
// anything valid) are exposed as they came, and replace and are replaced
// by the runner's form, in histogram buckets and on the failure counter,
// the same through the registry and the stream.
func TestOddTraceIDs(t *testing.T) {
	const (
		upper = "4BF92F3577B34DA6A3CE929D0E0E4736"
		zero  = "00000000000000000000000000000000"
		other = "trace-\u00fc-1"
		short = "x"
	)
	reg, m := newTestMetrics(t)
	m.batch = 3 // hex and odd ids across batches of the stream
	m.SetFlows([]FlowShape{genShape("odd", 2), genShape("plain", 2)})
	run := func(trace string, d time.Duration, failAt int) {
		m.Observe(genRun("odd", 2, failAt, result.Timeout, trace, d, t0))
		m.Observe(genRun("plain", 2, failAt, result.Timeout, traceOK, d, t0))
	}
	run(traceFail, 200*time.Millisecond, 1) // flow le=0.25, steps le=0.1
	run(upper, 20*time.Millisecond, -1)     // flow le=0.025, steps le=0.01
	run(zero, 200*time.Millisecond, 1)      // replaces traceFail everywhere
	run(other, 20*time.Millisecond, -1)     // replaces upper
	run(short, 100*time.Second, 0)          // flow +Inf, s0 le=60; s1 skipped
	run(strings.Repeat("a", 130), 20*time.Millisecond, -1)
	run("", 200*time.Millisecond, -1)
	check := func(want map[string]string) {
		t.Helper()
		for _, h := range []struct {
			name string
			h    http.Handler
		}{{"registry", oldHandler(reg)}, {"stream", m.Handler(reg, HandlerOpts{})}} {
			body := get(h.h, "/metrics", acceptOM1, "").Body.String()
			got := map[string]string{}
			for _, mm := range oddExemplarRE.FindAllStringSubmatch(body, -1) {
				if strings.Contains(mm[2], `flow="odd"`) {
					got[mm[1]+"{"+mm[2]+"}"] = mm[3]
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: exemplars\n%v\nwant\n%v", h.name, got, want)
			}
		}
		for _, accept := range []string{acceptOM1, acceptText} {
			compareBodies(t, get(oldHandler(reg), "/metrics", accept, "").Body.Bytes(),
				get(m.Handler(reg, HandlerOpts{}), "/metrics", accept, "").Body.Bytes(), accept == acceptOM1)
		}
	}
	fd := `flow="odd",region="eu-west-1"`
	st := func(step string) string { return `flow="odd",region="eu-west-1",step="` + step + `"` }
	check(map[string]string{
		"prober_flow_duration_seconds_bucket{" + fd + `,le="0.025"}`:      other,
		"prober_flow_duration_seconds_bucket{" + fd + `,le="0.25"}`:       zero,
		"prober_flow_duration_seconds_bucket{" + fd + `,le="+Inf"}`:       short,
		"prober_step_duration_seconds_bucket{" + st("s0") + `,le="0.01"}`: other,
		"prober_step_duration_seconds_bucket{" + st("s0") + `,le="0.1"}`:  zero,
		"prober_step_duration_seconds_bucket{" + st("s0") + `,le="60.0"}`: short,
		"prober_step_duration_seconds_bucket{" + st("s1") + `,le="0.01"}`: other,
		"prober_step_duration_seconds_bucket{" + st("s1") + `,le="0.1"}`:  zero,
		"prober_runs_total{" + fd + `,result="failure"}`:                  short,
	})
	// And the runner's form back over odd ones.
	run(traceFail, 100*time.Second, 0)
	run(traceOK, 200*time.Millisecond, -1)
	check(map[string]string{
		"prober_flow_duration_seconds_bucket{" + fd + `,le="0.025"}`:      other,
		"prober_flow_duration_seconds_bucket{" + fd + `,le="0.25"}`:       traceOK,
		"prober_flow_duration_seconds_bucket{" + fd + `,le="+Inf"}`:       traceFail,
		"prober_step_duration_seconds_bucket{" + st("s0") + `,le="0.01"}`: other,
		"prober_step_duration_seconds_bucket{" + st("s0") + `,le="0.1"}`:  traceOK,
		"prober_step_duration_seconds_bucket{" + st("s0") + `,le="60.0"}`: traceFail,
		"prober_step_duration_seconds_bucket{" + st("s1") + `,le="0.01"}`: other,
		"prober_step_duration_seconds_bucket{" + st("s1") + `,le="0.1"}`:  traceOK,
		"prober_runs_total{" + fd + `,result="failure"}`:                  traceFail,
	})
}

var oddExemplarRE = regexp.MustCompile(`(?m)^(prober_\w+)\{([^}]*)\} \S+ # \{trace_id="([^"]*)"\}`)

// BenchmarkRetained: the heap the records of 10,000 flows of 4 steps keep
// after populate's histories and a second passing run per flow (so most
// steps' histograms hold exemplars in two or three buckets), per step (the
// flow's share included) and in all.
//
//	go test -run '^$' -bench BenchmarkRetained ./internal/metrics/
func BenchmarkRetained(b *testing.B) {
	const flows, steps = 10000, 4
	var total uint64
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		m := New(prometheus.NewRegistry(), testRegion, BuildInfo{Version: "bench"})
		populate(m, flows, steps, true)
		for i := range flows {
			trace := fmt.Sprintf("%032x", 0x123000+i)
			m.Observe(genRun(fmt.Sprintf("flow-%05d", i), steps, -1, "", trace, time.Duration(5+i%40)*time.Millisecond, t0.Add(3*time.Minute)))
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(m)
		total += after.HeapAlloc - before.HeapAlloc
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/float64(b.N)/(flows*steps), "retained-B/step")
	b.ReportMetric(float64(total)/float64(b.N)/1e6, "retained-MB")
}

// At the default level a step that no rule reads shows no histogram, so
// its record keeps none: 2,000 flows of 4 such steps (one with a
// dependency), run twice, keep at most 95 bytes a step, the flow's record,
// histogram and exemplars included: measured 87. It was 333 with the step
// histograms and their exemplars kept for nothing, then 179 with a
// 256-byte flowData, an 80-byte flow label, a map entry, a 48-byte
// stepData and a pointer per step and a 48-byte dependency.
func TestRetainedDefaultLevel(t *testing.T) {
	const flows, steps = 2000, 4
	// The shapes are the configuration's (it holds them, not metrics):
	// made before the baseline, so only what metrics keeps is counted.
	shapes := make([]FlowShape, flows)
	for i := range shapes {
		shapes[i] = genShape(fmt.Sprintf("flow-%05d", i), steps)
		shapes[i].Detailed = false
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m := New(prometheus.NewRegistry(), testRegion, BuildInfo{Version: "test"})
	m.SetFlows(shapes)
	for k := range 2 {
		for i := range flows {
			trace := fmt.Sprintf("%032x", 0x123000+i+k*flows)
			m.Observe(genRun(shapes[i].Name, steps, -1, "", trace, time.Duration(5+(i+k*7)%40)*time.Millisecond, t0.Add(time.Duration(k)*time.Minute)))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(m)
	perStep := float64(after.HeapAlloc-before.HeapAlloc) / (flows * steps)
	t.Logf("%.0f bytes a step", perStep)
	if perStep > 95 && !raceEnabled {
		t.Errorf("%.0f bytes retained a step at the default level, want <= 95", perStep)
	}
	// The flow's own histogram still counts both runs of every flow.
	for _, fd := range m.flows {
		if n := fd.duration.count(); n != 2 {
			t.Fatalf("flow %s: duration count %d, want 2", fd.name, n)
		}
	}
	// Made detailed by a reload, a step's histogram starts from there.
	shapes[0].Detailed = true
	m.SetFlows(shapes[:1])
	m.Observe(genRun(shapes[0].Name, steps, -1, "", traceOK, 10*time.Millisecond, t0.Add(2*time.Minute)))
	for _, sd := range m.flow(shapes[0].Name).stepList() {
		if sd.detail() == nil || sd.detail().duration.count() != 1 {
			t.Fatalf("step %s after the reload to detailed: %+v, want a histogram of 1", sd.lbl.raw, sd.detail())
		}
	}
	// And hidden again, it is let go.
	shapes[0].Detailed = false
	m.SetFlows(shapes[:1])
	for _, sd := range m.flow(shapes[0].Name).stepList() {
		if sd.detail() != nil {
			t.Fatalf("step %s hidden again still keeps its histogram", sd.lbl.raw)
		}
	}
}

// Series counts each flow's sample lines as a scrape shows them (the
// buckets shown, +Inf when an exemplar spells it out, rule bounds) without
// building the histograms' messages, which it did for every histogram of
// every flow at each load (10,000 flows: 13 MB of garbage, enough to raise
// the GC's goal). Checked against a scrape at both levels, with bounds and
// exemplars on +Inf; and 2,000 flows of four steps at the default level
// cost at most 120 bytes a flow to count (measured 67, the map's share; it
// was 1,337).
func TestSeriesCountsWithoutBuilding(t *testing.T) {
	reg, m := newTestMetrics(t)
	var shapes []FlowShape
	for i := range 24 {
		sh := genShape(fmt.Sprintf("flow-%02d", i), 3)
		sh.Detailed = i%2 == 0
		if i%3 == 0 {
			sh.Bounds = []float64{0.3, 120}
			sh.Steps[1].Bounds = []float64{0.07}
		}
		sh.Steps[0].Histogram = i%4 == 1
		shapes = append(shapes, sh)
	}
	m.SetFlows(shapes)
	durations := []time.Duration{3 * time.Millisecond, 200 * time.Millisecond, 100 * time.Second, 400 * time.Second}
	for i, sh := range shapes {
		for k := range i % 5 {
			failAt := -1
			if k == 2 {
				failAt = 1
			}
			trace := fmt.Sprintf("%032x", 0xabc000+i*10+k)
			m.Observe(genRun(sh.Name, 3, failAt, result.Timeout, trace, durations[(i+k)%len(durations)], t0.Add(time.Duration(k)*time.Minute)))
		}
	}
	if got, want := m.Series(), scrapeCounts(t, reg, m); !maps.Equal(got, want) {
		t.Errorf("Series %v\nscrape %v", got, want)
	}

	const flows = 2000
	_, big := newTestMetrics(t)
	shapes = shapes[:0]
	for i := range flows {
		sh := genShape(fmt.Sprintf("flow-%05d", i), 4)
		sh.Detailed = false
		shapes = append(shapes, sh)
	}
	big.SetFlows(shapes)
	for i, sh := range shapes {
		big.Observe(genRun(sh.Name, 4, -1, "", fmt.Sprintf("%032x", 0x123000+i), time.Duration(5+i%40)*time.Millisecond, t0))
	}
	big.Series() // warm
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n := big.Series()
	runtime.ReadMemStats(&after)
	perFlow := float64(after.TotalAlloc-before.TotalAlloc) / flows
	t.Logf("Series allocates %.0f bytes a flow", perFlow)
	if len(n) != flows {
		t.Fatalf("%d flows counted, want %d", len(n), flows)
	}
	if perFlow > 120 && !raceEnabled {
		t.Errorf("Series allocates %.0f bytes a flow, want <= 120", perFlow)
	}
}
