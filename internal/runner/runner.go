// Package runner executes one run of a flow: expands each step's request,
// stamps it with W3C trace context and the synthetic markers, sends it,
// times its phases, reads the body up to a cap, checks expectations, stores
// captures and classifies any failure, producing a result.Run. It knows
// nothing of schedules, metrics or alerts.
package runner

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
	"github.com/prober-dev/prober/internal/template"
)

// Header names the prober sets on every request so the system under test can
// recognise, route and filter synthetic traffic.
const (
	HeaderSynthetic = "X-Prober-Synthetic" // "true"
	HeaderFlow      = "X-Prober-Flow"
	HeaderRegion    = "X-Prober-Region"
	// TraceState marks the trace as synthetic for tracing backends.
	TraceState = "prober=synthetic"
)

// Options are shared by every flow of a prober.
type Options struct {
	Version string // for User-Agent: prober/<version>
	Region  string
	Secrets *secret.Set
	// DialContext replaces the network dialer (tests use it to inject faults).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Transports, when set, is shared by the flows of a prober: runs of
	// flows with the same TLS settings draw their HTTP transport from one
	// pool instead of each flow holding its own (see Transports).
	Transports *Transports
	// Verbose, when set, is shown every request of a run and its whole
	// response, redacted, as each attempt ends (`once --verbose`).
	Verbose func(step string, attempt int, req *result.Sent, resp *result.Response)
	// ShowCaptures records each value a step captured as its attribute
	// "capture NAME", redacted and shortened (`once`: what the next step
	// will send). Off in the daemon: a captured token would otherwise be
	// kept with every run and shown on the run page.
	ShowCaptures bool
	// Sampled, when set, says whether the run of a trace id is exported
	// as spans (the tracer's sampling): its requests' traceparent then
	// carries that as the sampled flag (00 when not), so a backend that
	// samples by its parent keeps no spans hanging from a run prober never
	// exported. Unset (tracing off): every traceparent says sampled.
	Sampled func(traceID string) bool
}

// Transports pools HTTP transports across flows. A run takes a transport
// when it starts and gives it back when it ends, its connections closed:
// every run still begins with no connection (DNS, connect and TLS measured
// each run), but 10,000 flows share as many transports as there are runs
// in flight, not 10,000 (about 4 KB each once used). Safe for concurrent
// use; the zero value is not: use NewTransports.
type Transports struct {
	mu    sync.Mutex
	pools map[tlsKey]*transportPool
	// brotli bounds the windows of the br bodies decoded at once by the
	// flows sharing these transports.
	brotli *brotliWindows
	// opts: the last flows' options (optsFor). Guarded by mu.
	opts *flowOpts
}

// NewTransports returns an empty set of pools whose flows' br decoders
// hold at most DefaultBrotliWindows of windows at once.
func NewTransports() *Transports { return NewTransportsLimited(DefaultBrotliWindows) }

// NewTransportsLimited is NewTransports with brotliWindows bytes for the
// windows of the br bodies its flows decode at once (a decode waits for
// its share within the step's timeout).
func NewTransportsLimited(brotliWindows int64) *Transports {
	return &Transports{pools: map[tlsKey]*transportPool{}, brotli: newBrotliWindows(brotliWindows)}
}

// flowOpts are the Options of flows and what follows from them.
type flowOpts struct {
	Options
	userAgent string // prober/<version>
}

func newFlowOpts(o Options) *flowOpts { return &flowOpts{Options: o, userAgent: "prober/" + o.Version} }

// optsFor is the flowOpts of o: the last one made if its Options equal o
// (the flows of one configuration are made one after the other with the
// same Options), else a new one.
func (t *Transports) optsFor(o Options) *flowOpts {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.opts; p != nil && sameOptions(p.Options, o) {
		return p
	}
	t.opts = newFlowOpts(o)
	return t.opts
}

// sameOptions: a and b are the same options, their funcs the same values.
func sameOptions(a, b Options) bool {
	return a.Version == b.Version && a.Region == b.Region && a.Secrets == b.Secrets && a.Transports == b.Transports &&
		a.ShowCaptures == b.ShowCaptures && sameFunc(a.DialContext, b.DialContext) &&
		sameFunc(a.Verbose, b.Verbose) && sameFunc(a.Sampled, b.Sampled)
}

