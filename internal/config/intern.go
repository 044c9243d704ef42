package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/template"
)

// Sharing of equal immutable pieces across flows. A configuration of 10,000
// similar flows otherwise holds 10,000 copies of the same labels, vars and
// header lists (about 8 MB of a 30 MB configuration). What is shared is never
// written after loading: the daemon, runner and store only read it.

// interns holds the shared pieces of one Load. The zero value is ready.
type interns struct {
	maps    map[string]map[string]string
	headers map[string][]Header
	strs    map[string]string
	specs   map[string]*HTTPSpec
	// lists are the shared template, expectation and capture lists, by
	// their type and elements' identities.
	lists    map[string]any
	defs     map[stepDefKey]*StepDef
	flowDefs map[flowDefKey]*FlowDef
	untils   map[untilKey]*Until
	retries  map[string]*Retry
	// stepsByKey are the shared steps.
	stepsByKey map[stepKey]*Step
}

// stringMap returns a map equal to m, shared with every earlier equal one.
func (in *interns) stringMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		// Lengths first: keys and values may hold any byte.
		fmt.Fprintf(&b, "%d:%s%d:%s", len(k), k, len(m[k]), m[k])
	}
	key := b.String()
	return share(&in.maps, key, m)
}

// headerList returns a list equal to hs (same names, same interned value
// templates, same order), shared with every earlier equal one.
func (in *interns) headerList(hs []Header) []Header {
	if len(hs) == 0 {
		return hs
	}
	var b strings.Builder
	for _, h := range hs {
		// Templates are interned, so the same pointer is the same value.
		fmt.Fprintf(&b, "%d:%s%p;", len(h.Name), h.Name, h.Value)
	}
	key := b.String()
	return share(&in.headers, key, slices.Clip(hs))
}

