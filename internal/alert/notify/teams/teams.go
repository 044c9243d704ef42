// Package teams is the Microsoft Teams notifier: each trigger, reminder
// and resolve posts an Adaptive Card to a channel or chat through a
// Workflows (Power Automate) webhook, the "Post to a channel when a
// webhook request is received" template.
//
//	notifiers:
//	  teams:
//	    type: teams
//	    webhook_url: "{{secret:TEAMS_WEBHOOK_URL}}"   # the workflow's HTTP POST URL; its sig= is the secret
//
// A Workflows webhook only posts: it cannot update, thread under or
// delete a message, and Teams keeps no incident. So every notification is
// a card of its own: the trigger (red for critical and error, yellow for
// warning), a reminder or note while the incident is open, and a green
// "Resolved" card, each naming the dedup key so the channel can tell
// incidents apart. Nothing deduplicates on Teams' side; the outbox sends
// each notification once.
package teams

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/secret"
)

// Type is the notifier type's name in probes.yaml.
const Type = "teams"

const (
	// Teams refuses a message over about 28 KB; the card stays well under.
	cardBudget = 24 << 10
	summaryMax = 2000 // characters
	factMax    = 500  // characters of a fact's value
	factsMax   = 30
	actionsMax = 6 // Teams shows no more buttons
	// CardVersion is the Adaptive Card version Teams renders everywhere
	// (desktop, web and mobile).
	CardVersion = "1.4"
	// ContentType marks an attachment as an Adaptive Card.
	ContentType = "application/vnd.microsoft.card.adaptive"
)

// Spec is a Teams notifier's block.
type Spec struct {
	WebhookURL string // resolved secret
}

// Plugin registers the teams type (daemon/notifiers.go).
type Plugin struct{}

func (Plugin) Type() string   { return Type }
func (Plugin) Keys() []string { return []string{"webhook_url"} }

// Example is a valid block, built by the daemon's tests.
func (Plugin) Example() string {
	return `{type: teams, webhook_url: "https://example.invalid/workflows/{{secret:S}}"}`
}

// Decode reads the block. The URL is a secret (its sig= signs the
// request), so a bad one is described, never quoted.
func (Plugin) Decode(b *config.NotifierBlock) any {
	s := &Spec{}
	if !b.Has("webhook_url") {
		b.Errorf("", "teams notifier %s needs webhook_url (the workflow's HTTP POST URL, as {{secret:NAME}})", b.Name())
		return s
	}
	s.WebhookURL, _ = b.Secret("webhook_url", "a Teams Workflows webhook URL")
	if s.WebhookURL != "" {
		if u, err := url.Parse(s.WebhookURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			b.Errorf("webhook_url", "webhook_url is not an absolute https:// URL (the workflow's HTTP POST URL)")
		}
	}
	return s
}

