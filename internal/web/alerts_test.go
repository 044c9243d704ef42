package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeAlerts is an Alerts with deliveries, over fixed data.
type fakeAlerts struct {
	alerts     []AlertInfo
	deliveries []DeliveryInfo
	retried    []string
}

func (f *fakeAlerts) Alerts() ([]AlertInfo, error)                { return f.alerts, nil }
func (f *fakeAlerts) Silences() ([]SilenceInfo, error)            { return nil, nil }
func (f *fakeAlerts) AddSilence(SilenceInfo) (SilenceInfo, error) { return SilenceInfo{}, nil }
func (f *fakeAlerts) RemoveSilence(string) error                  { return nil }
func (f *fakeAlerts) Deliveries() ([]DeliveryInfo, error)         { return f.deliveries, nil }

// A page PagerDuty refused and one Slack keeps failing show on the status
// page, first and in red, and in the API with the services' errors.
func TestUndeliveredPagesShow(t *testing.T) {
	const pdErr = "HTTP 400: Event object is invalid: Invalid routing key"
	const slackErr = "HTTP 503: Service Unavailable"
	failed := DeliveryInfo{Notifier: "pagerduty", State: "failed", Kind: "trigger", Rule: "checkout_failing", AlertKey: "k",
		Attempts: 1, Queued: testNow.Add(-3 * time.Minute), FailedAt: testNow.Add(-3 * time.Minute), Error: pdErr}
	retrying := DeliveryInfo{Notifier: "slack", State: "retrying", Kind: "trigger", Rule: "checkout_failing", AlertKey: "k",
		Attempts: 4, Queued: testNow.Add(-3 * time.Minute), NextAttempt: testNow.Add(70 * time.Second), Error: slackErr}
	fa := &fakeAlerts{
		alerts: []AlertInfo{{Key: "k", Rule: "checkout_failing", Severity: "critical", Phase: "firing", Summary: "checkout failing",
			Since: testNow.Add(-5 * time.Minute), FiredAt: testNow.Add(-3 * time.Minute),
			Notified: []string{"console"}, Retrying: []DeliveryInfo{retrying}, Failed: []DeliveryInfo{failed}}},
		deliveries: []DeliveryInfo{failed, retrying},
	}
	h := newHandler(func(o *Options) { o.Alerts = fa })

	res, body := do(t, h, http.MethodGet, "/")
	if res.StatusCode != 200 {
		t.Fatalf("status page %d", res.StatusCode)
	}
	for _, want := range []string{
		`<li class="fail">PAGE NOT DELIVERED: pagerduty trigger of checkout_failing failed for good 3m00s ago after 1 attempt(s): ` + pdErr,
		`<li class="fail">PAGE RETRYING: slack trigger of checkout_failing, queued 3m00s ago, 4 attempt(s), next in 1m10s: ` + slackErr,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if i, j := strings.Index(body, "PAGE NOT DELIVERED"), strings.Index(body, "FIRING critical"); i < 0 || j < 0 || i > j {
		t.Errorf("undelivered pages are not above the alerts (%d, %d)", i, j)
	}

	_, body = do(t, h, http.MethodGet, "/api/v1/alerts")
	var got struct{ Alerts []AlertInfo }
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	a := got.Alerts[0]
	if len(a.Notified) != 1 || a.Notified[0] != "console" || len(a.Failed) != 1 || a.Failed[0].Error != pdErr ||
		len(a.Retrying) != 1 || a.Retrying[0].Attempts != 4 || !a.Retrying[0].NextAttempt.Equal(retrying.NextAttempt) {
		t.Errorf("alerts API = %s", body)
	}

	_, body = do(t, h, http.MethodGet, "/api/v1/deliveries")
	var dl struct{ Deliveries []DeliveryInfo }
	if err := json.Unmarshal([]byte(body), &dl); err != nil || len(dl.Deliveries) != 2 || dl.Deliveries[0].State != "failed" {
		t.Errorf("deliveries API = %s (%v)", body, err)
	}
}

func (f *fakeAlerts) RetryFailed(notifier string) (int, error) {
	if notifier != "" && notifier != "pagerduty" {
		return 0, errors.New(`no notifier "` + notifier + `" is configured`)
	}
	f.retried = append(f.retried, notifier)
	return 1, nil
}

// POST /api/v1/deliveries/retry requeues failed pages: guarded like the
// silences, per notifier or all.
func TestRetryDeliveriesAPI(t *testing.T) {
	fa := &fakeAlerts{}
	h := newHandler(func(o *Options) { o.Alerts = fa })
	post := func(target, remote string) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, target, nil)
		req.Header.Set("Content-Type", "application/json") // state-changing: JSON only
		req.RemoteAddr = remote
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := post("/api/v1/deliveries/retry?notifier=pagerduty", "127.0.0.1:5555"); code != 200 || !strings.Contains(body, `"requeued":1`) {
		t.Errorf("retry = %d %s", code, body)
	}
	if code, _ := post("/api/v1/deliveries/retry", "192.0.2.7:5555"); code != http.StatusForbidden {
		t.Errorf("retry from afar = %d, want 403", code)
	}
	if code, body := post("/api/v1/deliveries/retry?notifier=nope", "127.0.0.1:5555"); code != 400 || !strings.Contains(body, "nope") {
		t.Errorf("retry of an unknown notifier = %d %s", code, body)
	}
	if len(fa.retried) != 1 || fa.retried[0] != "pagerduty" {
		t.Errorf("retried %v", fa.retried)
	}
}

// Hundreds of failed pages (a revoked token) do not bury the status page.
func TestUndeliveredPagesBounded(t *testing.T) {
	fa := &fakeAlerts{}
	for range maxDeliveryLines + 5 {
		fa.deliveries = append(fa.deliveries, DeliveryInfo{Notifier: "slack", State: "failed", Kind: "trigger", Attempts: 1,
			FailedAt: testNow.Add(-time.Minute), Error: "token_revoked"})
	}
	_, body := do(t, newHandler(func(o *Options) { o.Alerts = fa }), http.MethodGet, "/")
	if n := strings.Count(body, "PAGE NOT DELIVERED"); n != maxDeliveryLines {
		t.Errorf("%d lines, want %d", n, maxDeliveryLines)
	}
	if !strings.Contains(body, "... and 5 more undelivered pages: see /api/v1/deliveries") {
		t.Error("no line saying how many more")
	}
}
