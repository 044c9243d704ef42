package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prober-dev/prober/internal/secret"
)

// onceLeak says which form of v (whole, or 8 bytes of it) out shows.
func onceLeak(v, out string) string {
	for _, f := range secret.Forms(v) {
		if strings.Contains(out, f) {
			return fmt.Sprintf("form %q", f)
		}
	}
	for i := 0; i+8 <= len(v); i++ {
		if strings.Contains(out, v[i:i+8]) {
			return fmt.Sprintf("part %q", v[i:i+8])
		}
	}
	return ""
}

// TestOnceShowsResponse: once prints a failed step's status line, headers
// and body excerpt; --verbose every request and response, curl -v style;
// a secret the server echoes in headers and body (plain, base64,
// URL-encoded) shows in none of it, nor in --json.
func TestOnceShowsResponse(t *testing.T) {
	const pw = "Once-Resp-LeakCanary+42/x"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			fmt.Fprint(w, `{"token":"t"}`)
			return
		}
		w.Header().Set("Set-Cookie", "sid="+url.QueryEscape(pw))
		w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(502)
		fmt.Fprintf(w, `{"error":"gateway said no","echo":%q,"b64":%q,"url":%q}`, pw,
			base64.StdEncoding.EncodeToString([]byte(pw)), url.QueryEscape(pw))
	}))
	defer srv.Close()
	dir := writeFiles(t, map[string]string{
		"probes.yaml": "secrets:\n  PW: {env: ONCE_RESP_PW}\nflows: [flows/f.yaml]\n",
		"flows/f.yaml": `name: f
every: 1m
steps:
  - {name: login, request: {url: "` + srv.URL + `/login"}}
  - name: pay
    request: {method: POST, url: "` + srv.URL + `/pay", headers: {Authorization: "Bearer {{secret:PW}}"}, json: {pw: "{{secret:PW}}"}}
`,
	})
	t.Setenv("ONCE_RESP_PW", pw)

	code, out, errOut := invoke("once", "--config", dir+"/probes.yaml")
	if code != 1 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	for _, w := range []string{"< HTTP/1.1 502 Bad Gateway\n", "< Content-Type: application/json\n", `| {"error":"gateway said no"`, "[secret:PW]"} {
		if !strings.Contains(out, w) {
			t.Errorf("once output lacks %q:\n%s", w, out)
		}
	}
	if strings.Count(out, "< HTTP/1.1") != 1 {
		t.Errorf("once shows a response besides the failed step's:\n%s", out)
	}

	code, verbose, _ := invoke("once", "--verbose", "--config", dir+"/probes.yaml")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"* step login, attempt 1\n> GET /login HTTP/1.1\n", "< HTTP/1.1 200 OK\n", `{"token":"t"}`,
		"* step pay, attempt 1\n> POST /pay HTTP/1.1\n", "> Authorization: Bearer [secret:PW]\n", "< HTTP/1.1 502 Bad Gateway\n", "f FAILED"} {
		if !strings.Contains(verbose, w) {
			t.Errorf("--verbose lacks %q:\n%s", w, verbose)
		}
	}

	code, js, verboseErr := invoke("once", "--json", "--verbose", "--config", dir+"/probes.yaml")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var runs []map[string]any
	if err := json.Unmarshal([]byte(js), &runs); err != nil {
		t.Fatalf("--json --verbose stdout is not JSON (%v): %s", err, js)
	}
	if !strings.Contains(js, `"response"`) || !strings.Contains(verboseErr, "* step pay") {
		t.Errorf("--json lacks the response, or --verbose went elsewhere than stderr:\n%s\n%s", js, verboseErr)
	}
	for i, o := range []string{out, verbose, js, verboseErr} {
		if l := onceLeak(pw, o); l != "" {
			t.Errorf("output %d shows the secret (%s):\n%s", i, l, o)
		}
	}
}
