// Package result holds the one record of a flow run: what the runner produces
// and what metrics, logs, the store, rules and pages consume. It has no
// behaviour beyond describing and summarising a run.
package result

import (
	"fmt"
	"strings"
	"time"
)

// Class says how a step (and so a run) failed. The set is closed so that it
// can be a Prometheus label without unbounded cardinality.
type Class string

const (
	OK             Class = "ok"
	DNS            Class = "dns"             // name did not resolve
	ConnectRefused Class = "connect_refused" // nothing listening / RST on connect
	ConnectTimeout Class = "connect_timeout" // no TCP connection within the deadline
	TLS            Class = "tls"             // handshake or certificate failure
	Timeout        Class = "timeout"         // connected, but headers or body too slow
	Network        Class = "network"         // connection reset or closed mid-exchange
	HTTP4xx        Class = "http_4xx"
	HTTP429        Class = "http_429"
	HTTP5xx        Class = "http_5xx"
	Redirect       Class = "redirect"       // redirect loop or too many redirects
	BodyTooLarge   Class = "body_too_large" // body exceeded the configured cap
	InvalidJSON    Class = "invalid_json"   // a JSON expectation or capture met a non-JSON body
	Assertion      Class = "assertion"      // an expectation failed (not a swallowed error)
	SwallowedError Class = "swallowed_error"
	CaptureMissing Class = "capture_missing"
	Request        Class = "request" // the request could not be built (bad URL after expansion)
	// The browser kind's own: appended, as the store encodes a class by
	// its index here.
	Browser         Class = "browser"          // the browser could not start, or crashed
	SelectorTimeout Class = "selector_timeout" // an action's element did not show within the timeout
	Navigation      Class = "navigation"       // a page did not load (net::ERR_...)
	ScriptError     Class = "script_error"     // the page threw an uncaught exception
)

// Classes lists every class, in a stable order, for pre-initialising metrics
// and for documentation.
var Classes = []Class{OK, DNS, ConnectRefused, ConnectTimeout, TLS, Timeout, Network,
	HTTP4xx, HTTP429, HTTP5xx, Redirect, BodyTooLarge, InvalidJSON, Assertion,
	SwallowedError, CaptureMissing, Request, Browser, SelectorTimeout, Navigation, ScriptError}

// Status of a step or run.
type Status string

const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped" // not run: an earlier step failed, or a cleanup step lacked its inputs
)

// Timings are the phases of the last HTTP attempt of a step. DNS, Connect and
// TLS are zero on a reused connection. Processing is the server's time (request
// written to first response byte); Transfer is first byte to end of body.
type Timings struct {
	DNS        time.Duration `json:"-"`
	Connect    time.Duration `json:"-"`
	TLS        time.Duration `json:"-"`
	Processing time.Duration `json:"-"`
	Transfer   time.Duration `json:"-"`
	FirstByte  time.Duration `json:"-"` // from the attempt's start to the first response byte
	Reused     bool          `json:"-"`
}

// Failure is one failed expectation or transport error, already redacted.
type Failure struct {
	// Expectation is the source text of the failed expectation, or "" for a
	// transport error.
	Expectation string `json:"expectation,omitempty"`
	// Actual is the observed value as it should be shown to a person:
	// `"processing"`, `503`, `2.31s`, `nothing (no such field)`.
	Actual string `json:"actual,omitempty"`
	// Message is the whole sentence: `json.status == "success": got "processing"`.
	Message string `json:"message"`
}

// Step is the outcome of one step.
type Step struct {
	Name       string `json:"name"`
	Dependency string `json:"dependency,omitempty"`
	Cleanup    bool   `json:"cleanup,omitempty"`
	SpanID     string `json:"span_id"`
	Method     string `json:"method"`
	// URL as requested, with secrets redacted.
	URL        string        `json:"url"`
	Status     Status        `json:"status"`
	Class      Class         `json:"class"`
	HTTPStatus int           `json:"http_status,omitempty"`
	Attempts   int           `json:"attempts"`
	Start      time.Time     `json:"start"`
	Duration   time.Duration `json:"-"`
	Timings    Timings       `json:"-"`
	BodyBytes  int64         `json:"body_bytes"`
	Failures   []Failure     `json:"failures,omitempty"`
	// Kind is the step's kind when it is not HTTP: "tls", "tcp".
	Kind string `json:"kind,omitempty"`
	// Attrs are the kind's own part of the result (a certificate's
	// not-after, a banner), already redacted, in the order the kind set
	// them: the store, pages and logs carry them without knowing the kind.
	Attrs []Attr `json:"attrs,omitempty"`
	// Response is what the server answered to the last attempt of a
	// failed step (nil for a step that passed, or that got no answer).
	Response *Response `json:"response,omitempty"`
	// Retries are the attempts the step's retry: made after a failed one
	// (a 429, a 5xx, a refused connection), counted in Attempts.
	Retries int `json:"retries,omitempty"`
	// AttemptLog is each attempt of a step that made two or more (its
	// retry: tries, its until polls), oldest first, the last MaxAttemptLog
	// of them: Attempts-len(AttemptLog) earlier ones are only counted. It
	// is nil for a step of one attempt, which is the step itself (its
	// Start, Duration, HTTPStatus, Timings): most steps cost nothing more.
	// Tracing reads it from the live run; the store does not keep it.
	AttemptLog []Attempt `json:"-"`
	// Screenshot is the page as a failed browser step left it (nil for
	// any other step).
	Screenshot *Screenshot `json:"screenshot,omitempty"`
}

