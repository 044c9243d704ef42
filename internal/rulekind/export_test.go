package rulekind

import "testing"

func TestEscapeTemplate(t *testing.T) {
	if got := escapeTemplate("a {{ b }} c"); got != "a {{ `{{` }} b }} c" {
		t.Errorf("escapeTemplate = %q", got)
	}
	if got := escapeTemplate("plain"); got != "plain" {
		t.Errorf("escapeTemplate = %q", got)
	}
}
