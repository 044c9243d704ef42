package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/internal/template"
)

// Reusable steps: a step entry `include: steps/login.yaml` (with `with:`
// parameters and an optional `as:` prefix) stands for the steps of that
// file. The file declares its parameters; `{{param}}` in any of its
// scalars is replaced by the value given, as text, before its steps are
// compiled, so a parameter works wherever text does (URLs, bodies,
// expectations, durations) and a `{{secret:NAME}}` passed as a value stays
// a secret reference, expanded and redacted at run time like any other.

// maxIncludeDepth bounds nested includes: a chain deeper than this is a
// mistake, not a design.
const maxIncludeDepth = 8

// includeKeys are the fields of an include entry in a steps list.
var includeKeys = []string{"include", "with", "as"}

// includeFileKeys are the top-level fields of an included file (besides
// x-... extensions, as in a flow file).
var includeFileKeys = []string{"description", "params", "steps"}

// paramKeys are the fields of a parameter's declaration.
var paramKeys = []string{"default", "required", "description"}

// param is one declared parameter of an included file.
type param struct {
	name     string
	at       Pos // its key, for "declared at"
	def      string
	required bool
}

// isInclude tells a step entry that includes a file.
func isInclude(f *file, n *yaml.Node) bool {
	n = f.node(n)
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "include" {
			return true
		}
	}
	return false
}

// hasInclude tells a list of steps with an include in it: when that
// brought no steps, it said why.
func hasInclude(f *file, steps *yaml.Node) bool {
	return steps.Kind == yaml.SequenceNode && slices.ContainsFunc(steps.Content, func(n *yaml.Node) bool { return isInclude(f, n) })
}

// include compiles the steps of the file an include entry names, in the
// context of the including flow.
func (fc *flowCtx) include(n *yaml.Node, cleanup bool) []*stepInfo {
	f := fc.f
	n = f.node(n)
	o := f.object(n, "include entry (include:, with:, as:)", includeKeys)
	pn := o.get("include")
	if pn == nil {
		f.errorf(n, "include needs the path of a steps file")
		return nil
	}
	p, ok := f.plain(pn, "a steps file path", "include paths cannot use {{...}}")
	if !ok {
		return nil
	}
	full, ok := fc.includePath(pn, p)
	if !ok {
		return nil
	}
	if i := slices.Index(fc.includes, full); i >= 0 {
		chain := append(slices.Clone(fc.includes[i:]), full)
		f.errorf(pn, "include cycle: %s", strings.Join(chain, " -> "))
		return nil
	}
	if len(fc.includes) > maxIncludeDepth {
		f.errorf(pn, "includes nested more than %d deep (%s -> %s)", maxIncludeDepth, strings.Join(fc.includes, " -> "), full)
		return nil
	}
	prefix := fc.prefix
	if an := o.get("as"); an != nil {
		if s, ok := f.str(an, "a step name prefix"); ok {
			if validStepName(s) {
				prefix += s + "-"
			} else {
				f.errorf(an, "as %s must match [A-Za-z0-9_-]+ (it prefixes the included steps' names)", quote(s))
			}
		}
	}
	// Errors inside the included file say which flow included it.
	via := "included by " + f.pos(n).String()
	if up := fc.l.via[f.name]; up != "" {
		via += ", " + up
	}
	fc.l.via[full] = via
	inc, root := fc.l.includeFile(f, pn, full)
	if root == nil {
		return nil
	}

	top := inc.topObject(root, "steps file (params:, steps:)", includeFileKeys)
	params := inc.includeParams(top.get("params"))
	values, ok := fc.withValues(f, n, o.get("with"), params, full)
	if !ok {
		return nil
	}
	steps := top.get("steps")
	if steps == nil {
		at := top.key("steps")
		if at == nil {
			at = root
		}
		inc.errorf(at, "a steps file needs steps:")
		return nil
	}
	substitute(inc, steps, values, map[*yaml.Node]bool{})

	saved, savedPrefix := fc.f, fc.prefix
	fc.f, fc.prefix = inc, prefix
	fc.includes = append(fc.includes, full)
	defer func() {
		fc.f, fc.prefix = saved, savedPrefix
		fc.includes = fc.includes[:len(fc.includes)-1]
	}()
	infos := fc.stepInfos(steps, cleanup)
	if len(infos) == 0 && steps.Kind == yaml.SequenceNode && !hasInclude(inc, steps) {
		inc.errorf(steps, "a steps file needs at least one step")
	}
	return infos
}

// includePath resolves an include path against the including file's
// directory, refusing one that leaves the configuration directory.
func (fc *flowCtx) includePath(n *yaml.Node, p string) (string, bool) {
	f := fc.f
	switch {
	case p == "":
		f.errorf(n, "empty include path")
		return "", false
	case path.IsAbs(p) || filepath.IsAbs(p):
		f.errorf(n, "include path %s must be relative to the directory of %s", quote(p), f.name)
		return "", false
	}
	full := path.Join(f.dir, p)
	if !fs.ValidPath(full) {
		f.errorf(n, "include path %s is outside the configuration directory (the directory of %s): move the steps file under it", quote(p), path.Base(f.l.probesName))
		return "", false
	}
	return full, true
}

