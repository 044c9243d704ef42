package config

import (
	"strings"
	"testing"
)

// The YAML comma trap: an expression with a comma in a flow collection.
// One error, at the element holding the comma, saying how to fix it; no
// cascade from rules naming the flow that failed to parse.
func TestCommaTrap(t *testing.T) {
	const listHint = ` holds a comma, which ends an element of a [...] list: an expectation containing a comma must be quoted in a [...] list, or written as a block list (- ...)`
	const mapHint = ` holds a comma, which ends a value in a {...} mapping: quote it, or write the mapping one entry per line (name: expression)`
	step := func(lines string) map[string]string {
		return map[string]string{"f.yaml": flow("  - name: a\n    request: {url: \"{{base}}/\"}\n" + lines)}
	}
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name:  "list literal after in",
			files: step("    expect: [status in [200, 201], json.x == 1]\n"),
			want:  []string{`f.yaml:5:14: invalid YAML: "status in [200, 201]"` + listHint},
		},
		{
			name:  "function arguments, not the first element",
			files: step("    expect: [status == 200, match(body, \"re\") == \"x\"]\n"),
			want:  []string{`f.yaml:5:29: invalid YAML: "match(body, \"re\") == \"x\""` + listHint},
		},
		{
			name:  "comma in a string: YAML parses, the expression is cut",
			files: step("    expect: [status == 200, body contains \"a, b\", json.ok]\n"),
			want:  []string{`f.yaml:5:29: invalid YAML: "body contains \"a"` + listHint},
		},
		{
			name:  "index and comma in a list spanning lines",
			files: step("    expect: [\n      status == 200,\n      json.items[0].tags contains \"a, b\",\n      match(body, `x`)\n    ]\n"),
			want:  []string{`f.yaml:7:7: invalid YAML: "json.items[0].tags contains \"a, b\""` + listHint},
		},
		{
			name:  "capture mapping",
			files: step("    capture: {id: json.id, ref: match(body, `ref=(\\w+)`)}\n"),
			want:  []string{"f.yaml:5:33: invalid YAML: \"match(body, `ref=(\\\\w+)`)\"" + mapHint},
		},
		{
			name:  "until inside a step",
			files: step("    until: {expect: [status in [200, 204]], within: 5s}\n"),
			want:  []string{`f.yaml:5:22: invalid YAML: "status in [200, 204]"` + listHint},
		},
		{
			name: "no cascade from rules naming the flow",
			files: map[string]string{
				"probes.yaml": baseProbes + "rules:\n  - {name: r, flow_failing: {flows: [f]}}\n  - {name: d, dependency_success: {dependency: bank, below: 0.9}}\n",
				"f.yaml":      flow("  - name: a\n    dependency: bank\n    request: {url: \"{{base}}/\"}\n    expect: [status in [200, 201]]\n"),
			},
			want: []string{`f.yaml:6:14: invalid YAML: "status in [200, 201]"` + listHint},
		},
		{
			name:  "a variable in a one-line list",
			files: step("    expect: [status == 200, json.id == {{sku}}]\n"),
			want:  []string{`f.yaml:5:29: invalid YAML: "json.id == {{sku}}" holds {{...}}, which YAML reads as a mapping: an expectation with a variable must be quoted in a [...] list, or written as a block list (- ...)`},
		},
		{
			name:  "a variable first in a block list",
			files: step("    expect:\n      - {{sku}} == json.sku\n      - status == 200\n"),
			want:  []string{`f.yaml:6:9: invalid YAML: "{{sku}} == json.sku" starts with {{, which YAML reads as a mapping: quote the value (or, in an expectation, put the variable on the right: json.id == {{id}})`},
		},
		{
			name:  "an unquoted URL starting with a placeholder",
			files: map[string]string{"f.yaml": flow("  - name: a\n    request:\n      url: {{base}}/x\n")},
			want:  []string{`f.yaml:5:12: invalid YAML: "{{base}}/x" starts with {{, which YAML reads as a mapping: quote the value (or, in an expectation, put the variable on the right: json.id == {{id}})`},
		},
		{
			name:  "nested collections with quoted keys are fine",
			files: step("    expect: [status == 200]\n    capture: {\"id\": json.id}\n"),
			want:  nil,
		},
		{
			name:  "quoted elements are fine",
			files: step("    expect: [\"status in [200, 201]\", 'match(body, \"re\") == \"x\"', body contains \"a\"]\n"),
			want:  nil,
		},
		{
			name:  "a flow error without a comma keeps yaml's message",
			files: step("    expect: [status == 200\n    capture: {}\n"),
			want:  []string{`f.yaml:4:1: invalid YAML: did not find expected ',' or ']'`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := loadFiles(t, tt.files)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// {{name}} in an expectation is checked at load like a placeholder in a
// request: defined by vars, a built-in or an earlier step's capture.
func TestExpectationVariables(t *testing.T) {
	two := func(first, second string) map[string]string {
		return map[string]string{"f.yaml": flow("  - name: a\n    request: {url: \"{{base}}/\"}\n" + first +
			"  - name: b\n    request: {url: \"{{base}}/\"}\n" + second)}
	}
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name:  "capture of an earlier step, a var, a built-in",
			files: two("    capture: {order_id: json.id}\n", "    expect:\n      - json.id == {{order_id}}\n      - json.sku == {{ sku }}\n      - header.X-Run == {{run_id}}\n"),
		},
		{
			name:  "undefined",
			files: two("    capture: {order_id: json.id}\n", "    expect:\n      - json.id == {{ordr_id}}\n"),
			want:  []string{`f.yaml:9:22: undefined variable "ordr_id" (did you mean "order_id"?)`},
		},
		{
			name:  "captured by a later step",
			files: two("    expect:\n      - json.id == {{order_id}}\n", "    capture: {order_id: json.id}\n"),
			want:  []string{`f.yaml:6:22: variable "order_id" is captured by step "b", which runs after this step`},
		},
		{
			name:  "captured by the same step",
			files: two("    capture: {order_id: json.id}\n    until:\n      expect:\n        - json.state == {{order_id}}\n", ""),
			want:  []string{`f.yaml:8:27: variable "order_id" is captured by this step, after its expectations are checked, so they cannot use it`},
		},
		{
			name:  "a secret is refused",
			files: two("", "    expect:\n      - json.token != {{secret:TOKEN}}\n"),
			want:  []string{`f.yaml:8:23: secrets cannot be used in expectations: a failed check shows the values it compared`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := loadFiles(t, tt.files)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
