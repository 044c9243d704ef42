package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSchemaCommand(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		code  int
		title string // of the schema printed
		err   string
	}{
		{[]string{"schema", "probes"}, exitOK, "prober probes.yaml", ""},
		{[]string{"schema", "flow"}, exitOK, "prober flow file", ""},
		{[]string{"schema", "steps"}, exitOK, "prober steps file", ""},
		{[]string{"schema"}, exitUsage, "", "name one schema: probes|flow|steps"},
		{[]string{"schema", "rules"}, exitUsage, "", `unknown schema "rules": want probes|flow|steps`},
		{[]string{"schema", "flow", "probes"}, exitUsage, "", "name one schema"},
	} {
		code, stdout, stderr := invoke(tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr)
		}
		if tc.err != "" && !strings.Contains(stderr, tc.err) {
			t.Errorf("%v: stderr %q, want %q", tc.args, stderr, tc.err)
		}
		if tc.title == "" {
			continue
		}
		var s struct{ Title string }
		if err := json.Unmarshal([]byte(stdout), &s); err != nil {
			t.Fatalf("%v: not JSON: %v", tc.args, err)
		}
		if s.Title != tc.title {
			t.Errorf("%v: title %q, want %q", tc.args, s.Title, tc.title)
		}
	}
}
