package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/alert/notify/console"
	"github.com/prober-dev/prober/internal/alert/notify/pagerduty"
	"github.com/prober-dev/prober/internal/alert/notify/slack"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/fakes"
)

func init() {
	alert.BuildSlack = func(name, apiURL, token, channel, webhookURL string, o alert.NotifierOptions) (alert.Notifier, error) {
		return slack.Plugin{}.New(&config.Notifier{Name: name, Type: slack.Type, Timeout: 2 * time.Second,
			Spec: &slack.Spec{URL: apiURL, Token: token, Channel: channel, WebhookURL: webhookURL}}, o)
	}
	// How a resolve reads in Slack: the incident's message as updated in
	// place, and the reply in its thread, from a real Send against the fake.
	alert.PageRenderers["slack message"] = func(p *alert.Page) (string, error) {
		msg, _, err := slackResolve(p)
		return msg, err
	}
	alert.PageRenderers["slack reply"] = func(p *alert.Page) (string, error) {
		_, reply, err := slackResolve(p)
		return reply, err
	}
	alert.BuildPagerDuty = func(url, key string, o alert.NotifierOptions) (alert.Notifier, error) {
		return pagerduty.Plugin{}.New(&config.Notifier{Name: "pd", Type: pagerduty.Type, Timeout: 2 * time.Second,
			Spec: &pagerduty.Spec{URL: url, RoutingKey: key}}, o)
	}
	alert.PageRenderers["console"] = func(p *alert.Page) (string, error) {
		var b bytes.Buffer
		_, err := console.New("console", &b).Send(context.Background(), p, "")
		return b.String(), err
	}
}

// slackResolve sends p's trigger and then p through the Slack notifier to
// a fake Slack, and returns the trigger's message (its blocks as JSON) as
// the resolve left it and the resolve's thread reply.
func slackResolve(p *alert.Page) (message, reply string, err error) {
	const token = "xoxb-RENDERTOKEN-0000"
	s := fakes.NewSlack(token, "#alerts")
	defer s.Close()
	n, err := alert.BuildSlack("slack", s.APIURL, token, "#alerts", "", alert.NotifierOptions{Rate: 1000, Burst: 1000})
	if err != nil {
		return "", "", err
	}
	trig := *p
	trig.Kind = alert.Trigger
	thread, err := n.Send(context.Background(), &trig, "")
	if err != nil {
		return "", "", err
	}
	if _, err := n.Send(context.Background(), p, thread); err != nil {
		return "", "", err
	}
	orig := s.Messages()[0]
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(orig.Blocks); err != nil {
		return "", "", err
	}
	replies := s.Thread(orig.TS)
	if len(replies) != 1 {
		return "", "", fmt.Errorf("%d thread replies, want the resolve's", len(replies))
	}
	return b.String(), replies[0].Text, nil
}
