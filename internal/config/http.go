package config

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/certinfo"
	"github.com/prober-dev/prober/internal/template"
)

// HTTPKind is the HTTP step kind: a step's request: block. It is a
// StepKind like any other, but config holds it, because every loader
// needs it (config's own error guard included) and its block is read with
// the loader's URL, JSON and header checks: Load registers it first unless
// Options.StepKinds has a kind named "request". The runner executes its
// spec (config cannot import the runner).
type HTTPKind struct{}

// Name implements StepKind: the block's key.
func (HTTPKind) Name() string { return "request" }

// Keys implements StepKind.
func (HTTPKind) Keys() []string {
	return []string{"method", "url", "headers", "query", "json", "form", "body", "content_type", "basic_auth", "follow_redirects", "tls"}
}

// Operands implements StepKind: where followed redirects led (url,
// redirect.count, redirects), and on HTTPS their connection's certificate
// (cert.*, tls.*).
func (HTTPKind) Operands() assert.Operands { return HTTPOperands }

// HTTPOperands are what HTTP steps' expectations and captures read besides
// status, headers, body and JSON.
var HTTPOperands = func() assert.Operands {
	ops := assert.Operands{
		"url":            assert.StringOperand, // the last request's URL, after followed redirects (redacted)
		"redirect.count": assert.NumberOperand, // redirects followed, 0 without
		"redirects":      assert.StringOperand, // the hops: "302 /login -> 200 /account", "" without
	}
	for n, t := range certinfo.Operands {
		ops[n] = t
	}
	return ops
}()

// Builtins implements StepKind: status, headers, body, JSON, the body as
// HTML and the run's cookies.
func (HTTPKind) Builtins() assert.Source {
	return assert.SourceStatus | assert.SourceHeader | assert.SourceBody | assert.SourceJSON | assert.SourceHTML | assert.SourceCookie
}

// HTTPSpec is a decoded request: block, what an HTTP step sends. The
// flow's http settings (body_limit, max_redirects, tls) are the flow's
// (Flow.HTTP): its steps share one transport.
type HTTPSpec struct {
	Method          string
	URL             *template.Template
	Headers         []Header // flow headers first, then step headers (later wins)
	Query           []Param  // appended to the URL's query, values URL-encoded
	Body            Body
	BasicAuth       *BasicAuth
	FollowRedirects bool // the flow's default unless the step overrides
	// TLS, when the step has a tls: block, is the flow's HTTP options with
	// that block applied (only their TLS fields count): the step gets a
	// transport of its own, pooled with those of the same TLS settings.
	// nil: the flow's.
	TLS *HTTPOptions
}

// Target is what the step talks to, for display: its URL as configured
// (placeholders shown).
func (s *HTTPSpec) Target() string { return s.URL.String() }

// Decode implements StepKind.
func (HTTPKind) Decode(b *StepBlock) any {
	fc, f, n, o, info := b.fc, b.f, b.n, b.o, b.info
	s := &HTTPSpec{Method: "GET", FollowRedirects: fc.fl.HTTP.FollowRedirects, Headers: fc.headers}
	if v := o.get("method"); v != nil {
		if m, ok := f.plain(v, "an HTTP method", "method cannot use {{...}}"); ok {
			if validToken(m) {
				s.Method = strings.ToUpper(m)
			} else {
				f.errorf(v, "invalid HTTP method %s", quote(m))
			}
		}
	}
	info.step.Method = s.Method
	if v := o.get("url"); v == nil {
		if n.Kind == yaml.MappingNode {
			f.errorf(n, "request needs a url")
		}
	} else if ps, ok := f.pieces(v, "a URL", &info.uses); ok {
		s.URL = f.l.joinPieces(ps, template.Raw)
		checkURL(f, v, ps)
	}
	if v := o.get("headers"); v != nil {
		s.Headers = overlayHeaders(fc.headers, f.headers(v, &info.uses))
	}
	s.Headers = f.l.shared.headerList(s.Headers)
	if v := o.get("query"); v != nil {
		s.Query = f.params(v, "query parameters", &info.uses)
	}
	if v := o.get("tls"); v != nil {
		h := fc.fl.HTTP // the step's block overlays the flow's, key by key
		f.tls(v, &h)
		s.TLS = &h
	}

	// The body kinds in document order, so that the second one is blamed.
	kinds := slices.DeleteFunc([]string{"json", "form", "body"}, func(k string) bool { return o.get(k) == nil })
	slices.SortFunc(kinds, func(a, b string) int {
		ka, kb := o.key(a), o.key(b)
		if ka.Line != kb.Line {
			return ka.Line - kb.Line
		}
		return ka.Column - kb.Column
	})
	var bodyKey *yaml.Node
	for _, k := range kinds {
		v := o.get(k)
		if bodyKey != nil {
			f.errorf(o.key(k), "request can have only one of json, form and body (%s is already set)", bodyKey.Value)
			continue
		}
		bodyKey = o.key(k)
		switch k {
		case "json":
			if t, ok := f.jsonTemplate(v, &info.uses); ok {
				s.Body = Body{Kind: JSONBody, Template: t, ContentType: "application/json"}
			}
		case "form":
			s.Body = Body{Kind: FormBody, Form: f.params(v, "form fields", &info.uses), ContentType: "application/x-www-form-urlencoded"}
		case "body":
			if t, ok := f.tmpl(v, "a request body", &info.uses); ok {
				s.Body = Body{Kind: RawBody, Template: t, ContentType: "text/plain"}
			}
		}
	}
	if v := o.get("content_type"); v != nil {
		if ct, ok := f.plain(v, "a content type", "content_type cannot use {{...}}"); ok {
			if bodyKey == nil {
				f.errorf(v, "content_type needs a body (json, form or body)")
			} else {
				s.Body.ContentType = ct
			}
		}
	}
	if v := o.get("basic_auth"); v != nil {
		ao := f.object(v, "basic_auth", []string{"user", "password"})
		ba := &BasicAuth{Password: template.Literal("")}
		if u := ao.get("user"); u == nil {
			if v.Kind == yaml.MappingNode {
				f.errorf(v, "basic_auth needs a user")
			}
		} else if t, ok := f.tmpl(u, "a user name", &info.uses); ok {
			ba.User = t
		}
		if p := ao.get("password"); p != nil {
			if t, ok := f.tmpl(p, "a password", &info.uses); ok {
				ba.Password = t
			}
		}
		if ba.User != nil {
			s.BasicAuth = ba
		}
	}
	if v := o.get("follow_redirects"); v != nil {
		if b, ok := f.boolean(v); ok {
			s.FollowRedirects = b
		}
	}
	info.step.Templates = append(info.step.Templates, s.templates()...)
	return f.l.shared.httpSpec(s)
}

// templates are the spec's templates with placeholders, for
// Step.Templates: what a cleanup step needs captured before it can run.
// Not the literal ones: a login's body naming its flow's user would make
// the list each flow's own.
func (s *HTTPSpec) templates() []*template.Template {
	var ts []*template.Template
	add := func(t *template.Template) {
		if !t.IsLiteral() {
			ts = append(ts, t)
		}
	}
	add(s.URL)
	add(s.Body.Template)
	for _, h := range s.Headers {
		add(h.Value)
	}
	for _, p := range s.Query {
		add(p.Value)
	}
	for _, p := range s.Body.Form {
		add(p.Value)
	}
	if s.BasicAuth != nil {
		add(s.BasicAuth.User)
		add(s.BasicAuth.Password)
	}
	return ts
}
