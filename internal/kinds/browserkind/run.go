package browserkind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
)

// Bounds on what a page leaves in the result.
const (
	TextLimit = 16 << 10 // page.text, bytes
	bodyText  = 4 << 10  // the text in the JSON body (what a failed step keeps)
	listLimit = 10       // console errors and failed requests kept, each
	lineLimit = 300      // bytes of one of them
)

// pollEvery is how often wait_for text and url look at the page.
const pollEvery = 100 * time.Millisecond

// traced are the requests that carry the trace headers: the documents and
// the page's own calls; images, scripts and fonts do not need them.
var traced = []network.ResourceType{network.ResourceTypeDocument, network.ResourceTypeXHR, network.ResourceTypeFetch}

// events is what a page did, filled by the event goroutines.
type events struct {
	mu         sync.Mutex
	console    []string // console errors and uncaught exceptions, the first listLimit
	consoleN   int
	exceptions []string
	failed     []string // "URL: why", the first listLimit
	failedN    int
	urls       map[network.RequestID]string
}

func (e *events) consoleError(msg string, exception bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.consoleN++
	if len(e.console) < listLimit {
		e.console = append(e.console, line(msg))
	}
	if exception && len(e.exceptions) < listLimit {
		e.exceptions = append(e.exceptions, line(msg))
	}
}

func (e *events) requestFailed(id network.RequestID, url, why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if url == "" {
		url = e.urls[id]
	}
	e.failedN++
	if len(e.failed) < listLimit {
		e.failed = append(e.failed, line(url+": "+why))
	}
}

func (e *events) sent(id network.RequestID, url string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.urls) < 10000 { // a page that never stops asking stays bounded
		e.urls[id] = url
	}
}

// line bounds one message.
func line(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > lineLimit {
		s = strings.ToValidUTF8(s[:lineLimit], "") + "…"
	}
	return s
}

// listen calls fn with every event e of the page until ctx ends.
func listen[E any](wg *sync.WaitGroup, ctx context.Context, t *chromedp.Target, e cdp.Event[E], fn func(E)) {
	seq := cdp.Events(ctx, t, e) // subscribed now: nothing after this is missed
	wg.Go(func() {
		for ev, err := range seq {
			if err != nil {
				return
			}
			fn(ev)
		}
	})
}

// expanded are an action's templates with the run's values.
type expanded struct{ url, value, text string }

