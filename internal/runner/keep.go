package runner

import (
	"io"
	"net/http"
	"slices"
	"unicode/utf8"

	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
)

// A failed step keeps what the server answered to its last attempt
// (result.Step.Response): on-call's first question is "what did it say?".
// Every attempt notes its response without copying anything (note); only
// when the step has failed are the status, headers and the first
// keep_response bytes of the body copied and redacted (keep). Passing
// steps keep nothing: at 10,000 flows their responses would be memory
// for nobody.

// Bounds on the kept headers, besides keep_response on the body.
const (
	keepHeaderValue = 1 << 10 // bytes of one value
	keepHeaders     = 64      // values
	// redactSlack is how far past keep_response the body is redacted before
	// it is cut, so that a secret across the cut is found whole.
	redactSlack = 64 << 10
)

// noted is the HTTP response of a step's latest attempt, as attempt read
// it. body is the run's body buffer: valid until the next attempt.
type noted struct {
	span    string
	attempt int
	proto   string
	status  int
	header  http.Header
	body    []byte
}

// note records the response of an attempt of s (called by attempt once
// the body is read, even past body_limit). Under Options.Verbose it also
// shows the request and the whole response.
func (r *run) note(s *result.Step, resp *http.Response, body []byte) {
	r.noted = noted{s.SpanID, s.Attempts, resp.Proto, resp.StatusCode, resp.Header, body}
	if r.f.opts.Verbose == nil {
		return
	}
	var sent *result.Sent
	if req := resp.Request; req != nil {
		sent = &result.Sent{Method: req.Method, URL: r.redactOut(req.URL.String()), Proto: resp.Proto,
			Headers: r.keptHeaders(req.Header, -1)}
		if req.GetBody != nil {
			if rc, err := req.GetBody(); err == nil {
				b, _ := io.ReadAll(rc)
				sent.Body = r.keptBody(b, len(b))
			}
		}
	}
	full := &result.Response{Proto: resp.Proto, Status: resp.StatusCode,
		Headers: r.keptHeaders(resp.Header, -1), Body: r.keptBody(body, len(body))}
	r.f.opts.Verbose(s.Name, s.Attempts, sent, full)
}

// keep gives s the response of its last attempt when it failed (and
// keep_response is not 0).
func (r *run) keep(s *result.Step) {
	// A kind's reply (tcp) is what its last attempt left as the body: the
	// response is reset at every attempt of a kind.
	reply := r.resp.Body
	if v := r.f.opts.Verbose; v != nil && s.Kind != "" && len(reply) > 0 {
		v(s.Name, s.Attempts, &result.Sent{Method: s.Method, URL: s.URL},
			&result.Response{Body: r.keptBody(reply, len(reply))})
	}
	limit := int(r.f.cfg.HTTP.KeepResponse)
	if s.Status != result.Failed || limit <= 0 {
		return
	}
	switch n := r.noted; {
	case s.Kind != "":
		if len(reply) > 0 {
			s.Response = &result.Response{Body: r.keptBody(reply, limit), Truncated: len(reply) > limit}
		}
	case n.span == s.SpanID && n.attempt == s.Attempts: // else the last attempt got no answer
		s.Response = &result.Response{Proto: n.proto, Status: n.status, Headers: r.keptHeaders(n.header, keepHeaders),
			Body: r.keptBody(n.body, limit), Truncated: len(n.body) > limit}
	}
	r.noted = noted{} // the body buffer is the next step's
}

// keptHeaders copies h's values in name order, redacted, each cut at
// keepHeaderValue, at most max of them (-1: all, whole). Cookie and
// Set-Cookie values show as fingerprints (secret.MaskCookies).
func (r *run) keptHeaders(h http.Header, max int) []result.Attr {
	if len(h) == 0 {
		return nil
	}
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []result.Attr
	for _, name := range names {
		for _, v := range h[name] {
			if max >= 0 && len(out) == max {
				return out
			}
			v = r.redactOut(secret.MaskCookies(name, v, r.secrets))
			if max >= 0 && len(v) > keepHeaderValue {
				// Redacted again after the cut: a secret's start before "…".
				v = r.redactOut(cutRune(v, keepHeaderValue) + "…")
			}
			out = append(out, result.Attr{Name: r.redactOut(name), Value: v})
		}
	}
	return out
}

// keptBody copies the first limit bytes of body, redacted: a secret is
// masked whole before the cut, and what a cut leaves of one after it.
func (r *run) keptBody(body []byte, limit int) []byte {
	if limit <= 0 || len(body) == 0 {
		return nil
	}
	if !r.redacts && r.jarValues() == 0 {
		return slices.Clone(body[:min(len(body), limit)])
	}
	red := r.redactOut(string(body[:min(len(body), limit+redactSlack)]))
	if len(red) > limit {
		red = r.redactOut(cutRune(red, limit))
	}
	// Shown, a body is escaped (result.Text): a secret that only its
	// escaped form spells (a secret holding `\x1b`) is masked there, and
	// the shown form is what is kept.
	if shown := result.Text([]byte(red)); r.redactOut(shown) != shown {
		red = r.redactOut(shown)
	}
	return []byte(red)
}

// cutRune cuts s to at most n bytes, before a UTF-8 character that the
// cut would split (bytes that are no UTF-8 are cut at n).
func cutRune(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	if c, size := utf8.DecodeRuneInString(s[i:]); c != utf8.RuneError && i+size > n {
		return s[:i]
	}
	return s[:n]
}
