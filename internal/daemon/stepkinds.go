package daemon

import (
	"errors"
	"fmt"
	"io"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/kinds/browserkind"
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
// A kind that owns a process (the browser) is an io.Closer: CloseKinds
// stops it, and no process starts before a step of the kind runs.
func StepKinds() []config.StepKind {
	return []config.StepKind{
		config.HTTPKind{},
		tlskind.Kind{},
		tcpkind.Kind{},
		dnskind.Kind{},
		icmpkind.Kind{},
		grpckind.Kind{},
		browserkind.New(browserkind.Options{}),
	}
}

// CloseKinds closes the kinds that are io.Closers (what they started
// stops), at the exit of whatever ran their steps.
func CloseKinds(kinds []config.StepKind) error {
	var errs []error
	for _, k := range kinds {
		if c, ok := k.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing the %s step kind: %w", k.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}
