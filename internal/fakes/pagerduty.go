package fakes

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the Events API v2, from PagerDuty's documentation
// (developer.pagerduty.com/docs/events-api-v2/trigger-events and overview).
const (
	PDRoutingKeyLen = 32
	PDMaxDedupKey   = 255
	PDMaxSummary    = 1024
	PDMaxBody       = 512 * 1024 // "Events API payloads are limited to 512 KB"
)

// PagerDuty is a fake PagerDuty Events API v2: POST /v2/enqueue.
//
// Incidents are keyed by routing key and dedup key, as PagerDuty keys alerts:
// an acknowledge or resolve sent with another routing key than the trigger is
// accepted (202) and dropped, and so is one for an unknown or already
// resolved dedup key. A trigger for the dedup key of a resolved incident
// opens a new incident.
type PagerDuty struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234: what
	// pagerduty.WithV2EventsAPIEndpoint takes (the client appends /v2/enqueue).
	URL string

	b    base
	keys map[string]bool // accepted routing keys; empty: any well-formed key

	events    []PDEvent
	rejected  []Rejection
	incidents []*PDIncident
	open      map[pdKey]*PDIncident
}

type pdKey struct{ routing, dedup string }

// PDEvent is an accepted event as received. DedupKey is the effective key:
// the one PagerDuty generated when a trigger came without one (Raw holds the
// body exactly as sent).
type PDEvent struct {
	RoutingKey, Action, DedupKey string // Action: trigger|acknowledge|resolve
	Summary, Source, Severity    string
	Component, Group, Class      string
	Timestamp                    string // payload.timestamp as sent, if any
	CustomDetails                map[string]any
	Links                        []map[string]string // {"href","text"}
	Images                       []map[string]string // {"src","href","alt"}
	Client, ClientURL            string
	Received                     time.Time
	Raw                          []byte // the body
}

// PDIncident is what PagerDuty made of the events for one dedup key.
type PDIncident struct {
	DedupKey   string
	RoutingKey string
	Status     string // triggered|acknowledged|resolved
	Opened     time.Time
	Resolved   time.Time
	Triggers   int    // trigger events merged into it
	Summary    string // of the latest trigger, as PagerDuty shows it
}

// NewPagerDuty starts a fake accepting the given routing keys (32 characters
// each); with none it accepts any well-formed 32-character key. It panics on
// a malformed key, which is a bug in the test.
func NewPagerDuty(routingKeys ...string) *PagerDuty {
	p := &PagerDuty{keys: map[string]bool{}, open: map[pdKey]*PDIncident{}}
	for _, k := range routingKeys {
		if errs := checkRoutingKey(k); len(errs) > 0 {
			panic(fmt.Sprintf("fakes: NewPagerDuty(%q): %s", k, strings.Join(errs, "; ")))
		}
		p.keys[k] = true
	}
	p.b.faultBody = pdFaultBody
	p.b.start(p.handle)
	p.URL = p.b.url
	return p
}

// Close stops the server and waits for its handlers; it is safe to call twice.
func (p *PagerDuty) Close() { p.b.close() }

// Events returns the accepted events, in order.
func (p *PagerDuty) Events() []PDEvent {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	out := make([]PDEvent, len(p.events))
	for i, e := range p.events {
		out[i] = e.clone()
	}
	return out
}

// Rejected returns the requests refused under the API's rules, in order.
func (p *PagerDuty) Rejected() []Rejection {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	return append([]Rejection(nil), p.rejected...)
}

// Incidents returns every incident ever opened, in order.
func (p *PagerDuty) Incidents() []PDIncident {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	out := make([]PDIncident, len(p.incidents))
	for i, inc := range p.incidents {
		out[i] = *inc
	}
	return out
}

// Open returns the incidents not resolved yet, in the order they opened.
func (p *PagerDuty) Open() []PDIncident {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	var out []PDIncident
	for _, inc := range p.incidents {
		if inc.Status != "resolved" {
			out = append(out, *inc)
		}
	}
	return out
}

// FailFor answers every request with status for d (d <= 0 clears it). A 429
// carries Retry-After: the seconds left of the outage.
func (p *PagerDuty) FailFor(status int, d time.Duration) { p.b.failFor(status, d) }

// FailNext answers the next n requests with status; a 429 carries
// Retry-After (whole seconds, rounded up) when retryAfter > 0.
func (p *PagerDuty) FailNext(n int, status int, retryAfter time.Duration) {
	p.b.failNext(n, status, retryAfter)
}

// SetLatency delays every response by d; a request whose context ends first
// gets no response.
func (p *PagerDuty) SetLatency(d time.Duration) { p.b.setLatency(d) }

