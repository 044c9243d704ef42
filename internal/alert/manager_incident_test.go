package alert

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prober-dev/prober/internal/config"
	"github.com/prober-dev/prober/internal/golden"
)

// durationRE finds elapsed times as prober writes them (30s, 2m, 2h5m, 3d4h).
var durationRE = regexp.MustCompile(`\b\d+[dhms](\d+[hms])?\b`)

// resolveTexts renders a resolve as each notifier shows it to a person:
// the console block, the Slack message (updated in place) and the Slack
// thread reply, each rendered by its notifier's package (PageRenderers,
// filled by renderers_ext_test.go).
func resolveTexts(t *testing.T, p Page) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"console", "slack message", "slack reply"} {
		render := PageRenderers[name]
		if render == nil {
			t.Fatalf("no renderer %s registered (renderers_ext_test.go)", name)
		}
		text, err := render(&p)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = text
	}
	return out
}

// A resolve says one duration: how long from the first failure to the
// resolve. It once said three: the notifier's "Resolved after 30s", the
// manager's "RESOLVED after 18s" and the firing summary's "for 20s".
func TestResolveSaysOneDuration(t *testing.T) {
	r := rule("checkout_failing", func(r *config.Rule) { r.For = 20 * time.Second; r.KeepFiringFor = 10 * time.Second })
	h := newMgrHarness(t, alerting(r))
	since := t0.Add(-5 * time.Second) // the first failure, before the first evaluation
	story := func(d string) func(*golden.Evaluation) {
		return func(e *golden.Evaluation) {
			e.Summary = "checkout failing in 1/1 regions for " + d + `; step pay: json.status == "success": got "processing"; trace 4bf92f3577b34da6a3ce929d0e0e4736`
			e.Evidence.Since = since
		}
	}
	h.step(0, h.eval(r, golden.Firing, nil, story("5s")))
	h.step(10*time.Second, h.eval(r, golden.Firing, nil, story("15s")))
	h.step(10*time.Second, h.eval(r, golden.Firing, nil, story("25s")))
	h.outbox()
	h.step(10*time.Second, h.eval(r, golden.OK, nil)) // t0+30s: keep_firing_for (10s) after the last failure
	var resolves []Page
	for _, n := range h.pages() {
		if n.Page.Kind == Resolve {
			resolves = append(resolves, n.Page)
		}
	}
	if len(resolves) != 2 {
		t.Fatalf("%d resolves, want pd and slack", len(resolves))
	}
	for name, text := range resolveTexts(t, resolves[0]) {
		if got := durationRE.FindAllString(text, -1); len(got) != 1 || got[0] != "35s" {
			t.Errorf("%s says durations %q, want one, 35s from the first failure to the resolve:\n%s", name, got, text)
		}
	}
	if !strings.Contains(resolves[0].Summary, "step pay") {
		t.Errorf("the resolve lost the story: %q", resolves[0].Summary)
	}
}

// A page never shows an empty region list: burn-rate and dependency rules
// know how many regions report but fail in none by themselves.
func TestPageHasNoEmptyRegionList(t *testing.T) {
	tests := []struct {
		name    string
		failing []string
		total   int
		want    string // the "regions failing" detail, "" for none
	}{
		{"burn rate, one region reporting", nil, 1, ""},
		{"no regions known", nil, 0, ""},
		{"two of three", []string{"a", "b"}, 3, "2 of 3 (a, b)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rule("checkout_slo", func(r *config.Rule) { r.For = 0; r.Kind = config.BurnRate })
			h := newMgrHarness(t, alerting(r))
			h.step(0, h.eval(r, golden.Firing, nil, func(e *golden.Evaluation) {
				e.Evidence.RegionsFailing, e.Evidence.RegionsTotal = tt.failing, tt.total
			}))
			ns := h.pages()
			if len(ns) == 0 {
				t.Fatal("no page")
			}
			got := ""
			for _, f := range ns[0].Page.Details {
				if f.Name == "regions failing" {
					got = f.Value
				}
				if strings.Contains(f.Value, "()") {
					t.Errorf("empty list in %s: %q", f.Name, f.Value)
				}
			}
			if got != tt.want {
				t.Errorf("regions failing %q, want %q", got, tt.want)
			}
		})
	}
}

