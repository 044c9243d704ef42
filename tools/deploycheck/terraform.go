// Package deploycheck checks the deployment artifacts under deploy/ (and the
// top-level Dockerfile) without a cloud account or a container engine: the
// Terraform's references resolve, the Dockerfile's build produces what the
// image promises, the systemd unit verifies.
//
// The Terraform check parses every .tf file of a module with hclsyntax and
// resolves every reference the way Terraform would at plan time, failing on
// what `terraform validate` would reject for want of a declaration: var.X,
// local.X, module.X and module.X.Y (Y an output of X's source), resource
// and data source addresses, count/each/self outside the blocks that define
// them, and module calls that miss a required variable or pass one the
// module does not declare. It knows nothing of provider schemas: a
// misspelled resource argument or attribute is for `terraform validate`
// with the providers installed.
package deploycheck

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/prober-dev/prober/internal/suggest"
)

// Problem is one finding at a position in a .tf file.
type Problem struct {
	File   string // relative to the Checker's Base
	Line   int
	Column int
	Msg    string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Msg)
}

// Module is one directory of .tf files and what it declares.
type Module struct {
	Dir       string // absolute
	Files     []*hcl.File
	Variables map[string]*Variable
	Locals    map[string]hcl.Range
	Outputs   map[string]hcl.Range
	Resources map[string]hcl.Range // "type.name"
	Data      map[string]hcl.Range // "type.name"
	Ephemeral map[string]hcl.Range // "type.name"
	Calls     map[string]*Call
	// Providers holds the provider configurations a reference may name:
	// "aws" for a default configuration, "aws.home" for an alias (from a
	// provider block or required_providers' configuration_aliases).
	Providers map[string]bool

	problems []Problem // parse errors, duplicates
}

// Variable is an input variable.
type Variable struct {
	Name     string
	Required bool // no default
	Range    hcl.Range
}

// Call is a module block.
type Call struct {
	Name   string
	Source string
	Block  *hclsyntax.Block
	Child  *Module // nil when the source is not a local path
}

// Checker loads modules (once each) and checks them.
type Checker struct {
	// Base is what problem file names are relative to.
	Base    string
	parser  *hclparse.Parser
	modules map[string]*Module
	loading map[string]bool
}

// NewChecker returns a Checker reporting files relative to base.
func NewChecker(base string) *Checker {
	if abs, err := filepath.Abs(base); err == nil {
		base = abs
	}
	return &Checker{Base: base, parser: hclparse.NewParser(), modules: map[string]*Module{}, loading: map[string]bool{}}
}

// CheckTree checks every directory under root that holds .tf files as a
// module, and returns every problem, sorted by file and position.
func (c *Checker) CheckTree(root string) ([]Problem, error) {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".terraform" || (strings.HasPrefix(d.Name(), ".") && p != root)) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".tf") {
			dir := filepath.Dir(p)
			if !slices.Contains(dirs, dir) {
				dirs = append(dirs, dir)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no .tf files under %s", root)
	}
	var out []Problem
	for _, d := range dirs {
		ps, err := c.CheckModule(d)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	sortProblems(out)
	return out, nil
}

// CheckModule checks the module in dir: its references, and its module
// calls' arguments against the called modules' variables.
func (c *Checker) CheckModule(dir string) ([]Problem, error) {
	m, err := c.Load(dir)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(m.problems)
	w := &walker{c: c, m: m}
	for _, f := range m.Files {
		w.file(f.Body.(*hclsyntax.Body))
	}
	out = append(out, w.problems...)
	names := make([]string, 0, len(m.Calls))
	for n := range m.Calls {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, c.checkCall(m, m.Calls[n])...)
	}
	sortProblems(out)
	return out, nil
}

