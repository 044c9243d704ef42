package alert

// PageRenderers render a page as a notifier in its own package shows it
// to a person, for the lifecycle's tests here (which that package, being
// built on alert, cannot be imported into): renderers_ext_test.go, in
// package alert_test, registers them before the tests run.
var PageRenderers = map[string]func(*Page) (string, error){}

// BuildPagerDuty builds the PagerDuty notifier of its own package (with
// url and routing key) for the dispatcher's tests against fakes.PagerDuty:
// set by renderers_ext_test.go.
var BuildPagerDuty func(url, key string, o NotifierOptions) (Notifier, error)

// BuildSlack builds the Slack notifier of its own package: with token and
// channel against the Web API at apiURL, or with webhookURL. Set by
// renderers_ext_test.go.
var BuildSlack func(name, apiURL, token, channel, webhookURL string, o NotifierOptions) (Notifier, error)
