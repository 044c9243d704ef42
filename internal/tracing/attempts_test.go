package tracing

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
)

// runOne runs a one-step flow of step (YAML, indented as a list item)
// against base and returns the run.
func runOne(t *testing.T, base, step string) *result.Run {
	t.Helper()
	fsys := fstest.MapFS{
		"probes.yaml": {Data: []byte("region: eu-west\nvars: {base: \"" + base + "\"}\nsecrets: {API_KEY: {env: API_KEY}}\nflows: [f.yaml]\n")},
		"f.yaml":      {Data: []byte("name: f\nretries: 0\nsteps:\n" + step)},
	}
	cfg, err := config.Load(fsys, "probes.yaml", config.Options{Env: func(n string) (string, bool) {
		if n == "API_KEY" {
			return apiKey, true
		}
		return "", false
	}})
	if err != nil {
		t.Fatal(err)
	}
	rf, err := runner.New(cfg.Flows[0], runner.Options{Version: "test", Region: cfg.Region, Secrets: cfg.Secrets})
	if err != nil {
		t.Fatal(err)
	}
	return rf.Run(t.Context(), time.Time{})
}

// TestAttemptSpans: each attempt of a step (retry: tries, until polls) is
// a client span under the step's span, with its own status, resend count
// and error type; a step of one attempt has exactly one.
func TestAttemptSpans(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	tg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		n := calls[r.URL.Path]
		mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/limited") && n == 1:
			w.WriteHeader(http.StatusTooManyRequests)
		case strings.HasPrefix(r.URL.Path, "/down"):
			w.WriteHeader(http.StatusServiceUnavailable)
		case strings.HasPrefix(r.URL.Path, "/job"):
			w.Header().Set("Content-Type", "application/json")
			if n < 3 {
				io.WriteString(w, `{"status":"pending"}`)
			} else {
				io.WriteString(w, `{"status":"done"}`)
			}
		}
	}))
	t.Cleanup(tg.Close)
	const retry = "    retry: {attempts: %d, backoff: 1ms, max_backoff: 1ms}\n"
	type want struct {
		status, resend int    // 0: attribute absent
		errType        string // "": absent
	}
	for i, tc := range []struct {
		name   string
		step   string
		passed bool
		want   []want
	}{
		{name: "one attempt", passed: true, step: "  - name: s\n    request: {url: \"{{base}}/ok%d?key={{secret:API_KEY}}\"}\n",
			want: []want{{200, 0, ""}}},
		{name: "429 then 200", passed: true, step: "  - name: s\n    request: {url: \"{{base}}/limited%d?key={{secret:API_KEY}}\"}\n" + fmt.Sprintf(retry, 3),
			want: []want{{429, 0, "http_429"}, {200, 1, ""}}},
		{name: "until polls 3", passed: true, step: "  - name: s\n    request: {url: \"{{base}}/job%d?key={{secret:API_KEY}}\"}\n" +
			"    until: {expect: ['json.status == \"done\"'], interval: 10ms, within: 5s}\n",
			want: []want{{200, 0, ""}, {200, 0, ""}, {200, 0, ""}}},
		{name: "503 retried out", step: "  - name: s\n    request: {url: \"{{base}}/down%d?key={{secret:API_KEY}}\"}\n" + fmt.Sprintf(retry, 2),
			want: []want{{503, 0, "http_5xx"}, {503, 1, "http_5xx"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t)
			tr := httpTracer(t, rc.srv.URL, nil, Options{})
			run := runOne(t, tg.URL, fmt.Sprintf(tc.step, i))
			if run.OK() != tc.passed {
				t.Fatalf("run: %s", run.Summary())
			}
			tr.Observe(run)
			if err := tr.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			for _, b := range rc.raw {
				if strings.Contains(string(b), apiKey) {
					t.Fatal("the secret in the URL was exported")
				}
			}
			s := &run.Steps[0]
			var attempts []*tracepb.Span
			ids := map[string]bool{}
			for _, sp := range rc.spans {
				ids[hex.EncodeToString(sp.SpanId)] = true
				if hex.EncodeToString(sp.ParentSpanId) == s.SpanID {
					attempts = append(attempts, sp)
				}
			}
			if len(ids) != len(rc.spans) || len(rc.spans) != 2+len(tc.want) {
				t.Fatalf("%d spans, %d ids, want %d (run, step, %d attempts), unique", len(rc.spans), len(ids), 2+len(tc.want), len(tc.want))
			}
			if len(attempts) != len(tc.want) {
				t.Fatalf("%d spans under the step, want %d attempts", len(attempts), len(tc.want))
			}
			for j, a := range attempts {
				w := tc.want[j]
				if a.Name != "GET" || a.Kind != tracepb.Span_SPAN_KIND_CLIENT || hex.EncodeToString(a.TraceId) != run.TraceID {
					t.Errorf("attempt %d: %q kind %v trace %x, want a GET client span of the run's trace", j, a.Name, a.Kind, a.TraceId)
				}
				check := func(k string, want string) {
					t.Helper()
					got, ok := attr(a.Attributes, k)
					if want == "" && ok || want != "" && got != want {
						t.Errorf("attempt %d: %s = %q (set %v), want %q", j, k, got, ok, want)
					}
				}
				itoa := func(n int) string {
					if n == 0 {
						return ""
					}
					return fmt.Sprint(n)
				}
				check("prober.attempt", fmt.Sprint(j+1))
				check("http.response.status_code", itoa(w.status))
				check("http.request.resend_count", itoa(w.resend))
				check("error.type", w.errType)
				check("http.request.method", "GET")
				check("server.address", "127.0.0.1")
				if u, _ := attr(a.Attributes, "url.full"); u != s.URL {
					t.Errorf("attempt %d: url.full %q, want the step's redacted %q", j, u, s.URL)
				}
				if (a.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR) != (w.errType != "") {
					t.Errorf("attempt %d: status %v, want error only with an error type", j, a.Status)
				}
				if j > 0 && a.StartTimeUnixNano < attempts[j-1].EndTimeUnixNano {
					t.Errorf("attempt %d starts before the one before ended", j)
				}
				if a.StartTimeUnixNano < uint64(s.Start.UnixNano()) || a.EndTimeUnixNano > uint64(s.Start.Add(s.Duration).UnixNano()) {
					t.Errorf("attempt %d lies outside its step", j)
				}
				events := map[string]bool{}
				for _, e := range a.Events {
					events[e.Name] = true
				}
				if !events["first byte"] || !events["connect done"] && !events["connection reused"] {
					t.Errorf("attempt %d events %v, want its connection and first byte", j, events)
				}
			}
			if last := attempts[len(attempts)-1]; !tc.passed && last.Status.GetMessage() != s.Message() {
				t.Errorf("last attempt's status %q, want the step's sentence %q", last.Status.GetMessage(), s.Message())
			}
		})
	}
}

