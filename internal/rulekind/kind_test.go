package rulekind

import (
	"slices"
	"testing"

	"github.com/prober-dev/prober/internal/config"
)

// TestEveryConfiguredKindHasAHome: config decodes exactly the kinds this
// package evaluates and exports, so no rule loads that the engine or
// `prober rules` would refuse.
func TestEveryConfiguredKindHasAHome(t *testing.T) {
	var homes []config.RuleKind
	for _, k := range Kinds() {
		if slices.Contains(homes, k.Name()) {
			t.Errorf("kind %s registered twice", k.Name())
		}
		homes = append(homes, k.Name())
	}
	if cfg := config.RuleKinds(); !slices.Equal(homes, cfg) {
		t.Errorf("rule kinds here %v, in config %v", homes, cfg)
	}
}