// sameFunc: a and b are the same func value, or both nil. Not merely the
// same code: two closures of one function, over other variables, differ.
// A func value is a pointer to its closure; Go has no == for funcs.
func sameFunc[F any](a, b F) bool {
	return *(*unsafe.Pointer)(unsafe.Pointer(&a)) == *(*unsafe.Pointer)(unsafe.Pointer(&b))
}

// tlsKey is what makes transports interchangeable: the TLS settings.
type tlsKey struct {
	serverName string
	insecure   bool
	minVersion uint16
	caPEM      string
	clientCert string // the certificate's and key's PEM: flows with other certificates share no connection
}

func (t *Transports) pool(k tlsKey, mk func() (*transportPool, error)) (*transportPool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pools[k]
	if p == nil {
		var err error
		if p, err = mk(); err != nil {
			return nil, err
		}
		t.pools[k] = p
	}
	return p, nil
}

// transportPool is a free list of transports with the same settings.
type transportPool struct {
	mu   sync.Mutex
	free []*http.Transport
	tls  *tls.Config
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// maxFreeTransports bounds the idle transports a pool keeps: more runs in
// flight than that allocate transports that are dropped after the run.
const maxFreeTransports = 64

func (p *transportPool) get() *http.Transport {
	p.mu.Lock()
	var t *http.Transport
	if n := len(p.free); n > 0 {
		t, p.free = p.free[n-1], p.free[:n-1]
	}
	p.mu.Unlock()
	if t == nil {
		return &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DialContext:            p.dial,
			TLSClientConfig:        p.tls.Clone(), // HTTP/2 set-up edits it: one each
			ForceAttemptHTTP2:      true,          // a custom TLS config disables HTTP/2 otherwise
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 256 << 10,
			ExpectContinueTimeout:  time.Second,
		}
	}
	// A dial that a cancelled request started may have finished since
	// the last run gave t back, and parked its connection: not this run's.
	t.CloseIdleConnections()
	return t
}

// put takes t back after a run: its connections are closed, as a run's
// end closes what the run opened.
func (p *transportPool) put(t *http.Transport) {
	t.CloseIdleConnections()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < maxFreeTransports {
		p.free = append(p.free, t)
	}
}

func (p *transportPool) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.free {
		t.CloseIdleConnections()
	}
}

// Flow runs one configured flow. Runs of one Flow must not overlap (the
// scheduler guarantees it); different Flows run concurrently.
type Flow struct {
	cfg *config.Flow
	// opts are shared by the flows made with equal Options and the same
	// Transports (see Transports.optsFor): 10,000 flows held a copy each
	// (144 of a Flow's 160 bytes).
	opts       *flowOpts
	transports *transportPool
	// more is what few flows have: nil for a flow with neither auth: nor
	// a step with TLS settings of its own.
	more *flowMore
}

// flowMore is what few flows have (Flow.more).
type flowMore struct {
	auth *tokenCache // the flow's OAuth2 token, or nil
	// stepTransports are the pools of HTTP steps with a tls: block of
	// their own (other settings than the flow's), or nil.
	stepTransports map[*config.HTTPSpec]*transportPool
}

// auth is the flow's OAuth2 token cache, or nil.
func (f *Flow) auth() *tokenCache {
	if f.more == nil {
		return nil
	}
	return f.more.auth
}

// New prepares f for running: builds its transport (TLS roots, redirect
// policy) once so runs only pay for what changes per run.
//
// With Options.Transports (the daemon), a flow whose settings are another's
// allocates only its Flow: its pool and options are found, not made and
// dropped (10,000 flows made 10,000 TLS configs, dialers and maps of
// garbage at every load).
func New(f *config.Flow, o Options) (*Flow, error) {
	var dial func(context.Context, string, string) (net.Conn, error) // made with the first pool that needs it
	flowKey := keyOf(&f.HTTP)
	pool, err := transportsFor(f, &f.HTTP, flowKey, o, &dial)
	if err != nil {
		return nil, err
	}
	var opts *flowOpts
	if o.Transports != nil {
		opts = o.Transports.optsFor(o)
	} else {
		opts = newFlowOpts(o)
	}
	fl := &Flow{cfg: f, opts: opts, transports: pool}
	if f.HTTP.Auth != nil {
		fl.more = &flowMore{auth: newTokenCache(f.HTTP.Auth, o.Secrets)}
	}
	var own map[tlsKey]*transportPool // steps of one flow with the same settings share a pool
	for _, steps := range [2][]*config.Step{f.Steps, f.Cleanup} {
		for _, st := range steps {
			h, ok := st.Spec.(*config.HTTPSpec)
			if !ok || h.TLS == nil {
				continue
			}
			key := keyOf(h.TLS)
			if key == flowKey {
				continue
			}
			p := own[key]
			if p == nil {
				if p, err = transportsFor(f, h.TLS, key, o, &dial); err != nil {
					return nil, fmt.Errorf("step %s: %w", st.Name, err)
				}
				if own == nil {
					own = map[tlsKey]*transportPool{}
				}
				own[key] = p
			}
			if fl.more == nil {
				fl.more = &flowMore{}
			}
			if fl.more.stepTransports == nil {
				fl.more.stepTransports = map[*config.HTTPSpec]*transportPool{}
			}
			fl.more.stepTransports[h] = p
		}
	}
	return fl, nil
}

