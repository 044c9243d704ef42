package pagerduty

import (
	"cmp"
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

	"github.com/prober-dev/prober/internal/alert"
	"github.com/prober-dev/prober/internal/alert/alerttest"
	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/fakes"
)

func TestPagerDutyTriggerFields(t *testing.T) {
	pd := fakes.NewPagerDuty(pdKey)
	defer pd.Close()
	n := newNotifier(t, pd.URL, pdKey, alert.NotifierOptions{StatusURL: "http://prober.example:8080/"})
	if n.Name() != "pd" || n.Type() != Type {
		t.Errorf("Name, Type = %q, %q", n.Name(), n.Type())
	}
	p := alerttest.SamplePage(alert.Trigger)
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
	n := newNotifier(t, pd.URL, pdKey, alert.NotifierOptions{})
	p := alerttest.SamplePage(alert.Trigger)
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
	n := newNotifier(t, pd.URL+"/v2/enqueue", pdKey, alert.NotifierOptions{})
	ctx := context.Background()
	if _, err := n.Send(ctx, alerttest.SamplePage(alert.Trigger), ""); err != nil {
		t.Fatal(err)
	}
	reqs := pd.Requests()
	th, err := n.Send(ctx, alerttest.SamplePage(alert.Reminder), "kept")
	if err != nil || th != "kept" {
		t.Errorf("reminder = %q, %v", th, err)
	}
	if pd.Requests() != reqs {
		t.Error("a reminder sent something to PagerDuty")
	}
	if _, err := n.Send(ctx, alerttest.SamplePage(alert.Resolve), ""); err != nil {
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
		got, err := baseURL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("baseURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"events.pagerduty.com", "ftp://x", "http://"} {
		if _, err := baseURL(bad); err == nil {
			t.Errorf("baseURL(%q) accepted", bad)
		}
	}
	if _, err := (Plugin{}).New(&config.Notifier{Name: "pd"}, alert.NotifierOptions{}); err == nil {
		t.Error("New without a routing key accepted")
	}
}

func TestPagerDutyErrorClasses(t *testing.T) {
	longKey := strings.Repeat("k", 300)
	tests := []struct {
		name       string
		key        string // routing key the notifier uses
		fault      func(pd *fakes.PagerDuty)
		page       func(p *alert.Page)
		timeout    time.Duration
		permanent  bool
		status     int
		retryAfter time.Duration
		msg        string // substring of the error
	}{
		{name: "400 bad routing key keeps PagerDuty's text", key: pdOtherKey, permanent: true, status: 400, msg: "Event object is invalid: Invalid routing key"},
		{name: "400 dedup key too long", page: func(p *alert.Page) { p.DedupKey = longKey }, permanent: true, status: 400, msg: "Event object is invalid: 'dedup_key' is too long (maximum is 255 characters)"},
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
			logs := &alerttest.Buffer{}
			n := newNotifier(t, pd.URL, cmp.Or(tt.key, pdKey), alert.NotifierOptions{Logger: alerttest.Logger(logs)})
			if tt.fault != nil {
				tt.fault(pd)
			}
			p := alerttest.SamplePage(alert.Trigger)
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
			var de *alert.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Send = %v, want a *alert.DeliveryError", err)
			}
			t.Logf("error: %v", err)
			if de.Permanent != tt.permanent || de.Status != tt.status || de.RetryAfter != tt.retryAfter || !strings.Contains(de.Error(), tt.msg) {
				t.Errorf("got %+v (%q); want permanent=%v status=%d retryAfter=%v msg~%q", de, de.Error(), tt.permanent, tt.status, tt.retryAfter, tt.msg)
			}
			alerttest.NoSecrets(t, err.Error()+logs.String(), pdKey, pdOtherKey)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		pd := fakes.NewPagerDuty(pdKey)
		url := pd.URL
		pd.Close()
		_, err := newNotifier(t, url, pdKey, alert.NotifierOptions{}).Send(context.Background(), alerttest.SamplePage(alert.Resolve), "")
		var de *alert.DeliveryError
		if !errors.As(err, &de) || de.Permanent || de.Status != 0 {
			t.Errorf("Send = %#v", err)
		}
		alerttest.NoSecrets(t, err.Error(), pdKey)
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
	n := newNotifier(t, srv.URL, pdKey, alert.NotifierOptions{})
	_, err := n.Send(context.Background(), alerttest.SamplePage(alert.Trigger), "")
	var de *alert.DeliveryError
	if !errors.As(err, &de) || !de.Permanent || de.Msg != "Event object is invalid: 'payload.summary' is missing or blank" {
		t.Errorf("Send = %#v", err)
	}
	mode = "202"
	if _, err := n.Send(context.Background(), alerttest.SamplePage(alert.Trigger), ""); err != nil {
		t.Errorf("202 with a bad body: %v", err)
	}
	mode = "429-date"
	_, err = n.Send(context.Background(), alerttest.SamplePage(alert.Trigger), "")
	if !errors.As(err, &de) || de.Permanent || de.RetryAfter < 25*time.Second || de.RetryAfter > 31*time.Second {
		t.Errorf("429 with an HTTP-date Retry-After: %#v", err)
	}
}

func TestPagerDutyFillsWhatPagerDutyRequires(t *testing.T) {
	pd := fakes.NewPagerDuty(pdKey)
	defer pd.Close()
	n := newNotifier(t, pd.URL, pdKey, alert.NotifierOptions{})
	p := &alert.Page{Kind: alert.Trigger, DedupKey: "k", Rule: "r", Severity: "page"} // no summary, source; unknown severity
	if _, err := n.Send(context.Background(), p, ""); err != nil {
		t.Fatalf("Send = %v (rejected: %+v)", err, pd.Rejected())
	}
	e := pd.Events()[0]
	if e.Summary != "r firing" || e.Source != "prober" || e.Severity != "critical" || e.Timestamp != "" || e.CustomDetails != nil {
		t.Errorf("event = %+v", e)
	}
}

func TestPagerDutyStaysUnderPayloadLimit(t *testing.T) {
	pd := fakes.NewPagerDuty(pdKey)
	defer pd.Close()
	n := newNotifier(t, pd.URL, pdKey, alert.NotifierOptions{})
	p := alerttest.SamplePage(alert.Trigger)
	p.Details = nil
	for i := range 300 {
		p.Details = append(p.Details, alert.Field{Name: fmt.Sprint("detail ", i), Value: strings.Repeat("v", 10000)})
	}
	if _, err := n.Send(context.Background(), p, ""); err != nil {
		t.Fatalf("Send = %v", err)
	}
	e := pd.Events()[0]
	if len(e.Raw) > fakes.PDMaxBody || e.CustomDetails["…"] == nil {
		t.Errorf("%d bytes; marker %v", len(e.Raw), e.CustomDetails["…"])
	}
}

// Distinctive secrets, scanned for in every error and log line.
const (
	pdKey      = "R0UT1NGKEYSECRETabcdef0123456789" // 32 alphanumerics, as PagerDuty wants
	pdOtherKey = "0THERR0UT1NGKEYxxxxxxxxxxxxxxxxx"
)

func newNotifier(t *testing.T, url, key string, o alert.NotifierOptions) alert.Notifier {
	t.Helper()
	if o.Rate == 0 {
		o.Rate, o.Burst = 1000, 1000 // tests are not paced; alert's TestTokenBucket covers pacing
	}
	n, err := (Plugin{}).New(&config.Notifier{Name: "pd", Type: Type, Spec: &Spec{URL: url, RoutingKey: key}, Timeout: 2 * time.Second}, o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