// ResetNext closes the connections of the next n requests with a TCP reset
// instead of answering.
func (p *PagerDuty) ResetNext(n int) { p.b.resetNext(n) }

// Heal clears every fault: FailFor, FailNext, ResetNext and SetLatency.
func (p *PagerDuty) Heal() { p.b.heal() }

// SetRateLimit answers 429 with Retry-After once a routing key has sent n
// events within window, as PagerDuty does (about 120 a minute per
// integration key); n <= 0 turns it off, the default.
func (p *PagerDuty) SetRateLimit(n int, window time.Duration) { p.b.setRateLimit(n, window) }

// Requests counts every request seen, faulted ones included.
func (p *PagerDuty) Requests() int { return p.b.requestCount() }

// WaitEvents blocks until at least n events were accepted, ctx ends or the
// fake closes.
func (p *PagerDuty) WaitEvents(ctx context.Context, n int) error {
	err := p.b.waitUntil(ctx, func() bool { return len(p.Events()) >= n })
	if err != nil {
		return fmt.Errorf("fakes: PagerDuty has %d of %d events: %w", len(p.Events()), n, err)
	}
	return nil
}

// WaitUntil blocks until cond holds, ctx ends or the fake closes; cond is
// checked again after every request. It may call the fake's accessors.
func (p *PagerDuty) WaitUntil(ctx context.Context, cond func() bool) error {
	return p.b.waitUntil(ctx, cond)
}

