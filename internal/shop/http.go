package shop

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxBodyBytes bounds every request body we read (hostile input).
const maxBodyBytes = 64 << 10

// routeUnmatched labels requests no pattern matched, keeping metric
// cardinality bounded whatever paths clients invent.
const routeUnmatched = "unmatched"

// codeReset is the metrics "code" for connections dropped without answering.
const codeReset = "reset"

// reqInfo is per-request state shared between the instrumentation wrapper
// and handlers (which fill in orderID). One goroutine owns it.
type reqInfo struct {
	trace     traceContext
	region    string
	synthetic bool
	orderID   string
	reset     bool
	// resetConn is the hijacked connection of a reset request, closed (RST)
	// only after the request is counted and logged, so that whoever sees
	// the reset can already read it in /metrics and the log.
	resetConn io.Closer
	counted   bool // instrument counts it, and closes resetConn after
}

type ctxKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(ctxKey{}).(*reqInfo); ok {
		return ri
	}
	// Only reached if a handler is used outside instrument; keep it safe.
	return &reqInfo{trace: newTraceContext(nil)}
}

// statusRecorder remembers the status for logs and metrics. Unwrap lets
// http.ResponseController reach Hijack on the real writer.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// httpMetrics are the per-service request metrics.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer, prefix string, routes []route) httpMetrics {
	m := httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    prefix + "_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	// Pre-initialise so rate() has a zero to start from before the first hit.
	for _, rt := range routes {
		m.requests.WithLabelValues(rt.pattern, strconv.Itoa(rt.okCode))
		m.duration.WithLabelValues(rt.pattern)
	}
	return m
}

// route is one registered pattern plus its usual success code (for
// pre-initialising metrics).
type route struct {
	pattern string
	okCode  int
	h       http.HandlerFunc
}

// instrument wraps a mux with trace-context extraction, one JSON log line
// per request, request metrics labelled by route pattern and, when sp is
// on, an OpenTelemetry server span.
func instrument(log *slog.Logger, m httpMetrics, mux *http.ServeMux, sp *spans) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{
			counted:   true,
			trace:     newTraceContext(r.Header),
			region:    r.Header.Get(headerRegion),
			synthetic: isSynthetic(r.Header),
		}
		if len(ri.region) > maxRegionLen {
			ri.region = ri.region[:maxRegionLen] // bounded logs and fault keys
		}
		// Echo the trace id so a caller that sent none can still find our logs.
		w.Header().Set(headerTraceID, ri.trace.traceID)
		rec := &statusRecorder{ResponseWriter: w}
		ctx, span := sp.startServer(r, ri)
		r = r.WithContext(context.WithValue(ctx, ctxKey{}, ri))
		// Deferred so a handler panic (including http.ErrAbortHandler) is
		// still logged and counted before net/http handles it.
		defer func() {
			// ServeMux stores the matched pattern on the request it is given.
			rt := r.Pattern
			if rt == "" {
				rt = routeUnmatched
			}
			elapsed := time.Since(start)
			code := strconv.Itoa(rec.status)
			if ri.reset {
				code = codeReset
			}
			m.requests.WithLabelValues(rt, code).Inc()
			m.duration.WithLabelValues(rt).Observe(elapsed.Seconds())
			logRequest(log, r, rt, rec.status, elapsed, ri)
			endServer(span, r.Pattern, rec.status, ri)
			if ri.resetConn != nil {
				_ = ri.resetConn.Close()
			}
		}()
		mux.ServeHTTP(rec, r)
	})
}

func logRequest(log *slog.Logger, r *http.Request, rt string, status int, d time.Duration, ri *reqInfo) {
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.String("route", rt),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("trace_id", ri.trace.traceID),
	)
	if ri.trace.parentSpanID != "" {
		attrs = append(attrs, slog.String("span_id", ri.trace.parentSpanID))
	}
	source := "traceparent"
	if ri.trace.generated {
		source = "generated"
	}
	attrs = append(attrs,
		slog.String("local_span_id", ri.trace.spanID),
		slog.String("trace_source", source),
		slog.String("region", ri.region),
		slog.Bool("synthetic", ri.synthetic),
	)
	if ri.orderID != "" {
		attrs = append(attrs, slog.String("order_id", ri.orderID))
	}
	if ri.reset {
		attrs = append(attrs, slog.Bool("connection_reset", true))
	}
	level := slog.LevelInfo
	if status >= 500 || ri.reset {
		level = slog.LevelWarn
	}
	// Background context: the request context may be cancelled already and
	// handlers that filter on ctx must not drop the access line.
	log.LogAttrs(context.Background(), level, "request", attrs...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: code, Message: msg})
}

// decodeBody reads a bounded JSON body into v, answering 400/413 itself.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds 64 KiB")
			return false
		}
		writeError(w, http.StatusBadRequest, "invalid_json", err.Error())
		return false
	}
	return true
}

// fifo is a map bounded by insertion order: beyond max entries the oldest
// is evicted, so hostile or long-running clients cannot grow memory.
type fifo[K comparable, V any] struct {
	max   int
	m     map[K]*list.Element
	order *list.List
}

type fifoEntry[K comparable, V any] struct {
	k K
	v V
}

func newFIFO[K comparable, V any](max int) *fifo[K, V] {
	return &fifo[K, V]{max: max, m: map[K]*list.Element{}, order: list.New()}
}

func (f *fifo[K, V]) get(k K) (V, bool) {
	if el, ok := f.m[k]; ok {
		return el.Value.(fifoEntry[K, V]).v, true
	}
	var zero V
	return zero, false
}

func (f *fifo[K, V]) put(k K, v V) {
	if el, ok := f.m[k]; ok {
		el.Value = fifoEntry[K, V]{k, v}
		return
	}
	f.m[k] = f.order.PushBack(fifoEntry[K, V]{k, v})
	for f.order.Len() > f.max {
		oldest := f.order.Front()
		f.order.Remove(oldest)
		delete(f.m, oldest.Value.(fifoEntry[K, V]).k)
	}
}

func (f *fifo[K, V]) del(k K) {
	if el, ok := f.m[k]; ok {
		f.order.Remove(el)
		delete(f.m, k)
	}
}
