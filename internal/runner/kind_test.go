package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
	"github.com/prober-dev/prober/internal/template"
)

// echoSpec is a step kind for the seam's tests: it expands Msg, answers
// with it, counts its attempts in the operand n, and fails with Fail.
type echoSpec struct {
	Msg      *template.Template
	Fail     result.Class
	attempts int
	trace    string
}

var echoOps = assert.Operands{"echo.n": assert.NumberOperand, "echo.msg": assert.StringOperand}

func (e *echoSpec) Execute(_ context.Context, x *Exchange) (result.Class, string) {
	msg, err := x.Expand(e.Msg)
	if err != nil {
		return x.Classify(err, Phase{})
	}
	e.attempts++
	e.trace = x.Traceparent()
	x.Target("echo://" + msg)
	x.Attr("echo.msg", msg)
	r := x.Response()
	r.SetInt("echo.n", int64(e.attempts))
	r.SetString("echo.msg", msg)
	r.Body = append(r.Body[:0], msg...)
	if e.Fail != "" {
		return e.Fail, "echo failed with " + msg
	}
	return "", ""
}

func echoStep(name string, spec *echoSpec, expects ...string) *config.Step {
	st := &config.Step{Spec: spec, StepDef: &config.StepDef{Name: name, Kind: "echo", Method: "ECHO", Timeout: time.Second}}
	if spec.Msg != nil {
		st.Templates = []*template.Template{spec.Msg}
	}
	for _, e := range expects {
		x, err := assert.CompileWith(e, echoOps)
		if err != nil {
			panic(err)
		}
		st.Expect = append(st.Expect, x)
	}
	return st
}

// TestKindSeam: a kind's step runs through the runner like an HTTP step:
// expectations over its operands, captures into later steps, until,
// cleanup's inputs, trace context, and redaction of what it reports.
func TestKindSeam(t *testing.T) {
	secrets := secret.NewSet(map[string]string{"S": "hunter2-secret"})

	t.Run("expect, capture, attrs", func(t *testing.T) {
		first := echoStep("first", &echoSpec{Msg: template.MustParse("hello")}, `echo.msg == "hello"`, "echo.n == 1", `body contains "ell"`, "duration < 1s")
		v, _ := assert.CompileValueWith("echo.msg", echoOps)
		first.Captures = []config.Capture{{Name: "greeting", Value: v}}
		second := echoStep("second", &echoSpec{Msg: template.MustParse("{{greeting}} again")}, `echo.msg == "hello again"`)
		r := mustRun(t, newFlow(first, second), Options{})
		if !r.OK() {
			t.Fatalf("run failed: %s", r.Summary())
		}
		s := r.Steps[1]
		if s.Kind != "echo" || s.Method != "ECHO" || s.URL != "echo://hello again" || s.Attr("echo.msg") != "hello again" {
			t.Errorf("step %+v", s)
		}
		if tp := first.Spec.(*echoSpec).trace; !strings.Contains(tp, r.TraceID) || !strings.Contains(tp, r.Steps[0].SpanID) {
			t.Errorf("traceparent %q lacks trace %s or span %s", tp, r.TraceID, r.Steps[0].SpanID)
		}
	})

	t.Run("a failed expectation", func(t *testing.T) {
		r := mustRun(t, newFlow(echoStep("a", &echoSpec{Msg: template.MustParse("x")}, "echo.n > 1")), Options{})
		s := r.Steps[0]
		if s.Class != result.Assertion || s.Message() != "echo.n > 1: got 1" {
			t.Errorf("class %s message %q", s.Class, s.Message())
		}
	})

	t.Run("until", func(t *testing.T) {
		spec := &echoSpec{Msg: template.MustParse("x")}
		st := echoStep("poll", spec)
		e, _ := assert.CompileWith("echo.n >= 3", echoOps)
		st.Until = &config.Until{Expect: []*assert.Expectation{e}, Interval: time.Millisecond, Within: time.Second}
		r := mustRun(t, newFlow(st), Options{})
		if !r.OK() || r.Steps[0].Attempts != 3 {
			t.Errorf("ok %v after %d attempts, want 3: %s", r.OK(), r.Steps[0].Attempts, r.Summary())
		}
	})

	t.Run("a kind's failure is redacted", func(t *testing.T) {
		st := echoStep("a", &echoSpec{Msg: template.MustParse("{{secret:S}}"), Fail: result.ConnectRefused})
		r := mustRun(t, newFlow(st), Options{Secrets: secrets})
		s := r.Steps[0]
		if s.Class != result.ConnectRefused {
			t.Errorf("class %s", s.Class)
		}
		for _, out := range []string{s.Message(), s.URL, s.Attr("echo.msg")} {
			if strings.Contains(out, "hunter2") || !strings.Contains(out, "[secret:S]") {
				t.Errorf("not redacted: %q", out)
			}
		}
	})

	t.Run("cleanup needs its inputs", func(t *testing.T) {
		f := newFlow(echoStep("a", &echoSpec{Msg: template.MustParse("x")}, "echo.n == 2"))
		c := echoStep("undo", &echoSpec{Msg: template.MustParse("{{order}}")})
		c.Cleanup = true
		f.Cleanup = []*config.Step{c}
		r := mustRun(t, f, Options{})
		if s := r.Steps[1]; s.Status != result.Skipped || s.Kind != "echo" || !strings.Contains(s.Message(), `"order"`) {
			t.Errorf("cleanup step %+v", s)
		}
	})

	t.Run("a variable without a value", func(t *testing.T) {
		r := mustRun(t, newFlow(echoStep("a", &echoSpec{Msg: template.MustParse("{{nope}}")})), Options{})
		if s := r.Steps[0]; s.Class != result.CaptureMissing || s.Attempts != 1 {
			t.Errorf("class %s after %d attempts: %s", s.Class, s.Attempts, s.Message())
		}
	})

	t.Run("a spec that cannot run", func(t *testing.T) {
		st := &config.Step{Spec: struct{}{}, StepDef: &config.StepDef{Name: "a", Kind: "odd", Timeout: time.Second}}
		r := mustRun(t, newFlow(st), Options{})
		if s := r.Steps[0]; s.Class != result.Request || !strings.Contains(s.Message(), "odd") {
			t.Errorf("class %s: %s", s.Class, s.Message())
		}
	})
}

