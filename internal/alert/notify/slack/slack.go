// Package slack is the Slack notifier: with a bot token it posts to a
// channel through the Web API, threads reminders and the resolve under the
// trigger and updates the trigger in place when it resolves; with an
// incoming webhook it posts each page as a new message.
//
//	notifiers:
//	  slack:
//	    type: slack
//	    token: "{{secret:SLACK_BOT_TOKEN}}"   # xoxb-...
//	    channel: "#payments-oncall"
//	  slack-hook:
//	    type: slack
//	    webhook_url: "{{secret:SLACK_WEBHOOK_URL}}"
package slack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/secret"
)

const (
	defaultAPI = "https://slack.com/api/"
	// Slack's limits (Block Kit reference; chat.postMessage).
	slackHeaderMax      = 150  // header block text
	slackTextMax        = 3000 // section and context text
	slackFieldMax       = 2000 // one section field
	slackFieldsPerBlock = 10
	slackBlocksMax      = 50
	slackContextMax     = 10 // elements in a context block
	// Slack allows about one message a second per channel, short bursts
	// tolerated.
	slackRatePerSec = 1.0
	slackBurst      = 3
)

type slackNotifier struct {
	name    string
	api     *slack.Client // bot token: threads and updates
	channel string
	webhook string // incoming webhook instead of api
	apiBase string // the Web API base, for the reachability probe
	hc      *http.Client
	limiter *alert.Limiter
	secrets *secret.Set
	log     *slog.Logger
}

// Type is the notifier type's name in probes.yaml.
const Type = "slack"

// Spec is a Slack notifier's block: Token with Channel, or WebhookURL.
type Spec struct {
	URL        string // the Web API base, default https://slack.com/api/
	Token      string // bot token (xoxb-...), resolved secret
	Channel    string // with Token
	WebhookURL string // incoming webhook, resolved secret
}

// Plugin registers the slack type (daemon/notifiers.go).
type Plugin struct{}

func (Plugin) Type() string   { return Type }
func (Plugin) Keys() []string { return []string{"url", "token", "channel", "webhook_url"} }

// Example is a valid block, built by the daemon's tests.
func (Plugin) Example() string { return `{type: slack, token: "{{secret:S}}", channel: "#a"}` }

// Decode reads the block.
func (Plugin) Decode(b *config.NotifierBlock) any {
	s := &Spec{}
	s.URL, _ = b.URLSecretsIn("url", "routing_key, token or webhook_url")
	s.Token, _ = b.Secret("token", "a Slack bot token")
	s.WebhookURL, _ = b.Secret("webhook_url", "a Slack webhook URL")
	s.Channel, _ = b.String("channel", "a Slack channel")
	hasToken, hasHook := b.Has("token"), b.Has("webhook_url")
	switch {
	case hasToken == hasHook:
		b.Errorf("", "slack notifier %s needs exactly one of token (with channel) or webhook_url", b.Name())
	case hasToken && !b.Has("channel"):
		b.Errorf("", "slack notifier %s needs a channel to post to", b.Name())
	}
	if s.URL == "" {
		s.URL = defaultAPI
	} else if !strings.HasSuffix(s.URL, "/") {
		s.URL += "/" // slack-go joins method names onto it
	}
	return s
}

// CheckSecrets checks the resolved token or webhook URL against the
// shapes Slack issues (validate --secrets), never quoting them.
func (Plugin) CheckSecrets(n *config.Notifier) []string {
	s, _ := n.Spec.(*Spec)
	if s == nil {
		return nil
	}
	var out []string
	if t := s.Token; t != "" {
		switch {
		case strings.TrimSpace(t) != t || strings.ContainsAny(t, " \t\r\n"):
			out = append(out, "token holds whitespace (a newline from the secret's source?)")
		case strings.HasPrefix(t, "xoxb-"), strings.HasPrefix(t, "xoxp-"):
		default:
			out = append(out, "token does not start with xoxb- (a Slack bot token) or xoxp- (a user token); app-level (xapp-) and other tokens cannot post messages")
		}
	}
	if w := s.WebhookURL; w != "" {
		u, err := url.Parse(w)
		if err == nil && u.Host == "hooks.slack.com" {
			parts := strings.Split(strings.Trim(u.Path, "/"), "/")
			if u.Scheme != "https" || len(parts) != 4 || parts[0] != "services" || parts[3] == "" {
				out = append(out, "webhook_url is not a Slack incoming webhook (https://hooks.slack.com/services/T…/B…/…)")
			}
		}
	}
	return out
}

