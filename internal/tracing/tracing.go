// Package tracing exports each finished run as OpenTelemetry spans over
// OTLP, so that the probe's trace (whose ids the runner already sent in
// every traceparent) has its root and client spans in the tracing backend.
//
// It is a consumer of result.Run like metrics, the run log and the store:
// the runner knows nothing of it. The spans carry the run's own ids and
// times: the trace id is the run's, the root span's id is the run id, and
// each step's span id is the one its traceparent sent.
//
// The spans are encoded in OTLP's protobuf form straight from the
// finished run, each into a few hundred bytes, and sent in batches
// through the OTLP exporters' clients (otlptracehttp, otlptracegrpc),
// which honour the OTEL_EXPORTER_OTLP_* variables. They are not made
// through the SDK's tracer: its spans are built to be live (locks,
// limits, a snapshot at End, a conversion to tracepb messages, then the
// marshalling): for spans whose every field is known when they are made
// that took 161 allocations (20 KB) for a four-step run, against 22, and
// a tracing-on CPU ratio of 1.25 in BenchmarkTracingCPU, against 1.13.
// The SDK still makes the resource (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES).
package tracing

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
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
	"google.golang.org/protobuf/encoding/protowire"

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
	scope  *commonpb.InstrumentationScope
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
	t := &Tracer{client: o.Exporter, res: &resourcepb.Resource{}, scope: &commonpb.InstrumentationScope{Name: "github.com/prober-dev/prober"}, bound: uint64(ratio * (1 << 63)), retried: map[string][]byte{}}
	if ratio == 1 {
		t.bound = 1 << 63
	}
	for _, kv := range res.Attributes() {
		t.res.Attributes = append(t.res.Attributes, &commonpb.KeyValue{Key: string(kv.Key), Value: anyValue(kv.Value)})
	}
	t.q = newQueue(o, t.upload)
	return t, nil
}

// upload sends one batch as one request. The spans are already encoded:
// they go in as the ScopeSpans' unknown fields, which proto.Marshal
// writes as they are, under their field number (spans, 2), so the
// receiver reads them as spans.
func (t *Tracer) upload(ctx context.Context, spans [][]byte) error {
	n := 0
	for _, s := range spans {
		n += protowire.SizeTag(scopeSpansSpans) + protowire.SizeBytes(len(s))
	}
	raw := make([]byte, 0, n)
	for _, s := range spans {
		raw = protowire.AppendTag(raw, scopeSpansSpans, protowire.BytesType)
		raw = protowire.AppendBytes(raw, s)
	}
	ss := &tracepb.ScopeSpans{Scope: t.scope}
	ss.ProtoReflect().SetUnknown(raw)
	return t.client.UploadTraces(ctx, []*tracepb.ResourceSpans{{Resource: t.res, ScopeSpans: []*tracepb.ScopeSpans{ss}}})
}

const scopeSpansSpans protowire.Number = 2

func anyValue(v attribute.Value) *commonpb.AnyValue {
	switch v.Type() {
	case attribute.BOOL:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v.AsBool()}}
	case attribute.INT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v.AsInt64()}}
	case attribute.FLOAT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v.AsFloat64()}}
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.String()}}
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

// Sampled says whether Observe exports the run of traceID (32 hex
// digits): the runner sends it as its traceparents' sampled flag, so a
// backend sampling by its parent drops its spans of a run prober drops.
func (t *Tracer) Sampled(traceID string) bool {
	if len(traceID) != 32 {
		return false
	}
	low, err := strconv.ParseUint(traceID[16:], 16, 64)
	return err == nil && low>>1 < t.bound
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
	var linkTo, linkID []byte
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
				linkTo, linkID = ptid, prev
			}
		}
	}
	t.mu.Unlock()
	if !t.sampled(tid) {
		return // whole runs: no child is sampled either
	}

	e := &encoder{tid: tid, buf: make([]byte, 0, 512+1024*len(r.Steps))} // about what a run takes
	end := r.Start.Add(r.Duration)
	e.begin(r.Flow, rootID, nil, tracepb.Span_SPAN_KIND_INTERNAL, r.Start, end)
	if linkTo != nil {
		e.link(linkTo, linkID, "prober.link", "retry_of")
	}
	e.str("prober.flow", r.Flow)
	e.str("prober.region", r.Region)
	e.str("prober.run_id", r.ID)
	e.boolean("prober.synthetic", true)
	e.str("prober.status", string(r.Status))
	if !r.OK() {
		e.str("error.type", string(r.Class))
		if r.FailedStep != "" {
			e.str("prober.failed_step", r.FailedStep)
		}
	}
	if r.Retry > 0 {
		e.int("prober.retry", int64(r.Retry))
		e.str("prober.retry_of", r.RetryOf)
	}
	if r.Retried {
		e.boolean("prober.retried", true)
	}
	for k, v := range r.Labels {
		e.str("prober.label."+k, v)
	}
	sids := make([][]byte, len(r.Steps))
	for i := range r.Steps {
		s := &r.Steps[i]
		sid, err := hex.DecodeString(s.SpanID)
		if err != nil || len(sid) != 8 || s.Status == result.Skipped {
			e.beginEvent("step skipped", end)
			e.evStr("prober.step", s.Name)
			e.endEvent()
			continue
		}
		sids[i] = sid
	}
	if !r.OK() {
		e.status(r.Summary())
	}
	e.end()
	for i := range r.Steps {
		if sids[i] != nil {
			t.step(e, &r.Steps[i], sids[i], rootID)
		}
	}
	t.q.add(e.spans())
}