// Load parses the .tf files of dir (once) and collects its declarations,
// loading the modules it calls from local paths.
func (c *Checker) Load(dir string) (*Module, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if m, ok := c.modules[abs]; ok {
		return m, nil
	}
	if c.loading[abs] {
		return nil, fmt.Errorf("%s: module calls itself", c.rel(abs))
	}
	c.loading[abs] = true
	defer delete(c.loading, abs)

	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, err
	}
	m := &Module{
		Dir: abs, Variables: map[string]*Variable{}, Locals: map[string]hcl.Range{}, Outputs: map[string]hcl.Range{},
		Resources: map[string]hcl.Range{}, Data: map[string]hcl.Range{}, Ephemeral: map[string]hcl.Range{},
		Calls: map[string]*Call{}, Providers: map[string]bool{},
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".tf") {
			continue
		}
		path := filepath.Join(abs, e.Name())
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		f, diags := c.parser.ParseHCL(src, c.rel(path))
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				m.problems = append(m.problems, c.problemAt(d.Subject, d.Summary+": "+d.Detail))
			}
		}
		if f == nil || diags.HasErrors() {
			continue
		}
		m.Files = append(m.Files, f)
	}
	c.modules[abs] = m
	for _, f := range m.Files {
		c.declare(m, f.Body.(*hclsyntax.Body))
	}
	return m, nil
}

func (c *Checker) declare(m *Module, body *hclsyntax.Body) {
	dup := func(kind, name string, first, again hcl.Range) {
		m.problems = append(m.problems, c.problemAt(&again,
			fmt.Sprintf("duplicate %s %q; first declared at %s", kind, name, c.pos(first))))
	}
	for _, b := range body.Blocks {
		switch b.Type {
		case "variable":
			if len(b.Labels) != 1 {
				continue
			}
			n := b.Labels[0]
			if v, ok := m.Variables[n]; ok {
				dup("variable", n, v.Range, b.DefRange())
				continue
			}
			_, hasDefault := b.Body.Attributes["default"]
			m.Variables[n] = &Variable{Name: n, Required: !hasDefault, Range: b.DefRange()}
		case "locals":
			for n, a := range b.Body.Attributes {
				if r, ok := m.Locals[n]; ok {
					dup("local value", n, r, a.NameRange)
					continue
				}
				m.Locals[n] = a.NameRange
			}
		case "output":
			if len(b.Labels) != 1 {
				continue
			}
			if r, ok := m.Outputs[b.Labels[0]]; ok {
				dup("output", b.Labels[0], r, b.DefRange())
				continue
			}
			m.Outputs[b.Labels[0]] = b.DefRange()
		case "resource", "data", "ephemeral":
			if len(b.Labels) != 2 {
				continue
			}
			set := map[string]map[string]hcl.Range{"resource": m.Resources, "data": m.Data, "ephemeral": m.Ephemeral}[b.Type]
			addr := b.Labels[0] + "." + b.Labels[1]
			if r, ok := set[addr]; ok {
				dup(b.Type, addr, r, b.DefRange())
				continue
			}
			set[addr] = b.DefRange()
		case "module":
			if len(b.Labels) != 1 {
				continue
			}
			n := b.Labels[0]
			if prev, ok := m.Calls[n]; ok {
				dup("module", n, prev.Block.DefRange(), b.DefRange())
				continue
			}
			call := &Call{Name: n, Block: b}
			m.Calls[n] = call
			sa, ok := b.Body.Attributes["source"]
			if !ok {
				m.problems = append(m.problems, c.problemAt(ptr(b.DefRange()), fmt.Sprintf("module %q has no source", n)))
				continue
			}
			v, diags := sa.Expr.Value(nil)
			if diags.HasErrors() || !v.Type().Equals(cty.String) {
				m.problems = append(m.problems, c.problemAt(ptr(sa.Expr.Range()), fmt.Sprintf("module %q: source must be a literal string", n)))
				continue
			}
			call.Source = v.AsString()
			if strings.HasPrefix(call.Source, "./") || strings.HasPrefix(call.Source, "../") {
				dir := filepath.Join(m.Dir, filepath.FromSlash(call.Source))
				if !hasTF(dir) {
					m.problems = append(m.problems, c.problemAt(ptr(sa.Expr.Range()),
						fmt.Sprintf("module %q: source %q is not a directory of .tf files", n, call.Source)))
					continue
				}
				child, err := c.Load(dir)
				if err != nil {
					m.problems = append(m.problems, c.problemAt(ptr(sa.Expr.Range()), fmt.Sprintf("module %q: %v", n, err)))
					continue
				}
				call.Child = child
			}
		case "provider":
			if len(b.Labels) != 1 {
				continue
			}
			name := b.Labels[0]
			if a, ok := b.Body.Attributes["alias"]; ok {
				if v, diags := a.Expr.Value(nil); !diags.HasErrors() && v.Type().Equals(cty.String) {
					name += "." + v.AsString()
				}
			}
			m.Providers[name] = true
		case "terraform":
			for _, rp := range b.Body.Blocks {
				if rp.Type != "required_providers" {
					continue
				}
				for pname, a := range rp.Body.Attributes {
					m.Providers[pname] = true
					obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
					if !ok {
						continue
					}
					for _, item := range obj.Items {
						if hcl.ExprAsKeyword(item.KeyExpr) != "configuration_aliases" {
							continue
						}
						list, ok := item.ValueExpr.(*hclsyntax.TupleConsExpr)
						if !ok {
							continue
						}
						for _, e := range list.Exprs {
							if t, diags := hcl.AbsTraversalForExpr(e); !diags.HasErrors() && len(t) == 2 {
								if at, ok := t[1].(hcl.TraverseAttr); ok {
									m.Providers[t.RootName()+"."+at.Name] = true
								}
							}
						}
					}
				}
			}
		}
	}
}

