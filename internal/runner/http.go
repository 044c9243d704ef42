package runner

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prober-dev/prober/internal/certinfo"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
)

// The HTTP step kind's execution. Config decodes request: blocks
// (config.HTTPKind: every loader needs it, and config cannot import the
// runner); the runner executes the spec as an Executor through httpStep,
// the same pointer under a type of its own. It lives here, not in a kind
// package, because what it runs on is the run's: the flow's pooled
// transport, the run's cookie jar and redirect policy, the httptrace
// timing allocated once per run, the pooled body buffer and the fine
// phases its failures are classified by.

// httpStep is a config.HTTPSpec the runner executes.
type httpStep config.HTTPSpec

// preparer is an Executor that builds its request once per step, before
// the first attempt: HTTP's is resent as is while polling (a {{uuid}} in
// its body stays the same), and a failure to build it fails the step
// without an attempt.
type preparer interface {
	prepare(x *Exchange) (result.Class, string)
}

// executor is how spec runs: config's HTTP spec through httpStep, a
// registered kind's spec itself; nil when it cannot run here.
func executor(spec any) Executor {
	switch sp := spec.(type) {
	case *config.HTTPSpec:
		return (*httpStep)(sp)
	case Executor:
		return sp
	}
	return nil
}

func (h *httpStep) prepare(x *Exchange) (result.Class, string) {
	p, err := x.r.prepare((*config.HTTPSpec)(h), x.s.SpanID)
	if err != nil {
		return prepareClass(err), err.Error()
	}
	x.r.prep, x.r.spec = p, (*config.HTTPSpec)(h)
	x.Target(p.url)
	return "", ""
}

