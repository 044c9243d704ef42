package daemon

import (
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/prober-dev/prober/internal/config"
)

// otlpReceiver collects the trace ids and span ids an OTLP/HTTP exporter sends.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans map[string][]string // trace id -> span ids
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	rc := &otlpReceiver{spans: map[string][]string{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					tid := hex.EncodeToString(s.TraceId)
					rc.spans[tid] = append(rc.spans[tid], hex.EncodeToString(s.SpanId))
				}
			}
		}
		rc.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Write(out)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *otlpReceiver) of(traceID string) []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.spans[traceID]...)
}

// TestTracing: with a tracing block the daemon exports every run's spans
// (the last ones flushed at shutdown), counts drops in its metrics, and
// its pages link trace ids to alerting.links.trace.
func TestTracing(t *testing.T) {
	rc := newOTLPReceiver(t)
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml": probes("health") + "tracing: {endpoint: \"" + rc.srv.URL + "\"}\n" +
			"alerting:\n  links: {trace: \"http://jaeger.test/trace/{trace_id}\"}\n",
		"flows/health.yaml": healthFlow("health"),
	}})
	f.serve()
	if len(f.log.find(t, "tracing_on", "protocol", "http", "endpoint", rc.srv.URL)) != 1 {
		t.Error("no tracing_on line naming the endpoint")
	}
	waitFor(t, 10*time.Second, "a health run", func() bool { return len(f.rec.of("health")) > 0 })
	run := f.rec.of("health")[0]
	if _, _, body := f.get("/runs/"+run.TraceID, "text/html"); !strings.Contains(body, `<a href="http://jaeger.test/trace/`+run.TraceID+`">trace</a>`) {
		t.Errorf("the run page does not link its trace to alerting.links.trace")
	}
	if _, ok := value(f.metrics(), "prober_trace_spans_dropped_total"); !ok {
		t.Error("no prober_trace_spans_dropped_total in /metrics")
	}
	// A reload that changes the block keeps the running exporter: spans
	// still reach the first receiver.
	f.write(map[string]string{"probes.yaml": probes("health") + "tracing: {endpoint: \"http://127.0.0.1:1\"}\n"})
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if len(f.log.find(t, "config_reload_partial", "reason", "tracing applies at restart")) != 1 {
		t.Error("no config_reload_partial line for the changed tracing block")
	}
	after := len(f.rec.of("health"))
	waitFor(t, 10*time.Second, "a health run after the reload", func() bool { return len(f.rec.of("health")) > after })
	if _, err := f.stop(); err != nil {
		t.Fatal(err)
	}
	// Every observed run was exported by the time Serve returned.
	for _, r := range f.rec.of("health") {
		got := strings.Join(rc.of(r.TraceID), ",")
		if want := r.ID + "," + r.Steps[0].SpanID; !strings.Contains(got, r.Steps[0].SpanID) || !strings.Contains(got, r.ID) {
			t.Errorf("run %s: exported spans %q, want %s", r.TraceID, got, want)
		}
	}
}

// TestTracerLogHidesPassword: a password in the endpoint URL (from
// ${env:...}) is not logged.
func TestTracerLogHidesPassword(t *testing.T) {
	var buf logBuf
	tr, err := newTracer(&config.Tracing{Endpoint: "http://otel:pw-in-url-123@127.0.0.1:1", Protocol: "http", Sampling: 1},
		"test", slog.New(slog.NewJSONHandler(&buf, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(t.Context())
	if lines := buf.find(t, "tracing_on", "endpoint", "http://otel:xxxxx@127.0.0.1:1"); len(lines) != 1 || strings.Contains(buf.b.String(), "pw-in-url-123") {
		t.Errorf("tracing_on lines %v, want the endpoint with its password hidden", buf.lines(t))
	}
}
