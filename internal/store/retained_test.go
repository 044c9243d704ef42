package store

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// noOlder is a run history on disk that holds nothing: the daemon's
// setting (SetOlder), without a file.
type noOlder struct{}

func (noOlder) RunsBefore(string, int64, int) []*result.Run { return nil }

// loadRun fills r as the load harness's four-step flow i runs at start
// (bench/load: log in, an order, pay through a dependency, read the order
// back), every step passing, with fresh ids.
func loadRun(r *result.Run, flow string, labels map[string]string, i int, start time.Time) {
	const base = "http://127.0.0.1:37097"
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	*r = result.Run{Flow: flow, Region: "load", Labels: labels, ID: fmt.Sprintf("%016x", int64(i+1)+start.Unix()<<20),
		TraceID: fmt.Sprintf("%032x", int64(i+7)+start.Unix()<<24), Planned: start.Add(-ms(0.9)), Start: start,
		Status: result.Passed, Class: result.OK, Duration: ms(4.068)}
	steps := [...]struct{ name, dep, method, path string }{
		{"login", "", "POST", "/api/login"},
		{"order", "", "POST", "/api/orders"},
		{"pay", "bank-gateway", "POST", "/api/orders/ord_123/pay"},
		{"confirm3", "", "GET", "/api/orders/ord_123"},
	}
	r.Steps = make([]result.Step, len(steps))
	at := start
	for j, s := range steps {
		d := ms(0.431 + float64(j)*0.37)
		r.Steps[j] = result.Step{Name: s.name, Dependency: s.dep, SpanID: fmt.Sprintf("%016x", (i+1)*8+j+int(start.Unix())<<28),
			Method: s.method, URL: base + s.path, Status: result.Passed, Class: result.OK, HTTPStatus: 200, Attempts: 1,
			Start: at, Duration: d, BodyBytes: 101,
			Timings: result.Timings{Connect: ms(0.277), Processing: ms(0.488), Transfer: ms(0.179), FirstByte: ms(1.213), Reused: j > 0}}
		at = at.Add(d)
	}
}

// What the store keeps a flow at 10,000 four-step flows run once a minute,
// as the daemon sets it up (the older runs on disk, no latency rule), after
// every flow ran twice: the newest run, the rules' counts, the region's
// streak, the dependency's callers. Was 1,560 bytes a flow (15.6 MB), of
// which the newest run encoded 480, the counts 352 and per-flow structs and
// slices the rest (step names copied per flow, a struct per region, the
// dependencies called, a summary per full run nothing read).
func TestStoreRetainedPerFlow(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector grows every allocation")
	}
	const flows = 10000
	names := make([]string, flows)
	for i := range names {
		names[i] = fmt.Sprintf("load-%05d", i)
	}
	labels := map[string]string{"team": "load"}
	var r result.Run
	runtime.GC()
	runtime.GC() // sync.Pools' contents go at the second
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s := New(100)
	s.SetOlder(noOlder{})
	s.Retain(names, 100)
	s.SetSampledFlows([]string{})
	for m := range 2 {
		for i, f := range names {
			loadRun(&r, f, labels, i, t0.Add(time.Duration(m)*time.Minute+time.Duration(i)*time.Millisecond))
			s.Observe(&r)
		}
	}
	r = result.Run{}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / flows
	t.Logf("%.0f bytes a flow (10,000 flows: %.1f MB)", per, per*flows/1e6)
	if got := s.Latest(names[17]); got == nil || len(got.Steps) != 4 || got.Steps[3].URL != "http://127.0.0.1:37097/api/orders/ord_123" {
		t.Fatalf("newest run of %s: %+v", names[17], got)
	}
	if g, n := s.FlowCounts(names[17], time.Hour, t0.Add(2*time.Minute)); g != 2 || n != 2 {
		t.Errorf("counts %d/%d, want 2/2", g, n)
	}
	if fl := s.DependencyFlows("bank-gateway"); len(fl) != flows {
		t.Errorf("%d flows call bank-gateway, want %d", len(fl), flows)
	}
	runtime.KeepAlive(s)
	if per > 900 {
		t.Errorf("%.0f bytes a flow, want <= 900", per)
	}
}

// A flow's newest run is kept in a buffer reused from the run before only
// when it has at most an eighth to spare: a failure's message once (a few
// hundred bytes) does not stay with every later, smaller run (before, up
// to twice the run's size stayed).
func TestNewestRunSlack(t *testing.T) {
	s := New(1)
	s.SetOlder(noOlder{})
	var r result.Run
	loadRun(&r, "f", nil, 0, t0)
	r.Status, r.Class, r.FailedStep = result.Failed, result.Assertion, "pay"
	r.Steps[2].Status, r.Steps[2].Class = result.Failed, result.Assertion
	r.Steps[2].Failures = []result.Failure{{Expectation: `json.status == "success"`, Actual: `"processing"`,
		Message: `json.status == "success": got "processing" ` + strings.Repeat("x", 150)}}
	s.Observe(&r)
	loadRun(&r, "f", nil, 0, t0.Add(time.Minute))
	s.Observe(&r)
	enc := s.flows["f"].full[0].enc
	if n := len(enc); cap(enc) > n+n/8 {
		t.Errorf("the newest run: %d bytes in a buffer of %d", n, cap(enc))
	}
	if got := s.Latest("f"); !sameRun(got, &r) {
		t.Errorf("newest run %+v, want %+v", got, &r)
	}
}
