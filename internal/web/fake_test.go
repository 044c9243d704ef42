package web

import (
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prober-dev/prober/internal/result"
)

// fakeSource is a Source over fixed data. Recent mirrors store.Store: newest
// first, n <= 0 meaning all. It counts what the pages ask of it, since the
// status page's cost is mostly the runs it asks for.
type fakeSource struct {
	flows []FlowInfo
	runs  map[string][]*result.Run // newest first

	recentAll atomic.Int64 // Recent calls with n <= 0
	recentN   atomic.Int64 // Recent calls with n > 0
	returned  atomic.Int64 // runs returned by Recent

	mu   sync.Mutex
	full map[string]int // Recent(flow, n <= 0) calls by flow; nil: not tracked
}

func (f *fakeSource) Flows() []FlowInfo { return f.flows }

func (f *fakeSource) Recent(flow string, n int) []*result.Run {
	rs := f.runs[flow]
	if n > 0 && n < len(rs) {
		rs = rs[:n]
	}
	if n > 0 {
		f.recentN.Add(1)
	} else {
		f.recentAll.Add(1)
		f.mu.Lock()
		if f.full != nil {
			f.full[flow]++
		}
		f.mu.Unlock()
	}
	f.returned.Add(int64(len(rs)))
	return rs
}

// track starts recording which flows Recent(flow, 0) is called for, and
// resets the counters.
func (f *fakeSource) track() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.full = map[string]int{}
	f.recentAll.Store(0)
	f.recentN.Store(0)
	f.returned.Store(0)
}

// fullCalls returns the flows Recent(flow, 0) was called for since track,
// and resets that record.
func (f *fakeSource) fullCalls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.full
	f.full = map[string]int{}
	return m
}

var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

const (
	failTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	payMessage = `json.status == "success": got "processing"`
	xssMessage = `body contains "<script>alert('x')</script>": got "<b>nope</b>"`
)

// traceID is a distinct W3C-shaped trace id per flow and run.
func traceID(flow string, i int) string {
	h := fnv.New64a()
	h.Write([]byte(flow))
	return fmt.Sprintf("%016x%016x", h.Sum64(), i+1)
}

// checkoutRun builds a checkout run: login, create_order, pay, confirm, and
// the cleanup cancel_order. failPay makes pay fail with a swallowed error,
// confirm skipped and the cleanup still run.
func checkoutRun(start time.Time, trace string, failPay bool) *result.Run {
	step := func(i int, name, method, url string) result.Step {
		return result.Step{Name: name, SpanID: fmt.Sprintf("%016x", 0xa0+i), Method: method, URL: url,
			Status: result.Passed, Class: result.OK, HTTPStatus: 200, Attempts: 1,
			Start: start.Add(time.Duration(i) * 40 * time.Millisecond), Duration: 35*time.Millisecond + 123*time.Microsecond,
			BodyBytes: 512, Timings: result.Timings{Processing: 30 * time.Millisecond, Transfer: time.Millisecond,
				FirstByte: 33 * time.Millisecond, Reused: true}}
	}
	login := step(0, "login", "POST", "http://shop.local/api/login")
	login.Timings = result.Timings{DNS: 2 * time.Millisecond, Connect: time.Millisecond, TLS: 5 * time.Millisecond,
		Processing: 20 * time.Millisecond, Transfer: time.Millisecond, FirstByte: 28 * time.Millisecond}
	order := step(1, "create_order", "POST", "http://shop.local/api/orders")
	order.HTTPStatus = 201
	pay := step(2, "pay", "POST", "http://shop.local/api/orders/42/pay")
	pay.Dependency = "bank-gateway"
	confirm := step(3, "confirm", "GET", "http://shop.local/api/orders/42")
	cancel := step(4, "cancel_order", "DELETE", "http://shop.local/api/orders/42")
	cancel.Cleanup = true
	r := &result.Run{ID: "run-" + trace[:8], Flow: "checkout", Region: "eu-west-1", TraceID: trace,
		Labels: map[string]string{"team": "payments"}, Planned: start.Add(-3 * time.Millisecond), Start: start,
		Duration: 201 * time.Millisecond, Status: result.Passed, Class: result.OK}
	if failPay {
		pay.Status, pay.Class, pay.Attempts = result.Failed, result.SwallowedError, 2
		pay.Failures = []result.Failure{
			{Expectation: `json.status == "success"`, Actual: `"processing"`, Message: payMessage},
			{Expectation: `json.paid == true`, Actual: `false`, Message: `json.paid == true: got false`},
		}
		confirm = result.Step{Name: "confirm", Method: "GET", URL: "http://shop.local/api/orders/42",
			Status: result.Skipped, Class: result.OK}
		r.Status, r.Class, r.FailedStep = result.Failed, result.SwallowedError, "pay"
	}
	r.Steps = []result.Step{login, order, pay, confirm, cancel}
	return r
}

