package deploycheck

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// TestTerraformTracing evaluates the shared task module's locals with and
// without var.tracing: with it, the prober container's environment has the
// OTLP endpoint and resource attributes, its secrets the headers (injected
// by ECS, never plain), and the execution role's Secrets Manager grant the
// headers' secret; without it, none of them.
func TestTerraformTracing(t *testing.T) {
	m, err := NewChecker(repoRoot(t)).Load(filepath.Join(terraformDir(t), "modules", "prober-ecs-service"))
	if err != nil {
		t.Fatal(err)
	}
	locals := map[string]hclsyntax.Expression{}
	for _, f := range m.Files {
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if b.Type == "locals" {
				for n, a := range b.Body.Attributes {
					locals[n] = a.Expr
				}
			}
		}
	}
	const (
		shopARN    = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prober/shop-password-AbCdEf"
		headersARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prober/otlp-headers-GhIjKl"
	)
	tracingType := cty.Object(map[string]cty.Type{"endpoint": cty.String, "headers_secret_arn": cty.String})
	for _, tc := range []struct {
		name    string
		tracing cty.Value
		env     map[string]string // want in the container's environment ("" = absent)
		secrets map[string]string // want in the container's secrets
		granted []string          // Secrets Manager ARNs the execution role reads
	}{
		{
			name:    "off",
			tracing: cty.NullVal(tracingType),
			env:     map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_RESOURCE_ATTRIBUTES": "", "PROBER_REGION": "eu"},
			secrets: map[string]string{"SHOP_PASSWORD": shopARN, "OTEL_EXPORTER_OTLP_HEADERS": ""},
			granted: []string{shopARN},
		},
		{
			name:    "endpoint only",
			tracing: cty.ObjectVal(map[string]cty.Value{"endpoint": cty.StringVal("http://collector:4318"), "headers_secret_arn": cty.NullVal(cty.String)}),
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "PROBER_REGION": "eu",
				"OTEL_RESOURCE_ATTRIBUTES": "cloud.provider=aws,cloud.platform=aws_ecs,cloud.region=eu-west-1,deployment.environment.name=eu"},
			secrets: map[string]string{"SHOP_PASSWORD": shopARN, "OTEL_EXPORTER_OTLP_HEADERS": ""},
			granted: []string{shopARN},
		},
		{
			name:    "endpoint and headers",
			tracing: cty.ObjectVal(map[string]cty.Value{"endpoint": cty.StringVal("https://otlp.example.com"), "headers_secret_arn": cty.StringVal(headersARN)}),
			env:     map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com", "OTEL_EXPORTER_OTLP_HEADERS": ""},
			secrets: map[string]string{"SHOP_PASSWORD": shopARN, "OTEL_EXPORTER_OTLP_HEADERS": headersARN},
			granted: []string{shopARN, headersARN},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := &hcl.EvalContext{
				Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{
					"tracing":      tc.tracing,
					"secrets":      cty.MapVal(map[string]cty.Value{"SHOP_PASSWORD": cty.StringVal(shopARN)}),
					"environment":  cty.MapVal(map[string]cty.Value{"PROBER_REGION": cty.StringVal("eu")}),
					"region":       cty.StringVal("eu-west-1"),
					"region_label": cty.StringVal("eu"),
					"task":         cty.ObjectVal(map[string]cty.Value{"memory": cty.NumberIntVal(1024)}),
				})},
				Functions: map[string]function.Function{
					"merge": stdlib.MergeFunc, "try": tryfunc.TryFunc, "can": tryfunc.CanFunc,
					"distinct": stdlib.DistinctFunc, "regex": stdlib.RegexFunc, "split": stdlib.SplitFunc,
					"values": stdlib.ValuesFunc, "keys": stdlib.KeysFunc, "sort": stdlib.SortFunc, "floor": stdlib.FloorFunc,
				},
			}
			localVals := map[string]cty.Value{}
			eval := func(e hclsyntax.Expression, what string) cty.Value {
				t.Helper()
				ctx.Variables["local"] = cty.ObjectVal(localVals)
				v, diags := e.Value(ctx)
				if diags.HasErrors() {
					t.Fatalf("%s: %v", what, diags)
				}
				return v
			}
			// In dependency order.
			for _, n := range []string{"tracing_environment", "prober_environment", "prober_secrets", "secretsmanager_arns"} {
				e, ok := locals[n]
				if !ok {
					t.Fatalf("no local.%s", n)
				}
				localVals[n] = eval(e, "local."+n)
			}
			// The prober container's own environment and secrets lists.
			var container *hclsyntax.ObjectConsExpr
			if o, ok := locals["prober"].(*hclsyntax.ObjectConsExpr); ok {
				container = o
			}
			if container == nil {
				t.Fatal("local.prober is not an object")
			}
			lists := map[string]map[string]string{}
			for _, it := range container.Items {
				key := hcl.ExprAsKeyword(it.KeyExpr)
				if key != "environment" && key != "secrets" {
					continue
				}
				got := map[string]string{}
				for _, el := range eval(it.ValueExpr, "prober."+key).AsValueSlice() {
					valueKey := "value"
					if key == "secrets" {
						valueKey = "valueFrom"
					}
					got[el.GetAttr("name").AsString()] = el.GetAttr(valueKey).AsString()
				}
				lists[key] = got
			}
			for k, want := range tc.env {
				if got := lists["environment"][k]; got != want {
					t.Errorf("environment %s = %q, want %q", k, got, want)
				}
			}
			for k, want := range tc.secrets {
				if got := lists["secrets"][k]; got != want {
					t.Errorf("secrets %s = %q, want %q", k, got, want)
				}
			}
			var granted []string
			for _, v := range localVals["secretsmanager_arns"].AsValueSlice() {
				granted = append(granted, v.AsString())
			}
			slices.Sort(granted)
			want := slices.Sorted(slices.Values(tc.granted))
			if !slices.Equal(granted, want) {
				t.Errorf("the execution role reads %v, want %v", granted, want)
			}
		})
	}
}
