package alert

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prober-dev/prober/internal/fakes"
)

// noKeepAlive is a client for notifiers inside a synctest bubble: an idle
// keep-alive connection would be a goroutine waiting on the network, which
// stops virtual time.
func noKeepAlive() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

func firingState(key string, notified ...string) *State {
	return &State{Key: key, Incident: key, Phase: Firing, FiredAt: time.Now().Add(-time.Second), Notified: notified}
}

// A PagerDuty 400 (a routing key PagerDuty does not know) is not only
// logged: the channel reads failed with PagerDuty's error, the dead-letter
// gauge counts it, and the notifier is in trouble until it delivers again.
func TestDeliveryFailureIsVisible(t *testing.T) {
	pd := fakes.NewPagerDuty(pdKey) // knows pdKey only
	defer pd.Close()
	h := newHarness(t, fastOptions(), newPDNotifier(t, pd.URL, pdOtherKey, NotifierOptions{}))
	st := firingState("checkout_failing/flow=checkout", "pd")
	h.enqueue("pd", st.Key, Trigger, "checkout failing")
	h.run()
	waitFor(t, 10*time.Second, "the dead letter", func() bool { return len(h.dead()) == 1 })

	und, err := h.d.Undelivered()
	if err != nil {
		t.Fatal(err)
	}
	chs := Channels(st, und)
	if len(chs) != 1 || chs[0].State != DeliveryFailed || chs[0].Last.Attempts != 1 ||
		!strings.Contains(chs[0].Last.Error, "HTTP 400") || !strings.Contains(chs[0].Last.Error, "Invalid routing key") || chs[0].Last.Failed.IsZero() {
		t.Fatalf("channels = %+v", chs)
	}
	if got := metricValue(t, h.reg, "prober_notifications_dead_letters", map[string]string{"notifier": "pd"}); got != 1 {
		t.Errorf("prober_notifications_dead_letters{notifier=pd} = %v, want 1", got)
	}
	why, err := h.d.DeliveryTrouble([]string{"pd"}, 5*time.Minute)
	if err != nil || !strings.Contains(why, "pd: 1 page(s) failed for good") || !strings.Contains(why, "Invalid routing key") {
		t.Errorf("DeliveryTrouble = %q, %v", why, err)
	}
	assertNoSecrets(t, why+h.logs.String(), pdKey, pdOtherKey)
	h.stop()

	// The key is fixed (a reload: a new dispatcher, the same state) and
	// the next page gets through: the old dead letter no longer says that
	// pages cannot be delivered, though it stays on record.
	h.dispatcher(fastOptions(), newPDNotifier(t, pd.URL, pdKey, NotifierOptions{}))
	h.enqueue("pd", "other", Trigger, "another")
	h.run()
	waitFor(t, 10*time.Second, "the delivery", func() bool { return len(pd.Events()) == 1 })
	waitFor(t, 10*time.Second, "the trouble to clear", func() bool {
		why, err := h.d.DeliveryTrouble([]string{"pd"}, 5*time.Minute)
		return err == nil && why == ""
	})
	if got := metricValue(t, h.reg, "prober_notifications_dead_letters", map[string]string{"notifier": "pd"}); got != 0 {
		t.Errorf("dead letters after a delivery = %v, want 0", got)
	}
	und, _ = h.d.Undelivered()
	if chs := Channels(st, und); chs[0].State != DeliveryFailed {
		t.Errorf("the incident's own channel = %+v, want still failed (its page was never delivered)", chs[0])
	}
}

// Channel states from the outbox: retrying with attempts, next try and
// the error; sending before any attempt; delivered when nothing is left;
// a dead letter from an earlier incident of the same key does not count.
func TestChannels(t *testing.T) {
	fired := time.Date(2026, 11, 23, 2, 16, 0, 0, time.UTC)
	st := &State{Key: "k", Incident: "k", FiredAt: fired, Notified: []string{"pd", "slack", "console", "am"}}
	next := fired.Add(time.Minute)
	und := []Undelivered{
		{Notifier: "pd", AlertKey: "k", State: DeliveryRetrying, Attempts: 3, NextAttempt: next, Error: "HTTP 503: Service Unavailable", Created: fired},
		{Notifier: "pd", AlertKey: "k", State: DeliverySending, Created: fired.Add(time.Second)},
		{Notifier: "slack", AlertKey: "k", State: DeliverySending, Created: fired},
		{Notifier: "console", AlertKey: "k", State: DeliveryFailed, Created: fired.Add(-time.Hour), Error: "old"},
		{Notifier: "am", AlertKey: "other", State: DeliveryFailed, Created: fired},
	}
	got := Channels(st, und)
	want := map[string]string{"pd": DeliveryRetrying, "slack": DeliverySending, "console": DeliveryDelivered, "am": DeliveryDelivered}
	for _, c := range got {
		if c.State != want[c.Notifier] {
			t.Errorf("%s: %s, want %s", c.Notifier, c.State, want[c.Notifier])
		}
	}
	if got[0].Last.Attempts != 3 || !got[0].Last.NextAttempt.Equal(next) || got[0].Last.Error != "HTTP 503: Service Unavailable" {
		t.Errorf("pd = %+v", got[0])
	}
}

