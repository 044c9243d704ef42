package config

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/prober-dev/prober/internal/assert"
	_ "time/tzdata"
)

// testEnv is the environment the error tests run with.
var testEnv = map[string]string{"TOKEN": "s3cr3t-t0ken-value", "EMPTY": "", "HOST": "shop.test"}

const baseProbes = `vars: {base: "http://shop.test", sku: SKU-1}
secrets:
  TOKEN: {env: TOKEN}
flows: [f.yaml]
`

func lookup(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

// loadFiles loads files (probes.yaml defaulting to baseProbes) and returns
// the error lines, or nil.
func loadFiles(t *testing.T, files map[string]string) (*Config, []string) {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	if _, ok := fsys["probes.yaml"]; !ok {
		fsys["probes.yaml"] = &fstest.MapFile{Data: []byte(baseProbes)}
	}
	cfg, err := Load(fsys, "probes.yaml", Options{Notifiers: testKinds,
		Env: lookup(testEnv),
		ReadFile: func(p string) ([]byte, error) {
			return nil, &fs.PathError{Op: "open", Path: p, Err: syscall.ENOENT}
		},
	})
	if err == nil {
		return cfg, nil
	}
	if cfg != nil {
		t.Errorf("Load returned a config and an error")
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load error is %T, want Errors", err)
	}
	return nil, strings.Split(err.Error(), "\n")
}

// flow returns a flow file with the given steps section, for cases that only
// care about steps.
func flow(steps string) string {
	return "name: f\nsteps:\n" + steps
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name: "unknown field with suggestion",
			files: map[string]string{"f.yaml": flow(`  - name: a
    request: {url: "{{base}}/x"}
    expcet: [status == 200]
`)},
			want: []string{`f.yaml:5:5: unknown field "expcet" in step (did you mean "expect"?)`},
		},
		{
			name: "unknown field without suggestion",
			files: map[string]string{"f.yaml": flow(`  - name: a
    request: {url: "{{base}}/x", frobnicate: 1}
`)},
			want: []string{`f.yaml:4:34: unknown field "frobnicate" in request`},
		},
		{
			name:  "unknown field in probes.yaml",
			files: map[string]string{"probes.yaml": baseProbes + "flow: [x]\n", "f.yaml": okFlow("f")},
			want:  []string{`probes.yaml:5:1: unknown field "flow" in probes.yaml (did you mean "flows"?)`},
		},
		{
			name: "duplicate key",
			files: map[string]string{"f.yaml": `name: f
name: g
steps:
  - name: a
    request: {url: "{{base}}/x"}
`},
			want: []string{`f.yaml:2:1: duplicate key "name" (first at f.yaml:1:1)`},
		},
		{
			name: "wrong node kinds",
			files: map[string]string{"f.yaml": `name: [f]
labels: x
steps:
  - name: a
    request: {url: "{{base}}/x", headers: [a]}
    expect: {status: 200}
    capture: [json.x]
  - just a string
`},
			want: []string{
				`f.yaml:1:7: expected a flow name, got a list`,
				`f.yaml:2:9: expected a mapping of labels, got "x"`,
				`f.yaml:5:43: expected a mapping of headers, got a list`,
				`f.yaml:6:13: expected a list of expectations, got a mapping`,
				`f.yaml:7:14: expected a mapping of captures (name: expression), got a list`,
				`f.yaml:8:5: expected a mapping for step, got "just a string"`,
			},
		},
		{
			name: "durations",
			files: map[string]string{"f.yaml": `name: f
timeout: 5x
step_timeout: 0s
every: 500ms
steps:
  - name: a
    request: {url: "{{base}}/x"}
    timeout: -1s
  - name: b
    request: {url: "{{base}}/x"}
    timeout: 30
`},
			want: []string{
				`f.yaml:2:10: expected a duration like 30s or 500ms, got "5x"`,
				`f.yaml:3:15: step_timeout must be positive, got 0s`,
				`f.yaml:4:8: every must be at least 1s, got 500ms`,
				`f.yaml:8:14: timeout must be positive, got -1s`,
				`f.yaml:11:14: expected a duration like 30s or 500ms, got "30"`,
			},
		},
		{
			name: "numbers, booleans and sizes",
			files: map[string]string{
				"probes.yaml": `concurrency: abc
store: {keep: 0}
defaults: {body_limit: 2GiB, max_redirects: 1.5, follow_redirects: yes}
listen: "8315"
flows: [f.yaml]
`,
				"f.yaml": `name: f
body_limit: 1.5MB
steps:
  - name: a
    request: {url: "http://x/"}
`},
			want: []string{
				`f.yaml:2:13: expected a size like 1MiB or 65536, got "1.5MB"`,
				`probes.yaml:1:14: expected an integer, got "abc"`,
				`probes.yaml:2:15: store.keep must be between 1 and 100000, got 0`,
				`probes.yaml:3:24: body_limit must be between 1 byte and 1GiB, got "2GiB"`,
				`probes.yaml:3:45: expected an integer, got "1.5"`,
				`probes.yaml:3:68: expected true or false, got "yes"`,
				`probes.yaml:4:9: listen address "8315" is not host:port: missing port in address`,
			},
		},
		{
			name: "run_on_start",
			files: map[string]string{
				"probes.yaml": "defaults: {run_on_start: soon}\nflows: [f.yaml]\n",
				"f.yaml":      "name: f\nrun_on_start: [yes]\nsteps:\n  - name: a\n    request: {url: \"http://x/\"}\n",
			},
			want: []string{
				`f.yaml:2:15: expected true or false, got a list`,
				`probes.yaml:1:26: expected true or false, got "soon"`,
			},
		},
		{
			name: "schedules",
			files: map[string]string{
				"probes.yaml": "flows: [\"c*.yaml\"]\n",
				"c1.yaml":     schedFlow("c1", `cron: "TZ=Europe/Berlin 0 * * * *"`),
				"c2.yaml":     schedFlow("c2", `cron: "@every 5m"`),
				"c3.yaml":     schedFlow("c3", `cron: ""`),
				"c4.yaml":     schedFlow("c4", `cron: "0 0 30 2 *"`),
				"c5.yaml":     schedFlow("c5", `cron: "61 * * * *"`),
				"c6.yaml":     schedFlow("c6", "every: 1m\ncron: \"@hourly\""),
				"c7.yaml":     schedFlow("c7", "cron: \"@daily\"\ntimezone: Mars/Olympus"),
				"c8.yaml":     schedFlow("c8", "every: 1m\ntimezone: UTC"),
				"c9.yaml":     schedFlow("c9", `cron: "* * *"`),
			},
			want: []string{
				`c1.yaml:2:7: cron spec cannot set a time zone; use the timezone key`,
				`c2.yaml:2:7: @every is not supported in cron; use the every key`,
				`c3.yaml:2:7: cron spec is empty`,
				`c4.yaml:2:7: cron spec "0 0 30 2 *" never fires`,
				`c5.yaml:2:7: bad cron spec "61 * * * *": end of range (61) above maximum (59): 61`,
				`c6.yaml:3:7: set either every or cron, not both`,
				`c7.yaml:3:11: unknown time zone "Mars/Olympus"`,
				`c8.yaml:3:11: timezone applies only to cron schedules`,
				`c9.yaml:2:7: bad cron spec "* * *": expected exactly 5 fields, found 3: [* * *]`,
			},
		},
		{
			name: "flow entry overrides schedule",
			files: map[string]string{
				"probes.yaml": "flows:\n  - {file: a.yaml, timezone: UTC}\n  - {file: b.yaml, every: 2m, cron: \"@daily\"}\n",
				"a.yaml":      schedFlow("a", "every: 1m"),
				"b.yaml":      schedFlow("b", "every: 1m"),
			},
			want: []string{
				`probes.yaml:2:30: timezone applies only to cron schedules`,
				`probes.yaml:3:37: set either every or cron, not both`,
			},
		},
		{
			name: "names",
			files: map[string]string{
				"probes.yaml": "region: Local\nflows: [a.yaml, b.yaml, c.yaml]\n",
				"a.yaml":      okFlow("x"),
				"b.yaml":      okFlow("x"),
				"c.yaml": `name: Bad_Name
steps:
  - request: {url: "http://x/"}
  - name: "a b"
    request: {url: "http://x/"}
    dependency: Bank
`,
			},
			want: []string{
				`b.yaml:1:7: duplicate flow name "x" (first defined at a.yaml:1:7)`,
				`c.yaml:1:7: flow name "Bad_Name" must match [a-z0-9][a-z0-9_-]*`,
				`c.yaml:3:5: step needs a name`,
				`c.yaml:4:11: step name "a b" must match [A-Za-z0-9_-]+`,
				`c.yaml:6:17: dependency "Bank" must match [a-z0-9][a-z0-9_-]*`,
				`probes.yaml:1:9: region "Local" must match [a-z0-9][a-z0-9_-]* (it becomes a Prometheus label value)`,
			},
		},
		{
			name: "defaults",
			files: map[string]string{
				"probes.yaml": "defaults: {timeout: 5s, step_timeout: 10s, every: 0.5s, headers: {X: \"{{nope}}\"}}\nflows: [f.yaml, g.yaml]\n",
				"f.yaml":      okFlow("f"),
				"g.yaml":      okFlow("g"),
			},
			want: []string{
				`probes.yaml:1:39: step_timeout 10s is longer than timeout 5s`,
				`probes.yaml:1:51: every must be at least 1s, got 500ms`,
				`probes.yaml:1:71: undefined variable "nope"`,
			},
		},
		{
			name: "odd shapes",
			files: map[string]string{"f.yaml": `name: f
body_limit: 10 parsecs
steps: {a: 1}
cleanup:
  - <<: 5
    name: c
    request: {url: "{{base}}/a b", query: {"": x, y: [1, [2]]}}
  - name: d
    request: {url: "http://x/", json: {? [k]: v}}
`},
			want: []string{
				`f.yaml:2:13: expected a size like 1MiB or 65536, got "10 parsecs"`,
				`f.yaml:3:8: expected a list of steps, got a mapping`,
				`f.yaml:5:9: merge key << needs a mapping or a list of mappings, got "5"`,
				`f.yaml:7:20: url "{{base}}/a b" is not a valid URL`,
				`f.yaml:7:44: empty parameter name`,
				`f.yaml:7:58: expected a string value, got a list`,
				`f.yaml:9:42: mapping keys must be strings, got a list`,
			},
		},
		{
			name: "duplicate step names across steps and cleanup",
			files: map[string]string{"f.yaml": `name: f
steps:
  - name: pay
    request: {url: "{{base}}/"}
cleanup:
  - name: pay
    request: {url: "{{base}}/"}
`},
			want: []string{`f.yaml:6:11: duplicate step name "pay" (first defined at f.yaml:3:11)`},
		},
		{
			name: "variables",
			files: map[string]string{"f.yaml": `name: f
steps:
  - name: a
    request: {url: "{{base}}/{{order_idd}}"}
  - name: b
    request: {url: "{{base}}/{{order_id}}"}
  - name: create_order
    request: {url: "{{base}}/"}
    capture: {order_id: json.id}
  - name: c
    request: {url: "{{base}}/{{order_idd}}?r={{region}}&s={{sku}}"}
cleanup:
  - name: d
    request: {url: "{{base}}/{{order_id}}/{{later}}"}
  - name: e
    request: {url: "{{base}}/", headers: {X: "{{later}}"}}
    capture: {later: header.X}
`},
			want: []string{
				`f.yaml:4:30: undefined variable "order_idd"`,
				`f.yaml:6:30: variable "order_id" is captured by step "create_order", which runs after this step`,
				`f.yaml:11:30: undefined variable "order_idd" (did you mean "order_id"?)`,
				`f.yaml:14:43: variable "later" is captured by step "e", which runs after this step`,
				`f.yaml:16:47: variable "later" is captured by this step, from its response, so its request cannot use it`,
			},
		},
		{
			name: "flow headers cannot use captures",
			files: map[string]string{"f.yaml": `name: f
headers: {Authorization: "Bearer {{token}}", X-Sku: "{{skuu}}"}
steps:
  - name: login
    request: {url: "{{base}}/"}
    capture: {token: json.token}
`},
			want: []string{
				`f.yaml:2:34: variable "token" is captured by step "login", but flow headers cannot use captures (they are sent on every step); set the header on the steps after it`,
				`f.yaml:2:54: undefined variable "skuu" (did you mean "sku"?)`,
			},
		},
		{
			name: "vars",
			files: map[string]string{
				"probes.yaml": `vars:
  a: "{{b}}"
  region: x
  c: "x ${env:NOPE}"
  "no good": x
flows: [{file: f.yaml, vars: {d: "{{e}}"}}]
`,
				"f.yaml": "name: f\nvars: {f: [x]}\nsteps:\n  - name: a\n    request: {url: \"http://x/\"}\n",
			},
			want: []string{
				`f.yaml:2:11: expected a string value, got a list`,
				`probes.yaml:2:7: vars cannot use {{...}}; use ${env:NAME} for environment values`,
				`probes.yaml:3:3: variable "region" shadows the built-in variable of that name`,
				`probes.yaml:4:9: environment variable NOPE is not set (use ${env:NOPE:-default} for a default)`,
				`probes.yaml:5:3: invalid variable name "no good": use letters, digits, _, - and ., starting with a letter or _`,
				`probes.yaml:6:35: vars cannot use {{...}}; use ${env:NAME} for environment values`,
			},
		},
		{
			name: "template and env syntax",
			files: map[string]string{"f.yaml": flow(`  - name: a
    request: {url: "{{base}}/{{ }}", body: "x {{oops"}
  - name: b
    request: {url: "http://${env:HOST}/${env:NOPE}", headers: {X: "${env:1x}"}}
`)},
			want: []string{
				`f.yaml:4:30: bad placeholder {{ }}: empty name`,
				`f.yaml:4:47: unclosed "{{": want {{name}} or {{secret:NAME}}`,
				`f.yaml:6:40: environment variable NOPE is not set (use ${env:NOPE:-default} for a default)`,
				`f.yaml:6:68: bad environment variable name "1x"`,
			},
		},
		{
			name: "requests",
			files: map[string]string{"f.yaml": `name: f
labels: {"bad-key": x, ok: "{{y}}"}
steps:
  - name: a
    request:
      method: "GE T"
      json: {a: 1}
      body: text
      content_type: text/plain
  - name: b
    request: {method: GET}
    until: {expect: [status == 200], within: 1m}
  - name: c
    request: {url: "{{base}}/", content_type: text/plain}
  - name: d
    request: {url: "ftp://x/", basic_auth: {password: x}}
    timeout: 1m
  - name: e
    request: {url: "http:///x"}
    until: {expect: [status == 200], interval: 20s, within: 5s}
  - name: f
    request: {url: "{{base}}/", headers: {"a b": x, accept: y, ACCEPT: z}}
`},
			want: []string{
				`f.yaml:2:10: label name "bad-key" must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __`,
				`f.yaml:2:29: labels cannot use {{...}}`,
				`f.yaml:6:7: request needs a url`,
				`f.yaml:6:15: invalid HTTP method "GE T"`,
				`f.yaml:8:7: request can have only one of json, form and body (json is already set)`,
				`f.yaml:11:14: request needs a url`,
				`f.yaml:12:46: until.within 1m0s is longer than the flow timeout 30s`,
				`f.yaml:14:47: content_type needs a body (json, form or body)`,
				`f.yaml:16:20: url "ftp://x/" must be an absolute http:// or https:// URL`,
				`f.yaml:16:44: basic_auth needs a user`,
				`f.yaml:17:14: step timeout 1m0s is longer than the flow timeout 30s`,
				`f.yaml:19:20: url "http:///x" must be an absolute http:// or https:// URL`,
				`f.yaml:20:48: until.interval 20s is longer than until.within 5s`,
				`f.yaml:22:43: invalid header name "a b"`,
				`f.yaml:22:64: duplicate header "ACCEPT" (first at f.yaml:22:53)`,
			},
		},
		{
			name: "tls",
			files: map[string]string{
				"probes.yaml": "flows: [a.yaml, b.yaml]\n",
				"a.yaml":      "name: a\ntls: {ca_file: missing.pem}\nsteps:\n  - name: s\n    request: {url: \"https://x/\"}\n",
				"b.yaml":      "name: b\ntls: {ca_file: notpem.txt, insecure_skip_verify: maybe}\nsteps:\n  - name: s\n    request: {url: \"https://x/\"}\n",
				"notpem.txt":  "hello\n",
			},
			want: []string{
				`a.yaml:2:16: tls.ca_file: reading missing.pem: file does not exist`,
				`b.yaml:2:16: tls.ca_file notpem.txt holds no PEM certificate`,
				`b.yaml:2:50: expected true or false, got "maybe"`,
			},
		},
		{
			name: "secrets",
			files: map[string]string{
				"probes.yaml": `secrets:
  A: {env: NOPE}
  B: {env: EMPTY}
  C: {file: /run/secrets/c}
  D: {file: empty.txt}
  E: {env: X, file: y}
  F: {}
  G: x
flows: [f.yaml]
`,
				"empty.txt": "\n",
				"f.yaml":    flow("  - name: a\n    request: {url: \"http://x/{{secret:A}}/{{secret:H}}/{{secret:TOKN}}\"}\n"),
			},
			want: []string{
				`f.yaml:4:43: undefined secret "H" (declare it under secrets: in probes.yaml)`,
				`f.yaml:4:56: undefined secret "TOKN" (declare it under secrets: in probes.yaml)`,
				`probes.yaml:2:3: secret A: environment variable NOPE is not set`,
				`probes.yaml:3:3: secret B: environment variable EMPTY is empty`,
				`probes.yaml:4:3: secret C: reading /run/secrets/c: no such file or directory`,
				`probes.yaml:5:3: secret D: file empty.txt is empty`,
				`probes.yaml:6:3: secret E needs exactly one of env: or file:`,
				`probes.yaml:7:3: secret F needs exactly one of env: or file:`,
				`probes.yaml:8:6: expected a mapping for secret, got "x"`,
			},
		},
		{
			name:  "undefined secret with suggestion",
			files: map[string]string{"f.yaml": flow("  - name: a\n    request: {url: \"http://x/{{secret:TOKN}}\"}\n")},
			want:  []string{`f.yaml:4:30: undefined secret "TOKN" (did you mean "TOKEN"?)`},
		},
		{
			name: "flow list",
			files: map[string]string{
				"probes.yaml": `flows:
  - f.yaml
  - ./f.yaml
  - nope.yaml
  - /abs.yaml
  - ../up.yaml
  - "x*.yaml"
  - file: f.yaml
  - {vars: {a: b}}
  - [x]
  - "[bad"
`,
				"f.yaml": okFlow("f"),
			},
			want: []string{
				`probes.yaml:3:5: flow file f.yaml is listed twice (first at probes.yaml:2:5)`,
				`probes.yaml:4:5: flow file nope.yaml does not exist`,
				`probes.yaml:5:5: flow path "/abs.yaml" must be relative to the directory of probes.yaml: the configuration is read as one directory tree (what validate checks is what the daemon and its container load); move or copy the flow file under that directory and list it relative to it, e.g. flows/name.yaml`,
				`probes.yaml:6:5: flow path "../up.yaml" is outside the configuration directory (the directory of probes.yaml): the configuration is read as one directory tree (what validate checks is what the daemon and its container load); move or copy the flow file under that directory and list it relative to it, e.g. flows/name.yaml`,
				`probes.yaml:7:5: glob "x*.yaml" matches no flow files`,
				`probes.yaml:8:11: flow file f.yaml is listed twice (first at probes.yaml:2:5)`,
				`probes.yaml:9:5: flow entry needs file:`,
				`probes.yaml:10:5: expected a flow file path or a mapping with file:, got a list`,
				`probes.yaml:11:5: bad glob "[bad": syntax error in pattern`,
			},
		},
		{
			name:  "no flows",
			files: map[string]string{"probes.yaml": "flows: []\n"},
			want:  []string{`probes.yaml:1:8: flows: list at least one flow file`},
		},
		{
			name:  "no steps",
			files: map[string]string{"f.yaml": "name: f\nsteps: []\n"},
			want:  []string{`f.yaml:2:8: flow needs at least one step`},
		},
		{
			name:  "yaml syntax error",
			files: map[string]string{"f.yaml": "name: f\nsteps:\n  - name: a\n   request: x\n"},
			want:  []string{`f.yaml:2:1: invalid YAML: did not find expected '-' indicator`},
		},
		{
			name:  "empty file",
			files: map[string]string{"f.yaml": "# nothing\n"},
			want:  []string{`f.yaml: file is empty`},
		},
		{
			name:  "two documents",
			files: map[string]string{"f.yaml": okFlow("f") + "---\nname: g\n"},
			want:  []string{`f.yaml:5:1: a file holds one YAML document; found another here`},
		},
		{
			name: "alias bomb",
			files: map[string]string{"f.yaml": flow(`  - name: a
    request:
      url: "http://x/"
      json:
        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
        h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
`)},
			want: []string{`f.yaml:9:37: alias *b: aliases expand to too much data here (an alias bomb, or an anchor that contains itself)`},
		},
		{
			name: "self-referencing anchor",
			files: map[string]string{"f.yaml": flow(`  - name: a
    request:
      url: "http://x/"
      json: &a {x: *a}
`)},
			want: []string{`f.yaml:6:20: alias *a: aliases expand to too much data here (an alias bomb, or an anchor that contains itself)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := loadFiles(t, tt.files)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// okFlow is a valid flow file named name.
func okFlow(name string) string {
	return "name: " + name + "\nsteps:\n  - name: a\n    request: {url: \"http://x/\"}\n"
}

// schedFlow is a valid flow file named name with schedule lines after the name.
func schedFlow(name, sched string) string {
	return "name: " + name + "\n" + sched + "\nsteps:\n  - name: a\n    request: {url: \"http://x/\"}\n"
}

// Expectation and capture errors are assert's messages at the position of
// the offending byte; the messages are assert's business, so they are taken
// from it here.
func TestAssertErrors(t *testing.T) {
	_, got := loadFiles(t, map[string]string{"f.yaml": flow(`  - name: a
    request: {url: "{{base}}/"}
    expect: [status == = 200, 'json.y = 1', "json.x =="]
    capture: {sku: json.sku, region: status, 9x: json.x, ok: "json."}
    until:
      expect: ["- 1"]
`)})
	msg := func(src string, value bool) string {
		var err error
		if value {
			_, err = assert.CompileValue(src)
		} else {
			_, err = assert.Compile(src)
		}
		var se *assert.SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("%q: %v is not a *SyntaxError", src, err)
		}
		return se.Msg
	}
	want := []string{
		"f.yaml:5:24: " + msg("status == = 200", false),
		"f.yaml:5:39: " + msg("json.y = 1", false),
		"f.yaml:5:55: " + msg("json.x ==", false),
		`f.yaml:6:15: capture "sku" shadows the flow variable of that name`,
		`f.yaml:6:30: capture "region" shadows the built-in variable of that name`,
		`f.yaml:6:46: capture name "9x" must match [A-Za-z_][A-Za-z0-9_]*`,
		"f.yaml:6:68: " + msg("json.", true),
		"f.yaml:8:17: " + msg("- 1", false),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestGlobSkipsTheConfigFile(t *testing.T) {
	cfg, errs := loadFiles(t, map[string]string{
		"probes.yaml": "flows: [\"*.yaml\"]\n",
		"b.yaml":      okFlow("b"),
		"a.yaml":      okFlow("a"),
	})
	if errs != nil {
		t.Fatal(errs)
	}
	if len(cfg.Flows) != 2 || cfg.Flows[0].Name != "a" || cfg.Flows[1].Name != "b" {
		t.Errorf("flows: %+v", cfg.Flows)
	}
}

func TestRootNotAMapping(t *testing.T) {
	_, errs := loadFiles(t, map[string]string{"f.yaml": "- name: f\n"})
	if want := []string{`f.yaml:1:1: expected a mapping for flow, got a list`}; !slices.Equal(errs, want) {
		t.Errorf("got %q", errs)
	}
	_, errs = loadFiles(t, map[string]string{"probes.yaml": "flows\n"})
	if want := []string{`probes.yaml:1:1: expected a mapping for probes.yaml, got "flows"`}; !slices.Equal(errs, want) {
		t.Errorf("got %q", errs)
	}
}

func TestMissingConfig(t *testing.T) {
	_, err := Load(fstest.MapFS{}, "conf/probes.yaml", Options{Notifiers: testKinds, Env: lookup(nil)})
	if want := "reading conf/probes.yaml: file does not exist"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
