package secret_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runlog"
	"github.com/prober-dev/prober/internal/secret"
)

// runFields put a text into each field of a run that its log lines show.
var runFields = map[string]func(r *result.Run, text string){
	"flow":        func(r *result.Run, x string) { r.Flow = x },
	"region":      func(r *result.Run, x string) { r.Region = x },
	"trace_id":    func(r *result.Run, x string) { r.TraceID = x },
	"run_id":      func(r *result.Run, x string) { r.ID = x },
	"failed_step": func(r *result.Run, x string) { r.FailedStep = x },
	"run status":  func(r *result.Run, x string) { r.Status = result.Status(x) },
	"run class":   func(r *result.Run, x string) { r.Class = result.Class(x) },
	"step":        func(r *result.Run, x string) { r.Steps[1].Name = x },
	"span_id":     func(r *result.Run, x string) { r.Steps[0].SpanID = x },
	"method":      func(r *result.Run, x string) { r.Steps[0].Method = x },
	"url":         func(r *result.Run, x string) { r.Steps[0].URL = x },
	"kind":        func(r *result.Run, x string) { r.Steps[0].Kind = x },
	"attr name":   func(r *result.Run, x string) { r.Steps[0].Attrs[0].Name = x },
	"attr value":  func(r *result.Run, x string) { r.Steps[0].Attrs[0].Value = x },
	"dependency":  func(r *result.Run, x string) { r.Steps[1].Dependency = x },
	"step status": func(r *result.Run, x string) { r.Steps[0].Status = result.Status(x) },
	"step class":  func(r *result.Run, x string) { r.Steps[0].Class = result.Class(x) },
	"error":       func(r *result.Run, x string) { r.Steps[1].Failures[0].Message = x },
}

func logRun() *result.Run {
	t0 := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	return &result.Run{ID: "b7ad6b7169203331", Flow: "checkout", Region: "eu-west-1", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Planned: t0, Start: t0, Duration: time.Second, Status: result.Failed, Class: result.HTTP5xx, FailedStep: "pay",
		Steps: []result.Step{
			{Name: "login", SpanID: "00f067aa0ba902b7", Method: "POST", URL: "http://127.0.0.1/login", Kind: "http",
				Status: result.Passed, Class: result.OK, HTTPStatus: 200, Attempts: 1, Start: t0,
				Attrs: []result.Attr{{Name: "tls_version", Value: "1.3"}}},
			{Name: "pay", SpanID: "00f067aa0ba902b8", Method: "GET", URL: "http://127.0.0.1/pay", Status: result.Failed,
				Class: result.HTTP5xx, HTTPStatus: 500, Attempts: 2, Start: t0, Dependency: "bank",
				Failures: []result.Failure{{Message: "status == 200: got 500"}}},
		}}
}

// TestRunLogRedactedOnceProperty: random secrets, raw, in base64 and in
// hex, in each field of a run's log lines, logged as the daemon does
// (runlog.ObserveRedacted with the runner's set, the secret handler over
// JSON): nothing of 8 bytes or more of a secret reaches the output, with
// the handler holding the run's set (the lines pass it as they are) and
// after a reload to another set holding a new secret too (the handler
// redacts them again).
func TestRunLogRedactedOnceProperty(t *testing.T) {
	pieces := []string{`"`, `\`, "&", "<", ">", "'", "+", "/", "%", " ", "\n", "\t", "é", "✓", "😀", "=", ":", "a", "Z", "7", "-"}
	seed := uint64(20)
	next := func(n int) int { seed = seed*6364136223846793005 + 1442695040888963407; return int(seed>>33) % n }
	random := func() string {
		for {
			n := []int{8, 9, 16, 26, 99, 100, 101, 119, 120, 121, 300}[next(11)]
			var b strings.Builder
			for b.Len() < n {
				b.WriteString(pieces[next(len(pieces))])
			}
			if v := b.String(); usable(v) {
				return v
			}
		}
	}
	encodings := map[string]func(string) string{
		"raw":    func(v string) string { return v },
		"base64": func(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) },
		"hex":    func(v string) string { return hex.EncodeToString([]byte(v)) },
	}
	var buf bytes.Buffer
	var cur atomic.Pointer[secret.Set]
	lg := runlog.New(slog.New(secret.NewHandler(slog.NewJSONHandler(&buf, nil), cur.Load)))
	for i := range 12 {
		v, added := random(), random()+"-added-"+strconv.Itoa(i)
		run := secret.NewSet(map[string]string{"S": v})
		reloaded := secret.NewSet(map[string]string{"S": v, "ADDED": added})
		leakV, leakAdded := secret.Leak(v), secret.Leak(added)
		for field, set := range runFields {
			for enc, encode := range encodings {
				// The handler holds the run's set: the lines pass as runlog
				// redacted them.
				cur.Store(run)
				r := logRun()
				set(r, "lead "+encode(v)+" tail")
				buf.Reset()
				lg.ObserveRedacted(r, run)
				if l := leakV(buf.String()); l != "" {
					t.Fatalf("secret %q %s in %s: %s", v, enc, field, l)
				}
				// After a reload that added a secret, a run of the old set:
				// the handler redacts its lines again.
				cur.Store(reloaded)
				r = logRun()
				set(r, "lead "+encode(v)+" "+encode(added)+" tail")
				buf.Reset()
				lg.ObserveRedacted(r, run)
				out := buf.String()
				if l := leakV(out); l != "" {
					t.Fatalf("after a reload, secret %q %s in %s: %s", v, enc, field, l)
				}
				if l := leakAdded(out); l != "" {
					t.Fatalf("after a reload, added secret %q %s in %s: %s", added, enc, field, l)
				}
			}
		}
	}
}
