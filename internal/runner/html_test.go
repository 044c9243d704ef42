package runner_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/runner"
)

// loginSite is an HTML form login as shops write them: GET /login serves a
// form with a CSRF token tied to a pre-session cookie; POST /login checks
// both and the password (the test secret), sets the session cookie and
// redirects to /account, which needs it. /api/me answers JSON for the
// session in X-Session; /logout expires the cookie.
func loginSite(t *testing.T) *httptest.Server {
	var mu sync.Mutex
	csrf := map[string]string{}   // pre-session -> token
	sessions := map[string]bool{} // session ids
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		pre, tok := rand.Text(), rand.Text()
		mu.Lock()
		csrf[pre] = tok
		mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "pre", Value: pre, Path: "/", HttpOnly: true})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>Sign in</title>
<script>window.csrf = "decoy";</script></head><body>
<form id="login" method="post" action="/login">
  <input type="hidden" name="csrf" value="%s">
  <input name="user"> <input name="password" type="password">
  <button>Sign in</button>
</form></body></html>`, tok)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		pre, err := r.Cookie("pre")
		mu.Lock()
		ok := err == nil && csrf[pre.Value] != "" && r.PostFormValue("csrf") == csrf[pre.Value]
		mu.Unlock()
		if !ok {
			http.Error(w, "bad csrf token", http.StatusForbidden)
			return
		}
		if r.PostFormValue("user") != "synthetic-1" || r.PostFormValue("password") != "s3cr3t-value" {
			http.Error(w, "bad password", http.StatusUnauthorized)
			return
		}
		sid := rand.Text()
		if r.URL.Query().Get("echo") != "" { // a server that makes the password the session
			sid = r.PostFormValue("password")
		}
		mu.Lock()
		sessions[sid] = true
		mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: sid, Path: "/", HttpOnly: true})
		http.SetCookie(w, &http.Cookie{Name: "pre", Path: "/", MaxAge: -1})
		http.Redirect(w, r, "/account", http.StatusFound)
	})
	mux.HandleFunc("GET /account", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("sid")
		mu.Lock()
		ok := err == nil && sessions[c.Value]
		mu.Unlock()
		if !ok {
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<h1>
    Welcome, synthetic-1
  </h1><ul><li class="order"><span class="price">12.00 EUR</span></li><li class="order"><span class="price">3.50 EUR</span></li></ul>`)
	})
	mux.HandleFunc("GET /api/me", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ok := sessions[r.Header.Get("X-Session")]
		mu.Unlock()
		if !ok {
			http.Error(w, `{"error":"no session"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"user":"synthetic-1"}`)
	})
	mux.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sid", Path: "/", MaxAge: -1})
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<p class="bye">Signed out</p>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// The HTML form login of issue 15: the CSRF token captured by a CSS
// selector, the session cookie checked by name behind the 302, captured and
// sent on, and gone after logout.
func TestHTMLFormLogin(t *testing.T) {
	srv := loginSite(t)
	flow := `name: f
steps:
  - name: form
    request: {url: "` + srv.URL + `/login"}
    expect:
      - status == 200
      - html("title") == "Sign in"
      - count(html("form#login input")) == 3
      - cookie.pre != ""
      - html("form#login input[name=csrf]", "value") != ""
    capture:
      csrf: html("form#login input[name=csrf]", "value")
  - name: login
    request:
      method: POST
      url: "` + srv.URL + `/login"
      form: {user: synthetic-1, password: "{{secret:S}}", csrf: "{{csrf}}"}
    expect:
      - status == 200
      - redirect.count == 1
      - exists(cookie.sid)
      - '!exists(cookie.pre)'
      - html("h1") == "Welcome, synthetic-1"
      - count(html("li.order")) == 2
      - html("li.order:last-child .price") == "3.50 EUR"
    capture:
      sid: cookie.sid
      price: html(".price")
  - name: api
    request: {url: "` + srv.URL + `/api/me", headers: {X-Session: "{{sid}}"}}
    expect:
      - json.user == "synthetic-1"
  - name: logout
    request: {url: "` + srv.URL + `/logout"}
    expect:
      - '!exists(cookie.sid)'
      - html(".bye") == "Signed out"
`
	r := kindtest.Run(t, "", flow)
	if r.Status != result.Passed {
		for _, s := range r.Steps {
			t.Logf("%s: %s %s %+v", s.Name, s.Status, s.Class, s.Failures)
		}
		t.Fatalf("run %s (%s at %s)", r.Status, r.Class, r.FailedStep)
	}

	// The redirect is not followed: the 302's own Set-Cookie lines, all of
	// them, and the cookies it set already in the jar.
	flow = `name: f
steps:
  - name: form
    request: {url: "` + srv.URL + `/login"}
    capture: {csrf: 'html("input[name=csrf]", "value")'}
  - name: login
    request:
      method: POST
      url: "` + srv.URL + `/login"
      form: {user: synthetic-1, password: "{{secret:S}}", csrf: "{{csrf}}"}
      follow_redirects: false
    expect:
      - status == 302
      - count(header.Set-Cookie) == 2
      - header.Set-Cookie matches "^sid="
      - headers.Set-Cookie matches "(?m)^pre=; Path=/; Max-Age=0"
      - headers.Set-Cookie contains "HttpOnly"
      - cookie.sid != ""
`
	if r := kindtest.Run(t, "", flow); r.Status != result.Passed {
		t.Fatalf("not followed: %s %s %+v", r.Status, r.Class, r.Steps[len(r.Steps)-1].Failures)
	}
}

