// Package bench measures what one probe step costs against a bare net/http
// client request to the same server, in the same run, so the ratio holds on
// a noisy shared machine where absolute times don't.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/metrics"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runlog"
	"github.com/prober-dev/prober/internal/runner"
	"github.com/prober-dev/prober/internal/store"
	"github.com/prober-dev/prober/internal/template"
)

const body = `{"status":"success","order":{"id":"ord_123","amount_cents":1999,"currency":"EUR"},"token":"tok-abc"}`

func server(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// flow is steps requests, each with three expectations and a capture, the
// shape of a checkout step.
func flow(url string, steps int) *config.Flow {
	f := &config.Flow{Name: "bench", Vars: map[string]string{}, FlowDef: &config.FlowDef{Timeout: 30 * time.Second,
		HTTP: config.HTTPOptions{BodyLimit: 1 << 20, FollowRedirects: true, MaxRedirects: 10}}}
	tok, _ := assert.CompileValue("json.token")
	for i := 0; i < steps; i++ {
		f.Steps = append(f.Steps, &config.Step{
			Spec: &config.HTTPSpec{Method: "GET", URL: template.MustParse(url + "/x"), FollowRedirects: true},
			StepDef: &config.StepDef{
				Name: fmt.Sprintf("step%d", i), Method: "GET",
				Timeout: 10 * time.Second, StatusChecked: true,
				Expect: []*assert.Expectation{
					assert.MustCompile("status == 200"),
					assert.MustCompile(`json.status == "success"`),
					assert.MustCompile("duration < 2s"),
				},
				Captures: []config.Capture{{Name: "token", Value: tok}},
			},
		})
	}
	return f
}

// pipeline is everything a run goes through in the daemon after the runner.
type pipeline []result.Observer

func newPipeline(f *config.Flow) pipeline {
	m := metrics.New(prometheus.NewRegistry(), "bench", metrics.BuildInfo{Version: "bench"})
	shape := metrics.FlowShape{Name: f.Name}
	for _, s := range f.Steps {
		shape.Steps = append(shape.Steps, metrics.StepShape{Name: s.Name})
	}
	m.SetFlows([]metrics.FlowShape{shape})
	return pipeline{m, runlog.New(slog.New(slog.NewJSONHandler(io.Discard, nil))), store.New(100)}
}

func (p pipeline) observe(r *result.Run) {
	for _, o := range p {
		o.Observe(r)
	}
}

func bareRequests(client *http.Client, url string, n int) {
	for i := 0; i < n; i++ {
		resp, err := client.Get(url + "/x")
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStepVsBare interleaves blocks of probe runs (steps per run, with
// metrics, log line and store unless runner-only) and bare client requests (keep-alive, as the
// steps of one run share a connection), and reports both per request and
// their ratio, by wall time and by process CPU time (server included, equal
// on both sides).
func BenchmarkStepVsBare(b *testing.B) {
	for _, c := range []struct {
		steps    int
		pipeline bool
	}{{1, true}, {10, true}, {10, false}} {
		steps := c.steps
		name := fmt.Sprintf("steps=%d", steps)
		if !c.pipeline {
			name += "/runner-only"
		}
		b.Run(name, func(b *testing.B) {
			srv := server(b)
			f := flow(srv.URL, steps)
			rf, err := runner.New(f, runner.Options{Version: "bench", Region: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			p := newPipeline(f)
			// The bare client also opens a fresh connection per "run", as
			// the runner does, so both pay the same connects.
			tr := &http.Transport{}
			client := &http.Client{Transport: tr}
			var probeWall, bareWall, probeCPU, bareCPU time.Duration
			const block = 20
			b.ResetTimer()
			for done := 0; done < b.N; done += block {
				n := min(block, b.N-done)
				c0, t0 := cpuTime(), time.Now()
				for i := 0; i < n; i++ {
					r := rf.Run(context.Background(), time.Time{})
					if !r.OK() {
						b.Fatal(r.Summary())
					}
					if c.pipeline {
						p.observe(r)
					}
				}
				c1, t1 := cpuTime(), time.Now()
				for i := 0; i < n; i++ {
					bareRequests(client, srv.URL, steps)
					tr.CloseIdleConnections()
				}
				c2, t2 := cpuTime(), time.Now()
				probeWall += t1.Sub(t0)
				bareWall += t2.Sub(t1)
				probeCPU += c1 - c0
				bareCPU += c2 - c1
			}
			b.StopTimer()
			reqs := float64(b.N * steps)
			b.ReportMetric(float64(probeWall.Nanoseconds())/reqs, "probe-ns/step")
			b.ReportMetric(float64(bareWall.Nanoseconds())/reqs, "bare-ns/req")
			b.ReportMetric(float64(probeWall)/float64(bareWall), "wall-ratio")
			if bareCPU > 0 {
				b.ReportMetric(float64(probeCPU)/float64(bareCPU), "cpu-ratio")
			}
		})
	}
}
