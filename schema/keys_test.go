package schema_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/daemon"
	"github.com/prober-dev/prober/schema"
)

// The loader's blocks, found in its source: every f.object(n, "what",
// keys) in internal/config and every b.Block(key, keys) or b.List(key,
// what, keys) in a step kind's package is a block with a fixed set of
// keys. sites maps each (package:what) to where the schemas describe it:
// "probes#/$defs/x" or "flow#/$defs/x" ("#" alone: the file's root).
// A block the loader gains fails TestSchemaKeys until it is added here and
// to the schema.
var sites = map[string][]string{
	"config:probes.yaml":        {"probes#"},
	"config:store":              {"probes#/$defs/store"},
	"config:history":            {"probes#/$defs/history"},
	"config:secret":             {"probes#/$defs/secret"},
	"config:defaults":           {"probes#/$defs/defaults"},
	"config:tls":                {"probes#/$defs/tls", "flow#/$defs/tls"},
	"config:tracing":            {"probes#/$defs/tracing"},
	"config:alerting":           {"probes#/$defs/alerting"},
	"config:notifier":           {"probes#/$defs/notifier"},
	"config:heartbeat":          {"probes#/$defs/heartbeat"},
	"config:silence":            {"probes#/$defs/silence"},
	"config:maintenance window": {"probes#/$defs/maintenance_window"},
	"config:prometheus":         {"probes#/$defs/prometheus"},
	"config:basic_auth":         {"probes#/$defs/basic_auth", "flow#/$defs/basic_auth"},
	"config:signal":             {"probes#/$defs/signal"},
	"config:rule":               {"probes#/$defs/rule"},
	"config:flow_failing":       {"probes#/$defs/flow_failing"},
	"config:burn_rate":          {"probes#/$defs/burn_rate"},
	"config:burn window":        {"probes#/$defs/burn_window"},
	"config:dependency_success": {"probes#/$defs/dependency_success"},
	"config:latency":            {"probes#/$defs/latency"},
	"config:absent":             {"probes#/$defs/absent"},
	"config:promql":             {"probes#/$defs/promql"},
	"config:cert_expiry":        {"probes#/$defs/cert_expiry"},
	"config:flow entry":         {"probes#/$defs/flow_entry"},
	"config:flow":               {"flow#"},
	"config:step":               {"flow#/$defs/step"},
	"config:until":              {"flow#/$defs/until"},
	"config:include entry (include:, with:, as:)": {"flow#/$defs/include_entry"},
	"config:steps file (params:, steps:)":         {"steps#"},
	"config:parameter":                            {"flow#/$defs/parameter"},
	"config:retry":                                {"flow#/$defs/retry"},
	"config:auth":                                 {"probes#/$defs/auth", "flow#/$defs/auth"},
	"config:oauth2_client_credentials":            {"probes#/$defs/oauth2_client_credentials", "flow#/$defs/oauth2_client_credentials"},
	"tcpkind:starttls":                            {"flow#/$defs/kind_tls"},
	"grpckind:tls":                                {"flow#/$defs/kind_tls"},
	"browserkind:actions":                         {"flow#/$defs/browser_action"},
	"browserkind:fill":                            {"flow#/$defs/browser_fill"},
	"browserkind:select":                          {"flow#/$defs/browser_select"},
	"browserkind:press":                           {"flow#/$defs/browser_press"},
	"browserkind:wait_for":                        {"flow#/$defs/browser_wait_for"},
	"browserkind:extract":                         {"flow#/$defs/browser_extract"},
	"browserkind:js":                              {"flow#/$defs/browser_js"},
}

