package schema_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/prober-dev/prober/schema"
)

// compiled compiles both schemas with a real draft 2020-12 validator.
func compiled(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	out := map[string]*jsonschema.Schema{}
	for _, name := range schema.Names { // all first: steps refers to flow
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema.Get(name)))
		if err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
		if err := c.AddResource(name+".schema.json", doc); err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
	}
	for _, name := range schema.Names {
		s, err := c.Compile(name + ".schema.json")
		if err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
		out[name] = s
	}
	return out
}

// instance is YAML as the validator takes it: through JSON, as an editor's
// YAML language server sees it.
func instance(t *testing.T, what string, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return inst
}

// schemaFor tells which schema a shipped file follows: probes.yaml's
// has flows:, a flow's steps:.
func schemaFor(data []byte) string {
	var top map[string]any
	if yaml.Unmarshal(data, &top) != nil {
		return ""
	}
	switch {
	case top["flows"] != nil:
		return "probes"
	case top["params"] != nil, top["steps"] != nil && top["name"] == nil:
		return "steps" // a steps file of include:
	case top["steps"] != nil:
		return "flow"
	}
	return ""
}

// shippedFiles are probes.yaml, the shipped flows and every example.
func shippedFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"../probes.yaml"}
	for _, glob := range []string{"../flows/*.yaml", "../steps/*.yaml", "../examples/*.yaml", "../examples/*/*.yaml"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

func TestShippedFilesValid(t *testing.T) {
	schemas := compiled(t)
	n := 0
	for _, path := range shippedFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := schemaFor(data)
		if name == "" {
			continue // not a config
		}
		n++
		if err := schemas[name].Validate(instance(t, path, data)); err != nil {
			t.Errorf("%s does not follow the %s schema:\n%v", path, name, err)
		}
	}
	if n < 4 {
		t.Errorf("validated %d files; the shipped probes.yaml and flows are 4", n)
	}
}

// TestReadmeExamplesValid validates the README's ```yaml blocks that are
// a probes.yaml or a flow file, or a part of one (every top-level key is
// one of that file's): a part gets what the file requires besides (a
// name, a step, flows:) so that what it shows is checked. Blocks of other
// files (web config, Prometheus) are left out.
func TestReadmeExamplesValid(t *testing.T) {
	schemas := compiled(t)
	props := map[string]map[string]any{}
	for _, name := range schema.Names {
		var doc struct{ Properties map[string]any }
		if err := json.Unmarshal(schema.Get(name), &doc); err != nil {
			t.Fatal(err)
		}
		props[name] = doc.Properties
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?ms)^```yaml\n(.*?)^```").FindAllSubmatchIndex(readme, -1)
	n := 0
	for _, b := range blocks {
		data := readme[b[2]:b[3]]
		line := 1 + bytes.Count(readme[:b[2]], []byte("\n"))
		var top map[string]any
		if yaml.Unmarshal(data, &top) != nil || len(top) == 0 {
			continue
		}
		name := ""
		for _, cand := range []string{"flow", "steps", "probes"} {
			all := true
			for k := range top {
				_, ok := props[cand][k]
				all = all && ok
			}
			if all {
				name = cand
				break
			}
		}
		switch name {
		case "":
			continue
		case "flow":
			if top["name"] == nil {
				data = append([]byte("name: readme\n"), data...)
			}
			if top["steps"] == nil {
				data = append(data, "\nsteps: [{name: s, request: {url: \"http://x/\"}}]\n"...)
			}
		case "probes":
			if top["flows"] == nil {
				data = append(data, "\nflows: [f.yaml]\n"...)
			}
		}
		n++
		if err := schemas[name].Validate(instance(t, "README.md", data)); err != nil {
			t.Errorf("README.md:%d: the example does not follow the %s schema:\n%v", line, name, err)
		}
	}
	t.Logf("validated %d README examples", n)
	if n < 10 {
		t.Errorf("validated %d README examples, want the dozen or so of probes.yaml and flows", n)
	}
}

// TestWrongFilesFail: what the loader refuses for its keys, types and
// shapes, the schemas refuse too.
func TestWrongFilesFail(t *testing.T) {
	schemas := compiled(t)
	const step = "steps:\n  - name: s\n    request: {url: \"http://x/\"}\n"
	for _, tc := range []struct {
		name, schema, yaml, want string
	}{
		{"unknown top-level field", "flow", "name: f\nstep:\n  - name: s\n", "additional properties 'step'"},
		{"misspelt step field", "flow", "name: f\nsteps:\n  - name: s\n    request: {url: \"http://x/\"}\n    expcet: [status == 200]\n", "'expcet'"},
		{"no name", "flow", step, "missing property 'name'"},
		{"bad flow name", "flow", "name: Bad Name\n" + step, "does not match pattern"},
		{"duration without unit", "flow", "name: f\nevery: 30\n" + step, "want string"},
		{"bad duration", "flow", "name: f\ntimeout: 1x\n" + step, "does not match pattern"},
		{"retries not a number", "flow", "name: f\nretries: many\n" + step, "retries"},
		{"unknown kind block field", "flow", "name: f\nsteps:\n  - name: s\n    tcp: {address: \"a:1\", sned: x}\n", "'sned'"},
		{"steps not a list", "flow", "name: f\nsteps: {name: s}\n", "want array"},
		{"retry on an unknown class", "flow", "name: f\nsteps:\n  - name: s\n    request: {url: \"http://x/\"}\n    retry: {on: [assertion]}\n", "retry"},
		{"two browser actions in one item", "flow", "name: f\nsteps:\n  - name: s\n    browser: {actions: [{goto: \"http://x/\", click: a}]}\n", "maxProperties"},
		{"probes without flows", "probes", "region: local\n", "missing property 'flows'"},
		{"unknown notifier type", "probes", "flows: [f.yaml]\nnotifiers:\n  n: {type: carrier-pigeon}\n", "type"},
		{"field of another notifier type", "probes", "flows: [f.yaml]\nnotifiers:\n  n: {type: console, routing_key: k}\n", "routing_key"},
		{"unknown severity", "probes", "flows: [f.yaml]\nrules:\n  - {name: r, severity: urgent, absent: {}}\n", "severity"},
		{"secret with a value", "probes", "flows: [f.yaml]\nsecrets:\n  K: {value: hunter2}\n", "'value'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := schemas[tc.schema].Validate(instance(t, tc.name, []byte(tc.yaml)))
			if err == nil {
				t.Fatalf("the %s schema accepts:\n%s", tc.schema, tc.yaml)
			}
			if msg := strings.ReplaceAll(err.Error(), "\n", " "); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not mention %q", msg, tc.want)
			}
		})
	}
}

// TestShippedFilesHaveModeline: every shipped file names its schema on its
// first line, so that an editor with a YAML language server completes and
// checks it; the path is relative to the file and must lead to the schema.
func TestShippedFilesHaveModeline(t *testing.T) {
	const prefix = "# yaml-language-server: $schema="
	for _, path := range shippedFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := schemaFor(data)
		if name == "" {
			continue
		}
		first, _, _ := strings.Cut(string(data), "\n")
		ref, ok := strings.CutPrefix(first, prefix)
		if !ok {
			t.Errorf("%s: the first line is not %q", path, prefix+"...")
			continue
		}
		target := filepath.Join(filepath.Dir(path), ref)
		b, err := os.ReadFile(target)
		if err != nil {
			t.Errorf("%s: modeline: %v", path, err)
			continue
		}
		if !bytes.Equal(b, schema.Get(name)) {
			t.Errorf("%s: the modeline names %s, not the %s schema", path, ref, name)
		}
	}
}