// Bodies of the real API. "invalid event" and "Unrecognized object" are
// PagerDuty's own status strings (API reference and observed responses).
type pdResponse struct {
	Status   string   `json:"status"`
	Message  string   `json:"message"`
	DedupKey string   `json:"dedup_key,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

func writePDJSON(w http.ResponseWriter, status int, body pdResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// pdFaultBody answers injected faults: 429 with PagerDuty's throttle body,
// anything else with a plain-text body such as a load balancer sends.
func pdFaultBody(w http.ResponseWriter, _ *http.Request, status int) {
	if status == http.StatusTooManyRequests {
		writePDJSON(w, status, pdThrottled)
		return
	}
	http.Error(w, http.StatusText(status), status)
}

var pdThrottled = pdResponse{
	Status:  "throttle event",
	Message: "Requests for this service are arriving too quickly.  Please retry later.",
}

func (p *PagerDuty) reject(w http.ResponseWriter, status int, body []byte, resp pdResponse) {
	p.b.mu.Lock()
	p.rejected = append(p.rejected, Rejection{Status: status, Body: body, Reason: strings.Join(resp.Errors, "; ")})
	p.b.notifyLocked()
	p.b.mu.Unlock()
	writePDJSON(w, status, resp)
}

func (p *PagerDuty) rejectText(w http.ResponseWriter, status int, body []byte, reason string) {
	p.b.mu.Lock()
	p.rejected = append(p.rejected, Rejection{Status: status, Body: body, Reason: reason})
	p.b.notifyLocked()
	p.b.mu.Unlock()
	http.Error(w, reason, status)
}

func invalidEvent(errs ...string) pdResponse {
	return pdResponse{Status: "invalid event", Message: "Event object is invalid", Errors: errs}
}

func unrecognized(errs ...string) pdResponse {
	return pdResponse{Status: "Unrecognized object", Message: "Event object format is unrecognized", Errors: errs}
}

func (p *PagerDuty) handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v2/enqueue" {
		p.rejectText(w, http.StatusNotFound, nil, "404 page not found: "+r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.rejectText(w, http.StatusMethodNotAllowed, nil, "method "+r.Method+" not allowed")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, PDMaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			// PagerDuty documents the limit but not the answer; a 400
			// invalid event is what users report, and it is not retried.
			p.reject(w, http.StatusBadRequest, body, invalidEvent(
				fmt.Sprintf("Event object is too large (maximum is %d bytes)", PDMaxBody)))
		}
		return // otherwise the client went away
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		p.reject(w, http.StatusBadRequest, body, unrecognized("Content-Type must be application/json"))
		return
	}
	obj, err := decodeObject(body)
	if err != nil {
		p.reject(w, http.StatusBadRequest, body, unrecognized("JSON parse error"))
		return
	}
	ev, errs := parsePDEvent(obj)
	if len(errs) > 0 {
		p.reject(w, http.StatusBadRequest, body, invalidEvent(errs...))
		return
	}
	if len(p.keys) > 0 && !p.keys[ev.RoutingKey] {
		p.reject(w, http.StatusBadRequest, body, invalidEvent("Invalid routing key"))
		return
	}
	ev.Raw = body

	now := time.Now()
	p.b.mu.Lock()
	if ok, wait := p.b.allowLocked(ev.RoutingKey, now); !ok {
		p.rejected = append(p.rejected, Rejection{Status: http.StatusTooManyRequests, Body: body, Reason: pdThrottled.Message})
		p.b.notifyLocked()
		p.b.mu.Unlock()
		w.Header().Set("Retry-After", retryAfterSeconds(wait))
		writePDJSON(w, http.StatusTooManyRequests, pdThrottled)
		return
	}
	if ev.DedupKey == "" {
		ev.DedupKey = newDedupKey() // a trigger without one always opens a new alert
	}
	ev.Received = now
	p.events = append(p.events, ev)
	p.applyLocked(ev)
	p.b.notifyLocked()
	p.b.mu.Unlock()

	writePDJSON(w, http.StatusAccepted, pdResponse{Status: "success", Message: "Event processed", DedupKey: ev.DedupKey})
}

// applyLocked runs the incident model of PagerDuty's "Alert De-Duplication".
func (p *PagerDuty) applyLocked(ev PDEvent) {
	k := pdKey{ev.RoutingKey, ev.DedupKey}
	inc := p.open[k]
	switch ev.Action {
	case "trigger":
		if inc == nil {
			inc = &PDIncident{DedupKey: ev.DedupKey, RoutingKey: ev.RoutingKey, Status: "triggered", Opened: ev.Received}
			p.incidents = append(p.incidents, inc)
			p.open[k] = inc
		}
		inc.Triggers++ // an acknowledged incident stays acknowledged
		inc.Summary = ev.Summary
	case "acknowledge":
		if inc != nil {
			inc.Status = "acknowledged"
		}
	case "resolve":
		if inc != nil {
			inc.Status, inc.Resolved = "resolved", ev.Received
			delete(p.open, k)
		}
	}
}

func newDedupKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// decodeObject parses body as exactly one JSON object, numbers kept as
// json.Number so custom_details round-trip unchanged.
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("JSON value is not an object")
	}
	return obj, nil
}

// field reads key from m: the string, whether the key is present and not
// null, and whether it is a string.
func field(m map[string]any, key string) (s string, present, isString bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", false, false
	}
	s, isString = v.(string)
	return s, true, isString
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

func checkRoutingKey(k string) []string {
	if blank(k) {
		return []string{"'routing_key' is missing or blank"}
	}
	var errs []string
	if utf8.RuneCountInString(k) != PDRoutingKeyLen {
		errs = append(errs, "Length of 'routing_key' is incorrect (should be 32 characters)")
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			errs = append(errs, "'routing_key' cannot contain non-alphanumeric characters.")
			break
		}
	}
	return errs
}

// ISO 8601 forms PagerDuty shows and Go clients send; the docs' own example
// has a colon-less offset ("2015-07-17T08:42:58.315+0000").
var pdTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02",
}

func validTimestamp(s string) bool {
	for _, l := range pdTimeLayouts {
		if _, err := time.Parse(l, s); err == nil {
			return true
		}
	}
	return false
}

// parsePDEvent validates an event object and collects every error, as
// PagerDuty does. The texts follow PagerDuty's own ('payload.severity' is
// missing or blank; Length of 'routing_key' is incorrect ...); where none has
// been published they follow the same pattern.
func parsePDEvent(m map[string]any) (PDEvent, []string) {
	var ev PDEvent
	var errs []string
	add := func(e ...string) { errs = append(errs, e...) }
	str := func(obj map[string]any, key, path string) string {
		s, present, isStr := field(obj, key)
		if present && !isStr {
			add(fmt.Sprintf("'%s' is invalid (must be a string)", path))
		}
		return s
	}

	if rk, present, isStr := field(m, "routing_key"); !present {
		add("'routing_key' is missing or blank")
	} else if !isStr {
		add("'routing_key' is invalid (must be a string)")
	} else {
		add(checkRoutingKey(rk)...)
		ev.RoutingKey = rk
	}

	action, present, isStr := field(m, "event_action")
	switch {
	case !present || isStr && blank(action):
		add("'event_action' is missing or blank")
	case !isStr || action != "trigger" && action != "acknowledge" && action != "resolve":
		add("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')")
	default:
		ev.Action = action
	}

	ev.DedupKey = str(m, "dedup_key", "dedup_key")
	if utf8.RuneCountInString(ev.DedupKey) > PDMaxDedupKey {
		add(fmt.Sprintf("'dedup_key' is too long (maximum is %d characters)", PDMaxDedupKey))
	}
	if (ev.Action == "acknowledge" || ev.Action == "resolve") && blank(ev.DedupKey) {
		add("'dedup_key' is missing or blank")
	}

	if ev.Action == "trigger" {
		add(parsePDPayload(m, &ev)...)
	}

	ev.Client = str(m, "client", "client")
	ev.ClientURL = str(m, "client_url", "client_url")
	var lerrs, ierrs []string
	ev.Links, lerrs = parseContext(m, "links", "href", "href", "text")
	ev.Images, ierrs = parseContext(m, "images", "src", "src", "href", "alt")
	add(lerrs...)
	add(ierrs...)
	return ev, errs
}

func parsePDPayload(m map[string]any, ev *PDEvent) []string {
	raw, ok := m["payload"]
	if !ok || raw == nil {
		return []string{"'payload' is missing or blank"}
	}
	pl, ok := raw.(map[string]any)
	if !ok {
		return []string{"'payload' is invalid (must be an object)"}
	}
	var errs []string
	add := func(e ...string) { errs = append(errs, e...) }
	required := func(key string) string {
		s, present, isStr := field(pl, key)
		switch {
		case present && !isStr:
			add(fmt.Sprintf("'payload.%s' is invalid (must be a string)", key))
		case blank(s):
			add(fmt.Sprintf("'payload.%s' is missing or blank", key))
		}
		return s
	}
	optional := func(key string) string {
		s, present, isStr := field(pl, key)
		if present && !isStr {
			add(fmt.Sprintf("'payload.%s' is invalid (must be a string)", key))
		}
		return s
	}

	ev.Summary = required("summary")
	if utf8.RuneCountInString(ev.Summary) > PDMaxSummary {
		// PagerDuty's text, typo included: users match on it in the wild.
		add("'summary' is too long (maiximum is 1024 characters)")
	}
	ev.Source = required("source")
	if sev, present, isStr := field(pl, "severity"); !present || isStr && blank(sev) {
		add("'payload.severity' is missing or blank")
	} else if !isStr || sev != "critical" && sev != "error" && sev != "warning" && sev != "info" {
		// Verbatim from PagerDuty, order of the enum included.
		add("'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')")
	} else {
		ev.Severity = sev
	}
	ev.Timestamp = optional("timestamp")
	if ev.Timestamp != "" && !validTimestamp(ev.Timestamp) {
		add("'payload.timestamp' is invalid (must be an ISO 8601 timestamp)")
	}
	ev.Component = optional("component")
	ev.Group = optional("group")
	ev.Class = optional("class")
	if cd, ok := pl["custom_details"]; ok && cd != nil {
		// Documented as an object; the fake refuses strings and arrays so a
		// notifier never depends on PagerDuty's leniency with them.
		obj, ok := cd.(map[string]any)
		if !ok {
			add("'payload.custom_details' is invalid (must be an object)")
		} else {
			ev.CustomDetails = obj
		}
	}
	return errs
}

// parseContext validates the links or images array: objects whose required
// key is a non-blank string and whose other keys, if present, are strings.
func parseContext(m map[string]any, key, req string, keys ...string) ([]map[string]string, []string) {
	raw, ok := m[key]
	if !ok || raw == nil {
		return nil, nil
	}
	arr, ok := raw.([]any)
	if !ok {
		return nil, []string{fmt.Sprintf("'%s' is invalid (must be an array)", key)}
	}
	var out []map[string]string
	var errs []string
	for i, e := range arr {
		obj, ok := e.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Sprintf("'%s[%d]' is invalid (must be an object)", key, i))
			continue
		}
		item := map[string]string{}
		for _, k := range keys {
			s, present, isStr := field(obj, k)
			switch {
			case present && !isStr:
				errs = append(errs, fmt.Sprintf("'%s[%d].%s' is invalid (must be a string)", key, i, k))
			case k == req && blank(s):
				errs = append(errs, fmt.Sprintf("'%s[%d].%s' is missing or blank", key, i, k))
			case present:
				item[k] = s
			}
		}
		out = append(out, item)
	}
	return out, errs
}

func (e PDEvent) clone() PDEvent {
	e.CustomDetails = cloneMap(e.CustomDetails)
	e.Links = cloneStringMaps(e.Links)
	e.Images = cloneStringMaps(e.Images)
	e.Raw = bytes.Clone(e.Raw)
	return e
}

func cloneStringMaps(ms []map[string]string) []map[string]string {
	if ms == nil {
		return nil
	}
	out := make([]map[string]string, len(ms))
	for i, m := range ms {
		c := make(map[string]string, len(m))
		for k, v := range m {
			c[k] = v
		}
		out[i] = c
	}
	return out
}
