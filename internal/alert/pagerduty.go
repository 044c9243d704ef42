package alert

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

	"github.com/PagerDuty/go-pagerduty"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/secret"
)

const (
	pagerDutyDefaultBase = "https://events.pagerduty.com"
	// go-pagerduty appends this path to WithV2EventsAPIEndpoint's value.
	pagerDutyEnqueuePath = "/v2/enqueue"
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

type pagerDutyNotifier struct {
	name      string
	key       string
	client    *pagerduty.Client
	statusURL string
	bucket    *tokenBucket
	secrets   *secret.Set
	log       *slog.Logger
	hc        *http.Client
	reachURL  string // the events endpoint, for the reachability probe
}

// NewPagerDuty returns a notifier for the PagerDuty Events API v2.
// cfg.URL is the events endpoint, either the full enqueue URL
// (https://events.pagerduty.com/v2/enqueue, the default) or its base.
func NewPagerDuty(cfg *config.Notifier, o NotifierOptions) (Notifier, error) {
	if cfg.RoutingKey == "" {
		return nil, fmt.Errorf("notifier %q: pagerduty needs a routing key", cfg.Name)
	}
	base, err := pagerDutyBase(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("notifier %q: %w", cfg.Name, err)
	}
	c := pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(base))
	hc := o.client(cfg.Timeout)
	c.HTTPClient = hc
	return &pagerDutyNotifier{
		hc:        hc,
		reachURL:  strings.TrimSuffix(base, "/") + pagerDutyEnqueuePath,
		name:      cfg.Name,
		key:       cfg.RoutingKey,
		client:    c,
		statusURL: o.StatusURL,
		bucket:    o.bucket(pdRatePerSec, pdBurst),
		secrets:   secret.NewSet(map[string]string{"routing_key": cfg.RoutingKey}),
		log:       o.logger(),
	}, nil
}

// pagerDutyBase turns the configured URL into what go-pagerduty wants: the
// base, to which ManageEventWithContext appends /v2/enqueue.
func pagerDutyBase(raw string) (string, error) {
	if raw == "" {
		return pagerDutyDefaultBase, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("pagerduty url %q: want http(s)://host[/v2/enqueue]", raw)
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), pagerDutyEnqueuePath)
	u.RawPath = ""
	return strings.TrimSuffix(u.String(), "/"), nil
}

func (n *pagerDutyNotifier) Name() string              { return n.name }
func (n *pagerDutyNotifier) Type() config.NotifierType { return config.PagerDuty }

// Send triggers or resolves the incident p.DedupKey. PagerDuty keeps an
// incident open until resolved, so a reminder sends nothing. There is no
// thread to keep: the dedup key is the incident's identity.
func (n *pagerDutyNotifier) Send(ctx context.Context, p *Page, thread string) (string, error) {
	var ev *pagerduty.V2Event
	switch p.Kind {
	case Reminder:
		return thread, nil
	case Trigger:
		ev = n.triggerEvent(p)
	case Resolve:
		ev = &pagerduty.V2Event{RoutingKey: n.key, Action: "resolve", DedupKey: p.DedupKey}
	default:
		return thread, &DeliveryError{Permanent: true, Msg: fmt.Sprintf("unknown notification kind %q", p.Kind)}
	}
	if err := n.bucket.wait(ctx); err != nil {
		return thread, &DeliveryError{Msg: "waiting for PagerDuty's rate limit: " + err.Error()}
	}
	cctx, c := withCapture(ctx)
	_, err := n.client.ManageEventWithContext(cctx, ev)
	if err == nil || (c.status >= 200 && c.status <= 299) {
		// A 2xx is accepted even if its body did not decode.
		return "", nil
	}
	return thread, n.classify(err, c)
}

// classify maps a failed call to a DeliveryError carrying PagerDuty's own
// error text (from the captured body, which go-pagerduty does not keep).
func (n *pagerDutyNotifier) classify(err error, c *captured) *DeliveryError {
	if c.status == 0 {
		// No answer: connection refused or reset, DNS, timeout. Retry.
		return &DeliveryError{Msg: n.secrets.Redact("PagerDuty unreachable: " + transportText(err))}
	}
	de := &DeliveryError{Status: c.status, Msg: n.secrets.Redact(pagerDutyErrorText(c.body, c.status))}
	switch {
	case c.status == http.StatusTooManyRequests:
		de.RetryAfter = retryAfter(c.header, time.Now())
	case c.status == http.StatusRequestTimeout || c.status >= 500:
	case c.status >= 400:
		de.Permanent = true // the event is wrong (or the key is): resending cannot fix it
	}
	return de
}

// pagerDutyErrorText renders an Events API error body
// ({"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing or blank"]})
// as "Event object is invalid: 'payload.summary' is missing or blank".
func pagerDutyErrorText(body []byte, status int) string {
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
		return clip(msg, 1000)
	}
	if t := strings.TrimSpace(string(body)); t != "" {
		return clip(strings.Join(strings.Fields(t), " "), 500)
	}
	return http.StatusText(status)
}

func (n *pagerDutyNotifier) triggerEvent(p *Page) *pagerduty.V2Event {
	summary := strings.TrimSpace(p.Summary)
	if summary == "" {
		// PagerDuty rejects a blank summary; a page that says little beats
		// a dead letter.
		summary = fmt.Sprintf("%s firing", cmp.Or(p.Rule, p.DedupKey))
	}
	payload := &pagerduty.V2Payload{
		Summary:   truncateBytes(summary, pdSummaryMax),
		Source:    cmp.Or(p.Source, pdDefaultSrc),
		Severity:  pagerDutySeverity(p.Severity),
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

// pagerDutySeverity maps to PagerDuty's enum. An unknown value pages as
// critical: PagerDuty would reject the event, and a misspelt severity must
// not silence a page.
func pagerDutySeverity(s string) string {
	switch s = strings.ToLower(strings.TrimSpace(s)); s {
	case "critical", "error", "warning", "info":
		return s
	}
	return pdSeverityDflt
}

// customDetails renders Page.Details as a JSON object whose keys keep the
// page's display order (encoding/json would sort a map), then the labels
// under "labels". Repeated names get a " (2)" suffix.
func customDetails(p *Page) json.RawMessage {
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
		add(cmp.Or(f.Name, "detail"), truncateBytes(f.Value, pdDetailMax))
	}
	if len(p.Labels) > 0 {
		add("labels", p.Labels) // a map: encoding/json sorts its keys
	}
	buf.WriteByte('}')
	return buf.Bytes()
}
