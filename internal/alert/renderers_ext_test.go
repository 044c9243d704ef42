package alert_test

import (
	"bytes"
	"context"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/alert/notify/console"
	"github.com/prober-dev/prober/internal/alert/notify/pagerduty"
	"github.com/prober-dev/prober/internal/config"
)

func init() {
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
