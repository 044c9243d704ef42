package config

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// Booleans, integers, sizes and durations can come from ${env:...}
// (issue 15, item 10); a bad value says it came from the environment
// without echoing it.
func TestScalarsFromEnv(t *testing.T) {
	env := map[string]string{"RUN": "true", "RETRIES": "2", "T": "5s", "BL": "2MiB", "FR": "False", "MAXR": "3", "BAD": "yes-please"}
	load := func(flowBody string) (*Config, []string) {
		t.Helper()
		fsys := fstest.MapFS{
			"probes.yaml": {Data: []byte("flows: [f.yaml]\n")},
			"f.yaml":      {Data: []byte("name: f\n" + flowBody + "steps:\n  - name: a\n    request: {url: \"http://x/\"}\n")},
		}
		cfg, err := Load(fsys, "probes.yaml", Options{Notifiers: testKinds, Env: lookup(env)})
		var errs Errors
		if errors.As(err, &errs) {
			return nil, strings.Split(errs.Error(), "\n")
		} else if err != nil {
			t.Fatal(err)
		}
		return cfg, nil
	}
	cfg, errs := load(`run_on_start: ${env:RUN}
retries: ${env:RETRIES}
timeout: ${env:T}
body_limit: ${env:BL}
keep_response: ${env:KEEP:-0}
follow_redirects: ${env:FR}
max_redirects: "${env:MAXR}"
every: ${env:EVERY:-90s}
`)
	if errs != nil {
		t.Fatalf("errors:\n%s", strings.Join(errs, "\n"))
	}
	fl := cfg.Flows[0]
	h := fl.HTTP
	if !fl.RunOnStart || fl.Retries != 2 || fl.Timeout != 5*time.Second || fl.Schedule.Every != 90*time.Second ||
		h.BodyLimit != 2<<20 || h.KeepResponse != 0 || h.FollowRedirects || h.MaxRedirects != 3 {
		t.Errorf("flow from env: run_on_start=%v retries=%d timeout=%v every=%v http=%+v", fl.RunOnStart, fl.Retries, fl.Timeout, fl.Schedule.Every, h)
	}

	_, errs = load("run_on_start: ${env:BAD}\nretries: ${env:BAD}\ntimeout: ${env:NOPE}\n")
	want := []string{
		`f.yaml:2:15: expected true or false, got "${env:BAD}" (from the environment)`,
		`f.yaml:3:10: expected an integer, got "${env:BAD}" (from the environment)`,
		`f.yaml:4:10: environment variable NOPE is not set (use ${env:NOPE:-default} for a default)`,
	}
	if strings.Join(errs, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
	for _, e := range errs {
		if strings.Contains(e, "yes-please") {
			t.Errorf("an environment value is echoed: %s", e)
		}
	}
}