// What fails says why, a CSRF token that was not captured stops the login,
// and a session cookie that holds a secret is never shown.
func TestHTMLOperandFailures(t *testing.T) {
	srv := loginSite(t)
	for _, tc := range []struct {
		name, steps string
		step        string // the failing step
		class       result.Class
		msg         string // in the step's first failure
		more        string // in its second
	}{
		{
			name: "no such element",
			steps: `  - name: form
    request: {url: "` + srv.URL + `/login"}
    capture: {csrf: 'html("input[name=token]", "value")'}
`,
			step: "form", class: result.CaptureMissing,
			msg: `capture csrf: html("input[name=token]", "value"): no element matches`,
		},
		{
			name: "a selector on a JSON answer",
			steps: `  - name: me
    request: {url: "` + srv.URL + `/api/me"}
    expect: ['status == 401', 'html("h1") == "x"']
`,
			step: "me", class: result.HTTP4xx,
			msg: `html("h1") == "x": body is not HTML (Content-Type "text/plain"; starts "{\"error\":\"no sessio…")`,
		},
		{
			name: "a wrong token is refused by the server",
			steps: `  - name: form
    request: {url: "` + srv.URL + `/login"}
    capture: {csrf: 'html("script")'}
  - name: login
    request:
      method: POST
      url: "` + srv.URL + `/login"
      form: {user: synthetic-1, password: "{{secret:S}}", csrf: "{{csrf}}"}
`,
			step: "login", class: result.HTTP4xx, msg: "status 403",
		},
		{
			name: "a session cookie that holds a secret is redacted",
			steps: `  - name: form
    request: {url: "` + srv.URL + `/login"}
    capture: {csrf: 'html("input[name=csrf]", "value")'}
  - name: login
    request:
      method: POST
      url: "` + srv.URL + `/login?echo=1"
      form: {user: synthetic-1, password: "{{secret:S}}", csrf: "{{csrf}}"}
    expect:
      - exists(cookie.sid)
    capture: {sid: cookie.sid}
  - name: again
    request: {url: "` + srv.URL + `/account"}
    expect:
      - cookie.sid == "fresh"
      - cookie.sid != {{sid}}
`,
			step: "again", class: result.Assertion, msg: `cookie.sid == "fresh": got "[secret:S]"`,
			more: `cookie.sid != {{sid}}: got "[secret:S]" (sid is "[secret:S]")`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kindtest.Run(t, "", "name: f\nsteps:\n"+tc.steps)
			var s *result.Step
			for i := range r.Steps {
				if r.Steps[i].Name == tc.step {
					s = &r.Steps[i]
				}
			}
			if s == nil || s.Status != result.Failed || s.Class != tc.class {
				t.Fatalf("step %s: %+v", tc.step, s)
			}
			if len(s.Failures) == 0 || !strings.Contains(s.Failures[0].Message, tc.msg) {
				t.Fatalf("failures %+v, want %q", s.Failures, tc.msg)
			}
			if tc.more != "" && (len(s.Failures) < 2 || s.Failures[1].Message != tc.more) {
				t.Fatalf("failures %+v, want %q second", s.Failures, tc.more)
			}
			out, _ := json.Marshal(r)
			if strings.Contains(string(out), "s3cr3t-value") {
				t.Fatalf("the secret shows in the result: %s", out)
			}
		})
	}
}