// After an outage, a page is delivered within seconds of PagerDuty
// answering again, not at the end of its backoff step (up to 5 minutes),
// and exactly once.
func TestDispatchDeliversSoonAfterAnOutageEnds(t *testing.T) {
	pd := fakes.NewPagerDuty(pdKey)
	defer pd.Close()
	pd.FailFor(http.StatusServiceUnavailable, 24*time.Hour) // healed below
	synctest.Test(t, func(t *testing.T) {
		n := newPDNotifier(t, pd.URL, pdKey, NotifierOptions{HTTPClient: noKeepAlive()})
		h := newHarness(t, DispatcherOptions{}, n) // production backoff: 1s doubling to 5m
		h.enqueue("pd", "checkout", Trigger, "checkout failing")
		h.run()
		time.Sleep(10 * time.Minute)
		// Heal right after a failed attempt, when the next step is furthest.
		attempts := h.pending()[0].Attempts
		for h.pending()[0].Attempts == attempts {
			time.Sleep(100 * time.Millisecond)
		}
		p := h.pending()[0]
		pd.Heal()
		healed := time.Now()
		if wait := p.NextAttempt.Sub(healed); wait < time.Minute {
			t.Fatalf("the backoff step after %d attempts is %s: the test needs a long one", p.Attempts, wait)
		}
		for len(pd.Events()) == 0 && time.Since(healed) < 10*time.Minute {
			time.Sleep(100 * time.Millisecond)
		}
		took := time.Since(healed)
		t.Logf("delivered %s (virtual) after recovery; the backoff step would have ended %s after", took, p.NextAttempt.Sub(healed).Round(time.Second))
		if took > 10*time.Second {
			t.Errorf("delivered %s after PagerDuty answered again, want within 10s (its backoff step ended %s after)", took, p.NextAttempt.Sub(healed))
		}
		time.Sleep(time.Minute) // any duplicate would have been sent by now
		h.stop()
		if ev := pd.Events(); len(ev) != 1 {
			t.Errorf("%d events delivered, want exactly 1", len(ev))
		}
		if left := h.pending(); len(left) != 0 {
			t.Errorf("outbox still holds %d", len(left))
		}
		if len(h.logs.lines(t, "notifier_reachable")) == 0 {
			t.Error("no notifier_reachable line")
		}
	})
}

// reachScript is a scriptNotifier whose service answers reachability
// probes as reach says.
type reachScript struct {
	*scriptNotifier
	probes atomic.Int32
	reachy func() error
}

func (r *reachScript) Reach(ctx context.Context) error {
	r.probes.Add(1)
	return r.reachy()
}

// A service that answers probes but keeps failing pages gets at most one
// rushed attempt per backoff step, not one per probe.
func TestDispatchReachabilityRushIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &reachScript{
			scriptNotifier: newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
				return "", errUnavailable
			}),
			reachy: func() error { return nil },
		}
		h := newHarness(t, DispatcherOptions{}, n)
		h.enqueue("pd", "A", Trigger, "A")
		h.run()
		time.Sleep(30 * time.Minute)
		h.stop()
		// Plain backoff: about 14 attempts in 30 minutes (1s doubling to
		// 5m, equal jitter); rushed ones at most as many again. A rush per
		// probe would be one every 5s: 360.
		if a := n.attemptsOf("A"); a > 40 {
			t.Errorf("%d attempts in 30 minutes: the rush is not bounded", a)
		}
		if n.probes.Load() == 0 {
			t.Error("the service was never probed")
		}
	})
}

// SIGTERM's drain makes one last attempt for a page whose next retry falls
// after the grace, and delivers it when the service answers by then.
func TestDrainLastAttemptBeyondTheGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := atomic.Bool{}
		down.Store(true)
		n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			if down.Load() {
				return "", errUnavailable
			}
			return "", nil
		})
		o := DispatcherOptions{MinBackoff: 2 * time.Minute, MaxBackoff: 5 * time.Minute}
		h := newHarness(t, o, n)
		h.enqueue("pd", "A", Trigger, "A")
		h.enqueue("pd", "B", Trigger, "B")
		h.run()
		time.Sleep(time.Second)
		synctest.Wait()
		if n.attemptsOf("A") != 1 || n.attemptsOf("B") != 1 {
			t.Fatalf("attempts before the drain: A %d, B %d", n.attemptsOf("A"), n.attemptsOf("B"))
		}
		down.Store(false) // the service is back; the next retries are a minute or more away
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		if err := h.d.Drain(ctx); err != nil {
			t.Errorf("Drain = %v", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("Drain took %s", took)
		}
		if got := n.delivered(); len(got) != 2 {
			t.Errorf("delivered %v, want A and B", got)
		}
		if len(h.logs.lines(t, "drain_last_attempt")) != 1 {
			t.Errorf("drain_last_attempt lines: %v", h.logs.lines(t, "drain_last_attempt"))
		}
	})
	t.Run("still failing: one attempt each, then what is left", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
				return "", errUnavailable
			})
			h := newHarness(t, DispatcherOptions{MinBackoff: 2 * time.Minute, MaxBackoff: 5 * time.Minute}, n)
			h.enqueue("pd", "A", Trigger, "A")
			h.run()
			time.Sleep(time.Second)
			synctest.Wait()
			h.stop()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := h.d.Drain(ctx)
			if err == nil || !strings.Contains(err.Error(), "1 notification(s) undelivered") {
				t.Errorf("Drain = %v", err)
			}
			if a := n.attemptsOf("A"); a != 2 {
				t.Errorf("%d attempts, want 2 (the first, and the drain's last)", a)
			}
		})
	})
}

