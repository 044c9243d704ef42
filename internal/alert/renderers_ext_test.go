package alert_test

import (
	"bytes"
	"context"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/alert/notify/console"
)

func init() {
	alert.PageRenderers["console"] = func(p *alert.Page) (string, error) {
		var b bytes.Buffer
		_, err := console.New("console", &b).Send(context.Background(), p, "")
		return b.String(), err
	}
}
