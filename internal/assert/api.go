// Package assert is the expectation language of flows: expressions such as
// `status == 200`, `json.status == "success"` or `duration < 2s`, compiled
// once at load and checked against each response, explaining what failed:
// `json.status == "success": got "processing"`. It also compiles the value
// expressions used by captures (`json.token`, `header.Location`).
//
// It knows nothing of HTTP clients: it reads a Response the runner fills in.
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

	attrs []attr    // a step kind's operands (SetString and the like)
	json  jsonCache // lazily computed facts about Body, reset by Reset
}

// Reset clears r for reuse with a new response, keeping Body's capacity.
func (r *Response) Reset() {
	*r = Response{Body: r.Body[:0], attrs: r.attrs[:0], Vars: r.Vars}
}

// Vars is where expectations read variables: the runner's scope.
type Vars interface {
	Var(name string) (string, bool)
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
	SourceAttr // an operand of a step kind (cert.expires_in)
)

// Cause says why a check failed or a value could not be read.
type Cause uint8

const (
	Mismatch    Cause = iota + 1 // the value was there and did not satisfy the expectation
	Missing                      // no such JSON field, header, or no regex match
	WrongType                    // e.g. got a string where a number was expected
	InvalidJSON                  // a JSON path was read from a body that is not JSON
)

// Failure explains a failed check.
type Failure struct {
	Expectation string // the expectation's source text
	Actual      string // the observed value, for people: "processing" (quoted), 503, 2.314s
	Message     string // "<Expectation>: got <Actual>" or a sentence for InvalidJSON
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
