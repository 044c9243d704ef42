package config

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
)

// hookKind is a registered notifier type as a notifier package writes one.
type hookKind struct{}

type hookSpec struct{ URL, Secret, Mode string }

func (hookKind) Type() string   { return "hook" }
func (hookKind) Keys() []string { return []string{"url", "secret", "mode"} }
func (hookKind) Traits() NotifierTraits {
	return NotifierTraits{Pages: true}
}
func (hookKind) Decode(b *NotifierBlock) any {
	s := &hookSpec{}
	if !b.Has("url") {
		b.Errorf("", "hook notifier %s needs a url", b.Name())
	}
	s.URL, _ = b.URL("url")
	s.Secret, _ = b.Secret("secret", "a signing secret")
	if m, ok := b.String("mode", "a mode"); ok && m != "a" && m != "b" {
		b.Errorf("mode", "mode must be a or b, got %q", m)
	} else {
		s.Mode = m
	}
	return s
}

func loadWithKinds(t *testing.T, probes string, kinds ...NotifierKind) (*Config, []string) {
	t.Helper()
	fsys := fstest.MapFS{"f.yaml": {Data: []byte(alertFlow)}, "probes.yaml": {Data: []byte(probesWith(probes))}}
	cfg, err := Load(fsys, "probes.yaml", Options{
		Env:       lookup(testEnv),
		ReadFile:  func(p string) ([]byte, error) { return nil, &fs.PathError{Op: "open", Path: p, Err: syscall.ENOENT} },
		Notifiers: slices.Concat(testKinds, kinds),
	})
	if err == nil {
		return cfg, nil
	}
	var errs Errors
	if !errors.As(err, &errs) {
		return nil, []string{err.Error()}
	}
	return nil, strings.Split(err.Error(), "\n")
}

// A registered kind owns its block: decoded by it, with file:line:col
// errors, its traits in the default routes, an unset optional secret
// disabling it.
func TestRegisteredNotifierKind(t *testing.T) {
	cfg, errs := loadWithKinds(t, `
notifiers:
  h: {type: hook, url: "http://127.0.0.1:1/x", secret: "{{secret:TOKEN}}", mode: b, timeout: 3s}
  off: {type: hook, url: "http://127.0.0.1:1/x", secret: "{{secret:PD}}"}
  c: {type: console}
`, hookKind{})
	if errs != nil {
		t.Fatal(errs)
	}
	h := cfg.Alerting.Notifiers[0]
	if s, ok := h.Spec.(*hookSpec); !ok || s.URL != "http://127.0.0.1:1/x" || s.Secret != testEnv["TOKEN"] || s.Mode != "b" ||
		h.Timeout.Seconds() != 3 || h.Type != "hook" || !h.Traits.Pages || h.Disabled != "" {
		t.Errorf("notifier %+v spec %+v", h, h.Spec)
	}
	if off := cfg.Alerting.Notifiers[1]; off.Disabled != "optional secret PD is not set" {
		t.Errorf("off.Disabled = %q", off.Disabled)
	}
	// Pages: not in the default warning route.
	if r := cfg.Alerting.Routes; !slices.Equal(r["critical"], []string{"h", "off", "c"}) || !slices.Equal(r["warning"], []string{"c"}) {
		t.Errorf("routes %v", r)
	}

	for _, tt := range []struct{ probes, want string }{
		{`notifiers: {x: {type: hook, mode: c}}`,
			"probes.yaml:6:13: hook notifier x needs a url\nprobes.yaml:6:35: mode must be a or b, got \"c\""},
		{`notifiers: {x: {type: hook, url: "http://h/", token: "{{secret:TOKEN}}"}}`,
			`probes.yaml:6:47: token does not apply to a hook notifier`},
		{`notifiers: {x: {type: console, mode: a}}`,
			`probes.yaml:6:32: mode does not apply to a console notifier`},
		{`notifiers: {x: {type: hok}}`,
			`probes.yaml:6:23: unknown notifier type "hok": want pagerduty, slack, console, alertmanager or hook`},
		{`notifiers: {x: {type: hook, url: "http://h/", secret: "{{base}}"}}`,
			`probes.yaml:6:56: only {{secret:NAME}} placeholders can be used here, not {{base}}`},
	} {
		_, errs := loadWithKinds(t, tt.probes, hookKind{})
		if got := strings.Join(errs, "\n"); got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.probes, got, tt.want)
		}
	}
	// Without the kind registered, its type is unknown.
	_, errs = loadWithKinds(t, `notifiers: {x: {type: hook, url: "http://h/"}}`)
	if want := `probes.yaml:6:23: unknown notifier type "hook": want pagerduty, slack, console or alertmanager`; len(errs) == 0 || errs[0] != want {
		t.Errorf("unregistered: %v", errs)
	}
	// A kind registered twice is a programming error.
	if _, errs := loadWithKinds(t, ``, hookKind{}, hookKind{}); len(errs) != 1 || !strings.Contains(errs[0], "registered twice") {
		t.Errorf("registered twice: %v", errs)
	}
}

// listKind reads a list through NotifierBlock.Strings.
type listKind struct{}

func (listKind) Type() string   { return "list" }
func (listKind) Keys() []string { return []string{"to"} }
func (listKind) Decode(b *NotifierBlock) any {
	to, _ := b.Strings("to", "an address", func(s string) error {
		if !strings.Contains(s, "@") {
			return fmt.Errorf("%q is no address", s)
		}
		return nil
	})
	return to
}

// A list in a notifier block is read item by item, each error at its item.
func TestNotifierBlockStrings(t *testing.T) {
	for _, tt := range []struct {
		probes string
		want   []string
		errs   string
	}{
		{probes: `notifiers: {x: {type: list, to: [a@h, "b@h"]}}`, want: []string{"a@h", "b@h"}},
		{probes: `notifiers: {x: {type: list, to: a@h}}`, want: []string{"a@h"}},
		{probes: `notifiers: {x: {type: list, to: [a@h, bee, c@h, dee]}}`, errs: "probes.yaml:6:39: \"bee\" is no address\nprobes.yaml:6:49: \"dee\" is no address"},
		{probes: `notifiers: {x: {type: list, to: {a: b}}}`, errs: "probes.yaml:6:33: expected a list of an address, got a mapping"},
		{probes: `notifiers: {x: {type: list, to: ["{{secret:TOKEN}}"]}}`, errs: "probes.yaml:6:35: to cannot use {{...}}"},
	} {
		cfg, errs := loadWithKinds(t, tt.probes, listKind{})
		if got := strings.Join(errs, "\n"); got != tt.errs {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.probes, got, tt.errs)
		}
		if tt.errs == "" && (cfg == nil || !slices.Equal(cfg.Alerting.Notifiers[0].Spec.([]string), tt.want)) {
			t.Errorf("%s: %v", tt.probes, cfg.Alerting.Notifiers[0].Spec)
		}
	}
}