// keyOf is the TLS settings of h as a pool key.
func keyOf(h *config.HTTPOptions) tlsKey {
	return tlsKey{h.ServerName, h.InsecureSkipVerify, h.MinVersion, string(h.CAPEM), string(h.ClientCert) + string(h.ClientKey)}
}

// transportsFor returns the transport pool for the TLS settings of h (key):
// the prober's shared one (Options.Transports), made if new, else a new
// one. *dial is the network dialer of the pools made, made if nil.
func transportsFor(f *config.Flow, h *config.HTTPOptions, key tlsKey, o Options, dial *func(context.Context, string, string) (net.Conn, error)) (*transportPool, error) {
	mk := func() (*transportPool, error) { return newTransportPool(f, h, o, dial) }
	if o.Transports != nil && o.DialContext == nil { // a dialer of its own: a pool of its own
		return o.Transports.pool(key, mk)
	}
	return mk()
}

// probeDialer dials a run's connections. Without TCP keep-alive: a run's
// connection lives for that run, which its timeout bounds, so a keep-alive
// probe (after 15 s idle at the least) would never be sent, and setting it
// up is four setsockopt calls a connection (setsockopt was 4% of a CPU
// profile at the prober's maximum rate).
func probeDialer() *net.Dialer { return &net.Dialer{KeepAlive: -1} }

