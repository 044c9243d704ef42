package daemon

import (
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/config"
)

// TestStepKindsRegistered: the daemon's kinds load, side by side with HTTP
// steps in one flow.
func TestStepKindsRegistered(t *testing.T) {
	fsys := fstest.MapFS{
		"probes.yaml": {Data: []byte("flows: [f.yaml]\n")},
		"f.yaml": {Data: []byte("name: f\nsteps:\n" +
			"  - name: cert\n    tls: {address: \"shop.test:443\"}\n    expect: cert.expires_in > 336h\n" +
			"  - name: redis\n    tcp: {address: \"127.0.0.1:6379\", send: \"PING\\r\\n\", reply: \"PONG\"}\n" +
			"  - name: page\n    request: {url: \"http://127.0.0.1:1/\"}\n" +
			"  - name: mx\n    dns: {name: shop.test, type: MX}\n    expect: answers.count > 0\n" +
			"  - name: ping\n    icmp: {host: shop.test}\n    expect: loss == 0\n" +
			"  - name: shop\n    browser: {actions: [{goto: \"http://shop.test/\"}, {click: \"#pay\"}]}\n    expect: console.errors == 0\n")},
	}
	cfg, err := config.Load(fsys, "probes.yaml", config.Options{StepKinds: StepKinds()})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range cfg.Flows[0].Steps {
		kinds = append(kinds, s.Kind)
	}
	if strings.Join(kinds, ",") != "tls,tcp,,dns,icmp,browser" {
		t.Errorf("kinds %q", kinds)
	}
}

// TestFlowPageKindTargets: the flow page lists a kind's step with its
// target (or its kind), not an empty URL.
func TestFlowPageKindTargets(t *testing.T) {
	fsys := fstest.MapFS{
		"probes.yaml": {Data: []byte("flows: [f.yaml]\n")},
		"f.yaml": {Data: []byte("name: f\nvars: {host: shop.test}\nsteps:\n" +
			"  - name: cert\n    tls: {address: \"{{host}}:443\"}\n" +
			"  - name: redis\n    tcp: {address: \"127.0.0.1:6379\"}\n" +
			"  - name: page\n    request: {url: \"http://{{host}}/\"}\n" +
			"  - name: odd\n    odd: {}\n")},
	}
	cfg, err := config.Load(fsys, "probes.yaml", config.Options{StepKinds: append(StepKinds(), oddKind{})})
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{cfg: cfg}
	var got []string
	for _, s := range d.Flows()[0].Steps {
		got = append(got, s.Method+" "+s.URL)
	}
	want := []string{"TLS tls://{{host}}:443", "TCP tcp://127.0.0.1:6379", "GET http://{{host}}/", "ODD odd"}
	if !slices.Equal(got, want) {
		t.Errorf("flow page steps %q, want %q", got, want)
	}
}

// oddKind is a kind whose spec states no target.
type oddKind struct{}

func (oddKind) Name() string                   { return "odd" }
func (oddKind) Keys() []string                 { return nil }
func (oddKind) Operands() assert.Operands      { return nil }
func (oddKind) Builtins() assert.Source        { return 0 }
func (oddKind) Decode(b *config.StepBlock) any { return struct{}{} }

// closerKind is a kind that started something its Close stops.
type closerKind struct {
	oddKind
	closed atomic.Int32
}

func (k *closerKind) Close() error { k.closed.Add(1); return nil }

// TestServeClosesKinds: when Serve returns, the kinds that are io.Closers
// (the browser's process) are closed, once; not before.
func TestServeClosesKinds(t *testing.T) {
	f := newFixture(t, fixtureOpts{files: map[string]string{
		"probes.yaml":       probes("health"),
		"flows/health.yaml": healthFlow("health"),
	}})
	k := &closerKind{}
	f.d.opts.Load.StepKinds = append(f.d.opts.Load.StepKinds, k)
	f.serve()
	if k.closed.Load() != 0 {
		t.Fatal("closed while serving")
	}
	if _, err := f.stop(); err != nil {
		t.Fatal(err)
	}
	if n := k.closed.Load(); n != 1 {
		t.Errorf("closed %d times after Serve returned, want 1", n)
	}
}
