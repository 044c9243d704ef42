package deploycheck

import (
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// TestTerraformExtraArgsRefuseWebConfig: the modules' probers listen on
// loopback inside the task, where the metrics agent scrapes them without
// credentials, so extra_args refuses --web.config.file (it would turn every
// region absent) and still takes other flags. The validation's own
// condition is evaluated, with the functions it uses.
func TestTerraformExtraArgsRefuseWebConfig(t *testing.T) {
	funcs := map[string]function.Function{
		"contains": stdlib.ContainsFunc,
		"split":    stdlib.SplitFunc,
		"alltrue": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
			Type:   function.StaticReturnType(cty.Bool),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				for it := args[0].ElementIterator(); it.Next(); {
					if _, v := it.Element(); !v.True() {
						return cty.False, nil
					}
				}
				return cty.True, nil
			},
		}),
	}
	tests := []struct {
		args []string
		ok   bool
	}{
		{[]string{"--log-search-url=https://logs.example/?q={trace_id}"}, true},
		{nil, true},
		{[]string{"--web.config.file=/etc/prober/web-config.yml"}, false},
		{[]string{"--log-level=debug", "--web.config.file", "/etc/prober/web-config.yml"}, false},
		{[]string{"--listen=0.0.0.0:8315"}, false},
	}
	c := NewChecker(repoRoot(t))
	for _, mod := range []string{"prober-region", "prober-evaluator"} {
		m, err := c.Load(filepath.Join(terraformDir(t), "modules", mod))
		if err != nil {
			t.Fatal(err)
		}
		cond := extraArgsCondition(t, m)
		for _, tc := range tests {
			list := cty.ListValEmpty(cty.String)
			if len(tc.args) > 0 {
				vals := make([]cty.Value, len(tc.args))
				for i, a := range tc.args {
					vals[i] = cty.StringVal(a)
				}
				list = cty.ListVal(vals)
			}
			ctx := &hcl.EvalContext{
				Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{"extra_args": list})},
				Functions: funcs,
			}
			v, diags := cond.Value(ctx)
			if diags.HasErrors() {
				t.Fatalf("%s: evaluating the extra_args validation: %v", mod, diags)
			}
			if v.True() != tc.ok {
				t.Errorf("%s: extra_args %q accepted = %v, want %v", mod, tc.args, v.True(), tc.ok)
			}
		}
	}
}

// extraArgsCondition returns the condition of variable "extra_args"'s
// validation block.
func extraArgsCondition(t *testing.T, m *Module) hclsyntax.Expression {
	t.Helper()
	for _, f := range m.Files {
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if b.Type != "variable" || len(b.Labels) == 0 || b.Labels[0] != "extra_args" {
				continue
			}
			for _, v := range b.Body.Blocks {
				if a, ok := v.Body.Attributes["condition"]; ok && v.Type == "validation" {
					return a.Expr
				}
			}
		}
	}
	t.Fatal("no validation of variable extra_args")
	return nil
}
