package teams

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/alert/alerttest"
	"github.com/prober-dev/prober/internal/alert/notify/slack"
	"github.com/prober-dev/prober/internal/config"
)

// testSig is the workflow URL's signature: the secret part.
const testSig = "Zx9QpL2mN4vB7cR1tY6uI3oP8aS5dF0gH2jK4lM6nB8"

func newNotifier(t *testing.T, u string) alert.Notifier {
	t.Helper()
	n, err := Plugin{}.New(&config.Notifier{Name: "teams", Type: Type, Spec: &Spec{WebhookURL: u}, Timeout: 2 * time.Second}, alert.NotifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// path walks a decoded card: "body.0.items.0.text".
func path(v any, p string) any {
	for _, k := range strings.Split(p, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			fmt.Sscan(k, &i)
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func facts(card map[string]any) map[string]string {
	out := map[string]string{}
	for _, el := range card["body"].([]any) {
		if fs, ok := el.(map[string]any)["facts"].([]any); ok {
			for _, f := range fs {
				m := f.(map[string]any)
				if _, ok := out[m["title"].(string)]; !ok {
					out[m["title"].(string)] = m["value"].(string) // the first of a repeated title
				}
			}
		}
	}
	return out
}

func TestTriggerCard(t *testing.T) {
	f := newFake(t)
	n := newNotifier(t, f.url())
	if n.Name() != "teams" || n.Type() != Type {
		t.Errorf("Name, Type = %q, %q", n.Name(), n.Type())
	}
	p := alerttest.SamplePage(alert.Trigger)
	th, err := n.Send(context.Background(), p, "")
	if err != nil || th != "" {
		t.Fatalf("Send = %q, %v", th, err)
	}
	cards := f.got()
	if len(cards) != 1 {
		t.Fatalf("%d cards", len(cards))
	}
	c := cards[0]
	for _, tt := range []struct{ path, want string }{
		{"body.0.style", "attention"},
		{"body.0.items.0.text", "CRITICAL: checkout_failing"},
		{"body.0.items.0.color", "attention"},
		{"body.1.text", p.Summary},
		{"body.3.text", "dedup key checkout_failing/flow=checkout · prober"},
		{"actions.0.title", "dashboard"},
		{"actions.0.url", "https://grafana.example/d/checkout"},
		{"actions.1.url", "https://logs.example/search?q=4bf92f35"},
	} {
		if got := fmt.Sprint(path(c, tt.path)); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.path, got, tt.want)
		}
	}
	want := map[string]string{"severity": "critical", "component": "checkout", "class": "swallowed_error", "source": "prober (regions a, b, c)",
		"step": "pay", "gateway success": "0% (was 99.8%)", "trace": "4bf92f3577b34da6a3ce929d0e0e4736"}
	got := facts(c)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("fact %s = %q, want %q", k, got[k], v)
		}
	}
	// The second "step" is a fact of its own, in order.
	if fs := path(c, "body.2.facts").([]any); len(fs) != 8 || path(fs[7], "value") != "confirm" {
		t.Errorf("facts %v", fs)
	}
	// A page that names its flow in the details shows it once, as flow.
	p.Details = append([]alert.Field{{Name: "flow", Value: "checkout"}}, p.Details...)
	if _, err := n.Send(context.Background(), p, ""); err != nil {
		t.Fatal(err)
	}
	if got := facts(f.got()[1]); got["flow"] != "checkout" || got["component"] != "" {
		t.Errorf("facts %v", got)
	}
}

func TestCardPerKind(t *testing.T) {
	for _, tt := range []struct {
		name             string
		page             func(p *alert.Page)
		title, color     string
		textPrefix, text string
	}{
		{name: "warning", page: func(p *alert.Page) { p.Severity = "warning" }, title: "WARNING: checkout_failing", color: "warning"},
		{name: "error", page: func(p *alert.Page) { p.Severity = "error" }, title: "ERROR: checkout_failing", color: "attention"},
		{name: "reminder", page: func(p *alert.Page) { p.Kind = alert.Reminder }, title: "CRITICAL still failing: checkout_failing", color: "attention"},
		{name: "note", page: func(p *alert.Page) {
			p.Kind, p.Note = alert.Reminder, "checkout_slo resolved (condition cleared); still firing: checkout_failing (critical)"
		},
			title: "Note: checkout_failing", color: "attention", text: "checkout_slo resolved (condition cleared); still firing: checkout_failing (critical)"},
		{name: "resolve", page: func(p *alert.Page) { p.Kind, p.At = alert.Resolve, p.Since.Add(47*time.Minute) },
			title: "Resolved: checkout_failing", color: "good", textPrefix: "Resolved after 47m0s. checkout failing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			p := alerttest.SamplePage(alert.Trigger)
			tt.page(p)
			if _, err := newNotifier(t, f.url()).Send(context.Background(), p, ""); err != nil {
				t.Fatal(err)
			}
			c := f.got()[0]
			if got := path(c, "body.0.items.0.text"); got != tt.title {
				t.Errorf("title %q, want %q", got, tt.title)
			}
			if got := path(c, "body.0.items.0.color"); got != tt.color || path(c, "body.0.style") != tt.color {
				t.Errorf("colour %q, style %q, want %q", got, path(c, "body.0.style"), tt.color)
			}
			text := fmt.Sprint(path(c, "body.1.text"))
			if tt.text != "" && text != tt.text || tt.textPrefix != "" && !strings.HasPrefix(text, tt.textPrefix) {
				t.Errorf("text %q", text)
			}
		})
	}
}

