// Package browserkind is the browser step kind: a list of actions (goto,
// click, fill, select, press, wait_for, extract, js) run in a real
// Chromium through the DevTools protocol (chromedp), each run in a fresh
// incognito context of one browser process per prober, shared by the
// run's browser steps. Expectations read the page: page.url, page.title,
// page.text, console.errors, requests.failed, the navigation timings,
// page.lcp and page.cls (Core Web Vitals), status (of the last goto's
// document) and json.values.NAME (what extract read). Requests the page
// makes to the first goto's origin (and origins:) carry the run's
// traceparent and the synthetic headers. A failed step keeps a
// screenshot, its secrets masked.
package browserkind

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/chromedp/chromedp/kb"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/template"
)

// DefaultConcurrency is browser_concurrency when not set: runs with an
// open browser context at once. A page costs 50-150 MB of memory.
const DefaultConcurrency = 2

// Options configure the kind.
type Options struct {
	// Chromium is the browser binary; "" looks up Binaries on PATH.
	Chromium string
	// Concurrency bounds the runs with a browser context at once, across
	// flows, where probes.yaml has no browser_concurrency (Configure); 0
	// is DefaultConcurrency.
	Concurrency int
}

// Kind is the browser step kind, for config.Options.StepKinds. It owns the
// browser process: Close stops it (the daemon calls it at exit).
type Kind struct {
	b    *browser
	opts Options
}

// New returns the kind; no browser starts until a browser step runs.
func New(o Options) *Kind { return &Kind{b: newBrowser(o.Chromium, o.Concurrency), opts: o} }

// Configure implements config.Configured: probes.yaml's
// browser_concurrency, at every load (a reload changes it; runs with a
// context keep theirs); without it, Options.Concurrency.
func (k *Kind) Configure(cfg *config.Config) {
	n := cfg.BrowserConcurrency
	if n == 0 {
		n = k.opts.Concurrency
	}
	k.b.slots.setLimit(n)
}

// Close stops the browser process, if one runs.
func (k *Kind) Close() error { return k.b.close() }

// Name implements config.StepKind.
func (*Kind) Name() string { return "browser" }

// Keys implements config.StepKind.
func (*Kind) Keys() []string { return []string{"actions", "origins"} }

// Operands implements config.StepKind.
func (*Kind) Operands() assert.Operands { return Operands }

// Builtins implements config.StepKind: status is the last goto's document
// status; the body is a JSON summary of the page (url, title, values,
// console_errors, failed_requests, text), so json.values.NAME reads what
// extract read.
func (*Kind) Builtins() assert.Source {
	return assert.SourceStatus | assert.SourceBody | assert.SourceJSON
}

// Operands are what browser steps' expectations and captures read.
var Operands = assert.Operands{
	"page.url":                assert.StringOperand, // the final URL
	"page.title":              assert.StringOperand,
	"page.text":               assert.StringOperand, // the body's innerText, up to TextLimit bytes
	"page.ttfb":               assert.DurationOperand,
	"page.dom_content_loaded": assert.DurationOperand,
	"page.load":               assert.DurationOperand,
	"page.lcp":                assert.DurationOperand, // Largest Contentful Paint, from the navigation's start
	"page.cls":                assert.NumberOperand,   // Cumulative Layout Shift (its largest session window)
	"console.errors":          assert.NumberOperand,   // console.error calls and uncaught exceptions
	"requests.failed":         assert.NumberOperand,   // requests that failed or got a status >= 400
}

// Action names, in the order the README lists them.
const (
	Goto    = "goto"
	Click   = "click"
	Fill    = "fill"
	WaitFor = "wait_for"
	Extract = "extract"
	Select  = "select"
	Press   = "press"
	JS      = "js"
)

var actionNames = []string{Goto, Click, Fill, Select, Press, WaitFor, Extract, JS}

// Keys are the key names press takes, besides a single character.
var Keys = map[string]string{
	"Enter": kb.Enter, "Tab": kb.Tab, "Escape": kb.Escape, "Backspace": kb.Backspace, "Delete": kb.Delete,
	"ArrowUp": kb.ArrowUp, "ArrowDown": kb.ArrowDown, "ArrowLeft": kb.ArrowLeft, "ArrowRight": kb.ArrowRight,
	"Home": kb.Home, "End": kb.End, "PageUp": kb.PageUp, "PageDown": kb.PageDown,
}