// New builds the notifier of n (n.Spec is Decode's *Spec).
func (Plugin) New(n *config.Notifier, o alert.NotifierOptions) (alert.Notifier, error) {
	s, _ := n.Spec.(*Spec)
	if s == nil {
		s = &Spec{}
	}
	return newNotifier(n.Name, s, n.Timeout, o)
}

func newNotifier(name string, s *Spec, timeout time.Duration, o alert.NotifierOptions) (*slackNotifier, error) {
	cfg := struct{ Name, URL, Token, Channel, WebhookURL string }{name, s.URL, s.Token, s.Channel, s.WebhookURL}
	n := &slackNotifier{
		name:    cfg.Name,
		channel: cfg.Channel,
		hc:      o.Client(timeout),
		limiter: o.Limiter(slackRatePerSec, slackBurst),
		log:     o.Log(),
	}
	secrets := map[string]string{}
	switch {
	case cfg.Token != "" && cfg.WebhookURL != "":
		return nil, fmt.Errorf("notifier %q: slack takes a token or a webhook URL, not both", cfg.Name)
	case cfg.Token != "":
		if cfg.Channel == "" {
			return nil, fmt.Errorf("notifier %q: slack with a token needs a channel", cfg.Name)
		}
		base := cmp.Or(cfg.URL, defaultAPI)
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("notifier %q: slack api url %q: want http(s)://host/api/", cfg.Name, base)
		}
		if !strings.HasSuffix(base, "/") {
			base += "/" // slack-go appends the method name to the base as is
		}
		n.apiBase = base
		n.api = slack.New(cfg.Token, slack.OptionAPIURL(base), slack.OptionHTTPClient(n.hc))
		secrets["slack_token"] = cfg.Token
	case cfg.WebhookURL != "":
		u, err := url.Parse(cfg.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Never echo the URL: it is the secret.
			return nil, fmt.Errorf("notifier %q: slack webhook URL is not an http(s) URL", cfg.Name)
		}
		n.webhook = cfg.WebhookURL
		secrets["slack_webhook"] = cfg.WebhookURL
		// Its path (and last segment) is the secret part too, should an
		// error quote it without the host.
		if len(u.Path) > 1 {
			secrets["slack_webhook_path"] = u.Path
		}
		if last := path.Base(u.Path); len(last) >= 8 {
			secrets["slack_webhook_secret"] = last
		}
	default:
		return nil, fmt.Errorf("notifier %q: slack needs a token and channel, or a webhook URL", cfg.Name)
	}
	n.secrets = secret.NewSet(secrets)
	return n, nil
}

func (n *slackNotifier) Name() string              { return n.name }
func (n *slackNotifier) Type() config.NotifierType { return Type }

