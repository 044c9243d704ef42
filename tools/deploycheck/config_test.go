package deploycheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/daemon"
)

// TestFetchConfigScript runs the config-fetch init container's script with
// a stand-in aws CLI that serves object versions from a directory: each
// key@version lands under CONFIG_DEST without its first path segment, the
// exact version is asked for, and hostile or empty input is refused.
func TestFetchConfigScript(t *testing.T) {
	script := filepath.Join(terraformDir(t), "modules", "prober-ecs-service", "files", "fetch-config.sh")
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("SKIP: no sh")
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "store") // <key>@<version>, as flat names
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{store, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	objects := map[string]string{
		"config/probes.yaml@v1":              "region: local\n",
		"config/flows/checkout.yaml@v7":      "name: checkout\n",
		"config/flows/checkout.yaml@v6":      "name: old checkout\n", // an older version: must not be fetched
		"evaluator/evaluate.yaml@null":       "region: local\nprometheus: {}\n",
		"config/flows/sub/dir/deep.yaml@v.2": "name: deep\n",
	}
	for k, v := range objects {
		if err := os.WriteFile(filepath.Join(store, strings.ReplaceAll(k, "/", "%")), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// aws s3api get-object --bucket B --key K --version-id V DEST
	stub := `#!/bin/sh
set -eu
[ "$1 $2" = "s3api get-object" ] || { echo "unexpected: $*" >&2; exit 2; }
shift 2
while [ $# -gt 1 ]; do
  case "$1" in
  --bucket) bucket=$2; shift 2 ;;
  --key) key=$2; shift 2 ;;
  --version-id) version=$2; shift 2 ;;
  *) echo "unexpected flag $1" >&2; exit 2 ;;
  esac
done
[ "$bucket" = "cfg-bucket" ] || { echo "bucket $bucket" >&2; exit 2; }
src="$STORE/$(printf '%s' "$key@$version" | tr / %)"
[ -f "$src" ] || { echo "NoSuchVersion $key@$version" >&2; exit 1; }
cp "$src" "$1"
echo "$key@$version" >> "$STORE/calls"
echo '{"VersionId": "'"$version"'"}'
`
	if err := os.WriteFile(filepath.Join(bin, "aws"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(objs string) (string, error) {
		dest := filepath.Join(dir, "dest")
		_ = os.RemoveAll(dest)
		cmd := exec.Command(sh, "-c", readFile(t, script))
		cmd.Env = []string{
			"PATH=" + bin + ":" + os.Getenv("PATH"), "STORE=" + store,
			"CONFIG_BUCKET=cfg-bucket", "CONFIG_OBJECTS=" + objs, "CONFIG_DEST=" + dest,
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := run("config/flows/checkout.yaml@v7 config/probes.yaml@v1 evaluator/evaluate.yaml@null config/flows/sub/dir/deep.yaml@v.2")
	if err != nil {
		t.Fatalf("fetch: %v\n%s", err, out)
	}
	if !strings.Contains(out, "4 object(s)") {
		t.Errorf("fetch output: %s", out)
	}
	for p, want := range map[string]string{
		"probes.yaml": "region: local\n", "flows/checkout.yaml": "name: checkout\n",
		"evaluate.yaml": "region: local\nprometheus: {}\n", "flows/sub/dir/deep.yaml": "name: deep\n",
	} {
		if got := readFile(t, filepath.Join(dir, "dest", p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}

	for name, objs := range map[string]string{
		"empty":           "",
		"missing version": "config/probes.yaml@v9",
		"parent escape":   "config/../../etc/passwd@v1",
		"no prefix":       "probes.yaml@v1",
	} {
		if out, err := run(objs); err == nil {
			t.Errorf("%s (%q): the fetch succeeded: %s", name, objs, out)
		}
	}
}

// TestEvaluatorConfig composes evaluate.yaml as the prober-evaluator module
// does (probes.yaml, then its appended prometheus: block, taken from the
// module's source) and loads it with the prober's own loader: it must be
// valid, point at the SigV4 proxy through PROMETHEUS_URL, and keep every
// line of probes.yaml where it was.
func TestEvaluatorConfig(t *testing.T) {
	root := repoRoot(t)
	m, err := NewChecker(root).Load(filepath.Join(terraformDir(t), "modules", "prober-evaluator"))
	if err != nil {
		t.Fatal(err)
	}
	block := localString(t, m, "prometheus_block")
	if !strings.Contains(block, "prometheus: {url: \"${env:PROMETHEUS_URL}\"") {
		t.Fatalf("prometheus_block does not read PROMETHEUS_URL:\n%s", block)
	}
	probes := readFile(t, filepath.Join(root, "probes.yaml"))
	evaluate := strings.TrimSuffix(probes, "\n") + "\n\n" + block // as local.evaluate_yaml

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "evaluate.yaml"), []byte(evaluate), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := copyTree(filepath.Join(root, "flows"), filepath.Join(dir, "flows")); err != nil {
		t.Fatal(err)
	}
	const url = "http://127.0.0.1:8005/workspaces/ws-0123abcd-0000-1111-2222-333344445555"
	env := map[string]string{"PROMETHEUS_URL": url}
	cfg, err := config.Load(os.DirFS(dir), "evaluate.yaml", config.Options{
		Region: "global", SkipSecrets: true, Notifiers: daemon.NotifierKinds(), StepKinds: daemon.StepKinds(),
		Env: func(n string) (string, bool) { v, ok := env[n]; return v, ok },
	})
	if err != nil {
		t.Fatalf("evaluate.yaml does not load:\n%v", err)
	}
	if cfg.Alerting.Prometheus == nil || cfg.Alerting.Prometheus.URL != url {
		t.Fatalf("prometheus: %+v, want url %s", cfg.Alerting.Prometheus, url)
	}
	if !strings.HasPrefix(evaluate, probes) {
		t.Error("evaluate.yaml does not start with probes.yaml as it is")
	}
	// The module sets PROMETHEUS_URL to the proxy on loopback.
	if got := localString(t, m, "proxy_listen"); got != "127.0.0.1:8005" {
		t.Errorf("proxy_listen = %q", got)
	}
}

// TestTerraformProberFlags: every flag the task definitions give `prober`
// is one `prober run` has (read from the binary the Dockerfile builds).
func TestTerraformProberFlags(t *testing.T) {
	b := dockerfileBuild(t)
	out, _ := exec.Command(b.binary, "run", "-h").CombinedOutput()
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z-]*)`).FindAllStringSubmatch(string(out), -1) {
		known["--"+m[1]] = true
	}
	if !known["--role"] || !known["--state-dir"] {
		t.Fatalf("cannot read the flags of prober run -h:\n%s", out)
	}
	c := NewChecker(repoRoot(t))
	for _, mod := range []string{"prober-region", "prober-evaluator"} {
		m, err := c.Load(filepath.Join(terraformDir(t), "modules", mod))
		if err != nil {
			t.Fatal(err)
		}
		// The prober container is built by the shared submodule; the
		// caller adds its own flags through the call's extra_args.
		call := m.Calls["task"]
		if call == nil || call.Child == nil {
			t.Fatalf("%s: no module \"task\" calling a local submodule", mod)
		}
		flags := proberFlags(t, call.Child)
		if a, ok := call.Block.Body.Attributes["extra_args"]; ok {
			flags = append(flags, literalFlags(m, a.Expr)...)
		}
		if len(flags) < 5 {
			t.Fatalf("%s: found only %v in the prober container's command", mod, flags)
		}
		for _, f := range flags {
			if !known[f] {
				t.Errorf("%s: the prober container runs with %s, which prober run does not have", mod, f)
			}
		}
		for _, need := range []string{"--role", "--region", "--config", "--listen", "--state-dir"} {
			if !slices.Contains(flags, need) {
				t.Errorf("%s: the prober container's command lacks %s", mod, need)
			}
		}
	}
}

// proberFlags finds the container definition named "prober" in the
// module's locals and returns the --flags of its command (following
// references to other locals).
func proberFlags(t *testing.T, m *Module) []string {
	t.Helper()
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
	var command hclsyntax.Expression
	for _, e := range locals {
		_ = hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
			obj, ok := n.(*hclsyntax.ObjectConsExpr)
			if !ok {
				return nil
			}
			var isProber bool
			var cmd hclsyntax.Expression
			for _, it := range obj.Items {
				switch hcl.ExprAsKeyword(it.KeyExpr) {
				case "name":
					v, diags := it.ValueExpr.Value(nil)
					isProber = !diags.HasErrors() && v.Type() == cty.String && v.AsString() == "prober"
				case "command":
					cmd = it.ValueExpr
				}
			}
			if isProber && cmd != nil {
				command = cmd
			}
			return nil
		})
	}
	if command == nil {
		t.Fatal("no container named prober with a command")
	}
	return literalFlags(m, command)
}

// literalFlags returns the "--flag" string literals of e, following
// references to the module's other locals.
func literalFlags(m *Module, e hclsyntax.Expression) []string {
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
	var flags []string
	var collect func(e hclsyntax.Expression, depth int)
	collect = func(e hclsyntax.Expression, depth int) {
		if depth > 5 {
			return
		}
		_ = hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
			switch x := n.(type) {
			case *hclsyntax.TemplateExpr:
				if len(x.Parts) == 1 {
					if v, diags := x.Parts[0].Value(nil); !diags.HasErrors() && v.Type() == cty.String && strings.HasPrefix(v.AsString(), "--") {
						flags = append(flags, v.AsString())
					}
				}
			case *hclsyntax.ScopeTraversalExpr:
				if x.Traversal.RootName() == "local" {
					if name, ok := attr(x.Traversal, 1); ok && locals[name] != nil {
						collect(locals[name], depth+1)
					}
				}
			}
			return nil
		})
	}
	collect(e, 0)
	return flags
}

// localString evaluates a local value that is a constant string.
func localString(t *testing.T, m *Module, name string) string {
	t.Helper()
	for _, f := range m.Files {
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if a, ok := b.Body.Attributes[name]; ok && b.Type == "locals" {
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() || v.Type() != cty.String {
					t.Fatalf("local.%s is not a constant string: %v", name, diags)
				}
				return v.AsString()
			}
		}
	}
	t.Fatalf("no local.%s", name)
	return ""
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
