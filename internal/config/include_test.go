package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// loginSteps is a steps file with a required, a secret and a defaulted
// parameter.
const loginSteps = `description: log in
params:
  user: {}
  password: {description: a secret reference}
  path: {default: /api/login}
  timeout: {default: 5s}
steps:
  - name: login
    request:
      method: POST
      url: "{{base}}{{path}}"
      json: {user: "{{user}}", password: "{{password}}"}
    timeout: "{{ timeout }}"
    expect:
      - status == 200
      - json.user == "{{user}}"
    capture:
      token: json.token
`

func TestIncludeGood(t *testing.T) {
	files := map[string]string{
		"flows/f.yaml": `name: f
steps:
  - include: ../steps/login.yaml
    with: {user: alice, password: "{{secret:TOKEN}}", timeout: 3s}
  - name: me
    request:
      url: "{{base}}/me"
      headers: {Authorization: "Bearer {{token}}"}
  - include: ../steps/login.yaml
    as: again
    with: {user: bob, password: "{{secret:TOKEN}}", path: /v2/login, timeout: 4s}
cleanup:
  - include: ../steps/logout.yaml
`,
		"steps/login.yaml":  loginSteps,
		"steps/logout.yaml": "steps:\n  - include: common/out.yaml\n",
		"steps/common/out.yaml": `steps:
  - name: logout
    request: {method: POST, url: "{{base}}/logout"}
`,
		"probes.yaml": strings.Replace(baseProbes, "flows: [f.yaml]", "flows: [flows/f.yaml]", 1),
	}
	cfg, errs := loadFiles(t, files)
	if errs != nil {
		t.Fatalf("errors:\n%s", strings.Join(errs, "\n"))
	}
	fl := cfg.Flows[0]
	var names []string
	for _, s := range slices.Concat(fl.Steps, fl.Cleanup) {
		names = append(names, s.Name)
	}
	if want := []string{"login", "me", "again-login", "logout"}; !slices.Equal(names, want) {
		t.Fatalf("step names %v, want %v", names, want)
	}
	login, again := fl.Steps[0], fl.Steps[2]
	if login.Timeout != 3*time.Second || again.Timeout != 4*time.Second {
		t.Errorf("timeouts from parameters: %v %v", login.Timeout, again.Timeout)
	}
	sc := scope{vars: map[string]string{"base": "http://shop"}, secrets: map[string]string{"TOKEN": `pw"1`}}
	if got := expand(t, httpOf(login).URL, sc); got != "http://shop/api/login" {
		t.Errorf("default path: %q", got)
	}
	if got := expand(t, httpOf(again).URL, sc); got != "http://shop/v2/login" {
		t.Errorf("given path: %q", got)
	}
	// The secret stays a secret reference (JSON-escaped at run time, and
	// redacted wherever it shows); the literal is just text.
	if got := expand(t, httpOf(login).Body.Template, sc); got != `{"user":"alice","password":"pw\"1"}` {
		t.Errorf("body %s", got)
	}
	if got := httpOf(login).Body.Template.String(); !strings.Contains(got, "{{secret:TOKEN}}") {
		t.Errorf("body template %s: the parameter is not a secret reference", got)
	}
	if got := login.Expect[1].String(); got != `json.user == "alice"` {
		t.Errorf("expectation %s", got)
	}
	if got := again.Expect[1].String(); got != `json.user == "bob"` {
		t.Errorf("expectation %s", got)
	}
	if fl.Cleanup[0].Cleanup != true {
		t.Errorf("an included cleanup step is a cleanup step")
	}
}

