package alert

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

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
	if BuildPagerDuty == nil {
		t.Fatal("BuildPagerDuty is not set (renderers_ext_test.go)")
	}
	n, err := BuildPagerDuty(url, key, o)
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

// TestLimiter: a notifier's limiter (golang.org/x/time/rate) lets the
// burst through at once, then paces to the rate; NotifierOptions' Rate and
// Burst override the service's; a wait the context's deadline cannot
// cover fails at once, as context.DeadlineExceeded, and gives its token
// back.
func TestLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NotifierOptions{}.Limiter(20, 2) // 2 at once, then one per 50ms
		ctx := context.Background()
		start := time.Now()
		for range 6 {
			if err := l.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 200*time.Millisecond {
			t.Errorf("6 tokens at 20/s with a burst of 2 took %v, want 200ms", d)
		}

		cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		start = time.Now()
		if err := l.Wait(cctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("wait past the deadline = %v", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("a wait past the deadline took %v, want an answer at once", d)
		}
		// The refused wait took no token: the next is 50ms after the last.
		start = time.Now()
		if err := l.Wait(ctx); err != nil || time.Since(start) != 50*time.Millisecond {
			t.Errorf("next wait %v (%v), want 50ms", time.Since(start), err)
		}

		// A cancelled context ends a wait with its error.
		cctx, cancel = context.WithCancel(ctx)
		cancel()
		if err := l.Wait(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled wait = %v", err)
		}

		fast := NotifierOptions{Rate: 1000, Burst: 5}.Limiter(1, 1)
		start = time.Now()
		for range 5 {
			if err := fast.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("a burst of 5 (overriding 1) took %v", d)
		}
	})
}

func assertNoSecrets(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("secret %q leaked in: %s", s[:6]+"…", text)
		}
	}
}
