package runner

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
	"github.com/prober-dev/prober/internal/template"
)

// Test helpers build compiled config directly, as config.Load would.

func newFlow(steps ...*config.Step) *config.Flow {
	return &config.Flow{
		Name:  "test",
		Steps: steps,
		Vars:  map[string]string{},
		FlowDef: &config.FlowDef{
			Timeout: 5 * time.Second,
			HTTP:    config.HTTPOptions{BodyLimit: 1 << 20, FollowRedirects: true, MaxRedirects: 10},
		},
	}
}

func newStep(name, method, url string, expects ...string) *config.Step {
	u := template.MustParse(url)
	st := &config.Step{
		StepDef:   &config.StepDef{Name: name, Method: method, Timeout: 2 * time.Second},
		Spec:      &config.HTTPSpec{Method: method, URL: u, FollowRedirects: true},
		Templates: []*template.Template{u},
	}
	for _, e := range expects {
		x := assert.MustCompile(e)
		st.Expect = append(st.Expect, x)
		if x.Sources()&assert.SourceStatus != 0 {
			st.StatusChecked = true
		}
	}
	return st
}

// httpOf is an HTTP step's spec.
func httpOf(st *config.Step) *config.HTTPSpec { return st.Spec.(*config.HTTPSpec) }

func withCapture(st *config.Step, name, expr string) *config.Step {
	v, err := assert.CompileValue(expr)
	if err != nil {
		panic(err)
	}
	st.Captures = append(st.Captures, config.Capture{Name: name, Value: v})
	return st
}

func withHeader(st *config.Step, name, value string) *config.Step {
	h := httpOf(st)
	h.Headers = append(h.Headers, config.Header{Name: name, Value: template.MustParse(value)})
	return st
}

func withJSON(st *config.Step, parts ...template.Part) *config.Step {
	httpOf(st).Body = config.Body{Kind: config.JSONBody, Template: template.Join(parts...), ContentType: "application/json"}
	return st
}

func mustRun(t *testing.T, f *config.Flow, o Options) *result.Run {
	t.Helper()
	if o.Region == "" {
		o.Region = "test-region"
	}
	if o.Version == "" {
		o.Version = "1.2.3"
	}
	rf, err := New(f, o)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	return rf.Run(context.Background(), time.Time{})
}

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-01$`)

// recorder is a server that remembers what each request carried.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func (rc *recorder) add(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.reqs = append(rc.reqs, r)
	rc.body = append(rc.body, string(b))
}

func TestHeadersTraceAndCaptures(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.add(r)
		switch r.URL.Path {
		case "/login":
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: "cookie-1"})
			w.Header().Set("X-Session", "hdr-7")
			fmt.Fprint(w, `{"token":"tok-1","n":12345678901}`)
		default:
			fmt.Fprint(w, `{"ok":true}`)
		}
	}))
	defer srv.Close()

	login := withCapture(withCapture(withCapture(
		newStep("login", "POST", srv.URL+"/login", "status == 200"),
		"token", "json.token"), "n", "json.n"), "sess", "header.X-Session")
	withJSON(login,
		template.Part{T: template.Literal(`{"user":"`)},
		template.Part{T: template.MustParse(`{{user}}`), Esc: template.JSONString},
		template.Part{T: template.Literal(`","password":"`)},
		template.Part{T: template.MustParse(`{{secret:PW}}`), Esc: template.JSONString},
		template.Part{T: template.Literal(`"}`)})
	order := withHeader(newStep("order", "GET", srv.URL+"/orders/{{n}}?t={{token}}", "status == 200"),
		"Authorization", "Bearer {{token}} {{sess}}")
	httpOf(order).Query = []config.Param{{Name: "region", Value: template.MustParse("{{region}}")}}
	f := newFlow(login, order)
	f.Vars["user"] = `syn"thetic`
	r := mustRun(t, f, Options{Secrets: secret.NewSet(map[string]string{"PW": `pa"ss`})})
	if !r.OK() {
		t.Fatalf("run failed: %s", r.Summary())
	}
	if len(rc.reqs) != 2 {
		t.Fatalf("%d requests", len(rc.reqs))
	}
	var spans []string
	for _, req := range rc.reqs {
		m := traceparentRE.FindStringSubmatch(req.Header.Get("Traceparent"))
		if m == nil {
			t.Fatalf("bad traceparent %q", req.Header.Get("Traceparent"))
		}
		if m[1] != r.TraceID {
			t.Errorf("trace id %s, want the run's %s", m[1], r.TraceID)
		}
		spans = append(spans, m[2])
		for h, want := range map[string]string{
			"Tracestate": TraceState, "User-Agent": "prober/1.2.3",
			HeaderSynthetic: "true", HeaderFlow: "test", HeaderRegion: "test-region",
		} {
			if got := req.Header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
	}
	if spans[0] == spans[1] || spans[0] != r.Steps[0].SpanID || spans[1] != r.Steps[1].SpanID {
		t.Errorf("span ids %v vs steps %s %s", spans, r.Steps[0].SpanID, r.Steps[1].SpanID)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(rc.body[0]), &body); err != nil || body["user"] != `syn"thetic` || body["password"] != `pa"ss` {
		t.Errorf("login body %s (%v)", rc.body[0], err)
	}
	if ct := rc.reqs[0].Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	second := rc.reqs[1]
	if second.URL.Path != "/orders/12345678901" || second.URL.Query().Get("t") != "tok-1" || second.URL.Query().Get("region") != "test-region" {
		t.Errorf("captures not expanded: %s", second.URL)
	}
	if got := second.Header.Get("Authorization"); got != "Bearer tok-1 hdr-7" {
		t.Errorf("Authorization %q", got)
	}
	if c, err := second.Cookie("sid"); err != nil || c.Value != "cookie-1" {
		t.Errorf("cookie jar: %v %v", c, err)
	}
	if r.Steps[0].HTTPStatus != 200 || r.Steps[0].Attempts != 1 || r.Steps[0].BodyBytes == 0 {
		t.Errorf("step record %+v", r.Steps[0])
	}

	// A second run: new trace, fresh cookie jar.
	r2 := mustRun(t, f, Options{Secrets: secret.NewSet(map[string]string{"PW": `pa"ss`})})
	if r2.TraceID == r.TraceID {
		t.Error("trace id reused across runs")
	}
	if _, err := rc.reqs[2].Cookie("sid"); err == nil {
		t.Error("cookie leaked into the next run's first request")
	}
}