// TestSchemaKeys fails when a schema lacks a key the loader accepts, or has
// one it refuses, in any block: the literal blocks of the loader's source,
// every registered step kind's block (daemon.StepKinds), every notifier
// type's keys (daemon.NotifierKinds) and every rule kind (config.RuleKinds).
func TestSchemaKeys(t *testing.T) {
	docs := map[string]any{}
	for _, name := range schema.Names {
		var doc any
		if err := json.Unmarshal(schema.Get(name), &doc); err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
		docs[name] = doc
	}
	checked := map[string]bool{} // pointers compared with the loader
	check := func(where, ptr string, want []string) {
		t.Helper()
		checked[ptr] = true
		got, err := propertyNames(docs, ptr)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		for _, k := range want {
			if !slices.Contains(got, k) {
				t.Errorf("%s: the loader accepts %q, the schema at %s lacks it", where, k, ptr)
			}
		}
		for _, k := range got {
			if !slices.Contains(want, k) {
				t.Errorf("%s: the schema at %s has %q, the loader refuses it", where, ptr, k)
			}
		}
	}

	found := loaderBlocks(t)
	for _, site := range slices.Sorted(maps.Keys(found)) {
		ptrs, ok := sites[site]
		if !ok {
			t.Errorf("the loader has a block %s (keys %v) the schemas do not describe: add it to the schemas and to sites", site, found[site])
			continue
		}
		for _, p := range ptrs {
			check(site, p, found[site])
		}
	}
	for site := range sites {
		if _, ok := found[site]; !ok {
			t.Errorf("sites lists %s, which the loader no longer has", site)
		}
	}

	for _, k := range daemon.StepKinds() {
		check("step kind "+k.Name(), "flow#/$defs/step_"+k.Name(), k.Keys())
	}
	var types []string
	for i, k := range daemon.NotifierKinds() {
		types = append(types, k.Type())
		ptr := "probes#/$defs/notifier/allOf/" + strconv.Itoa(i)
		if c, _ := lookup(docs, ptr+"/if/properties/type/const"); c != k.Type() {
			t.Errorf("notifier type %s: %s is for %v: keep allOf in the order of daemon.NotifierKinds", k.Type(), ptr, c)
			continue
		}
		check("notifier type "+k.Type(), ptr+"/then", append([]string{"type", "timeout"}, k.Keys()...))
	}
	if enum, _ := lookup(docs, "probes#/$defs/notifier/properties/type/enum"); !slices.Equal(strs(enum), types) {
		t.Errorf("notifier types: schema %v, loader %v", enum, types)
	}
	if all, _ := lookup(docs, "probes#/$defs/notifier/allOf"); len(all.([]any)) != len(types) {
		t.Errorf("notifier allOf has %d types, the loader %d", len(all.([]any)), len(types))
	}

	// Every closed object of the schemas is one the loader was compared with.
	for name, doc := range docs {
		walk(doc, name+"#", func(ptr string, o map[string]any) {
			if o["additionalProperties"] == false && !checked[ptr] {
				t.Errorf("schema object %s is checked against no block of the loader: add it to sites", ptr)
			}
		})
	}
}

// loaderBlocks finds the blocks in the loader's and the step kinds' source.
func loaderBlocks(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	add := func(site string, keys []string) {
		if prev, ok := out[site]; ok && !slices.Equal(sortedCopy(prev), sortedCopy(keys)) {
			t.Errorf("block %s has keys %v in one place and %v in another", site, prev, keys)
		}
		out[site] = keys
	}
	pkgs := parsePackages(t, "../internal/config", "../internal/kinds")
	var kindNames []string
	for _, k := range daemon.StepKinds() {
		kindNames = append(kindNames, k.Name())
	}
	var ruleKinds []string
	for _, k := range config.RuleKinds() {
		ruleKinds = append(ruleKinds, string(k))
	}
	for _, p := range pkgs {
		for _, fd := range p.funcs {
			locals := localAssigns(fd)
			ast.Inspect(fd, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pos := p.fset.Position(call.Pos())
				res := func(e ast.Expr) ([]string, bool) {
					return pkgs.strings(p, locals, e, map[string][]string{"ruleKinds": ruleKinds})
				}
				switch {
				case p.name == "config" && (sel.Sel.Name == "object" || sel.Sel.Name == "topObject" || sel.Sel.Name == "objectExt") && len(call.Args) >= 3:
					if sel.Sel.Name == "objectExt" {
						return true // the implementation
					}
					what, ok := pkgs.str(p, call.Args[1])
					if !ok {
						switch {
						case sel.Sel.Name == "topObject" && filepath.Base(pos.Filename) == "load.go":
							what = "probes.yaml"
						case filepath.Base(pos.Filename) == "stepkind.go" || filepath.Base(pos.Filename) == "step.go":
							return true // a kind's block, checked with daemon.StepKinds
						default:
							t.Errorf("%s: a block whose name is not a literal: describe it in the test", pos)
							return true
						}
					}
					var keys []string
					switch what {
					case "step":
						keys, ok = res(ast.NewIdent("stepKeys"))
						keys = append(slices.Clone(keys), kindNames...)
					case "notifier":
						keys, ok = []string{"type", "timeout"}, true
						for _, k := range daemon.NotifierKinds() {
							keys = append(keys, k.Keys()...)
						}
						slices.Sort(keys)
						keys = slices.Compact(keys)
					default:
						keys, ok = res(call.Args[2])
					}
					if !ok {
						t.Errorf("%s: cannot read the keys of block %q: describe it in the test", pos, what)
						return true
					}
					add("config:"+what, keys)
				case p.name != "config" && (sel.Sel.Name == "Block" && len(call.Args) == 2 || sel.Sel.Name == "List" && len(call.Args) == 3):
					key, ok1 := pkgs.str(p, call.Args[0])
					keys, ok2 := res(call.Args[len(call.Args)-1])
					if !ok1 || !ok2 {
						t.Errorf("%s: cannot read the block's name or keys: describe it in the test", pos)
						return true
					}
					add(p.name+":"+key, keys)
				}
				return true
			})
		}
	}
	return out
}

