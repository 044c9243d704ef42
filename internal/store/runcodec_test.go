package store

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/prober-dev/prober/internal/result"
)

// utc returns a copy of r with its times in UTC without monotonic
// readings: what the codec keeps of a time.
func utc(r *result.Run) result.Run {
	c := *r
	fix := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return time.Unix(0, t.UnixNano()).UTC()
	}
	c.Start, c.Planned = fix(c.Start), fix(c.Planned)
	if c.Steps != nil {
		c.Steps = append([]result.Step(nil), c.Steps...)
		for i := range c.Steps {
			c.Steps[i].Start = fix(c.Steps[i].Start)
		}
	}
	return c
}

// sameRun reports whether got is want as the store keeps it.
func sameRun(got, want *result.Run) bool {
	return got != nil && want != nil && reflect.DeepEqual(utc(got), utc(want))
}

func codecRuns() []*result.Run {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.Local)
	full := &result.Run{ID: "0123456789abcdef", Flow: "checkout", Region: "eu-west-1",
		Labels: map[string]string{"team": "payments"}, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Planned: t0.Add(-1500 * time.Microsecond), Start: t0, Duration: 1234567 * time.Nanosecond,
		Status: result.Failed, Class: result.SwallowedError, FailedStep: "pay",
		Steps: []result.Step{
			{Name: "login", SpanID: "00f067aa0ba902b7", Method: "POST", URL: "https://shop.example/login",
				Status: result.Passed, Class: result.OK, HTTPStatus: 200, Attempts: 1, Start: t0.Add(time.Millisecond),
				Duration: 40 * time.Millisecond, Timings: result.Timings{DNS: 1, Connect: 2, TLS: 3, Processing: 4, Transfer: 5, FirstByte: 6},
				BodyBytes: 512},
			{Name: "pay", Dependency: "bank-gateway", SpanID: "not-a-span", Method: "POST", URL: "https://shop.example/pay?x=1",
				Status: result.Failed, Class: result.SwallowedError, HTTPStatus: 200, Attempts: 3, Start: t0.Add(-time.Second),
				Duration: time.Hour, Timings: result.Timings{Reused: true, Processing: 7}, BodyBytes: -1,
				Failures: []result.Failure{{Expectation: `json.status == "success"`, Actual: `"processing"`,
					Message: `json.status == "success": got "processing"`}, {Message: strings.Repeat("ü", 300)}}},
			{Name: "cleanup", Cleanup: true, Status: result.Skipped, Class: result.Class("odd-class")},
		},
		Retry: 2, Retried: true, RetryOf: "RAW-trace"}
	return []*result.Run{
		full,
		{},                                   // everything zero
		{Flow: "f", Start: time.Unix(0, -5)}, // before 1970
		{Flow: "f", Planned: t0},             // planned without a start
		{Flow: "f", ID: "0123456789ABCDEF", TraceID: strings.Repeat("a", 31), Summarized: true, Steps: []result.Step{}},
	}
}

func TestRunCodecRoundTrip(t *testing.T) {
	for i, r := range codecRuns() {
		enc := appendRun(nil, r)
		got := decodeRun(enc, r.Flow, r.Labels)
		if !sameRun(got, r) {
			t.Errorf("run %d decoded as\n%+v\nwant\n%+v", i, utc(got), utc(r))
		}
	}
}

// A realistic 4-step run encodes to a few hundred bytes, far below its
// decoded size (the point of encoding it).
func TestRunCodecSize(t *testing.T) {
	r := codecRuns()[0]
	r.Steps = r.Steps[:1]
	for len(r.Steps) < 4 {
		r.Steps = append(r.Steps, r.Steps[0])
	}
	if n := len(appendRun(nil, r)); n > 400 {
		t.Errorf("a 4-step run encodes to %d bytes, want at most 400", n)
	}
}

// The load harness's four-step run (its steps' URLs on one host, their
// statuses and methods the usual ones) encodes to at most 320 bytes, the
// size class below 480 where its 452 bytes were kept before the compact
// encoding (encCompact): 10,000 flows keep 1.6 MB less. It round-trips,
// URLs sharing nothing, all or part of the step before's included.
func TestRunCodecCompact(t *testing.T) {
	var r result.Run
	loadRun(&r, "load-00001", nil, 1, t0)
	enc := appendRun(nil, &r)
	t.Logf("the load harness's run: %d bytes", len(enc))
	if len(enc) > 320 {
		t.Errorf("the load harness's run encodes to %d bytes, want at most 320", len(enc))
	}
	if got := decodeRun(enc, r.Flow, nil); !sameRun(got, &r) {
		t.Errorf("decoded as\n%+v\nwant\n%+v", got, &r)
	}
	r.Steps[0].URL, r.Steps[1].URL = "", "https://other.example/x"
	r.Steps[2].URL, r.Steps[3].URL = "https://other.example/x/y", "https://other.example/x/y"
	r.Steps[1].Method, r.Steps[2].Status = "PROPFIND", "odd"
	if got := decodeRun(appendRun(nil, &r), r.Flow, nil); !sameRun(got, &r) {
		t.Errorf("decoded as\n%+v\nwant\n%+v", got, &r)
	}
}

func FuzzRunCodec(f *testing.F) {
	for _, r := range codecRuns() {
		f.Add(appendRun(nil, r), r.ID, r.Region)
	}
	f.Fuzz(func(t *testing.T, garbage []byte, id, url string) {
		_ = decodeRun(garbage, "f", nil) // any input: no panic
		r := &result.Run{ID: id, TraceID: id, Region: url, FailedStep: id,
			Steps: []result.Step{{Name: url, SpanID: id, URL: url, Failures: []result.Failure{{Message: id}}}}}
		if got := decodeRun(appendRun(nil, r), "", nil); !sameRun(got, r) {
			t.Errorf("decoded as %+v, want %+v", got, r)
		}
	})
}

// The sizes the budgets were set with (store.go): a change that grows them
// grows every 10,000-flow deployment by 300,000 times as much.
func TestSummarySize(t *testing.T) {
	if n := unsafe.Sizeof(summary{}); n != 48 {
		t.Errorf("summary is %d bytes, want 48", n)
	}
}
