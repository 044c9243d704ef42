// Package opsgenie is the Opsgenie notifier (Alert API v2): a trigger
// creates the alert whose alias is the incident's dedup key (Opsgenie
// deduplicates an open alert by alias: a second create counts, it does not
// page again), a reminder or a note about the incident adds a note to it,
// a resolve closes it by alias.
//
//	notifiers:
//	  opsgenie:
//	    type: opsgenie
//	    api_key: "{{secret:OPSGENIE_API_KEY}}"   # an API integration's key
//	    api_url: https://api.eu.opsgenie.com     # optional: the EU instance
//
// Priority follows severity: critical P1, error P2, warning P3, info P5;
// an unknown severity is P1 (a misspelt severity must not silence a page).
// A trigger of higher priority for an alert already sent at a lower one
// (an escalation) raises its priority as well: a create of an existing
// alias does not change it.
//
// Plain net/http, not Opsgenie's Go SDK: the SDK retries on its own (the
// dispatcher's outbox does that here, durably) and pulls in a logger and
// a retrying HTTP client.
package opsgenie

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/secret"
)

// Type is the notifier type's name in probes.yaml.
const Type = "opsgenie"

const (
	defaultAPI = "https://api.opsgenie.com"
	// Opsgenie's documented field limits (Create Alert): longer values are
	// cut by Opsgenie, or the request is refused; we cut them first.
	messageMax     = 130 // characters
	descriptionMax = 15000
	sourceMax      = 100
	entityMax      = 512
	noteMax        = 25000
	tagsMax        = 20
	tagMax         = 50
	detailsMax     = 8000 // characters of all keys and values
	user           = "prober"
)

// Spec is an Opsgenie notifier's block.
type Spec struct {
	APIURL string // the API's base, default https://api.opsgenie.com
	APIKey string // resolved secret
}

// Plugin registers the opsgenie type (daemon/notifiers.go).
type Plugin struct{}

func (Plugin) Type() string   { return Type }
func (Plugin) Keys() []string { return []string{"api_url", "api_key"} }

// Traits: it wakes someone (so warnings stay out of its default route).
// Notes show in the alert's activity log.
func (Plugin) Traits() config.NotifierTraits { return config.NotifierTraits{Pages: true} }

// Example is a valid block, built by the daemon's tests.
func (Plugin) Example() string { return `{type: opsgenie, api_key: "{{secret:S}}"}` }

// Decode reads the block.
func (Plugin) Decode(b *config.NotifierBlock) any {
	s := &Spec{}
	s.APIURL, _ = b.URLSecretsIn("api_url", "api_key")
	s.APIKey, _ = b.Secret("api_key", "an Opsgenie API key")
	if !b.Has("api_key") {
		b.Errorf("", "opsgenie notifier %s needs api_key (use {{secret:NAME}})", b.Name())
	}
	s.APIURL = strings.TrimSuffix(cmp.Or(s.APIURL, defaultAPI), "/")
	return s
}

