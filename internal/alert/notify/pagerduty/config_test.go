package pagerduty

import (
	"slices"
	"strings"
	"testing"

	"github.com/prober-dev/prober/internal/alert/alerttest"
	"github.com/prober-dev/prober/internal/alert/notify/slack"
	"github.com/prober-dev/prober/internal/config"
)

// The block decodes here with config's file:line:col errors, as it did
// when config knew the type (the texts are the same).
func TestDecode(t *testing.T) {
	cfg, errs := alerttest.Load(t, `{pd: {type: pagerduty, routing_key: "{{secret:S}}"}, off: {type: pagerduty, routing_key: "{{secret:OPT}}"}, eu: {type: pagerduty, routing_key: "{{secret:S}}", url: "https://events.eu.pagerduty.com"}}`, pdKey, Plugin{})
	if errs != nil {
		t.Fatal(errs)
	}
	n := cfg.Alerting.Notifiers
	if s := n[0].Spec.(*Spec); s.RoutingKey != pdKey || s.URL != "https://events.pagerduty.com" || !n[0].Traits.Pages || !n[0].Traits.NoNotes {
		t.Errorf("pd: %+v %+v", n[0], s)
	}
	if n[1].Disabled != "optional secret OPT is not set" {
		t.Errorf("off.Disabled = %q", n[1].Disabled)
	}
	if s := n[2].Spec.(*Spec); s.URL != "https://events.eu.pagerduty.com" {
		t.Errorf("eu url = %q", s.URL)
	}
	// Pages: not in the default warning route.
	if r := cfg.Alerting.Routes; !slices.Contains(r["critical"], "pd") || slices.Contains(r["warning"], "pd") {
		t.Errorf("routes %v", r)
	}
	for _, tt := range []struct{ block, want string }{
		{`{x: {type: pagerduty}}`, `probes.yaml:3:13: pagerduty notifier x needs routing_key (use {{secret:NAME}})`},
		{`{x: {type: pagerduty, routing_key: "{{secret:S}}", url: "http://h/{{secret:S}}"}}`,
			`probes.yaml:3:78: url cannot use {{...}}; secrets belong in routing_key, token or webhook_url`},
		{`{x: {type: pagerduty, routing_key: "{{secret:S}}", channel: "#a"}}`, `probes.yaml:3:63: channel does not apply to a pagerduty notifier`},
		{`{x: {type: pagerduty, routing_key: "{{secret:NOPE}}"}}`, `probes.yaml:3:48: undefined secret "NOPE" (declare it under secrets: in probes.yaml)`},
	} {
		// Slack's keys are known, and do not apply here.
		_, errs := alerttest.Load(t, tt.block, pdKey, Plugin{}, slack.Plugin{})
		if got := strings.Join(errs, "\n"); got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.block, got, tt.want)
		}
	}
}

// validate --secrets: a routing key of the wrong shape is named, never
// quoted; a good one and an unresolved one say nothing.
func TestCheckSecrets(t *testing.T) {
	for _, tt := range []struct{ key, want string }{
		{pdKey, ""},
		{"", ""},
		{pdKey[:31], "routing_key is 31 characters; a PagerDuty Events API v2 routing key (the integration key) is 32 letters and digits"},
		{pdKey[:31] + "\n", "routing_key holds characters other than letters and digits (a space or newline from the secret's source?); a PagerDuty Events API v2 routing key is 32 letters and digits"},
	} {
		got := strings.Join(Plugin{}.CheckSecrets(&config.Notifier{Spec: &Spec{RoutingKey: tt.key}}), "\n")
		if got != tt.want {
			t.Errorf("key of %d: %q, want %q", len(tt.key), got, tt.want)
		}
		if tt.key != "" {
			alerttest.NoSecrets(t, got, tt.key)
		}
	}
}