// A huge page still fits Teams' message size (the fake refuses 28 KB).
func TestSizeBudget(t *testing.T) {
	f := newFake(t)
	p := alerttest.SamplePage(alert.Trigger)
	p.Summary = strings.Repeat("é", 5000)
	for i := range 200 {
		p.Details = append(p.Details, alert.Field{Name: fmt.Sprint("d", i), Value: strings.Repeat("x", 3000)})
	}
	for i := range 10 {
		p.Links = append(p.Links, alert.Link{Name: fmt.Sprint("l", i), URL: "https://x.example/"})
	}
	if _, err := newNotifier(t, f.url()).Send(context.Background(), p, ""); err != nil {
		t.Fatal(err)
	}
	c := f.got()[0]
	if n := len(path(c, "actions").([]any)); n != actionsMax {
		t.Errorf("%d actions", n)
	}
	if n := len(path(c, "body.2.facts").([]any)); n > factsMax {
		t.Errorf("%d facts", n)
	}
	if len(f.raw[0]) > cardBudget+512 {
		t.Errorf("message of %d bytes", len(f.raw[0]))
	}
}

func TestDeliveryErrors(t *testing.T) {
	for _, tt := range []struct {
		status     int
		retryAfter string
		body       string
		permanent  bool
		wait       time.Duration
		msg        string
	}{
		{status: 400, body: `{"error":{"code":"TriggerInputSchemaMismatch","message":"The input body for trigger 'manual' of type 'Request' did not match its schema definition"}}`,
			permanent: true, msg: "posting the card: TriggerInputSchemaMismatch: The input body"},
		{status: 401, body: `{"error":{"code":"DirectApiAuthorizationRequired","message":"sig ` + testSig + ` is invalid"}}`, permanent: true, msg: "sig [secret:webhook_url_sig] is invalid"},
		{status: 404, permanent: true},
		{status: 429, retryAfter: "11", wait: 11 * time.Second, msg: "Too Many Requests"},
		{status: 502, body: "bad gateway", msg: "posting the card: bad gateway"},
		{status: 503},
		{status: 500},
		{status: 408},
	} {
		f := newFake(t)
		f.failNext(tt.status, tt.retryAfter, tt.body)
		_, err := newNotifier(t, f.url()).Send(context.Background(), alerttest.SamplePage(alert.Trigger), "")
		var de *alert.DeliveryError
		if !errors.As(err, &de) {
			t.Fatalf("%d: %v is no DeliveryError", tt.status, err)
		}
		if de.Permanent != tt.permanent || de.Status != tt.status || de.RetryAfter != tt.wait || !strings.Contains(de.Error(), tt.msg) {
			t.Errorf("%d: got %+v (%q)", tt.status, de, de.Error())
		}
		alerttest.NoSecrets(t, err.Error(), testSig)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL + "/workflows/x/triggers/manual/paths/invoke?sig=" + testSig
	srv.Close()
	_, err := newNotifier(t, u).Send(context.Background(), alerttest.SamplePage(alert.Trigger), "")
	var de *alert.DeliveryError
	if !errors.As(err, &de) || de.Permanent || !strings.Contains(err.Error(), "Teams workflow unreachable") {
		t.Errorf("unreachable: %v", err)
	}
	alerttest.NoSecrets(t, err.Error(), testSig, u)
}

// No reachability probe: a GET may run the workflow (see Send).
func TestNoReach(t *testing.T) {
	if _, ok := newNotifier(t, "https://h.example/workflows/a/triggers/b?sig=x").(alert.Reacher); ok {
		t.Error("the Teams notifier probes its workflow URL")
	}
}

func TestDecode(t *testing.T) {
	cfg, errs := alerttest.Load(t, `{tm: {type: teams, webhook_url: "https://h.example/workflows/a/triggers/m/paths/invoke?sig={{secret:S}}"}, off: {type: teams, webhook_url: "{{secret:OPT}}"}}`, testSig, Plugin{})
	if errs != nil {
		t.Fatal(errs)
	}
	nt := cfg.Alerting.Notifiers
	if s := nt[0].Spec.(*Spec); s.WebhookURL != "https://h.example/workflows/a/triggers/m/paths/invoke?sig="+testSig || nt[0].Traits.Pages {
		t.Errorf("tm: %+v %+v", nt[0], s)
	}
	if nt[1].Disabled != "optional secret OPT is not set" {
		t.Errorf("off.Disabled = %q", nt[1].Disabled)
	}
	// It does not page: warnings go to it by default.
	if r := cfg.Alerting.Routes; len(r["warning"]) == 0 || r["warning"][0] != "tm" {
		t.Errorf("routes %v", r)
	}
	for _, tt := range []struct{ block, want string }{
		{`{x: {type: teams}}`, `probes.yaml:3:13: teams notifier x needs webhook_url (the workflow's HTTP POST URL, as {{secret:NAME}})`},
		{`{x: {type: teams, webhook_url: "{{secret:S}}"}}`, `probes.yaml:3:43: webhook_url is not an absolute https:// URL (the workflow's HTTP POST URL)`},
		{`{x: {type: teams, webhook_url: "{{secret:NOPE}}"}}`, `probes.yaml:3:44: undefined secret "NOPE" (declare it under secrets: in probes.yaml)`},
		{`{x: {type: teams, webhook_url: "https://h/{{secret:S}}", channel: "#a"}}`, `probes.yaml:3:69: channel does not apply to a teams notifier`},
	} {
		_, errs := alerttest.Load(t, tt.block, testSig, Plugin{}, slack.Plugin{})
		got := strings.Join(errs, "\n")
		if got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.block, got, tt.want)
		}
		alerttest.NoSecrets(t, got, testSig)
	}
}