func simpleRun(flow string, start time.Time, trace string, ok bool, msg string) *result.Run {
	s := result.Step{Name: "get", SpanID: "00f067aa0ba902b7", Method: "GET", URL: "http://shop.local/" + flow,
		Status: result.Passed, Class: result.OK, HTTPStatus: 200, Attempts: 1, Start: start,
		Duration: 12 * time.Millisecond}
	r := &result.Run{ID: "run-" + trace[:8], Flow: flow, Region: "eu-west-1", TraceID: trace, Start: start,
		Duration: 13 * time.Millisecond, Status: result.Passed, Class: result.OK}
	if !ok {
		s.Status, s.Class, s.HTTPStatus = result.Failed, result.Assertion, 200
		s.Failures = []result.Failure{{Message: msg}}
		r.Status, r.Class, r.FailedStep = result.Failed, result.Assertion, "get"
	}
	r.Steps = []result.Step{s}
	return r
}

// newFake: checkout failing for its last 2 of 6 runs (the newest with trace
// failTrace), browse passing for 4 runs, search failing with a message full of
// markup, and fresh with no runs yet.
func newFake() *fakeSource {
	f := &fakeSource{runs: map[string][]*result.Run{}}
	f.flows = []FlowInfo{
		{Name: "fresh", Description: "added a minute ago", Schedule: "cron */5 * * * * (UTC)",
			Steps: []StepInfo{{Name: "get", Method: "GET", URL: "{{shop_url}}/"}}},
		{Name: "checkout", Description: "login, order, pay, confirm; cancel", File: "flows/checkout.yaml",
			Schedule: "every 1m0s", Labels: map[string]string{"team": "payments", "tier": "1"},
			Steps: []StepInfo{
				{Name: "login", Method: "POST", URL: "{{shop_url}}/api/login"},
				{Name: "create_order", Method: "POST", URL: "{{shop_url}}/api/orders"},
				{Name: "pay", Method: "POST", URL: "{{shop_url}}/api/orders/{{order_id}}/pay", Dependency: "bank-gateway"},
				{Name: "confirm", Method: "GET", URL: "{{shop_url}}/api/orders/{{order_id}}"},
				{Name: "cancel_order", Method: "DELETE", URL: "{{shop_url}}/api/orders/{{order_id}}", Cleanup: true},
			}},
		{Name: "search", Description: "<i>search</i> the catalogue", Schedule: "every 30s",
			Labels: map[string]string{"note": "<b>bold</b>"},
			Steps:  []StepInfo{{Name: "get", Method: "GET", URL: "{{shop_url}}/search?q=<x>"}}},
		{Name: "browse", Schedule: "every 1m0s", Steps: []StepInfo{{Name: "get", Method: "GET", URL: "{{shop_url}}/"}}},
	}
	for i := range 6 {
		start := testNow.Add(-time.Duration(i+1) * time.Minute).Add(14 * time.Second)
		trace := traceID("checkout", i)
		if i == 0 {
			trace = failTrace
		}
		f.runs["checkout"] = append(f.runs["checkout"], checkoutRun(start, trace, i < 2))
	}
	for i := range 4 {
		f.runs["browse"] = append(f.runs["browse"],
			simpleRun("browse", testNow.Add(-time.Duration(i+1)*time.Minute), traceID("browse", i), true, ""))
	}
	f.runs["search"] = []*result.Run{simpleRun("search", testNow.Add(-30*time.Second), traceID("search", 0), false, xssMessage)}
	return f
}

// bigSource is n flows of 30 runs each, every tenth flow failing for its
// last 3 runs. Runs are shallow copies of 60 prototypes (run j of a passing or
// failing flow) with their own flow, trace and run ids, so that 10,000 flows
// cost ~100 MB rather than ~650 MB of test heap whose marking would be
// charged to the benchmarks; the pages render the same bytes either way.
func bigSource(n int) *fakeSource {
	var protos [2][30]*result.Run
	for fail := range 2 {
		for j := range 30 {
			protos[fail][j] = checkoutRun(testNow.Add(-time.Duration(j+1)*time.Minute), traceID("proto", j), fail == 1 && j < 3)
		}
	}
	f := &fakeSource{flows: make([]FlowInfo, 0, n), runs: make(map[string][]*result.Run, n)}
	labels := map[string]string{"team": "t"}
	for i := range n {
		name := fmt.Sprintf("flow-%04d", i)
		f.flows = append(f.flows, FlowInfo{Name: name, Description: "a flow", Schedule: "every 1m0s", Labels: labels})
		fail := 0
		if i%10 == 0 {
			fail = 1
		}
		runs := make([]result.Run, 30) // one allocation per flow
		f.runs[name] = make([]*result.Run, 30)
		for j := range runs {
			runs[j] = *protos[fail][j]
			runs[j].Flow, runs[j].TraceID = name, traceID(name, j)
			runs[j].ID = "run-" + runs[j].TraceID[:8]
			f.runs[name][j] = &runs[j]
		}
	}
	return f
}