// Send posts p. thread is "channel|ts" of the incident's first message.
func (n *slackNotifier) Send(ctx context.Context, p *alert.Page, thread string) (string, error) {
	if n.api == nil {
		return "", n.sendWebhook(ctx, p)
	}
	ch, ts, threaded := strings.Cut(thread, "|")
	threaded = threaded && ch != "" && ts != ""
	switch p.Kind {
	case alert.Trigger:
		if threaded {
			// Fired again while its message is open (e.g. a changed
			// severity): refresh the message in place, note it in the
			// thread.
			err := n.update(ctx, ch, ts, slackFallback(p, ""), slackBlocks(p, stateFiring))
			if err == nil {
				_, _, err = n.post(ctx, ch, slackReply("Updated", p), nil, ts)
				return thread, err
			}
			if !slackGone(err) {
				return thread, err
			}
			// The message was deleted: post a new one.
		}
		ch, ts, err := n.post(ctx, n.channel, slackFallback(p, ""), slackBlocks(p, stateFiring), "")
		if err != nil {
			return thread, err
		}
		return ch + "|" + ts, nil
	case alert.Reminder:
		reply, text, state := slackReply("Still failing", p), slackFallback(p, "Still failing: "), stateReminder
		if p.Note != "" {
			reply, text, state = mrkdwnClip(p.Note, slackTextMax), mrkdwnClip(p.Note, slackTextMax), stateNote
		}
		if threaded {
			_, _, err := n.post(ctx, ch, reply, nil, ts)
			if err == nil || !slackGone(err) {
				return thread, err
			}
		}
		// No message to thread under (trigger lost, sent elsewhere, or
		// deleted): post one, and thread what follows under it.
		ch, ts, err := n.post(ctx, n.channel, text, slackBlocks(p, state), "")
		if err != nil {
			return thread, err
		}
		return ch + "|" + ts, nil
	case alert.Resolve:
		if threaded {
			// Update first: it is idempotent, so a retry after a failed
			// reply does not post the reply twice.
			err := n.update(ctx, ch, ts, slackFallback(p, "Resolved: "), slackBlocks(p, stateResolved))
			switch {
			case err == nil:
			case slackGone(err):
				threaded = false
			case isPermanent(err):
				n.log.Warn("slack_update_failed", "notifier", n.name, "dedup_key", p.DedupKey, "error", err.Error())
			default:
				return thread, err
			}
		}
		if threaded {
			_, _, err := n.post(ctx, ch, "✅ "+slackReply("Resolved", p), nil, ts)
			if err == nil {
				return "", nil
			}
			if !slackGone(err) {
				return thread, err
			}
		}
		if _, _, err := n.post(ctx, n.channel, slackFallback(p, "Resolved: "), slackBlocks(p, stateResolved), ""); err != nil {
			return thread, err
		}
		return "", nil
	}
	return thread, &alert.DeliveryError{Permanent: true, Msg: fmt.Sprintf("unknown notification kind %q", p.Kind)}
}

// sendWebhook posts p through the incoming webhook: no threads and no
// updates, so every kind is a new message.
func (n *slackNotifier) sendWebhook(ctx context.Context, p *alert.Page) error {
	state, prefix := stateFiring, ""
	switch p.Kind {
	case alert.Reminder:
		state, prefix = stateReminder, "Still failing: "
		if p.Note != "" {
			state, prefix = stateNote, ""
		}
	case alert.Resolve:
		state, prefix = stateResolved, "Resolved: "
	}
	if err := n.limiter.Wait(ctx); err != nil {
		return &alert.DeliveryError{Msg: "waiting for Slack's rate limit: " + err.Error()}
	}
	text := slackFallback(p, prefix)
	if state == stateNote {
		text = mrkdwnClip(p.Note, slackTextMax)
	}
	msg := &slack.WebhookMessage{
		Text:   text,
		Blocks: &slack.Blocks{BlockSet: slackBlocks(p, state)},
	}
	cctx, c := alert.CaptureResponse(ctx)
	// PostWebhookCustomHTTPContext is PostWebhookContext with our client
	// (timeout, error bodies) instead of http.DefaultClient.
	if err := slack.PostWebhookCustomHTTPContext(cctx, n.webhook, n.hc, msg); err != nil {
		return n.classify(err, c)
	}
	return nil
}

func (n *slackNotifier) post(ctx context.Context, channel, text string, blocks []slack.Block, threadTS string) (string, string, error) {
	if err := n.limiter.Wait(ctx); err != nil {
		return "", "", &alert.DeliveryError{Msg: "waiting for Slack's rate limit: " + err.Error()}
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl()}
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	cctx, c := alert.CaptureResponse(ctx)
	ch, ts, err := n.api.PostMessageContext(cctx, channel, opts...)
	if err != nil {
		return "", "", n.classify(err, c)
	}
	return cmp.Or(ch, channel), ts, nil
}