// TestKindClassify: a kind's errors get the HTTP kind's classes.
func TestKindClassify(t *testing.T) {
	r := &run{f: &Flow{cfg: newFlow()}, flow: &bound{parent: context.Background()}, res: &result.Run{}}
	x := &Exchange{r: r, s: &result.Step{}, st: &config.Step{StepDef: &config.StepDef{Timeout: 2 * time.Second}}}
	for _, tc := range []struct {
		err   error
		p     Phase
		class result.Class
		msg   string
	}{
		{context.DeadlineExceeded, Phase{}, result.ConnectTimeout, "no connection within the step timeout (2s)"},
		{context.DeadlineExceeded, Phase{Connected: true, TLSStarted: true}, result.TLS, "tls: handshake not finished"},
		{context.DeadlineExceeded, Phase{Connected: true, Sent: true}, result.Timeout, "no reply within the step timeout (2s)"},
		{fmt.Errorf("read: %w", errors.New("tls: bad certificate")), Phase{Connected: true}, result.TLS, "tls: bad certificate"},
		{&expandError{&template.MissingError{Name: "x"}}, Phase{}, result.CaptureMissing, ""},
	} {
		c, msg := x.Classify(tc.err, tc.p)
		if c != tc.class || !strings.Contains(msg, tc.msg) {
			t.Errorf("%v %+v: %s %q, want %s %q", tc.err, tc.p, c, msg, tc.class, tc.msg)
		}
	}
}

// TestHTTPBehindSeam: config's HTTP spec runs as an Executor, and keeps
// what sets HTTP apart from kinds that expand per attempt: its request is
// built once per step (a polling step resends the same {{uuid}}), and a
// request that cannot be built fails the step before any attempt.
func TestHTTPBehindSeam(t *testing.T) {
	if _, ok := executor(&config.HTTPSpec{}).(*httpStep); !ok {
		t.Fatalf("an HTTP spec runs as %T", executor(&config.HTTPSpec{}))
	}
	rc := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.add(r)
		fmt.Fprint(w, `{"status":"pending"}`)
	}))
	defer srv.Close()
	st := withJSON(newStep("h", "POST", srv.URL+"/poll"), template.Part{T: template.MustParse("{{uuid}}"), Esc: template.JSONString})
	st.Until = &config.Until{Expect: []*assert.Expectation{assert.MustCompile(`json.status == "done"`)},
		Interval: time.Millisecond, Within: 50 * time.Millisecond}
	r := mustRun(t, newFlow(st), Options{})
	if s := r.Steps[0]; s.Attempts < 2 || len(rc.body) != s.Attempts || s.Class != result.Timeout {
		t.Fatalf("HTTP step: %d attempts, %d requests, class %s", s.Attempts, len(rc.body), s.Class)
	}
	for _, b := range rc.body[1:] {
		if b != rc.body[0] || len(b) != 36 {
			t.Errorf("HTTP bodies across attempts: %q, %q", rc.body[0], b)
		}
	}

	r = mustRun(t, newFlow(newStep("m", "GET", srv.URL+"/{{nope}}")), Options{})
	if s := r.Steps[0]; s.Class != result.CaptureMissing || s.Attempts != 0 || s.URL != "" {
		t.Errorf("HTTP step without its variable: class %s, %d attempts, URL %q", s.Class, s.Attempts, s.URL)
	}
}

