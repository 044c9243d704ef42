// Package tracing exports each finished run as OpenTelemetry spans over
// OTLP, so that the probe's trace (whose ids the runner already sent in
// every traceparent) has its root and client spans in the tracing backend.
//
// It is a consumer of result.Run like metrics, the run log and the store:
// the runner is unchanged and knows nothing of it. The spans carry the
// run's own ids and times: the trace id is the run's, the root span's id
// is the run id, and each step's span id is the one its traceparent sent.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/prober-dev/prober/internal/result"
)

// Options configure a Tracer.
type Options struct {
	// Exporter receives the spans (see NewExporter).
	Exporter sdktrace.SpanExporter
	// Sampling is the share of runs exported, chosen by trace id; 0 is
	// taken as 1 (a configured tracer that exports nothing is a mistake).
	Sampling float64
	Version  string
	Logger   *slog.Logger
	// Registerer gets prober_trace_spans_dropped_total; nil registers nothing.
	Registerer prometheus.Registerer
	// Queue bounds the spans waiting for export (default 4096); beyond it
	// spans are dropped and counted, never waited for.
	Queue int
	// Batch is the most spans in one export (default 512); Interval the
	// longest a span waits for its batch to fill (default 2s).
	Batch    int
	Interval time.Duration
	// ExportTimeout bounds one export (default 10s).
	ExportTimeout time.Duration
}

// Tracer turns runs into spans. It is a result.Observer.
type Tracer struct {
	tp *sdktrace.TracerProvider
	tr trace.Tracer
	q  *queue

	mu sync.Mutex
	// retried maps the trace id of a run that a retry followed to its
	// run id (its root span), so the retry's root can link to it: the
	// result carries only the trace id (RetryOf). Bounded.
	retried map[string]trace.SpanID
}

const maxRetried = 1024

// New returns a Tracer exporting through o.Exporter. The resource is
// service.name "prober" (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
// override it) and service.version.
func New(ctx context.Context, o Options) (*Tracer, error) {
	if o.Exporter == nil {
		return nil, fmt.Errorf("tracing: no exporter")
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "prober"), attribute.String("service.version", o.Version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // last: the environment wins
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: building the resource: %w", err)
	}
	ratio := o.Sampling
	if ratio <= 0 || ratio > 1 {
		ratio = 1
	}
	q := newQueue(o)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithIDGenerator(givenIDs{}),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithSpanProcessor(q),
	)
	return &Tracer{tp: tp, tr: tp.Tracer("github.com/prober-dev/prober"), q: q, retried: map[string]trace.SpanID{}}, nil
}

// Shutdown exports what is queued, within ctx, and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error { return t.tp.Shutdown(ctx) }

// ForceFlush exports what is queued, within ctx.
func (t *Tracer) ForceFlush(ctx context.Context) error { return t.tp.ForceFlush(ctx) }

// Dropped is how many spans were dropped (queue full or export failed).
func (t *Tracer) Dropped() uint64 { return t.q.dropped.Load() }

// Observe exports r as spans: it never blocks on the exporter.
func (t *Tracer) Observe(r *result.Run) {
	tid, err := trace.TraceIDFromHex(r.TraceID)
	if err != nil || r.Summarized {
		return // not a run with ids (a summary keeps none)
	}
	rootID, err := trace.SpanIDFromHex(r.ID)
	if err != nil {
		return
	}
	var links []trace.Link
	t.mu.Lock()
	if r.Retried {
		if len(t.retried) >= maxRetried {
			for k := range t.retried { // forget one: retries follow at once, so old ones are stale
				delete(t.retried, k)
				break
			}
		}
		t.retried[r.TraceID] = rootID
	}
	if r.RetryOf != "" {
		if prev, ok := t.retried[r.RetryOf]; ok {
			delete(t.retried, r.RetryOf)
			if ptid, err := trace.TraceIDFromHex(r.RetryOf); err == nil {
				links = append(links, trace.Link{
					SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: ptid, SpanID: prev, TraceFlags: trace.FlagsSampled}),
					Attributes:  []attribute.KeyValue{attribute.String("prober.link", "retry_of")},
				})
			}
		}
	}
	t.mu.Unlock()

	ctx := context.WithValue(context.Background(), idsKey{}, ids{tid, rootID})
	attrs := []attribute.KeyValue{
		attribute.String("prober.flow", r.Flow),
		attribute.String("prober.region", r.Region),
		attribute.String("prober.run_id", r.ID),
		attribute.Bool("prober.synthetic", true),
		attribute.String("prober.status", string(r.Status)),
	}
	if !r.OK() {
		attrs = append(attrs, attribute.String("error.type", string(r.Class)))
		if r.FailedStep != "" {
			attrs = append(attrs, attribute.String("prober.failed_step", r.FailedStep))
		}
	}
	if r.Retry > 0 {
		attrs = append(attrs, attribute.Int("prober.retry", r.Retry), attribute.String("prober.retry_of", r.RetryOf))
	}
	if r.Retried {
		attrs = append(attrs, attribute.Bool("prober.retried", true))
	}
	for k, v := range r.Labels {
		attrs = append(attrs, attribute.String("prober.label."+k, v))
	}
	ctx, root := t.tr.Start(ctx, r.Flow, trace.WithNewRoot(), trace.WithTimestamp(r.Start),
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...), trace.WithLinks(links...))
	if !root.SpanContext().IsSampled() {
		return // not sampled: no child would be either
	}
	for i := range r.Steps {
		s := &r.Steps[i]
		sid, err := trace.SpanIDFromHex(s.SpanID)
		if err != nil || s.Status == result.Skipped {
			root.AddEvent("step skipped", trace.WithTimestamp(r.Start.Add(r.Duration)),
				trace.WithAttributes(attribute.String("prober.step", s.Name)))
			continue
		}
		t.step(context.WithValue(ctx, idsKey{}, ids{tid, sid}), s)
	}
	if !r.OK() {
		msg := r.Summary()
		root.SetStatus(codes.Error, msg)
	}
	root.End(trace.WithTimestamp(r.Start.Add(r.Duration)))
}