func (n *slackNotifier) update(ctx context.Context, channel, ts, text string, blocks []slack.Block) error {
	cctx, c := alert.CaptureResponse(ctx)
	_, _, _, err := n.api.UpdateMessageContext(cctx, channel, ts, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
	if err != nil {
		return n.classify(err, c)
	}
	return nil
}

// Slack's error codes that resending the same request cannot fix.
var slackPermanent = map[string]bool{
	"invalid_auth": true, "not_authed": true, "account_inactive": true, "token_revoked": true,
	"token_expired": true, "no_permission": true, "missing_scope": true, "not_allowed_token_type": true,
	"ekm_access_denied": true, "org_login_required": true, "two_factor_setup_required": true,
	"access_denied": true, "team_access_not_granted": true, "invalid_token": true,
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "channel_is_archived": true,
	"msg_too_long": true, "msg_blocks_too_long": true, "invalid_blocks": true, "invalid_blocks_format": true,
	"no_text": true, "too_many_attachments": true, "invalid_attachments": true,
	"invalid_arguments": true, "invalid_arg_name": true, "invalid_array_arg": true, "invalid_charset": true,
	"invalid_form_data": true, "invalid_post_type": true, "missing_post_type": true,
	"restricted_action": true, "restricted_action_read_only_channel": true,
	"restricted_action_thread_only_channel": true, "restricted_action_non_threadable_channel": true,
	"cant_update_message": true, "message_not_found": true, "edit_window_closed": true,
	"as_user_not_supported": true, "posting_to_general_channel_denied": true,
	"slack_connect_channel_ref_blocked": true, "method_deprecated": true, "deprecated_endpoint": true,
	"invalid_metadata_format": true, "invalid_metadata_schema": true, "metadata_too_large": true,
	"thread_not_found": true,
	// incoming webhooks answer these as plain text with a 4xx
	"invalid_payload": true, "no_service": true, "no_service_id": true, "no_team": true,
	"team_disabled": true, "action_prohibited": true, "user_not_found": true,
}

// classify maps a slack-go error to a DeliveryError. Error codes Slack
// might add later are retried: a page that keeps retrying shows in logs and
// metrics, a dead letter by mistake is a page lost.
func (n *slackNotifier) classify(err error, c *alert.Captured) *alert.DeliveryError {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &alert.DeliveryError{Status: http.StatusTooManyRequests, RetryAfter: rl.RetryAfter, Msg: "rate limited"}
	}
	if c.Status != 0 && c.Status != http.StatusOK {
		text := strings.Join(strings.Fields(string(c.Body)), " ")
		de := &alert.DeliveryError{Status: c.Status, Msg: alert.Clip(n.secrets.Redact(cmp.Or(text, http.StatusText(c.Status))), 500)}
		switch {
		case c.Status == http.StatusTooManyRequests:
			de.RetryAfter = alert.RetryAfter(c.Header, time.Now())
		case c.Status == http.StatusRequestTimeout || c.Status >= 500:
		case c.Status >= 400:
			de.Permanent = true
		}
		return de
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		msg := se.Err
		if m := se.ResponseMetadata.Messages; len(m) > 0 {
			msg += " (" + strings.Join(m, "; ") + ")"
		}
		return &alert.DeliveryError{Permanent: slackPermanent[se.Err], Msg: alert.Clip(n.secrets.Redact(msg), 1000)}
	}
	if c.Status == http.StatusOK {
		// Answered 200 but unreadable: it may have posted; retrying may
		// post twice, not retrying may lose the page. Retry.
		return &alert.DeliveryError{Status: c.Status, Msg: n.secrets.Redact("unreadable answer: " + err.Error())}
	}
	return &alert.DeliveryError{Msg: n.secrets.Redact("Slack unreachable: " + alert.TransportText(err))}
}

