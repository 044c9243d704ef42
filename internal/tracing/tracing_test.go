package tracing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
)

const apiKey = "s3cret-url-key-0123456789"

// receiver is an OTLP/HTTP (protobuf) trace receiver on loopback.
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	raw   [][]byte
	spans []*tracepb.Span
	res   [][]*commonpb.KeyValue
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces protobuf", http.StatusNotFound)
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.raw = append(rc.raw, b)
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				rc.spans = append(rc.spans, ss.Spans...)
			}
			rc.res = append(rc.res, rs.Resource.GetAttributes())
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func attr(kvs []*commonpb.KeyValue, k string) (string, bool) {
	for _, kv := range kvs {
		if kv.Key == k {
			switch v := kv.Value.Value.(type) {
			case *commonpb.AnyValue_StringValue:
				return v.StringValue, true
			case *commonpb.AnyValue_IntValue:
				return strconv.FormatInt(v.IntValue, 10), true
			case *commonpb.AnyValue_BoolValue:
				if v.BoolValue {
					return "true", true
				}
				return "false", true
			}
		}
	}
	return "", false
}

// target is the system under test: it records the traceparent of each path.
type target struct {
	srv *httptest.Server
	mu  sync.Mutex
	tp  map[string]string
}

func newTarget(t testing.TB) *target {
	tg := &target{tp: map[string]string{}}
	tg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.mu.Lock()
		tg.tp[r.URL.Path] = r.Header.Get("Traceparent")
		tg.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/login":
			io.WriteString(w, `{"token":"tok"}`)
		case "/pay":
			io.WriteString(w, `{"status":"processing"}`) // the swallowed 504
		}
	}))
	t.Cleanup(tg.srv.Close)
	return tg
}

const checkout = `name: checkout
retries: 0
steps:
  - name: login
    request: {method: POST, url: "{{base}}/login?key={{secret:API_KEY}}"}
    expect: [status == 200]
  - name: pay
    dependency: bank-gateway
    request: {method: POST, url: "{{base}}/pay"}
    expect: [status == 200, json.status == "success"]
`

