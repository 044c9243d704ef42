package slack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/alert/alerttest"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/fakes"
)

const slackToken = "xoxb-SLACKTOKENSECRET-4242"

func blocksJSON(m fakes.SlackMessage) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(m.Blocks)
	return b.String()
}

func headerOf(m fakes.SlackMessage) string {
	for _, b := range m.Blocks {
		if b["type"] == "header" {
			if txt, ok := b["text"].(map[string]any); ok {
				s, _ := txt["text"].(string)
				return s
			}
		}
	}
	return ""
}

func TestSlackThreadFlow(t *testing.T) {
	s := fakes.NewSlack(slackToken, "#alerts")
	defer s.Close()
	n := newSlackAPI(t, s, slackToken, "#alerts", nil)
	if n.Type() != Type || n.Name() != "slack" {
		t.Errorf("Name, Type = %q, %q", n.Name(), n.Type())
	}
	ctx := context.Background()

	thread, err := n.Send(ctx, alerttest.SamplePage(alert.Trigger), "")
	if err != nil {
		t.Fatalf("trigger: %v (rejected %+v)", err, s.Rejected())
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("messages: %+v", msgs)
	}
	orig := msgs[0]
	if thread != orig.Channel+"|"+orig.TS || orig.Channel != s.ChannelID("#alerts") || orig.Via != "api" || orig.ThreadTS != "" {
		t.Errorf("thread %q, message %+v", thread, orig)
	}
	p := alerttest.SamplePage(alert.Trigger)
	if orig.Text != p.Summary {
		t.Errorf("fallback text = %q", orig.Text)
	}
	if h := headerOf(orig); h != "🔴 critical · checkout_failing" {
		t.Errorf("header = %q", h)
	}
	bj := blocksJSON(orig)
	for _, want := range []string{
		`checkout failing in 3/3 regions`,                  // summary section
		`*step*\npay`, `*gateway success*\n0% (was 99.8%)`, // fields
		`prober (regions a, b, c)`, `class: swallowed_error`, // context
		`team=payments tier=critical`, `<!date^`, // labels, since
		`<https://grafana.example/d/checkout|dashboard>`, `|logs>`, // links line
	} {
		if !strings.Contains(bj, want) {
			t.Errorf("blocks lack %q: %s", want, bj)
		}
	}

	// Reminder: a reply in the thread; the thread is kept.
	th2, err := n.Send(ctx, alerttest.SamplePage(alert.Reminder), thread)
	if err != nil || th2 != thread {
		t.Fatalf("reminder = %q, %v", th2, err)
	}
	replies := s.Thread(orig.TS)
	if len(replies) != 1 || !strings.HasPrefix(replies[0].Text, "Still failing after 2m: checkout failing") {
		t.Errorf("thread after reminder: %+v", replies)
	}

	// Resolve: the original is marked resolved in place, and a reply says so.
	th3, err := n.Send(ctx, alerttest.SamplePage(alert.Resolve), thread)
	if err != nil || th3 != "" {
		t.Fatalf("resolve = %q, %v", th3, err)
	}
	msgs = s.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages after resolve, want 3 (trigger and two replies)", len(msgs))
	}
	orig = msgs[0]
	if orig.Updates != 1 || !strings.HasPrefix(orig.UpdatedText, "Resolved: ") || headerOf(orig) != "✅ RESOLVED · checkout_failing" {
		t.Errorf("original after resolve: updates %d, text %q, header %q", orig.Updates, orig.UpdatedText, headerOf(orig))
	}
	if bj := blocksJSON(orig); !strings.Contains(bj, "*Resolved* after 2m") || !strings.Contains(bj, "~checkout failing") {
		t.Errorf("resolved blocks: %s", bj)
	}
	replies = s.Thread(orig.TS)
	if len(replies) != 2 || replies[1].Text != "✅ Resolved after 2m: "+mrkdwnEscape(p.Summary) {
		t.Errorf("thread after resolve: %+v", replies)
	}
}