// slackGone says the message to update no longer exists.
func slackGone(err error) bool {
	var de *alert.DeliveryError
	if !errors.As(err, &de) || !de.Permanent {
		return false
	}
	code, _, _ := strings.Cut(de.Msg, " ")
	return code == "message_not_found" || code == "thread_not_found" || code == "channel_not_found"
}

func isPermanent(err error) bool {
	var de *alert.DeliveryError
	return errors.As(err, &de) && de.Permanent
}

// The Slack message layout:
//
//	header   "🔴 critical · checkout_failing"         (✅ RESOLVED · …, 🔁 Still failing · …)
//	section  the summary (struck through once resolved, with "Resolved after 47m")
//	section  the details as fields "*name*\nvalue", 10 per section
//	context  source · since <date> · class · labels
//	section  links: "<url|dashboard> · <url|logs>"
//
// Reminders and the resolve are also replies in the trigger's thread
// ("Still failing after 1h5m: …", "✅ Resolved after 47m: …").

type slackState int

const (
	stateFiring slackState = iota
	stateReminder
	stateResolved
	stateNote // a note about the incident (alert.Page.Note): a member resolved
)

var severityEmoji = map[string]string{"critical": "🔴", "error": "🟠", "warning": "🟡", "info": "🔵"}

func slackBlocks(p *alert.Page, state slackState) []slack.Block {
	title := cmp.Or(p.Rule, p.DedupKey, "alert")
	var header string
	switch state {
	case stateResolved:
		header = "✅ RESOLVED · " + title
	case stateReminder:
		header = "🔁 Still failing · " + title
	case stateNote:
		header = "📝 Update · " + cmp.Or(p.Group, title)
	default:
		header = cmp.Or(severityEmoji[strings.ToLower(p.Severity)], "⚪") + " " + cmp.Or(p.Severity, "alert") + " · " + title
	}
	blocks := []slack.Block{slack.NewHeaderBlock(plain(alert.TruncateRunes(header, slackHeaderMax)))}

	summary := mrkdwnClip(cmp.Or(p.Summary, title+" firing"), slackTextMax-40)
	if state == stateNote {
		summary = mrkdwnClip(p.Note, slackTextMax-40)
	}
	switch state {
	case stateResolved:
		if !strings.ContainsAny(summary, "~\n") {
			summary = "~" + summary + "~"
		}
		if d := slackFor(p); d != "" {
			summary = "*Resolved* after " + d + "\n" + summary
		} else {
			summary = "*Resolved*\n" + summary
		}
	case stateReminder:
		if d := slackFor(p); d != "" {
			summary = "*Still failing* after " + d + "\n" + summary
		}
	}
	blocks = append(blocks, section(alert.TruncateRunes(summary, slackTextMax)))

	var tail []slack.Block
	if ctx := slackContext(p); ctx != nil {
		tail = append(tail, ctx)
	}
	if links := slackLinks(p.Links); links != "" {
		tail = append(tail, section(links))
	}

	// Fields, 10 per section, within the 50-block limit.
	room := slackBlocksMax - len(blocks) - len(tail)
	var fields []*slack.TextBlockObject
	for _, f := range p.Details[:min(len(p.Details), room*slackFieldsPerBlock+1)] {
		name := mrkdwnClip(cmp.Or(f.Name, "detail"), 200)
		text := "*" + name + "*\n" + mrkdwnClip(cmp.Or(f.Value, "-"), slackFieldMax-len([]rune(name))-3)
		fields = append(fields, mrkdwn(text))
	}
	for len(fields) > 0 && room > 0 {
		k := min(len(fields), slackFieldsPerBlock)
		if room == 1 && len(fields) > slackFieldsPerBlock {
			k = slackFieldsPerBlock - 1
			shown := len(p.Details) - len(fields) + k
			fields = append(fields[:k:k], mrkdwn(fmt.Sprintf("_%d more details not shown_", len(p.Details)-shown)))
			k++
		}
		blocks = append(blocks, slack.NewSectionBlock(nil, fields[:k], nil))
		fields = fields[k:]
		room--
	}
	return append(blocks, tail...)
}

