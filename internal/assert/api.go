// Package assert is the expectation language of flows: expressions such as
// `status == 200`, `json.status == "success"` or `duration < 2s`, compiled
// once at load and checked against each response, explaining what failed:
// `json.status == "success": got "processing"`. It also compiles the value
// expressions used by captures (`json.token`, `header.Location`).
//
// It knows nothing of HTTP clients: it reads a Response the runner fills in.
//
// HTML operands (html("css selector"), count(...)) parse the body with
// golang.org/x/net/html, the Go project's HTML5 parser (the algorithm
// browsers use, so a page reads as a browser sees it, with a bound on
// nesting), and match with github.com/andybalholm/cascadia, the CSS selector
// engine goquery is built on: maintained, dependency-free beyond x/net,
// fuzzed, and it compiles a selector once, at load.
package assert

import (
	"net/http"
	"time"
)

// Response is what expectations and captures read. The runner fills it in;
// Body holds at most the configured cap.
type Response struct {
	Status   int
	Header   http.Header
	Body     []byte
	Duration time.Duration
	// Vars reads the {{name}} placeholders of expectations: the run's
	// variables. Kept by Reset: they outlive one response.
	Vars Vars
	// Cookies is where cookie.NAME reads, nil where there are none (a
	// step kind without cookies). Cleared by Reset: it is one response's.
	Cookies Cookies

	attrs []attr    // a step kind's operands (SetString and the like)
	json  jsonCache // lazily computed facts about Body, reset by Reset
	html  htmlCache // the body parsed as HTML, once, when an operand asks
}

// Reset clears r for reuse with a new response, keeping Body's capacity.
func (r *Response) Reset() {
	*r = Response{Body: r.Body[:0], attrs: r.attrs[:0], Vars: r.Vars}
}

// Vars is where expectations read variables: the runner's scope.
type Vars interface {
	Var(name string) (string, bool)
}

// Cookies is where cookie.NAME reads: the runner's view of the run's
// cookies for the response's URL. Names are case-sensitive.
type Cookies interface {
	Cookie(name string) (string, bool)
}

// VarRef is a {{name}} in an expectation, at byte Offset of its source.
type VarRef struct {
	Name   string
	Offset int
}

// Source is the set of response parts an expression reads.
type Source uint8

const (
	SourceStatus Source = 1 << iota
	SourceHeader
	SourceBody // the body as text
	SourceJSON // the body parsed as JSON
	SourceDuration
	SourceAttr   // an operand of a step kind (cert.expires_in)
	SourceHTML   // the body parsed as HTML (always with SourceBody)
	SourceCookie // the cookies of the run (Response.Cookies)
)

// Cause says why a check failed or a value could not be read.
type Cause uint8

const (
	Mismatch    Cause = iota + 1 // the value was there and did not satisfy the expectation
	Missing                      // no such JSON field, header, or no regex match
	WrongType                    // e.g. got a string where a number was expected
	InvalidJSON                  // a JSON path was read from a body that is not JSON
	NotHTML                      // an HTML selector was read from a body that is not HTML
)

// Failure explains a failed check.
type Failure struct {
	Expectation string // the expectation's source text
	Actual      string // the observed value, for people: "processing" (quoted), 503, 2.314s
	Message     string // "<Expectation>: got <Actual>" or a sentence for InvalidJSON and NotHTML
	Cause       Cause
	Source      Source // the part of the response the failing operand read
}

// SyntaxError is a compile error at a byte offset of the source.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string { return e.Msg }

// EvalError is why a value could not be read from a response.
type EvalError struct {
	Cause Cause
	Msg   string // e.g. `json.id: no such field`
}

func (e *EvalError) Error() string { return e.Msg }