// MaxAttemptLog bounds a step's AttemptLog: a long until poll keeps its
// last attempts, not all of them.
const MaxAttemptLog = 16

// Attempt is one exchange of a step (a request sent, a connection made).
type Attempt struct {
	Start    time.Time
	Duration time.Duration
	// HTTPStatus is the attempt's response status, 0 without one.
	HTTPStatus int32
	// Resend is 0 for a first send and n for the step's retry: n; each
	// until poll starts again at 0.
	Resend int32
	// Class is how the exchange failed: its transport class, or the
	// status's class for a 4xx or 5xx (even one the step expected); ""
	// when it got a response below 400.
	Class   Class
	Timings Timings
}

// Screenshot is a PNG of a page, its secrets masked. The store keeps the
// bytes of a bounded number (PNG nil once dropped); JSON carries only
// their size.
type Screenshot struct {
	PNG    []byte `json:"-"`
	Bytes  int    `json:"bytes"` // len(PNG) as taken
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// Attr is one named fact a step kind recorded.
type Attr struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Attr returns the value of the attribute name, or "".
func (s *Step) Attr(name string) string {
	for _, a := range s.Attrs {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// Run is the one record of a flow run.
type Run struct {
	ID      string            `json:"run_id"`
	Flow    string            `json:"flow"`
	Region  string            `json:"region"`
	Labels  map[string]string `json:"labels,omitempty"`
	TraceID string            `json:"trace_id"`
	// Planned is when the scheduler meant to start the run; Start when it did.
	Planned    time.Time     `json:"planned"`
	Start      time.Time     `json:"start"`
	Duration   time.Duration `json:"-"`
	Status     Status        `json:"status"`
	Class      Class         `json:"class"`
	FailedStep string        `json:"failed_step,omitempty"`
	Steps      []Step        `json:"steps"`
	// Retry is 0 for a scheduled run and n for the nth immediate retry that
	// confirms a failure. Retried marks a failed run that a retry followed:
	// it is not the final word on its schedule slot, so success ratios and
	// "last run" views skip it (its trace id stays useful).
	Retry   int  `json:"retry,omitempty"`
	Retried bool `json:"retried,omitempty"`
	// RetryOf is the trace id of the run this one retries.
	RetryOf string `json:"retry_of,omitempty"`
	// Summarized marks an older run that the store keeps only as a summary
	// (it keeps the newest runs in full): Steps holds at most the step that
	// failed the run, with its class and first failure; timings, URLs,
	// span ids and the other steps are gone.
	Summarized bool `json:"summarized,omitempty"`
}

// Final reports whether r is the final run of its schedule slot (not a failed
// run that was retried).
func (r *Run) Final() bool { return !r.Retried }

// OK reports whether the run passed: every non-cleanup step passed. Cleanup
// failures are visible on their step but do not fail the user journey.
func (r *Run) OK() bool { return r.Status == Passed }

// Failed returns the step that failed the run, or nil.
func (r *Run) Failed() *Step {
	for i := range r.Steps {
		s := &r.Steps[i]
		if s.Status == Failed && !s.Cleanup {
			return s
		}
	}
	return nil
}

// Message is the step's first failure sentence, or "".
func (s *Step) Message() string {
	if len(s.Failures) == 0 {
		return ""
	}
	return s.Failures[0].Message
}

// Summary is one line a person can act on: which step failed, how, and the
// class. For a passing run it says so with the duration.
func (r *Run) Summary() string {
	if r.OK() {
		return fmt.Sprintf("%s passed in %s", r.Flow, Round(r.Duration))
	}
	s := r.Failed()
	if s == nil {
		return fmt.Sprintf("%s failed (%s)", r.Flow, r.Class)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed at step %s: ", r.Flow, s.Name)
	if m := s.Message(); m != "" {
		b.WriteString(m)
	} else {
		b.WriteString(string(s.Class))
	}
	fmt.Fprintf(&b, " (class %s)", s.Class)
	return b.String()
}

// Round shortens a duration for people: 1.234567s -> 1.235s, 12.3456ms -> 12.35ms.
func Round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// Observer receives every completed run: metrics, logs and the store are
// observers. Observe must not keep r mutable (runs are read-only once done).
type Observer interface {
	Observe(r *Run)
}