// checkCall compares a module call's arguments with the called module's
// variables.
func (c *Checker) checkCall(m *Module, call *Call) []Problem {
	if call.Child == nil {
		return nil // a registry or remote module: its variables are not here
	}
	var out []Problem
	src := call.Source
	for name, a := range call.Block.Body.Attributes {
		if metaModuleArgs[name] {
			continue
		}
		if _, ok := call.Child.Variables[name]; !ok {
			out = append(out, c.problemAt(&a.NameRange,
				fmt.Sprintf("module %q: unsupported argument %q: %s declares no variable %q%s", call.Name, name, src, name, hint(name, call.Child.Variables))))
		}
	}
	for _, b := range call.Block.Body.Blocks {
		out = append(out, c.problemAt(ptr(b.DefRange()),
			fmt.Sprintf("module %q: unexpected %s block: module inputs are arguments", call.Name, b.Type)))
	}
	names := make([]string, 0, len(call.Child.Variables))
	for n := range call.Child.Variables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := call.Child.Variables[n]
		if _, ok := call.Block.Body.Attributes[n]; v.Required && !ok {
			out = append(out, c.problemAt(ptr(call.Block.DefRange()),
				fmt.Sprintf("module %q: missing required argument %q (variable %q at %s has no default)", call.Name, n, n, c.pos(v.Range))))
		}
	}
	return out
}

var metaModuleArgs = map[string]bool{"source": true, "version": true, "count": true, "for_each": true, "providers": true, "depends_on": true}

// scope is what a position in the configuration may refer to besides the
// module's declarations.
type scope struct {
	count, forEach, self bool
	iterators            map[string]bool // dynamic block iterators
	checkData            map[string]bool // data sources scoped to a check block
}

func (s scope) with(f func(*scope)) scope {
	n := s
	n.iterators = cloneSet(s.iterators)
	n.checkData = cloneSet(s.checkData)
	f(&n)
	return n
}

type walker struct {
	c        *Checker
	m        *Module
	problems []Problem
}

func (w *walker) add(r hcl.Range, format string, args ...any) {
	w.problems = append(w.problems, w.c.problemAt(&r, fmt.Sprintf(format, args...)))
}