// step adds one step's span, a client span of its request.
func (t *Tracer) step(e *encoder, s *result.Step, sid, parent []byte) {
	end := s.Start.Add(s.Duration)
	e.begin(s.Name, sid, parent, tracepb.Span_SPAN_KIND_CLIENT, s.Start, end)
	e.str("prober.step", s.Name)
	e.str("prober.status", string(s.Status))
	e.int("prober.attempts", int64(s.Attempts))
	if s.Dependency != "" {
		e.str("prober.dependency", s.Dependency)
	}
	if s.Cleanup {
		e.boolean("prober.cleanup", true)
	}
	if s.Kind != "" {
		e.str("prober.step.kind", s.Kind)
	}
	if s.Method != "" {
		e.str("http.request.method", s.Method)
	}
	if s.URL != "" { // redacted by the runner
		e.str("url.full", s.URL)
	}
	// server.address and .port, parsed once for the step and its attempts.
	host, port := "", int64(-1)
	if u, err := url.Parse(s.URL); err == nil && u.Host != "" {
		host = u.Hostname()
		e.str("server.address", host)
		if p, err := strconv.Atoi(u.Port()); err == nil {
			port = int64(p)
			e.int("server.port", port)
		}
	}
	if s.HTTPStatus != 0 {
		e.int("http.response.status_code", int64(s.HTTPStatus))
	}
	if s.BodyBytes > 0 {
		e.int("http.response.body.size", s.BodyBytes)
	}
	if s.Status == result.Failed {
		e.str("error.type", string(s.Class))
	}
	for _, a := range s.Attrs { // the kind's own facts, already redacted
		e.str("prober."+s.Kind+"."+a.Name, a.Value)
	}
	for _, f := range s.Failures {
		e.beginEvent("failure", end)
		e.evStr("prober.failure", f.Message)
		if f.Expectation != "" {
			e.evStr("prober.expectation", f.Expectation)
		}
		if f.Actual != "" {
			e.evStr("prober.actual", f.Actual)
		}
		e.endEvent()
	}
	if s.Status == result.Failed {
		e.status(s.Message())
	}
	e.end()
	t.attempts(e, s, sid, host, port)
}

// attempts adds a client span per attempt of the step, under its span:
// the retry: tries and until polls the runner logged, or, for a step of
// one attempt, that attempt made of the step's own record. An HTTP step
// of one attempt has one attempt span; a step of another kind has them
// only when it made two or more (one would repeat its step span).
func (t *Tracer) attempts(e *encoder, s *result.Step, sid []byte, host string, port int64) {
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
		t.attempt(e, s, sid, host, port, &one, 1, true)
		return
	}
	first := s.Attempts - len(log) + 1 // older ones fell off the log
	for i := range log {
		t.attempt(e, s, sid, host, port, &log[i], first+i, i == len(log)-1)
	}
}

