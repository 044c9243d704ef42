package deploycheck

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// The formatting check is `tofu fmt -check` without OpenTofu (a ten-minute
// build from source here): OpenTofu's fmt is hclwrite's formatter (its
// File.Bytes formats as it writes) plus four rewrites, which this check
// reports rather than performs: an interpolation-only string ("${var.x}")
// unwrapped, a pre-0.12 quoted variable type ("string") unquoted, a bare
// list, map or set variable type given its element type (list(any)), and
// block labels quoted.

// fmtExts are the suffixes tofu fmt -recursive formats (.tofu and the test
// files included), and the example tfvars, which a user copies.
var fmtExts = []string{".tf", ".tofu", ".tfvars", ".tftest.hcl", ".tofutest.hcl", ".tfvars.example"}

// CheckFormat reports every file under root that tofu fmt would change, one
// Problem each, at the first line that differs, with the diff (- as
// written, + as formatted) in Msg. A file that does not parse is reported
// with its syntax error, as tofu fmt does.
func (c *Checker) CheckFormat(root string) ([]Problem, int, error) {
	var out []Problem
	n := 0
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".terraform" || (strings.HasPrefix(d.Name(), ".") && p != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !hasFmtExt(p) {
			return nil
		}
		n++
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, c.checkFormatFile(c.rel(p), src)...)
		return nil
	})
	if err != nil {
		return nil, n, fmt.Errorf("checking the formatting under %s: %w", root, err)
	}
	sortProblems(out)
	return out, n, nil
}

func hasFmtExt(p string) bool {
	for _, e := range fmtExts {
		if strings.HasSuffix(p, e) {
			return true
		}
	}
	return false
}

// checkFormatFile checks one file's source; name is what problems carry.
func (c *Checker) checkFormatFile(name string, src []byte) []Problem {
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		var out []Problem
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				p := Problem{File: name, Msg: d.Summary + ": " + d.Detail}
				if d.Subject != nil {
					p.Line, p.Column = d.Subject.Start.Line, d.Subject.Start.Column
				}
				out = append(out, p)
			}
		}
		return out
	}
	var out []Problem
	if got := hclwrite.Format(src); !bytes.Equal(got, src) {
		out = append(out, Problem{
			File: name, Line: firstDiffLine(src, got), Column: 1,
			Msg: "not formatted (run tofu fmt or terraform fmt on it); - as written, + as formatted:\n" +
				lineDiff(string(src), string(got)),
		})
	}
	out = append(out, fmtRewrites(name, src, f.Body.(*hclsyntax.Body), nil)...)
	return out
}

// fmtRewrites walks body as OpenTofu's FmtCommand.formatBody does and
// reports each attribute it would rewrite.
func fmtRewrites(name string, src []byte, body *hclsyntax.Body, inBlocks []string) []Problem {
	var out []Problem
	at := func(r hcl.Range, msg string) {
		out = append(out, Problem{File: name, Line: r.Start.Line, Column: r.Start.Column, Msg: msg})
	}
	for _, a := range body.Attributes {
		if len(inBlocks) == 1 && inBlocks[0] == "variable" && a.Name == "type" {
			text := string(a.Expr.Range().SliceBytes(src))
			switch {
			case slices.Contains([]string{"list", "map", "set"}, hcl.ExprAsKeyword(a.Expr)):
				at(a.Expr.Range(), fmt.Sprintf("variable type %s means %s(any): write that (tofu fmt does)", text, text))
			case slices.Contains([]string{`"string"`, `"list"`, `"map"`}, text):
				at(a.Expr.Range(), fmt.Sprintf("variable type %s is Terraform 0.11 syntax: unquote it (tofu fmt does)", text))
			}
			continue
		}
		// A template of exactly one ${...} and nothing else parses as a
		// TemplateWrapExpr: what OpenTofu unwraps.
		if _, ok := a.Expr.(*hclsyntax.TemplateWrapExpr); ok {
			at(a.Expr.Range(), fmt.Sprintf("%s is an interpolation-only string: write the expression bare (tofu fmt unwraps it)", a.Name))
		}
	}
	for _, b := range body.Blocks {
		for i, r := range b.LabelRanges {
			if !bytes.HasPrefix(r.SliceBytes(src), []byte(`"`)) {
				at(r, fmt.Sprintf("block label %s is not quoted (tofu fmt quotes it)", b.Labels[i]))
			}
		}
		out = append(out, fmtRewrites(name, src, b.Body, append(slices.Clone(inBlocks), b.Type))...)
	}
	return out
}

// lineDiff is a's and b's lines, each - (only in a), + (only in b) or
// two spaces (in both), from their longest common subsequence, cut to the
// changed lines with a line of context around each.
func lineDiff(a, b string) string {
	x, y := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	// lcs[i][j] is the length of the LCS of x[i:] and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var lines []string
	for i, j := 0, 0; i < len(x) || j < len(y); {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			lines = append(lines, "  "+x[i])
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			lines = append(lines, "- "+x[i])
			i++
		default:
			lines = append(lines, "+ "+y[j])
			j++
		}
	}
	var out strings.Builder
	for k, l := range lines {
		near := func(d int) bool { return k+d >= 0 && k+d < len(lines) && lines[k+d][0] != ' ' }
		if l[0] != ' ' || near(-1) || near(1) {
			out.WriteString(strings.TrimRight(l, "\n") + "\n")
		}
	}
	return out.String()
}

// firstDiffLine is the 1-based line of a's first difference from b.
func firstDiffLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range la {
		if i >= len(lb) || la[i] != lb[i] {
			return i + 1
		}
	}
	return len(la)
}