func (w *walker) file(body *hclsyntax.Body) {
	for _, b := range body.Blocks {
		switch b.Type {
		case "terraform":
			// required_providers, backends, experiments: no references.
		case "variable":
			for n, a := range b.Body.Attributes {
				if n == "type" {
					continue // a type expression: string, map(object({...}))
				}
				w.expr(a.Expr, scope{})
			}
			w.blocks(b.Body.Blocks, scope{})
		case "resource", "data", "ephemeral":
			w.resource(b)
		case "module":
			s := metaScope(b.Body)
			for n, a := range b.Body.Attributes {
				switch n {
				case "source", "version":
				case "providers":
					w.providerMap(a.Expr)
				case "count", "for_each":
					w.expr(a.Expr, scope{})
				default:
					w.expr(a.Expr, s)
				}
			}
		case "check":
			s := scope{checkData: map[string]bool{}}
			for _, inner := range b.Body.Blocks {
				if inner.Type == "data" && len(inner.Labels) == 2 {
					s.checkData[inner.Labels[0]+"."+inner.Labels[1]] = true
				}
			}
			for _, inner := range b.Body.Blocks {
				if inner.Type == "data" {
					w.resource(inner)
					continue
				}
				w.body(inner.Body, s)
			}
		case "moved", "removed":
			// from/to name addresses that may no longer exist; to is checked
			// by Terraform against the configuration, and so here.
			if a, ok := b.Body.Attributes["to"]; ok && b.Type == "moved" {
				w.movedTo(a.Expr)
			}
		case "import":
			s := metaScope(b.Body)
			for n, a := range b.Body.Attributes {
				if n == "provider" {
					w.providerRef(a.Expr)
					continue
				}
				w.expr(a.Expr, s)
			}
		case "provider", "locals", "output":
			w.body(b.Body, scope{})
		default:
			w.body(b.Body, scope{})
		}
	}
}

func metaScope(body *hclsyntax.Body) scope {
	_, count := body.Attributes["count"]
	_, forEach := body.Attributes["for_each"]
	return scope{count: count, forEach: forEach}
}

func (w *walker) resource(b *hclsyntax.Block) {
	s := metaScope(b.Body)
	for n, a := range b.Body.Attributes {
		switch n {
		case "provider":
			w.providerRef(a.Expr)
		case "count", "for_each":
			w.expr(a.Expr, scope{}) // evaluated before each/count exist
		default:
			w.expr(a.Expr, s)
		}
	}
	for _, inner := range b.Body.Blocks {
		switch inner.Type {
		case "lifecycle":
			for n, a := range inner.Body.Attributes {
				if n == "ignore_changes" {
					continue // attribute paths of this resource, not references
				}
				w.expr(a.Expr, s)
			}
			for _, cond := range inner.Body.Blocks {
				cs := s
				if cond.Type == "postcondition" {
					cs = s.with(func(x *scope) { x.self = true })
				}
				w.body(cond.Body, cs)
			}
		case "provisioner", "connection":
			w.body(inner.Body, s.with(func(x *scope) { x.self = true }))
		default:
			w.block(inner, s)
		}
	}
}

func (w *walker) blocks(bs hclsyntax.Blocks, s scope) {
	for _, b := range bs {
		w.block(b, s)
	}
}

func (w *walker) block(b *hclsyntax.Block, s scope) {
	if b.Type != "dynamic" {
		w.body(b.Body, s)
		return
	}
	// dynamic "name" { for_each = ...  iterator = it  labels = [...]  content { it.value } }
	it := ""
	if len(b.Labels) == 1 {
		it = b.Labels[0]
	}
	for n, a := range b.Body.Attributes {
		switch n {
		case "iterator":
			kw := hcl.ExprAsKeyword(a.Expr)
			if kw == "" {
				w.add(a.Expr.Range(), "dynamic block iterator must be a bare name")
				continue
			}
			it = kw
		case "for_each":
			w.expr(a.Expr, s)
		}
	}
	inner := s.with(func(x *scope) {
		if it != "" {
			x.iterators[it] = true
		}
	})
	if a, ok := b.Body.Attributes["labels"]; ok {
		w.expr(a.Expr, inner)
	}
	for _, c := range b.Body.Blocks {
		if c.Type == "content" {
			w.body(c.Body, inner)
		} else {
			w.add(c.DefRange(), "unexpected %s block in a dynamic block: want content", c.Type)
		}
	}
}

