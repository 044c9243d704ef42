package alert

import (
	_ "github.com/PagerDuty/go-pagerduty"
	_ "github.com/slack-go/slack"
	_ "go.etcd.io/bbolt"
)
