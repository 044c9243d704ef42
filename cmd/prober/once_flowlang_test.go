package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// TestOnceHonoursFlowRetries: once retries a failed run at once up to the
// flow's retries, as the daemon does, and says so; --no-retry runs once.
func TestOnceHonoursFlowRetries(t *testing.T) {
	var mu sync.Mutex
	calls, failFirst := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if r.URL.Path == "/down" || n <= failFirst {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	dir := writeFiles(t, map[string]string{
		"probes.yaml": "flows: [blip.yaml, down.yaml]\n",
		"blip.yaml":   "name: blip\nretries: 1\nsteps:\n  - {name: a, request: {url: \"" + srv.URL + "/blip\"}}\n",
		"down.yaml":   "name: down\nretries: 2\nsteps:\n  - {name: a, request: {url: \"" + srv.URL + "/down\"}}\n",
	})
	reset := func(first int) {
		mu.Lock()
		calls, failFirst = 0, first
		mu.Unlock()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return calls }

	reset(1)
	code, out, errOut := invoke("once", "--config", dir+"/probes.yaml", "--flow", "blip")
	if code != 0 || count() != 2 {
		t.Fatalf("blip: exit %d after %d requests:\n%s\n%s", code, count(), out, errOut)
	}
	for _, w := range []string{"run 1 FAILED in", "blip failed at step a: status 503", "retried at once (retries: 1, as the daemon does)",
		"blip PASSED", "passed on retry 1: the failure was not confirmed"} {
		if !strings.Contains(out, w) {
			t.Errorf("blip output lacks %q:\n%s", w, out)
		}
	}

	reset(0)
	code, out, _ = invoke("once", "--config", dir+"/probes.yaml", "--flow", "down")
	if code != 1 || count() != 3 || strings.Count(out, "retried at once (retries: 2, as the daemon does)") != 2 ||
		!strings.Contains(out, "failure confirmed by 2 immediate retries, as the daemon confirms it") {
		t.Errorf("down: exit %d after %d requests:\n%s", code, count(), out)
	}

	reset(0)
	code, out, _ = invoke("once", "--config", dir+"/probes.yaml", "--flow", "down", "--json")
	var runs []struct {
		Retry   int    `json:"retry"`
		RetryOf string `json:"retry_of"`
	}
	if err := json.Unmarshal([]byte(out), &runs); err != nil || code != 1 || len(runs) != 1 || runs[0].Retry != 2 || runs[0].RetryOf == "" {
		t.Errorf("down --json: exit %d, %+v (%v):\n%s", code, runs, err, out)
	}

	reset(0)
	code, out, _ = invoke("once", "--no-retry", "--config", dir+"/probes.yaml", "--flow", "down")
	if code != 1 || count() != 1 || !strings.Contains(out, "not retried (--no-retry; the daemon retries this flow 2 times)") {
		t.Errorf("down --no-retry: exit %d after %d requests:\n%s", code, count(), out)
	}
}
