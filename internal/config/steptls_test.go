package config

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

// An HTTP step's own tls: overlays the flow's settings key by key, with
// paths relative to the file that names them (an included steps file
// too); a step without one keeps the flow's (TLS nil).
func TestStepTLS(t *testing.T) {
	cert, key := selfSigned(t)
	files := map[string]string{
		"probes.yaml": "flows: [flows/f.yaml]\n",
		"flows/c.pem": cert, "flows/c-key.pem": key, "steps/ca.pem": cert,
		"flows/f.yaml": `name: f
tls: {client_cert: c.pem, client_key: c-key.pem, server_name: flow.internal}
steps:
  - name: own
    request: {url: "https://x/", tls: {server_name: step.internal, insecure_skip_verify: true}}
  - name: flows
    request: {url: "https://x/"}
  - include: ../steps/s.yaml
`,
		"steps/s.yaml": "steps:\n  - name: inc\n    request: {url: \"https://x/\", tls: {ca_file: ca.pem}}\n",
	}
	cfg, errs := loadFiles(t, files)
	if errs != nil {
		t.Fatal(strings.Join(errs, "\n"))
	}
	st := cfg.Flows[0].Steps
	own, flows, inc := httpOf(st[0]).TLS, httpOf(st[1]).TLS, httpOf(st[2]).TLS
	if own == nil || own.ServerName != "step.internal" || !own.InsecureSkipVerify || own.ClientCertFile != "flows/c.pem" || string(own.ClientKey) != key {
		t.Errorf("own step TLS %+v: want the step's server name and skip, the flow's client certificate", own)
	}
	if flows != nil {
		t.Errorf("a step without tls: has TLS %+v", flows)
	}
	if inc == nil || inc.CAFile != "steps/ca.pem" || inc.ServerName != "flow.internal" {
		t.Errorf("included step TLS %+v: want steps/ca.pem and the flow's server name", inc)
	}

	files["steps/s.yaml"] = "steps:\n  - name: inc\n    request: {url: \"https://x/\", tls: {ca_file: nope.pem, client_key: c-key.pem, min: 1}}\n"
	_, errs = loadFiles(t, files)
	want := []string{
		`steps/s.yaml:3:49: tls.ca_file: reading steps/nope.pem: file does not exist (included by flows/f.yaml:8:5)`,
		`steps/s.yaml:3:71: tls.client_key needs tls.client_cert beside it (a client certificate is both or neither) (included by flows/f.yaml:8:5)`,
		`steps/s.yaml:3:82: unknown field "min" in tls (included by flows/f.yaml:8:5)`,
	}
	if !slices.Equal(errs, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
}

// tls.min_version: in defaults, a flow and a step, quoted or not; another
// value is refused at its place.
func TestTLSMinVersion(t *testing.T) {
	files := map[string]string{
		"probes.yaml": "defaults: {tls: {min_version: \"1.3\"}}\nflows: [a.yaml, b.yaml]\n",
		"a.yaml":      "name: a\nsteps:\n  - name: s\n    request: {url: \"https://x/\", tls: {min_version: 1.2}}\n",
		"b.yaml":      "name: b\ntls: {min_version: \"TLS 1.1\"}\nsteps:\n  - name: s\n    request: {url: \"https://x/\"}\n",
	}
	cfg, errs := loadFiles(t, files)
	if errs != nil {
		t.Fatal(strings.Join(errs, "\n"))
	}
	if a := cfg.Flows[0]; a.HTTP.MinVersion != tls.VersionTLS13 || httpOf(a.Steps[0]).TLS.MinVersion != tls.VersionTLS12 {
		t.Errorf("flow a: %x, step %x; want the defaults' 1.3 and the step's 1.2", a.HTTP.MinVersion, httpOf(a.Steps[0]).TLS.MinVersion)
	}
	if b := cfg.Flows[1]; b.HTTP.MinVersion != tls.VersionTLS11 {
		t.Errorf("flow b: %x, want 1.1", b.HTTP.MinVersion)
	}
	files["b.yaml"] = "name: b\ntls: {min_version: 1.4}\nsteps:\n  - name: s\n    request: {url: \"https://x/\"}\n"
	_, errs = loadFiles(t, files)
	want := []string{`b.yaml:2:20: tls.min_version is one of "1.0", "1.1", "1.2", "1.3", got "1.4"`}
	if !slices.Equal(errs, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
}
