// Package pagerduty is the PagerDuty notifier (Events API v2): a trigger
// opens or joins the incident of its dedup key, a resolve closes it, a
// reminder sends nothing (PagerDuty keeps its incident and pages on its
// own escalation).
//
//	notifiers:
//	  pagerduty:
//	    type: pagerduty
//	    routing_key: "{{secret:PAGERDUTY_ROUTING_KEY}}"
//	    url: https://events.eu.pagerduty.com   # optional: the EU service, a proxy
package pagerduty

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/secret"
)

const (
	defaultBase = "https://events.pagerduty.com"
	// go-pagerduty appends this path to WithV2EventsAPIEndpoint's value.
	enqueuePath = "/v2/enqueue"
	// PagerDuty's documented limits.
	pdSummaryMax    = 1024
	pdDetailMax     = 4096      // per custom_details value
	pdDetailsBudget = 256 << 10 // for all of custom_details: the event must stay under 512 KB
	pdRatePerSec    = 100.0 / 60
	pdBurst         = 20 // with pdRatePerSec: at most 120 events in any minute
	pdDefaultSrc    = "prober"
	pdClientName    = "prober"
	pdSeverityDflt  = "critical"
)

// Type is the notifier type's name in probes.yaml.
const Type = "pagerduty"

// Spec is a PagerDuty notifier's block.
type Spec struct {
	// URL is the events endpoint, the full enqueue URL or its base
	// (default https://events.pagerduty.com).
	URL        string
	RoutingKey string // resolved secret
}

// Plugin registers the pagerduty type (daemon/notifiers.go).
type Plugin struct{}

func (Plugin) Type() string   { return Type }
func (Plugin) Keys() []string { return []string{"url", "routing_key"} }

// Traits: it wakes someone, and an open incident shows no notes (a note
// would be a reminder, which PagerDuty drops).
func (Plugin) Traits() config.NotifierTraits {
	return config.NotifierTraits{Pages: true, NoNotes: true}
}

// Example is a valid block, built by the daemon's tests.
func (Plugin) Example() string { return `{type: pagerduty, routing_key: "{{secret:S}}"}` }

// Decode reads the block.
func (Plugin) Decode(b *config.NotifierBlock) any {
	s := &Spec{}
	s.URL, _ = b.URLSecretsIn("url", "routing_key, token or webhook_url")
	s.RoutingKey, _ = b.Secret("routing_key", "a routing key")
	if !b.Has("routing_key") {
		b.Errorf("", "pagerduty notifier %s needs routing_key (use {{secret:NAME}})", b.Name())
	}
	if s.URL == "" {
		s.URL = defaultBase
	}
	return s
}

// routingKeyLen is the length of a PagerDuty Events API v2 routing key
// (the integration key of an Events API v2 integration): 32 letters and
// digits. PagerDuty answers any other with a 400, "Length of 'routing_key'
// is incorrect (should be 32 characters)", and the page is lost.
const routingKeyLen = 32

// CheckSecrets checks the resolved routing key against the shape PagerDuty
// issues (validate --secrets), never quoting it.
func (Plugin) CheckSecrets(n *config.Notifier) []string {
	s, _ := n.Spec.(*Spec)
	if s == nil || s.RoutingKey == "" {
		return nil // not resolved: Load said why
	}
	k := s.RoutingKey
	if l := utf8.RuneCountInString(k); l != routingKeyLen {
		return []string{fmt.Sprintf("routing_key is %d characters; a PagerDuty Events API v2 routing key (the integration key) is %d letters and digits", l, routingKeyLen)}
	}
	if !alnum(k) {
		return []string{fmt.Sprintf("routing_key holds characters other than letters and digits (a space or newline from the secret's source?); a PagerDuty Events API v2 routing key is %d letters and digits", routingKeyLen)}
	}
	return nil
}

func alnum(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// New builds the notifier of n (n.Spec is Decode's *Spec).
func (Plugin) New(n *config.Notifier, o alert.NotifierOptions) (alert.Notifier, error) {
	s, _ := n.Spec.(*Spec)
	if s == nil || s.RoutingKey == "" {
		return nil, fmt.Errorf("notifier %q: pagerduty needs a routing key", n.Name)
	}
	base, err := baseURL(s.URL)
	if err != nil {
		return nil, fmt.Errorf("notifier %q: %w", n.Name, err)
	}
	c := pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(base))
	hc := o.Client(n.Timeout)
	c.HTTPClient = hc
	return &notifier{
		hc:        hc,
		reachURL:  strings.TrimSuffix(base, "/") + enqueuePath,
		name:      n.Name,
		key:       s.RoutingKey,
		client:    c,
		statusURL: o.StatusURL,
		limiter:   o.Limiter(pdRatePerSec, pdBurst),
		secrets:   secret.NewSet(map[string]string{"routing_key": s.RoutingKey}),
		log:       o.Log(),
	}, nil
}

type notifier struct {
	name      string
	key       string
	client    *pagerduty.Client
	statusURL string
	limiter   *alert.Limiter
	secrets   *secret.Set
	log       *slog.Logger
	hc        *http.Client
	reachURL  string // the events endpoint, for the reachability probe
}

// baseURL turns the configured URL into what go-pagerduty wants: the
// base, to which ManageEventWithContext appends /v2/enqueue.
func baseURL(raw string) (string, error) {
	if raw == "" {
		return defaultBase, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("pagerduty url %q: want http(s)://host[/v2/enqueue]", raw)
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), enqueuePath)
	u.RawPath = ""
	return strings.TrimSuffix(u.String(), "/"), nil
}

func (n *notifier) Name() string              { return n.name }
func (n *notifier) Type() config.NotifierType { return Type }

