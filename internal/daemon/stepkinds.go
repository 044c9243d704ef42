package daemon

import (
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/kinds/dnskind"
	"github.com/prober-dev/prober/internal/kinds/grpckind"
	"github.com/prober-dev/prober/internal/kinds/icmpkind"
	"github.com/prober-dev/prober/internal/kinds/tcpkind"
	"github.com/prober-dev/prober/internal/kinds/tlskind"
)

// StepKinds are the step kinds besides HTTP, for config.Options.StepKinds:
// each decodes its block, and the spec it decodes runs itself in the
// runner (runner.Executor). Adding a kind is its package and one line here.
func StepKinds() []config.StepKind {
	return []config.StepKind{
		tlskind.Kind{},
		tcpkind.Kind{},
		dnskind.Kind{},
		icmpkind.Kind{},
		grpckind.Kind{},
	}
}
