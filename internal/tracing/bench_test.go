package tracing

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/runner"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

type discard struct{}

func (discard) Start(context.Context) error                                  { return nil }
func (discard) Stop(context.Context) error                                   { return nil }
func (discard) UploadTraces(context.Context, []*tracepb.ResourceSpans) error { return nil }

// BenchmarkRun is the cost of a real two-step run against a loopback
// target with tracing off and on (spans built, queued and handed to an
// exporter that discards them): the ratio is the price of tracing.
func BenchmarkRun(b *testing.B) {
	tg := newTarget(b)
	_, rf := loadFlow(b, tg.srv.URL)
	tr, err := New(context.Background(), Options{Exporter: discard{}, Interval: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := rf.Run(context.Background(), time.Time{})
				if on {
					tr.Observe(r)
				}
			}
		})
	}
}

// BenchmarkObserve is the cost of turning one run into spans.
func BenchmarkObserve(b *testing.B) {
	tr, err := New(context.Background(), Options{Exporter: discard{}, Queue: 1 << 16, Interval: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	r := fakeRun(1)
	b.ReportAllocs()
	for b.Loop() {
		tr.Observe(r)
	}
}

// BenchmarkTracingCPU is the measure: the CPU a run costs with
// tracing on (spans built, queued, batched and exported over OTLP/HTTP to
// a loopback sink that discards them) against tracing off, in the same
// run, as interleaved blocks so that a shared machine's noise falls on
// both. The process's CPU time counts everything: the runner, the target
// server (equal on both sides), the exporter and the sink. Each on block
// ends in a flush, so its exports are paid inside it, in batches of at
// most block*spans-per-run (smaller than a daemon's, so dearer).
//
//	go test -run '^$' -bench TracingCPU -benchtime 3000x ./internal/tracing/
func BenchmarkTracingCPU(b *testing.B) {
	var polls atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/count" { // 1, 2, 3, 1, ...: until n >= 3 polls 3 times
			fmt.Fprintf(w, `{"n":%d}`, polls.Add(1)%3+1)
			return
		}
		io.WriteString(w, `{"token":"tok"}`)
	})
	tg, tgTLS := httptest.NewServer(h), httptest.NewTLSServer(h)
	b.Cleanup(tg.Close)
	b.Cleanup(tgTLS.Close)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(sink.Close)
	for _, c := range []struct {
		name  string
		steps int
		extra string // more of each step's YAML
		https bool   // a TLS handshake each run, as a run starts with no connection
	}{
		{"steps=1", 1, "", false},
		{"steps=4", 4, "", false},
		{"steps=1/polls=3", 1, "    until: {expect: ['json.n >= 3'], interval: 1ms, within: 5s}\n", false},
		{"steps=4/https", 4, "", true},
	} {
		b.Run(c.name, func(b *testing.B) {
			var yaml strings.Builder
			for i := range c.steps {
				path := "/login"
				if c.extra != "" {
					path = "/count"
				}
				fmt.Fprintf(&yaml, "  - name: s%d\n    request: {url: \"{{base}}%s\"}\n%s", i, path, c.extra)
			}
			base, head := tg.URL, ""
			if c.https {
				base, head = tgTLS.URL, "tls: {insecure_skip_verify: true}\n"
			}
			rf := benchFlow(b, base, head, yaml.String())
			exp, err := NewExporter(b.Context(), &config.Tracing{Endpoint: sink.URL, Protocol: "http"})
			if err != nil {
				b.Fatal(err)
			}
			tr, err := New(b.Context(), Options{Exporter: exp})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			var offCPU, onCPU, offWall, onWall time.Duration
			const block = 50
			b.ResetTimer()
			for done := 0; done < b.N; done += block {
				n := min(block, b.N-done)
				c0, t0 := cpuTime(), time.Now()
				for range n {
					if r := rf.Run(context.Background(), time.Time{}); !r.OK() {
						b.Fatal(r.Summary())
					}
				}
				c1, t1 := cpuTime(), time.Now()
				for range n {
					r := rf.Run(context.Background(), time.Time{})
					if !r.OK() {
						b.Fatal(r.Summary())
					}
					tr.Observe(r)
				}
				if err := tr.ForceFlush(context.Background()); err != nil {
					b.Fatal(err)
				}
				c2, t2 := cpuTime(), time.Now()
				offCPU, onCPU = offCPU+c1-c0, onCPU+c2-c1
				offWall, onWall = offWall+t1.Sub(t0), onWall+t2.Sub(t1)
			}
			b.StopTimer()
			if tr.Dropped() != 0 {
				b.Fatalf("%d spans dropped: the measure is of exported spans", tr.Dropped())
			}
			b.ReportMetric(float64(offCPU.Nanoseconds())/float64(b.N), "off-cpu-ns/run")
			b.ReportMetric(float64(onCPU.Nanoseconds())/float64(b.N), "on-cpu-ns/run")
			b.ReportMetric(float64(onCPU)/float64(offCPU), "cpu-ratio")
			b.ReportMetric(float64(onWall)/float64(offWall), "wall-ratio")
		})
	}
}

// benchFlow is a flow of steps (YAML list items) against base, head
// more of the flow's YAML.
func benchFlow(b *testing.B, base, head, steps string) *runner.Flow {
	fsys := fstest.MapFS{
		"probes.yaml": {Data: []byte("region: eu-west\nvars: {base: \"" + base + "\"}\nflows: [f.yaml]\n")},
		"f.yaml":      {Data: []byte("name: f\nretries: 0\n" + head + "steps:\n" + steps)},
	}
	cfg, err := config.Load(fsys, "probes.yaml", config.Options{Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		b.Fatal(err)
	}
	rf, err := runner.New(cfg.Flows[0], runner.Options{Version: "bench", Region: cfg.Region})
	if err != nil {
		b.Fatal(err)
	}
	return rf
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkObserveRun is the cost of turning a real four-step run (13
// spans: run, steps, attempts) into spans, exported to nothing.
func BenchmarkObserveRun(b *testing.B) {
	tg := newTarget(b)
	var yaml strings.Builder
	for i := range 4 {
		fmt.Fprintf(&yaml, "  - name: s%d\n    request: {url: \"{{base}}/login\"}\n", i)
	}
	r := benchFlow(b, tg.srv.URL, "", yaml.String()).Run(context.Background(), time.Time{})
	tr, err := New(context.Background(), Options{Exporter: discard{}, Queue: 1 << 16, Interval: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	b.ReportAllocs()
	for b.Loop() {
		tr.Observe(r)
	}
}