func TestIncludeErrors(t *testing.T) {
	probes := strings.Replace(baseProbes, "flows: [f.yaml]", "flows: [flows/f.yaml]", 1)
	inc := func(entry string, files map[string]string) map[string]string {
		out := map[string]string{"probes.yaml": probes, "flows/f.yaml": "name: f\nsteps:\n" + entry}
		for k, v := range files {
			out[k] = v
		}
		return out
	}
	login := map[string]string{"flows/login.yaml": loginSteps}
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name:  "missing parameter",
			files: inc("  - include: login.yaml\n    with: {user: a}\n", login),
			want:  []string{`flows/f.yaml:3:5: include of flows/login.yaml: missing parameter "password" (declared at flows/login.yaml:4:3); pass it under with:`},
		},
		{
			name:  "unknown parameter",
			files: inc("  - include: login.yaml\n    with: {user: a, password: b, pasword: c}\n", login),
			want:  []string{`flows/f.yaml:4:34: unknown parameter "pasword" of flows/login.yaml (did you mean "password"?)`},
		},
		{
			name:  "undefined secret passed",
			files: inc("  - include: login.yaml\n    with: {user: a, password: \"{{secret:NOPE}}\"}\n", login),
			want:  []string{`flows/f.yaml:4:32: undefined secret "NOPE" (declare it under secrets: in probes.yaml)`},
		},
		{
			name:  "unknown field in the entry",
			files: inc("  - include: login.yaml\n    with: {user: a, password: b}\n    name: x\n", login),
			want:  []string{`flows/f.yaml:5:5: unknown field "name" in include entry (include:, with:, as:)`},
		},
		{
			name: "errors point into the included file",
			files: inc("  - include: login.yaml\n    with: {user: a, password: b}\n", map[string]string{"flows/login.yaml": `params:
  user: {}
  password: {}
steps:
  - name: login
    request: {url: "{{base}}/login?u={{user}}&t={{tokn}}"}
    expcet: [status == 200]
  - name: check
    request: {url: "{{base}}/x"}
    expect:
      - json.user == "{{user}}" &&
`}),
			want: []string{
				`flows/login.yaml:6:21: undefined variable "tokn" (included by flows/f.yaml:3:5)`,
				`flows/login.yaml:7:5: unknown field "expcet" in step (did you mean "expect"?) (included by flows/f.yaml:3:5)`,
				`flows/login.yaml:11:9: unexpected "&&": an expectation is a single check; write several expectations (a list) instead of joining them (included by flows/f.yaml:3:5)`,
			},
		},
		{
			name:  "invalid YAML in the included file",
			files: inc("  - include: login.yaml\n", map[string]string{"flows/login.yaml": "steps:\n  - name: [a\n"}),
			want:  []string{`flows/login.yaml:1:1: invalid YAML: did not find expected ',' or ']' (included by flows/f.yaml:3:5)`},
		},
		{
			name: "cycle",
			files: inc("  - include: a.yaml\n", map[string]string{
				"flows/a.yaml": "steps:\n  - include: sub/b.yaml\n",
				"flows/sub/b.yaml": `steps:
  - name: b
    request: {url: "{{base}}/b"}
  - include: ../a.yaml
`,
			}),
			want: []string{`flows/sub/b.yaml:4:14: include cycle: flows/a.yaml -> flows/sub/b.yaml -> flows/a.yaml (included by flows/a.yaml:2:5, included by flows/f.yaml:3:5)`},
		},
		{
			name:  "includes itself",
			files: inc("  - include: f.yaml\n", nil),
			want:  []string{`flows/f.yaml:3:14: include cycle: flows/f.yaml -> flows/f.yaml`},
		},
		{
			name: "too deep",
			files: inc("  - include: d0.yaml\n", func() map[string]string {
				m := map[string]string{}
				for i := range 12 {
					m["flows/d"+string(rune('0'+i))+".yaml"] = "steps:\n  - include: d" + string(rune('0'+i+1)) + ".yaml\n"
				}
				return m
			}()),
			want: []string{`flows/d7.yaml:2:14: includes nested more than 8 deep (flows/f.yaml -> flows/d0.yaml -> flows/d1.yaml -> flows/d2.yaml -> flows/d3.yaml -> flows/d4.yaml -> flows/d5.yaml -> flows/d6.yaml -> flows/d7.yaml -> flows/d8.yaml) (included by flows/d6.yaml:2:5, included by flows/d5.yaml:2:5, included by flows/d4.yaml:2:5, included by flows/d3.yaml:2:5, included by flows/d2.yaml:2:5, included by flows/d1.yaml:2:5, included by flows/d0.yaml:2:5, included by flows/f.yaml:3:5)`},
		},
		{
			name:  "escaping the config directory",
			files: inc("  - include: ../../etc/steps.yaml\n", nil),
			want:  []string{`flows/f.yaml:3:14: include path "../../etc/steps.yaml" is outside the configuration directory (the directory of probes.yaml): move the steps file under it`},
		},
		{
			name:  "absolute path",
			files: inc("  - include: /etc/steps.yaml\n", nil),
			want:  []string{`flows/f.yaml:3:14: include path "/etc/steps.yaml" must be relative to the directory of flows/f.yaml`},
		},
		{
			name:  "missing file",
			files: inc("  - include: nope.yaml\n", nil),
			want:  []string{`flows/f.yaml:3:14: steps file flows/nope.yaml does not exist`},
		},
		{
			name:  "same steps twice without as",
			files: inc("  - include: login.yaml\n    with: {user: a, password: b}\n  - include: login.yaml\n    with: {user: a, password: b}\n", login),
			want:  []string{`flows/login.yaml:8:11: duplicate step name "login" (first defined at flows/login.yaml:8:11): give the include its own as: to prefix the names of its steps (included by flows/f.yaml:5:5)`},
		},
		{
			// A steps file a glob also lists is loaded as a flow too: its
			// errors as a flow are not "included by" anything.
			name: "a steps file also listed as a flow",
			files: inc("  - include: s.yaml\n", map[string]string{
				"probes.yaml":  strings.Replace(probes, "flows: [flows/f.yaml]", `flows: ["flows/*.yaml"]`, 1),
				"flows/s.yaml": "steps:\n  - name: s\n    request: {url: \"{{base}}/s\"}\n",
			}),
			want: []string{`flows/s.yaml:1:1: flow needs a name`},
		},
		{
			name: "bad declarations",
			files: inc("  - include: p.yaml\n", map[string]string{"flows/p.yaml": `name: p
params:
  a: {default: x, required: true}
  flow: {}
steps: []
`}),
			want: []string{
				`flows/p.yaml:1:1: unknown field "name" in steps file (params:, steps:) (included by flows/f.yaml:3:5)`,
				`flows/p.yaml:3:29: parameter "a" is required and has a default: one or the other (included by flows/f.yaml:3:5)`,
				`flows/p.yaml:4:3: parameter "flow" shadows the built-in variable of that name (included by flows/f.yaml:3:5)`,
				`flows/p.yaml:5:8: a steps file needs at least one step (included by flows/f.yaml:3:5)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := loadFiles(t, tt.files)
			if !slices.Equal(errs, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(errs, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// A secret value never shows in an error about an included file, even one
// passed in as a parameter's text.
func TestIncludeSecretRedacted(t *testing.T) {
	files := map[string]string{
		"f.yaml": "name: f\nsteps:\n  - include: s.yaml\n    with: {v: \"${env:TOKEN}\"}\n",
		"s.yaml": "params: {v: {}}\nsteps:\n  - name: a\n    request: {url: \"{{base}}/{{v}}\"}\n    timeout: \"{{v}}\"\n",
	}
	_, errs := loadFiles(t, files)
	if len(errs) == 0 {
		t.Fatal("no error")
	}
	for _, e := range errs {
		if strings.Contains(e, testEnv["TOKEN"]) {
			t.Errorf("secret shown: %s", e)
		}
	}
}
