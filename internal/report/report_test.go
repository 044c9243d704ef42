package report

import (
	"bytes"
	"encoding/xml"
	"errors"
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

func passed(name, span string, d time.Duration) result.Step {
	return result.Step{
		Name: name, SpanID: span, Method: "POST", URL: "http://127.0.0.1:8080/api/" + name,
		Status: result.Passed, Class: result.OK, HTTPStatus: 200, Attempts: 1, Start: t0, Duration: d,
		Timings: result.Timings{DNS: 300 * time.Microsecond, Connect: 200 * time.Microsecond,
			Processing: d - time.Millisecond, Transfer: 100 * time.Microsecond, FirstByte: d - 500*time.Microsecond},
	}
}

func passingRun() *result.Run {
	pay := passed("pay", "2222222222222222", 300*time.Millisecond)
	pay.Dependency = "bank-gateway"
	confirm := passed("confirm", "3333333333333333", 1250*time.Millisecond)
	confirm.Method, confirm.Attempts = "GET", 4
	confirm.Timings.Reused = true
	cancel := passed("cancel_order", "4444444444444444", 10*time.Millisecond)
	cancel.Method, cancel.Cleanup = "DELETE", true
	return &result.Run{
		ID: "b7ad6b7169203331", Flow: "checkout", Region: "eu-west-1", TraceID: traceOK,
		Planned: t0, Start: t0, Duration: 1600 * time.Millisecond, Status: result.Passed, Class: result.OK,
		Steps: []result.Step{passed("login", "1111111111111111", 20*time.Millisecond), pay, confirm, cancel},
	}
}

func failingRun() *result.Run {
	pay := passed("pay", "2222222222222222", 1500*time.Millisecond)
	pay.Dependency, pay.Status, pay.Class = "bank-gateway", result.Failed, result.SwallowedError
	pay.Failures = []result.Failure{
		{Expectation: `json.status == "success"`, Actual: `"processing"`, Message: `json.status == "success": got "processing"`},
		{Expectation: `duration < 1s`, Actual: `1.5s`, Message: `duration < 1s: got 1.5s`},
	}
	cancel := passed("cancel_order", "4444444444444444", 10*time.Millisecond)
	cancel.Method, cancel.Cleanup = "DELETE", true
	return &result.Run{
		ID: "a3ce929d0e0e4736", Flow: "checkout", Region: "eu-west-1", TraceID: traceFail,
		Planned: t0, Start: t0, Duration: 1520 * time.Millisecond,
		Status: result.Failed, Class: result.SwallowedError, FailedStep: "pay",
		Steps: []result.Step{
			passed("login", "1111111111111111", 20*time.Millisecond),
			pay,
			{Name: "confirm", Method: "GET", Status: result.Skipped, Class: result.OK,
				Failures: []result.Failure{{Message: "skipped: an earlier step failed"}}},
			cancel,
		},
	}
}

// refused: no response at all, and the cleanup could not run.
func refused() *result.Run {
	login := result.Step{Name: "login", SpanID: "5555555555555555", Method: "POST", URL: "http://127.0.0.1:1/api/login",
		Status: result.Failed, Class: result.ConnectRefused, Attempts: 3, Retries: 2, Start: t0, Duration: 800 * time.Microsecond,
		Failures: []result.Failure{{Message: "connection refused by 127.0.0.1:1"}}}
	return &result.Run{
		ID: "c0ffee0000000001", Flow: "health", Region: "us-east-1", TraceID: traceFail,
		Planned: t0, Start: t0, Duration: time.Millisecond,
		Status: result.Failed, Class: result.ConnectRefused, FailedStep: "login",
		Steps: []result.Step{login,
			{Name: "cancel_order", Method: "DELETE", Cleanup: true, Status: result.Skipped, Class: result.OK,
				Failures: []result.Failure{{Message: `skipped: variable "order_id" was never captured`}}}},
	}
}

// lineWith returns the first line of text containing every one of subs.
func lineWith(text string, subs ...string) (string, bool) {
lines:
	for _, l := range strings.Split(text, "\n") {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue lines
			}
		}
		return l, true
	}
	return "", false
}

