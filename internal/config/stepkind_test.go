package config

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/template"
)

// pingKind is a registered step kind as a kind package writes one.
type pingKind struct{ name string }

type pingSpec struct {
	Host  *template.Template
	Count int
	Wait  string
	Quiet bool
	CA    []byte
	Key   []byte
}

func (k pingKind) Name() string {
	if k.name != "" {
		return k.name
	}
	return "ping"
}
func (pingKind) Keys() []string {
	return []string{"host", "wait", "quiet", "ca_file", "key_file", "label"}
}
func (pingKind) Operands() assert.Operands {
	return assert.Operands{"ping.rtt": assert.DurationOperand, "ping.from": assert.StringOperand}
}
func (pingKind) Builtins() assert.Source { return 0 }
func (pingKind) Decode(b *StepBlock) any {
	s := &pingSpec{}
	if !b.Has("host") {
		b.Errorf("", "ping needs a host")
	}
	s.Host, _ = b.Template("host", "a host")
	if d, ok := b.Duration("wait"); ok {
		s.Wait = d.String()
	}
	s.Quiet, _ = b.Bool("quiet")
	_, s.CA, _ = b.PEMFile("ca_file")
	_, s.Key, _ = b.File("key_file", true)
	if l, ok := b.String("label", "a label"); ok && l == "bad" {
		b.Errorf("label", "label cannot be bad")
	}
	return s
}

// httpOf is an HTTP step's spec (nil for another kind's step).
func httpOf(s *Step) *HTTPSpec {
	h, _ := s.Spec.(*HTTPSpec)
	return h
}

func loadSteps(t *testing.T, flow string, kinds ...StepKind) (*Config, error) {
	t.Helper()
	fsys := fstest.MapFS{"probes.yaml": {Data: []byte("flows: [f.yaml]\n")}, "f.yaml": {Data: []byte(flow)}}
	return Load(fsys, "probes.yaml", Options{StepKinds: kinds})
}