// JSLimit bounds a js action's expression: an escape hatch, not a script.
const JSLimit = 1 << 10

// Action is one decoded action.
type Action struct {
	Op       string
	Pos      config.Pos         // where it is, for messages when it fails
	URL      *template.Template // goto; wait_for url (a substring)
	Selector string             // click, fill, wait_for selector, extract
	Value    *template.Template // fill
	Text     *template.Template // wait_for text (a substring of the page's text)
	Name     string             // extract, js: the value's name
	Attr     string             // extract: the attribute ("" reads the text)
	Key      string             // press: what chromedp types (kb.Enter, "a")
	JS       string             // js: the expression
}

// what names the action and its operand in messages: `click "#pay"`.
func (a *Action) what() string {
	switch {
	case a.Op == Goto:
		return "goto " + a.URL.String()
	case a.Op == JS:
		return "js " + a.Name
	case a.Op == Press && a.Selector == "":
		return "press"
	case a.Selector != "":
		return a.Op + " " + quote(a.Selector)
	case a.URL != nil:
		return a.Op + " url " + quote(a.URL.String())
	case a.Text != nil:
		return a.Op + " text " + quote(a.Text.String())
	}
	return a.Op
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// Spec is a decoded browser: block; it runs as a runner.Executor.
type Spec struct {
	Actions []Action
	Origins []string // besides the first goto's, whose requests carry the trace headers

	k    *Kind
	step *config.Step // its expectations say what the flow checks itself
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Decode implements config.StepKind.
func (k *Kind) Decode(b *config.StepBlock) any {
	s := &Spec{k: k, step: b.Step()}
	if !b.Has("actions") {
		b.Errorf("", "browser needs actions (a list of %s)", strings.Join(actionNames, ", "))
	}
	for i, it := range b.List("actions", "action", actionNames) {
		keys := it.Keys()
		if len(keys) != 1 {
			it.Errorf("", "an action is one of %s, one a list item", strings.Join(actionNames, ", "))
			continue
		}
		a := Action{Op: keys[0], Pos: it.Pos(keys[0])}
		ok := true
		switch a.Op {
		case Goto:
			a.URL, ok = it.Template(Goto, "a URL")
			if ok && a.URL.IsLiteral() {
				if _, err := origin(a.URL.String()); err != nil {
					it.Errorf(Goto, "goto: %v", err)
				}
			}
		case Click:
			a.Selector, ok = selector(it, Click)
		case Fill:
			fb, _ := it.Block(Fill, []string{"selector", "value"})
			if fb == nil {
				it.Errorf(Fill, "fill needs {selector: ..., value: ...}")
				continue
			}
			var selOK bool
			a.Selector, selOK = selector(fb, "selector")
			if !fb.Has("value") {
				fb.Errorf("", "fill needs a value (the text to type)")
				ok = false
			} else if a.Value, ok = fb.Template("value", "the text to type"); !ok {
				continue
			}
			ok = ok && selOK
		case WaitFor:
			if wb, isMap := it.Block(WaitFor, []string{"selector", "text", "url"}); isMap {
				if len(wb.Keys()) != 1 {
					wb.Errorf("", "wait_for needs one of selector, text or url")
					continue
				}
				switch {
				case wb.Has("selector"):
					a.Selector, ok = selector(wb, "selector")
				case wb.Has("text"):
					a.Text, ok = wb.Template("text", "a text")
				default:
					a.URL, ok = wb.Template("url", "a part of a URL")
				}
			} else {
				a.Selector, ok = selector(it, WaitFor) // the shorthand: a selector
			}
		case Select:
			sb, _ := it.Block(Select, []string{"selector", "value"})
			if sb == nil {
				it.Errorf(Select, "select needs {selector: ..., value: ...}")
				continue
			}
			var selOK bool
			a.Selector, selOK = selector(sb, "selector")
			if !sb.Has("value") {
				sb.Errorf("", "select needs a value (the option's value)")
				ok = false
			} else if a.Value, ok = sb.Template("value", "an option's value"); !ok {
				continue
			}
			ok = ok && selOK
		case Press:
			// press: Enter (to the focused element), or {selector, key}.
			kblock := it
			key := Press
			if pb, isMap := it.Block(Press, []string{"selector", "key"}); isMap {
				if a.Selector, ok = selector(pb, "selector"); !ok {
					continue
				}
				if !pb.Has("key") {
					pb.Errorf("", "press needs a key")
					continue
				}
				kblock, key = pb, "key"
			}
			name, _ := kblock.String(key, "a key name")
			if k, known := Keys[name]; known {
				a.Key = k
			} else if len([]rune(name)) == 1 {
				a.Key = name
			} else {
				kblock.Errorf(key, "key %q is not one character or one of %s", name, keyNames())
				continue
			}
		case JS:
			jb, _ := it.Block(JS, []string{"name", "expression"})
			if jb == nil || !jb.Has("name") || !jb.Has("expression") {
				it.Errorf(JS, "js needs {name: ..., expression: ...} (json.values.NAME reads its result)")
				continue
			}
			if a.Name, ok = jb.String("name", "a name"); ok && !nameRE.MatchString(a.Name) {
				jb.Errorf("name", "js name %q must match [A-Za-z_][A-Za-z0-9_]*", a.Name)
				continue
			}
			if a.JS, ok = jb.String("expression", "a JavaScript expression"); ok && len(a.JS) > JSLimit {
				jb.Errorf("expression", "expression is %d bytes, more than %d: put the script in the page", len(a.JS), JSLimit)
				continue
			}
		case Extract:
			eb, _ := it.Block(Extract, []string{"name", "selector", "attr"})
			if eb == nil {
				it.Errorf(Extract, "extract needs {name: ..., selector: ..., attr: ...}")
				continue
			}
			if !eb.Has("name") {
				eb.Errorf("", "extract needs a name (json.values.NAME reads it)")
			} else if a.Name, ok = eb.String("name", "a name"); ok && !nameRE.MatchString(a.Name) {
				eb.Errorf("name", "extract name %q must match [A-Za-z_][A-Za-z0-9_]*", a.Name)
			}
			a.Selector, ok = selector(eb, "selector")
			if eb.Has("attr") {
				a.Attr, _ = eb.String("attr", "an attribute name")
			}
		}
		if !ok {
			continue
		}
		if i == 0 && a.Op != Goto {
			it.Errorf("", "the first action must be goto (the page is blank until then)")
		}
		s.Actions = append(s.Actions, a)
	}
	if v, ok := b.Strings("origins", "an origin (scheme://host:port)"); ok {
		for _, o := range v {
			got, err := origin(o)
			if p, _ := url.Parse(o); err != nil || p.Path != "" && p.Path != "/" || p.RawQuery != "" || p.Fragment != "" || p.User != nil {
				b.Errorf("origins", "origin %q is not scheme://host[:port]", o)
				continue
			}
			s.Origins = append(s.Origins, got)
		}
	}
	return s
}

func keyNames() string {
	names := make([]string, 0, len(Keys))
	for n := range Keys {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// selector reads a CSS selector at key.
func selector(b *config.StepBlock, key string) (string, bool) {
	if !b.Has(key) {
		b.Errorf("", "needs a %s (a CSS selector)", key)
		return "", false
	}
	v, ok := b.String(key, "a CSS selector")
	if ok && strings.TrimSpace(v) == "" {
		b.Errorf(key, "%s is empty", key)
		return "", false
	}
	return v, ok
}

// origin is u's scheme://host[:port]; only http and https pages are probed.
func origin(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", u)
	}
	if p.Scheme != "http" && p.Scheme != "https" || p.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL", u)
	}
	// As the browser writes request URLs: a lower-case host, no default
	// port (the Fetch patterns must match them).
	host := strings.ToLower(p.Host)
	switch {
	case p.Scheme == "http" && p.Port() == "80", p.Scheme == "https" && p.Port() == "443":
		host = strings.ToLower(p.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return p.Scheme + "://" + host, nil
}

// Target is what the step talks to, as the flow page lists it: its first
// goto as configured.
func (s *Spec) Target() string {
	if len(s.Actions) == 0 {
		return "browser:"
	}
	return s.Actions[0].URL.String()
}

// reads says whether an expectation of the step (or of its until) reads
// the operand name: the flow decides about it, not the kind's default.
func (s *Spec) reads(name string) bool {
	exps := s.step.Expect
	if s.step.Until != nil {
		exps = append(slices.Clip(exps), s.step.Until.Expect...)
	}
	for _, e := range exps {
		if e.Reads(name) {
			return true
		}
	}
	return false
}
