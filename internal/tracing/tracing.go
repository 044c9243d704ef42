// Package tracing exports each finished run as OpenTelemetry spans over
// OTLP, so that the probe's trace (whose ids the runner already sent in
// every traceparent) has its root and client spans in the tracing backend.
//
// It is a consumer of result.Run like metrics, the run log and the store:
// the runner knows nothing of it. The spans carry the run's own ids and
// times: the trace id is the run's, the root span's id is the run id, and
// each step's span id is the one its traceparent sent.
//
// The spans are written as OTLP messages straight from the finished run
// and handed to the OTLP exporters' clients (otlptracehttp, otlptracegrpc)
// in batches. They are not made through the SDK's tracer: its spans are
// built to be live (locks, limits, a snapshot at End, then a conversion to
// the same messages), which cost 2-3 times the CPU for spans whose every
// field is known when they are made. The SDK still makes the resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).
package tracing

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/sdk/resource"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/prober-dev/prober/internal/result"
)

// Options configure a Tracer.
type Options struct {
	// Exporter sends the spans (see NewExporter); New starts it,
	// Shutdown stops it.
	Exporter otlptrace.Client
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
	client otlptrace.Client
	q      *queue
	res    *resourcepb.Resource
	// bound samples a run when its trace id's low 63 bits are below it
	// (the SDK's TraceIDRatioBased rule); 1<<63 is every run.
	bound uint64

	mu sync.Mutex
	// retried maps the trace id of a run that a retry followed to its
	// run id (its root span), so the retry's root can link to it: the
	// result carries only the trace id (RetryOf). Bounded.
	retried map[string][]byte
}

const maxRetried = 1024

var scope = &commonpb.InstrumentationScope{Name: "github.com/prober-dev/prober"}

// New returns a Tracer exporting through o.Exporter, which it starts. The
// resource is service.name "prober" (OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override it) and service.version.
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
	if err := o.Exporter.Start(ctx); err != nil {
		return nil, fmt.Errorf("tracing: starting the OTLP exporter: %w", err)
	}
	t := &Tracer{client: o.Exporter, res: &resourcepb.Resource{}, bound: uint64(ratio * (1 << 63)), retried: map[string][]byte{}}
	if ratio == 1 {
		t.bound = 1 << 63
	}
	for _, kv := range res.Attributes() {
		t.res.Attributes = append(t.res.Attributes, &commonpb.KeyValue{Key: string(kv.Key), Value: anyValue(kv.Value)})
	}
	t.q = newQueue(o, t.upload)
	return t, nil
}

// upload sends one batch as one request.
func (t *Tracer) upload(ctx context.Context, spans []*tracepb.Span) error {
	return t.client.UploadTraces(ctx, []*tracepb.ResourceSpans{{
		Resource:   t.res,
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: scope, Spans: spans}},
	}})
}

func anyValue(v attribute.Value) *commonpb.AnyValue {
	switch v.Type() {
	case attribute.BOOL:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v.AsBool()}}
	case attribute.INT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v.AsInt64()}}
	case attribute.FLOAT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v.AsFloat64()}}
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.Emit()}}
}

// Shutdown exports what is queued, within ctx, and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	err := t.q.Shutdown(ctx)
	if e := t.client.Stop(ctx); err == nil {
		err = e
	}
	return err
}

// ForceFlush exports what is queued, within ctx.
func (t *Tracer) ForceFlush(ctx context.Context) error { return t.q.ForceFlush(ctx) }

// Dropped is how many spans were dropped (queue full or export failed).
func (t *Tracer) Dropped() uint64 { return t.q.dropped.Load() }

// sampled applies the SDK's TraceIDRatioBased rule to a trace id.
func (t *Tracer) sampled(tid []byte) bool {
	return binary.BigEndian.Uint64(tid[8:16])>>1 < t.bound
}

// Observe exports r as spans: it never blocks on the exporter.
func (t *Tracer) Observe(r *result.Run) {
	tid, err := hex.DecodeString(r.TraceID)
	if err != nil || len(tid) != 16 || r.Summarized {
		return // not a run with ids (a summary keeps none)
	}
	rootID, err := hex.DecodeString(r.ID)
	if err != nil || len(rootID) != 8 {
		return
	}
	var link *tracepb.Span_Link
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
			if ptid, err := hex.DecodeString(r.RetryOf); err == nil && len(ptid) == 16 {
				link = &tracepb.Span_Link{TraceId: ptid, SpanId: prev, Flags: 1,
					Attributes: []*commonpb.KeyValue{{Key: "prober.link", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "retry_of"}}}}}
			}
		}
	}
	t.mu.Unlock()
	if !t.sampled(tid) {
		return // whole runs: no child is sampled either
	}

	b := &builder{tid: tid}
	end := r.Start.Add(r.Duration)
	root := b.span(r.Flow, rootID, nil, tracepb.Span_SPAN_KIND_INTERNAL, r.Start, end)
	if link != nil {
		root.Links = []*tracepb.Span_Link{link}
	}
	b.str("prober.flow", r.Flow)
	b.str("prober.region", r.Region)
	b.str("prober.run_id", r.ID)
	b.boolean("prober.synthetic", true)
	b.str("prober.status", string(r.Status))
	if !r.OK() {
		b.str("error.type", string(r.Class))
		if r.FailedStep != "" {
			b.str("prober.failed_step", r.FailedStep)
		}
	}
	if r.Retry > 0 {
		b.int("prober.retry", int64(r.Retry))
		b.str("prober.retry_of", r.RetryOf)
	}
	if r.Retried {
		b.boolean("prober.retried", true)
	}
	for k, v := range r.Labels {
		b.str("prober.label."+k, v)
	}
	b.done()
	for i := range r.Steps {
		s := &r.Steps[i]
		sid, err := hex.DecodeString(s.SpanID)
		if err != nil || len(sid) != 8 || s.Status == result.Skipped {
			root.Events = append(root.Events, b.event("step skipped", end, "prober.step", s.Name))
			continue
		}
		t.step(b, s, sid, rootID)
	}
	if !r.OK() {
		root.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: r.Summary()}
	}
	t.q.add(b.spans)
}

