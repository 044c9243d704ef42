package runlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

const (
	traceOK   = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceFail = "0af7651916cd43dd8448eb211c80319c"
)

var t0 = time.Date(2026, 11, 3, 2, 14, 0, 0, time.UTC)

func passed(name string, d time.Duration) result.Step {
	return result.Step{
		Name: name, SpanID: "00f067aa0ba902b7", Method: "POST", URL: "http://127.0.0.1:8080/api/" + name,
		Status: result.Passed, Class: result.OK, HTTPStatus: 200, Attempts: 1, Start: t0, Duration: d,
	}
}

func passingRun() *result.Run {
	pay := passed("pay", 300*time.Millisecond)
	pay.Dependency = "bank-gateway"
	confirm := passed("confirm", 1250*time.Millisecond)
	confirm.Method, confirm.Attempts = "GET", 4 // polled until settled
	cancel := passed("cancel_order", 10*time.Millisecond)
	cancel.Method, cancel.Cleanup = "DELETE", true
	return &result.Run{
		ID: "b7ad6b7169203331", Flow: "checkout", Region: "eu-west-1", TraceID: traceOK,
		Planned: t0, Start: t0.Add(2500 * time.Microsecond), Duration: 1600 * time.Millisecond,
		Status: result.Passed, Class: result.OK,
		Steps: []result.Step{passed("login", 20*time.Millisecond), pay, confirm, cancel},
	}
}

func failingRun() *result.Run {
	pay := passed("pay", 1500*time.Millisecond)
	pay.Dependency, pay.Status, pay.Class = "bank-gateway", result.Failed, result.SwallowedError
	pay.Failures = []result.Failure{{Expectation: `json.status == "success"`, Actual: `"processing"`,
		Message: `json.status == "success": got "processing"`}}
	cancel := passed("cancel_order", 10*time.Millisecond)
	cancel.Method, cancel.Cleanup = "DELETE", true
	return &result.Run{
		ID: "a3ce929d0e0e4736", Flow: "checkout", Region: "eu-west-1", TraceID: traceFail,
		Planned: t0, Start: t0, Duration: 1520 * time.Millisecond,
		Status: result.Failed, Class: result.SwallowedError, FailedStep: "pay",
		Steps: []result.Step{
			passed("login", 20*time.Millisecond),
			pay,
			{Name: "confirm", Method: "GET", Status: result.Skipped, Class: result.OK,
				Failures: []result.Failure{{Message: "skipped: an earlier step failed"}}},
			cancel,
		},
	}
}

// connectFailed: the first step fails without a response (no HTTP status),
// and the cleanup is skipped because its input was never captured.
func connectFailed() *result.Run {
	login := result.Step{Name: "login", SpanID: "1111111111111111", Method: "POST", URL: "http://127.0.0.1:1/api/login",
		Status: result.Failed, Class: result.ConnectRefused, Attempts: 1, Start: t0, Duration: 800 * time.Microsecond,
		Failures: []result.Failure{{Message: "connection refused by 127.0.0.1:1"}}}
	return &result.Run{
		ID: "c0ffee0000000001", Flow: "checkout", Region: "eu-west-1", TraceID: traceFail,
		Planned: t0, Start: t0, Duration: time.Millisecond,
		Status: result.Failed, Class: result.ConnectRefused, FailedStep: "login",
		Steps: []result.Step{login,
			{Name: "cancel_order", Method: "DELETE", Cleanup: true, Status: result.Skipped, Class: result.OK,
				Failures: []result.Failure{{Message: `skipped: variable "order_id" was never captured`}}}},
	}
}

// capture logs r through a JSON handler at level and returns the decoded lines.
func capture(t *testing.T, level slog.Level, r *result.Run) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	New(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level}))).Observe(r)
	var lines []map[string]any
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, sc.Text())
		}
		lines = append(lines, m)
	}
	return lines
}

// line describes an expected log line: fields that must have exactly these
// values (JSON numbers as float64) and fields that must be absent.
type line struct {
	want   map[string]any
	absent []string
}

// Fields every step line and every run line has.
var (
	stepFields = []string{"time", "level", "msg", "flow", "step", "region", "trace_id", "span_id", "duration_ms", "status", "class"}
	runFields  = []string{"time", "level", "msg", "flow", "region", "trace_id", "run_id", "duration_ms", "status", "class", "lateness_ms"}
)