func loadFlow(t testing.TB, base string) (*config.Config, *runner.Flow) {
	t.Helper()
	fsys := fstest.MapFS{
		"probes.yaml":   {Data: []byte("region: eu-west\nvars: {base: \"" + base + "\"}\nsecrets: {API_KEY: {env: API_KEY}}\nflows: [checkout.yaml]\n")},
		"checkout.yaml": {Data: []byte(checkout)},
	}
	env := map[string]string{"API_KEY": apiKey}
	cfg, err := config.Load(fsys, "probes.yaml", config.Options{Env: func(n string) (string, bool) { v, ok := env[n]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	rf, err := runner.New(cfg.Flows[0], runner.Options{Version: "test", Region: cfg.Region, Secrets: cfg.Secrets})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, rf
}

func httpTracer(t *testing.T, endpoint string, reg prometheus.Registerer, o Options) *Tracer {
	t.Helper()
	exp, err := NewExporter(t.Context(), &config.Tracing{Endpoint: endpoint, Protocol: "http"})
	if err != nil {
		t.Fatal(err)
	}
	o.Exporter, o.Registerer = exp, reg
	tr, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestRunExported runs a real flow against a target that records the
// traceparent headers and checks the spans an OTLP receiver gets.
func TestRunExported(t *testing.T) {
	rc, tg := newReceiver(t), newTarget(t)
	_, rf := loadFlow(t, tg.srv.URL)
	tr := httpTracer(t, rc.srv.URL, nil, Options{Version: "1.2.3"})
	run := rf.Run(t.Context(), time.Time{})
	if run.OK() {
		t.Fatalf("run passed, want pay to fail: %s", run.Summary())
	}
	tr.Observe(run)
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.spans) != 5 {
		t.Fatalf("got %d spans, want 5 (run, login, pay and an attempt of each)", len(rc.spans))
	}
	for _, b := range rc.raw {
		if strings.Contains(string(b), apiKey) {
			t.Fatal("the secret in the login URL was exported")
		}
	}
	if name, _ := attr(rc.res[0], "service.name"); name != "prober" {
		t.Errorf("service.name = %q, want prober", name)
	}
	byName := map[string]*tracepb.Span{}
	attempt := map[string]*tracepb.Span{} // by the parent's id
	for _, s := range rc.spans {
		if s.Name == "POST" {
			attempt[hex.EncodeToString(s.ParentSpanId)] = s
		} else {
			byName[s.Name] = s
		}
		if got := hex.EncodeToString(s.TraceId); got != run.TraceID {
			t.Errorf("span %s: trace id %s, want the run's %s", s.Name, got, run.TraceID)
		}
	}
	root, login, pay := byName["checkout"], byName["login"], byName["pay"]
	if root == nil || login == nil || pay == nil {
		t.Fatalf("span names %v, want checkout, login, pay", byName)
	}
	if got := hex.EncodeToString(root.SpanId); got != run.ID || len(root.ParentSpanId) != 0 {
		t.Errorf("root span id %s parent %x, want the run id %s and no parent", got, root.ParentSpanId, run.ID)
	}
	for _, tc := range []struct {
		path string
		span *tracepb.Span
	}{{"/login", login}, {"/pay", pay}} {
		want := "00-" + run.TraceID + "-" + hex.EncodeToString(tc.span.SpanId) + "-01"
		if tg.tp[tc.path] != want {
			t.Errorf("%s: traceparent sent %q, span is %s", tc.path, tg.tp[tc.path], want)
		}
		if !proto.Equal(&tracepb.Span{SpanId: tc.span.ParentSpanId}, &tracepb.Span{SpanId: root.SpanId}) {
			t.Errorf("%s: parent %x, want the root %x", tc.span.Name, tc.span.ParentSpanId, root.SpanId)
		}
		if tc.span.Kind != tracepb.Span_SPAN_KIND_CLIENT {
			t.Errorf("%s: kind %v, want client", tc.span.Name, tc.span.Kind)
		}
	}
	wantAttrs := func(s *tracepb.Span, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if got, ok := attr(s.Attributes, k); !ok || got != v {
				t.Errorf("span %s: %s = %q (set %v), want %q", s.Name, k, got, ok, v)
			}
		}
	}
	wantAttrs(root, map[string]string{"prober.flow": "checkout", "prober.region": "eu-west", "prober.run_id": run.ID,
		"prober.synthetic": "true", "error.type": "swallowed_error"})
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(tg.srv.URL, "http://"))
	wantAttrs(pay, map[string]string{"http.request.method": "POST", "url.full": tg.srv.URL + "/pay",
		"http.response.status_code": "200", "server.address": host, "server.port": port,
		"error.type": "swallowed_error", "prober.dependency": "bank-gateway"})
	if u, _ := attr(login.Attributes, "url.full"); !strings.HasPrefix(u, tg.srv.URL+"/login?key=") || strings.Contains(u, apiKey) {
		t.Errorf("login url.full = %q, want the URL with the key redacted", u)
	}
	sentence := run.Failed().Message()
	if pay.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || pay.Status.GetMessage() != sentence || sentence == "" {
		t.Errorf("pay status %v, want error %q", pay.Status, sentence)
	}
	if login.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("login status %v, want unset (it passed)", login.Status)
	}
	if root.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("root status %v, want error", root.Status)
	}
	// Exact times: the spans are the steps', not the exporter's clock.
	ps := run.Steps[1]
	if pay.StartTimeUnixNano != uint64(ps.Start.UnixNano()) || pay.EndTimeUnixNano != uint64(ps.Start.Add(ps.Duration).UnixNano()) {
		t.Errorf("pay span %d..%d, want the step's %d..%d", pay.StartTimeUnixNano, pay.EndTimeUnixNano,
			ps.Start.UnixNano(), ps.Start.Add(ps.Duration).UnixNano())
	}
	for _, tc := range []struct {
		span *tracepb.Span
		want []string
	}{{login, []string{"connect done", "first byte"}}, {pay, []string{"connection reused", "first byte", "failure"}}} {
		// The phases are the attempt's, the failures the step's.
		events := map[string]bool{}
		a := attempt[hex.EncodeToString(tc.span.SpanId)]
		if a == nil {
			t.Errorf("%s has no attempt span", tc.span.Name)
			continue
		}
		for _, e := range append(tc.span.Events, a.Events...) {
			events[e.Name] = true
		}
		for _, e := range tc.want {
			if !events[e] {
				t.Errorf("%s events %v, want %q", tc.span.Name, events, e)
			}
		}
	}
}

// TestRetryLinked: a retry's root span links to the root of the run it
// confirms.
func TestRetryLinked(t *testing.T) {
	rc, tg := newReceiver(t), newTarget(t)
	_, rf := loadFlow(t, tg.srv.URL)
	tr := httpTracer(t, rc.srv.URL, nil, Options{})
	first := rf.Run(t.Context(), time.Time{})
	first.Retried = true
	tr.Observe(first)
	retry := rf.Run(t.Context(), time.Time{})
	retry.Retry, retry.RetryOf = 1, first.TraceID
	tr.Observe(retry)
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var linked bool
	for _, s := range rc.spans {
		if hex.EncodeToString(s.SpanId) != retry.ID {
			continue
		}
		for _, l := range s.Links {
			linked = linked || hex.EncodeToString(l.TraceId) == first.TraceID && hex.EncodeToString(l.SpanId) == first.ID
		}
		if v, _ := attr(s.Attributes, "prober.retry_of"); v != first.TraceID {
			t.Errorf("prober.retry_of = %q, want %s", v, first.TraceID)
		}
	}
	if !linked {
		t.Errorf("the retry's root span does not link to the first run's root %s/%s", first.TraceID, first.ID)
	}
}