func (w *walker) body(b *hclsyntax.Body, s scope) {
	for _, a := range b.Attributes {
		w.expr(a.Expr, s)
	}
	w.blocks(b.Blocks, s)
}

// providerMap checks a module call's providers = { child = parent.alias }.
func (w *walker) providerMap(e hclsyntax.Expression) {
	obj, ok := e.(*hclsyntax.ObjectConsExpr)
	if !ok {
		w.add(e.Range(), "providers must be a map of provider configurations")
		return
	}
	for _, item := range obj.Items {
		w.providerRef(item.ValueExpr)
	}
}

func (w *walker) providerRef(e hclsyntax.Expression) {
	t, diags := hcl.AbsTraversalForExpr(e)
	if diags.HasErrors() || len(t) > 2 {
		w.add(e.Range(), "a provider reference must be a provider name or name.alias")
		return
	}
	name := t.RootName()
	if len(t) == 2 {
		at, ok := t[1].(hcl.TraverseAttr)
		if !ok {
			w.add(e.Range(), "a provider reference must be a provider name or name.alias")
			return
		}
		name += "." + at.Name
		if !w.m.Providers[name] {
			w.add(t.SourceRange(), "reference to undeclared provider configuration %q (no provider %q block with alias = %q, nor a configuration_aliases entry)",
				name, t.RootName(), at.Name)
		}
	}
}

// movedTo checks a moved block's to address. module.NAME.TYPE.NAME is a
// resource inside a called module (a resource moved into a submodule), not
// an output of it: checked against the resources that module declares.
func (w *walker) movedTo(e hclsyntax.Expression) {
	st, ok := e.(*hclsyntax.ScopeTraversalExpr)
	if !ok || st.Traversal.RootName() != "module" {
		w.expr(e, scope{})
		return
	}
	t, r := st.Traversal, st.Traversal.SourceRange()
	n, ok := attr(t, 1)
	if !ok {
		w.add(r, "module must be followed by a module name")
		return
	}
	call, ok := w.m.Calls[n]
	if !ok {
		w.add(r, "reference to undeclared module %q%s", n, hint(n, w.m.Calls))
		return
	}
	i := 2
	if i < len(t) {
		if _, isIndex := t[i].(hcl.TraverseIndex); isIndex {
			i++
		}
	}
	typ, ok := attr(t, i)
	if !ok || call.Child == nil || typ == "module" {
		return // the whole module, one we cannot see into, or a nested call
	}
	name, ok := attr(t, i+1)
	if !ok {
		w.add(r, "moved to module.%s.%s: a resource type must be followed by a resource name", n, typ)
		return
	}
	if addr := typ + "." + name; !hasKey(call.Child.Resources, addr) {
		w.add(r, "moved to module.%s.%s: module %q (%s) declares no resource %q%s", n, addr, n, call.Source, addr, hint(addr, call.Child.Resources))
	}
}

func (w *walker) expr(e hclsyntax.Expression, s scope) {
	for _, t := range hclsyntax.Variables(e) {
		w.traversal(t, s)
	}
	w.calls(e)
}

// calls checks the function calls in e that terraform validate rejects on
// the types alone. One so far: sort() of a set whose elements are module
// outputs or resource attributes. validate knows neither their values nor
// their types, so toset([...]) of them is a set of "dynamic", and sort,
// which takes list(string), fails with "string required, but received
// dynamic" (a plan, knowing the types, would pass). Sorting
// [for x in SET : tostring(x)] passes both.
func (w *walker) calls(e hclsyntax.Expression) {
	hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		call, ok := n.(*hclsyntax.FunctionCallExpr)
		if !ok || call.Name != "sort" || len(call.Args) != 1 {
			return nil
		}
		if what := w.dynamicSet(call.Args[0], 0); what != "" {
			w.add(call.Args[0].Range(), "sort() of a set of %s: terraform validate fails (string required, but received dynamic), "+
				"as their types are unknown until plan; sort [for x in SET : tostring(x)] instead", what)
		}
		return nil
	})
}

