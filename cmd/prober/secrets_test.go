package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/daemon"
)

// validate --secrets refuses secrets of the wrong shape, says which and
// why, and never prints them.
func TestValidateSecretShapes(t *testing.T) {
	cfg := strings.Replace(goodProbes, "  SHOP_PASSWORD: {env: SHOP_PASSWORD}\n",
		"  SHOP_PASSWORD: {env: SHOP_PASSWORD}\n  PD_KEY: {env: PD_KEY}\n  SLACK_TOKEN: {env: SLACK_TOKEN}\n", 1) + `
notifiers:
  pagerduty: {type: pagerduty, routing_key: "{{secret:PD_KEY}}"}
  slack: {type: slack, token: "{{secret:SLACK_TOKEN}}", channel: "#alerts"}
`
	dir := writeFiles(t, map[string]string{"probes.yaml": cfg, "flows/checkout.yaml": goodFlow})
	const (
		key32 = "Q7pR2sT9uV4wX1yZ8aB3cD6eF0gH5iJk"
		slack = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
	)
	tests := []struct {
		name, key, token string
		code             int
		want             string
	}{
		{"well formed", key32, slack, 0, "secrets resolved"},
		{"31-character routing key", key32[:31], slack, 2, "notifier pagerduty: routing_key is 31 characters; a PagerDuty Events API v2 routing key (the integration key) is 32 letters and digits"},
		{"33-character routing key", key32 + "x", slack, 2, "routing_key is 33 characters"},
		{"routing key with a dash", key32[:31] + "-", slack, 2, "routing_key holds characters other than letters and digits"},
		{"user token", key32, "xoxp-" + slack[5:], 0, "secrets resolved"},
		{"app-level token", key32, "xapp-" + slack[5:], 2, "notifier slack: token does not start with xoxb-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SHOP_PASSWORD", password)
			t.Setenv("PD_KEY", tc.key)
			t.Setenv("SLACK_TOKEN", tc.token)
			code, stdout, stderr := invoke("validate", "--secrets", "--config", filepath.Join(dir, "probes.yaml"))
			if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
				t.Errorf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tc.code, tc.want, stdout, stderr)
			}
			for _, secret := range []string{tc.key, tc.token, tc.key[:16], tc.token[5:21]} {
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("output holds the secret %q…", secret[:4])
				}
			}
		})
	}
}

// The shipped probes.yaml has a heartbeat: on when PROBER_HEARTBEAT_URL is
// set, cleanly off (no error, no pings) when it is not.
func TestShippedHeartbeat(t *testing.T) {
	p := repoProbes(t)
	for _, tc := range []struct {
		name, url string
	}{{"unset", ""}, {"set", "https://hc-ping.com/5e1b0f7c-heartbeat-test"}} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"SHOP_PASSWORD": password}
			if tc.url != "" {
				env["PROBER_HEARTBEAT_URL"] = tc.url
			}
			cfg, err := config.Load(os.DirFS(filepath.Dir(p)), filepath.Base(p), config.Options{Notifiers: daemon.NotifierKinds(), StepKinds: daemon.StepKinds(), Env: func(k string) (string, bool) {
				v, ok := env[k]
				return v, ok
			}})
			if err != nil {
				t.Fatal(err)
			}
			hb := cfg.Alerting.Heartbeat
			switch {
			case tc.url == "" && hb != nil && hb.URL != "":
				t.Errorf("heartbeat on without a URL: %+v", hb)
			case tc.url != "" && (hb == nil || hb.URL != tc.url || hb.MaxPageDelay <= 0):
				t.Errorf("heartbeat = %+v, want on at %s", hb, tc.url)
			}
		})
	}
}
