package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
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
// thread reply.
func resolveTexts(t *testing.T, p Page) map[string]string {
	t.Helper()
	var console bytes.Buffer
	if _, err := NewConsole("console", &console).Send(context.Background(), &p, ""); err != nil {
		t.Fatal(err)
	}
	var blocks strings.Builder
	enc := json.NewEncoder(&blocks)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(slackBlocks(&p, stateResolved)); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"console": console.String(), "slack message": blocks.String(), "slack reply": slackReply("Resolved", &p)}
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
	db, err := OpenDB(path)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { db.Close() })
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