// pkg is one parsed package: its functions and its package-level string
// constants and []string variables.
type pkg struct {
	name   string
	fset   *token.FileSet
	funcs  []*ast.FuncDecl
	values map[string]ast.Expr
}

type pkgSet map[string]*pkg // by package name

func parsePackages(t *testing.T, roots ...string) pkgSet {
	t.Helper()
	out := pkgSet{}
	fset := token.NewFileSet()
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			p := out[f.Name.Name]
			if p == nil {
				p = &pkg{name: f.Name.Name, fset: fset, values: map[string]ast.Expr{}}
				out[p.name] = p
			}
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					p.funcs = append(p.funcs, d)
				case *ast.GenDecl:
					for _, s := range d.Specs {
						if vs, ok := s.(*ast.ValueSpec); ok {
							for i, n := range vs.Names {
								if i < len(vs.Values) {
									p.values[n.Name] = vs.Values[i]
								}
							}
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// localAssigns are a function's `name := expr` with one name.
func localAssigns(fd *ast.FuncDecl) map[string]ast.Expr {
	m := map[string]ast.Expr{}
	ast.Inspect(fd, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && as.Tok == token.DEFINE && len(as.Lhs) == 1 && len(as.Rhs) == 1 {
			if id, ok := as.Lhs[0].(*ast.Ident); ok {
				m[id.Name] = as.Rhs[0]
			}
		}
		return true
	})
	return m
}

// str evaluates a string literal or constant.
func (ps pkgSet) str(p *pkg, e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			s, err := strconv.Unquote(e.Value)
			return s, err == nil
		}
	case *ast.Ident:
		if v, ok := p.values[e.Name]; ok {
			return ps.str(p, v)
		}
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && ps[x.Name] != nil {
			return ps.str(ps[x.Name], e.Sel)
		}
	}
	return "", false
}

// strings evaluates a []string: a literal, a variable, or an append of
// them; extra names values the source cannot give.
func (ps pkgSet) strings(p *pkg, locals map[string]ast.Expr, e ast.Expr, extra map[string][]string) ([]string, bool) {
	switch e := e.(type) {
	case *ast.CompositeLit:
		var out []string
		for _, el := range e.Elts {
			s, ok := ps.str(p, el)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	case *ast.Ident:
		if v, ok := extra[e.Name]; ok {
			return v, true
		}
		if v, ok := locals[e.Name]; ok {
			return ps.strings(p, nil, v, extra)
		}
		if v, ok := p.values[e.Name]; ok {
			return ps.strings(p, nil, v, extra)
		}
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && ps[x.Name] != nil {
			return ps.strings(ps[x.Name], nil, e.Sel, extra)
		}
	case *ast.CallExpr:
		if id, ok := e.Fun.(*ast.Ident); ok && id.Name == "append" {
			var out []string
			for _, a := range e.Args {
				v, ok := ps.strings(p, locals, a, extra)
				if !ok {
					return nil, false
				}
				out = append(out, v...)
			}
			return out, true
		}
	}
	return nil, false
}

// lookup resolves "probes#/a/b" in the schemas.
func lookup(docs map[string]any, ptr string) (any, bool) {
	name, frag, _ := strings.Cut(ptr, "#")
	v, ok := docs[name]
	if !ok {
		return nil, false
	}
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if tok == "" {
			continue
		}
		switch c := v.(type) {
		case map[string]any:
			if v, ok = c[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func propertyNames(docs map[string]any, ptr string) ([]string, error) {
	v, ok := lookup(docs, ptr)
	if !ok {
		return nil, errorString("no " + ptr + " in the schemas")
	}
	o, _ := v.(map[string]any)
	props, ok := o["properties"].(map[string]any)
	if !ok || o["additionalProperties"] != false {
		return nil, errorString(ptr + " is not an object with properties and additionalProperties: false")
	}
	return slices.Sorted(maps.Keys(props)), nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

// walk calls fn on every object of a schema with its pointer.
func walk(v any, ptr string, fn func(string, map[string]any)) {
	switch c := v.(type) {
	case map[string]any:
		fn(ptr, c)
		for k, x := range c {
			walk(x, ptr+"/"+k, fn)
		}
	case []any:
		for i, x := range c {
			walk(x, ptr+"/"+strconv.Itoa(i), fn)
		}
	}
}

func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }
