package shop

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Service names of the sandbox's spans: the shop and its bank gateway are
// two services, as they would be in production.
const (
	serviceShop    = "sandbox-shop"
	serviceGateway = "sandbox-gateway"
)

// spans holds a service's tracer once tracing is switched on (Sandbox.Trace).
// The zero value, and a nil *spans, is off: a request then costs one atomic
// load, and handlers see the no-op span.
type spans struct{ p atomic.Pointer[otelService] }

type otelService struct {
	tp *sdktrace.TracerProvider
	tr trace.Tracer
}

func (s *spans) tracer() trace.Tracer {
	if s == nil {
		return nil
	}
	if v := s.p.Load(); v != nil {
		return v.tr
	}
	return nil
}

// on switches s to export through exp as service name.
func (s *spans) on(exp sdktrace.SpanExporter, name string) {
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", name),
			attribute.String("service.namespace", "prober-sandbox"),
		)),
		// The server span takes the ids the access log already shows.
		sdktrace.WithIDGenerator(localIDs{}),
		// Follow the caller's sampled flag; sample what starts here.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		// The batcher drops when its queue is full: a tracing backend that
		// is down never slows the shop.
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second), sdktrace.WithExportTimeout(10*time.Second)),
	)
	s.p.Store(&otelService{tp: tp, tr: tp.Tracer("github.com/prober-dev/prober/internal/shop")})
}

// shutdown exports what is queued, within ctx.
func (s *spans) shutdown(ctx context.Context) error {
	if v := s.p.Swap(nil); v != nil {
		return v.tp.Shutdown(ctx)
	}
	return nil
}

// startServer starts the server span of r when tracing is on: its parent
// is the received traceparent (so it hangs under the caller's span), its
// trace and span ids are those ri already chose, so the access log's
// trace_id and local_span_id are the span's.
func (s *spans) startServer(r *http.Request, ri *reqInfo) (context.Context, trace.Span) {
	ctx := r.Context()
	tr := s.tracer()
	if tr == nil {
		return ctx, nil
	}
	tid, _ := trace.TraceIDFromHex(ri.trace.traceID)
	sid, _ := trace.SpanIDFromHex(ri.trace.spanID)
	if !ri.trace.generated {
		pid, _ := trace.SpanIDFromHex(ri.trace.parentSpanID)
		ts, _ := trace.ParseTraceState(ri.trace.tracestate) // malformed: none
		var flags trace.TraceFlags
		if ri.trace.sampled {
			flags = trace.FlagsSampled
		}
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: pid, TraceFlags: flags, TraceState: ts, Remote: true,
		}))
	}
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("url.scheme", scheme(r)),
		attribute.String("network.protocol.version", protoVersion(r)),
		attribute.Bool("prober.synthetic", ri.synthetic),
	}
	if host, port, err := net.SplitHostPort(r.Host); err == nil {
		attrs = append(attrs, attribute.String("server.address", host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", p))
		}
	} else if r.Host != "" {
		attrs = append(attrs, attribute.String("server.address", r.Host))
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		attrs = append(attrs, attribute.String("client.address", host))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, attribute.String("user_agent.original", ua))
	}
	if ri.region != "" {
		attrs = append(attrs, attribute.String("prober.region", ri.region))
	}
	// The ids go in a context used for Start only: spans started under
	// this one (the gateway call) must get fresh ids.
	_, span := tr.Start(context.WithValue(ctx, localIDsKey{}, localIDs{tid, sid}), r.Method,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return trace.ContextWithSpan(ctx, span), span
}

