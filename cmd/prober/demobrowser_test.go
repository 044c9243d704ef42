package main

import (
	"bytes"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	prober "github.com/prober-dev/prober"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/daemon"
)

func TestAddBrowserFlow(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"after the last item", "a: 1\nflows:\n  - flows/checkout.yaml\n  - flows/health.yaml\nrules: []\n",
			"a: 1\nflows:\n  - flows/checkout.yaml\n  - flows/health.yaml\n  - flows/checkout_browser.yaml\nrules: []\n", true},
		{"no final newline", "flows:\n- x.yaml", "flows:\n- x.yaml\n- flows/checkout_browser.yaml\n", true},
		{"a mapping last: before the first", "flows:\n    - a.yaml\n    - file: b.yaml\n      every: 1m\nz: 1\n",
			"flows:\n    - flows/checkout_browser.yaml\n    - a.yaml\n    - file: b.yaml\n      every: 1m\nz: 1\n", true},
		{"listed already", "flows:\n  - flows/checkout_browser.yaml\n", "flows:\n  - flows/checkout_browser.yaml\n", true},
		{"listed by a glob", "flows:\n  - flows/*.yaml\n", "flows:\n  - flows/*.yaml\n", true},
		{"listed by a mapping", "flows:\n  - {file: flows/checkout_browser.yaml}\n", "flows:\n  - {file: flows/checkout_browser.yaml}\n", true},
		{"a [...] list", "flows: [a.yaml]\n", "flows: [a.yaml]\n", false},
		{"one path", "flows: a.yaml\n", "flows: a.yaml\n", false},
		{"no flows", "a: 1\n", "a: 1\n", false},
		{"not YAML", "flows: [\n", "flows: [\n", false},
	} {
		got, ok := addBrowserFlow([]byte(tc.in))
		if string(got) != tc.want || ok != tc.ok {
			t.Errorf("%s: got %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// TestDemoBrowserFlow: the demo's view of the shipped configuration lists
// the browser flow (the shipped one does not), loads, and keeps every line
// before the addition where it was; without the flow's file nothing is
// added.
func TestDemoBrowserFlow(t *testing.T) {
	for name, root := range map[string]fs.FS{"the repository's": os.DirFS("../.."), "the built-in": prober.DefaultConfig} {
		t.Run(name, func(t *testing.T) { testDemoBrowserFlow(t, root) })
	}
}

func testDemoBrowserFlow(t *testing.T, root fs.FS) {
	fsys, ok := withBrowserFlow(root, "probes.yaml")
	if !ok {
		t.Fatal("the shipped configuration did not take the browser flow")
	}
	orig, _ := fs.ReadFile(root, "probes.yaml")
	got, err := fs.ReadFile(fsys, "probes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	added := bytes.Index(got, []byte("  - "+browserFlow+"\n"))
	if added < 0 || !bytes.Equal(got[:added], orig[:added]) || !bytes.Equal(got[added+len("  - "+browserFlow+"\n"):], orig[added:]) {
		t.Fatalf("the demo's probes.yaml is not the shipped one plus a line:\n%s", got)
	}
	load := func(fsys fs.FS) []string {
		cfg, err := config.Load(fsys, "probes.yaml", config.Options{SkipSecrets: true, Notifiers: daemon.NotifierKinds(), StepKinds: daemon.StepKinds()})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range cfg.Flows {
			names = append(names, f.Name)
		}
		return names
	}
	if names := load(fsys); !slices.Contains(names, "checkout_browser") {
		t.Errorf("the demo's flows: %v", names)
	}
	if names := load(root); slices.Contains(names, "checkout_browser") {
		t.Errorf("the shipped configuration runs the browser flow (%v): it must run without Chromium", names)
	}

	bare := fstest.MapFS{"probes.yaml": {Data: []byte("flows:\n  - flows/a.yaml\n")}}
	if same, ok := withBrowserFlow(bare, "probes.yaml"); ok || !strings.Contains(string(must(fs.ReadFile(same, "probes.yaml"))), "a.yaml") {
		t.Error("a configuration without the flow's file took it")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestBrowserNote: without Chromium the demo says how to install it.
func TestBrowserNote(t *testing.T) {
	var b strings.Builder
	printBrowserNote(&b, "http://127.0.0.1:1", "", fs.ErrNotExist, false)
	if !strings.Contains(b.String(), "apt-get install chromium") || !strings.Contains(b.String(), "is off") {
		t.Errorf("no install hint: %s", b.String())
	}
	b.Reset()
	printBrowserNote(&b, "http://127.0.0.1:1", "/usr/bin/chromium", errBrowserOff, false)
	if !strings.Contains(b.String(), "is off: --browser=false") || strings.Contains(b.String(), "apt-get") {
		t.Errorf("with --browser=false: %s", b.String())
	}
	b.Reset()
	printBrowserNote(&b, "http://127.0.0.1:1", "/usr/bin/chromium", nil, true)
	if !strings.Contains(b.String(), "http://127.0.0.1:1/store/login") || strings.Contains(b.String(), "is off") {
		t.Errorf("with Chromium: %s", b.String())
	}
}