func TestBasicAuthFormAndRawBodies(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rc.add(r) }))
	defer srv.Close()
	form := newStep("form", "POST", srv.URL+"/f", "status == 200")
	httpOf(form).Body = config.Body{Kind: config.FormBody, ContentType: "application/x-www-form-urlencoded",
		Form: []config.Param{{Name: "a", Value: template.MustParse("x y&{{v}}")}}}
	httpOf(form).BasicAuth = &config.BasicAuth{User: template.MustParse("u"), Password: template.MustParse("{{secret:P}}")}
	raw := newStep("raw", "PUT", srv.URL+"/r", "status == 200")
	httpOf(raw).Body = config.Body{Kind: config.RawBody, ContentType: "text/plain", Template: template.MustParse("hello {{v}}")}
	f := newFlow(form, raw)
	f.Vars["v"] = "1"
	r := mustRun(t, f, Options{Secrets: secret.NewSet(map[string]string{"P": "pw"})})
	if !r.OK() {
		t.Fatal(r.Summary())
	}
	if rc.body[0] != "a=x+y%261" || rc.reqs[0].Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("form %q", rc.body[0])
	}
	if u, p, ok := rc.reqs[0].BasicAuth(); !ok || u != "u" || p != "pw" {
		t.Errorf("basic auth %q %q", u, p)
	}
	if rc.body[1] != "hello 1" || rc.reqs[1].Method != "PUT" || rc.reqs[1].Header.Get("Content-Type") != "text/plain" {
		t.Errorf("raw %q", rc.body[1])
	}
}

