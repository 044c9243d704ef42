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
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
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

	scratch sync.Pool // *[]attribute.KeyValue, see Observe
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
	t := &Tracer{tp: tp, tr: tp.Tracer("github.com/prober-dev/prober"), q: q, retried: map[string]trace.SpanID{}}
	t.scratch.New = func() any { s := make([]attribute.KeyValue, 0, 24); return &s }
	return t, nil
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
	// One scratch slice for the attributes of every span of the run: the
	// SDK copies them.
	sc := t.scratch.Get().(*[]attribute.KeyValue)
	defer t.scratch.Put(sc)
	attrs := append((*sc)[:0],
		attribute.String("prober.flow", r.Flow),
		attribute.String("prober.region", r.Region),
		attribute.String("prober.run_id", r.ID),
		attribute.Bool("prober.synthetic", true),
		attribute.String("prober.status", string(r.Status)),
	)
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
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithLinks(links...))
	// Set, not given to Start: Start copies them into its config first.
	root.SetAttributes(attrs...)
	*sc = attrs
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
		t.step(context.WithValue(ctx, idsKey{}, ids{tid, sid}), s, sc)
	}
	if !r.OK() {
		msg := r.Summary()
		root.SetStatus(codes.Error, msg)
	}
	root.End(trace.WithTimestamp(r.Start.Add(r.Duration)))
}

// step exports one step's span, a client span of its request.
func (t *Tracer) step(ctx context.Context, s *result.Step, sc *[]attribute.KeyValue) {
	attrs := append((*sc)[:0],
		attribute.String("prober.step", s.Name),
		attribute.String("prober.status", string(s.Status)),
		attribute.Int("prober.attempts", s.Attempts),
	)
	// server.address and .port, parsed once for the step and its attempts.
	var server []attribute.KeyValue
	if u, err := url.Parse(s.URL); err == nil && u.Host != "" {
		server = make([]attribute.KeyValue, 1, 2)
		server[0] = attribute.String("server.address", u.Hostname())
		if p, err := strconv.Atoi(u.Port()); err == nil {
			server = append(server, attribute.Int("server.port", p))
		}
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
	}
	attrs = append(attrs, server...)
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
	ctx, span := t.tr.Start(ctx, s.Name, trace.WithTimestamp(s.Start), trace.WithSpanKind(trace.SpanKindClient))
	span.SetAttributes(attrs...)
	*sc = attrs
	end := s.Start.Add(s.Duration)
	t.attempts(ctx, s, server, sc)
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

// attempts exports a client span per attempt of the step, under its span
// (ctx's): the retry: tries and until polls the runner logged, or, for a
// step of one attempt, that attempt made of the step's own record. An
// HTTP step of one attempt has one attempt span; a step of another kind
// has them only when it made two or more (one would repeat its step span).
func (t *Tracer) attempts(ctx context.Context, s *result.Step, server []attribute.KeyValue, sc *[]attribute.KeyValue) {
	// A zero span id: givenIDs makes a new one for each attempt.
	ctx = context.WithValue(ctx, idsKey{}, ids{trace: ctx.Value(idsKey{}).(ids).trace})
	log := s.AttemptLog
	if len(log) == 0 {
		if s.Attempts != 1 || s.Kind != "" {
			return
		}
		one := result.Attempt{Start: s.Start, Duration: s.Duration, HTTPStatus: int32(s.HTTPStatus), Timings: s.Timings}
		switch {
		case s.HTTPStatus >= 400:
			one.Class = statusClass(s.HTTPStatus)
		case s.HTTPStatus == 0 && s.Status == result.Failed:
			one.Class = s.Class // no answer: the transport's failure
		}
		t.attempt(ctx, s, server, sc, &one, 1, true)
		return
	}
	first := s.Attempts - len(log) + 1 // older ones fell off the log
	for i := range log {
		t.attempt(ctx, s, server, sc, &log[i], first+i, i == len(log)-1)
	}
}

// attempt exports one attempt's span, by the HTTP client conventions:
// named by the method, url.full redacted (the step's), the status, the
// resend count of a retry, error.type the failure's class.
func (t *Tracer) attempt(ctx context.Context, s *result.Step, server []attribute.KeyValue, sc *[]attribute.KeyValue, a *result.Attempt, n int, last bool) {
	attrs := append((*sc)[:0], attribute.Int("prober.attempt", n))
	name := s.Kind
	if s.Kind == "" {
		name = s.Method
		if s.Method != "" {
			attrs = append(attrs, attribute.String("http.request.method", s.Method))
		}
		if s.URL != "" {
			attrs = append(attrs, attribute.String("url.full", s.URL))
		}
	}
	attrs = append(attrs, server...)
	if a.HTTPStatus != 0 {
		attrs = append(attrs, attribute.Int("http.response.status_code", int(a.HTTPStatus)))
	}
	if a.Resend > 0 {
		attrs = append(attrs, attribute.Int("http.request.resend_count", int(a.Resend)))
	}
	if a.Class != "" {
		attrs = append(attrs, attribute.String("error.type", string(a.Class)))
	}
	_, span := t.tr.Start(ctx, name, trace.WithTimestamp(a.Start), trace.WithSpanKind(trace.SpanKindClient))
	span.SetAttributes(attrs...)
	*sc = attrs
	phaseEvents(span, a.Start, &a.Timings)
	if a.Class != "" {
		// The last attempt's failure is the step's sentence when it is the
		// step's class; earlier attempts keep only their class.
		msg := string(a.Class)
		if last && a.Class == s.Class && s.Message() != "" {
			msg = s.Message()
		}
		span.SetStatus(codes.Error, msg)
	}
	span.End(trace.WithTimestamp(a.Start.Add(a.Duration)))
}

// statusClass is the class of an HTTP error status (the runner's, which
// this package does not import: it reads results, not their maker).
func statusClass(status int) result.Class {
	switch {
	case status == 429:
		return result.HTTP429
	case status >= 500:
		return result.HTTP5xx
	}
	return result.HTTP4xx
}

// newSpanID is a new span id, for an attempt span: the runner sent none
// for it (the traceparent carries the step's).
func newSpanID() trace.SpanID {
	var id trace.SpanID
	for id == (trace.SpanID{}) {
		binary.BigEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}

// phaseEvents marks the ends of an attempt's connection phases, from its
// start at.
func phaseEvents(span trace.Span, at time.Time, t *result.Timings) {
	if t.FirstByte == 0 && t.DNS == 0 && t.Connect == 0 && t.TLS == 0 {
		return // no HTTP exchange, or none timed
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
// A zero span id asks for a new one (attempt spans).
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
	if v.span == (trace.SpanID{}) {
		return newSpanID()
	}
	return v.span
}
