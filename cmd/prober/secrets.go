package main

import (
	"fmt"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/daemon"
)

// secretShapes checks the notifiers' resolved secrets against the shapes
// their services issue, so that a truncated or mistyped key fails
// validate --secrets instead of the first page at night. Messages describe
// the secret (length, prefix expected), never quote it.
func secretShapes(cfg *config.Config) config.Errors {
	var errs config.Errors
	for _, n := range cfg.Alerting.Notifiers {
		if n.Disabled != "" {
			continue
		}
		// Each notifier package knows its service's shapes.
		if c, ok := daemon.NotifierPlugin(string(n.Type)).(alert.SecretChecker); ok {
			for _, msg := range c.CheckSecrets(n) {
				errs = append(errs, config.Error{Pos: n.Pos, Msg: fmt.Sprintf("notifier %s: %s", n.Name, msg)})
			}
		}
	}
	return errs
}