// Execute implements runner.Executor: one page in the run's incognito
// context, the actions in order, then what the page shows.
func (s *Spec) Execute(ctx context.Context, x *runner.Exchange) (result.Class, string) {
	if len(s.Actions) == 0 {
		return result.Request, "browser step without actions"
	}
	// Every template first: a variable without a value fails before a
	// browser starts.
	ex := make([]expanded, len(s.Actions))
	for i, a := range s.Actions {
		var err error
		switch {
		case a.Op == Goto:
			ex[i].url, err = x.Expand(a.URL)
		case a.Value != nil:
			ex[i].value, err = x.Expand(a.Value)
		case a.URL != nil:
			ex[i].url, err = x.Expand(a.URL)
		case a.Text != nil:
			ex[i].text, err = x.Expand(a.Text)
		}
		if err != nil {
			return x.Classify(err, runner.Phase{})
		}
	}
	x.Target(ex[0].url)
	first, err := origin(ex[0].url)
	if err != nil {
		return result.Request, "goto: " + err.Error()
	}
	origins := append([]string{first}, s.Origins...)

	ss, _ := x.RunState().(*session)
	if ss == nil {
		return result.Request, "browser step outside a run"
	}
	bctx, bcid, err := ss.open(ctx)
	switch {
	case errors.Is(err, errNoSlot):
		return result.Timeout, fmt.Sprintf("no browser context free within the step's timeout (browser_concurrency %d)", s.k.b.slots.max())
	case err != nil && ctx.Err() != nil:
		return result.Timeout, "the browser did not start within the step's timeout"
	case err != nil:
		return result.Browser, err.Error()
	}

	var wg sync.WaitGroup
	defer wg.Wait() // after the page closed (deferred below): the listeners end with it
	// A page in the run's incognito context: cookies and storage of the
	// run's earlier browser steps, none of other runs.
	tctx, tcancel := chromedp.NewContext(bctx, chromedp.WithExistingBrowserContext(bcid))
	defer tcancel()
	stop := context.AfterFunc(ctx, tcancel) // the step's timeout closes the page
	defer stop()
	t, err := chromedp.Run(tctx, func(_ context.Context, t *chromedp.Target) (*chromedp.Target, error) { return t, nil })
	if err != nil {
		if bctx.Err() != nil || ctx.Err() == nil {
			return result.Browser, "opening a page: " + err.Error()
		}
		return result.Timeout, "opening a page: " + err.Error()
	}

	ev := &events{urls: map[network.RequestID]string{}}
	s.listen(&wg, tctx, t, ev, x.Traceparent())
	enable := []func() error{
		func() error { _, err := cdp.Call(tctx, t, network.Enable, network.EnableParams{}); return err },
		func() error { _, err := cdp.Call(tctx, t, runtime.Enable, cdp.Empty{}); return err },
		func() error {
			_, err := cdp.Call(tctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: vitalsJS})
			return err
		},
		func() error {
			var pats []*fetch.RequestPattern
			for _, o := range origins {
				for _, rt := range traced {
					pats = append(pats, &fetch.RequestPattern{URLPattern: o + "/*", ResourceType: rt})
				}
			}
			_, err := cdp.Call(tctx, t, fetch.Enable, fetch.EnableParams{Patterns: pats})
			return err
		},
	}
	for _, f := range enable {
		if err := f(); err != nil {
			return result.Browser, "setting up the page: " + err.Error()
		}
	}

	// The actions get the step's time but a little: what the page shows
	// is read (and on failure pictured) after a failure too.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	reserve := min(3*time.Second, time.Until(deadline)/3)
	actx, acancel := context.WithDeadline(tctx, deadline.Add(-reserve))
	defer acancel()
	values := map[string]string{}
	var class result.Class
	var msg string
	for i := range s.Actions {
		if class, msg = s.act(actx, bctx, t, x, &s.Actions[i], ex[i], values); class != "" {
			break
		}
	}

	rctx, rcancel := context.WithTimeout(tctx, reserve)
	defer rcancel()
	s.record(rctx, t, x, ev, values)
	if class == "" && bctx.Err() != nil {
		return result.Browser, "the browser crashed"
	}
	ev.mu.Lock()
	exc := ev.exceptions
	ev.mu.Unlock()
	if (class == result.Timeout || class == result.SelectorTimeout) && len(exc) > 0 {
		// What the action waited for never came after the page threw: the
		// script is the likely cause (a pay button whose handler never got
		// wired), whatever the flow expects of console.errors.
		return result.ScriptError, msg + "; the page threw: " + exc[0]
	}
	if class == "" && len(exc) > 0 && !s.reads("console.errors") {
		// As a customer would: the page broke. A flow that tolerates it
		// says so with an expectation on console.errors.
		class, msg = result.ScriptError, "uncaught exception on the page: "+exc[0]
	}
	if bctx.Err() == nil && ss.shots < ShotsPerRun && s.failing(class, x) {
		ss.shots++
		s.screenshot(rctx, t, x)
	}
	return class, msg
}

// listen follows the page's console, exceptions and requests into ev, and
// adds the trace headers to the requests Fetch pauses (those to origins).
func (s *Spec) listen(wg *sync.WaitGroup, ctx context.Context, t *chromedp.Target, ev *events, traceparent string) {
	listen(wg, ctx, t, runtime.ConsoleAPICalled, func(e runtime.EventConsoleAPICalled) {
		if e.Type == runtime.ConsoleAPICalledTypeError {
			ev.consoleError(argsText(e.Args), false)
		}
	})
	listen(wg, ctx, t, runtime.ExceptionThrown, func(e runtime.EventExceptionThrown) {
		ev.consoleError(exceptionText(e.ExceptionDetails), true)
	})
	listen(wg, ctx, t, network.RequestWillBeSent, func(e network.EventRequestWillBeSent) {
		if e.Request != nil {
			ev.sent(e.RequestID, e.Request.URL)
		}
	})
	listen(wg, ctx, t, network.LoadingFailed, func(e network.EventLoadingFailed) {
		if !e.Canceled {
			ev.requestFailed(e.RequestID, "", e.ErrorText)
		}
	})
	listen(wg, ctx, t, network.ResponseReceived, func(e network.EventResponseReceived) {
		// The browser's own favicon request is not the page's.
		if e.Response != nil && e.Response.Status >= 400 && !strings.HasSuffix(e.Response.URL, "/favicon.ico") {
			ev.requestFailed(e.RequestID, e.Response.URL, "HTTP "+strconv.FormatInt(e.Response.Status, 10))
		}
	})
	listen(wg, ctx, t, fetch.RequestPaused, func(e fetch.EventRequestPaused) {
		var hs []*fetch.HeaderEntry
		if e.Request != nil {
			for k, v := range e.Request.Headers {
				switch strings.ToLower(k) {
				case "traceparent", "tracestate", strings.ToLower(runner.HeaderSynthetic):
					continue // ours replace the page's
				}
				hs = append(hs, &fetch.HeaderEntry{Name: k, Value: fmt.Sprint(v)})
			}
		}
		hs = append(hs,
			&fetch.HeaderEntry{Name: "traceparent", Value: traceparent},
			&fetch.HeaderEntry{Name: "tracestate", Value: runner.TraceState},
			&fetch.HeaderEntry{Name: runner.HeaderSynthetic, Value: "true"})
		_, _ = cdp.Call(ctx, t, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID, Headers: hs})
	})
}