func TestObserve(t *testing.T) {
	tests := []struct {
		name  string
		run   *result.Run
		level slog.Level
		want  []line
	}{
		{
			name:  "passing run",
			run:   passingRun(),
			level: slog.LevelInfo,
			want: []line{
				{want: map[string]any{"level": "INFO", "msg": "step", "flow": "checkout", "step": "login", "region": "eu-west-1",
					"trace_id": traceOK, "span_id": "00f067aa0ba902b7", "duration_ms": 20.0, "status": "passed", "class": "ok",
					"http_status": 200.0, "method": "POST", "url": "http://127.0.0.1:8080/api/login"},
					absent: []string{"error", "attempts", "dependency", "cleanup"}},
				{want: map[string]any{"level": "INFO", "msg": "step", "step": "pay", "dependency": "bank-gateway", "duration_ms": 300.0},
					absent: []string{"error", "attempts", "cleanup"}},
				{want: map[string]any{"level": "INFO", "msg": "step", "step": "confirm", "attempts": 4.0, "method": "GET", "duration_ms": 1250.0},
					absent: []string{"error", "dependency", "cleanup"}},
				{want: map[string]any{"level": "INFO", "msg": "step", "step": "cancel_order", "cleanup": true, "method": "DELETE"},
					absent: []string{"error", "attempts", "dependency"}},
				{want: map[string]any{"level": "INFO", "msg": "run", "flow": "checkout", "region": "eu-west-1", "trace_id": traceOK,
					"run_id": "b7ad6b7169203331", "duration_ms": 1600.0, "status": "passed", "class": "ok", "lateness_ms": 2.5},
					absent: []string{"error", "failed_step", "step"}},
			},
		},
		{
			name:  "failing run",
			run:   failingRun(),
			level: slog.LevelInfo,
			want: []line{
				{want: map[string]any{"level": "INFO", "msg": "step", "step": "login", "status": "passed", "class": "ok"}},
				{want: map[string]any{"level": "WARN", "msg": "step", "step": "pay", "trace_id": traceFail, "status": "failed",
					"class": "swallowed_error", "http_status": 200.0, "dependency": "bank-gateway", "duration_ms": 1500.0,
					"error": `json.status == "success": got "processing"`}},
				{want: map[string]any{"level": "INFO", "msg": "step", "step": "confirm", "status": "skipped", "class": "ok",
					"span_id": "", "duration_ms": 0.0, "error": "skipped: an earlier step failed"},
					absent: []string{"http_status", "url"}},
				{want: map[string]any{"level": "INFO", "msg": "step", "step": "cancel_order", "status": "passed", "cleanup": true}},
				{want: map[string]any{"level": "WARN", "msg": "run", "trace_id": traceFail, "status": "failed", "class": "swallowed_error",
					"failed_step": "pay", "duration_ms": 1520.0, "lateness_ms": 0.0,
					"error": `checkout failed at step pay: json.status == "success": got "processing" (class swallowed_error)`}},
			},
		},
		{
			name:  "transport failure, cleanup skipped",
			run:   connectFailed(),
			level: slog.LevelInfo,
			want: []line{
				{want: map[string]any{"level": "WARN", "msg": "step", "step": "login", "status": "failed", "class": "connect_refused",
					"duration_ms": 0.8, "error": "connection refused by 127.0.0.1:1"},
					absent: []string{"http_status"}},
				{want: map[string]any{"level": "INFO", "msg": "step", "step": "cancel_order", "status": "skipped", "cleanup": true,
					"error": `skipped: variable "order_id" was never captured`}},
				{want: map[string]any{"level": "WARN", "msg": "run", "status": "failed", "class": "connect_refused", "failed_step": "login"}},
			},
		},
		{
			name:  "warn level: passing run logs nothing",
			run:   passingRun(),
			level: slog.LevelWarn,
			want:  nil,
		},
		{
			name:  "warn level: only the failed step and the run",
			run:   failingRun(),
			level: slog.LevelWarn,
			want: []line{
				{want: map[string]any{"level": "WARN", "msg": "step", "step": "pay"}},
				{want: map[string]any{"level": "WARN", "msg": "run", "failed_step": "pay"}},
			},
		},
		{
			name:  "error level: nothing (a failing target is not a prober error)",
			run:   failingRun(),
			level: slog.LevelError,
			want:  nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := capture(t, tc.level, tc.run)
			if len(got) != len(tc.want) {
				t.Fatalf("%d lines, want %d:\n%v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				required := stepFields
				if g["msg"] == "run" {
					required = runFields
				}
				for _, f := range required {
					if _, ok := g[f]; !ok {
						t.Errorf("line %d (%v %v): no field %q", i, g["msg"], g["step"], f)
					}
				}
				if ts, _ := g["time"].(string); ts != "" {
					if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
						t.Errorf("line %d: time %q: %v", i, ts, err)
					}
				}
				for k, v := range w.want {
					if g[k] != v {
						t.Errorf("line %d (%v %v): %s = %#v, want %#v", i, g["msg"], g["step"], k, g[k], v)
					}
				}
				for _, k := range w.absent {
					if v, ok := g[k]; ok {
						t.Errorf("line %d (%v %v): %s = %#v, want no such field", i, g["msg"], g["step"], k, v)
					}
				}
			}
		})
	}
}