func TestCheckSecrets(t *testing.T) {
	good := "https://prod-01.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=" + testSig
	for _, tt := range []struct{ url, want string }{
		{good, ""},
		{"", ""},
		{"https://default1234.12.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/abc/triggers/manual/paths/invoke?api-version=1&sp=x&sv=1.0&sig=" + testSig, ""},
		{good + "\n", "webhook_url has leading or trailing whitespace (a newline from the secret's source?)"},
		{"https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/" + testSig, "webhook_url is an Office 365 connector's (webhook.office.com), which Microsoft retired; create a Workflows webhook (Teams: Workflows, \"Post to a channel when a webhook request is received\")"},
		{strings.Replace(good, "https", "http", 1), "webhook_url is not https"},
		{"https://h.example/hook?sig=" + testSig, "webhook_url is not a Workflows trigger URL (…/workflows/<id>/triggers/manual/paths/invoke?…)"},
		{strings.TrimSuffix(good, "&sig="+testSig), "webhook_url has no sig= parameter (copied without its query?)"},
	} {
		got := strings.Join(Plugin{}.CheckSecrets(&config.Notifier{Spec: &Spec{WebhookURL: tt.url}}), "\n")
		if got != tt.want {
			t.Errorf("%.60s: %q, want %q", tt.url, got, tt.want)
		}
		alerttest.NoSecrets(t, got, testSig)
	}
	if _, err := (Plugin{}).New(&config.Notifier{Name: "tm"}, alert.NotifierOptions{}); err == nil {
		t.Error("New without a URL accepted")
	}
}

// Through the real pipeline: a 503 and a 429 are retried by the
// dispatcher; the channel gets the trigger card and the resolved card
// once each, and no log line holds the URL's signature.
func TestDispatcherRetriesOnce(t *testing.T) {
	f := newFake(t)
	f.failNext(http.StatusServiceUnavailable, "", "")
	f.failNext(http.StatusTooManyRequests, "0", `{"error":{"code":"WorkflowTriggerIsThrottled","message":"slow down"}}`)
	cfg, errs := alerttest.Load(t, `{tm: {type: teams, webhook_url: "`+strings.Replace(f.url(), testSig, "{{secret:S}}", 1)+`"}}`, testSig, Plugin{})
	if errs != nil {
		t.Fatal(errs)
	}
	logs := &alerttest.Buffer{}
	n, err := Plugin{}.New(cfg.Alerting.Notifiers[0], alert.NotifierOptions{Logger: alerttest.Logger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	alerttest.FireAndResolve(t, cfg, n, logs)
	cards := f.got()
	if len(cards) != 2 || path(cards[0], "body.0.items.0.text") != "CRITICAL: checkout_failing" || path(cards[1], "body.0.items.0.text") != "Resolved: checkout_failing" {
		t.Fatalf("cards %v", cards)
	}
	f.mu.Lock()
	posts := f.posts
	f.mu.Unlock()
	if posts != 4 {
		t.Errorf("%d posts, want 4 (a 503 and a 429 retried, then the trigger and the resolve)", posts)
	}
	if retries := logs.Lines(t, "page_retry"); len(retries) != 2 {
		t.Errorf("%d page_retry lines, want 2", len(retries))
	}
	alerttest.NoSecrets(t, logs.String(), testSig)
}