// includeFile reads and parses an included file. The text is read once per
// load; each include parses it afresh, since parameters are substituted
// into its nodes. A file that failed to read or parse is reported once.
func (l *loader) includeFile(from *file, at *yaml.Node, full string) (*file, *yaml.Node) {
	if l.included == nil {
		l.included = map[string][]byte{}
	}
	data, seen := l.included[full]
	if seen && data == nil {
		return nil, nil
	}
	if !seen {
		b, err := readBounded(l.fsys, full, maxFileSize)
		if errors.Is(err, fs.ErrNotExist) {
			from.errorf(at, "steps file %s does not exist", full)
			l.included[full] = nil
			return nil, nil
		}
		if err != nil {
			from.errorf(at, "%s", readError(err))
			l.included[full] = nil
			return nil, nil
		}
		data = b
	}
	inc, root := l.parse(full, data)
	if root == nil || !inc.isMapping(root, "steps file") {
		l.included[full] = nil
		return nil, nil
	}
	l.included[full] = data
	return inc, root
}

// includeParams reads the params: declaration of an included file: name: {} (or
// null) is required, name: {default: text} optional.
func (f *file) includeParams(n *yaml.Node) map[string]*param {
	out := map[string]*param{}
	if n == nil {
		return out
	}
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "expected a mapping of parameters (name: {default: ...} or name: {}), got %s", describe(n))
		return out
	}
	for _, p := range f.pairs(n) {
		if !validIdent(p.name) {
			f.errorf(p.key, "parameter name %s must match [A-Za-z_][A-Za-z0-9_]*", quote(p.name))
			continue
		}
		if isBuiltin(p.name) {
			f.errorf(p.key, "parameter %s shadows the built-in variable of that name", quote(p.name))
			continue
		}
		pr := &param{name: p.name, at: f.pos(p.key), required: true}
		o := f.object(p.val, "parameter", paramKeys)
		if d := o.get("default"); d != nil {
			if s, ok := f.str(d, "a default value"); ok {
				pr.def, pr.required = s, false
			}
		}
		if r := o.get("required"); r != nil {
			if b, ok := f.boolean(r); ok {
				if b && o.get("default") != nil {
					f.errorf(r, "parameter %s is required and has a default: one or the other", quote(p.name))
				}
				pr.required = b && o.get("default") == nil
			}
		}
		if ds := o.get("description"); ds != nil {
			f.str(ds, "a description")
		}
		out[p.name] = pr
	}
	return out
}

// withValues checks an include's with: against the declared parameters and
// returns the value of each (the default where not given).
func (fc *flowCtx) withValues(f *file, entry, n *yaml.Node, params map[string]*param, full string) (map[string]string, bool) {
	given := map[string]string{}
	ok := true
	if n != nil {
		if n.Kind != yaml.MappingNode {
			f.errorf(n, "expected a mapping of parameters for with:, got %s", describe(n))
			return nil, false
		}
		for _, p := range f.pairs(n) {
			if params[p.name] == nil {
				f.errorf(p.key, "unknown parameter %s of %s%s", quote(p.name), full, didYouMean(p.name, sortedKeys(params)))
				ok = false
				continue
			}
			v := f.node(p.val)
			s, good := f.str(v, "a parameter value (text; {{...}} and ${env:...} allowed)")
			if !good {
				ok = false
				continue
			}
			// Checked here, where it was written: the text is later
			// substituted into the included file.
			if _, err := template.Parse(s); err != nil {
				var se *template.SyntaxError
				if errors.As(err, &se) {
					fc.l.errorAt(f.posIn(v, se.Offset), "%s", se.Msg)
				} else {
					f.errorf(v, "%v", err)
				}
				ok = false
				continue
			}
			for _, r := range mustRefs(s) {
				if r.Secret && !fc.c.secrets[r.Name] {
					fc.l.errorAt(f.posIn(v, r.Offset), "undefined secret %s (declare it under secrets: in probes.yaml)", quote(r.Name))
					ok = false
				}
			}
			given[p.name] = s
		}
	}
	out := map[string]string{}
	for _, name := range sortedKeys(params) {
		pr := params[name]
		if v, set := given[name]; set {
			out[name] = v
			continue
		}
		if pr.required {
			f.errorf(entry, "include of %s: missing parameter %s (declared at %s); pass it under with:", full, quote(name), pr.at)
			ok = false
			continue
		}
		out[name] = pr.def
	}
	return out, ok
}

// mustRefs is the references of a template that parses.
func mustRefs(s string) []template.Ref {
	t, err := template.Parse(s)
	if err != nil {
		return nil
	}
	return t.Refs()
}

// substitute replaces {{param}} with its value in every scalar value under
// n, once per node (aliases share nodes). Keys are left alone.
func substitute(f *file, n *yaml.Node, values map[string]string, done map[*yaml.Node]bool) {
	if n == nil || done[n] || len(values) == 0 {
		return
	}
	done[n] = true
	switch n.Kind {
	case yaml.ScalarNode:
		n.Value = substituteText(n.Value, values)
	case yaml.AliasNode:
		substitute(f, n.Alias, values, done)
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			substitute(f, n.Content[i], values, done)
		}
	default:
		for _, c := range n.Content {
			substitute(f, c, values, done)
		}
	}
}

// substituteText replaces each {{ name }} naming a parameter by its value,
// in one pass: a value is not searched for placeholders again.
func substituteText(s string, values map[string]string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			break
		}
		end := i + 2 + j + 2
		v, isParam := values[strings.TrimSpace(s[i+2:i+2+j])]
		b.WriteString(s[:i])
		if isParam {
			b.WriteString(v)
		} else {
			b.WriteString(s[i:end])
		}
		s = s[end:]
	}
	b.WriteString(s)
	return b.String()
}

// viaNote is the note errors in an included file carry.
func (l *loader) viaNote(file string) string {
	if v := l.via[file]; v != "" {
		return fmt.Sprintf(" (%s)", v)
	}
	return ""
}
