package daemon

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// keepSpans keeps the spans at Shutdown, which the in-memory exporter
// forgets.
type keepSpans struct{ *tracetest.InMemoryExporter }

func (keepSpans) Shutdown(context.Context) error { return nil }

// TestTracingSamplingReachesTheShop: with sampling at 50%, the shop (which
// samples by its parent) exports spans for exactly the runs prober
// exported: a run left out says so in its traceparent, so no shop trace
// in the backend lacks its prober root.
func TestTracingSamplingReachesTheShop(t *testing.T) {
	rc := newOTLPReceiver(t)
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":       probes("health") + "tracing: {endpoint: \"" + rc.srv.URL + "\", sampling: 50%}\n",
		"flows/health.yaml": healthFlow("health"),
	}})
	shopSpans := tracetest.NewInMemoryExporter()
	f.sb.Trace(keepSpans{shopSpans})
	f.serve()
	// Runs until both kinds were seen (each run is one or the other with
	// odds 1/2: 30 runs miss one kind once in 500 million).
	sampled := map[bool]int{}
	waitFor(t, 40*time.Second, "a sampled and an unsampled run", func() bool {
		for k := range sampled {
			delete(sampled, k)
		}
		for _, r := range f.rec.of("health") {
			sampled[f.d.tracer.Sampled(r.TraceID)]++
		}
		return sampled[true] > 0 && sampled[false] > 0
	})
	if _, err := f.stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.sb.Close(ctx); err != nil { // flushes the shop's spans
		t.Fatal(err)
	}
	shopTraces := map[string]int{}
	for _, s := range shopSpans.GetSpans() {
		shopTraces[s.SpanContext.TraceID().String()]++
	}
	for _, r := range f.rec.of("health") {
		prober, shop := len(rc.of(r.TraceID)) > 0, shopTraces[r.TraceID] > 0
		if prober != shop {
			t.Errorf("run %s: prober exported spans %v, the shop %v (%d spans)", r.TraceID, prober, shop, shopTraces[r.TraceID])
		}
	}
}