// TestSampling: a ratio of 0.5 exports about half the runs, whole, and
// Sampled (what the runner's traceparents say) names exactly those.
func TestSampling(t *testing.T) {
	rc := newReceiver(t)
	tr := httpTracer(t, rc.srv.URL, nil, Options{Sampling: 0.5})
	const n = 400
	said := map[string]bool{}
	for i := range n {
		r := fakeRun(i)
		said[r.TraceID] = tr.Sampled(r.TraceID)
		tr.Observe(r)
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	runs := len(rc.spans) / 3
	if len(rc.spans)%3 != 0 || runs < n/4 || runs > 3*n/4 {
		t.Errorf("exported %d spans of %d three-span runs, want whole runs, about half", len(rc.spans), n)
	}
	exported := map[string]bool{}
	for _, s := range rc.spans {
		exported[hex.EncodeToString(s.TraceId)] = true
	}
	for tid, yes := range said {
		if yes != exported[tid] {
			t.Errorf("trace %s: Sampled says %v, exported %v", tid, yes, exported[tid])
		}
	}
	for _, bad := range []string{"", "xyz", strings.Repeat("g", 32)} {
		if tr.Sampled(bad) {
			t.Errorf("Sampled(%q) = true for a malformed trace id", bad)
		}
	}
}

func fakeRun(i int) *result.Run {
	start := time.Unix(1_800_000_000, 0).Add(time.Duration(i) * time.Second)
	id := func(b byte, n int) string { return strings.Repeat("0", n-4) + hex.EncodeToString([]byte{b, byte(i)}) }
	sum := sha256.Sum256([]byte{byte(i >> 8), byte(i)}) // spread: sampling reads the id's low bytes
	tid := hex.EncodeToString(sum[:16])
	return &result.Run{ID: id(1, 16), Flow: "f", Region: "r", TraceID: tid, Start: start, Duration: time.Second,
		Status: result.Passed, Class: result.OK,
		Steps: []result.Step{{Name: "s", SpanID: id(2, 16), Method: "GET", URL: "http://x.test/", Status: result.Passed,
			Class: result.OK, Attempts: 1, Start: start, Duration: time.Second / 2}}}
}

// blockingExporter hangs every export until its context ends: a tracing
// backend that accepts connections and never answers.
type blockingExporter struct{ exports chan int }

func (b *blockingExporter) UploadTraces(ctx context.Context, rs []*tracepb.ResourceSpans) error {
	b.exports <- len(rs[0].ScopeSpans[0].Spans)
	<-ctx.Done()
	return ctx.Err()
}
func (b *blockingExporter) Start(context.Context) error { return nil }
func (b *blockingExporter) Stop(context.Context) error  { return nil }

// TestOutageNeverWaits: with the exporter hanging, observing runs takes no
// time at all (synctest's clock would move if Observe waited on the
// export's timeout), spans beyond the queue are dropped and counted, and a
// shutdown gives up at its deadline.
func TestOutageNeverWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exp := &blockingExporter{exports: make(chan int, 100)}
		reg := prometheus.NewRegistry()
		var logged lockedBuf
		tr, err := New(t.Context(), Options{Exporter: exp, Registerer: reg, Queue: 4, Batch: 2, ExportTimeout: time.Hour,
			Logger: slog.New(slog.NewJSONHandler(&logged, nil))})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		tr.Observe(fakeRun(0))
		synctest.Wait() // 2 of its 3 spans are the batch stuck in the export
		for i := 1; i < 50; i++ {
			tr.Observe(fakeRun(i))
		}
		synctest.Wait()
		if d := time.Since(start); d != 0 {
			t.Errorf("observing 50 runs took %s of the clock, want none", d)
		}
		// 150 spans (run, step, attempt): one batch of 2 is stuck in the
		// export, 4 wait in the queue, the rest are dropped.
		if got := tr.Dropped(); got != 144 {
			t.Errorf("dropped %d spans, want 144", got)
		}
		if got := testutil.ToFloat64(tr.q.counter); got != 144 {
			t.Errorf("prober_trace_spans_dropped_total = %v, want 144", got)
		}
		if n, err := testutil.GatherAndCount(reg, "prober_trace_spans_dropped_total"); n != 1 || err != nil {
			t.Errorf("metric registered %d times (%v), want once", n, err)
		}
		// One line for the 144 drops: the log is rate-limited.
		if n := strings.Count(logged.String(), `"msg":"trace_spans_dropped"`); n != 1 {
			t.Errorf("%d trace_spans_dropped lines, want 1:\n%s", n, logged.String())
		}
		time.Sleep(logEvery) // the fake clock: a minute later a drop is logged again
		tr.Observe(fakeRun(50))
		if n := strings.Count(logged.String(), `"msg":"trace_spans_dropped"`); n != 2 {
			t.Errorf("%d trace_spans_dropped lines a minute later, want 2", n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start = time.Now()
		if err := tr.Shutdown(ctx); err == nil {
			t.Error("shutdown with a hung exporter returned nil, want the deadline")
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("shutdown took %s, want its 5s deadline", d)
		}
	})
}