func TestSlackWithoutThreadPostsAnew(t *testing.T) {
	s := fakes.NewSlack(slackToken, "#alerts")
	defer s.Close()
	n := newSlackAPI(t, s, slackToken, "#alerts", nil)
	ctx := context.Background()

	// A reminder with no thread memory posts a message and starts a thread.
	th, err := n.Send(ctx, alerttest.SamplePage(alert.Reminder), "")
	if err != nil || th == "" {
		t.Fatalf("reminder = %q, %v", th, err)
	}
	if m := s.Messages(); len(m) != 1 || m[0].ThreadTS != "" || headerOf(m[0]) != "🔁 Still failing · checkout_failing" {
		t.Errorf("messages: %+v", m)
	}
	// A resolve with no thread memory posts a resolved message.
	if th, err := n.Send(ctx, alerttest.SamplePage(alert.Resolve), ""); err != nil || th != "" {
		t.Fatalf("resolve = %q, %v", th, err)
	}
	// A resolve whose message is gone posts a new one instead.
	gone := s.ChannelID("#alerts") + "|1700000000.000001"
	if th, err := n.Send(ctx, alerttest.SamplePage(alert.Resolve), gone); err != nil || th != "" {
		t.Fatalf("resolve of a deleted message = %q, %v", th, err)
	}
	m := s.Messages()
	if len(m) != 3 || headerOf(m[1]) != "✅ RESOLVED · checkout_failing" || headerOf(m[2]) != "✅ RESOLVED · checkout_failing" || m[2].ThreadTS != "" {
		t.Errorf("messages: %+v", m)
	}
	// A reminder whose thread is gone starts a new thread.
	th, err = n.Send(ctx, alerttest.SamplePage(alert.Reminder), gone)
	if err != nil || th == gone || th == "" {
		t.Errorf("reminder on a deleted thread = %q, %v", th, err)
	}
}

func TestSlackRetriggerUpdatesInPlace(t *testing.T) {
	s := fakes.NewSlack(slackToken, "#alerts")
	defer s.Close()
	n := newSlackAPI(t, s, slackToken, "#alerts", nil)
	ctx := context.Background()
	th, err := n.Send(ctx, alerttest.SamplePage(alert.Trigger), "")
	if err != nil {
		t.Fatal(err)
	}
	p := alerttest.SamplePage(alert.Trigger)
	p.Severity = "warning"
	th2, err := n.Send(ctx, p, th)
	if err != nil || th2 != th {
		t.Fatalf("re-trigger = %q, %v", th2, err)
	}
	m := s.Messages()
	if len(m) != 2 || m[0].Updates != 1 || headerOf(m[0]) != "🟡 warning · checkout_failing" || !strings.HasPrefix(m[1].Text, "Updated after 2m") {
		t.Errorf("messages: %+v", m)
	}
}

func TestSlackWebhookFlow(t *testing.T) {
	s := fakes.NewSlack(slackToken, "#alerts")
	defer s.Close()
	n := newSlackHook(t, s.WebhookURL, nil)
	ctx := context.Background()
	for _, k := range []alert.Kind{alert.Trigger, alert.Reminder, alert.Resolve} {
		th, err := n.Send(ctx, alerttest.SamplePage(k), "")
		if err != nil || th != "" {
			t.Fatalf("%s = %q, %v (rejected %+v)", k, th, err, s.Rejected())
		}
	}
	m := s.Messages()
	if len(m) != 3 {
		t.Fatalf("messages: %+v", m)
	}
	wantHeaders := []string{"🔴 critical · checkout_failing", "🔁 Still failing · checkout_failing", "✅ RESOLVED · checkout_failing"}
	wantText := []string{"checkout failing", "Still failing: checkout failing", "Resolved: checkout failing"}
	for i, msg := range m {
		if msg.Via != "webhook" || msg.ThreadTS != "" || headerOf(msg) != wantHeaders[i] || !strings.HasPrefix(msg.Text, wantText[i]) {
			t.Errorf("message %d: via %s thread %q header %q text %q", i, msg.Via, msg.ThreadTS, headerOf(msg), msg.Text)
		}
	}
}