// reopen closes the harness's database and opens it again under a new
// manager: a restart.
func (h *mgrHarness) reopen(a *config.Alerting) {
	h.t.Helper()
	path := h.db.Path()
	if err := h.db.Close(); err != nil {
		h.t.Fatal(err)
	}
	db := openNoSync(h.t, path)
	h.db = db
	h.m = NewManager(db, a, nil, ManagerOptions{Source: "prober (region a)", StatusURL: "http://prober.test"})
}

// count returns how many of the outbox lines (as h.outbox gives them)
// start with prefix.
func count(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// checkout_failing fired and resolved 4 times in 3 minutes: the fire
// history went with each resolve. Flap damping remembers firings per key
// beyond the alert and across restarts, so a key pages at most flapFires
// times while it flaps, then resolves flapHold after it stops.
func TestFlappingPagesBoundedAcrossResolvesAndRestarts(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(map[bool]string{false: "one process", true: "restarts"}[restart], func(t *testing.T) {
			// The corpus's timings: every 5s, for 10s, keep_firing_for 10s.
			r := rule("checkout_failing", func(r *config.Rule) { r.For = 10 * time.Second; r.KeepFiringFor = 10 * time.Second })
			a := alerting(r)
			h := newMgrHarness(t, a)
			var sent []string
			// One flap: 20s failing, 25s passing; 4 in 3 minutes, then
			// on for the rest of the hour.
			start := h.now
			var lastFailure time.Time
			for h.now.Sub(start) < time.Hour {
				for i := range 9 {
					st := golden.OK
					if i < 4 {
						st, lastFailure = golden.Firing, h.now.Add(5*time.Second)
					}
					h.step(5*time.Second, h.eval(r, st, nil))
					sent = append(sent, h.outbox()...)
				}
				if restart && h.now.Sub(start) < 5*time.Minute {
					h.reopen(a) // after each of the first flaps
				}
			}
			if n := count(sent, "pd trigger"); n != flapFires {
				t.Errorf("%d PagerDuty triggers in an hour of flapping every 45s, want %d:\n%v", n, flapFires, sent)
			}
			if n := count(sent, "pd resolve"); n != flapFires-1 {
				t.Errorf("%d PagerDuty resolves while flapping, want %d (held firing from firing %d on)", n, flapFires-1, flapFires)
			}
			// It stops: held for flapHold after its last failure, then one resolve.
			for h.now.Add(5*time.Second).Sub(lastFailure) < flapHold {
				h.step(5*time.Second, h.eval(r, golden.OK, nil))
				if got := h.outbox(); len(got) != 0 {
					t.Fatalf("%v after its last failure: %v", h.now.Sub(lastFailure), got)
				}
			}
			h.step(5*time.Second, h.eval(r, golden.OK, nil))
			if got := h.outbox(); count(got, "pd resolve") != 1 {
				t.Errorf("after flapHold: %v, want the resolve", got)
			}
		})
	}
}

