package config

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/assert"
	"github.com/prober-dev/prober/internal/template"
)

// StepKind is a kind of step, registered with the loader
// (Options.StepKinds; HTTPKind, request:, by default): its block is decoded
// and validated by the kind's own package, and the spec it returns is what
// the runner executes, so config never imports the runner.
type StepKind interface {
	// Name is the step's key that holds the kind's block (tls:, tcp:), and
	// the kind's name in results (HTTP's excepted: results leave HTTP
	// steps unnamed).
	Name() string
	// Keys are the fields of its block.
	Keys() []string
	// Operands are the kind's own operands for expectations and captures.
	Operands() assert.Operands
	// Builtins are the built-in operands its responses fill besides
	// duration (e.g. assert.SourceBody for the reply of a tcp step).
	Builtins() assert.Source
	// Decode reads the block through b, reporting problems with b.Errorf,
	// and returns the step's settings (kept as Step.Spec).
	Decode(b *StepBlock) any
}

// StepBlock is one step's kind block in a flow file, read by its kind's
// Decode with the loader's own checks and file:line:col errors.
type StepBlock struct {
	fc   *flowCtx
	f    *file
	o    *object
	n    *yaml.Node
	info *stepInfo
}

// Step is the step being decoded (name, timeout and the like are set).
func (b *StepBlock) Step() *Step { return b.info.step }

// Has says whether the block sets key.
func (b *StepBlock) Has(key string) bool { return b.o.get(key) != nil }

// Errorf reports a problem at key's value, or at the block when key is ""
// or not set.
func (b *StepBlock) Errorf(key, format string, args ...any) {
	n := b.n
	if v := b.o.get(key); key != "" && v != nil {
		n = v
	}
	b.f.errorf(n, format, args...)
}

// String reads a plain string (${env:...} allowed, no placeholders).
func (b *StepBlock) String(key, want string) (string, bool) {
	v := b.o.get(key)
	if v == nil {
		return "", false
	}
	return b.f.plain(v, want, key+" cannot use {{...}}")
}

// Template reads a string that may hold {{var}} and {{secret:NAME}}
// placeholders, checked like a request's: each must be defined before the
// step runs.
func (b *StepBlock) Template(key, want string) (*template.Template, bool) {
	v := b.o.get(key)
	if v == nil {
		return nil, false
	}
	t, ok := b.f.tmpl(v, want, &b.info.uses)
	if ok {
		b.info.step.Templates = append(b.info.step.Templates, t)
	}
	return t, ok
}

// Duration reads a positive duration.
func (b *StepBlock) Duration(key string) (time.Duration, bool) {
	v := b.o.get(key)
	if v == nil {
		return 0, false
	}
	return b.f.positive(v, key)
}

// Bool reads true or false.
func (b *StepBlock) Bool(key string) (bool, bool) {
	v := b.o.get(key)
	if v == nil {
		return false, false
	}
	return b.f.boolean(v)
}

// Int reads an integer between lo and hi (what names it in messages).
func (b *StepBlock) Int(key string, lo, hi int64) (int64, bool) {
	v := b.o.get(key)
	if v == nil {
		return 0, false
	}
	return b.f.integer(v, key, lo, hi)
}

// PEMFile reads a file of PEM certificates (a CA file): its path as shown
// and its contents.
func (b *StepBlock) PEMFile(key string) (shown string, pem []byte, ok bool) {
	v := b.o.get(key)
	if v == nil {
		return "", nil, false
	}
	p, ok := b.f.plain(v, "a file path", key+" cannot use {{...}}")
	if !ok {
		return "", nil, false
	}
	shown, data, err := b.f.readFile(p)
	switch {
	case err != nil:
		b.f.errorf(v, "%s: %s", key, readError(err))
	case !x509.NewCertPool().AppendCertsFromPEM(data):
		b.f.errorf(v, "%s %s holds no PEM certificate", key, shown)
	default:
		return shown, data, true
	}
	return "", nil, false
}

// File reads what key names: a file path, or one {{secret:NAME}} whose
// value is the contents (a client certificate or key). It returns what to
// show of it ("secret NAME" for a secret) and the contents, nil for a
// secret not read (validate without --secrets: its shape is all there is
// to check). With redact (a key), a file's contents are masked wherever
// secrets are.
func (b *StepBlock) File(key string, redact bool) (shown string, data []byte, ok bool) {
	v := b.o.get(key)
	if v == nil {
		return "", nil, false
	}
	shown, data, ok = b.f.pemSource(v, key)
	if !ok || shown == "" {
		return "", nil, false
	}
	if redact && data != nil && !strings.HasPrefix(shown, "secret ") {
		b.f.l.keyPEMs[key+":"+shown] = string(data)
	}
	return shown, data, true
}

// Block reads key's value as a block of its own when it is a mapping (a
// tls: block inside a kind's), with fields keys; ok is false when key is
// not set or not a mapping, so a kind may read it otherwise (Bool).
func (b *StepBlock) Block(key string, keys []string) (sub *StepBlock, ok bool) {
	v := b.o.get(key)
	if v == nil || b.f.node(v).Kind != yaml.MappingNode {
		return nil, false
	}
	return &StepBlock{f: b.f, o: b.f.object(v, key, keys), n: v, info: b.info}, true
}