// httpSpec returns a request equal to s, shared with every earlier equal
// one: flows made from one template send the same requests (their URL,
// header, body and parameter templates already interned, so the same
// pointers). A step with a tls: block keeps its own: the runner keys a
// step's transport by its spec within a flow.
func (in *interns) httpSpec(s *HTTPSpec) *HTTPSpec {
	if s.TLS != nil {
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d:%s%p%t;", len(s.Method), s.Method, s.URL, s.FollowRedirects)
	for _, h := range s.Headers {
		fmt.Fprintf(&b, "h%d:%s%p", len(h.Name), h.Name, h.Value)
	}
	for _, q := range s.Query {
		fmt.Fprintf(&b, "q%d:%s%p", len(q.Name), q.Name, q.Value)
	}
	fmt.Fprintf(&b, ";b%d%p%d:%s", s.Body.Kind, s.Body.Template, len(s.Body.ContentType), s.Body.ContentType)
	for _, p := range s.Body.Form {
		fmt.Fprintf(&b, "f%d:%s%p", len(p.Name), p.Name, p.Value)
	}
	if s.BasicAuth != nil {
		fmt.Fprintf(&b, ";a%p%p", s.BasicAuth.User, s.BasicAuth.Password)
	}
	key := b.String()
	s.Query, s.Body.Form = slices.Clip(s.Query), slices.Clip(s.Body.Form) // only its own slices: a copy may be dropped
	return share(&in.specs, key, s)
}

// list returns a list equal to xs, shared with every earlier one whose
// elements have the same identities (id: an element's pointer, or its
// name and pointer); xs itself, clipped, if it is the first.
func list[T any](in *interns, xs []T, id func(T) string) []T {
	if len(xs) == 0 {
		return xs
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%T", xs)
	for _, x := range xs {
		b.WriteString(id(x))
	}
	key := b.String()
	return share(&in.lists, key, any(slices.Clip(xs))).([]T)
}

func ptrID[T any](p *T) string { return fmt.Sprintf("%p;", p) }

func captureID(c Capture) string { return fmt.Sprintf("%d:%s%p", len(c.Name), c.Name, c.Value) }

// str returns s, sharing the storage of an earlier equal string: step names,
// methods and dependencies repeat across flows, and each one parsed from
// YAML is its own allocation.
func (in *interns) str(s string) string {
	if s == "" {
		return s
	}
	return share(&in.strs, s, s)
}

// share replaces fl's labels, vars, repeated names and its steps' lists,
// and then its steps' StepDefs, by shared equal ones, once the flow is
// complete (HTTPKind shares its header lists and requests).
func (l *loader) share(fl *Flow) {
	in := &l.shared
	fl.Labels = in.stringMap(fl.Labels)
	fl.Vars = in.stringMap(fl.Vars)
	if fl.FlowDef != nil {
		fl.FlowDef = in.flowDef(fl.FlowDef)
	}
	in.steps(fl.Steps)
	in.steps(fl.Cleanup)
}

// steps replaces steps' lists and StepDefs by shared equal ones, and then
// each step by an equal one of an earlier flow: of 10,000 flows made from
// one template, most steps differ in nothing (a login's body, which names
// the flow's user, is the usual exception).
func (in *interns) steps(steps []*Step) {
	for i, s := range steps {
		if s == nil {
			continue
		}
		// Compiled once per source (templates, expectations, capture
		// values), so equal lists are lists of the same pointers.
		s.Templates = list(in, s.Templates, ptrID)
		if s.StepDef == nil {
			continue
		}
		// The step's own until now; a kind's Spec may keep the step
		// (StepBlock.Step) and read the shared one when it runs.
		d := s.StepDef
		d.Name, d.Method, d.Dependency = in.str(d.Name), in.str(d.Method), in.str(d.Dependency)
		d.Kind = in.str(d.Kind)
		d.Expect = list(in, d.Expect, ptrID)
		d.Captures = list(in, d.Captures, captureID)
		d.Until = in.until(d.Until)
		d.Retry = in.retry(d.Retry)
		s.StepDef = in.stepDef(d)
		steps[i] = in.step(s)
	}
}

// stepKey identifies a Step whose request, templates list and StepDef are
// shared: by their identities.
type stepKey struct {
	spec  *HTTPSpec
	tmpl  **template.Template
	ntmpl int
	def   *StepDef
}

// step returns a step equal to s, shared with every earlier equal one. Only
// a step with a request (HTTPSpec, shared by HTTPKind) is shared: another
// kind's Spec may keep its step (StepBlock.Step), and is its own anyway.
func (in *interns) step(s *Step) *Step {
	spec, ok := s.Spec.(*HTTPSpec)
	if !ok || spec == nil {
		return s
	}
	k := stepKey{spec: spec, tmpl: first(s.Templates), ntmpl: len(s.Templates), def: s.StepDef}
	return share(&in.stepsByKey, k, s)
}

// flowDefKey identifies a FlowDef: its fields, the PEM blocks by their
// contents.
type flowDefKey struct {
	description              string
	schedule                 Schedule
	timeout                  time.Duration
	bodyLimit, keepResponse  int64
	follow, insecure         bool
	maxRedirects             int
	caFile, serverName       string
	minVersion               uint16
	certFile, keyFile        string
	caPEM, clientCert, clKey string
	auth                     *OAuth2
	retries                  int
	runOnStart               bool
	metrics                  string
}

// flowDef returns a FlowDef equal to d, shared with every earlier equal
// one.
func (in *interns) flowDef(d *FlowDef) *FlowDef {
	h := &d.HTTP
	k := flowDefKey{
		description: d.Description,
		schedule:    d.Schedule, timeout: d.Timeout,
		bodyLimit: h.BodyLimit, keepResponse: h.KeepResponse,
		follow: h.FollowRedirects, insecure: h.InsecureSkipVerify, maxRedirects: h.MaxRedirects,
		caFile: h.CAFile, serverName: h.ServerName, minVersion: h.MinVersion, certFile: h.ClientCertFile, keyFile: h.ClientKeyFile,
		caPEM: string(h.CAPEM), clientCert: string(h.ClientCert), clKey: string(h.ClientKey),
		auth:    h.Auth,
		retries: d.Retries, runOnStart: d.RunOnStart, metrics: d.Metrics,
	}
	return share(&in.flowDefs, k, d)
}

// stepDefKey identifies a StepDef whose lists, Until and Retry are shared:
// a shared list by its first element's address and its length.
type stepDefKey struct {
	name, dependency, kind, method  string
	timeout                         time.Duration
	expect                          **assert.Expectation
	nexpect                         int
	until                           *Until
	retry                           *Retry
	captures                        *Capture
	ncaptures                       int
	cleanup, statusChecked, readsAt bool
}

// stepDef returns a StepDef equal to d, shared with every earlier equal
// one.
func (in *interns) stepDef(d *StepDef) *StepDef {
	k := stepDefKey{
		name: d.Name, dependency: d.Dependency, kind: d.Kind, method: d.Method,
		timeout: d.Timeout,
		expect:  first(d.Expect), nexpect: len(d.Expect),
		until: d.Until, retry: d.Retry,
		captures: first(d.Captures), ncaptures: len(d.Captures),
		cleanup: d.Cleanup, statusChecked: d.StatusChecked, readsAt: d.ReadsAttrs,
	}
	return share(&in.defs, k, d)
}

type untilKey struct {
	expect           **assert.Expectation
	nexpect          int
	interval, within time.Duration
}

// until returns an Until equal to u, shared with every earlier equal one.
func (in *interns) until(u *Until) *Until {
	if u == nil {
		return nil
	}
	u.Expect = list(in, u.Expect, ptrID)
	k := untilKey{first(u.Expect), len(u.Expect), u.Interval, u.Within}
	return share(&in.untils, k, u)
}

// retry returns a Retry equal to r, shared with every earlier equal one.
func (in *interns) retry(r *Retry) *Retry {
	if r == nil {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d,%d,%d,%t", r.Attempts, r.Backoff, r.MaxBackoff, r.NonIdempotent)
	for _, c := range r.On {
		fmt.Fprintf(&b, ";%s", c) // class names hold no ';'
	}
	key := b.String()
	r.On = slices.Clip(r.On)
	return share(&in.retries, key, r)
}

// first is the address of xs's first element, nil when it has none: with
// its length, the identity of a shared list.
func first[T any](xs []T) *T {
	if len(xs) == 0 {
		return nil
	}
	return &xs[0]
}

// share returns the value m holds for k, or puts v there and returns it:
// the first of equal values serves every later one.
func share[K comparable, V any](m *map[K]V, k K, v V) V {
	if c, ok := (*m)[k]; ok {
		return c
	}
	if *m == nil {
		*m = map[K]V{}
	}
	(*m)[k] = v
	return v
}
