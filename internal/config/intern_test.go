package config

import (
	"fmt"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/prober-dev/prober/internal/template"
)

// TestSharedPieces: flows with equal labels, vars and headers share them;
// a flow that differs in any of them gets its own, with its own values.
func TestSharedPieces(t *testing.T) {
	flowFile := func(name, labels, header string) string {
		return fmt.Sprintf(`name: %s
labels: %s
steps:
  - name: login
    request: {url: "http://x/login", headers: {Authorization: "%s {{target}}"}}
    expect: [status == 200]
    capture: {token: json.token}
  - name: pay
    dependency: bank-gateway
    request: {url: "http://x/pay", tls: {insecure_skip_verify: true}}
    expect: [status == 200]
`, name, labels, header)
	}
	cfg, errs := loadFiles(t, map[string]string{
		"probes.yaml": `vars: {target: "http://x"}
defaults: {headers: {Accept: application/json}}
flows: [a.yaml, b.yaml, c.yaml, {file: d.yaml, vars: {target: "http://y"}}]
`,
		"a.yaml": flowFile("a", "{team: pay}", "Bearer 1"),
		"b.yaml": flowFile("b", "{team: pay}", "Bearer 1"),
		"c.yaml": flowFile("c", "{team: pay, tier: 1}", "Bearer 2"),
		"d.yaml": flowFile("d", "{team: pay}", "Bearer 1"),
	})
	if errs != nil {
		t.Fatal(errs)
	}
	byName := map[string]*Flow{}
	for _, f := range cfg.Flows {
		byName[f.Name] = f
	}
	a, b, c, d := byName["a"], byName["b"], byName["c"], byName["d"]
	same := func(x, y any) bool { return reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer() }
	tests := []struct {
		what       string
		x, y       any
		wantShared bool
	}{
		{"labels of a and b", a.Labels, b.Labels, true},
		{"labels of a and c", a.Labels, c.Labels, false},
		{"vars of a and b", a.Vars, b.Vars, true},
		{"vars of a and d (entry vars)", a.Vars, d.Vars, false},
		{"login headers of a and b", httpOf(a.Steps[0]).Headers, httpOf(b.Steps[0]).Headers, true},
		{"login headers of a and c", httpOf(a.Steps[0]).Headers, httpOf(c.Steps[0]).Headers, false},
		{"pay headers of a and c (defaults only)", httpOf(a.Steps[1]).Headers, httpOf(c.Steps[1]).Headers, true},
		{"login requests of a and b", httpOf(a.Steps[0]), httpOf(b.Steps[0]), true},
		{"login requests of a and c (a header differs)", httpOf(a.Steps[0]), httpOf(c.Steps[0]), false},
		{"pay requests of a and b (a tls: block: the step's own)", httpOf(a.Steps[1]), httpOf(b.Steps[1]), false},
		{"login expectations of a and c", a.Steps[0].Expect, c.Steps[0].Expect, true},
		{"login captures of a and c", a.Steps[0].Captures, c.Steps[0].Captures, true},
		{"login templates of a and b", a.Steps[0].Templates, b.Steps[0].Templates, true},
		{"login templates of a and c", a.Steps[0].Templates, c.Steps[0].Templates, false},
		{"pay templates of a and c (none: its URL has no placeholders)", a.Steps[1].Templates, []*template.Template(nil), true},
		{"step names of a and c", unsafe.StringData(a.Steps[1].Name), unsafe.StringData(c.Steps[1].Name), true},
	}
	for _, tt := range tests {
		if got := same(tt.x, tt.y); got != tt.wantShared {
			t.Errorf("%s: shared %v, want %v", tt.what, got, tt.wantShared)
		}
	}
	if fmt.Sprint(c.Labels) != "map[team:pay tier:1]" || d.Vars["target"] != "http://y" || a.Vars["target"] != "http://x" {
		t.Errorf("values changed: c labels %v, d vars %v, a vars %v", c.Labels, d.Vars, a.Vars)
	}
	if h := httpOf(c.Steps[0]).Headers; len(h) != 2 || h[1].Value.String() != "Bearer 2 {{target}}" {
		t.Errorf("c's login headers %v", h)
	}
}

