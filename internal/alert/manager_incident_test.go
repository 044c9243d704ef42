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
