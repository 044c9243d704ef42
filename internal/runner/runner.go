// Package runner executes one run of a flow: expands each step's request,
// stamps it with W3C trace context and the synthetic markers, sends it,
// times its phases, reads the body up to a cap, checks expectations, stores
// captures and classifies any failure, producing a result.Run. It knows
// nothing of schedules, metrics or alerts.
package runner

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/url"
	"sync"
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/certinfo"
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
}

// NewTransports returns an empty set of pools.
func NewTransports() *Transports { return &Transports{pools: map[tlsKey]*transportPool{}} }

// tlsKey is what makes transports interchangeable: the TLS settings.
type tlsKey struct {
	serverName string
	insecure   bool
	caPEM      string
}

func (t *Transports) pool(k tlsKey, mk func() *transportPool) *transportPool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pools[k]
	if p == nil {
		p = mk()
		t.pools[k] = p
	}
	return p
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
	cfg        *config.Flow
	opts       Options
	userAgent  string
	transports *transportPool
}

// New prepares f for running: builds its transport (TLS roots, redirect
// policy) once so runs only pay for what changes per run.
func New(f *config.Flow, o Options) (*Flow, error) {
	tlsConf := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         f.HTTP.ServerName,
		InsecureSkipVerify: f.HTTP.InsecureSkipVerify, //nolint:gosec // explicit, named opt-in per flow
	}
	if len(f.HTTP.CAPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(f.HTTP.CAPEM) {
			return nil, fmt.Errorf("flow %s: ca_file %s: no PEM certificates", f.Name, f.HTTP.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	dial := o.DialContext
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	mk := func() *transportPool { return &transportPool{tls: tlsConf, dial: dial} }
	var pool *transportPool
	if o.Transports != nil && o.DialContext == nil { // a dialer of its own: a pool of its own
		pool = o.Transports.pool(tlsKey{f.HTTP.ServerName, f.HTTP.InsecureSkipVerify, string(f.HTTP.CAPEM)}, mk)
	} else {
		pool = mk()
	}
	return &Flow{cfg: f, opts: o, userAgent: "prober/" + o.Version, transports: pool}, nil
}

// Config returns the flow's configuration.
func (f *Flow) Config() *config.Flow { return f.cfg }

// Close releases idle connections (runs close theirs when they end).
func (f *Flow) Close() { f.transports.closeIdle() }

// run is the state of one run in progress.
type run struct {
	f       *Flow
	res     *result.Run
	scope   scope
	client  *http.Client
	timing  *timing
	resp    assert.Response
	buf     *[]byte // the body of the last response, reused across steps
	url     []byte  // scratch for template expansion
	step    *config.Step
	redacts bool
	flowCtx context.Context // the context of the step in progress (kinds' Classify)
	noted   noted           // the last HTTP response, for keep
}

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

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
	jar, _ := cookiejar.New(nil) // never fails without options
	r := &run{
		f:   f,
		res: res,
		scope: scope{
			vars: f.cfg.Vars, secrets: f.opts.Secrets,
			flow: f.cfg.Name, region: f.opts.Region, runID: res.ID,
			idemKey: newUUID(), traceID: traceID, startUnixMS: start.UnixMilli(),
		},
		timing:  newTiming(),
		buf:     bufPool.Get().(*[]byte),
		redacts: f.opts.Secrets.Len() > 0,
	}
	// Each run starts with fresh connections, as a new user would, so DNS,
	// connect and TLS are measured every run: a transport of its own, given
	// back with its connections closed.
	tr := f.transports.get()
	r.client = &http.Client{Transport: tr, Jar: jar, CheckRedirect: r.checkRedirect}
	defer func() {
		if cap(*r.buf) <= 4<<20 { // don't let one huge body pin memory in the pool
			*r.buf = (*r.buf)[:0]
			bufPool.Put(r.buf)
		}
		f.transports.put(tr)
	}()

	mainCtx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	failed := false
	for _, st := range f.cfg.Steps {
		if failed {
			res.Steps = append(res.Steps, skippedStep(st, "an earlier step failed"))
			continue
		}
		s := r.keep(r.runStep(mainCtx, st))
		res.Steps = append(res.Steps, s)
		if s.Status == result.Failed {
			failed = true
			res.Status, res.Class, res.FailedStep = result.Failed, s.Class, s.Name
		}
	}
	cancel()
	res.Duration = time.Since(start)

	// Cleanup runs whatever happened, each step under its own timeout, but
	// only when what it needs was captured (no order to cancel if none was made).
	for _, st := range f.cfg.Cleanup {
		if missing := r.missingVar(st); missing != "" {
			res.Steps = append(res.Steps, skippedStep(st, fmt.Sprintf("variable %q was never captured", missing)))
			continue
		}
		res.Steps = append(res.Steps, r.keep(r.runStep(ctx, st)))
	}
	return res
}

func skippedStep(st *config.Step, why string) result.Step {
	return result.Step{
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
	ts := append([]*template.Template{st.URL, st.Body.Template}, st.Templates...)
	for _, h := range st.Headers {
		ts = append(ts, h.Value)
	}
	for _, p := range st.Query {
		ts = append(ts, p.Value)
	}
	for _, p := range st.Body.Form {
		ts = append(ts, p.Value)
	}
	if st.BasicAuth != nil {
		ts = append(ts, st.BasicAuth.User, st.BasicAuth.Password)
	}
	for _, t := range ts {
		if m := check(t); m != "" {
			return m
		}
	}
	return ""
}

func (r *run) checkRedirect(req *http.Request, via []*http.Request) error {
	if !r.step.FollowRedirects {
		return http.ErrUseLastResponse
	}
	if len(via) > r.f.cfg.HTTP.MaxRedirects {
		return fmt.Errorf("%w: stopped after %d", errTooManyRedirects, r.f.cfg.HTTP.MaxRedirects)
	}
	// The scheme only, never the URL: it may carry what the server echoed.
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("%w %q (want http or https)", errRedirectScheme, req.URL.Scheme)
	}
	return nil
}

// prepared is a step's request, expanded once and sent once per attempt.
type prepared struct {
	method string
	url    string
	header http.Header
	body   []byte
}

func (r *run) prepare(st *config.Step, spanID string) (*prepared, error) {
	var err error
	r.url, err = st.URL.Expand(r.url[:0], &r.scope)
	if err != nil {
		return nil, err
	}
	u := string(r.url)
	if len(st.Query) > 0 {
		pu, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("bad URL %q: %w", r.redact(u), err)
		}
		q := pu.Query()
		for _, p := range st.Query {
			v, err := p.Value.ExpandString(&r.scope)
			if err != nil {
				return nil, err
			}
			q.Add(p.Name, v)
		}
		pu.RawQuery = q.Encode()
		u = pu.String()
	}
	p := &prepared{method: st.Method, url: u, header: make(http.Header, len(st.Headers)+6)}
	for _, h := range st.Headers {
		v, err := h.Value.ExpandString(&r.scope)
		if err != nil {
			return nil, err
		}
		p.header[h.Name] = []string{v}
	}
	switch st.Body.Kind {
	case config.JSONBody, config.RawBody:
		p.body, err = st.Body.Template.Expand(nil, &r.scope)
		if err != nil {
			return nil, err
		}
	case config.FormBody:
		form := make(url.Values, len(st.Body.Form))
		for _, fp := range st.Body.Form {
			v, err := fp.Value.ExpandString(&r.scope)
			if err != nil {
				return nil, err
			}
			form.Add(fp.Name, v)
		}
		p.body = []byte(form.Encode())
	}
	if st.Body.Kind != config.NoBody && p.header.Get("Content-Type") == "" {
		p.header["Content-Type"] = []string{st.Body.ContentType}
	}
	if st.BasicAuth != nil {
		user, err := st.BasicAuth.User.ExpandString(&r.scope)
		if err != nil {
			return nil, err
		}
		pass, err := st.BasicAuth.Password.ExpandString(&r.scope)
		if err != nil {
			return nil, err
		}
		req := http.Request{Header: p.header}
		req.SetBasicAuth(user, pass)
	}
	if _, ok := p.header["User-Agent"]; !ok {
		p.header["User-Agent"] = []string{r.f.userAgent}
	}
	p.header["Traceparent"] = []string{traceparent(r.res.TraceID, spanID)}
	p.header["Tracestate"] = []string{TraceState}
	p.header[HeaderSynthetic] = []string{"true"}
	p.header[HeaderFlow] = []string{r.f.cfg.Name}
	p.header[HeaderRegion] = []string{r.f.opts.Region}
	return p, nil
}