func TestStepKind(t *testing.T) {
	cfg, err := loadSteps(t, `name: f
vars: {h: example.test}
steps:
  - name: a
    ping: {host: "{{h}}", wait: 2s, quiet: true}
    expect: [ping.rtt < 100ms, 'ping.from == "x"', duration < 1s]
    capture: {from: ping.from}
  - name: b
    request: {url: "http://{{from}}/"}
    expect: status == 200
`, pingKind{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Flows[0].Steps[0], cfg.Flows[0].Steps[1]
	spec, ok := a.Spec.(*pingSpec)
	if !ok || a.Kind != "ping" || a.Method != "PING" || spec.Wait != "2s" || !spec.Quiet || len(a.Templates) != 1 {
		t.Errorf("step %+v spec %+v", a, a.Spec)
	}
	if len(a.Expect) != 3 || len(a.Captures) != 1 || b.Kind != "" || httpOf(b) == nil || b.Method != "GET" {
		t.Errorf("a %+v b %+v", a, b)
	}
}

func TestStepKindErrors(t *testing.T) {
	for _, tc := range []struct{ flow, want string }{
		{"name: f\nsteps:\n  - name: a\n    ping: {}\n", "f.yaml:4:11: ping needs a host"},
		{"name: f\nsteps:\n  - name: a\n    ping: {host: x, label: bad}\n", "f.yaml:4:28: label cannot be bad"},
		{"name: f\nsteps:\n  - name: a\n    ping: {host: x, wait: -1s}\n", "f.yaml:4:27: wait must be positive"},
		{"name: f\nsteps:\n  - name: a\n    ping: {host: x, hots: y}\n", `f.yaml:4:21: unknown field "hots" in ping`},
		{"name: f\nsteps:\n  - name: a\n    ping: {host: x}\n    expect: status == 200\n", "f.yaml:5:13: ping steps cannot read that: their operands are duration, ping.from, ping.rtt"},
		{"name: f\nsteps:\n  - name: a\n    ping: {host: x}\n    capture: {b: body}\n", "f.yaml:5:18: ping steps cannot read that"},
		{"name: f\nsteps:\n  - name: a\n    ping: {host: x}\n    expect: ping.rtt < 1\n", "f.yaml:5:24: type mismatch: ping.rtt is a duration"},
		{"name: f\nsteps:\n  - name: a\n", "step needs a request (or one of ping)"},
		{"name: f\nsteps:\n  - name: a\n    request: {url: \"http://a/\"}\n    ping: {host: x}\n", "f.yaml:5:5: a step is one of request or ping (request is already set)"},
		{"name: f\nsteps:\n  - name: a\n    ping: {host: \"{{nope}}\"}\n", `undefined variable "nope"`},
		// An HTTP step knows no kind's operands.
		{"name: f\nsteps:\n  - name: a\n    request: {url: \"http://a/\"}\n    expect: ping.rtt < 1s\n", `unknown operand "ping"`},
	} {
		_, err := loadSteps(t, tc.flow, pingKind{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("flow:\n%s\nerr %v\nwant %q", tc.flow, err, tc.want)
		}
	}
	// Without the kind, its key is an unknown field, as before.
	if _, err := loadSteps(t, "name: f\nsteps:\n  - name: a\n    ping: {host: x}\n"); err == nil || !strings.Contains(err.Error(), `unknown field "ping"`) {
		t.Errorf("err %v", err)
	}
	for _, ks := range [][]StepKind{{pingKind{}, pingKind{}}, {pingKind{name: "request"}}, {pingKind{name: "Not A Slug"}}} {
		_, err := loadSteps(t, "name: f\nsteps:\n  - name: a\n    request: {url: \"http://a/\"}\n", ks...)
		if err == nil || !strings.Contains(err.Error(), "registered twice, over a step field, or not a slug") {
			t.Errorf("kinds %v registered: %v", ks, err)
		}
	}
}

// TestHTTPKind: HTTP is a registered kind like any other, there whether
// the caller lists it (as the daemon's table does) or not: its block
// decodes into an HTTPSpec, the step keeps only what every kind shares,
// and its placeholders are the step's Templates, in the order cleanup
// steps are checked in.
func TestHTTPKind(t *testing.T) {
	flow := `name: f
headers: {X-Flow: "{{f}}"}
vars: {f: "1", u: "2", b: "3", q: "4", fm: "5", user: "6"}
steps:
  - name: a
    request:
      method: post
      url: "http://x/{{u}}"
      headers: {X-Step: "s"}
      query: {q: "{{q}}"}
      form: {fm: "{{fm}}"}
      basic_auth: {user: "{{user}}"}
      follow_redirects: false
    expect: cert.expires_in > 1h
  - name: b
    request: {url: "http://x/", json: {b: "{{b}}"}}
`
	for _, ks := range [][]StepKind{nil, {HTTPKind{}, pingKind{}}, {pingKind{}, HTTPKind{}}} {
		cfg, err := loadSteps(t, flow, ks...)
		if err != nil {
			t.Fatalf("kinds %v: %v", ks, err)
		}
		a, b := cfg.Flows[0].Steps[0], cfg.Flows[0].Steps[1]
		h := httpOf(a)
		if a.Kind != "" || a.Method != "POST" || h == nil || h.Method != "POST" || h.FollowRedirects || !a.ReadsAttrs ||
			len(h.Headers) != 2 || h.Headers[0].Name != "X-Flow" || h.Body.Kind != FormBody || h.BasicAuth == nil {
			t.Errorf("kinds %v: step %+v spec %+v", ks, a, h)
		}
		var refs []string
		for _, tm := range a.Templates {
			for _, r := range tm.Refs() {
				refs = append(refs, r.Name)
			}
		}
		if strings.Join(refs, " ") != "u f q fm user" {
			t.Errorf("kinds %v: templates read %q", ks, refs)
		}
		if hb := httpOf(b); hb == nil || !hb.FollowRedirects || hb.Body.Kind != JSONBody || b.Method != "GET" || b.ReadsAttrs {
			t.Errorf("kinds %v: step b %+v spec %+v", ks, b, hb)
		}
	}
}

// nestKind reads a nested block (opts: true or {level: ...}) and a map.
type nestKind struct{}

type nestSpec struct {
	Level string
	On    bool
	Tags  []Param
}

func (nestKind) Name() string              { return "nest" }
func (nestKind) Keys() []string            { return []string{"opts", "tags"} }
func (nestKind) Operands() assert.Operands { return nil }
func (nestKind) Builtins() assert.Source   { return 0 }
func (nestKind) Decode(b *StepBlock) any {
	s := &nestSpec{}
	if sub, ok := b.Block("opts", []string{"level"}); ok {
		s.On = true
		s.Level, _ = sub.String("level", "a level")
	} else {
		s.On, _ = b.Bool("opts")
	}
	s.Tags, _ = b.Map("tags", "tags", func(name string) string {
		if name == "bad" {
			return "tag bad is bad"
		}
		return ""
	})
	return s
}

// TestStepBlockNested: a kind reads a block inside its own (or a bool in
// its place) and a map of templates, with file:line:col errors.
func TestStepBlockNested(t *testing.T) {
	cfg, err := loadSteps(t, "name: f\nvars: {v: x}\nsteps:\n  - name: a\n    nest: {opts: {level: high}, tags: {a: \"{{v}}\", b: [c, d]}}\n  - name: b\n    nest: {opts: true}\n", nestKind{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Flows[0].Steps[0].Spec.(*nestSpec), cfg.Flows[0].Steps[1].Spec.(*nestSpec)
	if !a.On || a.Level != "high" || len(a.Tags) != 3 || a.Tags[0].Name != "a" || a.Tags[2].Value.String() != "d" || len(cfg.Flows[0].Steps[0].Templates) != 3 {
		t.Errorf("a %+v", a)
	}
	if !b.On || b.Level != "" {
		t.Errorf("b %+v", b)
	}
	for _, tc := range []struct{ flow, want string }{
		{"name: f\nsteps:\n  - name: a\n    nest: {opts: {levle: x}}\n", `f.yaml:4:19: unknown field "levle" in opts`},
		{"name: f\nsteps:\n  - name: a\n    nest: {opts: 3}\n", `f.yaml:4:18: expected true or false`},
		{"name: f\nsteps:\n  - name: a\n    nest: {tags: {a: x, bad: y}}\n", `f.yaml:4:25: tag bad is bad`},
		{"name: f\nsteps:\n  - name: a\n    nest: {tags: [a]}\n", `f.yaml:4:18: expected a mapping of tags`},
		{"name: f\nsteps:\n  - name: a\n    nest: {tags: {a: \"{{nope}}\"}}\n", `undefined variable "nope"`},
	} {
		_, err := loadSteps(t, tc.flow, nestKind{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("flow:\n%s\nerr %v\nwant %q", tc.flow, err, tc.want)
		}
	}
}

// seqKind reads a list of one-key items (a browser's actions), sub-blocks
// and a list of strings.
type seqKind struct{}

type seqItem struct {
	op, arg string
	pos     Pos
}

type seqSpec struct {
	items []seqItem
	tags  []string
}

func (seqKind) Name() string              { return "seq" }
func (seqKind) Keys() []string            { return []string{"items", "tags"} }
func (seqKind) Operands() assert.Operands { return nil }
func (seqKind) Builtins() assert.Source   { return 0 }
func (seqKind) Decode(b *StepBlock) any {
	s := &seqSpec{}
	for _, it := range b.List("items", "item", []string{"say", "pair"}) {
		keys := it.Keys()
		if len(keys) != 1 {
			it.Errorf("", "one key an item, got %v", keys)
			continue
		}
		item := seqItem{op: keys[0], pos: it.Pos(keys[0])}
		if sub, ok := it.Block(keys[0], []string{"a", "b"}); ok {
			a, _ := sub.String("a", "a word")
			bb, _ := sub.String("b", "a word")
			item.arg = a + "+" + bb
		} else {
			item.arg, _ = it.String(keys[0], "a word")
		}
		s.items = append(s.items, item)
	}
	s.tags, _ = b.Strings("tags", "a tag")
	return s
}

// TestStepBlockLists: a kind reads lists of blocks, sub-blocks and lists
// of strings, with positions and errors at the items' own file:line:col.
func TestStepBlockLists(t *testing.T) {
	cfg, err := loadSteps(t, "name: f\nsteps:\n  - name: a\n    seq:\n      items:\n        - say: hi\n        - pair: {a: x, b: y}\n      tags: [t1, t2]\n", seqKind{})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Flows[0].Steps[0].Spec.(*seqSpec)
	want := []seqItem{{"say", "hi", Pos{"f.yaml", 6, 16}}, {"pair", "x+y", Pos{"f.yaml", 7, 17}}}
	if !slices.Equal(s.items, want) || !slices.Equal(s.tags, []string{"t1", "t2"}) {
		t.Errorf("items %v tags %v, want %v", s.items, s.tags, want)
	}
	for _, tc := range []struct{ block, want string }{
		{"{items: x}", "f.yaml:4:18: items: expected a list of items, got"},
		{"{items: [{say: a, pair: {a: b}}]}", "f.yaml:4:19: one key an item, got [say pair]"},
		{"{items: [{shout: a}]}", `f.yaml:4:20: unknown field "shout" in item`},
		{"{items: [{pair: {c: d}}]}", `f.yaml:4:27: unknown field "c" in pair`},
		{"{tags: t1}", "f.yaml:4:17: tags: expected a list, each a tag, got"},
		{"{tags: [\"{{x}}\"]}", "tags cannot use {{...}}"},
	} {
		_, err := loadSteps(t, "name: f\nsteps:\n  - name: a\n    seq: "+tc.block+"\n", seqKind{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.block, err, tc.want)
		}
	}
}
