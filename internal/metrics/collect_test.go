package metrics

import (
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// collectFlows is a Metrics with n one-step and n four-step flows at the
// default level, each passed a run with a trace id (so its histogram holds
// an exemplar), and how many series flowCollector sends for them.
func collectFlows(tb testing.TB, n int) (*Metrics, int) {
	tb.Helper()
	m := New(prometheus.NewRegistry(), testRegion, BuildInfo{Version: "test"})
	var shapes []FlowShape
	for i := range 2 * n {
		steps := 1 + 3*(i%2)
		s := genShape(fmt.Sprintf("flow-%05d", i), steps)
		s.Detailed = false
		shapes = append(shapes, s)
	}
	m.SetFlows(shapes)
	for i, s := range shapes {
		m.Observe(genRun(s.Name, len(s.Steps), -1, "", fmt.Sprintf("%032x", 0xabc000+i), time.Duration(50+i)*time.Millisecond, t0))
	}
	ch := make(chan prometheus.Metric, 100*n)
	flowCollector{m}.Collect(ch)
	return m, len(ch)
}

// collectCost is what one flowCollector.Collect of m allocates: count and
// bytes. ch holds every series sent, so that sending never blocks.
func collectCost(m *Metrics, ch chan prometheus.Metric) (allocs, bytes float64) {
	const runs = 20
	collect := func() {
		flowCollector{m}.Collect(ch)
		for len(ch) > 0 {
			<-ch
		}
	}
	collect() // warm the channel and the flow list's size
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		collect()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / runs, float64(after.TotalAlloc-before.TotalAlloc) / runs
}

// A gather of the registry (the load harness's, tests', tools') copies
// each flow's series into samples it sends. They were grown from nothing
// per flow (1, 2, 4, 8 samples of 216 bytes, then 16) and their exemplars
// cloned one histogram at a time: 5.5 allocations a flow and 574 bytes per
// series sent, here. Cut from a chunk shared by the flows, the exemplars
// from one slice: 0.1 allocations a flow and 312 bytes a series.
func TestCollectAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes what allocates")
	}
	const n = 100 // of each
	m, sent := collectFlows(t, n)
	allocs, bytes := collectCost(m, make(chan prometheus.Metric, sent))
	perFlow, bytesPerSeries := allocs/(2*n), bytes/float64(sent)
	t.Logf("%d flows, %d series: %.0f allocs (%.2f a flow), %.0f B (%.0f a series, a sample being %.0f)",
		2*n, sent, allocs, perFlow, bytes, bytesPerSeries, sizeofSample)
	if perFlow > 0.5 {
		t.Errorf("a gather allocates %.2f times per flow, want at most 0.5", perFlow)
	}
	if bytesPerSeries > 1.5*sizeofSample {
		t.Errorf("a gather allocates %.0f bytes per series sent, want at most 1.5 samples (%.0f bytes)", bytesPerSeries, sizeofSample*3/2)
	}
}

// BenchmarkCollect: a gather's per-flow series, per flow, one-step and
// four-step flows alternately.
//
//	go test -run '^$' -bench BenchmarkCollect ./internal/metrics/
func BenchmarkCollect(b *testing.B) {
	const n = 500
	m, sent := collectFlows(b, n)
	ch := make(chan prometheus.Metric, sent)
	b.ReportAllocs()
	for b.Loop() {
		flowCollector{m}.Collect(ch)
		for len(ch) > 0 {
			<-ch
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(2*n), "ns/flow")
}

const sizeofSample = float64(unsafe.Sizeof(sample{}))
