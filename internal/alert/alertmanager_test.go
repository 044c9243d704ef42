package alert

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/golden"
)

// The manager refreshes a firing alert at Alertmanager notifiers every
// SyncResend, apart from RepeatInterval (the human reminders to Slack), and
// never twice in one cycle.
func TestAlertmanagerResendEveryMinute(t *testing.T) {
	r := rule("checkout_failing")
	a := alerting(r)
	a.RepeatInterval = 150 * time.Second
	a.Notifiers = append(a.Notifiers, &config.Notifier{Name: "am", Type: "alertmanager", Traits: amTraits},
		&config.Notifier{Name: "am-off", Type: "alertmanager", Disabled: "no url", Traits: amTraits})
	a.Routes["critical"] = append(a.Routes["critical"], "am", "am-off")
	h := newMgrHarness(t, a)
	key := Key(r.Name, map[string]string{"rule": r.Name, "flow": "checkout"})
	firing := func() golden.Evaluation { return h.eval(r, golden.Firing, nil) }

	h.step(0, firing())
	h.step(30*time.Second, firing())
	h.step(30*time.Second, firing()) // fires: t0+60s
	if got := h.outbox(); !slices.Equal(got, []string{"am trigger " + key, "pd trigger " + key, "slack trigger " + key}) {
		t.Fatalf("trigger: %v", got)
	}
	// Every 15s for 5 minutes: what was sent, by offset from firing.
	sent := map[time.Duration][]string{}
	var summaries []string
	for i := 1; i <= 20; i++ {
		h.step(15*time.Second, firing())
		for _, n := range h.pages() {
			summaries = append(summaries, n.Notifier+": "+n.Page.Summary)
		}
		if got := h.outbox(); len(got) > 0 {
			sent[time.Duration(i)*15*time.Second] = got
		}
	}
	am, all := []string{"am reminder " + key}, []string{"am reminder " + key, "pd reminder " + key, "slack reminder " + key}
	want := map[time.Duration][]string{
		time.Minute: am, 2 * time.Minute: am,
		150 * time.Second: all, // RepeatInterval: everyone, Alertmanager included
		3 * time.Minute:   am, 4 * time.Minute: am,
		5 * time.Minute: all, // both due: Alertmanager gets one
	}
	if len(sent) != len(want) {
		t.Errorf("sent %v\nwant %v", sent, want)
	}
	for at, w := range want {
		if !slices.Equal(sent[at], w) {
			t.Errorf("at +%v: %v, want %v", at, sent[at], w)
		}
	}
	for _, s := range summaries {
		if strings.HasPrefix(s, "am: ") && !strings.HasPrefix(s, "am: still firing") && !strings.HasPrefix(s, "am: checkout failing") {
			t.Errorf("refresh summary %q", s)
		}
	}

	// The evaluator was down for 10 minutes (Alertmanager let the alert
	// expire): the first cycle back refreshes at once.
	h.step(10*time.Minute, firing())
	if got := h.outbox(); !slices.Contains(got, "am reminder "+key) {
		t.Errorf("after a gap: %v", got)
	}
	h.step(15*time.Second, firing())
	if got := h.outbox(); len(got) != 0 {
		t.Errorf("refreshed again right after: %v", got)
	}
	// Keep-firing (condition false): no refresh; then the resolve.
	h.step(time.Minute, h.eval(r, golden.OK, nil))
	if got := h.outbox(); len(got) != 0 {
		t.Errorf("refreshed while the condition was false: %v", got)
	}
	h.step(time.Minute, h.eval(r, golden.OK, nil))
	if got := h.outbox(); !slices.Equal(got, []string{"am resolve " + key, "pd resolve " + key, "slack resolve " + key}) {
		t.Errorf("resolve: %v", got)
	}

	// A group member that joined an incident is an alert of its own in
	// Alertmanager (from its note): it is refreshed too, under the
	// incident's dedup key.
	t.Run("group member", func(t *testing.T) {
		flow := rule("checkout_failing", func(r *config.Rule) { r.Group = "checkout"; r.For = 0 })
		gw := rule("gateway_success", func(r *config.Rule) { r.Group = "checkout"; r.Kind = config.DependencySuccess; r.For = 0 })
		a := alerting(flow, gw)
		a.Notifiers = append(a.Notifiers, &config.Notifier{Name: "am", Type: "alertmanager", Traits: amTraits})
		a.Routes["critical"] = []string{"slack", "am"}
		h := newMgrHarness(t, a)
		gwLabels := map[string]string{"rule": gw.Name, "dependency": "bank-gateway"}
		incident := Key("group:checkout", nil)
		h.step(0, h.eval(flow, golden.Firing, nil))
		if got := h.outbox(); !slices.Equal(got, []string{"am trigger " + incident, "slack trigger " + incident}) {
			t.Fatalf("fire: %v", got)
		}
		h.step(20*time.Second, h.eval(flow, golden.Firing, nil), h.eval(gw, golden.Firing, gwLabels))
		if got := h.outbox(); !slices.Equal(got, []string{"am reminder " + incident, "slack reminder " + incident}) {
			t.Fatalf("join: %v", got)
		}
		h.step(20*time.Second, h.eval(flow, golden.Firing, nil), h.eval(gw, golden.Firing, gwLabels))
		h.step(20*time.Second, h.eval(flow, golden.Firing, nil), h.eval(gw, golden.Firing, gwLabels)) // flow: +60s
		ns := h.pages()
		if got := h.outbox(); !slices.Equal(got, []string{"am reminder " + incident}) || ns[0].Page.Rule != flow.Name {
			t.Fatalf("+60s: %v", got)
		}
		h.step(20*time.Second, h.eval(flow, golden.Firing, nil), h.eval(gw, golden.Firing, gwLabels)) // gateway: +60s
		ns = h.pages()
		if got := h.outbox(); !slices.Equal(got, []string{"am reminder " + incident}) || ns[0].Page.Rule != gw.Name ||
			ns[0].Page.Labels["dependency"] != "bank-gateway" {
			t.Fatalf("member +60s: %v", got)
		}
	})
}
