package daemon

import (
	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/alert/notify/alertmanager"
	"github.com/prober-dev/prober/internal/alert/notify/console"
	"github.com/prober-dev/prober/internal/alert/notify/email"
	"github.com/prober-dev/prober/internal/alert/notify/opsgenie"
	"github.com/prober-dev/prober/internal/alert/notify/pagerduty"
	"github.com/prober-dev/prober/internal/alert/notify/slack"
	"github.com/prober-dev/prober/internal/alert/notify/teams"
	"github.com/prober-dev/prober/internal/alert/notify/webhook"
	"github.com/prober-dev/prober/internal/config"
)

// notifierPlugins are the notifier types in their own packages, registered
// with config (which decodes their blocks) and built by the daemon: adding
// a notifier is its package and one line here.
func notifierPlugins() []alert.NotifierPlugin {
	return []alert.NotifierPlugin{
		// One line per plug-in, in the order config's messages list them.
		pagerduty.Plugin{},
		slack.Plugin{},
		console.Plugin{},
		alertmanager.Plugin{},
		webhook.Plugin{},
		opsgenie.Plugin{},
		teams.Plugin{},
		email.Plugin{},
	}
}

// NotifierKinds are the plug-in notifier types for config.Options.Notifiers.
func NotifierKinds() []config.NotifierKind {
	ps := notifierPlugins()
	out := make([]config.NotifierKind, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

// NotifierPlugin returns the plug-in of type typ, or nil: for what only
// some plug-ins do (alert.SecretChecker).
func NotifierPlugin(typ string) alert.NotifierPlugin {
	for _, p := range notifierPlugins() {
		if p.Type() == typ {
			return p
		}
	}
	return nil
}