// step exports one step's span, a client span of its request.
func (t *Tracer) step(ctx context.Context, s *result.Step) {
	attrs := []attribute.KeyValue{
		attribute.String("prober.step", s.Name),
		attribute.String("prober.status", string(s.Status)),
		attribute.Int("prober.attempts", s.Attempts),
	}
	if s.Dependency != "" {
		attrs = append(attrs, attribute.String("prober.dependency", s.Dependency))
	}
	if s.Cleanup {
		attrs = append(attrs, attribute.Bool("prober.cleanup", true))
	}
	if s.Kind != "" {
		attrs = append(attrs, attribute.String("prober.step.kind", s.Kind))
	}
	if s.Method != "" {
		attrs = append(attrs, attribute.String("http.request.method", s.Method))
	}
	if s.URL != "" { // redacted by the runner
		attrs = append(attrs, attribute.String("url.full", s.URL))
		if u, err := url.Parse(s.URL); err == nil && u.Host != "" {
			attrs = append(attrs, attribute.String("server.address", u.Hostname()))
			if p, err := strconv.Atoi(u.Port()); err == nil {
				attrs = append(attrs, attribute.Int("server.port", p))
			}
		}
	}
	if s.HTTPStatus != 0 {
		attrs = append(attrs, attribute.Int("http.response.status_code", s.HTTPStatus))
	}
	if s.BodyBytes > 0 {
		attrs = append(attrs, attribute.Int64("http.response.body.size", s.BodyBytes))
	}
	if s.Status == result.Failed {
		attrs = append(attrs, attribute.String("error.type", string(s.Class)))
	}
	for _, a := range s.Attrs { // the kind's own facts, already redacted
		attrs = append(attrs, attribute.String("prober."+s.Kind+"."+a.Name, a.Value))
	}
	_, span := t.tr.Start(ctx, s.Name, trace.WithTimestamp(s.Start),
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	end := s.Start.Add(s.Duration)
	phaseEvents(span, s, end)
	for _, f := range s.Failures {
		fa := []attribute.KeyValue{attribute.String("prober.failure", f.Message)}
		if f.Expectation != "" {
			fa = append(fa, attribute.String("prober.expectation", f.Expectation))
		}
		if f.Actual != "" {
			fa = append(fa, attribute.String("prober.actual", f.Actual))
		}
		span.AddEvent("failure", trace.WithTimestamp(end), trace.WithAttributes(fa...))
	}
	if s.Status == result.Failed {
		span.SetStatus(codes.Error, s.Message())
	}
	span.End(trace.WithTimestamp(end))
}

// phaseEvents marks the ends of the connection phases of the step's last
// attempt. The result keeps the phases' lengths and the attempt count but
// not when each attempt began, so the last attempt's start is the step's
// end less its first byte and transfer times (the step's start when there
// was one attempt).
func phaseEvents(span trace.Span, s *result.Step, end time.Time) {
	t := s.Timings
	if t.FirstByte == 0 && t.DNS == 0 && t.Connect == 0 && t.TLS == 0 {
		return // no HTTP exchange, or none timed
	}
	at := s.Start
	if s.Attempts > 1 {
		if a := end.Add(-t.FirstByte - t.Transfer); a.After(at) {
			at = a
		}
		span.AddEvent("last attempt", trace.WithTimestamp(at), trace.WithAttributes(attribute.Int("prober.attempt", s.Attempts)))
	}
	ev := func(name string, off, d time.Duration) {
		span.AddEvent(name, trace.WithTimestamp(at.Add(off)),
			trace.WithAttributes(attribute.Float64("prober.duration_ms", float64(d.Microseconds())/1000)))
	}
	if t.Reused {
		span.AddEvent("connection reused", trace.WithTimestamp(at))
	} else {
		off := t.DNS
		if t.DNS > 0 {
			ev("dns done", off, t.DNS)
		}
		off += t.Connect
		if t.Connect > 0 {
			ev("connect done", off, t.Connect)
		}
		off += t.TLS
		if t.TLS > 0 {
			ev("tls done", off, t.TLS)
		}
	}
	if t.FirstByte > 0 {
		ev("first byte", t.FirstByte, t.Processing)
	}
}

// givenIDs makes the SDK use the ids the runner chose (read from the
// context): the spans must carry the ids that traceparent already sent.
type givenIDs struct{}

type idsKey struct{}

type ids struct {
	trace trace.TraceID
	span  trace.SpanID
}

func (givenIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	v, _ := ctx.Value(idsKey{}).(ids)
	return v.trace, v.span
}

func (givenIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	v, _ := ctx.Value(idsKey{}).(ids)
	return v.span
}
