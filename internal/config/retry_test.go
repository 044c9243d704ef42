package config

import (
	"slices"
	"testing"
	"time"
)

func TestRetryErrors(t *testing.T) {
	tests := []struct {
		name  string
		steps string
		want  []string
	}{
		{"attempts too many", `  - name: a
    request: {url: "{{base}}/x"}
    retry: {attempts: 11}
`, []string{`f.yaml:5:23: retry.attempts must be between 1 and 10, got 11`}},
		{"attempts not a number", `  - name: a
    request: {url: "{{base}}/x"}
    retry: {attempts: many}
`, []string{`f.yaml:5:23: expected an integer, got "many"`}},
		{"unknown class", `  - name: a
    request: {url: "{{base}}/x"}
    retry:
      on: [http_429, assertion]
`, []string{`f.yaml:6:22: retry.on: "assertion" is not a class a retry can help (one of http_429, http_5xx, http_4xx, dns, connect_refused, connect_timeout, tls, timeout, network)`}},
		{"bad backoff", `  - name: a
    request: {url: "{{base}}/x"}
    retry: {attempts: 3, backoff: 0s}
`, []string{`f.yaml:5:35: retry.backoff must be positive, got 0s`}},
		{"max_backoff below backoff", `  - name: a
    request: {url: "{{base}}/x"}
    retry: {attempts: 3, backoff: 2s, max_backoff: 1s}
`, []string{`f.yaml:5:52: retry.max_backoff 1s is shorter than retry.backoff 2s`}},
		{"unknown field", `  - name: a
    request: {url: "{{base}}/x"}
    retry: {attempt: 3}
`, []string{`f.yaml:5:13: unknown field "attempt" in retry (did you mean "attempts"?)`}},
		{"POST needs non_idempotent", `  - name: pay
    request: {method: POST, url: "{{base}}/pay"}
    retry: {attempts: 3}
`, []string{`f.yaml:5:12: retry of a POST step needs non_idempotent: true (a retried POST may act twice, e.g. charge twice)`}},
		{"PATCH needs non_idempotent", `  - name: p
    request: {method: patch, url: "{{base}}/x"}
    retry:
      attempts: 2
`, []string{`f.yaml:6:7: retry of a PATCH step needs non_idempotent: true (a retried PATCH may act twice, e.g. charge twice)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := loadFiles(t, map[string]string{"f.yaml": flow(tt.steps)})
			if !slices.Equal(errs, tt.want) {
				t.Errorf("errors:\n%q\nwant:\n%q", errs, tt.want)
			}
		})
	}
}

func TestRetryDecoded(t *testing.T) {
	_, errs := loadFiles(t, map[string]string{"f.yaml": flow(`  - name: get
    request: {url: "{{base}}/x"}
    retry: {attempts: 3}
  - name: pay
    request: {method: POST, url: "{{base}}/pay"}
    retry: {attempts: 2, on: [http_503x], non_idempotent: true}
`)})
	if errs == nil || len(errs) != 1 {
		t.Fatalf("want one error for http_503x, got %q", errs)
	}
	cfg, errs := loadFiles(t, map[string]string{"f.yaml": flow(`  - name: get
    request: {url: "{{base}}/x"}
    retry: {attempts: 3}
  - name: pay
    request: {method: POST, url: "{{base}}/pay"}
    retry: {attempts: 2, on: [connect_refused], backoff: 20s, non_idempotent: true}
  - name: plain
    request: {url: "{{base}}/x"}
`)})
	if errs != nil {
		t.Fatal(errs)
	}
	steps := cfg.Flows[0].Steps
	g, p := steps[0].Retry, steps[1].Retry
	if g.Attempts != 3 || !slices.Equal(g.On, DefaultRetryOn) || g.Backoff != 500*time.Millisecond || g.MaxBackoff != 10*time.Second || g.NonIdempotent {
		t.Errorf("defaults: %+v", g)
	}
	// A backoff over the default cap raises the cap rather than being cut.
	if p.Attempts != 2 || !slices.Equal(p.On, []string{"connect_refused"}) || p.Backoff != 20*time.Second || p.MaxBackoff != 20*time.Second || !p.NonIdempotent {
		t.Errorf("POST: %+v", p)
	}
	if steps[2].Retry != nil {
		t.Errorf("no retry: block: %+v", steps[2].Retry)
	}
}