// checkRedirect is the redirect policy of the run's client: the HTTP step
// in progress's follow_redirects, the flow's max_redirects.
func (r *run) checkRedirect(req *http.Request, via []*http.Request) error {
	if !r.spec.FollowRedirects {
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
	// The body: body as expanded, or text when there was nothing to
	// expand into a copy (a literal template's source, a form's
	// encoding); hasText tells an empty text from none.
	body    []byte
	text    string
	hasText bool
}

// reader is the body for one attempt's request, nil without one.
func (p *prepared) reader() io.Reader {
	switch {
	case p.body != nil:
		return bytes.NewReader(p.body)
	case p.hasText:
		return strings.NewReader(p.text)
	}
	return nil
}

func (r *run) prepare(st *config.HTTPSpec, spanID string) (*prepared, error) {
	var err error
	r.url, err = st.URL.Expand(r.url[:0], &r.scope)
	if err != nil {
		return nil, err
	}
	u := string(r.url)
	if len(st.Query) > 0 {
		pu, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("bad URL %q: %w", r.redactOut(u), err)
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
	// Every value of the header is a slice of one array (each capped at
	// its one value, so an Add reallocates rather than overwrite the
	// next): 2 allocations where a []string each were 8 or more.
	// Sized for what is set below, exactly: up to 8 entries make a small
	// map (one group), a hint of 9 a table.
	n := len(st.Headers) + 6 // and User-Agent, Traceparent, Tracestate, the three X-Prober-
	if st.Body.Kind != config.NoBody {
		n++ // Content-Type
	}
	if st.BasicAuth != nil || r.token != "" {
		n++ // Authorization
	}
	vals := make([]string, 0, n)
	h := make(http.Header, n)
	set := func(name, v string) {
		vals = append(vals, v)
		h[name] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	p := &r.prepStore
	*p = prepared{method: st.Method, url: u, header: h}
	for _, hd := range st.Headers {
		v, err := hd.Value.ExpandString(&r.scope)
		if err != nil {
			return nil, err
		}
		set(hd.Name, v)
	}
	switch st.Body.Kind {
	case config.JSONBody, config.RawBody:
		switch t := st.Body.Template; {
		case t != nil && t.IsLiteral():
			// A literal's expansion is its source (ExpandString): sent as
			// it is, not copied each step.
			p.text, p.hasText = t.String(), true
		case t != nil:
			// One buffer, sized as ExpandString sizes: appending to nil grew
			// it by doubling.
			p.body, err = t.Expand(make([]byte, 0, len(t.String())+32), &r.scope)
			if err != nil {
				return nil, err
			}
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
		p.text, p.hasText = form.Encode(), true
	}
	if st.Body.Kind != config.NoBody && h.Get("Content-Type") == "" {
		set("Content-Type", st.Body.ContentType)
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
		req := http.Request{Header: h}
		req.SetBasicAuth(user, pass)
	}
	if _, ok := h["Authorization"]; !ok && r.token != "" {
		set("Authorization", "Bearer "+r.token)
	}
	if _, ok := h["User-Agent"]; !ok {
		set("User-Agent", r.f.opts.userAgent)
	}
	set("Traceparent", traceparent(r.res.TraceID, spanID, r.unsampled))
	set("Tracestate", TraceState)
	set(HeaderSynthetic, "true")
	set(HeaderFlow, r.f.cfg.Name)
	set(HeaderRegion, r.f.opts.Region)
	return p, nil
}

// Execute implements Executor: it sends the prepared request once and
// reads the response into r.resp. It returns a class and message on
// transport failure, or "" on a response.
func (h *httpStep) Execute(actx context.Context, x *Exchange) (result.Class, string) {
	r, st, p, s, start := x.r, x.st, x.r.prep, x.s, x.start
	r.timing.reset(start)
	req, err := http.NewRequestWithContext(actx, p.method, p.url, p.reader()) // actx holds the run's timing hooks
	if err != nil {
		return result.Request, "cannot build request: " + stripURL(err)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return result.Request, fmt.Sprintf("unsupported URL scheme %q (want http or https)", req.URL.Scheme)
	}
	// The client adds the jar's cookies to the header of the request it
	// is given (nothing else writes to it): a copy keeps them out of the
	// step's header, resent by the next attempt. A jar that never took a
	// cookie adds none, so most runs share the header as it is.
	req.Header = p.header
	if r.jar.jar != nil {
		req.Header = p.header.Clone()
	}
	// http.NewRequest gave the body (a *bytes.Reader or *strings.Reader)
	// its GetBody (redirects, a retried write, Verbose): the same bytes.
	st0 := attemptState{stepTimeout: st.Timeout}
	resp, err := r.clientFor(r.spec).Do(req)
	if err != nil {
		r.timing.state(&st0)
		st0.flowDeadline = r.flow.expired()
		s.Timings = r.timing.snapshot(time.Now())
		return classify(err, st0)
	}
	defer resp.Body.Close()

	limit := r.f.cfg.HTTP.BodyLimit
	data, rerr := readBody(*r.buf, resp.Body, resp.ContentLength, limit)
	*r.buf = data
	n := int64(len(data)) // the bytes received, for metrics, even when decoded
	if rerr == nil && n <= limit {
		var dc result.Class
		var msg string
		var werr error
		var windows *brotliWindows
		if t := r.f.opts.Transports; t != nil {
			windows = t.brotli
		}
		data, dc, msg, werr = decodeBody(actx, windows, resp, data, limit)
		if werr != nil {
			r.note(s, resp, *r.buf)
			s.Timings = r.timing.snapshot(time.Now())
			s.BodyBytes, s.HTTPStatus = n, resp.StatusCode
			st0.flowDeadline = r.flow.expired()
			return decodeWaitClass(werr, st0)
		}
		if dc != "" {
			r.note(s, resp, *r.buf)
			s.Timings = r.timing.snapshot(time.Now())
			s.BodyBytes, s.HTTPStatus = n, resp.StatusCode
			return dc, msg
		}
	}
	r.note(s, resp, data)
	end := time.Now()
	s.Timings = r.timing.snapshot(end)
	s.BodyBytes = n
	s.HTTPStatus = resp.StatusCode
	if rerr != nil {
		r.timing.state(&st0)
		st0.readingBody, st0.bodyBytes = true, n
		st0.flowDeadline = r.flow.expired()
		return classify(rerr, st0)
	}
	if n > limit {
		return result.BodyTooLarge, fmt.Sprintf("body larger than the %s limit (status %d)", formatBytes(limit), resp.StatusCode)
	}
	r.resp.Status = resp.StatusCode
	r.resp.Header = resp.Header
	r.resp.Body = data
	r.resp.Duration = end.Sub(start)
	r.cookies = cookieView{jar: r.client.Jar, url: resp.Request.URL}
	r.resp.Cookies = &r.cookies
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		if st.ReadsAttrs {
			r.recordConn(resp.TLS, s, end)
		} else {
			// Every HTTPS step's certificate is watched (the expiry
			// metric): its not-after, at the price of one small string.
			a := certinfo.NotAfter(resp.TLS)
			a.Value = r.redact(a.Value)
			s.Attrs = append(s.Attrs[:0], a)
		}
	}
	chain, hops := redirectChain(resp)
	if st.ReadsAttrs {
		r.resp.SetString("url", r.redact(resp.Request.URL.String()))
		r.resp.SetInt("redirect.count", int64(hops))
		r.resp.SetString("redirects", r.redact(chain))
	}
	if hops > 0 {
		x.Attr("redirects", chain)
	} else {
		// An earlier attempt's (polling) hops are not this one's.
		s.Attrs = slices.DeleteFunc(s.Attrs, func(a result.Attr) bool { return a.Name == "redirects" })
	}
	return "", ""
}

// redirectChain is the way to a response through followed redirects, each
// request's status and URL, "302 /login -> 302 /sso -> 200 /account" (a URL
// on another scheme or host than the first request's in full), and how many
// redirects there were; "" and 0 without.
func redirectChain(resp *http.Response) (string, int) {
	if resp.Request == nil || resp.Request.Response == nil {
		return "", 0
	}
	var hops []*http.Response
	for p := resp; p != nil && p.Request != nil; p = p.Request.Response {
		hops = append(hops, p)
	}
	first := hops[len(hops)-1].Request.URL
	var b strings.Builder
	for i := len(hops) - 1; i >= 0; i-- {
		u := hops[i].Request.URL
		shown := u.String()
		if u.Scheme == first.Scheme && u.Host == first.Host {
			shown = u.RequestURI()
		}
		if b.Len() > 0 {
			b.WriteString(" -> ")
		}
		fmt.Fprintf(&b, "%d %s", hops[i].StatusCode, shown)
	}
	return b.String(), len(hops) - 1
}

// runJar is the run's cookie jar, made when a response first sets a
// cookie: most runs get none, and an empty jar need not be made, nor the
// request's header copied to keep the jar's cookies out of it (Execute).
//
// It also remembers the distinct values servers set (rejected ones
// included: they were still in a Set-Cookie), for redactOut.
type runJar struct {
	jar    *cookiejar.Jar
	mu     sync.Mutex
	values []string
	bytes  int // in values
}

func (j *runJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	if len(cookies) == 0 {
		return
	}
	j.remember(cookies)
	if j.jar == nil {
		j.jar, _ = cookiejar.New(nil) // never fails without options
	}
	j.jar.SetCookies(u, cookies)
}

func (j *runJar) Cookies(u *url.URL) []*http.Cookie {
	if j.jar == nil {
		return nil
	}
	return j.jar.Cookies(u)
}

// cookieView is what cookie.NAME reads: the cookies the run's jar holds
// for the URL the step's response came from (after its redirects), that
// is, what the next request there would send. Set-Cookie of every
// response, a followed redirect's included, is in the jar by then; a
// cookie the server expired is gone. Looked up only when read.
type cookieView struct {
	jar http.CookieJar
	url *url.URL
}

func (c *cookieView) Cookie(name string) (string, bool) {
	if c.jar == nil || c.url == nil {
		return "", false
	}
	for _, k := range c.jar.Cookies(c.url) {
		if k.Name == name {
			return k.Value, true
		}
	}
	return "", false
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