// CheckSecrets checks the resolved key against the shape Opsgenie issues
// (validate --secrets): an API key is a UUID. It never quotes the key.
func (Plugin) CheckSecrets(n *config.Notifier) []string {
	s, _ := n.Spec.(*Spec)
	if s == nil || s.APIKey == "" {
		return nil // not resolved: Load said why
	}
	k := s.APIKey
	if strings.TrimSpace(k) != k {
		return []string{"api_key has leading or trailing whitespace (a newline from the secret's source?)"}
	}
	if !isUUID(k) {
		return []string{fmt.Sprintf("api_key is %d characters and not a UUID; an Opsgenie API key is 36 (8-4-4-4-12 hexadecimal digits)", utf8.RuneCountInString(k))}
	}
	return nil
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// New builds the notifier of n (n.Spec is Decode's *Spec).
func (Plugin) New(n *config.Notifier, o alert.NotifierOptions) (alert.Notifier, error) {
	s, _ := n.Spec.(*Spec)
	if s == nil || s.APIKey == "" {
		return nil, fmt.Errorf("opsgenie notifier %s: no api_key", n.Name)
	}
	return &notifier{name: n.Name, base: strings.TrimSuffix(cmp.Or(s.APIURL, defaultAPI), "/"), key: s.APIKey,
		hc: o.Client(n.Timeout), secrets: secret.NewSet(map[string]string{"api_key": s.APIKey}), now: time.Now}, nil
}

type notifier struct {
	name    string
	base    string
	key     string
	hc      *http.Client
	secrets *secret.Set
	now     func() time.Time
}

func (n *notifier) Name() string              { return n.name }
func (n *notifier) Type() config.NotifierType { return Type }

// Send creates, notes or closes the alert p.DedupKey. The thread kept is
// the priority last sent ("P3"), so that an escalation raises it.
func (n *notifier) Send(ctx context.Context, p *alert.Page, thread string) (string, error) {
	alias := url.PathEscape(p.DedupKey)
	switch p.Kind {
	case alert.Trigger:
		pr := Priority(p.Severity)
		if err := n.post(ctx, "creating the alert", http.MethodPost, "/v2/alerts", createBody(p, pr)); err != nil {
			return thread, err
		}
		// A create of an open alias only counts; an escalation raises the
		// priority itself. A retry of this after a failed raise creates
		// again, which Opsgenie deduplicates by alias.
		if thread != "" && pr < thread {
			if err := n.post(ctx, "raising the alert's priority", http.MethodPut, "/v2/alerts/"+alias+"/priority?identifierType=alias",
				map[string]string{"priority": pr}); err != nil {
				return thread, err
			}
		}
		if thread != "" && thread < pr {
			pr = thread // a lower severity joining keeps the alert's priority
		}
		return pr, nil
	case alert.Reminder:
		note := "Still failing: " + p.Summary
		if p.Note != "" {
			note = p.Note
		}
		body := map[string]string{"user": user, "source": source(p), "note": alert.TruncateRunes(note, noteMax)}
		return thread, n.post(ctx, "adding a note", http.MethodPost, "/v2/alerts/"+alias+"/notes?identifierType=alias", body)
	case alert.Resolve:
		body := map[string]string{"user": user, "source": source(p), "note": alert.TruncateRunes(resolveNote(p), noteMax)}
		return "", n.post(ctx, "closing the alert", http.MethodPost, "/v2/alerts/"+alias+"/close?identifierType=alias", body)
	}
	return thread, &alert.DeliveryError{Permanent: true, Msg: fmt.Sprintf("unknown notification kind %q", p.Kind)}
}

// post sends one request; what says what it was for, in the error.
func (n *notifier) post(ctx context.Context, what, method, path string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return &alert.DeliveryError{Permanent: true, Msg: what + ": encoding the request: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, method, n.base+path, bytes.NewReader(body))
	if err != nil {
		return &alert.DeliveryError{Permanent: true, Msg: n.secrets.Redact(what + ": " + err.Error())}
	}
	req.Header.Set("Authorization", "GenieKey "+n.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "prober")
	resp, err := n.hc.Do(req)
	if err != nil {
		return alert.TransportError("Opsgenie unreachable ("+what+")", err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if de := alert.HTTPDeliveryError(resp.StatusCode, resp.Header, n.secrets.Redact(what+": "+errorText(text, resp.StatusCode)), n.now()); de != nil {
		return de
	}
	return nil
}

// errorText renders an Opsgenie error body
// ({"message":"Request body is not processable","errors":{"message":"Message can not be empty."},"took":0.001,"requestId":"..."})
// as "Request body is not processable: message: Message can not be empty.".
func errorText(body []byte, status int) string {
	var e struct {
		Message string            `json:"message"`
		Errors  map[string]string `json:"errors"`
	}
	if json.Unmarshal(body, &e) == nil && (e.Message != "" || len(e.Errors) > 0) {
		msg := cmp.Or(e.Message, http.StatusText(status))
		for _, k := range slices.Sorted(maps.Keys(e.Errors)) {
			msg += "; " + k + ": " + e.Errors[k]
		}
		return alert.Clip(msg, 1000)
	}
	if t := strings.TrimSpace(string(body)); t != "" {
		return alert.Clip(strings.Join(strings.Fields(t), " "), 500)
	}
	return http.StatusText(status)
}

// Priority maps a severity to Opsgenie's P1 (highest) to P5.
func Priority(severity string) string {
	switch strings.ToLower(strings.TrimSpace(severity)) {
	case "error":
		return "P2"
	case "warning":
		return "P3"
	case "info":
		return "P5"
	}
	return "P1" // critical, or unknown: a misspelt severity must not silence a page
}

func source(p *alert.Page) string { return alert.TruncateRunes(cmp.Or(p.Source, "prober"), sourceMax) }

// create is Opsgenie's Create Alert request.
type create struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	Entity      string            `json:"entity,omitempty"`
	Source      string            `json:"source"`
	Priority    string            `json:"priority"`
	User        string            `json:"user"`
}

func createBody(p *alert.Page, priority string) *create {
	summary := strings.TrimSpace(p.Summary)
	if summary == "" {
		summary = cmp.Or(p.Rule, p.DedupKey) + " firing"
	}
	return &create{
		Message:     alert.TruncateRunes(strings.Join(strings.Fields(summary), " "), messageMax),
		Alias:       p.DedupKey,
		Description: alert.TruncateRunes(description(p, summary), descriptionMax),
		Tags:        tags(p),
		Details:     details(p),
		Entity:      alert.TruncateRunes(p.Component, entityMax),
		Source:      source(p),
		Priority:    priority,
		User:        user,
	}
}

// description is the whole story: the summary (the message holds only
// its first 130 characters), the details in the page's order and the links.
func description(p *alert.Page, summary string) string {
	var b strings.Builder
	b.WriteString(summary)
	b.WriteString("\n")
	for _, f := range p.Details {
		fmt.Fprintf(&b, "\n%s: %s", f.Name, f.Value)
	}
	if len(p.Links) > 0 {
		b.WriteString("\n")
	}
	for _, l := range p.Links {
		fmt.Fprintf(&b, "\n%s: %s", cmp.Or(l.Name, "link"), l.URL)
	}
	return b.String()
}

// tags: prober, the severity, the rule, the group and the class, then the
// labels as name:value, sorted; at most 20 of at most 50 characters.
func tags(p *alert.Page) []string {
	out := []string{"prober", "severity:" + p.Severity}
	for _, t := range []string{"rule:" + p.Rule, "group:" + p.Group, "class:" + p.Class} {
		if !strings.HasSuffix(t, ":") {
			out = append(out, t)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.Labels)) {
		out = append(out, k+":"+p.Labels[k])
	}
	var kept []string
	for _, t := range out {
		t = alert.TruncateRunes(t, tagMax)
		if len(kept) < tagsMax && !slices.Contains(kept, t) {
			kept = append(kept, t)
		}
	}
	return kept
}

// details are the page's details (a repeated name gets " (2)"), its
// labels as "label:name", its links and dedup key, within Opsgenie's
// 8000 characters.
func details(p *alert.Page) map[string]string {
	out := map[string]string{}
	size := 0
	add := func(k, v string) bool {
		key := k
		for i := 2; has(out, key); i++ {
			key = fmt.Sprintf("%s (%d)", k, i)
		}
		v = alert.TruncateRunes(v, 1000)
		if n := utf8.RuneCountInString(key) + utf8.RuneCountInString(v); size+n <= detailsMax-100 {
			out[key] = v
			size += n
			return true
		}
		return false
	}
	add("dedup_key", p.DedupKey)
	for i, f := range p.Details {
		if !add(cmp.Or(f.Name, "detail"), f.Value) {
			out["…"] = fmt.Sprintf("%d more details in the description", len(p.Details)-i)
			break
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.Labels)) {
		add("label:"+k, p.Labels[k])
	}
	for _, l := range p.Links {
		add("link:"+cmp.Or(l.Name, "link"), l.URL)
	}
	return out
}

func has(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// resolveNote says why and after how long the alert closed.
func resolveNote(p *alert.Page) string {
	s := "Resolved"
	if !p.Since.IsZero() && p.At.After(p.Since) {
		s += " after " + p.At.Sub(p.Since).Round(time.Second).String()
	}
	for _, f := range p.Details {
		if f.Name == "resolved" || f.Name == "still firing" {
			s += "; " + f.Name + ": " + f.Value
		}
	}
	return s + ". " + strings.TrimSpace(p.Summary)
}

// Reach asks the alerts endpoint with a GET without the key, which
// creates nothing: Opsgenie's 401 means it answers.
func (n *notifier) Reach(ctx context.Context) error {
	return alert.ReachHTTP(ctx, n.hc, n.base+"/v2/alerts")
}
