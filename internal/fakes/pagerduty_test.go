package fakes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PagerDuty/go-pagerduty"
)

const (
	rk1 = "0123456789abcdef0123456789abcdef"
	rk2 = "R0123456789ABCDEF0123456789ABCDE"
)

// bodyKeeper is an HTTP client that keeps the last response body and
// headers: go-pagerduty drops the Events API's error body, so a notifier
// that wants PagerDuty's reason must wrap its client like this.
type bodyKeeper struct {
	c      *http.Client
	mu     sync.Mutex
	body   []byte
	header http.Header
	status int
}

func (k *bodyKeeper) Do(r *http.Request) (*http.Response, error) {
	resp, err := k.c.Do(r)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	k.mu.Lock()
	k.body, k.header, k.status = b, resp.Header.Clone(), resp.StatusCode
	k.mu.Unlock()
	return resp, nil
}

func (k *bodyKeeper) last() (int, http.Header, []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.status, k.header, k.body
}

// newPD starts a fake and a go-pagerduty client pointed at it, as the
// notifier builds its client.
func newPD(t *testing.T, keys ...string) (*PagerDuty, *pagerduty.Client, *bodyKeeper) {
	t.Helper()
	p := NewPagerDuty(keys...)
	t.Cleanup(p.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	keeper := &bodyKeeper{c: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	c := pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(p.URL))
	c.HTTPClient = keeper
	return p, c, keeper
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func trigger(key, dedup, summary string) *pagerduty.V2Event {
	return &pagerduty.V2Event{
		RoutingKey: key, Action: "trigger", DedupKey: dedup,
		Payload: &pagerduty.V2Payload{Summary: summary, Source: "prober-eu", Severity: "critical"},
	}
}

func TestPagerDutyIncidentModel(t *testing.T) {
	p, c, _ := newPD(t, rk1)
	ctx := ctxT(t)
	send := func(ev *pagerduty.V2Event) *pagerduty.V2EventResponse {
		t.Helper()
		resp, err := c.ManageEventWithContext(ctx, ev)
		if err != nil {
			t.Fatalf("%s %s: %v", ev.Action, ev.DedupKey, err)
		}
		if resp.Status != "success" || resp.Message != "Event processed" {
			t.Fatalf("response = %+v", resp)
		}
		return resp
	}

	ev := trigger(rk1, "checkout/failing", "checkout failing in 3/3 regions")
	ev.Payload.Component, ev.Payload.Group, ev.Payload.Class = "pay", "payments", "swallowed_error"
	ev.Payload.Timestamp = time.Now().UTC().Format(time.RFC3339Nano)
	ev.Payload.Details = map[string]any{"trace_id": "4bf92f35", "regions": 3}
	ev.Links = []any{map[string]string{"href": "https://grafana.example/d/1", "text": "dashboard"}}
	ev.Client, ev.ClientURL = "prober", "https://prober.example"
	if got := send(ev).DedupKey; got != "checkout/failing" {
		t.Fatalf("dedup_key = %q", got)
	}
	send(trigger(rk1, "checkout/failing", "checkout failing in 3/3 regions for 2m"))

	incs := p.Incidents()
	if len(incs) != 1 || incs[0].Triggers != 2 || incs[0].Status != "triggered" ||
		incs[0].Summary != "checkout failing in 3/3 regions for 2m" || incs[0].RoutingKey != rk1 {
		t.Fatalf("after two triggers: %+v", incs)
	}

	send(&pagerduty.V2Event{RoutingKey: rk1, Action: "acknowledge", DedupKey: "checkout/failing"})
	if o := p.Open(); len(o) != 1 || o[0].Status != "acknowledged" {
		t.Fatalf("after ack: %+v", o)
	}
	send(&pagerduty.V2Event{RoutingKey: rk1, Action: "resolve", DedupKey: "checkout/failing"})
	if o := p.Open(); len(o) != 0 {
		t.Fatalf("open after resolve: %+v", o)
	}
	if inc := p.Incidents()[0]; inc.Status != "resolved" || inc.Resolved.IsZero() || inc.Resolved.Before(inc.Opened) {
		t.Fatalf("resolved incident: %+v", inc)
	}

	// A trigger for a resolved dedup key opens a new incident.
	send(trigger(rk1, "checkout/failing", "checkout failing again"))
	incs = p.Incidents()
	if len(incs) != 2 || incs[1].Status != "triggered" || incs[1].Triggers != 1 || len(p.Open()) != 1 {
		t.Fatalf("after re-trigger: %+v", incs)
	}

	evs := p.Events()
	if len(evs) != 5 {
		t.Fatalf("events = %d, want 5", len(evs))
	}
	first := evs[0]
	if first.Action != "trigger" || first.Summary != "checkout failing in 3/3 regions" || first.Source != "prober-eu" ||
		first.Severity != "critical" || first.Component != "pay" || first.Group != "payments" ||
		first.Class != "swallowed_error" || first.Client != "prober" || first.ClientURL != "https://prober.example" ||
		first.CustomDetails["trace_id"] != "4bf92f35" || len(first.Links) != 1 ||
		first.Links[0]["href"] != "https://grafana.example/d/1" || first.Links[0]["text"] != "dashboard" ||
		first.Received.IsZero() || !json.Valid(first.Raw) {
		t.Fatalf("first event = %+v", first)
	}
	if n, ok := first.CustomDetails["regions"].(json.Number); !ok || n.String() != "3" {
		t.Fatalf("custom_details numbers must round-trip: %#v", first.CustomDetails["regions"])
	}
	// Accessors return copies.
	evs[0].CustomDetails["trace_id"] = "mutated"
	if p.Events()[0].CustomDetails["trace_id"] != "4bf92f35" {
		t.Fatal("Events() shares the fake's maps")
	}
	if len(p.Rejected()) != 0 {
		t.Fatalf("rejected: %+v", p.Rejected())
	}
}

func TestPagerDutyGeneratedDedupKeyAndDroppedEvents(t *testing.T) {
	p, c, _ := newPD(t) // any well-formed key
	ctx := ctxT(t)
	a, err := c.ManageEventWithContext(ctx, trigger(rk2, "", "no key"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.ManageEventWithContext(ctx, trigger(rk2, "", "no key"))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.DedupKey) != 32 || a.DedupKey == b.DedupKey {
		t.Fatalf("generated keys %q %q: want distinct 32-char keys", a.DedupKey, b.DedupKey)
	}
	if n := len(p.Incidents()); n != 2 {
		t.Fatalf("incidents = %d: a trigger without dedup_key always opens a new one", n)
	}
	if got := p.Events()[0].DedupKey; got != a.DedupKey {
		t.Fatalf("event dedup key %q, want the generated %q", got, a.DedupKey)
	}

	// Resolve/ack for an unknown key, a resolved key, or from another
	// routing key: 202 and dropped.
	for _, ev := range []*pagerduty.V2Event{
		{RoutingKey: rk2, Action: "resolve", DedupKey: "never-triggered"},
		{RoutingKey: rk2, Action: "acknowledge", DedupKey: "never-triggered"},
		{RoutingKey: rk1, Action: "resolve", DedupKey: a.DedupKey}, // other routing key
		{RoutingKey: rk2, Action: "resolve", DedupKey: b.DedupKey},
		{RoutingKey: rk2, Action: "resolve", DedupKey: b.DedupKey}, // already resolved
	} {
		resp, err := c.ManageEventWithContext(ctx, ev)
		if err != nil || resp.DedupKey != ev.DedupKey {
			t.Fatalf("%s %s: %+v %v", ev.Action, ev.DedupKey, resp, err)
		}
	}
	open := p.Open()
	if len(open) != 1 || open[0].DedupKey != a.DedupKey {
		t.Fatalf("open = %+v, want only %s", open, a.DedupKey)
	}
	if n := len(p.Incidents()); n != 2 {
		t.Fatalf("incidents = %d, want 2", n)
	}
}

// TestPagerDutyValidation checks every rule through go-pagerduty: the client
// returns pagerduty.APIError{StatusCode: 400} with the body dropped, and the
// body (kept by the wrapped HTTP client) has PagerDuty's error text.
func TestPagerDutyValidation(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) } // runes, not bytes
	tests := []struct {
		name string
		ev   *pagerduty.V2Event
		want string // one of the errors
	}{
		{"short routing key", trigger("abc", "k", "s"), "Length of 'routing_key' is incorrect (should be 32 characters)"},
		{"non-alphanumeric routing key", trigger("0123456789abcdef0123456789abcde-", "k", "s"), "'routing_key' cannot contain non-alphanumeric characters."},
		{"blank routing key", trigger("", "k", "s"), "'routing_key' is missing or blank"},
		{"unknown routing key", trigger(rk2, "k", "s"), "Invalid routing key"},
		{"blank action", &pagerduty.V2Event{RoutingKey: rk1, DedupKey: "k"}, "'event_action' is missing or blank"},
		{"bad action", &pagerduty.V2Event{RoutingKey: rk1, Action: "escalate", DedupKey: "k"},
			"'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')"},
		{"resolve without dedup_key", &pagerduty.V2Event{RoutingKey: rk1, Action: "resolve"}, "'dedup_key' is missing or blank"},
		{"acknowledge without dedup_key", &pagerduty.V2Event{RoutingKey: rk1, Action: "acknowledge"}, "'dedup_key' is missing or blank"},
		{"dedup_key too long", trigger(rk1, strings.Repeat("k", 256), "s"), "'dedup_key' is too long (maximum is 255 characters)"},
		{"trigger without payload", &pagerduty.V2Event{RoutingKey: rk1, Action: "trigger", DedupKey: "k"}, "'payload' is missing or blank"},
		{"blank summary", trigger(rk1, "k", "  "), "'payload.summary' is missing or blank"},
		{"summary too long", trigger(rk1, "k", long(1025)), "'summary' is too long (maiximum is 1024 characters)"},
		{"blank source", &pagerduty.V2Event{RoutingKey: rk1, Action: "trigger", Payload: &pagerduty.V2Payload{Summary: "s", Severity: "info"}},
			"'payload.source' is missing or blank"},
		{"blank severity", &pagerduty.V2Event{RoutingKey: rk1, Action: "trigger", Payload: &pagerduty.V2Payload{Summary: "s", Source: "x"}},
			"'payload.severity' is missing or blank"},
		{"uppercase severity", &pagerduty.V2Event{RoutingKey: rk1, Action: "trigger", Payload: &pagerduty.V2Payload{Summary: "s", Source: "x", Severity: "CRITICAL"}},
			"'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')"},
		{"bad timestamp", &pagerduty.V2Event{RoutingKey: rk1, Action: "trigger", Payload: &pagerduty.V2Payload{Summary: "s", Source: "x", Severity: "info", Timestamp: "yesterday"}},
			"'payload.timestamp' is invalid (must be an ISO 8601 timestamp)"},
		{"custom_details not an object", &pagerduty.V2Event{RoutingKey: rk1, Action: "trigger", Payload: &pagerduty.V2Payload{Summary: "s", Source: "x", Severity: "info", Details: "text"}},
			"'payload.custom_details' is invalid (must be an object)"},
		{"link without href", &pagerduty.V2Event{RoutingKey: rk1, Action: "trigger", Payload: &pagerduty.V2Payload{Summary: "s", Source: "x", Severity: "info"},
			Links: []any{map[string]string{"text": "dashboard"}}}, "'links[0].href' is missing or blank"},
		{"image without src", &pagerduty.V2Event{RoutingKey: rk1, Action: "trigger", Payload: &pagerduty.V2Payload{Summary: "s", Source: "x", Severity: "info"},
			Images: []any{map[string]string{"href": "https://x"}}}, "'images[0].src' is missing or blank"},
	}
	p, c, keeper := newPD(t, rk1)
	ctx := ctxT(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ManageEventWithContext(ctx, tt.ev)
			var apiErr pagerduty.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %T %v, want pagerduty.APIError", err, err)
			}
			if apiErr.StatusCode != 400 || apiErr.Temporary() || apiErr.RateLimited() {
				t.Fatalf("APIError = %+v", apiErr)
			}
			// go-pagerduty v1.8.0 decodes the body as a REST API error
			// ({"error":{...}}), so the Events API's body is lost.
			if apiErr.APIError.Valid || !strings.Contains(err.Error(), "no JSON error object was present") {
				t.Fatalf("expected go-pagerduty to drop the body, got %v", err)
			}
			status, hdr, body := keeper.last()
			var resp pdResponse
			if err := json.Unmarshal(body, &resp); err != nil || status != 400 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Fatalf("body %q status %d: %v", body, status, err)
			}
			if resp.Status != "invalid event" || resp.Message != "Event object is invalid" || !contains(resp.Errors, tt.want) {
				t.Fatalf("body = %+v, want error %q", resp, tt.want)
			}
			rej := p.Rejected()
			if last := rej[len(rej)-1]; last.Status != 400 || !strings.Contains(last.Reason, tt.want) || !json.Valid(last.Body) {
				t.Fatalf("rejection = %+v", last)
			}
		})
	}
	if n := len(p.Events()); n != 0 {
		t.Fatalf("accepted %d invalid events", n)
	}

	// Boundaries are inclusive, in characters.
	for _, ev := range []*pagerduty.V2Event{
		trigger(rk1, strings.Repeat("k", 255), long(1024)),
		{RoutingKey: rk1, Action: "trigger", Payload: &pagerduty.V2Payload{Summary: "s", Source: "x", Severity: "warning", Timestamp: "2015-07-17T08:42:58.315+0000"}},
	} {
		if _, err := c.ManageEventWithContext(ctx, ev); err != nil {
			t.Fatalf("at the limit: %v", err)
		}
	}

	// Several errors come back together, as PagerDuty lists them.
	_, _ = c.ManageEventWithContext(ctx, &pagerduty.V2Event{RoutingKey: "short", Action: "trigger", Payload: &pagerduty.V2Payload{}})
	_, _, body := keeper.last()
	var resp pdResponse
	_ = json.Unmarshal(body, &resp)
	if len(resp.Errors) != 4 {
		t.Fatalf("errors = %q, want routing_key, summary, source and severity", resp.Errors)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestPagerDutyHTTPContract checks what go-pagerduty never sends: other
// methods, paths, content types, malformed and oversized bodies.
func TestPagerDutyHTTPContract(t *testing.T) {
	p := NewPagerDuty()
	defer p.Close()
	valid := `{"routing_key":"` + rk1 + `","event_action":"trigger","payload":{"summary":"s","source":"x","severity":"info"}}`
	big := `{"routing_key":"` + rk1 + `","event_action":"trigger","payload":{"summary":"s","source":"x","severity":"info","custom_details":{"blob":"` +
		strings.Repeat("x", PDMaxBody) + `"}}}`
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		want                            string // in the response body
	}{
		{"valid", "POST", "/v2/enqueue", "application/json", valid, 202, `"status":"success"`},
		{"charset allowed", "POST", "/v2/enqueue", "application/json; charset=utf-8", valid, 202, `"dedup_key":"`},
		{"GET", "GET", "/v2/enqueue", "", "", 405, "not allowed"},
		{"unknown path", "POST", "/v2/change/enqueue", "application/json", valid, 404, "404"},
		{"form body", "POST", "/v2/enqueue", "application/x-www-form-urlencoded", "routing_key=x", 400, `"Content-Type must be application/json"`},
		{"not JSON", "POST", "/v2/enqueue", "application/json", `{"routing_key":`, 400, `{"status":"Unrecognized object","message":"Event object format is unrecognized","errors":["JSON parse error"]}`},
		{"JSON array", "POST", "/v2/enqueue", "application/json", `[]`, 400, `"JSON parse error"`},
		{"too large", "POST", "/v2/enqueue", "application/json", big, 400, `"Event object is too large (maximum is 524288 bytes)"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, p.URL+tt.path, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.want) {
				t.Fatalf("%d %s, want %d containing %s", resp.StatusCode, b, tt.status, tt.want)
			}
		})
	}
	if got := len(p.Rejected()); got != len(tests)-2 {
		t.Fatalf("rejected %d, want %d", got, len(tests)-2)
	}
}

// TestPagerDutyFaults checks what go-pagerduty surfaces for each fault.
func TestPagerDutyFaults(t *testing.T) {
	p, c, keeper := newPD(t)
	ctx := ctxT(t)
	send := func() error {
		_, err := c.ManageEventWithContext(ctx, trigger(rk1, "k", "s"))
		return err
	}
	apiErr := func(t *testing.T, err error) pagerduty.APIError {
		t.Helper()
		var e pagerduty.APIError
		if !errors.As(err, &e) {
			t.Fatalf("err = %T %v, want pagerduty.APIError", err, err)
		}
		return e
	}

	t.Run("FailNext 429 with Retry-After", func(t *testing.T) {
		p.FailNext(1, 429, 1500*time.Millisecond)
		e := apiErr(t, send())
		if e.StatusCode != 429 || !e.RateLimited() || !e.Temporary() {
			t.Fatalf("%+v", e)
		}
		// go-pagerduty does not expose headers; the wrapped client sees them.
		if _, hdr, body := keeper.last(); hdr.Get("Retry-After") != "2" || !strings.Contains(string(body), "throttle event") {
			t.Fatalf("Retry-After %q body %s", hdr.Get("Retry-After"), body)
		}
		if err := send(); err != nil {
			t.Fatalf("after FailNext: %v", err)
		}
	})
	t.Run("FailNext 5xx", func(t *testing.T) {
		p.FailNext(2, 500, 0)
		for range 2 {
			if e := apiErr(t, send()); e.StatusCode != 500 || !e.Temporary() {
				t.Fatalf("%+v", e)
			}
		}
		if err := send(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("FailFor until Heal", func(t *testing.T) {
		p.FailFor(503, time.Hour)
		for range 3 {
			if e := apiErr(t, send()); e.StatusCode != 503 || !e.Temporary() {
				t.Fatalf("%+v", e)
			}
		}
		p.Heal()
		if err := send(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("FailFor 429 says when the outage ends", func(t *testing.T) {
		p.FailFor(429, 3*time.Second)
		if e := apiErr(t, send()); !e.RateLimited() {
			t.Fatalf("%+v", e)
		}
		if _, hdr, _ := keeper.last(); hdr.Get("Retry-After") != "3" {
			t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
		}
		p.Heal()
	})
	t.Run("FailFor expires", func(t *testing.T) {
		p.FailFor(502, 50*time.Millisecond)
		deadline := time.Now().Add(5 * time.Second)
		for send() != nil {
			if time.Now().After(deadline) {
				t.Fatal("FailFor did not expire")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("ResetNext", func(t *testing.T) {
		before := len(p.Events())
		p.ResetNext(1)
		err := send()
		var e pagerduty.APIError
		if err == nil || errors.As(err, &e) {
			t.Fatalf("err = %T %v, want a transport error", err, err)
		}
		// go-pagerduty formats transport errors with %v: nothing to unwrap.
		if !strings.HasPrefix(err.Error(), "error calling the API endpoint:") {
			t.Fatalf("err = %v", err)
		}
		if len(p.Events()) != before {
			t.Fatal("a reset request was processed")
		}
		if err := send(); err != nil {
			t.Fatalf("after reset: %v", err)
		}
	})
	t.Run("SetLatency honours the client's context", func(t *testing.T) {
		p.SetLatency(5 * time.Second)
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.ManageEventWithContext(short, trigger(rk1, "k", "s"))
		if err == nil || time.Since(start) > 3*time.Second {
			t.Fatalf("err = %v after %v", err, time.Since(start))
		}
		// The deadline is in the text only: go-pagerduty drops the chain,
		// so a notifier checks its own ctx.Err().
		if errors.Is(err, context.DeadlineExceeded) || short.Err() == nil {
			t.Fatalf("err = %v", err)
		}
		p.SetLatency(50 * time.Millisecond)
		start = time.Now()
		if err := send(); err != nil || time.Since(start) < 50*time.Millisecond {
			t.Fatalf("err = %v after %v", err, time.Since(start))
		}
		p.Heal()
	})
	if p.Requests() < 15 {
		t.Fatalf("Requests() = %d: faulted requests must count", p.Requests())
	}
}

func TestPagerDutyRateLimit(t *testing.T) {
	p, c, keeper := newPD(t)
	ctx := ctxT(t)
	p.SetRateLimit(2, time.Minute)
	for range 2 {
		if _, err := c.ManageEventWithContext(ctx, trigger(rk1, "k", "s")); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.ManageEventWithContext(ctx, trigger(rk1, "k", "s"))
	var e pagerduty.APIError
	if !errors.As(err, &e) || !e.RateLimited() {
		t.Fatalf("err = %v", err)
	}
	if _, hdr, _ := keeper.last(); hdr.Get("Retry-After") == "" {
		t.Fatal("no Retry-After on 429")
	}
	// The limit is per routing key.
	if _, err := c.ManageEventWithContext(ctx, trigger(rk2, "k", "s")); err != nil {
		t.Fatal(err)
	}
	p.SetRateLimit(0, 0)
	if _, err := c.ManageEventWithContext(ctx, trigger(rk1, "k", "s")); err != nil {
		t.Fatal(err)
	}
}

func TestPagerDutyWaitEventsAndConcurrency(t *testing.T) {
	p, c, _ := newPD(t)
	ctx := ctxT(t)

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := p.WaitEvents(short, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitEvents on nothing = %v", err)
	}

	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := c.ManageEventWithContext(ctx, trigger(rk1, "same", "s")); err != nil {
				t.Error(err)
			}
		})
	}
	if err := p.WaitEvents(ctx, n); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if incs := p.Incidents(); len(incs) != 1 || incs[0].Triggers != n {
		t.Fatalf("incidents = %+v", incs)
	}

	// Close wakes waiters.
	done := make(chan error, 1)
	go func() { done <- p.WaitEvents(ctx, n+1) }()
	time.Sleep(20 * time.Millisecond)
	p.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitEvents after Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitEvents not woken by Close")
	}
}

func TestNewPagerDutyRejectsMalformedKeys(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewPagerDuty accepted a 3-character routing key")
		}
	}()
	NewPagerDuty("abc")
}