// CheckSecrets checks the resolved URL against what Workflows issues
// (validate --secrets), never quoting it: https, a workflow trigger path
// and its signature. The Office 365 connectors' URLs (webhook.office.com)
// are retired.
func (Plugin) CheckSecrets(n *config.Notifier) []string {
	s, _ := n.Spec.(*Spec)
	if s == nil || s.WebhookURL == "" {
		return nil
	}
	raw := s.WebhookURL
	if strings.TrimSpace(raw) != raw {
		return []string{"webhook_url has leading or trailing whitespace (a newline from the secret's source?)"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return []string{"webhook_url is not a URL"}
	}
	var out []string
	switch {
	case strings.HasSuffix(u.Hostname(), ".office.com") || strings.Contains(u.Path, "/webhookb2/"):
		out = append(out, "webhook_url is an Office 365 connector's (webhook.office.com), which Microsoft retired; create a Workflows webhook (Teams: Workflows, \"Post to a channel when a webhook request is received\")")
	case u.Scheme != "https":
		out = append(out, "webhook_url is not https")
	case !strings.Contains(u.Path, "/workflows/") || !strings.Contains(u.Path, "/triggers/"):
		out = append(out, "webhook_url is not a Workflows trigger URL (…/workflows/<id>/triggers/manual/paths/invoke?…)")
	case u.Query().Get("sig") == "":
		out = append(out, "webhook_url has no sig= parameter (copied without its query?)")
	}
	return out
}

// New builds the notifier of n (n.Spec is Decode's *Spec).
func (Plugin) New(n *config.Notifier, o alert.NotifierOptions) (alert.Notifier, error) {
	s, _ := n.Spec.(*Spec)
	if s == nil || s.WebhookURL == "" {
		return nil, fmt.Errorf("teams notifier %s: no webhook_url", n.Name)
	}
	sec := map[string]string{"webhook_url": s.WebhookURL}
	if u, err := url.Parse(s.WebhookURL); err == nil && u.Query().Get("sig") != "" {
		// The signature alone is the secret: an error may quote just it.
		sec["webhook_url_sig"] = u.Query().Get("sig")
	}
	return &notifier{name: n.Name, url: s.WebhookURL, hc: o.Client(n.Timeout), secrets: secret.NewSet(sec), now: time.Now}, nil
}

type notifier struct {
	name    string
	url     string
	hc      *http.Client
	secrets *secret.Set
	now     func() time.Time
}

func (n *notifier) Name() string              { return n.name }
func (n *notifier) Type() config.NotifierType { return Type }

// Send posts the card of p. There is no thread to keep: a workflow cannot
// reply to or update its post.
//
// No Reach: a GET of a workflow's URL may run the flow (a Request
// trigger takes any method unless told), which fails on an empty body and
// mails its owner; retries follow the dispatcher's backoff.
func (n *notifier) Send(ctx context.Context, p *alert.Page, thread string) (string, error) {
	body, err := json.Marshal(Message(p))
	if err != nil {
		return thread, &alert.DeliveryError{Permanent: true, Msg: "encoding the card: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return thread, &alert.DeliveryError{Permanent: true, Msg: n.secrets.Redact("posting the card: " + err.Error())}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "prober")
	resp, err := n.hc.Do(req)
	if err != nil {
		return thread, alert.TransportError("Teams workflow unreachable", err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if de := alert.HTTPDeliveryError(resp.StatusCode, resp.Header, n.secrets.Redact("posting the card: "+errorText(text, resp.StatusCode)), n.now()); de != nil {
		return thread, de
	}
	return "", nil
}

// errorText renders a Logic Apps error body
// ({"error":{"code":"TriggerInputSchemaMismatch","message":"..."}}) as
// "TriggerInputSchemaMismatch: ...".
func errorText(body []byte, status int) string {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && (e.Error.Code != "" || e.Error.Message != "") {
		return alert.Clip(strings.TrimPrefix(e.Error.Code+": "+e.Error.Message, ": "), 1000)
	}
	if t := strings.TrimSpace(string(body)); t != "" {
		return alert.Clip(strings.Join(strings.Fields(t), " "), 500)
	}
	return http.StatusText(status)
}

// A message with one Adaptive Card attachment, as Workflows' "Post card
// in a chat or channel" takes it.
type message struct {
	Type        string       `json:"type"` // "message"
	Attachments []attachment `json:"attachments"`
}

type attachment struct {
	ContentType string  `json:"contentType"`
	ContentURL  *string `json:"contentUrl"` // null: the card is inline
	Content     *Card   `json:"content"`
}

// Card is an Adaptive Card.
type Card struct {
	Schema  string         `json:"$schema"`
	Type    string         `json:"type"` // "AdaptiveCard"
	Version string         `json:"version"`
	MSTeams map[string]any `json:"msteams,omitempty"`
	Body    []Element      `json:"body"`
	Actions []Action       `json:"actions,omitempty"`
}

// Element is a TextBlock, FactSet or Container of the card's body.
type Element struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	Size     string    `json:"size,omitempty"`
	Weight   string    `json:"weight,omitempty"`
	Color    string    `json:"color,omitempty"`
	IsSubtle bool      `json:"isSubtle,omitempty"`
	Wrap     bool      `json:"wrap,omitempty"`
	Spacing  string    `json:"spacing,omitempty"`
	Style    string    `json:"style,omitempty"`
	Bleed    bool      `json:"bleed,omitempty"`
	Items    []Element `json:"items,omitempty"`
	Facts    []Fact    `json:"facts,omitempty"`
}

// Fact is one title: value line of a FactSet.
type Fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// Action opens a link.
type Action struct {
	Type  string `json:"type"` // "Action.OpenUrl"
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Message is the payload posted for p.
func Message(p *alert.Page) any {
	return &message{Type: "message", Attachments: []attachment{{ContentType: ContentType, Content: card(p)}}}
}

// style is the colour of p: the container style and the title's colour.
func style(p *alert.Page) (container, color string) {
	if p.Kind == alert.Resolve {
		return "good", "good"
	}
	switch strings.ToLower(p.Severity) {
	case "warning":
		return "warning", "warning"
	case "info":
		return "accent", "accent"
	}
	return "attention", "attention" // critical, error, unknown
}

func card(p *alert.Page) *Card {
	summary := alert.TruncateRunes(cmp.Or(strings.TrimSpace(p.Summary), cmp.Or(p.Rule, p.DedupKey)+" firing"), summaryMax)
	sev := strings.ToUpper(cmp.Or(p.Severity, "critical"))
	var title, text string
	switch p.Kind {
	case alert.Resolve:
		title, text = "Resolved: "+cmp.Or(p.Rule, p.DedupKey), summary
		if !p.Since.IsZero() && p.At.After(p.Since) {
			text = "Resolved after " + p.At.Sub(p.Since).Round(time.Second).String() + ". " + summary
		}
	case alert.Reminder:
		title, text = sev+" still failing: "+cmp.Or(p.Rule, p.DedupKey), summary
		if p.Note != "" {
			title, text = "Note: "+cmp.Or(p.Rule, p.DedupKey), alert.TruncateRunes(p.Note, summaryMax)
		}
	default:
		title, text = sev+": "+cmp.Or(p.Rule, p.DedupKey), summary
	}
	cont, color := style(p)
	facts := []Fact{}
	add := func(t, v string) {
		if v != "" && len(facts) < factsMax {
			facts = append(facts, Fact{Title: t, Value: alert.TruncateRunes(v, factMax)})
		}
	}
	add("severity", p.Severity)
	// The component is the flow or the dependency, which the details
	// name as such when the lifecycle rendered them.
	if !slices.ContainsFunc(p.Details, func(f alert.Field) bool {
		return (f.Name == "flow" || f.Name == "dependency") && f.Value == p.Component
	}) {
		add("component", p.Component)
	}
	add("class", p.Class)
	add("source", p.Source)
	for _, f := range p.Details {
		if f.Name == "class" && f.Value == p.Class || f.Name == "severity" {
			continue // shown above
		}
		add(cmp.Or(f.Name, "detail"), f.Value)
	}
	c := &Card{
		Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
		Type:    "AdaptiveCard",
		Version: CardVersion,
		MSTeams: map[string]any{"width": "Full"},
		Body: []Element{
			{Type: "Container", Style: cont, Bleed: true, Items: []Element{
				{Type: "TextBlock", Text: alert.TruncateRunes(title, 200), Size: "Large", Weight: "Bolder", Color: color, Wrap: true},
			}},
			{Type: "TextBlock", Text: text, Wrap: true},
			{Type: "FactSet", Facts: facts},
			{Type: "TextBlock", Text: "dedup key " + p.DedupKey + " · prober", Size: "Small", IsSubtle: true, Wrap: true, Spacing: "Medium"},
		},
	}
	for _, l := range p.Links {
		if l.URL != "" && len(c.Actions) < actionsMax {
			c.Actions = append(c.Actions, Action{Type: "Action.OpenUrl", Title: alert.TruncateRunes(cmp.Or(l.Name, "link"), 40), URL: l.URL})
		}
	}
	// Within Teams' message size: drop facts from the end, then shorten
	// the text.
	for size(c) > cardBudget && len(c.Body[2].Facts) > 0 {
		c.Body[2].Facts = c.Body[2].Facts[:len(c.Body[2].Facts)-1]
	}
	if size(c) > cardBudget {
		c.Body[1].Text = alert.TruncateRunes(c.Body[1].Text, 200)
	}
	if len(c.Body[2].Facts) == 0 {
		c.Body = append(c.Body[:2], c.Body[3])
	}
	return c
}

func size(c *Card) int {
	b, _ := json.Marshal(c)
	return len(b)
}