// dynamicSet says what e is a set of when it is toset() of values whose type
// validate does not know ("module outputs"), through local values; "" when
// it is not (or this cannot tell).
func (w *walker) dynamicSet(e hclsyntax.Expression, depth int) string {
	if depth > 8 {
		return "" // a local referring to itself, through others
	}
	switch e := e.(type) {
	case *hclsyntax.ScopeTraversalExpr:
		if x := w.local(e.Traversal); x != nil {
			return w.dynamicSet(x, depth+1)
		}
	case *hclsyntax.FunctionCallExpr:
		if e.Name != "toset" || len(e.Args) != 1 {
			return ""
		}
		tuple, ok := e.Args[0].(*hclsyntax.TupleConsExpr)
		if !ok {
			return ""
		}
		for _, el := range tuple.Exprs {
			if what := w.untyped(el, depth+1); what != "" {
				return what
			}
		}
	}
	return ""
}

// untyped says what e is when validate cannot know its type: a module
// output, a resource or data source attribute (directly or through a local).
func (w *walker) untyped(e hclsyntax.Expression, depth int) string {
	if depth > 8 {
		return ""
	}
	t, ok := e.(*hclsyntax.ScopeTraversalExpr)
	if !ok {
		return ""
	}
	switch root := t.Traversal.RootName(); root {
	case "module":
		return "module outputs"
	case "data":
		return "data source attributes"
	case "local":
		if x := w.local(t.Traversal); x != nil {
			return w.untyped(x, depth+1)
		}
	case "var", "path", "terraform", "count", "each", "self":
	default:
		if _, ok := w.m.Resources[root+"."+attrOr(t.Traversal, 1, "")]; ok {
			return "resource attributes"
		}
	}
	return ""
}

// local returns the expression of the local value t names, if it does.
func (w *walker) local(t hcl.Traversal) hclsyntax.Expression {
	if t.RootName() != "local" || len(t) != 2 {
		return nil
	}
	n, _ := attr(t, 1)
	for _, f := range w.m.Files {
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if a, ok := b.Body.Attributes[n]; ok && b.Type == "locals" {
				return a.Expr
			}
		}
	}
	return nil
}

// attr returns the name of step i of t if it is an attribute access.
func attr(t hcl.Traversal, i int) (string, bool) {
	if i >= len(t) {
		return "", false
	}
	a, ok := t[i].(hcl.TraverseAttr)
	return a.Name, ok
}

