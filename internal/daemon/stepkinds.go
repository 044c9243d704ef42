package daemon

import (
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/kinds/dnskind"
	"github.com/prober-dev/prober/internal/kinds/grpckind"
	"github.com/prober-dev/prober/internal/kinds/icmpkind"
	"github.com/prober-dev/prober/internal/kinds/tcpkind"
	"github.com/prober-dev/prober/internal/kinds/tlskind"
)

// StepKinds are the step kinds, for config.Options.StepKinds: each decodes
// its block, and the spec it decodes runs in the runner (runner.Executor).
// Adding a kind is its package and one line here. HTTP's block is decoded
// by config (every loader has it, listed or not) and run by the runner.
func StepKinds() []config.StepKind {
	return []config.StepKind{
		config.HTTPKind{},
		tlskind.Kind{},
		tcpkind.Kind{},
		dnskind.Kind{},
		icmpkind.Kind{},
		grpckind.Kind{},
	}
}