// endServer names the span after the matched route and ends it with the
// answer: a 5xx, a reset connection or no answer at all is an error; a 4xx
// is the client's and leaves the server span unset (semantic conventions).
func endServer(span trace.Span, pattern string, status int, ri *reqInfo) {
	if span == nil {
		return
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		span.SetName(pattern) // "POST /api/orders/{id}/pay"
		span.SetAttributes(attribute.String("http.route", path))
	}
	if ri.orderID != "" {
		span.SetAttributes(attribute.String("shop.order.id", ri.orderID))
	}
	switch {
	case ri.reset:
		span.SetAttributes(attribute.String("error.type", "connection_reset"))
		span.SetStatus(codes.Error, "connection reset without an answer (fault injected)")
	case status == 0:
		span.SetAttributes(attribute.String("error.type", "aborted"))
		span.SetStatus(codes.Error, "handler aborted without an answer")
	default:
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// recordGatewayError puts the gateway's failure on the shop's server span
// as an exception event. Swallowed, it says so: the span's own answer is a
// 200 (or a redirect to a page saying processing: hidden is what the
// caller got), and this event is the only place the trace shows what was
// hidden.
func recordGatewayError(ctx context.Context, gr gatewayResult, swallowed bool, hidden string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	what := fmt.Sprintf("gateway %s", gr.outcome)
	if gr.status != 0 {
		what = fmt.Sprintf("gateway %d", gr.status)
	}
	msg := what
	if gr.err != nil {
		msg = gr.err.Error()
	}
	typ := "shop.GatewayError"
	if swallowed {
		typ = "shop.GatewayErrorSwallowed"
		msg = fmt.Sprintf("the %s was turned into %s: %s", what, hidden, msg)
		span.SetAttributes(
			attribute.Bool("shop.gateway.error_swallowed", true),
			attribute.String("shop.order.status", statusProcessing),
		)
	}
	span.SetAttributes(attribute.String("shop.gateway.outcome", gr.outcome))
	if gr.status != 0 {
		span.SetAttributes(attribute.Int("shop.gateway.status_code", gr.status))
	}
	span.AddEvent("exception", trace.WithAttributes(
		attribute.String("exception.type", typ),
		attribute.String("exception.message", msg),
	))
}

// spanTransport makes a client span of each call to the gateway, sent as
// the traceparent's parent-id so the gateway's span hangs under it.
type spanTransport struct {
	base  http.RoundTripper
	spans *spans
}

func (t *spanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tr := t.spans.tracer()
	if tr == nil {
		return t.base.RoundTrip(req)
	}
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", req.Method),
		attribute.String("url.full", req.URL.Redacted()),
		attribute.String("server.address", req.URL.Hostname()),
	}
	if p, err := strconv.Atoi(req.URL.Port()); err == nil {
		attrs = append(attrs, attribute.Int("server.port", p))
	}
	ctx, span := tr.Start(req.Context(), req.Method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	req = req.Clone(ctx) // a RoundTripper must not change the caller's request
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		typ := "error"
		if isTimeout(err) {
			typ = "timeout"
		}
		span.SetAttributes(attribute.String("error.type", typ))
		span.SetStatus(codes.Error, err.Error())
		span.End()
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		// A client span is in error on any 4xx or 5xx (semantic conventions).
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, fmt.Sprintf("gateway answered %d", resp.StatusCode))
	}
	// The span lasts until the body is read or closed.
	resp.Body = &spanBody{ReadCloser: resp.Body, span: span}
	return resp, nil
}

// spanBody ends its span at EOF or Close, whichever comes first.
type spanBody struct {
	io.ReadCloser
	span trace.Span
	once sync.Once
}

func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.end(err)
	}
	return n, err
}

func (b *spanBody) Close() error {
	err := b.ReadCloser.Close()
	b.end(nil)
	return err
}

func (b *spanBody) end(err error) {
	b.once.Do(func() {
		if err != nil && !errors.Is(err, io.EOF) {
			b.span.SetAttributes(attribute.String("error.type", "body"))
			b.span.SetStatus(codes.Error, "reading the answer: "+err.Error())
		}
		b.span.End()
	})
}

// localIDs makes the SDK use the server span's ids given in the context;
// any other span gets random ids.
type localIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

type localIDsKey struct{}

func (localIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if v, ok := ctx.Value(localIDsKey{}).(localIDs); ok && v.trace.IsValid() && v.span.IsValid() {
		return v.trace, v.span
	}
	var tid trace.TraceID
	_, _ = rand.Read(tid[:])
	return tid, randomSpanID()
}

func (localIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if v, ok := ctx.Value(localIDsKey{}).(localIDs); ok && v.span.IsValid() {
		return v.span
	}
	return randomSpanID()
}

func randomSpanID() trace.SpanID {
	var sid trace.SpanID
	_, _ = rand.Read(sid[:]) // crypto/rand.Read never fails on supported platforms
	return sid
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func protoVersion(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return "2"
	}
	return fmt.Sprintf("%d.%d", r.ProtoMajor, r.ProtoMinor)
}

// nopShutdown shares one exporter between the two services' providers:
// each provider's shutdown flushes through it, the sandbox shuts it once.
type nopShutdown struct{ sdktrace.SpanExporter }

func (nopShutdown) Shutdown(context.Context) error { return nil }