// step adds one step's span, a client span of its request.
func (t *Tracer) step(b *builder, s *result.Step, sid, parent []byte) {
	end := s.Start.Add(s.Duration)
	span := b.span(s.Name, sid, parent, tracepb.Span_SPAN_KIND_CLIENT, s.Start, end)
	b.str("prober.step", s.Name)
	b.str("prober.status", string(s.Status))
	b.int("prober.attempts", int64(s.Attempts))
	if s.Dependency != "" {
		b.str("prober.dependency", s.Dependency)
	}
	if s.Cleanup {
		b.boolean("prober.cleanup", true)
	}
	if s.Kind != "" {
		b.str("prober.step.kind", s.Kind)
	}
	if s.Method != "" {
		b.str("http.request.method", s.Method)
	}
	if s.URL != "" { // redacted by the runner
		b.str("url.full", s.URL)
	}
	// server.address and .port, parsed once for the step and its attempts.
	host, port := "", int64(-1)
	if u, err := url.Parse(s.URL); err == nil && u.Host != "" {
		host = u.Hostname()
		b.str("server.address", host)
		if p, err := strconv.Atoi(u.Port()); err == nil {
			port = int64(p)
			b.int("server.port", port)
		}
	}
	if s.HTTPStatus != 0 {
		b.int("http.response.status_code", int64(s.HTTPStatus))
	}
	if s.BodyBytes > 0 {
		b.int("http.response.body.size", s.BodyBytes)
	}
	if s.Status == result.Failed {
		b.str("error.type", string(s.Class))
	}
	for _, a := range s.Attrs { // the kind's own facts, already redacted
		b.str("prober."+s.Kind+"."+a.Name, a.Value)
	}
	b.done()
	for _, f := range s.Failures {
		ev := b.event("failure", end, "prober.failure", f.Message)
		if f.Expectation != "" {
			ev.Attributes = append(ev.Attributes, b.kv("prober.expectation", f.Expectation))
		}
		if f.Actual != "" {
			ev.Attributes = append(ev.Attributes, b.kv("prober.actual", f.Actual))
		}
		span.Events = append(span.Events, ev)
	}
	if s.Status == result.Failed {
		span.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: s.Message()}
	}
	t.attempts(b, s, sid, host, port)
}

// attempts adds a client span per attempt of the step, under its span:
// the retry: tries and until polls the runner logged, or, for a step of
// one attempt, that attempt made of the step's own record. An HTTP step
// of one attempt has one attempt span; a step of another kind has them
// only when it made two or more (one would repeat its step span).
func (t *Tracer) attempts(b *builder, s *result.Step, sid []byte, host string, port int64) {
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
		t.attempt(b, s, sid, host, port, &one, 1, true)
		return
	}
	first := s.Attempts - len(log) + 1 // older ones fell off the log
	for i := range log {
		t.attempt(b, s, sid, host, port, &log[i], first+i, i == len(log)-1)
	}
}

// attempt adds one attempt's span, by the HTTP client conventions: named
// by the method, url.full redacted (the step's), the status, the resend
// count of a retry, error.type the failure's class, the connection
// phases as events.
func (t *Tracer) attempt(b *builder, s *result.Step, sid []byte, host string, port int64, a *result.Attempt, n int, last bool) {
	name := s.Kind
	if s.Kind == "" {
		name = s.Method
	}
	span := b.span(name, newSpanID(), sid, tracepb.Span_SPAN_KIND_CLIENT, a.Start, a.Start.Add(a.Duration))
	b.int("prober.attempt", int64(n))
	if s.Kind == "" {
		if s.Method != "" {
			b.str("http.request.method", s.Method)
		}
		if s.URL != "" {
			b.str("url.full", s.URL)
		}
	}
	if host != "" {
		b.str("server.address", host)
		if port >= 0 {
			b.int("server.port", port)
		}
	}
	if a.HTTPStatus != 0 {
		b.int("http.response.status_code", int64(a.HTTPStatus))
	}
	if a.Resend > 0 {
		b.int("http.request.resend_count", int64(a.Resend))
	}
	if a.Class != "" {
		b.str("error.type", string(a.Class))
		// The last attempt's failure is the step's sentence when it is the
		// step's class; earlier attempts keep only their class.
		msg := string(a.Class)
		if last && a.Class == s.Class && s.Message() != "" {
			msg = s.Message()
		}
		span.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: msg}
	}
	b.done()
	phaseEvents(b, span, a.Start, &a.Timings)
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
func newSpanID() []byte {
	id := make([]byte, 8)
	for binary.BigEndian.Uint64(id) == 0 {
		binary.BigEndian.PutUint64(id, rand.Uint64())
	}
	return id
}

