package config

import (
	"errors"
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