// TestHTTPSpecKeyCoversFields: httpSpec shares requests by a key of every
// HTTPSpec and Body field; a field added to either must be added to the
// key too, or two requests differing only in it would be merged.
func TestHTTPSpecKeyCoversFields(t *testing.T) {
	for _, tt := range []struct {
		typ  reflect.Type
		want int
	}{{reflect.TypeFor[HTTPSpec](), 8}, {reflect.TypeFor[Body](), 4}, {reflect.TypeFor[BasicAuth](), 2}} {
		if n := tt.typ.NumField(); n != tt.want {
			t.Errorf("%s has %d fields, the key in interns.httpSpec knows %d: add the new one to it, then here", tt.typ, n, tt.want)
		}
	}
}

// TestSharedSteps: steps equal in everything but their place and their
// request share one StepDef, across flows and includes; a step that differs
// in any of its fields has its own; steps equal in their request too are
// one Step.
func TestSharedSteps(t *testing.T) {
	flowFile := func(name, user, expect, extra string) string {
		return fmt.Sprintf(`name: %s
steps:
  - name: login
    request: {method: POST, url: "http://x/login", json: {user: %s}}
    expect: [%s]
    capture: {token: json.token}
  - name: pay
    dependency: bank-gateway
    request: {url: "http://x/pay", headers: {Authorization: "Bearer {{token}}"}}
    expect: [status == 200]
    until: {expect: [json.state == "paid"], within: 5s}
    retry: {attempts: 2}
%s  - include: common.yaml
`, name, user, expect, extra)
	}
	cfg, errs := loadFiles(t, map[string]string{
		"probes.yaml": `flows: [a.yaml, b.yaml, c.yaml, d.yaml]
`,
		"common.yaml": `steps:
  - name: health
    request: {url: "http://x/health"}
`,
		// b differs from a in its request only; c in an expectation; d
		// in its pay step's timeout.
		"a.yaml": flowFile("a", "u1", "status == 200", ""),
		"b.yaml": flowFile("b", "u2", "status == 200", ""),
		"c.yaml": flowFile("c", "u1", "status == 201", ""),
		"d.yaml": flowFile("d", "u1", "status == 200", "    timeout: 3s\n"),
	})
	if errs != nil {
		t.Fatal(errs)
	}
	byName := map[string]*Flow{}
	for _, f := range cfg.Flows {
		byName[f.Name] = f
	}
	a, b, c, d := byName["a"], byName["b"], byName["c"], byName["d"]
	for _, tt := range []struct {
		what       string
		x, y       *Step
		wantShared bool
	}{
		{"login of a and b (requests differ)", a.Steps[0], b.Steps[0], true},
		{"login of a and c (an expectation differs)", a.Steps[0], c.Steps[0], false},
		{"login of a and d", a.Steps[0], d.Steps[0], true},
		{"pay of a and b (until, retry)", a.Steps[1], b.Steps[1], true},
		{"pay of a and c", a.Steps[1], c.Steps[1], true},
		{"pay of a and d (its timeout differs)", a.Steps[1], d.Steps[1], false},
		{"included health of a and d", a.Steps[2], d.Steps[2], true},
		{"login and health of a", a.Steps[0], a.Steps[2], false},
	} {
		if got := tt.x.StepDef == tt.y.StepDef; got != tt.wantShared {
			t.Errorf("%s: shared %v, want %v", tt.what, got, tt.wantShared)
		}
	}
	if httpOf(a.Steps[0]) == httpOf(b.Steps[0]) {
		t.Error("login requests of a and b (different bodies) are one")
	}
	// Steps equal in their request too are one Step; the rest are their
	// own, and each is what it was written as.
	for _, tt := range []struct {
		what       string
		x, y       *Step
		wantShared bool
	}{
		{"login of a and b (requests differ)", a.Steps[0], b.Steps[0], false},
		{"login of a and d", a.Steps[0], d.Steps[0], true},
		{"pay of a and b", a.Steps[1], b.Steps[1], true},
		{"pay of a and d (its timeout differs)", a.Steps[1], d.Steps[1], false},
		{"included health of a and c", a.Steps[2], c.Steps[2], true},
	} {
		if got := tt.x == tt.y; got != tt.wantShared {
			t.Errorf("%s: one Step %v, want %v", tt.what, got, tt.wantShared)
		}
	}
	for _, f := range cfg.Flows {
		for i, want := range []string{"login", "pay", "health"} {
			if s := f.Steps[i]; s.Name != want || httpOf(s).URL == nil {
				t.Errorf("%s step %d: %+v", f.Name, i, s)
			}
		}
	}
	if got := d.Steps[1].Timeout; got != 3*time.Second {
		t.Errorf("d's pay timeout %s", got)
	}
	if got := a.Steps[1].Timeout; got != 10*time.Second {
		t.Errorf("a's pay timeout %s", got)
	}
	if got := c.Steps[0].Expect[0].String(); got != "status == 201" {
		t.Errorf("c's login expects %s", got)
	}
	if p := a.Steps[1]; p.Dependency != "bank-gateway" || p.Retry == nil || p.Retry.Attempts != 2 || p.Until == nil || p.Until.Within != 5*time.Second || !p.StatusChecked {
		t.Errorf("a's pay: %+v", *p.StepDef)
	}
}