// phaseEvents marks the ends of an attempt's connection phases, from its
// start at, each with the phase's prober.duration_ms.
func phaseEvents(b *builder, span *tracepb.Span, at time.Time, t *result.Timings) {
	if t.FirstByte == 0 && t.DNS == 0 && t.Connect == 0 && t.TLS == 0 {
		return // no HTTP exchange, or none timed
	}
	ev := func(name string, off, d time.Duration) {
		span.Events = append(span.Events, &tracepb.Span_Event{TimeUnixNano: unixNano(at.Add(off)), Name: name,
			Attributes: []*commonpb.KeyValue{b.double("prober.duration_ms", float64(d.Microseconds())/1000)}})
	}
	if t.Reused {
		span.Events = append(span.Events, &tracepb.Span_Event{TimeUnixNano: unixNano(at), Name: "connection reused"})
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

func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

// builder makes the OTLP messages of one run. Attributes are allocated
// in blocks, not one by one (a key-value is three small objects), and a
// span's attribute slice is cut from a run-wide one.
type builder struct {
	tid   []byte
	spans []*tracepb.Span
	cur   *tracepb.Span
	from  int // where cur's attributes start in attrs
	attrs []*commonpb.KeyValue

	kvs []commonpb.KeyValue
	avs []commonpb.AnyValue
	ss  []commonpb.AnyValue_StringValue
	is  []commonpb.AnyValue_IntValue
}

const block = 32

// span starts a span; its attributes follow (str, int...) until done.
func (b *builder) span(name string, id, parent []byte, kind tracepb.Span_SpanKind, start, end time.Time) *tracepb.Span {
	s := &tracepb.Span{TraceId: b.tid, SpanId: id, ParentSpanId: parent, Name: name, Kind: kind,
		StartTimeUnixNano: unixNano(start), EndTimeUnixNano: unixNano(end)}
	b.spans = append(b.spans, s)
	b.cur, b.from = s, len(b.attrs)
	return s
}

// done ends the current span's attributes.
func (b *builder) done() {
	b.cur.Attributes = b.attrs[b.from:len(b.attrs):len(b.attrs)]
}

func (b *builder) kvOf(k string, v *commonpb.AnyValue) *commonpb.KeyValue {
	if len(b.kvs) == cap(b.kvs) {
		b.kvs = make([]commonpb.KeyValue, 0, block)
	}
	b.kvs = b.kvs[:len(b.kvs)+1]
	kv := &b.kvs[len(b.kvs)-1]
	kv.Key, kv.Value = k, v
	return kv
}

func (b *builder) anyValue() *commonpb.AnyValue {
	if len(b.avs) == cap(b.avs) {
		b.avs = make([]commonpb.AnyValue, 0, block)
	}
	b.avs = b.avs[:len(b.avs)+1]
	return &b.avs[len(b.avs)-1]
}

// kv is a string attribute, not added to a span.
func (b *builder) kv(k, v string) *commonpb.KeyValue {
	if len(b.ss) == cap(b.ss) {
		b.ss = make([]commonpb.AnyValue_StringValue, 0, block)
	}
	b.ss = append(b.ss, commonpb.AnyValue_StringValue{StringValue: v})
	av := b.anyValue()
	av.Value = &b.ss[len(b.ss)-1]
	return b.kvOf(k, av)
}

func (b *builder) str(k, v string) { b.attrs = append(b.attrs, b.kv(k, v)) }

func (b *builder) int(k string, v int64) {
	if len(b.is) == cap(b.is) {
		b.is = make([]commonpb.AnyValue_IntValue, 0, block)
	}
	b.is = append(b.is, commonpb.AnyValue_IntValue{IntValue: v})
	av := b.anyValue()
	av.Value = &b.is[len(b.is)-1]
	b.attrs = append(b.attrs, b.kvOf(k, av))
}

func (b *builder) boolean(k string, v bool) {
	av := b.anyValue()
	av.Value = &commonpb.AnyValue_BoolValue{BoolValue: v}
	b.attrs = append(b.attrs, b.kvOf(k, av))
}

func (b *builder) double(k string, v float64) *commonpb.KeyValue {
	av := b.anyValue()
	av.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: v}
	return b.kvOf(k, av)
}

// event is an event with one string attribute.
func (b *builder) event(name string, at time.Time, k, v string) *tracepb.Span_Event {
	return &tracepb.Span_Event{TimeUnixNano: unixNano(at), Name: name, Attributes: []*commonpb.KeyValue{b.kv(k, v)}}
}
