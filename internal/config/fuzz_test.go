package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// FuzzLoad feeds arbitrary bytes as a flow file and as probes.yaml: Load
// must neither panic nor hang, and must return a config or Errors.
func FuzzLoad(f *testing.F) {
	read := func(name string) []byte {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	probes := read("testdata/good/probes.yaml")
	checkout := read("testdata/good/flows/checkout.yaml")
	health := read("testdata/good/flows/health.yaml")
	ca := read("testdata/good/flows/ca.pem")
	f.Add(checkout, probes)
	f.Add(health, probes)
	f.Add(read("testdata/bad/flows/three.yaml"), read("testdata/bad/probes.yaml"))
	f.Add(checkout, read("testdata/bad/leak.yaml"))
	f.Add([]byte("a: &a [*a]\nb: *a\n"), probes)
	f.Add(checkout, []byte("flows: [flows/checkout.yaml]\nsecrets: {S: {env: S, optional: true}}\n"+
		"notifiers: {h: {type: hook, url: \"http://h/\", secret: \"{{secret:S}}\", mode: b}, x: {type: hook, mode: c, channel: a}}\n"))
	f.Add([]byte("name: x\nsteps:\n  - <<: [*a]\n"), []byte("flows: ['flows/*']\n"))
	f.Add([]byte("name: p\nvars: {h: x}\nsteps:\n  - name: a\n    ping: {host: \"{{h}}\", wait: 1s, quiet: true, ca_file: ca.pem, label: bad}\n"+
		"    expect: [ping.rtt < 1s, 'ping.from == \"x\"']\n    capture: {f: ping.from}\n"), probes)

	env := lookup(goodEnv())
	f.Fuzz(func(t *testing.T, flow, probesYAML []byte) {
		fsys := fstest.MapFS{
			"probes.yaml":          {Data: probesYAML},
			"flows/checkout.yaml":  {Data: flow},
			"flows/health.yaml":    {Data: health},
			"flows/three.yaml":     {Data: flow},
			"flows/ca.pem":         {Data: ca},
			"secrets/api_key":      {Data: []byte("key\n")},
			"flows/sub/other.yaml": {Data: flow},
		}
		done := make(chan struct{})
		var cfg *Config
		var err error
		go func() {
			defer close(done)
			cfg, err = Load(fsys, "probes.yaml", Options{
				Env:      env,
				ReadFile: func(string) ([]byte, error) { return nil, os.ErrNotExist },
				// A registered kind, so that blocks of type hook reach
				// NotifierBlock's readers too.
				Notifiers: slices.Concat(testKinds, []NotifierKind{hookKind{}}),
				// And a step kind, for StepBlock's readers.
				StepKinds: []StepKind{pingKind{}},
			})
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Load hangs on\nflow: %q\nprobes: %q", flow, probesYAML)
		}
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without an error")
			}
			return
		}
		if cfg != nil {
			t.Fatal("config and error")
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error %T %v", err, err)
		}
		if s := err.Error(); strings.Contains(s, "internal error") {
			t.Fatalf("bad error:\n%s", s)
		}
	})
}

// Inputs built to be slow: each must load (and fail or not) quickly.
func TestPathologicalInputs(t *testing.T) {
	var steps strings.Builder
	steps.WriteString("name: f\nsteps:\n")
	for i := range 12000 {
		fmt.Fprintf(&steps, "  - {name: s%d, request: {url: \"http://x/{{u%d}}\"}, capture: {c%d: status}}\n", i, i, i)
	}
	deep := "name: f\nsteps:\n  - name: a\n    request:\n      url: http://x/\n      json: " +
		strings.Repeat("[", 9000) + strings.Repeat("]", 9000) + "\n"
	bomb := "name: f\nsteps:\n  - name: a\n    request:\n      url: http://x/\n      json:\n        a0: &a0 [" +
		strings.Repeat(`"lol",`, 20) + "]\n"
	for i := 1; i < 30; i++ {
		bomb += fmt.Sprintf("        a%d: &a%d [%s]\n", i, i, strings.Repeat(fmt.Sprintf("*a%d,", i-1), 20))
	}
	placeholders := "name: f\nsteps:\n  - name: a\n    request:\n      url: \"http://x/" + strings.Repeat("{{a}}", 100000) + "\"\n"
	for name, flow := range map[string]string{
		"many undefined variables": steps.String(),
		"deep nesting":             deep,
		"alias bomb":               bomb,
		"many placeholders":        placeholders,
	} {
		t.Run(name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"probes.yaml": {Data: []byte("flows: [f.yaml]\n")},
				"f.yaml":      {Data: []byte(flow)},
			}
			start := time.Now()
			_, err := Load(fsys, "probes.yaml", Options{Notifiers: testKinds, Env: lookup(nil)})
			// A blowup takes minutes; 0.7s is usual, the race detector
			// takes it to 4-12s, and a 2-core machine shared with other
			// builds to 33s: the bound catches a blowup, not a slowdown.
			if d := time.Since(start); d > 90*time.Second {
				t.Errorf("took %v", d)
			}
			if err != nil && strings.Contains(err.Error(), "internal error") {
				t.Error(err)
			}
			t.Logf("%v, %d bytes: %.200v", time.Since(start), len(flow), err)
		})
	}
}
