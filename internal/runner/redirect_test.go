package runner_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prober-dev/prober/internal/kinds/kindtest"
	"github.com/prober-dev/prober/internal/report"
	"github.com/prober-dev/prober/internal/result"
)

// A login that redirects twice: url, redirect.count and redirects say where
// it led, and the step's attr "redirects" shows the hops (in once's story).
func TestRedirectOperands(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sso?t="+r.URL.Query().Get("t"), http.StatusFound)
	})
	mux.HandleFunc("/sso", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/account?t="+r.URL.Query().Get("t"), http.StatusSeeOther)
	})
	mux.HandleFunc("/account", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("welcome")) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name, step string
		class      result.Class
		hops       string // the step's attr "redirects"
		msg        string
	}{
		{
			name: "followed",
			step: "    request: {method: POST, url: \"" + srv.URL + "/login?t=x\"}\n    expect:\n" +
				"      - status == 200\n      - redirect.count == 2\n      - url == \"" + srv.URL + "/account?t=x\"\n" +
				"      - redirects == \"302 /login?t=x -> 303 /sso?t=x -> 200 /account?t=x\"\n",
			class: result.OK, hops: "302 /login?t=x -> 303 /sso?t=x -> 200 /account?t=x",
		},
		{
			name:  "a secret in the URL is redacted in url and the hops",
			step:  "    request: {url: \"" + srv.URL + "/login?t={{secret:S}}\"}\n    expect:\n      - url == \"" + srv.URL + "/account?t=s3cr3t-value\"\n",
			class: result.Assertion, hops: "302 /login?t=[secret:S] -> 303 /sso?t=[secret:S] -> 200 /account?t=[secret:S]",
		},
		{
			name: "not followed",
			step: "    request: {url: \"" + srv.URL + "/login?t=x\", follow_redirects: false}\n    expect:\n" +
				"      - status == 302\n      - redirect.count == 0\n      - url == \"" + srv.URL + "/login?t=x\"\n      - redirects == \"\"\n",
			class: result.OK,
		},
		{
			name:  "a count that does not match fails the step",
			step:  "    request: {url: \"" + srv.URL + "/login?t=x\"}\n    expect:\n      - redirect.count < 2\n",
			class: result.Assertion, hops: "302 /login?t=x -> 303 /sso?t=x -> 200 /account?t=x", msg: "redirect.count",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kindtest.Run(t, "", "name: f\nsteps:\n  - name: login\n"+tc.step)
			s := r.Steps[0]
			if s.Class != tc.class {
				t.Fatalf("class %s, want %s (%s)", s.Class, tc.class, s.Message())
			}
			if got := s.Attr("redirects"); got != tc.hops {
				t.Errorf("attr redirects = %q, want %q", got, tc.hops)
			}
			if !strings.Contains(s.Message(), tc.msg) {
				t.Errorf("message %q, want it to contain %q", s.Message(), tc.msg)
			}
			var story strings.Builder
			if err := report.Text(&story, r); err != nil {
				t.Fatal(err)
			}
			if tc.hops != "" && !strings.Contains(story.String(), "redirects: "+tc.hops+"\n") {
				t.Errorf("once's story does not show the hops:\n%s", story.String())
			}
			if strings.Contains(story.String(), "s3cr3t-value") {
				t.Errorf("once's story shows the secret:\n%s", story.String())
			}
			if strings.Contains(r.Summary()+s.Message()+s.URL, "s3cr3t-value") {
				t.Errorf("the secret shows: %s / %s", s.Message(), s.URL)
			}
		})
	}
}