func TestSlackRespectsBlockKitLimits(t *testing.T) {
	s := fakes.NewSlack(slackToken, "#alerts")
	defer s.Close()
	// A 1.5 MB page: the fake's JSON parse under -race on a busy machine
	// outlasts the 2 s the other tests give a request.
	o := alert.NotifierOptions{Rate: 1000, Burst: 1000}
	n, err := newNotifier("slack", &Spec{URL: s.APIURL, Token: slackToken, Channel: "#alerts"}, 30*time.Second, o)
	if err != nil {
		t.Fatal(err)
	}
	hook, err := newNotifier("slack-hook", &Spec{WebhookURL: s.WebhookURL}, 30*time.Second, o)
	if err != nil {
		t.Fatal(err)
	}
	p := alerttest.SamplePage(alert.Trigger)
	p.Rule = strings.Repeat("r", 300)
	p.Summary = strings.Repeat("<&>", 2000)
	p.Details = nil
	for i := range 600 {
		p.Details = append(p.Details, alert.Field{Name: fmt.Sprint("detail ", i), Value: strings.Repeat("v", 2500)})
	}
	p.Links = nil
	for i := range 100 {
		p.Links = append(p.Links, alert.Link{Name: fmt.Sprint("link|", i), URL: fmt.Sprintf("https://x.example/%d?a=b|c>d", i)})
	}
	p.Labels = map[string]string{}
	for i := range 50 {
		p.Labels[fmt.Sprint("l", i)] = strings.Repeat("x", 100)
	}
	if _, err := n.Send(context.Background(), p, ""); err != nil {
		t.Fatalf("Send: %v (rejected %+v)", err, s.Rejected())
	}
	m := s.Messages()[0]
	if len(m.Blocks) > 50 {
		t.Errorf("%d blocks", len(m.Blocks))
	}
	if sum := m.Blocks[1]["text"].(map[string]any)["text"].(string); !strings.HasPrefix(sum, "&lt;&amp;&gt;") || len([]rune(sum)) < 2900 {
		t.Errorf("summary section: %d runes", len([]rune(sum)))
	}
	if !strings.Contains(blocksJSON(m), "more details not shown") {
		t.Error("no note of the details left out")
	}
	// Through the webhook too.
	if _, err := hook.Send(context.Background(), p, ""); err != nil {
		t.Fatalf("webhook Send: %v (rejected %+v)", err, s.Rejected())
	}
}