// sessionKind is a RunScoped kind for the seam's tests: its steps count
// in the run's state, and what it made and closed is kept.
type sessionKind struct {
	made   []*session
	events []string // "close N" in the order states were closed
}

type session struct {
	k     *sessionKind
	n     int // steps of the run so far
	id    int
	close int
}

func (s *session) Close() error {
	s.close++
	s.k.events = append(s.k.events, fmt.Sprintf("close %d after %d steps", s.id, s.n))
	return nil
}

type sessionSpec struct {
	k    *sessionKind
	fail bool
	seen []int // the step count each attempt saw
}

func (s *sessionSpec) RunKey() any { return s.k }
func (s *sessionSpec) NewRun() io.Closer {
	st := &session{k: s.k, id: len(s.k.made) + 1}
	s.k.made = append(s.k.made, st)
	return st
}

func (s *sessionSpec) Execute(_ context.Context, x *Exchange) (result.Class, string) {
	st := x.RunState().(*session)
	st.n++
	s.seen = append(s.seen, st.n)
	if s.fail {
		return result.Network, "failed"
	}
	return "", ""
}

// TestRunScoped: a RunScoped kind's steps share one state per run, made
// at the first step that asks and closed once when the run ends (after
// cleanup, whether the run passed or failed); other kinds see none.
func TestRunScoped(t *testing.T) {
	k := &sessionKind{}
	a, b, c := &sessionSpec{k: k}, &sessionSpec{k: k}, &sessionSpec{k: k}
	echo := &echoSpec{Msg: template.MustParse("hi")}
	stateOf := &stateProbe{}
	f := newFlow(
		&config.Step{Spec: stateOf, StepDef: &config.StepDef{Name: "probe", Kind: "probe", Timeout: time.Second}},
		&config.Step{Spec: a, StepDef: &config.StepDef{Name: "a", Kind: "session", Timeout: time.Second}},
		echoStep("echo", echo),
		&config.Step{Spec: b, StepDef: &config.StepDef{Name: "b", Kind: "session", Timeout: time.Second}},
	)
	f.Cleanup = []*config.Step{{Spec: c, StepDef: &config.StepDef{Name: "c", Kind: "session", Timeout: time.Second, Cleanup: true}}}
	if r := mustRun(t, f, Options{}); !r.OK() {
		t.Fatalf("run: %s", r.Summary())
	}
	if stateOf.got != nil {
		t.Errorf("a kind without RunScoped got state %v", stateOf.got)
	}
	if len(k.made) != 1 || a.seen[0] != 1 || b.seen[0] != 2 || c.seen[0] != 3 {
		t.Fatalf("made %d states, steps saw %v %v %v; want one state seen 1, 2, 3", len(k.made), a.seen, b.seen, c.seen)
	}
	if got := strings.Join(k.events, "; "); got != "close 1 after 3 steps" {
		t.Errorf("events %q, want the state closed once after the cleanup step", got)
	}

	// A second run, whose first step fails: a state of its own, closed.
	a.fail = true
	if r := mustRun(t, f, Options{}); r.OK() {
		t.Fatal("the run passed")
	}
	if len(k.made) != 2 || a.seen[1] != 1 || k.made[1].close != 1 || k.made[0].close != 1 {
		t.Errorf("made %d states, the second run's first step saw %v, closes %d %d", len(k.made), a.seen, k.made[0].close, k.made[len(k.made)-1].close)
	}
}

// stateProbe records what RunState gives a kind that is no RunScoped.
type stateProbe struct{ got io.Closer }

func (p *stateProbe) Execute(_ context.Context, x *Exchange) (result.Class, string) {
	p.got = x.RunState()
	return "", ""
}