// act runs one action: "" when it succeeded, else a class and message
// naming the action and where it is.
func (s *Spec) act(ctx, bctx context.Context, t *chromedp.Target, x *runner.Exchange, a *Action, ex expanded, values map[string]string) (result.Class, string) {
	var err error
	switch {
	case a.Op == Goto:
		var resp *network.Response
		resp, err = chromedp.NavigateResponse(ex.url)(ctx, t)
		if err == nil && resp != nil {
			st := int(resp.Status)
			x.Response().Status = st
			if st >= 400 && !s.step.StatusChecked {
				c := result.HTTP5xx
				switch {
				case st == 429:
					c = result.HTTP429
				case st < 500:
					c = result.HTTP4xx
				}
				return c, fmt.Sprintf("%s (%s): HTTP %d", a.what(), a.Pos, st)
			}
		}
	case a.Op == Click:
		// Where a person's click would land, once it reaches the element.
		var px, py float64
		if px, py, err = actionable(ctx, bctx, t, "click", a.Selector); err == nil {
			_, err = chromedp.MouseClickXY(px, py)(ctx, t)
		}
	case a.Op == Fill:
		// Typed, as a person would (key events for the page's scripts),
		// into an emptied field.
		if _, _, err = actionable(ctx, bctx, t, "fill", a.Selector); err == nil {
			clear := "(e => { if (e) e.value = ''; return true; })(document.querySelector(" + jsString(a.Selector) + "))"
			if _, err = chromedp.Evaluate[bool](clear)(ctx, t); err == nil {
				_, err = chromedp.SendKeys(chromedp.CSS(a.Selector), ex.value)(ctx, t)
			}
		}
	case a.Op == Select:
		// As a person's choice: the value, then the events pages listen to.
		if _, _, err = actionable(ctx, bctx, t, "select", a.Selector); err == nil {
			js := "(e => { if (!e || ![...e.options].some(o => o.value === v)) return false; e.value = v; " +
				"e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})); return true; })" +
				"(document.querySelector(" + jsString(a.Selector) + "))"
			js = "(() => { const v = " + jsString(ex.value) + "; return " + js + "; })()"
			var found bool
			if found, err = chromedp.Evaluate[bool](js)(ctx, t); err == nil && !found {
				return result.Assertion, fmt.Sprintf("%s (%s): no option with that value", a.what(), a.Pos)
			}
		}
	case a.Op == Press && a.Selector != "":
		_, err = chromedp.SendKeys(chromedp.CSS(a.Selector), a.Key)(ctx, t)
	case a.Op == Press:
		_, err = chromedp.KeyEvent(a.Key)(ctx, t)
	case a.Op == JS:
		var v any
		if v, err = chromedp.Evaluate[any](a.JS)(ctx, t); err == nil {
			values[a.Name] = jsValue(v)
		} else if ctx.Err() == nil && bctx.Err() == nil {
			return result.ScriptError, fmt.Sprintf("%s (%s): %s", a.what(), a.Pos, line(err.Error()))
		}
	case a.Op == WaitFor && a.Selector != "":
		_, err = chromedp.WaitVisible(chromedp.CSS(a.Selector))(ctx, t)
	case a.Op == WaitFor && a.Text != nil:
		js := "document.body !== null && document.body.innerText.includes(" + jsString(ex.text) + ")"
		err = poll(ctx, bctx, func(ctx context.Context) (bool, error) {
			return chromedp.Evaluate[bool](js)(ctx, t)
		})
	case a.Op == WaitFor:
		err = poll(ctx, bctx, func(ctx context.Context) (bool, error) {
			h, err := cdp.Call(ctx, t, page.GetNavigationHistory, cdp.Empty{})
			if err != nil || h.CurrentIndex < 0 || int(h.CurrentIndex) >= len(h.Entries) {
				return false, err
			}
			return strings.Contains(h.Entries[h.CurrentIndex].URL, ex.url), nil
		})
	case a.Op == Extract && a.Attr != "":
		var res chromedp.AttributeResult
		res, err = chromedp.AttributeValue(chromedp.CSS(a.Selector), a.Attr)(ctx, t)
		if err == nil && !res.Exists {
			return result.Assertion, fmt.Sprintf("%s (%s): the element has no attribute %s", a.what(), a.Pos, a.Attr)
		}
		values[a.Name] = res.Value
	case a.Op == Extract:
		values[a.Name], err = chromedp.Text(chromedp.CSS(a.Selector))(ctx, t)
	}
	if err == nil {
		return "", ""
	}
	where := a.what() + " (" + a.Pos.String() + ")"
	var le *chromedp.LoadError
	var na *notActionable
	switch {
	case bctx.Err() != nil || browserGone(ctx, err):
		return result.Browser, where + ": the browser crashed"
	case ctx.Err() != nil && errors.As(err, &na) && na.why != whyAbsent:
		return result.SelectorTimeout, where + ": " + na.why + " until the step's timeout"
	case errors.As(err, &le):
		return result.Navigation, where + ": " + le.ErrorText
	case ctx.Err() != nil && a.Op == Goto:
		return result.Timeout, where + ": the page did not load within the step's timeout"
	case ctx.Err() != nil && a.Op == Extract && a.Attr != "":
		return result.SelectorTimeout, where + ": no element matched within the step's timeout"
	case ctx.Err() != nil && a.Selector != "":
		return result.SelectorTimeout, where + ": no visible element matched within the step's timeout"
	case ctx.Err() != nil:
		return result.Timeout, where + ": not seen within the step's timeout"
	}
	return result.Browser, where + ": " + err.Error()
}