func TestSlackErrorClasses(t *testing.T) {
	tests := []struct {
		name       string
		webhook    bool
		token      string
		channel    string
		hookPath   string // replaces the webhook's path
		fault      func(s *fakes.Slack)
		warm       bool // send once before the checked Send
		permanent  bool
		status     int
		retryAfter time.Duration
		msg        string
	}{
		{name: "invalid_auth", token: "xoxb-WRONGTOKENSECRET-0000", permanent: true, msg: "invalid_auth"},
		{name: "channel_not_found", channel: "#nowhere", permanent: true, msg: "channel_not_found"},
		{name: "429 with Retry-After", fault: func(s *fakes.Slack) { s.FailNext(1, 429, 3*time.Second) }, status: 429, retryAfter: 3 * time.Second},
		{name: "rate limit of the channel", warm: true, fault: func(s *fakes.Slack) { s.SetRateLimit(1, time.Minute) }, status: 429, msg: "rate limited"},
		{name: "503", fault: func(s *fakes.Slack) { s.FailNext(1, 503, 0) }, status: 503, msg: "Service Unavailable"},
		{name: "reset", fault: func(s *fakes.Slack) { s.ResetNext(1) }, msg: "Slack unreachable"},
		{name: "webhook 503", webhook: true, fault: func(s *fakes.Slack) { s.FailNext(1, 503, 0) }, status: 503},
		{name: "webhook 429", webhook: true, fault: func(s *fakes.Slack) { s.FailNext(1, 429, 2*time.Second) }, status: 429, retryAfter: 2 * time.Second},
		{name: "webhook no_service", webhook: true, hookPath: "/services/T000/B000/WRONGHOOKSECRET", permanent: true, status: 404, msg: "no_service"},
		{name: "webhook reset", webhook: true, fault: func(s *fakes.Slack) { s.ResetNext(1) }, msg: "Slack unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakes.NewSlack(slackToken, "#alerts")
			defer s.Close()
			logs := &alerttest.Buffer{}
			hook := s.WebhookURL
			if tt.hookPath != "" {
				hook = strings.TrimSuffix(s.APIURL, "/api/") + tt.hookPath
			}
			var n alert.Notifier
			if tt.webhook {
				n = newSlackHook(t, hook, logs)
			} else {
				n = newSlackAPI(t, s, cmp.Or(tt.token, slackToken), cmp.Or(tt.channel, "#alerts"), logs)
			}
			if tt.fault != nil {
				tt.fault(s)
			}
			if tt.warm {
				if _, err := n.Send(context.Background(), alerttest.SamplePage(alert.Trigger), ""); err != nil {
					t.Fatal(err)
				}
			}
			_, err := n.Send(context.Background(), alerttest.SamplePage(alert.Trigger), "")
			var de *alert.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Send = %v, want a *alert.DeliveryError", err)
			}
			t.Logf("error: %v", err)
			if de.Permanent != tt.permanent || de.Status != tt.status || (tt.retryAfter > 0 && de.RetryAfter != tt.retryAfter) || !strings.Contains(de.Error(), tt.msg) {
				t.Errorf("got %+v (%q); want permanent=%v status=%d retryAfter=%v msg~%q", de, de.Error(), tt.permanent, tt.status, tt.retryAfter, tt.msg)
			}
			alerttest.NoSecrets(t, err.Error()+logs.String(), slackToken, "xoxb-WRONGTOKENSECRET-0000", s.WebhookURL, "/services/T000/B000/XXXX", "WRONGHOOKSECRET", hook)
		})
	}
}

// Slack's Web API answers some errors as HTTP 200 with ok:false; which
// of them are worth retrying.
func TestSlackAPIErrorCodes(t *testing.T) {
	code := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":false,"error":%q}`, code)
	}))
	defer srv.Close()
	n, err := newNotifier("s", &Spec{URL: srv.URL + "/api", Token: slackToken, Channel: "#a"}, 0, alert.NotifierOptions{Rate: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		code      string
		permanent bool
	}{
		{"invalid_auth", true}, {"not_in_channel", true}, {"msg_too_long", true}, {"invalid_blocks", true},
		{"no_text", true}, {"is_archived", true}, {"token_revoked", true},
		{"ratelimited", false}, {"internal_error", false}, {"fatal_error", false}, {"service_unavailable", false},
		{"some_new_code", false},
	} {
		code = tt.code
		_, err := n.Send(context.Background(), alerttest.SamplePage(alert.Trigger), "")
		var de *alert.DeliveryError
		if !errors.As(err, &de) || de.Permanent != tt.permanent || de.Msg != tt.code {
			t.Errorf("%s: %#v, want permanent=%v", tt.code, err, tt.permanent)
		}
	}
}

func TestNewSlackConfigErrors(t *testing.T) {
	const hook = "https://hooks.slack.example/services/T1/B1/HOOKSECRETVALUE"
	for _, cfg := range []*config.Notifier{
		{Name: "a"},
		{Name: "b", Spec: &Spec{Token: slackToken}},
		{Name: "c", Spec: &Spec{Token: slackToken, WebhookURL: hook, Channel: "#x"}},
		{Name: "d", Spec: &Spec{WebhookURL: "not a url " + hook[8:]}},
		{Name: "e", Spec: &Spec{Token: slackToken, Channel: "#x", URL: "slack.com/api"}},
	} {
		_, err := (Plugin{}).New(cfg, alert.NotifierOptions{})
		if err == nil {
			t.Errorf("%s: accepted", cfg.Name)
			continue
		}
		alerttest.NoSecrets(t, err.Error(), slackToken, "HOOKSECRETVALUE")
	}
}

