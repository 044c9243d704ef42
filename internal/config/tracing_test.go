package config

import (
	"slices"
	"strings"
	"testing"
)

func TestTracingLoads(t *testing.T) {
	cfg, errs := loadFiles(t, map[string]string{"f.yaml": alertFlow, "probes.yaml": probesWith(`
tracing:
  endpoint: https://otlp.test:4318
  protocol: grpc
  headers: {x-api-key: "{{secret:TOKEN}}", X-Team: payments}
  insecure: true
  sampling: 25%
`)})
	if errs != nil {
		t.Fatal(strings.Join(errs, "\n"))
	}
	tr := cfg.Tracing
	want := []TracingHeader{{"X-Api-Key", testEnv["TOKEN"]}, {"X-Team", "payments"}}
	if tr == nil || tr.Endpoint != "https://otlp.test:4318" || tr.Protocol != "grpc" || !tr.Insecure ||
		tr.Sampling != 0.25 || !slices.Equal(tr.Headers, want) {
		t.Errorf("tracing = %+v", tr)
	}

	cfg, errs = loadFiles(t, map[string]string{"f.yaml": alertFlow, "probes.yaml": probesWith("tracing: {}\n")})
	if errs != nil {
		t.Fatal(strings.Join(errs, "\n"))
	}
	if tr := cfg.Tracing; tr == nil || tr.Protocol != "http" || tr.Sampling != 1 || tr.Endpoint != "" {
		t.Errorf("tracing: {} = %+v, want on, http, sampling 1, endpoint from the environment", tr)
	}
	cfg, _ = loadFiles(t, map[string]string{"f.yaml": alertFlow, "probes.yaml": probesWith("")})
	if cfg.Tracing != nil {
		t.Errorf("without a tracing block tracing = %+v, want off", cfg.Tracing)
	}
}

func TestTracingErrors(t *testing.T) {
	for _, tt := range []struct{ name, extra, want string }{
		{"unknown field", "tracing: {endpont: http://x.test}",
			`probes.yaml:6:11: unknown field "endpont" in tracing (did you mean "endpoint"?)`},
		{"bad protocol", "tracing: {protocol: thrift}",
			`probes.yaml:6:21: tracing.protocol must be http or grpc, got "thrift"`},
		{"bad endpoint", "tracing: {endpoint: \"otlp.test:4317\"}",
			`probes.yaml:6:21: "otlp.test:4317" is not an absolute http:// or https:// URL`},
		{"sampling out of range", "tracing: {sampling: 2}",
			`probes.yaml:6:21: tracing.sampling must be between 0 and 1 (or 0% and 100%), got "2"`},
		{"undefined secret", "tracing:\n  headers: {key: \"{{secret:NOPE}}\"}",
			`probes.yaml:7:19: undefined secret "NOPE" (declare it under secrets: in probes.yaml)`},
		{"not a secret", "tracing:\n  headers: {key: \"{{base}}\"}",
			`probes.yaml:7:19: only {{secret:NAME}} placeholders can be used here, not {{base}}`},
		{"bad header name", "tracing:\n  headers: {\"a b\": x}",
			`probes.yaml:7:13: invalid header name "a b"`},
		{"placeholder in endpoint", "tracing: {endpoint: \"{{secret:TOKEN}}\"}",
			`probes.yaml:6:22: tracing.endpoint cannot use {{...}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := loadFiles(t, map[string]string{"f.yaml": alertFlow, "probes.yaml": probesWith(tt.extra)})
			if !slices.Equal(errs, []string{tt.want}) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), tt.want)
			}
			for _, e := range errs {
				if strings.Contains(e, testEnv["TOKEN"]) {
					t.Errorf("error shows the secret: %s", e)
				}
			}
		})
	}
}