// newTransportPool makes a pool of transports with the TLS settings of h.
func newTransportPool(f *config.Flow, h *config.HTTPOptions, o Options, dial *func(context.Context, string, string) (net.Conn, error)) (*transportPool, error) {
	if *dial == nil {
		*dial = o.DialContext
		if *dial == nil {
			*dial = probeDialer().DialContext
		}
	}
	minVersion := h.MinVersion
	if minVersion == 0 {
		minVersion = tls.VersionTLS12
	}
	tlsConf := &tls.Config{
		MinVersion:         minVersion,
		ServerName:         h.ServerName,
		InsecureSkipVerify: h.InsecureSkipVerify, //nolint:gosec // explicit, named opt-in per flow or step
	}
	if len(h.CAPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(h.CAPEM) {
			return nil, fmt.Errorf("flow %s: ca_file %s: no PEM certificates", f.Name, h.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	if len(h.ClientCert) > 0 {
		c, err := tls.X509KeyPair(h.ClientCert, h.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("flow %s: client_cert %s: %w", f.Name, h.ClientCertFile, err)
		}
		tlsConf.Certificates = []tls.Certificate{c}
	}
	return &transportPool{tls: tlsConf, dial: *dial}, nil
}

// Config returns the flow's configuration.
func (f *Flow) Config() *config.Flow { return f.cfg }

// Close releases idle connections (runs close theirs when they end).
func (f *Flow) Close() {
	f.transports.closeIdle()
	if f.more != nil {
		for _, p := range f.more.stepTransports {
			p.closeIdle()
		}
	}
}

// run is the state of one run in progress.
type run struct {
	f      *Flow
	res    *result.Run
	scope  scope
	client http.Client
	// stepClients are the clients of steps with TLS settings of their own,
	// by pool: made when such a step first runs, sharing the run's cookie
	// jar; their transports go back at the run's end.
	stepClients map[*transportPool]*http.Client
	timing      *timing
	// saysError memoizes bodySaysError for the response being evaluated:
	// 0 unknown, 1 yes, -1 no.
	saysError int8
	resp      assert.Response
	buf       *[]byte // the body of the last response, reused across steps
	url       []byte  // scratch for template expansion
	step      *config.Step
	redacts   bool
	// main bounds the main steps (the flow's timeout), cleanup the
	// cleanup steps (the run's context only); flow is the step in
	// progress's (kinds' Classify).
	main, cleanup bound
	flow          *bound
	noted         noted      // the last HTTP response, for keep
	cookies       cookieView // the HTTP response's cookies (resp.Cookies points here)
	// x and xs are the attempt in progress's Exchange and the step it
	// fills: the Exchange escapes (an interface call), so the run holds
	// them rather than each attempt allocating them.
	x  Exchange
	xs result.Step
	// prep and spec are the HTTP step in progress's request, expanded once
	// for all its attempts, and its spec (the redirect policy).
	prep      *prepared
	prepStore prepared // what prep points to: one allocation less a step
	spec      *config.HTTPSpec
	jar       runJar
	// secrets are what the run redacts: the configured secrets, and once
	// fetched the flow's OAuth2 token (token), sent on its HTTP steps; a
	// failure to get it is kept (tokenClass, tokenMsg) for the run's
	// later steps.
	secrets    *secret.Set
	token      string
	tokenClass result.Class
	tokenMsg   string
	// first is the step in progress's first attempt, logged in the step
	// only when a second one follows (see logAttempt).
	first result.Attempt
	// states are the RunScoped kinds' states, closed when the run ends.
	states []runState
	// unsampled: the run is not exported (Options.Sampled), and its
	// traceparents say so.
	unsampled bool
	// outSet redacts what failures and --verbose show (redactOut): the
	// secrets (outBase) and the outSeen cookie values the jar was set.
	outSet  *secret.Set
	outBase *secret.Set
	outSeen int
}

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// runPool keeps the state of ended runs for the next: a run's state is
// about 1.5 KB and its client, both allocated at every run otherwise.
// Nothing refers to a run once Run returns (the Exchange is valid during
// Execute only; the timing hooks, which dials a run gave up on may call
// later, are the run's own and not reused).
var runPool = sync.Pool{New: func() any {
	r := new(run)
	r.client.CheckRedirect = r.checkRedirect // bound once: the run is reused
	return r
}}

// release clears r and puts it back in runPool, keeping its client's
// redirect policy and the scratch memory of a size worth keeping.
func (r *run) release() {
	checkRedirect, url, captures := r.client.CheckRedirect, r.url[:0], r.scope.captures
	clear(captures) // the values are the run's
	if cap(url) > 4<<10 {
		url = nil
	}
	if cap(captures) > 16 {
		captures = nil
	}
	*r = run{url: url}
	r.client.CheckRedirect, r.scope.captures = checkRedirect, captures[:0]
	runPool.Put(r)
}

// Run executes the flow once. planned is when the scheduler meant it to start
// (zero for an ad-hoc run). The context bounds the whole run including
// cleanup; the flow's timeout bounds the main steps.
func (f *Flow) Run(ctx context.Context, planned time.Time) *result.Run {
	start := time.Now()
	traceID := newTraceID()
	res := &result.Run{
		ID:      newSpanID(),
		Flow:    f.cfg.Name,
		Region:  f.opts.Region,
		Labels:  f.cfg.Labels,
		TraceID: traceID,
		Planned: planned,
		Start:   start,
		Status:  result.Passed,
		Class:   result.OK,
		Steps:   make([]result.Step, 0, len(f.cfg.Steps)+len(f.cfg.Cleanup)),
	}
	if planned.IsZero() {
		res.Planned = start
	}
	r := runPool.Get().(*run)
	r.f, r.res = f, res
	r.scope = scope{
		vars: f.cfg.Vars, secrets: f.opts.Secrets, captures: r.scope.captures,
		flow: f.cfg.Name, region: f.opts.Region, runID: res.ID,
		traceID: traceID, startUnixMS: start.UnixMilli(),
	}
	r.timing = newTiming() // never reused: a dial a run gave up on may still call its hooks
	r.buf = bufPool.Get().(*[]byte)
	r.redacts, r.secrets = f.opts.Secrets.Len() > 0, f.opts.Secrets
	r.unsampled = f.opts.Sampled != nil && !f.opts.Sampled(traceID)
	r.resp.Vars = &r.scope // expectations' {{name}}: vars, captures, built-ins (never secrets)
	// Each run starts with fresh connections, as a new user would, so DNS,
	// connect and TLS are measured every run: a transport of its own, given
	// back with its connections closed.
	tr := f.transports.get()
	r.client.Transport, r.client.Jar = tr, &r.jar
	defer func() {
		r.closeStates()
		if cap(*r.buf) <= 4<<20 { // don't let one huge body pin memory in the pool
			*r.buf = (*r.buf)[:0]
			bufPool.Put(r.buf)
		}
		f.transports.put(tr)
		for p, c := range r.stepClients {
			p.put(c.Transport.(*http.Transport))
		}
		r.release()
	}()

	// The phases of every HTTP attempt go to the run's timing: the hooks
	// are put in the run's context once, not in each attempt's (five
	// allocations each).
	ctx = httptrace.WithClientTrace(ctx, r.timing.trace)
	r.main = bound{parent: ctx, deadline: start.Add(f.cfg.Timeout)}
	failed := false
	for _, st := range f.cfg.Steps {
		if failed {
			skippedStep(next(res), st, "an earlier step failed")
			continue
		}
		s := next(res)
		r.runStep(&r.main, st, s)
		r.keep(s)
		if s.Status == result.Failed {
			failed = true
			res.Status, res.Class, res.FailedStep = result.Failed, s.Class, s.Name
		}
	}
	r.main.close()
	res.Duration = time.Since(start)

	// Cleanup runs whatever happened, each step under its own timeout, but
	// only when what it needs was captured (no order to cancel if none was made).
	for _, st := range f.cfg.Cleanup {
		if missing := r.missingVar(st); missing != "" {
			skippedStep(next(res), st, fmt.Sprintf("variable %q was never captured", missing))
			continue
		}
		r.cleanup = bound{parent: ctx}
		s := next(res)
		r.runStep(&r.cleanup, st, s)
		r.keep(s)
	}
	return res
}

// next appends a zero step to res and returns it, to be filled in place:
// a result.Step is some 330 bytes, and each copy of one the run's stack
// holds (returned, passed, appended) grew the stack the runtime copies
// as it grows. Steps has room for every step of the flow.
func next(res *result.Run) *result.Step {
	res.Steps = append(res.Steps, result.Step{})
	return &res.Steps[len(res.Steps)-1]
}

func skippedStep(s *result.Step, st *config.Step, why string) {
	*s = result.Step{
		Name: st.Name, Dependency: st.Dependency, Cleanup: st.Cleanup, Method: st.Method, Kind: st.Kind,
		Status: result.Skipped, Class: result.OK,
		Failures: []result.Failure{{Message: "skipped: " + why}},
	}
}

// missingVar returns the first variable a step references that the run has
// no value for, or "".
func (r *run) missingVar(st *config.Step) string {
	check := func(t *template.Template) string {
		for _, ref := range t.Refs() {
			if ref.Secret {
				continue
			}
			if _, ok := r.scope.Var(ref.Name); !ok {
				return ref.Name
			}
		}
		return ""
	}
	for _, t := range st.Templates {
		if m := check(t); m != "" {
			return m
		}
	}
	return ""
}

func (r *run) redact(s string) string {
	if !r.redacts {
		return s
	}
	return r.secrets.Redact(s)
}

// runStep runs one step into s, polling when it has an until clause.
func (r *run) runStep(b *bound, st *config.Step, s *result.Step) {
	r.step = st
	spanID := newSpanID()
	*s = result.Step{
		Name: st.Name, Dependency: st.Dependency, Cleanup: st.Cleanup,
		SpanID: spanID, Method: st.Method, Kind: st.Kind, Start: time.Now(),
	}
	exec := executor(st.Spec)
	if _, isHTTP := exec.(*httpStep); isHTTP && r.f.auth() != nil {
		if class, msg := r.bearer(b.context(), st); class != "" {
			s.Duration = time.Since(s.Start)
			r.fail(s, class, r.redactOut(msg))
			return
		}
	}
	p, prepares := exec.(preparer)
	if prepares {
		x := r.exchange(st, s)
		class, msg := p.prepare(x)
		r.done(s)
		if class != "" {
			r.fail(s, class, r.redactOut(msg))
			return
		}
	}

	// limit is when retries must be done: the step's share of the flow
	// timeout (cleanup steps have none other), or until's within.
	limit := s.Start.Add(r.f.cfg.Timeout)
	var deadline time.Time
	if st.Until != nil {
		deadline = s.Start.Add(st.Until.Within)
		limit = deadline
	}
	var (
		class    result.Class
		msg      string
		note     string
		untilBad []assert.Failure
	)
	for {
		class, msg, note = r.try(b, st, exec, s, limit)
		if note != "" {
			break // the server asked for more time than is left
		}
		if !prepares && (class == result.CaptureMissing || class == result.Request) {
			break // expanding failed: another attempt would too
		}
		if st.Until == nil {
			break
		}
		if class == "" {
			untilBad = untilBad[:0]
			for _, e := range st.Until.Expect {
				if f, ok := e.Check(&r.resp); !ok {
					untilBad = append(untilBad, f)
				}
			}
			if len(untilBad) == 0 {
				break
			}
		}
		// A poll answered 429 or 503 with Retry-After waits as asked.
		wait := st.Until.Interval
		if ra, ok := r.retryAfter(time.Now()); ok {
			wait = max(wait, ra)
		}
		if time.Now().Add(wait).After(deadline) || !sleep(b.context(), wait) {
			break
		}
	}
	s.Duration = time.Since(s.Start)
	if _, isHTTP := exec.(*httpStep); isHTTP && r.token != "" && r.resp.Status == http.StatusUnauthorized &&
		r.prep.header.Get("Authorization") == "Bearer "+r.token {
		r.f.auth().forget(r.token) // refused before it expired: the next run gets another
	}
	if note != "" {
		// First, so that it is the step's message: why it stopped early.
		s.Failures = append(s.Failures, result.Failure{Message: r.redactOut(note)})
	}
	if class != "" {
		r.fail(s, class, r.redactOut(msg))
		return
	}
	s.HTTPStatus = r.resp.Status
	r.evaluate(st, s, untilBad)
}

// prepareClass classifies a failure to build a step's request.
func prepareClass(err error) result.Class {
	var miss *template.MissingError
	if errors.As(err, &miss) {
		return result.CaptureMissing
	}
	return result.Request
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (r *run) fail(s *result.Step, class result.Class, msg string) {
	if s.Duration == 0 {
		s.Duration = time.Since(s.Start)
	}
	s.Status, s.Class = result.Failed, class
	s.Failures = append(s.Failures, result.Failure{Message: msg})
}

// evaluate checks the response against the step's status policy,
// expectations and captures, and classifies the first failure.
func (r *run) evaluate(st *config.Step, s *result.Step, untilBad []assert.Failure) {
	status := r.resp.Status
	r.saysError = 0 // this step's last response is read afresh
	var class result.Class
	add := func(c result.Class, f result.Failure) {
		if class == "" {
			class = c
		}
		s.Failures = append(s.Failures, f)
	}
	if !st.StatusChecked && status >= 400 {
		add(StatusClass(status), result.Failure{
			Expectation: "status < 400", Actual: fmt.Sprint(status),
			Message: fmt.Sprintf("status %d (without a status expectation, 4xx and 5xx fail)", status),
		})
	}
	for _, f := range untilBad {
		f.Message = fmt.Sprintf("until %s (not met within %s, %d attempts)", f.Message, st.Until.Within, s.Attempts)
		add(untilClass(r.failureClass(f)), r.toFailure(f))
	}
	// Status failures name the class even if a body expectation came first.
	var rest []assert.Failure
	for _, e := range st.Expect {
		f, ok := e.Check(&r.resp)
		if ok {
			continue
		}
		if f.Source&assert.SourceStatus != 0 {
			add(r.failureClass(f), r.toFailure(f))
			continue
		}
		rest = append(rest, f)
	}
	for _, f := range rest {
		add(r.failureClass(f), r.toFailure(f))
	}
	// Captures are taken even from a failed step: cleanup may need them (an
	// order was created even if its amount was wrong).
	for _, c := range st.Captures {
		v, err := c.Value.Eval(&r.resp)
		if err != nil {
			cls := result.CaptureMissing
			var ee *assert.EvalError
			if errors.As(err, &ee) && ee.Cause == assert.InvalidJSON {
				cls = result.InvalidJSON
			}
			add(cls, result.Failure{Expectation: "capture " + c.Name, Message: r.redactOut("capture " + c.Name + ": " + err.Error())})
			continue
		}
		r.scope.capture(c.Name, v)
		if r.f.opts.ShowCaptures {
			s.Attrs = append(s.Attrs, result.Attr{Name: "capture " + c.Name, Value: shownCapture(r.redactOut(v))})
		}
	}
	if class == "" {
		s.Status, s.Class = result.Passed, result.OK
		return
	}
	s.Status, s.Class = result.Failed, class
}

// clientFor is the HTTP client a step sends with: the run's, or for a
// step with TLS settings of its own one on a transport with those, taken
// for the rest of the run (later steps with the same settings reuse its
// connections, as the flow's steps reuse the run's).
func (r *run) clientFor(h *config.HTTPSpec) *http.Client {
	var p *transportPool
	if r.f.more != nil {
		p = r.f.more.stepTransports[h]
	}
	if p == nil {
		return &r.client
	}
	if c := r.stepClients[p]; c != nil {
		return c
	}
	if r.stepClients == nil {
		r.stepClients = map[*transportPool]*http.Client{}
	}
	c := &http.Client{Transport: p.get(), Jar: r.client.Jar, CheckRedirect: r.checkRedirect}
	r.stepClients[p] = c
	return c
}

// shownCapture is a captured value as once shows it: quoted (an empty or
// spaced value is visible as such) and cut after maxShownCapture bytes.
func shownCapture(v string) string {
	const maxShownCapture = 120
	if len(v) <= maxShownCapture {
		return strconv.Quote(v)
	}
	cut := maxShownCapture
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(v[:cut]), len(v))
}

// StatusClass is the class of a response failed for its status alone.
func StatusClass(status int) result.Class {
	switch {
	case status == http.StatusTooManyRequests:
		return result.HTTP429
	case status >= 500:
		return result.HTTP5xx
	case status >= 400:
		return result.HTTP4xx
	}
	return result.Assertion
}

// failureClass classifies a failed expectation of this run's response,
// reading its body for an error (bodySaysError) at most once per step.
func (r *run) failureClass(f assert.Failure) result.Class {
	return failureClass(&r.resp, f, r.bodySaysError)
}

func (r *run) bodySaysError() bool {
	if r.saysError == 0 {
		r.saysError = -1
		if bodySaysError(r.resp.Body) {
			r.saysError = 1
		}
	}
	return r.saysError > 0
}

// FailureClass classifies a failed expectation of a response. A 2xx whose
// body says it failed (an error, a failure, a job still pending, in a
// status-like field: see bodySaysError) is a swallowed error: the server
// said "fine" and meant "failed". Any other value that differs (a wrong
// price, a count) is an assertion. Exported so that runs made up
// elsewhere (the alert-quality suite's) are classed exactly as real ones.
func FailureClass(resp *assert.Response, f assert.Failure) result.Class {
	return failureClass(resp, f, func() bool { return bodySaysError(resp.Body) })
}

func failureClass(resp *assert.Response, f assert.Failure, saysError func() bool) result.Class {
	status := resp.Status
	switch {
	case f.Cause == assert.InvalidJSON:
		if status >= 400 {
			return StatusClass(status)
		}
		return result.InvalidJSON
	case f.Source&assert.SourceStatus != 0:
		return StatusClass(status)
	case status >= 400:
		return StatusClass(status)
	case f.Source&(assert.SourceJSON|assert.SourceBody) != 0 && status >= 200 && status < 300 && saysError():
		return result.SwallowedError
	}
	return result.Assertion
}

// UntilClass classifies an until condition still false when within ran
// out: timeout (the awaited state did not come in time), unless the last
// response is classed by its status or a body that is not JSON.
func UntilClass(resp *assert.Response, f assert.Failure) result.Class {
	return untilClass(FailureClass(resp, f))
}

func untilClass(c result.Class) result.Class {
	switch c {
	case result.SwallowedError, result.Assertion:
		return result.Timeout
	default:
		return c
	}
}

func (r *run) toFailure(f assert.Failure) result.Failure {
	return result.Failure{Expectation: f.Expectation, Actual: r.redactOut(f.Actual), Message: r.redactOut(f.Message)}
}
