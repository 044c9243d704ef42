package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
	"github.com/prober-dev/prober/internal/template"
)

// Executor is how a step kind runs: the spec its config.StepKind decoded
// (config.Step.Spec) implements it, so the runner executes a kind it does
// not know, and config never imports the runner.
type Executor interface {
	// Execute makes one attempt of the step under ctx (the step's timeout):
	// it fills x.Response() with what expectations and captures read, the
	// timings and the kind's attributes, and returns a failure class and
	// message when there is no answer to check, or "" when there is.
	// Messages are redacted by the runner; they must not hold what the
	// server sent beyond what a person needs.
	Execute(ctx context.Context, x *Exchange) (result.Class, string)
}

// RunScoped is an optional interface of an Executor whose kind holds
// state for a whole run, shared by the run's steps of the kind and by no
// other run: the browser kind's incognito context, so cookies and storage
// carry from step to step and never from run to run. Kinds without it
// cost nothing.
type RunScoped interface {
	Executor
	// RunKey says which steps share the state: those whose specs return
	// the same (comparable) key, such as their kind.
	RunKey() any
	// NewRun returns fresh state for one run, at the first
	// Exchange.RunState of a step with the key. It should start nothing
	// (the steps do, under their timeouts). The runner closes it when the
	// run ends, after cleanup, whatever happened.
	NewRun() io.Closer
}

// runState is one RunScoped key's state in a run.
type runState struct {
	key   any
	state io.Closer
}

// RunState is the run's state for this step's kind (RunScoped), made on
// first use; nil when the spec is no RunScoped.
func (x *Exchange) RunState() io.Closer {
	rs, ok := x.st.Spec.(RunScoped)
	if !ok {
		return nil
	}
	key := rs.RunKey()
	for _, s := range x.r.states {
		if s.key == key {
			return s.state
		}
	}
	st := rs.NewRun()
	x.r.states = append(x.r.states, runState{key, st})
	return st
}

// closeStates closes the run's RunScoped states, the last made first.
// Their errors are the kinds' to report; a run's result is complete.
func (r *run) closeStates() {
	for i := len(r.states) - 1; i >= 0; i-- {
		_ = r.states[i].state.Close()
	}
	r.states = nil
}

// Exchange is what a kind's attempt gets from the run: variables, the
// dialer, trace context, and where its results go. Valid during Execute
// only.
type Exchange struct {
	r     *run
	s     *result.Step
	st    *config.Step
	start time.Time
}

// Expand expands a template of the step's spec with the run's variables
// and secrets. The result may hold secrets: show it only through the
// result (Target, Attr), which redacts.
func (x *Exchange) Expand(t *template.Template) (string, error) {
	if t == nil {
		return "", nil
	}
	v, err := t.ExpandString(&x.r.scope)
	if err != nil {
		return "", &expandError{err}
	}
	return v, nil
}

