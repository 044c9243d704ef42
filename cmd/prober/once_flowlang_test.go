package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestOnceRunsInclude: a flow whose login comes from an included steps
// file, the password passed as a secret parameter, runs and passes; once
// shows the captured values; the secret shows nowhere in its output, even
// --verbose.
func TestOnceRunsInclude(t *testing.T) {
	const pw = "Include-Param-Canary-77"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			var in struct{ User, Password string }
			if json.NewDecoder(r.Body).Decode(&in) != nil || in.User != "synthetic" || in.Password != pw {
				http.Error(w, "bad login", http.StatusUnauthorized)
				return
			}
			fmt.Fprint(w, `{"token":"tok-1","user":"synthetic"}`)
		case "/me":
			if r.Header.Get("Authorization") != "Bearer tok-1" {
				http.Error(w, "no", http.StatusForbidden)
				return
			}
			fmt.Fprintf(w, `{"ok":true,"echo":%q}`, pw)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := writeFiles(t, map[string]string{
		"probes.yaml": "vars: {base: \"" + srv.URL + "\"}\nsecrets:\n  PW: {env: INCLUDE_PW}\nflows: [flows/f.yaml]\n",
		"flows/f.yaml": `name: f
every: 1m
steps:
  - include: ../steps/login.yaml
    with: {user: synthetic, password: "{{secret:PW}}"}
  - name: me
    request: {url: "{{base}}/me", headers: {Authorization: "Bearer {{token}}"}}
    expect:
      - json.ok == true
    capture:
      echoed: json.echo
`,
		"steps/login.yaml": `params:
  user: {}
  password: {}
steps:
  - name: login
    request:
      method: POST
      url: "{{base}}/login"
      json: {user: "{{user}}", password: "{{password}}"}
    expect:
      - status == 200
      - json.user == "{{user}}"
    capture:
      token: json.token
`,
	})
	t.Setenv("INCLUDE_PW", pw)
	code, out, errOut := invoke("once", "--verbose", "--config", dir+"/probes.yaml")
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
	// Captured values are shown under their step, secrets redacted.
	for _, w := range []string{"f PASSED", "login", "me", `"password":"[secret:PW]"`, `capture token: "tok-1"`, `capture echoed: "[secret:PW]"`} {
		if !strings.Contains(out+errOut, w) {
			t.Errorf("once output lacks %q:\n%s\n%s", w, out, errOut)
		}
	}
	if l := onceLeak(pw, out+errOut); l != "" {
		t.Errorf("once shows the secret parameter (%s):\n%s\n%s", l, out, errOut)
	}
}