func TestText(t *testing.T) {
	tests := []struct {
		name string
		run  *result.Run
		// each entry: substrings that must appear together on one line
		lines [][]string
		not   []string
	}{
		{
			name: "passing",
			run:  passingRun(),
			lines: [][]string{
				{"checkout PASSED in 1.6s", "region=eu-west-1", "trace_id=" + traceOK},
				{"ok", "login", "200", "20ms", "span_id=1111111111111111"},
				{"POST http://127.0.0.1:8080/api/login"},
				{"dns 300µs", "connect 200µs", "tls 0s", "processing 19ms", "transfer 100µs", "first byte 19.5ms"},
				{"ok", "pay", "300ms", "span_id=2222222222222222"},
				{"ok", "confirm", "1.25s", "attempts=4", "span_id=3333333333333333"},
				{"reused connection", "processing 1.249s"},
				{"ok", "cancel_order (cleanup)", "span_id=4444444444444444"},
				{"search the system's logs for trace_id=" + traceOK},
			},
			not: []string{"FAIL", "class=", "skip", "->"},
		},
		{
			name: "failing",
			run:  failingRun(),
			lines: [][]string{
				{"checkout FAILED in 1.52s", "region=eu-west-1", "trace_id=" + traceFail},
				{"ok", "login", "span_id=1111111111111111"},
				{"FAIL", "pay", "200", "1.5s", "class=swallowed_error", "span_id=2222222222222222"},
				{`-> json.status == "success": got "processing"`},
				{`-> duration < 1s: got 1.5s`},
				{"skip", "confirm", "an earlier step failed"},
				{"ok", "cancel_order (cleanup)", "span_id=4444444444444444"},
				{`checkout failed at step pay: json.status == "success": got "processing" (class swallowed_error)`},
				{"search the system's logs for trace_id=" + traceFail},
			},
			not: []string{"PASSED", "skipped: an earlier", "attempts=", "retries="},
		},
		{
			name: "cleanup failed, run passed",
			run: func() *result.Run {
				r := passingRun()
				c := &r.Steps[3]
				c.Status, c.Class, c.HTTPStatus = result.Failed, result.HTTP5xx, 503
				c.Failures = []result.Failure{{Expectation: "status == 200", Actual: "503", Message: "status == 200: got 503"}}
				return r
			}(),
			lines: [][]string{
				{"checkout PASSED"},
				{"FAIL", "cancel_order (cleanup)", "503", "class=http_5xx", "span_id=4444444444444444"},
				{"-> status == 200: got 503"},
			},
			not: []string{"failed at step"},
		},
		{
			name: "a step kind's part",
			run: func() *result.Run {
				r := passingRun()
				r.Steps = append(r.Steps[:1], result.Step{Name: "cert", Kind: "tls", Method: "TLS", URL: "tls://shop.test:443",
					SpanID: "6666666666666666", Status: result.Passed, Class: result.OK, Attempts: 1, Duration: 3 * time.Millisecond,
					Timings: result.Timings{Connect: time.Millisecond, TLS: 2 * time.Millisecond},
					Attrs:   []result.Attr{{Name: "cert.not_after", Value: "2027-01-02T03:04:05Z"}, {Name: "tls.version", Value: "TLS 1.3"}}})
				return r
			}(),
			lines: [][]string{
				{"ok", "cert", "---", "3ms", "span_id=6666666666666666"},
				{"TLS tls://shop.test:443"},
				{"connect 1ms", "tls 2ms"},
				{"cert.not_after: 2027-01-02T03:04:05Z"},
				{"tls.version: TLS 1.3"},
			},
		},
		{
			name: "no response",
			run:  refused(),
			lines: [][]string{
				{"health FAILED", "region=us-east-1"},
				{"FAIL", "login", "---", "800µs", "class=connect_refused", "attempts=3", "retries=2", "span_id=5555555555555555"},
				{"-> connection refused by 127.0.0.1:1"},
				{"skip", "cancel_order (cleanup)", `variable "order_id" was never captured`},
				{"health failed at step login: connection refused by 127.0.0.1:1 (class connect_refused)"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Text(&buf, tc.run); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			for _, subs := range tc.lines {
				if _, ok := lineWith(out, subs...); !ok {
					t.Errorf("no line with all of %q in:\n%s", subs, out)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(out, s) {
					t.Errorf("output contains %q:\n%s", s, out)
				}
			}
			// steps appear in run order
			last := -1
			for _, s := range tc.run.Steps {
				i := strings.Index(out, " "+s.Name)
				if i < last {
					t.Errorf("step %s printed out of order:\n%s", s.Name, out)
				}
				last = i
			}
			// a skipped step has no span: no empty span_id= printed
			if strings.Contains(out, "span_id=\n") || strings.Contains(out, "span_id= ") {
				t.Errorf("empty span id printed:\n%s", out)
			}
		})
	}
}

type errWriter struct{}

var errWrite = errors.New("disk full")

func (errWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestWriteErrors(t *testing.T) {
	if err := Text(errWriter{}, failingRun()); !errors.Is(err, errWrite) {
		t.Errorf("Text to a failing writer: %v, want %v", err, errWrite)
	}
	if err := JUnit(errWriter{}, []*result.Run{failingRun()}); err == nil {
		t.Errorf("JUnit to a failing writer: nil error")
	}
}

// The JUnit schema as CI systems read it, decoded independently of the
// package's own types.
type xSuites struct {
	XMLName xml.Name `xml:"testsuites"`
	Suites  []xSuite `xml:"testsuite"`
}

type xSuite struct {
	Name      string `xml:"name,attr"`
	Tests     int    `xml:"tests,attr"`
	Failures  int    `xml:"failures,attr"`
	Skipped   int    `xml:"skipped,attr"`
	Time      string `xml:"time,attr"`
	Timestamp string `xml:"timestamp,attr"`
	Props     []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"properties>property"`
	Cases []struct {
		Name      string `xml:"name,attr"`
		Classname string `xml:"classname,attr"`
		Time      string `xml:"time,attr"`
		Failure   *struct {
			Message string `xml:"message,attr"`
			Type    string `xml:"type,attr"`
			Text    string `xml:",chardata"`
		} `xml:"failure"`
		Skipped *struct {
			Message string `xml:"message,attr"`
		} `xml:"skipped"`
		SystemOut string `xml:"system-out"`
	} `xml:"testcase"`
}

func (s xSuite) prop(name string) string {
	for _, p := range s.Props {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

func TestJUnit(t *testing.T) {
	weird := failingRun()
	weird.Flow = "weird<&>"
	weird.Steps[1].Failures = []result.Failure{{Message: "body: \x1b[31m<html> & \"quotes\"\x00"}}

	type wantCase struct {
		name, failureMsg, failureType, skipped, systemOut string
	}
	tests := []struct {
		name                     string
		runs                     []*result.Run
		suite                    int
		flow                     string
		tests, failures, skipped int
		props                    map[string]string
		time                     string
		cases                    []wantCase
	}{
		{
			name: "passing", runs: []*result.Run{passingRun()}, suite: 0, flow: "checkout",
			tests: 4, failures: 0, skipped: 0, time: "1.600",
			props: map[string]string{"trace_id": traceOK, "region": "eu-west-1", "run_id": "b7ad6b7169203331", "class": "ok"},
			cases: []wantCase{
				{name: "login", systemOut: "trace_id=" + traceOK + " span_id=1111111111111111 http_status=200"},
				{name: "pay"}, {name: "confirm"}, {name: "cancel_order"},
			},
		},
		{
			name: "failing", runs: []*result.Run{failingRun()}, suite: 0, flow: "checkout",
			tests: 4, failures: 1, skipped: 1, time: "1.520",
			props: map[string]string{"trace_id": traceFail, "class": "swallowed_error"},
			cases: []wantCase{
				{name: "login"},
				{name: "pay", failureMsg: `json.status == "success": got "processing"`, failureType: "swallowed_error",
					systemOut: "trace_id=" + traceFail + " span_id=2222222222222222 http_status=200"},
				{name: "confirm", skipped: "skipped: an earlier step failed"},
				{name: "cancel_order"},
			},
		},
		{
			name: "several runs, second suite", runs: []*result.Run{passingRun(), refused()}, suite: 1, flow: "health",
			tests: 2, failures: 1, skipped: 1, time: "0.001",
			props: map[string]string{"trace_id": traceFail, "region": "us-east-1", "class": "connect_refused"},
			cases: []wantCase{
				{name: "login", failureMsg: "connection refused by 127.0.0.1:1", failureType: "connect_refused"},
				{name: "cancel_order", skipped: `skipped: variable "order_id" was never captured`},
			},
		},
		{
			name: "characters XML cannot hold", runs: []*result.Run{weird}, suite: 0, flow: "weird<&>",
			tests: 4, failures: 1, skipped: 1, time: "1.520",
			cases: []wantCase{
				{name: "login"},
				{name: "pay", failureMsg: "body: \uFFFD[31m<html> & \"quotes\"\uFFFD", failureType: "swallowed_error"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := JUnit(&buf, tc.runs); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(buf.String(), xml.Header) {
				t.Errorf("no XML header:\n%s", buf.String())
			}
			var got xSuites
			if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("not valid XML: %v\n%s", err, buf.String())
			}
			if len(got.Suites) != len(tc.runs) {
				t.Fatalf("%d suites, want %d (one per run)", len(got.Suites), len(tc.runs))
			}
			s := got.Suites[tc.suite]
			if s.Name != tc.flow || s.Tests != tc.tests || s.Failures != tc.failures || s.Skipped != tc.skipped || s.Time != tc.time {
				t.Errorf("suite %q tests=%d failures=%d skipped=%d time=%s, want %q %d %d %d %s",
					s.Name, s.Tests, s.Failures, s.Skipped, s.Time, tc.flow, tc.tests, tc.failures, tc.skipped, tc.time)
			}
			if _, err := time.Parse(time.RFC3339, s.Timestamp); err != nil {
				t.Errorf("timestamp %q: %v", s.Timestamp, err)
			}
			for k, v := range tc.props {
				if got := s.prop(k); got != v {
					t.Errorf("property %s = %q, want %q", k, got, v)
				}
			}
			if len(s.Cases) != tc.tests {
				t.Errorf("%d testcases, want %d", len(s.Cases), tc.tests)
			}
			for i, w := range tc.cases {
				if i >= len(s.Cases) {
					break
				}
				c := s.Cases[i]
				if c.Name != w.name || c.Classname != tc.flow {
					t.Errorf("case %d = %s (classname %s), want %s (%s)", i, c.Name, c.Classname, w.name, tc.flow)
				}
				switch {
				case w.failureMsg != "":
					if c.Failure == nil {
						t.Errorf("case %s: no <failure>", c.Name)
					} else if c.Failure.Message != w.failureMsg || c.Failure.Type != w.failureType ||
						!strings.Contains(c.Failure.Text, w.failureMsg) {
						t.Errorf("case %s: failure message=%q type=%q text=%q, want %q, %q", c.Name,
							c.Failure.Message, c.Failure.Type, c.Failure.Text, w.failureMsg, w.failureType)
					}
				case c.Failure != nil:
					t.Errorf("case %s: unexpected <failure> %+v", c.Name, *c.Failure)
				}
				switch {
				case w.skipped != "":
					if c.Skipped == nil || c.Skipped.Message != w.skipped {
						t.Errorf("case %s: skipped = %+v, want message %q", c.Name, c.Skipped, w.skipped)
					}
					if c.SystemOut != "" {
						t.Errorf("case %s: skipped case has system-out %q", c.Name, c.SystemOut)
					}
				case c.Skipped != nil:
					t.Errorf("case %s: unexpected <skipped>", c.Name)
				}
				if w.systemOut != "" && c.SystemOut != w.systemOut {
					t.Errorf("case %s: system-out %q, want %q", c.Name, c.SystemOut, w.systemOut)
				}
			}
		})
	}
}

// Every failure message of a step is in the failure's text, not only the first.
func TestJUnitAllFailures(t *testing.T) {
	var buf bytes.Buffer
	if err := JUnit(&buf, []*result.Run{failingRun()}); err != nil {
		t.Fatal(err)
	}
	var got xSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	f := got.Suites[0].Cases[1].Failure
	if f == nil || !strings.Contains(f.Text, `got "processing"`) || !strings.Contains(f.Text, "duration < 1s: got 1.5s") {
		t.Errorf("failure text does not hold both failures: %+v", f)
	}
}

func TestJUnitEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := JUnit(&buf, nil); err != nil {
		t.Fatal(err)
	}
	var got xSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not valid XML: %v\n%s", err, buf.String())
	}
	if len(got.Suites) != 0 {
		t.Errorf("%d suites, want 0", len(got.Suites))
	}
}