// Dial connects as the HTTP kind does (tests inject faults through
// Options.DialContext).
func (x *Exchange) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d := x.r.f.opts.DialContext; d != nil {
		return d(ctx, network, addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// Traceparent is the W3C trace context of this step, for protocols that
// can carry it.
func (x *Exchange) Traceparent() string {
	return traceparent(x.r.res.TraceID, x.s.SpanID, x.r.unsampled)
}

// Response is what the step's expectations and captures read: the kind
// sets its operands (SetString, SetDuration, ...) and may set Body (a
// reply) and Duration (else the attempt's time).
func (x *Exchange) Response() *assert.Response { return &x.r.resp }

// Timings are the attempt's phases (DNS, Connect, TLS, FirstByte, ...).
func (x *Exchange) Timings() *result.Timings { return &x.s.Timings }

// Started is when the attempt began, for the kind's timings.
func (x *Exchange) Started() time.Time { return x.start }

// Target sets what the step talks to, shown as the step's URL
// ("tls://host:443"), redacted.
func (x *Exchange) Target(s string) { x.s.URL = x.r.redact(s) }

// Attr records one fact of the kind's part of the result (redacted); a
// later attempt's value replaces an earlier one.
func (x *Exchange) Attr(name, value string) {
	value = x.r.redact(value)
	for i := range x.s.Attrs {
		if x.s.Attrs[i].Name == name {
			x.s.Attrs[i].Value = value
			return
		}
	}
	x.s.Attrs = append(x.s.Attrs, result.Attr{Name: name, Value: value})
}

// Screenshot records a picture of what the step saw (a failed browser
// step's page), its secrets already masked: the redactor cannot read
// pixels. A later attempt starts without it.
func (x *Exchange) Screenshot(sh *result.Screenshot) { x.s.Screenshot = sh }

// SecretForms are the run's secret values in every form the redactor
// masks (as they are, URL-, JSON-, HTML-escaped, base64), for a kind that
// must hide them where the redactor cannot reach, such as a page before
// its screenshot. Never put them in the result.
func (x *Exchange) SecretForms() []string {
	set := x.r.f.opts.Secrets
	var out []string
	for _, name := range set.Names() {
		v, _ := set.Get(name)
		out = append(out, secret.Forms(v)...)
	}
	return out
}

// BodyBytes records how many bytes the answer had.
func (x *Exchange) BodyBytes(n int64) { x.s.BodyBytes = n }

// Phase is how far an attempt got when it failed, for its class.
type Phase struct {
	Connected  bool // the TCP connection is up
	TLSStarted bool // a TLS handshake began
	TLSDone    bool // and finished
	Sent       bool // the request (if any) was written; a reply was awaited
}

// Classify turns an error of a kind's attempt into a failure class and
// message, as the HTTP kind's are: dns, connect_refused, connect_timeout,
// tls, timeout, network.
// An error of Expand is capture_missing (a variable without a value) or
// request.
func (x *Exchange) Classify(err error, p Phase) (result.Class, string) {
	var terr *template.MissingError
	if errors.As(err, &terr) || !p.Connected && !p.TLSStarted && isExpandError(err) {
		return prepareClass(err), err.Error()
	}
	st := attemptState{
		connected: p.Connected, tlsStarted: p.TLSStarted, tlsDone: p.TLSDone,
		stepTimeout: x.st.Timeout, flowDeadline: x.r.flow.expired(), reply: true,
	}
	return classify(err, st)
}

// attempt makes one attempt of a step through its kind's executor.
func (r *run) attempt(b *bound, st *config.Step, exec Executor, s *result.Step) (result.Class, string) {
	if exec == nil {
		return result.Request, fmt.Sprintf("step kind %s cannot run here (its spec %T is no runner.Executor)", st.Kind, st.Spec)
	}
	actx, cancel := b.attempt(st.Timeout)
	defer cancel()
	r.flow = b
	r.resp.Reset()
	x := r.exchange(st, s)
	x.s.Timings = result.Timings{}
	x.s.Screenshot = nil
	class, msg := exec.Execute(actx, x)
	r.done(s)
	if r.resp.Duration == 0 {
		r.resp.Duration = time.Since(x.start)
	}
	return class, msg
}

// exchange sets up the run's Exchange for st, filling a copy of s. The
// Exchange escapes (an interface call), and with it the step it points
// to: the run's own, so that an attempt allocates neither and the
// caller's step stays on its stack. done copies the step back.
func (r *run) exchange(st *config.Step, s *result.Step) *Exchange {
	r.xs = *s
	r.x = Exchange{r: r, s: &r.xs, st: st, start: time.Now()}
	return &r.x
}

func (r *run) done(s *result.Step) {
	*s = r.xs
	r.xs = result.Step{} // holds nothing of the step past its attempt
}

// expandError marks errors of Exchange.Expand.
type expandError struct{ err error }

func (e *expandError) Error() string { return e.err.Error() }
func (e *expandError) Unwrap() error { return e.err }

func isExpandError(err error) bool {
	var e *expandError
	return errors.As(err, &e)
}