func (r *run) redact(s string) string {
	if !r.redacts {
		return s
	}
	return r.f.opts.Secrets.Redact(s)
}

// runStep runs one step, polling when it has an until clause.
func (r *run) runStep(ctx context.Context, st *config.Step) result.Step {
	r.step = st
	spanID := newSpanID()
	s := result.Step{
		Name: st.Name, Dependency: st.Dependency, Cleanup: st.Cleanup,
		SpanID: spanID, Method: st.Method, Start: time.Now(),
	}
	var p *prepared
	if st.Spec == nil { // HTTP: the request is expanded once for all attempts
		var err error
		if p, err = r.prepare(st, spanID); err != nil {
			return r.fail(s, prepareClass(err), r.redact(err.Error()))
		}
		s.URL = r.redact(p.url)
	} else {
		s.Kind = st.Kind
	}

	var deadline time.Time
	if st.Until != nil {
		deadline = s.Start.Add(st.Until.Within)
	}
	var (
		class    result.Class
		msg      string
		untilBad []assert.Failure
	)
	for {
		s.Attempts++
		if p != nil {
			class, msg = r.attempt(ctx, st, p, &s)
		} else {
			class, msg = r.attemptKind(ctx, st, &s)
			if class == result.CaptureMissing || class == result.Request {
				break // expanding failed: another attempt would too
			}
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
		if time.Now().Add(st.Until.Interval).After(deadline) || !sleep(ctx, st.Until.Interval) {
			break
		}
	}
	s.Duration = time.Since(s.Start)
	if class != "" {
		return r.fail(s, class, r.redact(msg))
	}
	s.HTTPStatus = r.resp.Status
	r.evaluate(st, &s, untilBad)
	return s
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

func (r *run) fail(s result.Step, class result.Class, msg string) result.Step {
	if s.Duration == 0 {
		s.Duration = time.Since(s.Start)
	}
	s.Status, s.Class = result.Failed, class
	s.Failures = append(s.Failures, result.Failure{Message: msg})
	return s
}

// attempt sends the request once and reads the response into r.resp. It
// returns a class and message on transport failure, or "" on a response.
func (r *run) attempt(ctx context.Context, st *config.Step, p *prepared, s *result.Step) (result.Class, string) {
	actx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	start := time.Now()
	r.timing.reset(start)
	var body io.Reader
	if p.body != nil {
		body = bytes.NewReader(p.body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, r.timing.trace), p.method, p.url, body)
	if err != nil {
		return result.Request, "cannot build request: " + stripURL(err)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return result.Request, fmt.Sprintf("unsupported URL scheme %q (want http or https)", req.URL.Scheme)
	}
	req.Header = p.header.Clone()
	if p.body != nil {
		b := p.body
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	st0 := attemptState{stepTimeout: st.Timeout}
	resp, err := r.client.Do(req)
	if err != nil {
		r.timing.state(&st0)
		st0.flowDeadline = ctx.Err() != nil
		s.Timings = r.timing.snapshot(time.Now())
		return classify(err, st0)
	}
	defer resp.Body.Close()

	limit := r.f.cfg.HTTP.BodyLimit
	data, rerr := readBody(*r.buf, resp.Body, resp.ContentLength, limit)
	*r.buf = data
	r.note(s, resp, data)
	n := int64(len(data))
	end := time.Now()
	s.Timings = r.timing.snapshot(end)
	s.BodyBytes = n
	s.HTTPStatus = resp.StatusCode
	if rerr != nil {
		r.timing.state(&st0)
		st0.readingBody, st0.bodyBytes = true, n
		st0.flowDeadline = ctx.Err() != nil
		return classify(rerr, st0)
	}
	if n > limit {
		return result.BodyTooLarge, fmt.Sprintf("body larger than the %s limit (status %d)", formatBytes(limit), resp.StatusCode)
	}
	r.resp.Reset()
	r.resp.Status = resp.StatusCode
	r.resp.Header = resp.Header
	r.resp.Body = data
	r.resp.Duration = end.Sub(start)
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		if st.ReadsConn {
			r.recordConn(resp.TLS, s, end)
		} else {
			// Every HTTPS step's certificate is watched (the expiry
			// metric): its not-after, at the price of one small string.
			a := certinfo.NotAfter(resp.TLS)
			a.Value = r.redact(a.Value)
			s.Attrs = append(s.Attrs[:0], a)
		}
	}
	return "", ""
}

// errNotVerified is the verification of a connection made with
// insecure_skip_verify: none.
var errNotVerified = errors.New("not verified (insecure_skip_verify is set)")

// recordConn sets an HTTPS step's cert.* and tls.* operands and records
// them in its result, for steps that read them.
func (r *run) recordConn(cs *tls.ConnectionState, s *result.Step, now time.Time) {
	var verr error
	if len(cs.VerifiedChains) == 0 {
		verr = errNotVerified
	}
	s.Attrs = s.Attrs[:0]
	for _, a := range certinfo.Record(&r.resp, cs, verr, now) {
		s.Attrs = append(s.Attrs, result.Attr{Name: a.Name, Value: r.redact(a.Value)})
	}
}

// readBody reads a body of at most limit bytes into buf's memory (reused
// across runs), returning limit+1 bytes when there are more. The buffer is
// sized from Content-Length when there is one, else grown by doubling to at
// most limit+1: with a bytes.Buffer, which keeps 512 bytes free before every
// read and doubles plus copies to get them, a body of exactly body_limit cost
// 2x that in allocations and one byte more 4x.
func readBody(buf []byte, r io.Reader, size, limit int64) ([]byte, error) {
	if r == http.NoBody { // HEAD, 204, 304: Content-Length describes no body here
		return buf[:0], nil
	}
	end := limit + 1
	if size >= 0 && size < limit {
		end = size + 1 // the +1 sees EOF without growing
	}
	buf = buf[:0]
	switch {
	case int64(cap(buf)) >= end:
	case size >= 0:
		buf = make([]byte, 0, end)
	case cap(buf) < 32<<10:
		buf = make([]byte, 0, min(end, 32<<10))
	}
	for {
		if int64(len(buf)) >= end {
			return buf, nil // over the limit, or over Content-Length
		}
		if len(buf) == cap(buf) {
			next := 2 * int64(cap(buf))
			if 2*next > end {
				next = end // straight to the end rather than one doubling short of it
			}
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):min(int64(cap(buf)), end)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// stripURL drops the URL from a url.Error: it may carry secrets and is shown
// separately, redacted.
func stripURL(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err.Error()
	}
	return err.Error()
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// evaluate checks the response against the step's status policy,
// expectations and captures, and classifies the first failure.
func (r *run) evaluate(st *config.Step, s *result.Step, untilBad []assert.Failure) {
	status := r.resp.Status
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
		add(r.failureClass(f), r.toFailure(f))
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
			add(cls, result.Failure{Expectation: "capture " + c.Name, Message: r.redact("capture " + c.Name + ": " + err.Error())})
			continue
		}
		r.scope.capture(c.Name, v)
	}
	if class == "" {
		s.Status, s.Class = result.Passed, result.OK
		return
	}
	s.Status, s.Class = result.Failed, class
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

// failureClass classifies a failed expectation of this run's response.
func (r *run) failureClass(f assert.Failure) result.Class { return FailureClass(r.resp.Status, f) }

// FailureClass classifies a failed expectation of a response with status.
// A body that contradicts a 2xx status is a swallowed error: the server
// said "fine" and meant "failed". Exported so that runs made up elsewhere
// (the alert-quality suite's) are classed exactly as real ones.
func FailureClass(status int, f assert.Failure) result.Class {
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
	case f.Source&(assert.SourceJSON|assert.SourceBody) != 0 && status >= 200 && status < 300:
		return result.SwallowedError
	}
	return result.Assertion
}

func (r *run) toFailure(f assert.Failure) result.Failure {
	return result.Failure{Expectation: f.Expectation, Actual: r.redact(f.Actual), Message: r.redact(f.Message)}
}
