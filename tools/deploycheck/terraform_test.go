package deploycheck

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// repoRoot is the module root (two levels up from this package).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func terraformDir(t *testing.T) string {
	return filepath.Join(repoRoot(t), "deploy", "terraform")
}

// TestTerraformReferences: every reference in deploy/terraform resolves and
// every module call passes exactly the variables its module declares.
func TestTerraformReferences(t *testing.T) {
	root := repoRoot(t)
	c := NewChecker(root)
	problems, err := c.CheckTree(terraformDir(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	// The tree has the modules and the example it should.
	for _, d := range []string{"modules/prober-region", "modules/prober-evaluator", "examples/three-regions"} {
		m, err := c.Load(filepath.Join(terraformDir(t), d))
		if err != nil || len(m.Files) == 0 {
			t.Errorf("%s: no module (%v)", d, err)
		}
	}
	ex, _ := c.Load(filepath.Join(terraformDir(t), "examples/three-regions"))
	var calls []string
	for n, call := range ex.Calls {
		if call.Child == nil {
			t.Errorf("module %s: source %s is not a local module", n, call.Source)
		}
		calls = append(calls, n)
	}
	slices.Sort(calls)
	if want := []string{"evaluator", "probe_home", "probe_second", "probe_third"}; !slices.Equal(calls, want) {
		t.Errorf("three-regions calls %v, want %v", calls, want)
	}
}

// TestTerraformChecker: each fixture under testdata/terraform holds one
// kind of mistake; the checker must report exactly it, at file:line:col.
func TestTerraformChecker(t *testing.T) {
	cases := []struct {
		dir  string
		want []string
	}{
		{"ok", nil},
		{"undeclared_var", []string{
			`main.tf:6:22: reference to undeclared input variable "regoin" (did you mean "region"?)`,
		}},
		{"undeclared_local", []string{
			`main.tf:6:12: reference to undeclared local value "prefx" (did you mean "prefix"?)`,
		}},
		{"undeclared_resource", []string{
			`main.tf:9:24: reference to undeclared resource "aws_iam_role.execution"`,
		}},
		{"undeclared_data", []string{
			`main.tf:5:12: reference to undeclared data source "data.aws_iam_policy_document.task"`,
		}},
		{"undeclared_module", []string{
			`main.tf:2:11: reference to undeclared module "region_a"`,
		}},
		{"module_output", []string{
			`main.tf:11:11: module "eu" (./modules/region) has no output "config_bucket_name"`,
		}},
		{"module_missing_arg", []string{
			`main.tf:1:1: module "eu": missing required argument "region" (variable "region" at modules/region/variables.tf:1 has no default)`,
		}},
		{"module_unknown_arg", []string{
			`main.tf:4:3: module "eu": unsupported argument "retention_days": ./modules/region declares no variable "retention_days"`,
		}},
		{"module_bad_source", []string{
			`main.tf:2:12: module "eu": source "./modules/regoin" is not a directory of .tf files`,
		}},
		{"count_outside", []string{
			`main.tf:2:45: count.index used where there is no count (only in a resource, data or module block that sets count)`,
		}},
		{"each_outside", []string{
			`main.tf:2:10: each.key used where there is no for_each`,
		}},
		{"self_outside", []string{
			`main.tf:2:19: self used outside a provisioner, connection or postcondition block`,
		}},
		{"iterator_outside", []string{
			// The iterator is "port", so "ingress" is nothing here.
			`main.tf:11:19: reference to undeclared resource "ingress.value"`,
		}},
		{"bad_path", []string{
			`main.tf:2:14: invalid reference path.modul: path has only module, root and cwd`,
		}},
		{"bare_name", []string{
			`main.tf:6:11: invalid reference "kind": a resource type must be followed by a resource name`,
		}},
		{"provider_alias", []string{
			`main.tf:7:14: reference to undeclared provider configuration "aws.hoem" (no provider "aws" block with alias = "hoem", nor a configuration_aliases entry)`,
		}},
		{"sort_dynamic_set", []string{
			`main.tf:15:40: sort() of a set of module outputs: terraform validate fails (string required, but received dynamic), as their types are unknown until plan; sort [for x in SET : tostring(x)] instead`,
			`main.tf:20:16: sort() of a set of module outputs: terraform validate fails (string required, but received dynamic), as their types are unknown until plan; sort [for x in SET : tostring(x)] instead`,
		}},
		{"moved_into_module", []string{
			// module.task.aws_iam_role.task is a resource of the submodule,
			// not an output of it.
			`main.tf:12:10: moved to module.task.aws_ecs_service.prober: module "task" (./modules/task) declares no resource "aws_ecs_service.prober"`,
			`main.tf:17:10: reference to undeclared module "tsk" (did you mean "task"?)`,
		}},
		{"duplicate", []string{
			`more.tf:1:1: duplicate variable "region"; first declared at main.tf:1`,
		}},
		{"parse_error", []string{
			`main.tf:1:30: Unclosed configuration block: There is no closing brace for this block before the end of the file. This may be caused by incorrect brace nesting elsewhere in this file.`,
		}},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		seen[tc.dir] = true
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", "terraform", tc.dir)
			problems, err := NewChecker(dir).CheckTree(dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range problems {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "terraform"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !seen[e.Name()] {
			t.Errorf("fixture testdata/terraform/%s has no case", e.Name())
		}
	}
}

// TestTerraformFormatted is `tofu fmt -check -recursive deploy/terraform`
// in process (see CheckFormat): every file is as tofu fmt would write it.
func TestTerraformFormatted(t *testing.T) {
	problems, n, err := NewChecker(repoRoot(t)).CheckFormat(terraformDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no .tf files")
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// nonTaggable lists the resource types used here that take no tags.
var nonTaggable = map[string]bool{
	"aws_route_table_association":                        true,
	"aws_s3_bucket_versioning":                           true,
	"aws_s3_bucket_public_access_block":                  true,
	"aws_s3_bucket_ownership_controls":                   true,
	"aws_s3_bucket_server_side_encryption_configuration": true,
	"aws_s3_bucket_lifecycle_configuration":              true,
	"aws_s3_bucket_policy":                               true,
	"aws_iam_role_policy":                                true,
	"aws_efs_mount_target":                               true,
	"aws_efs_file_system_policy":                         true,
	// Objects take tags, but at most 10, default_tags included; they inherit
	// the provider's default_tags and carry no more.
	"aws_s3_object": true,
}

// TestTerraformConventions: every variable is typed and described (and
// validated unless it is a bool), every output described, every taggable
// resource tagged.
func TestTerraformConventions(t *testing.T) {
	c := NewChecker(repoRoot(t))
	err := filepath.WalkDir(terraformDir(t), func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || !hasTF(p) {
			return err
		}
		m, err := c.Load(p)
		if err != nil {
			return err
		}
		for _, f := range m.Files {
			for _, b := range f.Body.(*hclsyntax.Body).Blocks {
				at := func() string { return c.pos(b.DefRange()) }
				switch b.Type {
				case "variable":
					ta, typed := b.Body.Attributes["type"]
					if !typed {
						t.Errorf("%s: variable %s has no type", at(), b.Labels[0])
					}
					if _, ok := b.Body.Attributes["description"]; !ok {
						t.Errorf("%s: variable %s has no description", at(), b.Labels[0])
					}
					isBool := typed && hcl.ExprAsKeyword(ta.Expr) == "bool"
					hasValidation := slices.ContainsFunc(b.Body.Blocks, func(x *hclsyntax.Block) bool { return x.Type == "validation" })
					if !isBool && !hasValidation {
						t.Errorf("%s: variable %s has no validation block", at(), b.Labels[0])
					}
				case "output":
					if _, ok := b.Body.Attributes["description"]; !ok {
						t.Errorf("%s: output %s has no description", at(), b.Labels[0])
					}
				case "resource":
					if _, ok := b.Body.Attributes["tags"]; !ok && !nonTaggable[b.Labels[0]] {
						t.Errorf("%s: resource %s.%s has no tags", at(), b.Labels[0], b.Labels[1])
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

// TestRegionModuleExistingVPC: with vpc_id and subnet_ids, prober-region
// creates no network of its own: every network resource but the task's
// security group is counted by whether the VPC is created, and the task,
// its security group and the outputs use the chosen VPC and subnets, never
// the created ones directly (which would not exist).
func TestRegionModuleExistingVPC(t *testing.T) {
	c := NewChecker(repoRoot(t))
	m, err := c.Load(filepath.Join(terraformDir(t), "modules", "prober-region"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vpc_id", "subnet_ids"} {
		if v := m.Variables[name]; v == nil || v.Required {
			t.Errorf("variable %s: missing or required", name)
		}
	}
	counted := map[string]bool{"local.create_vpc": true, "local.subnets": true, "local.nat_count": true}
	for _, f := range m.Files {
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if b.Type != "resource" {
				continue
			}
			addr := b.Labels[0] + "." + b.Labels[1]
			network := strings.HasSuffix(f.Body.(*hclsyntax.Body).SrcRange.Filename, "network.tf")
			if network && addr != "aws_security_group.task" && addr != "aws_vpc_security_group_egress_rule.task_all" {
				ok := false
				if a, has := b.Body.Attributes["count"]; has {
					for _, tr := range hclsyntax.Variables(a.Expr) {
						ok = ok || counted[tr.RootName()+"."+attrOr(tr, 1, "")]
					}
				}
				if !ok {
					t.Errorf("%s: %s is created even with vpc_id set (count must depend on local.create_vpc)", c.pos(b.DefRange()), addr)
				}
				continue
			}
			// Outside the network itself, nothing names the created VPC or subnets.
			hclsyntax.VisitAll(b.Body, func(n hclsyntax.Node) hcl.Diagnostics {
				if e, ok := n.(*hclsyntax.ScopeTraversalExpr); ok {
					if r := e.Traversal.RootName() + "." + attrOr(e.Traversal, 1, ""); r == "aws_vpc.this" || r == "aws_subnet.private" {
						t.Errorf("%s: %s names %s, which does not exist with vpc_id set: use local.vpc_id or local.subnet_ids", c.pos(e.Range()), addr, r)
					}
				}
				return nil
			})
		}
	}
}

// TestModuleReadmes: each module's README lists every input and output, and
// its example (the first hcl block) parses, calls the module with every
// required input, and passes none it does not declare.
func TestModuleReadmes(t *testing.T) {
	c := NewChecker(repoRoot(t))
	dirs, err := filepath.Glob(filepath.Join(terraformDir(t), "modules", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no modules (%v)", err)
	}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		m, err := c.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		readme := string(b)
		for v := range m.Variables {
			if !strings.Contains(readme, "| `"+v+"` |") {
				t.Errorf("%s/README.md: input %s is not listed", name, v)
			}
		}
		for o := range m.Outputs {
			if !strings.Contains(readme, "| `"+o+"` |") {
				t.Errorf("%s/README.md: output %s is not listed", name, o)
			}
		}
		_, rest, ok := strings.Cut(readme, "```hcl\n")
		example, _, ok2 := strings.Cut(rest, "```")
		if !ok || !ok2 {
			t.Errorf("%s/README.md: no hcl example", name)
			continue
		}
		f, diags := hclsyntax.ParseConfig([]byte(example), name+"/README.md", hcl.Pos{Line: 1, Column: 1})
		if diags.HasErrors() {
			t.Errorf("%s/README.md: example: %v", name, diags)
			continue
		}
		blocks := f.Body.(*hclsyntax.Body).Blocks
		if len(blocks) != 1 || blocks[0].Type != "module" {
			t.Errorf("%s/README.md: the example is not one module block", name)
			continue
		}
		args := blocks[0].Body.Attributes
		for n, v := range m.Variables {
			if _, ok := args[n]; v.Required && !ok {
				t.Errorf("%s/README.md: the example lacks required input %s", name, n)
			}
		}
		for n := range args {
			if _, ok := m.Variables[n]; !ok && !metaModuleArgs[n] {
				t.Errorf("%s/README.md: the example passes %s, which the module does not declare", name, n)
			}
		}
	}
}

// TestSharedModuleMoved: every resource of prober-ecs-service was a
// resource of both prober-region and prober-evaluator before they shared
// it, so each caller has a moved block to each one: without it, the next
// apply of an existing deployment would destroy the roles, log group and
// service and create them again (a gap in probing and paging, lost logs).
func TestSharedModuleMoved(t *testing.T) {
	c := NewChecker(repoRoot(t))
	shared, err := c.Load(filepath.Join(terraformDir(t), "modules", "prober-ecs-service"))
	if err != nil {
		t.Fatal(err)
	}
	if len(shared.Resources) == 0 {
		t.Fatal("prober-ecs-service declares no resources")
	}
	for _, mod := range []string{"prober-region", "prober-evaluator"} {
		m, err := c.Load(filepath.Join(terraformDir(t), "modules", mod))
		if err != nil {
			t.Fatal(err)
		}
		moved := map[string]string{} // to => from
		for _, f := range m.Files {
			for _, b := range f.Body.(*hclsyntax.Body).Blocks {
				if b.Type != "moved" {
					continue
				}
				from, to := b.Body.Attributes["from"], b.Body.Attributes["to"]
				if from == nil || to == nil {
					t.Errorf("%s: moved block without from or to", c.pos(b.DefRange()))
					continue
				}
				addr := func(e hclsyntax.Expression) string {
					var parts []string
					for _, tr := range hclsyntax.Variables(e) {
						parts = append(parts, tr.RootName())
						for _, s := range tr[1:] {
							if a, ok := s.(hcl.TraverseAttr); ok {
								parts = append(parts, a.Name)
							}
						}
					}
					return strings.Join(parts, ".")
				}
				moved[addr(to.Expr)] = addr(from.Expr)
			}
		}
		for r := range shared.Resources {
			from, ok := moved["module.task."+r]
			if !ok {
				t.Errorf("%s: no moved block to module.task.%s", mod, r)
				continue
			}
			if _, still := m.Resources[from]; still {
				t.Errorf("%s: moved from %s, which the module still declares", mod, from)
			}
		}
	}
}
