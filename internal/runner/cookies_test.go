package runner

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/prober-dev/prober/internal/result"
	"github.com/prober-dev/prober/internal/secret"
)

// TestCookieValuesFingerprinted: no cookie value a server sets shows in
// what a run reports, wherever it would: a failed cookie.NAME expectation,
// a failed headers.Set-Cookie one, the kept response (its Set-Cookie, a
// body echoing the session raw and in base64), a shown capture of it, the
// next request's Cookie header and a header it was sent in (--verbose).
// Each shows the value's fingerprint instead, so runs can be compared.
func TestCookieValuesFingerprinted(t *testing.T) {
	v1, v2 := rand.Text(), rand.Text() // 26 characters each
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: v1, Path: "/", HttpOnly: true})
			http.SetCookie(w, &http.Cookie{Name: "lang", Value: "en", Path: "/"})
			http.Redirect(w, r, "/account", http.StatusFound)
		case "/account": // the session rotates
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: v2, Path: "/", HttpOnly: true})
			fmt.Fprint(w, `{"ok":true}`)
		case "/echo":
			c, _ := r.Cookie("sid")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, `{"error":"boom","session":%q,"b64":%q,"header":%q}`,
				c.Value, base64.StdEncoding.EncodeToString([]byte(c.Value)), r.Header.Get("X-Sid"))
		}
	}))
	defer srv.Close()

	f := newFlow(
		withCapture(newStep("login", "GET", srv.URL+"/login", "status == 200"), "sid", "cookie.sid"),
		withHeader(newStep("echo", "GET", srv.URL+"/echo", `cookie.sid == "nope"`, `headers.Set-Cookie contains "nope"`), "X-Sid", "{{sid}}"),
	)
	f.HTTP.KeepResponse = 4 << 10
	var (
		mu      sync.Mutex
		verbose []string
	)
	r := mustRun(t, f, Options{ShowCaptures: true, Verbose: func(step string, attempt int, req *result.Sent, resp *result.Response) {
		b, _ := json.Marshal([]any{req, resp})
		mu.Lock()
		verbose = append(verbose, string(b))
		mu.Unlock()
	}})
	if r.OK() || len(r.Steps) != 2 || r.Steps[1].Status != result.Failed {
		t.Fatalf("run %s: %+v", r.Summary(), r.Steps)
	}
	b, _ := json.Marshal(r)
	out := string(b) + "\n" + strings.Join(verbose, "\n")
	for _, v := range []string{v1, v2} {
		for _, leak := range []string{v, v[:12], v[len(v)-12:], base64.StdEncoding.EncodeToString([]byte(v))[:12]} {
			if i := strings.Index(out, leak); i >= 0 {
				t.Errorf("cookie value %q shows (%q): …%s…", v, leak, out[max(0, i-80):min(len(out), i+80)])
			}
		}
	}
	fp2 := secret.Fingerprint(v2)
	for _, want := range []string{
		`cookie.sid == \"nope\": got \"` + fp2 + `\"`,    // the failure sentence
		`"name":"capture sid","value":"\"` + fp2 + `\""`, // once's shown capture
		`sid=` + fp2 + `; Path=/; HttpOnly`,              // Set-Cookie, kept and verbose
		// The request's Cookie (verbose): every cookie, a short one too.
		`"name":"Cookie","value":"sid=` + fp2 + `; lang=` + secret.Fingerprint("en") + `"`,
		`"name":"X-Sid","value":"` + fp2 + `"`, // a header it was sent in
		`\"session\":\"` + fp2 + `\"`,          // echoed in the kept body
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("output: %s", out)
	}
}

// TestSeenJarBounds: the jar remembers distinct values up to its bounds
// (count and bytes), so that a server setting many or huge cookies cannot
// make a failed run's redaction slow, and keeps every cookie all the same.
func TestSeenJarBounds(t *testing.T) {
	u, _ := url.Parse("http://shop.test/")
	j := &runJar{}
	j.SetCookies(u, []*http.Cookie{{Name: "a", Value: "same-value"}, {Name: "b", Value: "same-value"}, {Name: "c", Value: ""}})
	if len(j.values) != 1 {
		t.Fatalf("values %q, want the one distinct non-empty value", j.values)
	}
	j.SetCookies(u, []*http.Cookie{{Name: "big", Value: strings.Repeat("x", maxSeenCookieBytes)}})
	if len(j.values) != 1 {
		t.Errorf("a value past the byte bound was remembered")
	}
	for i := range 2 * maxSeenCookies {
		j.SetCookies(u, []*http.Cookie{{Name: fmt.Sprint("n", i), Value: fmt.Sprint("value-", i)}})
	}
	if len(j.values) != maxSeenCookies {
		t.Errorf("%d values remembered, want %d", len(j.values), maxSeenCookies)
	}
	if n := len(j.Cookies(u)); n != 4+2*maxSeenCookies {
		t.Errorf("the jar holds %d cookies, want them all", n)
	}
}