// The firing history outlives alerts but not the flap window: a key that
// stopped firing is dropped when another key next fires.
func TestFireHistoryPruned(t *testing.T) {
	h := newMgrHarness(t, alerting())
	at := func(d time.Duration) []time.Time { return []time.Time{t0.Add(d)} }
	steps := []struct {
		key   string
		fires []time.Time
		now   time.Duration
		want  map[string]bool // keys with a history afterwards
	}{
		{"a", at(0), 0, map[string]bool{"a": true}},
		{"b", at(30 * time.Minute), 30 * time.Minute, map[string]bool{"a": true, "b": true}},
		{"c", at(61 * time.Minute), 61 * time.Minute, map[string]bool{"b": true, "c": true}},
		{"c", nil, 62 * time.Minute, map[string]bool{"b": true}},
	}
	for i, st := range steps {
		err := h.db.Update(func(tx *Tx) error {
			return tx.PutFires(st.key, st.fires, t0.Add(st.now-flapWindow))
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"a", "b", "c"} {
			var got []time.Time
			h.db.View(func(tx *Tx) error {
				got, err = tx.Fires(k)
				return err
			})
			if err != nil || (len(got) > 0) != st.want[k] {
				t.Errorf("step %d: history of %s %v (%v), want kept %v", i, k, got, err, st.want[k])
			}
		}
	}
}

// incidentStep is one evaluation cycle of a scenario: each rule's status
// ("" = not firing, else its severity), and what the outbox must hold.
type incidentStep struct {
	after time.Duration
	slo   string // checkout_slo: a burn rate, warning or critical
	flow  string // checkout_failing
	gw    string // gateway_success
	want  []string
	// summaries the step's notifications must carry, by "notifier kind".
	says map[string]string
	// since: the Page.Since (as an offset from t0) of a notification, by
	// "notifier kind": a resolve counts from the incident's first failure.
	since map[string]time.Duration
}

// The shipped checkout group: a burn rate that warns, and two critical
// rules, all one incident. Routes: critical to PagerDuty and Slack,
// warning to Slack.
func runIncident(t *testing.T, steps []incidentStep, restart bool) {
	t.Helper()
	keep := func(r *config.Rule) { r.For, r.KeepFiringFor, r.Group = 0, 30*time.Second, "checkout" }
	slo := rule("checkout_slo", keep, func(r *config.Rule) { r.Kind, r.Severity = config.BurnRate, "warning" })
	flow := rule("checkout_failing", keep)
	gw := rule("gateway_success", keep, func(r *config.Rule) { r.Kind = config.DependencySuccess })
	a := alerting(slo, flow, gw)
	h := newMgrHarness(t, a)
	evals := func(st incidentStep) []golden.Evaluation {
		var out []golden.Evaluation
		for _, x := range []struct {
			r   *config.Rule
			sev string
			l   map[string]string
		}{
			{slo, st.slo, map[string]string{"rule": slo.Name, "flow": "checkout"}},
			{flow, st.flow, nil},
			{gw, st.gw, map[string]string{"rule": gw.Name, "dependency": "bank-gateway"}},
		} {
			status := golden.OK
			if x.sev != "" {
				status = golden.Firing
			}
			out = append(out, h.eval(x.r, status, x.l, func(e *golden.Evaluation) {
				e.Severity = x.sev
				e.Summary = x.r.Name + " story"
			}))
		}
		return out
	}
	incident := Key("group:checkout", nil)
	for i, st := range steps {
		h.step(st.after, evals(st)...)
		ns := h.pages()
		got := h.outbox()
		var want []string
		for _, w := range st.want {
			want = append(want, w+" "+incident)
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("step %d (+%v): %v\nwant %v", i, h.now.Sub(t0), got, want)
		}
		for what, summary := range st.says {
			var said []string
			ok := false
			for _, n := range ns {
				if n.Notifier+" "+string(n.Page.Kind) == what {
					text := n.Page.Summary + " " + n.Page.Note + " " + detailsText(n.Page)
					ok = ok || strings.Contains(text, summary)
					said = append(said, text)
				}
			}
			if !ok {
				t.Errorf("step %d: no %s says %q: %q", i, what, summary, said)
			}
		}
		for what, d := range st.since {
			for _, n := range ns {
				if n.Notifier+" "+string(n.Page.Kind) == what && !n.Page.Since.Equal(t0.Add(d)) {
					t.Errorf("step %d: %s since +%v, want +%v", i, what, n.Page.Since.Sub(t0), d)
				}
			}
		}
		if restart {
			h.reopen(a)
		}
	}
}

func detailsText(p Page) string {
	var b strings.Builder
	for _, f := range p.Details {
		b.WriteString(f.Name + ": " + f.Value + "\n")
	}
	return b.String()
}

// An incident's severity is the highest of its firing members: a
// critical member joining a warning-led incident pages PagerDuty in the
// same cycle, under the incident's key, with its own story (it was a note
// to the warning's Slack thread). PagerDuty resolves when the members that
// paged clear, though the warning still fires: the Slack thread stays open
// for it and says which members are still firing, and resolves when it
// clears. All of it across restarts.
func TestIncidentEscalatesAndResolvesByMember(t *testing.T) {
	tests := []struct {
		name  string
		steps []incidentStep
	}{
		{"warning leads, critical joins, critical clears first", []incidentStep{
			{after: 0, slo: "warning", want: []string{"slack trigger"}},
			{after: 10 * time.Second, slo: "warning", flow: "critical",
				want: []string{"pd trigger", "slack reminder"},
				says: map[string]string{"pd trigger": "checkout_failing story", "slack reminder": "also firing: checkout_failing story"}},
			{after: 10 * time.Second, slo: "warning", flow: "critical", gw: "critical",
				want: []string{"pd reminder", "slack reminder"}, says: map[string]string{"slack reminder": "also firing: gateway_success story"}},
			{after: 10 * time.Second, slo: "warning", flow: "critical", gw: "critical"},
			// The gateway heals: PagerDuty stays open for the flow.
			{after: 10 * time.Second, slo: "warning", flow: "critical"},
			{after: 30 * time.Second, slo: "warning", flow: "critical", want: []string{"slack reminder"},
				says: map[string]string{"slack reminder": "gateway_success resolved (condition cleared); still firing: checkout_failing (critical), checkout_slo (warning)"}},
			// The flow heals: PagerDuty resolves though the warning still fires.
			{after: 10 * time.Second, slo: "warning"},
			{after: 30 * time.Second, slo: "warning", want: []string{"pd resolve", "slack reminder"},
				says: map[string]string{"pd resolve": "still firing: checkout_slo (warning)",
					"slack reminder": "checkout_failing resolved (condition cleared); still firing: checkout_slo (warning)"}},
			{after: 10 * time.Minute, slo: "warning"},
			{after: 10 * time.Second},
			{after: 30 * time.Second, want: []string{"slack resolve"}, says: map[string]string{"slack resolve": "checkout_slo story"}},
		}},
		{"critical leads, warning joins, critical clears", []incidentStep{
			{after: 0, flow: "critical", want: []string{"pd trigger", "slack trigger"}},
			{after: 10 * time.Second, flow: "critical", slo: "warning", want: []string{"slack reminder"}},
			{after: 10 * time.Second, slo: "warning"},
			{after: 30 * time.Second, slo: "warning", want: []string{"pd resolve", "slack reminder"}},
			{after: 10 * time.Second},
			{after: 30 * time.Second, want: []string{"slack resolve"}, since: map[string]time.Duration{"slack resolve": 0}},
		}},
		{"a burn rate pages, then only warns: PagerDuty resolves after keep_firing_for", []incidentStep{
			{after: 0, slo: "critical", want: []string{"pd trigger", "slack trigger"}},
			{after: 10 * time.Second, slo: "warning"},
			{after: 30 * time.Second, slo: "warning", want: []string{"pd resolve"}, says: map[string]string{"pd resolve": "now warning"}},
			{after: time.Hour, slo: "warning"},
			// It burns fast again: a new page under the same key.
			{after: 10 * time.Second, slo: "critical", want: []string{"pd trigger"}},
			{after: 10 * time.Second},
			{after: 30 * time.Second, want: []string{"pd resolve", "slack resolve"}},
		}},
		{"one member clears in the cycle another fires: the incident stays open", []incidentStep{
			{after: 0, flow: "critical", want: []string{"pd trigger", "slack trigger"}},
			{after: 10 * time.Second},
			{after: 30 * time.Second, gw: "critical", want: []string{"pd reminder", "slack reminder", "slack reminder"},
				says: map[string]string{"slack reminder": "checkout_failing resolved (condition cleared); still firing: gateway_success (critical)"}},
			{after: 10 * time.Second},
			{after: 30 * time.Second, want: []string{"pd resolve", "slack resolve"}},
		}},
		{"both clear in one cycle: one resolve per channel", []incidentStep{
			{after: 0, flow: "critical", gw: "critical", slo: "warning",
				want: []string{"pd reminder", "pd trigger", "slack reminder", "slack reminder", "slack trigger"}},
			{after: 10 * time.Second},
			{after: 30 * time.Second, want: []string{"pd resolve", "slack resolve"}},
		}},
		{"both critical in one cycle: one trigger per channel", []incidentStep{
			{after: 0, flow: "critical", gw: "critical", want: []string{"pd reminder", "pd trigger", "slack reminder", "slack trigger"}},
			{after: 10 * time.Second, flow: "critical"},
			{after: 30 * time.Second, flow: "critical", want: []string{"slack reminder"}},
			{after: 10 * time.Second},
			{after: 30 * time.Second, want: []string{"pd resolve", "slack resolve"}},
		}},
	}
	for _, tt := range tests {
		for _, restart := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/restart=%v", tt.name, restart), func(t *testing.T) {
				runIncident(t, tt.steps, restart)
			})
		}
	}
}