// TestAttemptSpansOtherKinds: a step of another kind has attempt spans only
// when it made two or more attempts (one would repeat its step span).
func TestAttemptSpansOtherKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  []result.Attempt
		want []string // error.type of each attempt span
	}{
		{name: "one attempt"},
		{name: "retried", log: []result.Attempt{{Class: result.ConnectRefused}, {Resend: 1}}, want: []string{"connect_refused", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t)
			tr := httpTracer(t, rc.srv.URL, nil, Options{})
			run := fakeRun(3)
			s := &run.Steps[0]
			s.Kind, s.Method, s.URL, s.Attempts = "tcp", "TCP", "tcp://db.test:5432", max(1, len(tc.log))
			for i := range tc.log {
				tc.log[i].Start, tc.log[i].Duration = s.Start.Add(time.Duration(i)*time.Millisecond), time.Millisecond
			}
			s.AttemptLog = tc.log
			tr.Observe(run)
			if err := tr.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			var got []string
			for _, sp := range rc.spans {
				if hex.EncodeToString(sp.ParentSpanId) != s.SpanID {
					continue
				}
				e, _ := attr(sp.Attributes, "error.type")
				got = append(got, e)
				if a, _ := attr(sp.Attributes, "server.address"); sp.Name != "tcp" || a != "db.test" {
					t.Errorf("attempt span %q server.address %q, want tcp and db.test", sp.Name, a)
				}
				if _, ok := attr(sp.Attributes, "http.request.method"); ok {
					t.Error("a tcp attempt has http.request.method")
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("attempt spans' error types %q, want %q", got, tc.want)
			}
		})
	}
}
