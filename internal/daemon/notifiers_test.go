package daemon

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/prober-dev/prober/internal/config"
)

// Every type config accepts must build, so that none is configurable but
// not constructible (its pages would wait in the outbox forever): each
// plug-in's Example block is loaded through the table and built. The secret
// S is 32 letters and digits.
func TestEveryConfigurableNotifierIsConstructible(t *testing.T) {
	types := []string{}
	blocks := map[string]string{}
	for _, p := range notifierPlugins() {
		types = append(types, p.Type())
		blocks[p.Type()] = p.Example()
	}
	for _, want := range []string{"pagerduty", "slack", "console", "alertmanager", "webhook"} {
		if !slices.Contains(types, want) {
			t.Errorf("notifier type %s is not in the table", want)
		}
	}
	var probes strings.Builder
	probes.WriteString("flows: [f.yaml]\nsecrets: {S: {env: S}}\nnotifiers:\n")
	for _, typ := range types {
		block := blocks[typ]
		probes.WriteString("  n-" + typ + ": " + block + "\n")
	}
	fsys := fstest.MapFS{"probes.yaml": {Data: []byte(probes.String())},
		"f.yaml": {Data: []byte("name: f\nsteps:\n  - name: a\n    request: {url: \"http://127.0.0.1:1/\"}\n")}}
	cfg, err := config.Load(fsys, "probes.yaml", config.Options{Notifiers: NotifierKinds(),
		Env: func(string) (string, bool) { return "0123456789abcdef0123456789abcdef", true }})
	if err != nil {
		t.Fatal(err)
	}
	a := &alerting{d: &Daemon{log: slog.New(slog.DiscardHandler), opts: Options{ConsoleWriter: io.Discard}}}
	nts, err := a.notifiers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(nts) != len(types) {
		t.Fatalf("built %d notifiers of %d types", len(nts), len(types))
	}
	for i, n := range nts {
		if n.Name() != "n-"+types[i] || string(n.Type()) != types[i] {
			t.Errorf("notifier %d is %s of type %s, want n-%s", i, n.Name(), n.Type(), types[i])
		}
	}
}

// A notifier of a type nobody builds fails the config (was: logged as
// notifier_unsupported while its pages waited in the outbox forever).
func TestUnregisteredNotifierTypeFails(t *testing.T) {
	cfg := &config.Config{Alerting: config.Alerting{Notifiers: []*config.Notifier{{Name: "x", Type: "carrier-pigeon"}}}}
	a := &alerting{d: &Daemon{log: slog.New(slog.DiscardHandler)}}
	if _, err := a.notifiers(cfg); err == nil || !strings.Contains(err.Error(), "carrier-pigeon is configurable but not registered") {
		t.Fatalf("err = %v", err)
	}
}