// poll calls f until it says yes or ctx ends. Its errors (the page
// navigating away mid-call) count as no, unless the browser is gone.
func poll(ctx, bctx context.Context, f func(context.Context) (bool, error)) error {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, err := f(ctx)
		switch {
		case ok:
			return nil
		case bctx.Err() != nil:
			return errors.Join(err, bctx.Err())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// pageInfo is what record reads from the page in one evaluation.
type pageInfo struct {
	URL   string  `json:"url"`
	Title string  `json:"title"`
	Text  string  `json:"text"`
	TTFB  float64 `json:"ttfb"` // milliseconds from the navigation's start; <= 0: unknown
	DCL   float64 `json:"dcl"`
	Load  float64 `json:"load"`
	LCP   float64 `json:"lcp"` // milliseconds; <= 0: none seen
	CLS   float64 `json:"cls"` // < 0: unknown (vitalsJS did not run)
}

// vitalsJS runs in every document before its own scripts, so that the
// observers (buffered: true) see every entry: Largest Contentful Paint
// (the last candidate's time) and Cumulative Layout Shift (the largest
// session window of shifts without recent input: at most 5s, gaps under
// 1s, as web-vitals computes it).
const vitalsJS = `(() => {
	const v = {lcp: 0, cls: 0, flush: () => {}};
	Object.defineProperty(window, "__proberVitals", {value: v});
	try {
		const lcp = l => { for (const e of l) v.lcp = e.renderTime || e.loadTime || e.startTime; };
		let cur = 0, first = 0, last = 0;
		const cls = l => {
			for (const e of l) {
				if (e.hadRecentInput) continue;
				if (cur > 0 && e.startTime - last < 1000 && e.startTime - first < 5000) cur += e.value;
				else { cur = e.value; first = e.startTime; }
				last = e.startTime;
				v.cls = Math.max(v.cls, cur);
			}
		};
		const lo = new PerformanceObserver(l => lcp(l.getEntries()));
		lo.observe({type: "largest-contentful-paint", buffered: true});
		const co = new PerformanceObserver(l => cls(l.getEntries()));
		co.observe({type: "layout-shift", buffered: true});
		// What the observers have not delivered yet, when the page is read.
		v.flush = () => { lcp(lo.takeRecords()); cls(co.takeRecords()); };
	} catch (e) {}
})()`

var infoJS = `(() => {
	const n = performance.getEntriesByType("navigation")[0];
	const v = window.__proberVitals;
	if (v) v.flush();
	return {
		url: location.href, title: document.title,
		text: document.body ? document.body.innerText.slice(0, ` + strconv.Itoa(TextLimit) + `) : "",
		ttfb: n ? n.responseStart : 0, dcl: n ? n.domContentLoadedEventEnd : 0, load: n ? n.loadEventEnd : 0,
		lcp: v ? v.lcp : 0, cls: v ? v.cls : -1,
	};
})()`

// body is the JSON summary of the page that the body holds.
type body struct {
	URL            string            `json:"url"`
	Title          string            `json:"title"`
	Values         map[string]string `json:"values"`
	ConsoleErrors  []string          `json:"console_errors"`
	FailedRequests []string          `json:"failed_requests"`
	Text           string            `json:"text"`
}

// record sets the operands, attributes, timings and body from what the
// page shows now and what it did.
func (s *Spec) record(ctx context.Context, t *chromedp.Target, x *runner.Exchange, ev *events, values map[string]string) {
	info, err := chromedp.Evaluate[pageInfo](infoJS)(ctx, t)
	if err != nil {
		info = pageInfo{}
	}
	info.Text = cut(info.Text, TextLimit)
	r := x.Response()
	ev.mu.Lock()
	b := body{URL: info.URL, Title: info.Title, Values: values,
		ConsoleErrors: append([]string{}, ev.console...), FailedRequests: append([]string{}, ev.failed...),
		Text: cut(info.Text, bodyText)}
	consoleN, failedN := ev.consoleN, ev.failedN
	ev.mu.Unlock()

	r.SetInt("console.errors", int64(consoleN))
	r.SetInt("requests.failed", int64(failedN))
	if err == nil {
		r.SetString("page.url", info.URL)
		r.SetString("page.title", info.Title)
		r.SetString("page.text", info.Text)
		x.Attr("url", info.URL)
		x.Attr("title", line(info.Title))
	}
	for _, d := range []struct {
		name string
		ms   float64
	}{{"page.ttfb", info.TTFB}, {"page.dom_content_loaded", info.DCL}, {"page.load", info.Load}, {"page.lcp", info.LCP}} {
		if d.ms > 0 {
			v := time.Duration(d.ms * float64(time.Millisecond))
			r.SetDuration(d.name, v)
			x.Attr(strings.TrimPrefix(d.name, "page."), v.Round(time.Microsecond).String())
		}
	}
	if err == nil && info.CLS >= 0 {
		r.SetNumber("page.cls", info.CLS)
		x.Attr("cls", strconv.FormatFloat(info.CLS, 'f', 4, 64))
	}
	if info.TTFB > 0 {
		x.Timings().FirstByte = time.Duration(info.TTFB * float64(time.Millisecond))
	}
	if consoleN > 0 {
		x.Attr("console_errors", strconv.Itoa(consoleN)+": "+b.ConsoleErrors[0])
	}
	if failedN > 0 {
		x.Attr("failed_requests", strconv.Itoa(failedN)+": "+b.FailedRequests[0])
	}
	data, _ := json.Marshal(b)
	r.Body = append(r.Body[:0], data...)
	x.BodyBytes(int64(len(data)))
}

// cut bounds s to n bytes of valid UTF-8.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// jsString quotes s for JavaScript.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// jsValue is a js action's result as a value: a string as it is, else
// its JSON ("3", "true", "null", "[1,2]").
func jsValue(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return cut(string(b), TextLimit)
}

// argsText is a console call's arguments as the console shows them.
func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		if a == nil {
			continue
		}
		switch {
		case a.Description != "":
			parts = append(parts, a.Description)
		case len(a.Value) > 0:
			var s string
			if json.Unmarshal(a.Value, &s) == nil {
				parts = append(parts, s)
			} else {
				parts = append(parts, string(a.Value))
			}
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// exceptionText is an uncaught exception's message ("Error: boom").
func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "an exception"
	}
	if d.Exception != nil && d.Exception.Description != "" {
		first, _, _ := strings.Cut(d.Exception.Description, "\n") // not the stack
		return first
	}
	return d.Text
}

// browserGone tells an action's error that says the connection to
// Chromium dropped, before the browser's context learns it: chromedp
// wraps context.Canceled into it while ctx itself is still live, or
// reports the reply channel closed.
func browserGone(ctx context.Context, err error) bool {
	return errors.Is(err, chromedp.ErrChannelClosed) || ctx.Err() == nil && errors.Is(err, context.Canceled)
}