// An incident stored by an older release, where a critical member joined a
// warning leader as "grouped with" it and PagerDuty was never told, pages
// PagerDuty at the first cycle after the upgrade, and only that: Slack had
// the leader's trigger and the member's note.
func TestIncidentStoredByOlderReleaseEscalates(t *testing.T) {
	slo := rule("checkout_slo", func(r *config.Rule) { r.For, r.Group, r.Kind, r.Severity = 0, "checkout", config.BurnRate, "warning" })
	flow := rule("checkout_failing", func(r *config.Rule) { r.For, r.Group = 0, "checkout" })
	h := newMgrHarness(t, alerting(slo, flow))
	incident := Key("group:checkout", nil)
	sloLabels := map[string]string{"rule": slo.Name, "flow": "checkout"}
	flowLabels := map[string]string{"rule": flow.Name, "flow": "checkout"}
	old := []*State{
		{Key: Key(slo.Name, sloLabels), Rule: slo.Name, Group: "checkout", Labels: sloLabels, Phase: Firing, Severity: "warning",
			ActiveSince: t0.Add(-time.Minute), LastTrue: t0, FiredAt: t0.Add(-time.Minute), Notified: []string{"slack"},
			LastNotified: t0.Add(-time.Minute), Incident: incident},
		{Key: Key(flow.Name, flowLabels), Rule: flow.Name, Group: "checkout", Labels: flowLabels, Phase: Firing, Severity: "critical",
			ActiveSince: t0.Add(-30 * time.Second), LastTrue: t0, FiredAt: t0.Add(-30 * time.Second),
			Held: "grouped with checkout_slo", Incident: incident},
	}
	if err := h.db.Update(func(tx *Tx) error {
		for _, s := range old {
			if err := tx.PutAlert(s); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	warn := func(e *golden.Evaluation) { e.Severity = "warning" }
	h.step(10*time.Second, h.eval(slo, golden.Firing, sloLabels, warn), h.eval(flow, golden.Firing, flowLabels))
	if got := h.outbox(); !slices.Equal(got, []string{"pd trigger " + incident}) {
		t.Fatalf("first cycle after the upgrade: %v, want PagerDuty paged", got)
	}
	h.step(10*time.Second, h.eval(slo, golden.Firing, sloLabels, warn), h.eval(flow, golden.Firing, flowLabels))
	if got := h.outbox(); len(got) != 0 {
		t.Fatalf("second cycle: %v", got)
	}
}

// A burn rate that swings between critical and warning (its fast pair
// crossing the threshold and back) pages PagerDuty again at each swing
// once a warning releases the page; flap damping counts those pages as
// firings, so the swings page at most flapFires times, then hold.
func TestSeveritySwingsPageBounded(t *testing.T) {
	slo := rule("checkout_slo", func(r *config.Rule) { r.For, r.KeepFiringFor, r.Kind = 0, 0, config.BurnRate })
	a := alerting(slo)
	h := newMgrHarness(t, a)
	var sent []string
	for i := range 20 {
		sev := "critical"
		if i%2 == 1 {
			sev = "warning"
		}
		h.step(time.Minute, h.eval(slo, golden.Firing, nil, func(e *golden.Evaluation) { e.Severity = sev }))
		sent = append(sent, h.outbox()...)
		if i == 10 {
			h.reopen(a)
		}
	}
	if n := count(sent, "pd trigger"); n != flapFires {
		t.Errorf("%d PagerDuty triggers over 10 swings, want %d:\n%v", n, flapFires, sent)
	}
	if n := count(sent, "slack trigger"); n != 1 {
		t.Errorf("%d Slack triggers, want 1 (Slack is told by both severities)", n)
	}
}