// One line per step, in order, then one per run, for every run.
func TestOneLinePerStepAndRun(t *testing.T) {
	var buf bytes.Buffer
	lg := New(slog.New(slog.NewJSONHandler(&buf, nil)))
	runs := []*result.Run{passingRun(), failingRun(), connectFailed()}
	for _, r := range runs {
		lg.Observe(r)
	}
	var want []string
	for _, r := range runs {
		for _, s := range r.Steps {
			want = append(want, "step "+r.TraceID+" "+s.Name)
		}
		want = append(want, "run "+r.TraceID+" ")
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		var m struct{ Msg, TraceID, Step string }
		var raw map[string]any
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatalf("not JSON: %v: %s", err, l)
		}
		m.Msg, _ = raw["msg"].(string)
		m.TraceID, _ = raw["trace_id"].(string)
		m.Step, _ = raw["step"].(string)
		got = append(got, m.Msg+" "+m.TraceID+" "+m.Step)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestKindAttrs: a step kind's part is logged under attrs, whatever the
// kind, with the kind's name.
func TestKindAttrs(t *testing.T) {
	var buf bytes.Buffer
	lg := New(slog.New(slog.NewJSONHandler(&buf, nil)))
	r := passingRun()
	r.Steps = []result.Step{{Name: "cert", Kind: "tls", Method: "TLS", URL: "tls://shop.test:443", Status: result.Passed,
		Class: result.OK, Attrs: []result.Attr{{Name: "cert.not_after", Value: "2027-01-02T03:04:05Z"}, {Name: "tls.version", Value: "TLS 1.3"}}}}
	lg.Observe(r)
	var line struct {
		Kind  string            `json:"kind"`
		URL   string            `json:"url"`
		Attrs map[string]string `json:"attrs"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(buf.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line.Kind != "tls" || line.URL != "tls://shop.test:443" || line.Attrs["cert.not_after"] != "2027-01-02T03:04:05Z" || line.Attrs["tls.version"] != "TLS 1.3" {
		t.Errorf("step line %+v\n%s", line, buf.String())
	}
}

func BenchmarkObserve(b *testing.B) {
	lg := New(slog.New(slog.NewJSONHandler(discard{}, nil)))
	r := passingRun()
	b.ReportAllocs()
	for b.Loop() {
		lg.Observe(r)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// recorder keeps the records it is handed.
type recorder struct{ recs []slog.Record }

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.recs = append(h.recs, r)
	return nil
}
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recorder) WithGroup(string) slog.Handler      { return h }

// TestNoCallerLookup: the lines are handed to the handler without the
// caller's program counter, whose lookup (runtime.Callers) was a stack
// walk per line for a source location no handler of the prober shows.
func TestNoCallerLookup(t *testing.T) {
	h := &recorder{}
	New(slog.New(h)).Observe(passingRun())
	if len(h.recs) != 5 {
		t.Fatalf("%d records, want 5", len(h.recs))
	}
	for _, r := range h.recs {
		if r.PC != 0 {
			t.Errorf("%s: PC %#x, want none", r.Message, r.PC)
		}
		if r.Time.IsZero() {
			t.Errorf("%s: no time", r.Message)
		}
	}
}
