package main

import (
	"fmt"
	"net/url"
	"strings"

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
	bad := func(n *config.Notifier, format string, args ...any) {
		errs = append(errs, config.Error{Pos: n.Pos, Msg: fmt.Sprintf("notifier %s: ", n.Name) + fmt.Sprintf(format, args...)})
	}
	for _, n := range cfg.Alerting.Notifiers {
		if n.Disabled != "" {
			continue
		}
		// Each notifier package knows its service's shapes.
		if c, ok := daemon.NotifierPlugin(string(n.Type)).(alert.SecretChecker); ok {
			for _, msg := range c.CheckSecrets(n) {
				bad(n, "%s", msg)
			}
		}
		switch n.Type {
		case config.Slack:
			if t := n.Token; t != "" {
				switch {
				case strings.TrimSpace(t) != t || strings.ContainsAny(t, " \t\r\n"):
					bad(n, "token holds whitespace (a newline from the secret's source?)")
				case strings.HasPrefix(t, "xoxb-"), strings.HasPrefix(t, "xoxp-"):
				default:
					bad(n, "token does not start with xoxb- (a Slack bot token) or xoxp- (a user token); app-level (xapp-) and other tokens cannot post messages")
				}
			}
			if w := n.WebhookURL; w != "" {
				u, err := url.Parse(w)
				if err == nil && u.Host == "hooks.slack.com" {
					parts := strings.Split(strings.Trim(u.Path, "/"), "/")
					if u.Scheme != "https" || len(parts) != 4 || parts[0] != "services" || parts[3] == "" {
						bad(n, "webhook_url is not a Slack incoming webhook (https://hooks.slack.com/services/T…/B…/…)")
					}
				}
			}
		}
	}
	return errs
}