// attempt adds one attempt's span, by the HTTP client conventions: named
// by the method, url.full redacted (the step's), the status, the resend
// count of a retry, error.type the failure's class, the connection
// phases as events.
func (t *Tracer) attempt(e *encoder, s *result.Step, sid []byte, host string, port int64, a *result.Attempt, n int, last bool) {
	name := s.Kind
	if s.Kind == "" {
		name = s.Method
	}
	var id [8]byte
	for binary.BigEndian.Uint64(id[:]) == 0 {
		binary.BigEndian.PutUint64(id[:], rand.Uint64())
	}
	e.begin(name, id[:], sid, tracepb.Span_SPAN_KIND_CLIENT, a.Start, a.Start.Add(a.Duration))
	e.int("prober.attempt", int64(n))
	if s.Kind == "" {
		if s.Method != "" {
			e.str("http.request.method", s.Method)
		}
		if s.URL != "" {
			e.str("url.full", s.URL)
		}
	}
	if host != "" {
		e.str("server.address", host)
		if port >= 0 {
			e.int("server.port", port)
		}
	}
	if a.HTTPStatus != 0 {
		e.int("http.response.status_code", int64(a.HTTPStatus))
	}
	if a.Resend > 0 {
		e.int("http.request.resend_count", int64(a.Resend))
	}
	if a.Class != "" {
		e.str("error.type", string(a.Class))
		// The last attempt's failure is the step's sentence when it is the
		// step's class; earlier attempts keep only their class.
		msg := string(a.Class)
		if last && a.Class == s.Class && s.Message() != "" {
			msg = s.Message()
		}
		e.status(msg)
	}
	phaseEvents(e, a.Start, &a.Timings)
	e.end()
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

// phaseEvents marks the ends of an attempt's connection phases, from its
// start at, each with the phase's prober.duration_ms.
func phaseEvents(e *encoder, at time.Time, t *result.Timings) {
	if t.FirstByte == 0 && t.DNS == 0 && t.Connect == 0 && t.TLS == 0 {
		return // no HTTP exchange, or none timed
	}
	ev := func(name string, off, d time.Duration) {
		e.beginEvent(name, at.Add(off))
		e.evDouble("prober.duration_ms", float64(d.Microseconds())/1000)
		e.endEvent()
	}
	if t.Reused {
		e.beginEvent("connection reused", at)
		e.endEvent()
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

// encoder writes the spans of one run in the OTLP protobuf encoding
// (opentelemetry/proto/trace/v1/trace.proto), one after the other into
// one buffer: a span is a few hundred bytes there, against some fifty
// objects as a tracepb.Span. A span's fields go in any order, so each is
// appended as it comes; a nested message (an event) is written to a
// scratch buffer first, for its length.
type encoder struct {
	tid  []byte
	buf  []byte
	ends []int // where each finished span ends in buf
	ev   []byte
}

// The field numbers of trace.proto and common.proto.
const (
	spanTraceID, spanSpanID, spanParent, spanName, spanKind, spanStart, spanEnd protowire.Number = 1, 2, 4, 5, 6, 7, 8
	spanAttrs, spanEvents, spanLinks, spanStatus                                protowire.Number = 9, 11, 13, 15
	eventTime, eventName, eventAttrs                                            protowire.Number = 1, 2, 3
	linkTraceID, linkSpanID, linkAttrs, linkFlags                               protowire.Number = 1, 2, 4, 6
	statusMessage, statusCode                                                   protowire.Number = 2, 3
	kvKey, kvValue                                                              protowire.Number = 1, 2
	anyString, anyBool, anyInt, anyDouble                                       protowire.Number = 1, 2, 3, 4
)

func (e *encoder) begin(name string, id, parent []byte, kind tracepb.Span_SpanKind, start, end time.Time) {
	b := protowire.AppendTag(e.buf, spanTraceID, protowire.BytesType)
	b = protowire.AppendBytes(b, e.tid)
	b = protowire.AppendTag(b, spanSpanID, protowire.BytesType)
	b = protowire.AppendBytes(b, id)
	if parent != nil {
		b = protowire.AppendTag(b, spanParent, protowire.BytesType)
		b = protowire.AppendBytes(b, parent)
	}
	b = protowire.AppendTag(b, spanName, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, spanKind, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(kind))
	b = protowire.AppendTag(b, spanStart, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, unixNano(start))
	b = protowire.AppendTag(b, spanEnd, protowire.Fixed64Type)
	e.buf = protowire.AppendFixed64(b, unixNano(end))
}

func (e *encoder) end() { e.ends = append(e.ends, len(e.buf)) }

// spans are the finished spans, each its encoding.
func (e *encoder) spans() [][]byte {
	out := make([][]byte, len(e.ends))
	from := 0
	for i, to := range e.ends {
		out[i] = e.buf[from:to:to]
		from = to
	}
	return out
}

// appendKV appends a KeyValue as field f, its AnyValue's one field v of
// type typ, already encoded.
func appendKV(b []byte, f protowire.Number, k string, vf protowire.Number, typ protowire.Type, v []byte) []byte {
	anyLen := protowire.SizeTag(vf) + len(v)
	kvLen := protowire.SizeTag(kvKey) + protowire.SizeBytes(len(k)) + protowire.SizeTag(kvValue) + protowire.SizeBytes(anyLen)
	b = protowire.AppendTag(b, f, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kvLen))
	b = protowire.AppendTag(b, kvKey, protowire.BytesType)
	b = protowire.AppendString(b, k)
	b = protowire.AppendTag(b, kvValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(anyLen))
	b = protowire.AppendTag(b, vf, typ)
	return append(b, v...)
}

// appendStrKV is appendKV of a string, without copying it first.
func appendStrKV(b []byte, f protowire.Number, k, v string) []byte {
	anyLen := protowire.SizeTag(anyString) + protowire.SizeBytes(len(v))
	kvLen := protowire.SizeTag(kvKey) + protowire.SizeBytes(len(k)) + protowire.SizeTag(kvValue) + protowire.SizeBytes(anyLen)
	b = protowire.AppendTag(b, f, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kvLen))
	b = protowire.AppendTag(b, kvKey, protowire.BytesType)
	b = protowire.AppendString(b, k)
	b = protowire.AppendTag(b, kvValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(anyLen))
	b = protowire.AppendTag(b, anyString, protowire.BytesType)
	return protowire.AppendString(b, v)
}

func (e *encoder) str(k, v string) { e.buf = appendStrKV(e.buf, spanAttrs, k, v) }

func (e *encoder) int(k string, v int64) {
	var s [10]byte
	e.buf = appendKV(e.buf, spanAttrs, k, anyInt, protowire.VarintType, protowire.AppendVarint(s[:0], uint64(v)))
}

func (e *encoder) boolean(k string, v bool) {
	var x uint64
	if v {
		x = 1
	}
	e.buf = appendKV(e.buf, spanAttrs, k, anyBool, protowire.VarintType, []byte{byte(x)})
}

func (e *encoder) status(msg string) {
	n := protowire.SizeTag(statusMessage) + protowire.SizeBytes(len(msg)) + protowire.SizeTag(statusCode) + protowire.SizeVarint(uint64(tracepb.Status_STATUS_CODE_ERROR))
	b := protowire.AppendTag(e.buf, spanStatus, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	b = protowire.AppendTag(b, statusMessage, protowire.BytesType)
	b = protowire.AppendString(b, msg)
	b = protowire.AppendTag(b, statusCode, protowire.VarintType)
	e.buf = protowire.AppendVarint(b, uint64(tracepb.Status_STATUS_CODE_ERROR))
}

// link adds a link to a span of another trace, with one attribute.
func (e *encoder) link(tid, sid []byte, k, v string) {
	l := protowire.AppendTag(e.ev[:0], linkTraceID, protowire.BytesType)
	l = protowire.AppendBytes(l, tid)
	l = protowire.AppendTag(l, linkSpanID, protowire.BytesType)
	l = protowire.AppendBytes(l, sid)
	l = appendStrKV(l, linkAttrs, k, v)
	l = protowire.AppendTag(l, linkFlags, protowire.Fixed32Type)
	l = protowire.AppendFixed32(l, 1) // sampled
	e.ev = l
	b := protowire.AppendTag(e.buf, spanLinks, protowire.BytesType)
	e.buf = protowire.AppendBytes(b, l)
}

func (e *encoder) beginEvent(name string, at time.Time) {
	b := protowire.AppendTag(e.ev[:0], eventTime, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, unixNano(at))
	b = protowire.AppendTag(b, eventName, protowire.BytesType)
	e.ev = protowire.AppendString(b, name)
}

func (e *encoder) evStr(k, v string) { e.ev = appendStrKV(e.ev, eventAttrs, k, v) }

func (e *encoder) evDouble(k string, v float64) {
	var s [8]byte
	e.ev = appendKV(e.ev, eventAttrs, k, anyDouble, protowire.Fixed64Type, protowire.AppendFixed64(s[:0], math.Float64bits(v)))
}

func (e *encoder) endEvent() {
	b := protowire.AppendTag(e.buf, spanEvents, protowire.BytesType)
	e.buf = protowire.AppendBytes(b, e.ev)
}