// TestSharedFlowDefs: flows equal in everything but their name, place,
// labels, vars and steps share one FlowDef; one that differs in any of its
// fields has its own, with its own values.
func TestSharedFlowDefs(t *testing.T) {
	flowFile := func(name, extra string) string {
		return fmt.Sprintf("name: %s\nlabels: {team: %s}\n%ssteps:\n  - name: s\n    request: {url: \"http://x/{{v}}\"}\n", name, name, extra)
	}
	cfg, errs := loadFiles(t, map[string]string{
		"probes.yaml": `defaults: {every: 30s, keep_response: 1000}
flows: [a.yaml, b.yaml, c.yaml, d.yaml, e.yaml, {file: f.yaml, vars: {v: f}}]
`,
		"a.yaml": flowFile("a", "vars: {v: a}\n"),
		"b.yaml": flowFile("b", "vars: {v: b}\ndescription: bee\n"), // b's description differs: its own
		"c.yaml": flowFile("c", "vars: {v: c}\ntimeout: 20s\n"),
		"d.yaml": flowFile("d", "vars: {v: d}\nbody_limit: 2048\n"),
		"e.yaml": flowFile("e", "vars: {v: e}\nevery: 1m\n"),
		"f.yaml": flowFile("f", ""),
	})
	if errs != nil {
		t.Fatal(errs)
	}
	byName := map[string]*Flow{}
	for _, f := range cfg.Flows {
		byName[f.Name] = f
	}
	a := byName["a"]
	for _, tt := range []struct {
		flow       string
		wantShared bool
	}{{"b", false}, {"c", false}, {"d", false}, {"e", false}, {"f", true}} {
		if got := byName[tt.flow].FlowDef == a.FlowDef; got != tt.wantShared {
			t.Errorf("a and %s: shared %v, want %v", tt.flow, got, tt.wantShared)
		}
	}
	b, c, d, e, f := byName["b"], byName["c"], byName["d"], byName["e"], byName["f"]
	if a.Timeout != 30*time.Second || c.Timeout != 20*time.Second || d.HTTP.BodyLimit != 2048 || a.HTTP.BodyLimit != 1<<20 ||
		e.Schedule.Every != time.Minute || a.Schedule.Every != 30*time.Second || a.HTTP.KeepResponse != 1000 {
		t.Errorf("values: a %+v, c %s, d %d, e %s", *a.FlowDef, c.Timeout, d.HTTP.BodyLimit, e.Schedule.Every)
	}
	if b.Description != "bee" || a.Description != "" || b.Vars["v"] != "b" || f.Vars["v"] != "f" || b.Labels["team"] != "b" ||
		b.File != "b.yaml" || b.Pos != (Pos{"b.yaml", 1, 1}) {
		t.Errorf("b's own: %+v", b)
	}
}

// TestStepDefKeyCoversFields: interns.stepDef, until, retry and flowDef
// share by keys of every field; a field added must be added to the key too, or two
// steps differing only in it would be merged.
func TestStepDefKeyCoversFields(t *testing.T) {
	for _, tt := range []struct {
		typ  reflect.Type
		want int
	}{
		{reflect.TypeFor[StepDef](), 12}, {reflect.TypeFor[Until](), 3}, {reflect.TypeFor[Retry](), 5},
		{reflect.TypeFor[FlowDef](), 7}, {reflect.TypeFor[HTTPOptions](), 14},
		{reflect.TypeFor[Step](), 3}, // interns.step: its Spec, Templates and StepDef
	} {
		if n := tt.typ.NumField(); n != tt.want {
			t.Errorf("%s has %d fields, the key in interns knows %d: add the new one to it, then here", tt.typ, n, tt.want)
		}
	}
}