// Map reads a mapping of names to strings that may hold placeholders
// (checked like Template's; a list gives a name several values), for
// metadata or headers. check says what is wrong with a name, or "".
func (b *StepBlock) Map(key, what string, check func(name string) string) ([]Param, bool) {
	v := b.o.get(key)
	if v == nil {
		return nil, false
	}
	ps := b.f.params(v, what, &b.info.uses)
	bad := map[string]bool{}
	for _, p := range ps {
		b.info.step.Templates = append(b.info.step.Templates, p.Value)
		if msg := check(p.Name); msg != "" && !bad[p.Name] {
			b.f.errorf(mapKey(b.f.node(v), p.Name), "%s", msg)
			bad[p.Name] = true
		}
	}
	return ps, len(bad) == 0
}

// mapKey is the node of name's key in mapping n, or n (a merged key).
func mapKey(n *yaml.Node, name string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == name {
			return n.Content[i]
		}
	}
	return n
}

// List reads a list of mappings (a kind's actions, say), each holding only
// keys: one block per item, read with the same methods and errors at the
// item's own file:line:col. what names an item in messages ("an action").
func (b *StepBlock) List(key, what string, keys []string) []*StepBlock {
	v := b.o.get(key)
	if v == nil {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		b.f.errorf(v, "%s: expected a list of %ss, got %s", key, what, describe(v))
		return nil
	}
	out := make([]*StepBlock, 0, len(v.Content))
	for _, item := range v.Content {
		n := b.f.node(item)
		out = append(out, &StepBlock{f: b.f, o: b.f.object(n, what, keys), n: n, info: b.info})
	}
	return out
}

// Strings reads a list of plain strings (no placeholders).
func (b *StepBlock) Strings(key, want string) ([]string, bool) {
	v := b.o.get(key)
	if v == nil {
		return nil, false
	}
	if v.Kind != yaml.SequenceNode {
		b.f.errorf(v, "%s: expected a list, each %s, got %s", key, want, describe(v))
		return nil, false
	}
	out := make([]string, 0, len(v.Content))
	for _, item := range v.Content {
		s, ok := b.f.plain(b.f.node(item), want, key+" cannot use {{...}}")
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// Keys lists the keys the block sets, in document order.
func (b *StepBlock) Keys() []string {
	var out []string
	if b.n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i < len(b.n.Content); i += 2 {
		k := b.n.Content[i]
		if _, ok := b.o.known[k.Value]; ok && k.Kind == yaml.ScalarNode && !slices.Contains(out, k.Value) {
			out = append(out, k.Value)
		}
	}
	return out
}

// Pos is where key's value is (the block's own position when key is "" or
// not set), for messages a kind gives when the step runs.
func (b *StepBlock) Pos(key string) Pos {
	n := b.n
	if v := b.o.get(key); key != "" && v != nil {
		n = v
	}
	return b.f.pos(n)
}

// Configured is an optional interface of a StepKind with settings of
// its own in probes.yaml (the browser kind's browser_concurrency): Load
// calls Configure with every configuration it loads without errors, so a
// reload's new settings reach the kind before its flows run.
type Configured interface {
	StepKind
	Configure(cfg *Config)
}

// checkStepKinds reports kinds registered twice or over a step's own keys:
// a programming error, caught by any load.
func (l *loader) checkStepKinds() error {
	seen := map[string]bool{}
	for _, k := range stepKeys {
		seen[k] = true
	}
	for _, k := range l.stepKinds {
		if seen[k.Name()] || !validSlug(k.Name()) {
			return fmt.Errorf("step kind %q registered twice, over a step field, or not a slug", k.Name())
		}
		seen[k.Name()] = true
	}
	return nil
}

// withHTTP is ks with the HTTP kind first, whether ks lists it or not:
// the kind a step without one is told to have. Another kind named
// "request" is one registered twice (checkStepKinds).
func withHTTP(ks []StepKind) []StepKind {
	out := []StepKind{HTTPKind{}}
	for _, k := range ks {
		if _, isHTTP := k.(HTTPKind); !isHTTP {
			out = append(out, k)
		}
	}
	return out
}

// stepKeys are the fields of every step, whatever its kind.
var stepKeys = []string{"name", "timeout", "expect", "capture", "until", "retry", "dependency"}

// kindSources are the built-in operands a kind's responses fill.
func kindSources(k StepKind) assert.Source {
	return k.Builtins() | assert.SourceDuration | assert.SourceAttr
}

// operandList names what a kind's expectations may read, for messages.
func operandList(k StepKind) string {
	names := []string{"duration"}
	for _, s := range []struct {
		src  assert.Source
		name string
	}{{assert.SourceStatus, "status"}, {assert.SourceHeader, "header.<name>"}, {assert.SourceHeader, "headers.<name>"},
		{assert.SourceBody, "body"}, {assert.SourceJSON, "json.<path>"}, {assert.SourceHTML, "html(<selector>)"}, {assert.SourceCookie, "cookie.<name>"}} {
		if k.Builtins()&s.src != 0 {
			names = append(names, s.name)
		}
	}
	names = append(names, k.Operands().Names()...)
	return strings.Join(names, ", ")
}