// Send triggers or resolves the incident p.DedupKey. PagerDuty keeps an
// incident open until resolved, so a reminder sends nothing. There is no
// thread to keep: the dedup key is the incident's identity.
func (n *notifier) Send(ctx context.Context, p *alert.Page, thread string) (string, error) {
	var ev *pagerduty.V2Event
	switch p.Kind {
	case alert.Reminder:
		return thread, nil
	case alert.Trigger:
		ev = n.triggerEvent(p)
	case alert.Resolve:
		ev = &pagerduty.V2Event{RoutingKey: n.key, Action: "resolve", DedupKey: p.DedupKey}
	default:
		return thread, &alert.DeliveryError{Permanent: true, Msg: fmt.Sprintf("unknown notification kind %q", p.Kind)}
	}
	if err := n.limiter.Wait(ctx); err != nil {
		return thread, &alert.DeliveryError{Msg: "waiting for PagerDuty's rate limit: " + err.Error()}
	}
	cctx, c := alert.CaptureResponse(ctx)
	_, err := n.client.ManageEventWithContext(cctx, ev)
	if err == nil || (c.Status >= 200 && c.Status <= 299) {
		// A 2xx is accepted even if its body did not decode.
		return "", nil
	}
	return thread, n.classify(err, c)
}

// classify maps a failed call to a DeliveryError carrying PagerDuty's own
// error text (from the captured body, which go-pagerduty does not keep).
func (n *notifier) classify(err error, c *alert.Captured) *alert.DeliveryError {
	if c.Status == 0 {
		// No answer: connection refused or reset, DNS, timeout. Retry.
		return &alert.DeliveryError{Msg: n.secrets.Redact("PagerDuty unreachable: " + alert.TransportText(err))}
	}
	// 429 waits its Retry-After, 408 and 5xx are retried, another 4xx is
	// permanent: the event is wrong (or the key is), resending cannot fix it.
	return alert.HTTPDeliveryError(c.Status, c.Header, n.secrets.Redact(errorText(c.Body, c.Status)), time.Now())
}

// errorText renders an Events API error body
// ({"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing or blank"]})
// as "Event object is invalid: 'payload.summary' is missing or blank".
func errorText(body []byte, status int) string {
	var e struct {
		Status  string   `json:"status"`
		Message string   `json:"message"`
		Errors  []string `json:"errors"`
	}
	if json.Unmarshal(body, &e) == nil && (e.Message != "" || len(e.Errors) > 0 || e.Status != "") {
		msg := e.Message
		if msg == "" {
			msg = e.Status
		}
		if len(e.Errors) > 0 {
			msg += ": " + strings.Join(e.Errors, "; ")
		}
		return alert.Clip(msg, 1000)
	}
	if t := strings.TrimSpace(string(body)); t != "" {
		return alert.Clip(strings.Join(strings.Fields(t), " "), 500)
	}
	return http.StatusText(status)
}

func (n *notifier) triggerEvent(p *alert.Page) *pagerduty.V2Event {
	summary := strings.TrimSpace(p.Summary)
	if summary == "" {
		// PagerDuty rejects a blank summary; a page that says little beats
		// a dead letter.
		summary = fmt.Sprintf("%s firing", cmp.Or(p.Rule, p.DedupKey))
	}
	payload := &pagerduty.V2Payload{
		Summary:   alert.TruncateBytes(summary, pdSummaryMax),
		Source:    cmp.Or(p.Source, pdDefaultSrc),
		Severity:  severity(p.Severity),
		Component: p.Component,
		Group:     p.Group,
		Class:     p.Class,
	}
	if !p.At.IsZero() {
		payload.Timestamp = p.At.UTC().Format(time.RFC3339)
	}
	if d := customDetails(p); d != nil {
		payload.Details = d
	}
	ev := &pagerduty.V2Event{
		RoutingKey: n.key,
		Action:     "trigger",
		DedupKey:   p.DedupKey,
		Client:     pdClientName,
		ClientURL:  n.statusURL,
		Payload:    payload,
	}
	for _, l := range p.Links {
		if l.URL == "" {
			continue
		}
		ev.Links = append(ev.Links, map[string]string{"href": l.URL, "text": cmp.Or(l.Name, l.URL)})
	}
	return ev
}

// severity maps to PagerDuty's enum. An unknown value pages as
// critical: PagerDuty would reject the event, and a misspelt severity must
// not silence a page.
func severity(s string) string {
	switch s = strings.ToLower(strings.TrimSpace(s)); s {
	case "critical", "error", "warning", "info":
		return s
	}
	return pdSeverityDflt
}

// customDetails renders Page.Details as a JSON object whose keys keep the
// page's display order (encoding/json would sort a map), then the labels
// under "labels". Repeated names get a " (2)" suffix.
func customDetails(p *alert.Page) json.RawMessage {
	if len(p.Details) == 0 && len(p.Labels) == 0 {
		return nil
	}
	var buf bytes.Buffer
	seen := map[string]bool{}
	buf.WriteByte('{')
	add := func(name string, v any) {
		key := name
		for i := 2; seen[key]; i++ {
			key = fmt.Sprintf("%s (%d)", name, i)
		}
		seen[key] = true
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		val, _ := json.Marshal(v)
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(val)
	}
	for i, f := range p.Details {
		if buf.Len() > pdDetailsBudget {
			add("…", fmt.Sprintf("%d more details not shown", len(p.Details)-i))
			break
		}
		add(cmp.Or(f.Name, "detail"), alert.TruncateBytes(f.Value, pdDetailMax))
	}
	if len(p.Labels) > 0 {
		add("labels", p.Labels) // a map: encoding/json sorts its keys
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// Reach asks the events endpoint, which answers a GET without an event.
func (n *notifier) Reach(ctx context.Context) error {
	return alert.ReachHTTP(ctx, n.hc, n.reachURL)
}
