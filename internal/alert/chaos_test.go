package alert

import (
	"fmt"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/fakes"
)

// TestNotifierChaos: 12 alerts trigger and resolve while PagerDuty and
// Slack go through every kind of trouble (a long outage, 429 bursts with
// Retry-After, 500s, slow answers, reset connections). Once they heal,
// every trigger and resolve is delivered, in order per alert, with exactly
// one PagerDuty incident per alert and one Slack message (thread) each.
func TestNotifierChaos(t *testing.T) {
	pd := fakes.NewPagerDuty(pdKey)
	defer pd.Close()
	sl := fakes.NewSlack(slackToken, "#alerts")
	defer sl.Close()
	o := fastOptions()
	o.MinBackoff, o.MaxBackoff = 5*time.Millisecond, 100*time.Millisecond
	h := newHarness(t, o, newPDNotifier(t, pd.URL, pdKey, NotifierOptions{}), newSlackAPI(t, sl, slackToken, "#alerts", nil))

	faults := []func(){
		func() { pd.FailFor(503, 2*time.Second); sl.FailFor(503, 2*time.Second) },
		func() { pd.FailNext(5, 429, time.Second); sl.FailNext(5, 429, time.Second) },
		func() { pd.FailNext(4, 500, 0); sl.FailNext(4, 500, 0) },
		func() { pd.SetLatency(300 * time.Millisecond); sl.SetLatency(300 * time.Millisecond) },
		func() { pd.ResetNext(4); sl.ResetNext(4) },
	}
	const alerts = 12
	h.run()
	for i := 0; i < alerts; i++ {
		faults[i%len(faults)]()
		key := fmt.Sprintf("prober/r/flow=f%02d", i)
		for _, k := range []Kind{Trigger, Resolve} {
			for _, n := range []string{"pd", "slack"} {
				p := samplePage(k)
				p.DedupKey = key
				if err := h.db.Update(func(tx *Tx) error {
					return tx.Enqueue(&Notification{Notifier: n, AlertKey: key, Page: *p})
				}); err != nil {
					t.Fatal(err)
				}
			}
		}
		h.d.Kick()
		time.Sleep(150 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	pd.Heal()
	sl.Heal()
	waitFor(t, 60*time.Second, "every page delivered", func() bool { return len(h.pending()) == 0 })
	h.stop()

	if len(h.dead()) != 0 {
		t.Fatalf("dead letters: %+v", h.dead())
	}
	// PagerDuty: per alert, triggers (at least one) all before the resolve,
	// and one incident, resolved.
	seen := map[string][]string{}
	for _, ev := range pd.Events() {
		seen[ev.DedupKey] = append(seen[ev.DedupKey], ev.Action)
	}
	if len(seen) != alerts {
		t.Fatalf("PagerDuty saw %d alerts, want %d", len(seen), alerts)
	}
	for key, acts := range seen {
		if acts[len(acts)-1] != "resolve" || acts[0] != "trigger" {
			t.Errorf("%s: %v", key, acts)
		}
	}
	if inc := pd.Incidents(); len(inc) != alerts {
		t.Errorf("%d incidents, want %d", len(inc), alerts)
	}
	for _, inc := range pd.Incidents() {
		if inc.Status != "resolved" {
			t.Errorf("incident %s is %s", inc.DedupKey, inc.Status)
		}
	}
	// Slack: one top-level message per alert (a reset after Slack acted may
	// add one: at-least-once), each with its resolve in the thread.
	top := 0
	for _, m := range sl.Messages() {
		if m.ThreadTS == "" {
			top++
		}
	}
	if top < alerts || top > alerts+4 {
		t.Errorf("%d top-level Slack messages for %d alerts", top, alerts)
	}
}