func slackContext(p *alert.Page) *slack.ContextBlock {
	var els []slack.MixedElement
	add := func(s string) {
		if s != "" && len(els) < slackContextMax {
			els = append(els, mrkdwn(alert.TruncateRunes(s, slackTextMax)))
		}
	}
	add(mrkdwnEscape(p.Source))
	if !p.Since.IsZero() {
		add("since " + slackDate(p.Since))
	}
	if p.Class != "" {
		add("class: " + mrkdwnEscape(p.Class))
	}
	if p.Component != "" {
		add("component: " + mrkdwnEscape(p.Component))
	}
	if len(p.Labels) > 0 {
		keys := make([]string, 0, len(p.Labels))
		for k := range p.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = mrkdwnEscape(k + "=" + p.Labels[k])
		}
		add(strings.Join(parts, " "))
	}
	if len(els) == 0 {
		return nil
	}
	return slack.NewContextBlock("", els...)
}

// slackLinks renders links as one mrkdwn line (link buttons would need an
// interactivity endpoint to acknowledge clicks).
func slackLinks(links []alert.Link) string {
	var parts []string
	n := 0
	for _, l := range links {
		if !strings.HasPrefix(l.URL, "http://") && !strings.HasPrefix(l.URL, "https://") {
			continue
		}
		u := strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C").Replace(l.URL)
		name := strings.NewReplacer("|", "¦", ">", "›", "<", "‹").Replace(cmp.Or(l.Name, "link"))
		part := "<" + u + "|" + mrkdwnEscape(name) + ">"
		if n+len([]rune(part))+3 > slackTextMax {
			break
		}
		n += len([]rune(part)) + 3
		parts = append(parts, part)
	}
	return strings.Join(parts, " · ")
}

// slackFallback is the message's plain text: what notifications, screen
// readers and clients without blocks show.
func slackFallback(p *alert.Page, prefix string) string {
	return mrkdwnClip(prefix+cmp.Or(p.Summary, cmp.Or(p.Rule, p.DedupKey)+" firing"), slackTextMax)
}

// slackReply is a thread reply: "Resolved after 47m: <summary>".
func slackReply(what string, p *alert.Page) string {
	if d := slackFor(p); d != "" {
		what += " after " + d
	}
	return mrkdwnClip(what+": "+cmp.Or(p.Summary, cmp.Or(p.Rule, p.DedupKey)), slackTextMax)
}

// slackFor is how long the condition has held (until p.At).
func slackFor(p *alert.Page) string { return alert.Elapsed(p) }

// slackDate shows t in the reader's time zone, with a UTC fallback.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// mrkdwnClip escapes s and cuts it to at most n runes without splitting
// an entity: the raw text is cut, then escaped.
func mrkdwnClip(s string, n int) string {
	raw := n
	for {
		e := mrkdwnEscape(alert.TruncateRunes(s, raw))
		l := utf8.RuneCountInString(e)
		if l <= n || raw <= 1 {
			return e
		}
		// Shrink in proportion to the expansion, at least by one.
		raw = max(min(raw*n/l, raw-1), 1)
	}
}

// mrkdwnEscape escapes the three characters Slack's mrkdwn reserves.
func mrkdwnEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(text), nil, nil)
}

// Reach asks api.test (which needs no token and posts nothing), or the
// webhook with a GET (which posts nothing either).
func (n *slackNotifier) Reach(ctx context.Context) error {
	if n.api == nil {
		return alert.ReachHTTP(ctx, n.hc, n.webhook)
	}
	return alert.ReachHTTP(ctx, n.hc, strings.TrimSuffix(n.apiBase, "/")+"/api.test")
}