// TestOutageRealEndpoints: the real OTLP exporter against an endpoint that
// refuses connections and one that never answers: runs go on at full
// speed and the spans are counted as dropped.
func TestOutageRealEndpoints(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	hang := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(hang) })
	for _, tc := range []struct{ name, endpoint string }{{"refused", refused}, {"hanging", hung.URL}} {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t)
			_, rf := loadFlow(t, tg.srv.URL)
			const timeout = time.Second
			tr := httpTracer(t, tc.endpoint, nil, Options{Queue: 4, Batch: 2, Interval: time.Millisecond, ExportTimeout: timeout})
			var total, longest time.Duration
			for range 20 {
				r := rf.Run(t.Context(), time.Time{})
				t0 := time.Now()
				tr.Observe(r)
				d := time.Since(t0)
				total, longest = total+d, max(longest, d)
			}
			// Observe only converts and enqueues (about 12µs a run): had it
			// waited on the export, one call would take the export's 1s
			// timeout. The bounds leave room for a loaded CI machine.
			if longest >= timeout/2 || total >= 2*timeout {
				t.Errorf("observing 20 runs took %s (longest %s) with the endpoint %s", total, longest, tc.name)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			t0 := time.Now()
			tr.Shutdown(ctx)
			if d := time.Since(t0); d > 3*time.Second {
				t.Errorf("shutdown took %s, want at most its 2s deadline", d)
			}
			if tr.Dropped() == 0 {
				t.Error("no span counted as dropped")
			}
		})
	}
}

// grpcReceiver is an OTLP/gRPC trace receiver on loopback.
type grpcReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
	md    metadata.MD
}

func (g *grpcReceiver) Export(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.md, _ = metadata.FromIncomingContext(ctx)
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			g.spans = append(g.spans, ss.Spans...)
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestGRPC: protocol grpc exports the same spans, with the configured
// headers as metadata.
func TestGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &grpcReceiver{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, rc)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	exp, err := NewExporter(t.Context(), &config.Tracing{Endpoint: "http://" + ln.Addr().String(), Protocol: "grpc",
		Headers: []config.TracingHeader{{Name: "X-Api-Key", Value: apiKey}}})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(t.Context(), Options{Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	run := fakeRun(1)
	tr.Observe(run)
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.spans) != 3 || hex.EncodeToString(rc.spans[0].TraceId) != run.TraceID {
		t.Fatalf("got %d spans, want the run's 3", len(rc.spans))
	}
	if got := rc.md.Get("x-api-key"); len(got) != 1 || got[0] != apiKey {
		t.Errorf("x-api-key metadata %q, want the configured header", got)
	}
}

// TestEnvironment: with no endpoint in probes.yaml the standard variables
// say where to send and what the service is called.
func TestEnvironment(t *testing.T) {
	rc := newReceiver(t)
	var hdr sync.Map
	inner := rc.srv.Config.Handler
	rc.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr.Store("auth", r.Header.Get("Authorization"))
		inner.ServeHTTP(w, r)
	})
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20env-token")
	t.Setenv("OTEL_SERVICE_NAME", "prober-eu")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=prod")
	tr := httpTracer(t, "", nil, Options{})
	tr.Observe(fakeRun(2))
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.spans) != 3 {
		t.Fatalf("got %d spans at OTEL_EXPORTER_OTLP_ENDPOINT, want 3", len(rc.spans))
	}
	if v, _ := attr(rc.res[0], "service.name"); v != "prober-eu" {
		t.Errorf("service.name = %q, want OTEL_SERVICE_NAME's", v)
	}
	if v, _ := attr(rc.res[0], "deployment.environment.name"); v != "prod" {
		t.Errorf("deployment.environment.name = %q, want OTEL_RESOURCE_ATTRIBUTES'", v)
	}
	if v, _ := hdr.Load("auth"); v != "Bearer env-token" {
		t.Errorf("Authorization = %q, want OTEL_EXPORTER_OTLP_HEADERS'", v)
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