// Once the routing key is fixed, the pages that failed for good can be
// sent after all, in order; a dead letter that a later delivery of the
// same notifier superseded is not sent again.
func TestRetryFailed(t *testing.T) {
	pd := fakes.NewPagerDuty(pdKey)
	defer pd.Close()
	h := newHarness(t, fastOptions(), newPDNotifier(t, pd.URL, pdOtherKey, NotifierOptions{}))
	h.enqueue("pd", "A", Trigger, "A fires")
	h.enqueue("pd", "A", Resolve, "A resolves")
	h.run()
	waitFor(t, 10*time.Second, "two dead letters", func() bool { return len(h.dead()) == 2 })
	h.stop()

	h.dispatcher(fastOptions(), newPDNotifier(t, pd.URL, pdKey, NotifierOptions{}))
	h.run()
	if n, err := h.d.RetryFailed("pd"); n != 2 || err != nil {
		t.Fatalf("RetryFailed = %d, %v", n, err)
	}
	waitFor(t, 10*time.Second, "both delivered", func() bool { return len(pd.Events()) == 2 })
	if ev := pd.Events(); ev[0].Action != "trigger" || ev[1].Action != "resolve" {
		t.Errorf("events %s, %s: want trigger then resolve", ev[0].Action, ev[1].Action)
	}
	if inc := pd.Incidents(); len(inc) != 1 || inc[0].Status != "resolved" {
		t.Errorf("incidents = %+v", inc)
	}
	if why, _ := h.d.DeliveryTrouble([]string{"pd"}, time.Minute); why != "" {
		t.Errorf("trouble after the retry: %s", why)
	}
	if _, err := h.d.RetryFailed("nope"); err == nil {
		t.Error("RetryFailed of an unknown notifier: no error")
	}

	t.Run("superseded", func(t *testing.T) {
		n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			if p.Kind == Trigger {
				return "", &DeliveryError{Permanent: true, Status: 400, Msg: "Invalid event"}
			}
			return "", nil
		})
		h := newHarness(t, fastOptions(), n)
		h.enqueue("pd", "B", Trigger, "B fires")
		h.enqueue("pd", "B", Resolve, "B resolves")
		h.run()
		waitFor(t, 10*time.Second, "the resolve", func() bool { return len(n.delivered()) == 1 })
		if got, err := h.d.RetryFailed(""); got != 0 || err != nil {
			t.Errorf("RetryFailed = %d, %v: the trigger would reopen an incident already resolved", got, err)
		}
	})
}

// A page that waits too long in the outbox (an outage) is trouble for
// the heartbeat, only once it is older than the bound.
func TestDeliveryTroubleLatePage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newScript("pd", func(ctx context.Context, p *Page, thread string, attempt int) (string, error) {
			return "", errUnavailable
		})
		h := newHarness(t, DispatcherOptions{}, n, newScript("slack", nil))
		h.enqueue("pd", "A", Trigger, "A")
		h.enqueue("slack", "A", Trigger, "A")
		h.run()
		time.Sleep(4 * time.Minute)
		if why, err := h.d.DeliveryTrouble([]string{"pd", "slack"}, 5*time.Minute); why != "" || err != nil {
			t.Errorf("after 4m: %q, %v", why, err)
		}
		time.Sleep(2 * time.Minute)
		why, err := h.d.DeliveryTrouble([]string{"pd", "slack"}, 5*time.Minute)
		if err != nil || !strings.HasPrefix(why, "pd: 1 page(s) undelivered for more than 5m0s (oldest 6m0s) (last error: HTTP 503: Service Unavailable)") || strings.Contains(why, "slack") {
			t.Errorf("after 6m: %q, %v", why, err)
		}
		if why, _ := h.d.DeliveryTrouble([]string{"slack"}, 5*time.Minute); why != "" {
			t.Errorf("slack, which delivered: %q", why)
		}
		h.stop()
	})
}
