package deploycheck

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// fmtCases are one file each: formatted, or with one thing tofu fmt
// changes. TestTerraformFormatMatchesTofu runs OpenTofu on the same files.
var fmtCases = []struct {
	name, src string
	want      string // in the problem's message; "" when formatted
}{
	{"formatted", "variable \"a\" {\n  type    = string\n  default = \"x\"\n}\n\nlocals {\n  b   = var.a\n  ccc = \"${var.a}-x\"\n  tags = {\n    Name = \"${var.a}\"\n  }\n}\n", ""},
	{"misindented", "locals {\n    b = 1\n}\n", "-     b = 1\n+   b = 1"},
	{"misindented_nested", "locals {\n  m = {\n  k = 1\n  }\n}\n", "not formatted"},
	{"misaligned_equals", "locals {\n  b = 1\n  ccc = 2\n}\n", "-   b = 1\n+   b   = 1"},
	{"overaligned_equals", "locals {\n  b     = 1\n  ccc   = 2\n}\n", "not formatted"},
	{"no_space_around_equals", "locals {\n  b=1\n}\n", "-   b=1\n+   b = 1"},
	{"trailing_space", "locals {\n  b = 1 \n}\n", "not formatted"},
	{"space_before_brace", "locals{\n  b = 1\n}\n", "not formatted"},
	{"interpolation_only", "locals {\n  b = \"${var.a}\"\n}\n", "interpolation-only"},
	{"quoted_type", "variable \"a\" {\n  type = \"string\"\n}\n", "Terraform 0.11"},
	{"bare_list_type", "variable \"a\" {\n  type = list\n}\n", "list(any)"},
	{"unquoted_label", "resource aws_vpc \"x\" {\n}\n", "label aws_vpc"},
}

// TestTerraformFormatCatches: CheckFormat passes a formatted file and
// reports each thing tofu fmt would change, with the diff where hclwrite
// reformats the layout.
func TestTerraformFormatCatches(t *testing.T) {
	for _, tc := range fmtCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tc.name+".tf"), []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			problems, n, err := NewChecker(dir).CheckFormat(dir)
			if err != nil || n != 1 {
				t.Fatalf("n=%d err=%v", n, err)
			}
			if tc.want == "" {
				for _, p := range problems {
					t.Error(p)
				}
				return
			}
			if len(problems) == 0 {
				t.Fatalf("not reported; want %q", tc.want)
			}
			var all []string
			for _, p := range problems {
				all = append(all, p.String())
			}
			if got := strings.Join(all, "\n"); !strings.Contains(got, tc.want) {
				t.Errorf("got\n%s\nwant it to contain %q", got, tc.want)
			}
		})
	}
}

// TestTerraformFormatSyntaxError: a file that does not parse is reported
// at its error, as tofu fmt refuses it.
func TestTerraformFormatSyntaxError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.tfvars"), []byte("a = \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	problems, _, err := NewChecker(dir).CheckFormat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) == 0 || problems[0].File != "bad.tfvars" || problems[0].Line != 1 {
		t.Errorf("got %v, want a syntax error at bad.tfvars:1", problems)
	}
}

// mutations mis-format a real file the two ways people do: one line's
// indentation, one attribute's `=` out of line with its neighbours'.
var mutations = []struct {
	name string
	re   *regexp.Regexp
	repl string
}{
	{"indent", regexp.MustCompile(`(?m)^(  +)([a-z_]+ +=)`), "$1 $2"},
	{"align", regexp.MustCompile(`(?m)^( +[a-z_]+)( +=)`), "$1  $2"},
}

// TestTerraformFormatMatchesTofu runs OpenTofu's own `tofu fmt -check` on
// the fmtCases and on copies of deploy/terraform with every other file
// mis-formatted by each mutation, and wants CheckFormat to report exactly
// the files tofu lists. It needs a tofu binary: PROBER_TOFU_BIN, which
// `PROBER_TOFU=1 scripts/test.sh` sets after building it.
func TestTerraformFormatMatchesTofu(t *testing.T) {
	tofu := os.Getenv("PROBER_TOFU_BIN")
	if tofu == "" {
		t.Skip("PROBER_TOFU_BIN is not set (PROBER_TOFU=1 scripts/test.sh builds OpenTofu and sets it)")
	}
	root := t.TempDir()
	cases := filepath.Join(root, "cases")
	if err := os.MkdirAll(cases, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range fmtCases {
		if err := os.WriteFile(filepath.Join(cases, tc.name+".tf"), []byte(tc.src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mutated := 0
	for _, m := range mutations {
		i := 0
		err := filepath.WalkDir(terraformDir(t), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !hasFmtExt(p) || strings.HasSuffix(p, ".example") {
				return err // tofu formats no .example file
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(terraformDir(t), p)
			dst := filepath.Join(root, m.name, rel)
			if i++; i%2 == 0 {
				if loc := m.re.FindIndex(src); loc != nil {
					src = slices.Concat(src[:loc[0]], m.re.ReplaceAll(src[loc[0]:loc[1]], []byte(m.repl)), src[loc[1]:])
					mutated++
				}
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			return os.WriteFile(dst, src, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if mutated < 4 {
		t.Fatalf("only %d files mutated", mutated)
	}

	cmd := exec.Command(tofu, "fmt", "-check", "-recursive", "-list=true", ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1")
	out, err := cmd.Output()
	if ee := (*exec.ExitError)(nil); err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
		t.Fatalf("tofu fmt: %v\n%s", err, out)
	}
	var byTofu []string
	for l := range strings.Lines(string(out)) {
		byTofu = append(byTofu, filepath.Clean(strings.TrimSpace(l)))
	}
	problems, _, err := NewChecker(root).CheckFormat(root)
	if err != nil {
		t.Fatal(err)
	}
	var byUs []string
	for _, p := range problems {
		if !slices.Contains(byUs, p.File) {
			byUs = append(byUs, p.File)
		}
	}
	slices.Sort(byTofu)
	slices.Sort(byUs)
	if !slices.Equal(byTofu, byUs) {
		t.Errorf("tofu fmt lists\n  %s\nCheckFormat reports\n  %s", strings.Join(byTofu, "\n  "), strings.Join(byUs, "\n  "))
	}
	if len(byTofu) < mutated {
		t.Errorf("tofu listed %d files, fewer than the %d mutated", len(byTofu), mutated)
	}
	t.Logf("tofu and CheckFormat agree on %d unformatted files", len(byTofu))
}
