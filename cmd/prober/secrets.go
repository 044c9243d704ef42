package main

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/prober-dev/prober/internal/config"
)

// pdRoutingKeyLen is the length of a PagerDuty Events API v2 routing key
// (the integration key of an Events API v2 integration): 32 letters and
// digits. PagerDuty answers any other with a 400, "Length of 'routing_key'
// is incorrect (should be 32 characters)", and the page is lost.
const pdRoutingKeyLen = 32

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
		switch n.Type {
		case config.PagerDuty:
			k := n.RoutingKey
			if k == "" {
				continue // not resolved: Load said why
			}
			if l := utf8.RuneCountInString(k); l != pdRoutingKeyLen {
				bad(n, "routing_key is %d characters; a PagerDuty Events API v2 routing key (the integration key) is %d letters and digits", l, pdRoutingKeyLen)
			} else if !alnum(k) {
				bad(n, "routing_key holds characters other than letters and digits (a space or newline from the secret's source?); a PagerDuty Events API v2 routing key is %d letters and digits", pdRoutingKeyLen)
			}
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

func alnum(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
