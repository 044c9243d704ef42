package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/template"
)

const shopPassword = "Hunter2:Secret!"

func goodEnv() map[string]string {
	return map[string]string{"SHOP_PASSWORD": shopPassword}
}

func loadGood(t *testing.T, o Options) *Config {
	t.Helper()
	if o.Env == nil {
		o.Env = lookup(goodEnv())
	}
	o.Notifiers = testKinds
	cfg, err := Load(os.DirFS("testdata/good"), "probes.yaml", o)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// scope is a template.Scope over maps.
type scope struct{ vars, secrets map[string]string }

func (s scope) Var(name string) (string, bool)    { v, ok := s.vars[name]; return v, ok }
func (s scope) Secret(name string) (string, bool) { v, ok := s.secrets[name]; return v, ok }

func expand(t *testing.T, tm *template.Template, s scope) string {
	t.Helper()
	out, err := tm.ExpandString(s)
	if err != nil {
		t.Fatalf("expanding %q: %v", tm, err)
	}
	return out
}

func TestLoadGood(t *testing.T) {
	cfg := loadGood(t, Options{})
	if cfg.File != "probes.yaml" || cfg.Region != "local" || cfg.Listen != "127.0.0.1:8315" ||
		cfg.Concurrency != 16 || cfg.Store.Keep != 100 {
		t.Errorf("daemon settings: %+v", cfg)
	}
	if got := cfg.Secrets.Names(); !slices.Equal(got, []string{"API_KEY", "SHOP_PASSWORD"}) {
		t.Errorf("secrets: %v", got)
	}
	if v, _ := cfg.Secrets.Get("API_KEY"); v != "key-0123456789" {
		t.Errorf("file secret with its newline trimmed: %q", v)
	}
	if v, _ := cfg.Secrets.Get("SHOP_PASSWORD"); v != shopPassword {
		t.Errorf("env secret: %q", v)
	}
	if len(cfg.Flows) != 2 {
		t.Fatalf("%d flows", len(cfg.Flows))
	}

	co := cfg.Flows[0]
	if co.Name != "checkout" || co.File != "flows/checkout.yaml" || co.Pos != (Pos{"flows/checkout.yaml", 1, 1}) {
		t.Errorf("checkout: %s %s %v", co.Name, co.File, co.Pos)
	}
	if co.Schedule.Cron != "*/5 * * * *" || co.Schedule.Location.String() != "Europe/Berlin" || co.Schedule.Every != 0 {
		t.Errorf("checkout schedule: %+v", co.Schedule)
	}
	if co.Timeout != 30*time.Second {
		t.Errorf("timeout %v", co.Timeout)
	}
	if fmt.Sprint(co.Labels) != "map[team:payments tier:critical]" {
		t.Errorf("labels %v", co.Labels)
	}
	if fmt.Sprint(co.Vars) != "map[shop_url:http://127.0.0.1:8080 sku:SENTINEL-SKU-1]" {
		t.Errorf("vars %v", co.Vars)
	}
	h := co.HTTP
	if h.BodyLimit != 1<<20 || !h.FollowRedirects || h.MaxRedirects != 10 || h.CAFile != "flows/ca.pem" ||
		!strings.HasPrefix(string(h.CAPEM), "-----BEGIN CERTIFICATE-----") || h.ServerName != "shop.internal" || h.InsecureSkipVerify {
		t.Errorf("http: %+v", h)
	}
	names := func(steps []*Step) (out []string) {
		for _, s := range steps {
			out = append(out, s.Name)
		}
		return out
	}
	if got := names(co.Steps); !slices.Equal(got, []string{"login", "create_order", "pay", "confirm"}) {
		t.Errorf("steps %v", got)
	}
	if got := names(co.Cleanup); !slices.Equal(got, []string{"cancel"}) || !co.Cleanup[0].Cleanup || co.Steps[0].Cleanup {
		t.Errorf("cleanup %v", got)
	}

	sc := scope{
		vars: map[string]string{
			"shop_url": "http://shop", "sku": `S"1`, "token": "tok", "order_id": "o/1",
			"run_id": "r\n1", "idempotency_key": "k",
		},
		secrets: map[string]string{"SHOP_PASSWORD": `p"w\`, "API_KEY": "key"},
	}
	login := co.Steps[0]
	if login.Method != "POST" || login.Timeout != 5*time.Second ||
		!login.StatusChecked || len(login.Expect) != 2 || len(login.Captures) != 1 || login.Captures[0].Name != "token" {
		t.Errorf("login: %+v", login)
	}
	if got := expand(t, httpOf(login).URL, sc); got != "http://shop/api/login" {
		t.Errorf("login url %q", got)
	}
	if httpOf(login).Body.Kind != JSONBody || httpOf(login).Body.ContentType != "application/json" {
		t.Errorf("login body %+v", httpOf(login).Body)
	}
	body := expand(t, httpOf(login).Body.Template, sc)
	if want := `{"user":"synthetic-1","password":"p\"w\\"}`; body != want {
		t.Errorf("login body %s, want %s", body, want)
	}

	order := co.Steps[1]
	body = expand(t, httpOf(order).Body.Template, sc)
	var decoded map[string]any
	if err := json.Unmarshal([]byte(body), &decoded); err != nil {
		t.Fatalf("order body %s: %v", body, err)
	}
	want := `{"sku":"S\"1","quantity":1,"price":9.99,"gift":false,"note":null,"tags":["synthetic","run r\n1"],"text":"say \"hi\"\n"}`
	if body != want {
		t.Errorf("order body\n%s\nwant\n%s", body, want)
	}
	var hdrs []string
	for _, h := range httpOf(order).Headers {
		hdrs = append(hdrs, h.Name+": "+expand(t, h.Value, sc))
	}
	if want := []string{"Accept: application/json", "X-Api-Key: key", "Authorization: Bearer tok", "Idempotency-Key: k"}; !slices.Equal(hdrs, want) {
		t.Errorf("order headers %q, want %q", hdrs, want)
	}

	pay := co.Steps[2]
	if pay.Dependency != "bank-gateway" || httpOf(pay).Body.Kind != FormBody || httpOf(pay).Body.ContentType != "application/x-www-form-urlencoded" ||
		len(httpOf(pay).Body.Form) != 3 || httpOf(pay).Body.Form[1].Name != "ref" || expand(t, httpOf(pay).Body.Form[1].Value, sc) != "o/1" {
		t.Errorf("pay: %+v", pay)
	}
	confirm := co.Steps[3]
	if confirm.StatusChecked || confirm.Until == nil || confirm.Until.Interval != 500*time.Millisecond ||
		confirm.Until.Within != 10*time.Second || len(confirm.Until.Expect) != 1 || confirm.Method != "GET" {
		t.Errorf("confirm: %+v %+v", confirm, confirm.Until)
	}
	if len(httpOf(confirm).Query) != 1 || httpOf(confirm).Query[0].Name != "q" || expand(t, httpOf(confirm).Query[0].Value, sc) != `S"1` {
		t.Errorf("confirm query %+v", httpOf(confirm).Query)
	}
	cancel := co.Cleanup[0]
	if httpOf(cancel).FollowRedirects || httpOf(cancel).BasicAuth == nil || expand(t, httpOf(cancel).BasicAuth.User, sc) != "admin" ||
		expand(t, httpOf(cancel).BasicAuth.Password, sc) != `p"w\` {
		t.Errorf("cancel: %+v", cancel)
	}

	he := cfg.Flows[1]
	if he.Name != "health" || he.Schedule.Every != 30*time.Second || he.Schedule.Cron != "" {
		t.Errorf("health: the entry's every wins over the file's: %+v", he.Schedule)
	}
	if fmt.Sprint(he.Labels) != "map[team:platform tier:low]" || he.Vars["path"] != "/healthz" {
		t.Errorf("health: entry labels and vars: %v %v", he.Labels, he.Vars)
	}
	get := he.Steps[0]
	if httpOf(get).Body.Kind != RawBody || httpOf(get).Body.ContentType != "text/plain; charset=utf-8" ||
		expand(t, httpOf(get).Body.Template, scope{vars: map[string]string{"region": "eu"}}) != "ping from eu\n" {
		t.Errorf("health body %+v", httpOf(get).Body)
	}
	if get.StatusChecked || len(get.Expect) != 1 || get.Expect[0].Sources()&assert.SourceDuration == 0 {
		t.Errorf("health expect %+v", get.Expect)
	}
	if get.Timeout != 10*time.Second {
		t.Errorf("health step timeout %v", get.Timeout)
	}
}

// The three problems of testdata/bad come out together, sorted.
func TestAllErrorsAtOnce(t *testing.T) {
	_, err := Load(os.DirFS("testdata/bad"), "probes.yaml", Options{Notifiers: testKinds, Env: lookup(goodEnv())})
	want := `flows/three.yaml:9:14: expected a duration like 30s or 500ms, got "5x"
flows/three.yaml:14:37: undefined variable "order_idd" (did you mean "order_id"?)
flows/three.yaml:15:5: unknown field "expcet" in step (did you mean "expect"?)`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 || errs[1].Pos != (Pos{"flows/three.yaml", 14, 37}) {
		t.Errorf("Errors: %#v", errs)
	}
}

func TestSecretsNeverShown(t *testing.T) {
	fsys := os.DirFS("testdata/bad")
	for _, name := range []string{"probes.yaml", "leak.yaml"} {
		_, err := Load(fsys, name, Options{Notifiers: testKinds, Env: lookup(goodEnv())})
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		var errs Errors
		errors.As(err, &errs)
		for _, s := range []string{err.Error(), fmt.Sprintf("%v|%+v|%#v", errs, errs, errs)} {
			if strings.Contains(s, shopPassword) || strings.Contains(s, "Secret!") {
				t.Errorf("%s: secret in error text:\n%s", name, s)
			}
		}
		if name == "leak.yaml" && !strings.Contains(err.Error(), "[secret:SHOP_PASSWORD]") {
			t.Errorf("leak.yaml: expected a redacted value in\n%v", err)
		}
	}
	cfg := loadGood(t, Options{})
	var all []string
	all = append(all, fmt.Sprintf("%v|%+v|%#v", cfg, cfg, cfg), fmt.Sprintf("%v|%+v|%#v|%s", cfg.Secrets, cfg.Secrets, cfg.Secrets, cfg.Secrets))
	for _, fl := range cfg.Flows {
		all = append(all, fmt.Sprintf("%v|%+v|%#v", fl, fl, fl))
		for _, s := range append(fl.Steps, fl.Cleanup...) {
			all = append(all, fmt.Sprintf("%v|%+v|%#v", s, s, s))
		}
	}
	for _, s := range all {
		if strings.Contains(s, shopPassword) || strings.Contains(s, "key-0123456789") {
			t.Errorf("secret in formatted config:\n%s", s)
		}
	}
}

func TestRegionPrecedence(t *testing.T) {
	env := goodEnv()
	if cfg := loadGood(t, Options{Env: lookup(env)}); cfg.Region != "local" {
		t.Errorf("from probes.yaml: %q", cfg.Region)
	}
	env["PROBER_REGION"] = "eu-west"
	if cfg := loadGood(t, Options{Env: lookup(env)}); cfg.Region != "eu-west" {
		t.Errorf("$PROBER_REGION wins over probes.yaml: %q", cfg.Region)
	}
	if cfg := loadGood(t, Options{Env: lookup(env), Region: "us-1"}); cfg.Region != "us-1" {
		t.Errorf("--region wins over everything: %q", cfg.Region)
	}
	_, err := Load(os.DirFS("testdata/good"), "probes.yaml", Options{Notifiers: testKinds, Env: lookup(env), Region: "US 1"})
	if want := `--region "US 1" must match [a-z0-9][a-z0-9_-]* (it becomes a Prometheus label value)`; err == nil || err.Error() != want {
		t.Errorf("bad --region: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	cfg, errs := loadFiles(t, map[string]string{
		"probes.yaml": "flows: [f.yaml]\n",
		"f.yaml":      "name: f\ntimeout: 5s\nsteps:\n  - name: a\n    request: {url: \"http://x/\"}\n    until: {expect: status == 200, within: 500ms}\n",
	})
	if errs != nil {
		t.Fatal(errs)
	}
	if cfg.Region != "local" || cfg.Listen != "127.0.0.1:8315" || cfg.Concurrency != 16 || cfg.Store.Keep != 100 || cfg.Secrets.Len() != 0 {
		t.Errorf("config defaults: %+v", cfg)
	}
	fl := cfg.Flows[0]
	if fl.Schedule != (Schedule{Every: time.Minute}) || fl.HTTP.BodyLimit != 1<<20 || !fl.HTTP.FollowRedirects || fl.HTTP.MaxRedirects != 10 {
		t.Errorf("flow defaults: %+v", fl)
	}
	s := fl.Steps[0]
	// Inherited limits shrink to fit the flow's timeout instead of failing.
	if s.Timeout != 5*time.Second || s.Until.Within != 500*time.Millisecond || s.Until.Interval != 500*time.Millisecond ||
		!s.StatusChecked || s.Method != "GET" || !httpOf(s).FollowRedirects || httpOf(s).Body.Kind != NoBody {
		t.Errorf("step defaults: %+v %+v", s, s.Until)
	}
}

func TestMergeKeysAndAnchors(t *testing.T) {
	cfg, errs := loadFiles(t, map[string]string{"f.yaml": `name: f
x-common: &common
  request: &req
    url: "{{base}}/a"
    headers: {X-A: "1"}
  expect: [status == 200]
steps:
  - <<: *common
    name: a
  - <<: *common
    name: b
    request:
      <<: *req
      method: PUT
`})
	if errs != nil {
		t.Fatal(errs)
	}
	a, b := cfg.Flows[0].Steps[0], cfg.Flows[0].Steps[1]
	if a.Name != "a" || a.Method != "GET" || len(a.Expect) != 1 || len(httpOf(a).Headers) != 1 ||
		b.Name != "b" || b.Method != "PUT" || len(httpOf(b).Headers) != 1 || httpOf(b).URL.String() != "{{base}}/a" {
		t.Errorf("steps from x-common: %+v %+v", a, b)
	}
	cfg, errs = loadFiles(t, map[string]string{
		"probes.yaml": baseProbes + "defaults:\n  headers: &h {X-A: \"1\"}\n",
		"f.yaml": `name: f
steps:
  - &a
    name: a
    request: {url: "{{base}}/a", method: POST}
    expect: [status == 200]
  - <<: *a
    name: b
`})
	if errs != nil {
		t.Fatal(errs)
	}
	b = cfg.Flows[0].Steps[1]
	if b.Name != "b" || b.Method != "POST" || len(b.Expect) != 1 || len(httpOf(b).Headers) != 1 {
		t.Errorf("merged step: %+v", b)
	}
}

func TestPlaceholderPositions(t *testing.T) {
	_, errs := loadFiles(t, map[string]string{"f.yaml": `name: f
steps:
  - name: a
    request:
      url: http://x/{{p1}}
      body: |
        line one
          {{p2}} indented
      headers:
        X-Single: 'it''s {{p3}}'
        X-Double: "tab\t{{p4}}"
        X-Plain: a
          {{p5}}
  - name: b
    request: {url: "http://x/", json: {k: "é {{p6}}"}}
`})
	want := []string{
		`f.yaml:5:21: undefined variable "p1"`,
		`f.yaml:8:11: undefined variable "p2"`,
		`f.yaml:10:26: undefined variable "p3"`,
		`f.yaml:11:20: undefined variable "p4"`, // an escape before it: the value's start
		`f.yaml:12:18: undefined variable "p5"`, // folded over lines: the scalar's start
		`f.yaml:15:46: undefined variable "p6"`,
	}
	if !slices.Equal(errs, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseCron(t *testing.T) {
	for _, spec := range []string{"*/5 * * * *", "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually", "0 0 29 2 *"} {
		if _, err := ParseCron(spec); err != nil {
			t.Errorf("%s: %v", spec, err)
		}
	}
	for _, spec := range []string{"", "TZ=UTC", "CRON_TZ=UTC 0 * * * *", "@every 1s", "@every", "0 0 31 4 *", "* * * * * *", "@reboot", "1-2-3 * * * *"} {
		if _, err := ParseCron(spec); err == nil {
			t.Errorf("%q: no error", spec)
		}
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2025, 6, 1, 12, 0, 30, 0, time.UTC)
	s := Schedule{Cron: "0 3 * * *", Location: berlin}
	if got, want := s.Next(from), time.Date(2025, 6, 2, 1, 0, 0, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("Next = %v, want %v", got, want)
	}
	if got := (Schedule{Every: time.Minute}).Next(from); !got.Equal(from.Add(time.Minute)) {
		t.Errorf("every: %v", got)
	}
}

func TestOverlays(t *testing.T) {
	cfg, errs := loadFiles(t, map[string]string{
		"probes.yaml": `vars: {a: probes, b: probes, c: probes}
defaults:
  every: 2m
  timeout: 20s
  step_timeout: 3s
  body_limit: 64 KiB
  follow_redirects: false
  max_redirects: 0x3
  headers: {Accept: text/html, X-Probe: "{{flow}}"}
flows:
  - file: f.yaml
    vars: {c: entry}
    labels: {tier: entry}
`,
		"f.yaml": `name: f
vars: {b: file, c: file}
labels: {tier: file, team: t}
body_limit: 2048
headers: {accept: application/json}
steps:
  - name: a
    request: {url: "http://x/", headers: {ACCEPT: "*/*"}, follow_redirects: true}
  - name: b
    request: {url: "http://x/"}
`,
	})
	if errs != nil {
		t.Fatal(errs)
	}
	fl := cfg.Flows[0]
	if fmt.Sprint(fl.Vars) != "map[a:probes b:file c:entry]" || fmt.Sprint(fl.Labels) != "map[team:t tier:entry]" {
		t.Errorf("vars %v labels %v", fl.Vars, fl.Labels)
	}
	if fl.Schedule.Every != 2*time.Minute || fl.Timeout != 20*time.Second || fl.HTTP.BodyLimit != 2048 ||
		fl.HTTP.FollowRedirects || fl.HTTP.MaxRedirects != 3 {
		t.Errorf("flow %+v", fl)
	}
	show := func(s *Step) (out []string) {
		for _, h := range httpOf(s).Headers {
			out = append(out, h.Name+": "+h.Value.String())
		}
		return out
	}
	a, b := fl.Steps[0], fl.Steps[1]
	if got := show(a); !slices.Equal(got, []string{"X-Probe: {{flow}}", "Accept: */*"}) {
		t.Errorf("step a headers %q", got)
	}
	if got := show(b); !slices.Equal(got, []string{"X-Probe: {{flow}}", "Accept: application/json"}) {
		t.Errorf("step b headers %q", got)
	}
	if a.Timeout != 3*time.Second || !httpOf(a).FollowRedirects || httpOf(b).FollowRedirects {
		t.Errorf("steps %+v %+v", a, b)
	}
}

func TestJSONBody(t *testing.T) {
	cfg, errs := loadFiles(t, map[string]string{"f.yaml": flow(`  - name: a
    request:
      url: http://x/
      json:
        hex: 0x1F
        big: 123456789012345678901234567890
        float: 1.50
        exp: 1e3
        neg: -0.5
        yes: yes
        "{{base}}": "${env:HOST} {{sku}}"
        nested: {list: [1, "two", {three: 3}], empty: {}, none: []}
        ctl: "a\u0001b"
`)})
	if errs != nil {
		t.Fatal(errs)
	}
	got := expand(t, httpOf(cfg.Flows[0].Steps[0]).Body.Template, scope{vars: map[string]string{"base": "k\"", "sku": "<&>"}})
	want := `{"hex":31,"big":123456789012345678901234567890,"float":1.50,"exp":1e3,"neg":-0.5,"yes":"yes",` +
		`"k\"":"shop.test <&>","nested":{"list":[1,"two",{"three":3}],"empty":{},"none":[]},"ctl":"a\u0001b"}`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Error("not valid JSON")
	}
	_, errs = loadFiles(t, map[string]string{"f.yaml": flow("  - name: a\n    request: {url: \"http://x/\", json: [.inf, .nan]}\n")})
	if want := []string{
		`f.yaml:4:40: ".inf" cannot be written as a JSON number`,
		`f.yaml:4:46: ".nan" cannot be written as a JSON number`,
	}; !slices.Equal(errs, want) {
		t.Errorf("got %q", errs)
	}
}

// Paths in probes.yaml and flow files are relative to the file's directory.
func TestLoadFromSubdirectory(t *testing.T) {
	cfg, err := Load(os.DirFS("testdata"), "good/probes.yaml", Options{Notifiers: testKinds, Env: lookup(goodEnv())})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != "good/probes.yaml" || cfg.Flows[0].File != "good/flows/checkout.yaml" ||
		cfg.Flows[0].HTTP.CAFile != "good/flows/ca.pem" {
		t.Errorf("paths: %s %s %s", cfg.File, cfg.Flows[0].File, cfg.Flows[0].HTTP.CAFile)
	}
}

func TestSkipSecretsAndEvery(t *testing.T) {
	// No environment at all: the secrets are declared but not read.
	cfg, err := Load(os.DirFS("testdata/good"), "probes.yaml", Options{Notifiers: testKinds, Env: lookup(nil), SkipSecrets: true, Every: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Secrets.Names(); !slices.Equal(got, []string{"API_KEY", "SHOP_PASSWORD"}) {
		t.Errorf("secrets %v", got)
	}
	if v, ok := cfg.Secrets.Get("API_KEY"); !ok || v != "" {
		t.Errorf("unread secret: %q %v", v, ok)
	}
	for _, fl := range cfg.Flows {
		if fl.Schedule != (Schedule{Every: 5 * time.Second}) {
			t.Errorf("%s: schedule %+v", fl.Name, fl.Schedule)
		}
	}
	_, err = Load(os.DirFS("testdata/good"), "probes.yaml", Options{Notifiers: testKinds, Env: lookup(nil)})
	if want := "probes.yaml:17:3: secret SHOP_PASSWORD: environment variable SHOP_PASSWORD is not set"; err == nil || err.Error() != want {
		t.Errorf("without SkipSecrets: %v", err)
	}
	_, err = Load(os.DirFS("testdata/good"), "probes.yaml", Options{Notifiers: testKinds, Env: lookup(goodEnv()), Every: time.Millisecond})
	if want := "--every 1ms: the minimum is 1s"; err == nil || err.Error() != want {
		t.Errorf("tiny Every: %v", err)
	}
}

// The configuration shipped with the binary loads.
// run_on_start: false unless asked, in defaults (inherited) or per flow.
func TestRunOnStart(t *testing.T) {
	flow := func(name, extra string) string {
		return "name: " + name + "\n" + extra + "steps:\n  - name: a\n    request: {url: \"http://x/\"}\n"
	}
	for _, tt := range []struct {
		name, defaults string
		want           map[string]bool
	}{
		{"default off", "", map[string]bool{"plain": false, "on": true, "off": false}},
		{"defaults on", "defaults: {run_on_start: true}\n", map[string]bool{"plain": true, "on": true, "off": false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, errs := loadFiles(t, map[string]string{
				"probes.yaml": tt.defaults + "flows: [plain.yaml, on.yaml, off.yaml]\n",
				"plain.yaml":  flow("plain", ""),
				"on.yaml":     flow("on", "run_on_start: true\n"),
				"off.yaml":    flow("off", "run_on_start: false\n"),
			})
			if errs != nil {
				t.Fatal(errs)
			}
			for _, f := range cfg.Flows {
				if f.RunOnStart != tt.want[f.Name] {
					t.Errorf("%s: run_on_start %v, want %v", f.Name, f.RunOnStart, tt.want[f.Name])
				}
			}
		})
	}
	// Options.RunOnStart (prober demo) makes every flow run at start.
	cfg, err := Load(fstest.MapFS{
		"probes.yaml": {Data: []byte("flows: [off.yaml]\n")},
		"off.yaml":    {Data: []byte(flow("off", "run_on_start: false\n"))},
	}, "probes.yaml", Options{RunOnStart: true})
	if err != nil || !cfg.Flows[0].RunOnStart {
		t.Fatalf("Options.RunOnStart: %v", err)
	}
}
