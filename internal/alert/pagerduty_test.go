package alert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/fakes"
)

// Distinctive secrets, scanned for in every error and log line.
const (
	pdKey      = "R0UT1NGKEYSECRETabcdef0123456789" // 32 alphanumerics, as PagerDuty wants
	pdOtherKey = "0THERR0UT1NGKEYxxxxxxxxxxxxxxxxx"
)

func newPDNotifier(t *testing.T, url, key string, o NotifierOptions) Notifier {
	t.Helper()
	if o.Rate == 0 {
		o.Rate, o.Burst = 1000, 1000 // tests are not paced; TestTokenBucket covers pacing
	}
	n, err := NewPagerDuty(&config.Notifier{Name: "pd", Type: config.PagerDuty, URL: url, RoutingKey: key, Timeout: 2 * time.Second}, o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func samplePage(kind Kind) *Page {
	at := time.Date(2026, 11, 23, 2, 16, 0, 0, time.UTC)
	return &Page{
		Kind:      kind,
		DedupKey:  "checkout_failing/flow=checkout",
		Rule:      "checkout_failing",
		Group:     "payments",
		Severity:  "critical",
		Summary:   `checkout failing in 3/3 regions for 2m; step pay: json.status == "success" failed, got "processing"`,
		Source:    "prober (regions a, b, c)",
		Component: "checkout",
		Class:     "swallowed_error",
		Labels:    map[string]string{"team": "payments", "tier": "critical"},
		Details: []Field{
			{Name: "step", Value: "pay"},
			{Name: "gateway success", Value: "0% (was 99.8%)"},
			{Name: "trace", Value: "4bf92f3577b34da6a3ce929d0e0e4736"},
			{Name: "step", Value: "confirm"},
		},
		Links: []Link{
			{Name: "dashboard", URL: "https://grafana.example/d/checkout"},
			{Name: "logs", URL: "https://logs.example/search?q=4bf92f35"},
		},
		At:    at,
		Since: at.Add(-2 * time.Minute),
	}
}

func TestPagerDutyTriggerFields(t *testing.T) {
	pd := fakes.NewPagerDuty(pdKey)
	defer pd.Close()
	n := newPDNotifier(t, pd.URL, pdKey, NotifierOptions{StatusURL: "http://prober.example:8080/"})
	if n.Name() != "pd" || n.Type() != config.PagerDuty {
		t.Errorf("Name, Type = %q, %q", n.Name(), n.Type())
	}
	p := samplePage(Trigger)
	th, err := n.Send(context.Background(), p, "")
	if err != nil || th != "" {
		t.Fatalf("Send = %q, %v", th, err)
	}
	evs := pd.Events()
	if len(evs) != 1 {
		t.Fatalf("events: %+v, rejected: %+v", evs, pd.Rejected())
	}
	e := evs[0]
	for _, c := range []struct{ field, got, want string }{
		{"routing_key", e.RoutingKey, pdKey},
		{"event_action", e.Action, "trigger"},
		{"dedup_key", e.DedupKey, p.DedupKey},
		{"summary", e.Summary, p.Summary},
		{"source", e.Source, p.Source},
		{"severity", e.Severity, "critical"},
		{"timestamp", e.Timestamp, "2026-11-23T02:16:00Z"},
		{"component", e.Component, "checkout"},
		{"group", e.Group, "payments"},
		{"class", e.Class, "swallowed_error"},
		{"client", e.Client, "prober"},
		{"client_url", e.ClientURL, "http://prober.example:8080/"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	cd := e.CustomDetails
	if cd["step"] != "pay" || cd["step (2)"] != "confirm" || cd["gateway success"] != "0% (was 99.8%)" || cd["trace"] != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("custom_details = %v", cd)
	}
	if labels, _ := cd["labels"].(map[string]any); labels["team"] != "payments" || labels["tier"] != "critical" {
		t.Errorf("custom_details.labels = %v", cd["labels"])
	}
	// The details keep the page's order on the wire.
	raw := string(e.Raw)
	order := []string{`"step":`, `"gateway success":`, `"trace":`, `"step (2)":`, `"labels":`}
	last := -1
	for _, k := range order {
		i := strings.Index(raw, k)
		if i <= last {
			t.Errorf("custom_details order: %s not after the previous key in %s", k, raw)
		}
		last = i
	}
	if len(e.Links) != 2 || e.Links[0]["href"] != "https://grafana.example/d/checkout" || e.Links[0]["text"] != "dashboard" || e.Links[1]["text"] != "logs" {
		t.Errorf("links = %v", e.Links)
	}
	if inc := pd.Open(); len(inc) != 1 || inc[0].DedupKey != p.DedupKey {
		t.Errorf("open incidents = %+v", inc)
	}
}

func TestPagerDutySummaryTruncatedAt1024Bytes(t *testing.T) {
	pd := fakes.NewPagerDuty(pdKey)
	defer pd.Close()
	n := newPDNotifier(t, pd.URL, pdKey, NotifierOptions{})
	p := samplePage(Trigger)
	p.Summary = strings.Repeat("é", 600) // 1200 bytes
	if _, err := n.Send(context.Background(), p, ""); err != nil {
		t.Fatal(err)
	}
	s := pd.Events()[0].Summary
	if len(s) > 1024 || !utf8.ValidString(s) || !strings.HasSuffix(s, "…") || !strings.HasPrefix(p.Summary, strings.TrimSuffix(s, "…")) {
		t.Errorf("summary of %d bytes: %q", len(s), s)
	}
	if len(s) < 1020 {
		t.Errorf("cut too much: %d bytes", len(s))
	}
}

func TestPagerDutyResolveAndReminder(t *testing.T) {
	pd := fakes.NewPagerDuty(pdKey)
	defer pd.Close()
	// The full enqueue URL, as the config documents it, works as well as the base.
	n := newPDNotifier(t, pd.URL+"/v2/enqueue", pdKey, NotifierOptions{})
	ctx := context.Background()
	if _, err := n.Send(ctx, samplePage(Trigger), ""); err != nil {
		t.Fatal(err)
	}
	reqs := pd.Requests()
	th, err := n.Send(ctx, samplePage(Reminder), "kept")
	if err != nil || th != "kept" {
		t.Errorf("reminder = %q, %v", th, err)
	}
	if pd.Requests() != reqs {
		t.Error("a reminder sent something to PagerDuty")
	}
	if _, err := n.Send(ctx, samplePage(Resolve), ""); err != nil {
		t.Fatal(err)
	}
	evs := pd.Events()
	if len(evs) != 2 || evs[1].Action != "resolve" || evs[1].DedupKey != evs[0].DedupKey {
		t.Errorf("events = %+v", evs)
	}
	inc := pd.Incidents()
	if len(inc) != 1 || inc[0].Status != "resolved" || len(pd.Open()) != 0 {
		t.Errorf("incidents = %+v", inc)
	}
}

func TestPagerDutyBaseURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "https://events.pagerduty.com"},
		{"https://events.pagerduty.com/v2/enqueue", "https://events.pagerduty.com"},
		{"https://events.eu.pagerduty.com", "https://events.eu.pagerduty.com"},
		{"http://127.0.0.1:9000/", "http://127.0.0.1:9000"},
		{"http://proxy.example/pd/v2/enqueue/", "http://proxy.example/pd"},
	} {
		got, err := pagerDutyBase(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("pagerDutyBase(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"events.pagerduty.com", "ftp://x", "http://"} {
		if _, err := pagerDutyBase(bad); err == nil {
			t.Errorf("pagerDutyBase(%q) accepted", bad)
		}
	}
	if _, err := NewPagerDuty(&config.Notifier{Name: "pd"}, NotifierOptions{}); err == nil {
		t.Error("NewPagerDuty without a routing key accepted")
	}
}

func TestPagerDutyErrorClasses(t *testing.T) {
	longKey := strings.Repeat("k", 300)
	tests := []struct {
		name       string
		key        string // routing key the notifier uses
		fault      func(pd *fakes.PagerDuty)
		page       func(p *Page)
		timeout    time.Duration
		permanent  bool
		status     int
		retryAfter time.Duration
		msg        string // substring of the error
	}{
		{name: "400 bad routing key keeps PagerDuty's text", key: pdOtherKey, permanent: true, status: 400, msg: "Event object is invalid: Invalid routing key"},
		{name: "400 dedup key too long", page: func(p *Page) { p.DedupKey = longKey }, permanent: true, status: 400, msg: "Event object is invalid: 'dedup_key' is too long (maximum is 255 characters)"},
		{name: "429 with Retry-After", fault: func(pd *fakes.PagerDuty) { pd.FailNext(1, 429, 7*time.Second) }, status: 429, retryAfter: 7 * time.Second, msg: "Requests for this service are arriving too quickly"},
		{name: "503", fault: func(pd *fakes.PagerDuty) { pd.FailNext(1, 503, 0) }, status: 503, msg: "Service Unavailable"},
		{name: "500", fault: func(pd *fakes.PagerDuty) { pd.FailNext(1, 500, 0) }, status: 500},
		{name: "408", fault: func(pd *fakes.PagerDuty) { pd.FailNext(1, 408, 0) }, status: 408},
		{name: "404 is permanent", fault: func(pd *fakes.PagerDuty) { pd.FailNext(1, 404, 0) }, permanent: true, status: 404},
		{name: "connection reset", fault: func(pd *fakes.PagerDuty) { pd.ResetNext(1) }, msg: "PagerDuty unreachable"},
		{name: "timeout", fault: func(pd *fakes.PagerDuty) { pd.SetLatency(2 * time.Second) }, timeout: 200 * time.Millisecond, msg: "PagerDuty unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pd := fakes.NewPagerDuty(pdKey)
			defer pd.Close()
			logs := &syncBuffer{}
			n := newPDNotifier(t, pd.URL, cmpOrS(tt.key, pdKey), NotifierOptions{Logger: testLogger(logs)})
			if tt.fault != nil {
				tt.fault(pd)
			}
			p := samplePage(Trigger)
			if tt.page != nil {
				tt.page(p)
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			_, err := n.Send(ctx, p, "")
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Send = %v, want a *DeliveryError", err)
			}
			t.Logf("error: %v", err)
			if de.Permanent != tt.permanent || de.Status != tt.status || de.RetryAfter != tt.retryAfter || !strings.Contains(de.Error(), tt.msg) {
				t.Errorf("got %+v (%q); want permanent=%v status=%d retryAfter=%v msg~%q", de, de.Error(), tt.permanent, tt.status, tt.retryAfter, tt.msg)
			}
			assertNoSecrets(t, err.Error()+logs.String(), pdKey, pdOtherKey)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		pd := fakes.NewPagerDuty(pdKey)
		url := pd.URL
		pd.Close()
		_, err := newPDNotifier(t, url, pdKey, NotifierOptions{}).Send(context.Background(), samplePage(Resolve), "")
		var de *DeliveryError
		if !errors.As(err, &de) || de.Permanent || de.Status != 0 {
			t.Errorf("Send = %#v", err)
		}
		assertNoSecrets(t, err.Error(), pdKey)
	})
}

// A 400 without a JSON content type (a proxy, or PagerDuty on a bad day):
// go-pagerduty reports only the status; the body is kept anyway. A 202 with
// an unreadable body was accepted.
func TestPagerDutyKeepsErrorBodyTheLibraryDrops(t *testing.T) {
	body := `{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing or blank"]}`
	mode := "400"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch mode {
		case "400":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(400)
			_, _ = io.WriteString(w, body)
		case "202":
			w.WriteHeader(202)
			_, _ = io.WriteString(w, "not json")
		case "429-date":
			w.Header().Set("Retry-After", time.Now().Add(30*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(429)
		}
	}))
	defer srv.Close()
	n := newPDNotifier(t, srv.URL, pdKey, NotifierOptions{})
	_, err := n.Send(context.Background(), samplePage(Trigger), "")
	var de *DeliveryError
	if !errors.As(err, &de) || !de.Permanent || de.Msg != "Event object is invalid: 'payload.summary' is missing or blank" {
		t.Errorf("Send = %#v", err)
	}
	mode = "202"
	if _, err := n.Send(context.Background(), samplePage(Trigger), ""); err != nil {
		t.Errorf("202 with a bad body: %v", err)
	}
	mode = "429-date"
	_, err = n.Send(context.Background(), samplePage(Trigger), "")
	if !errors.As(err, &de) || de.Permanent || de.RetryAfter < 25*time.Second || de.RetryAfter > 31*time.Second {
		t.Errorf("429 with an HTTP-date Retry-After: %#v", err)
	}
}

func TestPagerDutyFillsWhatPagerDutyRequires(t *testing.T) {
	pd := fakes.NewPagerDuty(pdKey)
	defer pd.Close()
	n := newPDNotifier(t, pd.URL, pdKey, NotifierOptions{})
	p := &Page{Kind: Trigger, DedupKey: "k", Rule: "r", Severity: "page"} // no summary, source; unknown severity
	if _, err := n.Send(context.Background(), p, ""); err != nil {
		t.Fatalf("Send = %v (rejected: %+v)", err, pd.Rejected())
	}
	e := pd.Events()[0]
	if e.Summary != "r firing" || e.Source != "prober" || e.Severity != "critical" || e.Timestamp != "" || e.CustomDetails != nil {
		t.Errorf("event = %+v", e)
	}
}

// Through the dispatcher: outages delay the page, 429's Retry-After is
// honoured, nothing is lost or sent twice, and no secret is logged.
func TestPagerDutyThroughDispatcher(t *testing.T) {
	pd := fakes.NewPagerDuty(pdKey)
	defer pd.Close()
	n := newPDNotifier(t, pd.URL, pdKey, NotifierOptions{})
	o := fastOptions()
	o.MinBackoff, o.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	h := newHarness(t, o, n)

	pd.FailFor(503, 300*time.Millisecond)
	h.enqueue("pd", "A", Trigger, "A trigger")
	h.enqueue("pd", "A", Resolve, "A resolve")
	h.run()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pd.WaitEvents(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if evs := pd.Events(); evs[0].Action != "trigger" || evs[1].Action != "resolve" {
		t.Errorf("events out of order: %+v", evs)
	}
	if len(h.logs.lines(t, "page_retry")) == 0 {
		t.Error("no retries logged during the outage")
	}

	pd.FailNext(1, 429, time.Second)
	start := time.Now()
	h.enqueue("pd", "B", Trigger, "B trigger")
	h.d.Kick()
	if err := pd.WaitEvents(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if gap := pd.Events()[2].Received.Sub(start); gap < time.Second {
		t.Errorf("retried after %v, before the 1s Retry-After", gap)
	}
	waitFor(t, 5*time.Second, "empty outbox", func() bool { return len(h.pending()) == 0 })
	h.stop()
	if len(pd.Events()) != 3 || len(pd.Incidents()) != 2 {
		t.Errorf("events %d, incidents %+v", len(pd.Events()), pd.Incidents())
	}
	assertNoSecrets(t, h.logs.String(), pdKey)
}

func TestTokenBucket(t *testing.T) {
	b := newTokenBucket(20, 2) // 2 at once, then one per 50ms
	ctx := context.Background()
	start := time.Now()
	for range 6 {
		if err := b.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 190*time.Millisecond || d > 2*time.Second {
		t.Errorf("6 tokens at 20/s with a burst of 2 took %v, want about 200ms", d)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := b.wait(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait past the deadline = %v", err)
	}
}

func assertNoSecrets(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("secret %q leaked in: %s", s[:6]+"…", text)
		}
	}
}

func cmpOrS(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestPagerDutyStaysUnderPayloadLimit(t *testing.T) {
	pd := fakes.NewPagerDuty(pdKey)
	defer pd.Close()
	n := newPDNotifier(t, pd.URL, pdKey, NotifierOptions{})
	p := samplePage(Trigger)
	p.Details = nil
	for i := range 300 {
		p.Details = append(p.Details, Field{Name: fmt.Sprint("detail ", i), Value: strings.Repeat("v", 10000)})
	}
	if _, err := n.Send(context.Background(), p, ""); err != nil {
		t.Fatalf("Send = %v", err)
	}
	e := pd.Events()[0]
	if len(e.Raw) > fakes.PDMaxBody || e.CustomDetails["…"] == nil {
		t.Errorf("%d bytes; marker %v", len(e.Raw), e.CustomDetails["…"])
	}
}
