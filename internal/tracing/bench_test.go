package tracing

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

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