func (w *walker) traversal(t hcl.Traversal, s scope) {
	root := t.RootName()
	r := t.SourceRange()
	switch root {
	case "var":
		if n, ok := attr(t, 1); !ok {
			w.add(r, "var must be followed by a variable name")
		} else if _, ok := w.m.Variables[n]; !ok {
			w.add(r, "reference to undeclared input variable %q%s", n, hint(n, w.m.Variables))
		}
	case "local":
		if n, ok := attr(t, 1); !ok {
			w.add(r, "local must be followed by a local value name")
		} else if _, ok := w.m.Locals[n]; !ok {
			w.add(r, "reference to undeclared local value %q%s", n, hint(n, w.m.Locals))
		}
	case "module":
		n, ok := attr(t, 1)
		if !ok {
			w.add(r, "module must be followed by a module name")
			return
		}
		call, ok := w.m.Calls[n]
		if !ok {
			w.add(r, "reference to undeclared module %q%s", n, hint(n, w.m.Calls))
			return
		}
		i := 2
		if i < len(t) {
			if _, isIndex := t[i].(hcl.TraverseIndex); isIndex {
				i++
			}
		}
		out, ok := attr(t, i)
		if !ok || call.Child == nil {
			return // the whole module object, or a module we cannot see into
		}
		if _, ok := call.Child.Outputs[out]; !ok {
			w.add(r, "module %q (%s) has no output %q%s", n, call.Source, out, hint(out, call.Child.Outputs))
		}
	case "data", "ephemeral":
		typ, ok1 := attr(t, 1)
		name, ok2 := attr(t, 2)
		if !ok1 || !ok2 {
			w.add(r, "%s must be followed by a type and a name", root)
			return
		}
		addr := typ + "." + name
		set := w.m.Data
		if root == "ephemeral" {
			set = w.m.Ephemeral
		}
		if _, ok := set[addr]; !ok && !(root == "data" && s.checkData[addr]) {
			w.add(r, "reference to undeclared %s %q%s", map[string]string{"data": "data source", "ephemeral": "ephemeral resource"}[root], root+"."+addr, hint(addr, set))
		}
	case "path":
		if n, _ := attr(t, 1); n != "module" && n != "root" && n != "cwd" {
			w.add(r, "invalid reference path.%s: path has only module, root and cwd", n)
		}
	case "terraform":
		if n, _ := attr(t, 1); n != "workspace" && n != "applying" {
			w.add(r, "invalid reference terraform.%s: terraform has only workspace and applying", n)
		}
	case "count":
		if !s.count {
			w.add(r, "count.index used where there is no count (only in a resource, data or module block that sets count)")
		} else if n, _ := attr(t, 1); n != "index" {
			w.add(r, "count has only index")
		}
	case "each":
		if !s.forEach {
			w.add(r, "each.%s used where there is no for_each", attrOr(t, 1, "?"))
		} else if n, _ := attr(t, 1); n != "key" && n != "value" {
			w.add(r, "each has only key and value")
		}
	case "self":
		if !s.self {
			w.add(r, "self used outside a provisioner, connection or postcondition block")
		}
	default:
		if s.iterators[root] {
			if n, _ := attr(t, 1); n != "key" && n != "value" {
				w.add(r, "dynamic block iterator %s has only key and value", root)
			}
			return
		}
		name, ok := attr(t, 1)
		if !ok {
			w.add(r, "invalid reference %q: a resource type must be followed by a resource name", root)
			return
		}
		if _, ok := w.m.Resources[root+"."+name]; !ok {
			w.add(r, "reference to undeclared resource %q%s", root+"."+name, hint(root+"."+name, w.m.Resources))
		}
	}
}

// hint is a " (did you mean ...?)" for a name missing from declared.
func hint[V any](name string, declared map[string]V) string {
	names := make([]string, 0, len(declared))
	for n := range declared {
		names = append(names, n)
	}
	sort.Strings(names)
	if c := suggest.Closest(name, names, 3); c != "" {
		return fmt.Sprintf(" (did you mean %q?)", c)
	}
	return ""
}

func attrOr(t hcl.Traversal, i int, def string) string {
	if n, ok := attr(t, i); ok {
		return n
	}
	return def
}

func (c *Checker) rel(path string) string {
	if c.Base == "" {
		return filepath.ToSlash(path)
	}
	if r, err := filepath.Rel(c.Base, path); err == nil {
		return filepath.ToSlash(r)
	}
	return filepath.ToSlash(path)
}

func (c *Checker) problemAt(r *hcl.Range, msg string) Problem {
	if r == nil {
		return Problem{Msg: msg}
	}
	return Problem{File: r.Filename, Line: r.Start.Line, Column: r.Start.Column, Msg: msg}
}

func (c *Checker) pos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line)
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Msg < b.Msg
	})
}

func hasTF(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".tf") {
			return true
		}
	}
	return false
}

func cloneSet(m map[string]bool) map[string]bool {
	n := make(map[string]bool, len(m))
	for k, v := range m {
		n[k] = v
	}
	return n
}

func ptr[T any](v T) *T { return &v }

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}