// hostile answers in the ways real and broken servers do.
func hostile(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"status":"success"}`) })
	mux.HandleFunc("/swallowed", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"status":"processing"}`) })
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscan(r.PathValue("code"), &code)
		w.WriteHeader(code)
		fmt.Fprint(w, `{"error":"x"}`)
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("a"), 10<<20))
	})
	mux.HandleFunc("/endless", func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("z"), 64<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/trickle", func(w http.ResponseWriter, r *http.Request) {
		for r.Context().Err() == nil {
			if _, err := w.Write([]byte("{")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	})
	mux.HandleFunc("/noheaders", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body>Bad gateway</body></html>")
	})
	mux.HandleFunc("/truncated-json", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"status":"succ`) })
	mux.HandleFunc("/wrongtype", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"status":42}`) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/redirect-to/{scheme}", func(w http.ResponseWriter, r *http.Request) {
		loc := map[string]string{"file": "file:///etc/passwd", "javascript": "javascript:alert(1)", "gopher": "gopher://example.com/1"}
		w.Header().Set("Location", loc[r.PathValue("scheme")])
		w.WriteHeader(http.StatusFound)
	})
	mux.HandleFunc("/redirect-once", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	var bomb bytes.Buffer // 50 MiB of zeros in about 50 KiB
	gz := gzip.NewWriter(&bomb)
	zeros := make([]byte, 1<<20)
	for i := 0; i < 50; i++ {
		gz.Write(zeros)
	}
	gz.Close()
	mux.HandleFunc("/gzipbomb", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(bomb.Bytes())
	})
	mux.HandleFunc("/reset", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.Write(bytes.Repeat([]byte("x"), 1000))
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.(*net.TCPConn).SetLinger(0) // RST, not FIN
		conn.Close()
	})
	mux.HandleFunc("/close-before-headers", func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	mux.HandleFunc("/manyheaders", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 1000; i++ {
			w.Header().Set(fmt.Sprintf("X-H-%d", i), "v")
		}
		fmt.Fprint(w, `{"status":"success"}`)
	})
	mux.HandleFunc("/hugeheaders", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 400; i++ {
			w.Header().Set(fmt.Sprintf("X-H-%d", i), strings.Repeat("v", 1000))
		}
	})
	mux.HandleFunc("/nocapture", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"other":1}`) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		fmt.Fprint(w, `{"status":"success"}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestClassification(t *testing.T) {
	srv := hostile(t)
	closed := closedAddr(t)
	tests := []struct {
		name    string
		path    string // appended to the server URL unless url is set
		url     string
		expects []string
		capture string
		mutate  func(*config.Flow)
		class   result.Class
		msg     string // substring of the first failure
	}{
		{name: "ok", path: "/ok", expects: []string{"status == 200", `json.status == "success"`}, class: result.OK},
		{name: "swallowed", path: "/swallowed", expects: []string{"status == 200", `json.status == "success"`},
			class: result.SwallowedError, msg: `json.status == "success": got "processing"`},
		{name: "5xx with status expectation", path: "/status/504", expects: []string{"status == 200", `json.status == "success"`},
			class: result.HTTP5xx, msg: "status == 200: got 504"},
		{name: "5xx without status expectation", path: "/status/503", class: result.HTTP5xx, msg: "status 503"},
		{name: "429", path: "/status/429", expects: []string{"status == 200"}, class: result.HTTP429},
		{name: "404 default policy", path: "/status/404", class: result.HTTP4xx},
		{name: "201 when 200 expected", path: "/status/201", expects: []string{"status == 200"}, class: result.Assertion},
		{name: "huge body", path: "/huge", class: result.BodyTooLarge, msg: "larger than the 1 MiB limit"},
		{name: "endless body", path: "/endless", class: result.BodyTooLarge},
		{name: "gzip bomb", path: "/gzipbomb", class: result.BodyTooLarge},
		{name: "trickling body", path: "/trickle", class: result.Timeout, msg: "body not complete"},
		{name: "headers never come", path: "/noheaders", class: result.Timeout, msg: "no response headers"},
		{name: "html instead of json", path: "/html", expects: []string{`json.status == "success"`}, class: result.InvalidJSON, msg: "not JSON"},
		{name: "truncated json", path: "/truncated-json", expects: []string{`json.status == "success"`}, class: result.InvalidJSON},
		{name: "wrong json type", path: "/wrongtype", expects: []string{`json.status == "success"`}, class: result.Assertion, msg: "42"}, // 42 says no error
		{name: "redirect loop", path: "/loop", class: result.Redirect, msg: "stopped after 10"},
		{name: "redirect followed", path: "/redirect-once", expects: []string{`json.status == "success"`}, class: result.OK},
		{name: "redirect not followed", path: "/redirect-once", expects: []string{"status == 302"},
			mutate: func(f *config.Flow) { httpOf(f.Steps[0]).FollowRedirects = false }, class: result.OK},
		{name: "redirect to file:", path: "/redirect-to/file", class: result.Request, msg: `redirect to an unsupported URL scheme "file" (want http or https)`},
		{name: "redirect to javascript:", path: "/redirect-to/javascript", class: result.Request, msg: `unsupported URL scheme "javascript"`},
		{name: "redirect to gopher:", path: "/redirect-to/gopher", class: result.Request, msg: `unsupported URL scheme "gopher"`},
		{name: "redirect to file: not followed", path: "/redirect-to/file", expects: []string{"status == 302"},
			mutate: func(f *config.Flow) { httpOf(f.Steps[0]).FollowRedirects = false }, class: result.OK},
		{name: "connection reset mid-body", path: "/reset", class: result.Network},
		{name: "closed before headers", path: "/close-before-headers", class: result.Network},
		{name: "1000 headers", path: "/manyheaders", expects: []string{"status == 200"}, class: result.OK},
		{name: "headers over the cap", path: "/hugeheaders", class: result.Network},
		{name: "capture missing", path: "/nocapture", capture: "json.id", class: result.CaptureMissing, msg: "capture v"},
		{name: "capture on html", path: "/html", capture: "json.id", class: result.InvalidJSON},
		{name: "slow beyond duration expectation", path: "/slow", expects: []string{"duration < 100ms"}, class: result.Assertion, msg: "duration < 100ms: got"},
		{name: "connection refused", url: "http://" + closed + "/x", class: result.ConnectRefused, msg: "connection refused"},
		{name: "bad scheme", url: "ftp://example.com/x", class: result.Request},
		{name: "flow timeout", path: "/noheaders", mutate: func(f *config.Flow) { f.Timeout = 200 * time.Millisecond },
			class: result.Timeout, msg: "flow timeout"},
	}
	before := runtime.NumGoroutine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.url
			if u == "" {
				u = srv.URL + tt.path
			}
			st := newStep("s", "GET", u, tt.expects...)
			st.Timeout = 500 * time.Millisecond
			if tt.class != result.Timeout {
				// Not about timing: room for a loaded machine under -race
				// to write a megabyte before the step gives up.
				st.Timeout = 2 * time.Second
			}
			if tt.capture != "" {
				withCapture(st, "v", tt.capture)
			}
			f := newFlow(st)
			if tt.mutate != nil {
				tt.mutate(f)
			}
			start := time.Now()
			r := mustRun(t, f, Options{})
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("took %s", took)
			}
			s := r.Steps[0]
			if s.Class != tt.class {
				t.Fatalf("class %s, want %s (%v)", s.Class, tt.class, s.Failures)
			}
			if tt.class == result.OK {
				if !r.OK() || s.Status != result.Passed {
					t.Fatalf("not passed: %v", s.Failures)
				}
				return
			}
			if r.OK() || r.Class != tt.class || r.FailedStep != "s" || s.Status != result.Failed {
				t.Fatalf("run %+v", r)
			}
			if !strings.Contains(s.Message(), tt.msg) {
				t.Errorf("message %q, want it to contain %q", s.Message(), tt.msg)
			}
		})
	}
	waitGoroutines(t, before)
}

func TestDNSAndTLSClasses(t *testing.T) {
	dnsFail := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "shop.invalid", IsNotFound: true}}
	}
	r := mustRun(t, newFlow(newStep("s", "GET", "http://shop.invalid/x")), Options{DialContext: dnsFail})
	if r.Class != result.DNS || !strings.Contains(r.Steps[0].Message(), "no such host shop.invalid") {
		t.Fatalf("dns: %s %v", r.Class, r.Steps[0].Failures)
	}

	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "{}") }))
	defer srv.Close()
	r = mustRun(t, newFlow(newStep("s", "GET", srv.URL, "status == 200")), Options{})
	if r.Class != result.TLS {
		t.Fatalf("untrusted certificate: %s %v", r.Class, r.Steps[0].Failures)
	}
	f := newFlow(newStep("s", "GET", srv.URL, "status == 200"))
	f.HTTP.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	r = mustRun(t, f, Options{})
	if !r.OK() {
		t.Fatalf("custom CA: %v", r.Steps[0].Failures)
	}
	if tm := r.Steps[0].Timings; tm.TLS <= 0 || tm.Connect <= 0 || tm.Reused {
		t.Errorf("timings on a new TLS connection: %+v", tm)
	}
	// A server that accepts and never answers the ClientHello: the step
	// times out in the handshake, and says so.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	hang := newStep("s", "GET", "https://"+ln.Addr().String()+"/", "status == 200")
	hang.Timeout = 300 * time.Millisecond
	r = mustRun(t, newFlow(hang), Options{})
	if msg := r.Steps[0].Message(); r.Class != result.TLS || !strings.Contains(msg, "tls: handshake not finished within the step timeout (300ms)") {
		t.Errorf("handshake never finishing: class %s, %q", r.Class, msg)
	}
	f.HTTP.CAPEM = []byte("not pem")
	if _, err := New(f, Options{}); err == nil {
		t.Error("bad CA PEM accepted")
	}
}

func TestUntilCleanupAndSkips(t *testing.T) {
	var polls atomic.Int32
	var keys sync.Map
	rc := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.add(r)
		switch r.URL.Path {
		case "/create":
			fmt.Fprint(w, `{"id":"o1"}`)
		case "/status":
			keys.Store(r.Header.Get("Idempotency-Key"), true)
			if polls.Add(1) < 3 {
				fmt.Fprint(w, `{"status":"pending"}`)
				return
			}
			fmt.Fprint(w, `{"status":"confirmed"}`)
		case "/never":
			fmt.Fprint(w, `{"status":"pending"}`)
		case "/fail":
			w.WriteHeader(500)
		default:
			fmt.Fprint(w, `{}`)
		}
	}))
	defer srv.Close()
	until := func(st *config.Step, within time.Duration) *config.Step {
		st.Until = &config.Until{Expect: []*assert.Expectation{assert.MustCompile(`json.status == "confirmed"`)},
			Interval: 20 * time.Millisecond, Within: within}
		return st
	}
	cleanup := func(name, url string) *config.Step {
		st := newStep(name, "DELETE", url, "status == 200")
		st.Cleanup = true
		return st
	}

	// Polls until confirmed, same idempotency key on every attempt.
	create := withCapture(newStep("create", "POST", srv.URL+"/create"), "order_id", "json.id")
	poll := withHeader(until(newStep("confirm", "GET", srv.URL+"/status", `json.status == "confirmed"`), 2*time.Second),
		"Idempotency-Key", "{{idempotency_key}}")
	f := newFlow(create, poll)
	f.Cleanup = []*config.Step{cleanup("cancel", srv.URL+"/cancel/{{order_id}}")}
	r := mustRun(t, f, Options{})
	if !r.OK() || r.Steps[1].Attempts != 3 {
		t.Fatalf("until: ok=%v attempts=%d %v", r.OK(), r.Steps[1].Attempts, r.Steps[1].Failures)
	}
	n := 0
	keys.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d idempotency keys across attempts, want 1", n)
	}
	if last := rc.reqs[len(rc.reqs)-1]; last.Method != "DELETE" || last.URL.Path != "/cancel/o1" {
		t.Errorf("cleanup request %s %s", last.Method, last.URL.Path)
	}
	if s := r.Steps[2]; !s.Cleanup || s.Status != result.Passed {
		t.Errorf("cleanup step %+v", s)
	}

	// Never confirmed: fails with an explanation; cleanup still runs.
	f = newFlow(withCapture(newStep("create", "POST", srv.URL+"/create"), "order_id", "json.id"),
		until(newStep("confirm", "GET", srv.URL+"/never"), 150*time.Millisecond),
		newStep("after", "GET", srv.URL+"/x"))
	f.Cleanup = []*config.Step{cleanup("cancel", srv.URL+"/cancel/{{order_id}}")}
	r = mustRun(t, f, Options{})
	s := r.Steps[1]
	if r.OK() || s.Class != result.Timeout || !strings.Contains(s.Message(), `until json.status == "confirmed": got "pending"`) ||
		!strings.Contains(s.Message(), "not met within 150ms") || s.Attempts < 3 {
		t.Fatalf("until not met: %s attempts=%d %v", s.Class, s.Attempts, s.Failures)
	}
	if r.Steps[2].Status != result.Skipped || r.Steps[3].Status != result.Passed || r.FailedStep != "confirm" {
		t.Fatalf("after failure: %+v / %+v", r.Steps[2], r.Steps[3])
	}
	if r.Duration > time.Second {
		t.Errorf("run took %s", r.Duration)
	}

	// Failed before the capture: cleanup is skipped, not failed.
	f = newFlow(newStep("create", "POST", srv.URL+"/fail"))
	f.Cleanup = []*config.Step{cleanup("cancel", srv.URL+"/cancel/{{order_id}}")}
	r = mustRun(t, f, Options{})
	if c := r.Steps[1]; c.Status != result.Skipped || !strings.Contains(c.Message(), `"order_id" was never captured`) {
		t.Fatalf("cleanup without its capture: %+v", c)
	}
	if r.Class != result.HTTP5xx {
		t.Fatalf("class %s", r.Class)
	}

	// A failing cleanup does not fail the run.
	f = newFlow(newStep("ok", "GET", srv.URL+"/x"))
	f.Cleanup = []*config.Step{cleanup("cancel", srv.URL+"/fail")}
	r = mustRun(t, f, Options{})
	if !r.OK() || r.Steps[1].Status != result.Failed {
		t.Fatalf("failing cleanup: ok=%v %+v", r.OK(), r.Steps[1])
	}
}

func TestSecretsRedacted(t *testing.T) {
	const pw = "s3cr3t-value-xyz"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A server that echoes what it got, including the secret.
		fmt.Fprintf(w, `{"status":"echo %s"}`, r.URL.Query().Get("key"))
	}))
	defer srv.Close()
	secrets := secret.NewSet(map[string]string{"KEY": pw})
	st := newStep("s", "GET", srv.URL+"/x?key={{secret:KEY}}", `json.status == "ok"`, `body contains "nope"`)
	r := mustRun(t, newFlow(st), Options{Secrets: secrets})
	// Transport error carrying the URL.
	r2 := mustRun(t, newFlow(newStep("s", "GET", "http://"+closedAddr(t)+"/x?key={{secret:KEY}}")), Options{Secrets: secrets})
	for _, run := range []*result.Run{r, r2} {
		b, _ := json.Marshal(run)
		if strings.Contains(string(b), pw) || strings.Contains(run.Summary(), pw) {
			t.Fatalf("secret in %s", b)
		}
		if !strings.Contains(string(b), "[secret:KEY]") {
			t.Errorf("no redaction marker in %s", b)
		}
	}
}

func TestPlannedAndTimings(t *testing.T) {
	srv := hostile(t)
	f := newFlow(newStep("a", "GET", srv.URL+"/ok"), newStep("b", "GET", srv.URL+"/ok"))
	rf, err := New(f, Options{Region: "r", Version: "v"})
	if err != nil {
		t.Fatal(err)
	}
	planned := time.Now().Add(-time.Second)
	r := rf.Run(context.Background(), planned)
	if !r.Planned.Equal(planned) || r.Region != "r" || r.Flow != "test" || r.ID == "" {
		t.Fatalf("run header %+v", r)
	}
	a, b := r.Steps[0].Timings, r.Steps[1].Timings
	if a.Reused || a.Connect <= 0 || a.FirstByte <= 0 || a.Processing <= 0 {
		t.Errorf("first step timings %+v", a)
	}
	if !b.Reused || b.Connect != 0 || b.DNS != 0 {
		t.Errorf("second step should reuse the connection: %+v", b)
	}
	if r.Duration < r.Steps[0].Duration+r.Steps[1].Duration {
		t.Errorf("run %s shorter than its steps", r.Duration)
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		tr, sp := newTraceID(), newSpanID()
		if !traceparentRE.MatchString(traceparent(tr, sp, false)) || seen[tr] {
			t.Fatalf("bad or repeated ids %s %s", tr, sp)
		}
		seen[tr] = true
	}
	if u := newUUID(); !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(u) {
		t.Fatalf("uuid %s", u)
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitGoroutines fails if goroutines stay above the baseline: a hostile
// response must not leak them.
func waitGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline+2 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, baseline %d:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