// A bad selector is a load error at its place in the flow file.
func TestHTMLSelectorLoadErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`html("input[name=") == "x"`, `f.yaml:6:14: invalid CSS selector "input[name=": unexpected EOF in attribute selector`},
		{`html("a", "on click") != ""`, `f.yaml:6:19: invalid attribute name "on click"`},
		{`count(html("li", "class")) == 1`, `f.yaml:6:15: count() counts the elements a selector matches`},
		{`cookie["a b"] == "x"`, `f.yaml:6:16: invalid cookie name "a b"`},
	} {
		flow := "name: f\nsteps:\n  - name: a\n    request: {url: \"http://127.0.0.1:1/\"}\n    expect:\n      - " + tc.line + "\n"
		_, err := kindtest.Load(t, "", flow)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.line, err, tc.want)
		}
	}
	// The same in a capture.
	flow := "name: f\nsteps:\n  - name: a\n    request: {url: \"http://127.0.0.1:1/\"}\n    capture:\n      t: html(\"a[\", \"href\")\n"
	if _, err := kindtest.Load(t, "", flow); err == nil || !strings.Contains(err.Error(), `f.yaml:6:15: invalid CSS selector "a["`) {
		t.Errorf("capture: %v", err)
	}
}

// The classes README's Expectations gives the new operands: html() is
// classed as the body's (swallowed_error only when the body's JSON says it
// failed, which an HTML page never does), headers.* and cookie.* as the
// header's.
func TestHTMLFailureClasses(t *testing.T) {
	page := []byte(`<h1>Out of stock</h1>`)
	for _, tc := range []struct {
		expect string
		status int
		ct     string
		want   result.Class
	}{
		{`html("h1") == "In stock"`, 200, "text/html", result.Assertion},
		{`count(html("li")) > 0`, 200, "text/html", result.Assertion},
		{`html("h1") == "In stock"`, 200, "application/json", result.Assertion}, // not HTML
		{`html("h1") == "In stock"`, 503, "text/html", result.HTTP5xx},
		{`html("h1") == "In stock"`, 302, "text/html", result.Assertion},
		{`headers.X-Id contains "3"`, 200, "text/html", result.Assertion},
		{`count(header.X-Id) == 3`, 200, "text/html", result.Assertion},
		{`cookie.sid == "x"`, 200, "text/html", result.Assertion},
	} {
		r := &assert.Response{Status: tc.status, Header: http.Header{"X-Id": {"1", "2"}, "Content-Type": {tc.ct}}, Body: page}
		f, ok := assert.MustCompile(tc.expect).Check(r)
		if ok {
			t.Fatalf("%s: passed", tc.expect)
		}
		if got := runner.FailureClass(r, f); got != tc.want {
			t.Errorf("%s on %d: class %s, want %s", tc.expect, tc.status, got, tc.want)
		}
	}
}