// A resolve whose in-place update Slack refuses still posts its reply.
func TestSlackResolveWhenUpdateRefused(t *testing.T) {
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		calls = append(calls, r.URL.Path+" "+r.Form.Get("thread_ts"))
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "chat.update") {
			_, _ = io.WriteString(w, `{"ok":false,"error":"cant_update_message"}`)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true,"channel":"C1","ts":"2.000000"}`)
	}))
	defer srv.Close()
	logs := &alerttest.Buffer{}
	n, err := newNotifier("s", &Spec{URL: srv.URL + "/api/", Token: slackToken, Channel: "#a"}, 0, alert.NotifierOptions{Rate: 1000, Burst: 1000, Logger: alerttest.Logger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	th, err := n.Send(context.Background(), alerttest.SamplePage(alert.Resolve), "C1|1.000000")
	if err != nil || th != "" {
		t.Fatalf("Send = %q, %v", th, err)
	}
	if got := strings.Join(calls, ","); got != "/api/chat.update ,/api/chat.postMessage 1.000000" {
		t.Errorf("calls: %s", got)
	}
	if l := logs.Lines(t, "slack_update_failed"); len(l) != 1 || !strings.Contains(fmt.Sprint(l[0]["error"]), "cant_update_message") {
		t.Errorf("logs: %v", l)
	}
}

func newSlackAPI(t *testing.T, s *fakes.Slack, token, channel string, logs *alerttest.Buffer) alert.Notifier {
	t.Helper()
	o := alert.NotifierOptions{Rate: 1000, Burst: 1000}
	if logs != nil {
		o.Logger = alerttest.Logger(logs)
	}
	n, err := newNotifier("slack", &Spec{URL: s.APIURL, Token: token, Channel: channel}, 2*time.Second, o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newSlackHook(t *testing.T, url string, logs *alerttest.Buffer) alert.Notifier {
	t.Helper()
	o := alert.NotifierOptions{Rate: 1000, Burst: 1000}
	if logs != nil {
		o.Logger = alerttest.Logger(logs)
	}
	n, err := newNotifier("slack-hook", &Spec{WebhookURL: url}, 2*time.Second, o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A note that a member resolved while its incident stays open reads as
// such in Slack (thread reply, or a message of its own without a thread),
// not as "Still failing" of the resolved rule (the console's is
// console.TestMemberResolvedNote; moved here from alert with the notifier).
func TestMemberResolvedNoteRendering(t *testing.T) {
	note := alerttest.SamplePage(alert.Reminder)
	note.Note = "checkout_failing resolved (condition cleared); still firing: checkout_slo (warning)"
	const want = "checkout_failing resolved (condition cleared); still firing: checkout_slo (warning)"

	s := fakes.NewSlack(slackToken, "#alerts")
	defer s.Close()
	n := newSlackAPI(t, s, slackToken, "#alerts", nil)
	ctx := context.Background()
	thread, err := n.Send(ctx, alerttest.SamplePage(alert.Trigger), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Send(ctx, note, thread); err != nil {
		t.Fatal(err)
	}
	orig := s.Messages()[0]
	if replies := s.Thread(orig.TS); len(replies) != 1 || replies[0].Text != want {
		t.Errorf("thread reply: %+v", replies)
	}
	// No thread (the trigger went elsewhere): a message of its own.
	if _, err := n.Send(ctx, note, ""); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	last := msgs[len(msgs)-1]
	if last.Text != want || strings.Contains(headerOf(last), "Still failing") || !strings.Contains(blocksJSON(last), want) {
		t.Errorf("message without a thread: text %q, header %q", last.Text, headerOf(last))
	}
	// Through the webhook: no threads, a message of its own.
	if _, err := newSlackHook(t, s.WebhookURL, nil).Send(ctx, note, ""); err != nil {
		t.Fatal(err)
	}
	msgs = s.Messages()
	last = msgs[len(msgs)-1]
	if last.Via != "webhook" || last.Text != want || strings.Contains(headerOf(last), "Still failing") {
		t.Errorf("webhook message: text %q, header %q", last.Text, headerOf(last))
	}
}

// Moved from alert's truncation test with the notifier.
func TestMrkdwnClip(t *testing.T) {
	if got := mrkdwnClip("a<b>c&d", 10); got != "a&lt;b…" {
		t.Errorf("mrkdwnClip = %q", got)
	}
	if got := mrkdwnClip(strings.Repeat("<&>", 2000), 2960); utf8.RuneCountInString(got) > 2960 || utf8.RuneCountInString(got) < 2900 || !strings.HasPrefix(got, "&lt;&amp;&gt;") {
		t.Errorf("mrkdwnClip of 6000 specials: %d runes, %q…", utf8.RuneCountInString(got), got[:min(len(got), 20)])
	}
}

// The block decodes here with the texts config had for it.
func TestDecode(t *testing.T) {
	const secretS = "xoxb-0123456789abcdef"
	cfg, errs := alerttest.Load(t, `{api: {type: slack, token: "{{secret:S}}", channel: "#alerts", url: "http://127.0.0.1:1/api"}, hook: {type: slack, webhook_url: "{{secret:S}}"}, off: {type: slack, webhook_url: "{{secret:OPT}}"}}`, secretS, Plugin{})
	if errs != nil {
		t.Fatal(errs)
	}
	n := cfg.Alerting.Notifiers
	if s := n[0].Spec.(*Spec); s.Token != secretS || s.Channel != "#alerts" || s.URL != "http://127.0.0.1:1/api/" || n[0].Traits.Pages {
		t.Errorf("api: %+v %+v", n[0], s)
	}
	if s := n[1].Spec.(*Spec); s.WebhookURL != secretS || s.URL != "https://slack.com/api/" {
		t.Errorf("hook: %+v", s)
	}
	if n[2].Disabled != "optional secret OPT is not set" {
		t.Errorf("off.Disabled = %q", n[2].Disabled)
	}
	for _, tt := range []struct{ block, want string }{
		{`{x: {type: slack, token: "{{secret:S}}", webhook_url: "{{secret:S}}"}}`, `probes.yaml:3:13: slack notifier x needs exactly one of token (with channel) or webhook_url`},
		{`{x: {type: slack}}`, `probes.yaml:3:13: slack notifier x needs exactly one of token (with channel) or webhook_url`},
		{`{x: {type: slack, token: "{{secret:S}}"}}`, `probes.yaml:3:13: slack notifier x needs a channel to post to`},
		{`{x: {type: slack, webhook_url: "{{secret:S}}", channel: "{{secret:S}}"}}`, `probes.yaml:3:69: channel cannot use {{...}}`},
	} {
		_, errs := alerttest.Load(t, tt.block, secretS, Plugin{})
		if got := strings.Join(errs, "\n"); got != tt.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.block, got, tt.want)
		}
	}
}

// validate --secrets: a token or webhook URL of the wrong shape is named,
// never quoted.
func TestCheckSecrets(t *testing.T) {
	for _, tt := range []struct {
		spec Spec
		want string
	}{
		{Spec{Token: "xoxb-1-2-abc"}, ""},
		{Spec{Token: "xoxp-1-2-abc"}, ""},
		{Spec{Token: "xapp-1-2-abc"}, "token does not start with xoxb- (a Slack bot token) or xoxp- (a user token); app-level (xapp-) and other tokens cannot post messages"},
		{Spec{Token: "xoxb-1-2-abc\n"}, "token holds whitespace (a newline from the secret's source?)"},
		{Spec{WebhookURL: "https://hooks.slack.com/services/T1/B1/SECRETHOOK"}, ""},
		{Spec{WebhookURL: "https://hooks.slack.com/workflows/T1/SECRETHOOK"}, "webhook_url is not a Slack incoming webhook (https://hooks.slack.com/services/T…/B…/…)"},
		{Spec{WebhookURL: "https://hooks.example/any/SECRETHOOK"}, ""},
	} {
		got := strings.Join(Plugin{}.CheckSecrets(&config.Notifier{Spec: &tt.spec}), "\n")
		if got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.spec, got, tt.want)
		}
		alerttest.NoSecrets(t, got, tt.spec.Token, "SECRETHOOK")
	}
}
